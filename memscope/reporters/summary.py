"""The terminal report (rich): the headline (the process peak and what named variables
retain of it, the bind-time number labelled), totals, top variables with file:line,
top scopes, leaks, threads and processes."""

from __future__ import annotations

import os
from typing import IO, Any

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from memscope.analysis import Analysis
from memscope.reporters._format import fmt_bytes as _fb
from memscope.reporters._format import fmt_ns as _fn
from memscope.reporters._format import shown
from memscope.reporters.meta import leak_check_state


def _m(s: Any) -> str:
    """A program's text (name, path, type, reason) inside rich markup: hidden characters
    as their escapes (``shown``), markup characters escaped."""
    from rich.markup import escape

    return escape(shown(s))


def short_path(path: str) -> str:
    """``path`` relative to the current directory when it is inside it (what a person
    running ``memscope summary`` in their project recognises), else its last two parts
    after ``…/`` (the scope column already names the module; the JSON and HTML reports
    keep the full path)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # no path, or another drive (Windows)
        rel = os.pardir
    if not (rel.startswith(os.pardir) or os.path.isabs(rel)):
        return rel
    parts = path.replace("\\", "/").split("/")
    return path if len(parts) <= 3 else "…/" + "/".join(parts[-2:])


def _types_cell(types: Any) -> str:
    """The first two type names in full and how many more (a cut name misleads)."""
    names = sorted(types)
    more = f" +{len(names) - 2} more" if len(names) > 2 else ""
    return ", ".join(names[:2]) + more


def fmt_bytes(n: float) -> str:
    if n < 0:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def fmt_ns(ns: float) -> str:
    if ns < 0:
        return "-"
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.1f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e9:.2f} s"


def _memory_rows(an: Analysis, head: Table, start: int) -> str:
    """The headline's rows (process peak, what names retain, the rest, the bind-time
    number labelled as such; printed as plain text, not markup); returns the headline
    sentence."""
    from memscope.reporters import _memory as M

    h = M.headline(an, start)
    if h["process_peak_bytes"] >= 0:
        head.add_row(M.LABEL_PEAK, f"{_fb(h['process_peak_bytes'])} at "
                     f"{_fn(h['process_peak_t'])}")
    else:
        head.add_row(M.LABEL_PEAK, "not known: " + M.NO_MEMORY.split(": ")[0])
    if h["named_bytes"] >= 0:
        rss = h["census_rss_bytes"]
        head.add_row(
            M.LABEL_NAMED,
            f"{_fb(h['named_bytes'])} ({_fb(h['named_shared_bytes'])} of it shared "
            f"by several names); census at {_fn(h['census_t'])} ({shown(h['census_reason'])})"
            + (f", resident {_fb(rss)} then" if rss >= 0 else ""),
        )
    else:
        head.add_row(M.LABEL_NAMED, "not known: no census in this capture")
    if h["unnamed_bytes"] >= 0:
        head.add_row(h["labels"]["unnamed"], f"{_fb(h['unnamed_bytes'])} "
                     f"({M.percent(h['unnamed_bytes'], h['process_peak_bytes'])} of the peak)")
    if h["memscope_bytes"] >= 0:
        head.add_row(M.LABEL_OWN, f"{_fb(h['memscope_bytes'])} "
                     f"({M.percent(h['memscope_bytes'], h['process_peak_bytes'])} of the peak)")
    if an.censuses:
        reasons: dict[str, int] = {}
        for c in an.censuses:
            reasons[shown(c.reason)] = reasons.get(shown(c.reason), 0) + 1
        head.add_row("censuses", f"{len(an.censuses):,} ("
                     + ", ".join(f"{k} {n:,}" for k, n in reasons.items())
                     + f"), {_fn(sum(c.cost_ns for c in an.censuses))} of walking in all")
    peak_at = _fn(h["bound_peak_t"]) if h["bound_peak_t"] >= 0 else "-"
    head.add_row(
        M.LABEL_BOUND,
        f"{_fb(an.peak_bytes)} in {an.peak_count:,} bindings, at {peak_at}",
    )
    return str(h["text"])


def render(
    an: Analysis, meta: dict[str, Any], console: Console, *, top: int = 15, t0: int = 0
) -> None:
    from memscope.reporters import _memory as M

    st = an.stats()
    # every time from the run's start (the capture header's start_ns), as in every report
    start = t0 or M.origin(an, meta)
    console.rule(f"[bold]memscope summary: {_m(meta.get('name', '?'))}")
    pids = meta.get("pids") or []
    # the memory rows have long labels: each label on a line of its own, its value
    # indented below, readable in any width (a grid squeezes the values into a sliver)
    mem = Table.grid(padding=(0, 0))
    mem.add_column()
    mem.add_column()
    text = _memory_rows(an, mem, start)
    console.print(shown(text), style="bold", markup=False, highlight=False)
    for label, value in zip(*(c.cells for c in mem.columns), strict=True):
        console.print(Text(str(label), style="bold"))
        console.print(Padding(Text(str(value)), (0, 0, 0, 4)))
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold", no_wrap=True)
    head.add_column()
    head.add_row("mode", f"{meta.get('mode', '?')}  (python {meta.get('python', '?')})")
    head.add_row("processes", ", ".join(map(str, pids)) or "-")
    if meta.get("start_time"):
        head.add_row("started", str(meta["start_time"]))
    head.add_row(
        "events",
        f"{st['events']:,}  ({st['total_binds']:,} binds, "
        f"{st['variables']:,} variables, {st['scopes_entered']:,} scope entries)",
    )
    head.add_row("duration", _fn(M.end_of_run(an, start)) if an.t_last >= 0 else "-")
    head.add_row(
        "live at end",
        f"{_fb(st['active_bytes'])} in {st['active_bindings']:,} bindings (bind-time sizes)",
    )
    dropped = int(meta.get("dropped") or 0)
    sampled = max(int(meta.get("sampled") or 0), int(st["sampled_skipped"]))
    if dropped or sampled or an.sampled:
        head.add_row("not recorded", f"{dropped:,} events dropped, at least {sampled:,} binds "
                     f"sampled out at {len(an.sampled):,} sites")
    for rec in meta.get("recovery") or []:
        if isinstance(rec, dict) and not rec.get("complete", True):
            head.add_row("[yellow]recovered", str(rec.get("message", "")))
    bad_rows = int(meta.get("skipped_rows") or 0)
    if bad_rows:
        head.add_row("[red]malformed rows", f"{bad_rows:,} rows of the capture could not be "
                     "used and were skipped (the JSON report's errors name them)")
    if st["errors"]:
        head.add_row("[red]tracker errors", str(st["errors"]))
    console.print(head)

    cv = M.census_vars(an, start)
    pc = an.peak_census()
    if pc is not None:
        title = ("Top variables by retained bytes, at the census nearest the peak "
                 f"({_fn(pc.t - start)})")
        note = ("retained: freed if this name alone were dropped; max: the most any census "
                "found; shared: also reached by other names; at bind: "
                f"{M.LABEL_BOUND}; '-': not listed by the census (not live, or under 1 KiB)")
    else:
        title = f"Top variables by bytes {M.LABEL_BOUND} (no census in this capture)"
        note = ""
    wide = console.width >= 120
    t = Table(title=title, title_justify="left")
    # narrow terminals: the place goes under the name, and "max" and "binds" are left
    # out, so that the numbers keep their width
    cols: list[tuple[str, str]] = [("variable / scope", "left")]
    cols += [("where", "left")] if wide else []
    cols += [("type", "left")]
    if pc is not None:
        cols += [("retained", "right")] + ([("max", "right")] if wide else [])
        cols += [("shared", "right"), ("shallow", "right")]
    cols += [("at bind", "right")] + ([("binds", "right")] if wide else [])
    ranked = [an.vars[k] for k in M.ranked_vars(an, cv, top)]
    wheres = [f"{short_path(v.file)}:{v.line}" if v.line else "-" for v in ranked]
    for col, just in cols:  # names and places wrap rather than lose their end
        # a place is read whole (file:line): the other columns wrap first
        mw = min(max((len(w) for w in wheres), default=5), 36) if col == "where" else None
        t.add_column(col, justify=just, overflow="fold", min_width=mw)  # type: ignore[arg-type]

    def size(n: int) -> str:
        return "-" if n < 0 else _fb(n)

    for v, where in zip(ranked, wheres, strict=True):
        key = v.key
        name = f"{_m(v.var)}\n[dim]{_m(f'{v.module}:{v.scope}')}[/dim]"
        row = [name, _m(where)] if wide else [f"{name}\n[dim]{_m(where)}[/dim]"]
        row.append(_m(_types_cell(v.types)))
        if pc is not None:
            d = cv.get(key) or {"retained": -1, "retained_max": -1, "shared": -1, "shallow": -1}
            row += [size(d["retained"])] + ([size(d["retained_max"])] if wide else [])
            row += [size(d["shared"]), size(d["shallow"])]
        row += [_fb(v.peak_bytes) if v.binds else "-"] + ([f"{v.binds:,}"] if wide else [])
        t.add_row(*row)
    console.print(t)
    if note:
        console.print(Text(note, style="dim"))

    s = Table(title="Top scopes by peak bytes", title_justify="left")
    s.add_column("scope")
    s.add_column("peak", justify="right")
    s.add_column("binds", justify="right")
    s.add_column("live", justify="right")
    for key, g in sorted(an.by_scope.items(), key=lambda kv: -kv[1].peak_bytes)[:top]:
        s.add_row(_m(key), _fb(g.peak_bytes), f"{g.binds:,}", _fb(g.active_bytes))
    console.print(s)

    check = leak_check_state(meta)
    if an.leaks:
        groups = sorted(an.leak_groups(), key=lambda lg: -lg["total_bytes"])
        total = _fb(sum(lg["total_bytes"] for lg in groups))
        lt = Table(title=f"Leaks ({len(an.leaks)} objects, {total} retained)",
                   title_justify="left")
        lt.add_column("object")
        lt.add_column("count", justify="right")
        lt.add_column("retained", justify="right")
        lt.add_column("held by")
        for lg in groups[:top]:
            b = lg.get("binding")
            name = f"{b['scope']}.{b['var']}" if isinstance(b, dict) else f"id {lg['oid']}"
            lt.add_row(
                _m(f"{lg['type']} {name}"),
                f"{lg['count']:,}",
                _fb(lg["total_bytes"]),
                _m("; ".join(map(str, lg["holders"][:3])) or "?"),
            )
        console.print(lt)
    elif check == "on":
        console.print("[green]No leaks found (full mode's leak check ran).")
    else:
        console.print(f"[yellow]Leaks: leak check {_m(check)}.")

    th = Table(title="Threads and tasks", title_justify="left")
    th.add_column("thread / task")
    th.add_column("peak", justify="right")
    th.add_column("binds", justify="right")
    for key, g in sorted(an.by_thread.items(), key=lambda kv: -kv[1].peak_bytes)[:top]:
        name = "thread not recorded (calls sampled out)" if key == "?" else f"thread {_m(key)}"
        th.add_row(name, _fb(g.peak_bytes), f"{g.binds:,}")
    for key, g in sorted(an.by_task.items(), key=lambda kv: -kv[1].peak_bytes)[:top]:
        if key != "-":
            th.add_row(f"task {_m(key)}", _fb(g.peak_bytes), f"{g.binds:,}")
    console.print(th)
    procs = meta.get("processes") or []
    if len(procs) > 1:
        pt = Table(title="Processes", title_justify="left")
        pt.add_column("pid")
        pt.add_column("parent")
        pt.add_column("program")
        for p in procs:
            pt.add_row(str(p.get("pid")), str(p.get("ppid")), _m(p.get("argv0", "")))
        console.print(pt)


def write_summary(
    source: Any,
    out: IO[str] | None = None,
    *,
    width: int = 120,
    color: bool | None = None,
    meta: dict[str, Any] | None = None,
    top: int = 15,
    progress: Any = None,
) -> str:
    """Render the summary of ``source`` to ``out`` (stdout when None); returns the text.
    ``progress``: told of the replay (``memscope.reporters._progress``)."""
    from memscope.reporters import load

    run = load.prepare(source, meta).run(keep_history=False, progress=progress)
    if progress is not None:
        progress.close()  # before the summary is printed
    return summary_of(run.analysis, run.meta, out, width=width, color=color, top=top, t0=run.t0)


def summary_of(
    an: Analysis,
    meta: dict[str, Any],
    out: IO[str] | None = None,
    *,
    width: int = 120,
    color: bool | None = None,
    top: int = 15,
    t0: int = 0,
) -> str:
    console = Console(
        file=out,
        width=width,
        record=True,
        color_system="auto" if color is not False else None,
        force_terminal=color if color else None,
        highlight=False,
    )
    render(an, meta, console, top=top, t0=t0)
    return console.export_text(styles=False)
