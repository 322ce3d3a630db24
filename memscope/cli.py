"""The ``memscope`` command. Each subcommand lives in ``memscope/commands/<name>.py``."""

from __future__ import annotations

import click

from memscope import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="memscope")
def main() -> None:
    """Memory tracking by variable name."""


# subcommands are added below, one line each: main.add_command(<command>)
from memscope.commands.run import run  # noqa: E402

main.add_command(run)
from memscope.commands.report import report  # noqa: E402

main.add_command(report)
from memscope.commands.summary import summary  # noqa: E402

main.add_command(summary)
from memscope.commands.diff import diff  # noqa: E402

main.add_command(diff)
from memscope.commands.merge import merge  # noqa: E402

main.add_command(merge)
