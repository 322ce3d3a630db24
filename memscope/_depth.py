"""The program's usable recursion depth under ``memscope run``: the same as under ``python``.

``python script.py`` runs the script's first frame straight from C; ``memscope run``
runs it from its own runner, several frames deep (7 Python frames and 2 C units on
3.11 from the console script, more through ``python -m memscope``), so the program
would hit ``RecursionError`` that many levels earlier. The runner measures its own
depth at the moment it starts the program, raises the interpreter's limit by exactly
that much, and shows the program its own numbers: ``sys.getrecursionlimit()`` reads
and ``sys.setrecursionlimit(n)`` sets the limit as plain Python would (the offset is
added underneath). What differs: threads start at depth 0 whatever ran before, so a
new thread has that many levels *more* room than under plain Python, and the two
functions are Python functions standing in for the builtins (same names, docs and
errors for bad input).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing is for the checker only
if TYPE_CHECKING:
    from typing import Any

_offset = [0]  # levels the runner takes below the program's first frame


def depth_of_caller() -> int:
    """The recursion depth the interpreter counts at the caller's frame (-1: unknown).
    Read off the error ``sys.setrecursionlimit`` gives for a limit below the depth:
    it names the depth, and the limit is left as it was."""
    limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(1)
    except RecursionError as exc:
        _, found, rest = str(exc).partition("recursion depth ")
        digits = rest.split(":", 1)[0].strip()
        if found and digits.isdigit():
            return int(digits) - 1  # this function's own frame
        return -1
    except Exception:
        return -1
    sys.setrecursionlimit(limit)  # (did not raise: no depth to read)
    return -1


def as_python(offset: int) -> None:
    """Give the program ``offset`` more levels (the runner's own depth), hidden from it."""
    if offset <= 0 or _offset[0] or not _is_builtin(sys.getrecursionlimit):
        return
    real_get, real_set = sys.getrecursionlimit, sys.setrecursionlimit
    try:
        real_set(real_get() + offset)
    except (RecursionError, ValueError, OverflowError):
        return
    _offset[0] = offset

    def getrecursionlimit() -> int:
        return real_get() - _offset[0]

    def setrecursionlimit(limit: Any, /) -> None:
        if type(limit) is not int or limit < 1:
            real_set(limit)  # the builtin's own error for bad input
        try:
            real_set(limit + _offset[0])
        except RecursionError as exc:  # its numbers as the program counts them
            raise RecursionError(_as_program(str(exc), _offset[0])) from None

    for fake, real in ((getrecursionlimit, real_get), (setrecursionlimit, real_set)):
        fake.__name__ = fake.__qualname__ = real.__name__
        fake.__doc__ = real.__doc__
        fake.__module__ = "sys"
    sys.getrecursionlimit = getrecursionlimit
    sys.setrecursionlimit = setrecursionlimit


def _as_program(message: str, offset: int) -> str:
    """The builtin's message with the limit and the depth as the program counts them."""
    words = message.split(" ")
    for i, w in enumerate(words[:-1]):
        number = words[i + 1].rstrip(":")
        if w in ("to", "depth") and number.isdigit():  # (depth: and this function's frame)
            less = offset + (w == "depth")
            words[i + 1] = str(int(number) - less) + words[i + 1][len(number):]
    return " ".join(words)


def _is_builtin(f: Any) -> bool:
    return type(f) is type(len)
