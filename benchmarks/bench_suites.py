"""Real test suites under ``memscope run``, plain against default and full mode (not a test).

For each project: download its sdist (pinned, with pip), unpack, and run its own tests:

    plain:    python -m pytest -q -p no:cacheprovider [extra] TESTS
    default:  python -m memscope run --no-report -o OUT --include PKG \\
                  -m pytest -q -p no:cacheprovider [extra] TESTS
    full:     the same with --mode full

with the unpacked sources first on PYTHONPATH (the package is imported from the sdist,
as benchmarks/realworld_hook.py does), cwd the unpacked sdist. Every run writes its
bytecode under one PYTHONPYCACHEPREFIX per project (in the work dir), so memscope's
instrumented-module cache (memscope_instrument/cache.py: beside the bytecode, under
``sys.pycache_prefix`` when set) and the bytecode are ours alone and nothing is written
into the venv or the sdist; PYTHONDONTWRITEBYTECODE is removed from the children's
environment (it would make every run cold).

- cold: before the run, every ``*.memscope-*.pyc`` under the prefix (memscope's cache,
  for every module it instrumented) and the bytecode of the unpacked sdist (package and
  tests, with pytest's rewritten test files) are deleted; the stdlib's and pytest's own
  bytecode stays (a priming plain run fills it first). One timed run.
- warm: the same command run once untimed, then timed ``--repeat`` times (best kept).

Time: CPU (user+sys of the child processes, ``resource.getrusage(RUSAGE_CHILDREN)``
around the run: the main number on a shared machine) and wall. Prints one JSON line per
project: pass/fail counts and failed test ids of every run, whether they equal plain's,
the seconds and the ratios to plain (in the JSON: cold to plain cold, warm to plain warm).
``--markdown`` prints the table for docs/performance.md after the JSON lines (there every
ratio, cold as well, is to plain warm: what a user's usual run of the suite costs);
``--table FILE`` prints it from the JSON lines of an earlier run.

    python benchmarks/bench_suites.py [--work DIR] [--modes fast,full] [--repeat 2]
        [--markdown] [name ...]

Test dependencies (pytest, hypothesis; cloudpickle for attrs; freezegun and six for
dateutil) must be installed in the running interpreter. To time a frozen copy of
memscope, put it first: ``PYTHONPATH=/tmp/copy python benchmarks/bench_suites.py``
(PYTHONPATH is kept, after the sdist's sources).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

# name -> (sdist requirement, --include packages, tests inside the sdist, extra pytest args)
PROJECTS: dict[str, tuple[str, str, str, list[str]]] = {
    # tests/test_diagram.py needs railroad-diagrams
    "pyparsing": ("pyparsing==3.1.2", "pyparsing", "tests", []),
    "attrs": ("attrs==23.2.0", "attr,attrs", "tests", []),
    "cachetools": ("cachetools==5.3.3", "cachetools", "tests", []),
    # filterwarnings=error: its no_cover mark (pytest-cov's) and a generator given to
    # parametrize (deprecated in pytest 9) stop the collection, plain as well
    "dateutil": ("python-dateutil==2.9.0.post0", "dateutil", "tests",
                 ["-W", "ignore::pytest.PytestUnknownMarkWarning",
                  "-W", "ignore::pytest.PytestRemovedIn10Warning"]),
    # click's filterwarnings=error turns pytest 9's deprecation of its parametrize into
    # a collection error, plain as well (as in realworld_hook.py)
    "click": ("click==8.1.7", "click", "tests",
              ["-W", "ignore::pytest.PytestRemovedIn10Warning"]),
    "jinja2": ("jinja2==3.1.4", "jinja2", "tests", []),
}

_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|warnings?)")
_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.M)


def counts(output: str) -> dict[str, int]:
    """pytest's summary line, as {outcome: n} (warnings left out)."""
    for line in reversed(output.strip().splitlines()):
        found = _COUNT.findall(line)
        if found:
            return {("error" if k.startswith("error") else k): int(n)
                    for n, k in found if not k.startswith("warning")}
    return {}


def fetch(req: str, work: Path) -> Path:
    name, version = req.split("==")
    dl = work / "dl"
    dl.mkdir(parents=True, exist_ok=True)

    def found() -> list[Path]:
        want = f"{name.lower().replace('_', '-')}-{version}"
        return [p for p in dl.glob("*.tar.gz")
                if p.name.lower().replace("_", "-").startswith(want)]

    if not found():
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--no-binary", ":all:", "-d", str(dl), req], check=True)
    tgz = found()[0]
    src = work / "src" / tgz.name[: -len(".tar.gz")]
    if not src.exists():
        with tarfile.open(tgz) as tf:
            tf.extractall(work / "src")  # pinned sdists from PyPI
    return src


def make_cold(prefix: Path, src: Path) -> None:
    """Delete memscope's instrumented-module cache and the sdist's bytecode."""
    if not prefix.exists():
        return
    for p in prefix.rglob("*.memscope-*.pyc"):
        p.unlink()
    mirrored = prefix / str(src.resolve()).lstrip(os.sep)
    shutil.rmtree(mirrored, ignore_errors=True)
    for p in src.rglob("__pycache__"):  # none expected with the prefix; to be sure
        shutil.rmtree(p, ignore_errors=True)


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str, str, int]:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=7200)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return cpu, wall, res.stdout, res.stderr, res.returncode


def run_suite(name: str, work: Path, modes: list[str], repeat: int,
              subset: list[str] | None = None) -> dict[str, Any]:
    req, pkgs, tests, extra = PROJECTS[name]
    src = fetch(req, work)
    prefix = work / "pycache" / name
    out_dir = Path(tempfile.mkdtemp(prefix=f"captures-{name}-", dir=work))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MEMSCOPE_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(prefix)
    pypath = [str(src / "src")] if (src / "src").is_dir() else []
    kept = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([*pypath, str(src), *kept, root])
    targets = subset or [tests]
    pytest_args = ["-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", *extra, *targets]
    include = [a for p in pkgs.split(",") for a in ("--include", p)]
    cmds: dict[str, list[str]] = {"plain": [sys.executable, *pytest_args]}
    for mode in modes:
        cmds[mode] = [sys.executable, "-m", "memscope", "run", "--no-report",
                      "-o", str(out_dir / mode), *include, "--mode", mode, *pytest_args]
    result: dict[str, Any] = {"project": name, "requirement": req,
                                 "tests": " ".join(targets)}
    # priming: the stdlib's and pytest's bytecode under the prefix (untimed)
    subprocess.run(cmds["plain"], cwd=src, env=env, capture_output=True, timeout=7200)
    failed: dict[str, set[str]] = {}
    for label, cmd in cmds.items():
        make_cold(prefix, src)
        cpu, wall, stdout, stderr, rc = timed(cmd, src, env)
        result[f"{label}_cold"] = {"cpu": round(cpu, 2), "wall": round(wall, 2),
                                   "counts": counts(stdout), "rc": rc,
                                   "failed": sorted(set(_FAILED.findall(stdout)))}
        if not counts(stdout):
            result[f"{label}_cold"]["tail"] = (stdout + stderr)[-2000:]
        if label != "plain":  # the capture's size: memscope did record
            result[f"{label}_cold"]["capture_bytes"] = sum(
                p.stat().st_size for p in (out_dir / label).rglob("*") if p.is_file())
        best: tuple[float, float] | None = None
        warm_counts, warm_failed = [], set()
        for _ in range(repeat):  # the cold run above is the untimed warming run
            cpu, wall, stdout, stderr, rc = timed(cmd, src, env)
            best = (cpu, wall) if best is None else (min(best[0], cpu), min(best[1], wall))
            warm_counts.append(counts(stdout))
            warm_failed |= set(_FAILED.findall(stdout))
        assert best is not None
        result[f"{label}_warm"] = {"cpu": round(best[0], 2), "wall": round(best[1], 2),
                                   "counts": warm_counts[-1], "rc": rc,
                                   "failed": sorted(warm_failed)}
        if any(c != warm_counts[-1] for c in warm_counts):
            result[f"{label}_warm"]["counts_each"] = warm_counts
        failed[label] = warm_failed | set(result[f"{label}_cold"]["failed"])
        print(f"# {name} {label}: {result[f'{label}_cold']} {result[f'{label}_warm']}",
              file=sys.stderr, flush=True)
    for mode in modes:
        for temp in ("cold", "warm"):
            r, p = result[f"{mode}_{temp}"], result[f"plain_{temp}"]
            r["cpu_ratio"] = round(r["cpu"] / p["cpu"], 2)
            r["wall_ratio"] = round(r["wall"] / p["wall"], 2)
            r["same_counts"] = (r["counts"] == p["counts"]
                                and "counts_each" not in r)
        result[f"{mode}_differs"] = sorted(failed[mode] ^ failed["plain"])
    shutil.rmtree(out_dir, ignore_errors=True)
    return result


def markdown(rows: list[dict[str, Any]], modes: list[str]) -> str:
    """The table of docs/performance.md: every ratio (cold as well) to plain warm."""
    def cell(r: dict[str, Any], key: str) -> str:
        d, p = r[key], r["plain_warm"]
        return (f"{d['cpu'] / p['cpu']:.2f}x / "
                f"{d['wall'] / p['wall']:.2f}x")

    head = ["suite", "plain warm s (CPU / wall)", "plain cold s (CPU / wall)"]
    for m in modes:
        head += [f"{m} warm", f"{m} cold"]
    head.append("counts (plain; same under memscope?)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        pw, pc = r["plain_warm"], r["plain_cold"]
        cells = [str(r["project"]), f"{pw['cpu']:.2f} / {pw['wall']:.2f}",
                 f"{pc['cpu']:.2f} / {pc['wall']:.2f}"]
        for m in modes:
            cells += [cell(r, f"{m}_warm"), cell(r, f"{m}_cold")]
        same = all(r[f"{m}_{t}"]["same_counts"] for m in modes
                   for t in ("cold", "warm"))
        c = ", ".join(f"{n} {k}" for k, n in pw["counts"].items())
        cells.append(f"{c}; {'same' if same else 'DIFFER'}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=os.path.join(os.getcwd(), ".bench-suites"))
    ap.add_argument("--modes", default="fast,full")
    ap.add_argument("--repeat", type=int, default=2, help="timed warm runs (best kept)")
    ap.add_argument("--subset", action="append", default=[], metavar="NAME=PATH[,PATH]",
                    help="run only these test paths of a project (cap a long suite)")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--table", metavar="JSONL",
                    help="only print the markdown table of the JSON lines of an earlier run")
    ap.add_argument("names", nargs="*", default=list(PROJECTS))
    args = ap.parse_args(argv)
    work = Path(args.work).resolve()
    modes = args.modes.split(",")
    subsets = {k: v.split(",") for k, v in (s.split("=", 1) for s in args.subset)}
    if args.table:
        rows = [json.loads(line) for line in Path(args.table).read_text().splitlines()
                if line.startswith("{")]
        print(markdown(rows, modes))
        return 0
    rows = []
    for name in args.names:
        r = run_suite(name, work, modes, args.repeat, subsets.get(name))
        rows.append(r)
        print(json.dumps(r), flush=True)
    if args.markdown:
        print(markdown(rows, modes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
