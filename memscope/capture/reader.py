"""Reading captures: a streaming, defensive reader.

Every length, count and offset read from the file is checked against what is left
before anything is allocated; every chunk's CRC-32 is checked before it is decoded;
nothing from the file is ever executed (no pickle, no eval). Problems raise
``CaptureError`` with the file offset. A capture whose writer was killed (header not
marked complete) is read up to its last complete chunk, and ``recovery`` says how much
that was.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate, chain, repeat
from pathlib import Path
from typing import Any, BinaryIO, cast

from memscope.capture import format as F
from memscope.capture.format import CaptureError
from memscope.capture.rows import LIMIT, LISTED, SHAPES, RowCheck, column_problems, row_problem
from memscope.events import (
    MODULE,
    PROC,
    TABLE_KINDS,
    Event,
    expand_module,
    name_count,
    table_problem,
)

MAX_COLS = F.MAX_COLS
MAX_GROUPS = F.MAX_GROUPS


@dataclass
class ChunkInfo:
    offset: int
    kind: int
    flags: int
    length: int
    raw_len: int
    crc: int


@dataclass
class Recovery:
    """How much of the file could be used."""

    complete: bool  # the writer closed it cleanly
    file_size: int
    good_bytes: int  # end of the last complete chunk
    chunks: int
    torn_bytes: int  # bytes after the last complete chunk (a killed writer's partial chunk)
    events: int = 0  # events decoded so far (set while/after iterating)

    @property
    def message(self) -> str:
        if self.complete:
            return f"complete capture: {self.chunks} chunks, {self.file_size} bytes"
        return (
            f"incomplete capture (the writing process did not close it): recovered "
            f"{self.chunks} complete chunks, {self.good_bytes} of {self.file_size} bytes"
            + (
                f"; {self.torn_bytes} trailing bytes of a partial chunk ignored"
                if self.torn_bytes
                else ""
            )
            + (f"; {self.events} events" if self.events else "")
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "file_size": self.file_size,
            "good_bytes": self.good_bytes,
            "chunks": self.chunks,
            "torn_bytes": self.torn_bytes,
            "events": self.events,
            "message": self.message,
        }


@dataclass
class ProcessInfo:
    pid: int
    ppid: int
    argv0: str
    start_ns: int
    extra: dict[str, Any] = field(default_factory=dict)
    chunk: int = 0  # index of its PROC chunk

    def event(self) -> Event:
        return (PROC, self.pid, self.ppid, self.argv0, self.start_ns)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "ppid": self.ppid,
            "argv0": self.argv0,
            "start_ns": self.start_ns,
            **{k: v for k, v in self.extra.items() if isinstance(v, (int, str, float))},
        }


class _Cur:
    """A bounds-checked cursor over one payload."""

    __slots__ = ("data", "end", "off", "pos")

    def __init__(self, data: bytes, off: int) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        self.off = off  # file offset reported in errors

    def fail(self, msg: str) -> CaptureError:
        return CaptureError(f"corrupt chunk: {msg} (payload byte {self.pos})", self.off)

    def left(self) -> int:
        return self.end - self.pos

    def byte(self) -> int:
        if self.pos >= self.end:
            raise self.fail("unexpected end of payload")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uvarint(self, max_bytes: int = 10) -> int:
        n = shift = 0
        data, pos, end = self.data, self.pos, self.end
        for _ in range(max_bytes):
            if pos >= end:
                self.pos = pos
                raise self.fail("unexpected end of payload in a number")
            b = data[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            if b < 0x80:
                self.pos = pos
                return n
            shift += 7
        self.pos = pos
        raise self.fail("number too long")

    def count(self, per_item: int = 1) -> int:
        """A count that must fit in what is left (each item takes >= per_item bytes)."""
        n = self.uvarint()
        if n * per_item > self.left():
            raise self.fail(f"count {n} larger than the payload")
        return n

    def take(self, n: int) -> bytes:
        if n < 0 or n > self.end - self.pos:
            raise self.fail(f"length {n} past the end of the payload")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b


class CaptureFile:
    """An open capture: ``header``, ``processes``, ``recovery``; ``events()`` streams."""

    def __init__(self, path: str | os.PathLike[str], *, limit: int | None = None) -> None:
        self.path = Path(path)
        self.name = self.path.name
        try:
            self.size = os.path.getsize(self.path)
        except OSError as exc:
            raise CaptureError(f"cannot read capture: {exc}", -1, str(path)) from None
        self.limit = limit
        self.chunks: list[ChunkInfo] = []
        self.processes: list[ProcessInfo] = []
        self.footer: dict[str, int] = {}
        # rows a checked read (``events(check=True)``) skipped, by the sections it read
        self.skipped: dict[frozenset[int] | None, int] = {}
        try:
            with open(self.path, "rb") as f:
                head = f.read(F.HEADER_SIZE)
                if not head:
                    raise CaptureError("empty file: its process ended before it wrote the "
                                       "capture header", 0)
                self.header = F.Header.unpack(head)
                self._scan(f)
        except CaptureError as exc:
            exc.path = str(self.path)
            raise
        except OSError as exc:
            raise CaptureError(f"cannot read capture: {exc}", -1, str(path)) from None

    # ---- framing ------------------------------------------------------------------

    def _scan(self, f: BinaryIO) -> None:
        h = self.header
        size = self.size if self.limit is None else min(self.size, self.limit)
        complete = h.complete and self.limit is None
        if complete:
            if h.end_offset < F.HEADER_SIZE:
                raise CaptureError(f"bad end offset {h.end_offset} in header", 72)
            if self.size < h.end_offset:
                raise CaptureError(
                    f"truncated capture: the header says {h.end_offset} bytes, "
                    f"the file has {self.size}",
                    self.size,
                )
            if self.size > h.end_offset:
                raise CaptureError(
                    f"{self.size - h.end_offset} unexpected bytes after the end of the capture",
                    h.end_offset,
                )
            size = h.end_offset
        pos = F.HEADER_SIZE
        torn = 0
        while pos < size:
            if size - pos < F.CHUNK_HEAD:
                if complete:
                    raise CaptureError("truncated chunk header", pos)
                torn = size - pos
                break
            f.seek(pos)
            raw = f.read(F.CHUNK_HEAD)
            if len(raw) < F.CHUNK_HEAD:
                raise CaptureError("file shrank while reading", pos)
            length, kind, flags, reserved, raw_len, crc = F.CHUNK_STRUCT.unpack(raw)
            if flags & ~F.CF_COMPRESSED or flags == F.CF_COMPRESSED or reserved:
                raise CaptureError(f"corrupt chunk: unknown flags {flags:#x}/{reserved:#x}", pos)
            # declared sizes against the limits and what the codec can make of the
            # stored bytes (checked against the file's size below) before any is read
            problem = F.size_problem(flags, length, raw_len)
            if problem is not None:
                raise CaptureError(f"corrupt chunk: {problem}", pos)
            if pos + F.CHUNK_HEAD + length > size:
                if complete:
                    raise CaptureError("truncated chunk", pos)
                torn = size - pos
                break
            ci = ChunkInfo(pos, kind, flags, length, raw_len, crc)
            if kind == F.CHUNK_FOOTER:
                if pos + F.CHUNK_HEAD + length != size and complete:
                    raise CaptureError("footer chunk is not the last chunk", pos)
                self._footer(self._payload(f, ci), pos)
            elif kind == F.CHUNK_PROC:
                self._proc(self._payload(f, ci), pos, len(self.chunks))
            self.chunks.append(ci)
            pos += F.CHUNK_HEAD + length
        if complete:
            if not self.chunks or self.chunks[-1].kind != F.CHUNK_FOOTER:
                raise CaptureError("complete capture without a footer chunk", pos)
            if h.chunks != len(self.chunks):
                raise CaptureError(
                    f"header counts {h.chunks} chunks, the file has {len(self.chunks)}", 64
                )
        self.recovery = Recovery(
            complete=complete,
            file_size=self.size,
            good_bytes=pos,
            chunks=len(self.chunks),
            torn_bytes=torn,
        )

    def _payload(self, f: BinaryIO, c: ChunkInfo) -> bytes:
        f.seek(c.offset + F.CHUNK_HEAD)
        data = f.read(c.length)
        if len(data) != c.length:
            raise CaptureError("truncated chunk payload", c.offset)
        head12 = F.CHUNK_STRUCT.pack(c.length, c.kind, c.flags, 0, c.raw_len, 0)[:12]
        if zlib.crc32(data, zlib.crc32(head12)) & 0xFFFFFFFF != c.crc:
            raise CaptureError("chunk checksum mismatch (corrupt data)", c.offset)
        return F.decompress(c.flags, data, c.raw_len, c.offset)

    def _footer(self, data: bytes, off: int) -> None:
        cur = _Cur(data, off)
        names = ("records", "user_records", "dropped", "processes", "chunks")
        self.footer = {n: cur.uvarint() for n in names}

    def _proc(self, data: bytes, off: int, index: int) -> None:
        cur = _Cur(data, off)
        strings: list[str] = []
        vals = _generic(cur, strings, 0)
        extra = _generic(cur, strings, 0)
        if (
            not isinstance(vals, tuple)
            or len(vals) < 4
            or not all(type(v) is int and abs(v) < LIMIT for v in (vals[0], vals[1], vals[3]))
            or vals[3] < 0
        ):
            raise CaptureError("corrupt process chunk", off)
        info = ProcessInfo(vals[0], vals[1], str(vals[2]), vals[3], chunk=index)
        if isinstance(extra, tuple):  # (key, value) pairs; values of other kinds left out
            for item in extra:
                if (isinstance(item, tuple) and len(item) == 2 and type(item[0]) is str
                        and _plain_value(item[1])):
                    info.extra[item[0]] = item[1]
        self.processes.append(info)

    # ---- events -------------------------------------------------------------------

    def events(self, sections: set[int] | None = None, *,
               check: bool = False) -> Iterator[Event]:
        """Every event in file order (PROC events at the start of each process section);
        with ``sections``, only the events of those process sections (0-based). With
        ``check``, rows of known kinds are checked for an analysis
        (``memscope.capture.rows``): extra trailing fields cut, unusable rows skipped
        (``skipped`` counts them) and named in ERROR rows. A chunk is decoded whole
        before its first event is handed out; its events come out of C iterators
        (``zip`` over its columns, ``map(next, ...)`` over its kinds' rows in the
        tags' order) through ``itertools.chain``: no frame of this module runs per
        event, and each row is made as it is taken (rows made a chunk at a time, in
        a list, were slower to read: cache misses)."""
        return chain.from_iterable(rows for _sec, rows in self.chunk_rows(sections, check=check))

    def chunk_rows(self, sections: set[int] | None = None, *,
                   check: bool = False) -> Iterator[tuple[int, Iterator[Event]]]:
        """``(section, its events)``, a chunk at a time (``events``); section -1 holds
        the events before any PROC chunk."""
        strings: list[str] = []
        section = -1
        n = 0
        rc = RowCheck() if check else None
        try:
            with open(self.path, "rb") as f:
                for index, ci in enumerate(self.chunks):
                    k = ci.kind
                    if k == F.CHUNK_STRINGS:
                        _strings(_Cur(self._payload(f, ci), ci.offset), strings)
                    elif k == F.CHUNK_PROC:
                        section += 1
                        if sections is None or section in sections:
                            p = self.processes[section]
                            n += 1
                            yield section, iter((p.event(),))
                    elif k in (F.CHUNK_EVENTS, F.CHUNK_TABLES):
                        if sections is not None and section not in sections:
                            continue
                        cur = _Cur(self._payload(f, ci), ci.offset)
                        tables = k == F.CHUNK_TABLES
                        if rc is not None:
                            rc.chunk, rc.offset = index, ci.offset
                        count, rows = _events(cur, strings, tables, rc)
                        n += count
                        yield section, rows
                    # FOOTER and unknown chunk kinds (newer minor versions) are skipped
                if rc is not None:
                    self.skipped[None if sections is None else frozenset(sections)] = rc.skipped
                    last = rc.total()
                    if last is not None:
                        n += 1
                        yield section, iter((last,))
        except CaptureError as exc:
            exc.path = str(self.path)
            raise
        finally:
            self.recovery.events = n

    def iter_events(self) -> Iterator[Event]:
        return self.events()

    def info(self) -> dict[str, Any]:
        h = self.header
        return {
            "path": str(self.path),
            "version": f"{h.major}.{h.minor}",
            "mode": h.mode,
            "runtime_mode": h.runtime,
            "complete": h.complete,
            "records": h.records,
            "user_records": h.user_records,
            "processes": [p.as_dict() for p in self.processes],
            "dropped": h.dropped,
            "python": ".".join(map(str, h.python)),
            "start_ns": h.start_ns,
            "wall_ns": h.wall_ns,
            "size": self.size,
            "recovery": self.recovery.as_dict(),
        }


def _plain_value(v: Any) -> bool:
    """A process record's extra value a report can show and serialise: text, an int of
    magnitude below 2**62, a finite float."""
    if type(v) is str:
        return True
    if type(v) is int:
        return abs(v) < LIMIT
    return type(v) is float and math.isfinite(v)


def _strings(cur: _Cur, table: list[str]) -> None:
    first = cur.uvarint()
    if first != len(table):
        raise cur.fail(f"string table chunk starts at {first}, expected {len(table)}")
    n = cur.count(1)
    for _ in range(n):
        ln = cur.uvarint()
        try:
            table.append(cur.take(ln).decode("utf-8", "surrogatepass"))
        except UnicodeDecodeError:
            raise cur.fail("string is not UTF-8") from None
    if cur.left():
        raise cur.fail("bytes left after the string table")


def _generic(cur: _Cur, strings: list[str], depth: int) -> Any:
    tag = cur.byte()
    if tag == F.G_NONE:
        return None
    if tag == F.G_FALSE:
        return False
    if tag == F.G_TRUE:
        return True
    if tag == F.G_INT:
        return F.unzigzag(cur.uvarint(20))
    if tag == F.G_FLOAT:
        return F.unpack_double(cur.take(8), 0)
    if tag == F.G_STR:
        i = cur.uvarint()
        if i >= len(strings):
            raise cur.fail(f"string index {i} not in the table ({len(strings)} strings)")
        return strings[i]
    if tag == F.G_TUPLE:
        if depth >= F.MAX_DEPTH:
            raise cur.fail("values nested too deeply")
        n = cur.count(1)
        return tuple(_generic(cur, strings, depth + 1) for _ in range(n))
    if tag == F.G_BYTES:
        return cur.take(cur.uvarint())
    if tag == F.G_TEXT:
        try:
            return cur.take(cur.uvarint()).decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise cur.fail("text is not UTF-8") from None
    raise cur.fail(f"unknown value tag {tag}")


def _column(cur: _Cur, strings: list[str], n: int) -> Any:
    enc = cur.byte()
    nbytes = cur.uvarint()
    data = cur.take(nbytes)
    if enc == F.COL_I64_PLANES:
        planes = F.unpack_planes(data, n)
        if planes is None:
            raise cur.fail(f"byte-plane column of {nbytes} bytes for {n} rows")
        return planes.tolist()
    if enc in (F.COL_I64, F.COL_I64_DELTA, F.COL_STR):
        if nbytes != n * 8:
            raise cur.fail(f"int column of {nbytes} bytes for {n} rows")
        arr = F.unpack_i64(data, n)
        if enc == F.COL_I64_DELTA:
            return list(accumulate(arr))
        if enc == F.COL_STR:
            if n and (min(arr) < 0 or max(arr) >= len(strings)):
                raise cur.fail("string index not in the table")
            return [strings[i] for i in arr]
        return arr.tolist()
    if enc == F.COL_GENERIC:
        sub = _Cur(data, cur.off)
        if n > nbytes:
            raise cur.fail("generic column shorter than its row count")
        out = [_generic(sub, strings, 0) for _ in range(n)]
        if sub.left():
            raise cur.fail("bytes left after a generic column")
        return out
    raise cur.fail(f"unknown column encoding {enc}")


def _events(
    cur: _Cur, strings: list[str], tables_only: bool, check: RowCheck | None = None,
) -> tuple[int, Iterator[Event]]:
    """A chunk decoded and checked whole: (its number of rows, its events in order)."""
    n = cur.count(1)
    tags = cur.take(n)
    ngroups = cur.uvarint()
    if ngroups > MAX_GROUPS:
        raise cur.fail(f"{ngroups} event groups")
    groups: dict[int, Iterator[Event | None]] = {}
    patched = False  # some row was skipped: the rows given back hold None for it
    for _ in range(ngroups):
        k = cur.byte()
        if k in groups:
            raise cur.fail(f"event kind {k} appears twice")
        if tables_only and k not in TABLE_KINDS:
            raise cur.fail(f"event kind {k} in a table chunk")
        cnt = cur.uvarint()
        if cnt != tags.count(k):
            raise cur.fail(f"event kind {k}: {cnt} rows but {tags.count(k)} tags")
        layout = cur.byte()
        if layout == F.LAYOUT_COLUMNS:
            ncols = cur.uvarint()
            if ncols > MAX_COLS:
                raise cur.fail(f"{ncols} columns")
            if check is None or k not in SHAPES:
                cols = [_column(cur, strings, cnt) for _ in range(ncols)]
                if any(len(c) != cnt for c in cols):  # (a short group would end map early)
                    raise cur.fail(f"event kind {k}: a column is not {cnt} rows long")
                groups[k] = zip(repeat(k, cnt), *cols, strict=True)
                continue
            encs: list[tuple[int, bytes | None]] = []
            cols = []
            for _ in range(ncols):
                at = cur.pos
                cols.append(_column(cur, strings, cnt))
                encs.append(_top_plane(cur, at, cnt))
            cols, bad = column_problems(k, cols, encs, cnt)
            rows: Iterator[Event] = zip(repeat(k, cnt), *cols, strict=True)
            if bad:
                patched = True
                groups[k] = _skipping(k, rows, bad, tags, check)
            else:
                groups[k] = rows
        elif layout == F.LAYOUT_ROWS:
            sub = _Cur(cur.take(cur.uvarint()), cur.off)
            rowl: list[Event | None] = []
            for i in range(cnt):
                row = _generic(sub, strings, 1)
                if not isinstance(row, tuple):
                    raise sub.fail("event row is not a tuple")
                ev: Event | None = (k, *row)
                if check is not None and k in SHAPES:
                    ev, why = row_problem((k, *row))
                    if ev is None:
                        patched = True
                        ev = check.skip(k, _nth(tags, k, i, check), n, why)
                rowl.append(ev)
            if sub.left():
                raise sub.fail("bytes left after event rows")
            groups[k] = iter(rowl)
        else:
            raise cur.fail(f"unknown group layout {layout}")
    if cur.left():
        raise cur.fail(f"{cur.left()} bytes left after the events")
    if set(tags) != set(groups):
        raise cur.fail("event tags without a group")
    modules = iter([_module_rows(ev, cur)  # (MODULE rows are never skipped here)
                    for ev in groups.pop(MODULE, ()) if ev is not None])
    if check is not None and MODULE in tags:  # the SCOPE and SITE rows of module tables
        modules = iter([_checked(rows, check, n) for rows in modules])
    if patched:
        return n, _without_skipped(tags, groups, modules)
    if MODULE in tags:
        return n, _with_modules(tags, groups, modules)
    # (no row is None here: only a patched chunk holds None)
    whole = cast("dict[int, Iterator[Event]]", groups)
    if len(whole) == 1:
        return n, next(iter(whole.values()))
    # each row from its kind's group, in the tags' order (every group holds exactly
    # its tags' count of rows: checked above)
    return n, map(next, [whole[t] for t in tags])


def _with_modules(tags: bytes, groups: dict[int, Iterator[Event | None]],
                  modules: Iterator[list[Event]]) -> Iterator[Event]:
    """The events of a chunk that holds MODULE rows, each one's rows in its place."""
    nexts = {k: it.__next__ for k, it in groups.items()}
    for t in tags:
        if t == MODULE:
            yield from next(modules)
        else:
            yield nexts[t]()  # type: ignore[misc]


def _top_plane(cur: _Cur, at: int, n: int) -> tuple[int, bytes | None]:
    """The encoding of the column read from ``at`` and, for a column of stored int64
    values, their most significant bytes (one byte when all rows share it): enough to
    check most ranges without looking at the values."""
    data = cur.data
    enc = data[at]
    if enc not in (F.COL_I64, F.COL_I64_PLANES) or not n:
        return enc, None
    c = _Cur(data, cur.off)
    c.pos = at + 1
    c.uvarint()
    start, end = c.pos, cur.pos
    if enc == F.COL_I64:
        return enc, data[start + 7 * n : start + 8 * n]
    return enc, data[end - n : end] if data[start] & 0x80 else data[end - 1 : end]


def _without_skipped(tags: bytes, groups: dict[int, Iterator[Event | None]],
                     modules: Iterator[list[Event]]) -> Iterator[Event]:
    """The events of a chunk some of whose rows were skipped (None), in order."""
    nexts = {k: it.__next__ for k, it in groups.items()}
    for t in tags:
        if t == MODULE:
            yield from next(modules)
        else:
            ev = nexts[t]()
            if ev is not None:
                yield ev


def _nth(tags: bytes, k: int, i: int, check: RowCheck) -> int:
    """Where in the chunk the ``i``-th row of kind ``k`` is (only looked for while
    skipped rows are still named one by one)."""
    if check.listed >= LISTED:
        return -1
    pos = -1
    kb = bytes((k,))
    for _ in range(i + 1):
        pos = tags.find(kb, pos + 1)
    return pos


def _skipping(k: int, rows: Iterator[Event], bad: dict[int, str], tags: bytes,
              check: RowCheck) -> Iterator[Event | None]:
    """A group's rows with each unusable one replaced by the ERROR row that names it
    (None once enough are named)."""
    out: list[Event | None] = []
    for i, ev in enumerate(rows):
        why = bad.get(i)
        out.append(ev if why is None else check.skip(k, _nth(tags, k, i, check), len(tags),
                                                       why))
    return iter(out)


def _checked(rows: list[Event], check: RowCheck, n: int) -> list[Event]:
    out: list[Event] = []
    for ev in rows:
        good, why = row_problem(ev)
        if good is None:
            good = check.skip(ev[0], -1, n, why)
        if good is not None:
            out.append(good)
    return out


def _module_rows(ev: Event, cur: _Cur) -> list[Event]:
    """The SCOPE and SITE rows of one stored MODULE row (``writer.pack_module``),
    every count, length and index checked; its numbers are byte planes."""
    if len(ev) != 9:
        raise cur.fail(f"module table row of {len(ev) - 1} fields, expected 8")
    _, base, sbase, file, module, nscopes, nsites, ints, names = ev
    if not all(type(v) is int for v in (base, sbase, nscopes, nsites)) or not (
            type(file) is str and type(module) is str
            and type(ints) is bytes and type(names) is bytes):
        raise cur.fail("module table row has fields of the wrong type")
    if min(nscopes, nsites) < 0:
        raise cur.fail("module table has a count that is not an int of at least 0")
    n = 2 * nscopes + 4 * nsites
    got = F.unpack_planes(ints, n)  # None unless the length fits n values
    if got is None:
        raise cur.fail(f"module table of {nscopes} scopes and {nsites} sites "
                       f"has {len(ints)} bytes of numbers")
    try:
        text = names.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise cur.fail("module table names are not UTF-8") from None
    col = got.tolist()
    problem = table_problem(nscopes, nsites, col, name_count(nscopes, nsites, text))
    if problem is not None:
        raise cur.fail(problem)
    return expand_module((MODULE, base, sbase, file, module, nscopes, nsites, col, text))


def read_capture(path: str | os.PathLike[str], *, limit: int | None = None) -> CaptureFile:
    """Open a capture and check its framing (header, every chunk's length and kind);
    chunk checksums and contents are checked as ``events()`` streams them."""
    return CaptureFile(path, limit=limit)
