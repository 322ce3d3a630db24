"""Event streams for the report tests and the HTML benchmark.

``synthetic_events`` makes a valid, deterministic stream in the capture vocabulary
(scopes, sites, types, threads, tasks, enters, binds, unbinds, exits, finalizations,
leaks) of about ``n_events`` events; with ``hostile=True`` every program string in it
(scope, module, file, variable, type, thread, task, holder) is an injection attempt.
"""

from __future__ import annotations

import random
from typing import Any

from memscope.analysis import Analysis
from memscope.events import (
    BIND,
    ENTER,
    EXIT,
    FINAL,
    LEAK,
    PROC,
    SCOPE,
    SITE,
    TASK,
    THREAD,
    TYPE,
    UNBIND,
    BindKind,
    ScopeKind,
)

HOSTILE = "</script><img src=x onerror=alert(1)>"
HOSTILE_ALL = [
    HOSTILE,
    "<!--",
    "\"'><svg onload=alert(2)>",
    "&lt;b&gt;&amp;",
    "]]><x>",
    "\u2028\u2029",
    "${alert(3)}",
    "javascript:alert(4)",
]


def read_jsonl(path: Any) -> list[dict[str, Any]]:
    """The rows of a JSON Lines file (format ``bindings``), one a line."""
    import orjson

    with open(path, "rb") as f:
        return [orjson.loads(line) for line in f if line.strip()]


def synthetic_events(n_events: int = 10_000, *, hostile: bool = False, seed: int = 7) -> list[Any]:
    rnd = random.Random(seed)
    ev: list[Any] = []

    def name(kind: str, i: int) -> str:
        if hostile:
            return f"{HOSTILE_ALL[i % len(HOSTILE_ALL)]}{kind}{i}"
        return f"{kind}{i}"

    n_scopes, vars_per_scope, n_types = 40, 8, 12
    t = 1_000_000
    ev.append((PROC, 4242, 1, name("prog", 0), t))
    for s in range(n_scopes):
        mod = name("mod", s % 4)
        ev.append(
            (SCOPE, s, f"/src/{mod}.py", mod, name("func", s), int(ScopeKind.FUNCTION), 10 + s)
        )
        for v in range(vars_per_scope):
            site = s * vars_per_scope + v
            ev.append((SITE, site, s, 20 + v, 4, name("var", site), int(BindKind.ASSIGN)))
    for ti in range(n_types):
        ev.append((TYPE, ti, name("Type", ti)))
    threads = [1001, 1002, 1003]
    for i, th in enumerate(threads):
        ev.append((THREAD, th, name("thread", i)))
    ev.append((TASK, 77, name("task", 0)))
    tok = 0
    oid = 10_000
    alive: list[tuple[int, int, int]] = []  # (oid, type, size) of objects that may leak
    while len(ev) < n_events:
        s = rnd.randrange(n_scopes)
        tok += 1
        t += rnd.randrange(1_000, 20_000)
        th = threads[tok % 3]
        ev.append((ENTER, t, s, tok, th, 77 if tok % 5 == 0 else 0))
        last_oid = None
        for _ in range(rnd.randrange(1, 6)):
            site = s * vars_per_scope + rnd.randrange(vars_per_scope)
            t += rnd.randrange(100, 5_000)
            if last_oid is not None and rnd.random() < 0.2:
                o = last_oid  # an alias: a second name for the same object
            else:
                oid += 1
                o = oid
            ti = rnd.randrange(n_types)
            size = int(rnd.paretovariate(1.2) * 200)
            deep = size * rnd.randrange(1, 6)
            buf = rnd.random() < 0.05
            ev.append(
                (BIND, t, site, tok, o, ti, size, deep, 2, 0x10000 + o * 64 if buf else -1,
                 size if buf else -1)
            )
            last_oid = o
            if rnd.random() < 0.1:
                t += 500
                ev.append((UNBIND, t, site, tok))
            if rnd.random() < 0.02:
                alive.append((o, ti, deep))
        t += rnd.randrange(100, 5_000)
        ev.append((EXIT, t, tok))
        if last_oid is not None and rnd.random() < 0.5:
            t += 100
            ev.append((FINAL, t, last_oid))
    for i, (o, ti, size) in enumerate(alive[:20]):
        t += 1000
        ev.append((LEAK, t, o, ti, size, (name("module global", i), name("holder", i + 1))))
    return ev


def synthetic_analysis(n_events: int = 10_000, *, hostile: bool = False) -> Analysis:
    return Analysis().feed_all(synthetic_events(n_events, hostile=hostile))
