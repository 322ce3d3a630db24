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


_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def clean(s: Any) -> str:
    """Text safe to serialise anywhere: lone surrogates and NULs replaced."""
    t = s if isinstance(s, str) else str(s)
    if t.isascii() and "\x00" not in t:
        return t
    return _UNSAFE.sub("\ufffd", t)


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
    return clean(key)
