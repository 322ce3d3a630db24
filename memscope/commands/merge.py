"""``memscope merge A B... -o OUT``: several processes' captures into one."""

from __future__ import annotations

import click

from memscope.capture import CaptureError


@click.command("merge")
@click.argument("captures", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="The merged capture to write.",
)
def merge(captures: tuple[str, ...], out: str) -> None:
    """Merge captures (one section per process); report it like any capture."""
    from memscope.reporters.merge import merge_captures

    try:
        p = merge_captures(list(captures), out)
    except (CaptureError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(str(p))
