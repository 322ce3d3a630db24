"""The ``.memscope`` capture format: constants, the header, chunk framing, encodings.

Byte-by-byte description and the version policy: ``docs/capture-format.md``.

Layout::

    header (HEADER_SIZE bytes, fixed; rewritten at close)
    chunk*           each: CHUNK_HEAD (16 bytes) + payload (LZ4- or zlib-compressed, or not)

Everything is little-endian. Numbers in payloads are packed: whole columns of int64
(byte-shuffled so the compressor sees long runs, byte planes that are one repeated byte
stored as that byte) or LEB128 varints.
"""

from __future__ import annotations

import struct
import sys

from memscope.planes import pack_planes, planes, unpack_planes

__all__ = ["pack_planes", "planes", "unpack_planes"]  # and everything below: the format

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    from array import array
    from collections.abc import Callable, Iterable, Sequence

MAGIC = b"MEMSCOPE"
VERSION_MAJOR = 5  # incompatible changes bump this; readers refuse a newer major
VERSION_MINOR = 0  # compatible additions (new chunk kinds readers skip, header fields)
# 2.0: column encoding I64_PLANES (4); everything else as in 1.0, which readers still read
# 3.0: MODULE table rows (event kind 15, packed; see memscope.capture.writer.pack_module)
#      stand for a module's SCOPE and SITE rows; 1.x and 2.x files are still read
# 4.0: a MODULE row's numbers are one I64_PLANES body (``pack_planes``), not shuffled
#      int64 (a quarter of the bytes to compress); 1.x to 3.x files are still read
# 5.0: chunks are compressed as one LZ4 block (CF_LZ4), not zlib: a tenth of the
#      instructions for about a fifth more bytes; 1.x to 4.x files (zlib) are still read

# ---- header --------------------------------------------------------------------------
# magic, major, minor, header_size, export_mode, runtime_mode, flags, processes,
# records, user_records, dropped, start_ns, wall_ns, chunks, end_offset, pid,
# py_major, py_minor, py_micro, reserved(1)
HEADER_FMT = "<8sHHHBBIIQQQqqQQIBBBx"
HEADER_STRUCT = struct.Struct(HEADER_FMT)
HEADER_SIZE = 128  # fixed part + reserved zeros + crc32 of bytes [0, 124)
HEADER_CRC_AT = HEADER_SIZE - 4
assert HEADER_STRUCT.size <= HEADER_CRC_AT

# header flags
FLAG_COMPLETE = 1 << 0  # closed cleanly: counts final, footer present, end_offset set
FLAG_ZLIB = 1 << 1  # the writer compresses chunks with zlib (each chunk says so itself)
FLAG_FORKED = 1 << 2  # written by a forked child (the parent has its own capture)
FLAG_MERGED = 1 << 3  # made by ``memscope merge`` from several captures
FLAG_LZ4 = 1 << 4  # the writer compresses chunks with LZ4 (each chunk says so itself)

EXPORT_FULL = 0  # every event
EXPORT_USER = 1  # bindings of user code only (no standard library / site-packages)
EXPORT_MODES = {"full": EXPORT_FULL, "user": EXPORT_USER}
RUNTIME_MODES = {0: "unknown", 1: "fast", 2: "full"}

# ---- chunks --------------------------------------------------------------------------
# payload length, kind, flags, reserved, raw (uncompressed) length, crc32
CHUNK_FMT = "<IBBHII"
CHUNK_STRUCT = struct.Struct(CHUNK_FMT)
CHUNK_HEAD = CHUNK_STRUCT.size  # 16
assert CHUNK_HEAD == 16

CHUNK_STRINGS = 1  # strings appended to the file's intern table
CHUNK_TABLES = 2  # table rows (scopes, sites, types, threads, tasks)
CHUNK_EVENTS = 3  # events in stream order (tables, binds, finalizations, leaks ...)
CHUNK_PROC = 5  # process info: starts the section of one process
CHUNK_FOOTER = 6  # counts at close; the last chunk of a complete capture

CF_ZLIB = 1 << 0  # chunk payload is a zlib stream (what writers of 1.0 to 4.x wrote)
CF_LZ4 = 1 << 1  # chunk payload is one LZ4 block of ``raw_len`` bytes (5.0 and newer)
CF_COMPRESSED = CF_ZLIB | CF_LZ4  # a chunk has at most one of them

MAX_CHUNK = 64 << 20  # largest stored payload a reader accepts
MAX_RAW = 256 << 20  # largest uncompressed payload a reader accepts
# The most one stored byte can expand to in each codec (LZ4 blocks: a match of 255
# bytes per extension byte; deflate: 258 bytes per 2 bits, about 1032): a declared raw
# length above it cannot be true, and is refused before anything is allocated.
CODEC_RATIO = {CF_LZ4: 255, CF_ZLIB: 1032}
# Chunks memscope writes hold one batch (8192 events by default): a few hundred KiB,
# which compress 2 to 6 times. A chunk declaring more than LARGE_RAW bytes that expand
# more than MAX_RATIO times is not one (a compression bomb), and is refused unexpanded;
# an LZ4 chunk declaring more than LARGE_RAW has its block walked first to learn its
# real length, so that nothing larger than its data is allocated.
LARGE_RAW = 8 << 20
MAX_RATIO = 64
MAX_DEPTH = 4  # nesting of generic tuples
MAX_COLS = 64  # columns of one event group (fields after the kind)
MAX_GROUPS = 256  # event groups in one chunk (one per kind)

# ---- column encodings inside event groups -------------------------------------------
COL_I64 = 1  # int64, byte-shuffled
COL_I64_DELTA = 2  # int64 differences from the previous value (first from 0), shuffled
COL_STR = 3  # int64 string-table indices, byte-shuffled
COL_I64_PLANES = 4  # int64, byte-shuffled, byte planes that are one repeated byte elided
COL_GENERIC = 5  # one generic value per row

LAYOUT_COLUMNS = 0
LAYOUT_ROWS = 1  # each row a generic tuple (kinds whose rows differ in length)

# generic value tags
G_NONE, G_FALSE, G_TRUE, G_INT, G_FLOAT, G_STR, G_TUPLE, G_BYTES, G_TEXT = range(9)
# G_STR: index into the file's string table; G_TEXT: inline UTF-8 (PROC chunks, which
# are read during the framing scan, before any string table)

LITTLE = sys.byteorder == "little"
_DOUBLE = struct.Struct("<d")


class CaptureError(Exception):
    """A capture file cannot be read; ``offset`` is where the problem was found."""

    def __init__(self, message: str, offset: int = -1, path: str = "") -> None:
        self.offset = offset
        self.path = path
        where = f" at offset {offset}" if offset >= 0 else ""
        prefix = f"{path}: " if path else ""
        super().__init__(f"{prefix}{message}{where}")


# the header's fields in file order (repr and equality follow it)
_HEADER_FIELDS = (
    "major", "minor", "header_size", "export_mode", "runtime_mode", "flags", "processes",
    "records", "user_records", "dropped", "start_ns", "wall_ns", "chunks", "end_offset",
    "pid", "python",
)


class Header:
    """The fixed header's fields (a plain class: ``dataclasses`` would cost
    ``memscope run`` ~7 ms of start-up; see docs/performance-history.md)."""

    __slots__ = _HEADER_FIELDS

    def __init__(
        self,
        *,
        major: int = VERSION_MAJOR,
        minor: int = VERSION_MINOR,
        header_size: int = HEADER_SIZE,
        export_mode: int = EXPORT_FULL,
        runtime_mode: int = 0,
        flags: int = 0,
        processes: int = 0,
        records: int = 0,
        user_records: int = 0,
        dropped: int = 0,
        start_ns: int = 0,
        wall_ns: int = 0,
        chunks: int = 0,
        end_offset: int = 0,
        pid: int = 0,
        python: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        self.major = major
        self.minor = minor
        self.header_size = header_size
        self.export_mode = export_mode
        self.runtime_mode = runtime_mode
        self.flags = flags
        self.processes = processes
        self.records = records
        self.user_records = user_records
        self.dropped = dropped
        self.start_ns = start_ns
        self.wall_ns = wall_ns
        self.chunks = chunks
        self.end_offset = end_offset
        self.pid = pid
        self.python = python

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, f) for f in _HEADER_FIELDS)

    def __eq__(self, other: object) -> bool:
        return type(other) is Header and self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable: the writer updates its counts

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in _HEADER_FIELDS)
        return f"Header({fields})"

    @property
    def complete(self) -> bool:
        return bool(self.flags & FLAG_COMPLETE)

    @property
    def mode(self) -> str:
        return "user" if self.export_mode == EXPORT_USER else "full"

    @property
    def runtime(self) -> str:
        return RUNTIME_MODES.get(self.runtime_mode, "unknown")

    def pack(self) -> bytes:
        body = HEADER_STRUCT.pack(
            MAGIC,
            self.major,
            self.minor,
            HEADER_SIZE,
            self.export_mode,
            self.runtime_mode,
            self.flags,
            self.processes,
            self.records,
            self.user_records,
            self.dropped,
            self.start_ns,
            self.wall_ns,
            self.chunks,
            self.end_offset,
            self.pid & 0xFFFFFFFF,
            *(min(max(v, 0), 255) for v in self.python),
        )
        body = body.ljust(HEADER_CRC_AT, b"\0")
        return body + struct.pack("<I", _crc32(body))

    @classmethod
    def unpack(cls, data: bytes) -> Header:
        """Parse and check a header; raises ``CaptureError`` (offset 0) if it is not one."""
        if len(data) < 8 or data[:8] != MAGIC:
            raise CaptureError("not a memscope capture (no MEMSCOPE magic)", 0)
        if len(data) < 12:
            raise CaptureError("truncated header", len(data))
        major, minor = struct.unpack_from("<HH", data, 8)
        if major > VERSION_MAJOR:
            raise CaptureError(
                f"capture format version {major}.{minor} is newer than this reader "
                f"({VERSION_MAJOR}.{VERSION_MINOR}); upgrade memscope",
                8,
            )
        if major < VERSION_MAJOR:  # 1.x to 4.x: before memscope 0.1.0, no users of them
            raise CaptureError(
                f"capture format version {major}.{minor} was written by an older memscope; "
                f"this one reads {VERSION_MAJOR}.x: run the program again to capture it",
                8,
            )
        if len(data) < HEADER_SIZE:
            raise CaptureError("truncated header", len(data))
        (stored,) = struct.unpack_from("<I", data, HEADER_CRC_AT)
        if _crc32(data[:HEADER_CRC_AT]) != stored:
            raise CaptureError("header checksum mismatch (corrupt header)", HEADER_CRC_AT)
        f = HEADER_STRUCT.unpack_from(data, 0)
        if f[3] != HEADER_SIZE:
            raise CaptureError(f"unexpected header size {f[3]}", 12)
        return cls(
            major=f[1],
            minor=f[2],
            header_size=f[3],
            export_mode=f[4],
            runtime_mode=f[5],
            flags=f[6],
            processes=f[7],
            records=f[8],
            user_records=f[9],
            dropped=f[10],
            start_ns=f[11],
            wall_ns=f[12],
            chunks=f[13],
            end_offset=f[14],
            pid=f[15],
            python=(f[16], f[17], f[18]),
        )


def _crc32(data: bytes | bytearray | memoryview, start: int = 0) -> int:
    import zlib

    return zlib.crc32(data, start) & 0xFFFFFFFF


crc32 = _crc32

# ---- chunk compression ---------------------------------------------------------------
# LZ4 (the block format, ``lz4.block``) is what captures are written with: on the
# events of an import of rich it takes a tenth of zlib level 1's instructions, for
# about a fifth more bytes (docs/performance-history.md); memray's captures use it too. zlib
# stays for reading older captures, and for writing when lz4 cannot be imported.
COMPRESSIONS = ("lz4", "zlib", "none")


def compressor(name: str) -> tuple[int, int, Callable[[bytes | bytearray], bytes]] | None:
    """``(chunk flag, header flag, compress)`` for ``name`` (one of ``COMPRESSIONS``), or
    None for "none"; "lz4" falls back to zlib where the lz4 package cannot be imported."""
    if name not in COMPRESSIONS:
        raise ValueError(f"unknown compression {name!r} (one of {', '.join(COMPRESSIONS)})")
    if name == "lz4":
        try:
            from lz4.block import compress as lz4_compress
        except ImportError:
            name = "zlib"
        else:
            return CF_LZ4, FLAG_LZ4, lambda data: lz4_compress(data, store_size=False)
    if name == "zlib":
        import zlib

        return CF_ZLIB, FLAG_ZLIB, lambda data: zlib.compress(data, 1)
    return None


def size_problem(flags: int, length: int, raw_len: int) -> str | None:
    """What is wrong with a chunk's declared sizes (``flags`` checked already), before
    anything is read or allocated for it, or None."""
    if length > MAX_CHUNK or raw_len > MAX_RAW:
        return f"length {length}/{raw_len} too large"
    if not flags & CF_COMPRESSED:
        return "lengths disagree" if raw_len != length else None
    if raw_len == 0:
        return "compressed chunk of length 0"
    if raw_len > CODEC_RATIO[flags & CF_COMPRESSED] * length + 64:
        return f"{length} compressed bytes cannot hold the {raw_len} bytes it declares"
    if raw_len > LARGE_RAW and raw_len > MAX_RATIO * length:
        return (f"{length} bytes that would expand {raw_len // max(length, 1)} times to "
                f"{raw_len} bytes (memscope's chunks expand at most a few times)")
    return None


_FF_RUN = None


def lz4_block_size(data: bytes, limit: int) -> int | None:
    """The number of bytes an LZ4 block decompresses to, walked without decompressing
    it; None if it is not a well-formed block or would give more than ``limit``."""
    global _FF_RUN
    if _FF_RUN is None:
        import re

        _FF_RUN = re.compile(b"\xff*")
    run = _FF_RUN.match
    n = len(data)
    ip = out = 0
    while True:
        if ip >= n:
            return None
        token = data[ip]
        ip += 1
        lit = token >> 4
        if lit == 15:
            end = run(data, ip).end()  # type: ignore[union-attr]
            if end >= n:
                return None
            lit += 255 * (end - ip) + data[end]
            ip = end + 1
        ip += lit
        out += lit
        if ip > n or out > limit:
            return None
        if ip == n:  # the last sequence holds literals only
            return out
        if ip + 2 > n:
            return None
        dist = data[ip] | data[ip + 1] << 8
        ip += 2
        if dist == 0 or dist > out:
            return None
        ml = token & 15
        if ml == 15:
            end = run(data, ip).end()  # type: ignore[union-attr]
            if end >= n:
                return None
            ml += 255 * (end - ip) + data[end]
            ip = end + 1
        out += ml + 4
        if out > limit:
            return None


def decompress(flags: int, data: bytes, raw_len: int, offset: int) -> bytes:
    """A chunk's payload as written (``flags``: its chunk flags, already checked to hold
    at most one of ``CF_COMPRESSED``, sizes checked by ``size_problem``); CaptureError
    unless it is exactly ``raw_len`` bytes. Memory follows what the data really holds,
    not what the chunk declares: zlib output grows as it is produced (never past
    ``raw_len``); an LZ4 block declaring more than ``LARGE_RAW`` is walked first to
    learn its length (its output buffer is allocated whole)."""
    if not flags & CF_COMPRESSED:
        return data
    if raw_len == 0:
        raise CaptureError("corrupt chunk: compressed chunk of length 0", offset)
    if flags & CF_LZ4:
        if raw_len > LARGE_RAW and lz4_block_size(data, raw_len) != raw_len:
            raise CaptureError("corrupt compressed chunk: not an LZ4 block of the length "
                               "it declares", offset)
        try:
            from lz4.block import LZ4BlockError
            from lz4.block import decompress as lz4_decompress
        except ImportError:
            raise CaptureError("this capture is LZ4-compressed and the lz4 package is not "
                               "installed (pip install lz4)", offset) from None
        try:
            out = lz4_decompress(data, uncompressed_size=raw_len)
        except LZ4BlockError as exc:
            raise CaptureError(f"corrupt compressed chunk: {exc}", offset) from None
        if len(out) != raw_len:
            raise CaptureError("corrupt compressed chunk: wrong length", offset)
        return bytes(out)
    import zlib

    d = zlib.decompressobj()
    try:
        out = d.decompress(data, raw_len)
    except zlib.error as exc:
        raise CaptureError(f"corrupt compressed chunk: {exc}", offset) from None
    if len(out) != raw_len or not d.eof or d.unconsumed_tail or d.unused_data:
        raise CaptureError("corrupt compressed chunk: wrong length", offset)
    return out

# ---- varints -------------------------------------------------------------------------


def put_uvarint(out: bytearray, n: int) -> None:
    if n < 0:
        raise ValueError("negative uvarint")
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def zigzag(n: int) -> int:
    return (n << 1) if n >= 0 else ((-n) << 1) - 1


def unzigzag(z: int) -> int:
    return (z >> 1) if not z & 1 else -((z + 1) >> 1)


# ---- int64 columns -------------------------------------------------------------------


def shuffle64(raw: bytes) -> bytes:
    """Group byte i of every 8-byte value together (zlib then sees long runs)."""
    return b"".join(raw[i::8] for i in range(8))


def unshuffle64(data: bytes, n: int) -> bytes:
    out = bytearray(n * 8)
    for i in range(8):
        out[i::8] = data[i * n : (i + 1) * n]
    return bytes(out)


def pack_i64(values: Sequence[int] | Iterable[int]) -> bytes:
    """int64 column -> shuffled little-endian bytes (OverflowError if not int64).

    ``struct``, not ``array``: importing ``array`` imports ``collections`` (~2 ms of
    ``memscope run``'s start-up), and ``struct.pack`` packs a column faster."""
    v = values if isinstance(values, (list, tuple)) else list(values)
    try:
        raw = struct.pack(f"<{len(v)}q", *v)
    except struct.error as exc:
        raise OverflowError(f"not an int64 column: {exc}") from None
    return shuffle64(raw)


def unpack_i64(data: bytes, n: int) -> array[int]:
    from array import array  # readers only (see pack_i64)

    a = array("q")
    a.frombytes(unshuffle64(data, n))
    if not LITTLE:
        a.byteswap()
    return a


def pack_double(x: float) -> bytes:
    return _DOUBLE.pack(x)


def unpack_double(data: bytes, pos: int) -> float:
    return float(_DOUBLE.unpack_from(data, pos)[0])


