"""memscope's own weak references (full mode watches every weak-referenceable object it
sees bound, for its FINAL event) are invisible to the program: ``obj.__weakref__`` is
what it would be without memscope, and copying or pickling such objects (or functions
of instrumented modules, by value) works as it does plain (issue 17)."""

from __future__ import annotations

import copy
import pickle
import weakref
from typing import Any

import pytest

from memscope import _hooks
from memscope.events import FINAL

from .conftest import Recorder


class Plain:
    pass


class Slotted:
    __slots__ = ("__weakref__", "a")

    def __init__(self) -> None:
        self.a = [1, 2]


class Sub(Slotted):
    __slots__ = ("b",)

    def __init__(self) -> None:
        super().__init__()
        self.b = "b"


def _watched_by_memscope(rec: Recorder, obj: Any) -> None:
    """Bind ``obj`` to a tracked name in full mode: memscope now watches it."""
    m = rec.module("wr")
    tok = m.enter(1, -1)
    assert m.bind(0, obj, tok) is obj
    m.exit(tok)
    assert id(obj) in _hooks._watched  # the premise: memscope holds a weak reference


@pytest.mark.parametrize("cls", [Plain, Slotted, Sub])
def test_weakref_attribute_is_none_for_an_object_only_memscope_watches(
        full: Recorder, cls: type) -> None:
    obj = cls()
    _watched_by_memscope(full, obj)
    assert obj.__weakref__ is None


def test_the_programs_own_weakrefs_are_what_weakref_returns(full: Recorder) -> None:
    def cb(_r: Any) -> None:
        pass

    obj = Plain()
    early = weakref.ref(obj, cb)  # a ref with a callback, made before memscope's
    _watched_by_memscope(full, obj)
    assert obj.__weakref__ is early
    late = weakref.ref(obj, cb)  # goes to the head, before memscope's
    assert obj.__weakref__ is late
    basic = weakref.ref(obj)  # a basic ref is always the head
    assert obj.__weakref__ is basic
    assert weakref.ref(obj) is basic  # and is still reused
    proxy = weakref.proxy(obj)
    assert weakref.proxy(obj) is proxy
    del basic, proxy, late
    assert obj.__weakref__ is early
    del early
    assert obj.__weakref__ is None


def test_memscope_still_sees_the_object_die(full: Recorder) -> None:
    obj = Slotted()
    _watched_by_memscope(full, obj)
    oid = id(obj)
    del obj
    assert any(e[0] == FINAL and e[2] == oid for e in full.events())


def test_copy_and_pickle_of_watched_objects(full: Recorder) -> None:
    for obj in (Plain(), Slotted(), Sub()):
        _watched_by_memscope(full, obj)
        for again in (copy.copy(obj), copy.deepcopy(obj), pickle.loads(pickle.dumps(obj))):
            assert type(again) is type(obj)
            assert again.__weakref__ is None
