"""The libcst fallback emitter (memscope_instrument/cst_emit.py), on layouts the
splicer declines: same rules, output that runs and records what the splicer's does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from memscope_instrument import transform
from memscope_instrument.linemap import compile_with_line_map
from memscope_instrument.transform import instrument_source

from .conftest import Recorder


@pytest.fixture
def declined() -> Iterator[list[bool]]:
    """Whether the splicer declined each module instrumented meanwhile."""
    real = transform._splice
    seen: list[bool] = []

    def spy(*a: Any) -> Any:
        r = real(*a)
        seen.append(r is None)
        return r

    transform._splice = spy  # type: ignore[assignment]
    try:
        yield seen
    finally:
        transform._splice = real  # type: ignore[assignment]


# a docstring sharing its line with more statements and a comment: the splicer
# declines the header; `a.x = [1]` is read back with the module's / class body's token
@pytest.mark.parametrize("src, where", [
    ("'''doc'''; a = type('N', (), {})(); a.x = [1]  # c\n", "module"),
    ("'''doc'''; n = 1  # c\n"
     "class K:\n"
     "    a = type('N', (), {})(); a.x = [1]\n"
     "    if a: \\\n"
     "      a.y = [2]\n", "class"),
])
def test_attribute_read_back_outside_a_function(rec: Recorder, declined: list[bool],
                                                src: str, where: str) -> None:
    """Before the fix the fallback wrote the module's token ``_memscope_.m`` (and a class
    body's ``_memscope_.c()``) as a libcst Name and failed with CSTValidationError,
    which is not an InstrumentError: the import hook's fallback did not catch it."""
    res = instrument_source(src, "m.py", "m")
    assert declined == [True]
    code = compile_with_line_map(res.code, res.line_map, "m.py", deltas=res.col_delta)
    ns: dict[str, Any] = {"__name__": "m"}
    exec(code, ns)
    got = {b.var for b in rec.analysis().all_bindings()}
    assert "a.x" in got and "a" in got
    if where == "class":
        assert ns["K"].a.y == [2] and "a.y" in got
