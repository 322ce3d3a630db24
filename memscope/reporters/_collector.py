"""The ``Collector``: everything the dashboard and the SVG charts show, aggregated
while the analysis streams, per variable in a ``_Var``; and ``build_series``, the time
series alone from a list of bindings."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from memscope.analysis import Analysis, Binding, ObjectLife
from memscope.reporters._format import scope_key, var_label
from memscope.reporters._raw import ENDS, RAW_COLUMNS, RAW_LIMIT, RawSink
from memscope.reporters._series import SERIES_BUCKETS, SERIES_CANDIDATES, Series
from memscope.reporters._spans import Spans

_END_INDEX = {e: i for i, e in enumerate(ENDS)}
assert len(RAW_COLUMNS) == 14, "Collector._record appends to the raw detail's 14 columns"

GANTT_RESOLUTION = 1500
"""Spans per Gantt row at most (bindings closer than span / this are merged)."""
HISTORY_PER_VAR = 25
"""Latest bindings per variable kept for the variables table."""
MAX_BUFFER_ADDRS = 8192
"""Distinct buffer addresses whose users are remembered (for "shares with")."""


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

    def recall(self, s: str, last: tuple[str, int]) -> tuple[str, int]:
        """``(s, its index)``: ``last`` itself when it is for this very string object
        (a variable's bindings nearly always repeat its last type, thread and task,
        the same objects: no lookup)."""
        return last if last[0] is s else (s, self(s))


class _Var:
    """What the model shows about one variable, kept per variable (not per binding)."""

    __slots__ = (
        "aliases",
        "buf",
        "c_task",
        "c_thread",
        "c_type",
        "deep",
        "first",
        "hist",
        "key",
        "label",
        "life",
        "live",
        "objs",
        "scope",
        "segs",
        "shallow",
        "threads",
    )  # fmt: skip

    def __init__(self, key: str, label: str, scope: str) -> None:
        self.key = key
        self.label = label  # scope.var
        self.scope = scope  # module:scope
        self.shallow = -1
        self.deep = -1
        self.first = -1
        self.life = -1
        self.live = 0
        self.threads: set[int] = set()
        self.aliases: set[str] = set()
        # latest bindings by bind time: (t_bind, id, t_unbind, type, size, deep, end,
        # thread, task, aliases, line)
        self.hist: list[tuple[int, ...]] = []
        self.segs = Spans()
        self.objs = Spans()
        self.buf: dict[str, Any] | None = None
        # the last binding's type, thread and task names and their indices: a
        # variable's bindings nearly always repeat them (the same string objects: the
        # analysis makes each name once), so ``is`` saves the three tables' lookups
        self.c_type: tuple[str, int] = ("", -1)
        self.c_thread: tuple[str, int] = ("", -1)
        self.c_task: tuple[str, int] = ("", -1)


class Collector:
    """Everything the dashboard and the SVG charts show, aggregated while the analysis
    streams (``attach``), or from an analysis that kept its history
    (``from_analysis``). Memory: the series' buckets, per variable a few aggregates,
    the latest bindings and two merged interval lists, and what is live; bindings go
    to the raw detail's temporary files as they end. Nothing grows with the number of
    events."""

    def __init__(
        self,
        *,
        raw_limit: int = RAW_LIMIT,
        buckets: int = SERIES_BUCKETS,
        candidates: tuple[int, ...] = SERIES_CANDIDATES,
        history_per_var: int = HISTORY_PER_VAR,
        gantt_resolution: int = GANTT_RESOLUTION,
    ) -> None:
        self.series = Series(2 * max(1, buckets), candidates)
        self.raw = RawSink(raw_limit)
        self.history_per_var = history_per_var
        self.resolution = max(1, gantt_resolution)
        self.vars: list[_Var] = []
        self.var_index: dict[str, int] = {}
        self.types = _Table()
        self.threads = _Table()
        self.tasks = _Table()
        self.th_span: dict[int, list[int]] = {}
        self.tk_span: dict[int, list[int]] = {}
        self.pids: dict[int, int] = {}  # bindings per process (complete once closed)
        self._pid: Any = None  # the process of the latest bindings, not yet in ``pids``
        self._pid_binds = 0
        self.addr_users: dict[int, set[str]] = {}
        self.bindings = 0
        self.t0 = -1
        self.an: Analysis | None = None
        self._closed = False

    # -- feeding --

    def attach(self, an: Analysis) -> None:
        """Take ``an``'s bindings as they start and end and its objects as they are
        finalized (chaining callbacks already set); ``close`` adds what is live."""
        self.an = an
        an.on_binding_start = _chain(an.on_binding_start, self.bind)
        an.on_binding_end = _chain(an.on_binding_end, self._record)  # self.end
        an.on_object_end = _chain(an.on_object_end, self.object_end)

    def _count_pid(self) -> None:
        if self._pid_binds:
            self.pids[self._pid] = self.pids.get(self._pid, 0) + self._pid_binds
            self._pid_binds = 0

    def _var(self, key: str, label: str, scope: str) -> int:
        i = self.var_index.get(key)
        if i is None:
            i = self.var_index[key] = len(self.vars)
            self.vars.append(_Var(key, label, scope))
        return i

    def _q(self, t: int) -> int:
        return max(0, (t - self.t0) // self.resolution) if self.t0 >= 0 else 0

    def bind(self, b: Binding) -> None:
        if self.t0 < 0:
            an = self.an
            self.t0 = an.t_first if an is not None and an.t_first >= 0 else b.t_bind
            self.series.t0 = self.t0
            if an is not None and an.on_binding_start == self.bind:
                an.on_binding_start = self.series.bind  # the clock is set: straight on
        self.series.bind(b)

    def end(self, b: Binding) -> None:
        self._record(b)

    def _record(self, b: Binding, objno: int = -1, t_end: int = -1) -> None:
        """One binding, ended (``t_end`` its end) or still live at the end of the run;
        ``objno`` its object's number (-1: it ended just now, the series says which)."""
        if objno < 0:
            objno = self.series.end(b)
            t_end = b.t_unbind
        self.bindings += 1
        # (dicts indexed, not ``get``: their keys are nearly always there)
        try:
            vi = self.var_index[b.key]
        except KeyError:
            vi = self._var(b.key, var_label(b), scope_key(b))
        v = self.vars[vi]
        tb, tu = b.t_bind, b.t_unbind
        end = tu if tu >= 0 else t_end
        v.c_type = cached = self.types.recall(b.type, v.c_type)
        ti = cached[1]
        v.c_thread = cached = self.threads.recall(b.thread_name if b.thread else "?",
                                                  v.c_thread)  # thread_key
        th = cached[1]
        v.c_task = cached = self.tasks.recall(b.task_name or "-", v.c_task)  # task_key
        tk = cached[1]
        try:
            sp = self.th_span[th]
            if tb < sp[0]:
                sp[0] = tb
            if end > sp[1]:
                sp[1] = end
        except KeyError:
            self.th_span[th] = [tb, end]
        try:
            sp = self.tk_span[tk]
            if tb < sp[0]:
                sp[0] = tb
            if end > sp[1]:
                sp[1] = end
        except KeyError:
            self.tk_span[tk] = [tb, end]
        pid: Any = b.pid  # (boxed once, for the count and the raw detail)
        if pid == self._pid:  # the same process as the binding before: counted at close
            self._pid_binds += 1
        else:
            self._count_pid()
            self._pid, self._pid_binds = pid, 1
        size, deep = b.size, b.deep
        if size > v.shallow:
            v.shallow = size
        if deep > v.deep:
            v.deep = deep
        if v.first < 0 or tb < v.first:
            v.first = tb
        if end - tb > v.life:
            v.life = end - tb
        if tu < 0:
            v.live += 1
        if th not in v.threads:
            v.threads.add(th)
        aliases = b.aliases
        nal = len(aliases)
        if nal and len(v.aliases) < 12:
            v.aliases.update(aliases[:12])
        ei = _END_INDEX.get(b.end, 0)
        h = v.hist
        line = b.line
        # boxed once, for the history and the raw detail (compiled, each use of a native
        # int in a tuple or a list would box it again)
        size_o: Any = size
        deep_o: Any = deep
        line_o: Any = line
        h.append((tb, b.id, tu, ti, size_o, deep_o, ei, th, tk, nal, line_o))
        if len(h) > 2 * self.history_per_var:
            h.sort()
            del h[: len(h) - self.history_per_var]
        nbytes = b.bytes
        t0 = self.t0
        # the Gantt quantum now (``_q``)
        res = self.resolution
        q = max(0, (end - t0) // res) if t0 >= 0 else 0
        segs = v.segs
        if segs.has_last and tb >= segs.ls and tb - segs.le <= q:  # Spans.add's merge
            if end > segs.le:
                segs.le = end
            if nbytes > segs.lb:
                segs.lb = nbytes
            segs.ln += 1
        else:
            segs.add(tb, end, nbytes, q, res)
        if b.addr >= 0 or b.bufsize >= 0:
            self._buffer(v, b, ti, end)
        if t0 < 0:
            t0 = tb
        raw = self.raw
        raw.total += 1
        if raw.n < raw.limit:  # RawSink.add, inline (the f64 columns take ints as floats)
            raw.n += 1
            c = raw.cols  # in RAW_COLUMNS' order
            c[0].append(tb - t0)
            c[1].append(tu - tb if tu >= 0 else -1)
            c[2].append(deep_o if nbytes == deep else size_o if nbytes == size else nbytes)
            c[3].append(size_o)
            c[4].append(deep_o)
            c[5].append(pid)
            c[6].append(vi)
            c[7].append(ti)
            c[8].append(th)
            c[9].append(tk)
            c[10].append(objno & 0x7FFFFFFF)
            c[11].append(line_o)
            c[12].append(nal)
            c[13].append(ei)
            if len(c[13]) >= 2048:
                raw.batch()

    def _buffer(self, v: _Var, b: Binding, ti: int, end: int) -> None:
        d = v.buf
        tb = b.t_bind
        if d is None:
            d = v.buf = {
                "types": set(), "addr": b.addr, "t_addr": tb, "bufsize": b.bufsize,
                "bytes": b.bytes, "binds": 0, "live": 0, "first": tb, "line": b.line,
                "lifetime": -1,
            }  # fmt: skip
        types: set[int] = d["types"]
        if len(types) < 16:
            types.add(ti)
        d["binds"] += 1
        if tb >= d["t_addr"]:
            d["addr"], d["t_addr"] = b.addr, tb
        if tb < d["first"]:
            d["first"], d["line"] = tb, b.line
        d["bufsize"] = max(d["bufsize"], b.bufsize)
        d["bytes"] = max(d["bytes"], b.bytes)
        d["live"] += 1 if b.t_unbind < 0 else 0
        d["lifetime"] = max(d["lifetime"], end - tb)
        if b.addr > 0:
            users = self.addr_users.get(b.addr)
            if users is None:
                if len(self.addr_users) >= MAX_BUFFER_ADDRS:
                    return
                users = self.addr_users[b.addr] = set()
            if len(users) < 9:
                users.add(v.label)

    def object_end(self, life: ObjectLife) -> None:
        vi = self.var_index.get(life.first_key)
        if vi is None:
            scope = life.first_var.rpartition(".")[0]
            module = life.first_key[: -(len(life.first_var) + 1)] if life.first_key else "?"
            vi = self._var(life.first_key, life.first_var, f"{module}:{scope}")
        t1 = life.t_final
        self.vars[vi].objs.add(life.t_first, t1, life.size, self._q(t1), self.resolution)

    def close(self, an: Analysis) -> Collector:
        """Add the bindings still live at the end (once)."""
        if not self._closed:
            self._closed = True
            if self.an is None:
                self.an = an
            t1 = max(an.t_last, 0)
            for b in an.active():
                self._record(b, self.series.object_number(b), t1)
            self._count_pid()
            self.series.finish(t1)
        return self

    @classmethod
    def from_analysis(cls, an: Analysis, *, with_series: bool = True, **options: Any) -> Collector:
        """From an analysis that kept its history: its bindings replayed in time order
        (ends before starts at the same time), as they would have streamed.
        ``with_series=False``: the time series (and the raw detail's object numbers) are
        left empty, for a model that does not show them."""
        c = cls(**options)
        c.an = an
        c.t0 = an.t_first
        c.series.t0 = an.t_first
        if not with_series:
            for b in an.history:
                c._record(b, 0, b.t_unbind)
            for life in an.finished_objects:
                c.object_end(life)
            return c.close(an)
        live = list(an._live_bindings())
        starts = sorted([*an.history, *live], key=lambda b: (b.t_bind, b.id))
        ends = sorted(an.history, key=lambda b: b.t_unbind)  # stable: the analysis's order
        i = j = 0
        ns, ne = len(starts), len(ends)
        while i < ns or j < ne:
            if j < ne and (i >= ns or ends[j].t_unbind <= starts[i].t_bind):
                c.end(ends[j])
                j += 1
            else:
                c.series.bind(starts[i])
                i += 1
        del starts, ends
        for life in sorted(an.finished_objects, key=lambda x: x.t_final):
            c.object_end(life)
        return c.close(an)

    def retained(self) -> dict[str, int]:
        """How much the collector holds (counts, not bytes): for tests and benchmarks."""
        return {
            "series_values": self.series.stored(),
            "series_buckets": len(self.series.totals) + 1,
            "live_objects": len(self.series.live),
            "variables": len(self.vars),
            "history_rows": sum(len(v.hist) for v in self.vars),
            "spans": sum(len(v.segs) + len(v.objs) for v in self.vars),
            "raw_in_memory": self.raw.pending(),
            "buffer_addrs": len(self.addr_users),
        }


# ---- the model --------------------------------------------------------------------


def build_series(
    an: Analysis,
    bindings: Iterable[Binding] | None = None,
    *,
    t0: int,
    t1: int,
    buckets: int = SERIES_BUCKETS,
    top_k: int = 10,
    candidates: tuple[int, ...] = SERIES_CANDIDATES,
) -> dict[str, Any]:
    """Stacked, peak-preserving time series for every grouping of ``GROUPINGS`` from
    bindings (in any order; ``None``: the analysis's history and live bindings)."""
    s = Series(2 * max(1, buckets), candidates)
    s.t0 = t0
    items = list(bindings) if bindings is not None else [*an.history, *an._live_bindings()]
    edges = sorted(
        [(b.t_bind, 1, b.id, b) for b in items]
        + [(b.t_unbind, 0, b.id, b) for b in items if b.t_unbind >= 0],
        key=lambda e: e[:3],
    )
    for _t, start, _i, b in edges:
        if start:
            s.bind(b)
        else:
            s.end(b)
    s.finish(t1)
    return s.result(an, t1, buckets=buckets, top_k=top_k)
