"""int64 columns as byte planes: how the capture stores numbers, and how instrumented
code holds its module's table.

Byte b of every value of a column is one *plane*; a plane that is one repeated byte
(the high bytes of small numbers, the -1 of fields not recorded) is stored as that
byte. The body of such a column (``COL_I64_PLANES`` in docs/capture-format.md) is a
mask byte (bit b set: plane b is stored whole) then the eight planes. The transformer
packs a module's table this way once, at instrumentation, so that neither the import
nor the capture writer packs it again (``memscope.events``, MODULE rows).
"""

from __future__ import annotations

import struct
import sys

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    from array import array
    from collections.abc import Callable, Sequence

LITTLE = sys.byteorder == "little"
_BYTE = [bytes((i,)) for i in range(256)]
_ALL = bytes(range(256))


def py_planes(raw: bytes, start: int, step: int, n: int) -> tuple[int, list[bytes]]:
    """The byte planes of ``n`` little-endian int64 values that start at ``raw[start]``,
    ``step`` bytes apart: ``(mask, parts)``, where part b is plane b (``n`` bytes) when
    bit b of ``mask`` is set, else the one byte every value has there. One strided
    slice per plane, and a memset + memcmp to test it: far cheaper than counting."""
    mask = 0
    parts: list[bytes] = []
    for b in range(8):
        plane = raw[start + b :: step]
        one = _BYTE[plane[0]]
        if plane == one * n:
            parts.append(one)
        else:
            mask |= 1 << b
            parts.append(plane)
    return mask, parts


planes: Callable[[bytes, int, int, int], tuple[int, list[bytes]]]
try:  # the same in one C pass, where the hot path's extension is built
    from memscope._hotpath import planes
except ImportError:
    planes = py_planes


def pack_planes(values: Sequence[int]) -> bytes:
    """An int64 column as a byte-plane body (``unpack_planes``); OverflowError if a
    value is not an int64."""
    n = len(values)
    if not n:
        return bytes(9)  # mask 0, then eight planes of nothing, each one byte
    try:
        raw = struct.pack(f"<{n}q", *values)
    except struct.error as exc:
        raise OverflowError(f"not an int64 column: {exc}") from None
    mask, parts = planes(raw, 0, 8, n)
    return bytes((mask,)) + b"".join(parts)


def _layout(data: bytes, n: int) -> list[tuple[int, bool]] | None:
    """``(offset, stored)`` of each plane of a body of ``n`` values, or None if the
    body's length does not fit ``n`` values."""
    if not data:
        return None
    mask = data[0]
    stored = mask.bit_count()
    if len(data) != 1 + stored * n + (8 - stored):
        return None
    out = []
    pos = 1
    for b in range(8):
        whole = bool(mask >> b & 1)
        out.append((pos, whole))
        pos += n if whole else 1
    return out


def unpack_planes(data: bytes, n: int) -> memoryview | array[int] | None:
    """A byte-plane column of ``n`` values, or None if its length does not match:
    u8 mask, then for byte b = 0..7: ``n`` bytes if bit b of mask is set, else the one
    byte every value has there."""
    layout = _layout(data, n)
    return None if layout is None else _unpack(data, n, layout)


def _unpack(data: bytes, n: int, layout: list[tuple[int, bool]]) -> memoryview | array[int]:
    """The values, read in place as native int64 (a memoryview: no ``array`` import,
    which the hot path would otherwise make in the middle of a program that traces its
    own allocations; a big-endian machine swaps them in an array)."""
    out = bytearray(n * 8)
    for b, (pos, whole) in enumerate(layout):
        if whole:
            out[b::8] = data[pos : pos + n]
        elif data[pos]:
            out[b::8] = data[pos : pos + 1] * n
    if LITTLE:
        return memoryview(out).cast("q")
    from array import array  # (imports collections, ~2 ms)

    a = array("q")
    a.frombytes(out)
    a.byteswap()
    return a


def all_below(data: bytes, n: int, start: int, count: int, limit: int) -> bool | None:
    """Whether values ``start .. start + count`` of a body of ``n`` values all lie in
    ``[0, limit)``, read off the planes without unpacking them (a module table's site
    scopes, checked by the capture writer at every import): plane 0 holds no byte of
    ``limit`` or more, every higher plane only zeros. None if the body's length does
    not fit ``n`` values or ``start + count`` exceeds it."""
    layout = _layout(data, n)
    if layout is None or start < 0 or count < 0 or start + count > n:
        return None
    if not count:
        return True
    if limit > 256:  # beyond one byte: unpack (modules with more than 256 scopes)
        vals = _unpack(data, n, layout)[start : start + count]
        return min(vals) >= 0 and max(vals) < limit
    for b, (pos, whole) in enumerate(layout):
        part = data[pos + start : pos + start + count] if whole else data[pos : pos + 1]
        if b == 0:
            if part.translate(None, _ALL[:limit]):  # what is left once bytes < limit go
                return False
        elif part.count(0) != len(part):  # a high byte set: >= 256, or negative
            return False
    return True
