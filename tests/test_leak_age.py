"""The age proofs the leak check uses to tell "made by the scope that first named it"
from "there before that scope began" (memscope._deathwatch.older / dict_version, and
_hooks._note_age at an object's first watch). docs/leaks.md states the rule."""

from __future__ import annotations

import gc
import itertools
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


def test_collections_keep_the_order_every_generation_walked() -> None:
    enabled = gc.isenabled()
    gc.disable()
    try:
        old = [1]
        marker: list[Any] = []
        gc.collect(0)  # both survive into generation 1, in order
        new = [2]
        assert dw.older(old, marker, WALK) is True
        assert dw.older(new, marker, WALK) is False
        gc.collect(1)  # all three go to the oldest generation, still in order
        assert dw.older(old, marker, WALK) is True
        assert dw.older(new, marker, WALK) is False
        newer = [3]
        gc.collect(0)
        assert dw.older(newer, marker, WALK) is False
        # (a full collection merges generation 0 into the oldest before generation 1:
        # what generation 0 held then reads as older than generation 1's markers, so
        # _hooks takes every poll before a full collection as stale)
    finally:
        if enabled:
            gc.enable()


def test_a_pinned_marker_is_not_moved_by_a_collection() -> None:
    """A marker only a container of the collected generations holds looks unreachable
    until that container is scanned, which moves it to the list's tail: an object made
    after it would then read as older (a real leak dropped). Pinned, it stays put
    (unpinned, this test reads ``after`` as older: True)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        before = [0]
        marker: list[Any] = []
        dw.pin(marker)
        after = [2]
        holder = [marker]
        del marker
        gc.collect(1)
        assert dw.older(before, holder[0], WALK) is True
        assert dw.older(after, holder[0], WALK) is False
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
        assert dw.older(before, marker, 10) is None  # (not known: the caller stops asking)
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
    m = full.module("x", "y")
    setup = [[1], [2]]  # there before the scope below begins
    _hooks._poll()  # (as any object's first watch, or a collection, takes one)
    tok = m.enter(1, -1)
    fresh = [3]  # made inside it
    m.bind(0, setup[0], tok)
    m.bind(1, fresh, tok)
    m.exit(tok)
    assert [e[4] for e in full.events() if e[0] == _hooks.BIND] == [id(setup[0]), id(fresh)]
    assert _hooks._preexisting.get(id(setup[0])) == tok  # older than the instance
    # the new one is not older than the instance that made it; once seen, it is older
    # than every instance entered afterwards (it existed when they began)
    assert _hooks._preexisting[id(fresh)] > tok
    later = m.enter(1, -1)
    assert _hooks._preexisting[id(fresh)] <= later
    m.exit(later)


def test_polls_are_thinned_and_unpinned_as_they_go(full: Any) -> None:
    """More than 1,024 polls: the newest 512 stay, every other older one goes (the
    first stays, so any scope instance has a poll before it), and a dropped poll's
    marker is unpinned and flagged, so a lookup that still holds it walks no more."""
    assert _hooks._pinned[0]
    first = _hooks._polls[0]
    for _ in range(1200):
        _hooks._poll()
    made = list(_hooks._polls)
    for _ in range(600):
        _hooks._poll()
    polls = _hooks._polls
    assert len(polls) <= 1024 and polls[0] is first
    kept = {id(p) for p in polls}
    gone = [p for p in made if id(p) not in kept]
    assert gone and all(len(p) == 3 for p in gone)  # flagged (and unpinned)
    assert all(a[0] < b[0] for a, b in itertools.pairwise(polls))
    assert all(len(p) == 2 for p in polls)  # every kept marker still pinned
    dropped = [0, 0]
    assert dw.pin(dropped) is None and dw.unpin(dropped) is True
    assert dw.unpin(dropped) is False  # (never twice)


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
