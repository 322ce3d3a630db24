"""Shared aggregation for the HTML dashboard and the SVG charts.

One pass over an :class:`~memscope.analysis.Analysis` turns bindings into a bounded,
JSON-ready *model*: the overview, stacked time series (by variable, scope, type, thread
and task), the variables table with short histories, Gantt rows, the scope tree, leaks,
the relationships graph, buffers and lanes. Everything is aggregated and downsampled
here, when the report is written, so a capture of millions of events gives a model of a
few megabytes at most, which a browser (or an SVG writer) draws at once.

Time series are replayed from the bindings with the same accounting as the analysis:
each live object is counted once, at its latest recorded size, and attributed to the
oldest binding still naming it. Each time bucket keeps the state at the moment its total
was highest, so peaks survive downsampling and the stacked layers always add up.
"""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Iterable
from typing import Any

from memscope.analysis import Analysis, Binding, ObjectLife

GROUPINGS = ("var", "scope", "type", "thread", "task")
GROUPING_LABELS = {
    "var": "variable",
    "scope": "scope",
    "type": "type",
    "thread": "thread",
    "task": "task",
}
OTHER = "(other)"


# ---- formatting -------------------------------------------------------------------


def fmt_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``; negative means unknown."""
    if n < 0:
        return "n/a"
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024.0
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if n < 100 else f"{n:.0f} {unit}"
    return f"{n:.0f} TiB"  # pragma: no cover


def fmt_ns(ns: float) -> str:
    """A duration: ``ns``, ``µs``, ``ms`` or ``s`` with three significant figures."""
    if ns < 0:
        return "n/a"
    if ns < 1_000:
        return f"{int(ns)} ns"
    for unit, div in (("µs", 1e3), ("ms", 1e6), ("s", 1e9)):
        v = ns / div
        if v < 1000 or unit == "s":
            return f"{v:.3g} {unit}" if v < 1000 else f"{v:.0f} {unit}"
    return f"{ns / 1e9:.0f} s"  # pragma: no cover


_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def clean(s: Any) -> str:
    """Text safe to serialise anywhere: lone surrogates and NULs replaced."""
    t = s if isinstance(s, str) else str(s)
    if t.isascii() and "\x00" not in t:
        return t
    return _UNSAFE.sub("\ufffd", t)


def to_json(obj: Any) -> str:
    """Compact JSON (orjson when it can, the stdlib otherwise)."""
    try:
        import orjson

        return orjson.dumps(obj, default=str).decode("utf-8")
    except Exception:
        return json.dumps(obj, default=str, ensure_ascii=True, separators=(",", ":"))


def script_json(obj: Any) -> str:
    """JSON to embed in ``<script type="application/json">``: it cannot close the tag
    nor open a comment (``<``, ``>`` and ``&`` become ``\\u`` escapes, which JSON.parse
    reads back to the same characters)."""
    return (
        to_json(obj)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


# ---- keys -------------------------------------------------------------------------


def var_label(b: Binding) -> str:
    return f"{b.scope}.{b.var}"


def scope_key(b: Binding) -> str:
    return f"{b.module}:{b.scope}"


def thread_key(b: Binding) -> str:
    return b.thread_name if b.thread else "?"


def task_key(b: Binding) -> str:
    return b.task_name or "-"


def _group_keys(b: Binding) -> tuple[str, str, str, str, str]:
    return (b.key, scope_key(b), b.type, thread_key(b), task_key(b))


# ---- the model --------------------------------------------------------------------


def _top(weights: dict[str, int], k: int) -> list[str]:
    return [key for key, _ in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def build_series(
    an: Analysis,
    bindings: list[Binding],
    *,
    t0: int,
    t1: int,
    buckets: int = 1200,
    top_k: int = 10,
) -> dict[str, Any]:
    """Stacked, peak-preserving time series for every grouping of ``GROUPINGS``."""
    # which groups get their own layer: the largest by peak, the rest is "(other)"
    weights: list[dict[str, int]] = [
        {k: v.peak_bytes for k, v in an.vars.items()},
        {k: g.peak_bytes for k, g in an.by_scope.items()},
        {k: g.peak_bytes for k, g in an.by_type.items()},
        {k: g.peak_bytes for k, g in an.by_thread.items()},
        {k: g.peak_bytes for k, g in an.by_task.items()},
    ]
    tops = [_top(w, top_k) for w in weights]
    index = [{k: i for i, k in enumerate(t)} for t in tops]
    sizes = [len(t) + 1 for t in tops]  # last slot: (other)
    ng = len(GROUPINGS)

    span = max(t1 - t0, 1)
    nb = max(1, buckets)

    # events: (t, order, binding index); ends (0) sort before starts (1) at equal t
    evs: list[tuple[int, int, int]] = []
    gidx: list[tuple[int, ...]] = []
    for i, b in enumerate(bindings):
        keys = _group_keys(b)
        gidx.append(tuple(index[g].get(keys[g], sizes[g] - 1) for g in range(ng)))
        evs.append((b.t_bind, 1, i))
        evs.append((b.t_unbind if b.t_unbind >= 0 else t1, 0, i))
    evs.sort()

    state = [[0] * sizes[g] for g in range(ng)]
    total = 0
    # oid -> [bytes counted, owner binding index, live binding indices in bind order]
    live: dict[int, list[Any]] = {}

    out_total: list[int] = [0] * nb
    out_vals: list[list[list[int]]] = [[[0] * nb for _ in range(sizes[g])] for g in range(ng)]
    cur = 0
    best = 0
    best_state: list[list[int]] = [s[:] for s in state]
    filled = 0  # buckets before this index are written

    def close_bucket(bi: int) -> None:
        out_total[bi] = best
        for g in range(ng):
            col = out_vals[g]
            st = best_state[g]
            for j in range(sizes[g]):
                col[j][bi] = st[j]

    def fill_to(bi: int) -> None:
        # buckets (filled..bi) had no change: they hold the current state
        nonlocal filled
        for e in range(filled, bi):
            out_total[e] = total
            for g in range(ng):
                col = out_vals[g]
                st = state[g]
                for j in range(sizes[g]):
                    col[j][e] = st[j]
        filled = max(filled, bi)

    def move(oid_rec: list[Any], new_owner: int, new_bytes: int) -> None:
        nonlocal total
        old_owner = oid_rec[1]
        old_bytes = oid_rec[0]
        if old_owner >= 0:
            og = gidx[old_owner]
            for g in range(ng):
                state[g][og[g]] -= old_bytes
            total -= old_bytes
        if new_owner >= 0:
            ng_ = gidx[new_owner]
            for g in range(ng):
                state[g][ng_[g]] += new_bytes
            total += new_bytes
        oid_rec[0] = new_bytes
        oid_rec[1] = new_owner

    for t, start, i in evs:
        bi = min(nb - 1, (t - t0) * nb // span) if t > t0 else 0
        if bi != cur:
            close_bucket(cur)
            filled = cur + 1
            fill_to(bi)
            cur = bi
            best = total
            best_state = [s[:] for s in state]
        b = bindings[i]
        rec = live.get(b.oid)
        if start:
            nbytes = b.bytes
            if rec is None:
                rec = live[b.oid] = [0, -1, [i]]
                move(rec, i, nbytes)
            else:
                rec[2].append(i)
                move(rec, rec[1], nbytes)  # latest size, same owner
        elif rec is not None:
            members = rec[2]
            try:
                members.remove(i)
            except ValueError:
                continue
            if not members:
                move(rec, -1, 0)
                del live[b.oid]
            elif rec[1] == i:
                move(rec, members[0], rec[0])
        if total > best:
            best = total
            best_state = [s[:] for s in state]
    close_bucket(cur)
    filled = cur + 1
    fill_to(nb)

    step = span / nb
    series: dict[str, Any] = {
        "t": [round(i * step) for i in range(nb)],
        "step": step,
        "total": out_total,
        "groups": {},
    }
    for g, name in enumerate(GROUPINGS):
        labels = [*tops[g], OTHER]
        vals = out_vals[g]
        # every top group keeps its layer (a short-lived one may be too brief to show
        # at this resolution, its peak is still listed); "(other)" only when non-zero
        keep = [j for j in range(sizes[g]) if j < sizes[g] - 1 or any(vals[j])]
        series["groups"][name] = {
            "labels": [_group_label(name, labels[j], an) for j in keep],
            "keys": [clean(labels[j]) for j in keep],
            "values": [vals[j] for j in keep],
            "peaks": [weights[g].get(labels[j], max(vals[j])) for j in keep],
        }
    series["peak"] = max(out_total) if out_total else 0
    return series


def _group_label(grouping: str, key: str, an: Analysis) -> str:
    if grouping == "var" and key != OTHER:
        vs = an.vars.get(key)
        if vs is not None:
            return clean(f"{vs.scope}.{vs.var}")
    if grouping == "scope" and key != OTHER:
        module, _, qual = key.partition(":")
        return clean(qual if module in ("__main__", "?") else key)
    return clean(key)


def _merge(
    spans: Iterable[tuple[int, int, int, bool]], quantum: float, limit: int
) -> list[list[Any]]:
    """Merge sorted intervals closer than ``quantum`` into [start, end, max bytes, n, flag]."""
    out: list[list[Any]] = []
    for s, e, nbytes, flag in spans:
        if out and s - out[-1][1] <= quantum:
            last = out[-1]
            if e > last[1]:
                last[1] = e
            if nbytes > last[2]:
                last[2] = nbytes
            last[3] += 1
            last[4] = 1 if (last[4] or flag) else 0
        else:
            out.append([s, e, nbytes, 1, 1 if flag else 0])
    if len(out) > limit:
        return _merge(((a, b, c, bool(f)) for a, b, c, _, f in out), quantum * 2, limit)
    return out


_META_HIDDEN = {"counters", "start_ns", "processes", "captures", "recovery", "start_time"}


def _sampled(v: Any) -> str:
    """What was sampled: meta gives a count of bindings skipped, or a description."""
    if v is None or v == "":
        return ""
    if isinstance(v, bool):
        return "yes" if v else "every binding"
    if isinstance(v, int):
        return "every binding" if v == 0 else f"{v:,} bindings skipped by sampling"
    return clean(v)


def build_model(
    an: Analysis,
    meta: dict[str, Any] | None = None,
    *,
    buckets: int = 1200,
    top_k: int = 10,
    max_vars: int = 2000,
    history_per_var: int = 25,
    gantt_rows: int = 80,
    gantt_resolution: int = 1500,
    max_edges: int = 300,
    max_nodes: int = 60,
    max_buffers: int = 500,
    with_series: bool = True,
) -> dict[str, Any]:
    """The whole report model (JSON-ready); relative times are ns since the first event."""
    meta = dict(meta or {})
    bindings = an.all_bindings()
    t0 = an.t_first if an.t_first >= 0 else 0
    t1 = max(an.t_last, t0)
    span = max(t1 - t0, 1)

    def rel(t: int) -> int:
        return -1 if t < 0 else t - t0

    leak_oids = {lk.get("oid") for lk in an.leaks}

    # ---- per-variable aggregates the analysis does not keep -------------------------
    per: dict[str, dict[str, Any]] = {}
    by_id: dict[int, str] = {}
    # first/last activity of each thread and task, bindings per pid (for the lanes)
    lane_span: dict[str, dict[str, list[int]]] = {"thread": {}, "task": {}}
    pids: dict[int, int] = {}
    th_span, tk_span = lane_span["thread"], lane_span["task"]
    for b in bindings:
        by_id[b.id] = b.key
        end = b.t_unbind if b.t_unbind >= 0 else t1
        for spans_, lane in ((th_span, thread_key(b)), (tk_span, task_key(b))):
            sp = spans_.get(lane)
            if sp is None:
                spans_[lane] = [b.t_bind, end]
            elif end > sp[1]:
                sp[1] = end
        pids[b.pid] = pids.get(b.pid, 0) + 1
        d = per.get(b.key)
        if d is None:
            d = per[b.key] = {
                "shallow": -1,
                "deep": -1,
                "aliases": set(),
                "live": 0,
                "hist": [],
                "first": b.t_bind,
                "thread_names": set(),
                "lifetime": -1,
                "leak": False,
                "buffer": False,
            }
        if b.size > d["shallow"]:
            d["shallow"] = b.size
        if b.deep > d["deep"]:
            d["deep"] = b.deep
        if len(d["aliases"]) < 12:
            d["aliases"].update(b.aliases[:12])
        d["thread_names"].add(thread_key(b))
        held = (b.t_unbind if b.t_unbind >= 0 else t1) - b.t_bind
        if held > d["lifetime"]:
            d["lifetime"] = held
        if b.t_unbind < 0:
            d["live"] += 1
        if b.oid in leak_oids:
            d["leak"] = True
        if b.addr >= 0 or b.bufsize >= 0:
            d["buffer"] = True
        hist = d["hist"]
        hist.append(b)
        if len(hist) > 2 * history_per_var:
            del hist[:history_per_var]

    # ---- variables table ------------------------------------------------------------
    top_vars = an.top_variables(max_vars)
    var_rows = []
    for vs in top_vars:
        d = per.get(vs.key, {})
        hist = d.get("hist", [])[-history_per_var:]
        var_rows.append(
            {
                "key": clean(vs.key),
                "var": clean(vs.var),
                "scope": clean(vs.scope),
                "module": clean(vs.module),
                "file": clean(vs.file),
                "line": vs.line,
                "types": [clean(t) for t in sorted(vs.types)][:8],
                "shallow": d.get("shallow", -1),
                "deep": d.get("deep", -1),
                "peak": vs.peak_bytes,
                "total": vs.total_bytes,
                "binds": vs.binds,
                "lifetime": d.get("lifetime", vs.max_lifetime_ns),
                "live": d.get("live", 0),
                "aliases": [clean(a) for a in sorted(d.get("aliases", ()))],
                "threads": [clean(t) for t in sorted(d.get("thread_names", ()))],
                "leak": bool(d.get("leak", False)),
                "history": [
                    [
                        rel(b.t_bind),
                        rel(b.t_unbind),
                        clean(b.type),
                        b.size,
                        b.deep,
                        b.end,
                        clean(thread_key(b)),
                        clean(task_key(b)),
                        len(b.aliases),
                        b.line,
                    ]
                    for b in reversed(hist)
                ],
            }
        )

    # ---- time series ----------------------------------------------------------------
    series = (
        build_series(an, bindings, t0=t0, t1=t1, buckets=buckets, top_k=top_k)
        if with_series
        else {"t": [], "step": 1, "total": [], "groups": {}, "peak": 0}
    )

    # ---- Gantt: rows = variables (grouped by scope), merged binding + object spans ----
    quantum = span / max(gantt_resolution, 1)
    chosen = [vs.key for vs in an.top_variables(gantt_rows)]
    chosen_set = set(chosen)
    spans: dict[str, list[tuple[int, int, int, bool]]] = {k: [] for k in chosen}
    for b in bindings:
        lst = spans.get(b.key)
        if lst is not None:
            end = b.t_unbind if b.t_unbind >= 0 else t1
            lst.append((rel(b.t_bind), rel(end), b.bytes, b.oid in leak_oids))
    objs: dict[str, list[tuple[int, int, int, bool]]] = {k: [] for k in chosen}
    open_end: dict[str, int] = {}
    # object lifetimes where the end is known: finalized, or leaked (alive at the end);
    # objects that could not be weak-referenced have no known end and are not drawn
    lives: list[tuple[ObjectLife, bool]] = [(life, True) for life in an.finished_objects]
    lives += [(life, False) for life in an.objects.values() if life.oid in leak_oids]
    for life, finished in lives:
        key = by_id.get(life.first_binding)
        if key is None or key not in chosen_set:
            continue
        end = life.t_final if finished and life.t_final >= 0 else t1
        if not finished:
            open_end[key] = open_end.get(key, 0) + 1
        objs[key].append((rel(life.t_first), rel(end), life.size, life.oid in leak_oids))
    rows: list[dict[str, Any]] = []
    for k in chosen:
        vs = an.vars[k]
        s = sorted(spans[k])
        o = sorted(objs[k])
        rows.append(
            {
                "key": clean(k),
                "var": clean(vs.var),
                "scope": clean(vs.scope),
                "module": clean(vs.module),
                "first": rel(per[k]["first"]) if k in per else 0,
                "peak": vs.peak_bytes,
                "binds": vs.binds,
                "leak": bool(per.get(k, {}).get("leak", False)),
                "segs": _merge(s, quantum, gantt_resolution),
                "objs": _merge(o, quantum, gantt_resolution),
                "open_objects": open_end.get(k, 0),
            }
        )
    scope_first: dict[str, int] = {}
    for r in rows:
        sk = f"{r['module']}:{r['scope']}"
        scope_first[sk] = min(scope_first.get(sk, int(r["first"])), int(r["first"]))
    rows.sort(key=lambda r: (scope_first[f"{r['module']}:{r['scope']}"], r["scope"], r["first"]))
    gantt = {"rows": rows, "omitted": max(0, len(an.vars) - len(rows))}

    # ---- scopes -----------------------------------------------------------------------
    def tree(node: dict[str, Any]) -> dict[str, Any]:
        kids = sorted(node.get("children", {}).values(), key=lambda n: -n["peak_bytes"])
        return {
            "name": clean(node["name"]),
            "peak": node["peak_bytes"],
            "children": [tree(c) for c in kids[:60]],
        }

    scope_rows = []
    for key, g in sorted(an.by_scope.items(), key=lambda kv: -kv[1].peak_bytes)[:500]:
        module, _, qual = key.partition(":")
        scope_rows.append(
            {
                "key": clean(key),
                "module": clean(module),
                "scope": clean(qual),
                "binds": g.binds,
                "bytes": g.bytes,
                "peak": g.peak_bytes,
                "active": g.active,
            }
        )

    # ---- leaks ------------------------------------------------------------------------
    leaks = []
    for lk in an.leaks[:1000]:
        lb: dict[str, Any] = lk.get("binding") or {}
        leaks.append(
            {
                "oid": lk.get("oid"),
                "type": clean(lk.get("type", "?")),
                "size": lk.get("size", -1),
                "t": rel(int(lk.get("t", -1))),
                "var": clean(lb.get("var", "?")),
                "scope": clean(lb.get("scope", "?")),
                "module": clean(lb.get("module", "?")),
                "file": clean(lb.get("file", "?")),
                "line": lb.get("line", 0),
                "holders": [clean(h) for h in lk.get("holders", [])][:20],
            }
        )

    # ---- relationships: names sharing objects, containers holding tracked objects ------
    edges: list[dict[str, Any]] = []
    for (a, bname), n in sorted(an.alias_pairs.items(), key=lambda kv: -kv[1])[:max_edges]:
        edges.append({"a": clean(a), "b": clean(bname), "n": n, "kind": "alias"})
    for lk in leaks:
        for h in lk["holders"][:6]:
            edges.append({"a": h, "b": f"{lk['scope']}.{lk['var']}", "n": 1, "kind": "holds"})
    node_w: dict[str, int] = {}
    for e in edges:
        for nm in (e["a"], e["b"]):
            node_w[nm] = node_w.get(nm, 0) + 1
    holders = {e["a"] for e in edges if e["kind"] == "holds"}
    peak_of = {f"{vs.scope}.{vs.var}": vs.peak_bytes for vs in top_vars}
    nodes = [
        {
            "id": nm,
            "kind": "holder" if nm in holders else "var",
            "deg": w,
            "bytes": peak_of.get(nm, -1),
        }
        for nm, w in sorted(node_w.items(), key=lambda kv: (-kv[1], kv[0]))[:max_nodes]
    ]
    node_set = {n["id"] for n in nodes}
    graph = {
        "nodes": nodes,
        "edges": [e for e in edges if e["a"] in node_set and e["b"] in node_set],
        "omitted_nodes": max(0, len(node_w) - len(nodes)),
        "omitted_edges": sum(1 for e in edges if e["a"] not in node_set or e["b"] not in node_set),
    }

    # ---- buffers ----------------------------------------------------------------------
    bufs: dict[str, dict[str, Any]] = {}
    addr_users: dict[int, set[str]] = {}
    for b in bindings:
        if b.addr < 0 and b.bufsize < 0:
            continue
        d = bufs.get(b.key)
        if d is None:
            d = bufs[b.key] = {
                "key": clean(b.key),
                "var": clean(b.var),
                "scope": clean(b.scope),
                "file": clean(b.file),
                "line": b.line,
                "types": set(),
                "addr": b.addr,
                "bufsize": b.bufsize,
                "bytes": b.bytes,
                "binds": 0,
                "live": 0,
                "first": rel(b.t_bind),
                "lifetime": -1,
            }
        d["types"].add(clean(b.type))
        d["binds"] += 1
        d["addr"] = b.addr
        d["bufsize"] = max(d["bufsize"], b.bufsize)
        d["bytes"] = max(d["bytes"], b.bytes)
        d["live"] += 1 if b.t_unbind < 0 else 0
        held = (b.t_unbind if b.t_unbind >= 0 else t1) - b.t_bind
        d["lifetime"] = max(d["lifetime"], held)
        if b.addr > 0:
            addr_users.setdefault(b.addr, set()).add(f"{b.scope}.{b.var}")
    buf_rows = sorted(bufs.values(), key=lambda d: -max(d["bufsize"], 0))[:max_buffers]
    # views: buffers whose address ranges overlap (a NumPy slice inside its base ...)
    ranges = [
        (d["addr"], d["addr"] + max(d["bufsize"], 1), f"{d['scope']}.{d['var']}")
        for d in buf_rows
        if d["addr"] > 0
    ]
    for d in buf_rows:
        me = f"{d['scope']}.{d['var']}"
        users = set(addr_users.get(d["addr"], set())) if d["addr"] > 0 else set()
        if d["addr"] > 0:
            lo, hi = d["addr"], d["addr"] + max(d["bufsize"], 1)
            users.update(nm for a0, a1, nm in ranges if a0 < hi and lo < a1)
        d["types"] = sorted(d["types"])[:6]
        d["addr"] = f"0x{d['addr']:x}" if d["addr"] >= 0 else ""
        d["shares"] = [clean(u) for u in sorted(users - {me})][:8]
    buf_total = sum(max(d["bufsize"], 0) for d in bufs.values())

    # ---- lanes ------------------------------------------------------------------------
    def lanes(kind: str, groups: dict[str, Any]) -> list[dict[str, Any]]:
        span_of = lane_span[kind]
        out = []
        for k, g in sorted(groups.items(), key=lambda kv: span_of.get(kv[0], [0])[0])[:100]:
            first, last = span_of.get(k, [t0, t0])
            out.append(
                {
                    "key": clean(k),
                    "binds": g.binds,
                    "peak": g.peak_bytes,
                    "active": g.active,
                    "first": rel(first),
                    "last": rel(last),
                }
            )
        return out

    procs = []
    for pid, info in an.procs.items():
        procs.append(
            {
                "key": str(pid),
                "ppid": info.get("ppid", 0),
                "argv0": clean(info.get("argv0", "")),
                "binds": pids.get(pid, 0),
            }
        )
    for pid, n in pids.items():
        if pid not in an.procs and pid:
            procs.append({"key": str(pid), "ppid": 0, "argv0": "", "binds": n})
    meta_procs = meta.get("processes")
    if not procs and isinstance(meta_procs, (list, tuple)):
        for p in meta_procs[:50]:
            if isinstance(p, dict) and "pid" in p:
                procs.append(
                    {
                        "key": clean(p["pid"]),
                        "ppid": p.get("ppid", 0),
                        "argv0": clean(p.get("argv0", "")),
                        "binds": an.binds if len(meta_procs) == 1 else -1,
                    }
                )
    meta_pids = meta.get("pids")
    if not procs and isinstance(meta_pids, (list, tuple)) and meta_pids:
        # no PROC event in the stream (a live tracker): the pids the caller names
        for p in meta_pids[:50]:
            n = an.binds if len(meta_pids) == 1 else -1
            procs.append({"key": clean(p), "ppid": 0, "argv0": "", "binds": n})

    # ---- overview ---------------------------------------------------------------------
    st = an.stats()
    raw_counters = meta.get("counters")
    counters: dict[str, Any] = raw_counters if isinstance(raw_counters, dict) else {}
    overview = {
        "peak": an.peak_bytes,
        "peak_t": rel(an.peak_t),
        "peak_bindings": an.peak_count,
        "active_bytes": an.active_bytes,
        "active_bindings": an.nlive,
        "events": an.events,
        "binds": an.binds,
        "unbinds": an.unbinds,
        "variables": len(an.vars),
        "scopes": len(an.by_scope),
        "types": len(an.by_type),
        "scopes_entered": st["scopes_entered"],
        "objects_finalized": an.finals,
        "duration": st["duration_ns"],
        "threads": len(an.threads) or len(an.by_thread),
        "tasks": len(an.tasks),
        "processes": max(len(procs), 1),
        "leaks": len(an.leaks),
        "leak_bytes": sum(max(int(lk.get("size", 0) or 0), 0) for lk in an.leaks),
        "errors": len(an.errors),
        "buffers": len(bufs),
        "buffer_bytes": buf_total,
        "aliases": len(an.alias_pairs),
    }
    info = {
        "name": clean(meta.get("name", "memscope")),
        "mode": clean(meta.get("mode", "?")),
        "python": clean(meta.get("python", platform.python_version())),
        "pids": [clean(p) for p in (meta.get("pids") or [p["key"] for p in procs])][:50],
        "start": clean(meta.get("start", meta.get("start_time", ""))),
        "sampled": _sampled(meta.get("sampled")),
        "counters": {clean(k): v for k, v in counters.items() if isinstance(v, (int, float))},
        "version": clean(meta.get("version", "")),
    }
    for k, v in meta.items():
        if k in info or k in _META_HIDDEN:
            continue
        if isinstance(v, (str, int, float, bool)):
            info.setdefault("extra", {})[clean(k)] = clean(v)

    return {
        "format": 1,
        "info": info,
        "overview": overview,
        "span": span if an.t_first >= 0 else 0,
        "series": series,
        "vars": var_rows,
        "vars_omitted": max(0, len(an.vars) - len(var_rows)),
        "gantt": gantt,
        "scope_tree": tree(an.scope_tree()),
        "scopes": scope_rows,
        "types": [
            {"key": clean(k), "binds": g.binds, "bytes": g.bytes, "peak": g.peak_bytes}
            for k, g in sorted(an.by_type.items(), key=lambda kv: -kv[1].peak_bytes)[:200]
        ],
        "leaks": leaks,
        "graph": graph,
        "buffers": buf_rows,
        "lanes": {
            "thread": lanes("thread", an.by_thread),
            "task": lanes("task", an.by_task) if an.tasks else [],
            "proc": procs,
        },
        "errors": [[rel(t), clean(w), clean(m)] for t, w, m in an.errors[:50]],
    }
