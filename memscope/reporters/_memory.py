"""The process's real memory beside what its names retain, and the one clock every
report measures time by.

Every report leads with the same headline, made here once: the process's resident
peak (the kernel's high-water mark, from the MEM rows), what the named variables
retained at the census nearest that peak (CENSUS / CVAR rows), memscope's own memory
then (measured around each of its steps: ``memscope._own``), and the rest, which no
name holds. The bytes bound at bind time (what a BIND row recorded when the name was
bound) stay available, labelled for what they are, never as the headline.

Times: every report (summary, dashboard, SVG, JSON) measures from ``origin``: the
run's start (the capture header's ``start_ns``, the runtime's clock when memscope
started), not from the first event, which can come much later (instrumenting the
program's imports happens in between).
"""

from __future__ import annotations

from typing import Any

from memscope.analysis import Analysis, Census
from memscope.reporters._format import clean, fmt_bytes, fmt_ns

LABEL_PEAK = "process peak (resident)"
LABEL_NAMED = "retained by named variables, at the census nearest the peak"
LABEL_UNNAMED = "unnamed: temporaries, library internals, interpreter"
# older captures do not say what memscope's own memory was: it is in the rest then
LABEL_UNNAMED_WITH_OWN = "unnamed: temporaries, library internals, interpreter, memscope itself"
LABEL_OWN = "memscope itself: its modules and its work (measured, at that census)"
LABEL_BOUND = "bound at bind time (shallow/deep as recorded)"
LABELS = {
    "process_peak": LABEL_PEAK,
    "named": LABEL_NAMED,
    "unnamed": LABEL_UNNAMED,
    "memscope": LABEL_OWN,
    "bound": LABEL_BOUND,
}
NO_MEMORY = (
    "no process memory in this capture (made before memscope recorded resident "
    "memory, or where it cannot be read): the process peak is not known"
)
NO_CENSUS = (
    "no census in this capture (censuses off: MEMSCOPE_CENSUS=0 or init(census=False), "
    "or the run ended before one): what named variables retain is not known"
)


def origin(an: Analysis, meta: dict[str, Any] | None) -> int:
    """The time every report counts from (ns on the runtime's clock): the run's start,
    as the capture header (``meta["start_ns"]``) or the stream's PROC rows say; the
    first event when neither does. Never later than the first event (no negative
    times)."""
    start = int((meta or {}).get("start_ns") or 0)
    if start <= 0:
        start = an.start_ns()
    first = an.t_first
    if start <= 0:
        return first if first >= 0 else 0
    return min(start, first) if first >= 0 else start


def end_of_run(an: Analysis, t0: int) -> int:
    """The run's duration from ``origin``: its last event (a census or a memory sample
    at the end included)."""
    return max(0, an.t_last - t0) if an.t_last >= 0 else 0


def _rel(t: int, t0: int) -> int:
    return -1 if t < 0 else t - t0


def percent(part: int, whole: int) -> str:
    if whole <= 0 or part < 0:
        return "n/a"
    p = 100.0 * part / whole
    if 0 < p < 1:
        return "<1%"
    return f"{p:.0f}%"


def headline(an: Analysis, t0: int) -> dict[str, Any]:
    """The numbers of the headline and its sentence (``text``); ``status`` says which
    are known: ``ok`` (process peak and a census), ``no_census``, ``no_memory`` (a
    census but no resident memory), ``none`` (neither: an old capture)."""
    pc = an.peak_census()
    peak = an.rss_peak
    named = pc.named if pc is not None else -1
    own = pc.own if pc is not None else -1
    labels = dict(LABELS)
    if own < 0:
        labels["unnamed"] = LABEL_UNNAMED_WITH_OWN
    out: dict[str, Any] = {
        "status": "ok",
        "text": "",
        "process_peak_bytes": peak,
        "process_peak_t": _rel(an.rss_peak_t, t0) if peak >= 0 else -1,
        "named_bytes": named,
        "named_shared_bytes": pc.shared if pc is not None else -1,
        "memscope_bytes": own,
        "unnamed_bytes": max(0, peak - named - max(own, 0)) if peak >= 0 and pc is not None
        else -1,
        "named_share": round(named / peak, 6) if peak > 0 and pc is not None else -1,
        "census_t": _rel(pc.t, t0) if pc is not None else -1,
        "census_reason": pc.reason if pc is not None else "",
        "census_rss_bytes": pc.rss if pc is not None else -1,
        "censuses": len(an.censuses),
        "bound_peak_bytes": an.peak_bytes,
        "bound_peak_t": _rel(an.peak_t, t0),
        "bound_peak_bindings": an.peak_count,
        "labels": labels,
    }
    if peak >= 0 and pc is not None:
        out["text"] = (
            f"named variables retain {fmt_bytes(named)} of the {fmt_bytes(peak)} process "
            f"peak ({percent(named, peak)}) — census at {fmt_ns(out['census_t'])}"
        )
    elif peak >= 0:
        out["status"] = "no_census"
        out["text"] = (
            f"{LABEL_PEAK} {fmt_bytes(peak)} at {fmt_ns(out['process_peak_t'])}; {NO_CENSUS}"
        )
    elif pc is not None:
        out["status"] = "no_memory"
        out["text"] = (
            f"named variables retain {fmt_bytes(named)} — census at "
            f"{fmt_ns(out['census_t'])}; {NO_MEMORY}"
        )
    else:
        out["status"] = "none"
        out["text"] = (
            "this capture has no process memory and no census (made before memscope "
            "recorded them, or with censuses off): the process peak and what named "
            "variables retain of it are not known; only sizes at bind time are shown"
        )
    return out


def process_memory(an: Analysis, t0: int) -> dict[str, Any]:
    """The resident-memory line (MEM rows, thinned keeping peaks) and its peak."""
    return {
        "available": an.rss_peak >= 0 or bool(an.memory),
        "t": [t - t0 for t, _ in an.memory],
        "rss": [r for _, r in an.memory],
        "peak": an.rss_peak,
        "peak_t": _rel(an.rss_peak_t, t0) if an.rss_peak >= 0 else -1,
        "last": an.rss_last,
    }


def census_row(c: Census, t0: int) -> dict[str, Any]:
    """One census's totals (no per-variable rows), times from ``t0``."""
    return {
        "t": c.t - t0,
        "reason": clean(c.reason),
        "rss": c.rss,
        "hwm": c.hwm,
        "named": c.named,
        "shared": c.shared,
        "objects": c.objects,
        "cost_ns": c.cost_ns,
        "memscope_own_bytes": c.own,
        "rows": len(c.vars),
    }


def census_vars(an: Analysis, t0: int) -> dict[str, dict[str, Any]]:
    """Per variable key, what the censuses found: ``retained``, ``shared`` and
    ``shallow`` at the census nearest the peak (-1: not listed there, i.e. not live or
    under 1 KiB), ``retained_max`` over every census, and ``series``: [t, retained,
    shallow] per census that listed it (rows of one key summed)."""
    pc = an.peak_census()
    out: dict[str, dict[str, Any]] = {}
    for c in an.censuses:
        at_peak = c is pc
        t = c.t - t0
        for key, (shallow, retained, shared, _n) in c.by_key().items():
            d = out.get(key)
            if d is None:
                d = out[key] = {"retained": -1, "shared": -1, "shallow": -1,
                                "retained_max": -1, "series": []}  # fmt: skip
            d["series"].append([t, retained, shallow])
            if retained > d["retained_max"]:
                d["retained_max"] = retained
            if at_peak:
                d["retained"], d["shared"], d["shallow"] = retained, shared, shallow
    return out


def rank_key(an: Analysis, cv: dict[str, dict[str, Any]]) -> Any:
    """Sort key for variables: retained at the peak census, then the most any census
    found, then bytes bound at bind time (the only order when there is no census)."""

    def key(k: str) -> tuple[int, int, int, str]:
        d = cv.get(k)
        vs = an.vars.get(k)
        bound = vs.peak_bytes if vs is not None else 0
        if d is None:
            return (1, 1, -bound, k)
        return (-d["retained"], -d["retained_max"], -bound, k)

    return key


def ranked_vars(an: Analysis, cv: dict[str, dict[str, Any]], n: int) -> list[str]:
    return sorted(an.vars, key=rank_key(an, cv))[:n]


def census_layers(
    an: Analysis, t0: int, cv: dict[str, dict[str, Any]], top_k: int = 10
) -> dict[str, Any]:
    """What the names retained at each census, stacked: the ``top_k`` variables that
    retained the most in any census, "shared by several names" (counted once), and
    "(other names)" (smaller variables, and those under 1 KiB that got no row), so each
    census's layers add up to its ``named``."""
    cs = an.censuses
    keys = sorted(
        (k for k, d in cv.items() if d["retained_max"] > 0),
        key=lambda k: (-cv[k]["retained_max"], k),
    )[:top_k]
    per = [c.by_key() for c in cs]
    values = [[p[k][1] if k in p else 0 for p in per] for k in keys]
    labels = []
    for k in keys:
        vs = an.vars.get(k)
        labels.append(clean(f"{vs.scope}.{vs.var}" if vs is not None else k))
    shared = [c.shared for c in cs]
    other = [max(0, c.named - c.shared - sum(v[i] for v in values)) for i, c in enumerate(cs)]
    return {
        "t": [c.t - t0 for c in cs],
        "reasons": [clean(c.reason) for c in cs],
        "named": [c.named for c in cs],
        "labels": [*labels, "shared by several names", "(other names)"],
        "keys": [clean(k) for k in keys] + ["(shared)", "(other)"],
        "values": [*values, shared, other],
    }
