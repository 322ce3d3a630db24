"""Shared aggregation for the HTML dashboard and the SVG charts.

A :class:`Collector` follows an :class:`~memscope.analysis.Analysis` while the events
stream (or replays a kept history) and aggregates, as bindings start and end, into
state that does not grow with the number of events: the stacked time series (power-of-two
buckets that merge in pairs when full, a bounded set of candidate groups per grouping
with an exact "(other)"), per variable a few aggregates, its latest bindings and merged
Gantt intervals, thread/task lanes and buffers. Every binding also goes, as it ends, to
the raw detail's temporary column files (``RawSink``), which the dashboard streams into
the page compressed. ``build_model`` turns the collector plus the analysis's own
aggregates into a JSON-ready *model* of a few megabytes at most.

Time series use the analysis's accounting: each live object is counted once, at its
latest recorded size, and attributed to the oldest binding still naming it. Each time
bucket keeps the state at the moment its total was highest, so peaks survive merging
and the stacked layers always add up.

The pieces live in their own modules, re-exported here: ``_format`` (formatting,
escaping, grouping keys and labels), ``_series`` (``Series``), ``_spans`` (``Spans``),
``_raw`` (``RawSink``, ``raw_header``) and ``_collector`` (``Collector``,
``build_series``); this module builds the model (``build_model``).
"""

import platform
from typing import Any

from memscope.analysis import Analysis
from memscope.reporters import _memory
from memscope.reporters._collector import (
    GANTT_RESOLUTION,
    HISTORY_PER_VAR,
    MAX_BUFFER_ADDRS,
    Collector,
    build_series,
)
from memscope.reporters._format import (
    GROUPING_LABELS,
    GROUPINGS,
    OTHER,
    clean,
    fmt_bytes,
    fmt_ns,
    scope_key,
    script_json,
    task_key,
    thread_key,
    to_json,
    var_label,
)
from memscope.reporters._raw import ENDS, RAW_COLUMNS, RAW_LIMIT, RawSink, raw_header
from memscope.reporters._series import NG, SERIES_BUCKETS, SERIES_CANDIDATES, Series
from memscope.reporters._spans import Spans
from memscope.reporters.meta import leak_check_state

__all__ = [
    "ENDS",
    "GANTT_RESOLUTION",
    "GROUPINGS",
    "GROUPING_LABELS",
    "HISTORY_PER_VAR",
    "MAX_BUFFER_ADDRS",
    "NG",
    "OTHER",
    "RAW_COLUMNS",
    "RAW_LIMIT",
    "SERIES_BUCKETS",
    "SERIES_CANDIDATES",
    "Collector",
    "RawSink",
    "Series",
    "Spans",
    "build_model",
    "build_series",
    "clean",
    "fmt_bytes",
    "fmt_ns",
    "raw_header",
    "scope_key",
    "script_json",
    "task_key",
    "thread_key",
    "to_json",
    "var_label",
]


_META_HIDDEN = {"counters", "start_ns", "processes", "captures", "recovery", "start_time"}


def _sampled(v: Any, an: Analysis | None = None) -> str:
    """What was sampled: the sites the event stream says were sampled (its SAMPLED rows:
    a capture's meta knows nothing of them), else what meta says (a count of bindings
    skipped, or a description)."""
    if an is not None and an.sampled:
        skipped = sum(k for _e, k in an.sampled.values())
        return (f"{len(an.sampled):,} sites sampled, at least {skipped:,} binds skipped "
                "(binds at a site whose guard was off are not counted)")
    if v is None or v == "":
        return ""
    if isinstance(v, bool):
        return "yes" if v else "every binding"
    if isinstance(v, int):
        return "every binding" if v == 0 else f"{v:,} bindings skipped by sampling"
    return clean(v)


class _Run:
    """What every panel of the model reads: the analysis, what the collector
    aggregated, the run's clock (``t0``: its start; ``rel``: ns since it) and the names
    of the collector's threads, tasks and types."""

    def __init__(self, an: Analysis, co: Collector, meta: dict[str, Any]) -> None:
        self.an = an
        self.co = co
        self.meta = meta
        self.t0 = _memory.origin(an, meta)
        self.t1 = max(an.t_last, self.t0)
        self.span = max(self.t1 - self.t0, 1)
        self.cv = _memory.census_vars(an, self.t0)
        self.thread_names = co.threads.names
        self.task_names = co.tasks.names
        self.type_names = co.types.names
        self.leak_times, self.leak_objs = _leak_marks(an, self.t1)

    def rel(self, t: int) -> int:
        return -1 if t < 0 else t - self.t0


def _leak_marks(an: Analysis, t1: int) -> tuple[dict[str, list[int]],
                                                 dict[str, list[tuple[int, int, int, int]]]]:
    """Leaked objects, alive at the end: per variable key, when its bindings made them
    (or still name them at the end), and their spans to the end of the run."""
    leak_oids = {lk.get("oid") for lk in an.leaks}
    leak_times: dict[str, list[int]] = {}
    leak_objs: dict[str, list[tuple[int, int, int, int]]] = {}
    for oid in leak_oids:
        life = an.objects.get(oid) if isinstance(oid, int) else None
        if life is not None:
            leak_times.setdefault(life.first_key, []).append(life.t_first)
            leak_objs.setdefault(life.first_key, []).append((life.t_first, t1, life.size, 1))
    for lk in an.leaks:
        made = lk.get("binding") or {}
        k = made.get("key")
        if isinstance(k, str) and k not in leak_times and isinstance(made.get("t_bind"), int):
            leak_times[k] = [made["t_bind"]]
    for b in an._live_bindings():
        if b.oid in leak_oids:
            leak_times.setdefault(b.key, []).append(b.t_bind)
    return leak_times, leak_objs


_NO_CENSUS = {"retained": -1, "retained_max": -1, "shared": -1, "shallow": -1, "series": []}


def _history_row(r: _Run, h: tuple[int, ...]) -> list[Any]:
    """One binding of a variable's recent history (the collector's record, by name)."""
    t_bind, _bid, t_unbind, ti, size, deep, end, thread, task, aliases, line = h
    return [r.rel(t_bind), r.rel(t_unbind), clean(r.type_names[ti]), size, deep, ENDS[end],
            clean(r.thread_names[thread]), clean(r.task_names[task]), aliases, line]


def _variables(r: _Run, max_vars: int, history_per_var: int) -> tuple[list[Any], list[Any]]:
    """The variables table (the largest, ranked as every report ranks them), and their
    statistics."""
    an, co = r.an, r.co
    top_vars = [an.vars[k] for k in _memory.ranked_vars(an, r.cv, max_vars)]
    rows = []
    for vs in top_vars:
        cd = r.cv.get(vs.key, _NO_CENSUS)
        vi = co.var_index.get(vs.key, -1)
        v = co.vars[vi] if vi >= 0 else None
        hist = sorted(v.hist)[-history_per_var:] if v is not None and history_per_var > 0 else []
        rows.append({
            "key": clean(vs.key), "var": clean(vs.var), "scope": clean(vs.scope),
            "module": clean(vs.module), "file": clean(vs.file), "line": vs.line,
            "types": [clean(t) for t in sorted(vs.types)][:8],
            "shallow": v.shallow if v is not None else -1,
            "deep": v.deep if v is not None else -1,
            "peak": vs.peak_bytes,
            "retained": cd["retained"], "retained_max": cd["retained_max"],
            "census_shared": cd["shared"], "census_shallow": cd["shallow"],
            "census": cd["series"],
            "total": vs.total_bytes, "binds": vs.binds,
            "lifetime": v.life if v is not None else vs.max_lifetime_ns,
            "live": v.live if v is not None else 0,
            "aliases": [clean(a) for a in sorted(v.aliases)] if v is not None else [],
            "threads": sorted({clean(r.thread_names[t]) for t in v.threads}) if v else [],
            "leak": vs.key in r.leak_times,
            "index": vi,
            "history": [_history_row(r, h) for h in reversed(hist)],
        })  # fmt: skip
    return rows, top_vars


def _series_panel(r: _Run, buckets: int, top_k: int, with_series: bool) -> dict[str, Any]:
    """Bytes over time by variable, on the run's clock."""
    co = r.co
    series: dict[str, Any] = (
        co.series.result(r.an, r.t1, buckets=buckets, top_k=top_k)
        if with_series
        else {"t": [], "step": 1, "total": [], "groups": {}, "peak": 0}
    )
    # the collector counts from its first binding: its times move to the run's start
    shift = co.series.t0 - r.t0 if co.series.t0 >= 0 else 0
    series["t0"] = shift  # where its first bucket starts, from the run's start
    if shift:
        series["t"] = [t + shift for t in series["t"]]
    return series


def _gantt(r: _Run, gantt_rows: int, gantt_resolution: int) -> dict[str, Any]:
    """Rows = variables (grouped by scope), merged binding and object spans."""
    an, co = r.an, r.co
    quantum = r.span / max(gantt_resolution, 1)
    rows: list[dict[str, Any]] = []
    for vs in an.top_variables(gantt_rows):
        k = vs.key
        vi = co.var_index.get(k, -1)
        v = co.vars[vi] if vi >= 0 else None
        flags = r.leak_times.get(k, [])
        extra = r.leak_objs.get(k, [])
        rows.append({
            "key": clean(k), "var": clean(vs.var), "scope": clean(vs.scope),
            "module": clean(vs.module),
            "first": r.rel(v.first) if v is not None else 0,
            "peak": vs.peak_bytes, "binds": vs.binds, "leak": k in r.leak_times,
            "segs": v.segs.result(quantum, gantt_resolution, r.t0, flags) if v else [],
            "objs": (v.objs.result(quantum, gantt_resolution, r.t0, [x[0] for x in extra],
                                   extra) if v else []),
            "open_objects": len(extra),
        })  # fmt: skip
    scope_first: dict[str, int] = {}
    for row in rows:
        sk = f"{row['module']}:{row['scope']}"
        scope_first[sk] = min(scope_first.get(sk, int(row["first"])), int(row["first"]))
    rows.sort(key=lambda x: (scope_first[f"{x['module']}:{x['scope']}"], x["scope"], x["first"]))
    return {"rows": rows, "omitted": max(0, len(an.vars) - len(rows))}


def _scope_tree(node: dict[str, Any]) -> dict[str, Any]:
    kids = sorted(node.get("children", {}).values(), key=lambda n: -n["peak_bytes"])
    return {"name": clean(node["name"]), "peak": node["peak_bytes"],
            "children": [_scope_tree(c) for c in kids[:60]]}


def _scopes(an: Analysis) -> list[dict[str, Any]]:
    rows = []
    for key, g in sorted(an.by_scope.items(), key=lambda kv: -kv[1].peak_bytes)[:500]:
        module, _, qual = key.partition(":")
        rows.append({"key": clean(key), "module": clean(module), "scope": clean(qual),
                     "binds": g.binds, "bytes": g.bytes, "peak": g.peak_bytes,
                     "active": g.active})
    return rows


def _leaks(r: _Run) -> list[dict[str, Any]]:
    """One card per site and chain, with its count."""
    leaks = []
    for lk in r.an.leak_groups()[:1000]:
        lb: dict[str, Any] = lk.get("binding") or {}
        # found by the check at exit, after the last event: the run's end (its own time
        # is past the run's span); found while the run went on: then
        t = r.rel(int(lk.get("t", -1)))
        leaks.append({
            "oid": lk.get("oid"), "type": clean(lk.get("type", "?")),
            "size": lk.get("total_bytes", -1), "count": lk.get("count", 1),
            "t": min(t, r.span), "at_end": t >= r.span,
            "var": clean(lb.get("var", "?")), "scope": clean(lb.get("scope", "?")),
            "module": clean(lb.get("module", "?")), "file": clean(lb.get("file", "?")),
            "line": lb.get("line", 0),
            "holders": [clean(h) for h in lk.get("holders", [])][:20],
        })  # fmt: skip
    return leaks


def _graph(an: Analysis, leaks: list[dict[str, Any]], top_vars: list[Any],
           max_edges: int, max_nodes: int) -> dict[str, Any]:
    """Relationships: names sharing objects, holders of leaked objects."""
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
        {"id": nm, "kind": "holder" if nm in holders else "var", "deg": w,
         "bytes": peak_of.get(nm, -1)}
        for nm, w in sorted(node_w.items(), key=lambda kv: (-kv[1], kv[0]))[:max_nodes]
    ]
    node_set = {n["id"] for n in nodes}
    return {
        "nodes": nodes,
        "edges": [e for e in edges if e["a"] in node_set and e["b"] in node_set],
        "omitted_nodes": max(0, len(node_w) - len(nodes)),
        "omitted_edges": sum(1 for e in edges if e["a"] not in node_set or e["b"] not in node_set),
    }


def _buffers(r: _Run, max_buffers: int) -> tuple[list[dict[str, Any]], int, int]:
    """Buffer bindings (the largest), the views among them (address ranges that
    overlap: a NumPy slice inside its base ...); and how many there were, in bytes."""
    an, co = r.an, r.co
    bufs: list[dict[str, Any]] = []
    for v in co.vars:
        d = v.buf
        if d is None:
            continue
        vs_ = an.vars.get(v.key)
        bufs.append({
            "key": clean(v.key),
            "var": clean(vs_.var if vs_ else v.label.rpartition(".")[2]),
            "scope": clean(vs_.scope if vs_ else v.label.rpartition(".")[0]),
            "file": clean(vs_.file if vs_ else "?"), "line": d["line"],
            "types": sorted({clean(r.type_names[t]) for t in d["types"]})[:6],
            "addr": d["addr"], "bufsize": d["bufsize"], "bytes": d["bytes"],
            "binds": d["binds"], "live": d["live"], "first": r.rel(d["first"]),
            "lifetime": d["lifetime"],
        })  # fmt: skip
    bufs.sort(key=lambda d: d["first"])
    rows = sorted(bufs, key=lambda d: -max(d["bufsize"], 0))[:max_buffers]
    ranges = [(d["addr"], d["addr"] + max(d["bufsize"], 1), f"{d['scope']}.{d['var']}")
              for d in rows if d["addr"] > 0]
    for d in rows:
        me = f"{d['scope']}.{d['var']}"
        users = set(co.addr_users.get(d["addr"], set())) if d["addr"] > 0 else set()
        if d["addr"] > 0:
            lo, hi = d["addr"], d["addr"] + max(d["bufsize"], 1)
            users.update(nm for a0, a1, nm in ranges if a0 < hi and lo < a1)
        d["addr"] = f"0x{d['addr']:x}" if d["addr"] >= 0 else ""
        d["shares"] = [clean(u) for u in sorted(users - {me})][:8]
    return rows, len(bufs), sum(max(d["bufsize"], 0) for d in bufs)


def _lanes(r: _Run, kind: str, groups: dict[str, Any]) -> list[dict[str, Any]]:
    """Threads or tasks, in the order they started."""
    names = r.thread_names if kind == "thread" else r.task_names
    spans = r.co.th_span if kind == "thread" else r.co.tk_span
    span_of = {names[k]: sp for k, sp in spans.items()}
    out = []
    for k, g in sorted(groups.items(), key=lambda kv: span_of.get(kv[0], [0])[0])[:100]:
        first, last = span_of.get(k, [r.t0, r.t0])
        out.append({"key": clean(k), "binds": g.binds, "peak": g.peak_bytes,
                    "active": g.active, "first": r.rel(first), "last": r.rel(last)})
    return out


def _processes(r: _Run) -> list[dict[str, Any]]:
    """The run's processes: from PROC events, else what the caller's meta names."""
    an, meta, pids = r.an, r.meta, r.co.pids
    procs = []
    for pid, info in an.procs.items():
        procs.append({"key": str(pid), "ppid": info.get("ppid", 0),
                      "argv0": clean(info.get("argv0", "")), "binds": pids.get(pid, 0)})
    for pid, n in pids.items():
        if pid not in an.procs and pid:
            procs.append({"key": str(pid), "ppid": 0, "argv0": "", "binds": n})
    meta_procs = meta.get("processes")
    if not procs and isinstance(meta_procs, (list, tuple)):
        for p in meta_procs[:50]:
            if isinstance(p, dict) and "pid" in p:
                procs.append({"key": clean(p["pid"]), "ppid": p.get("ppid", 0),
                              "argv0": clean(p.get("argv0", "")),
                              "binds": an.binds if len(meta_procs) == 1 else -1})
    meta_pids = meta.get("pids")
    if not procs and isinstance(meta_pids, (list, tuple)) and meta_pids:
        # no PROC event in the stream (a live tracker): the pids the caller names
        for p in meta_pids[:50]:
            n = an.binds if len(meta_pids) == 1 else -1
            procs.append({"key": clean(p), "ppid": 0, "argv0": "", "binds": n})
    return procs


def _overview(r: _Run, procs: list[Any], nbufs: int, buf_total: int) -> dict[str, Any]:
    an = r.an
    stats = an.stats()
    return {
        "peak": an.peak_bytes, "peak_t": r.rel(an.peak_t), "peak_bindings": an.peak_count,
        "active_bytes": an.active_bytes, "active_bindings": an.nlive,
        "events": an.events, "binds": an.binds, "unbinds": an.unbinds,
        "variables": len(an.vars), "scopes": len(an.by_scope), "types": len(an.by_type),
        "scopes_entered": stats["scopes_entered"], "objects_finalized": an.finals,
        "duration": _memory.end_of_run(an, r.t0), "first_event": r.rel(an.t_first),
        "threads": len(an.threads) or len(an.by_thread), "tasks": len(an.tasks),
        "processes": max(len(procs), 1), "leaks": len(an.leaks),
        "leak_bytes": sum(max(int(lk.get("size", 0) or 0), 0) for lk in an.leaks),
        "errors": len(an.errors), "buffers": nbufs, "buffer_bytes": buf_total,
        "aliases": len(an.alias_pairs),
    }  # fmt: skip


def _info(r: _Run, procs: list[Any]) -> dict[str, Any]:
    """The run's description: name, mode, Python, processes, counters, what is incomplete."""
    meta, an = r.meta, r.an
    raw_counters = meta.get("counters")
    counters: dict[str, Any] = raw_counters if isinstance(raw_counters, dict) else {}
    info: dict[str, Any] = {
        "name": clean(meta.get("name", "memscope")),
        "mode": clean(meta.get("mode", "?")),
        "leak_check": clean(leak_check_state(meta)),
        "python": clean(meta.get("python", platform.python_version())),
        "pids": [clean(p) for p in (meta.get("pids") or [p["key"] for p in procs])][:50],
        "start": clean(meta.get("start", meta.get("start_time", ""))),
        "sampled": _sampled(meta.get("sampled"), an),
        "counters": {clean(k): v for k, v in counters.items() if isinstance(v, (int, float))},
        "version": clean(meta.get("version", "")),
    }
    for k, v in meta.items():
        if k in info or k in _META_HIDDEN:
            continue
        if isinstance(v, (str, int, float, bool)):
            info.setdefault("extra", {})[clean(k)] = clean(v)
    torn = [str(x.get("message", "")) for x in meta.get("recovery") or []
            if isinstance(x, dict) and not x.get("complete", True)]
    if torn:  # a capture whose process did not close it: every report says so
        info["incomplete"] = clean("; ".join(torn))
        info.setdefault("extra", {})["incomplete"] = info["incomplete"]
    return info


def build_model(
    an: Analysis,
    meta: dict[str, Any] | None = None,
    *,
    buckets: int = SERIES_BUCKETS,
    top_k: int = 30,  # layers kept: the dashboard draws 10, 20 or 30, the rest in (other)
    max_vars: int = 2000,
    history_per_var: int = HISTORY_PER_VAR,
    gantt_rows: int = 80,
    gantt_resolution: int = GANTT_RESOLUTION,
    max_edges: int = 300,
    max_nodes: int = 60,
    max_buffers: int = 500,
    with_series: bool = True,
    collector: Collector | None = None,
) -> dict[str, Any]:
    """The whole report model (JSON-ready), one function per panel; relative times are
    ns since the run's start (``_memory.origin``: the capture header's ``start_ns``), as
    in every report.

    ``collector``: what was aggregated while the analysis streamed (``Collector.attach``);
    without one, it is made from the analysis's history. Its capacities bound what can
    be asked for here (``buckets``, ``history_per_var``, ``gantt_resolution``)."""
    meta = dict(meta or {})
    if collector is None:
        collector = Collector.from_analysis(
            an, raw_limit=0, buckets=buckets, history_per_var=history_per_var,
            gantt_resolution=gantt_resolution, with_series=with_series,
        )  # fmt: skip
    r = _Run(an, collector.close(an), meta)
    var_rows, top_vars = _variables(r, max_vars, history_per_var)
    leaks = _leaks(r)
    buf_rows, nbufs, buf_total = _buffers(r, max_buffers)
    procs = _processes(r)
    return {
        "format": 1,
        "info": _info(r, procs),
        "headline": _memory.headline(an, r.t0),
        "process": _memory.process_memory(an, r.t0),
        "censuses": [_memory.census_row(c, r.t0) for c in an.censuses],
        "census_series": _memory.census_layers(an, r.t0, r.cv, top_k),
        "raw_shift": r.co.t0 - r.t0 if r.co.t0 >= 0 else 0,
        "overview": _overview(r, procs, nbufs, buf_total),
        "span": r.span if an.t_first >= 0 else 0,
        "series": _series_panel(r, buckets, top_k, with_series),
        "vars": var_rows,
        "vars_omitted": max(0, len(an.vars) - len(var_rows)),
        "gantt": _gantt(r, gantt_rows, gantt_resolution),
        "scope_tree": _scope_tree(an.scope_tree()),
        "scopes": _scopes(an),
        "types": [
            {"key": clean(k), "binds": g.binds, "bytes": g.bytes, "peak": g.peak_bytes}
            for k, g in sorted(an.by_type.items(), key=lambda kv: -kv[1].peak_bytes)[:200]
        ],
        "leaks": leaks,
        "graph": _graph(an, leaks, top_vars, max_edges, max_nodes),
        "buffers": buf_rows,
        "lanes": {
            "thread": _lanes(r, "thread", an.by_thread),
            "task": _lanes(r, "task", an.by_task) if an.tasks else [],
            "proc": procs,
        },
        "errors": [[r.rel(t), clean(w), clean(m)] for t, w, m in an.errors[:50]],
    }
