"""The ``memscope`` command. Each subcommand lives in ``memscope/commands/<name>.py`` and
is imported only when it runs (``memscope run`` does not pay for the reporters' imports
before the program starts)."""

from __future__ import annotations

import importlib

import click

from memscope import __version__

# subcommand name -> the module under memscope.commands that defines it (same name)
COMMANDS = ("run", "report", "summary", "diff", "merge")


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        cmd = getattr(importlib.import_module(f"memscope.commands.{cmd_name}"), cmd_name)
        assert isinstance(cmd, click.Command)
        return cmd


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="memscope")
def main() -> None:
    """Memory tracking by variable name."""
