"""``memscope summary CAPTURE...``: the terminal report."""

from __future__ import annotations

import click

from memscope.capture import CaptureError


@click.command("summary")
@click.argument("captures", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--top", default=15, show_default=True, help="Rows per table.")
@click.option("--width", default=None, type=int, help="Width in columns [default: terminal].")
@click.option("--color/--no-color", default=None, help="Force colours on or off.")
def summary(captures: tuple[str, ...], top: int, width: int | None, color: bool | None) -> None:
    """The process peak and what named variables retain of it, totals, top variables by
    retained bytes, scopes, leaks, threads and processes."""
    import shutil

    from memscope.reporters._progress import Progress
    from memscope.reporters.summary import write_summary

    progress = Progress()
    try:
        write_summary(
            list(captures),
            None,
            width=width or shutil.get_terminal_size().columns,
            color=color,
            top=top,
            progress=progress,
        )
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        progress.close()
