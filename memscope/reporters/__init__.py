"""Reporters: each turns recorded events (a live tracker or a capture) into an output.

``report(source, out_dir, name, formats)`` makes several outputs in one pass over the
events, through the one interface and registry of ``memscope.reporters.outputs``;
``export(tracker, fmt, target)`` serves the tracker's ``export_*`` methods. HTML and
SVG come from ``memscope.reporters.html`` / ``memscope.reporters.svg``, imported only
when asked for.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from memscope.formats import FORMATS as FORMATS  # the one list (memscope.formats)
from memscope.formats import FormatError


class ReportError(Exception):
    """A report could not be made (the message says which and why)."""


def _html() -> Any:
    try:
        from memscope.reporters import html
    except ImportError as exc:
        raise ReportError(f"the html reporter is not available in this build: {exc}") from None
    return html


def _svg() -> Any:
    try:
        from memscope.reporters import svg
    except ImportError as exc:
        raise ReportError(f"the svg reporter is not available in this build: {exc}") from None
    return svg


def parse_formats(spec: str | Iterable[str] | None) -> list[str]:
    """The formats asked for (``memscope.formats``: one list for every command)."""
    from memscope import formats

    try:
        return formats.parse(spec if spec is None or isinstance(spec, str) else list(spec))
    except FormatError as exc:
        raise ReportError(str(exc)) from None


def report(
    source: Any,
    out_dir: str | os.PathLike[str],
    name: str | None = None,
    formats: str | Iterable[str] | None = None,
    *,
    meta: dict[str, Any] | None = None,
    progress: Any = None,
) -> list[Path]:
    """Every output of ``formats`` for ``source`` (capture paths / captures / a tracker)
    into ``out_dir``, from one pass over the events; returns the files written.
    ``progress``: a ``memscope.reporters.progress.Progress`` told of each step."""
    from memscope.reporters import load
    from memscope.reporters._progress import Quiet
    from memscope.reporters.outputs import outputs_for

    prog = progress if progress is not None else Quiet()
    fmts = parse_formats(formats)
    if "html" in fmts:
        _html()  # not in this build: said before any work
    if "svg" in fmts or "timeline" in fmts:
        _svg()
    pre = load.prepare(source, meta)
    name = name or str(pre.meta.get("name") or "memscope")
    pre.meta["name"] = name
    out = Path(out_dir)
    make_folder(out)
    written: list[Path] = []
    if "binary" in fmts and pre.caps:
        written.append(_capture_copy(pre.caps, out / f"{name}.memscope"))
    outs = outputs_for(fmts, out, name, pre.meta, pre.caps)
    ends = [cb for cb in (o.on_binding_end() for o in outs) if cb is not None]

    def attach(an: Any) -> None:
        for o in outs:
            o.attach(an)

    def ended(b: Any) -> None:
        for cb in ends:
            cb(b)

    try:
        run = pre.run(
            keep_history=False,
            on_binding_end=(ends[0] if len(ends) == 1 else ended) if ends else None,
            attach=attach,
            progress=prog,
        )
    except BaseException:
        for o in outs:
            o.abort()
        raise
    # what the replay keeps (the analysis, the charts' aggregates) is not garbage: the
    # cyclic collector passes over it no more while the files are written (a collection
    # of the oldest generation took a sixth of the writing of a 10^6-event report). Not
    # for a live tracker, whose objects are the program's own, nor when something froze
    # objects already (``unfreeze`` would let those go too).
    frozen = pre.tracker is None and gc.isenabled() and not gc.get_freeze_count()
    if frozen:
        gc.freeze()
    try:
        for k, o in enumerate(outs):
            try:
                written += o.finish(run, out, name, prog)
            except BaseException:
                for later in outs[k + 1:]:
                    later.abort()
                raise
    finally:
        if frozen:
            gc.unfreeze()
    return written


def make_folder(folder: Path) -> None:
    """Create the output folder, or say in one line why it cannot be (ReportError)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise ReportError(f"cannot create the output folder {folder}: {why}") from None


def _capture_copy(caps: list[Any], path: Path) -> Path:
    """``binary`` in a report: the inputs as one capture beside the reports (a copy of
    a single input, else merged), unless the single input already is that file."""
    import shutil

    from memscope.reporters.merge import merge_captures

    if len(caps) == 1:
        src = Path(caps[0].path)
        if path.exists() and os.path.samefile(src, path):
            return path
        shutil.copyfile(src, path)
        return path
    return merge_captures([c.path for c in caps], path)


def _target(tracker: Any, target: Any, suffix: str) -> tuple[Path, str]:
    """(folder, name) for an export: ``None`` -> the tracker's folder and name; a bare
    name -> ``<output_dir>/<name>/``; a path -> that folder (or file, with a suffix)."""
    if target is None:
        return Path(tracker.output_dir), tracker.name
    t = os.fspath(target)
    if os.sep not in t and "/" not in t and not t.endswith(suffix or "\0"):
        return Path(tracker.config.output_dir) / t, t
    p = Path(t)
    if suffix and p.suffix == suffix:
        return p.parent, p.name[: -len(suffix)]
    return p, tracker.name


def export(tracker: Any, fmt: str, target: Any = None, **options: Any) -> Path:
    """Write ``fmt`` (one of ``memscope.formats``) for a live tracker; returns the
    folder (json, bindings) or the file written."""
    from memscope.reporters.meta import meta_from_tracker

    fmt = fmt.lower()
    if fmt in ("json", "bindings"):
        from memscope.reporters.json_report import write_json

        folder, name = _target(tracker, target, "")
        make_folder(folder)
        write_json(tracker, folder, name, meta_from_tracker(tracker),
                   aggregated=fmt == "json", detail=fmt == "bindings")
        return folder
    if fmt == "binary":
        return export_binary(tracker, target, mode=options.get("mode", "user"))
    if fmt == "summary":
        from memscope.reporters.summary import write_summary

        folder, name = _target(tracker, target, ".txt")
        make_folder(folder)
        p = folder / f"{name}_summary.txt"
        with open(p, "w", encoding="utf-8") as f:
            write_summary(tracker, f, color=False, meta=meta_from_tracker(tracker))
        return p
    if fmt in ("html", "svg", "timeline"):
        from memscope.reporters import load
        from memscope.reporters.outputs import Charts

        # aggregated while the events stream, as ``report`` does: no history kept
        charts = Charts(frozenset({fmt}))
        co = charts.collector
        try:
            run = load.prepare(tracker, meta_from_tracker(tracker)).run(
                keep_history=False, attach=charts.attach
            )
            if charts.html is not None:
                folder, name = _target(tracker, target, ".html")
                return Path(charts.html.write(run.analysis, folder, name, run.meta,
                                              collector=co)[0])
            mod: Any = charts.svg
            kind = "memory_analysis" if fmt == "svg" else "lifecycle_timeline"
            if target is not None and os.fspath(target).endswith(".svg"):
                path = Path(target)
                if path.parent == Path():  # a bare file name goes with the run's reports
                    path = Path(tracker.output_dir) / path
            else:
                folder, name = _target(tracker, target, ".svg")
                path = folder / f"{name}_{kind}.svg"
            fn = mod.write_memory_analysis if fmt == "svg" else mod.write_lifecycle_timeline
            return Path(fn(run.analysis, path, run.meta, collector=co))
        finally:
            co.raw.close()
    from memscope.formats import names

    raise ReportError(f"unknown export format {fmt!r}: expected one of {names()}")


def export_binary(tracker: Any, target: Any = None, *, mode: str = "user") -> Path:
    """A ``.memscope`` capture of everything recorded so far (``mode="user"``: only the
    bindings of user code, no standard library / site-packages / memscope)."""
    from memscope.capture.writer import is_user_file, write_capture
    from memscope.events import BIND, PROC, SCOPE, SITE, UNBIND

    if mode not in ("user", "full"):
        raise ReportError(f"mode={mode!r}: expected 'user' or 'full'")
    folder, name = _target(tracker, target, ".memscope")
    path = folder / f"{name}.memscope"

    def events() -> Iterable[Any]:
        user_scopes: set[int] = set()
        user_sites: set[int] = set()
        first = True
        for ev in tracker.events():
            if first and ev[0] != PROC:
                yield tracker.process_event()
            first = False
            if mode == "user":
                k = ev[0]
                if k == SCOPE and is_user_file(ev[2]):
                    user_scopes.add(ev[1])
                elif k == SITE and ev[2] in user_scopes:
                    user_sites.add(ev[1])
                elif k in (BIND, UNBIND) and ev[2] not in user_sites:
                    continue
            yield ev

    cfg = getattr(tracker, "config", None)
    return write_capture(
        path,
        events(),
        export_mode=mode,
        runtime_mode=getattr(cfg, "mode", "unknown"),
        start_ns=tracker.start_ns,
    )
