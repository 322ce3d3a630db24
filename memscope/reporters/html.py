"""The HTML dashboard: one self-contained, offline file.

The report model (``memscope.reporters._charts.build_model``) is embedded as JSON in a
``<script type="application/json">`` block, escaped so that no string from the program
can close the tag; a plain-JavaScript renderer (no library, no network) draws every
panel with inline SVG and DOM nodes, putting program strings only through
``textContent`` and ``setAttribute``, never through markup.
"""

from __future__ import annotations

import html as _html
from pathlib import Path
from typing import Any

from memscope.analysis import Analysis
from memscope.reporters._charts import RAW_LIMIT, Store, build_model, raw_block, script_json

_ASSETS = Path(__file__).with_name("_assets")


def _asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


def render(
    analysis: Analysis,
    meta: dict[str, Any] | None = None,
    *,
    store: Store | None = None,
    raw_limit: int = RAW_LIMIT,
    **options: Any,
) -> str:
    """The dashboard as one HTML string.

    ``store``: the bindings packed while the analysis streamed (``Store.attach``), for
    an analysis that did not keep its history. ``raw_limit``: at most this many bindings
    go into the page's raw detail (every binding, compressed; the rest are counted)."""
    meta = dict(meta or {})
    st = store.close(analysis) if store is not None else Store.from_analysis(analysis)
    model = build_model(analysis, meta, store=st, **options)
    t0 = analysis.t_first if analysis.t_first >= 0 else 0
    model["raw"], raw = raw_block(st, t0, raw_limit)
    title = f"memscope · {model['info']['name']}"
    # CSP: nothing may be fetched; inline script and style only
    csp = (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "img-src data:; connect-src 'none'; font-src 'none'; form-action 'none'; "
        "base-uri 'none'"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_html.escape(title)}</title>\n"
        f"<style>\n{_asset('dashboard.css')}\n</style>\n"
        "</head>\n<body>\n"
        f"{_asset('dashboard.html')}\n"
        '<script type="application/json" id="memscope-data">'
        f"{script_json(model)}"
        "</script>\n"
        # raw detail: base64 of zlib-compressed columns, inert (never executed), decoded
        # by the renderer only when asked for (DecompressionStream)
        f'<script type="application/octet-stream" id="memscope-raw">{raw}</script>\n'
        f"<script>\n{_asset('dashboard.js')}\n</script>\n"
        "</body>\n</html>\n"
    )


def write(
    analysis: Analysis,
    out_dir: Path,
    name: str,
    meta: dict[str, Any] | None = None,
    *,
    store: Store | None = None,
    raw_limit: int = RAW_LIMIT,
) -> list[Path]:
    """Write ``<out_dir>/<name>_dashboard.html``; returns ``[path]``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    meta.setdefault("name", name)
    path = out_dir / f"{name}_dashboard.html"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render(analysis, meta, store=store, raw_limit=raw_limit), encoding="utf-8")
    tmp.replace(path)
    return [path]
