"""A set of small non-negative ids (sites, scopes) as one byte each.

The capture writer keeps which sites and scopes are user code for its user-records
count. As ``set[int]`` a module of 3,000 sites cost 174 KiB of the program's heap (one
int object and a hash slot each; more-itertools' bounded-memory test saw it, issue
17); as flags it costs 3 KiB, and the count over a column of ids stays in C.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


class IdFlags:
    """``add``/``discard``/``in`` of a set of ints, plus range updates and ``count_in``;
    ids that are not non-negative ints are never members."""

    __slots__ = ("_bits", "_n")

    def __init__(self) -> None:
        self._bits = bytearray()
        self._n = 0

    def _grow(self, stop: int) -> None:
        if stop > len(self._bits):
            self._bits.extend(bytes(stop - len(self._bits)))

    def add(self, i: object) -> None:
        if type(i) is int and i >= 0:
            self._grow(i + 1)
            if not self._bits[i]:
                self._bits[i] = 1
                self._n += 1

    def discard(self, i: object) -> None:
        if type(i) is int and 0 <= i < len(self._bits) and self._bits[i]:
            self._bits[i] = 0
            self._n -= 1

    def update(self, ids: range) -> None:
        if ids.step == 1 and ids.start >= 0 and len(ids):
            self._grow(ids.stop)
            self._bits[ids.start : ids.stop] = b"\x01" * len(ids)
            self._n = self._bits.count(1)

    def difference_update(self, ids: range) -> None:
        if ids.step == 1 and len(ids):
            start, stop = max(ids.start, 0), min(ids.stop, len(self._bits))
            if start < stop:
                self._bits[start:stop] = bytes(stop - start)
                self._n = self._bits.count(1)

    def __contains__(self, i: object) -> bool:
        return type(i) is int and 0 <= i < len(self._bits) and self._bits[i] == 1

    def __bool__(self) -> bool:
        return self._n > 0

    def __len__(self) -> int:
        return self._n

    def flags(self) -> bytes:
        """Byte ``i`` is 1 where ``i`` is a member, 0 where not (ids past the end: not)."""
        return bytes(self._bits)

    def below(self, limit: int) -> bytes:
        """The members below ``limit`` (at most 256), as bytes, ascending."""
        head = self._bits[:limit]
        return bytes(i for i, f in enumerate(head) if f)

    def count_in(self, ids: Iterable[object]) -> int:
        """How many of ``ids`` are members (each counted as often as it occurs)."""
        ids = ids if isinstance(ids, (list, tuple)) else list(ids)
        bits = self._bits
        if not ids:
            return 0
        try:
            if min(ids) >= 0 and max(ids) < len(bits):
                return sum(map(bits.__getitem__, ids))
        except TypeError:
            pass
        return sum(1 for i in ids if i in self)
