"""The global tracker: settings of the run, the sink events go to, and the query API.

Queries (``stats()``, ``active_allocations()`` ...) replay the recorded events through
``memscope.analysis`` each time they are asked, so the hot path keeps no per-binding
state of its own. Exporters hand the same replay to the reporters.
"""

from __future__ import annotations

import _thread
import atexit
import os
import sys

from memscope import _hooks, _monitor, _own
from memscope.config import Config
from memscope.events import LEAK, Event, expand_tables

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:  # the replay engine is imported when a report is asked for
    from collections.abc import Iterator
    from pathlib import Path
    from typing import Any

    from memscope.analysis import Analysis


def _default_name() -> str:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if isinstance(path, str) and path:
        return os.path.splitext(os.path.basename(path))[0] or "memscope"
    return "memscope"


class MemoryTracker:
    """The process's tracker (``memscope.get_global_tracker()``)."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config.from_env()
        self._lock = _thread.RLock()
        self._closed = False  # recording finished (end census, leak check)
        self._sink_closed = False
        self._leaks_done = False

    # ---- settings ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name or _default_name()

    @property
    def output_dir(self) -> Path:
        from pathlib import Path  # not at import: memscope run's start-up

        return Path(self.output_folder)

    @property
    def output_folder(self) -> str:
        """``output_dir`` as a str (what the capture sink and ``memscope run`` use)."""
        return os.path.join(self.config.output_dir, self.name)

    def apply(self, config: Config) -> None:
        """Switch to new settings: mode and buffering at once, the sink if asked."""
        with self._lock:
            self.config = config
            _hooks.configure(
                full=config.mode == "full",
                flush_at=config.flush_events,
                deep_objects=config.deep_budget_objects,
                deep_ns=config.deep_budget_ns,
            )
            _hooks.set_sampling(config.sampling)
            _monitor._enabled[0] = config.census
            _monitor.flush_every[0] = int(config.flush_seconds * 1e9)

    # ---- reading back -----------------------------------------------------------

    def events(self) -> Iterator[Event]:
        """Every event recorded so far, in order (flushes first; MODULE rows expanded)."""
        _hooks.flush()
        sink = _hooks.get_sink()
        it = getattr(sink, "iter_events", None)
        yield from expand_tables(it() if it is not None else getattr(sink, "events", ()))
        yield from _hooks.pending()

    def analysis(self, *, keep_history: bool = True) -> Analysis:
        from memscope.analysis import Analysis

        return Analysis(keep_history=keep_history).feed_all(self.events())

    def stats(self) -> dict[str, Any]:
        """Totals, active and peak counts and bytes; by type, scope, thread and task."""
        st = self.analysis(keep_history=False).stats()
        st["tracker"] = self.overhead()
        return st

    def active_allocations(self) -> list[dict[str, Any]]:
        """Bindings live now: name, scope, file:line, type, sizes, aliases ..."""
        return [b.as_dict() for b in self.analysis(keep_history=False).active()]

    def allocation_history(self) -> list[dict[str, Any]]:
        """Every binding recorded, ended or live, in bind order."""
        return [b.as_dict() for b in self.analysis().all_bindings()]

    def _find_leaks(self) -> tuple[Any, list[Any]]:
        from memscope import census
        from memscope.leaks import LeakReplay, find_leaks

        # the replay the check needs (leaks.LeakReplay), kept for the objects it could
        # prove to be the ones bound: weak references and the death watch's addresses,
        # alive now (events() flushes first: deaths the watch saw become FINAL rows)
        targets: set[int] | None = set(_hooks._watched)
        dw = _hooks._dw
        if dw is not None:
            if hasattr(dw, "watched"):
                targets.update(dw.watched())  # type: ignore[union-attr]
            else:  # (an extension built before watched(): every object)
                targets = None
        # (the sink's own rows, MODULE rows as they are: the replay expands them)
        _hooks.flush()
        sink = _hooks.get_sink()
        it = getattr(sink, "iter_events", None)
        an = LeakReplay(targets).feed_all(it() if it is not None else getattr(sink, "events", ()))
        an.feed_all(_hooks.pending())
        # no census at the same time: the references its walk holds would read as
        # holders, and make retained sizes smaller than they are
        with census._one_at_a_time:
            found = find_leaks(an, _hooks._watched, deathwatch=_hooks._dw,
                               import_time=_hooks._import_time,
                               preexisting=_hooks._preexisting,
                               polls=_hooks._polls,
                               on_incomplete=lambda msg: _hooks._error("leaks", RuntimeError(msg)))
        return an, found

    def leaks(self) -> list[dict[str, Any]]:
        """Objects alive after their scope ended, with the holders found (see leaks.py)."""
        return [lk.as_dict() for lk in self._find_leaks()[1]]

    def overhead(self) -> dict[str, int]:
        c = _hooks.counters()
        sink = _hooks.get_sink()
        c["dropped"] = int(getattr(sink, "dropped", 0))
        return c

    def capture_info(self) -> tuple[str, int] | None:
        """This run's capture file and the wall clock (ns) its header recorded at the
        start; None when the run streams to no capture."""
        writer = getattr(_hooks.get_sink(), "writer", None)
        if writer is None:
            return None
        return str(writer.path), int(writer.header.wall_ns)

    def process_event(self) -> Event:
        """This process's PROC row (pid, parent, argv[0], start), as a capture opens."""
        return _hooks.proc_event()

    @property
    def start_ns(self) -> int:
        """The runtime clock's reading when tracking started (every event's time counts
        from the same clock)."""
        return _hooks.start_ns()

    # ---- exports (reporters live in memscope.reporters) -----------------------------

    def _report(self, fmt: str, target: str | os.PathLike[str] | None, **options: Any) -> Path:
        from memscope import reporters

        return reporters.export(self, fmt, target, **options)

    def export_to_json(self, name: str | None = None) -> Path:
        """The JSON family into ``<output_dir>/<name>/``; returns that folder."""
        return self._report("json", name)

    def export_to_binary(self, name: str | None = None, mode: str = "user") -> Path:
        """A ``.memscope`` capture of everything recorded so far."""
        return self._report("binary", name, mode=mode)

    def export_to_html(self, path: str | os.PathLike[str] | None = None) -> Path:
        return self._report("html", path)

    def export_memory_analysis(self, path: str | os.PathLike[str] | None = None) -> Path:
        """SVG: the process's memory and censuses, bind-time sizes over time, top
        variables, types and scopes."""
        return self._report("svg", path)

    def export_lifecycle_timeline(self, path: str | os.PathLike[str] | None = None) -> Path:
        """SVG: a Gantt of binding and object lifetimes per scope."""
        return self._report("timeline", path)

    # ---- end of run -------------------------------------------------------------

    def record_leaks(self) -> int:
        """Look for leaks now and record them as LEAK events (once per run)."""
        if self._leaks_done:
            return 0
        self._leaks_done = True
        an, found = self._find_leaks()
        tidx = {name: i for i, name in an.types.items()}
        t = _hooks._perf()
        for lk in found:
            _hooks._buf.append((LEAK, t, lk.oid, tidx.get(lk.type, 0), lk.size, lk.holder_rows()))
        return len(found)

    def close(self, *, interrupted: bool = False, timeout: float = -1) -> bool:
        """Finish the run: an end census, the leak check (full mode), flush, close the
        sink. Idempotent; returns whether the capture is closed.

        ``interrupted``: a signal stopped the program (this may run in its handler, at
        any point of the main thread, memscope's own code included): no census and no
        leak check (they walk the heap and replay the capture: seconds, and locks the
        interrupted code may hold), and no lock is waited for longer than ``timeout``
        seconds (-1: no limit); what cannot be had is skipped, and the capture is left
        as a killed process leaves it, readable up to its last chunk."""
        if not self._lock.acquire(timeout=timeout):
            return False
        try:
            if not self._closed:
                self._closed = True
                self._finish_recording(interrupted)
            if self._sink_closed:
                return True
            try:
                # interrupted: the process ends after this (SIGTERM), or the frames of
                # a flush a KeyboardInterrupt cut short are gone: none resumes
                _hooks.flush(timeout, take_over=interrupted)
                sink = _hooks.get_sink()
                close_within = getattr(sink, "close_within", None)
                if close_within is not None:  # the capture sink
                    self._sink_closed = bool(close_within(timeout))
                else:
                    sink.close()
                    self._sink_closed = True
            except Exception as exc:
                _hooks._error("close", exc)
            return self._sink_closed
        finally:
            self._lock.release()

    def _finish_recording(self, interrupted: bool) -> None:
        try:
            if self.config.census and not interrupted:
                _monitor.census("end")
            else:
                _monitor.sample(force=True)
            _monitor.stop()
        except Exception as exc:
            _hooks._error("census", exc)
        try:
            if self.config.mode == "full" and self.config.leak_check and not interrupted:
                self.record_leaks()
        except Exception as exc:
            _hooks._error("leaks", exc)


_tracker: MemoryTracker | None = None
_tracker_lock = _thread.allocate_lock()

SIGNAL_WAIT = 0.5
"""Seconds a stop by a signal waits at most for each lock it needs."""


def close_on_signal() -> bool:
    """Close the capture from a signal's handler (SIGTERM, Ctrl-C's stop), which may run
    anywhere in the main thread, memscope's own code included (a census holding its
    lock, a flush): as an interrupted run, with no census, no leak check and no lock
    waited for longer than ``SIGNAL_WAIT``. Returns whether the capture is closed."""
    return get_global_tracker().close(interrupted=True, timeout=SIGNAL_WAIT)


def get_global_tracker() -> MemoryTracker:
    """The process's tracker, made from ``MEMSCOPE_*`` settings on first use."""
    global _tracker
    if _tracker is None:
        with _tracker_lock:
            if _tracker is None:
                t = MemoryTracker()
                t.apply(t.config)
                _tracker = t
    return _tracker


def init(
    mode: str | None = None,
    output_dir: str | None = None,
    name: str | None = None,
    *,
    config: Config | None = None,
    **settings: Any,
) -> MemoryTracker:
    """Start (or re-configure) tracking.

    Settings not passed keep their current value: ``MEMSCOPE_*`` variables at first,
    or what ``memscope run`` set when the program runs under it.
    """
    _own.begin()  # starting the tracker: memscope's own memory
    try:
        base = config or get_global_tracker().config
        cfg = base.with_(mode=mode, output_dir=output_dir, name=name, **settings)
        tracker = get_global_tracker()
        tracker.apply(cfg)
        if cfg.capture:
            _open_capture(tracker)
        _monitor.start()
        _register_exit(tracker)
        return tracker
    finally:
        _own.end()


def snapshot() -> dict[str, Any]:
    """Take a census now: what each named variable of instrumented code retains.

    Returns ``{"t", "process_rss_bytes", "process_rss_peak_bytes", "named_bytes",
    "shared_bytes", "variables": [{"key", "var", "scope", "type", "shallow_bytes",
    "retained_bytes", "shared_bytes"}, ...]}`` (largest first; variables retaining
    less than 1 KiB are counted in ``named_bytes`` but not listed). The census is also
    in the capture, so the reports show it."""
    from memscope.analysis import Analysis

    cid = _monitor.census("snapshot")
    an = Analysis(keep_history=False).feed_all(get_global_tracker().events())
    for c in reversed(an.censuses):
        if c.cid == cid:
            return c.as_dict()
    return {}


def _open_capture(tracker: MemoryTracker) -> None:
    """Stream to a capture file when the capture writer is available: a file named with
    this process's pid. Its first batch starts with the process record and every table
    row (the runtime re-sends them to a new sink, or ``preamble`` gives them), then the
    events the in-memory sink held from before the capture opened; a second ``init``
    with the same destination keeps the open capture."""
    try:
        from memscope.capture.writer import CaptureSink, capture_filename
    except ImportError:
        return
    old = _hooks.get_sink()
    if isinstance(old, CaptureSink) and not old.writer.closed:
        if old.writer.filename == capture_filename(tracker.output_folder, tracker.name):
            return
        old.close()
        old = None
    sink = CaptureSink(
        tracker.output_folder,
        tracker.name,
        runtime_mode=getattr(tracker.config, "mode", "unknown"),
        start_ns=_hooks.start_ns(),
        run_id=getattr(tracker.config, "run_id", ""),
        preamble=lambda: [_hooks.proc_event(), *_hooks.tables()],
    )
    sink.drain = old if old is not None else _NoEvents()
    _hooks.set_sink(sink)


class _NoEvents:
    """An earlier sink that held nothing (the capture is the run's first sink)."""

    events: list[Any] = []


_exit_registered = False


def _register_exit(tracker: MemoryTracker) -> None:
    global _exit_registered
    if not _exit_registered:
        _exit_registered = True
        atexit.register(lambda: get_global_tracker().close())
