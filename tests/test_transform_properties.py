"""Property tests: hypothesmith programs (from the grammar and from libcst nodes) always
transform, the output compiles, and instrumenting twice equals instrumenting once."""

from __future__ import annotations

import ast
import re
from typing import Any

import hypothesmith
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memscope_instrument import transform
from memscope_instrument.linemap import compile_with_line_map, split_lines
from memscope_instrument.transform import InstrumentError, Options, instrument_source

from .conftest import Recorder

# derandomize: the same programs every run, so the suite's time is the same every run
# (hypothesmith's node strategy can spend minutes on one unlucky draw)
SETTINGS = settings(max_examples=100, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


DEFAULT = Options()


def check(src: str, options: Options = DEFAULT) -> None:
    try:
        compile(src, "<gen>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        try:
            instrument_source(src, "gen.py", options=options)
        except InstrumentError as e:
            assert e.filename == "gen.py" and e.line >= 0
        return
    res = instrument_source(src, "gen.py", options=options)
    compile(res.code, "<inst>", "exec", dont_inherit=True)
    assert len(res.line_map) == len(split_lines(res.code))
    n = max(1, len(split_lines(src)))
    assert all(1 <= ln <= n for ln in res.line_map)
    again = instrument_source(res.code, "gen.py", options=options)
    assert again.changed is False and again.code == res.code
    # the docstring and __future__ imports are still first
    before, after = ast.parse(src), ast.parse(res.code)
    assert ast.get_docstring(before, clean=False) == ast.get_docstring(after, clean=False)


@SETTINGS
@given(hypothesmith.from_grammar())
def test_grammar_programs(src: str) -> None:
    check(src)


@SETTINGS
@given(hypothesmith.from_node(auto_target=False))
def test_node_programs(src: str) -> None:
    check(src)


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(hypothesmith.from_node(auto_target=False))
def test_node_programs_all_options(src: str) -> None:
    check(src, Options(imports=True, comprehensions=True))


# -- nesting (issue 17): lambdas, walruses and comprehensions inside each other and in
# the places Python restricts `:=` (comprehension iterables, class bodies), default
# arguments, decorators and f-strings (nested f-strings where the grammar allows them).
# Generated programs that compile plain must compile instrumented, through both output
# paths, with and without comprehension scopes, and compute the same result (or raise
# the same exception).

_LEAF = st.sampled_from(["xs", "1", "v", "w1"])


def _nest(e: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    two = st.tuples(e, e)
    return st.one_of(
        e.map(lambda a: f"(lambda v: {a})"),
        two.map(lambda p: f"(lambda v, q=({p[0]}): {p[1]})"),
        two.map(lambda p: f"(lambda v: {p[0]})({p[1]})"),
        e.map(lambda a: f"(w1 := {a})"),
        e.map(lambda a: f"(w2 := {a})"),
        two.map(lambda p: f"[{p[0]} for v in {p[1]}]"),
        two.map(lambda p: f"[{p[0]} for a in xs for v in {p[1]}]"),
        two.map(lambda p: f"[v for v in xs if {p[0]}] + [{p[1]}]"),
        two.map(lambda p: f"{{v: {p[0]} for v in {p[1]}}}"),
        two.map(lambda p: f"list({p[0]} for v in {p[1]})"),
        two.map(lambda p: f"list(map(lambda v: {p[0]}, {p[1]}))"),
        e.map(lambda a: f'f"{{{a}}}"'),
        e.map(lambda a: f"f'{{{a}!r:>{{3}}}}'"),
    )


_EXPR = st.recursive(_LEAF, _nest, max_leaves=6)
_PLACES = [
    "r = {e}\n",
    "def f(p={e}):\n    return p\nr = f()\n",
    "def f(*, p={e}):\n    return p\nr = f()\n",
    "def g():\n    v = 2\n    return {e}\nr = g()\n",
    "@(lambda fn: ({e}, fn)[1])\ndef f():\n    return 7\nr = f()\n",
    "class C:\n    v = 3\n    r = {e}\nr = C.r\n",
    "class C(metaclass=({e}, type)[1]):\n    pass\nr = C.__name__\n",
    "r = [x for x in range(2)] if {e} else 0\n",
]
_PROGRAM = st.tuples(st.sampled_from(_PLACES), _EXPR).map(lambda p: p[0].format(e=p[1]))
_HEADER = "xs = [1, 2]\nv = 5\nw1 = 0\n"


def _outcome(code: Any) -> str:
    ns: dict[str, Any] = {"__name__": "gen"}
    try:
        exec(code, ns)
        r = ns.get("r")
        if callable(r):
            r = r(1)
    except Exception as e:  # the same exception, plain and instrumented
        return f"raised {type(e).__name__}"
    return re.sub(r" at 0x[0-9a-f]+", "", repr(r))  # a function's repr shows its address


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(_PROGRAM)
def test_nested_lambdas_walruses_comprehensions(rec: Recorder, body: str) -> None:
    src = _HEADER + body
    try:
        plain = compile(src, "gen.py", "exec", dont_inherit=True)
    except SyntaxError:
        return  # Python rejects it (a `:=` in an iterable, a nested f-string before 3.12)
    want = _outcome(plain)
    saved = transform._splice
    try:
        for libcst in (False, True):
            if libcst:
                transform._splice = lambda *a, **k: None  # type: ignore[assignment]
            for options in (DEFAULT, Options(comprehensions=True)):
                res = instrument_source(src, "gen.py", options=options)
                code = compile_with_line_map(res.code, res.line_map, "gen.py",
                                             deltas=res.col_delta)
                got = _outcome(code)
                assert got == want, (src, libcst, options, res.code)
    finally:
        transform._splice = saved  # type: ignore[assignment]


def test_form_feed_in_indentation(rec: Recorder) -> None:
    """A form feed in a line's indentation resets Python's column count: the wrappers
    the transformer indents by went before it and counted for nothing (found by
    hypothesmith on 3.13's compat run; every version). A form feed inside a string
    literal is the program's data and is kept."""
    check("class A: pass\nclass A:\n class A:\n \x0c  pass\n")
    src = "def f():\n \x0c   y = '''a\n\x0c b'''\n   return y\nr = f()\n"
    res = instrument_source(src, "gen.py")
    ns: dict[str, Any] = {}
    exec(compile_with_line_map(res.code, res.line_map, "gen.py", deltas=res.col_delta), ns)
    assert ns["r"] == "a\n\x0c b"
