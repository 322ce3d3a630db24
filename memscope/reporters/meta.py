"""The ``meta`` dict every reporter gets: what run the data came from.

Keys: ``name``, ``mode`` (fast/full), ``export_mode`` (full/user), ``python``, ``pids``,
``processes``, ``start_time`` (ISO 8601, UTC), ``start_ns`` (the runtime's
``perf_counter_ns`` origin: report times are ns since this), ``version`` (memscope),
``format_version``, ``complete``, ``recovery``, ``captures``, ``dropped``, ``sampled``
(binds not recorded by sampling), ``counters`` (records, user_records, dropped,
sampled_skipped, errors ...).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
from collections.abc import Sequence
from typing import Any


def _iso(wall_ns: int) -> str:
    if wall_ns <= 0:
        return ""
    try:
        return _dt.datetime.fromtimestamp(wall_ns / 1e9, tz=_dt.timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        return ""


def _version() -> str:
    try:
        from memscope import __version__

        return __version__
    except Exception:
        return ""


def capture_name(path: str | os.PathLike[str]) -> str:
    """``x.1234.memscope`` -> ``x`` (the tracker name; the pid is dropped)."""
    stem = os.path.basename(os.fspath(path))
    if stem.endswith(".memscope"):
        stem = stem[: -len(".memscope")]
    head, dot, tail = stem.rpartition(".")
    if dot and tail.isdigit() and head:
        return head
    return stem or "memscope"


def meta_from_capture(capture: Any | Sequence[Any]) -> dict[str, Any]:
    """Meta of one capture (a ``CaptureFile``) or of several merged."""
    caps: list[Any] = list(capture) if isinstance(capture, (list, tuple)) else [capture]
    if not caps:
        return {"name": "memscope", "mode": "?", "pids": [], "counters": {}}
    first = caps[0]
    h = first.header
    procs = [p.as_dict() for c in caps for p in c.processes]
    if not procs:
        procs = [
            {"pid": c.header.pid, "ppid": 0, "argv0": "", "start_ns": c.header.start_ns}
            for c in caps
        ]
    counters = {
        "records": sum(c.header.records or c.footer.get("records", 0) for c in caps),
        "user_records": sum(c.header.user_records for c in caps),
        "dropped": sum(c.header.dropped for c in caps),
        "chunks": sum(len(c.chunks) for c in caps),
        "capture_bytes": sum(c.size for c in caps),
    }
    modes = {c.header.runtime for c in caps}
    starts = [c.header.start_ns for c in caps if c.header.start_ns]
    return {
        "name": capture_name(first.path),
        "mode": modes.pop() if len(modes) == 1 else "mixed",
        "export_mode": h.mode,
        "python": ".".join(map(str, h.python)),
        "pids": [p["pid"] for p in procs],
        "processes": procs,
        "start_time": _iso(min(c.header.wall_ns for c in caps)),
        "start_ns": min(starts) if starts else 0,
        "version": _version(),
        "format_version": f"{h.major}.{h.minor}",
        "complete": all(c.header.complete for c in caps),
        "recovery": [c.recovery.as_dict() for c in caps],
        "captures": [str(c.path) for c in caps],
        "dropped": counters["dropped"],
        "sampled": 0,
        "counters": counters,
    }


def meta_from_tracker(tracker: Any) -> dict[str, Any]:
    """Meta of the live run of ``tracker`` (this process), from its public API only."""
    counters = dict(tracker.overhead())
    capture = tracker.capture_info()
    wall = capture[1] if capture is not None else 0
    start_ns = tracker.start_ns
    cfg = getattr(tracker, "config", None)
    pid = os.getpid()
    return {
        "name": tracker.name,
        "mode": getattr(cfg, "mode", "?"),
        "export_mode": "full",
        "python": platform.python_version(),
        "pids": [pid],
        "processes": [
            {"pid": pid, "ppid": os.getppid(), "argv0": "", "start_ns": start_ns}
        ],
        "start_time": _iso(wall),
        "start_ns": start_ns,
        "version": _version(),
        "format_version": "",
        "complete": False,
        "recovery": [],
        "captures": [capture[0]] if capture is not None else [],
        "dropped": int(counters.get("dropped", 0)),
        "sampled": int(counters.get("sampled_skipped", 0)),
        "counters": counters,
    }


def leak_check_state(meta: dict[str, Any]) -> str:
    """Whether the leak check ran: only full mode looks for leaks (its weak references
    and death watch prove an object is the one a name saw), so elsewhere "no leak" would
    say nothing."""
    mode = meta.get("mode", "?")
    if mode == "full":
        return "on"
    if mode == "mixed":
        return "on in full-mode processes only"
    return "off: use --mode full"
