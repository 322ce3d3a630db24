"""Transformer benchmark (not a test): run ``python benchmarks/bench_transform.py [N]``.

1. cold transform throughput on the standard library, as a ratio to bare
   ``libcst.parse_module(src).code`` on the same files in the same run (aim >= 0.7);
2. lines/s of ``memscope-instrument --jobs 2`` on the same files;
3. the time of an unchanged re-run (incremental cache).

``--compare REV`` also times the transformer as it was at git revision REV (loaded from
``git show`` into a throw-away package) on the same files, interleaved, so before and
after come from one run: ``python benchmarks/bench_transform.py 150 --compare HEAD~1``.
Results are recorded in docs/performance.md, section "## Transformer".
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import libcst as cst

from memscope_instrument import tree
from memscope_instrument.transform import InstrumentError, Options, instrument_source


def stdlib_files(limit: int) -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py")
                   if "site-packages" not in p.parts and "test" not in p.parts
                   and "tests" not in p.parts and "idlelib" not in p.parts)
    return files[:limit] if limit else files


def load_revision(rev: str, into: Path) -> object:
    """``memscope_instrument.transform`` as of ``rev``, as a separate package."""
    root = Path(__file__).resolve().parent.parent
    pkg = into / "memscope_instrument_rev"
    pkg.mkdir()
    names = subprocess.run(["git", "ls-tree", "--name-only", rev, "memscope_instrument/"],
                           cwd=root, capture_output=True, text=True, check=True).stdout.split()
    for name in names:
        if name.endswith(".py"):
            src = subprocess.run(["git", "show", f"{rev}:{name}"], cwd=root,
                                 capture_output=True, text=True, check=True).stdout
            src = src.replace("memscope_instrument.", "memscope_instrument_rev.")
            src = src.replace("from memscope_instrument import",
                              "from memscope_instrument_rev import")
            (pkg / Path(name).name).write_text(src)
    sys.path.insert(0, str(into))
    return importlib.import_module("memscope_instrument_rev.transform")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="?", type=int, default=0,
                    help="how many standard-library files (default: all)")
    ap.add_argument("--compare", metavar="REV", default=None,
                    help="also time the transformer as of this git revision")
    ns = ap.parse_args()
    rev = ns.compare
    limit = ns.files
    old = load_revision(rev, Path(tempfile.mkdtemp())) if rev else None
    from memscope_instrument import transform

    real_splice = transform._splice
    fallbacks = 0

    def counting_splice(*a: object) -> object:
        nonlocal fallbacks
        r = real_splice(*a)  # type: ignore[arg-type]
        fallbacks += r is None
        return r

    transform._splice = counting_splice  # type: ignore[assignment]
    files = stdlib_files(limit)
    sources = []
    for f in files:
        try:
            sources.append((f, f.read_bytes()))
        except OSError:
            pass
    lines = sum(s.count(b"\n") for _f, s in sources)
    base = inst = before = 0.0
    ok = failed = kept = out_lines = sites = 0
    kept_before = lines_before = 0
    for f, s in sources:  # interleaved, so machine noise hits both sides alike
        t = time.perf_counter()
        try:
            _ = cst.parse_module(s).code
        except Exception:
            continue
        t1 = time.perf_counter()
        try:
            r = instrument_source(s, str(f))
        except InstrumentError:
            failed += 1
            continue
        t2 = time.perf_counter()
        if old is not None:
            try:
                r0 = old.instrument_source(s, str(f))  # type: ignore[attr-defined]
            except Exception:
                continue
            before += time.perf_counter() - t2
            kept_before += r0.kept_lines
            lines_before += len(r0.line_map)
        base += t1 - t
        inst += t2 - t1
        ok += 1
        kept += r.kept_lines
        out_lines += len(r.line_map)
        sites += r.sites
    print(f"files {ok} ({failed} failed), {lines} lines, {sites} sites")
    print(f"libcst parse+codegen: {base:.2f}s ({lines / base:,.0f} lines/s)")
    print(f"instrument_source:    {inst:.2f}s ({lines / inst:,.0f} lines/s)")
    print(f"throughput ratio (baseline time / transform time): {base / inst:.2f}")
    print(f"output lines keeping their original number: {kept / max(out_lines, 1):.1%}")
    print(f"files left to the libcst path (fallback): {fallbacks}")
    if old is not None:
        print(f"{rev}: instrument_source {before:.2f}s ({lines / before:,.0f} lines/s), "
              f"ratio {base / before:.2f}, lines keeping their number "
              f"{kept_before / max(lines_before, 1):.1%}")
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "src"
        for f, s in sources:
            rel = f.relative_to(Path(sysconfig.get_paths()["stdlib"]))
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes(s)
        out = Path(d) / "out"
        for label in ("jobs=2 cold", "jobs=2 unchanged re-run"):
            items = tree.plan([src], out, [], [], [])
            t = time.perf_counter()
            summ = tree.run(items, Options(), jobs=2, write=True, want_diff=False,
                            on_error="copy", cache_dir=out, emit=lambda m: None)
            dt = time.perf_counter() - t
            print(f"{label}: {dt:.2f}s ({lines / dt:,.0f} lines/s), "
                  f"{summ.cached} cached, {summ.failed} failed")
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
