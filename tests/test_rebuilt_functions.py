"""A function of an instrumented module run with other globals (issue 17, CPython's
``test_funcattrs::test___builtins__``): ``types.FunctionType(f.__code__, {})``, as
cloudpickle and dill rebuild functions, or ``exec(code, {})``. Its globals lack the
module's ``_memscope_*`` names; it must run as the plain function does, recording
nothing, not raise ``NameError``."""

from __future__ import annotations

import builtins
import types
from pathlib import Path
from typing import Any

import pytest

from .conftest import Recorder
from .test_interrupts import load
from .test_side_effects import plain

SRC = """
class Box:
    pass


def work(n):
    total = 0
    for i in range(n):
        total += i
    pairs = [(k, k * 2) for k in range(n) if (last := k) >= 0]
    sq = (lambda v: v * v)(n)
    box = Box()
    box.item = pairs
    tmp = sq
    del tmp
    try:
        raise ValueError(total)
    except ValueError as exc:
        caught = exc.args[0]

    class Local:
        size = len(pairs)

    return total, pairs, last, sq, box.item, caught, Local.size
"""


@pytest.mark.parametrize("libcst", [False, True])
@pytest.mark.parametrize("comprehensions", [False, True])
def test_function_rebuilt_with_empty_globals_runs(
    rec: Recorder, tmp_path: Path, libcst: bool, comprehensions: bool
) -> None:
    want = plain(tmp_path, SRC).work(4)
    mod = load(tmp_path, SRC, libcst=libcst, comprehensions=comprehensions,
               name=f"rebuilt_{int(libcst)}{int(comprehensions)}")
    assert mod.work(4) == want
    before = len(rec.events())
    globs: list[dict[str, Any]] = [{}, {"__builtins__": builtins}, {"Box": mod.Box}]
    for g in globs:
        f = types.FunctionType(mod.work.__code__, g)
        if "Box" in g:
            assert f(4) == want
        else:
            with pytest.raises(NameError, match="'Box'"):  # as the plain function does
                f(4)
            g["Box"] = mod.Box
            assert f(4) == want
    # a detached copy records nothing
    assert rec.events()[before:] == []
