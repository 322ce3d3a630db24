"""What changed between two runs, variable by variable (``module:qualname:variable``,
stable across commits, unlike allocation stacks).

A variable's memory is what it retains at its largest census (the heap walk that
sees a list grown after it was bound); one no census listed (it retained under a
kilobyte, or the run took none) is compared by its largest size when bound. Each change
says which (``measure``: ``retained`` or ``bound``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memscope.analysis import VarStats


@dataclass
class Change:
    key: str
    status: str  # new | gone | grown | shrunk | same
    before: int  # bytes in A (-1: absent): retained at its largest census, else bound
    after: int  # bytes in B (-1: absent)
    binds_before: int = 0
    binds_after: int = 0
    file: str = ""
    line: int = 0
    measure: str = "retained"  # retained (a census) | bound (size when bound)

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
            "measure": self.measure,
        }


@dataclass
class Diff:
    changes: list[Change] = field(default_factory=list)
    peak_before: int = 0  # the process's peak (resident), else the bound bytes' peak
    peak_after: int = 0
    named_before: int = -1  # what names retained at the peak census (-1: no census)
    named_after: int = -1

    def of(self, status: str) -> list[Change]:
        return [c for c in self.changes if c.status == status]

    def as_dict(self) -> dict[str, Any]:
        return {
            "process_peak_before": self.peak_before,
            "process_peak_after": self.peak_after,
            "named_at_peak_before": self.named_before,
            "named_at_peak_after": self.named_after,
            "counts": {s: len(self.of(s)) for s in ("new", "gone", "grown", "shrunk", "same")},
            "changes": [c.as_dict() for c in self.changes if c.status != "same"],
        }


def _vars(source: Any, progress: Any = None) -> tuple[dict[str, VarStats], int, int]:
    """(variables, the process peak, named at the peak census) of one capture."""
    from memscope.reporters import load

    run = load.prepare(source).run(keep_history=False, progress=progress)
    a = run.analysis
    pc = a.peak_census()
    peak = a.rss_peak if a.rss_peak >= 0 else a.peak_bytes
    return dict(a.vars), peak, pc.named if pc is not None else -1


def _size(v: VarStats | None) -> tuple[int, str]:
    if v is None:
        return -1, "retained"
    if v.peak_retained >= 0:
        return v.peak_retained, "retained"
    return v.peak_bytes, "bound"


def diff_vars(
    a: dict[str, VarStats], b: dict[str, VarStats], *, threshold: int = 0, percent: float = 0.0
) -> list[Change]:
    """Changes of each variable's bytes (module docstring); a change counts if it
    exceeds both ``threshold`` bytes and ``percent`` % of the old value."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        (before, m_before), (after, m_after) = _size(va), _size(vb)
        # one run's census saw it and the other's did not: both by the census (a
        # variable no census listed retained under MIN_ROW_BYTES there)
        if va is not None and vb is not None and m_before != m_after:
            before, after = max(va.peak_retained, 0), max(vb.peak_retained, 0)
            m_before = m_after = "retained"
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
                m_after if vb is not None else m_before,
            )
        )
    order = {"new": 0, "grown": 1, "shrunk": 2, "gone": 3, "same": 4}
    out.sort(key=lambda c: (order[c.status], -abs(c.delta), c.key))
    return out


def diff_captures(a: Any, b: Any, *, threshold: int = 0, percent: float = 0.0,
                  progress: Any = None) -> Diff:
    """``progress``: told of each capture's replay (``memscope.reporters._progress``)."""
    va, pa, na = _vars(a, progress)
    vb, pb, nb = _vars(b, progress)
    return Diff(diff_vars(va, vb, threshold=threshold, percent=percent), pa, pb, na, nb)
