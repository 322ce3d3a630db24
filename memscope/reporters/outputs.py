"""The reporters' one interface and their registry.

Every output is made the same way: an ``Output`` is created for the formats asked for,
follows the one replay of the events (``attach``: it may hook the analysis as it
streams), and writes its files once the replay is done (``finish``). Formats that share
their aggregation share an output: html, svg and timeline one chart collector, json and
bindings one JSON report. ``OUTPUTS`` lists them; ``memscope.reporters.report`` and
``export`` go through it, so a new format is one class here and one name in
``memscope.formats``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol


class Output(Protocol):
    """One output (or a family sharing its aggregation) of a replay."""

    formats: frozenset[str]  # the formats it writes, of those asked for

    def attach(self, an: Any) -> None:
        """Hook the analysis before the replay (or do nothing)."""

    def on_binding_end(self) -> Callable[[Any], None] | None:
        """A callback for every binding that ends during the replay, or None."""

    def finish(self, run: Any, out: Path, name: str, progress: Any) -> list[Path]:
        """Write the files, once the replay is done; returns them."""

    def abort(self) -> None:
        """The replay failed: drop what was started."""


class Charts:
    """html, svg, timeline: one bounded collector while the events stream."""

    def __init__(self, formats: frozenset[str]) -> None:
        from memscope.reporters import _html, _svg
        from memscope.reporters._charts import RAW_LIMIT, Collector

        self.formats = formats
        self.html = _html() if "html" in formats else None
        self.svg = _svg() if formats & {"svg", "timeline"} else None
        self.collector = Collector(raw_limit=RAW_LIMIT if self.html is not None else 0)

    def attach(self, an: Any) -> None:
        self.collector.attach(an)

    def on_binding_end(self) -> Callable[[Any], None] | None:
        return None

    def finish(self, run: Any, out: Path, name: str, progress: Any) -> list[Path]:
        written: list[Path] = []
        co = self.collector
        try:
            if self.html is not None:
                with progress.step("dashboard"):
                    written += list(self.html.write(run.analysis, out, name, run.meta,
                                                    collector=co))
            if self.svg is not None and "svg" in self.formats:
                with progress.step("memory chart"):
                    written.append(self.svg.write_memory_analysis(
                        run.analysis, out / f"{name}_memory_analysis.svg", run.meta,
                        collector=co))
            if self.svg is not None and "timeline" in self.formats:
                with progress.step("lifecycle timeline"):
                    written.append(self.svg.write_lifecycle_timeline(
                        run.analysis, out / f"{name}_lifecycle_timeline.svg", run.meta,
                        collector=co))
        finally:
            co.raw.close()
        return written

    def abort(self) -> None:
        self.collector.raw.close()


class _Json:
    """json (aggregated) and bindings (every binding, streamed): one JSON report."""

    def __init__(self, formats: frozenset[str], out: Path, name: str,
                 meta: dict[str, Any]) -> None:
        from memscope.reporters.json_report import JsonReport

        self.formats = formats
        self.rep = JsonReport(out, name, meta, aggregated="json" in formats,
                              detail="bindings" in formats)

    def attach(self, an: Any) -> None:
        self.rep.attach(an)

    def on_binding_end(self) -> Callable[[Any], None] | None:
        return self.rep.on_binding_end

    def finish(self, run: Any, out: Path, name: str, progress: Any) -> list[Path]:
        with progress.step("JSON"):
            return list(self.rep.finish(run.analysis, kinds=run.kinds, sampled=run.sampled,
                                        seconds=run.seconds))

    def abort(self) -> None:
        self.rep.abort()


class _Summary:
    """summary: the terminal summary, as a text file."""

    formats = frozenset({"summary"})

    def attach(self, an: Any) -> None:
        pass

    def on_binding_end(self) -> Callable[[Any], None] | None:
        return None

    def finish(self, run: Any, out: Path, name: str, progress: Any) -> list[Path]:
        from memscope.reporters.summary import summary_of

        p = out / f"{name}_summary.txt"
        text = summary_of(run.analysis, run.meta, io.StringIO(), color=False, t0=run.t0)
        p.write_text(text, encoding="utf-8")
        return [p]

    def abort(self) -> None:
        pass


# format family -> how to make its output (the capture copy, "binary", needs no replay
# and is made apart, by ``memscope.reporters.report``)
OUTPUTS: tuple[tuple[frozenset[str], Callable[..., Output]], ...] = (
    (frozenset({"json", "bindings"}),
     lambda fmts, out, name, meta, caps: _Json(fmts, out, name, meta)),
    (frozenset({"html", "svg", "timeline"}),
     lambda fmts, out, name, meta, caps: Charts(fmts)),
    (frozenset({"summary"}), lambda fmts, out, name, meta, caps: _Summary()),
)


def outputs_for(formats: list[str], out: Path, name: str, meta: dict[str, Any],
                caps: Any = None) -> list[Output]:
    """The outputs that write ``formats``, in the registry's order."""
    wanted = frozenset(formats)
    return [make(family & wanted, out, name, meta, caps)
            for family, make in OUTPUTS if family & wanted]
