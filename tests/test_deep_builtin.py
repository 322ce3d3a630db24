"""The deep walk over built-in data in C (``_deathwatch.deep_builtin``, used by
``sizing.deep_size``) measures what the Python walk measures: the same size, the same
count of objects, the same ``bytes``, ``bytearray`` and large ``str`` handed over; and
leaves anything else to the Python walk."""

from __future__ import annotations

from typing import Any

import pytest

from memscope import sizing

needs_c = pytest.mark.skipif(sizing._deep_builtin is None, reason="not built")


class Thing:
    def __init__(self) -> None:
        self.rows = [1, 2, 3]


def _python(obj: Any, **kw: Any) -> tuple[sizing.DeepResult, list[Any]]:
    found: list[Any] = []
    keep = sizing._deep_builtin
    sizing._deep_builtin = None
    try:
        return sizing.deep_size(obj, found=found, **kw), found
    finally:
        sizing._deep_builtin = keep


_shared = [1.5, "s" * 10]
CASES = [
    [1.0] * 180,
    (3, [float(i) for i in range(200)]),
    {"a": [1, 2, "x" * 1000], "b": (b"y" * 10, bytearray(5)), 7: None, 2.5: True},
    [[i] * 3 for i in range(1000)],
    {1, 2, 3, "four"},
    frozenset([(1, 2), (3, 4)]),
    [None, True, False, 1 + 2j, 10**40, -1, "é" * 400, "ascii" * 200],
    [_shared, _shared, (_shared,), {"k": _shared}],  # each object once
    {i: {str(i): [i, (i,)]} for i in range(300)},
    [],
    ((), (), {}),
]


@needs_c
@pytest.mark.parametrize("case", range(len(CASES)))
def test_the_c_walk_measures_what_the_python_walk_does(case: int) -> None:
    obj = CASES[case]
    found: list[Any] = []
    got = sizing.deep_size(obj, found=found)
    want, want_found = _python(obj)
    assert (got.size, got.objects, got.complete) == (want.size, want.objects, want.complete)
    assert sorted(map(id, found)) == sorted(map(id, want_found))
    assert sizing._deep_builtin(obj, 10**6, 10**9, None, sizing.LARGE_STR) is not None


@needs_c
def test_anything_else_is_left_to_the_python_walk() -> None:
    for obj in ([Thing()], {"k": Thing}, [len], (1, [2, [3, object()]])):
        assert sizing._deep_builtin(obj, 10**6, 10**9, None, sizing.LARGE_STR) is None
        got, want = sizing.deep_size(obj), _python(obj)[0]
        assert (got.size, got.objects) == (want.size, want.objects)


@needs_c
def test_the_budget_cuts_the_c_walk_as_it_cuts_the_python_walk() -> None:
    obj = [[i] for i in range(1000)]
    got, want = sizing.deep_size(obj, max_objects=100), _python(obj, max_objects=100)[0]
    assert not got.complete and not want.complete
    assert got.objects == want.objects == 100
    assert not sizing.deep_size(obj, max_ns=0).complete
