"""The stacked, peak-preserving memory-over-time series (``Series``) of the HTML
dashboard and the SVG charts, aggregated while the events stream."""

from __future__ import annotations

from array import array
from struct import pack
from typing import Any

from memscope.analysis import Analysis, Binding
from memscope.reporters._format import GROUPINGS, OTHER, _group_keys, _group_label, clean

NG = len(GROUPINGS)
assert NG == 5, "Series.bind unrolls the five groupings"

SERIES_BUCKETS = 1200
"""Buckets the dashboard's memory chart has at most (the SVG asks for fewer)."""
SERIES_CANDIDATES = (512, 64, 64, 64, 64)
"""Groups per grouping (in ``GROUPINGS`` order) that get their own exact layer while
the events stream; the rest of each grouping is summed, exactly, into "(other)"."""


def _row(values: list[int]) -> array[Any]:
    """``values`` as an ``array("q")``: through ``struct``, which converts each int
    straight to its C type (an array made from a list parses each one through a format
    string: 8% of a report's time, as rows are hundreds of slots wide)."""
    return array("q", pack(f"{len(values)}q", *values))


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
        # the state at the open bucket's best (a list while the bucket is open, an array
        # once it was a row); None: the current state is the best
        self.snap: array[Any] | list[int] | None = None
        # oid -> [bytes counted, owner's groups, the live bindings: the one binding's id
        # while it is the only one (most objects: no list, no tuple), else [(binding
        # id, groups) live, in bind order], object number, the owner's slots or None,
        # ``evictions`` then]
        self.live: dict[int, list[Any]] = {}
        self.evictions = 0  # candidates that gave way so far (slots known before may move)
        self.objects = 0
        self._done: tuple[list[array[Any]], list[int]] | None = None

    # -- buckets --

    def _close(self) -> None:
        snap = self.snap
        self.rows.append(_row(self.state) if snap is None
                         else _row(snap) if isinstance(snap, list) else snap)
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
            fill = _row(self.state)
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
            self.snap = self.state[:]
        state, maps = self.state, self.maps
        if old is new:  # the same owner, another size
            if old is not None and old_bytes != new_bytes:
                d = new_bytes - old_bytes
                for g in range(NG):
                    i = maps[g].get(old[g], g)
                    state[i] = state[i] + d  # (native sums: see ``bind``)
            self.total = total
            return
        if old is not None and old_bytes:
            for g in range(NG):
                i = maps[g].get(old[g], g)
                state[i] = state[i] - old_bytes
        if new is not None and new_bytes:
            for g in range(NG):
                i = maps[g].get(new[g], g)
                state[i] = state[i] + new_bytes
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
        self.evictions += 1
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

    def _slots(self, b: Binding, ids: tuple[Any, ...]) -> list[int]:
        """The state slot each of the binding's groups (``ids``) is counted in (its own,
        or the grouping's "(other)"), admitting groups seen for the first time as
        candidates where there is room; each candidate's running peak follows."""
        nbytes = b.bytes
        maps, slot_w = self.maps, self.slot_w
        slots = []
        for g in range(NG):
            ident = ids[g]
            s = maps[g].get(ident)
            if s is not None:
                if nbytes > slot_w[s]:
                    slot_w[s] = nbytes
            elif ident not in self.dropped[g]:
                self._admit(g, ident, _group_keys(b)[g], nbytes)
                s = maps[g].get(ident, g)
            else:
                s = g
            slots.append(s)
        return slots

    # -- events --

    def bind(self, b: Binding) -> None:
        t = b.t_bind
        t0 = self.t0
        if t0 < 0 or (t - t0) >> self.k > self.cur:  # _at, unless the same bucket
            self._at(t)
        nbytes = b.bytes
        groups = b.groups
        if b.vs is not None and len(groups) == 4:  # identities, not names
            ids: tuple[Any, ...] = (
                id(b.vs), id(groups[1]), id(groups[0]), id(groups[2]), id(groups[3]))
        else:
            ids = _group_keys(b)
        maps = self.maps
        try:  # every group a candidate already (most binds): _slots, unrolled
            s0, s1, s2, s3, s4 = slots = [
                maps[0][ids[0]], maps[1][ids[1]], maps[2][ids[2]], maps[3][ids[3]],
                maps[4][ids[4]]]  # fmt: skip
        except KeyError:
            s0, s1, s2, s3, s4 = slots = self._slots(b, ids)
        else:  # each candidate's running peak (as ``_slots`` keeps it), unrolled
            slot_w = self.slot_w
            if nbytes > slot_w[s0]:
                slot_w[s0] = nbytes
            if nbytes > slot_w[s1]:
                slot_w[s1] = nbytes
            if nbytes > slot_w[s2]:
                slot_w[s2] = nbytes
            if nbytes > slot_w[s3]:
                slot_w[s3] = nbytes
            if nbytes > slot_w[s4]:
                slot_w[s4] = nbytes
        oid: Any = b.oid  # (boxed once: compiled, each lookup would box it again)
        live = self.live
        if oid not in live:
            n = self.objects = self.objects + 1
            live[oid] = [nbytes, ids, b.id, n, slots, self.evictions]
            # _change(None, 0, ids, nbytes), the slots known
            total = self.total + nbytes
            if total > self.best:
                self.best = total
                self.snap = None
            elif self.snap is None:
                self.snap = self.state[:]
            if nbytes:  # (five distinct slots: one per grouping; written out, compiled
                # code does native sums: ``+=`` on a list item would box ``nbytes``)
                state = self.state
                state[s0] = state[s0] + nbytes
                state[s1] = state[s1] + nbytes
                state[s2] = state[s2] + nbytes
                state[s3] = state[s3] + nbytes
                state[s4] = state[s4] + nbytes
            self.total = total
        else:
            rec = live[oid]
            members = rec[2]
            if isinstance(members, int):  # its second name: the first one's, in a list
                rec[2] = [(members, rec[1]), (b.id, ids)]
            else:
                members.append((b.id, ids))
            self._change(rec[1], rec[0], rec[1], nbytes)  # latest size, same owner
            rec[0] = nbytes

    def object_number(self, b: Binding) -> int:
        rec = self.live.get(b.oid)
        return rec[3] if rec is not None else 0

    def end(self, b: Binding) -> int:
        """The binding ``b`` ended at ``b.t_unbind``; returns its object's number."""
        live = self.live
        oid: Any = b.oid  # (boxed once)
        if oid not in live:
            return 0
        rec = live[oid]
        t = b.t_unbind
        t0 = self.t0
        if t0 < 0 or (t - t0) >> self.k > self.cur:  # _at, unless the same bucket
            self._at(t)
        members = rec[2]
        bid = b.id
        num: int = rec[3]
        if isinstance(members, int):
            only_id: int = members
            if only_id != bid:
                return num  # not one of its live bindings
            only = True
        else:
            only = len(members) == 1 and members[0][0] == bid
        if only:  # its only name: the object goes
            del live[oid]
            old_bytes: int = rec[0]
            # _change(rec[1], old_bytes, None, 0)
            total = self.total - old_bytes
            if total > self.best:
                self.best = total
                self.snap = None
            elif self.snap is None:
                self.snap = self.state[:]
            if old_bytes:
                state = self.state
                if rec[4] is not None and rec[5] == self.evictions:  # its slots still
                    s0: int
                    s1: int
                    s2: int
                    s3: int
                    s4: int
                    s0, s1, s2, s3, s4 = rec[4]
                    state[s0] = state[s0] - old_bytes
                    state[s1] = state[s1] - old_bytes
                    state[s2] = state[s2] - old_bytes
                    state[s3] = state[s3] - old_bytes
                    state[s4] = state[s4] - old_bytes
                else:
                    maps, old = self.maps, rec[1]
                    for g in range(NG):
                        i = maps[g].get(old[g], g)
                        state[i] = state[i] - old_bytes  # (native sums: see ``bind``)
            self.total = total
            return num
        for j in range(len(members)):
            if members[j][0] == bid:
                break
        else:
            return num
        del members[j]
        if not members:
            self._change(rec[1], rec[0], None, 0)
            del live[oid]
        elif j == 0:
            new = members[0][1]
            self._change(rec[1], rec[0], new, rec[0])
            rec[1] = new
            rec[4] = None  # the new owner's slots: looked up when needed
        return num

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
