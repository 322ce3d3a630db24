"""Full mode's deep walks take a bounded share of the run's time (issue 19: deltablue,
whose every new object reaches the whole constraint graph, ran 85x plain in full mode,
most of it walking that graph again at each bind). Past the share, a bind records its
deep size as unknown (-1) and is counted; once the program has run on, walks resume."""

from __future__ import annotations

from memscope import _hooks

from .conftest import Recorder


def test_deep_walks_stop_at_their_share_and_resume(full: Recorder) -> None:
    m = full.module("g")
    shared = [[i] for i in range(50_000)]
    value = [shared]
    second = 10**9
    # the walks so far took their whole share of the run's time: this bind walks nothing
    now = _hooks._perf()
    _hooks._deep_time[:] = [_hooks.DEEP_GRACE_NS + second, now - second]
    skipped = _hooks._counters["deep_skipped"]
    m.bind(0, value, 0)
    assert full.analysis().all_bindings()[-1].deep == -1
    assert _hooks._counters["deep_skipped"] == skipped + 1
    # the program ran on (ten seconds, none of them walking): the same object is walked,
    # not served from a cache as unknown
    _hooks._deep_time[:] = [0, _hooks._perf() - 10 * second]
    m.bind(0, value, 0)
    assert full.analysis().all_bindings()[-1].deep > 500_000
    assert _hooks._counters["deep_skipped"] == skipped + 1


def test_a_walk_gets_no_more_time_than_is_left_of_the_share(full: Recorder) -> None:
    _hooks.configure(full=True, flush_at=8192, deep_objects=10_000_000,
                     deep_ns=2_000_000_000)  # no object budget to stop the walk first
    m = full.module("g")
    value = [[[i] for i in range(300_000)]]  # 600,001 objects: seconds to walk whole
    second = 10**9
    now = _hooks._perf()
    # 1 ms of the share left: the walk stops there, truncated, instead of walking on
    _hooks._deep_time[:] = [_hooks.DEEP_GRACE_NS - 1_000_000, now]
    truncated = _hooks._counters["deep_truncated"]
    m.bind(0, value, 0)
    assert _hooks._counters["deep_truncated"] == truncated + 1
    spent = _hooks._deep_time[0] - (_hooks.DEEP_GRACE_NS - 1_000_000)
    assert spent < second // 20  # far less than the whole walk
