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
_open = [0, -1]  # steps under way (nested ones are part of the outermost), its start


def read_proc(path: str, size: int) -> bytes:
    """The first ``size`` bytes of a ``/proc`` file, read without Python's file objects
    (no buffer, nothing imported); raises OSError where it is not there."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def resident() -> int:
    """Resident bytes of this process now; -1 where /proc is not there."""
    try:
        return int(read_proc("/proc/self/statm", 256).split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return -1


def begin() -> None:
    """A step of memscope's own begins (``end`` counts it; a step inside another one is
    part of it, counted once)."""
    if _open[0] == 0:
        _open[1] = resident()
    _open[0] += 1


def end() -> None:
    """The step ends: what resident memory grew by since the outermost step began is
    memscope's."""
    if _open[0] <= 0:
        return
    _open[0] -= 1
    if _open[0] == 0 and _open[1] >= 0:
        now = resident()
        if now > _open[1]:
            _total[0] += now - _open[1]


def total() -> int:
    """memscope's own resident bytes so far (the sum of its steps); 0 where unknown."""
    return _total[0]

