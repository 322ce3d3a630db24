"""What changed between two runs, variable by variable (``module:qualname:variable``,
stable across commits, unlike allocation stacks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memscope.analysis import VarStats


@dataclass
class Change:
    key: str
    status: str  # new | gone | grown | shrunk | same
    before: int  # peak bytes in A (-1: absent)
    after: int  # peak bytes in B (-1: absent)
    binds_before: int = 0
    binds_after: int = 0
    file: str = ""
    line: int = 0

    @property
    def delta(self) -> int:
        return max(self.after, 0) - max(self.before, 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            "before": self.before,
            "after": self.after,
            "delta": self.delta,
            "binds_before": self.binds_before,
            "binds_after": self.binds_after,
            "file": self.file,
            "line": self.line,
        }


@dataclass
class Diff:
    changes: list[Change] = field(default_factory=list)
    peak_before: int = 0
    peak_after: int = 0

    def of(self, status: str) -> list[Change]:
        return [c for c in self.changes if c.status == status]

    def as_dict(self) -> dict[str, Any]:
        return {
            "peak_before": self.peak_before,
            "peak_after": self.peak_after,
            "counts": {s: len(self.of(s)) for s in ("new", "gone", "grown", "shrunk", "same")},
            "changes": [c.as_dict() for c in self.changes if c.status != "same"],
        }


def _vars(source: Any) -> tuple[dict[str, VarStats], int]:
    from memscope.reporters import load

    run = load.analyze(source, keep_history=False)
    return dict(run.analysis.vars), run.analysis.peak_bytes


def diff_vars(
    a: dict[str, VarStats], b: dict[str, VarStats], *, threshold: int = 0, percent: float = 0.0
) -> list[Change]:
    """Changes of peak bytes per variable; a change counts if it exceeds both
    ``threshold`` bytes and ``percent`` % of the old value."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        before = va.peak_bytes if va else -1
        after = vb.peak_bytes if vb else -1
        ref = vb or va
        assert ref is not None
        if va is None:
            status = "new" if after >= threshold else "same"
        elif vb is None:
            status = "gone" if before >= threshold else "same"
        else:
            d = after - before
            big = abs(d) > threshold and (before <= 0 or abs(d) * 100 > percent * before)
            status = ("grown" if d > 0 else "shrunk") if d and big else "same"
        out.append(
            Change(
                key,
                status,
                before,
                after,
                va.binds if va else 0,
                vb.binds if vb else 0,
                ref.file,
                ref.line,
            )
        )
    order = {"new": 0, "grown": 1, "shrunk": 2, "gone": 3, "same": 4}
    out.sort(key=lambda c: (order[c.status], -abs(c.delta), c.key))
    return out


def diff_captures(a: Any, b: Any, *, threshold: int = 0, percent: float = 0.0) -> Diff:
    va, pa = _vars(a)
    vb, pb = _vars(b)
    return Diff(diff_vars(va, vb, threshold=threshold, percent=percent), pa, pb)
