"""Handing events to the sink: the flush (one thread at a time, never re-entered, never
losing a batch a signal cut short), the sink itself, and the settings ``memscope.init``
gives the hot path (``configure``). The buffer the events wait in is the hot path's
(``memscope._hooks._buf``); this module owns the sink, the flush lock and the batch in
flight. ``memscope._fork`` sets them anew in a forked child.
"""

from __future__ import annotations

import _thread
import sys
import time

from memscope import _hooks as H  # read at call time: _hooks imports this module last
from memscope.events import expand_tables

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    from typing import Any

    from memscope.events import Event

_perf = time.perf_counter_ns
_getframe = sys._getframe
_sink: Any = H.MemorySink()  # until memscope.init gives the capture's
_flush_lock: Any = _thread.RLock()  # (an RLock only to know its owner: never re-entered)


def _flush() -> None:
    """Hand buffered events to the sink; one thread at a time, never re-entered.

    The buffer is never swapped: other threads only append to it, so taking its first
    ``n`` events (one call, which puts them in ``_inflight`` before they leave the
    buffer) loses nothing, whatever thread switch happens in between.
    """
    if _take_flush_lock(0):
        _flushing(_perf())


def _take_flush_lock(timeout: float) -> bool | None:
    """Take the flush lock (an RLock, so that this thread can tell it holds it): True
    taken; False if another thread holds it past ``timeout`` (0: do not wait; -1: no
    limit); None if this thread's own flush is under way, below the caller on its stack
    (a signal handler interrupted it). A lock this thread holds with no flush on its
    stack was left by a flush an exception cut short before it could let go: taken."""
    if _flush_lock._is_owned():
        if _flush_under_way():
            return None
        while _flush_lock._is_owned():
            _flush_lock.release()
    if timeout == 0:
        return _flush_lock.acquire(False)
    return _flush_lock.acquire(timeout=timeout)


def _flush_under_way() -> bool:
    codes = (_flush.__code__, _flushing.__code__, flush.__code__, flush_if_older.__code__)
    try:
        f: Any = _getframe(3)  # the caller of the flush function that asks
    except ValueError:
        return False
    while f is not None:
        if f.f_code in codes:
            return True
        f = f.f_back
    return False


def _flushing(now: int, locked: bool = True) -> None:
    """The body of a flush, the lock taken (released here, if ``locked``).

    The batch stays in ``_inflight`` until the sink has it: a flush cut short by an
    exception from a signal (Ctrl-C), at any point, leaves it there, and the next
    flush offers it to the sink again first (``resume``: the capture sink writes it
    once whether or not it had begun to)."""
    try:
        _last_flush[0] = now
        if H._dw is not None:
            H.drain_deaths()
        held = _inflight[0]
        if held is not None:
            resume = getattr(_sink, "resume", None)
            (resume or _sink.write)(held)
            _inflight[0] = None
        buf = H._buf
        n = len(buf)
        if n:
            # held in _inflight before it leaves the buffer; as a C batch of words for a
            # sink that takes one (the capture's: it encodes int rows with no tuple)
            out = buf.take(n, _inflight, getattr(_sink, "accepts_batches", False))
            H._counters["flushes"] += 1
            H._counters["events_flushed"] += n
            _sink.write(out)
            _inflight[0] = None
    except Exception as exc:
        _inflight[0] = None  # the sink refused it: counted as an error, not offered again
        H._error("flush", exc)
    finally:
        if locked:
            _flush_lock.release()


_last_flush: list[int] = [H._start_ns]  # when the last flush began (perf_counter_ns)
_inflight: list[Any] = [None]  # the batch a flush is handing to the sink


def flush(timeout: float = -1, *, take_over: bool = False) -> bool:
    """Send every buffered event to the sink now; returns whether it could.

    Waits for a flush under way in another thread, at most ``timeout`` seconds (-1:
    as long as it takes). Never waits for this thread's own flush (a signal handler
    interrupted it): then it returns False, unless ``take_over``, for a caller that
    knows the interrupted flush never resumes (the process ends after it): it flushes
    without the lock (the capture sink finishes the interrupted write first)."""
    got = _take_flush_lock(timeout)
    if got is None and take_over:
        _flushing(_perf(), locked=False)
        return True
    if not got:
        return False
    _flushing(_perf())
    return True


def flush_if_older(ns: int) -> bool:
    """Flush if events wait and the last flush began ``ns`` or more ago (the monitor
    thread's timed flush: a SIGKILL loses at most that much). Never waits."""
    now = _perf()
    if not (H._buf or _inflight[0] is not None) or now - _last_flush[0] < ns:
        return False
    if not _take_flush_lock(0):
        return False
    _flushing(now)
    return True


def pending() -> list[Event]:
    """Events recorded but not yet flushed (a copy, MODULE rows expanded)."""
    return list(expand_tables(H._buf.snapshot()))


# ---- configuration, set by memscope.init -------------------------------------------


def configure(*, full: bool, flush_at: int, deep_objects: int, deep_ns: int) -> None:
    H._full = bool(full)  # read by the hot path's closures as globals of _hooks
    if H._full and H._dw is None:
        H._start_deathwatch()
    H._flush_at = max(1, int(flush_at))
    if H._hotpath is not None:
        H._hotpath.set_mode(H._full, H._flush_at)
    H._deep_budget[0] = deep_objects
    H._deep_budget[1] = deep_ns
    H._deep_time[:] = [0, _perf()]


def set_sink(sink: Any) -> Any:
    """Replace the sink (after flushing to the old one); returns the old sink."""
    global _sink
    flush()
    old = _sink
    with H._table_lock:  # the new sink needs the table rows emitted before it existed
        sink.write([H.proc_event(), *H._tables])
        _sink = sink
    return old


def get_sink() -> Any:
    return _sink
