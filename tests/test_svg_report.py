"""The static SVG charts: valid XML, labelled content, escaping, empty and large runs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import memscope
from memscope.analysis import Analysis
from memscope.reporters import _charts, svg
from tests.report_helpers import HOSTILE, HOSTILE_ALL, synthetic_analysis

NS = "{http://www.w3.org/2000/svg}"


def texts(root: ET.Element) -> list[str]:
    """What each <text> shows (its own text, not the text of its <title> tooltip)."""
    return [(t.text or "") + "".join(c.tail or "" for c in t) for t in root.iter(f"{NS}text")]


def titles(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}title")]


@memscope.track_scope("parse_rows")
def parse_rows() -> None:
    records = [list(range(20)) for _ in range(500)]
    memscope.track_var(records)
    names = records
    memscope.track_var(names)
    payload = bytes(120_000)
    memscope.track_var(payload)


def real_analysis(full: Any) -> Analysis:
    parse_rows()
    return full.analysis()  # type: ignore[no-any-return]


def test_memory_analysis_svg_from_a_real_run(full: Any, tmp_path: Path) -> None:
    an = real_analysis(full)
    p = svg.write_memory_analysis(an, tmp_path / "sub" / "m.svg", {"mode": "full"})
    assert p == tmp_path / "sub" / "m.svg"
    root = ET.parse(p).getroot()
    assert root.tag == f"{NS}svg"
    assert int(root.get("height", "0")) > 300
    tx = texts(root)
    joined = "\n".join(tx)
    # the old number, labelled for what it is: sizes at bind time, never the headline
    assert "Bytes bound at bind time (shallow/deep as recorded), stacked by variable" in tx
    assert any(t.startswith("Top variables by ") for t in tx)
    assert "Types by peak bound at bind time" in tx and "Scopes by peak bound at bind time" in tx
    assert f"bind-time peak {_charts.fmt_bytes(an.peak_bytes)}" in joined
    assert not any(t.startswith("peak ") for t in tx)
    for name in ("parse_rows.records", "parse_rows.names", "parse_rows.payload"):
        assert name in tx  # the bind-time layers are labelled by name
    assert "bytes" in tx and "list" in tx  # types
    assert len(list(root.iter(f"{NS}path"))) >= 2  # stacked layers


def test_lifecycle_timeline_svg_from_a_real_run(full: Any, tmp_path: Path) -> None:
    an = real_analysis(full)
    p = svg.write_lifecycle_timeline(an, tmp_path / "t.svg", {})
    root = ET.parse(p).getroot()
    tx = texts(root)
    assert any(t.endswith("parse_rows") for t in tx)  # the scope header
    assert {"records", "names", "payload"} <= set(tx)  # one row per variable
    bars = [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
    assert len(bars) >= 3
    assert any("binding parse_rows.payload" in t for t in titles(root))


def test_empty_run_says_so(tmp_path: Path) -> None:
    for write, msg in (
        (svg.write_memory_analysis, "No bindings were recorded in this run: nothing to chart."),
        (svg.write_lifecycle_timeline, "No bindings were recorded in this run: no lifetimes"),
    ):
        p = write(Analysis(), tmp_path / "e.svg", None)
        root = ET.parse(p).getroot()
        assert any(t.startswith(msg) for t in texts(root))


def test_hostile_names_are_xml_escaped(tmp_path: Path) -> None:
    an = synthetic_analysis(5_000, hostile=True)
    for write in (svg.write_memory_analysis, svg.write_lifecycle_timeline):
        p = write(an, tmp_path / "h.svg", {"mode": HOSTILE})
        raw = p.read_text(encoding="utf-8")
        assert "<img" not in raw and "<svg onload" not in raw and "<script" not in raw
        assert "<x>" not in raw and "<!--" not in raw
        root = ET.parse(p).getroot()  # well-formed despite the names
        # the names are there as text, exactly (clipped labels keep their prefix)
        alltext = "\n".join(texts(root) + titles(root))
        assert HOSTILE[:20] in alltext
        assert f"mode {HOSTILE}" in alltext
        assert sum(h[:6] in alltext for h in HOSTILE_ALL) >= 4


def test_control_characters_cannot_make_invalid_xml() -> None:
    # controls are shown as their escapes (as in every report), surrogates as U+FFFD
    assert svg.esc("a\x00b\x1bc\ud800<&>\"'") == "a\\u0000b\\u001bc\ufffd&lt;&amp;&gt;&quot;&#39;"
    assert svg.esc("tab\tok") == "tab\tok"


@pytest.mark.slow  # seconds in-process (large data): not the inner loop
def test_large_capture_stays_readable_and_bounded(tmp_path: Path) -> None:
    an = synthetic_analysis(150_000)
    m = svg.write_memory_analysis(an, tmp_path / "m.svg", {})
    t = svg.write_lifecycle_timeline(an, tmp_path / "t.svg", {})
    for p in (m, t):
        root = ET.parse(p).getroot()
        assert sum(1 for _ in root.iter()) < 20_000
        assert p.stat().st_size < 3_000_000
    tm = texts(ET.parse(m).getroot())
    assert any(s.startswith("+ ") and s.endswith(" more variables") for s in tm)
    assert "(other)" in tm  # the rest is summed and labelled, not dropped
    tt = texts(ET.parse(t).getroot())
    assert any("smaller ones omitted" in s for s in tt)
    rows = [s for s in tt if s.startswith("var")]
    assert len(rows) == 45
