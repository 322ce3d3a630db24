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
import zlib
from array import array
from collections.abc import Callable, Iterable
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


# ---- packed bindings --------------------------------------------------------------

ENDS = ("live", "rebind", "unbind", "scope_exit", "final")
_END_INDEX = {e: i for i, e in enumerate(ENDS)}


def _chain(
    first: Callable[[Any], None] | None, then: Callable[[Any], None]
) -> Callable[[Any], None]:
    """A callback that calls ``first`` (when set) and then ``then``."""
    if first is None:
        return then

    def both(item: Any) -> None:
        first(item)
        then(item)

    return both


class _Table:
    """Strings interned to small ints, in order of first sight."""

    __slots__ = ("index", "names")

    def __init__(self) -> None:
        self.names: list[str] = []
        self.index: dict[str, int] = {}

    def __call__(self, s: str) -> int:
        i = self.index.get(s)
        if i is None:
            i = self.index[s] = len(self.names)
            self.names.append(s)
        return i


def _argsort(col: array[Any]) -> array[Any]:
    """Indices of ``col`` in ascending order, ties by index (a stable argsort), as an
    ``array("q")``: 8 bytes an entry once sorted. Sorting packed ints (value << bits |
    index) needs no key list, about half the transient memory of
    ``sorted(range(n), key=col.__getitem__)``; already-sorted columns (the bindings
    are packed as they end, so unbind times usually are) are not sorted at all."""
    n = len(col)
    if n == 0:
        return array("q")
    prev = col[0]
    for x in col:
        if x < prev:
            break
        prev = x
    else:
        return array("q", range(n))
    lo = min(col)
    sh = n.bit_length()
    mask = (1 << sh) - 1
    packed = [(x - lo) << sh | i for i, x in enumerate(col)]
    packed.sort()
    out = array("q", (x & mask for x in packed))
    del packed
    return out


class Store:
    """Every binding of a run as packed columns (about 90 bytes a binding, against
    several hundred for a ``Binding`` object), filled while the analysis streams
    (``attach``) or from an analysis that kept its history (``from_analysis``).

    Everything the model shows is computed from these columns, exactly; the columns
    are also the raw detail the dashboard embeds (``raw_block``)."""

    def __init__(self) -> None:
        self.tb = array("q")
        self.tu = array("q")
        self.oid = array("q")
        self.nbytes = array("q")
        self.size = array("q")
        self.deep = array("q")
        self.addr = array("q")
        self.bufsize = array("q")
        self.pid = array("q")
        self.var = array("i")
        self.type = array("i")
        self.thread = array("i")
        self.task = array("i")
        self.line = array("i")
        self.nal = array("i")
        self.end = array("b")
        self.vars = _Table()  # variable keys (module:scope:var)
        self.var_label: list[str] = []  # scope.var
        self.var_scope: list[str] = []  # module:scope
        self.types = _Table()
        self.threads = _Table()
        self.tasks = _Table()
        self.aliases: dict[int, set[str]] = {}  # var -> up to 12 alias labels
        # object lives with a known end (finalized): first variable, times, size
        self.o_var = array("i")
        self.o_t0 = array("q")
        self.o_t1 = array("q")
        self.o_size = array("q")
        self.o_oid = array("q")
        self._closed = False
        self._order: array[Any] | None = None

    def bind_order(self) -> array[Any]:
        """Binding indices by bind time (ties by index), computed once per length."""
        if self._order is None or len(self._order) != len(self.tb):
            self._order = _argsort(self.tb)
        return self._order

    def __len__(self) -> int:
        return len(self.tb)

    def var_index(self, key: str, label: str, scope: str) -> int:
        n = len(self.vars.names)
        i = self.vars(key)
        if i == n:
            self.var_label.append(label)
            self.var_scope.append(scope)
        return i

    def add(self, b: Binding) -> None:
        vi = self.vars.index.get(b.key)
        if vi is None:
            vi = self.var_index(b.key, var_label(b), scope_key(b))
        self.tb.append(b.t_bind)
        self.tu.append(b.t_unbind)
        self.oid.append(b.oid)
        self.nbytes.append(b.bytes)
        self.size.append(b.size)
        self.deep.append(b.deep)
        self.addr.append(b.addr)
        self.bufsize.append(b.bufsize)
        self.pid.append(b.pid)
        self.var.append(vi)
        self.type.append(self.types(b.type))
        self.thread.append(self.threads(thread_key(b)))
        self.task.append(self.tasks(task_key(b)))
        self.line.append(b.line)
        self.nal.append(len(b.aliases))
        self.end.append(_END_INDEX.get(b.end, 0))
        if b.aliases:
            al = self.aliases.get(vi)
            if al is None:
                al = self.aliases[vi] = set()
            if len(al) < 12:
                al.update(b.aliases[:12])

    def add_object(self, life: ObjectLife) -> None:
        vi = self.vars.index.get(life.first_key)
        if vi is None:
            scope = life.first_var.rpartition(".")[0]
            module = life.first_key[: -(len(life.first_var) + 1)] if life.first_key else "?"
            vi = self.var_index(life.first_key, life.first_var, f"{module}:{scope}")
        self.o_var.append(vi)
        self.o_t0.append(life.t_first)
        self.o_t1.append(life.t_final)
        self.o_size.append(life.size)
        self.o_oid.append(life.oid)

    def attach(self, an: Analysis) -> None:
        """Record ``an``'s bindings as they end and its objects as they are finalized
        (chaining any callbacks already set); ``close`` adds what is still live."""
        an.on_binding_end = _chain(an.on_binding_end, self.add)
        an.on_object_end = _chain(an.on_object_end, self.add_object)

    def close(self, an: Analysis) -> Store:
        """Add the bindings still live at the end (once)."""
        if not self._closed:
            self._closed = True
            for b in an.active():
                self.add(b)
        return self

    @classmethod
    def from_analysis(cls, an: Analysis) -> Store:
        st = cls()
        for b in an.history:
            st.add(b)
        for life in an.finished_objects:
            st.add_object(life)
        return st.close(an)

    @classmethod
    def from_bindings(cls, bindings: Iterable[Binding]) -> Store:
        st = cls()
        for b in bindings:
            st.add(b)
        st._closed = True
        return st


# ---- the model --------------------------------------------------------------------


def _top(weights: dict[str, int], k: int) -> list[str]:
    return [key for key, _ in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def build_series(
    an: Analysis,
    bindings: list[Binding] | Store,
    *,
    t0: int,
    t1: int,
    buckets: int = 1200,
    top_k: int = 10,
) -> dict[str, Any]:
    """Stacked, peak-preserving time series for every grouping of ``GROUPINGS``."""
    st = bindings if isinstance(bindings, Store) else Store.from_bindings(bindings)
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

    # each binding's layer in every grouping, through its variable / type / thread / task
    def slots(g: int, names: list[str]) -> list[int]:
        return [index[g].get(k, sizes[g] - 1) for k in names]

    s_var = slots(0, st.vars.names)
    s_scope = slots(1, st.var_scope)
    s_type = slots(2, st.types.names)
    s_thread = slots(3, st.threads.names)
    s_task = slots(4, st.tasks.names)
    col_var, col_type, col_thread, col_task = st.var, st.type, st.thread, st.task

    def gidx(i: int) -> tuple[int, int, int, int, int]:
        v = col_var[i]
        return (
            s_var[v], s_scope[v], s_type[col_type[i]], s_thread[col_thread[i]],
            s_task[col_task[i]],
        )  # fmt: skip

    n = len(st)
    tb = st.tb
    tue = array("q", (x if x >= 0 else t1 for x in st.tu))
    starts = st.bind_order()
    ends = _argsort(tue)

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
            stt = best_state[g]
            for j in range(sizes[g]):
                col[j][bi] = stt[j]

    def fill_to(bi: int) -> None:
        # buckets (filled..bi) had no change: they hold the current state
        nonlocal filled
        for e in range(filled, bi):
            out_total[e] = total
            for g in range(ng):
                col = out_vals[g]
                stt = state[g]
                for j in range(sizes[g]):
                    col[j][e] = stt[j]
        filled = max(filled, bi)

    owner_g: dict[int, tuple[int, ...]] = {}  # binding index -> its layers, while live

    def move(oid_rec: list[Any], new_owner: int, new_bytes: int) -> None:
        nonlocal total
        old_owner = oid_rec[1]
        old_bytes = oid_rec[0]
        if old_owner >= 0:
            og = owner_g[old_owner]
            for g in range(ng):
                state[g][og[g]] -= old_bytes
            total -= old_bytes
        if new_owner >= 0:
            ng_ = owner_g[new_owner]
            for g in range(ng):
                state[g][ng_[g]] += new_bytes
            total += new_bytes
        oid_rec[0] = new_bytes
        oid_rec[1] = new_owner

    oids, nbytes_col = st.oid, st.nbytes
    si = ei = 0
    while si < n or ei < n:
        # ends sort before starts at the same time
        if ei < n and (si >= n or tue[ends[ei]] <= tb[starts[si]]):
            i = ends[ei]
            ei += 1
            t = tue[i]
            start = False
        else:
            i = starts[si]
            si += 1
            t = tb[i]
            start = True
        bi = min(nb - 1, (t - t0) * nb // span) if t > t0 else 0
        if bi != cur:
            close_bucket(cur)
            filled = cur + 1
            fill_to(bi)
            cur = bi
            best = total
            best_state = [s[:] for s in state]
        oid = oids[i]
        rec = live.get(oid)
        if start:
            owner_g[i] = gidx(i)
            nbytes = nbytes_col[i]
            if rec is None:
                rec = live[oid] = [0, -1, [i]]
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
                del live[oid]
            elif rec[1] == i:
                move(rec, members[0], rec[0])
            owner_g.pop(i, None)
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
    store: Store | None = None,
) -> dict[str, Any]:
    """The whole report model (JSON-ready); relative times are ns since the first event."""
    meta = dict(meta or {})
    st = store.close(an) if store is not None else Store.from_analysis(an)
    nrec = len(st)
    t0 = an.t_first if an.t_first >= 0 else 0
    t1 = max(an.t_last, t0)
    span = max(t1 - t0, 1)

    def rel(t: int) -> int:
        return -1 if t < 0 else t - t0

    leak_oids = {lk.get("oid") for lk in an.leaks}
    tb, tu, oids, col_var = st.tb, st.tu, st.oid, st.var
    thread_names, task_names = st.threads.names, st.tasks.names

    # ---- per-variable aggregates the analysis does not keep -------------------------
    nv = len(st.vars.names)
    v_shallow = [-1] * nv
    v_deep = [-1] * nv
    v_live = [0] * nv
    v_first = [-1] * nv
    v_life = [-1] * nv
    v_leak = [False] * nv
    v_threads: list[set[int]] = [set() for _ in range(nv)]
    v_rows: list[array[Any]] = [array("q") for _ in range(nv)]  # binding indices of each variable
    # first/last activity of each thread and task, bindings per pid (for the lanes)
    th_span: dict[int, list[int]] = {}
    tk_span: dict[int, list[int]] = {}
    pids: dict[int, int] = {}
    size_c, deep_c, th_c, tk_c, pid_c = st.size, st.deep, st.thread, st.task, st.pid
    for i in range(nrec):
        v = col_var[i]
        b_t = tb[i]
        u = tu[i]
        end = u if u >= 0 else t1
        for spans_, lane in ((th_span, th_c[i]), (tk_span, tk_c[i])):
            sp = spans_.get(lane)
            if sp is None:
                spans_[lane] = [b_t, end]
            else:
                if b_t < sp[0]:
                    sp[0] = b_t
                if end > sp[1]:
                    sp[1] = end
        p = pid_c[i]
        pids[p] = pids.get(p, 0) + 1
        if size_c[i] > v_shallow[v]:
            v_shallow[v] = size_c[i]
        if deep_c[i] > v_deep[v]:
            v_deep[v] = deep_c[i]
        if v_first[v] < 0 or b_t < v_first[v]:
            v_first[v] = b_t
        v_threads[v].add(th_c[i])
        if end - b_t > v_life[v]:
            v_life[v] = end - b_t
        if u < 0:
            v_live[v] += 1
        if oids[i] in leak_oids:
            v_leak[v] = True
        v_rows[v].append(i)
    lane_span = {
        "thread": {thread_names[k]: sp for k, sp in th_span.items()},
        "task": {task_names[k]: sp for k, sp in tk_span.items()},
    }

    # ---- variables table ------------------------------------------------------------
    top_vars = an.top_variables(max_vars)
    var_rows = []
    end_c, nal_c, line_c, type_c = st.end, st.nal, st.line, st.type
    type_names = st.types.names
    for vs in top_vars:
        v = st.vars.index.get(vs.key, -1)
        hist: list[int] = []
        if v >= 0:
            hist = sorted(v_rows[v], key=lambda i: (tb[i], i))[-history_per_var:]
        var_rows.append(
            {
                "key": clean(vs.key),
                "var": clean(vs.var),
                "scope": clean(vs.scope),
                "module": clean(vs.module),
                "file": clean(vs.file),
                "line": vs.line,
                "types": [clean(t) for t in sorted(vs.types)][:8],
                "shallow": v_shallow[v] if v >= 0 else -1,
                "deep": v_deep[v] if v >= 0 else -1,
                "peak": vs.peak_bytes,
                "total": vs.total_bytes,
                "binds": vs.binds,
                "lifetime": v_life[v] if v >= 0 else vs.max_lifetime_ns,
                "live": v_live[v] if v >= 0 else 0,
                "aliases": [clean(a) for a in sorted(st.aliases.get(v, ()))],
                "threads": sorted({clean(thread_names[t]) for t in v_threads[v]}) if v >= 0 else [],
                "leak": v_leak[v] if v >= 0 else False,
                "index": v,
                "history": [
                    [
                        rel(tb[i]),
                        rel(tu[i]),
                        clean(type_names[type_c[i]]),
                        size_c[i],
                        deep_c[i],
                        ENDS[end_c[i]],
                        clean(thread_names[th_c[i]]),
                        clean(task_names[tk_c[i]]),
                        nal_c[i],
                        line_c[i],
                    ]
                    for i in reversed(hist)
                ],
            }
        )

    # ---- time series ----------------------------------------------------------------
    series = (
        build_series(an, st, t0=t0, t1=t1, buckets=buckets, top_k=top_k)
        if with_series
        else {"t": [], "step": 1, "total": [], "groups": {}, "peak": 0}
    )

    # ---- Gantt: rows = variables (grouped by scope), merged binding + object spans ----
    quantum = span / max(gantt_resolution, 1)
    chosen = [vs.key for vs in an.top_variables(gantt_rows)]
    nbytes_c = st.nbytes
    spans: dict[str, list[tuple[int, int, int, bool]]] = {}
    objs: dict[str, list[tuple[int, int, int, bool]]] = {k: [] for k in chosen}
    for k in chosen:
        v = st.vars.index.get(k, -1)
        spans[k] = [
            (rel(tb[i]), rel(tu[i] if tu[i] >= 0 else t1), nbytes_c[i], oids[i] in leak_oids)
            for i in (v_rows[v] if v >= 0 else ())
        ]
    open_end: dict[str, int] = {}
    # object lifetimes where the end is known: finalized, or leaked (alive at the end);
    # objects that could not be weak-referenced have no known end and are not drawn
    var_names = st.vars.names
    for j in range(len(st.o_var)):
        lst = objs.get(var_names[st.o_var[j]])
        if lst is not None:
            o_end = st.o_t1[j] if st.o_t1[j] >= 0 else t1
            lst.append((rel(st.o_t0[j]), rel(o_end), st.o_size[j], st.o_oid[j] in leak_oids))
    for life in an.objects.values():
        if life.oid not in leak_oids:
            continue
        lst = objs.get(life.first_key)
        if lst is not None:
            open_end[life.first_key] = open_end.get(life.first_key, 0) + 1
            lst.append((rel(life.t_first), rel(t1), life.size, True))
    rows: list[dict[str, Any]] = []
    for k in chosen:
        vs = an.vars[k]
        v = st.vars.index.get(k, -1)
        s = sorted(spans[k])
        o = sorted(objs[k])
        rows.append(
            {
                "key": clean(k),
                "var": clean(vs.var),
                "scope": clean(vs.scope),
                "module": clean(vs.module),
                "first": rel(v_first[v]) if v >= 0 else 0,
                "peak": vs.peak_bytes,
                "binds": vs.binds,
                "leak": v_leak[v] if v >= 0 else False,
                "segs": _merge(s, quantum, gantt_resolution),
                "objs": _merge(o, quantum, gantt_resolution),
                "open_objects": open_end.get(k, 0),
            }
        )
    del spans, objs, v_rows
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
    addr_c, bufsize_c = st.addr, st.bufsize
    for i in sorted((i for i in range(nrec) if addr_c[i] >= 0 or bufsize_c[i] >= 0),
                    key=lambda i: (tb[i], i)):  # fmt: skip
        v = col_var[i]
        key = var_names[v]
        label = st.var_label[v]
        addr, bsz = addr_c[i], bufsize_c[i]
        d = bufs.get(key)
        if d is None:
            vs_ = an.vars.get(key)
            d = bufs[key] = {
                "key": clean(key),
                "var": clean(vs_.var if vs_ else label.rpartition(".")[2]),
                "scope": clean(vs_.scope if vs_ else label.rpartition(".")[0]),
                "file": clean(vs_.file if vs_ else "?"),
                "line": line_c[i],
                "types": set(),
                "addr": addr,
                "bufsize": bsz,
                "bytes": nbytes_c[i],
                "binds": 0,
                "live": 0,
                "first": rel(tb[i]),
                "lifetime": -1,
            }
        d["types"].add(clean(type_names[type_c[i]]))
        d["binds"] += 1
        d["addr"] = addr
        d["bufsize"] = max(d["bufsize"], bsz)
        d["bytes"] = max(d["bytes"], nbytes_c[i])
        d["live"] += 1 if tu[i] < 0 else 0
        held = (tu[i] if tu[i] >= 0 else t1) - tb[i]
        d["lifetime"] = max(d["lifetime"], held)
        if addr > 0:
            addr_users.setdefault(addr, set()).add(label)
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
    stats = an.stats()
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
        "scopes_entered": stats["scopes_entered"],
        "objects_finalized": an.finals,
        "duration": stats["duration_ns"],
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


# ---- raw detail -------------------------------------------------------------------

RAW_LIMIT = 1_000_000
"""Bindings embedded in the dashboard's raw detail at most (the earliest bound; beyond
this the page says how many were left out and points to the JSON reports)."""

# (name, typed-array kind) in the order the columns are laid out; f64 first keeps every
# column aligned for its typed array
RAW_COLUMNS = (
    ("t_bind", "f64"),  # ns since the first event
    ("held", "f64"),  # t_unbind - t_bind, or -1 while live at the end
    ("bytes", "f64"),  # what it accounts for (deep where recorded, else shallow)
    ("size", "f64"),
    ("deep", "f64"),
    ("pid", "f64"),
    ("var", "i32"),  # index into raw.vars
    ("type", "i32"),
    ("thread", "i32"),
    ("task", "i32"),
    ("obj", "i32"),  # dense object number (bindings of one object share it)
    ("line", "i32"),
    ("aliases", "i32"),
    ("end", "u8"),  # index into raw.ends
)


def raw_block(st: Store, t0: int, limit: int = RAW_LIMIT) -> tuple[dict[str, Any], str]:
    """(header for the model, base64 text) of the raw detail: the first ``limit``
    bindings by bind time as zlib-compressed little-endian columns. The text is base64
    (``A-Z a-z 0-9 + / =``), so it can neither close its element nor be executed."""
    import base64
    import sys

    n_all = len(st)
    tb, tu = st.tb, st.tu
    order = st.bind_order()
    if len(order) > max(0, limit):
        order = order[: max(0, limit)]
    n = len(order)
    objno: dict[int, int] = {}
    oids = st.oid

    def column(name: str, idx: array[Any]) -> array[Any]:
        if name == "t_bind":
            return array("d", (float(tb[i] - t0) for i in idx))
        if name == "held":
            return array("d", (float(tu[i] - tb[i]) if tu[i] >= 0 else -1.0 for i in idx))
        if name == "obj":
            return array("i", (objno.setdefault(oids[i], len(objno)) for i in idx))
        src: array[Any] = {
            "bytes": st.nbytes, "size": st.size, "deep": st.deep, "pid": st.pid,
            "var": st.var, "type": st.type, "thread": st.thread, "task": st.task,
            "line": st.line, "aliases": st.nal, "end": st.end,
        }[name]  # fmt: skip
        code = {"f64": "d", "i32": "i", "u8": "B"}[dict(RAW_COLUMNS)[name]]
        return array(code, (src[i] for i in idx))

    # each column is packed and compressed a chunk at a time: no whole column is held
    chunk = 1 << 16
    comp = zlib.compressobj(6)
    parts: list[bytes] = []
    cols = []
    off = 0
    for name, kind in RAW_COLUMNS:
        cols.append([name, kind, off])
        for c in range(0, n, chunk):
            a = column(name, order[c : c + chunk])
            if sys.byteorder == "big":  # pragma: no cover
                a.byteswap()
            data = a.tobytes()
            off += len(data)
            parts.append(comp.compress(data))
            del a, data
    parts.append(comp.flush())
    blob = b"".join(parts)
    header = {
        "n": n,
        "total": n_all,
        "omitted": n_all - n,
        "limit": limit,
        "bytes": off,
        "cols": cols,
        "vars": [clean(x) for x in st.var_label],
        "var_keys": [clean(x) for x in st.vars.names],
        "types": [clean(x) for x in st.types.names],
        "threads": [clean(x) for x in st.threads.names],
        "tasks": [clean(x) for x in st.tasks.names],
        "ends": list(ENDS),
    }
    return header, base64.b64encode(blob).decode("ascii")
