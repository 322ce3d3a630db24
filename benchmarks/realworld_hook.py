"""Third-party test suites run plain and under the memscope import hook (not a test).

For each project: download its sdist (pinned), unpack, run its own tests with pytest
plain, then with ``--memscope --memscope-package <pkg> --memscope-mode fast`` and
``... full`` (the package is instrumented by the import hook; test files keep pytest's
assertion rewriting), and compare the passed/failed/skipped/error counts, which must be
identical. Prints one JSON line per project: the counts, the wall times and their ratio
to plain, and the ids of the tests whose outcome differs from plain.

    python benchmarks/realworld_hook.py [--work DIR] [--modes fast,full] [--warm] [name ...]

``--warm``: each run is made once untimed first, so that the times compare warm caches
(pytest's rewritten test files, memscope's instrumented modules); without it the first
memscope run of each mode instruments everything (PYTHONDONTWRITEBYTECODE makes every
run cold).

The test dependencies (pytest, hypothesis; cloudpickle for attrs) must be installed in
the running interpreter. docs/realworld.md keeps the table of the last run.

``noxfile.py`` runs it as ``nox -s realworld_hook``; CI runs the fast subset in
``tests/test_hook_realworld.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

# name -> (sdist requirement, import packages, test path inside the sdist, extra pytest args)
PROJECTS: dict[str, tuple[str, str, str, list[str]]] = {
    "toolz": ("toolz==0.12.1", "toolz", "toolz/tests", []),
    "six": ("six==1.16.0", "six", "test_six.py", []),
    "more-itertools": ("more-itertools==10.2.0", "more_itertools", "tests", []),
    "pyparsing": ("pyparsing==3.1.2", "pyparsing", "tests", []),
    "tabulate": ("tabulate==0.9.0", "tabulate", "test", []),
    "idna": ("idna==3.7", "idna", "tests", []),
    "cachetools": ("cachetools==5.3.3", "cachetools", "tests", []),
    # click's filterwarnings=error turns pytest 9's deprecation of its parametrize into
    # a collection error, plain as well
    "click": ("click==8.1.7", "click", "tests",
              ["-W", "ignore::pytest.PytestRemovedIn10Warning"]),
    "more-itertools-11": ("more-itertools==11.2.1", "more_itertools", "tests", []),
    "attrs": ("attrs==23.2.0", "attr,attrs", "tests", []),
    # boltons 24.0.0's conftest uses pytest_ignore_collect(path), which pytest 8 refuses
    "boltons": ("boltons==24.0.0", "boltons", "tests", ["--noconftest"]),
}

_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.M)
_COUNT = re.compile(r"(\d+) (passed|failed|skipped|error|errors|xfailed|xpassed)")


def counts(output: str) -> dict[str, int]:
    tail = output.strip().splitlines()[-1] if output.strip() else ""
    found = {k.rstrip("s") if k == "errors" else k: int(n) for n, k in _COUNT.findall(tail)}
    return found


def fetch(req: str, work: Path) -> Path:
    name, version = req.split("==")
    dl = work / "dl"
    dl.mkdir(parents=True, exist_ok=True)
    tgz = [p for p in dl.glob("*.tar.gz") if p.name.lower().replace("_", "-").startswith(
        f"{name.lower()}-{version}")]
    if not tgz:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--no-binary", ":all:", "-d", str(dl), req], check=True)
        tgz = [p for p in dl.glob("*.tar.gz") if p.name.lower().replace("_", "-").startswith(
            f"{name.lower()}-{version}")]
    src = work / "src" / tgz[0].name[: -len(".tar.gz")]
    if not src.exists():
        with tarfile.open(tgz[0]) as tf:
            tf.extractall(work / "src")  # pinned sdists from PyPI
    return src


def run_suite(name: str, work: Path, modes: list[str], warm: bool = False) -> dict[str, object]:
    req, pkgs, tests, extra = PROJECTS[name]
    src = fetch(req, work)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMSCOPE_")}
    root = str(Path(__file__).resolve().parents[1])
    # the unpacked sources first (the package is imported from there), then memscope
    pypath = [str(src / "src")] if (src / "src").is_dir() else []
    env["PYTHONPATH"] = os.pathsep.join([*pypath, str(src), root])
    base = [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider",
            "-o", "addopts=", *extra]
    pkg_args = [a for p in pkgs.split(",") for a in ("--memscope-package", p)]
    out: dict[str, object] = {"project": name, "requirement": req}
    failed: dict[str, set[str]] = {}
    runs: list[tuple[str, list[str]]] = [("plain", [])] + [
        (mode, ["--memscope", *pkg_args, "--memscope-mode", mode,
                "--memscope-output", str(work / "captures" / name / mode),
                "--memscope-format", "binary"]) for mode in modes]
    for label, args in runs:
        if warm:
            subprocess.run([*base, *args, tests], cwd=src, env=env, capture_output=True,
                           timeout=3600)
        t0 = time.perf_counter()
        res = subprocess.run([*base, *args, tests], cwd=src, env=env,
                             capture_output=True, text=True, timeout=3600)
        out[label] = counts(res.stdout)
        out[f"{label}_s"] = round(time.perf_counter() - t0, 2)
        failed[label] = set(_FAILED.findall(res.stdout))
        if label != "plain":
            out[f"{label}_ratio"] = round(float(out[f"{label}_s"]) / float(out["plain_s"]), 2)  # type: ignore[arg-type]
            out[f"{label}_instrumented"] = "memscope: capture:" in res.stderr
            out[f"{label}_differs"] = sorted(failed[label] ^ failed["plain"])
    out["identical"] = bool(out["plain"]) and all(out[m] == out["plain"] for m in modes)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=os.path.join(os.getcwd(), ".realworld-hook"))
    ap.add_argument("--modes", default="fast,full")
    ap.add_argument("--warm", action="store_true")
    ap.add_argument("names", nargs="*", default=list(PROJECTS))
    args = ap.parse_args(argv)
    work = Path(args.work).resolve()
    ok = True
    for name in args.names:
        r = run_suite(name, work, args.modes.split(","), args.warm)
        ok &= bool(r["identical"])
        print(json.dumps(r), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
