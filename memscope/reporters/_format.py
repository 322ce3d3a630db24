"""Formatting, escaping and grouping keys shared by the HTML dashboard and the SVG
charts: sizes and durations as text, text safe to serialise, JSON (also to embed in a
``<script>`` tag) and the key and label of a binding in each grouping."""

from __future__ import annotations

import json
import re
from typing import Any

from memscope.analysis import Analysis, Binding

GROUPINGS = ("var", "scope", "type", "thread", "task")
GROUPING_LABELS = {
    "var": "variable",
    "scope": "scope",
    "type": "type",
    "thread": "thread",
    "task": "task",
}
OTHER = "(other)"


# ---- formatting -------------------------------------------------------------------


def fmt_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``; negative means unknown."""
    if n < 0:
        return "n/a"
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024.0
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if n < 100 else f"{n:.0f} {unit}"
    return f"{n:.0f} TiB"  # pragma: no cover


def fmt_ns(ns: float) -> str:
    """A duration: ``ns``, ``µs``, ``ms`` or ``s`` with three significant figures."""
    if ns < 0:
        return "n/a"
    if ns < 1_000:
        return f"{int(ns)} ns"
    for unit, div in (("µs", 1e3), ("ms", 1e6), ("s", 1e9)):
        v = ns / div
        if v < 1000 or unit == "s":
            return f"{v:.3g} {unit}" if v < 1000 else f"{v:.0f} {unit}"
    return f"{ns / 1e9:.0f} s"  # pragma: no cover


_UNSAFE = re.compile("[\ud800-\udfff]")

# Characters that hide or reorder the text around them when shown: controls (C0 but
# the tab, DEL, C1), the soft hyphen, bidi marks, embeddings, overrides and isolates
# (U+061C, U+200E-U+200F, U+202A-U+202E, U+2066-U+2069), zero-width and other
# invisible format characters (U+180E, U+200B-U+200D, U+2060-U+2064, U+206A-U+206F,
# U+FEFF, U+FFF9-U+FFFB, tags U+E0000-U+E007F), the line and paragraph separators.
HIDDEN = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\xad\u061c\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)


def _escape_hidden(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\u{c:04x}" if c <= 0xFFFF else f"\\U{c:08x}"


def shown(s: Any) -> str:
    """A program's text (a name, a type, a path, a message) as every report shows it:
    each character that could hide or reorder text (``HIDDEN``: bidi overrides and
    isolates, invisible format characters, controls) becomes its escape, ``\\u202e``,
    visible where it was; lone surrogates become U+FFFD. The one helper the terminal
    summary, the dashboard and the SVG charts show names through."""
    t = s if isinstance(s, str) else str(s)
    if t.isascii():
        if t.isprintable():
            return t
        return HIDDEN.sub(_escape_hidden, t)
    return _UNSAFE.sub("\ufffd", HIDDEN.sub(_escape_hidden, t))


clean = shown  # the dashboard's name for it: text safe to serialise and to show


def to_json(obj: Any) -> str:
    """Compact JSON (orjson when it can, the stdlib otherwise)."""
    try:
        import orjson

        return orjson.dumps(obj, default=str).decode("utf-8")
    except Exception:
        return json.dumps(obj, default=str, ensure_ascii=True, separators=(",", ":"))


def script_json(obj: Any) -> str:
    """JSON to embed in ``<script type="application/json">``: it cannot close the tag
    nor open a comment (``<``, ``>`` and ``&`` become ``\\u`` escapes, which JSON.parse
    reads back to the same characters)."""
    return (
        to_json(obj)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


# ---- keys -------------------------------------------------------------------------


def var_label(b: Binding) -> str:
    return f"{b.scope}.{b.var}"


def scope_key(b: Binding) -> str:
    return f"{b.module}:{b.scope}"


THREAD_NOT_RECORDED = "thread not recorded"
"""How the thread key "?" is shown: a binding whose call was not recorded (a sampled
function instance: its bindings carry no scope instance, so no thread)."""


def thread_key(b: Binding) -> str:
    return b.thread_name if b.thread else "?"


def task_key(b: Binding) -> str:
    return b.task_name or "-"


def _group_keys(b: Binding) -> tuple[str, str, str, str, str]:
    return (b.key, scope_key(b), b.type, thread_key(b), task_key(b))


def _group_label(grouping: str, key: str, an: Analysis) -> str:
    if grouping == "var" and key != OTHER:
        vs = an.vars.get(key)
        if vs is not None:
            return clean(f"{vs.scope}.{vs.var}")
    if grouping == "scope" and key != OTHER:
        module, _, qual = key.partition(":")
        return clean(qual if module in ("__main__", "?") else key)
    if grouping == "thread" and key == "?":
        return THREAD_NOT_RECORDED
    return clean(key)
