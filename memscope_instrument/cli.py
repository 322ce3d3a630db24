"""``memscope-instrument SRC... -o OUT``: instrument a whole tree (see tree.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from memscope_instrument import tree
from memscope_instrument.transform import Options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("srcs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), help="Output directory.")
@click.option("--jobs", "-j", type=int, default=0, help="Parallel workers (default: cores).")
@click.option("--mode", type=click.Choice(["fast", "full"]), default="fast", show_default=True)
@click.option("--include", multiple=True, help="Only instrument .py files matching GLOB.")
@click.option("--exclude", multiple=True, help="Leave out files/dirs matching GLOB.")
@click.option("--diff", "want_diff", is_flag=True, help="Print a unified diff, write nothing.")
@click.option("--check", is_flag=True, help="Exit 1 if anything would change, write nothing.")
@click.option("--in-place", is_flag=True, help="Rewrite the sources themselves.")
@click.option("--imports", is_flag=True, help="Also record import bindings.")
@click.option("--comprehensions", is_flag=True, help="Also record comprehension targets.")
@click.option("--on-error", type=click.Choice(["copy", "skip"]), default="copy",
              show_default=True, help="A file that fails: copy it unchanged or leave it out.")
@click.option("--no-cache", is_flag=True, help="Transform every file again.")
@click.option("-q", "--quiet", is_flag=True, help="Only the summary line and errors.")
def main(srcs: tuple[Path, ...], out: Path | None, jobs: int, mode: str,
         include: tuple[str, ...], exclude: tuple[str, ...], want_diff: bool, check: bool,
         in_place: bool, imports: bool, comprehensions: bool, on_error: str, no_cache: bool,
         quiet: bool) -> None:
    """Instrument Python sources so memscope records memory by variable name."""
    write = not (want_diff or check)
    if write and out is None and not in_place:
        raise click.UsageError("give -o OUT, --in-place, --diff or --check")
    if out is not None and in_place:
        raise click.UsageError("-o and --in-place exclude each other")
    errors: list[str] = []
    if out is not None:
        rout = os.path.realpath(out)
        for s in srcs:
            rs = os.path.realpath(s)
            if s.is_dir() and (rout == rs or rout.startswith(rs.rstrip(os.sep) + os.sep)):
                raise click.UsageError(f"OUT {out} is inside SRC {s}")
    target = out if (write and not in_place) else None  # None: files stay where they are
    items = tree.plan(list(srcs), target, list(include), list(exclude), errors)
    for e in errors:
        click.echo(f"error: {e}", err=True)
    if not items and errors and all("no such file" in e for e in errors):
        click.echo(f"memscope-instrument: nothing to do ({len(errors)} errors)", err=True)
        sys.exit(2)
    if target is not None:
        try:  # made here, so that a folder that cannot be is one line, not the first write's
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise click.ClickException(
                f"cannot create the output folder {target}: {why}") from None
    options = Options(mode=mode, imports=imports, comprehensions=comprehensions)
    progress_cb = None
    bar = None
    if sys.stderr.isatty() and not quiet and not want_diff:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        bar = Progress("[progress.description]{task.description}", BarColumn(),
                       MofNCompleteColumn(), TimeElapsedColumn(), transient=True)
        task = bar.add_task("instrumenting", total=len(items))
        bar.start()

        def progress_cb(done: int, total: int) -> None:
            bar.update(task, completed=done)

    cache_dir = None
    if write and not no_cache and out is not None:
        cache_dir = out
    try:
        summary = tree.run(items, options, jobs=jobs or os.cpu_count() or 1, write=write,
                           want_diff=want_diff, on_error=on_error, cache_dir=cache_dir,
                           progress=progress_cb,
                           emit=lambda m: click.echo(m, err=m.startswith("error:")))
    finally:
        if bar is not None:
            bar.stop()
    summary.failed += len(errors)
    click.echo(summary.line(), err=True)
    if summary.failed:
        sys.exit(1)
    if check and summary.changed:
        click.echo(f"{summary.changed} files would change", err=True)
        sys.exit(1)
if __name__ == "__main__":
    main()
