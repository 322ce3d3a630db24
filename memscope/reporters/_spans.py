"""Gantt intervals merged as they arrive (``Spans``), in memory bounded by the
chart's resolution."""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Any


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
