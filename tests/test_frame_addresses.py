"""The C readers of a frame's raw slots and stored locals dict (``_hotpath.frame_addresses``,
``_hotpath.frame_dict``) read the frame's pointer and what it points at in one go. Read
word by word from Python (ctypes), as ``memscope.frames`` did, another thread could run
between two reads, return from the frame and pop its data stack chunk, and the next read
touched memory given back to the system: a segmentation fault in the census while the
program recursed deeply (pyparsing's suite under --mode full)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests._reporter_programs import ROOT

_hp = pytest.importorskip("memscope._hotpath")
if not hasattr(_hp, "frame_addresses"):
    pytest.skip("an older build of the hot path", allow_module_level=True)

from memscope import frames  # noqa: E402

pytestmark = pytest.mark.skipif(frames.method != "localsplus",
                                reason="no known frame layout here")


def _reader() -> frames._Localsplus:
    return frames.raw_slots.__self__  # type: ignore[attr-defined,no-any-return]


def _ctypes_words(reader: frames._Localsplus, frame: object, start: int, stop: int) -> list[int]:
    base = reader.base(frame)
    at = base + reader.locals_at
    out = []
    for i in range(start, stop):
        p = reader.void_p.from_address(at + i * reader.width).value
        if p:
            out.append(p)
    return out


def test_the_c_readers_read_what_ctypes_reads_on_a_quiet_frame() -> None:
    reader = _reader()
    a, b = object(), [1]

    def gen() -> object:
        x, y = a, b  # noqa: F841
        yield from [a, b]  # (its iterator on the value stack while suspended)

    g = gen()
    next(g)
    frame = g.gi_frame  # suspended: nothing changes it while it is read both ways
    code = frame.f_code
    n = len(frames._names(code))
    for start, stop in ((0, n), (n, n + code.co_stacksize), (0, n + code.co_stacksize)):
        got = _hp.frame_addresses(frame, reader.frame_ptr_at, reader.locals_at, start, stop)
        assert got == _ctypes_words(reader, frame, start, stop)
    assert {id(a), id(b)} <= set(
        _hp.frame_addresses(frame, reader.frame_ptr_at, reader.locals_at, 0, n))
    assert _hp.frame_dict(frame, reader.frame_ptr_at, reader.dict_at) is None
    mine = frame.f_locals  # now the frame keeps a dict
    assert _hp.frame_dict(frame, reader.frame_ptr_at, reader.dict_at) is mine
    with pytest.raises(TypeError):
        _hp.frame_addresses(object(), reader.frame_ptr_at, reader.locals_at, 0, 1)
    with pytest.raises(ValueError):
        _hp.frame_addresses(frame, reader.frame_ptr_at, reader.locals_at, 2, 1)


def test_a_frame_that_ended_is_read_from_its_frame_object() -> None:
    reader = _reader()

    def inner() -> object:
        x = [7]
        locals()
        return sys._getframe()

    frame = inner()  # ended: its interpreter frame copied into the frame object
    n = len(frames._names(frame.f_code))
    words = _hp.frame_addresses(frame, reader.frame_ptr_at, reader.locals_at, 0, n)
    assert words == [id(frame.f_locals["x"])]
    d = _hp.frame_dict(frame, reader.frame_ptr_at, reader.dict_at)
    assert type(d) is dict and d["x"] == [7]


# another thread's frames read while it recurses up and down across data stack chunks,
# with a thread switch as often as the interpreter allows
PROGRAM = """
import sys, threading, time
from memscope import _hotpath as hp, frames

reader = frames.raw_slots.__self__
sys.setswitchinterval(1e-6)
main = threading.get_ident()
done = False

def rec(n, a=0, b=1, c=2, d=3):
    x = [a, b, c, d]
    if n:
        return rec(n - 1, *x)
    return x

def census():
    reads = 0
    while not done:
        f = sys._current_frames().get(main)
        while f is not None:
            n = len(frames._names(f.f_code))
            hp.frame_addresses(f, reader.frame_ptr_at, reader.locals_at, 0,
                               n + f.f_code.co_stacksize)
            hp.frame_dict(f, reader.frame_ptr_at, reader.dict_at)
            reads += 1
            f = f.f_back
    print(reads)

th = threading.Thread(target=census)
th.start()
t0 = time.monotonic()
while time.monotonic() - t0 < SECONDS:
    for depth in (300, 20, 500, 10, 200):
        rec(depth)
done = True
th.join()
"""


def test_another_threads_frames_read_while_it_recurses() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"}
    r = subprocess.run([sys.executable, "-c", PROGRAM.replace("SECONDS", "4")], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert int(r.stdout) > 1000


# the same race through what the census calls: memscope.frames
THROUGH_FRAMES = PROGRAM.replace("""            n = len(frames._names(f.f_code))
            hp.frame_addresses(f, reader.frame_ptr_at, reader.locals_at, 0,
                               n + f.f_code.co_stacksize)
            hp.frame_dict(f, reader.frame_ptr_at, reader.dict_at)
""", """            frames.raw_slots(f)
            frames.raw_slots(f, stack_only=True)
            frames.locals_dict(f)
""")


def test_the_census_reads_another_threads_frames_while_it_recurses() -> None:
    """memscope.frames reads through the C readers: word by word through ctypes it died
    of SIGSEGV within a second of this program (936e9df)."""
    assert THROUGH_FRAMES != PROGRAM
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"}
    r = subprocess.run([sys.executable, "-c", THROUGH_FRAMES.replace("SECONDS", "4")],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert int(r.stdout) > 1000
