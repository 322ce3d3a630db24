"""The one list of output formats, read by ``memscope run --format``, ``memscope report
-f``, ``tracker.export*`` and their help texts, so a name accepted by one is accepted
by all. No imports: ``memscope run`` reads it before the program starts."""

from __future__ import annotations

FORMATS: dict[str, str] = {
    "binary": "the capture (.memscope; report: a copy, or the inputs merged into one)",
    "html": "the dashboard (one offline HTML file)",
    "svg": "the memory-analysis chart (SVG)",
    "timeline": "the lifecycle-timeline chart (SVG)",
    "json": "the JSON family, aggregated (its size does not grow with the run)",
    "bindings": "every binding and object, one JSON object a line (streamed; large)",
    "summary": "the terminal summary, as a text file",
}
RUN_DEFAULT = ("binary", "html", "svg", "timeline")
"""What ``memscope run`` writes unless told: the capture, the dashboard, the SVGs."""
REPORT_DEFAULT = ("html", "svg", "timeline")
"""What ``memscope report`` writes unless told (the capture is its input)."""


class FormatError(ValueError):
    """A format name not in ``FORMATS`` (the message lists them)."""


def parse(spec: str | list[str] | tuple[str, ...] | None,
          default: tuple[str, ...] = REPORT_DEFAULT) -> list[str]:
    """``"html, json"`` -> ``["html", "json"]``, in order, without repeats; ``all`` is
    every format; nothing given is ``default``."""
    if spec is None:
        return list(default)
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for part in parts:
        f = part.strip().lower()
        if not f:
            continue
        for one in FORMATS if f == "all" else (f,):
            if one not in FORMATS:
                raise FormatError(f"unknown format {f!r}: choose from {names()} (or all)")
            if one not in out:
                out.append(one)
    return out or list(default)


def names() -> str:
    return ", ".join(FORMATS)


def help_text() -> str:
    """One line per format, for ``--help``."""
    return "; ".join(f"{k}: {v}" for k, v in FORMATS.items())
