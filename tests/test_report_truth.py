"""Every report leads with the truth, labelled: the process's resident peak and what the
named variables retain of it (from the censuses), on one clock, from real runs of
``memscope run``.

The program binds ``items`` empty and fills it afterwards: at bind time it reads as an
empty list (56 bytes); only a census sees what it holds.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from memscope.analysis import Analysis
from memscope.capture.writer import write_capture
from memscope.reporters import _memory, load, report
from memscope.reporters._charts import build_model, fmt_bytes, fmt_ns
from memscope.reporters.summary import summary_of
from tests.hook_helpers import clean_env, memscope_cmd, run
from tests.report_helpers import synthetic_events

SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "schema"
SECRET = "VALUE-NEVER-SHOWN-7f3a"

PROGRAM = f'''\
import os
import memscope

SECRET = "{SECRET}"


def build(n):
    items = []  # bound empty: what a BIND row records
    for i in range(n):
        items.append(SECRET + str(i))
    lookup = {{SECRET + "-key-" + str(i): i for i in range(2000)}}
    if os.environ.get("SNAP"):
        memscope.snapshot()  # a census while both are alive
    return len(items) + len(lookup)


def main():
    total = build(200_000)
    print(total)


main()
'''


def run_program(tmp: Path, name: str, **env: str) -> Path:
    prog = tmp / f"{name}.py"
    prog.write_text(PROGRAM)
    r = run(memscope_cmd("run", "--no-report", str(prog)), tmp, env=clean_env(**env),
            timeout=300)
    assert r.returncode == 0, r.stderr
    (cap,) = (tmp / "MemoryAnalysis" / name).glob(f"{name}.*.memscope")
    return cap


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real run with a census (memscope.snapshot()) while ``items`` is full, and
    every report made from its capture."""
    tmp = tmp_path_factory.mktemp("truth")
    cap = run_program(tmp, "grown", SNAP="1")
    out = tmp / "reports"
    paths = report([cap], out, "grown", "all")
    r = load.analyze(cap, keep_history=False)
    files = {p.name: p for p in paths}
    return {
        "cap": cap,
        "out": out,
        "an": r.analysis,
        "meta": r.meta,
        "t0": r.t0,
        "summary": files["grown_summary.txt"].read_text(encoding="utf-8"),
        "json": orjson.loads(files["grown_memory_analysis.json"].read_bytes()),
        "perf": orjson.loads(files["grown_performance.json"].read_bytes()),
        "html": files["grown_dashboard.html"].read_text(encoding="utf-8"),
        "svg": files["grown_memory_analysis.svg"].read_text(encoding="utf-8"),
        "timeline": files["grown_lifecycle_timeline.svg"].read_text(encoding="utf-8"),
        "files": paths,
    }


def page_model(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="memscope-data">(.*?)</script>', html,
                  re.S)
    assert m is not None
    return json.loads(m.group(1))  # type: ignore[no-any-return]


def squash(text: str) -> str:
    """Terminal text as one line (rich wraps long rows)."""
    return " ".join(text.split())


# ---- 1. the headline ------------------------------------------------------------------


def test_headline_is_the_process_peak_and_what_names_retain(grown: dict[str, Any]) -> None:
    an: Analysis = grown["an"]
    assert an.rss_peak > 0 and an.memory  # the MEM rows of the monitor thread
    pc = an.peak_census()
    # memory falls when build() returns: the census nearest the peak is one taken while
    # items was full (the snapshot, or a growth census right after it)
    assert pc is not None and "__main__:build:items" in pc.by_key()
    assert any(c.reason == "snapshot" for c in an.censuses)
    h = grown["json"]["headline"]
    assert h["status"] == "ok"
    assert h["process_peak_bytes"] == an.rss_peak
    assert h["named_bytes"] == pc.named > 1 << 20  # items and lookup, measured
    # memscope's own memory (measured around its steps) is not the program's: apart
    assert h["memscope_bytes"] == pc.own > 100_000
    assert h["unnamed_bytes"] == an.rss_peak - pc.named - pc.own
    assert h["labels"]["unnamed"] == _memory.LABEL_UNNAMED and "memscope" not in \
        h["labels"]["unnamed"]
    assert h["named_share"] == pytest.approx(pc.named / an.rss_peak, abs=1e-6)
    want = (f"named variables retain {fmt_bytes(pc.named)} of the {fmt_bytes(an.rss_peak)} "
            f"process peak ({_memory.percent(pc.named, an.rss_peak)}) — census at "
            f"{fmt_ns(pc.t - grown['t0'])}")
    assert h["text"] == want
    # the bind-time number is still there, labelled for what it is
    assert h["bound_peak_bytes"] == an.peak_bytes
    assert h["labels"]["bound"] == "bound at bind time (shallow/deep as recorded)"


def test_every_report_shows_the_same_headline(grown: dict[str, Any]) -> None:
    text = grown["json"]["headline"]["text"]
    summary = grown["summary"]
    assert summary.splitlines()[1] == text  # the first line under the title
    for label in (_memory.LABEL_PEAK, _memory.LABEL_NAMED, _memory.LABEL_UNNAMED,
                  _memory.LABEL_BOUND):
        assert label in squash(summary)
    model = page_model(grown["html"])
    assert model["headline"]["text"] == text
    assert text.replace("—", "&#8212;") in grown["svg"] or text in grown["svg"]
    assert text in grown["timeline"]
    for out in (summary, grown["html"], grown["svg"]):
        assert "peak tracked memory" not in out


def test_census_off_says_so(tmp_path: Path) -> None:
    cap = run_program(tmp_path, "nocensus", MEMSCOPE_CENSUS="0")
    r = load.analyze(cap, keep_history=False)
    assert not r.analysis.censuses and r.analysis.rss_peak > 0
    h = _memory.headline(r.analysis, r.t0)
    assert h["status"] == "no_census" and h["named_bytes"] == -1
    assert h["text"].startswith(f"process peak (resident) {fmt_bytes(r.analysis.rss_peak)} at ")
    assert "no census in this capture" in h["text"]
    text = summary_of(r.analysis, r.meta, io.StringIO(), width=200, t0=r.t0)
    assert "not known: no census in this capture" in text
    assert "Top variables by bytes bound at bind time" in text
    model = build_model(r.analysis, r.meta)
    assert model["headline"]["status"] == "no_census" and model["censuses"] == []


def test_old_capture_without_memory_or_census_says_so(tmp_path: Path) -> None:
    cap = write_capture(tmp_path / "old.memscope", synthetic_events(3000))
    r = load.analyze(cap, keep_history=False)
    assert r.analysis.rss_peak == -1 and not r.analysis.censuses
    text = summary_of(r.analysis, r.meta, io.StringIO(), width=200, t0=r.t0)
    assert text.splitlines()[1].startswith("this capture has no process memory and no census")
    assert "process peak (resident) not known" in squash(text)
    paths = report([cap], tmp_path / "out", "old", "json,html,svg")
    d = orjson.loads(paths[0].read_bytes())
    assert d["headline"]["status"] == "none" and d["headline"]["process_peak_bytes"] == -1
    assert d["process_memory"] == {"available": False, "peak_bytes": -1, "peak_t": -1,
                                   "last_bytes": -1, "series": []}
    html = next(p for p in paths if p.suffix == ".html").read_text(encoding="utf-8")
    assert page_model(html)["headline"]["status"] == "none"
    svg = next(p for p in paths if p.name.endswith("memory_analysis.svg")).read_text()
    assert "this capture has no process memory" in svg


# ---- 2. the memory chart ---------------------------------------------------------------


def test_svg_draws_the_process_line_its_peak_and_the_censuses(grown: dict[str, Any]) -> None:
    svg = grown["svg"]
    an: Analysis = grown["an"]
    assert "Process memory (resident) and what named variables retain (censuses)" in svg
    assert "<title>resident memory of the process</title>" in svg
    peak_t = an.rss_peak_t - grown["t0"]
    assert f"process peak (resident) {fmt_bytes(an.rss_peak)} at {fmt_ns(peak_t)}" in svg
    for c in an.censuses:
        assert f"census at {fmt_ns(c.t - grown['t0'])} ({c.reason})" in svg
    assert "build.items" in svg  # a census layer: what items retained


def test_dashboard_model_has_the_process_line_and_census_layers(grown: dict[str, Any]) -> None:
    an: Analysis = grown["an"]
    m = page_model(grown["html"])
    t0 = grown["t0"]
    p = m["process"]
    assert p["t"] == [t - t0 for t, _ in an.memory] and p["rss"] == [r for _, r in an.memory]
    assert p["peak"] == an.rss_peak and p["peak_t"] == an.rss_peak_t - t0
    assert [c["t"] for c in m["censuses"]] == [c.t - t0 for c in an.censuses]
    cs = m["census_series"]
    assert cs["t"] == [c["t"] for c in m["censuses"]]
    i = cs["labels"].index("build.items")
    snap = next(k for k, c in enumerate(an.censuses) if c.reason == "snapshot")
    assert cs["values"][i][snap] > 1 << 20
    # each census's layers add up to what the names retain in it
    for k, c in enumerate(an.censuses):
        assert sum(v[k] for v in cs["values"]) == c.named


# ---- 3. the variables ------------------------------------------------------------------


def test_a_list_filled_after_binding_is_retained(grown: dict[str, Any]) -> None:
    an: Analysis = grown["an"]
    items = an.vars["__main__:build:items"]
    assert items.peak_bytes < 1024  # bind time: an empty list
    rows = {v["key"]: v for v in grown["json"]["top_variables"]}
    row = rows["__main__:build:items"]
    assert row["peak_bytes"] == items.peak_bytes
    assert row["retained_bytes"] > 200_000 * 50  # the list and its strings
    assert row["peak_retained_bytes"] >= row["retained_bytes"]
    assert row["shallow_bytes"] > 200_000 * 8  # the list's own array of pointers
    assert [r[1] for r in row["retained_over_time"]] == [
        d[1] for d in _memory.census_vars(an, grown["t0"])["__main__:build:items"]["series"]]


def test_variables_are_ranked_by_retained_everywhere(grown: dict[str, Any]) -> None:
    an: Analysis = grown["an"]
    pc = an.peak_census()
    assert pc is not None
    by_key = pc.by_key()
    want = sorted(by_key, key=lambda k: -by_key[k][1])[:2]
    assert set(want) == {"__main__:build:items", "__main__:build:lookup"}
    assert [v["key"] for v in grown["json"]["top_variables"][:2]] == want
    model = page_model(grown["html"])
    assert [v["key"] for v in model["vars"][:2]] == want
    top = model["vars"][0]
    assert top["retained"] == by_key[want[0]][1] and top["census_shared"] == by_key[want[0]][2]
    t0 = grown["t0"]
    assert [p[0] for p in top["census"]] == [c.t - t0 for c in an.censuses if want[0] in c.by_key()]
    assert len(top["census"]) >= 1
    lines = [ln for ln in grown["summary"].splitlines() if ln.startswith("│ ")]
    names = [ln.split("│")[1].strip() for ln in lines]
    assert names.index(want[0].rsplit(":", 1)[1]) < names.index("SECRET")
    assert "Top variables by retained bytes" in grown["summary"]


# ---- 4. one clock ----------------------------------------------------------------------


def test_one_clock_in_summary_dashboard_json_and_svg(grown: dict[str, Any]) -> None:
    """Every view counts from the run's start (the capture header's start_ns), not from
    the first event (the first event comes after instrumenting the program)."""
    an: Analysis = grown["an"]
    start = grown["meta"]["start_ns"]
    assert start > 0 and grown["t0"] == start
    duration = an.t_last - start
    assert an.t_first > start  # there is a gap: first-to-last would be shorter
    d = grown["json"]["summary"]
    assert d["duration_ns"] == duration == grown["perf"]["duration_ns"]
    assert d["first_event_t"] == an.t_first - start
    model = page_model(grown["html"])
    assert model["overview"]["duration"] == duration and model["span"] == duration
    assert model["overview"]["peak_t"] == d["peak_t"] == an.peak_t - start
    h, mh = grown["json"]["headline"], model["headline"]
    assert h["process_peak_t"] == mh["process_peak_t"] == an.rss_peak_t - start
    assert h["census_t"] == mh["census_t"] == d["peak_census_t"]
    text = squash(grown["summary"])
    assert f"duration {fmt_ns(duration)}" in text
    assert f"process peak (resident) {fmt_bytes(an.rss_peak)} at {fmt_ns(h['process_peak_t'])}" \
        in text
    assert f"{_memory.LABEL_BOUND} {fmt_bytes(an.peak_bytes)} in {an.peak_count:,} bindings, at " \
        f"{fmt_ns(d['peak_t'])}" in text
    assert f" · {fmt_ns(duration)} · " in grown["svg"].replace("  ·  ", " · ")
    # and the command a person runs says the same
    from click.testing import CliRunner

    from memscope.cli import main

    r = CliRunner().invoke(main, ["summary", str(grown["cap"]), "--width", "200"])
    assert r.exit_code == 0, r.output
    assert f"duration {fmt_ns(duration)}" in squash(r.output)
    assert r.output.splitlines()[1] == h["text"]
    # the series and the raw detail move to the same origin
    assert model["series"]["t0"] == model["series"]["t"][0] >= an.t_first - start
    assert model["raw"]["t_offset"] == model["raw_shift"] >= 0


# ---- 5. JSON ---------------------------------------------------------------------------


def _undescribed(schema: Any, path: str = "") -> list[str]:
    out = []
    for name, sub in (schema.get("properties") or {}).items():
        if "description" not in sub:
            out.append(path + name)
        out += _undescribed(sub, path + name + ".")
        if isinstance(sub.get("items"), dict):
            out += _undescribed(sub["items"], path + name + "[].")
    return out


def test_json_process_memory_and_censuses(grown: dict[str, Any]) -> None:
    d = grown["json"]
    schema = json.loads((SCHEMAS / "memory_analysis.schema.json").read_text())
    jsonschema.validate(d, schema, cls=jsonschema.Draft202012Validator)
    an: Analysis = grown["an"]
    t0 = grown["t0"]
    pm = d["process_memory"]
    assert pm["available"] and pm["peak_bytes"] == an.rss_peak
    assert pm["series"] == [[t - t0, r] for t, r in an.memory]
    assert len(d["censuses"]) == len(an.censuses)
    for row, c in zip(d["censuses"], an.censuses, strict=True):
        assert row["t"] == c.t - t0 and row["reason"] == c.reason
        assert (row["process_rss_bytes"], row["named_bytes"], row["shared_bytes"],
                row["objects"], row["cost_ns"]) == (c.rss, c.named, c.shared, c.objects,
                                                    c.cost_ns)
        assert sum(v["retained_bytes"] for v in row["variables"]) <= c.named
    snap = next(r for r in d["censuses"] if r["reason"] == "snapshot")
    items = next(v for v in snap["variables"] if v["var"] == "items")
    assert items["type"] == "list" and items["retained_bytes"] > 1 << 20
    # each new field says what its number means
    for part in ("headline", "process_memory", "censuses"):
        assert _undescribed(schema["properties"][part]) == [], part
    tv = schema["properties"]["top_variables"]["items"]["properties"]
    for k in ("retained_bytes", "peak_retained_bytes", "shared_bytes", "shallow_bytes",
              "retained_over_time", "peak_bytes"):
        assert tv[k]["description"]
    assert "bind time" in tv["peak_bytes"]["description"]


def test_no_value_in_any_output(grown: dict[str, Any]) -> None:
    """Names, types and sizes only: neither the strings in ``items`` nor the dict's keys
    (both start with SECRET's value) appear in any report."""
    for p in grown["files"]:
        assert SECRET not in p.read_text(encoding="utf-8", errors="replace"), p.name
    assert "SECRET" in grown["summary"]  # the global's name is shown, not its value
