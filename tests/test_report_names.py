"""Names that hide or reorder text (issue 16, "values and names"): Unicode bidi
embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), marks and other
invisible format characters, controls. A program's names reach every report; none of
these characters reaches the terminal, the dashboard or the SVG raw: each is shown as
its escape (``\\u202e``), by one helper (``memscope.reporters._format.shown``) that
every reporter uses. The JSON reports keep the names as the program had them (data,
not display)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import orjson
import pytest

from memscope.capture import write_capture
from memscope.events import (
    BIND,
    CENSUS,
    CVAR,
    ENTER,
    EXIT,
    LEAK,
    PROC,
    SCOPE,
    SITE,
    TASK,
    THREAD,
    TYPE,
    BindKind,
    ScopeKind,
)
from memscope.reporters import report
from memscope.reporters._format import HIDDEN, shown
from memscope.reporters.summary import write_summary

RLO, LRI, PDI, ZWJ, BOM = "\u202e", "\u2066", "\u2069", "\u200d", "\ufeff"
TRICKS = ["\u202a", "\u202b", "\u202c", "\u202d", RLO, LRI, "\u2067", "\u2068", PDI,
          "\u200e", "\u200f", "\u061c", "\u200b", ZWJ, BOM, "\u2060", "\x1b", "\r", "\x07"]


def _name(i: int, base: str) -> str:
    """``base`` with bidi and invisible characters around and inside it."""
    t = TRICKS[i % len(TRICKS)]
    return f"{base}{RLO}txt.exe{t}{LRI}x{PDI}"


def _events() -> list[tuple[object, ...]]:
    t = 1_000_000
    ev: list[tuple[object, ...]] = [(PROC, 4242, 1, _name(0, "prog"), t)]
    ev.append((THREAD, 7, _name(1, "thread")))
    ev.append((TASK, 9, _name(2, "task")))
    for s in range(3):
        ev.append((SCOPE, s, f"/src/{_name(s, 'file')}.py", _name(s + 3, "mod"),
                   _name(s + 6, "func"), int(ScopeKind.FUNCTION), 10 + s))
        for v in range(3):
            ev.append((SITE, s * 3 + v, s, 11 + v, 4, _name(s * 3 + v, "var"),
                       int(BindKind.ASSIGN)))
    for k in range(4):
        ev.append((TYPE, k, _name(k + 9, "Type")))
    tok = 0
    for rep in range(4):
        for s in range(3):
            tok += 1
            t += 100
            ev.append((ENTER, t, s, tok, 7, 9 if s == 1 else 0))
            for v in range(3):
                t += 10
                ev.append((BIND, t, s * 3 + v, tok, 1000 + tok * 10 + v, v % 4,
                           1000 * (v + 1) + rep, -1, -1, -1, -1))
            if rep < 3:
                t += 10
                ev.append((EXIT, t, tok))
    ev.append((CVAR, 1, 0, tok, _name(4, "cvar"), 1, 100, 5000, 0, 77))
    ev.append((CENSUS, t + 5, 1, "end", 10**7, 2 * 10**7, 5000, 0, 10, 1000))
    ev.append((LEAK, t + 10, 1000 + tok * 10, 0, 1000, (_name(5, "holder"),
                                                        _name(6, "holder"))))
    return ev


def _no_tricks(text: str, where: str) -> None:
    found = sorted({f"U+{ord(c):04X}" for c in text if HIDDEN.search(c) and c not in "\n\t"})
    assert not found, f"{where}: {found} shown raw"


@pytest.fixture(scope="module")
def cap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_capture(tmp_path_factory.mktemp("names") / "names.memscope", _events())


def test_the_helper_escapes_each_hiding_character_visibly() -> None:
    for c in TRICKS:
        out = shown(f"a{c}b")
        assert c not in out and out.startswith("a") and out.endswith("b")
        assert f"{ord(c):04x}" in out  # its code point is what is shown
    assert shown("plain_name") == "plain_name"
    assert shown("naïve 名前 émoji 🐍") == "naïve 名前 émoji 🐍"
    assert shown(f"x{RLO}y") == "x\\u202ey"
    assert shown("\U000e0041") == "\\U000e0041"  # a tag character


def test_the_terminal_summary(cap: Path) -> None:
    out = io.StringIO()
    text = write_summary([cap], out, width=200, color=True)
    for what, t in (("summary", text), ("terminal", out.getvalue())):
        # the terminal's own escape sequences (colours) are rich's, not the program's
        _no_tricks(re.sub("\x1b\\[[0-9;]*m", "", t), what)
    assert "var\\u202etxt.exe" in text  # a variable, its escape visible
    assert "\\u2066x\\u2069" in text


def test_the_html_dashboard(cap: Path, tmp_path: Path) -> None:
    (page,) = [p for p in report([cap], tmp_path, "n", "html") if p.suffix == ".html"]
    html = page.read_text("utf-8")
    _no_tricks(html, "dashboard")
    # (the raw detail streamed into the page is numbers: indices into the name lists
    # of the model, checked with the rest of the page)
    model = re.search(r'<script[^>]*type="application/json"[^>]*>(.*?)</script>', html, re.S)
    assert model is not None
    assert "var\\\\u202etxt.exe" in model.group(1)  # shown as its escape


def test_the_svg_charts(cap: Path, tmp_path: Path) -> None:
    svgs = [p for p in report([cap], tmp_path, "n", "svg,timeline") if p.suffix == ".svg"]
    assert len(svgs) == 2
    for p in svgs:
        text = p.read_text("utf-8")
        _no_tricks(text, p.name)
    assert any("\\u202etxt.exe" in p.read_text("utf-8") for p in svgs)


def test_the_json_reports_keep_the_names_as_data(cap: Path, tmp_path: Path) -> None:
    written = report([cap], tmp_path, "n", "json")
    doc = orjson.loads((tmp_path / "n_memory_analysis.json").read_bytes())
    names = {v["var"] for v in doc["top_variables"]}
    assert _name(0, "var") in names
    assert written
