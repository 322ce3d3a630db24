"""Cold start of an included package (issue 19): the first import under the hook, with
and without ``memscope warm`` ahead (timings are recorded, never asserted).

Every module of the packages is imported. For each round: the cache entries are
removed; (a) the hook instruments on import, in the program's process (cold); removed
again; (b) ``memscope warm PKG -j N``, then the same import (the cache filled ahead);
plain Python's import of the same modules beside them. Wall time of whole processes,
best of the rounds; ``memscope warm`` with 1 worker and with one per core, so the gain
of the workers is its own row.

    python benchmarks/bench_warm.py [--rounds 3] [PKG ...]   (default: rich jinja2)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent
IMPORT = """
import importlib, sys
from memscope_instrument import hook, warm
plain, pkgs = sys.argv[1] == "plain", sys.argv[2:]
if not plain:
    hook.install_import_hook(pkgs, start=False)
n = 0
for p in pkgs:
    for _, mod in warm.package_files(p):
        try:
            importlib.import_module(mod)
            n += 1
        except Exception:
            pass
print(n, hook.stats["compiled"], hook.stats["cache_hits"])
"""


def _clear(pkgs: list[str]) -> None:
    sys.path.insert(0, str(ROOT))
    from memscope_instrument import warm

    for p in pkgs:
        for path, _ in warm.package_files(p):
            pyc = Path(path).parent / "__pycache__"
            for f in pyc.glob(Path(path).stem + ".*.memscope-*.pyc"):
                f.unlink()


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    t = time.perf_counter()
    r = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - t, r.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("packages", nargs="*", default=["rich", "jinja2"])
    a = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMSCOPE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(ROOT)
    cores = os.cpu_count() or 1
    imp = [PY, "-c", IMPORT, "hook", *a.packages]
    warm_cmd = [PY, "-m", "memscope", "warm", "-q", *a.packages]
    best: dict[str, float] = {}
    counts = counts_cold = ""

    def keep(key: str, t: float) -> None:
        best[key] = min(best.get(key, 1e9), t)

    for _ in range(a.rounds):
        _clear(a.packages)
        t, counts_cold = _timed(imp, env)
        keep("cold import (hook instruments)", t)
        for jobs in (1, cores):
            _clear(a.packages)
            t, _ = _timed([*warm_cmd, "-j", str(jobs)], env)
            key = f"memscope warm, {jobs} worker{'s' if jobs > 1 else ''}"
            keep(key, t)
        t, counts = _timed(imp, env)
        keep("import after warm", t)
        t, _ = _timed([PY, "-c", IMPORT, "plain", *a.packages], env)
        keep("plain import, no hook", t)
    print(f"packages: {', '.join(a.packages)}; modules imported, compiled, cache hits: "
          f"cold {counts_cold}, after warm {counts}; {cores} cores, best of {a.rounds}")
    print("| step | wall s |\n|---|---|")
    for k, v in best.items():
        print(f"| {k} | {v:.2f} |")


if __name__ == "__main__":
    main()
