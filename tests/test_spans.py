"""The Gantt's merged intervals (``Spans``) keep its last interval apart from the array
(a compiled report's most frequent update): the same intervals, merges and counts as
the plain array the class held before, on random streams."""

from __future__ import annotations

import random
from array import array
from typing import Any

import pytest

from memscope.reporters._spans import Spans, _merge_flat


class _ArraySpans:
    """The reference: every interval in one array, the last one included."""

    def __init__(self) -> None:
        self.a = array("q")
        self.pending: list[tuple[int, int, int, int]] = []

    def add(self, s: int, e: int, nbytes: int, q: int, cap: int) -> None:
        a = self.a
        if not a:
            a.extend((s, e, nbytes, 1))
        elif s >= a[-4]:
            if s - a[-3] <= q:
                a[-3] = max(a[-3], e)
                a[-2] = max(a[-2], nbytes)
                a[-1] += 1
            else:
                a.extend((s, e, nbytes, 1))
                if len(a) > 5 * cap:
                    self.remerge(q)
        else:
            self.pending.append((s, e, nbytes, 1))
            if len(self.pending) >= 64:
                self.remerge(q)

    def remerge(self, q: int) -> None:
        a = self.a
        items = [(a[i], a[i + 1], a[i + 2], a[i + 3]) for i in range(0, len(a), 4)]
        items.extend(self.pending)
        self.pending = []
        items.sort()
        self.a = _merge_flat(items, q)

    def intervals(self) -> list[tuple[int, ...]]:
        if self.pending:
            self.remerge(0)
        a = self.a
        return [tuple(a[i:i + 4]) for i in range(0, len(a), 4)]


@pytest.mark.parametrize("seed", range(40))
def test_spans_merge_as_the_plain_array_did(seed: int) -> None:
    rnd = random.Random(seed)
    cap = rnd.choice([1, 2, 5, 50])
    new, ref = Spans(), _ArraySpans()
    t = 0
    for _ in range(rnd.randint(1, 3000)):
        t += rnd.randint(0, 50)
        s = t - (rnd.randint(0, 400) if rnd.random() < 0.2 else 0)  # some out of order
        e = s + rnd.randint(0, 80)
        nbytes = rnd.randint(0, 10_000)
        q = t // rnd.choice([10, 100, 1000])
        new.add(s, e, nbytes, q, cap)
        ref.add(s, e, nbytes, q, cap)
        if rnd.random() < 0.01:
            got: Any = new.result(0, 10**9, 0, [])  # a read in the middle: adds go on after
            assert [tuple(x[:4]) for x in got] == ref.intervals()
    assert len(new) == len(ref.a) // 4 + len(ref.pending)
    flags = [rnd.randint(0, t) for _ in range(5)]
    q = rnd.choice([0.0, 10.0, 500.0])
    ref_out = Spans()
    ref_out.a = array("q", [x for iv in ref.intervals() for x in iv])
    assert new.result(q, 300, 7, flags) == ref_out.result(q, 300, 7, flags)
