"""The capture writer's record of which sites and scopes are user code: a set's
behaviour, a byte an id (a module of 3,000 sites cost 174 KiB of the program's heap as
``set[int]``, seen by more-itertools' own tracemalloc test; issue 17)."""

from __future__ import annotations

import tracemalloc

from memscope.capture.idflags import IdFlags
from memscope.capture.writer import Encoder


def test_idflags_behaves_as_a_set_of_ids() -> None:
    f = IdFlags()
    ref: set[int] = set()
    assert not f and len(f) == 0
    for op, arg in [("update", range(10, 20)), ("add", 3), ("add", 3), ("add", 400),
                    ("discard", 15), ("discard", 9999), ("difference_update", range(0, 12)),
                    ("update", range(500, 503)), ("add", -1), ("add", "x")]:
        getattr(f, op)(arg)
        if isinstance(arg, range):
            getattr(ref, op)(arg)
        elif type(arg) is int and arg >= 0:
            getattr(ref, op)(arg)
        assert len(f) == len(ref) and bool(f) == bool(ref)
        assert all(i in f for i in ref) and not any(i in f for i in range(600) if i not in ref)
    assert -1 not in f and "x" not in f and 10**9 not in f
    ids = [12, 12, 400, 7, 501, -3, 10**6]
    assert f.count_in(ids) == sum(1 for i in ids if i in ref)
    assert f.count_in(tuple(i for i in ids if 0 <= i < 503)) == 4
    assert f.count_in(["a", 12]) == 1
    assert f.below(256) == bytes(sorted(i for i in ref if i < 256))


def test_a_large_module_costs_the_writer_a_byte_a_site() -> None:
    enc = Encoder()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        enc._track_module(1000, 100, "/app/big_module.py", 300, 3000)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert 1500 in enc.user_sites and 200 in enc.user_scopes and 999 not in enc.user_sites
    assert kept < 3 * 4096 + 4096  # flags up to the highest id, no object per site
