"""Static SVG charts: the memory analysis and the lifecycle timeline.

Both read the shared report model (``memscope.reporters._charts``), so they show the
same aggregated numbers as the dashboard, at any capture size: the largest groups are
drawn and the rest is summed and labelled. An empty run gives an image that says so.
Every string is XML-escaped; the files need no script, font or network to display.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as _xml_escape

from memscope.analysis import Analysis
from memscope.reporters._charts import OTHER, Collector, build_model, fmt_bytes, fmt_ns
from memscope.reporters._format import shown
from memscope.reporters._memory import LABEL_BOUND, LABEL_PEAK

PALETTE = (
    "#2f6fdb",
    "#f08c00",
    "#2f9e44",
    "#d6336c",
    "#7048e8",
    "#0c8599",
    "#e8590c",
    "#5c940d",
    "#ae3ec9",
    "#1098ad",
    "#a61e4d",
    "#495057",
)
OTHER_COLOR = "#adb5bd"
FONT = "system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
MONO = "ui-monospace,SFMono-Regular,Menlo,Consolas,monospace"
INK = "#1f2933"
MUTED = "#616e7c"
LEAK = "#d64545"


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def esc(s: Any) -> str:
    """XML-escape text and attribute values, shown as every report shows a program's
    text (``_format.shown``: bidi overrides and invisible characters as their escapes);
    characters XML 1.0 forbids become U+FFFD."""
    t = _NOT_XML.sub("\ufffd", shown(s))  # hidden characters as their escapes
    return _xml_escape(t, {'"': "&quot;", "'": "&#39;"})


def clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: max(1, n - 1)] + "…"


class Canvas:
    def __init__(self, width: int) -> None:
        self.width = width
        self.parts: list[str] = []

    def add(self, s: str) -> None:
        self.parts.append(s)

    def text(
        self,
        x: float,
        y: float,
        s: str,
        *,
        size: float = 12,
        fill: str = INK,
        anchor: str = "start",
        weight: int = 400,
        mono: bool = False,
        title: str | None = None,
    ) -> None:
        fam = MONO if mono else FONT
        inner = esc(s)
        if title:
            inner = f"<title>{esc(title)}</title>{inner}"
        self.add(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}" '
            f'text-anchor="{anchor}" font-weight="{weight}" font-family="{esc(fam)}">{inner}</text>'
        )

    def rect(self, x: float, y: float, w: float, h: float, fill: str, extra: str = "") -> None:
        self.add(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
            f'fill="{fill}"{extra}/>'
        )

    def line(
        self, x1: float, y1: float, x2: float, y2: float, stroke: str, extra: str = ""
    ) -> None:
        self.add(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{stroke}"{extra}/>'
        )

    def render(self, height: float, title: str) -> str:
        h = math.ceil(height)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{h}" '
            f'viewBox="0 0 {self.width} {h}" role="img" aria-label="{esc(title)}">\n'
            f"<title>{esc(title)}</title>\n"
            f'<rect width="100%" height="100%" fill="#ffffff"/>\n'
            + "\n".join(self.parts)
            + "\n</svg>\n"
        )


def _nice_ticks(lo: float, hi: float, n: int) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    step = 10 ** math.floor(math.log10(span / n))
    err = span / n / step
    if err >= 7.5:
        step *= 10
    elif err >= 3.5:
        step *= 5
    elif err >= 1.5:
        step *= 2
    out = []
    t = math.ceil(lo / step) * step
    while t <= hi + step * 1e-9:
        out.append(t)
        t += step
    return out


def _byte_ticks(hi: float, n: int) -> list[float]:
    if hi <= 0:
        return [0.0]
    base = 1 << 30 if hi >= 1 << 30 else 1 << 20 if hi >= 1 << 20 else 1024 if hi >= 1024 else 1
    return [t * base for t in _nice_ticks(0, hi / base, n)]


def _header(c: Canvas, model: dict[str, Any], what: str) -> float:
    o, info = model["overview"], model["info"]
    hl = model.get("headline") or {}
    c.rect(0, 0, c.width, 56, "#1f2933")
    c.text(20, 24, f"memscope · {clip(info['name'], 60)}", size=16, fill="#ffffff", weight=700)
    if info.get("incomplete"):  # a capture its process did not close: said here too
        c.text(20, 44, clip(f"{what} · INCOMPLETE: {info['incomplete']}", 110), size=12,
               fill="#ffb4a9", title=str(info["incomplete"]))
    else:
        c.text(20, 44, what, size=12, fill="#cbd2d9")
    parts = [
        f"{o['binds']:,} bindings",
        f"{o['variables']:,} variables",
        f"{fmt_ns(o['duration'])}",
        f"mode {info['mode']}",
    ]
    if o["leaks"]:
        parts.append(f"{o['leaks']} leak(s), {fmt_bytes(o['leak_bytes'])}")
    c.text(c.width - 20, 24, "  ·  ".join(parts), size=12, fill="#ffffff", anchor="end")
    # the headline: the process's real peak and what the names retain of it
    c.rect(0, 56, c.width, 30, "#eef3fc")
    ok = hl.get("status") == "ok"
    c.text(20, 76, clip(str(hl.get("text", "")), int((c.width - 40) / (7.4 if ok else 6.4))),
           size=13.5 if ok else 12, weight=650 if ok else 400, fill=INK if ok else MUTED,
           title=str(hl.get("text", "")))
    return 86


def _empty(c: Canvas, y: float, msg: str) -> float:
    dash = ' stroke="#cbd2d9" stroke-dasharray="5 4" rx="8"'
    c.rect(20, y + 20, c.width - 40, 90, "#f5f7fa", dash)
    c.text(c.width / 2, y + 70, msg, size=14, fill=MUTED, anchor="middle")
    return y + 130


def _bars(
    c: Canvas,
    x: float,
    y: float,
    w: float,
    title: str,
    rows: list[tuple[str, int, str]],
    *,
    label_w: float,
    mono: bool = True,
) -> float:
    """Horizontal bars: (label, bytes, tooltip)."""
    c.text(x, y + 16, title, size=14, weight=650)
    y += 28
    if not rows:
        c.text(x, y + 14, "nothing recorded", size=12, fill=MUTED)
        return y + 24
    mx = max(max(r[1] for r in rows), 1)
    bar_w = w - label_w - 80
    chars = int(label_w / 7)
    for i, (label, val, tip) in enumerate(rows):
        yy = y + i * 22
        c.text(
            x + label_w - 8,
            yy + 14,
            clip(label, chars),
            size=12,
            anchor="end",
            mono=mono,
            title=tip,
        )
        color = OTHER_COLOR if label == OTHER else PALETTE[i % len(PALETTE)]
        c.rect(x + label_w, yy + 3, max(bar_w * val / mx, 1.5), 15, color, ' rx="2"')
        c.text(
            x + label_w + max(bar_w * val / mx, 1.5) + 6,
            yy + 15,
            fmt_bytes(val),
            size=11.5,
            fill=MUTED,
        )
    return y + len(rows) * 22 + 6


RSS = "#0b7285"
CENSUS = "#5f3dc4"


def _process_chart(c: Canvas, model: dict[str, Any], y: float) -> float:
    """The process's resident memory over time with its peak, and what the named
    variables retained at each census (stacked bars at the census times)."""
    p = model.get("process") or {}
    cs = model.get("census_series") or {}
    cens = model.get("censuses") or []
    if not p.get("rss") and not cens:
        return y
    width = c.width
    y += 20
    c.text(20, y + 14, "Process memory (resident) and what named variables retain (censuses)",
           size=14, weight=650)
    ml, mr, mt, ph = 80.0, 24.0, y + 30.0, 200.0
    pw = width - ml - mr
    span = max(model["span"], 1)
    named = [sum(v[i] for v in cs.get("values", [])) for i in range(len(cs.get("t", [])))]
    ymax = max([1, p.get("peak", -1), *p.get("rss", []), *named]) * 1.08
    X, Y, ymax = _time_axes(c, ml, mt, pw, ph, span, ymax)
    # census bars, stacked by variable
    bw = 10.0
    labels = cs.get("labels", [])
    base = [0.0] * len(cs.get("t", []))
    shown: list[tuple[str, str]] = []
    for gi, vals in enumerate(cs.get("values", [])):
        if max(vals, default=0) <= 0:
            continue
        key = cs["keys"][gi]
        color = OTHER_COLOR if key == "(other)" else PALETTE[gi % len(PALETTE)]
        shown.append((labels[gi], color))
        for ci, v in enumerate(vals):
            if v <= 0:
                continue
            x = min(max(ml, X(cs["t"][ci]) - bw / 2), ml + pw - bw)
            y0, y1 = Y(base[ci]), Y(base[ci] + v)
            c.add(f'<rect x="{x:.1f}" y="{y1:.1f}" width="{bw}" height="{max(y0 - y1, 0.5):.1f}" '
                  f'fill="{color}" fill-opacity="0.85"><title>{esc(labels[gi])}: '
                  f'{esc(fmt_bytes(v))} at {esc(fmt_ns(cs["t"][ci]))}</title></rect>')
            base[ci] += v
    # the resident-memory line (a sample holds until the next)
    ts, rss = p.get("t", []), p.get("rss", [])
    if rss:
        pts = []
        for i, (t, v) in enumerate(zip(ts, rss, strict=True)):
            if i:
                pts.append(f"{X(t):.1f},{Y(rss[i - 1]):.1f}")
            pts.append(f"{X(t):.1f},{Y(v):.1f}")
        c.add(f'<path d="M{"L".join(pts)}" fill="none" stroke="{RSS}" stroke-width="2">'
              "<title>resident memory of the process</title></path>")
    if p.get("peak", -1) >= 0 and p.get("peak_t", -1) >= 0:
        px, py = X(p["peak_t"]), Y(p["peak"])
        c.line(px, mt, px, mt + ph, LEAK, ' stroke-dasharray="4 3" stroke-width="1.2"')
        c.add(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{LEAK}"/>')
        right = px > ml + pw * 0.7
        c.text(px - 6 if right else px + 6, mt + 12,
               f"{LABEL_PEAK} {fmt_bytes(p['peak'])} at {fmt_ns(p['peak_t'])}",
               size=12, fill="#a61b1b", weight=650, anchor="end" if right else "start")
    last = -1e9
    for cz in cens:
        cx = X(cz["t"])
        tip = (f"census at {fmt_ns(cz['t'])} ({cz['reason']}): named variables retain "
               f"{fmt_bytes(cz['named'])}, resident {fmt_bytes(cz['rss'])}")
        c.add(f'<path d="M{cx:.1f},{mt + ph - 2:.1f}l-4,-7h8z" fill="{CENSUS}">'
              f"<title>{esc(tip)}</title></path>")
        if cx - last > 46:
            anchor = "end" if cx > ml + pw - 24 else "middle"
            c.text(cx, mt + ph - 12, cz["reason"], size=10, fill=CENSUS, anchor=anchor)
            last = cx
    y = mt + ph + 42
    lx: float = ml
    items = [(lbl, col, "box") for lbl, col in shown]
    if rss:
        items.append(("resident memory of the process", RSS, "line"))
    if cens:
        items.append((f"census ({len(cens)})", CENSUS, "tri"))
    for label, color, kind in items:
        item = clip(label, 34)
        wd = 22 + len(item) * 6.6
        if lx + wd > width - 20:
            lx = ml
            y += 18
        if kind == "line":
            c.line(lx, y - 4, lx + 12, y - 4, color, ' stroke-width="2"')
        elif kind == "tri":
            c.add(f'<path d="M{lx + 6:.1f},{y:.1f}l-5,-8h10z" fill="{color}"/>')
        else:
            c.rect(lx, y - 9, 11, 11, color, ' rx="2"')
        c.text(lx + 16, y, item, size=11.5, mono=kind == "box", title=label)
        lx += wd + 14
    return y + 8


def memory_svg(model: dict[str, Any], *, width: int = 1000) -> str:
    c = Canvas(width)
    y = _header(c, model, "Memory analysis: process memory, what names retain, bind-time sizes")
    o = model["overview"]
    if not o["binds"] and not (model.get("process") or {}).get("rss") and not model.get("censuses"):
        y = _empty(c, y + 10, "No bindings were recorded in this run: nothing to chart.")
        return c.render(y + 10, f"memscope memory analysis of {model['info']['name']}: empty run")

    y = _process_chart(c, model, y)
    # -- memory over time, stacked by variable --
    s = model["series"]
    grp = s["groups"]["var"]
    y += 20
    c.text(20, y + 14, f"Bytes {LABEL_BOUND}, stacked by variable", size=14, weight=650)
    c.text(
        width - 20,
        y + 14,
        "each step: the highest point of its interval",
        size=11,
        fill=MUTED,
        anchor="end",
    )
    ml, mr, mt, ph = 80.0, 24.0, y + 30.0, 220.0
    pw = width - ml - mr
    span = max(model["span"], 1)
    ymax = max(max(s["total"]) if s["total"] else 0, 1) * 1.08
    X, Y, ymax = _time_axes(c, ml, mt, pw, ph, span, ymax)
    ts, step = s["t"], s["step"]
    n = len(ts)
    base: list[float] = [0.0] * n
    for gi, vals in enumerate(grp["values"]):
        top = [base[i] + vals[i] for i in range(n)]
        pts = []
        for i in range(n):
            pts.append(f"{X(ts[i]):.1f},{Y(top[i]):.1f}")
            pts.append(f"{X(ts[i] + step):.1f},{Y(top[i]):.1f}")
        for i in range(n - 1, -1, -1):
            pts.append(f"{X(ts[i] + step):.1f},{Y(base[i]):.1f}")
            pts.append(f"{X(ts[i]):.1f},{Y(base[i]):.1f}")
        label = grp["labels"][gi]
        color = OTHER_COLOR if label == OTHER else PALETTE[gi % len(PALETTE)]
        c.add(
            f'<path d="M{"L".join(pts)}Z" fill="{color}" fill-opacity="0.85">'
            f"<title>{esc(label)}</title></path>"
        )
        base = top
    if o["peak_t"] >= 0:
        px, py = X(o["peak_t"]), Y(o["peak"])
        c.line(px, mt, px, mt + ph, "#868e96", ' stroke-dasharray="4 3" stroke-width="1.2"')
        c.add(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="#868e96"/>')
        right = px > ml + pw * 0.7
        c.text(
            px - 6 if right else px + 6,
            mt + 12,
            f"bind-time peak {fmt_bytes(o['peak'])} at {fmt_ns(o['peak_t'])}",
            size=12,
            fill="#495057",
            weight=650,
            anchor="end" if right else "start",
        )
    # legend
    y = mt + ph + 42
    lx: float = ml
    for gi, label in enumerate(grp["labels"]):
        color = OTHER_COLOR if label == OTHER else PALETTE[gi % len(PALETTE)]
        item = clip(label, 34)
        wd = 22 + len(item) * 6.6
        if lx + wd > width - 20:
            lx = ml
            y += 18
        c.rect(lx, y - 9, 11, 11, color, ' rx="2"')
        c.text(lx + 16, y, item, size=11.5, mono=True, title=label)
        lx += wd + 14
    y += 22

    # -- top variables: by what they retained at the census nearest the peak --
    censused = bool(model.get("censuses"))
    if censused:
        top = [r for r in model["vars"] if r["retained"] > 0][:12]  # ranked by retained
        title = "Top variables by retained bytes, at the census nearest the peak"
        val = "retained"
    else:
        top = sorted(model["vars"], key=lambda r: -r["peak"])[:12]
        title = f"Top variables by bytes {LABEL_BOUND} (no census in this capture)"
        val = "peak"
    rows = [
        (
            f"{r['scope']}.{r['var']}",
            r[val],
            f"{r['module']}:{r['scope']}.{r['var']} ({r['file']}:{r['line']}) "
            f"{', '.join(r['types'])}",
        )
        for r in top
    ]
    y = _bars(c, 20, y + 6, width - 40, title, rows, label_w=300)
    more = o["variables"] - len(rows)
    if more > 0:
        c.text(20, y + 6, f"+ {more:,} more variables", size=11, fill=MUTED)
        y += 14

    # -- types and scopes, side by side --
    half = (width - 60) / 2
    types = model["types"]
    trow = [(t["key"], t["peak"], f"{t['key']}: {t['binds']:,} binds") for t in types[:10]]
    if len(types) > 10:
        trow.append((OTHER, sum(t["peak"] for t in types[10:]), f"{len(types) - 10} more types"))
    srows_all = model["scopes"]
    srow = [
        (
            r["scope"] if r["module"] in ("__main__", "?") else f"{r['module']}:{r['scope']}",
            r["peak"],
            f"{r['key']}: {r['binds']:,} binds",
        )
        for r in srows_all[:10]
    ]
    if len(srows_all) > 10:
        srow.append((OTHER, sum(r["peak"] for r in srows_all[10:]), "smaller scopes"))
    y1 = _bars(c, 20, y + 10, half, "Types by peak bound at bind time", trow, label_w=170)
    y2 = _bars(c, 40 + half, y + 10, half, "Scopes by peak bound at bind time", srow, label_w=190)
    y = max(y1, y2) + 10
    c.text(
        20,
        y + 4,
        "Made by memscope. Times from the run's start. Retained: bytes freed if that name "
        "alone were dropped (a census's heap walk). Bind-time sizes are deep where recorded, "
        "else shallow.",
        size=10.5,
        fill=MUTED,
    )
    return c.render(y + 16, f"memscope memory analysis of {model['info']['name']}")


def timeline_svg(model: dict[str, Any], *, width: int = 1000, max_rows: int = 45) -> str:
    c = Canvas(width)
    y = _header(c, model, "Lifecycle timeline: how long each variable held its objects")
    g = model["gantt"]
    if not g["rows"]:
        y = _empty(c, y + 10, "No bindings were recorded in this run: no lifetimes to show.")
        return c.render(y + 10, f"memscope lifecycle timeline of {model['info']['name']}: empty")
    rows = g["rows"][:max_rows]
    omitted = g["omitted"] + len(g["rows"]) - len(rows)
    span = max(model["span"], 1)
    lw, mr = 260, 20
    pw = width - lw - mr
    y += 16
    # legend
    c.rect(20, y, 14, 9, "#2f6fdb", ' rx="2"')
    c.text(40, y + 9, "binding (name → object)", size=11.5, fill=MUTED)
    c.rect(210, y + 3, 14, 4, "#9aa5b1")
    c.text(230, y + 9, "object alive", size=11.5, fill=MUTED)
    c.rect(330, y, 14, 9, LEAK, ' rx="2"')
    c.text(350, y + 9, "leaked", size=11.5, fill=MUTED)
    y += 34

    def X(t: float) -> float:
        return lw + t / span * pw

    axis_y = y
    last_scope = None
    body: list[tuple[str, dict[str, Any]]] = []
    for r in rows:
        sk = f"{r['module']}:{r['scope']}"
        if sk != last_scope:
            body.append(("scope", r))
            last_scope = sk
        body.append(("row", r))
    height = sum(22 if k == "scope" else 20 for k, _ in body)
    for t in _nice_ticks(0, span, 8):
        c.line(X(t), axis_y, X(t), axis_y + height, "#eef1f4")
        c.text(X(t), axis_y - 6, fmt_ns(t), size=11, fill=MUTED, anchor="middle")
    maxb = max(max((r["peak"] for r in rows), default=1), 1)
    for kind, r in body:
        if kind == "scope":
            c.rect(0, y, width, 22, "#f0f3f7", ' fill-opacity="0.85"')
            name = r["scope"] if r["module"] == "__main__" else f"{r['module']} : {r['scope']}"
            c.text(10, y + 15, clip(name, 90), size=12, weight=650)
            y += 22
            continue
        color_label = LEAK if r["leak"] else INK
        c.text(
            24,
            y + 14,
            clip(r["var"], 30),
            size=12,
            mono=True,
            fill=color_label,
            title=f"{r['key']} · peak {fmt_bytes(r['peak'])} · {r['binds']:,} binds",
        )
        if r["leak"]:
            c.text(lw - 8, y + 14, "LEAK", size=10.5, fill=LEAK, weight=700, anchor="end")
        minw = 1.5 * span / pw  # merge what is closer than 1.5 px
        for segs, yy, hh, is_obj in ((r["objs"], y + 14, 4, True), (r["segs"], y + 3, 10, False)):
            merged: list[list[Any]] = []
            for s in segs:
                if merged and s[0] - merged[-1][1] < minw:
                    m = merged[-1]
                    m[1] = max(m[1], s[1])
                    m[2] = max(m[2], s[2])
                    m[3] += s[3]
                    m[4] = m[4] or s[4]
                else:
                    merged.append(list(s))
            for s0, s1, b, nn, flag in merged:
                x0 = X(s0)
                x1 = max(X(s1), x0 + 2)
                if is_obj:
                    fill, op = ("#f08080" if flag else "#9aa5b1"), 0.9
                else:
                    fill = LEAK if flag else "#2f6fdb"
                    op = 0.45 + 0.55 * math.sqrt(max(b, 0) / maxb)
                what = "object" if is_obj else "binding"
                tip = (
                    f"{what} {r['scope']}.{r['var']}: {fmt_ns(s0)} → {fmt_ns(s1)}, "
                    f"{fmt_bytes(b)}" + (f", {nn:,} merged" if nn > 1 else "")
                )
                # a tooltip where there is room to point at it (keeps big images small)
                inner = f"<title>{esc(tip)}</title>" if x1 - x0 >= 4 or len(merged) < 60 else ""
                c.add(
                    f'<rect x="{x0:.1f}" y="{yy}" width="{x1 - x0:.1f}" height="{hh}" rx="2" '
                    f'fill="{fill}" fill-opacity="{op:.2f}">{inner}</rect>'
                )
        c.line(0, y + 20, width, y + 20, "#f3f4f6")
        y += 20
    y += 18
    if omitted > 0:
        c.text(
            20,
            y,
            f"{len(rows)} largest variables shown; {omitted:,} smaller ones omitted.",
            size=11,
            fill=MUTED,
        )
        y += 16
    c.text(
        20,
        y + 2,
        "Made by memscope. Times are since the run's start.",
        size=10.5,
        fill=MUTED,
    )
    return c.render(y + 14, f"memscope lifecycle timeline of {model['info']['name']}")


def _write(path: Path | str, text: str) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(p)
    except BaseException:
        tmp.unlink(missing_ok=True)  # no half-written chart left behind
        raise
    return p


def write_memory_analysis(
    analysis: Analysis,
    path: Path | str,
    meta: dict[str, Any] | None = None,
    *,
    collector: Collector | None = None,
) -> Path:
    """Memory over time (stacked by variable), top variables, types and scopes.

    ``collector``: what was aggregated while the analysis streamed (``Collector.attach``),
    for an analysis that did not keep its history."""
    model = build_model(
        analysis, meta, buckets=400, top_k=8, max_vars=50, gantt_rows=0, collector=collector
    )
    return _write(path, memory_svg(model))


def write_lifecycle_timeline(
    analysis: Analysis,
    path: Path | str,
    meta: dict[str, Any] | None = None,
    *,
    collector: Collector | None = None,
) -> Path:
    """A Gantt of binding and object lifetimes, rows grouped by scope."""
    model = build_model(
        analysis,
        meta,
        max_vars=1,
        gantt_rows=45,
        gantt_resolution=500,
        with_series=False,
        collector=collector,
    )
    return _write(path, timeline_svg(model))


def _time_axes(c: Any, ml: float, mt: float, pw: float, ph: float, span: float,
               ymax: float) -> tuple[Callable[[float], float], Callable[[float], float], float]:
    """Draw a bytes-over-time chart's grid and axes; its X and Y scales, and the top of
    the byte axis (rounded up to its last tick)."""
    yt = _byte_ticks(ymax, 5)
    top = max(ymax, yt[-1])

    def X(t: float) -> float:
        return ml + t / span * pw

    def Y(v: float) -> float:
        return mt + ph - v / top * ph

    for v in yt:
        c.line(ml, Y(v), ml + pw, Y(v), "#eef1f4")
        c.text(ml - 8, Y(v) + 4, fmt_bytes(v), size=11, fill=MUTED, anchor="end")
    for t in _nice_ticks(0, span, 8):
        c.line(X(t), mt + ph, X(t), mt + ph + 4, "#cbd2d9")
        c.text(X(t), mt + ph + 17, fmt_ns(t), size=11, fill=MUTED, anchor="middle")
    c.line(ml, mt + ph, ml + pw, mt + ph, "#cbd2d9")
    return X, Y, top
