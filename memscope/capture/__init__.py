"""The ``.memscope`` capture file: the runtime streams events into it, reporters read it.

``open_sink(tracker)`` is called by ``memscope.init`` (see ``memscope.tracker``);
``read_capture(path)`` opens a capture for reading. Format: ``docs/capture-format.md``.
"""

from __future__ import annotations

from memscope.capture.format import CaptureError, Header
from memscope.capture.writer import CaptureSink, CaptureWriter, capture_filename, write_capture

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    from typing import Any

    from memscope.capture.reader import CaptureFile, ProcessInfo, Recovery, read_capture

_READER = ("CaptureFile", "ProcessInfo", "Recovery", "read_capture")


def __getattr__(name: str) -> Any:
    """The reader is imported on first use: a running program only writes."""
    if name in _READER:
        from memscope.capture import reader

        return getattr(reader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "CaptureError",
    "CaptureFile",
    "CaptureSink",
    "CaptureWriter",
    "Header",
    "ProcessInfo",
    "Recovery",
    "open_sink",
    "read_capture",
    "write_capture",
]


def open_sink(tracker: Any) -> CaptureSink:
    """The sink for ``tracker``'s run: a capture file named with this process's pid.

    The first batch it gets starts with the process record and every table row (the
    runtime re-sends them to a new sink), then the events the in-memory sink held from
    before the capture opened; a second ``init`` with the same destination keeps the
    open capture.
    """
    from memscope import _hooks

    old = _hooks.get_sink()
    folder = tracker.output_folder
    filename = capture_filename(folder, tracker.name)
    if isinstance(old, CaptureSink) and not old.writer.closed:
        if old.writer.filename == filename:
            return old
        old.close()
        old = None
    sink = CaptureSink(
        folder,
        tracker.name,
        runtime_mode=getattr(tracker.config, "mode", "unknown"),
        start_ns=_hooks.start_ns(),
        run_id=getattr(tracker.config, "run_id", ""),
    )
    sink.drain = old if old is not None else _NoEvents()
    return sink


class _NoEvents:
    events: list[Any] = []
