"""The dashboard in a real browser: headless Chromium (Debian's package) driven by
Playwright, on reports made by a real run of ``tests/report_demo_program.py``.

Each test checks one panel against the numbers of the capture, exercises sorting,
filtering and zoom, and saves a screenshot under ``test-artifacts/``. These tests do not
skip: without Chromium they fail and say how to install it (``.ci/run`` does).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from memscope.reporters import html
from memscope.reporters._charts import fmt_bytes, fmt_ns
from memscope.reporters._memory import LABEL_BOUND, LABEL_NAMED, LABEL_PEAK, LABEL_UNNAMED
from tests.report_helpers import HOSTILE, synthetic_analysis

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("MEMSCOPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Demo:
    dir: Path
    model: dict[str, Any]

    @property
    def dashboard(self) -> Path:
        return self.dir / "demo_dashboard.html"


@dataclass
class Watch:
    """What the page did besides rendering: requests, console errors, dialogs."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    out = tmp_path_factory.mktemp("demo")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for k in [k for k in env if k.startswith("MEMSCOPE_")]:
        del env[k]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "report_demo_program.py"), str(out), "hostile"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return Demo(out, json.loads((out / "model.json").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's `chromium` package "
            "(apt-get install -y chromium chromium-driver, as .ci/run does) or set "
            "MEMSCOPE_CHROMIUM"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def open_page(browser: Any, path: Path) -> tuple[Any, Watch]:
    watch = Watch()
    ctx = browser.new_context(viewport={"width": 1300, "height": 900}, device_scale_factor=1)
    ctx.set_default_timeout(120_000)  # a loaded CI machine, not a performance claim
    page = ctx.new_page()
    url = path.resolve().as_uri()

    def on_route(route: Any) -> None:
        req_url = route.request.url
        watch.requests.append(req_url)
        if req_url == url:
            route.continue_()
        else:
            route.abort()

    ctx.route("**/*", on_route)
    page.on("request", lambda r: r.url == url or watch.requests.append(r.url))
    page.on("console", lambda m: m.type in ("error", "warning") and watch.errors.append(m.text))
    page.on("pageerror", lambda e: watch.errors.append(str(e)))
    page.on("dialog", lambda d: (watch.dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    return page, watch


@pytest.fixture
def page(browser: Any, demo: Demo) -> Iterator[Any]:
    page, watch = open_page(browser, demo.dashboard)
    yield page
    page.evaluate("1")  # let pending events arrive
    assert watch.errors == []
    assert watch.dialogs == []
    assert [u for u in watch.requests if u != demo.dashboard.resolve().as_uri()] == []
    page.context.close()


def shot(page: Any, selector: str, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / f"{name}.png"
    page.locator(selector).screenshot(path=str(out))
    assert out.stat().st_size > 2000
    return out


def texts(page: Any, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.textContent)")  # type: ignore[no-any-return]


def drag(page: Any, selector: str, a: float, b: float) -> None:
    """Drag across the element from fraction a to fraction b of its width."""
    box = page.locator(selector).first.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * a, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * b, y, steps=6)
    page.mouse.up()


# ---- the page as a whole ---------------------------------------------------------------


def test_page_loads_offline_with_no_error_and_no_request(browser: Any, demo: Demo) -> None:
    page, watch = open_page(browser, demo.dashboard)
    assert page.title() == "memscope · demo"
    page.mouse.move(400, 400)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_timeout(200)
    assert watch.errors == []
    assert watch.dialogs == []
    assert watch.requests == [demo.dashboard.resolve().as_uri()]
    panels = page.eval_on_selector_all("section.panel", "els => els.map(e => e.id)")
    assert panels == [
        "overview", "memory", "variables", "lifecycle", "scopes", "leaks",
        "relationships", "buffers", "lanes",
    ]  # fmt: skip
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard_full.png"), full_page=True)
    page.context.close()


def test_overview_shows_the_capture_numbers(page: Any, demo: Demo) -> None:
    o = demo.model["overview"]

    def card(k: str) -> str:
        return page.locator(f'.card[data-k="{k}"] .v').text_content()  # type: ignore[no-any-return]

    # the headline: the process's real peak and what the names retain of it
    h = demo.model["headline"]
    assert h["status"] == "ok"
    assert page.locator("#headline-text").text_content() == h["text"]
    assert h["text"].startswith(f"named variables retain {fmt_bytes(h['named_bytes'])} of the "
                                f"{fmt_bytes(h['process_peak_bytes'])} process peak (")
    assert card(LABEL_PEAK) == fmt_bytes(h["process_peak_bytes"])
    assert card(LABEL_NAMED) == fmt_bytes(h["named_bytes"])
    assert card(LABEL_UNNAMED) == fmt_bytes(h["unnamed_bytes"])
    # the bind-time number stays, labelled for what it is
    assert card(LABEL_BOUND) == fmt_bytes(o["peak"])
    assert page.locator('.card[data-k="peak tracked memory"]').count() == 0
    bar = page.locator("#ov-headline .hl-bar .named")
    assert bar.is_visible()
    dl = page.locator("#ov-headline .hl-rows").text_content()
    assert LABEL_PEAK in dl and LABEL_BOUND in dl
    assert card("duration") == fmt_ns(o["duration"])
    assert card("variables") == str(o["variables"])
    assert card("bindings") == str(o["binds"])
    assert card("leaks") == "1"
    assert card("threads / tasks / processes") == f"{o['threads']} / {o['tasks']} / 1"
    info = page.locator("#ov-info").text_content()
    assert "mode: full" in info and "sampled: every binding" in info
    shot(page, "#overview", "dashboard_overview")


# ---- memory over time -------------------------------------------------------------------


def test_memory_chart_draws_the_process_line_peak_and_censuses(page: Any, demo: Demo) -> None:
    """By default, with censuses: what each name retained at each census, the resident
    memory line of the process over it, its peak, and a mark per census."""
    m = demo.model
    assert page.locator('#mem-layers button[data-layers="census"]').get_attribute("class") == "on"
    line = page.locator("#mem-chart path.rss-line")
    expect(line).to_have_count(1)
    assert int(line.get_attribute("data-points")) == len(m["process"]["t"]) > 1
    label = page.locator("#rss-peak-label").text_content()
    assert label == (f"{LABEL_PEAK} {fmt_bytes(m['process']['peak'])} at "
                     f"{fmt_ns(m['process']['peak_t'])}")
    reasons = page.eval_on_selector_all("#mem-chart g.census-mark",
                                        "els => els.map(e => e.dataset.reason)")
    assert reasons == [c["reason"] for c in m["censuses"]] and "snapshot" in reasons
    legend = texts(page, "#mem-legend .lbl")
    assert legend[0] == "load_rows.grown"  # bound empty, filled after: the census sees it
    assert "resident memory of the process" in legend and "census (heap walk)" in legend
    assert page.locator("#mem-chart g.census-layer rect").count() >= 2
    # the grouping applies to the bind-time layers only
    assert page.locator('#mem-groupings button[data-grouping="type"]').is_disabled()
    # scaled to the variables, the process line goes off the top (clipped, still there)
    page.click('#mem-scale button[data-scale="vars"]')
    expect(page.locator("#mem-chart path.rss-line")).to_have_count(1)
    page.click('#mem-scale button[data-scale="process"]')
    shot(page, "#memory", "dashboard_memory_census")
    # hover: the resident memory and the nearest census
    box = page.locator("#mem-chart .brush-area").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert "resident " in page.locator("#tip").text_content()


def test_memory_chart_stacks_by_grouping_marks_the_peak_and_zooms(page: Any, demo: Demo) -> None:
    s = demo.model["series"]
    page.click('#mem-layers button[data-layers="bind"]')
    legend = texts(page, "#mem-legend .lbl")
    labels = s["groups"]["var"]["labels"]
    drawn = min(10, len([x for x in labels if x != "(other)"]))  # 10 layers by default
    drawn += 1 if len(labels) > drawn else 0  # and (other), summing the rest
    assert len(legend) == drawn + 2  # + the line and the censuses
    assert legend[0] == "numeric.matrix"  # the largest variable first
    assert "load_rows.kept" in legend
    assert len(page.query_selector_all("#mem-chart path.layer")) == len(legend) - 2
    peak = demo.model["overview"]
    label = page.locator("#peak-label").text_content()
    assert label.startswith(f"bind-time peak {fmt_bytes(peak['peak'])} at ")
    expect(page.locator("#mem-chart path.rss-line")).to_have_count(1)  # over these too
    shot(page, "#memory", "dashboard_memory")

    page.click('#mem-groupings button[data-grouping="type"]')
    legend = texts(page, "#mem-legend .lbl")
    assert legend[0] == "numpy.ndarray"
    assert "__main__.RowCache" in legend
    page.click('#mem-groupings button[data-grouping="thread"]')
    assert set(texts(page, "#mem-legend .lbl")) >= {"MainThread", "worker-2"}
    page.click('#mem-groupings button[data-grouping="scope"]')
    assert "numeric" in texts(page, "#mem-legend .lbl")

    # hover: a tooltip with the total at that point
    box = page.locator("#mem-chart .brush-area").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert page.locator("#tip").is_visible()
    assert "total" in page.locator("#tip").text_content()

    # brush to zoom: the time axis narrows; reset restores it
    ticks_before = texts(page, "#mem-chart .axis text")
    assert page.locator("#mem-reset").is_disabled()
    drag(page, "#mem-chart .brush-area", 0.30, 0.45)
    assert page.locator("#mem-reset").is_enabled()
    ticks_after = texts(page, "#mem-chart .axis text")
    assert ticks_after != ticks_before
    shot(page, "#memory", "dashboard_memory_zoomed")
    page.click("#mem-reset")
    assert page.locator("#mem-reset").is_disabled()
    assert texts(page, "#mem-chart .axis text") == ticks_before


# ---- variables table --------------------------------------------------------------------


def column(page: Any, i: int) -> list[str]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "#var-table tbody tr.row", f"rows => rows.map(r => r.children[{i}].firstChild.textContent)"
    )


def test_variables_table_sorts_filters_and_expands_history(page: Any, demo: Demo) -> None:
    rows = demo.model["vars"]
    names = column(page, 0)
    assert len(names) == len(rows)
    # by retained at the census nearest the peak, then the most retained, then bind time
    assert page.get_attribute('#var-table th[data-key="retained"]', "aria-sort") == "descending"
    want = sorted(rows, key=lambda r: (-r["retained"], -r["retained_max"], -r["peak"]))
    assert names == [r["var"] for r in want]
    heads = texts(page, "#var-table thead th")
    assert heads[4:11] == ["retained", "max retained", "shared", "shallow", "bound at bind",
                           "shallow at bind", "deep at bind"]
    first = page.locator("#var-table tbody tr.row").first
    cells = first.locator("td").all_text_contents()
    top = want[0]
    assert cells[0].startswith("grown") and cells[1] == "load_rows" and cells[3] == "list"
    assert cells[4] == fmt_bytes(top["retained"]) and top["retained"] > 100 * top["peak"]
    assert cells[5] == fmt_bytes(top["retained_max"])
    assert cells[7] == fmt_bytes(top["census_shallow"])
    assert cells[8] == fmt_bytes(top["peak"])  # an empty list when it was bound
    matrix = next(r for r in rows if r["var"] == "matrix")
    mcells = page.locator('#var-table tr.row[data-key="__main__:numeric:matrix"] td')
    mcells = mcells.all_text_contents()
    assert mcells[4] == "—"  # not live at the census
    assert mcells[8] == fmt_bytes(matrix["peak"]) and mcells[9] == fmt_bytes(matrix["shallow"])
    assert mcells[10] == fmt_bytes(matrix["deep"])
    # a row's detail: what the censuses found it retaining over time
    page.click('#var-table tr.row[data-key="__main__:load_rows:grown"]')
    detail = page.locator('#var-table .census-detail[data-census-of="__main__:load_rows:grown"]')
    assert detail.is_visible()
    assert detail.locator("circle.census-point").count() == len(top["census"]) >= 1
    assert f"{fmt_bytes(top['census'][0][1])} at {fmt_ns(top['census'][0][0])}" in \
        detail.text_content()
    shot(page, "#variables", "dashboard_variables_census")
    page.click('#var-table tr.row[data-key="__main__:load_rows:grown"]')
    # the leaked variable is flagged, aliases are listed
    kept = page.locator('#var-table tr.row[data-key="__main__:load_rows:kept"]')
    assert "leak" in kept.get_attribute("class")
    rows_row = page.locator('#var-table tr.row[data-key="__main__:load_rows:rows"]')
    assert "load_rows.view" in rows_row.locator("td").nth(13).text_content()
    shot(page, "#variables", "dashboard_variables")

    # sort by name, ascending then descending
    page.click('#var-table th[data-key="var"]')
    assert column(page, 0) == sorted(names, key=str.lower)
    assert page.get_attribute('#var-table th[data-key="var"]', "aria-sort") == "ascending"
    page.click('#var-table th[data-key="var"]')
    assert column(page, 0) == sorted(names, key=str.lower, reverse=True)
    # sort by lifetime (numeric)
    page.click('#var-table th[data-key="lifetime"]')
    want = [r["var"] for r in sorted(rows, key=lambda r: -r["lifetime"])]
    assert column(page, 0) == want

    # filter
    page.fill("#var-filter", "numeric")
    expect(page.locator("#var-table tbody tr.row")).to_have_count(3)
    assert sorted(column(page, 0)) == ["matrix", "raw", "window"]
    assert "showing 3 of 3" in page.locator("#var-count").text_content()
    page.fill("#var-filter", "RowCache")
    expect(page.locator("#var-table tbody tr.row")).to_have_count(1)
    assert column(page, 0) == ["kept"]
    page.fill("#var-filter", "no such variable")
    expect(page.locator("#var-table tbody tr.row")).to_have_count(0)
    assert "No variable matches" in page.locator("#var-table tbody").text_content()
    page.fill("#var-filter", "worker")

    # expand a row to its history: one line per binding (chunk was bound twice)
    expect(page.locator("#var-table tbody tr.row")).to_have_count(1)
    page.click('#var-table tr.row[data-key="__main__:worker:chunk"]')
    hist = page.locator('#var-table tr.hist[data-history-of="__main__:worker:chunk"]')
    assert hist.is_visible()
    lines = hist.locator("table.mini tr").all_text_contents()
    assert len(lines) == 1 + 2
    assert all("scope exit" in ln and "bytes" in ln for ln in lines[1:])
    cells = {c for c in hist.locator("table.mini td").all_text_contents()}
    assert {"worker-1", "worker-2"} <= cells
    shot(page, "#variables", "dashboard_variables_history")
    page.click('#var-table tr.row[data-key="__main__:worker:chunk"]')
    assert hist.count() == 0


# ---- lifecycle --------------------------------------------------------------------------


def test_lifecycle_gantt_rows_leak_and_zoom(page: Any, demo: Demo) -> None:
    g = demo.model["gantt"]
    labels = texts(page, "#gantt .var-label")
    assert sorted(labels) == sorted(r["var"] for r in g["rows"])
    scopes = texts(page, "#gantt .scope-label")
    assert scopes[:2] == ["load_rows", "numeric"]  # in order of first activity
    leak = page.locator("#gantt .gantt-row.leak")
    assert leak.count() == 1 and leak.get_attribute("data-key") == "__main__:load_rows:kept"
    assert page.locator('#gantt .gantt-row.leak rect[fill="#f08080"]').count() == 1  # leaked object
    assert page.locator("#gantt rect.seg-bind").count() >= len(g["rows"])
    shot(page, "#lifecycle", "dashboard_lifecycle")

    before = texts(page, "#gantt .axis text")
    drag(page, "#gantt .brush-area", 0.4, 0.5)
    assert page.locator("#gantt-reset").is_enabled()
    after = texts(page, "#gantt .axis text")
    assert after != before
    shot(page, "#lifecycle", "dashboard_lifecycle_zoomed")
    page.click("#gantt-reset")
    assert texts(page, "#gantt .axis text") == before


# ---- scopes, leaks, relationships, buffers, lanes ----------------------------------------


def test_scopes_icicle_and_table(page: Any, demo: Demo) -> None:
    names = page.eval_on_selector_all("#icicle g.ice", "els => els.map(e => e.dataset.name)")
    assert names[:2] == ["<all>", "__main__"]
    assert {"load_rows", "numeric", "fetch", "worker"} <= set(names)
    rows = page.locator("#scope-table tbody tr").all()
    assert len(rows) == len(demo.model["scopes"])
    top = demo.model["scopes"][0]
    assert rows[0].locator("td").all_text_contents()[0] == top["scope"]
    assert rows[0].locator("td").all_text_contents()[4] == fmt_bytes(top["peak"])
    shot(page, "#scopes", "dashboard_scopes")


def test_leaks_show_where_created_and_the_holder_chain(page: Any, demo: Demo) -> None:
    cards = page.locator(".leakcard")
    assert cards.count() == 1
    card = cards.first
    assert card.get_attribute("data-var") == "kept"
    assert "load_rows.kept" in card.locator("h3").text_content()
    assert "__main__.RowCache" in card.locator("h3").text_content()
    where = card.locator(".where").text_content()
    assert "report_demo_program.py:" in where
    # the check ran at exit, after the last event: the run's end, not a time past it
    (lk,) = demo.model["leaks"]
    assert lk["at_end"] and lk["t"] == demo.model["span"]
    assert "found at the run's end" in where
    chain = card.locator(".chain li").all_text_contents()
    assert any("_CACHE" in h and "__main__" in h for h in chain)
    shot(page, "#leaks", "dashboard_leaks")


def test_relationships_graph(page: Any, demo: Demo) -> None:
    ids = page.eval_on_selector_all("#graph g.node", "els => els.map(e => e.dataset.id)")
    assert {"load_rows.rows", "load_rows.view", "load_rows.kept"} <= set(ids)
    assert any("_CACHE" in i for i in ids)
    assert page.locator("#graph line.edge-alias").count() >= 1
    assert page.locator("#graph line.edge-holds").count() >= 1
    shot(page, "#relationships", "dashboard_relationships")


def test_buffers_and_views(page: Any, demo: Demo) -> None:
    keys = page.eval_on_selector_all("#buf-table tbody tr", "els => els.map(e => e.dataset.key)")
    assert set(keys) == {f"__main__:numeric:{v}" for v in ("matrix", "window", "raw")}
    matrix = page.locator('#buf-table tr[data-key="__main__:numeric:matrix"] td')
    matrix = matrix.all_text_contents()
    assert matrix[2] == "numpy.ndarray" and matrix[3].startswith("0x")
    assert matrix[4] == fmt_bytes(200 * 300 * 8)
    assert "numeric.window" in matrix[8]  # the slice shares the matrix's buffer
    raw = page.locator('#buf-table tr[data-key="__main__:numeric:raw"] td').all_text_contents()
    assert raw[4] == fmt_bytes(64 * 1024) and raw[8] == "—"
    shot(page, "#buffers", "dashboard_buffers")


def test_threads_tasks_and_processes_lanes(page: Any, demo: Demo) -> None:
    lanes = page.eval_on_selector_all(
        "#lane-chart g.lane", "els => els.map(e => e.dataset.kind + ':' + e.dataset.key)"
    )
    assert {"thread:MainThread", "thread:worker-1", "thread:worker-2", "task:Task-1"} <= set(lanes)
    worker = page.locator('#lane-chart g.lane[data-key="worker-2"]').text_content()
    assert "1 binds" in worker and fmt_bytes(40_000 + 33) in worker
    assert "process " in page.locator("#proc-list").text_content()
    shot(page, "#lanes", "dashboard_lanes")


# ---- hostile names and large captures ------------------------------------------------------


def test_hostile_names_render_as_inert_text(browser: Any, tmp_path: Path) -> None:
    an = synthetic_analysis(8_000, hostile=True)
    (path,) = html.write(an, tmp_path, "hostile", {"mode": HOSTILE, "python": HOSTILE})
    page, watch = open_page(browser, path)
    page.fill("#var-filter", "</script>")
    page.wait_for_timeout(300)
    page.click("#var-table tbody tr.row >> nth=0")
    page.mouse.move(600, 300)
    # nothing executed: no dialog, no injected element or handler anywhere in the DOM
    assert watch.dialogs == [] and watch.errors == []
    assert page.evaluate("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert (
        page.evaluate(
            "[...document.querySelectorAll('*')].filter(e => [...e.attributes]"
            ".some(a => a.name.startsWith('on'))).length"
        )
        == 0
    )
    assert page.evaluate("document.querySelectorAll('script').length") == 3
    # the third is the raw detail: inert data, never run
    assert (
        page.evaluate(
            "document.querySelectorAll('script[type=\"application/octet-stream\"]').length"
        )
        == 1
    )
    # and the names are shown as they are
    assert any(v.startswith(HOSTILE + "var") for v in column(page, 0))
    assert HOSTILE in page.locator("#ov-info").text_content()
    assert watch.requests == [path.resolve().as_uri()]
    shot(page, "#variables", "dashboard_hostile_names")
    page.context.close()


def test_large_capture_opens_and_stays_usable(browser: Any, tmp_path: Path) -> None:
    an = synthetic_analysis(150_000)
    (path,) = html.write(an, tmp_path, "large", {"mode": "fast"})
    page, watch = open_page(browser, path)
    assert page.locator("#var-table tbody tr.row").count() == 300  # first page of rows
    assert f"of {len(an.vars)} matching" in page.locator("#var-count").text_content()
    page.click("#var-table tbody tr.row >> nth=-1")  # the "show more" row is after it
    page.click("#var-table tbody tr:not(.hist) > td > button.btn")  # "show more"
    assert page.locator("#var-table tbody tr.row").count() == min(600, len(an.vars))
    assert page.locator("#gantt .var-label").count() == 80
    assert "smaller ones are in the table" in page.locator("#gantt-note").text_content()
    drag(page, "#gantt .brush-area", 0.1, 0.2)
    drag(page, "#mem-chart .brush-area", 0.1, 0.2)
    assert watch.errors == [] and watch.dialogs == []
    shot(page, "#memory", "dashboard_large_memory")
    page.context.close()


def test_svg_charts_render_as_images(browser: Any, demo: Demo) -> None:
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    for name in ("demo_memory.svg", "demo_timeline.svg"):
        data = base64.b64encode((demo.dir / name).read_bytes()).decode()
        src = f"data:image/svg+xml;base64,{data}"
        page.set_content(f'<body style="margin:0"><img id="i" src="{src}">')
        page.wait_for_function("document.getElementById('i').complete")
        assert page.evaluate("document.getElementById('i').naturalWidth") == 1000
        assert page.evaluate("document.getElementById('i').naturalHeight") > 300
        shot(page, "#i", "svg_" + name.removesuffix(".svg"))
    page.close()


# ---- raw detail on demand ---------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_page_path(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    an = synthetic_analysis(20_000)
    out = tmp_path_factory.mktemp("raw")
    (path,) = html.write(an, out, "raw", {"mode": "full"})
    return path, an


def test_expanded_row_shows_the_full_history_from_raw_detail(
    browser: Any, raw_page_path: tuple[Path, Any]
) -> None:
    path, an = raw_page_path
    page, watch = open_page(browser, path)
    model = json.loads(page.text_content("#memscope-data"))
    row = max(model["vars"], key=lambda r: r["binds"])
    assert row["binds"] > len(row["history"]) == 25  # more than the aggregate keeps
    want = sorted((b for b in an.all_bindings() if b.key == row["key"]), key=lambda b: b.t_bind)
    assert len(want) == row["binds"]
    page.fill("#var-filter", row["var"])
    sel = f'#var-table tr.row[data-key="{row["key"]}"]'
    expect(page.locator("#var-table tbody tr.row")).to_have_count(1)
    page.click(sel)
    hist = page.locator(f'#var-table tr.hist[data-history-of="{row["key"]}"]')
    assert page.get_attribute("body", "data-raw-ms") is None  # nothing decoded yet
    hist.locator(".full-history button").click()
    full = hist.locator("table.mini.full")
    expect(full).to_be_visible()
    pages = -(-len(want) // 100)
    info = hist.locator(".page-info").text_content()
    assert f"all {len(want):,} bindings" in info and f"page 1 of {pages}" in info
    # every binding, in bind order, page by page: the bytes column matches the replay
    seen: list[str] = []
    for p in range(pages):
        rows = full.locator("tr").all()
        for r in rows[1:]:
            seen.append(r.locator("td").nth(5).text_content())
        if p < pages - 1:
            hist.locator('button[data-act="next"]').click()
            expect(hist.locator(".page-info")).to_contain_text(f"page {p + 2} of {pages}")
            full = hist.locator("table.mini.full")
    assert seen == [fmt_bytes(b.bytes) for b in want]
    assert page.get_attribute("body", "data-raw-ms") is not None
    shot(page, "#variables", "dashboard_full_history")
    assert watch.errors == [] and watch.dialogs == []
    assert [u for u in watch.requests if u != path.resolve().as_uri()] == []
    page.context.close()


def test_narrow_zoom_redraws_the_total_from_raw_bindings(
    browser: Any, raw_page_path: tuple[Path, Any]
) -> None:
    path, an = raw_page_path
    page, watch = open_page(browser, path)
    model = json.loads(page.text_content("#memscope-data"))
    span = model["span"]
    # zoom three times by 1/10: below 200 buckets of the 1,200
    for _ in range(3):
        drag(page, "#mem-chart .brush-area", 0.45, 0.55)
    line = page.locator("#mem-chart path.raw-total")
    expect(line).to_have_count(1)
    note = page.locator("#mem-raw-note")
    assert "full resolution" in note.text_content()
    # the exact total in the zoomed range, from a brute-force replay of the bindings
    lo_hi = page.evaluate(
        "() => Array.from(document.querySelectorAll('#mem-chart .axis text')).length"
    )
    assert lo_hi > 0
    best = int(float(note.get_attribute("data-raw-max")))
    bindings = an.all_bindings()
    t0 = an.t_first
    totals = [brute_force_total(bindings, b.t_bind) for b in bindings]
    assert best in totals  # a state the run really had
    assert 0 < best <= an.peak_bytes
    assert int(line.get_attribute("data-points")) > 1
    shot(page, "#memory", "dashboard_memory_raw_zoom")
    assert watch.errors == [] and watch.dialogs == []
    assert span > 0 and t0 >= 0
    page.context.close()


def brute_force_total(bindings: list[Any], t: int) -> int:
    latest: dict[int, tuple[int, int]] = {}
    for b in bindings:
        end = b.t_unbind if b.t_unbind >= 0 else 1 << 62
        if b.t_bind <= t < end and (b.oid not in latest or latest[b.oid][0] <= b.t_bind):
            latest[b.oid] = (b.t_bind, b.bytes)
    return sum(v for _, v in latest.values())


@pytest.mark.parametrize("panel", ["memory", "variables", "scopes", "leaks", "lanes"])
def test_a_nav_click_leaves_the_panel_heading_below_the_sticky_header(
    page: Any, panel: str
) -> None:
    """Issue 17: the heading of the panel a nav link goes to was under the header."""
    page.click(f'nav a[href="#{panel}"]')
    page.wait_for_timeout(300)  # the jump to the anchor
    header = page.locator("header.top").bounding_box()
    heading = page.locator(f"#{panel} h2").bounding_box()
    assert heading["y"] >= header["y"] + header["height"], (heading, header)


def test_the_scope_chart_says_what_its_boxes_sum(page: Any, demo: Demo) -> None:
    """The icicle's root sums every scope's own peak (each at its own moment), which
    can exceed the run's peak: the chart says so rather than a bare "<all> 161 KiB"."""
    root = page.locator('#icicle g.ice[data-name="<all>"] text').text_content()
    assert root.startswith("all scopes: Σ of each scope's peak")
    note = page.locator("#icicle-note").text_content()
    assert "sum of the peaks of the scopes under it" in note
    assert fmt_bytes(demo.model["overview"]["peak"]) in note


def test_the_other_band_can_be_opened(browser: Any, tmp_path: Path) -> None:
    """Issue 17: the grey "(other)" band dominated the chart. Its legend names what it
    sums, 10, 20 or 30 layers can be drawn, and a click on "(other)" draws 10 more."""
    an = synthetic_analysis(60_000)
    (path,) = html.write(an, tmp_path, "many", {"mode": "fast"})
    page, watch = open_page(browser, path)
    page.click('#mem-layers button[data-layers="bind"]')

    def layers() -> list[str]:
        return page.eval_on_selector_all("#mem-chart path.layer",
                                         "els => els.map(e => e.dataset.label)")

    assert len(layers()) == 11 and layers()[-1] == "(other)"
    other = page.locator("#mem-legend .item.other")
    title = other.get_attribute("title")
    eleventh = sorted(an.vars.values(), key=lambda v: -v.peak_bytes)[10]
    assert title.startswith("(other) sums ") and f"{eleventh.scope}.{eleventh.var}" in title
    page.click('#mem-top button[data-top="20"]')
    assert len(layers()) == 21 and layers()[-1] == "(other)"
    other.click()
    assert len(layers()) == 31
    assert page.locator('#mem-top button[data-top="30"]').get_attribute("class") == "on"
    assert watch.errors == [] and watch.dialogs == []
    shot(page, "#memory", "dashboard_other_opened")
    page.context.close()
