"""One pass over the events of one or more captures (or a live tracker) into an
``Analysis``, with listeners for reporters that stream (JSON).

Several processes (several captures, or a merged capture's sections) are replayed as
one stream, interleaved by time. Their numbering (sites, scopes, types, tasks, scope
instances, object ids) is per process, so every process after the first gets its
numbers shifted: ids by ``section << 40``, object ids by ``section << 52`` (a forked
child reuses its parent's addresses; the shift keeps their objects apart).
"""

from __future__ import annotations

import gc
import heapq
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from memscope.analysis import Analysis, Binding
from memscope.capture import CaptureFile, read_capture
from memscope.events import (
    BIND,
    CENSUS,
    CVAR,
    ENTER,
    EXIT,
    FINAL,
    LEAK,
    MEM,
    PROC,
    SCOPE,
    SITE,
    TASK,
    TYPE,
    UNBIND,
    Event,
)
from memscope.reporters.meta import meta_from_capture, meta_from_tracker

SAMPLED = 14
ID_SHIFT = 40
OID_SHIFT = 52


@dataclass
class Run:
    """What one pass produced: the analysis plus the extras reporters need."""

    analysis: Analysis
    meta: dict[str, Any]
    t0: int
    kinds: dict[int, int] = field(default_factory=dict)
    sampled: dict[int, tuple[int, int]] = field(default_factory=dict)  # site -> every, skipped
    seconds: float = 0.0


def _remap(ev: Event, d: int, od: int) -> Event:
    k = ev[0]
    if k == BIND:
        return (k, ev[1], ev[2] + d, ev[3] + d, ev[4] + od, ev[5] + d, *ev[6:])
    if k == ENTER:
        task = ev[5] + d if ev[5] else 0
        return (k, ev[1], ev[2] + d, ev[3] + d, ev[4], task, *ev[6:])
    if k == EXIT:
        return (k, ev[1], ev[2] + d, *ev[3:])
    if k == UNBIND:
        return (k, ev[1], ev[2] + d, ev[3] + d, *ev[4:])
    if k == FINAL:
        return (k, ev[1], ev[2] + od, *ev[3:])
    if k == SITE:
        return (k, ev[1] + d, ev[2] + d, *ev[3:])
    if k in (SCOPE, TYPE, TASK):
        return (k, ev[1] + d, *ev[2:])
    if k == LEAK:
        return (k, ev[1], ev[2] + od, ev[3] + d, *ev[4:])
    if k == SAMPLED:
        return (k, ev[1], ev[2] + d, *ev[3:])
    if k == CVAR:  # census ids, scopes, tokens, types and objects are per process
        return (k, ev[1] + d, ev[2] + d, ev[3] + d if ev[3] else 0, ev[4], ev[5] + d,
                *ev[6:9], ev[9] + od, *ev[10:])
    if k == CENSUS:
        return (k, ev[1], ev[2] + d, *ev[3:])
    return ev


_TIMED = frozenset((ENTER, EXIT, BIND, UNBIND, FINAL, LEAK, 13, SAMPLED, MEM, CENSUS))


def _keyed(events: Iterable[Event], sec: int, shift: bool, start: int,
           dt: int = 0) -> Iterator[tuple]:
    """``dt``: added to every time of the section (its clock put on the first's)."""
    d = sec << ID_SHIFT if shift else 0
    od = sec << OID_SHIFT if shift else 0
    last = start + dt
    for ev in events:
        try:
            k = ev[0]
            if k in _TIMED and type(ev[1]) is int and ev[1] >= 0:
                if dt:
                    ev = (k, ev[1] + dt, *ev[2:])
                last = ev[1]
            elif dt and k == PROC and type(ev[4]) is int and ev[4] > 0:
                ev = (*ev[:4], ev[4] + dt, *ev[5:])
            if d:
                ev = _remap(ev, d, od)
        except (IndexError, TypeError):
            pass
        yield last, sec, ev


UNRELATED_CLOCKS_NS = 600 * 10**9
"""Two processes whose runtime clocks (perf_counter: time since the machine's boot)
disagree with their wall clocks by more than this ran on another boot or machine."""


def clock_shifts(caps: Sequence[CaptureFile]) -> list[int]:
    """Per section of ``_sections(caps)``: what to add to its times to put them on the
    first section's clock (0 for every process of the same boot). The runtime's clock
    counts from the boot, so captures of another boot or machine given together
    (issue 17: a summary said 48 years) are aligned by the wall clock each recorded at
    its start."""
    out = []
    ref = None
    for c, sec, _pid, start in _sections(caps):
        wall = c.header.wall_ns
        if sec is not None and sec >= 0:
            wall = int(c.processes[sec].extra.get("wall_ns") or wall)
        if wall <= 0 or start <= 0:
            out.append(0)
            continue
        off = wall - start  # the wall clock at the runtime clock's zero
        if ref is None:
            ref = off
        out.append(off - ref if abs(off - ref) > UNRELATED_CLOCKS_NS else 0)
    return out


def _sections(caps: Sequence[CaptureFile]) -> list[tuple[CaptureFile, int | None, int, int]]:
    """(capture, section or None for all, pid, start_ns) per process."""
    out: list[tuple[CaptureFile, int | None, int, int]] = []
    for c in caps:
        has_pre = not c.chunks or c.chunks[0].kind != 5
        if len(c.processes) <= 1 and not (has_pre and c.processes):
            p = c.processes[0] if c.processes else None
            out.append((c, None, p.pid if p else c.header.pid, c.header.start_ns))
            continue
        if has_pre:
            out.append((c, -1, c.header.pid, c.header.start_ns))
        for i, p in enumerate(c.processes):
            out.append((c, i, p.pid, p.start_ns))
    return out


def capture_events(caps: Sequence[CaptureFile]) -> Iterator[tuple[int, int, Event]]:
    """(pid, section, event) of every process in the captures, interleaved by time."""
    secs = _sections(caps)
    if len(secs) == 1:
        c, _, pid, _ = secs[0]
        for ev in c.events(check=True):
            yield pid, 0, ev
        return
    pids = [s[2] for s in secs]
    shifts = clock_shifts(caps)
    streams = [
        _keyed(c.events(None if sec is None else {sec}, check=True), i, True, start,
               shifts[i])
        for i, (c, sec, _pid, start) in enumerate(secs)
    ]
    for _t, i, ev in heapq.merge(*streams, key=itemgetter(0)):
        yield pids[i], i, ev


def open_captures(paths: Sequence[str | os.PathLike[str]]) -> list[CaptureFile]:
    return [read_capture(p) for p in paths]


class Prepared:
    """A source opened and its meta known, ready for one pass (``run``)."""

    def __init__(self, source: Any, meta: dict[str, Any] | None = None) -> None:
        self.tracker = None
        self.caps: list[CaptureFile] = []
        if hasattr(source, "events") and hasattr(source, "config"):  # a live tracker
            self.tracker = source
            self.meta = meta or meta_from_tracker(source)
        else:
            items = [source] if isinstance(source, (str, os.PathLike, CaptureFile)) else source
            self.caps = [c if isinstance(c, CaptureFile) else read_capture(c) for c in items]
            self.meta = meta or meta_from_capture(self.caps)
            shifts = clock_shifts(self.caps)
            if any(shifts) and meta is None:  # the run's start on the first's clock
                starts = [st + dt for (_c, _s, _p, st), dt in zip(_sections(self.caps), shifts,
                                                                   strict=True) if st > 0]
                self.meta["start_ns"] = min(starts) if starts else 0

    def stream(self) -> Iterable[tuple[int, int, Event]]:
        if self.tracker is not None:
            return ((0, 0, ev) for ev in self.tracker.events())
        return capture_events(self.caps)

    def _one_process(self) -> tuple[int, Iterable[Event]] | None:
        """(pid, events) when the source is one process's stream (``stream`` would yield
        ``(pid, 0, event)`` for each), else None."""
        if self.tracker is not None:
            return 0, self.tracker.events()
        secs = _sections(self.caps)
        if len(secs) != 1:
            return None
        c, _, pid, _ = secs[0]
        return pid, c.events(check=True)

    def run(
        self,
        *,
        keep_history: bool = True,
        on_binding_end: Callable[[Binding], None] | None = None,
        attach: Callable[[Analysis], None] | None = None,
        progress: Any = None,
    ) -> Run:
        import time

        t_start = time.perf_counter()
        an = Analysis(keep_history=keep_history, on_binding_end=on_binding_end)
        if attach is not None:
            attach(an)
        kinds: dict[int, int] = {}
        sampled: dict[int, tuple[int, int]] = {}
        run_meta = self.meta
        t0 = int(run_meta.get("start_ns") or 0)
        cur_pid = -1
        total = sum(c.header.records or c.footer.get("records", 0) for c in self.caps)
        if progress is not None:
            progress.start_events(total)
        n = 0
        one = self._one_process()
        if one is not None:
            pid, events = one
        else:  # several processes: the analysis told of each event's process first
            pid, events = 0, _told_process(self.stream(), an)
        # the replay makes no reference cycles, and the bindings it keeps alive would be
        # walked by the cyclic collector again and again (4-6% of a report's time): it
        # pauses while a capture is replayed (not for a live tracker: that is the
        # program's process)
        paused = self.tracker is None and gc.isenabled()
        if paused:
            gc.disable()
        # ``fast``: a BIND row needs nothing but feeding (its kind is in ``kinds``, counted
        # apart in ``binds``; the analysis knows the process) until a PROC row comes
        fast = False
        binds = 0
        try:
            for ev in events:
                n += 1
                k = ev[0]
                if k == BIND and fast:
                    binds += 1
                    an.feed_bind(ev)  # (a native call when compiled)
                    if not n & 0xFFFF and progress is not None:
                        progress.events(n)
                    continue
                try:
                    kinds[k] += 1
                except KeyError:
                    kinds[k] = 1
                if not n & 0xFFFF and progress is not None:
                    progress.events(n)
                if k == PROC:
                    cur_pid = ev[1]
                    fast = False
                elif pid != cur_pid and pid:
                    an.set_process(pid)
                    cur_pid = pid
                if k == SAMPLED:
                    try:
                        sampled[ev[2]] = (int(ev[3]), int(ev[4]))
                    except (IndexError, TypeError, ValueError):
                        pass
                if k == BIND:
                    an.feed_bind(ev)
                    fast = True
                else:
                    an.feed(ev)
        finally:
            if paused:
                gc.enable()
        if binds:
            kinds[BIND] += binds
        an.finish()
        if progress is not None:
            progress.end_events(n)
        from memscope.reporters._memory import origin

        t0 = origin(an, {"start_ns": t0})  # the run's start: every report's clock
        skipped = sum(s for _e, s in sampled.values())
        run_meta["sampled"] = max(int(run_meta.get("sampled") or 0), skipped)
        # rows of the captures that could not be used (memscope.capture.rows)
        run_meta["skipped_rows"] = sum(sum(c.skipped.values()) for c in self.caps)
        return Run(an, run_meta, t0, kinds, sampled, time.perf_counter() - t_start)


def _told_process(stream: Iterable[tuple[int, int, Event]], an: Analysis) -> Iterator[Event]:
    """The events of ``stream``; before each, ``an`` is told the process it comes from
    when that changed (a PROC row says so itself)."""
    cur_pid = -1
    for pid, _sec, ev in stream:
        if ev[0] == PROC:
            cur_pid = ev[1]
        elif pid != cur_pid and pid:
            an.set_process(pid)
            cur_pid = pid
        yield ev


def prepare(source: Any, meta: dict[str, Any] | None = None) -> Prepared:
    return Prepared(source, meta)


def analyze(
    source: Any,
    *,
    keep_history: bool = True,
    on_binding_end: Callable[[Binding], None] | None = None,
    meta: dict[str, Any] | None = None,
) -> Run:
    """Replay ``source`` (capture paths, ``CaptureFile`` objects, or a tracker)."""
    return Prepared(source, meta).run(keep_history=keep_history, on_binding_end=on_binding_end)
