"""A program that measures its own allocations (``tracemalloc``) does not count
memscope's censuses: they wait while it traces (``_monitor._traced``), as they wait
while it imports. A census allocates in the monitor thread as it walks; more-itertools'
bounded-memory test read 140 to 200 KiB of it over its 256 KiB limit on a loaded
machine."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

PROGRAM = """
import time
import tracemalloc

import work


def measure(seconds):
    t0 = time.perf_counter_ns()  # memscope's clock
    tracemalloc.start()
    while time.perf_counter_ns() - t0 < seconds * 1e9:  # censuses are due every 0.5 s
        work.step(2)
    tracemalloc.stop()
    return t0, time.perf_counter_ns()


work.step(1)
print("window", *measure(2.0))
"""

WORK = """
def step(x):
    y = [x] * 8
    return len(y)
"""


def _censuses(folder: Path, mode: str, extra: tuple[str, ...] = ()) -> tuple[list[Any], int, int]:
    """(the run's censuses, the program's tracing window: first and last ns)."""
    from memscope.reporters import load

    folder.mkdir()
    (folder / "prog.py").write_text(textwrap.dedent(PROGRAM))
    (folder / "work.py").write_text(textwrap.dedent(WORK))
    out = subprocess.run(
        [sys.executable, *extra, "-m", "memscope", "run", "--no-report", "--mode", mode,
         "-o", str(folder / "o"), "--include", "work", "prog.py"],
        cwd=folder, capture_output=True, text=True, check=True, timeout=120).stdout
    t0, t1 = (int(x) for x in out.split("window")[1].split()[:2])
    (cap,) = (folder / "o").rglob("*.memscope")
    return load.prepare([cap]).run().analysis.censuses, t0, t1


def test_no_census_runs_inside_the_programs_own_tracemalloc_window(tmp_path: Path) -> None:
    # (before: two to four interval censuses in the 2 s window, each run)
    for mode in ("fast", "full"):
        censuses, t0, t1 = _censuses(tmp_path / mode, mode)
        assert [c.reason for c in censuses if t0 <= c.t <= t1] == [], mode
        # they ran again once it stopped tracing: the end's census at least
        assert [c for c in censuses if c.t > t1], mode


def test_a_run_traced_from_its_start_is_still_censused(tmp_path: Path) -> None:
    """``-X tracemalloc``: the whole run is traced, so nothing would end the wait; the
    censuses run as usual, during the window too."""
    censuses, t0, t1 = _censuses(tmp_path / "x", "fast", ("-X", "tracemalloc"))
    assert [c for c in censuses if t0 <= c.t <= t1 and c.reason == "interval"]
