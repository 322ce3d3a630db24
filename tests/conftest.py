"""Shared fixtures: an isolated in-memory recorder for runtime tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from memscope import _hooks
from memscope.analysis import Analysis
from memscope.events import BindKind, ScopeKind


@dataclass
class Recorder:
    sink: Any

    def events(self) -> list[tuple[Any, ...]]:
        _hooks.flush()
        return list(self.sink.iter_events()) + _hooks.pending()

    def analysis(self) -> Analysis:
        return Analysis().feed_all(self.events())

    def module(self, *names: str, scopes: tuple[str, ...] = ("f",)) -> Any:
        """A registered fake module: scope 0 is <module>, then ``scopes``; one site per
        name, in scope 1 (the first function) unless written ``"scope_index:name"``."""
        scope_rows = [("<module>", int(ScopeKind.MODULE), 1)]
        scope_rows += [(q, int(ScopeKind.FUNCTION), 10 + i) for i, q in enumerate(scopes)]
        sites = []
        for i, n in enumerate(names):
            scope, _, name = n.rpartition(":")
            sites.append((100 + i, 4, int(scope) if scope else 1, name, int(BindKind.ASSIGN)))
        return _hooks.register(_hooks.HOOKS_VERSION, "fake_module.py", "fake_module",
                               tuple(scope_rows), tuple(sites))


@pytest.fixture
def rec() -> Iterator[Recorder]:
    """Records into a fresh in-memory sink, fast mode, sampling off; restored after."""
    sink = _hooks.MemorySink(limit=5_000_000)
    old = _hooks.set_sink(sink)
    _hooks.configure(full=False, flush_at=8192, deep_objects=100_000, deep_ns=20_000_000)
    _hooks.set_sampling(False)
    try:
        yield Recorder(sink)
    finally:
        _hooks.set_sampling(True)
        _hooks.configure(full=False, flush_at=8192, deep_objects=100_000, deep_ns=20_000_000)
        _hooks.set_sink(old)


@pytest.fixture
def full(rec: Recorder) -> Recorder:
    """Like ``rec`` but in full mode."""
    _hooks.configure(full=True, flush_at=8192, deep_objects=100_000, deep_ns=2_000_000_000)
    return rec


@pytest.fixture
def sampling(rec: Recorder) -> Iterator[Recorder]:
    """``rec`` with sampling on and the re-arm thread held still (tests call _hooks.rearm)."""
    _hooks._rearm_paused[0] = True
    _hooks.set_sampling(True)
    prime = rec.module("warm")  # the first value of a type ever seen takes the slow path
    for v in (1, 1.0, [1], bytearray(1)):
        prime.bind(0, v, 0)
    try:
        yield rec
    finally:
        _hooks._rearm_paused[0] = False
        _hooks.rearm()


# -- the `slow` mark, given automatically ------------------------------------------------
# A test is slow when it starts a Python process (directly, through a helper or a fixture
# of the tests), drives the browser, or asks hypothesis for 100 examples or more:
# `pytest -m "not slow"` is the inner loop, CI runs everything (as pytest's own
# testing/conftest.py marks the tests that use its subprocess fixtures).
_PROCESS_NAMES = frozenset({"subprocess", "multiprocessing", "Popen", "spawn", "forkserver"})
_SLOW_FIXTURES = frozenset({"browser", "page"})
_MANY_EXAMPLES = 100


def _starts_processes(func: Any, seen: set[int], depth: int = 0) -> bool:
    """Whether ``func`` (or a function of the tests it calls, nested code included)
    names a way to start a process."""
    code = getattr(func, "__code__", None)
    if code is None or id(code) in seen or depth > 5:
        return False
    seen.add(id(code))
    codes = [code]
    names: set[str] = set()
    while codes:
        c = codes.pop()
        names.update(c.co_names)
        codes.extend(k for k in c.co_consts if hasattr(k, "co_names"))
    if names & _PROCESS_NAMES:
        return True
    scope = getattr(func, "__globals__", {})
    for n in names:
        callee = scope.get(n)
        if getattr(callee, "__module__", "").startswith("tests") and \
                _starts_processes(callee, seen, depth + 1):
            return True
    return False


def _is_slow(item: pytest.Item) -> bool:
    func = getattr(item, "function", None)
    if func is None:
        return False
    if _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    settings = getattr(func, "_hypothesis_internal_use_settings", None)
    inner = getattr(getattr(func, "hypothesis", None), "inner_test", func)
    if settings is not None and (settings.max_examples >= _MANY_EXAMPLES
                                 or "hypothesmith" in getattr(inner, "__globals__", {})):
        return True  # many examples, or generated programs (seconds each, unlucky draws)
    seen: set[int] = set()
    if _starts_processes(inner, seen):
        return True
    info = getattr(item, "_fixtureinfo", None)
    for defs in getattr(info, "name2fixturedefs", {}).values():
        for d in defs:
            if getattr(d.func, "__module__", "").startswith("tests") and \
                    _starts_processes(d.func, seen):
                return True
    return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") is None and _is_slow(item):
            item.add_marker(pytest.mark.slow)


def pytest_report_header() -> str:
    """Which implementations the tests run: a stale in-place build runs the sources (and
    says so here), so an edit is never tested against old compiled code."""
    from memscope import _compiled, census

    hot = "C" if _hooks.ACCELERATED else "pure Python"
    walk = "C" if census.ACCELERATED else "pure Python"
    return f"memscope: hot path {hot}; census walk {walk}; report modules {_compiled.STATE}"
