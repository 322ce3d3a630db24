"""A forked child: it records into a capture of its own, so the parent's buffered events,
flush lock, thread names and watched objects are not its own; its re-arm thread did not
survive the fork (``os.register_at_fork``, registered when ``memscope._hooks`` loads).
"""

from __future__ import annotations

import _thread
import os

from memscope import _hooks as H  # read at call time: _hooks imports this module last
from memscope import _rearm, _sink


def _after_fork_in_child() -> None:
    """The child records into a capture of its own; the parent's buffer is not ours."""
    H._buf.clear()
    _sink._flush_lock = _thread.RLock()  # (an RLock only to know its owner: never re-entered)
    _sink._inflight[0] = None
    H._local.__dict__.clear()  # the forking thread is a new thread in the child
    if H._hotpath is not None:
        H._hotpath.forget_thread()  # (the C entry points keep its ident apart)
    H._watched.clear()
    H._import_time.clear()
    if _rearm._rearm_pid[0]:
        _rearm._start_rearm()  # threads do not survive fork
    try:
        after = getattr(_sink._sink, "after_fork", None)
        if after is not None:
            after([H.proc_event(), *H._tables])
    except Exception as exc:
        H._error("fork", exc)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
