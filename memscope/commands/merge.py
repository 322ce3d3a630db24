"""``memscope merge A B... -o OUT``: several processes' captures into one."""

from __future__ import annotations

import os

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
    """Merge captures (one section per process); report it like any capture.

    A capture given twice, or two holding the same process, is refused. If one is
    incomplete (its process was killed), so is the merged capture, and it says which."""
    from memscope.capture import read_capture
    from memscope.reporters.merge import merge_captures

    try:
        caps = [read_capture(p) for p in captures]
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from None
    seen: dict[object, str] = {}
    for path, cap in zip(captures, caps, strict=True):
        real = os.path.realpath(path)
        if real in seen:
            raise click.ClickException(f"{path} is given twice (as {seen[real]} too)")
        seen[real] = path
        for p in cap.processes or ():
            key = ("process", p.pid, p.start_ns, p.extra.get("wall_ns", cap.header.wall_ns))
            if key in seen:
                raise click.ClickException(
                    f"{path} and {seen[key]} hold the same process (pid {p.pid}): "
                    "one is a copy of the other")
            seen[key] = path
    try:
        merged = merge_captures(list(captures), out)
    except (CaptureError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # the folder cannot be made, the disk is full: one line
        raise click.ClickException(
            f"cannot write {out}: {exc.strerror or exc}") from None
    for path, cap in zip(captures, caps, strict=True):
        if not cap.header.complete:
            click.echo(f"warning: {path}: {cap.recovery.message}; the merged capture is "
                       "incomplete too", err=True)
    click.echo(str(merged))
