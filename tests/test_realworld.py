"""Real code: third-party pure-Python projects instrumented, their own test suites run
against the instrumented tree; pass/fail counts must be identical to the plain run.

pytest runs a fast subset (``FAST``); ``nox -s realworld`` (or
``python tests/test_realworld.py``) runs every project. Sdists are fetched with
``pip download`` into ``$MEMSCOPE_REALWORLD_CACHE`` (default ~/.cache/memscope-realworld);
no third-party code is committed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("MEMSCOPE_REALWORLD_CACHE",
                            Path.home() / ".cache" / "memscope-realworld"))

# name -> (requirement, package paths inside the sdist, test paths inside the sdist)
PROJECTS: dict[str, tuple[str, list[str], list[str]]] = {
    "six": ("six==1.16.0", ["six.py"], ["test_six.py"]),
    "cachetools": ("cachetools==5.3.3", ["src/cachetools"], ["tests"]),
    "idna": ("idna==3.7", ["idna"], ["tests"]),
    "more-itertools": ("more-itertools==10.3.0", ["more_itertools"], ["tests"]),
    "toolz": ("toolz==0.12.1", ["toolz", "tlz"], []),  # tests live in toolz/tests
    "attrs": ("attrs==23.2.0", ["src/attr", "src/attrs"], ["tests", "conftest.py"]),
}
FAST = ["six", "idna"]
COUNT = re.compile(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?)")


def fetch(name: str) -> Path:
    req = PROJECTS[name][0]
    dest = CACHE / "src" / req
    if dest.exists():
        return dest
    dl = CACHE / "sdists"
    dl.mkdir(parents=True, exist_ok=True)
    stem = req.split("==")[0].replace("-", "_").lower()
    want = f"{stem}_{req.split('==')[1]}.tar.gz"
    have = [p for p in dl.iterdir() if p.name.replace("-", "_").lower() == want]
    if not have:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                        ":all:", "-q", "-d", str(dl), req], check=True)
        have = [p for p in dl.iterdir() if p.name.replace("-", "_").lower() == want]
    tmp = CACHE / "src" / (req + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(have[0]) as tf:
        tf.extractall(tmp)
    (inner,) = list(tmp.iterdir())
    inner.rename(dest)
    shutil.rmtree(tmp, ignore_errors=True)
    return dest


def prepare(name: str, work: Path, instrument: bool) -> Path:
    _req, pkgs, tests = PROJECTS[name]
    sd = fetch(name)
    run_dir = work / ("inst" if instrument else "plain")
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    for t in tests:
        src = sd / t
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, run_dir / Path(t).name)
    if instrument:
        cmd = [sys.executable, "-m", "memscope_instrument.cli", *(str(sd / p) for p in pkgs),
               "-o", str(run_dir), "--jobs", "2", "--no-cache"]
        p = subprocess.run(cmd, capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert p.returncode == 0, p.stderr
    else:
        for pk in pkgs:
            src = sd / pk
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, run_dir / Path(pk).name)
    return run_dir


def run_suite(name: str, run_dir: Path, instrumented: bool) -> dict[str, int]:
    _req, pkgs, tests = PROJECTS[name]
    targets = [Path(t).name for t in tests if not t.endswith("conftest.py")] or [
        f"{Path(pkgs[0]).name}/tests"]
    path = [str(run_dir)] + ([str(ROOT)] if instrumented else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path), PYTHONDONTWRITEBYTECODE="1")
    # prove which copy is imported
    mod = Path(pkgs[0]).name.removesuffix(".py")
    who = subprocess.run([sys.executable, "-c", f"import {mod}; print({mod}.__file__)"],
                         capture_output=True, text=True, env=env, cwd=run_dir)
    assert who.stdout.strip().startswith(str(run_dir)), who
    if instrumented:
        assert "# memscope: instrumented" in Path(who.stdout.strip()).read_text()
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-o", "addopts=", "--rootdir", str(run_dir), *targets],
                       capture_output=True, text=True, env=env, cwd=run_dir, timeout=1800)
    tail = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else p.stderr
    counts = {k.rstrip("s") if k.startswith("error") else k: int(v)
              for v, k in COUNT.findall(tail)}
    assert counts, f"{name}: no pytest summary:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
    return counts


def compare(name: str, work: Path) -> tuple[dict[str, int], dict[str, int]]:
    plain = run_suite(name, prepare(name, work, False), False)
    inst = run_suite(name, prepare(name, work, True), True)
    return plain, inst


@pytest.mark.slow
@pytest.mark.parametrize("name", FAST)
def test_realworld_fast(name: str, tmp_path: Path) -> None:
    plain, inst = compare(name, tmp_path)
    assert plain.get("passed", 0) > 0
    assert inst == plain


def main(names: list[str]) -> int:
    import tempfile

    bad = 0
    for name in names or list(PROJECTS):
        with tempfile.TemporaryDirectory() as d:
            plain, inst = compare(name, Path(d))
        ok = plain == inst and plain.get("passed", 0) > 0
        bad += not ok
        print(f"{'OK  ' if ok else 'DIFF'} {name}: plain {plain} instrumented {inst}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
