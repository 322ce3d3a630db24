"""The terminal report (rich): totals, the peak and when, top variables with file:line,
top scopes, leaks, threads and processes."""

from __future__ import annotations

import os
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from memscope.analysis import Analysis


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


def render(
    an: Analysis, meta: dict[str, Any], console: Console, *, top: int = 15, t0: int = 0
) -> None:
    st = an.stats()
    start = t0 or (an.t_first if an.t_first >= 0 else 0)
    console.rule(f"[bold]memscope summary: {meta.get('name', '?')}")
    pids = meta.get("pids") or []
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
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
    # from the same origin as the time of the peak (the run's start when known)
    head.add_row("duration", fmt_ns(an.t_last - start) if an.t_last >= 0 else "-")
    peak_at = fmt_ns(an.peak_t - start) if an.peak_t >= 0 else "-"
    head.add_row(
        "peak", f"{fmt_bytes(st['peak_bytes'])} in {st['peak_bindings']:,} bindings, at {peak_at}"
    )
    head.add_row(
        "live at end", f"{fmt_bytes(st['active_bytes'])} in {st['active_bindings']:,} bindings"
    )
    dropped = int(meta.get("dropped") or 0)
    sampled = max(int(meta.get("sampled") or 0), int(st["sampled_skipped"]))
    if dropped or sampled or an.sampled:
        head.add_row("not recorded", f"{dropped:,} events dropped, at least {sampled:,} binds "
                     f"sampled out at {len(an.sampled):,} sites")
    for rec in meta.get("recovery") or []:
        if isinstance(rec, dict) and not rec.get("complete", True):
            head.add_row("[yellow]recovered", str(rec.get("message", "")))
    if st["errors"]:
        head.add_row("[red]tracker errors", str(st["errors"]))
    console.print(head)

    t = Table(title="Top variables by peak bytes", title_justify="left")
    for col, just in (
        ("variable", "left"),
        ("scope", "left"),
        ("where", "left"),
        ("type", "left"),
        ("peak", "right"),
        ("binds", "right"),
        ("longest", "right"),
    ):  # names and places wrap rather than lose their end in a narrow terminal
        t.add_column(col, justify=just, overflow="fold")  # type: ignore[arg-type]
    for v in an.top_variables(top):
        t.add_row(
            v.var,
            f"{v.module}:{v.scope}",
            f"{short_path(v.file)}:{v.line}",
            _types_cell(v.types),
            fmt_bytes(v.peak_bytes),
            f"{v.binds:,}",
            fmt_ns(v.max_lifetime_ns),
        )
    console.print(t)

    s = Table(title="Top scopes by peak bytes", title_justify="left")
    s.add_column("scope")
    s.add_column("peak", justify="right")
    s.add_column("binds", justify="right")
    s.add_column("live", justify="right")
    for key, g in sorted(an.by_scope.items(), key=lambda kv: -kv[1].peak_bytes)[:top]:
        s.add_row(key, fmt_bytes(g.peak_bytes), f"{g.binds:,}", fmt_bytes(g.active_bytes))
    console.print(s)

    if an.leaks:
        lt = Table(title=f"Leaks ({len(an.leaks)})", title_justify="left")
        lt.add_column("object")
        lt.add_column("size", justify="right")
        lt.add_column("held by")
        for lk in an.leaks[:top]:
            b = lk.get("binding")
            name = f"{b['scope']}.{b['var']}" if isinstance(b, dict) else f"id {lk['oid']}"
            lt.add_row(
                f"{lk['type']} {name}",
                fmt_bytes(lk["size"]),
                "; ".join(map(str, lk["holders"][:3])) or "?",
            )
        console.print(lt)
    else:
        console.print("[green]No leaks recorded.")

    th = Table(title="Threads and tasks", title_justify="left")
    th.add_column("thread / task")
    th.add_column("peak", justify="right")
    th.add_column("binds", justify="right")
    for key, g in sorted(an.by_thread.items(), key=lambda kv: -kv[1].peak_bytes)[:top]:
        th.add_row(f"thread {key}", fmt_bytes(g.peak_bytes), f"{g.binds:,}")
    for key, g in sorted(an.by_task.items(), key=lambda kv: -kv[1].peak_bytes)[:top]:
        if key != "-":
            th.add_row(f"task {key}", fmt_bytes(g.peak_bytes), f"{g.binds:,}")
    console.print(th)
    procs = meta.get("processes") or []
    if len(procs) > 1:
        pt = Table(title="Processes", title_justify="left")
        pt.add_column("pid")
        pt.add_column("parent")
        pt.add_column("program")
        for p in procs:
            pt.add_row(str(p.get("pid")), str(p.get("ppid")), str(p.get("argv0", "")))
        console.print(pt)


def write_summary(
    source: Any,
    out: IO[str] | None = None,
    *,
    width: int = 120,
    color: bool | None = None,
    meta: dict[str, Any] | None = None,
    top: int = 15,
) -> str:
    """Render the summary of ``source`` to ``out`` (stdout when None); returns the text."""
    from memscope.reporters import load

    run = load.analyze(source, keep_history=False, meta=meta)
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
