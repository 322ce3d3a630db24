"""The ``.memscope`` capture file: the runtime streams events into it, reporters read it.

``CaptureSink`` is the runtime's sink (``memscope.tracker`` opens one for a run and
passes in what it needs: storage imports nothing of collection); ``read_capture(path)``
opens a capture for reading. Format: ``docs/capture-format.md``.
"""

from __future__ import annotations

from memscope.capture.format import CaptureError, Header
from memscope.capture.writer import CaptureSink, CaptureWriter, write_capture

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
    "read_capture",
    "write_capture",
]
