"""The HTML dashboard: one self-contained, offline file.

The report model (``memscope.reporters._charts.build_model``) is embedded as JSON in a
``<script type="application/json">`` block, escaped so that no string from the program
can close the tag; a plain-JavaScript renderer (no library, no network) draws every
panel with inline SVG and DOM nodes, putting program strings only through
``textContent`` and ``setAttribute``, never through markup.

The page is written in pieces: the model (bounded), then the raw detail streamed from
the collector's temporary column files through zlib and base64, so writing it never
holds every binding in memory.
"""

from __future__ import annotations

import html as _html
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memscope.analysis import Analysis
from memscope.reporters._charts import RAW_LIMIT, Collector, build_model, raw_header, script_json

_ASSETS = Path(__file__).with_name("_assets")


def _asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


def _write_page(
    write: Callable[[str], Any],
    analysis: Analysis,
    meta: dict[str, Any] | None,
    collector: Collector | None,
    raw_limit: int,
    options: dict[str, Any],
) -> None:
    meta = dict(meta or {})
    co = (
        collector
        if collector is not None
        else Collector.from_analysis(analysis, raw_limit=raw_limit)
    )
    try:
        co.close(analysis)
        model = build_model(analysis, meta, collector=co, **options)
        model["raw"] = raw_header(co)
        # the raw columns count from the collector's first binding; the page from the
        # run's start, like every other time in the model
        model["raw"]["t_offset"] = model["raw_shift"]
        title = f"memscope · {model['info']['name']}"
        # CSP: nothing may be fetched; inline script and style only
        csp = (
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "img-src data:; connect-src 'none'; font-src 'none'; form-action 'none'; "
            "base-uri 'none'"
        )
        write(
            "<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_html.escape(title)}</title>\n"
            f"<style>\n{_asset('dashboard.css')}\n</style>\n"
            "</head>\n<body>\n"
            f"{_asset('dashboard.html')}\n"
            '<script type="application/json" id="memscope-data">'
        )
        write(script_json(model))
        del model
        # raw detail: base64 of zlib-compressed columns, inert (never executed), decoded
        # by the renderer only when asked for (DecompressionStream)
        write('</script>\n<script type="application/octet-stream" id="memscope-raw">')
        co.raw.write_base64(write)
        write(f"</script>\n<script>\n{_asset('dashboard.js')}\n</script>\n</body>\n</html>\n")
    finally:
        if collector is None:
            co.raw.close()


def render(
    analysis: Analysis,
    meta: dict[str, Any] | None = None,
    *,
    collector: Collector | None = None,
    raw_limit: int = RAW_LIMIT,
    **options: Any,
) -> str:
    """The dashboard as one HTML string (``write`` streams it to a file instead).

    ``collector``: what was aggregated while the analysis streamed (``Collector.attach``),
    for an analysis that did not keep its history. ``raw_limit``: at most this many
    bindings go into the page's raw detail (every binding, compressed; the rest are
    counted)."""
    buf = io.StringIO()
    _write_page(buf.write, analysis, meta, collector, raw_limit, options)
    return buf.getvalue()


def write(
    analysis: Analysis,
    out_dir: Path,
    name: str,
    meta: dict[str, Any] | None = None,
    *,
    collector: Collector | None = None,
    raw_limit: int = RAW_LIMIT,
) -> list[Path]:
    """Write ``<out_dir>/<name>_dashboard.html``; returns ``[path]``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    meta.setdefault("name", name)
    path = out_dir / f"{name}_dashboard.html"
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            _write_page(f.write, analysis, meta, collector, raw_limit, {})
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # no half-written page left behind
        raise
    return [path]
