"""The C hot path (``memscope/_hotpath.c``) and its pure-Python fallback keep one
contract: the same program records the same events through either, the buffer keeps
events whole and in order, and what waits in the C buffer is off the Python heap (the
program's own tracemalloc does not see it). The runtime tests run on the C path by
default; ``test_runtime_tests_on_the_pure_hot_path`` runs them again on the fallback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memscope import _hooks

ROOT = Path(__file__).resolve().parents[1]
needs_c = pytest.mark.skipif(not _hooks.ACCELERATED, reason="memscope._hotpath not built")


@pytest.mark.skipif(not os.environ.get("CI"), reason="a machine without a C compiler runs "
                    "the pure Python paths; CI's machines have one")
@pytest.mark.parametrize("name", ["_hotpath", "_deathwatch", "_censusc", "_weakhide"])
def test_ci_runs_each_c_extension(name: str) -> None:
    """Where CI runs, each extension builds and imports on each Python. A symbol missing
    on one version (PyFrame_Check on 3.10, not declared by Python.h there) compiled with
    a warning, failed at import, and that version ran on the pure paths, its tests of
    the C paths skipped (seen only because two run tests printed the fallback's line)."""
    import importlib

    importlib.import_module(f"memscope.{name}")


# ---- the buffer ------------------------------------------------------------------------


def _buffers() -> list[Any]:
    out: list[Any] = [_hooks._ListBuffer()]
    if _hooks._hotpath is not None:
        out.append(_hooks._hotpath.Buffer())
    return out


@pytest.mark.parametrize("buf", _buffers(), ids=lambda b: type(b).__name__)
def test_the_buffer_keeps_every_event_whole_and_in_order(buf: Any) -> None:
    table = (7, "a module", ("nested", 1))  # strings: kept as the object itself
    flag = (3, True, False)  # bools stay bools
    huge = (4, 1 << 70, -(1 << 70))  # ints a word cannot hold
    events = [(1, 10, 2, 3), table, flag, huge, (2, -1, 0), (5,) * 17, (9,)]
    for ev in events[:3]:
        buf.append(ev)
    buf.extend(events[3:])
    assert len(buf) == len(events) and bool(buf)
    assert buf.snapshot() == events and list(buf) == events
    assert buf.snapshot()[1] is table  # an object event is the object itself
    assert [type(x) for x in buf.snapshot()[2]] == [int, bool, bool]
    into: list[Any] = [None]
    got = buf.take(4, into)
    assert got == events[:4] and into[0] is got
    assert buf.snapshot() == events[4:]
    assert buf.take(100, into) == events[4:] and len(buf) == 0 and not buf
    buf.append((1, 2))
    buf.clear()
    assert buf.snapshot() == [] and len(buf) == 0


@needs_c
def test_the_c_buffer_releases_the_objects_it_held() -> None:
    buf = _hooks._hotpath.Buffer()
    ev = ("row", object())
    before = sys.getrefcount(ev)
    buf.append(ev)
    assert sys.getrefcount(ev) == before + 1
    buf.take(1, [None])
    assert sys.getrefcount(ev) == before
    buf.append(ev)
    buf.clear()
    assert sys.getrefcount(ev) == before
    buf.append(ev)
    del buf
    assert sys.getrefcount(ev) == before


@needs_c
def test_waiting_events_are_off_the_python_heap() -> None:
    """5,000 binds recorded and not yet flushed: the program's tracemalloc sees a few
    KiB of them on the C path (a list of tuples would be about 600 KiB)."""
    code = textwrap.dedent("""
        import tracemalloc
        from memscope import _hooks
        from tests.conftest import Recorder
        sink = _hooks.MemorySink()
        _hooks.set_sink(sink)
        _hooks.configure(full=False, flush_at=1_000_000, deep_objects=0, deep_ns=0)
        _hooks.set_sampling(False)
        m = _hooks.register(_hooks.HOOKS_VERSION, "t.py", "t", (("<module>", 1, 1),),
                            ((1, 0, 0, "x", 1),))
        tok = m.enter(0, -1)
        value = [1, 2, 3]
        for _ in range(100):  # warm: types classified, buffer grown once
            m.bind(0, value, tok)
        _hooks.flush()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5_000):
            m.bind(0, value, tok)
        after = tracemalloc.get_traced_memory()[0]
        print(len(_hooks._buf), after - before)
    """)
    for pure, bound in (("", 16 * 1024), ("1", 300 * 1024)):
        env = {**os.environ, "MEMSCOPE_HOTPATH_PURE": pure}
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, text=True,
                             capture_output=True, check=True).stdout.split()
        waiting, seen = int(out[0]), int(out[1])
        assert waiting >= 5_000
        if pure:  # the fallback's list of tuples: seen, as the C path's must not be
            assert seen > bound, seen
        else:
            assert seen < bound, seen


# ---- one contract, two implementations ---------------------------------------------------

_PROGRAM = """
import threading

class Box:
    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items

class Point:
    def __init__(self, x):
        self.x = x
        self.tags = [x] * (x % 7)

    @property
    def norm(self):
        return abs(self.x)

points = [Point(k) for k in range(300)]

def grow(n, scale=2.0, *rest, flag=None, **kw):
    out = []
    for i in range(n):
        out.append(i * scale)
        a, b = i, str(i)
        total = sum(out)
    box = Box(out)
    del a
    return box, total

def gen(k):
    for j in range(k):
        x = bytes(j)
        yield x

results = [grow(n) for n in (3, 40, 300)]
blobs = list(gen(50))
big = bytearray(100_000)
t = threading.Thread(target=grow, args=(20,))
t.start()
t.join()
try:
    raise ValueError("x")
except ValueError as err:
    caught = type(err).__name__
"""


def _events(tmp_path: Path, pure: bool, mode: str) -> list[list[Any]]:
    """The program's events through ``memscope run``: kind, site or scope, type, sizes;
    times, tokens, ids and threads left out (they differ from run to run)."""
    prog = tmp_path / "prog.py"
    prog.write_text(_PROGRAM)
    out = tmp_path / ("pure" if pure else "c") / mode
    env = {**os.environ, "MEMSCOPE_HOTPATH_PURE": "1" if pure else ""}
    subprocess.run([sys.executable, "-m", "memscope", "run", "--mode", mode, "--no-sampling",
                    "--no-report", "-o", str(out), str(prog)], env=env, cwd=tmp_path,
                   check=True, capture_output=True)
    code = textwrap.dedent("""
        import json, sys
        from memscope.capture.reader import read_capture
        from memscope.events import BIND, ENTER, EXIT, TYPE, UNBIND, expand_tables
        cap = read_capture(sys.argv[1])
        rows = []
        types = {}
        for e in expand_tables(cap.events()):
            if e[0] == TYPE:  # index -> name
                types[e[1]] = e[2]
        for e in expand_tables(cap.events()):
            if e[0] == BIND:
                rows.append(["bind", e[2], types.get(e[5]), *e[6:7], *e[7:8]])
            elif e[0] == ENTER:
                rows.append(["enter", e[2]])
            elif e[0] == UNBIND:
                rows.append(["unbind", e[2]])
            elif e[0] == EXIT:
                rows.append(["exit"])
        print(json.dumps(rows))
    """)
    cap = next(out.rglob("*.memscope"))
    text = subprocess.run([sys.executable, "-c", code, str(cap)], cwd=ROOT, text=True,
                          capture_output=True, check=True).stdout
    return list(json.loads(text))


@needs_c
@pytest.mark.parametrize("mode", ["fast", "full"])
def test_both_hot_paths_record_the_same_events(tmp_path: Path, mode: str) -> None:
    c = _events(tmp_path, False, mode)
    pure = _events(tmp_path, True, mode)
    assert len(c) > 500
    # threads interleave differently from run to run: compare as multisets, and the
    # main thread's order through the sequence of scope entries of each kind
    assert sorted(map(json.dumps, c)) == sorted(map(json.dumps, pure))


def test_the_fallback_is_chosen_by_the_environment_and_said_once(tmp_path: Path) -> None:
    code = "from memscope import _hooks; print(_hooks.ACCELERATED)"
    env = {**os.environ, "MEMSCOPE_HOTPATH_PURE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, cwd=tmp_path).stdout.split()
    assert out == ["False"]
    # without the extension at all (no compiler at install time): recorded all the
    # same, and ``memscope run`` says so in one line
    prog = tmp_path / "p.py"
    prog.write_text("def f(n):\n    x = list(range(n))\n    return len(x)\n\nf(10)\n")
    code = textwrap.dedent(f"""
        import sys
        sys.modules["memscope._hotpath"] = None  # import fails, as if never built
        from memscope.cli import main
        sys.argv = ["memscope", "run", "--no-report", "-o", {str(tmp_path / "o")!r},
                    {str(prog)!r}]
        main()
    """)
    env = {k: v for k, v in os.environ.items() if k != "MEMSCOPE_HOTPATH_PURE"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    said = [ln for ln in proc.stderr.splitlines() if "C hot path is not built" in ln]
    assert len(said) == 1
    assert list((tmp_path / "o").rglob("*.memscope"))
    version = subprocess.run([sys.executable, "-m", "memscope", "--version"], env=env,
                             capture_output=True, text=True, check=True).stdout
    assert f"hot path: {'C' if _hooks.ACCELERATED else 'pure Python'}" in version


@needs_c
@pytest.mark.slow
def test_runtime_tests_on_the_pure_hot_path(tmp_path: Path) -> None:
    """The runtime's own tests, again on the Python closures alone."""
    # (test_interrupts.py on every version: until the fixes of 94882fc and f3fc376 it
    # ran on 3.11 only, 3 or 4 of its signal tests failing on 3.10, 3.12 and 3.13)
    files = ["tests/test_contract.py", "tests/test_guards.py",
             "tests/test_runtime_invariants.py", "tests/test_capture_faults.py",
             "tests/test_interrupts.py"]
    env = {**os.environ, "MEMSCOPE_HOTPATH_PURE": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-x", *files], env=env, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]


# ---- the capture written from C batches -------------------------------------------------


def _as_batch(events: list[Any]) -> Any:
    buf = _hooks._hotpath.Buffer()
    buf.extend(events)
    return buf.take(len(events), [None], True)


@needs_c
def test_a_batch_is_a_read_only_sequence_of_its_events() -> None:
    from tests.test_capture_faults import A, B

    events = [*A, *B]
    batch = _as_batch(events)
    assert type(batch).__name__ == "Batch" and len(batch) == len(events)
    assert list(batch) == events and batch[3] == events[3] and batch[-1] == events[-1]
    assert list(batch[2:9]) == events[2:9] and list(batch[::3]) == events[::3]
    assert batch.kinds() == bytes(e[0] for e in events)
    mask = bytes(int(e[0] == 8) for e in events)
    assert list(batch.select(mask)) == [e for e in events if e[0] == 8]
    binds = batch.select(mask)
    import struct

    assert binds.packed(11) == b"".join(struct.pack("<11q", *e) for e in binds)
    assert batch.packed(11) is None  # not every event is an int row of that width
    with pytest.raises(IndexError):
        batch[len(events)]


@needs_c
def test_a_batch_taking_all_keeps_its_events_while_the_buffer_goes_on() -> None:
    """A take of every event hands the buffer's own words to the batch (and the buffer
    the words of a batch freed before): each batch still reads its own events, object
    rows included, while the buffer fills again; a partial take copies, as before."""
    import sys

    buf = _hooks._hotpath.Buffer()
    held = []
    for r in range(6):
        events = [(8, r, i, 3, 4, 5, 6) if i % 5 else (13, r, f"w{r}", "m" * i)
                  for i in range(3000 + r)]
        buf.extend(events)
        into: list[Any] = [None]
        batch = buf.take(len(events), into, True)
        assert into[0] is batch and len(buf) == 0 and not buf
        buf.extend([(7, r, 1)] * 10)  # the buffer goes on meanwhile
        assert list(batch) == events and batch.kinds() == bytes(e[0] for e in events)
        held.append((batch, events))
        if r % 2:
            held.pop(0)  # a batch freed: its words are the next hand-over's
        buf.clear()
    for batch, events in held:
        assert list(batch) == events
    text = "a string only a taken event holds " * 3
    before = sys.getrefcount(text)
    buf.extend([(13, 1, text, "m"), (8, 1, 2, 3)])
    part = buf.take(1, [None], True)  # not all: copied
    assert list(part) == [(13, 1, text, "m")] and list(buf) == [(8, 1, 2, 3)]
    del part
    buf.clear()
    assert sys.getrefcount(text) == before
    buf.extend([(8, 1, 2, 3), (13, 1, text, "m")])
    whole = buf.take(2, [None], True)  # all: handed over, references and all
    assert sys.getrefcount(text) == before + 1 and list(whole)[1][2] is text
    del whole
    assert sys.getrefcount(text) == before
    odd = [(8, 1, 2), (300, 1), (7, 5), (True, 2), (), ("x",), (6, 1, 1, 1, 1, 1)]
    buf.extend(odd)  # kinds the writer cannot use: the batch says so (None)
    assert buf.take(len(odd), [None], True).kinds() is None
    buf.extend(odd)
    assert buf.take(2, [None], True).kinds() is None  # a partial take: read from the words
    assert buf.take(1, [None], True).kinds() == bytes((7,))  # what is left noted again
    assert buf.take(3, [None], True).kinds() is None
    assert buf.take(1, [None], True).kinds() == bytes((6,)) and not buf


def test_each_thread_s_scopes_carry_its_own_ident(rec: Any) -> None:
    """Threads one after another (a new one often gets the ident, and the thread state's
    memory, of the one before) and the main thread between them: each ENTER names the
    thread that entered, and each new thread is announced by a THREAD row of its own."""
    import threading

    from memscope.events import ENTER, THREAD

    m = rec.module("v")
    want: list[int] = []  # the ident of each scope entry, in order

    def work() -> None:
        for _ in range(3):
            m.exit(m.enter(1, -1))
            want.append(threading.get_ident())

    for i in range(4):
        m.exit(m.enter(1, -1))
        want.append(threading.get_ident())
        t = threading.Thread(target=work, name=f"worker-{i}")
        t.start()
        t.join()
    events = rec.events()
    assert [e[4] for e in events if e[0] == ENTER] == want
    names = [e[2] for e in events if e[0] == THREAD]
    assert {n for n in names if n.startswith("worker-")} == {f"worker-{i}" for i in range(4)}


@needs_c
def test_a_capture_from_batches_reads_as_from_lists(tmp_path: Path) -> None:
    """The same events written as lists and as C batches: the same events read back,
    the same counts (user binds at sites past 255 included)."""
    from memscope.capture import read_capture
    from memscope.capture.writer import CaptureWriter
    from memscope.events import expand_tables
    from tests.test_capture_faults import BIG, A, B, C

    flags = [(3, 7, "flag", True, False, 1 << 70)]  # a row a word cannot hold
    user = [(1, 5, str(tmp_path / "u.py"), "u", "u.f", 3, 1),  # user code's scope...
            *[(2, s, 5, 10, 4, f"v{s}", 1) for s in (0, 3, 300)]]  # ...its sites, past 255
    binds = [(8, 100 + i, (0, 3, 300, 7)[i % 4], i, 1000 + i, 1, 28) for i in range(400)]
    batches = [A, user, B, BIG, flags, binds, C, [*BIG[:50], *B, *binds[:90], *BIG[50:99]]]
    caps = []
    for name, wrap in (("lists", list), ("batches", _as_batch)):
        w = CaptureWriter(tmp_path / f"{name}.memscope")
        for ev in batches:
            w.write(wrap(ev))
        w.close()
        caps.append(read_capture(w.path))
    lists, batched = caps
    assert list(expand_tables(batched.events())) == list(expand_tables(lists.events()))
    assert list(expand_tables(lists.events())) == [e for b in batches for e in b]
    assert batched.header.records == lists.header.records
    assert batched.header.user_records == lists.header.user_records > 0


@needs_c
def test_a_batch_offered_again_is_written_once(tmp_path: Path) -> None:
    from memscope.capture import read_capture
    from memscope.capture.writer import CaptureWriter
    from memscope.events import expand_tables
    from tests.test_capture_faults import A, B

    w = CaptureWriter(tmp_path / "once.memscope")
    a, b = _as_batch(A), _as_batch(B)
    w.write(a)
    w.write(b)
    w.resume(b)  # a flush cut short after the sink had it: offered again, not written again
    w.resume(_as_batch(A))  # another batch with equal events: written
    w.close()
    assert list(expand_tables(read_capture(w.path).events())) == [*A, *B, *A]


@needs_c
def test_events_appended_by_a_collection_during_a_take_move_nothing_taken() -> None:
    """Making the taken events' tuples may run a collection whose weakref callbacks
    append to the buffer (FINAL events), growing and moving its memory: the events
    taken are read from where they are, not from where they were (a crash before)."""
    import gc
    import weakref

    buf = _hooks._hotpath.Buffer()
    events = [(8, i, 1, 2, 3, 4, 5) for i in range(2_000)]
    buf.extend(events)
    refs = []

    class Cycle:
        pass

    def grow(_ref: Any) -> None:  # what _finalized does: append events mid-take
        buf.extend([(10, j, j) for j in range(20_000)])

    for _ in range(50):
        c = Cycle()
        c.me = c  # type: ignore[attr-defined]  # freed only by a collection
        refs.append(weakref.ref(c, grow))
        del c
    old = gc.get_threshold()
    gc.set_threshold(1)  # a collection at (almost) every tuple made
    try:
        got = buf.take(len(events), [None])
    finally:
        gc.set_threshold(*old)
    gc.collect()
    assert got == events
    assert len(buf) == 50 * 20_000 and not any(r() for r in refs)


@needs_c
@given(st.lists(st.integers(-(1 << 63), (1 << 63) - 1), min_size=1, max_size=60),
       st.integers(1, 4), st.integers(0, 3))
def test_the_c_byte_planes_are_the_python_ones(values: list[int], width: int,
                                               col: int) -> None:
    """The capture's byte planes (memscope.planes), by the C pass and by Python's
    strided slices, from rows of ``width`` int64 values, column ``col`` of them."""
    import struct

    from memscope.planes import py_planes

    rows = [values[i : i + width] for i in range(0, len(values) - width + 1, width)]
    if not rows:
        return
    col %= width
    raw = b"".join(struct.pack(f"<{width}q", *r) for r in rows)
    args = (raw, 8 * col, 8 * width, len(rows))
    assert _hooks._hotpath.planes(*args) == py_planes(*args)


_ROW = st.tuples(st.sampled_from([6, 7, 8, 8, 8, 10, 14]),
                 st.lists(st.integers(-(1 << 63), (1 << 63) - 1), max_size=10))


@needs_c
@given(st.lists(st.one_of(_ROW, st.tuples(st.just(13), st.just(["w", "m"]))), min_size=1,
                max_size=80),
       st.lists(st.integers(0, 300), max_size=40), st.integers(0, 8), st.booleans())
def test_a_batch_encodes_its_groups_as_the_python_path_does(
        rows: list[tuple[int, list[Any]]], user: list[int], width: int, ragged: bool
) -> None:
    """``Batch.encode`` (the capture writer's groups in C, no tuple made) gives the very
    chunk bytes and user-bind count of the Python path, for int rows of one width, of
    mixed widths, of small and extreme numbers, and among rows with strings."""
    from memscope.capture.writer import Encoder

    events = [(k, *(vals if k == 13 or (ragged and i % 3 == 0) else (vals + [7] * 9)[:width]))
              for i, (k, vals) in enumerate(rows)]
    events = [(*e[:2], e[2] % 302 - 1, *e[3:]) if e[0] == 8 and len(e) > 2 else e
              for e in events]  # a BIND's site: a user site, often
    outs = []
    for coded in (True, False):
        enc = Encoder()
        for s in user:
            enc.user_sites.add(s)
        enc._refresh_user_site_bytes()
        if not coded:
            enc._coded = lambda *_: None  # type: ignore[method-assign]
        batch = _as_batch(events)
        outs.append((enc.events_payloads(batch, batch.kinds()), enc.user_records))
    assert outs[0] == outs[1]


@needs_c
def test_a_program_tracing_its_own_memory_sees_little_of_memscope(tmp_path: Path) -> None:
    """more-itertools' bounded-memory test, in small: the program starts tracemalloc and
    calls a hot function 10,000 times. It does not see memscope's waiting events (off
    the heap, in C) nor the plain code a sleeping scope would swap in (not compiled while
    the program traces its allocations: it was 0.3 MiB for more_itertools/more.py)."""
    filler = "".join(f"def f{i}(a, b):\n    c = a + b\n    return [c] * {i % 7}\n\n"
                     for i in range(600))  # a large module: its plain code is large
    (tmp_path / "big.py").write_text(filler + textwrap.dedent("""
        def peek(x):
            y = x + 1
            return y
    """))
    (tmp_path / "prog.py").write_text(textwrap.dedent("""
        import tracemalloc
        import big
        big.peek(1)
        tracemalloc.start()
        for _ in range(10_000):
            big.peek(2)
        retained = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        print("retained", retained)
    """))
    got = []
    for mode in ("fast", "full"):
        out = subprocess.run([sys.executable, "-m", "memscope", "run", "--no-report",
                              "--mode", mode, "-o", str(tmp_path / "o"), "--include", "big",
                              "prog.py"], cwd=tmp_path, capture_output=True, text=True,
                             check=True).stdout
        got.append(int(out.split("retained")[1].split()[0]))
    assert max(got) < 128 * 1024, got
