"""Which signal, if any, raised an exception caught inside memscope (issue 16).

A signal's Python handler runs at the eval loop's next check for signals, which may be
inside memscope's own code (the hooks, sizing): whatever it raises must reach the
program, while an exception of user code memscope called itself (``__sizeof__``,
``__len__`` while sizing), which plain Python never calls there, must not.
``memscope._hooks._Catch`` decides what reaches the program; code that catches
``Exception`` to fall back calls :func:`reraise_signal` first.
"""

from __future__ import annotations

import _signal  # built in: no import cost

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any

# RAISE_VARARGS, RERAISE: an exception raised by code (numbered 130 and 119 up to 3.12,
# 101 and 102 in 3.13: read from this Python's opcode table, at the first need)
_RAISES: list[tuple[int, ...]] = []


def _raises() -> tuple[int, ...]:
    if not _RAISES:
        import opcode  # (not at start-up: only when an exception lands in a hook)

        _RAISES.append((opcode.opmap["RAISE_VARARGS"], opcode.opmap["RERAISE"]))
    return _RAISES[0]


def signal_of(exc: BaseException) -> tuple[int, TracebackType | None]:
    """The signal whose handler raised ``exc``, and the traceback from that handler's
    frame on (None: SIGINT's default handler, written in C); ``(0, None)``: no signal.
    A handler written in Python is recognised by its frame in the traceback; the default
    handler raises KeyboardInterrupt at a check for signals, not at a ``raise``."""
    codes: dict[Any, int] = {}
    for n in _signal.valid_signals():
        try:
            h = _signal.getsignal(n)
        except (ValueError, OSError):
            continue
        code = getattr(getattr(h, "__func__", h), "__code__", None)
        if code is not None:
            codes[code] = n
    tb = exc.__traceback__
    last = None
    while tb is not None:
        n = codes.get(tb.tb_frame.f_code, 0)
        if n:
            return n, tb
        last, tb = tb, tb.tb_next
    if (type(exc) is KeyboardInterrupt and last is not None
            and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler):
        code = last.tb_frame.f_code.co_code
        if code[last.tb_lasti] not in _raises() or _at_its_handler(exc, last):
            return int(_signal.SIGINT), None
    return 0, None


def _at_its_handler(exc: BaseException, last: TracebackType) -> bool:
    """``exc`` came from the check for signals 3.10 makes as it jumps to the handler of
    the exception a ``raise`` raised: its last entry is that raise's, as is the last
    entry of its context (the exception the handler was about to handle). Before, such
    a Ctrl-C was taken for an exception of the user code memscope called, and dropped."""
    ctx = exc.__context__
    tb = ctx.__traceback__ if ctx is not None else None
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame is last.tb_frame and tb.tb_lasti == last.tb_lasti


def reraise_signal(exc: BaseException) -> None:
    """Raise ``exc`` again if a signal handler raised it (see the module docstring)."""
    if exc.__traceback__ is not None and signal_of(exc)[0]:
        raise exc
