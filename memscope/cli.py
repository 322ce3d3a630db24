"""The ``memscope`` command. Each subcommand lives in ``memscope/commands/<name>.py`` and
is imported only when it runs (``memscope run`` does not pay for the reporters' imports
before the program starts).

``memscope run`` does not import click at all: its arguments go straight to the parser
of ``memscope.commands.run`` (click cost ~15 ms of the program's start-up). Every other
subcommand, ``--help`` and ``--version`` go through the click group in
``memscope.commands._group``.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any


class Main:
    """The ``memscope`` command, called like a click command: ``main()`` (the console
    script, ``python -m memscope``) or ``main.main(args, prog_name)`` (click's
    ``CliRunner``)."""

    name = "main"

    def __call__(
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        return self.main(args, prog_name, **extra)

    def main(
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        argv = sys.argv[1:] if args is None else list(args)
        if argv[:1] == ["run"]:
            from memscope.commands import run

            run.main(argv[1:], f"{prog_name or _prog_name()} run")
        from memscope.commands._group import group

        return group.main(argv, prog_name, **extra)


def _prog_name() -> str:
    """The program's name as click shows it: ``memscope``, or ``python -m memscope``."""
    main_mod = sys.modules.get("__main__")
    if getattr(main_mod, "__package__", None) == "memscope":
        return "python -m memscope"
    return os.path.basename(sys.argv[0])


main = Main()
