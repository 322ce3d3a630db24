"""The replay's tracked bytes against a plain model of their definition.

``Analysis`` counts each live object once, at its latest size, overall and in every
type / scope / thread / task group, and keeps the peaks. It takes a shortcut for an
object only one name holds (most of them): no per-object entries until a second name
comes. Here random streams with many names for few objects (aliases in one scope and
across scopes, rebinds, ``del``, scope exits, finalizations, objects whose size
changes) are replayed through it and through a model that keeps, for every group, every
object it holds with its count of names and latest size; after every event both must
agree on every number.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from memscope.analysis import Analysis
from memscope.events import BIND, ENTER, EXIT, FINAL, SCOPE, SITE, TASK, THREAD, TYPE, UNBIND

Groups = dict[str, dict[str, dict[str, Any]]]


class Model:
    """Tracked bytes by their definition: every live binding of every object, in full."""

    def __init__(self) -> None:
        self.scope_name: dict[int, str] = {}
        self.site: dict[int, tuple[int, str]] = {}
        self.types: dict[int, str] = {}
        self.threads: dict[int, str] = {}
        self.tasks: dict[int, str] = {}
        self.inst: dict[int, tuple[str, str]] = {}  # tok -> (thread, task) group keys
        # (tok, scope, name) -> (oid, bytes, group keys)
        self.live: dict[tuple[int, int, str], tuple[int, int, tuple[str, ...]]] = {}
        self.obj: dict[int, list[int]] = {}  # oid -> [names, latest bytes]
        self.held: dict[tuple[str, str], dict[int, list[int]]] = {}  # group -> oid -> ...
        self.g: Groups = {k: {} for k in ("type", "scope", "thread", "task")}
        self.active = self.peak = 0

    def _group(self, kind: str, key: str) -> dict[str, Any]:
        return self.g[kind].setdefault(key, {"binds": 0, "bytes": 0, "active": 0,
                                             "active_bytes": 0, "peak_bytes": 0})

    def _end(self, lk: tuple[int, int, str]) -> None:
        oid, _bytes, keys = self.live.pop(lk)
        o = self.obj[oid]
        o[0] -= 1
        if o[0] == 0:
            self.active -= o[1]
            del self.obj[oid]
        for kind, key in zip(("type", "scope", "thread", "task"), keys, strict=True):
            g = self._group(kind, key)
            g["active"] -= 1
            h = self.held[(kind, key)]
            h[oid][0] -= 1
            if h[oid][0] == 0:
                g["active_bytes"] -= h[oid][1]
                del h[oid]

    def feed(self, ev: tuple[Any, ...]) -> None:
        k = ev[0]
        if k == SCOPE:
            self.scope_name[ev[1]] = f"{ev[3]}:{ev[4]}"
        elif k == SITE:
            self.site[ev[1]] = (ev[2], ev[5])
        elif k == TYPE:
            self.types[ev[1]] = ev[2]
        elif k == THREAD:
            self.threads[ev[1]] = ev[2]
        elif k == TASK:
            self.tasks[ev[1]] = ev[2]
        elif k == ENTER:
            _, _t, _scope, tok, thread, task = ev
            self.inst[tok] = (self.threads.get(thread, "?") if thread else "?",
                              (self.tasks.get(task, "") if task else "") or "-")
        elif k == EXIT:
            tok = ev[2]
            if self.inst.pop(tok, None) is not None:
                for lk in [lk for lk in self.live if lk[0] == tok]:
                    self._end(lk)
        elif k == UNBIND:
            scope, name = self.site[ev[2]]
            if (ev[3], scope, name) in self.live:
                self._end((ev[3], scope, name))
        elif k == FINAL:
            for lk in [lk for lk, v in self.live.items() if v[0] == ev[2]]:
                self._end(lk)
        elif k == BIND:
            _, _t, site, tok, oid, ti, size, deep = ev[:8]
            scope, name = self.site[site]
            lk = (tok, scope, name)
            if lk in self.live:
                self._end(lk)
            nbytes = deep if deep >= 0 else max(size, 0)
            thread, task = self.inst.get(tok, ("?", "-"))
            keys = (self.types.get(ti, "?"), self.scope_name[scope], thread, task)
            self.live[lk] = (oid, nbytes, keys)
            o = self.obj.setdefault(oid, [0, 0])
            self.active += nbytes - (o[1] if o[0] else 0)
            o[0] += 1
            o[1] = nbytes
            self.peak = max(self.peak, self.active)
            for kind, key in zip(("type", "scope", "thread", "task"), keys, strict=True):
                g = self._group(kind, key)
                g["binds"] += 1
                g["bytes"] += nbytes
                g["active"] += 1
                h = self.held.setdefault((kind, key), {}).setdefault(oid, [0, 0])
                g["active_bytes"] += nbytes - (h[1] if h[0] else 0)
                h[0] += 1
                h[1] = nbytes
                g["peak_bytes"] = max(g["peak_bytes"], g["active_bytes"])


def stream(seed: int, n: int = 3000) -> list[tuple[Any, ...]]:
    """Binds of few objects to many names in a few scope instances that overlap (so one
    object has names in several scopes, threads and tasks at once), with rebinds,
    ``del``, exits and finalizations, and objects whose size changes."""
    rnd = random.Random(seed)
    ev: list[tuple[Any, ...]] = [
        (THREAD, 11, "main"), (THREAD, 12, "worker"), (TASK, 5, "job"),
        (TYPE, 0, "list"), (TYPE, 1, "dict"), (TYPE, 2, "bytes"),
    ]  # fmt: skip
    for s in range(4):
        ev.append((SCOPE, s, f"/m{s % 2}.py", f"m{s % 2}", f"f{s}", 2, 1))
        for v in range(3):
            ev.append((SITE, s * 3 + v, s, 10 + v, 0, f"v{v}", 1))
    t, tok = 1000, 0
    open_: list[tuple[int, int]] = []  # (tok, scope)
    oids = list(range(100, 100 + rnd.randrange(4, 12)))
    for _ in range(n):
        t += rnd.randrange(1, 50)
        r = rnd.random()
        if r < 0.12 or not open_:
            tok += 1
            scope = rnd.randrange(4)
            ev.append((ENTER, t, scope, tok, rnd.choice((0, 11, 12)), rnd.choice((0, 5))))
            open_.append((tok, scope))
        elif r < 0.2:
            k, _scope = open_.pop(rnd.randrange(len(open_)))
            ev.append((EXIT, t, k))
        elif r < 0.27:
            k, scope = rnd.choice(open_)
            ev.append((UNBIND, t, scope * 3 + rnd.randrange(3), k))
        elif r < 0.31:
            ev.append((FINAL, t, rnd.choice(oids)))
        else:
            k, scope = rnd.choice(open_) if rnd.random() < 0.9 else (10**6, 0)  # no instance
            size = rnd.randrange(0, 500)
            deep = rnd.choice((-1, size * 2, size + rnd.randrange(100)))
            ev.append((BIND, t, scope * 3 + rnd.randrange(3), k, rnd.choice(oids),
                       rnd.randrange(3), size, deep, 1, -1, -1))
    return ev


def groups_of(an: Analysis) -> Groups:
    return {
        "type": {k: g.as_dict() for k, g in an.by_type.items()},
        "scope": {k: g.as_dict() for k, g in an.by_scope.items()},
        "thread": {k: g.as_dict() for k, g in an.by_thread.items()},
        "task": {k: g.as_dict() for k, g in an.by_task.items()},
    }


@pytest.mark.parametrize("seed", range(12))
def test_tracked_bytes_match_their_definition_after_every_event(seed: int) -> None:
    an, model = Analysis(keep_history=False), Model()
    events = stream(seed)
    shared = 0
    for i, ev in enumerate(events):
        an.feed(ev)
        model.feed(ev)
        shared = max(shared, len(an._obj_bytes))
        assert an.active_bytes == model.active, (seed, i, ev)
        assert an.peak_bytes == model.peak, (seed, i, ev)
        got = groups_of(an)
        for kind, want in model.g.items():
            # a group is made when first bound in the model, maybe earlier in the
            # analysis (a scope's group with its first site): empty ones are all zero
            assert {k: v for k, v in got[kind].items() if v["binds"]} == want, (seed, i, ev)
    assert shared > 1  # the streams did name objects more than once at a time
    assert an.nlive == len(model.live)
