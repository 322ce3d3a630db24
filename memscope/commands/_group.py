"""The click group behind ``memscope`` (``memscope.cli``): every subcommand, ``--help``
and ``--version``, except a direct ``memscope run``, which ``memscope.cli`` hands to
``memscope.commands.run`` without importing click."""

from __future__ import annotations

import importlib

import click

from memscope import __version__
from memscope.commands import run as _run

COMMANDS = ("run", "report", "summary", "diff", "merge", "warm")


class _LazyGroup(click.Group):
    """Imports a subcommand's module only when that subcommand is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "run":
            return run
        if cmd_name not in COMMANDS:
            return None
        cmd = getattr(importlib.import_module(f"memscope.commands.{cmd_name}"), cmd_name)
        assert isinstance(cmd, click.Command)
        return cmd


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``--version``: the version, and which hot path and census walk this install runs
    (the C ones need the extensions built at install time; memscope.census is imported
    only here)."""
    if not value or ctx.resilient_parsing:
        return
    from memscope import _compiled, _hooks, census

    walk = "C" if census.ACCELERATED else "pure Python"
    hot = "C" if _hooks.ACCELERATED else "pure Python"
    click.echo(f"memscope, version {__version__} (hot path: {hot}; census walk: {walk}; "
               f"report modules: {_compiled.STATE})")
    ctx.exit()


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_show_version, help="Show the version and exit.")
def group() -> None:
    """Memory tracking by variable name."""


@click.command(
    "run",
    help=_run.DOC,
    short_help=_run.SHORT_HELP,
    add_help_option=False,  # --help too goes to run's own parser
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run(ctx: click.Context, argv: tuple[str, ...]) -> None:
    """``memscope run`` reached through the group: its arguments go to
    ``memscope.commands.run``'s parser, where its options are declared once."""
    _run.main(list(argv), ctx.command_path)
