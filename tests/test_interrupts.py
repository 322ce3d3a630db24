"""Interrupts and BaseException in instrumented code (issue 16): a signal or an exception
reaches the program where and as plain Python delivers it; the user code memscope calls
itself (``__sizeof__`` ...) never raises into the program; no bytecode of instrumented
code reads an unset scope token; usable recursion depth is plain Python's."""

from __future__ import annotations

import _thread
import os
import signal
import subprocess
import sys
import textwrap
import time
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from memscope import _hooks
from memscope.capture import read_capture
from memscope.events import ENTER, EXIT
from tests.hook_helpers import PY, clean_env, memscope_cmd, write_tree

from .conftest import Recorder

MEMSCOPE_DIR = os.path.dirname(_hooks.__file__)


def load(tmp_path: Path, src: str, *, libcst: bool = False, name: str = "prog",
         comprehensions: bool = False) -> Any:
    """Instrument ``src`` (splice path, or the libcst path) and run it as a module, the
    way the import hook does (original file name and lines)."""
    from memscope_instrument import transform
    from memscope_instrument.linemap import compile_with_line_map

    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(src))
    saved = transform._splice
    if libcst:
        transform._splice = lambda *a, **k: None  # type: ignore[assignment]
    try:
        res = transform.instrument_source(path.read_text(), str(path), name,
                                          transform.Options(comprehensions=comprehensions))
    finally:
        transform._splice = saved  # type: ignore[assignment]
    assert res.changed
    code = compile_with_line_map(res.code, res.line_map, str(path), deltas=res.col_delta)
    mod = types.ModuleType(name)
    mod.__file__ = str(path)
    exec(code, mod.__dict__)
    return mod


def memscope_frames(exc: BaseException) -> list[str]:
    return [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(exc.__traceback__)
            if f.filename.startswith(MEMSCOPE_DIR)]


PATHS = pytest.mark.parametrize("libcst", [False, True], ids=["splice", "libcst"])

SIZEOF_RAISES = """
class Odd:
    def __init__(self, exc):
        self.exc = exc

    def __sizeof__(self):
        raise self.exc


def takes(p):
    return p


def binds(p):
    x = p
    return x
"""


@PATHS
@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt(), GeneratorExit(),
                                 ValueError("no size")], ids=lambda e: type(e).__name__)
def test_an_exception_of_sizeof_is_swallowed_and_counted(
        rec: Recorder, tmp_path: Path, libcst: bool, exc: BaseException) -> None:
    # plain Python never calls __sizeof__ here: whatever it raises, the program never
    # sees it (it used to come out as UnboundLocalError: '_memscope_s')
    m = load(tmp_path, SIZEOF_RAISES, libcst=libcst)
    before = _hooks.counters()["errors"]
    deferred = _hooks.counters()["interrupts_deferred"]  # (earlier tests' in this process)
    for _ in range(3):
        odd = m.Odd(exc)
        assert m.takes(odd) is odd  # sized by enter, as a parameter
        assert m.binds(odd) is odd  # sized by bind
    if not isinstance(exc, Exception):  # (sizing itself falls back on an Exception)
        assert _hooks.counters()["errors"] > before
    assert _hooks.counters()["interrupts_deferred"] == deferred


CTRL_C_IN_HOOK = """
import _thread


class Slow:
    def __sizeof__(self):
        _thread.interrupt_main()  # Ctrl-C lands while memscope sizes this object
        return 64


def work(p):
    total = 0
    for i in range(3):
        total += i
    return total


def run():
    try:
        work(Slow())
    except KeyboardInterrupt as e:
        return e
    return None
"""


@PATHS
def test_ctrl_c_inside_enter_reaches_the_program_in_its_own_frame(
        rec: Recorder, tmp_path: Path, libcst: bool) -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    m = load(tmp_path, CTRL_C_IN_HOOK, libcst=libcst)
    before = _hooks.counters()["interrupts_deferred"]
    # what plain Python would give the KeyboardInterrupt as its context: the exception
    # this thread is handling, None but after test_capture_faults's interrupted writes,
    # which leave one of theirs as this thread's (sys.exc_info(), in the next test)
    handling = sys.exc_info()[1]
    e = m.run()
    assert type(e) is KeyboardInterrupt  # not UnboundLocalError, not swallowed
    # raised at a check for signals of the program's (on 3.10 it was raised in the
    # hook, at the `if` after _CATCH handed it back: a frame of ours, and the first
    # KeyboardInterrupt as its context)
    assert e.__context__ is handling
    assert memscope_frames(e) == []
    last = traceback.extract_tb(e.__traceback__)[-1]
    assert (last.filename, last.name) == (m.__file__, "work")
    assert _hooks.counters()["interrupts_deferred"] > before


CTRL_C_WHILE_MEMSCOPE_HANDLES_ITS_OWN = """
import _thread


class _Trip:
    __getitem__ = _thread.interrupt_main  # (a builtin: not bound, no frame)


TRIP = _Trip()
NO_SIZE = ValueError("no size")


class Odd:
    def __sizeof__(self):
        TRIP[2]  # SIGINT made pending, with no check for signals here (nor at the raise)
        raise NO_SIZE  # memscope handles this; the Ctrl-C lands meanwhile


def work(p):
    total = 0
    for i in range(3):
        total += i
    return total


def run():
    try:
        work(Odd())
    except KeyboardInterrupt as e:
        return e
    return None
"""


@PATHS
def test_ctrl_c_while_memscope_handles_an_exception_of_its_own_has_the_programs_context(
        rec: Recorder, tmp_path: Path, libcst: bool) -> None:
    # memscope sizes p; __sizeof__ raises, and the Ctrl-C lands while memscope handles
    # that ValueError. The program handles no exception: the KeyboardInterrupt it gets
    # has the context plain Python's would have, not memscope's ValueError (it had: a
    # hook took any context for an exception the program was unwinding, raised the
    # signal at once, and the program saw "During handling of ValueError: no size")
    m = load(tmp_path, CTRL_C_WHILE_MEMSCOPE_HANDLES_ITS_OWN, libcst=libcst)
    handling = sys.exc_info()[1]  # (see test_ctrl_c_inside_enter...)
    e = m.run()
    assert type(e) is KeyboardInterrupt
    assert e.__context__ is handling
    assert memscope_frames(e) == []
    assert traceback.extract_tb(e.__traceback__)[-1].name == "work"


CTRL_C_IN_HOOK_WHILE_UNWINDING = """
import _thread


class Slow:
    def __sizeof__(self):
        _thread.interrupt_main()
        return 64


def work():
    try:
        raise ValueError("unwinding")
    finally:
        y = Slow()  # memscope sizes y while ValueError unwinds; Ctrl-C lands meanwhile


def run():
    caught = []
    for i in range(3):  # a second KeyboardInterrupt would land on this loop's back edge
        try:
            work()
        except (KeyboardInterrupt, ValueError) as e:
            caught.append(type(e).__name__)
    return caught
"""


@PATHS
def test_ctrl_c_in_a_hook_while_an_exception_unwinds_replaces_it_once(
        rec: Recorder, tmp_path: Path, libcst: bool) -> None:
    m = load(tmp_path, CTRL_C_IN_HOOK_WHILE_UNWINDING, libcst=libcst)
    try:
        caught = m.run()
    except KeyboardInterrupt:  # (caught here: pytest would take it for the user's)
        pytest.fail("a second KeyboardInterrupt, outside the program's `try`")
    assert caught == ["KeyboardInterrupt"] * 3


SIGNAL_HANDLER_IN_HOOK = """
import signal

calls = []


def on_alarm(signum, frame):
    calls.append(signum)
    raise TimeoutError("too slow")


class Slow:
    def __sizeof__(self):
        signal.raise_signal(signal.SIGUSR1)  # the alarm rings while memscope sizes it
        return 64


def work(p):
    return p


def run():
    old = signal.signal(signal.SIGUSR1, on_alarm)
    try:
        work(Slow())
    except TimeoutError as e:
        return e
    finally:
        signal.signal(signal.SIGUSR1, old)
    return None
"""


@PATHS
def test_an_exception_of_a_signal_handler_inside_a_hook_reaches_the_program(
        rec: Recorder, tmp_path: Path, libcst: bool) -> None:
    # it used to be swallowed as an error of __sizeof__: the timeout never fired
    m = load(tmp_path, SIGNAL_HANDLER_IN_HOOK, libcst=libcst)
    before = _hooks.counters()["interrupts_deferred"]
    e = m.run()
    assert type(e) is TimeoutError
    # decided once: the C enter passes on what the Python bind it called decided (it
    # used to ask _CATCH again, which can decide otherwise: a lost or doubled interrupt)
    assert _hooks.counters()["interrupts_deferred"] == before + 1
    names = [f.name for f in traceback.extract_tb(e.__traceback__)]
    if sys.version_info < (3, 11) and not _hooks.ACCELERATED:
        # 3.10 without the C hot path: a bare `raise` re-raises with the traceback the
        # hook's `except` caught, whose first entry is the hook's own frame; the rest is
        # cut to the handler's (it used to be 11 frames of ours). docs/transformer.md,
        # "Signals": a known limit
        assert [f.split(" ")[1] for f in memscope_frames(e)] == ["enter"]
        assert names == ["run", "work", "enter", "on_alarm"]
    else:
        # (3.10 with the C hot path: 11 frames of ours, before the hooks' `except`
        # lost its name and the C path passed on the exception's own traceback)
        assert memscope_frames(e) == []
        assert names == ["run", "work", "on_alarm"]  # raised by the handler, run in work
    assert m.calls == [signal.SIGUSR1]  # once, as in plain Python


UNBOUND = '''
def plain(a, b=2):
    x = [a] * b
    y = x[0]
    return y


def documented(a):
    """Doc."""
    z = a + 1
    return z


def gen(n):
    for i in range(n):
        yield i


class Klass:
    size = 3

    def method(self, n):
        scaled = n * self.size
        return scaled


def squares(n):
    return sum([k * k for k in range(n)]) + len({k: k for k in range(n)})


def caller():
    out = squares(3)
    out += plain(1)
    out += documented(1)
    out += sum(gen(3))
    out += Klass().method(2)
    return out
'''


def _trace_raising_at(path: str, k: int) -> tuple[Callable[..., Any], list[int]]:
    """A tracer raising KeyboardInterrupt at the ``k``-th opcode run by code of ``path``
    (a signal landing on that instruction, as its handler's exception would)."""
    seen = [0]

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "opcode":
            seen[0] += 1
            if seen[0] == k:
                raise KeyboardInterrupt
        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != path:
            return None
        frame.f_trace_opcodes = True
        return local

    return tracer, seen


@PATHS
@pytest.mark.parametrize("comprehensions", [False, True], ids=["", "comprehensions"])
def test_no_instruction_of_instrumented_code_reads_an_unset_token(
        rec: Recorder, tmp_path: Path, libcst: bool, comprehensions: bool) -> None:
    """A KeyboardInterrupt raised at each instruction in turn comes out as itself."""
    m = load(tmp_path, UNBOUND, libcst=libcst, comprehensions=comprehensions)
    expected = m.caller()
    # a first traced run raising nowhere: on 3.12 (3.12.1 here) the first run traced
    # in a process reports no opcode event for frames whose `f_trace_opcodes` its call
    # event set, and on 3.13 only some (the instrumentation is set up as it runs, plain
    # code too): the loop below stopped at k = 1 and tried no instruction
    tracer, _seen = _trace_raising_at(m.__file__, 0)
    sys.settrace(tracer)
    try:
        m.caller()
    finally:
        sys.settrace(None)
    k = 1
    while True:
        tracer, seen = _trace_raising_at(m.__file__, k)
        sys.settrace(tracer)
        try:
            got = m.caller()
        except KeyboardInterrupt:
            got = None
        except BaseException as e:  # UnboundLocalError, before the fix
            sys.settrace(None)
            pytest.fail(f"instruction {k}: {type(e).__name__}: {e}")
        finally:
            sys.settrace(None)
        if seen[0] < k:  # every instruction was tried
            assert got == expected
            break
        k += 1
    assert k > 100


STORM = '''
import sys


def unit(n):
    total = 0
    for k in range(20):  # C work
        chunk = [i * i for i in range(n)]
        total += sum(chunk) % 7
    for i in range(2000):  # memscope's hooks, a good part of the time
        pair = [i, total]
    return total + len(pair)


def units(done):
    while done[0] < UNITS:
        unit(3000)
        done[0] += 1


def work(done):
    units(done)
    sys.stdin.readline()  # the storm is over (the test's line)


def main():
    # outside the `try`, where a signal would end the program (with or without
    # memscope), nothing binds a name and nothing is written: memscope's own code never
    # runs there, and the program does nothing there that memscope could make slower.
    # (A `print` outside it, while the storm went on, killed the run now and then,
    # KeyboardInterrupt at the print, on 3.12 and 3.13 under the pure hot path. Plain
    # Python 3.13 with a thread of its own busy in Python died the same way, 1 run in
    # 90: the write lets another thread have the GIL, the print's return waits for it,
    # and a signal that lands meanwhile is raised as the print returns.)
    done = [0]
    interrupted = [0]
    ended = [False]
    while not ended[0]:  # back here only after an interruption
        try:
            # the loop in a function: 3.12 and 3.13 put the back edge of a loop that
            # ends a `try` body outside the `try` (plain Python's run died there on
            # 3.13, 3 runs in 20)
            work(done)
            ended[0] = True
        except KeyboardInterrupt:
            interrupted[0] += 1
    print("done", done[0], flush=True)
    return interrupted[0]


if __name__ == "__main__":
    print("ready", flush=True)
    got = main()
    print("interrupted at least once", got > 0, file=sys.stderr)
'''


def _storm(args: list[str], cwd: Path, seconds: float,
           **env: str) -> subprocess.CompletedProcess[str]:
    """Run; once the program says ready, send SIGINT every 20 ms for ``seconds``,
    then tell it the storm is over (a line on its stdin)."""
    p = subprocess.Popen(args, cwd=cwd, env=clean_env(**env), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    assert p.stdout.readline() == "ready\n"
    time.sleep(0.2)  # into main's try
    end = time.monotonic() + seconds
    while time.monotonic() < end and p.poll() is None:
        p.send_signal(signal.SIGINT)
        time.sleep(0.02)
    out, err = p.communicate("end\n", timeout=60)
    return subprocess.CompletedProcess(args, p.returncode, "ready\n" + out, err)


@pytest.mark.parametrize("pure", ["", "1"], ids=["C", "pure"])
def test_ctrl_c_storm_the_program_finishes_as_plain_python_and_the_capture_reads(
        tmp_path: Path, pure: str) -> None:
    # the storm: SIGINT every 20 ms for 3 s, against every hook (no sampling);
    # on each hot path (the run's environment has no MEMSCOPE_ variable of the tests':
    # before, the storm ran on the C one only, where built)
    write_tree(tmp_path, {"storm.py": STORM.replace("UNITS", "300")})
    plain = _storm([PY, "storm.py"], tmp_path, 1.0)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == "ready\ndone 300\n"
    out = tmp_path / "out"
    ours = _storm(memscope_cmd("run", "-o", str(out), "--format", "binary", "--no-sampling",
                               "storm.py"), tmp_path, 3.0, MEMSCOPE_HOTPATH_PURE=pure)
    assert "UnboundLocalError" not in ours.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == plain.stdout
    assert "interrupted at least once True" in ours.stderr
    captures = list(out.rglob("*.memscope"))
    assert captures
    for path in captures:
        events = list(read_capture(path).iter_events())
        assert sum(1 for e in events if e[0] == ENTER) > 100
        assert sum(1 for e in events if e[0] == EXIT) > 100


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 has no RESUME")
def test_hooks_start_without_a_check_for_signals() -> None:
    """The hooks' first RESUME skips the check for signals on 3.11, 3.12 and 3.13 (on
    3.12 and 3.13 a Ctrl-C a hook handed back came out of the next hook the program
    called, at its `def` line: `_no_entry_check` changed 3.11's code only)."""
    import dis
    import opcode

    assert opcode.opmap["RESUME"] == _hooks._RESUME
    codes = [_hooks._Catch.__getitem__.__code__, _hooks._pass.__code__]
    for fn in _hooks._make_handle.__code__.co_consts:  # bind, enter, exit ...
        if isinstance(fn, types.CodeType):
            codes.append(fn)
    assert len(codes) > 6
    for code in codes:
        first = next(i for i in dis.get_instructions(code) if i.opname == "RESUME")
        assert first.arg & 3 == 2, code.co_name


def test_trip_is_not_a_call() -> None:
    """``_TRIP`` is a subscript whose method is ``_thread.interrupt_main`` itself: no
    frame of ours runs between the signal made pending and the hook's return."""
    assert type(_hooks._TRIP).__getitem__ is _thread.interrupt_main


RECURSION = '''
def depth(d=0):
    try:
        return depth(d + 1)
    except RecursionError:
        return d


def depth_then_bind(d=0):
    try:
        r = depth_then_bind(d + 1)
    except RecursionError:
        return d
    return r


class Walker:
    def down(self, d=0):
        try:
            return self.down(d + 1)
        except RecursionError:
            return d


def bind_first(d=0):
    here = [d]
    try:
        return bind_first(d + 1)
    except RecursionError:
        return here[0]


def results():
    return {"depth": depth(), "depth_then_bind": depth_then_bind(),
            "method": Walker().down(), "bind_first": bind_first()}
'''

DEPTH_DRIVER = '''
import sys
if sys.argv[1] == "hook":
    from memscope_instrument.hook import install_import_hook
    install_import_hook(["deep"], start=False)
import memscope, deep
memscope.init()
print(repr([deep.results() for _ in range(3)][-1]))
'''


@pytest.mark.parametrize("sampling", ["1", "0"], ids=["sampling", "every-bind"])
def test_usable_recursion_depth_is_plain_pythons(tmp_path: Path, sampling: str) -> None:
    """The deepest recursion before RecursionError, plain and under the import hook: the
    same number (every scope entered, every site awake with sampling off). Before, the
    hooks' frames at the limit raised RecursionError where plain Python had room, and
    the scope's `finally` turned it into UnboundLocalError."""
    write_tree(tmp_path, {"deep.py": RECURSION, "driver.py": DEPTH_DRIVER})
    env = clean_env(MEMSCOPE_SAMPLING=sampling)
    got = {}
    for mode in ("plain", "hook"):
        r = subprocess.run([PY, "driver.py", mode], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        got[mode] = eval(r.stdout)
    plain, hook = got["plain"], got["hook"]
    assert plain["depth"] > 900
    # the C entry points add no frame; the pure-Python fallback's enter binds its
    # parameters through bind (one fast path for both), one frame more at the last level
    slack = 0 if _hooks.ACCELERATED else 1
    for k in ("depth", "depth_then_bind", "method"):
        assert plain[k] - slack <= hook[k] <= plain[k], (k, plain, hook)
    # a name bound before the recursive call: with its site awake, its bind's frame is
    # the one too many at the last level (docs/transformer.md, "Known limits")
    assert plain["bind_first"] - 1 <= hook["bind_first"] <= plain["bind_first"]
