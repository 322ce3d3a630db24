"""Re-arming the hot path's guards: the thread that switches every guard that went off
back on each ``REARM_SECONDS`` (``memscope._hooks``, "Guards"), so sampled sites and
sleeping scopes keep being looked at while the program runs. The state it reads and
writes (the guard lists, the sleeping sites) is the hot path's, in ``memscope._hooks``.
"""

from __future__ import annotations

import _thread
import os
import sys
import time

from memscope import _hooks as H  # read at call time: _hooks imports this module last
from memscope import _swap, _threads


def rearm() -> None:
    """Switch every guard that went off back on: the next binds of those sites and the
    next instances of those scopes are recorded (and switch them off again)."""
    _swap.restore()
    while H._napping:
        try:
            H._asleep[H._napping.pop()] = 0
        except KeyError:
            break
    while H._off_scopes:
        try:
            _sc, (lst, i) = H._off_scopes.popitem()
        except KeyError:
            break
        lst[i] = 1
    while H._off_sites:
        try:
            lead, (glist, j) = H._off_sites.popitem()
        except KeyError:
            break
        for k in range(H._group_n.get(lead, 1)):
            H._asleep[lead + k] = 0
        glist[j] = 1


_rearm_pid = [0]
_rearm_ident = [0]  # the re-arm thread's ident (0: not started)
_rearm_paused = [False]  # tests hold the thread still and call rearm() themselves


def _rearm_loop(pid: int) -> None:
    """Until the process forks or ends. It stops when the interpreter starts shutting
    down: a daemon thread that woke then would find the modules being torn down (every
    name of theirs None), and what it raised would be printed, or worse, mid-shutdown.
    The names it needs at the end are held here, not looked up then."""
    _rearm_ident[0] = _thread.get_ident()
    finalizing, sleep = sys.is_finalizing, time.sleep
    try:
        while _rearm_pid[0] == pid and not finalizing():
            sleep(H.REARM_SECONDS)
            if finalizing():
                return
            try:
                if not _rearm_paused[0]:
                    rearm()
            except Exception as exc:
                H._error("rearm", exc)
    except BaseException:  # (the shutdown's None names, under it): nothing to tell
        return


def _start_rearm() -> None:
    """The re-arm thread, once per process. A bare ``_thread``: it is not in
    ``threading.enumerate()`` or ``active_count()``, so a program that counts its
    threads sees the same number as without memscope (and nothing waits for it)."""
    pid = os.getpid()
    if _rearm_pid[0] == pid:
        return
    _rearm_pid[0] = pid
    try:
        _threads.start(_rearm_loop, (pid,))  # it never takes the program's signals
    except Exception as exc:  # at interpreter shutdown, say
        _rearm_pid[0] = 0
        H._error("rearm", exc)
