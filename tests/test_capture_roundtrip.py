"""The capture writer and reader: round trips, real runs, errors with offsets."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from memscope.capture import CaptureError, read_capture, write_capture
from memscope.capture import format as F
from memscope.capture.writer import CaptureWriter

ROOT = Path(__file__).resolve().parents[1]

EVENTS = [
    (12, 100, 1, "prog", 5),
    (1, 0, "f.py", "m", "q", 3, 1),
    (2, 0, 0, 1, 2, "x", 1),
    (3, 1, "int"),
    (4, 7, "MainThread"),
    (5, 1, "Task-1"),
    (6, 10, 0, 1, 7, 0),
    (8, 11, 0, 1, 1234567, 1, 28, -1, -1, -1, -1),
    (8, 12, 0, 1, 2**62, 1, 28, 100, 3, 2**40, 4096),
    (9, 12, 0, 1),
    (10, 13, 1234567),
    (11, 14, 1234567, 1, 28, ("a.b", "c")),
    (13, 15, "where", "message é"),
    (14, 16, 0, 64, 10),
    (7, 20, 1),
]


def test_round_trip_every_event_kind(tmp_path: Path) -> None:
    p = write_capture(tmp_path / "a.memscope", EVENTS, runtime_mode="full")
    cap = read_capture(p)
    assert list(cap.events()) == EVENTS
    h = cap.header
    assert h.complete and h.records == len(EVENTS) - 1 and h.processes == 1
    assert h.runtime == "full" and h.mode == "full"
    assert cap.processes[0].pid == 100 and cap.processes[0].argv0 == "prog"
    assert cap.recovery.complete and cap.recovery.torn_bytes == 0
    # a second pass streams the same events again
    assert list(cap.events()) == EVENTS


def test_unusual_values_survive(tmp_path: Path) -> None:
    evs = [
        (8, 1, 0, 1, 2**70, 1, -(2**65), -1, -1, -1, -1),  # beyond int64: generic column
        (13, 2, None, 1.5),  # wrong types: generic column
        (13, 3, True, (1, ("x", b"y"))),
        (99, "future", 1),  # an unknown kind
        (3, 5, "t"),
        (3, 6, "t", "extra"),  # rows of different lengths
    ]
    p = write_capture(tmp_path / "b.memscope", evs)
    assert list(read_capture(p).events()) == evs


def test_strings_interned_once_and_numbers_packed(tmp_path: Path) -> None:
    evs = [(1, i, "some/very/long/file/name.py", "mod", f"f{i % 3}", 3, 1) for i in range(5000)]
    p = write_capture(tmp_path / "c.memscope", evs)
    raw = p.read_bytes()
    assert raw.count(b"some/very/long/file/name.py") <= 1
    assert len(raw) < 5000 * 4  # far less than the text
    assert list(read_capture(p).events()) == evs


def test_many_chunks_and_batches(tmp_path: Path) -> None:
    evs = [(8, i * 7, i % 5, i // 10, 10_000 + i, 1, 28, -1, -1, -1, -1) for i in range(50_000)]
    p = write_capture(tmp_path / "d.memscope", evs, batch=1000)
    cap = read_capture(p)
    assert len(cap.chunks) >= 50
    assert list(cap.events()) == evs


def _mutate(p: Path, offset: int, data: bytes) -> None:
    raw = bytearray(p.read_bytes())
    raw[offset : offset + len(data)] = data
    p.write_bytes(bytes(raw))


def test_foreign_file(tmp_path: Path) -> None:
    p = tmp_path / "x.memscope"
    p.write_bytes(b"PK\x03\x04 this is a zip file" * 10)
    with pytest.raises(CaptureError, match="not a memscope capture") as e:
        read_capture(p)
    assert e.value.offset == 0


def test_future_version(tmp_path: Path) -> None:
    p = write_capture(tmp_path / "v.memscope", EVENTS)
    _mutate(p, 8, struct.pack("<H", F.VERSION_MAJOR + 1))
    with pytest.raises(CaptureError, match="newer than this reader") as e:
        read_capture(p)
    assert e.value.offset == 8


def test_corrupt_header_and_chunk(tmp_path: Path) -> None:
    p = write_capture(tmp_path / "h.memscope", EVENTS)
    good = p.read_bytes()
    _mutate(p, 30, b"\xff")
    with pytest.raises(CaptureError, match="header checksum"):
        read_capture(p)
    p.write_bytes(good)
    cap = read_capture(p)
    target = next(c for c in cap.chunks if c.kind == F.CHUNK_EVENTS)
    _mutate(p, target.offset + F.CHUNK_HEAD + 3, bytes([good[target.offset + 19] ^ 0x55]))
    with pytest.raises(CaptureError, match="checksum mismatch") as e:
        list(read_capture(p).events())
    assert e.value.offset == target.offset
    assert str(target.offset) in str(e.value)


def test_truncated_complete_file(tmp_path: Path) -> None:
    p = write_capture(tmp_path / "t.memscope", EVENTS)
    raw = p.read_bytes()
    p.write_bytes(raw[:-5])
    with pytest.raises(CaptureError, match="truncated"):
        read_capture(p)
    p.write_bytes(raw[:100])
    with pytest.raises(CaptureError, match="truncated header"):
        read_capture(p)
    p.write_bytes(raw + b"junk")
    with pytest.raises(CaptureError, match="unexpected bytes"):
        read_capture(p)


def test_unclosed_writer_is_recovered_up_to_last_chunk(tmp_path: Path) -> None:
    w = CaptureWriter(tmp_path / "k.memscope")
    w.write(EVENTS[:7])
    w.write(EVENTS[7:])
    end_good = w.offset
    os.pwrite(w.fd, b"\x40\x00\x00\x00\x03", end_good)  # a torn chunk header
    w.abandon()
    cap = read_capture(w.path)
    assert not cap.header.complete
    assert list(cap.events()) == EVENTS
    r = cap.recovery
    assert not r.complete and r.good_bytes == end_good and r.torn_bytes == 5
    assert r.events == len(EVENTS)
    assert "recovered" in r.message


def test_sink_reads_back_while_open(tmp_path: Path) -> None:
    from memscope.capture import CaptureSink

    sink = CaptureSink(tmp_path, "s")
    sink.write(EVENTS[:5])
    assert list(sink.iter_events()) == EVENTS[:5]
    sink.write(EVENTS[5:])
    sink.close()
    sink.write([(7, 99, 5)])  # after close: kept in memory, still read back
    assert list(sink.iter_events()) == [*EVENTS, (7, 99, 5)]
    assert read_capture(sink.path).header.complete


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = cwd / "prog.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_real_run_through_init(tmp_path: Path) -> None:
    r = _run(
        f"""
        import memscope
        t = memscope.init(mode="full", output_dir={str(tmp_path)!r}, name="x")
        data = [1, 2, 3]
        memscope.track_var(data)
        with memscope.track_scope("load"):
            big = bytearray(10000)
            memscope.track_var(big)
        n = sum(1 for _ in t.events())
        t.close()
        print(n)
        """,
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    files = list((tmp_path / "x").glob("x.*.memscope"))
    assert len(files) == 1
    cap = read_capture(files[0])
    evs = list(cap.events())
    assert evs[0][0] == 12  # PROC first
    names = {e[5] for e in evs if e[0] == 2}
    assert {"data", "big"} <= names
    assert cap.header.complete and cap.header.runtime == "full"
    assert len(evs) >= int(r.stdout.split()[-1])
    assert cap.header.user_records >= 2


def test_killed_process_leaves_a_readable_capture(tmp_path: Path) -> None:
    r = _run(
        f"""
        import os, memscope
        from memscope import _hooks
        t = memscope.init(mode="fast", output_dir={str(tmp_path)!r}, name="k")
        for i in range(3000):
            memscope.track_var([i])
            if i % 500 == 499:
                _hooks.flush()
        print("flushed", flush=True)
        os._exit(9)
        """,
        tmp_path,
    )
    assert r.returncode == 9, r.stderr
    (path,) = (tmp_path / "k").glob("k.*.memscope")
    cap = read_capture(path)
    assert not cap.header.complete
    binds = [e for e in cap.events() if e[0] == 8]
    assert len(binds) >= 3000
    assert cap.recovery.events > 3000 and "recovered" in cap.recovery.message


def test_sigkill_mid_run(tmp_path: Path) -> None:
    code = f"""
        import memscope, sys
        from memscope import _hooks
        t = memscope.init(mode="fast", output_dir={str(tmp_path)!r}, name="s")
        i = 0
        while True:
            memscope.track_var(bytearray(i % 100))
            i += 1
            if i == 20000:
                _hooks.flush()
                print("go", flush=True)
        """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "go"
    proc.kill()
    proc.wait(timeout=60)
    (path,) = (tmp_path / "s").glob("s.*.memscope")
    cap = read_capture(path)
    n = sum(1 for e in cap.events() if e[0] == 8)
    assert n >= 20000
    assert not cap.recovery.complete


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_writes_separate_captures(tmp_path: Path) -> None:
    r = _run(
        f"""
        import os, memscope
        t = memscope.init(mode="fast", output_dir={str(tmp_path)!r}, name="f")
        before = [1]
        memscope.track_var(before)
        pid = os.fork()
        if pid == 0:
            in_child = bytearray(10)
            memscope.track_var(in_child)
            t.close()
            os._exit(0)
        os.waitpid(pid, 0)
        in_parent = "p" * 100
        memscope.track_var(in_parent)
        t.close()
        print(os.getpid(), pid)
        """,
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    parent, child = map(int, r.stdout.split())
    pc = read_capture(tmp_path / "f" / f"f.{parent}.memscope")
    cc = read_capture(tmp_path / "f" / f"f.{child}.memscope")

    def bound(cap: object) -> set[str]:
        evs = list(cap.events())  # type: ignore[attr-defined]
        sites = {e[1]: e[5] for e in evs if e[0] == 2}
        return {sites[e[2]] for e in evs if e[0] == 8}

    assert bound(pc) == {"before", "in_parent"}
    assert bound(cc) == {"in_child"}  # the child's file has the tables, not the parent's binds
    assert cc.header.flags & F.FLAG_FORKED and cc.header.complete
    assert cc.processes[0].pid == child and cc.processes[0].ppid == parent
    assert pc.header.complete


def test_sampled_events_round_trip(tmp_path: Path) -> None:
    """SAMPLED (14) rows: alone, mixed with binds in stream order, through the sink."""
    from memscope.capture import CaptureSink
    from memscope.events import BIND, SAMPLED

    evs: list[tuple[int, ...]] = []
    for i in range(3000):
        evs.append((BIND, 1000 + 3 * i, i % 7, i, 5000 + i, 1, 28, -1, -1, -1, -1))
        if i % 100 == 99:
            evs.append((SAMPLED, 1001 + 3 * i, i % 7, 64, i // 100))
    p = write_capture(tmp_path / "s.memscope", evs, batch=777)
    assert list(read_capture(p).events()) == evs
    only = [(SAMPLED, 10 + i, i, 2**i, 2**40 + i) for i in range(40)]
    p = write_capture(tmp_path / "o.memscope", only)
    assert list(read_capture(p).events()) == only
    sink = CaptureSink(tmp_path, "sampled")
    sink.write(evs[:1500])
    sink.write(evs[1500:])
    sink.close()
    assert list(read_capture(sink.path).events()) == evs


def test_int64_rows_all_byte_planes(tmp_path: Path) -> None:
    """Rows of ints take the byte-plane columns: extremes, negatives, constant and varying
    planes, one row, rows of another length of the same kind, and a huge int."""
    lo, hi = -(2**63), 2**63 - 1
    evs = [
        (8, lo, hi, -1, 0, 1, 255, 256, -256, 2**32, -(2**32)),
        *[(8, i, -i, i * 2**40, -1, 7, i % 256, 2**56 + i, lo + i, hi - i, 0) for i in range(500)],
        (6, 1, 2, 3, 4, 5),
        (7, hi, lo),
    ]
    p = write_capture(tmp_path / "i.memscope", evs)
    cap = read_capture(p)
    assert list(cap.events()) == evs
    assert all(type(v) is int for e in cap.events() for v in e)
    assert write_capture(tmp_path / "one.memscope", evs[:1]) and list(
        read_capture(tmp_path / "one.memscope").events()
    ) == evs[:1]
    mixed = [(7, 1, 2), (7, 3), (7, 2**64, 1), (7, 5, 6), (7,), (7,)]
    p = write_capture(tmp_path / "m.memscope", mixed)
    assert list(read_capture(p).events()) == mixed


def test_int_rows_are_stored_as_plain_ints(tmp_path: Path) -> None:
    """Documented: in a group of all-integer rows, int subclasses come back as the equal
    plain int (the runtime only emits ints there); elsewhere bools stay bools."""
    evs = [(9, 1, True, 3), (9, 2, False, 4), (13, 5, True, "x")]
    got = list(read_capture(write_capture(tmp_path / "b.memscope", evs)).events())
    assert got == evs
    assert type(got[0][2]) is int and type(got[2][2]) is bool


def test_user_records_counted_for_small_and_large_site_ids(tmp_path: Path) -> None:
    evs = [
        (1, 0, "/app/user.py", "user", "f", 3, 1),
        (1, 1, os.__file__, "os", "g", 3, 1),
        (2, 5, 0, 1, 1, "a", 1),  # user
        (2, 6, 1, 1, 1, "b", 1),  # stdlib
        (2, 300, 0, 1, 1, "c", 1),  # user, id >= 256
        *[(8, i, (5, 6)[i % 2], 1, i, 1, 28, -1, -1, -1, -1) for i in range(100)],
    ]
    h = read_capture(write_capture(tmp_path / "u.memscope", evs)).header
    assert h.user_records == 50
    evs.extend((8, 200 + i, (300, 6)[i % 2], 1, i, 1, 28, -1, -1, -1, -1) for i in range(10))
    h = read_capture(write_capture(tmp_path / "v.memscope", evs)).header
    assert h.user_records == 55


def _set_major(p: Path, major: int) -> None:
    raw = bytearray(p.read_bytes())
    raw[8:10] = struct.pack("<H", major)
    raw[F.HEADER_CRC_AT : F.HEADER_SIZE] = struct.pack("<I", F.crc32(raw[: F.HEADER_CRC_AT]))
    p.write_bytes(bytes(raw))


@pytest.mark.parametrize("major", [1, 2, 3, 4])
def test_captures_of_older_formats_are_refused_in_one_line(tmp_path: Path, major: int) -> None:
    """Formats 1.x to 4.x came before memscope 0.1.0, which has no users of them: such a
    file is refused with a clear error, not read by paths nothing writes any more."""
    p = write_capture(tmp_path / "old.memscope", EVENTS)
    _set_major(p, major)
    with pytest.raises(CaptureError, match=f"version {major}.0 was written by an older "
                                           "memscope; this one reads 5.x"):
        read_capture(p)


def test_corrupt_byte_plane_column_lengths(tmp_path: Path) -> None:
    """The reader checks a byte-plane column's length against its mask and row count."""
    from memscope.capture.reader import _column, _Cur

    # plane 0 stored (1, 2, 3); planes 1..7 one byte each (0 0 0 0 0 0 0xff)
    good = bytes([F.COL_I64_PLANES, 11, 0b1, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0xFF])
    assert _column(_Cur(good, 0), [], 3) == [v - 2**56 for v in (1, 2, 3)]
    for bad in (bytes([F.COL_I64_PLANES, 0]), bytes([F.COL_I64_PLANES, 2, 0, 0])):
        with pytest.raises(CaptureError, match="byte-plane column"):
            _column(_Cur(bad, 0), [], 3)
    with pytest.raises(CaptureError, match="byte-plane column"):
        _column(_Cur(good, 0), [], 4)


def test_failed_write_leaves_an_incomplete_readable_capture(tmp_path: Path) -> None:
    w = CaptureWriter(tmp_path / "f.memscope")
    w.write(EVENTS[:7])
    os.close(w.fd)
    w.fd = os.open(os.devnull, os.O_RDONLY)  # writes now fail
    with pytest.raises(OSError):
        w.write(EVENTS[7:])
    w.write(EVENTS[7:])  # after a failure: counted as dropped, nothing written
    w.close()
    assert w.failed and w.dropped == 2 * len(EVENTS[7:])
    cap = read_capture(w.path)
    assert not cap.header.complete and list(cap.events()) == EVENTS[:7]


MOD_SCOPES = (("<module>", 1, 1), ("f", 3, 2), ("f.<locals>.g\u00e9", 3, 4))
MOD_SITES = ((1, 0, 0, "f", 17), (2, 6, 1, "x", 9), (3, 4, 1, "y\ud800", 1), (5, 8, 2, "z", 1))


def test_module_table_rows_round_trip_as_scope_and_site_rows(tmp_path: Path) -> None:
    """A MODULE row (one module's whole table, as ``register`` records it) is stored
    packed and reads back as exactly the SCOPE and SITE rows it stands for, in place."""
    from memscope.events import MODULE, expand_module, module_table

    row = (MODULE, 40, 7, "/app/m.py", "m", *module_table(MOD_SCOPES, MOD_SITES))
    empty = (MODULE, 44, 10, "/app/e.py", "e", *module_table((), ()))
    one = (MODULE, 44, 10, "/app/o.py", "o", *module_table((("<module>", 1, 1),), ()))
    evs = [EVENTS[0], (4, 7, "MainThread"), row, empty, one, (6, 10, 9, 1, 7, 0),
           (8, 11, 43, 1, 5, 1, 28, -1, -1, -1, -1)]
    got = list(read_capture(write_capture(tmp_path / "t.memscope", evs)).events())
    assert got == [EVENTS[0], (4, 7, "MainThread"), *expand_module(row),
                   *expand_module(one), *evs[5:]]
    assert expand_module(row)[2] == (1, 9, "/app/m.py", "m", "f.<locals>.g\u00e9", 3, 4)
    assert expand_module(row)[-1] == (2, 43, 9, 5, 8, "z", 1)


def test_malformed_module_rows_are_written_as_plain_rows(tmp_path: Path) -> None:
    """A table the packed form cannot hold (a non-int line, a site naming a scope that
    is not there) is written as its SCOPE/SITE rows instead, and dropped (counted) when
    it is not a table at all (a NUL in a name: one name too many; wrong fields): the
    capture stays readable."""
    from memscope.capture.writer import Encoder
    from memscope.events import MODULE, expand_module, module_table

    top = (("<module>", 1, 1),)
    nul = (MODULE, 0, 0, "/a.py", "a", *module_table(top, ((1, 0, 0, "a\0b", 1),)))
    odd = (MODULE, 1, 1, "/b.py", "b", *module_table(top, ((1.5, 0, 0, "v", 1),)))
    far = (MODULE, 2, 2, "/c.py", "c", *module_table(top, ((1, 0, 5, "v", 1),)))
    junk = (MODULE, 3, 3, "/d.py", "d", 42, None)
    got = list(read_capture(write_capture(tmp_path / "m.memscope",
                                          [EVENTS[0], nul, odd, far, junk])).events())
    assert got[1:] == [*expand_module(odd), *expand_module(far)]
    enc = Encoder()
    enc.events_payloads([junk, nul, odd], bytes((MODULE, MODULE, MODULE)))
    assert enc.bad_tables == 2


def test_corrupt_module_table_is_a_clear_error() -> None:
    """Counts, lengths, names and scope indices of a stored MODULE row are checked (its
    numbers stored as byte planes)."""
    from memscope.capture.reader import _Cur, _module_rows
    from memscope.capture.writer import pack_module
    from memscope.events import MODULE, expand_module, module_table

    pack = F.pack_planes
    ns, nt, nums, text = module_table(MOD_SCOPES, MOD_SITES)
    good = (*pack_module((MODULE, 0, 0, "/m.py", "m", ns, nt, nums, text))[:7], pack(nums),
            text.encode("utf-8", "surrogatepass"))
    rows = _module_rows(good, _Cur(b"", 0))
    assert rows == expand_module((MODULE, 0, 0, "/m.py", "m", ns, nt, nums, text))
    ints, names = good[7], good[8]
    cases = {
        "fields": good[:8],
        "wrong type": (*good[:3], 5, *good[4:]),
        "bytes of numbers": (*good[:6], 5, ints, names),
        "not an int of at least 0": (*good[:5], -1, 0, pack([]), b""),
        "names for": (*good[:8], names + b"\0extra"),
        "not UTF-8": (*good[:8], b"\xff" + names),
        "names a scope": (*good[:5], 1, 1, pack([1, 1, 1, 0, 5, 1]), b"<module>\0v"),
        "sites but no scope": (*good[:5], 0, 1, pack([1, 0, 0, 1]), b"v"),
    }
    for msg, row in cases.items():
        with pytest.raises(CaptureError, match=msg):
            _module_rows(row, _Cur(b"", 0))
    with pytest.raises(CaptureError, match="bytes of numbers"):  # 3.x's int64 numbers
        _module_rows((*good[:7], F.pack_i64(nums), good[8]), _Cur(b"", 0))


def test_user_records_counted_for_module_tables(tmp_path: Path) -> None:
    """The header's user-records count knows a MODULE row's sites (user file or not)."""
    from memscope.events import MODULE, module_table

    table = module_table((("<module>", 1, 1),), tuple((i, 0, 0, f"v{i}", 1) for i in range(300)))
    evs = [
        (MODULE, 0, 0, "/app/user.py", "user", *table),
        (MODULE, 300, 1, os.__file__, "os", *table),
        *[(8, i, (5, 305, 299, 599)[i % 4], 1, i, 1, 28, -1, -1, -1, -1) for i in range(100)],
    ]
    assert read_capture(write_capture(tmp_path / "u.memscope", evs)).header.user_records == 50


def test_a_process_killed_while_creating_its_capture_leaves_no_empty_capture(
    tmp_path: Path,
) -> None:
    """Found in a fork pool test: a worker terminated right after it forked left a
    0-byte ``NAME.PID.memscope`` that broke the run's merged report. The header is
    written under a hidden ``.part`` name and renamed into place: a kill before that
    leaves no file under the capture's name."""
    target = tmp_path / "c" / "run.123.memscope"
    code = textwrap.dedent(f"""
        import os, signal
        from memscope.capture import writer
        writer._write_all = lambda fd, data: os.kill(os.getpid(), signal.SIGKILL)
        writer.CaptureWriter({str(target)!r})
    """)
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True, timeout=60)
    assert r.returncode == -9, r.stderr
    assert not target.exists()
    assert (tmp_path / "c" / ".run.123.memscope.part").exists()
    w = CaptureWriter(target)  # a normal start: the header under the name, no leftover
    assert target.stat().st_size == F.HEADER_SIZE
    assert [p.name for p in target.parent.iterdir()] == ["run.123.memscope"]
    w.close()


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "e.memscope"
    p.write_bytes(b"")
    with pytest.raises(CaptureError, match="empty file: its process ended before"):
        read_capture(p)


def test_fast_and_full_bind_rows_round_trip_alone_and_mixed(tmp_path: Path) -> None:
    """Fast mode's BIND rows stop at the size (6 fields), full mode's have 10; a process
    that switched mode mid-run flushes both widths together. Every batch reads back as
    written, and the analysis takes a short row's missing fields as not recorded."""
    from memscope.analysis import Analysis

    head = EVENTS[:7]
    fast = [(8, 30 + i, 0, 1, 5000 + i, 1, 28 + i) for i in range(50)]
    full = [(8, 80 + i, 0, 1, 6000 + i, 1, 28, 28 + i, 2, -1, -1) for i in range(50)]
    for name, batch in (("fast", fast), ("full", full), ("mixed", fast + full)):
        evs = [*head, *batch, (7, 200, 1)]
        cap = read_capture(write_capture(tmp_path / f"{name}.memscope", evs))
        assert list(cap.events()) == evs
    an = Analysis().feed_all(list(cap.events()))
    got = {b.oid: b for b in an.all_bindings()}
    assert (got[5049].size, got[5049].deep, got[5049].refcnt) == (28 + 49, -1, -1)
    assert (got[6049].size, got[6049].deep, got[6049].refcnt) == (28, 28 + 49, 2)


def _chunks_of(p: Path) -> list[tuple[int, int]]:
    """(kind, flags) of every chunk of the capture at ``p``."""
    return [(c.kind, c.flags) for c in read_capture(p).chunks]


def _big_events() -> list[tuple[int, ...]]:
    """Enough rows that every codec compresses the events chunk."""
    return [EVENTS[0], *((8, 100 + i, i % 7, 1, 1000 + i, 1, 28) for i in range(500))]


@pytest.mark.parametrize("compression", F.COMPRESSIONS)
def test_every_compression_round_trips(tmp_path: Path, compression: str) -> None:
    """Captures are written with LZ4 (5.0); zlib (what 1.0 to 4.x wrote) and none
    still read, and each chunk says what it holds."""
    evs = _big_events()
    p = write_capture(tmp_path / f"{compression}.memscope", evs, compression=compression)
    cap = read_capture(p)
    assert list(cap.events()) == evs
    flags = {f for k, f in _chunks_of(p) if k == F.CHUNK_EVENTS}
    want = {"lz4": F.CF_LZ4, "zlib": F.CF_ZLIB, "none": 0}[compression]
    assert flags == {want}
    assert bool(cap.header.flags & F.FLAG_LZ4) == (compression == "lz4")
    assert bool(cap.header.flags & F.FLAG_ZLIB) == (compression == "zlib")


def _rewrite_chunk(p: Path, pos: int, payload: bytes, flags: int, raw_len: int) -> None:
    """Replace the chunk at ``pos`` (the last one before the footer) keeping its CRC
    right, so only the payload's own decoding can notice."""
    raw = bytearray(p.read_bytes())
    length, kind, _, _, _, _ = F.CHUNK_STRUCT.unpack_from(raw, pos)
    head12 = F.CHUNK_STRUCT.pack(len(payload), kind, flags, 0, raw_len, 0)[:12]
    crc = F.crc32(payload, F.crc32(head12))
    raw[pos : pos + F.CHUNK_HEAD + length] = head12 + struct.pack("<I", crc) + payload
    p.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", ["flipped", "short", "long", "both flags"])
def test_corrupt_lz4_chunk_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    """An LZ4 chunk whose block is damaged, or says a wrong raw length, or claims both
    codecs, with a correct CRC: a CaptureError naming the chunk, never a crash."""
    p = tmp_path / "c.memscope"
    w = CaptureWriter(p)
    w.write(_big_events())
    w.abandon()  # left incomplete, as a killed writer leaves it: its size may change
    chunk = next(c for c in read_capture(p).chunks if c.kind == F.CHUNK_EVENTS)
    assert chunk.flags == F.CF_LZ4
    raw = p.read_bytes()
    block = raw[chunk.offset + F.CHUNK_HEAD : chunk.offset + F.CHUNK_HEAD + chunk.length]
    if damage == "flipped":
        bad, flags, n = bytes(b ^ 0xA5 for b in block), F.CF_LZ4, chunk.raw_len
    elif damage == "short":
        bad, flags, n = block, F.CF_LZ4, chunk.raw_len - 1
    elif damage == "long":
        bad, flags, n = block, F.CF_LZ4, chunk.raw_len + 100
    else:
        bad, flags, n = block, F.CF_LZ4 | F.CF_ZLIB, chunk.raw_len
    _rewrite_chunk(p, chunk.offset, bad, flags, n)
    with pytest.raises(CaptureError) as e:
        list(read_capture(p).events())
    assert e.value.offset == chunk.offset
    assert "chunk" in str(e.value)


def test_without_lz4_the_writer_uses_zlib_and_the_reader_says_what_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """lz4 is a dependency, but a broken install must not lose a capture: the writer
    falls back to zlib, and a reader without lz4 names the package it needs."""
    lz4_capture = write_capture(tmp_path / "lz4.memscope", _big_events())
    monkeypatch.setitem(sys.modules, "lz4.block", None)  # import lz4.block now fails
    p = write_capture(tmp_path / "z.memscope", _big_events())
    assert {f for k, f in _chunks_of(p) if k == F.CHUNK_EVENTS} == {F.CF_ZLIB}
    assert list(read_capture(p).events()) == _big_events()
    with pytest.raises(CaptureError, match="pip install lz4"):
        list(read_capture(lz4_capture).events())


def test_unknown_compression_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown compression 'gzip'"):
        write_capture(tmp_path / "g.memscope", EVENTS, compression="gzip")


def test_user_file_decided_by_folder_and_relative_paths_by_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``is_user_file`` remembers an absolute folder's answer; a relative path is
    resolved against the working directory each time, so a chdir changes it."""
    import sysconfig

    from memscope.capture.writer import is_user_file

    stdlib = sysconfig.get_paths()["stdlib"]
    assert not is_user_file(os.path.join(stdlib, "json", "decoder.py"))
    assert not is_user_file(os.path.join(stdlib, "json", "encoder.py"))
    assert is_user_file(str(tmp_path / "app" / "main.py"))
    assert is_user_file(str(tmp_path / "app" / "util.py"))
    assert is_user_file("<stdin>")
    monkeypatch.chdir(stdlib)
    assert not is_user_file(os.path.join("json", "decoder.py"))
    monkeypatch.chdir(tmp_path)
    assert is_user_file(os.path.join("json", "decoder.py"))


def _packed(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A MODULE row with its numbers packed, as hooks-v4 code passes them."""
    return (*row[:7], F.pack_planes(row[7]), row[8])


def test_packed_module_tables_are_stored_as_they_are(tmp_path: Path) -> None:
    """A table whose numbers come packed (what the transformer writes since hooks v4)
    is checked on its planes and stored without packing it again: it reads back as
    the same rows as the same table given as ints, also past 256 scopes."""
    from memscope.capture.writer import pack_module
    from memscope.events import MODULE, expand_module, module_table

    row = (MODULE, 40, 7, "/app/m.py", "m", *module_table(MOD_SCOPES, MOD_SITES))
    wide = (MODULE, 60, 20, "/app/w.py", "w", *module_table(
        tuple((f"f{i}", 3, i + 1) for i in range(300)),
        ((1, 0, 299, "late", 1), (2, 0, 3, "early", 1))))
    for r in (row, wide):
        given = _packed(r)
        assert pack_module(given)[7] is given[7]  # not packed again
        assert pack_module(given) == pack_module(r)
    plain = [EVENTS[0], row, wide, (6, 10, 9, 1, 7, 0)]
    packed = [EVENTS[0], _packed(row), _packed(wide), (6, 10, 9, 1, 7, 0)]
    want = [EVENTS[0], *expand_module(row), *expand_module(wide), (6, 10, 9, 1, 7, 0)]
    assert list(read_capture(write_capture(tmp_path / "i.memscope", plain)).events()) == want
    assert list(read_capture(write_capture(tmp_path / "p.memscope", packed)).events()) == want
    assert expand_module(_packed(row)) == expand_module(row)


def test_malformed_packed_module_tables(tmp_path: Path) -> None:
    """Packed numbers are checked as the reader checks them: a site scope out of range
    (too large, negative, past 256 scopes) is written as rows, numbers of the wrong
    length are dropped and counted; the capture stays readable."""
    from memscope.capture.writer import Encoder
    from memscope.events import MODULE, expand_module, module_table

    top = (("<module>", 1, 1),)
    far = _packed((MODULE, 2, 2, "/c.py", "c", *module_table(top, ((1, 0, 5, "v", 1),))))
    neg = _packed((MODULE, 3, 3, "/n.py", "n", *module_table(top, ((1, 0, -1, "v", 1),))))
    many = tuple((f"f{i}", 3, i) for i in range(300))
    wide = _packed((MODULE, 4, 4, "/w.py", "w", *module_table(many, ((1, 0, 300, "v", 1),))))
    ok = _packed((MODULE, 9, 9, "/o.py", "o", *module_table(top, ((1, 0, 0, "v", 1),))))
    short = (*ok[:7], ok[7][:-1], ok[8])
    got = list(read_capture(write_capture(tmp_path / "m.memscope",
                                          [EVENTS[0], far, neg, wide, short])).events())
    assert got[1:] == [*expand_module(far), *expand_module(neg), *expand_module(wide)]
    enc = Encoder()
    enc.events_payloads([short, ok], bytes((MODULE, MODULE)))
    assert enc.bad_tables == 1
