"""Import-hook and ``memscope run`` benchmark (timings are recorded, never asserted).

1. Warm-cache import of a large package (``rich``: its main modules) instrumented by
   the hook, as a ratio to the plain import (both with warm bytecode caches): the hook
   installed before tracking starts, and with tracking on (its events encoded and
   written to a capture), runs of the three interleaved.
2. Cold first import under the hook (empty caches): extra cost per source line.
3. ``memscope run`` on CPU-bound programs (pyperformance-like bodies in
   ``benchmarks/hook_programs``) next to plain ``python``, ``python -X tracemalloc`` and
   ``memray run`` (when installed), in the same run; whole-process wall time, best of N.
   Two tables: the whole process at one loop of each program (start-up included), and
   the steady state, ``(T(L loops) - T(1 loop)) / (L - 1)`` per tool, which cancels
   each tool's fixed start-up cost the way pyperformance's loops do. Start-up itself is
   measured on an empty script.

    python benchmarks/bench_hook.py [--repeat N] [--loops L] [--quick] [--imports-only]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROGRAMS = HERE / "hook_programs"
PY = sys.executable
MODULES = ["rich.console", "rich.table", "rich.syntax", "rich.markdown", "rich.progress",
           "rich.tree", "rich.pretty", "rich.traceback", "rich.logging", "rich.panel"]

IMPORT_SNIPPET = """
import sys, time, importlib
mode, cold = sys.argv[1], sys.argv[2] == "cold"
import memscope_instrument.hook as hook
if cold:  # the transformer (libcst) is loaded before the clock: the cost per line is
    import memscope_instrument.transform  # the transform's own. A warm import never
    # loads it, and loading it would also load 46 modules the import of rich needs
    # itself, cheapening the plain import the warm ratio divides by
if mode == "tracked":  # tracking on, capture open, before the clock (start-up is apart)
    import memscope
    memscope.init()
t0 = time.perf_counter()
if mode != "plain":  # "hook": installed, not tracking; "tracked": a capture is written
    hook.install_import_hook(["rich"], start=False)
for m in {mods!r}:
    importlib.import_module(m)
if mode == "tracked":
    from memscope import _hooks
    _hooks.flush()  # the import's events encoded and written, as a run would
t1 = time.perf_counter()
mods = [m for n, m in sys.modules.items() if n == "rich" or n.startswith("rich.")]
lines = sum(sum(1 for _ in open(m.__file__, "rb")) for m in mods if getattr(m, "__file__", None))
print(t1 - t0, len(mods), lines, hook.stats["compiled"], hook.stats["cache_hits"])
"""


def _env(prefix: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMSCOPE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(ROOT)
    if prefix:
        env["PYTHONPYCACHEPREFIX"] = prefix
        env["MEMSCOPE_OUTPUT_DIR"] = os.path.join(prefix, "captures")
    return env


def _import_run(mode: str, prefix: str, cold: bool = False) -> tuple[float, int, int, int, int]:
    out = subprocess.run([PY, "-c", IMPORT_SNIPPET.format(mods=MODULES), mode,
                          "cold" if cold else "warm"],
                         env=_env(prefix), capture_output=True, text=True, check=True).stdout
    t, n, lines, compiled, hits = out.split()
    return float(t), int(n), int(lines), int(compiled), int(hits)


def bench_imports(repeat: int) -> dict[str, float]:
    prefix = tempfile.mkdtemp(prefix="memscope-bench-pyc-")
    try:
        cold_plain = _import_run("plain", prefix)[0]
        cold = _import_run("hook", prefix, cold=True)  # fills both caches
        warm: dict[str, list[float]] = {"plain": [], "hook": [], "tracked": []}
        warm_runs = []
        for _ in range(repeat):  # interleaved, so a noisy stretch hits every mode alike
            for mode, times in warm.items():
                r = _import_run(mode, prefix)
                times.append(r[0])
                if mode == "hook":
                    warm_runs.append(r)
        warm_plain, warm_hook, warm_tracked = (min(warm[m]) for m in ("plain", "hook", "tracked"))
        cold_runs, base_runs = [], []
        for _ in range(max(1, repeat // 2)):
            p2 = tempfile.mkdtemp(prefix="memscope-bench-pyc-")
            _import_run("plain", p2)  # warm plain pyc, cold instrumented cache
            base_runs.append(_import_run("plain", p2, cold=True)[0])  # the same preload
            cold_runs.append(_import_run("hook", p2, cold=True)[0])
            shutil.rmtree(p2, ignore_errors=True)
        cold_hook, cold_base = min(cold_runs), min(base_runs)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
    return {
        "modules": cold[1], "lines": cold[2], "instrumented": cold[3],
        "warm_cache_hits": warm_runs[0][4],
        "cold_plain_s": cold_plain, "warm_plain_s": warm_plain, "warm_hook_s": warm_hook,
        "warm_ratio": warm_hook / warm_plain, "cold_hook_s": cold_hook,
        "warm_tracked_s": warm_tracked, "warm_tracked_ratio": warm_tracked / warm_plain,
        "median_ratio": statistics.median(warm["hook"]) / statistics.median(warm["plain"]),
        "cold_us_per_line": (cold_hook - cold_base) / cold[2] * 1e6,
    }


PROGRAM_ARGS: dict[str, list[str]] = {
    "nbody.py": [], "fannkuch.py": [], "spectral_norm.py": [], "nqueens.py": [],
    "floatbm.py": [], "richards_lite.py": [],
}


def _geo(xs: list[float]) -> float:
    """Geometric mean; NaN when a ratio is not positive (a steady-state difference
    that noise made negative: memray's fannkuch once read -0.013 s an extra loop)."""
    if not xs or min(xs) <= 0:
        return math.nan
    return math.exp(sum(map(math.log, xs)) / len(xs))


def _time(cmd: list[str], cwd: Path, env: dict[str, str], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t0)
    return best


Rows = list[tuple[str, dict[str, float]]]


def bench_run(repeat: int, quick: bool, loops: int) -> tuple[list[str], Rows, Rows]:
    out_dir = tempfile.mkdtemp(prefix="memscope-bench-out-")
    memscope = [PY, "-c",
                "import sys; from memscope.cli import main; sys.argv[0]='memscope'; main()"]
    tools: dict[str, list[str]] = {
        "python": [PY],
        "tracemalloc": [PY, "-X", "tracemalloc"],
        "memscope fast": [*memscope, "run", "--no-report", "--mode", "fast", "-o", out_dir],
        "memscope full": [*memscope, "run", "--no-report", "--mode", "full", "-o", out_dir],
        # every bind recorded (no sampling): the issue 19 target is memray's geomean
        "memscope --no-sampling": [*memscope, "run", "--no-report", "--mode", "fast",
                                   "--no-sampling", "-o", out_dir],
        # the fallback: the hot path's Python closures alone (no C extension)
        "memscope fast, pure Python": ["env", "MEMSCOPE_HOTPATH_PURE=1", *memscope, "run",
                                       "--no-report", "--mode", "fast", "-o", out_dir],
    }
    memray = shutil.which("memray") or (str(Path(PY).parent / "memray")
                                        if (Path(PY).parent / "memray").exists() else None)
    if memray:
        tools["memray"] = [memray, "run", "-q", "-f", "-o", os.path.join(out_dir, "m.bin")]
    env = _env(tempfile.mkdtemp(prefix="memscope-bench-pyc-"))
    many = {**env, "BENCH_LOOPS": str(loops)}
    rows: Rows = []
    steady: Rows = []
    empty = Path(out_dir) / "empty.py"
    empty.write_text("pass\n")
    progs = list(PROGRAM_ARGS)[:2] if quick else list(PROGRAM_ARGS)
    for prog in [str(empty), *progs]:
        for cmd in tools.values():  # warm every cache once
            subprocess.run([*cmd, prog], cwd=PROGRAMS, env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times = {name: _time([*cmd, prog], PROGRAMS, env, repeat) for name, cmd in tools.items()}
        if prog == str(empty):
            rows.append(("(start-up: empty script)", times))
            print("start-up", {k: round(v, 3) for k, v in times.items()}, flush=True)
            continue
        rows.append((prog, times))
        per_loop = {name: (_time([*cmd, prog], PROGRAMS, many, repeat) - times[name])
                    / (loops - 1) for name, cmd in tools.items()}
        steady.append((prog, per_loop))
        print(prog, {k: round(v, 3) for k, v in times.items()},
              "per extra loop", {k: round(v, 3) for k, v in per_loop.items()}, flush=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    return list(tools), rows, steady


def _table(title: str, tools: list[str], rows: Rows, unit: str) -> None:
    print()
    print(title)
    print()
    print("| program | " + " | ".join(tools) + " |")
    print("|---|" + "---|" * len(tools))
    ratios: dict[str, list[float]] = {t: [] for t in tools}
    for prog, times in rows:
        base = times["python"]
        cells = []
        for t in tools:
            ratio = "" if t == "python" else f" ({times[t] / base:.2f}x)"
            if not prog.startswith("("):
                ratios[t].append(times[t] / base)
            cells.append(f"{times[t]:.3f} {unit}{ratio}")
        print(f"| {prog} | " + " | ".join(cells) + " |")
    print("| geomean | " + " | ".join(f"{_geo(ratios[t]):.2f}x" for t in tools) + " |")
    print("| max | " + " | ".join(f"{max(ratios[t]):.2f}x" for t in tools) + " |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--loops", type=int, default=4, help="loops for the steady-state table")
    ap.add_argument("--imports-only", action="store_true", help="only the import measures")
    args = ap.parse_args()
    imp = bench_imports(args.repeat)
    print("imports", {k: round(v, 4) if isinstance(v, float) else v for k, v in imp.items()})
    tools: list[str] = []
    rows: Rows = []
    steady: Rows = []
    if not args.imports_only:
        tools, rows, steady = bench_run(args.repeat, args.quick, max(2, args.loops))
    print()
    print(f"warm-cache import of {imp['modules']} rich modules ({imp['lines']} lines, "
          f"{imp['instrumented']} instrumented): plain {imp['warm_plain_s'] * 1000:.1f} ms, "
          f"hook {imp['warm_hook_s'] * 1000:.1f} ms, ratio {imp['warm_ratio']:.2f}x "
          f"(of medians {imp['median_ratio']:.2f}x); tracking on, capture written: "
          f"{imp['warm_tracked_s'] * 1000:.1f} ms, {imp['warm_tracked_ratio']:.2f}x")
    print(f"cold first import under the hook: {imp['cold_hook_s'] * 1000:.0f} ms, "
          f"{imp['cold_us_per_line']:.1f} us per source line")
    if args.imports_only:
        return
    _table("Whole process, one loop (start-up included), best of "
           f"{args.repeat}:", tools, rows, "s")
    _table(f"Steady state: seconds per extra loop, (T({max(2, args.loops)} loops) - "
           f"T(1 loop)) / {max(2, args.loops) - 1}:", tools, steady, "s")


if __name__ == "__main__":
    main()
