"""The HTML/SVG model is aggregated while the events stream: what it holds does not grow
with the number of events, and what it shows stays exact (bucket maxima, layers that
add up to the total, an exact "(other)", the variables table)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from memscope.analysis import Analysis, Binding
from memscope.reporters._charts import (
    GROUPINGS,
    OTHER,
    SERIES_CANDIDATES,
    Collector,
    build_model,
    build_series,
)
from memscope.reporters._memory import origin
from tests.report_helpers import synthetic_analysis, synthetic_events


def streamed(n_events: int, **options: Any) -> tuple[Analysis, Collector]:
    an = Analysis(keep_history=False)
    co = Collector(**options)
    co.attach(an)
    an.feed_all(synthetic_events(n_events))
    return an, co.close(an)


@pytest.mark.slow  # seconds in-process (large data): not the inner loop
def test_what_the_collector_holds_does_not_grow_with_the_number_of_events() -> None:
    opts: dict[str, Any] = {
        "raw_limit": 0, "buckets": 32, "gantt_resolution": 10, "history_per_var": 4,
    }  # fmt: skip
    an_s, small = streamed(30_000, **opts)
    an_b, big = streamed(120_000, **opts)
    assert an_b.binds > 3.5 * an_s.binds
    rs, rb = small.retained(), big.retained()
    assert rs["variables"] == rb["variables"] == len(an_b.vars) == 320
    slots = len(GROUPINGS) + sum(SERIES_CANDIDATES)
    for r in (rs, rb):
        assert r["series_buckets"] <= 2 * 32 + 1  # merged in pairs when over the budget
        assert r["series_values"] <= (2 * 32 + 1) * (slots + 1) + slots
        assert r["history_rows"] <= 2 * 4 * r["variables"]
        assert r["spans"] <= r["variables"] * 2 * (1.25 * 10 + 1 + 64)
        assert r["raw_in_memory"] == 0
    # four times the events: the same state, give or take what is live at the end
    for k in ("series_values", "series_buckets", "history_rows"):
        assert rb[k] <= 1.2 * rs[k] + 50, (k, rs[k], rb[k])
    # merged intervals: between the resolution and twice it per variable, at any size
    assert rb["spans"] < 2 * rs["spans"]


def test_raw_detail_goes_to_disk_as_bindings_end() -> None:
    an, co = streamed(30_000, raw_limit=10**6)
    try:
        assert co.raw.n == co.raw.total == an.binds
        assert co.retained()["raw_in_memory"] < 16_384 + 2_048  # one batch at most
    finally:
        co.raw.close()


def test_merged_buckets_keep_every_bucket_maximum_exactly() -> None:
    an = synthetic_analysis(8_000)
    fine = build_series(an, None, t0=an.t_first, t1=an.t_last, buckets=4096)
    coarse = build_series(an, None, t0=an.t_first, t1=an.t_last, buckets=16)
    assert 8 < len(coarse["total"]) <= 16
    f = coarse["step"] // fine["step"]
    assert f >= 2 and coarse["step"] == f * fine["step"] and f & (f - 1) == 0
    for j, total in enumerate(coarse["total"]):
        assert total == max(fine["total"][j * f : (j + 1) * f])
    assert max(coarse["total"]) == max(fine["total"]) == an.peak_bytes
    for s in (fine, coarse):
        for g in s["groups"].values():
            for i, total in enumerate(s["total"]):
                assert sum(v[i] for v in g["values"]) == total


def test_few_candidates_keep_shown_layers_exact_and_other_exact() -> None:
    an = synthetic_analysis(8_000)
    every = build_series(
        an, None, t0=an.t_first, t1=an.t_last, buckets=64, top_k=10_000,
        candidates=(10_000,) * len(GROUPINGS),
    )  # fmt: skip
    few = build_series(
        an, None, t0=an.t_first, t1=an.t_last, buckets=64, top_k=10,
        candidates=(12, 4, 4, 4, 4),
    )  # fmt: skip
    assert few["total"] == every["total"]
    weights = {"var": {k: v.peak_bytes for k, v in an.vars.items()}}
    for name in GROUPINGS:
        fg, eg = few["groups"][name], every["groups"][name]
        assert OTHER not in eg["keys"]  # every group is a layer: nothing left over
        shown = [k for k in fg["keys"] if k != OTHER]
        for k, vals in zip(fg["keys"], fg["values"], strict=True):
            if k != OTHER:  # a candidate from its first binding: its layer is exact
                assert vals == eg["values"][eg["keys"].index(k)]
        rest = [
            t - sum(v[i] for k, v in zip(fg["keys"], fg["values"], strict=True) if k != OTHER)
            for i, t in enumerate(few["total"])
        ]
        if OTHER in fg["keys"]:
            assert fg["values"][fg["keys"].index(OTHER)] == rest  # exactly the remainder
        else:
            assert not any(rest)
        peaks = [p for k, p in zip(fg["keys"], fg["peaks"], strict=True) if k != OTHER]
        assert peaks == sorted(peaks, reverse=True)  # ranked by peak
        if name == "var":
            assert len(shown) == 10 and fg["folded"] == len(an.vars) - 10
            # the variables that would rank above a shown layer but were folded are counted
            w = weights["var"]
            above = sum(1 for k in w if k not in shown and w[k] > min(w[s] for s in shown))
            assert fg["missed"] == above


def by_key(bindings: list[Binding]) -> dict[str, list[Binding]]:
    out: dict[str, list[Binding]] = defaultdict(list)
    for b in bindings:
        out[b.key].append(b)
    return out


def test_variables_table_rows_are_exact() -> None:
    an = synthetic_analysis(8_000)
    model = build_model(an, {}, max_vars=30, history_per_var=5)
    groups = by_key(an.all_bindings())
    t0 = origin(an, {})  # the run's start (its PROC row), as every report counts
    assert t0 < an.t_first
    # no census in this stream: ranked by bytes bound at bind time
    assert [r["key"] for r in model["vars"]] == [v.key for v in an.top_variables(30)]
    for r in model["vars"]:
        bs = groups[r["key"]]
        assert r["binds"] == len(bs)
        assert r["shallow"] == max(b.size for b in bs)
        assert r["deep"] == max(b.deep for b in bs)
        assert r["live"] == sum(1 for b in bs if b.t_unbind < 0)
        ends = [(b.t_unbind if b.t_unbind >= 0 else an.t_last) - b.t_bind for b in bs]
        assert r["lifetime"] == max(ends)
        latest = sorted(bs, key=lambda b: (b.t_bind, b.id))[-5:][::-1]
        assert [h[0] for h in r["history"]] == [b.t_bind - t0 for b in latest]
        assert [h[3] for h in r["history"]] == [b.size for b in latest]


def test_analysis_remembers_only_the_class_bodies_that_exited() -> None:
    """Leak detection asks whether an object was made in a class body; the analysis
    keeps just those instances, not every scope instance of the run."""
    from memscope.events import ENTER, EXIT, SCOPE, ScopeKind

    ev: list[Any] = [
        (SCOPE, 0, "m.py", "m", "C", int(ScopeKind.CLASS), 1),
        (SCOPE, 1, "m.py", "m", "f", int(ScopeKind.FUNCTION), 5),
        (ENTER, 1, 0, 1, 7, 0),
        (EXIT, 2, 1),
    ]
    t = 3
    for tok in range(2, 5002):
        ev += [(ENTER, t, 1, tok, 7, 0), (EXIT, t + 1, tok)]
        t += 2
    an = Analysis().feed_all(ev)
    assert an.ended_instances == {1: 0}
    assert an.scope_kind(an.ended_instances[1]) == "class"
