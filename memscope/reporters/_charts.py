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


# ---- streaming aggregation --------------------------------------------------------

ENDS = ("live", "rebind", "unbind", "scope_exit", "final")
_END_INDEX = {e: i for i, e in enumerate(ENDS)}
NG = len(GROUPINGS)

SERIES_BUCKETS = 1200
"""Buckets the dashboard's memory chart has at most (the SVG asks for fewer)."""
SERIES_CANDIDATES = (512, 64, 64, 64, 64)
"""Groups per grouping (in ``GROUPINGS`` order) that get their own exact layer while
the events stream; the rest of each grouping is summed, exactly, into "(other)"."""
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


class Series:
    """Stacked, peak-preserving memory over time, aggregated while the events stream,
    in memory that does not grow with the number of events.

    Buckets are ``2**k`` ns wide from ``t0``; when a time falls beyond ``budget``
    buckets, neighbouring buckets merge in pairs and ``k`` grows by one. Each bucket
    holds the state (total and one value per layer) at the moment its total was
    highest, so merging two buckets keeps the one with the larger total: the peak and
    every bucket's maximum stay exact at any resolution, and the layers of a bucket
    always add up to its total.

    Layers: each grouping (``GROUPINGS``) has up to ``caps[g]`` candidate groups with
    their own column, taken in order of first sight; when the candidates are full, a
    new group takes the place of the candidate with the smallest running peak (largest
    single binding so far) if its first binding is larger, and the evicted group's
    values are folded into the grouping's "(other)" column. A group that is not a
    candidate is always counted in "(other)", so the columns of a grouping sum exactly
    to the total, and a candidate's column is exact: it has been one since its first
    binding.

    Accounting as in the analysis: each live object counted once, at its latest size,
    attributed to the oldest binding still naming it."""

    def __init__(self, budget: int = 2 * SERIES_BUCKETS, caps: tuple[int, ...] = SERIES_CANDIDATES):
        self.budget = max(2, budget)
        self.caps = caps
        self.k = 0
        self.t0 = -1
        self.total = 0
        self.state: list[int] = [0] * NG  # slot g < NG: (other) of grouping g
        self.slot_g: list[int] = list(range(NG))
        self.slot_key: list[str] = [OTHER] * NG
        self.slot_w: list[int] = [0] * NG  # running peak of the slot's group
        self.slot_id: list[Any] = [None] * NG
        self.admit_row: list[int] = [0] * NG  # rows before this hold earlier occupants
        self.maps: list[dict[Any, int]] = [{} for _ in range(NG)]  # group -> slot
        self.dropped: list[dict[Any, str]] = [{} for _ in range(NG)]  # group -> key
        self.used = [0] * NG
        self.rows: list[array[Any]] = []  # closed buckets: the state at their peak
        self.totals: list[int] = []
        self.cur = 0  # index of the open bucket
        self.best = 0
        self.snap: array[Any] | None = None  # None: the current state is the best
        # oid -> [bytes counted, owner's groups, [(binding id, groups) live, in bind
        # order], object number]
        self.live: dict[int, list[Any]] = {}
        self.objects = 0
        self._done: tuple[list[array[Any]], list[int]] | None = None

    # -- buckets --

    def _close(self) -> None:
        self.rows.append(self.snap if self.snap is not None else array("q", self.state))
        self.totals.append(self.best)

    def _fold_pending(self) -> None:
        """Rows older than a candidate's admission hold earlier occupants' values in its
        slot: move them into the grouping's "(other)" (rows may share one array: each
        distinct array is copied and folded once)."""
        pend = [s for s in range(NG, len(self.state)) if self.admit_row[s] > 0]
        if not pend:
            return
        rows = self.rows
        new_rows = list(rows)
        copies: dict[int, array[Any]] = {}
        for s in pend:
            g = self.slot_g[s]
            done: set[int] = set()
            for r in range(min(self.admit_row[s], len(rows))):
                orig = rows[r]
                key = id(orig)
                c = copies.get(key)
                if c is None:
                    if len(orig) <= s or not orig[s]:
                        continue
                    c = copies[key] = array("q", orig)
                new_rows[r] = c
                if key not in done:
                    done.add(key)
                    if len(c) > s and c[s]:
                        c[g] += c[s]
                        c[s] = 0
            self.admit_row[s] = 0
        self.rows = new_rows

    @staticmethod
    def _pairs(rows: list[array[Any]], totals: list[int]) -> tuple[list[array[Any]], list[int]]:
        out_r: list[array[Any]] = []
        out_t: list[int] = []
        for i in range(0, len(rows), 2):
            if i + 1 < len(rows) and totals[i + 1] > totals[i]:
                out_r.append(rows[i + 1])
                out_t.append(totals[i + 1])
            else:
                out_r.append(rows[i])
                out_t.append(totals[i])
        return out_r, out_t

    def _halve(self) -> None:
        self._close()  # the open bucket joins its neighbour, then reopens
        self._fold_pending()
        self.rows, self.totals = self._pairs(self.rows, self.totals)
        self.k += 1
        self.cur //= 2
        # the merged open bucket: its best so far is the larger of the two halves
        self.snap = self.rows.pop()
        self.best = self.totals.pop()

    def _at(self, t: int) -> None:
        if self.t0 < 0:
            self.t0 = t
        d = t - self.t0
        if d <= 0:
            return
        idx = d >> self.k
        if idx <= self.cur:
            return  # same bucket (or a time a little out of order: kept in this one)
        while idx >= self.budget:
            self._halve()
            idx = d >> self.k
            if idx <= self.cur:
                return
        self._close()
        if idx > self.cur + 1:
            fill = array("q", self.state)
            for _ in range(idx - self.cur - 1):
                self.rows.append(fill)
                self.totals.append(self.total)
        self.cur = idx
        self.best = self.total
        self.snap = None

    def _change(self, old: tuple[Any, ...] | None, old_bytes: int,
                new: tuple[Any, ...] | None, new_bytes: int) -> None:  # fmt: skip
        total = self.total - (old_bytes if old is not None else 0)
        total += new_bytes if new is not None else 0
        if total > self.best:
            self.best = total
            self.snap = None
        elif self.snap is None:
            self.snap = array("q", self.state)
        state, maps = self.state, self.maps
        if old is not None and old_bytes:
            for g in range(NG):
                state[maps[g].get(old[g], g)] -= old_bytes
        if new is not None and new_bytes:
            for g in range(NG):
                state[maps[g].get(new[g], g)] += new_bytes
        self.total = total

    # -- candidates --

    def _admit(self, g: int, ident: Any, key: str, weight: int) -> None:
        if self.used[g] < self.caps[g]:
            s = len(self.state)
            self.state.append(0)
            self.slot_g.append(g)
            self.slot_key.append(key)
            self.slot_w.append(weight)
            self.slot_id.append(ident)
            self.admit_row.append(0)
            self.used[g] += 1
            self.maps[g][ident] = s
            return
        # full: the candidate with the smallest running peak may give way
        m = self.maps[g]
        s = min(m.values(), key=lambda x: (self.slot_w[x], -x))
        if weight <= self.slot_w[s]:
            self.dropped[g][ident] = key
            return
        old = self.slot_id[s]
        del m[old]
        self.dropped[g][old] = self.slot_key[s]
        self.state[g] += self.state[s]
        self.state[s] = 0
        if self.snap is not None and len(self.snap) > s:
            self.snap[g] += self.snap[s]
            self.snap[s] = 0
        self.admit_row[s] = len(self.rows)  # closed rows before now: earlier occupants
        self.slot_key[s] = key
        self.slot_w[s] = weight
        self.slot_id[s] = ident
        m[ident] = s

    def _groups(self, b: Binding) -> tuple[Any, ...]:
        """The binding's group in every grouping (identities, not names), admitting
        groups seen for the first time as candidates where there is room."""
        if b.vs is not None and len(b.groups) == 4:
            ids: tuple[Any, ...] = (
                id(b.vs),
                id(b.groups[1]),
                id(b.groups[0]),
                id(b.groups[2]),
                id(b.groups[3]),
            )
        else:
            ids = _group_keys(b)
        nbytes = b.bytes
        for g in range(NG):
            ident = ids[g]
            s = self.maps[g].get(ident)
            if s is not None:
                if nbytes > self.slot_w[s]:
                    self.slot_w[s] = nbytes
            elif ident not in self.dropped[g]:
                self._admit(g, ident, _group_keys(b)[g], nbytes)
        return ids

    # -- events --

    def bind(self, b: Binding) -> None:
        self._at(b.t_bind)
        ids = self._groups(b)
        rec = self.live.get(b.oid)
        if rec is None:
            self.objects += 1
            self.live[b.oid] = [b.bytes, ids, [(b.id, ids)], self.objects]
            self._change(None, 0, ids, b.bytes)
        else:
            rec[2].append((b.id, ids))
            self._change(rec[1], rec[0], rec[1], b.bytes)  # latest size, same owner
            rec[0] = b.bytes

    def object_number(self, b: Binding) -> int:
        rec = self.live.get(b.oid)
        return rec[3] if rec is not None else 0

    def end(self, b: Binding) -> int:
        """The binding ``b`` ended at ``b.t_unbind``; returns its object's number."""
        rec = self.live.get(b.oid)
        if rec is None:
            return 0
        self._at(b.t_unbind)
        members = rec[2]
        for j in range(len(members)):
            if members[j][0] == b.id:
                break
        else:
            return int(rec[3])
        del members[j]
        if not members:
            self._change(rec[1], rec[0], None, 0)
            del self.live[b.oid]
        elif j == 0:
            new = members[0][1]
            self._change(rec[1], rec[0], new, rec[0])
            rec[1] = new
        return int(rec[3])

    # -- results --

    def finish(self, t1: int) -> tuple[list[array[Any]], list[int]]:
        """Close the open bucket and fill up to ``t1`` (once)."""
        if self._done is None:
            if self.t0 >= 0:
                self._at(t1)
            self._close()
            self._fold_pending()
            self._done = (self.rows, self.totals)
        return self._done

    def stored(self) -> int:
        """Values held (rows x their slots, plus totals): what this costs in memory."""
        seen: set[int] = set()
        n = len(self.totals) + len(self.state)
        for r in self.rows:
            if id(r) not in seen:
                seen.add(id(r))
                n += len(r)
        return n

    def result(
        self, an: Analysis, t1: int, *, buckets: int = SERIES_BUCKETS, top_k: int = 10
    ) -> dict[str, Any]:
        rows, totals = self.finish(t1)
        step = 1 << self.k
        while len(rows) > max(1, buckets):
            rows, totals = self._pairs(rows, totals)
            step *= 2
        nb = len(totals)
        weights: list[dict[str, int]] = [
            {k: v.peak_bytes for k, v in an.vars.items()},
            {k: g.peak_bytes for k, g in an.by_scope.items()},
            {k: g.peak_bytes for k, g in an.by_type.items()},
            {k: g.peak_bytes for k, g in an.by_thread.items()},
            {k: g.peak_bytes for k, g in an.by_task.items()},
        ]
        series: dict[str, Any] = {
            "t": [i * step for i in range(nb)],
            "step": step,
            "total": list(totals),
            "groups": {},
            "peak": max(totals) if totals else 0,
        }
        for g, name in enumerate(GROUPINGS):
            w = weights[g]
            cands = sorted(
                (s for s in range(NG, len(self.state)) if self.slot_g[s] == g),
                key=lambda s: (-w.get(self.slot_key[s], 0), self.slot_key[s]),
            )
            shown = cands[:top_k]
            vals = [[row[s] if len(row) > s else 0 for row in rows] for s in shown]
            other = [t - sum(v[i] for v in vals) for i, t in enumerate(totals)]
            labels = [self.slot_key[s] for s in shown]
            low = min((w.get(k, 0) for k in labels), default=0)
            # groups summed into "(other)" while streaming that are larger than a layer
            # shown: the layers are then the largest of the groups tracked whole
            missed = sum(
                1 for k in self.dropped[g].values() if w.get(k, 0) > low and len(labels) >= top_k
            )
            if any(other):
                vals.append(other)
                labels.append(OTHER)
            series["groups"][name] = {
                "labels": [_group_label(name, k, an) for k in labels],
                "keys": [clean(k) for k in labels],
                "values": vals,
                "peaks": [w.get(k, max(v) if v else 0) for k, v in zip(labels, vals, strict=True)],
                "folded": len(self.dropped[g]) + max(0, len(cands) - len(shown)),
                "missed": missed,
            }
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


class Spans:
    """Time intervals merged as they arrive (in any order) when closer than a quantum
    that grows with the run: ``(now - t0) / resolution`` is never coarser than the
    final ``span / resolution``, so merging again at the end gives what merging every
    interval at once would. Held as one flat ``array("q")`` of (start, end, max bytes,
    count): at most about ``1.25 * resolution`` intervals, whatever the number of events."""

    __slots__ = ("a", "pending")

    def __init__(self) -> None:
        self.a = array("q")
        self.pending: list[tuple[int, int, int, int]] = []

    def add(self, s: int, e: int, nbytes: int, q: int, cap: int) -> None:
        a = self.a
        if not a:
            a.extend((s, e, nbytes, 1))
        elif s >= a[-4]:
            if s - a[-3] <= q:
                if e > a[-3]:
                    a[-3] = e
                if nbytes > a[-2]:
                    a[-2] = nbytes
                a[-1] += 1
            else:
                a.extend((s, e, nbytes, 1))
                if len(a) > 5 * cap:  # over 1.25 x the resolution: merge at today's q
                    self.remerge(q)
        else:
            self.pending.append((s, e, nbytes, 1))
            if len(self.pending) >= 64:
                self.remerge(q)

    def remerge(self, q: int) -> None:
        a = self.a
        items = [(a[i], a[i + 1], a[i + 2], a[i + 3]) for i in range(0, len(a), 4)]
        items.extend(self.pending)
        self.pending = []
        items.sort()
        self.a = _merge_flat(items, q)

    def __len__(self) -> int:
        return len(self.a) // 4 + len(self.pending)

    def result(
        self,
        q: float,
        limit: int,
        t0: int,
        flags: list[int],
        extra: list[tuple[int, int, int, int]] | None = None,
    ) -> list[list[Any]]:
        """[start, end, max bytes, count, flag] relative to ``t0``, merged at ``q`` (doubled
        until at most ``limit``), with ``extra`` intervals; flag: a time of ``flags``
        falls in the interval."""
        if self.pending:
            self.remerge(0)
        a = self.a
        items = [(a[i], a[i + 1], a[i + 2], a[i + 3]) for i in range(0, len(a), 4)]
        if extra:
            items = sorted([*items, *extra])
        qq = max(q, 0.0)
        m = _merge_flat(items, qq)
        while len(m) > 4 * max(limit, 1):
            qq = qq * 2 if qq > 0 else 1.0
            m = _merge_flat([(m[i], m[i + 1], m[i + 2], m[i + 3]) for i in range(0, len(m), 4)], qq)
        fl = sorted(flags)
        out: list[list[Any]] = []
        j = 0
        for i in range(0, len(m), 4):
            s, e = m[i], m[i + 1]
            while j < len(fl) and fl[j] < s:
                j += 1
            flag = 1 if j < len(fl) and fl[j] <= e else 0
            out.append([s - t0, e - t0, m[i + 2], m[i + 3], flag])
        return out


def _merge_flat(items: Iterable[tuple[int, int, int, int]], q: float) -> array[Any]:
    """Sorted (start, end, bytes, count) -> flat merged array (gaps <= q merge)."""
    out = array("q")
    for s, e, nbytes, n in items:
        if out and s - out[-3] <= q:
            if e > out[-3]:
                out[-3] = e
            if nbytes > out[-2]:
                out[-2] = nbytes
            out[-1] += n
        else:
            out.extend((s, e, nbytes, n))
    return out


class _Var:
    """What the model shows about one variable, kept per variable (not per binding)."""

    __slots__ = (
        "aliases",
        "buf",
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


RAW_LIMIT = 1_000_000
"""Bindings embedded in the dashboard's raw detail at most (the first to end; beyond
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
    ("obj", "i32"),  # object number (bindings of one object while it lives share it)
    ("line", "i32"),
    ("aliases", "i32"),
    ("end", "u8"),  # index into raw.ends
)
_RAW_CODE = {"f64": "d", "i32": "i", "u8": "B"}
_RAW_CHUNK = 1 << 14


class RawSink:
    """Every binding as little-endian columns, appended as bindings end, in a temporary
    directory (one file per column, written 16,384 bindings at a time), so no binding
    is held in memory; ``write_base64`` streams them, zlib-compressed and
    base64-encoded, into the page."""

    def __init__(self, limit: int = RAW_LIMIT) -> None:
        import tempfile

        self.limit = max(0, limit)
        self.n = 0
        self.total = 0
        self.dir: str | None = tempfile.mkdtemp(prefix="memscope-raw-") if self.limit else None
        self.cols = [array(_RAW_CODE[kind]) for _, kind in RAW_COLUMNS]
        self.rows: list[tuple[Any, ...]] = []
        self.files: list[Any] = []
        if self.dir is not None:
            import os

            self.files = [open(os.path.join(self.dir, name), "w+b") for name, _ in RAW_COLUMNS]
            import weakref

            weakref.finalize(self, RawSink._cleanup, self.files, self.dir)

    @staticmethod
    def _cleanup(files: list[Any], d: str) -> None:
        import shutil

        for f in files:
            try:
                f.close()
            except Exception:  # pragma: no cover
                pass
        shutil.rmtree(d, ignore_errors=True)

    def add(self, row: tuple[Any, ...]) -> None:
        self.total += 1
        if self.n >= self.limit:
            return
        self.n += 1
        rows = self.rows
        rows.append(row)
        if len(rows) >= 2048:  # rows -> columns a batch at a time
            self._columns()
            if len(self.cols[0]) >= _RAW_CHUNK:
                self._flush()

    def _columns(self) -> None:
        if self.rows:
            for c, col in zip(self.cols, zip(*self.rows, strict=True), strict=True):
                c.extend(col)
            self.rows = []

    def _flush(self) -> None:
        import sys

        self._columns()
        for c, f in zip(self.cols, self.files, strict=True):
            if sys.byteorder == "big":  # pragma: no cover
                c.byteswap()
            f.write(c.tobytes())
            del c[:]

    def write_base64(self, write: Callable[[str], Any]) -> int:
        """Compress the columns one after the other into one zlib stream and hand its
        base64 text to ``write`` in pieces; returns the uncompressed size."""
        import base64

        if self.files:
            self._flush()
        comp = zlib.compressobj(6)
        pend = b""
        size = 0

        def out(data: bytes) -> None:
            nonlocal pend
            if not data:
                return
            data = pend + data
            cut = len(data) - len(data) % 3
            pend = data[cut:]
            if cut:
                write(base64.b64encode(data[:cut]).decode("ascii"))

        for f in self.files:
            f.seek(0)
            while True:
                block = f.read(1 << 20)
                if not block:
                    break
                size += len(block)
                out(comp.compress(block))
        out(comp.flush())
        if pend:
            write(base64.b64encode(pend).decode("ascii"))
        return size

    def header(self) -> dict[str, Any]:
        cols = []
        off = 0
        for name, kind in RAW_COLUMNS:
            cols.append([name, kind, off])
            off += self.n * array(_RAW_CODE[kind]).itemsize
        return {
            "n": self.n,
            "total": self.total,
            "omitted": self.total - self.n,
            "limit": self.limit,
            "bytes": off,
            "cols": cols,
            "order": "end",
            "ends": list(ENDS),
        }

    def close(self) -> None:
        if self.dir is not None:
            RawSink._cleanup(self.files, self.dir)
            self.files = []
            self.dir = None


def raw_header(co: Collector) -> dict[str, Any]:
    """The raw detail's header for the model: columns, counts and the name tables."""
    head = co.raw.header()
    head.update(
        vars=[clean(v.label) for v in co.vars],
        var_keys=[clean(v.key) for v in co.vars],
        types=[clean(x) for x in co.types.names],
        threads=[clean(x) for x in co.threads.names],
        tasks=[clean(x) for x in co.tasks.names],
    )
    return head


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
        self.pids: dict[int, int] = {}
        self.addr_users: dict[int, set[str]] = {}
        self.addrs_over = 0
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
        an.on_binding_end = _chain(an.on_binding_end, self.end)
        an.on_object_end = _chain(an.on_object_end, self.object_end)

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
            self.t0 = self.an.t_first if self.an is not None and self.an.t_first >= 0 else b.t_bind
            self.series.t0 = self.t0
        self.series.bind(b)

    def end(self, b: Binding) -> None:
        self._record(b, self.series.end(b), b.t_unbind)

    def _record(self, b: Binding, objno: int, t_end: int) -> None:
        """One binding, ended (``t_end`` its end) or still live at the end of the run."""
        self.bindings += 1
        vi = self.var_index.get(b.key)
        if vi is None:
            vi = self._var(b.key, var_label(b), scope_key(b))
        v = self.vars[vi]
        tb, tu = b.t_bind, b.t_unbind
        end = tu if tu >= 0 else t_end
        ti = self.types(b.type)
        th = self.threads(thread_key(b))
        tk = self.tasks(task_key(b))
        for spans_, lane in ((self.th_span, th), (self.tk_span, tk)):
            sp = spans_.get(lane)
            if sp is None:
                spans_[lane] = [tb, end]
            else:
                if tb < sp[0]:
                    sp[0] = tb
                if end > sp[1]:
                    sp[1] = end
        self.pids[b.pid] = self.pids.get(b.pid, 0) + 1
        if b.size > v.shallow:
            v.shallow = b.size
        if b.deep > v.deep:
            v.deep = b.deep
        if v.first < 0 or tb < v.first:
            v.first = tb
        if end - tb > v.life:
            v.life = end - tb
        if tu < 0:
            v.live += 1
        v.threads.add(th)
        nal = len(b.aliases)
        if nal and len(v.aliases) < 12:
            v.aliases.update(b.aliases[:12])
        ei = _END_INDEX.get(b.end, 0)
        h = v.hist
        h.append((tb, b.id, tu, ti, b.size, b.deep, ei, th, tk, nal, b.line))
        if len(h) > 2 * self.history_per_var:
            h.sort()
            del h[: len(h) - self.history_per_var]
        v.segs.add(tb, end, b.bytes, self._q(end), self.resolution)
        if b.addr >= 0 or b.bufsize >= 0:
            self._buffer(v, b, ti, end)
        t0 = self.t0 if self.t0 >= 0 else tb
        self.raw.add(
            (float(tb - t0), float(tu - tb) if tu >= 0 else -1.0, float(b.bytes),
             float(b.size), float(b.deep), float(b.pid), vi, ti, th, tk,
             objno & 0x7FFFFFFF, b.line, nal, ei)
        )  # fmt: skip

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
                    self.addrs_over += 1
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
            "raw_in_memory": len(self.raw.cols[0]) + len(self.raw.rows),
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


def build_model(
    an: Analysis,
    meta: dict[str, Any] | None = None,
    *,
    buckets: int = SERIES_BUCKETS,
    top_k: int = 10,
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
    """The whole report model (JSON-ready); relative times are ns since the first event.

    ``collector``: what was aggregated while the analysis streamed (``Collector.attach``);
    without one, it is made from the analysis's history. Its capacities bound what can
    be asked for here (``buckets``, ``history_per_var``, ``gantt_resolution``)."""
    meta = dict(meta or {})
    if collector is None:
        collector = Collector.from_analysis(
            an, raw_limit=0, buckets=buckets, history_per_var=history_per_var,
            gantt_resolution=gantt_resolution, with_series=with_series,
        )  # fmt: skip
    co = collector.close(an)
    t0 = an.t_first if an.t_first >= 0 else 0
    t1 = max(an.t_last, t0)
    span = max(t1 - t0, 1)

    def rel(t: int) -> int:
        return -1 if t < 0 else t - t0

    # leaked objects: alive at the end; a binding is marked when it made the object (the
    # leak's first binding) or still names it at the end
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
    thread_names, task_names = co.threads.names, co.tasks.names
    type_names = co.types.names

    # ---- variables table ------------------------------------------------------------
    top_vars = an.top_variables(max_vars)
    var_rows = []
    for vs in top_vars:
        vi = co.var_index.get(vs.key, -1)
        v = co.vars[vi] if vi >= 0 else None
        hist = sorted(v.hist)[-history_per_var:] if v is not None and history_per_var > 0 else []
        var_rows.append(
            {
                "key": clean(vs.key),
                "var": clean(vs.var),
                "scope": clean(vs.scope),
                "module": clean(vs.module),
                "file": clean(vs.file),
                "line": vs.line,
                "types": [clean(t) for t in sorted(vs.types)][:8],
                "shallow": v.shallow if v is not None else -1,
                "deep": v.deep if v is not None else -1,
                "peak": vs.peak_bytes,
                "total": vs.total_bytes,
                "binds": vs.binds,
                "lifetime": v.life if v is not None else vs.max_lifetime_ns,
                "live": v.live if v is not None else 0,
                "aliases": [clean(a) for a in sorted(v.aliases)] if v is not None else [],
                "threads": sorted({clean(thread_names[t]) for t in v.threads}) if v else [],
                "leak": vs.key in leak_times,
                "index": vi,
                "history": [
                    [
                        rel(h[0]),
                        rel(h[2]),
                        clean(type_names[h[3]]),
                        h[4],
                        h[5],
                        ENDS[h[6]],
                        clean(thread_names[h[7]]),
                        clean(task_names[h[8]]),
                        h[9],
                        h[10],
                    ]
                    for h in reversed(hist)
                ],
            }
        )

    # ---- time series ----------------------------------------------------------------
    series = (
        co.series.result(an, t1, buckets=buckets, top_k=top_k)
        if with_series
        else {"t": [], "step": 1, "total": [], "groups": {}, "peak": 0}
    )

    # ---- Gantt: rows = variables (grouped by scope), merged binding + object spans ----
    quantum = span / max(gantt_resolution, 1)
    rows: list[dict[str, Any]] = []
    for vs in an.top_variables(gantt_rows):
        k = vs.key
        vi = co.var_index.get(k, -1)
        v = co.vars[vi] if vi >= 0 else None
        flags = leak_times.get(k, [])
        extra = leak_objs.get(k, [])
        rows.append(
            {
                "key": clean(k),
                "var": clean(vs.var),
                "scope": clean(vs.scope),
                "module": clean(vs.module),
                "first": rel(v.first) if v is not None else 0,
                "peak": vs.peak_bytes,
                "binds": vs.binds,
                "leak": k in leak_times,
                "segs": v.segs.result(quantum, gantt_resolution, t0, flags) if v else [],
                "objs": (
                    v.objs.result(quantum, gantt_resolution, t0, [x[0] for x in extra], extra)
                    if v
                    else []
                ),
                "open_objects": len(extra),
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
    bufs: list[dict[str, Any]] = []
    for v in co.vars:
        d = v.buf
        if d is None:
            continue
        vs_ = an.vars.get(v.key)
        bufs.append(
            {
                "key": clean(v.key),
                "var": clean(vs_.var if vs_ else v.label.rpartition(".")[2]),
                "scope": clean(vs_.scope if vs_ else v.label.rpartition(".")[0]),
                "file": clean(vs_.file if vs_ else "?"),
                "line": d["line"],
                "types": sorted({clean(type_names[t]) for t in d["types"]})[:6],
                "addr": d["addr"],
                "bufsize": d["bufsize"],
                "bytes": d["bytes"],
                "binds": d["binds"],
                "live": d["live"],
                "first": rel(d["first"]),
                "lifetime": d["lifetime"],
            }
        )
    bufs.sort(key=lambda d: d["first"])
    buf_rows = sorted(bufs, key=lambda d: -max(d["bufsize"], 0))[:max_buffers]
    # views: buffers whose address ranges overlap (a NumPy slice inside its base ...)
    ranges = [
        (d["addr"], d["addr"] + max(d["bufsize"], 1), f"{d['scope']}.{d['var']}")
        for d in buf_rows
        if d["addr"] > 0
    ]
    for d in buf_rows:
        me = f"{d['scope']}.{d['var']}"
        users = set(co.addr_users.get(d["addr"], set())) if d["addr"] > 0 else set()
        if d["addr"] > 0:
            lo, hi = d["addr"], d["addr"] + max(d["bufsize"], 1)
            users.update(nm for a0, a1, nm in ranges if a0 < hi and lo < a1)
        d["addr"] = f"0x{d['addr']:x}" if d["addr"] >= 0 else ""
        d["shares"] = [clean(u) for u in sorted(users - {me})][:8]
    buf_total = sum(max(d["bufsize"], 0) for d in bufs)

    # ---- lanes ------------------------------------------------------------------------
    lane_span = {
        "thread": {thread_names[k]: sp for k, sp in co.th_span.items()},
        "task": {task_names[k]: sp for k, sp in co.tk_span.items()},
    }

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

    pids = co.pids
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
