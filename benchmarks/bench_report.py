"""Report-writing benchmark (not a test): how long ``memscope report`` and ``memscope
summary`` take on a capture of N events, each format in a fresh process, best of
``--repeat``; ``--profile FORMATS`` prints where one report's time goes (cProfile).

    .venv/bin/python benchmarks/bench_report.py [--events 1000000] [--repeat 1]
    .venv/bin/python benchmarks/bench_report.py --profile html,svg,timeline
    .venv/bin/python benchmarks/bench_report.py --split
    PYTHONPATH=/tmp/frozen .venv/bin/python benchmarks/bench_report.py   # a frozen copy

``--split``: where a default report's CPU time goes, in this process, best of
``--repeat``: reading the capture, the replay alone (``memscope.analysis``), the replay
with the charts' collector attached, and writing the dashboard and the two SVGs.

The capture holds synthetic events in the capture vocabulary
(``tests.report_helpers.synthetic_events``: 40 scopes, 320 variables, 3 threads, a task,
aliases, buffers, finalizations, leaks), full mode.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# after PYTHONPATH (and the installed package): ``PYTHONPATH=/tmp/frozen python
# benchmarks/bench_report.py`` times a frozen copy of the tree; ``tests`` comes from here
sys.path.append(str(ROOT))

CASES = (
    ("report (default: html,svg,timeline)", ["report", "-f", "html,svg,timeline"]),
    ("report -f json", ["report", "-f", "json"]),
    ("report -f bindings", ["report", "-f", "bindings"]),
    ("summary", ["summary"]),
)


def make_capture(n: int, path: Path) -> Path:
    from memscope.capture.writer import write_capture
    from tests.report_helpers import synthetic_events

    ev = synthetic_events(n)
    return Path(write_capture(path, ev, export_mode="full", runtime_mode="full",
                              start_ns=ev[0][4]))


def timed(args: list[str], cap: Path, out: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one command in a fresh process: on a shared
    machine the CPU time is the steadier of the two."""
    import resource

    cmd = [sys.executable, "-m", "memscope", args[0], str(cap), *args[1:]]
    if args[0] == "report":
        cmd += ["-o", str(out)]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    # (not run from ROOT: ``-m`` would import the tree there before PYTHONPATH's)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   cwd=out.parent)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def profile(cap: Path, out: Path, fmts: str) -> None:
    import cProfile
    import pstats

    from memscope.reporters import report

    pr = cProfile.Profile()
    pr.enable()
    report([cap], out, "p", fmts)
    pr.disable()
    pstats.Stats(pr).sort_stats("tottime").print_stats(20)


def split(cap: Path, out: Path, repeat: int) -> None:
    from memscope.capture import read_capture
    from memscope.reporters import load
    from memscope.reporters._progress import Quiet
    from memscope.reporters.outputs import Charts

    def best(f: Callable[[], object]) -> float:
        times = []
        for _ in range(repeat):
            t = time.process_time()
            f()
            times.append(time.process_time() - t)
        return min(times)

    read = best(lambda: sum(1 for _ in read_capture(cap).events(check=True)))
    replay = best(lambda: load.prepare([cap]).run(keep_history=False))
    charts: list[tuple[Charts, load.Run]] = []

    def with_collector() -> None:
        for c, _ in charts:
            c.abort()
        charts.clear()
        ch = Charts(frozenset({"html", "svg", "timeline"}))
        charts.append((ch, load.prepare([cap]).run(keep_history=False, attach=ch.attach)))

    collected = best(with_collector)
    ch, run = charts[0]
    t = time.process_time()
    ch.finish(run, out, "split", Quiet())
    write = time.process_time() - t
    print(f"CPU s: reading the capture {read:.2f}; replay {replay:.2f} (reading included); "
          f"replay + charts' collector {collected:.2f}; writing html, svg, timeline "
          f"{write:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--profile", metavar="FORMATS")
    ap.add_argument("--split", action="store_true", help="where a default report's time goes")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        cap = make_capture(args.events, work / "bench.memscope")
        if args.profile:
            profile(cap, work / "prof", args.profile)
            return
        if args.split:
            (work / "split").mkdir()
            split(cap, work / "split", args.repeat)
            return
        print(f"capture: {args.events:,} events, {cap.stat().st_size / 1e6:.1f} MB")
        print(f"| command | wall s | CPU s (best of {args.repeat}) |\n|---|---:|---:|")
        for label, cmd in CASES:
            best = min((timed(cmd, cap, work / "out") for _ in range(args.repeat)),
                       key=lambda wc: wc[1])
            print(f"| `memscope {label}` | {best[0]:.1f} | {best[1]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
