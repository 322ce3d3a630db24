"""Instrumented code reports the ORIGINAL file, line and column everywhere."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.hook_helpers import PY, clean_env, run, unique, write_tree

TARGET = '''\
"""A module with errors on lines the instrumenter rewrites."""
import warnings


def deco(fn):
    return fn


@deco
def index_error(values):
    first = values[0]
    picked = values[first] + 1   # IndexError: caret under values[first]
    return picked


def in_comprehension(rows):
    total = 0
    squares = [r * r for r in rows if 10 // r]
    total += sum(squares)
    return total


def multi_line(a,
               b):
    result = (a
              + b)      # TypeError spans two lines
    return result


class Holder:
    size = 3

    def method(self, n):
        scaled = n * self.size
        key = {"a": 1}[scaled]
        return key


def gen(n):
    for i in range(n):
        item = 100 // (n - i - 1)
        yield item


def warn_here():
    msg = "careful"
    warnings.warn(msg, UserWarning)
    return msg


lam = lambda v: v.missing_attr
'''

DRIVER = '''\
import importlib, inspect, linecache, sys, traceback, warnings
if sys.argv[1] == "hook":
    from memscope_instrument.hook import install_import_hook
    install_import_hook([{name!r}], start=False)
m = importlib.import_module({name!r})
assert (type(m.__loader__).__name__ == "InstrumentingLoader") == (sys.argv[1] == "hook")
cases = [
    lambda: m.index_error([5, 1]),
    lambda: m.in_comprehension([1, 2, 0]),
    lambda: m.multi_line(1, "x"),
    lambda: m.Holder().method(2),
    lambda: list(m.gen(3)),
    lambda: m.lam(1),
]
for case in cases:
    try:
        case()
    except Exception:
        tb = traceback.format_exc()
        keep = [ln for ln in tb.splitlines() if "driver.py" not in ln]
        print("\\n".join(ln for ln in keep if "<lambda>" not in ln or "lam " in ln))
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    m.warn_here()
print("warning at", w[0].filename, w[0].lineno, w[0].message)
for obj in (m.index_error, m.Holder, m.Holder.method, m.gen, m.warn_here):
    print(inspect.getsourcelines(obj)[1], inspect.getsource(obj))
print(inspect.getsource(m)[:60])
print(repr(linecache.getline(m.__file__, 12)))
for fn in (m.index_error, m.multi_line, m.Holder.method, m.gen):
    lines = {{l for _, _, l in fn.__code__.co_lines() if l}}
    src, first = inspect.getsourcelines(fn)
    # every line the code reports lies in the function's own source
    print(fn.__code__.co_firstlineno, lines <= set(range(first, first + len(src))))
print(m.index_error.__name__, m.index_error.__qualname__, inspect.signature(m.multi_line))
'''


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, str]:
    name = unique()
    write_tree(tmp_path, {f"{name}.py": TARGET, "driver.py": DRIVER.format(name=name)})
    return tmp_path, name


def test_tracebacks_warnings_getsource_linecache_identical(project: tuple[Path, str]) -> None:
    base, _ = project
    plain = run([PY, "driver.py", "plain"], base)
    hooked = run([PY, "driver.py", "hook"], base)
    assert plain.returncode == 0, plain.stderr
    assert hooked.returncode == 0, hooked.stderr
    if sys.version_info >= (3, 11):
        assert "^^^^^^^^^^^^^" in plain.stdout  # the 3.11+ carets are compared too
    assert "in_comprehension" in plain.stdout and "warning at" in plain.stdout
    assert hooked.stdout == plain.stdout


def _pdb(base: Path, name: str, mode: str, call: str, cmds: str) -> str:
    script = base / "pdbdriver.py"
    script.write_text(
        "import pdb, sys\n"
        "if sys.argv[1] == 'hook':\n"
        "    from memscope_instrument.hook import install_import_hook\n"
        f"    install_import_hook([{name!r}], start=False)\n"
        f"import {name} as m\n"
        f"pdb.Pdb(nosigint=True).runcall({call})\n"
    )
    return run([PY, str(script), mode], base, input=cmds).stdout


def test_pdb_breakpoint_print_where_on_original_lines(project: tuple[Path, str]) -> None:
    base, name = project
    cmds = f"b {name}.py:35\nc\np scaled\nwhere\nl 34, 36\nc\n"
    plain = _pdb(base, name, "plain", "m.Holder().method, 3", cmds)
    hooked = _pdb(base, name, "hook", "m.Holder().method, 3", cmds)
    assert f"{name}.py(35)method()" in plain
    assert "-> key = {\"a\": 1}[scaled]" in plain and "(Pdb) 9" in plain
    assert hooked == plain


def test_pdb_steps_through_the_users_lines(project: tuple[Path, str]) -> None:
    """``next`` stops where plain pdb stops, in the same order, to the function's
    ``--Return--`` on its last line (3.12 inlines the comprehension: plain stops on its
    line once per element). Exactly: 3.10 stopped twice on the first line until the
    scope's ``try`` took that line (its ``SETUP_FINALLY``, of no line, broke it), and
    3.12 without the C hot path until hook._unjoin_enters (returning from the Python
    ``enter`` into its guard's join made a line event). Before
    linemap.place_scope_exits, 3.12+
    showed the function's end on its ``def`` line before the return (its ``finally``)."""
    import re

    base, name = project
    cmds = "n\n" * 14 + "c\n"
    plain = _pdb(base, name, "plain", "m.in_comprehension, [1, 2, 5]", cmds)
    hooked = _pdb(base, name, "hook", "m.in_comprehension, [1, 2, 5]", cmds)

    def lines(text: str) -> list[int]:
        return [int(n) for n in re.findall(rf"{name}\.py\((\d+)\)in_comprehension\(\)", text)]

    p, h = lines(plain), lines(hooked)
    assert p[:2] == [17, 18] and p[-2:] == [20, 20]  # the last: --Return-- on the return
    assert h == p


def test_coverage_reports_original_lines(project: tuple[Path, str]) -> None:
    base, name = project
    results = {}
    for mode in ("plain", "hook"):
        data = base / f".cov.{mode}"
        env = clean_env(COVERAGE_FILE=str(data))
        r = run([PY, "-m", "coverage", "run", f"--include={name}.py", "driver.py", mode],
                base, env=env)
        assert r.returncode == 0, r.stderr
        out = base / f"cov.{mode}.json"
        r = run([PY, "-m", "coverage", "json", "-o", str(out)], base, env=env)
        assert r.returncode == 0, r.stderr
        files = json.loads(out.read_text())["files"]
        (entry,) = files.values()
        results[mode] = (entry["executed_lines"], entry["missing_lines"])
    assert results["plain"][0]  # something was measured
    assert results["hook"] == results["plain"]


LINETRACE = Path(__file__).resolve().parent.parent / "fixtures" / "linetrace" / "program.py"


def _trace(code: Any) -> list[tuple[str, str, int | None, int]]:
    """(function, event, line, the function's def line) of every traced event of
    ``code``'s own frames (sys.settrace: on 3.12+ built on sys.monitoring)."""
    import contextlib
    import io

    events: list[tuple[str, str, int | None, int]] = []

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename == "program.py":
            events.append((frame.f_code.co_name, event, frame.f_lineno,
                           frame.f_code.co_firstlineno))
        return tracer

    with contextlib.redirect_stdout(io.StringIO()):
        sys.settrace(tracer)
        try:
            exec(code, {"__name__": "program"})
        finally:
            sys.settrace(None)
    return events


def _exits_by_exception(events: list[tuple[str, str, int | None, int]], inst: bool,
                        ) -> list[Any]:
    """``events`` with each frame's exit by an exception as one ``(function, "left by
    an exception")`` event, where it has the documented shape: plain, the return event
    right after the exception, on its line; instrumented, the same up to 3.11, and on
    3.12+ one line event on the ``def`` line first (the return on the raising line:
    linemap._reraise_at_the_raise). Any other shape is left as it is (and differs)."""
    out: list[Any] = []
    for fn, event, line, first in events:
        if event == "return":
            k = len(out) - 1
            while k >= 0 and out[k][:2] == (fn, "line"):
                k -= 1
            extra = [ev[2] for ev in out[k + 1:]]
            if sys.version_info >= (3, 12):  # the return on the raising line too
                shape = extra == [first] and line == out[k][2] if inst else not extra
            else:  # as plain: no line event, the raising line
                shape = not extra and line == out[k][2]
            if k >= 0 and out[k][:2] == (fn, "exception") and shape:
                del out[k + 1:]
                out.append((fn, "left by an exception"))
                continue
        out.append((fn, event, line))
    return out


@pytest.mark.parametrize("program", ["program.py", "exits.py"])
def test_line_events_are_plain_codes(program: str) -> None:
    """sys.settrace line and return events of instrumented code (as the hook compiles
    it) are plain code's (issue 17: debuggers, coverage, CPython's PEP 626 tests): the
    added statements make none, and a function's return event is on the line it
    returns from (every way a function can end is in fixtures/linetrace/exits.py).
    What is left is documented (docs/transformer.md, "Line events") and checked here
    exactly: on 3.12+ a frame left by an exception makes a line event on its ``def``
    line (``_exits_by_exception``); 3.12 traces a line twice in a row where its line
    events follow a jump (plain 3.12 does it in loops too). On 3.13 the counts are
    checked too; on 3.10 and 3.11 the events are exactly plain's (before issue 17's
    second part: a frame left by an exception showed a line event and its end on the
    ``def`` line, and a function's last line was traced twice after a read-back's
    guard)."""
    from memscope_instrument import hook
    from memscope_instrument.transform import instrument_source

    src = (LINETRACE.parent / program).read_text()
    res = instrument_source(src, "program.py", "program")
    plain = _trace(compile(src, "program.py", "exec"))
    inst = _trace(hook.compile_mapped(res.code, list(res.line_map), src, "program.py"))

    def same(ev: list[Any], inst: bool) -> list[Any]:
        out = _exits_by_exception(ev, inst)
        if sys.version_info[:2] == (3, 12):
            out = [e for k, e in enumerate(out) if not (k and e == out[k - 1]
                                                         and e[1] == "line")]
        return out

    assert same(inst, True) == same(plain, False)
    if sys.version_info[:2] == (3, 13):  # exact, but for the frames left by an exception
        assert len(inst) - len(plain) == sum(1 for e in same(plain, False)
                                             if e[1] == "left by an exception")
    if sys.version_info < (3, 12):
        assert inst == plain  # exact


def test_a_finally_of_ours_binds_no_name_of_the_program(tmp_path: Path) -> None:
    """The finally bodies the hook compiles as assignments (to keep their POP_TOP off a
    line: see hook._injected_nodes) bind no name the program can see and do not
    overwrite a function's scope token: an ``except ... as`` at module level, in a class
    body and in a function (one that calls ``locals()`` too), then more binds and the
    function's exit."""
    from memscope import _hooks
    from memscope.events import ENTER, EXIT

    from .conftest import Recorder

    src = textwrap.dedent('''\
        try:
            raise ValueError
        except ValueError as e:
            pass
        class K:
            RED = 1
            try:
                raise KeyError
            except KeyError as k:
                pass
        def f():
            try:
                raise KeyError
            except KeyError as k:
                pass
            after = [1]
            return after
        def g():
            try:
                raise KeyError
            except KeyError as k:
                pass
            return sorted(locals())
        ''')
    sink = _hooks.MemorySink(limit=100_000)
    old = _hooks.set_sink(sink)
    try:
        import types

        from memscope_instrument import hook
        from memscope_instrument.transform import instrument_source

        path = tmp_path / "finally_names.py"
        path.write_text(src)
        res = instrument_source(src, str(path), "finally_names")
        mod = types.ModuleType("finally_names")
        exec(hook.compile_mapped(res.code, list(res.line_map), src, str(path)), vars(mod))
        before = len(Recorder(sink).events())
        assert mod.f() == [1] and mod.g() == []
        events = Recorder(sink).events()[before:]
    finally:
        _hooks.set_sink(old)
    assert not [n for n in vars(mod) if n.startswith("_memscope") and n not in (
        "_memscope_", "_memscope_g", "_memscope_e")]
    assert [n for n in vars(mod.K) if not n.startswith("__")] == ["RED"]
    enters = {e[3] for e in events if e[0] == ENTER}
    exits = {e[2] for e in events if e[0] == EXIT}
    assert enters and enters <= exits  # f's and g's instances exit: their token survived


@pytest.mark.skipif(sys.version_info < (3, 11), reason="co_positions: 3.11+")
def test_line_table_encoder_and_decoder_agree_with_cpython() -> None:
    """linemap.place_scope_exits reads the bytecode with its own decoder and writes
    ``co_linetable`` and ``co_exceptiontable`` with its own encoders (dis was 80% of
    compile time): on the running Python, they agree with CPython on plain and
    instrumented code of real modules. The encoders give back every position (and on
    3.12+ every ``co_lines`` range) and every exception table; the decoder gives dis's
    offsets and jump targets and finds the same names of ours."""
    import dis
    import inspect
    from types import CodeType

    from memscope_instrument import hook
    from memscope_instrument.linemap import (
        _instructions,
        encode_exception_table,
        encode_positions,
    )
    from memscope_instrument.transform import instrument_source

    def check(code: CodeType) -> int:
        units = list(code.co_positions())
        again = code.replace(co_linetable=encode_positions(code.co_firstlineno, units))
        assert list(again.co_positions()) == units
        if sys.version_info >= (3, 12):
            assert list(again.co_lines()) == list(code.co_lines())
        if code.co_exceptiontable:
            table = [(e.start, e.end, e.target, e.depth, e.lasti)
                     for e in dis._parse_exception_table(code)]  # type: ignore[attr-defined]
            assert encode_exception_table(table) == code.co_exceptiontable
        mine = _instructions(code)
        ref = list(dis.get_instructions(code))
        assert [m[0] for m in mine] == [r.offset for r in ref]
        for m, r in zip(mine, ref, strict=True):
            assert m[2] == (r.argval if r.opcode in dis.hasjrel else -1)
            vals = r.argval if isinstance(r.argval, tuple) else (r.argval,)
            assert m[4] == any(isinstance(v, str) and v.startswith("_memscope_")
                               for v in vals), r
        return 1 + sum(check(c) for c in code.co_consts if isinstance(c, CodeType))

    import contextlib as m1
    import textwrap as m2
    checked = 0
    for mod in (m1, m2):
        src = inspect.getsource(mod)
        checked += check(compile(src, "m.py", "exec"))
        res = instrument_source(src, "m.py", "m")
        checked += check(hook.compile_mapped(res.code, list(res.line_map), src, "m.py"))
    assert checked > 100


RAISING = '''\
def body(a):
    b = a
    raise ValueError(b)


def in_except_as(a):
    try:
        raise KeyError(a)
    except KeyError as e:
        raise ValueError(a) from e


def in_finally(a):
    try:
        b = a
    finally:
        raise ValueError(a)


def nested(a):
    x = a
    return body(x)


def gen(a):
    try:
        yield a
    finally:
        c = a


def thrown(a):
    g = gen(a)
    next(g)
    g.throw(ValueError(a))
'''


@pytest.mark.parametrize("name", ["body", "in_except_as", "in_finally", "nested", "thrown"])
def test_a_frame_left_by_an_exception_is_on_the_raising_line(name: str) -> None:
    """The frames an exception leaves show the line that raised (``tb_frame.f_lineno``,
    what CPython's PEP 626 tests and post-mortem debuggers read), the traceback's lines
    and the exception are plain code's: our ``finally`` re-raises at the raising
    instruction, as a ``with`` block's exit does (linemap._reraise_at_the_raise: from
    3.11 ``RERAISE 2`` and the exception table's ``lasti``; on 3.10 ``RERAISE 1``,
    which goes back to the offset its handler block saved). Before issue 17's second
    part, up to 3.11 such a frame was on its ``def`` line (CPython's PEP 626 tests in
    test_exceptions: 10 failures)."""
    from memscope_instrument import hook
    from memscope_instrument.transform import instrument_source

    def outcome(code: Any) -> tuple[Any, ...]:
        ns: dict[str, Any] = {"__name__": "raising"}
        exec(code, ns)
        try:
            ns[name](1)
        except Exception as e:  # the same exception, plain and instrumented
            tb = e.__traceback__
            frames = []
            assert tb is not None
            tb = tb.tb_next  # this test's frame
            while tb is not None:
                code_ = tb.tb_frame.f_code
                frames.append((code_.co_name, tb.tb_lineno, tb.tb_frame.f_lineno,
                               code_.co_firstlineno))
                tb = tb.tb_next
            return type(e).__name__, str(e), type(e.__context__).__name__, tuple(frames)
        raise AssertionError("no exception")

    res = instrument_source(RAISING, "raising.py", "raising")
    plain = outcome(compile(RAISING, "raising.py", "exec"))
    inst = outcome(hook.compile_mapped(res.code, list(res.line_map), RAISING, "raising.py"))
    assert inst == plain


PATMA = '''\
def default_wildcard(command):
    match command.split():
        case ["go", direction] if direction in "nesw":
            return f"go {direction}"
        case ["go", _]:
            return "no go"
        case _:
            return "default"


def no_default(command):
    match command.split():
        case ["go", direction] if direction in "nesw":
            return f"go {direction}"
        case ["go", _]:
            return "no go"


def only_default_capture(command):
    match command.split():
        case x:
            return x


def binds(command):
    words = command.split()
    n = len(words)
    return n
'''

PATMA_DRIVER = '''\
import json, sys
if sys.argv[1] == "hook":
    from memscope_instrument.hook import install_import_hook
    install_import_hook([{name!r}], start=True)
import {name} as m
out = []
for fn in (m.default_wildcard, m.no_default, m.only_default_capture, m.binds):
    for arg in ("go n", "go x", "spam"):
        lines = []
        def trace(frame, event, a):
            if event == "line" and frame.f_code is fn.__code__:
                lines.append(frame.f_lineno - fn.__code__.co_firstlineno)
            return trace
        sys.settrace(trace)
        try:
            fn(arg)
        finally:
            sys.settrace(None)
        out.append([fn.__name__, arg, lines])
print(json.dumps(out))
'''


@pytest.mark.parametrize("hot_path", ["c", "pure"])
def test_a_functions_lines_are_traced_once_as_cpythons_test_patma_checks(
        tmp_path: Path, hot_path: str) -> None:
    """The line events of a function under the hook, with tracking running (so the
    scope's ``enter`` is called), are plain code's, each line once: CPython's
    ``test_patma.TestTracing`` reads them (relative to ``co_firstlineno``). Before: 3.10
    traced the first line twice (the scope ``try``'s ``SETUP_FINALLY`` had no line), and
    3.12 without the C hot path too (returning from the Python ``enter`` into a jump
    target, the join of its guard, makes a line event there: hook._unjoin_enters)."""
    name = unique()
    write_tree(tmp_path, {f"{name}.py": PATMA, "driver.py": PATMA_DRIVER.format(name=name)})
    env = clean_env(MEMSCOPE_HOTPATH_PURE="1" if hot_path == "pure" else "")
    plain = run([PY, "driver.py", "plain"], tmp_path, env=env)
    hooked = run([PY, "driver.py", "hook"], tmp_path, env=env)
    assert plain.returncode == 0 and hooked.returncode == 0, plain.stderr + hooked.stderr
    expected = json.loads(plain.stdout)
    assert expected[0] == ["default_wildcard", "go n", [1, 2, 3]]
    assert json.loads(hooked.stdout) == expected


@pytest.mark.skipif(sys.version_info >= (3, 11), reason="the 3.10 line table")
def test_310_line_table_encoder_agrees_with_cpython() -> None:
    """linemap.encode_lines_310 (used by reraise_scope_exits_310 to take the line off
    our finally handlers) gives back every ``co_lines`` range of plain and instrumented
    code of real modules, long jumps of bytes and lines included."""
    import inspect
    from types import CodeType

    from memscope_instrument import hook
    from memscope_instrument.linemap import encode_lines_310
    from memscope_instrument.transform import instrument_source

    def merged(code: CodeType) -> list[tuple[int, int, int | None]]:
        out: list[tuple[int, int, int | None]] = []
        for start, end, ln in code.co_lines():
            if start == end:
                continue
            if out and out[-1][2] == ln and out[-1][1] == start:
                out[-1] = (out[-1][0], end, ln)
            else:
                out.append((start, end, ln))
        return out

    def check(code: CodeType) -> int:
        ranges = merged(code)
        again = code.replace(co_linetable=encode_lines_310(code.co_firstlineno, ranges))
        assert merged(again) == ranges
        return 1 + sum(check(c) for c in code.co_consts if isinstance(c, CodeType))

    import contextlib as m1
    import textwrap as m2
    checked = 0
    for mod in (m1, m2):
        src = inspect.getsource(mod)
        checked += check(compile(src, "m.py", "exec"))
        res = instrument_source(src, "m.py", "m")
        checked += check(hook.compile_mapped(res.code, list(res.line_map), src, "m.py"))
    far = compile("x = 1\n" + "\n" * 300 + "y = [" + "a, " * 300 + "]\n"  # > 254 bytes
                  + "f(\n" + "a,\n" * 300 + ")\n", "f.py", "exec")  # back 300 lines
    assert any(e - s > 254 for s, e, _ in merged(far))
    checked += check(far)
    assert checked > 100


JUMPS = '''\
def f(out):
    out.append(1)
    x = 2
    out.append(x)
    out.append(3)
    return out
'''


@pytest.mark.skipif(sys.version_info < (3, 11),
                    reason="3.10: the first line event is before the scope's try")
@pytest.mark.filterwarnings("ignore:assigning None")  # (3.12+, plain too: `x` jumped over)
@pytest.mark.parametrize("jump", [(1, 3), (1, 4), (2, 4), (3, 1)])
def test_a_debuggers_jump_runs_as_in_plain_code(jump: tuple[int, int]) -> None:
    """A trace function setting ``f_lineno`` (pdb's ``jump``; CPython's
    ``test_sys_settrace`` JumpTestCase) from a function's first line skips the scope's
    ``enter``, which runs on that line after its line event: the token was unbound
    and the jump ended in ``UnboundLocalError`` at the next read-back (or the exit).
    hook._preset_tokens sets it to None before the first line event (no position, no
    line event), so the program's output is plain's. Not on 3.10, whose jump check
    refuses a jump from the first line (the enter's, outside the scope's ``try``) into
    the body (documented)."""
    from memscope_instrument import hook
    from memscope_instrument.transform import instrument_source

    def run(code: Any) -> Any:
        ns: dict[str, Any] = {"__name__": "jumps"}
        exec(code, ns)
        fn = ns["f"]
        first = fn.__code__.co_firstlineno
        done = []

        def tracer(frame: Any, event: str, arg: Any) -> Any:
            if frame.f_code is fn.__code__:
                if event == "line" and not done and frame.f_lineno == first + jump[0]:
                    done.append(1)
                    frame.f_lineno = first + jump[1]
                return tracer
            return None

        sys.settrace(tracer)
        try:
            return fn([])
        except Exception as e:  # the same outcome, plain and instrumented
            return repr(e)
        finally:
            sys.settrace(None)

    res = instrument_source(JUMPS, "jumps.py", "jumps")
    plain = run(compile(JUMPS, "jumps.py", "exec"))
    assert plain != [1, 2, 3]  # the jump happened
    assert run(hook.compile_mapped(res.code, list(res.line_map), JUMPS, "jumps.py")) == plain


CLASS_IF_ELSE = '''\
def func(n):
    class A:
        if n < 9:
            a = 1
        else:
            a = 2
    return A
'''


@pytest.mark.skipif(sys.version_info[:2] in ((3, 10), (3, 12)),
                    reason="3.10, 3.12: the class body's end on the else line (documented)")
@pytest.mark.parametrize("n", [1, 10])
def test_a_class_body_ending_in_if_else_returns_from_the_branch_that_ran(n: int) -> None:
    """A class body whose last statement is an ``if``/``else`` (CPython's
    ``test_sys_settrace.test_implicit_return_in_class``) shows its return event on the
    line of the branch that ran, as plain code does: the copy of the body's exit
    (``exit_class``) reached by the ``if`` branch's jump had the ``else`` line (3.11:
    CPython gave it the line laid out before it, the jump coming from a guard's join
    of no line); linemap.place_scope_exits gives it the jump's line."""
    from memscope_instrument import hook
    from memscope_instrument.transform import instrument_source

    def events(code: Any) -> list[tuple[str, str, int]]:
        ns: dict[str, Any] = {"__name__": "classes"}
        exec(code, ns)
        out: list[tuple[str, str, int]] = []

        def tracer(frame: Any, event: str, arg: Any) -> Any:
            if frame.f_code.co_filename == "classes.py":
                out.append((frame.f_code.co_name, event, frame.f_lineno))
                return tracer
            return None

        sys.settrace(tracer)
        try:
            ns["func"](n)
        finally:
            sys.settrace(None)
        return out

    res = instrument_source(CLASS_IF_ELSE, "classes.py", "classes")
    plain = events(compile(CLASS_IF_ELSE, "classes.py", "exec"))
    inst = events(hook.compile_mapped(res.code, list(res.line_map), CLASS_IF_ELSE,
                                      "classes.py"))
    assert inst == plain
