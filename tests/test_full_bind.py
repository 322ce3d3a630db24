"""Full mode's re-bind of a known object in C (``_deathwatch.FullBind``, handed to the C
hot path in place of the Python closure): the rows it writes are the closure's, field
for field (size, deep size, the program's refcount), and it leaves to the closure what
it does not know (a first bind, a changed object, a sampled site, another mode)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from memscope import _hooks
from tests.conftest import Recorder

needs_c = pytest.mark.skipif(_hooks._FullBind is None, reason="FullBind is not built")


class Plain:
    def __init__(self) -> None:
        self.a = [1, 2]


class Slotted:
    __slots__ = ("x", "y")

    def __init__(self) -> None:
        self.x, self.y = 1.5, "s"


def _rows(rec: Recorder, m: Any) -> list[tuple[Any, ...]]:
    return [(e[2] - m.base, e[5], e[6], e[7], e[8]) for e in rec.events()
            if e[0] == _hooks.BIND and m.base <= e[2] < m.base + 1]


@needs_c
def test_the_c_re_bind_writes_the_closures_rows(full: Recorder,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    handed: list[int] = []

    def counting(base: int, fallback: Any, **kw: Any) -> Any:
        def closure(site: int, value: Any, tok: Any) -> Any:
            handed.append(site)
            return fallback(site, value, tok)
        return make(base, closure, **kw)

    make = _hooks._full_bind
    monkeypatch.setattr(_hooks, "_full_bind", counting)
    in_c = full.module("v")
    monkeypatch.setattr(_hooks, "_FullBind", None)
    in_python = full.module("v")
    values = [[1, 2, 3], {"k": [1]}, (1, [2]), Plain(), Slotted(), {1, 2}]
    held = [values[0], values[0], values[3]]  # more references from the program
    for m in (in_c, in_python):
        tok = m.enter(1, -1)
        for _ in range(3):
            for v in values:
                m.bind(0, v, tok)
        m.exit(tok)
    c, py = _rows(full, in_c), _rows(full, in_python)
    assert len(c) == len(py) == 18
    assert [r[2:4] for r in c] == [r[2:4] for r in py]  # size, deep
    # the program's refcount on re-binds (a first bind's went through this test's
    # counting closure here, a frame more)
    assert [r[4] for r in c[6:]] == [r[4] for r in py[6:]]
    assert all(r[3] > 0 for r in c)
    # the first bind of each object went to the closure, the re-binds did not
    assert len(handed) == len(values)
    values[0].extend(range(100))  # changed: its size is not the one its deep size had
    tok = in_c.enter(1, -1)
    in_c.bind(0, values[0], tok)
    in_c.exit(tok)
    assert len(handed) == len(values) + 1
    del held


@needs_c
def test_fast_mode_and_sampled_sites_are_left_to_the_closure(rec: Recorder) -> None:
    m = rec.module("v")
    tok = m.enter(1, -1)
    value = [1, 2]
    for _ in range(3):
        m.bind(0, value, tok)
    m.exit(tok)
    assert all(len(e) == 7 for e in rec.events() if e[0] == _hooks.BIND)  # fast rows


def test_a_dead_objects_address_bound_again_before_its_death_is_drained_is_a_first_bind(
        full: Recorder) -> None:
    """A list watched and sized dies; a new list of the same size takes its address
    (the free list) and is bound before the death is drained (no flush, no slow bind
    in between): it is another object, first bound, so it is watched and walked, not
    recorded with the dead one's deep size (it went unwatched before: a leak of it
    could not be proven)."""
    if _hooks._dw is None:
        pytest.skip("the death watch is not built")
    m = full.module("v")
    tok = m.enter(1, -1)
    big, small = [0] * 100, 4
    a: Any = [big, 2, 3]
    m.bind(0, a, tok)
    addr, size = id(a), sys.getsizeof(a)
    del a
    b = [small, 5, 6]  # (a list's memory is reused at once)
    del big
    if id(b) != addr or sys.getsizeof(b) != size:
        pytest.skip("the address was not reused by a list of the same size")
    assert _hooks._dw.since(addr) is None  # the dead list's watch is over
    m.bind(0, b, tok)
    m.exit(tok)
    assert _hooks._dw.since(id(b)) is not None  # watched: a first bind
    deep = [e[7] for e in full.events() if e[0] == _hooks.BIND and e[4] == addr]
    assert deep[0] > 1000 and 0 < deep[1] < 200  # its own deep size, not the dead one's
