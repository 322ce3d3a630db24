"""memscope's own resident memory: what its own work added to the process.

Measured, not guessed: resident memory is read (``/proc/self/statm``) before and after
each step that is memscope's alone (importing memscope, starting the tracker,
installing the import hook, instrumenting a module), and what a step added is counted.
Reports show the sum apart from the program's memory ("memscope itself"), so that
named + unnamed is the program's. What is not in it: memscope's buffers as they fill
and empty (events waiting for the capture writer, at most about a megabyte), and
memory a step took that the program later reuses (counted, though the program would
have needed it anyway): ``benchmarks/fidelity.py`` compares the sum with the
difference between a plain run and a tracked one.

Imports nothing but ``os``: it is the first module ``memscope`` loads.
"""

from __future__ import annotations

import os

try:
    _PAGE = os.sysconf("SC_PAGE_SIZE")
except (AttributeError, ValueError, OSError):
    _PAGE = 4096

_total = [0]


def resident() -> int:
    """Resident bytes of this process now; -1 where /proc is not there."""
    try:
        fd = os.open("/proc/self/statm", os.O_RDONLY)
        try:
            data = os.read(fd, 256)
        finally:
            os.close(fd)
        return int(data.split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return -1


def add_since(start: int) -> None:
    """Count what resident memory grew by since ``start`` (a ``resident()`` reading)."""
    if start >= 0:
        now = resident()
        if now > start:
            _total[0] += now - start


def total() -> int:
    """memscope's own resident bytes so far (the sum of its steps); 0 where unknown."""
    return _total[0]

