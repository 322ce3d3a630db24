"""The age proofs the leak check uses to tell "made by the scope that first named it"
from "there before that scope began" (memscope._deathwatch.older / dict_version, and
_hooks._note_age at an object's first watch). docs/leaks.md states the rule."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from memscope import _deathwatch as dw
from memscope import _hooks

WALK = 100_000


def test_an_object_tracked_before_the_marker_is_older_and_one_after_is_not() -> None:
    enabled = gc.isenabled()
    gc.disable()  # (no collection between the lines below)
    try:
        before = [1]
        marker: list[Any] = []
        after = [2]
        assert dw.older(before, marker, WALK) is True
        assert dw.older(after, marker, WALK) is False
        assert dw.older(marker, marker, WALK) is False
    finally:
        if enabled:
            gc.enable()


def test_a_young_collection_keeps_the_order_an_older_one_does_not() -> None:
    enabled = gc.isenabled()
    gc.disable()
    try:
        old = [1]
        marker: list[Any] = []
        gc.collect(0)  # both survive into generation 1, in order
        new = [2]
        assert dw.older(old, marker, WALK) is True
        assert dw.older(new, marker, WALK) is False
        gc.collect()  # every object, the marker too, goes to the oldest generation
        assert dw.older(old, marker, WALK) is False
    finally:
        if enabled:
            gc.enable()


def test_objects_the_collector_does_not_track_have_no_age() -> None:
    marker: list[Any] = []
    assert dw.older(b"x" * 100, marker, WALK) is False
    assert dw.older(bytearray(10), marker, WALK) is False
    assert dw.older(12345678901234, marker, WALK) is False


def test_a_tuple_the_collector_untracked_is_as_old_as_that_collection() -> None:
    t = tuple([1, 2])  # atomic items: untracked by the next collection
    gc.collect()
    assert not gc.is_tracked(t)
    marker: list[Any] = []
    assert dw.older(t, marker, WALK) is True


def test_a_walk_past_its_cap_proves_nothing() -> None:
    enabled = gc.isenabled()
    gc.disable()
    try:
        before = [1]
        marker: list[Any] = []
        filler = [[] for _ in range(1000)]
        assert dw.older(before, marker, 10) is False
        assert dw.older(before, marker, WALK) is True
        del filler
    finally:
        if enabled:
            gc.enable()


def test_dict_version_orders_changes() -> None:
    d = {"a": 1}
    now = dw.dict_version(None)
    assert dw.dict_version(d) < now
    d["b"] = 2
    assert dw.dict_version(d) > now
    with pytest.raises(TypeError):
        dw.dict_version([1])


def test_first_watch_marks_an_older_object_and_not_a_new_one(full: Any) -> None:
    assert _hooks._age is dw  # full mode started the death watch and its age proofs
    m = full.module("x")
    setup = [[1], [2]]  # there before the scope below begins
    _hooks._poll()  # (as any object's first watch, or a collection, takes one)
    tok = m.enter(1, -1)
    fresh = [3]  # made inside it
    m.bind(0, setup[0], tok)
    m.bind(1, fresh, tok)
    m.exit(tok)
    assert _hooks._preexisting.get(id(setup[0])) == tok
    assert id(fresh) not in _hooks._preexisting


def test_a_large_str_is_watched_until_its_block_is_freed_or_moved() -> None:
    """str refuses weak references and dies by specialised paths too; a large one's
    block is the raw allocator's, whose hook sees it freed (or moved by a resize)."""
    dw.start()  # (idempotent: full mode starts it)
    dw.deaths()
    text = "x" * 5000 + str(len(_hooks._polls))  # built at run time
    addr = id(text)
    assert dw.watch_large(text, 7) is True and dw.since(addr) == 7
    del text
    assert dw.since(addr) is None and addr in dw.deaths()
    grown = "y" * 3000 + str(len(_hooks._polls))
    first = id(grown)
    assert dw.watch_large(grown, 8) is True
    grown += "z" * 200_000  # resized: its block reallocated, moved here
    assert (dw.since(first) is None) == (id(grown) != first)
    assert dw.watch_large("s" * 10 + str(len(_hooks._polls)), 9) is False  # pymalloc's
    assert dw.watch_large(b"b" * 5000, 9) is False  # (bytes: the wrapped deallocator)
