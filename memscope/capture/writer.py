"""Writing captures: the chunk encoder and the sink the runtime streams events into.

``CaptureWriter`` owns one file descriptor and writes whole chunks with ``os.write``
(no user-space buffer: a fork or a kill never duplicates or half-flushes a Python
buffer; a kill mid-write leaves at most one torn chunk at the end, which the reader
reports and skips). The header is written first and completed at ``close``.

``CaptureSink`` is what ``memscope.capture.open_sink`` hands to ``memscope._hooks``:
``write(events)``, ``after_fork(tables)``, ``iter_events()``, ``close()``, ``dropped``.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from itertools import compress
from operator import itemgetter, sub
from pathlib import Path
from typing import Any

from memscope.capture import format as F
from memscope.events import (
    BIND,
    ERROR,
    LEAK,
    PROC,
    SCOPE,
    SITE,
    TASK,
    THREAD,
    TYPE,
    UNBIND,
    Event,
)

TABLE_KINDS = frozenset((SCOPE, SITE, TYPE, THREAD, TASK))
# kinds whose field 1 is a perf_counter_ns time (delta-coded)
TIMED_KINDS = frozenset((6, 7, BIND, UNBIND, 10, LEAK, ERROR, 14))


def _non_user_prefixes() -> tuple[str, ...]:
    paths = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            paths.add(os.path.normcase(os.path.abspath(p)))
    paths.add(os.path.normcase(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    return tuple(sorted(paths))


_NON_USER = _non_user_prefixes()


def is_user_file(file: str) -> bool:
    """True for code that is neither the standard library, site-packages nor memscope."""
    if not file or file.startswith("<"):
        return True
    try:
        p = os.path.normcase(os.path.abspath(file))
    except Exception:
        return True
    return not any(p == pre or p.startswith(pre + os.sep) for pre in _NON_USER)


class Encoder:
    """Turns event batches into chunk bytes; owns the file's string intern table."""

    def __init__(self, *, compress_level: int = 1) -> None:
        self.strings: dict[str, int] = {}
        self.new_strings: list[str] = []
        self.level = compress_level
        self.user_scopes: set[int] = set()
        self.user_sites: set[int] = set()
        self.records = 0
        self.user_records = 0
        self.processes = 0
        self.chunks = 0

    # ---- strings and generic values -------------------------------------------------

    def intern(self, s: str) -> int:
        idx = self.strings.get(s)
        if idx is None:
            idx = self.strings[s] = len(self.strings)
            self.new_strings.append(s)
        return idx

    def put_generic(self, out: bytearray, v: Any, depth: int = 0, inline: bool = False) -> None:
        tp = type(v)
        if v is None:
            out.append(F.G_NONE)
        elif tp is bool:
            out.append(F.G_TRUE if v else F.G_FALSE)
        elif isinstance(v, int):
            out.append(F.G_INT)
            F.put_uvarint(out, F.zigzag(int(v)))
        elif isinstance(v, float):
            out.append(F.G_FLOAT)
            out += F.pack_double(v)
        elif isinstance(v, str):
            if inline:
                b = v.encode("utf-8", "surrogatepass")
                out.append(F.G_TEXT)
                F.put_uvarint(out, len(b))
                out += b
            else:
                out.append(F.G_STR)
                F.put_uvarint(out, self.intern(v))
        elif isinstance(v, (tuple, list)) and depth < F.MAX_DEPTH:
            out.append(F.G_TUPLE)
            F.put_uvarint(out, len(v))
            for item in v:
                self.put_generic(out, item, depth + 1, inline)
        elif isinstance(v, (bytes, bytearray)):
            out.append(F.G_BYTES)
            F.put_uvarint(out, len(v))
            out += v
        else:  # never a repr of a user object: only its type's name
            self.put_generic(out, f"<{type(v).__name__}>", depth, inline)

    # ---- chunks --------------------------------------------------------------------

    def chunk(self, kind: int, payload: bytes | bytearray) -> bytes:
        raw_len = len(payload)
        flags = 0
        data: bytes | bytearray = payload
        if self.level and raw_len > 64:
            z = zlib.compress(payload, self.level)
            if len(z) < raw_len:
                data, flags = z, F.CF_ZLIB
        head12 = F.CHUNK_STRUCT.pack(len(data), kind, flags, 0, raw_len, 0)[:12]
        crc = zlib.crc32(data, zlib.crc32(head12)) & 0xFFFFFFFF
        self.chunks += 1
        return head12 + crc.to_bytes(4, "little") + bytes(data)

    def strings_chunk(self) -> bytes:
        if not self.new_strings:
            return b""
        out = bytearray()
        F.put_uvarint(out, len(self.strings) - len(self.new_strings))
        F.put_uvarint(out, len(self.new_strings))
        for s in self.new_strings:
            b = s.encode("utf-8", "surrogatepass")
            F.put_uvarint(out, len(b))
            out += b
        self.new_strings = []
        return self.chunk(F.CHUNK_STRINGS, out)

    def proc_chunk(self, ev: Event, extra: dict[str, Any]) -> bytes:
        out = bytearray()
        self.put_generic(out, tuple(ev[1:]), inline=True)
        self.put_generic(out, tuple(sorted(extra.items())), inline=True)
        self.processes += 1
        return self.chunk(F.CHUNK_PROC, out)

    def footer_chunk(self, dropped: int) -> bytes:
        out = bytearray()
        vals = (self.records, self.user_records, dropped, self.processes, self.chunks + 1)
        for v in vals:
            F.put_uvarint(out, v)
        return self.chunk(F.CHUNK_FOOTER, out)

    def events_chunks(self, events: list[Event]) -> bytes:
        """Encode a batch (no PROC events) as [strings] [tables] [strings] [events]."""
        if not events:
            return b""
        n = 0
        for ev in events:  # leading table rows go to a TABLES chunk
            if ev[0] in TABLE_KINDS:
                n += 1
            else:
                break
        parts = []
        if n:
            parts.append(self._encode(events[:n], F.CHUNK_TABLES))
        if n < len(events):
            parts.append(self._encode(events[n:] if n else events, F.CHUNK_EVENTS))
        return b"".join(parts)

    def _encode(self, events: list[Event], kind: int) -> bytes:
        kinds = [ev[0] for ev in events]
        tags = bytes(kinds)  # ValueError/TypeError if a kind is not 0..255 (caller drops)
        out = bytearray()
        F.put_uvarint(out, len(events))
        out += tags
        present = sorted(set(tags))
        F.put_uvarint(out, len(present))
        for k in present:
            group = events if len(present) == 1 else list(compress(events, map(k.__eq__, kinds)))
            self._track_tables(k, group)
            out.append(k)
            F.put_uvarint(out, len(group))
            lens = set(map(len, group))
            if len(lens) == 1 and (ncols := lens.pop() - 1) >= 0:
                out.append(F.LAYOUT_COLUMNS)
                F.put_uvarint(out, ncols)
                cols = list(zip(*group, strict=True))[1:] if ncols else []
                for ci, col in enumerate(cols):
                    self._column(out, col, k in TIMED_KINDS and ci == 0)
                if k == BIND and ncols >= 2 and self.user_sites:
                    us = self.user_sites
                    self.user_records += sum(1 for s in cols[1] if s in us)
            else:
                out.append(F.LAYOUT_ROWS)
                rows = bytearray()
                for ev in group:
                    self.put_generic(rows, tuple(ev[1:]))
                F.put_uvarint(out, len(rows))
                out += rows
        self.records += len(events)
        body = self.chunk(kind, out)
        return self.strings_chunk() + body

    def _column(self, out: bytearray, col: tuple[Any, ...], timed: bool) -> None:
        types = set(map(type, col))
        if types == _INT:
            try:
                if timed:
                    data = F.pack_i64(map(sub, col, (0, *col[:-1])))
                    enc = F.COL_I64_DELTA
                else:
                    data = F.pack_i64(col)
                    enc = F.COL_I64
            except OverflowError:
                pass
            else:
                out.append(enc)
                F.put_uvarint(out, len(data))
                out += data
                return
        elif types == _STR:
            intern = self.intern
            data = F.pack_i64([intern(v) for v in col])
            out.append(F.COL_STR)
            F.put_uvarint(out, len(data))
            out += data
            return
        buf = bytearray()
        for v in col:
            self.put_generic(buf, v)
        out.append(F.COL_GENERIC)
        F.put_uvarint(out, len(buf))
        out += buf

    def _track_tables(self, k: int, group: list[Event]) -> None:
        """Remember which scopes and sites are user code (for the user-records count)."""
        try:
            if k == SCOPE:
                for ev in group:
                    if is_user_file(ev[2]):
                        self.user_scopes.add(ev[1])
                    else:
                        self.user_scopes.discard(ev[1])
            elif k == SITE:
                for ev in group:
                    if ev[2] in self.user_scopes:
                        self.user_sites.add(ev[1])
                    else:
                        self.user_sites.discard(ev[1])
        except Exception:
            pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class CaptureWriter:
    """One capture file: header, then chunks appended with single ``os.write`` calls."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        export_mode: str = "full",
        runtime_mode: str = "unknown",
        start_ns: int = 0,
        compress_level: int = 1,
        flags: int = 0,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.enc = Encoder(compress_level=compress_level)
        self.header = F.Header(
            export_mode=F.EXPORT_MODES.get(export_mode, F.EXPORT_FULL),
            runtime_mode={"fast": 1, "full": 2}.get(runtime_mode, 0),
            flags=flags | (F.FLAG_ZLIB if compress_level else 0),
            start_ns=start_ns,
            wall_ns=time.time_ns(),
            pid=os.getpid(),
            python=tuple(sys.version_info[:3]),  # type: ignore[arg-type]
        )
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.offset = 0
        self.closed = False
        self.dropped = 0
        _write_all(self.fd, self.header.pack())
        self.offset = F.HEADER_SIZE

    def _emit(self, data: bytes) -> None:
        if data:
            _write_all(self.fd, data)
            self.offset += len(data)

    def write(self, events: list[Event]) -> None:
        """Append a batch; PROC events start a new process section."""
        if not _has_proc(events):
            self._batch(events)
            return
        start = 0
        for i, ev in enumerate(events):
            if ev[0] == PROC:
                self._batch(events[start:i])
                self.write_proc(ev, self.proc_extra())
                start = i + 1
        self._batch(events[start:])

    def proc_extra(self) -> dict[str, Any]:
        h = self.header
        return {
            "python": ".".join(map(str, h.python)),
            "wall_ns": time.time_ns(),
            "runtime_mode": h.runtime,
        }

    def write_proc(self, ev: Event, extra: dict[str, Any]) -> None:
        self._emit(self.enc.proc_chunk(ev, extra))

    def _batch(self, events: list[Event]) -> None:
        if not events:
            return
        try:
            data = self.enc.events_chunks(events)
        except (ValueError, TypeError):
            good = [ev for ev in events if _encodable_kind(ev)]
            self.dropped += len(events) - len(good)
            data = self.enc.events_chunks(good)
        self._emit(data)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._emit(self.enc.footer_chunk(self.dropped))
            h = self.header
            h.flags |= F.FLAG_COMPLETE
            h.records = self.enc.records
            h.user_records = self.enc.user_records
            h.processes = self.enc.processes
            h.dropped = self.dropped
            h.chunks = self.enc.chunks
            h.end_offset = self.offset
            os.pwrite(self.fd, h.pack(), 0)
        finally:
            os.close(self.fd)

    def abandon(self) -> None:
        """Forget the descriptor without writing (a forked child's copy of the parent's)."""
        if not self.closed:
            self.closed = True
            try:
                os.close(self.fd)
            except OSError:
                pass


_INT = {int}
_STR = {str}


def _has_proc(events: list[Event]) -> bool:
    return any(map(PROC.__eq__, map(itemgetter(0), events)))


def _encodable_kind(ev: Any) -> bool:
    return isinstance(ev, tuple) and len(ev) > 0 and type(ev[0]) is int and 0 <= ev[0] <= 255


class CaptureSink:
    """The runtime's sink: streams every batch into ``<dir>/<name>.<pid>.memscope``."""

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        name: str,
        *,
        runtime_mode: str = "unknown",
        start_ns: int = 0,
        compress_level: int = 1,
        max_late: int = 100_000,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.name = name
        self.runtime_mode = runtime_mode
        self.start_ns = start_ns
        self.compress_level = compress_level
        self.max_late = max_late
        self._lock = threading.RLock()
        self.dropped = 0
        self.late: list[Event] = []  # events that arrived after close
        self.drain: Any = None  # an old in-memory sink whose events come first
        self.writer = self._open(0)

    @property
    def path(self) -> Path:
        return self.writer.path

    def _open(self, flags: int) -> CaptureWriter:
        path = self.out_dir / f"{self.name}.{os.getpid()}.memscope"
        return CaptureWriter(
            path,
            runtime_mode=self.runtime_mode,
            start_ns=self.start_ns,
            compress_level=self.compress_level,
            flags=flags,
        )

    def _drain(self, events: list[Event] | None = None) -> list[Event]:
        """Before the first batch: the process record, the table rows, and the events
        the in-memory sink held from before the capture opened. Returns what is left
        of ``events`` to write."""
        mem = self.drain
        if mem is None:
            return events or []
        self.drain = None
        from memscope import _hooks

        events = events or []
        if events and events[0][0] == PROC:
            # the runtime re-sends (PROC, *tables) to a new sink itself
            self._write(events)
            events = []
        else:
            self._write([_hooks.proc_event(), *_hooks.tables()])
        held = getattr(mem, "events", None)
        if held:
            pre = [ev for ev in held if ev[0] not in TABLE_KINDS and ev[0] != PROC]
            held.clear()
            self._write(pre)
        return events

    def write(self, events: list[Event]) -> None:
        with self._lock:
            if self.drain is not None:
                events = self._drain(events)
            self._write(events)

    def _write(self, events: list[Event]) -> None:
        if self.writer.closed:
            room = self.max_late - len(self.late)
            self.late.extend(events[: max(room, 0)])
            self.dropped += max(len(events) - max(room, 0), 0)
            return
        try:
            self.writer.write(events)
        except OSError:
            self.dropped += len(events)
        self.dropped = max(self.dropped, self.writer.dropped)

    def after_fork(self, table_events: list[Event]) -> None:
        """In a forked child: leave the parent's file alone, start this pid's own."""
        self._lock = threading.RLock()
        self.writer.abandon()
        self.late = []
        self.drain = None
        self.dropped = 0
        self.writer = self._open(F.FLAG_FORKED)
        self._write(list(table_events))

    def iter_events(self) -> Iterator[Event]:
        """Everything this sink got: the file read back, then events after close."""
        from memscope.capture.reader import read_capture

        with self._lock:
            self._drain()
            limit = self.writer.offset
            late = list(self.late)
        cap = read_capture(self.writer.path, limit=limit)
        yield from cap.events()
        yield from late

    def close(self) -> None:
        with self._lock:
            self._drain()
            self.drain = None
            if not self.writer.closed:
                self.writer.header.dropped = self.dropped
                self.writer.dropped = max(self.writer.dropped, self.dropped)
                self.writer.close()


def write_capture(
    path: str | os.PathLike[str],
    events: Iterable[Event],
    *,
    export_mode: str = "full",
    runtime_mode: str = "unknown",
    start_ns: int = 0,
    flags: int = 0,
    batch: int = 8192,
    dropped: int = 0,
) -> Path:
    """Write a whole capture from an event iterable (exports, merge, tests)."""
    w = CaptureWriter(
        path, export_mode=export_mode, runtime_mode=runtime_mode, start_ns=start_ns, flags=flags
    )
    try:
        buf: list[Event] = []
        for ev in events:
            buf.append(ev)
            if len(buf) >= batch:
                w.write(buf)
                buf = []
        w.write(buf)
        w.dropped += dropped
    except BaseException:
        w.close()
        raise
    w.close()
    return w.path
