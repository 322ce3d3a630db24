"""memscope's own threads (the monitor, the re-arm thread) never take the program's signals.

A signal sent to a process (``kill PID``, Ctrl-C) is taken by one of its threads that
does not block it. Python runs its handlers in the main thread only, but a blocking call
there (``time.sleep(60)``, ``input()``) is interrupted only when the signal is taken by
the main thread: taken by another thread, the handler waits until the main thread's call
ends. A plain Python program has only its main thread; under memscope, a SIGTERM taken
by the monitor thread left ``time.sleep(60)`` running to its end (a CI hang). So every
thread of memscope's starts with the asynchronous signals blocked (it inherits the mask
of the thread that starts it, blocked here for the moment of the start): they go where
they would go without memscope. Faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP,
SIGSYS), which the kernel sends to the thread that caused them, are left alone.
"""

from __future__ import annotations

import _signal
import _thread

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_FAULTS = ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS", "SIGKILL", "SIGSTOP")


def _async_signals() -> set[int]:
    try:
        sigs = set(_signal.valid_signals())
    except (AttributeError, OSError, ValueError):
        return set()
    for name in _FAULTS:
        sigs.discard(getattr(_signal, name, -1))
    return sigs


BLOCKED = _async_signals() if hasattr(_signal, "pthread_sigmask") else set()


def start(fn: Callable[..., Any], args: tuple[Any, ...]) -> int:
    """``_thread.start_new_thread(fn, args)`` with the asynchronous signals blocked in
    the new thread from its first instruction."""
    if not BLOCKED:
        return _thread.start_new_thread(fn, args)
    old = _signal.pthread_sigmask(_signal.SIG_BLOCK, BLOCKED)
    try:
        return _thread.start_new_thread(fn, args)
    finally:  # a signal that came meanwhile is pending: delivered as this returns
        _signal.pthread_sigmask(_signal.SIG_SETMASK, old)
