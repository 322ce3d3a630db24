"""HTML dashboard benchmark (not a test): a capture of 10^6 events, written and opened.

Measures: the replay (``Analysis``, not the reporter's own work, shown for scale), the
time to write the dashboard and both SVG charts, the dashboard's size, and in headless
Chromium (Debian's package, driven by Playwright) the time from navigation to every
panel drawn, plus the cost of the interactions (switching the stacking, sorting the
table, zooming the memory chart and the Gantt).

    .venv/bin/python benchmarks/bench_html.py [--events 1000000] [--out DIR]

``--peaks 100000,1000000`` instead measures the peak memory of ``memscope report``
(``-f json``, ``html``, ``svg``: tracemalloc and max RSS, each in a fresh process) on
synthetic captures of those sizes, with ``--peaks-baseline REV`` side by side with the
reporters of git revision REV.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_browser_dashboard import CHROMIUM_ARGS  # noqa: E402  (one list of flags)

TIMED_CLICK = """(sel) => {
  const t = performance.now();
  document.querySelector(sel).click();
  void document.body.offsetHeight;  // include style and layout
  return performance.now() - t;
}"""


def peaks_only(args: argparse.Namespace, out: Path) -> None:
    """Peak memory of each reporter on synthetic captures of several sizes."""
    from benchmarks.bench_capture import peaks
    from memscope.capture.writer import write_capture
    from tests.report_helpers import synthetic_events

    kinds = [k for k in args.kinds.split(",") if k]
    table = []
    for n in (int(x) for x in args.peaks.split(",")):
        cap = write_capture(
            out / f"synthetic_{n}.memscope", synthetic_events(n), export_mode="full",
            runtime_mode="full", start_ns=1,
        )  # fmt: skip
        print(f"{n:,} events:", file=sys.stderr, flush=True)
        for kind, sides in peaks(cap, out, kinds, args.peaks_baseline,
                                 not args.untraced).items():
            for side, r in sides.items():
                table.append((n, kind, side, r))
        cap.unlink()
    print("| events | reporter | side | traced peak | max RSS | seconds |")
    print("|---:|---|---|---:|---:|---:|")
    for n, kind, side, r in table:
        print(f"| {n:,} | {kind} | {side} | {r['peak_bytes'] / 1e6:.1f} MB | "
              f"{r['max_rss_bytes'] / 1e6:.0f} MB | {r['seconds']:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--peaks", default=None, help="event counts: reporter peak memory only")
    ap.add_argument("--peaks-baseline", default=None, help="git revision measured alongside")
    ap.add_argument("--kinds", default="json,html,svg")
    ap.add_argument("--untraced", action="store_true", help="with --peaks: no tracemalloc")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_html_"))
    if args.peaks:
        peaks_only(args, out)
        return

    from memscope.analysis import Analysis
    from memscope.reporters import html, svg
    from tests.report_helpers import synthetic_events

    t = time.perf_counter()
    events = synthetic_events(args.events)
    t_gen = time.perf_counter() - t
    from memscope.capture.writer import write_capture
    from memscope.reporters import report

    cap = write_capture(out / "bench.memscope", events, export_mode="full",
                        runtime_mode="full", start_ns=1)
    t = time.perf_counter()
    report([cap], out / "streamed", "bench", "html")
    t_report = time.perf_counter() - t
    t = time.perf_counter()
    an = Analysis().feed_all(events)
    t_an = time.perf_counter() - t
    del events
    t = time.perf_counter()
    (page_path,) = html.write(an, out, "bench", {"mode": "full"})
    t_html = time.perf_counter() - t
    t = time.perf_counter()
    svg.write_memory_analysis(an, out / "bench_memory.svg", {})
    t_svg1 = time.perf_counter() - t
    t = time.perf_counter()
    svg.write_lifecycle_timeline(an, out / "bench_timeline.svg", {})
    t_svg2 = time.perf_counter() - t

    rows = [
        ("events (synthetic, capture vocabulary)", f"{an.events:,}"),
        ("bindings / variables / scopes",
         f"{an.binds:,} / {len(an.vars):,} / {len(an.by_scope):,}"),
        ("generate events (not measured code)", f"{t_gen:.2f} s"),
        ("replay into Analysis (analysis.py, for scale)", f"{t_an:.2f} s"),
        ("memscope report -f html from the capture (replay + dashboard, streamed)",
         f"{t_report:.2f} s"),
        ("write dashboard (html.write)", f"{t_html:.2f} s"),
        ("dashboard size", f"{page_path.stat().st_size / 1e6:.2f} MB"),
        ("write memory-analysis SVG", f"{t_svg1:.2f} s, "
         f"{(out / 'bench_memory.svg').stat().st_size / 1e3:.0f} kB"),
        ("write lifecycle-timeline SVG", f"{t_svg2:.2f} s, "
         f"{(out / 'bench_timeline.svg').stat().st_size / 1e3:.0f} kB"),
    ]

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        opens = []
        for _ in range(3):
            page = b.new_page(viewport={"width": 1300, "height": 900})
            t = time.perf_counter()
            page.goto(page_path.resolve().as_uri())
            page.wait_for_selector("body[data-ready='1']", timeout=120_000)
            wall = time.perf_counter() - t
            render_ms = int(page.get_attribute("body", "data-render-ms") or 0)
            opens.append((wall, render_ms))
            last = page
        wall = sorted(o[0] for o in opens)[1]
        render_ms = sorted(o[1] for o in opens)[1]
        rows.append(("open in Chromium: navigation to all panels drawn (median of 3)",
                     f"{wall:.2f} s (page's own clock: {render_ms} ms)"))
        page = last
        for label, sel in (
            ("switch stacking to type", '#mem-groupings button[data-grouping="type"]'),
            ("switch stacking to variable", '#mem-groupings button[data-grouping="var"]'),
            ("sort the variables table by name", '#var-table th[data-key="var"]'),
            ("sort the variables table by lifetime", '#var-table th[data-key="lifetime"]'),
        ):
            ms = page.evaluate(TIMED_CLICK, sel)
            rows.append((label, f"{ms:.0f} ms"))
        for label, sel in (("zoom the memory chart (drag)", "#mem-chart .brush-area"),
                           ("zoom the Gantt (drag)", "#gantt .brush-area")):
            box = page.locator(sel).bounding_box()
            y = box["y"] + min(box["height"] / 2, 200)
            page.mouse.move(box["x"] + box["width"] * 0.3, y)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.4, y, steps=2)
            t = time.perf_counter()
            page.mouse.up()
            page.evaluate("document.body.offsetHeight")
            rows.append((label, f"{(time.perf_counter() - t) * 1000:.0f} ms (wall, incl. IPC)"))
        # raw detail on demand: expand the first row, ask for its full history
        page.click("#var-table tbody tr.row >> nth=0")
        t = time.perf_counter()
        page.click("#var-table tr.hist .full-history button")
        page.wait_for_selector("#var-table table.mini.full", timeout=120_000)
        wall_raw = time.perf_counter() - t
        raw_ms = page.get_attribute("body", "data-raw-ms")
        rows.append(("raw detail: first full history (decode every binding, once)",
                     f"{wall_raw * 1000:.0f} ms (decode by the page's clock: {raw_ms} ms)"))
        b.close()

    print("| measure | result |")
    print("|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    print(f"\noutputs in {out}")


if __name__ == "__main__":
    main()
