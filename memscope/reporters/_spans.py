"""Gantt intervals merged as they arrive (``Spans``), in memory bounded by the
chart's resolution."""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from struct import Struct
from typing import Any

_pack4 = Struct("4q").pack
"""One interval's four values as an ``array("q")``'s bytes: ``frombytes`` copies them,
where ``extend`` would parse each value through a format string."""


class Spans:
    """Time intervals merged as they arrive (in any order) when closer than a quantum
    that grows with the run: ``(now - t0) / resolution`` is never coarser than the
    final ``span / resolution``, so merging again at the end gives what merging every
    interval at once would. Held as one flat ``array("q")`` of (start, end, max bytes,
    count), the last interval apart: at most about ``1.25 * resolution`` intervals,
    whatever the number of events."""

    __slots__ = ("a", "has_last", "lb", "le", "ln", "ls", "pending")

    def __init__(self) -> None:
        self.a = array("q")  # every interval before the last
        self.pending: list[tuple[int, int, int, int]] = []
        # the last interval, apart: most adds merge into it, and an array's item
        # assignment parses its value through a format string
        self.has_last = False
        self.ls = self.le = self.lb = self.ln = 0

    def _seal(self) -> None:
        """The last interval into the array (before the array is read whole)."""
        if self.has_last:
            self.a.frombytes(_pack4(self.ls, self.le, self.lb, self.ln))
            self.has_last = False

    def _unseal(self) -> None:
        a = self.a
        if not self.has_last and a:
            self.ls, self.le, self.lb, self.ln = a[-4], a[-3], a[-2], a[-1]
            del a[-4:]
            self.has_last = True

    def add(self, s: int, e: int, nbytes: int, q: int, cap: int) -> None:
        if not self.has_last:
            self._unseal()
            if not self.has_last:  # the first interval
                self.ls, self.le, self.lb, self.ln = s, e, nbytes, 1
                self.has_last = True
                return
        if s >= self.ls:
            if s - self.le <= q:
                if e > self.le:
                    self.le = e
                if nbytes > self.lb:
                    self.lb = nbytes
                self.ln += 1
            else:
                self.a.frombytes(_pack4(self.ls, self.le, self.lb, self.ln))
                self.ls, self.le, self.lb, self.ln = s, e, nbytes, 1
                if len(self.a) + 4 > 5 * cap:  # over 1.25 x the resolution: merge at today's q
                    self.remerge(q)
        else:
            self.pending.append((s, e, nbytes, 1))
            if len(self.pending) >= 64:
                self.remerge(q)

    def remerge(self, q: int) -> None:
        self._seal()
        a = self.a
        items = [(a[i], a[i + 1], a[i + 2], a[i + 3]) for i in range(0, len(a), 4)]
        items.extend(self.pending)
        self.pending = []
        items.sort()
        self.a = _merge_flat(items, q)
        self._unseal()

    def __len__(self) -> int:
        return len(self.a) // 4 + self.has_last + len(self.pending)

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
        self._seal()
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
            out.frombytes(_pack4(s, e, nbytes, n))
    return out
