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
    sink = _hooks._MemorySink(limit=5_000_000)
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
