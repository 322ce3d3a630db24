"""Property tests: hypothesmith programs (from the grammar and from libcst nodes) always
transform, the output compiles, and instrumenting twice equals instrumenting once."""

from __future__ import annotations

import ast

import hypothesmith
from hypothesis import HealthCheck, given, settings

from memscope_instrument.linemap import split_lines
from memscope_instrument.transform import InstrumentError, Options, instrument_source

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
