"""Byte-identical check of the transformer's output (not a test; a refactoring aid).

    python benchmarks/transform_identity.py record DIR [N]
    python benchmarks/transform_identity.py compare DIR [N]

``record`` instruments every fixture (``fixtures/**/*.py``) and the first ``N`` files
(default 150) of the running Python's standard library, each with the default options
and with walrus/lambda/comprehension/import options on, each by the normal path (the
splicer, falling back to libcst where it declines) and with the libcst fallback forced,
and writes one digest line per (file, options, path) to ``DIR/outputs.txt``: a hash of
the code, the line map, the column shifts, the counts and the notes. ``compare`` does the
same and lists every output that differs from the recorded one (exit status 1 if any;
files added or removed since are named, not compared).
Run ``record`` before a refactoring of the transformer and ``compare`` after it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from memscope_instrument import transform
from memscope_instrument.transform import Options, instrument_source

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = {"default": Options(),
           "all": Options(imports=True, comprehensions=True)}


def files(limit: int) -> list[Path]:
    fixtures = sorted((ROOT / "fixtures").rglob("*.py"))
    std = Path(sysconfig.get_paths()["stdlib"])
    lib = sorted(p for p in std.glob("*.py"))[:limit]
    return fixtures + lib


def digests(limit: int) -> Iterator[str]:
    real = transform._splice
    for path in files(limit):
        data = path.read_bytes()
        for oname, opts in OPTIONS.items():
            for how in ("normal", "libcst"):
                transform._splice = (real if how == "normal"  # type: ignore[assignment]
                                     else (lambda *a, **k: None))
                try:
                    r = instrument_source(data, str(path), path.stem, opts)
                    got = json.dumps([r.code, r.line_map, sorted(r.col_delta.items()),
                                      r.sites, r.scopes, r.skipped, r.notes, r.changed,
                                      r.encoding, r.kept_lines])
                except Exception as e:  # a crash is an output too
                    got = f"{type(e).__name__} {e}"
                finally:
                    transform._splice = real  # type: ignore[assignment]
                h = hashlib.sha256(got.encode()).hexdigest()[:20]
                name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
                yield f"{name} {oname} {how} {h}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["record", "compare"])
    ap.add_argument("dir", type=Path)
    ap.add_argument("n", nargs="?", type=int, default=150,
                    help="standard-library files (default 150)")
    ns = ap.parse_args()
    out = ns.dir / "outputs.txt"
    lines = list(digests(ns.n))
    if ns.mode == "record":
        ns.dir.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n")
        print(f"{len(lines)} outputs recorded in {out}")
        return 0
    before = {ln.rsplit(" ", 1)[0]: ln for ln in out.read_text().splitlines()}
    now = {ln.rsplit(" ", 1)[0]: ln for ln in lines}
    diff = [f"- {before[k]}\n+ {now[k]}" for k in now if k in before and before[k] != now[k]]
    new = [k for k in now if k not in before]
    gone = [k for k in before if k not in now]
    if new or gone:  # files added or removed since (not a difference in output)
        print(f"not compared: {len(new)} new, {len(gone)} gone: {', '.join(new + gone)}")
    print("\n".join(diff) if diff else f"{len(now) - len(new)} outputs identical")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
