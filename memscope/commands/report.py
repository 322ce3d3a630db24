"""``memscope report CAPTURE... [-f html,svg,timeline,json,...] [-o DIR]``."""

from __future__ import annotations

from pathlib import Path

import click

from memscope import formats as F
from memscope.capture import CaptureError


@click.command("report")
@click.argument("captures", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-f",
    "--format",
    "formats",
    default=",".join(F.REPORT_DEFAULT),
    show_default=True,
    help=f"Comma-separated outputs (or all): {F.help_text()}.",
)
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Folder for the outputs [default: MemoryAnalysis/<name>/].",
)
@click.option("-n", "--name", help="Name of the outputs [default: from the capture file].")
def report(captures: tuple[str, ...], formats: str, out_dir: str | None, name: str | None) -> None:
    """Make reports from one or more captures (several = several processes, merged)."""
    from memscope.reporters import ReportError
    from memscope.reporters import report as make
    from memscope.reporters._progress import Progress
    from memscope.reporters.meta import capture_name

    name = name or capture_name(captures[0])
    folder = Path(out_dir) if out_dir else Path("MemoryAnalysis") / name
    progress = Progress()
    try:
        written = make(list(captures), folder, name, formats, progress=progress)
    except (CaptureError, ReportError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # a write that failed (disk full, a folder in the way)
        raise click.ClickException(
            f"cannot write the reports into {folder}: {exc.strerror or exc}") from None
    finally:
        progress.close()
    for p in written:
        click.echo(str(p))
    warn_incomplete(captures)


def warn_incomplete(captures: tuple[str, ...] | list[str]) -> None:
    """Say on stderr which captures are incomplete (the reports say it too)."""
    from memscope.capture import format as F
    from memscope.capture import read_capture

    for path in captures:
        try:
            cap = read_capture(path)
        except CaptureError:
            continue
        if not cap.header.complete:
            why = cap.recovery.message
            if cap.header.flags & F.FLAG_MERGED:
                why = "merged from captures one of which is incomplete (its errors say which)"
            click.echo(f"warning: {path}: {why}; the reports lack what was not written",
                       err=True)
