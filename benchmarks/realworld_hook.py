"""Third-party test suites run plain and under the memscope import hook (not a test).

For each project: download its sdist (pinned), unpack, run its own tests with pytest
twice -- plain, then with ``--memscope --memscope-package <pkg>`` (the package is
instrumented by the import hook; test files keep pytest's assertion rewriting) -- and
compare the passed/failed/skipped/error counts, which must be identical.

    python benchmarks/realworld_hook.py [--work DIR] [name ...]

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

# name -> (sdist requirement, import package, test path inside the sdist, extra pytest args)
PROJECTS: dict[str, tuple[str, str, str, list[str]]] = {
    "toolz": ("toolz==0.12.1", "toolz", "toolz/tests", []),
    "six": ("six==1.16.0", "six", "test_six.py", []),
    "more-itertools": ("more-itertools==10.2.0", "more_itertools", "tests", []),
    "pyparsing": ("pyparsing==3.1.2", "pyparsing", "tests", []),
    "tabulate": ("tabulate==0.9.0", "tabulate", "test", []),
    "idna": ("idna==3.7", "idna", "tests", []),
}

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


def run_suite(name: str, work: Path) -> dict[str, object]:
    req, pkg, tests, extra = PROJECTS[name]
    src = fetch(req, work)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMSCOPE_")}
    root = str(Path(__file__).resolve().parents[1])
    # the unpacked sources first (the package is imported from there), then memscope
    pypath = [str(src / "src")] if (src / "src").is_dir() else []
    env["PYTHONPATH"] = os.pathsep.join([*pypath, str(src), root])
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, tests]
    out: dict[str, object] = {"project": name, "requirement": req}
    for label, args in (("plain", []),
                        ("hook", ["--memscope", "--memscope-package", pkg,
                                  "--memscope-output", str(work / "captures" / name),
                                  "--memscope-format", "binary"])):
        t0 = time.perf_counter()
        res = subprocess.run([*base[:6], *args, *base[6:]], cwd=src, env=env,
                             capture_output=True, text=True, timeout=1800)
        out[label] = counts(res.stdout)
        out[f"{label}_s"] = round(time.perf_counter() - t0, 2)
        if label == "hook":
            out["instrumented"] = "memscope: capture:" in res.stderr
    out["identical"] = out["plain"] == out["hook"] and bool(out["plain"])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=os.path.join(os.getcwd(), ".realworld-hook"))
    ap.add_argument("names", nargs="*", default=list(PROJECTS))
    args = ap.parse_args(argv)
    work = Path(args.work).resolve()
    ok = True
    for name in args.names:
        r = run_suite(name, work)
        ok &= bool(r["identical"])
        print(json.dumps(r), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
