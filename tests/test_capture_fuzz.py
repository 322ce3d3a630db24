"""Fuzzing the reader: mutated and truncated captures raise CaptureError or read fine;
never another exception, never a hang, never a large allocation."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memscope.capture import CaptureError, read_capture, write_capture
from memscope.capture.writer import CaptureWriter
from memscope.events import expand_tables, module_table

EVENTS = [
    (12, 100, 1, "prog", 5),
    (1, 0, "f.py", "m", "q", 3, 1),
    (2, 0, 0, 1, 2, "x", 1),
    (2, 1, 0, 2, 2, "y", 1),
    (3, 1, "list"),
    (4, 7, "MainThread"),
    *[
        e
        for i in range(300)
        for e in (
            (6, 10 + i * 5, 0, i + 1, 7, 0),
            (8, 11 + i * 5, i % 2, i + 1, 1000 + i, 1, 28 + i, -1, -1, -1, -1),
            (10, 12 + i * 5, 1000 + i),
            (7, 13 + i * 5, i + 1),
        )
    ],
    (11, 9999, 1000, 1, 28, ("a", "b")),
    (13, 10000, "w", "m"),
    (15, 2, 1, "g.py", "g",  # a MODULE table row
     *module_table((("<module>", 1, 1), ("h", 3, 4)), ((2, 0, 0, "h", 17), (5, 4, 1, "v", 1)))),
]
READ_BACK = list(expand_tables(EVENTS))  # what the reader gives: MODULE rows expanded


def _sample(tmp: Path, complete: bool) -> bytes:
    if complete:
        return write_capture(tmp / "s.memscope", EVENTS, batch=200).read_bytes()
    w = CaptureWriter(tmp / "u.memscope")
    for i in range(0, len(EVENTS), 300):
        w.write(EVENTS[i : i + 300])
    w.abandon()
    return w.path.read_bytes()


def _read_all(p: Path) -> int:
    tracemalloc.start()
    try:
        try:
            cap = read_capture(p)
            n = sum(1 for _ in cap.events())
        except CaptureError as exc:
            assert exc.offset >= -1
            n = -1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"reader allocated {peak} bytes for a {p.stat().st_size}-byte file"
    return n


_HC = [HealthCheck.function_scoped_fixture]
mutation = st.tuples(st.integers(min_value=0, max_value=10**6), st.binary(min_size=1, max_size=8))


@settings(max_examples=300, deadline=None, suppress_health_check=_HC)
@given(
    complete=st.booleans(),
    mutations=st.lists(mutation, min_size=0, max_size=4),
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)),
)
def test_mutated_captures(tmp_path: Path, complete: bool, mutations: list, cut: int | None) -> None:
    raw = bytearray(_sample(tmp_path, complete))
    for off, data in mutations:
        off %= len(raw)
        raw[off : off + len(data)] = data
    if cut is not None:
        raw = raw[: cut % (len(raw) + 1)]
    p = tmp_path / "m.memscope"
    p.write_bytes(bytes(raw))
    _read_all(p)


@settings(max_examples=200, deadline=None, suppress_health_check=_HC)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_after_a_valid_header(tmp_path: Path, tail: bytes) -> None:
    head = _sample(tmp_path, False)[:128]
    p = tmp_path / "a.memscope"
    p.write_bytes(head + tail)
    _read_all(p)


def test_lying_lengths_are_bounded(tmp_path: Path) -> None:
    """A chunk that claims 4 GiB, a string count of 2**60, a huge column: errors."""
    import struct

    from memscope.capture import format as F

    raw = bytearray(_sample(tmp_path, False))
    cap = read_capture(tmp_path / "u.memscope")
    off = cap.chunks[1].offset
    for length in (0xFFFFFFFF, F.MAX_CHUNK + 1):
        bad = bytearray(raw)
        bad[off : off + 4] = struct.pack("<I", length)
        p = tmp_path / "b.memscope"
        p.write_bytes(bytes(bad))
        assert _read_all(p) == -1


def test_every_truncation_of_an_unclosed_capture_reads_a_prefix(tmp_path: Path) -> None:
    raw = _sample(tmp_path, False)
    p = tmp_path / "t.memscope"
    last = -1
    for cut in [*range(128, len(raw), 7), len(raw)]:
        p.write_bytes(raw[:cut])
        cap = read_capture(p)
        evs = list(cap.events())
        assert evs == READ_BACK[: len(evs)]
        assert len(evs) >= last
        last = len(evs)
    assert last == len(READ_BACK)


@settings(max_examples=300, deadline=None)
@given(
    counts=st.tuples(st.integers(-2, 6), st.integers(-2, 6)),
    ints=st.one_of(st.binary(max_size=400), st.lists(st.integers(-3, 9), max_size=50)),
    names=st.one_of(st.binary(max_size=60), st.lists(st.sampled_from(["a", "b", "é", ""]),
                                                      max_size=12)),
    planes=st.booleans(),
)
def test_module_table_rows_decode_or_raise(counts: tuple[int, int], ints: object,
                                           names: object, planes: bool) -> None:
    """A stored MODULE row's fields, arbitrary, its numbers packed as byte planes or as
    int64 (3.x's form, now wrong): the reader gives exactly S + N rows whose site scopes
    are the module's own, or a CaptureError; nothing else."""
    from memscope.capture import format as F
    from memscope.capture.reader import _Cur, _module_rows

    ns, n = counts
    pack = F.pack_planes if planes else F.pack_i64
    raw = pack(ints) if isinstance(ints, list) else ints
    blob = "\0".join(names).encode() if isinstance(names, list) else names
    try:
        rows = _module_rows((15, 100, 10, "f.py", "m", ns, n, raw, blob), _Cur(b"", 0))
    except CaptureError:
        return
    assert len(rows) == ns + n
    assert all(10 <= r[2] < 10 + ns for r in rows[ns:])


@settings(max_examples=400, deadline=None)
@given(
    vals=st.lists(st.one_of(st.integers(-3, 300), st.integers(0, 5),
                            st.integers(-(2**63), 2**63 - 1)), max_size=60),
    data=st.data(),
    limit=st.sampled_from([0, 1, 3, 6, 255, 256, 257, 1000]),
)
def test_byte_planes_round_trip_and_range_checks(vals: list[int], data: st.DataObject,
                                                 limit: int) -> None:
    """A column packed as byte planes unpacks to itself, and ``all_below`` (the
    writer's check of a packed module table) answers as the unpacked values do; a body
    cut or padded by a byte fits no column."""
    from memscope.planes import all_below, pack_planes, unpack_planes

    n = len(vals)
    body = pack_planes(vals)
    assert list(unpack_planes(body, n) or ()) == vals
    start = data.draw(st.integers(0, n))
    count = data.draw(st.integers(0, n - start))
    assert all_below(body, n, start, count, limit) == all(0 <= v < limit
                                                          for v in vals[start : start + count])
    assert unpack_planes(body[:-1], n) is None and unpack_planes(body + b"\0", n) is None
    assert all_below(body[:-1], n, start, count, limit) is None


# ---- declared sizes: the reader's memory stays near what the file really holds -------


def _crafted_chunk(tmp: Path, codec: str, payload: bytes, raw_len: int) -> Path:
    """A readable unclosed capture (a process chunk, a type row) followed by one
    EVENTS chunk whose payload, flags and declared raw length are given, its CRC
    valid (the framing the writer uses)."""
    import zlib

    from memscope.capture import format as F

    w = CaptureWriter(tmp / "c.memscope", compression="none")
    w.write([(12, 1, 0, "p", 5), (3, 1, "list")])
    w.abandon()
    flag = {"lz4": F.CF_LZ4, "zlib": F.CF_ZLIB}[codec]
    head12 = F.CHUNK_STRUCT.pack(len(payload), F.CHUNK_EVENTS, flag, 0, raw_len, 0)[:12]
    crc = zlib.crc32(payload, zlib.crc32(head12)) & 0xFFFFFFFF
    p = tmp / "crafted.memscope"
    p.write_bytes(w.path.read_bytes() + head12 + crc.to_bytes(4, "little") + payload)
    return p


def _compress(codec: str, data: bytes) -> bytes:
    import zlib

    if codec == "zlib":
        return zlib.compress(data, 1)
    from lz4.block import compress

    return bytes(compress(data, store_size=False))


def _peak_of_reading(p: Path) -> tuple[int, str]:
    """(tracemalloc peak while the capture is opened and every event read, the error)"""
    tracemalloc.start()
    try:
        try:
            for _ in read_capture(p).events():
                pass
            err = ""
        except CaptureError as exc:
            err = str(exc)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, err


MiB = 1 << 20


@pytest.mark.parametrize("codec", ["lz4", "zlib"])
def test_a_chunk_declaring_256_mib_is_refused_before_it_is_allocated(
        tmp_path: Path, codec: str) -> None:
    """Issue 16: a chunk declaring 256 MiB raw drove the reader to hundreds of MB before
    its error. A payload of a few bytes cannot hold 256 MiB in either codec: refused
    from the chunk header, nothing allocated for it."""
    p = _crafted_chunk(tmp_path, codec, _compress(codec, bytes(1000)), 256 * MiB)
    peak, err = _peak_of_reading(p)
    assert "cannot hold" in err, err
    assert peak < 4 * MiB, peak


@pytest.mark.parametrize("codec", ["lz4", "zlib"])
def test_a_compression_bomb_is_refused_before_it_is_expanded(tmp_path: Path,
                                                             codec: str) -> None:
    """32 MiB of zeros really compressed (128 KiB as LZ4, about 150 KiB as zlib at
    level 1; 256 MiB behaves the same, docs/capture-format.md): a chunk far larger
    than memscope writes (its chunks are a few hundred KiB) expanding more than any
    capture's data does is refused unexpanded."""
    p = _crafted_chunk(tmp_path, codec, _compress(codec, bytes(32 * MiB)), 32 * MiB)
    peak, err = _peak_of_reading(p)
    assert "expand" in err, err
    assert peak < 8 * MiB, peak


@pytest.mark.parametrize("codec", ["lz4", "zlib"])
@pytest.mark.parametrize("payload", ["lying", "garbage"])
def test_a_chunk_larger_than_its_data_costs_only_its_data(tmp_path: Path, codec: str,
                                                          payload: str) -> None:
    """A payload of 3 MiB that decompresses to 3 MiB (or is not compressed data at all)
    declaring 150 MiB, a ratio a real codec allows: the reader's peak is a small
    multiple of the 3 MiB, not the 150 MiB declared."""
    data = os.urandom(3 * MiB)
    stored = _compress(codec, data) if payload == "lying" else data
    p = _crafted_chunk(tmp_path, codec, stored, 150 * MiB)
    peak, err = _peak_of_reading(p)
    assert "corrupt compressed chunk" in err, err
    assert peak < 6 * 3 * MiB, peak


def test_real_chunks_are_read_in_a_small_multiple_of_their_size(tmp_path: Path) -> None:
    """The largest chunk of a real capture, and the reader's peak over the whole
    file (a few times that chunk: the payload, its columns, the rows of one chunk)."""
    from memscope.capture import format as F

    evs = [(8, 10 + i, i % 50, i % 7, 1000 + i, 1, 28 + i, -1, -1, -1, -1)
           for i in range(40_000)]
    p = write_capture(tmp_path / "r.memscope", [(12, 1, 0, "p", 5), *evs])
    cap = read_capture(p)
    largest = max(c.raw_len for c in cap.chunks if c.kind == F.CHUNK_EVENTS)
    peak, err = _peak_of_reading(p)
    assert not err
    assert peak < 40 * largest + MiB, (peak, largest)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.one_of(st.binary(max_size=300),
                                st.tuples(st.binary(min_size=1, max_size=4),
                                          st.integers(1, 5000)).map(lambda t: t[0] * t[1])),
                      max_size=8),
       cut=st.integers(0, 50))
def test_the_lz4_block_walk_gives_the_length_lz4_gives(parts: list[bytes], cut: int) -> None:
    """``lz4_block_size`` (what the reader walks before allocating a large LZ4 chunk)
    agrees with the codec on every block, and never accepts a cut one as whole."""
    from lz4.block import compress

    from memscope.capture.format import lz4_block_size

    data = b"".join(parts)
    block = bytes(compress(data, store_size=False))
    assert lz4_block_size(block, len(data)) == len(data)
    if len(data) > 0:
        assert lz4_block_size(block, len(data) - 1) is None
    if 0 < cut < len(block):
        assert lz4_block_size(block[:-cut], len(data)) != len(data)
