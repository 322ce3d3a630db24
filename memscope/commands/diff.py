"""``memscope diff A B``: what changed between two runs, by variable."""

from __future__ import annotations

import sys

import click
import orjson

from memscope.capture import CaptureError

STATUSES = ("new", "gone", "grown", "shrunk")


def _parse_bytes(text: str) -> int:
    t = text.strip().lower().replace(" ", "")
    units = {
        "kib": 1024,
        "mib": 1 << 20,
        "gib": 1 << 30,
        "kb": 1000,
        "mb": 10**6,
        "gb": 10**9,
        "k": 1024,
        "m": 1 << 20,
        "g": 1 << 30,
        "b": 1,
    }
    for u, mult in units.items():
        if t.endswith(u):
            return int(float(t[: -len(u)]) * mult)
    return int(t)


@click.command("diff")
@click.argument("a", type=click.Path(exists=True, dir_okay=False))
@click.argument("b", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--threshold",
    default="0",
    show_default=True,
    help="Ignore changes of a variable's bytes up to this size (e.g. 4096, 10KiB, 1MiB).",
)
@click.option(
    "--percent",
    default=0.0,
    show_default=True,
    help="... and changes up to this percentage of the old value.",
)
@click.option(
    "--fail-on",
    default="new,grown",
    show_default=True,
    help="Exit with status 1 if any change of these kinds (new,gone,grown,shrunk,"
    "none) remains after the thresholds.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON.")
@click.option("--top", default=50, show_default=True, help="Rows per kind of change.")
def diff(
    a: str, b: str, threshold: str, percent: float, fail_on: str, as_json: bool, top: int
) -> None:
    """What each variable (module:qualname:variable) retains in capture A against B:
    its largest retained size in a census, else its largest size when bound.

    Exit status: 0 no change of a --fail-on kind, 1 there is one, 2 usage or read error.
    """
    from memscope.reporters._format import shown
    from memscope.reporters.diff import diff_captures
    from memscope.reporters.summary import fmt_bytes

    try:
        limit = _parse_bytes(threshold)
    except ValueError:
        raise click.BadParameter(f"not a size: {threshold!r}", param_hint="--threshold") from None
    fails = {s.strip() for s in fail_on.split(",") if s.strip() and s.strip() != "none"}
    bad = fails - set(STATUSES)
    if bad:
        raise click.BadParameter(f"unknown kinds {sorted(bad)}", param_hint="--fail-on")
    from memscope.reporters._progress import Progress

    progress = Progress()
    try:
        d = diff_captures(a, b, threshold=limit, percent=percent, progress=progress)
    except CaptureError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        progress.close()
    from memscope.commands.report import warn_incomplete

    warn_incomplete((a, b))  # a killed run's capture lacks its end: said, on stderr
    if as_json:
        click.echo(orjson.dumps(d.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(f"process peak (resident): {fmt_bytes(d.peak_before)} -> "
                   f"{fmt_bytes(d.peak_after)}")
        if d.named_before >= 0 or d.named_after >= 0:
            named = [fmt_bytes(n) if n >= 0 else "-" for n in (d.named_before, d.named_after)]
            click.echo(f"named at the peak: {named[0]} -> {named[1]}")
        for status in ("new", "grown", "shrunk", "gone"):
            rows = d.of(status)
            if not rows:
                continue
            click.echo(f"\n{status} ({len(rows)}):")
            for c in rows[:top]:
                before = fmt_bytes(c.before) if c.before >= 0 else "-"
                after = fmt_bytes(c.after) if c.after >= 0 else "-"
                sign = "+" if c.delta >= 0 else "-"
                click.echo(
                    f"  {shown(c.key)}  {before} -> {after}  ({sign}{fmt_bytes(abs(c.delta))}"
                    f" {c.measure})  {shown(c.file)}:{c.line}"
                )
            if len(rows) > top:
                click.echo(f"  ... {len(rows) - top} more")
        if not any(d.of(s) for s in STATUSES):
            click.echo("no changes beyond the thresholds")
    if any(d.of(s) for s in fails):
        sys.exit(1)
