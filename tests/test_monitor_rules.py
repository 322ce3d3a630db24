"""When the monitor thread takes a census (memscope/_monitor.py ``_tick``): its rules,
one tick at a time, with the process's memory and the census itself stood in for."""

from __future__ import annotations

from typing import Any

import pytest

from memscope import _hooks, _monitor
from memscope.events import SCOPE

MB = 1 << 20


@pytest.fixture
def tick(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``tick(prev, rss, high, spent)``: one tick at ``rss`` after one at ``prev``, with
    ``high`` the highest memory a census saw and ``spent`` (seconds) what censuses took
    in the one second the run has lasted; the censuses it started."""
    taken: list[str] = []
    monkeypatch.setattr(_hooks, "_tables", [(SCOPE, 0, "m.py", "m", "f", 1, 1)])
    monkeypatch.setattr(_monitor, "_importing", lambda: False)
    monkeypatch.setattr(_monitor, "_enabled", [True])

    def run(prev: int, rss: int, high: int, spent: float) -> list[str]:
        taken.clear()
        now = _hooks._perf()
        monkeypatch.setattr(_monitor, "sample", lambda force=False: (rss, rss))

        def census(reason: str) -> int:
            taken.append(reason)
            _monitor._state["last_census_rss"] = rss
            return 1

        monkeypatch.setattr(_monitor, "census", census)
        for key, value in {"t0": now - 1_000_000_000, "census_ns": int(spent * 1e9),
                           "census_high": high, "next_census": int(high * 1.08),
                           "last_census_t": now, "last_census_cost": 0}.items():
            monkeypatch.setitem(_monitor._state, key, value)
        _monitor._tick(prev)
        return list(taken)

    return run


def test_memory_stopping_a_little_above_the_last_census_earns_one(tick: Any) -> None:
    """The last census was taken on the way up (a structure half built): memory that
    then stops 4% higher holds the program's peak, and is censused although censuses
    already took more than their 10% of the time (15%, within twice that)."""
    assert tick(52 * MB, 52 * MB, 50 * MB, 0.15) == ["growth"]


def test_still_growing_or_too_little_above_waits(tick: Any) -> None:
    assert tick(50 * MB + MB // 2, 52 * MB, 50 * MB, 0.15) == []  # still moving
    assert tick(101 * MB + MB // 2, 101 * MB + MB // 2, 100 * MB, 0.15) == []  # +1.5%
    assert tick(52 * MB, 52 * MB, 50 * MB, 0.25) == []  # past twice the budget


def test_within_budget_any_new_high_by_a_megabyte_is_censused(tick: Any) -> None:
    assert tick(50 * MB, 51 * MB + 1, 50 * MB, 0.05) == ["growth"]
    assert tick(50 * MB, 51 * MB + 1, 50 * MB, 0.15) == []  # over budget, still moving


def test_a_plateau_a_full_step_above_needs_no_budget(tick: Any) -> None:
    assert tick(55 * MB, 55 * MB, 50 * MB, 0.9) == ["growth"]
