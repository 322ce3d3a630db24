"""The leak check's own replay (``leaks.LeakReplay``) finds what the full analysis of
the run finds: the same leaks, named the same, with the same chains and sizes, on every
leak fixture and clean-churn fixture, while keeping only the objects a proof can name.

Before it, the check replayed the whole run through ``analysis.Analysis`` (every binding
and every object life kept): at the end of ``memscope run --mode full`` that took longer
than the program (floatbm: 5.6 s of replay after a 2.5 s run, 300 MB).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).with_name("_leak_replay_runner.py")


def both(kind: str, *modules: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(ROOT / "fixtures" / kind), *modules],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ},
    )
    assert proc.returncode == 0, proc.stderr
    return orjson.loads(proc.stdout)  # type: ignore[no-any-return]


def _key(lk: dict[str, Any]) -> tuple[Any, ...]:
    return (lk["oid"], lk["type"], lk["variable"], lk["file"], lk["line"], lk["proof"],
            tuple(lk["holders"]), lk["root"], lk["inside"], lk["size"], lk["shallow"])


def _fixtures(kind: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / "fixtures" / kind).glob("*.py"))


@pytest.mark.parametrize("kind", ["leak_kinds", "leaks", "clean_churn"])
def test_the_leak_replay_finds_what_the_full_analysis_finds(kind: str) -> None:
    # every fixture of a kind in one process: their events interleave with each other's
    # objects, freed and reused addresses and finished scopes
    mods = [m for m in _fixtures(kind) if m != "registry_scan"]  # (its own test: slow)
    got = both(kind, *mods)
    assert sorted(map(_key, got["lean"])) == sorted(map(_key, got["full"]))
    if kind != "clean_churn":
        assert got["lean"], "the fixtures leak: an empty answer proves nothing"
    # only lives of objects a proof can name are kept
    assert got["lean_lives"] < got["full_lives"]


_HELD: list[Any] = []


def test_the_leak_replay_ends_bindings_as_the_analysis_does(full: Any) -> None:
    """What ends a binding that protects an object (a live name of a running scope):
    a re-bind of the name to anything (an int, which no proof can name, included), a
    ``del``, the instance's exit, a lambda left by an exception (its caller runs on).
    Both replays agree, and find the objects so let go."""
    from memscope import _hooks
    from memscope.events import BindKind, ScopeKind
    from memscope.leaks import LeakReplay, find_leaks

    if _hooks._dw is None:
        pytest.skip("the death watch is not built: lists are not proven")
    A, P = int(BindKind.ASSIGN), int(BindKind.PARAM)
    scopes = (("<module>", int(ScopeKind.MODULE), 1), ("make", int(ScopeKind.FUNCTION), 2),
              ("take", int(ScopeKind.FUNCTION), 3), ("<lambda>", int(ScopeKind.LAMBDA), 4))
    sites = ((10, 0, 0, "keep", A), (11, 0, 0, "gone", A), (12, 0, 0, "dropped", A),
             (20, 0, 1, "obj", A), (30, 0, 2, "arg", P), (40, 0, 3, "x", A))
    m = _hooks.register(_hooks.HOOKS_VERSION, "replay_case.py", "replay_case", scopes, sites)
    objs: dict[str, list[str]] = {}
    try:
        mod = m.enter(0, -1)  # the module instance runs on to the end
        for name in ("kept", "rebound", "deleted", "param"):
            f = m.enter(1, -1)
            obj = objs[name] = [name] * 50  # made in make()
            _HELD.append(obj)
            if name == "param":  # take(arg) first: a parameter did not make it
                g = m.enter(2, 4, obj)
                m.exit(g)
            m.bind(3, obj, f)
            m.exit(f)
        del obj
        m.bind(0, objs["kept"], mod)  # keep = ...: a live name holds it
        m.bind(1, objs["rebound"], mod)
        m.bind(1, 5, mod)  # gone = 5: an int no proof names ends that binding
        m.bind(2, objs["deleted"], mod)
        m.unbind(2, mod)  # del dropped
        lam = m.enter(3, -1)
        objs["lam"] = [0] * 50
        _HELD.append(objs["lam"])
        m.bind(5, objs["lam"], lam)  # the lambda raised: no exit ...
        m.bind(0, objs["kept"], mod)  # ... its caller runs on: it is over
        events = full.events()
        kw = dict(deathwatch=_hooks._dw, import_time=_hooks._import_time,
                  preexisting=_hooks._preexisting, polls=_hooks._polls)
        targets = set(_hooks._watched) | set(_hooks._dw.watched())
        got = {}
        for name, an in (("full", full.analysis()), ("lean", LeakReplay(targets)),
                         ("every id", LeakReplay(None))):
            if isinstance(an, LeakReplay):
                an.feed_all(events)
            got[name] = sorted(map(_key, [lk.as_dict() for lk in find_leaks(
                an, _hooks._watched, **kw)]))
        assert got["lean"] == got["full"] == got["every id"]
        named = {k[0]: k[2] for k in got["lean"]}
        assert named == {id(objs["rebound"]): "make.obj", id(objs["deleted"]): "make.obj",
                         id(objs["param"]): "make.obj", id(objs["lam"]): "<lambda>.x"}
    finally:
        _HELD.clear()
