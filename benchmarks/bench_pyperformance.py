"""pyperformance's own benchmark bodies under each tool, side by side in one run (a
benchmark, never a test): plain ``python``, ``python -X tracemalloc``, ``memray run``,
``memscope run`` in the default mode, in full mode and with ``--no-sampling``, and the
default mode on the pure-Python hot path (``MEMSCOPE_HOTPATH_PURE=1``).

The bodies are pyperformance's ``run_benchmark.py`` files (pip downloads the wheel once
into ``--cache``), run as scripts with a stand-in for ``pyperf`` that calls the body
``BENCH_LOOPS`` times in the process and prints the seconds it took: start-up and exit
(the tools' fixed costs, measured by ``bench_hook.py``) are left out, so the ratio is
the price per unit of the program's own work. Each round runs every tool once per
body, interleaved; the best of ``--repeat`` rounds is kept, as CPU time on a shared
machine is noisy.

    python benchmarks/bench_pyperformance.py [--repeat 3] [--loops 3] [--only nbody,go]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
VERSION = "1.14.0"
BODIES = ["nbody", "richards", "chaos", "deltablue", "go", "raytrace"]

PYPERF_STANDIN = '''"""A stand-in for pyperf: runs the body in this process, prints its seconds."""
import argparse, os, time
LOOPS = int(os.environ.get("BENCH_LOOPS", "3"))
perf_counter = time.perf_counter

class Runner:
    def __init__(self, *a, **k):
        self.metadata = {}
        self.argparser = argparse.ArgumentParser()
    def parse_args(self):
        return self.argparser.parse_args([])
    def bench_func(self, name, func, *args):
        t = time.perf_counter()
        for _ in range(LOOPS):
            func(*args)
        print(f"BODY {time.perf_counter() - t:.6f}")
    def bench_time_func(self, name, func, *args):
        t = time.perf_counter()
        func(LOOPS, *args)
        print(f"BODY {time.perf_counter() - t:.6f}")
'''


def bodies(cache: Path, work: Path, names: list[str]) -> dict[str, Path]:
    """The bodies as scripts in ``work`` (the wheel downloaded into ``cache`` once)."""
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob(f"pyperformance-{VERSION}-*.whl"))
    if not wheels:
        subprocess.run([PY, "-m", "pip", "download", "-q", "--no-deps", "-d", str(cache),
                        f"pyperformance=={VERSION}"], check=True)
        wheels = sorted(cache.glob(f"pyperformance-{VERSION}-*.whl"))
    out = {}
    with zipfile.ZipFile(wheels[0]) as z:
        for name in names:
            src = f"pyperformance/data-files/benchmarks/bm_{name}/run_benchmark.py"
            path = work / f"bm_{name}.py"
            path.write_bytes(z.read(src))
            out[name] = path
    (work / "pyperf.py").write_text(PYPERF_STANDIN)
    return out


def tools(out: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    ms = [PY, "-m", "memscope", "run", "--no-report", "-o", str(out)]
    pure = {"MEMSCOPE_HOTPATH_PURE": "1"}
    found: dict[str, tuple[list[str], dict[str, str]]] = {
        "python": ([PY], {}),
        "tracemalloc": ([PY, "-X", "tracemalloc"], {}),
        "memscope": ([*ms], {}),
        "memscope full": ([*ms, "--mode", "full"], {}),
        "memscope --no-sampling": ([*ms, "--no-sampling"], {}),
        "memscope, pure Python": ([*ms], pure),
    }
    memray = shutil.which("memray") or str(Path(PY).parent / "memray")
    if os.path.exists(memray):
        found["memray"] = ([memray, "run", "-q", "-f", "-o", str(out / "m.bin")], {})
    return found


def body_seconds(cmd: list[str], extra: dict[str, str], script: Path, loops: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra, BENCH_LOOPS=str(loops))
    proc = subprocess.run([*cmd, str(script)], cwd=script.parent, env=env, text=True,
                          capture_output=True, check=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BODY ")]
    return float(lines[-1].split()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--loops", type=int, default=3)
    ap.add_argument("--only", default=",".join(BODIES))
    ap.add_argument("--tools", default="", help="comma-separated subset (python is kept)")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "memscope-pyperf"))
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="memscope-pyperf-"))
    scripts = bodies(Path(a.cache), work, a.only.split(","))
    ts = tools(work / "out")
    if a.tools:
        keep = {"python", *a.tools.split(",")}
        ts = {k: v for k, v in ts.items() if k in keep}
    best: dict[str, dict[str, float]] = {n: {} for n in scripts}
    for script in scripts.values():
        for cmd, extra in ts.values():  # warm: bytecode caches, instrumented caches
            body_seconds(cmd, extra, script, 1)
    for r in range(a.repeat):
        for name, script in scripts.items():
            for tool, (cmd, extra) in ts.items():
                t = body_seconds(cmd, extra, script, a.loops)
                best[name][tool] = min(best[name].get(tool, math.inf), t)
        print(f"round {r + 1}/{a.repeat} done", file=sys.stderr, flush=True)
    names = list(ts)
    print(f"pyperformance {VERSION} bodies, BENCH_LOOPS={a.loops}, best of {a.repeat}, "
          f"body seconds (ratio to python)\n")
    print("| body | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    ratios: dict[str, list[float]] = {t: [] for t in names}
    for name in scripts:
        base = best[name]["python"]
        cells = []
        for t in names:
            ratio = best[name][t] / base
            ratios[t].append(ratio)
            cells.append(f"{best[name][t]:.3f} s ({ratio:.2f}x)")
        print(f"| {name} | " + " | ".join(cells) + " |")
    geo = [math.exp(sum(map(math.log, ratios[t])) / len(ratios[t])) for t in names]
    print("| geomean | " + " | ".join(f"{g:.2f}x" for g in geo) + " |")
    print("| max | " + " | ".join(f"{max(ratios[t]):.2f}x" for t in names) + " |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
