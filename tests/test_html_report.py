"""The HTML dashboard writer: structure, offline-ness, escaping, aggregation, large input."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import memscope
from memscope.analysis import Analysis
from memscope.events import (
    BIND,
    ENTER,
    EXIT,
    PROC,
    SCOPE,
    SITE,
    THREAD,
    TYPE,
    BindKind,
    ScopeKind,
)
from memscope.reporters import _charts, html
from memscope.reporters._format import shown
from tests.report_helpers import HOSTILE, HOSTILE_ALL, synthetic_analysis, synthetic_events

DATA_RE = re.compile(
    r'<script type="application/json" id="memscope-data">(.*?)</script>', re.DOTALL
)


def embedded_model(page: str) -> dict[str, Any]:
    blocks = DATA_RE.findall(page)
    assert len(blocks) == 1
    return json.loads(blocks[0])  # type: ignore[no-any-return]


@memscope.track_scope("build_index")
def build_index() -> None:
    table = [str(i) for i in range(3000)]
    memscope.track_var(table)
    alias = table
    memscope.track_var(alias)
    blob = bytearray(40_000)
    memscope.track_var(blob)


def real_analysis(full: Any) -> Analysis:
    """A small real run through the explicit API, recorded by the ``full`` fixture."""
    build_index()
    with memscope.track_scope("report"):
        summary = {"rows": 3000}
        memscope.track_var(summary)
    return full.analysis()  # type: ignore[no-any-return]


def test_writes_one_self_contained_file(full: Any, tmp_path: Path) -> None:
    an = real_analysis(full)
    paths = html.write(an, tmp_path / "out", "run1", {"mode": "full", "python": "3.11"})
    assert paths == [tmp_path / "out" / "run1_dashboard.html"]
    page = paths[0].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # nothing is loaded from anywhere: no src/href attributes, no @import, no url()
    assert not re.search(r"<(script|link|img|iframe)[^>]*\s(src|href)=", page, re.I)
    assert "@import" not in page and "url(http" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert page.count("<script") == 3  # the data block, the raw detail, the renderer
    model = embedded_model(page)
    names = {(r["scope"], r["var"]) for r in model["vars"]}
    assert {("build_index", "table"), ("build_index", "alias"), ("build_index", "blob")} <= names
    assert model["overview"]["peak"] == an.peak_bytes > 0
    assert model["info"]["mode"] == "full"
    # the alias relationship and the buffer are in the model
    assert {"build_index.table", "build_index.alias"} <= {n["id"] for n in model["graph"]["nodes"]}
    assert any(b["var"] == "blob" and b["bufsize"] == 40_000 for b in model["buffers"])
    # no values/reprs: the strings of the program's data never reach the report
    assert "rows" not in {r["var"] for r in model["vars"]}


def test_meta_is_optional_and_odd_values_are_tolerated(tmp_path: Path) -> None:
    an = synthetic_analysis(2_000)
    for meta in ({}, {"counters": "not a dict", "pids": None, "weird": object()}, None):
        (p,) = html.write(an, tmp_path, "m", meta)  # type: ignore[arg-type]
        model = embedded_model(p.read_text(encoding="utf-8"))
        assert model["info"]["name"] == "m"
        assert model["info"]["counters"] == {}


def test_empty_run_gives_a_page_that_says_so(tmp_path: Path) -> None:
    (p,) = html.write(Analysis(), tmp_path, "empty", {})
    model = embedded_model(p.read_text(encoding="utf-8"))
    assert model["overview"]["binds"] == 0
    assert model["vars"] == [] and model["gantt"]["rows"] == []


def test_hostile_names_are_escaped_everywhere(tmp_path: Path) -> None:
    an = synthetic_analysis(5_000, hostile=True)
    (p,) = html.write(an, tmp_path, "x", {"mode": HOSTILE, "python": HOSTILE, HOSTILE: HOSTILE})
    page = p.read_text(encoding="utf-8")
    # only the page's own three script elements close; no hostile markup survives raw
    assert page.count("</script>") == 3
    assert page.count("<script") == 3
    for bad in ("<img", "<svg onload", "<!--", "<x>", "\u2028"):
        assert bad not in page
    # yet the data round-trips: names are shown as text, unchanged but for characters
    # that hide or reorder text (here the line separators), shown as their escapes
    model = embedded_model(page)
    text = json.dumps(model)
    for h in HOSTILE_ALL:
        assert json.dumps(shown(h))[1:-1] in text
    assert any(r["var"].startswith(HOSTILE) for r in model["vars"])
    assert model["info"]["mode"] == HOSTILE
    holders = model["leaks"][0]["holders"]
    assert holders and all(h.startswith(tuple(HOSTILE_ALL)) for h in holders)


def test_a_leak_found_after_the_last_event_is_found_at_the_runs_end(tmp_path: Path) -> None:
    """The leak check runs at exit, after the last event: its time was shown past the
    run's span ("found at 572 ms" on a 539 ms run). It is the run's end now, said so;
    a leak found while the run went on keeps its time."""
    an = synthetic_analysis(5_000)
    # each card shows its group's first leak (the first three leaks: three groups)
    assert [g["oid"] for g in an.leak_groups()[:3]] == [lk["oid"] for lk in an.leaks[:3]]
    an.leaks[0]["t"] = an.t_last + 30_000_000
    an.leaks[2]["t"] = an.t_last - 1_000
    (p,) = html.write(an, tmp_path, "leak", {})
    model = embedded_model(p.read_text(encoding="utf-8"))
    late, _, inner = model["leaks"][:3]
    span = model["span"]
    assert (late["t"], late["at_end"]) == (span, True)
    assert (inner["t"], inner["at_end"]) == (span - 1_000, False)
    assert all(0 <= c["t"] <= span for c in model["leaks"] if c["t"] >= 0)


def test_script_json_cannot_break_out() -> None:
    s = _charts.script_json({"a": "</script><script>alert(1)</script>", "b": "<!-- & -->"})
    assert "<" not in s and ">" not in s and "&" not in s
    assert json.loads(s) == {"a": "</script><script>alert(1)</script>", "b": "<!-- & -->"}


def test_lone_surrogates_and_nul_do_not_break_the_writer(tmp_path: Path) -> None:
    ev = [
        (SCOPE, 0, "/x/\udcff.py", "m\udcff", "f\x00", int(ScopeKind.FUNCTION), 1),
        (SITE, 0, 0, 2, 0, "v\ud800", int(BindKind.ASSIGN)),
        (TYPE, 0, "T\udfff"),
        (THREAD, 5, "t\x00"),
        (ENTER, 10, 0, 1, 5, 0),
        (BIND, 20, 0, 1, 99, 0, 100, 100, 2, -1, -1),
        (EXIT, 30, 1),
    ]
    an = Analysis().feed_all(ev)
    (p,) = html.write(an, tmp_path, "s", {})
    model = embedded_model(p.read_text(encoding="utf-8"))
    assert model["vars"][0]["var"] == "v\ufffd"
    assert model["vars"][0]["scope"] == "f\\u0000"  # a control shown as its escape


def brute_force_total(bindings: list[Any], t: int) -> int:
    """Tracked bytes at time t: each object once at its latest size among live bindings."""
    latest: dict[int, tuple[int, int]] = {}
    for b in bindings:
        end = b.t_unbind if b.t_unbind >= 0 else 1 << 62
        if b.t_bind <= t < end:
            if b.oid not in latest or latest[b.oid][0] <= b.t_bind:
                latest[b.oid] = (b.t_bind, b.bytes)
    return sum(v for _, v in latest.values())


def test_series_is_exact_at_full_resolution_and_layers_add_up() -> None:
    # object 1 bound to a and then aliased by b (counted once), object 2 bound to c
    ev = [
        (SCOPE, 0, "f.py", "m", "f", int(ScopeKind.FUNCTION), 1),
        (SITE, 0, 0, 2, 0, "a", 1),
        (SITE, 1, 0, 3, 0, "b", 1),
        (SITE, 2, 0, 4, 0, "c", 1),
        (TYPE, 0, "list"),
        (TYPE, 1, "bytes"),
        (ENTER, 0, 0, 1, 7, 0),
        (BIND, 10, 0, 1, 1, 0, 100, 100, 2, -1, -1),
        (BIND, 20, 1, 1, 1, 0, 100, 100, 3, -1, -1),
        (BIND, 30, 2, 1, 2, 1, 50, 50, 2, -1, -1),
        (EXIT, 40, 1),
    ]
    an = Analysis().feed_all(ev)
    s = _charts.build_series(an, an.all_bindings(), t0=0, t1=40, buckets=40)
    # power-of-two buckets: 41 one-ns buckets are over 40, so they merged into 2 ns ones
    assert s["step"] == 2 and len(s["total"]) == 21 and s["t"][:3] == [0, 2, 4]

    def at(t: int) -> int:
        return t // s["step"]

    assert s["total"][at(5)] == 0
    assert s["total"][at(15)] == 100
    assert s["total"][at(25)] == 100  # the alias does not double count
    assert s["total"][at(35)] == 150
    assert max(s["total"]) == an.peak_bytes == 150
    var = s["groups"]["var"]
    at35 = {lbl: v[at(35)] for lbl, v in zip(var["labels"], var["values"], strict=True)}
    assert at35 == {"f.a": 100, "f.b": 0, "f.c": 50}  # the alias adds nothing
    typ = s["groups"]["type"]
    at35 = {lbl: v[at(35)] for lbl, v in zip(typ["labels"], typ["values"], strict=True)}
    assert at35 == {"list": 100, "bytes": 50}
    for g in s["groups"].values():
        for i, total in enumerate(s["total"]):
            assert sum(v[i] for v in g["values"]) == total


def test_downsampled_series_keeps_the_peak_and_matches_a_brute_force_replay() -> None:
    an = synthetic_analysis(6_000)
    bindings = an.all_bindings()
    s = _charts.build_series(an, bindings, t0=an.t_first, t1=an.t_last, buckets=50)
    assert 25 < len(s["total"]) <= 50  # power-of-two buckets: between half and all
    assert s["step"] & (s["step"] - 1) == 0 and len(s["total"]) * s["step"] > an.t_last - an.t_first
    best = max(brute_force_total(bindings, b.t_bind) for b in bindings)
    assert max(s["total"]) == best
    for g in s["groups"].values():
        assert len(g["values"]) <= 11  # top 10 + (other)
        for i, total in enumerate(s["total"]):
            assert sum(v[i] for v in g["values"]) == total


def test_large_capture_is_aggregated_into_a_bounded_page(tmp_path: Path) -> None:
    ev = synthetic_events(200_000)
    an = Analysis().feed_all(ev)
    assert len(an.vars) > 300
    (p,) = html.write(an, tmp_path, "big", {})
    page = p.read_text(encoding="utf-8")
    model = embedded_model(page)
    assert 600 < len(model["series"]["total"]) <= 1200
    assert len(model["gantt"]["rows"]) == 80
    assert model["gantt"]["omitted"] == len(an.vars) - 80
    assert all(len(r["segs"]) <= 1500 and len(r["objs"]) <= 1500 for r in model["gantt"]["rows"])
    assert len(model["vars"]) == len(an.vars)  # under the 2000 cap: every variable
    assert all(len(r["history"]) <= 25 for r in model["vars"])
    assert len(page) < 6_000_000
    top = max(an.vars.values(), key=lambda v: v.peak_bytes)
    assert model["vars"][0]["key"] == top.key


def test_variable_table_is_capped_with_a_count_of_the_rest() -> None:
    an = synthetic_analysis(20_000)
    model = _charts.build_model(an, {}, max_vars=25, history_per_var=3)
    assert len(model["vars"]) == 25
    assert model["vars_omitted"] == len(an.vars) - 25
    peaks = [r["peak"] for r in model["vars"]]
    assert peaks == sorted(peaks, reverse=True)
    assert all(len(r["history"]) <= 3 for r in model["vars"])


def test_formatting_units() -> None:
    assert _charts.fmt_bytes(0) == "0 B"
    assert _charts.fmt_bytes(1023) == "1023 B"
    assert _charts.fmt_bytes(1536) == "1.5 KiB"
    assert _charts.fmt_bytes(5 * 1024 * 1024) == "5.0 MiB"
    assert _charts.fmt_bytes(300 * 1024**3) == "300 GiB"
    assert _charts.fmt_bytes(-1) == "n/a"
    assert _charts.fmt_ns(999) == "999 ns"
    assert _charts.fmt_ns(1500) == "1.5 µs"
    assert _charts.fmt_ns(2_345_000_000) == "2.35 s"


def test_meta_of_a_capture_is_shown_in_the_overview(tmp_path: Path) -> None:
    an = Analysis().feed_all(e for e in synthetic_events(3_000) if e[0] != PROC)  # live run
    meta = {
        "name": "cap",
        "mode": "fast",
        "python": "3.12.1",
        "pids": [111],
        "processes": [{"pid": 111, "ppid": 1, "argv0": "app.py", "start_ns": 5}],
        "start_time": "2026-11-27T10:00:00Z",
        "start_ns": 123456,
        "sampled": 42,
        "complete": False,
        "counters": {"errors": 0, "dropped": 3, "flushes": 9},
    }
    (p,) = html.write(an, tmp_path, "cap", meta)
    info = embedded_model(p.read_text(encoding="utf-8"))["info"]
    assert info["start"] == "2026-11-27T10:00:00Z"
    assert info["sampled"] == "42 bindings skipped by sampling"
    assert info["counters"] == {"errors": 0, "dropped": 3, "flushes": 9}
    assert info["extra"] == {"complete": "False"}  # start_ns and lists stay out
    lanes = embedded_model(p.read_text(encoding="utf-8"))["lanes"]["proc"]
    assert lanes == [{"key": "111", "ppid": 1, "argv0": "app.py", "binds": an.binds}]


RAW_RE = re.compile(
    r'<script type="application/octet-stream" id="memscope-raw">([A-Za-z0-9+/=]*)</script>'
)


def raw_columns(page: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The raw detail decoded the way the page does: base64, zlib, byte planes, typed
    columns."""
    import base64
    import zlib
    from array import array

    head = embedded_model(page)["raw"]
    (b64,) = RAW_RE.findall(page)
    data = zlib.decompress(base64.b64decode(b64))
    assert len(data) == head["bytes"]
    cols: dict[str, list[Any]] = {}
    for name, kind, off in head["cols"]:
        code, width = {"f64": ("d", 8), "i32": ("i", 4), "u8": ("B", 1)}[kind]
        col = data[off : off + width * head["n"]]
        if head["layout"] == "planes":  # byte planes back to values, as the page does
            planes = [col[j * head["n"] : (j + 1) * head["n"]] for j in range(width)]
            col = bytes(b for value in zip(*planes, strict=True) for b in value)
        cols[name] = list(array(code, col))
    return head, cols


def test_raw_detail_holds_every_binding_compressed_and_inert(tmp_path: Path) -> None:
    an = synthetic_analysis(20_000, hostile=True)
    (p,) = html.write(an, tmp_path, "raw", {})
    page = p.read_text(encoding="utf-8")
    head, cols = raw_columns(page)
    bindings = an.all_bindings()
    assert head["n"] == head["total"] == len(bindings) and head["omitted"] == 0
    t0 = an.t_first
    got = sorted(
        (int(cols["t_bind"][i]) + t0, head["var_keys"][cols["var"][i]], int(cols["bytes"][i]))
        for i in range(head["n"])
    )
    assert got == sorted((b.t_bind, shown(b.key), b.bytes) for b in bindings)
    # a variable with far more bindings than the table's history keeps them all here
    model = embedded_model(page)
    row = max(model["vars"], key=lambda r: r["binds"])
    assert row["binds"] > len(row["history"])
    assert sum(1 for v in cols["var"] if v == row["index"]) == row["binds"]


def test_raw_detail_is_capped_and_says_how_many_were_left_out(tmp_path: Path) -> None:
    an = synthetic_analysis(5_000)
    (p,) = html.write(an, tmp_path, "cap", {}, raw_limit=100)
    head, cols = raw_columns(p.read_text(encoding="utf-8"))
    assert head["n"] == 100 == len(cols["var"])
    assert head["omitted"] == an.binds - 100 > 0
    assert head["order"] == "end"  # bindings go in as they end: the first 100 to end
    t0 = an.t_first
    got = [
        (int(tb) + t0, int(tb + h) + t0) for tb, h in zip(cols["t_bind"], cols["held"], strict=True)
    ]
    first = sorted(an.history, key=lambda b: b.t_unbind)[:100]
    assert got == [(b.t_bind, b.t_unbind) for b in first]


def test_streamed_report_equals_the_history_model(tmp_path: Path) -> None:
    """report() streams (no history kept): the page's model is the same as from a
    history-keeping analysis of the same capture."""
    from memscope.capture.writer import write_capture
    from memscope.reporters import load, report

    cap = write_capture(
        tmp_path / "s.memscope", synthetic_events(30_000), export_mode="full",
        runtime_mode="full", start_ns=1,
    )  # fmt: skip
    (page_path,) = report(cap, tmp_path / "out", "s", "html")
    streamed = embedded_model(page_path.read_text(encoding="utf-8"))
    run = load.analyze(cap, keep_history=True)
    assert not run.analysis.keep_history or run.analysis.history
    (p2,) = html.write(run.analysis, tmp_path / "h", "s", run.meta)
    kept = embedded_model(p2.read_text(encoding="utf-8"))
    for k in ("overview", "series", "gantt", "scopes", "leaks", "buffers", "lanes", "graph"):
        assert streamed[k] == kept[k], k
    assert [r["key"] for r in streamed["vars"]] == [r["key"] for r in kept["vars"]]
    assert streamed["raw"]["total"] == kept["raw"]["total"] == run.analysis.binds


def test_tracker_exports_stream_the_dashboard_and_both_svgs(tmp_path: Path) -> None:
    """``export_to_html`` / ``export_memory_analysis`` / ``export_lifecycle_timeline`` go
    through the streaming collector (no history kept) and still hold every binding."""
    import subprocess
    import sys
    import textwrap

    root = Path(__file__).resolve().parents[1]
    code = textwrap.dedent(
        """
        import memscope
        t = memscope.init(mode="full", capture=False, output_dir="out", name="exp")
        for i in range(40):
            with memscope.track_scope("work"):
                rows = [i] * (10 + i)
                memscope.track_var(rows)
                blob = bytearray(100 * i)
                memscope.track_var(blob)
        print(t.export_to_html())
        print(t.export_memory_analysis())
        print(t.export_lifecycle_timeline())
        print(t.stats()["total_binds"])
        """
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MEMSCOPE_")}
    env["PYTHONPATH"] = str(root)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    page_path, mem_svg, timeline_svg, binds = proc.stdout.split()
    page = (tmp_path / page_path).read_text(encoding="utf-8")
    model = embedded_model(page)
    assert model["overview"]["binds"] == int(binds) == 80
    head, cols = raw_columns(page)
    assert head["n"] == head["total"] == 80 and head["omitted"] == 0
    assert sorted(head["var_keys"][v] for v in set(cols["var"])) == sorted(
        r["key"] for r in model["vars"]
    )
    for p in (mem_svg, timeline_svg):
        assert (tmp_path / p).read_text(encoding="utf-8").startswith("<?xml")


def test_a_binding_whose_call_was_not_recorded_has_its_thread_named_so() -> None:
    """Issue 17: "thread ?" on the dashboard. A sampled-out call records its bindings
    with no scope instance (token 0), so no thread: said in words."""
    an = Analysis().feed_all([
        (SCOPE, 0, "m.py", "m", "f", int(ScopeKind.FUNCTION), 1),
        (SITE, 0, 0, 2, 4, "buf", 1),
        (TYPE, 1, "bytes"),
        (THREAD, 7, "MainThread"),
        (ENTER, 10, 0, 1, 7, 0),
        (BIND, 20, 0, 1, 100, 1, 5000, -1, -1, -1, -1),
        (BIND, 30, 0, 0, 101, 1, 9000, -1, -1, -1, -1),  # token 0: the call not recorded
    ])
    model = _charts.build_model(an, {"name": "t"})
    labels = model["series"]["groups"]["thread"]["labels"]
    assert sorted(labels) == ["MainThread", "thread not recorded"]
    import io

    from memscope.reporters.summary import summary_of

    text = summary_of(an, {"name": "t"}, io.StringIO(), width=120, color=False)
    assert "thread not recorded (calls sampled out)" in text and "thread ?" not in text
