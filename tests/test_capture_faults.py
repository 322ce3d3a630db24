"""The capture survives what can happen to the process writing it: an exception from a
signal at any line of a write (Ctrl-C's KeyboardInterrupt), a signal handler that closes
the capture in the middle of a write (memscope run's SIGTERM), a full disk."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from memscope.capture import read_capture
from memscope.capture import writer as W
from memscope.capture.writer import CaptureSink, CaptureWriter
from memscope.events import ERROR, expand_tables

WRITER_FILE = W.__file__


def _batch(tag: str, n: int = 5) -> list[tuple[Any, ...]]:
    """Events whose strings are new to the file (the string table is what a torn write
    would break), table rows, binds and a process record."""
    out: list[tuple[Any, ...]] = [(1, hash(tag) & 0xFFFF, f"{tag}.py", tag, f"{tag}.f", 3, 1),
                                  (3, hash(tag) & 0xFFF, f"{tag}Type")]
    out += [(8, 100 + i, 0, i, 1000 + i, 1, 28 + i, -1, -1, -1, -1) for i in range(n)]
    out += [(13, 200, f"where-{tag}", f"message {tag} \u00e9")]
    return out


A = [(12, 100, 1, "prog", 5), *_batch("a")]
B = _batch("b", 40)
C = [(12, 101, 100, "child", 6), *_batch("c")]
BIG = [(8, 100 + i, 0, i, (i * 2654435761) % 2**61, 1, 28 + i % 999, -1, -1, -1, -1)
       for i in range(3000)]  # tens of KB, even compressed


class _Interrupt(BaseException):
    pass


def _at_line(k: int, action: Any) -> Any:
    """A trace function that runs ``action`` at the k-th line the writer's own code
    runs (what a signal handler or an exception from a signal would do there)."""
    count = [0]

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            count[0] += 1
            if count[0] == k:
                action()
        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename == WRITER_FILE:
            return local(frame, event, arg)
        return None

    return tracer, count


def _lines_of_one_write(tmp_path: Path) -> int:
    w = CaptureWriter(tmp_path / "count.memscope")
    w.write(A)
    tracer, count = _at_line(10**9, lambda: None)
    sys.settrace(tracer)
    try:
        w.write(B)
    finally:
        sys.settrace(None)
    w.close()
    return count[0]


@pytest.mark.slow  # seconds in-process (large data): not the inner loop
def test_an_exception_at_any_line_of_a_write_loses_nothing(tmp_path: Path) -> None:
    """KeyboardInterrupt lands at line k of a write, for every k; the runtime offers the
    batch again (``resume``, as ``_hooks`` does at its next flush): it is written once,
    the capture is complete and holds every event in order."""
    lines = _lines_of_one_write(tmp_path)
    assert lines > 50
    for k in range(1, lines + 1):
        path = tmp_path / f"k{k}.memscope"
        w = CaptureWriter(path)
        w.write(A)

        def boom() -> None:
            raise _Interrupt

        tracer, _ = _at_line(k, boom)
        sys.settrace(tracer)
        try:
            w.write(B)
        except _Interrupt:
            pass
        finally:
            sys.settrace(None)
        w.resume(B)
        w.write(C)
        w.close()
        cap = read_capture(path)
        assert cap.header.complete, k
        assert list(expand_tables(cap.events())) == [*A, *B, *C], k
        assert cap.header.dropped == 0


@pytest.mark.slow  # seconds in-process (large data): not the inner loop
def test_a_close_in_the_middle_of_a_write_leaves_a_complete_capture(tmp_path: Path) -> None:
    """The SIGTERM handler closes the capture at line k of a write it interrupted (after
    offering the batch again, as its flush does; then the process dies: the write never
    resumes); for every k the capture is complete and holds the interrupted batch whole."""
    lines = _lines_of_one_write(tmp_path)
    for k in range(1, lines + 1):
        path = tmp_path / f"c{k}.memscope"
        w = CaptureWriter(path)
        w.write(A)

        def handler(w: CaptureWriter = w) -> None:
            sys.settrace(None)  # the handler's own lines are not counted
            w.resume(B)
            w.close()
            raise _Interrupt  # the process dies: the interrupted write never resumes

        tracer, _ = _at_line(k, handler)
        sys.settrace(tracer)
        try:
            w.write(B)
        except _Interrupt:
            pass
        finally:
            sys.settrace(None)
        cap = read_capture(path)
        assert cap.header.complete, k
        assert list(expand_tables(cap.events())) == [*A, *B], k


class _Disk:
    """A file system that holds at most ``room`` bytes of the capture (as a full disk,
    or RLIMIT_FSIZE, does): a write past it writes what fits, then fails."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.failures = 0

    def write_all(self, fd: int, data: bytes, offset: int = -1) -> None:
        if offset < 0:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        fits = max(0, self.room - offset)
        if len(data) > fits:
            os.pwrite(fd, data[:fits], offset)
            self.failures += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.pwrite(fd, data, offset)


def _says_what_it_lost(path: Any, lost: int) -> str:
    """The capture at ``path`` is complete, keeps A (the batch before the failure),
    counts ``lost`` events dropped and says so in its one ERROR row: that row's text."""
    cap = read_capture(path)
    assert cap.header.complete and cap.header.dropped == lost
    evs = list(expand_tables(cap.events()))
    assert evs[: len(A)] == A
    (err_row,) = [e for e in evs if e[0] == ERROR and e[2] == "capture"]
    assert f"{lost} events dropped" in err_row[3]
    return str(err_row[3])


def test_a_full_disk_is_counted_said_once_and_recorded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    sink = CaptureSink(tmp_path, "full")
    sink.write(A)
    room = sink.writer.offset + 1000
    disk = _Disk(room)
    monkeypatch.setattr(W, "_write_all", disk.write_all)
    sink.write(BIG)  # does not fit
    sink.write(C)
    sink.write(_batch("d"))
    assert disk.failures == 1  # nothing more is tried after a failure
    lost = len(BIG) + len(C) + len(_batch("d"))
    assert sink.dropped == lost
    sink.close()
    err = capfd.readouterr().err
    assert err.count("memscope: writing the capture") == 1
    assert "No space left on device" in err and "dropped" in err
    # the ERROR row and footer fit in the space given back
    assert "No space left on device" in _says_what_it_lost(sink.path, lost)
    assert os.path.getsize(sink.path) <= room


@pytest.mark.parametrize("gap", [0, 4, 60])
def test_a_failure_with_no_room_left_gives_back_the_last_batch_for_the_error_row(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gap: int) -> None:
    """The failed write ended a few bytes short of the limit (where the limit falls
    among chunks is chance: RLIMIT_FSIZE in ``memscope run``'s test was flaky on it):
    the ERROR row and the footer do not fit in the space given back, so the batch
    written last is given back too, counted as dropped, and the capture says why."""
    sink = CaptureSink(tmp_path, "full")
    sink.write(A)
    sink.write(C)
    disk = _Disk(sink.writer.offset + gap)
    monkeypatch.setattr(W, "_write_all", disk.write_all)
    sink.write(BIG)
    sink.close()
    _says_what_it_lost(sink.path, len(C) + len(BIG))
    assert os.path.getsize(sink.path) <= disk.room


def test_the_batch_given_back_for_the_error_row_is_the_one_written_last_even_mended(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """B's write is cut by an interrupt after its bytes went out, C's write first writes
    B again (the mend) and then fails a few bytes short of the limit: what ``close``
    gives back for the ERROR row is B (written last), counted; A stays."""
    w = CaptureWriter(tmp_path / "m.memscope")
    w.write(A)
    real = W._write_all
    calls = [0]
    room = [1 << 40]

    def scripted(fd: int, data: bytes, offset: int = -1) -> None:
        calls[0] += 1
        if calls[0] == 1:  # B: out, then the interrupt
            real(fd, data, offset)
            raise _Interrupt
        if offset + len(data) > room[0]:
            os.pwrite(fd, data[: max(0, room[0] - offset)], offset)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data, offset)
        if calls[0] == 2:  # the mend of B: the disk has 4 bytes left after it
            room[0] = offset + len(data) + 4

    monkeypatch.setattr(W, "_write_all", scripted)
    with pytest.raises(_Interrupt):
        w.write(B)
    with pytest.raises(OSError):
        w.write(C)  # B again, then C fails
    w.close()
    _says_what_it_lost(w.path, len(B) + len(C))


def test_a_disk_too_full_even_for_the_footer_leaves_the_count_in_the_header(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing was written before the failure: nothing can be given back."""
    sink = CaptureSink(tmp_path, "full")
    disk = _Disk(sink.writer.offset + 4)  # not even a chunk header fits
    monkeypatch.setattr(W, "_write_all", disk.write_all)
    sink.write(BIG)
    sink.close()
    cap = read_capture(sink.path)
    assert not cap.header.complete and cap.header.dropped == len(BIG)
    assert list(expand_tables(cap.events())) == []


def test_a_ctrl_c_storm_against_the_runtimes_flushes(tmp_path: Path) -> None:
    """SIGINT every 0.5 ms for a second while the main thread hands batches to a
    capture through the runtime's own flush (``_hooks``); the program catches each
    KeyboardInterrupt and goes on, as a service would. The capture is complete, every
    event in it is there once and in order, and an event is lost only if its append
    was interrupted (the flush itself loses nothing)."""
    import signal
    import threading
    import time

    from memscope import _hooks

    sink = CaptureSink(tmp_path, "storm")
    old = _hooks.set_sink(sink)
    stop = threading.Event()
    main_ident = threading.get_ident()
    armed = [False]  # interrupts land in the loop's ``try`` (the flush), not in the test

    def on_sigint(signum: int, frame: Any) -> None:
        if armed[0]:
            armed[0] = False
            raise KeyboardInterrupt

    def storm() -> None:
        while not stop.wait(0.0005):
            signal.pthread_kill(main_ident, signal.SIGINT)

    old_handler = signal.signal(signal.SIGINT, on_sigint)
    storm_thread = threading.Thread(target=storm)
    storm_thread.start()
    interrupted_appends = interrupts = seq = 0
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        batch = [(ERROR, seq + i, "storm", f"event {seq + i}") for i in range(50)]
        appended = False
        try:
            armed[0] = True
            _hooks._buf.extend(batch)
            appended = True
            _hooks._flush()
            armed[0] = False
        except KeyboardInterrupt:
            interrupts += 1
            if not appended and not any(ev is batch[0] for ev in _hooks._buf):
                interrupted_appends += 1
        seq += 50
    armed[0] = False
    stop.set()
    storm_thread.join()
    signal.signal(signal.SIGINT, old_handler)
    _hooks.flush()
    _hooks.set_sink(old)
    sink.close()
    print(f"storm: {interrupts} interrupts, {interrupted_appends} appends cut, {seq} events")
    assert interrupts > 10  # the storm did land
    cap = read_capture(sink.path)
    assert cap.header.complete and cap.header.dropped == 0
    got = [e[1] for e in cap.events() if e[0] == ERROR and e[2] == "storm"]
    assert len(got) == len(set(got))  # none twice
    assert got == sorted(got)  # in order
    assert seq - len(got) == 50 * interrupted_appends
