"""Several captures (one per process) into one capture with a section per process."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from memscope.capture import format as F
from memscope.capture import read_capture
from memscope.capture.writer import CaptureWriter
from memscope.events import ERROR, PROC


def merge_captures(
    inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *, batch: int = 8192
) -> Path:
    """Copy every process section of ``inputs`` into ``out`` (streaming)."""
    caps = [read_capture(p) for p in inputs]
    if not caps:
        raise ValueError("nothing to merge")
    outp = Path(out)
    if any(outp.exists() and os.path.samefile(outp, c.path) for c in caps):
        raise ValueError(f"{outp} is one of the inputs")
    modes = {c.header.runtime_mode for c in caps}
    w = CaptureWriter(
        outp,
        runtime_mode=F.RUNTIME_MODES.get(modes.pop() if len(modes) == 1 else 0, "unknown"),
        start_ns=min(c.header.start_ns for c in caps),
        flags=F.FLAG_MERGED,
    )
    try:
        w.header.wall_ns = min(c.header.wall_ns for c in caps)
        for c in caps:
            buf: list = []
            first = True
            for ev in c.events():
                if first and ev[0] != PROC:
                    # a capture without a process record: make one so it gets a section
                    buf.append((PROC, c.header.pid, 0, c.path.name, c.header.start_ns))
                first = False
                buf.append(ev)
                if len(buf) >= batch:
                    w.write(buf)
                    buf = []
            if not c.header.complete:  # said in the process's own section
                buf.append((ERROR, c.header.start_ns, "capture",
                            f"{c.path.name}: {c.recovery.message}"))
            w.write(buf)
            w.dropped += c.header.dropped
    except BaseException:
        w.close()
        outp.unlink(missing_ok=True)
        raise
    # a capture that lacks the end of its process makes a merged one that lacks it too
    w.close(complete=all(c.header.complete for c in caps))
    return outp
