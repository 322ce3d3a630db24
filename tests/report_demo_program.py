"""A small real program for the report tests: run it as a script.

``python report_demo_program.py OUT_DIR [hostile]`` tracks variables with the explicit
API (threads, an asyncio task, aliases, a NumPy and a bytearray buffer, a leak held by
a module global), builds an Analysis from the recorded events and writes the HTML
dashboard and both SVG charts into OUT_DIR, plus ``model.json`` (the report model)
for the tests to compare the page against. With ``hostile``, scope and type names
are HTML/JS injection attempts.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from pathlib import Path

import numpy as np

import memscope
from memscope.analysis import Analysis

HOSTILE = "</script><img src=x onerror=alert(1)>"

out_dir = Path(sys.argv[1])
hostile = len(sys.argv) > 2 and sys.argv[2] == "hostile"

memscope.init(mode="full", capture=False)

_CACHE: dict[str, object] = {}


class RowCache:
    """Weak-referenceable, so its leak is certain (seen alive by the runtime)."""

    def __init__(self, rows: list[int]) -> None:
        self.rows = rows


@memscope.track_scope("load_rows")
def load_rows(n: int) -> int:
    rows = [list(range(50)) for _ in range(n)]
    memscope.track_var(rows)
    view = rows
    memscope.track_var(view)
    header = "id,name,value\n" * 200
    memscope.track_var(header)
    kept = RowCache([0] * 30000)
    memscope.track_var(kept)
    _CACHE["rows"] = kept  # outlives the scope: a leak
    grown: list[str] = []  # bound empty, filled after: only a census sees its size
    memscope.track_var(grown)
    grown.extend(str(i) * 4 for i in range(20000))
    memscope.snapshot()  # a census now: what each name retains
    return len(rows) + len(grown)


@memscope.track_scope("numeric")
def numeric() -> float:
    matrix = np.ones((200, 300))
    memscope.track_var(matrix)
    window = matrix[10:50]
    memscope.track_var(window)
    raw = bytearray(64 * 1024)
    memscope.track_var(raw)
    return float(window.sum())


_both_running = threading.Barrier(2)


def worker(k: int) -> None:
    # both threads alive at once: a finished thread's ident can be reused by the next
    _both_running.wait()
    with memscope.track_scope("worker"):
        chunk = bytes(20000 * k)
        memscope.track_var(chunk)
    _both_running.wait()


async def fetch() -> int:
    with memscope.track_scope("fetch"):
        payload = [str(i) for i in range(4000)]
        memscope.track_var(payload)
        await asyncio.sleep(0.001)
        return len(payload)


def hostile_part() -> None:
    with memscope.track_scope(HOSTILE):
        Evil = type(HOSTILE, (), {})
        evil_obj = [Evil() for _ in range(100)]
        memscope.track_var(evil_obj)
        single = Evil()
        memscope.track_var(single)


load_rows(300)
numeric()
threads = [threading.Thread(target=worker, args=(k,), name=f"worker-{k}") for k in (1, 2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
asyncio.run(fetch())
if hostile:
    hostile_part()

tracker = memscope.get_global_tracker()
tracker.record_leaks()
an = Analysis().feed_all(tracker.events())
meta = {
    "name": "demo",
    "mode": "full",
    "python": sys.version.split()[0],
    "pids": [str(__import__("os").getpid())],
    "counters": tracker.overhead(),
    "sampled": "every binding",
    "start_ns": memscope._hooks.start_ns(),  # the run's start: every report's clock
}
from memscope.reporters import _charts, html, svg  # noqa: E402

name = "demo" if not hostile else HOSTILE.replace("/", "_")
html.write(an, out_dir, "demo", meta)
svg.write_memory_analysis(an, out_dir / "demo_memory.svg", meta)
svg.write_lifecycle_timeline(an, out_dir / "demo_timeline.svg", meta)
(out_dir / "model.json").write_text(json.dumps(_charts.build_model(an, meta)))
