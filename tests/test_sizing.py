"""Sizes: builtins equal sys.getsizeof; deep sizes agree with pympler.asizeof within 1%."""

from __future__ import annotations

import array
import collections
import ctypes
import mmap
import sys
from typing import Any

import numpy as np
import pytest
from pympler import asizeof

import memscope
from memscope import _hooks, sizing

from .conftest import Recorder


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y
        self.tags = [f"tag{x}", f"tag{y}"]


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self) -> None:
        self.a = list(range(50))
        self.b = "slot" * 20


BUILTINS: list[Any] = [
    0,
    12345678901234567890,
    3.5,
    True,
    None,
    "",
    "hello",
    "héllo wörld" * 10,
    b"",
    b"x" * 1024,
    bytearray(b"y" * 300),
    [],
    [1, 2, 3],
    list(range(1000)),
    (),
    (1, "a"),
    {},
    {"a": 1, "b": [1, 2]},
    set(range(100)),
    frozenset("abc"),
    collections.deque(range(64)),
    memoryview(b"abcdef"),
    array.array("d", range(100)),
    complex(1, 2),
    range(10),
]


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_shallow_size_of_builtins_equals_getsizeof(rec: Recorder, mode: str) -> None:
    _hooks.configure(full=mode == "full", flush_at=8192, deep_objects=10**5, deep_ns=10**9)
    m = rec.module("v")
    tok = m.enter(1, -1)
    for v in BUILTINS:
        m.bind(0, v, tok)
        m.bind(0, v, tok)  # second bind of the type goes through the fast path
    m.exit(tok)
    got = [b.size for b in rec.analysis().all_bindings()]
    want = [sys.getsizeof(v) for v in BUILTINS for _ in (0, 1)]
    assert got == want


FIXTURES: dict[str, Any] = {
    "nested dicts": {f"k{i}": {"inner": list(range(i)), "name": f"n{i}" * 3} for i in range(50)},
    "list of strings": [f"string number {i}" * (i % 7 + 1) for i in range(500)],
    "tuple of bytes": tuple(bytes(i * 10) for i in range(100)),
    "instances": [Point(i, i + 1) for i in range(100)],
    "slotted": [Slotted() for _ in range(20)],
    "shared": (lambda s: [s, s, s, [s]])(list(range(1000))),
    "set of tuples": {(i, str(i)) for i in range(200)},
}


def _aligned(n: int) -> int:
    return (n + 7) & ~7


def test_deque_items_are_counted() -> None:
    """pympler does not walk a deque's items; memscope does."""
    dq = collections.deque(float(i) + 0.5 for i in range(300))
    assert sizing.deep_size(dq, max_ns=10**11).size == _aligned(sys.getsizeof(dq)) + 300 * _aligned(
        24
    )


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_deep_size_agrees_with_pympler_within_one_percent(name: str) -> None:
    obj = FIXTURES[name]
    ours = sizing.deep_size(obj, max_ns=10**11).size
    theirs = asizeof.asizeof(obj)
    assert abs(ours - theirs) <= 0.01 * theirs, (ours, theirs)


def test_deep_size_counts_shared_objects_once() -> None:
    shared = list(range(10_000))
    both = [shared, shared]
    assert sizing.deep_size(both, max_ns=10**11).size == sizing.deep_size(
        shared, max_ns=10**11
    ).size + _aligned(sys.getsizeof(both))


def test_deep_size_stops_at_its_budget() -> None:
    res = sizing.deep_size([[i] for i in range(10_000)], max_objects=100)
    assert not res.complete and res.objects == 100
    assert sizing.deep_size(list(range(99)), max_objects=100).complete


def test_full_mode_rebinding_an_unchanged_object_reuses_its_deep_size(full: Recorder) -> None:
    big = [list(range(10)) for _ in range(2000)]
    m = full.module("big")
    tok = m.enter(1, -1)
    m.bind(0, big, tok)
    big[0] = list(range(10_000))  # not seen: same length, same shallow size
    m.bind(0, big, tok)
    m.exit(tok)
    first, second = full.analysis().all_bindings()[-2:]
    assert first.deep == second.deep  # the amortised (cached) value, by design


def test_buffers_numpy_ctypes_array_mmap(full: Recorder) -> None:
    arr = np.arange(1000, dtype=np.float64)
    view = arr[10:20]
    carr = (ctypes.c_double * 50)()
    a = array.array("i", range(10))
    mm = mmap.mmap(-1, 4096)
    ba = bytearray(100)
    m = full.module("arr", "view", "carr", "a", "mm", "ba")
    tok = m.enter(1, -1)
    for i, v in enumerate((arr, view, carr, a, mm, ba)):
        m.bind(i, v, tok)
    m.exit(tok)
    got = {b.var: (b.addr, b.bufsize) for b in full.analysis().all_bindings()}
    assert got["arr"] == (arr.__array_interface__["data"][0], 8000)
    assert got["view"] == (arr.__array_interface__["data"][0] + 80, 80)
    assert got["carr"] == (ctypes.addressof(carr), 400)
    assert got["a"] == (a.buffer_info()[0], 40)
    assert got["mm"][1] == 4096 and got["mm"][0] > 0
    assert got["ba"][1] == 100 and got["ba"][0] > 0
    assert sizing.buffer_base(view) is arr
    mm.close()


def test_register_sizer_and_trackable_protocol(full: Recorder) -> None:
    class Foreign:
        pass

    class Mine:
        def __init__(self) -> None:
            self.payload = bytearray(10)

        def __memscope_size__(self) -> int:
            return 1234

        def __memscope_children__(self) -> list[Any]:
            return [self.payload]

        def __memscope_buffer__(self) -> tuple[int, int]:
            return (0x1000, 77)

    memscope.register_sizer(Foreign, lambda o: 999, buffer=lambda o: (0x2000, 5))
    m = full.module("f", "mine")
    tok = m.enter(1, -1)
    mine = Mine()
    m.bind(0, Foreign(), tok)
    m.bind(1, mine, tok)
    m.exit(tok)
    got = {b.var: b for b in full.analysis().all_bindings()}
    assert (got["f"].size, got["f"].addr, got["f"].bufsize) == (999, 0x2000, 5)
    assert got["mine"].size == 1234
    assert got["mine"].deep == _aligned(1234) + _aligned(sys.getsizeof(mine.payload))
    assert (got["mine"].addr, got["mine"].bufsize) == (0x1000, 77)
    assert isinstance(mine, memscope.Trackable)


def test_program_objects_count_only_themselves() -> None:
    """A function's deep size must not wander into its module's globals."""

    def f() -> None:
        pass

    assert sizing.deep_size(f).size == _aligned(sys.getsizeof(f))
    assert sizing.deep_size(Point).size == _aligned(sys.getsizeof(Point))
    assert sizing.deep_size(sys).size == _aligned(sys.getsizeof(sys))


def test_register_sizer_for_a_builtin_type_reaches_walks_made_before() -> None:
    """Builtin types' walk facts are kept across deep walks; a sizer registered later
    for one of them must still be used by the next walk."""
    from memscope import sizing

    t = (10**30, 10**31)  # two ints, each its own object
    before = sizing.deep_size(t).size
    assert int in sizing._static_walk  # the facts were kept
    try:
        memscope.register_sizer(int, lambda o: 1000)
        assert sizing.deep_size(t).size == before - sum(
            _aligned(sys.getsizeof(i)) for i in t) + 2 * _aligned(1000)
    finally:
        sizing._SIZERS.pop(int, None)
        sizing.sizers_changed()
    assert sizing.deep_size(t).size == before


@pytest.mark.parametrize("builtin", [False, True])
def test_register_sizer_reaches_binds_of_a_type_already_on_the_fast_path(
        rec: Recorder, builtin: bool) -> None:
    """The hot path keeps how to size a type it has seen (keyed by the type when it is
    static, by its id otherwise); a sizer registered afterwards must be used by the next
    bind all the same."""
    class Later:
        pass

    tp = set if builtin else Later
    m = rec.module("x")
    tok = m.enter(1, -1)
    m.bind(0, tp(), tok)  # the type goes on the fast path
    try:
        memscope.register_sizer(tp, lambda o: 4321)
        m.bind(0, tp(), tok)
    finally:
        sizing._SIZERS.pop(tp, None)
        sizing.sizers_changed()
    m.exit(tok)
    assert [b.size for b in rec.analysis().all_bindings()][-1] == 4321
