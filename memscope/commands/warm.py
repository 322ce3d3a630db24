"""``memscope warm PKG...``: instrument packages into the cache before the first run."""

from __future__ import annotations

import sys

import click

from memscope_instrument import warm as _warm


@click.command("warm", short_help="Instrument packages into the cache ahead of a run.")
@click.argument("packages", nargs=-1, required=True)
@click.option("--mode", type=click.Choice(["fast", "full", "both"]), default="fast",
              show_default=True, help="The mode of the runs to prepare for.")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=0,
              help="Worker processes (default: one per core).")
@click.option("-q", "--quiet", is_flag=True, help="Only the summary line and failures.")
def warm(packages: tuple[str, ...], mode: str, jobs: int, quiet: bool) -> None:
    """Instrument every module of PACKAGES into memscope's cache of instrumented code,
    in parallel, so that the first `memscope run --include PACKAGE` (or the import hook)
    loads them as fast as later runs do. The cache lives beside each module's bytecode
    (__pycache__) and is used only while the source, the settings, memscope and Python
    are unchanged."""
    modes = _warm.MODES if mode == "both" else (mode,)
    bar = None
    progress = None
    if sys.stderr.isatty() and not quiet:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        bar = Progress("[progress.description]{task.description}", BarColumn(),
                       MofNCompleteColumn(), TimeElapsedColumn(), transient=True,
                       console=Console(stderr=True))
        task = bar.add_task("instrumenting", total=None)
        bar.start()

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

    try:
        res = _warm.warm(packages, modes, jobs, progress)
    except _warm.WarmError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        if bar is not None:
            bar.stop()
    for failure in res.failed:
        click.echo(f"memscope warm: not instrumented: {failure}", err=True)
    click.echo(
        f"memscope warm: {', '.join(packages)}: {res.modules:,} modules, {res.lines:,} lines"
        f" ({'/'.join(modes)} mode): {res.instrumented:,} instrumented,"
        f" {res.already:,} already warm, {len(res.failed):,} failed;"
        f" {res.seconds:.1f} s with {res.jobs} worker{'s' if res.jobs != 1 else ''}",
        err=True)
    if res.failed:
        sys.exit(1)
