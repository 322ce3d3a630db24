"""The process's own memory over time, and the censuses that catch its peak.

A bare ``_thread`` (like the re-arm thread: not in ``threading.enumerate()``) wakes
every ``TICK`` seconds and reads the process's resident memory and its resident
high-water mark (Linux: ``VmRSS`` and ``VmHWM`` of ``/proc/self/status``; elsewhere the
high-water mark of ``getrusage``). The high-water mark is the kernel's own record of
the peak, so the peak is exact however short it was; the samples draw the line. What a
census walk itself raises the mark by is left out of the program's peak (``sample``),
and the memory it freed is handed back to the system (``_give_back``) so that it does
not stay resident and read as the program's.

It records a MEM row when the memory moved (by ``MEM_STEP`` or 1 MiB) or a second
passed, and it starts a census (``memscope.census``):

- when resident memory first passes ``CENSUS_FIRST`` above where the run began, and
  then each time it passes ``CENSUS_STEP`` times the highest memory a census saw: so
  a census is never far below the peak (the one nearest the peak is the one the
  reports show), and since the steps are geometric, all of them together cost a small
  multiple of the last one;
- when memory passes the highest a census saw by ``JUMP_BYTES``: a large value was
  made, perhaps bound at a site whose guard sleeps (sampling), and the census names
  it while it is alive;
- growth and jump censuses together take at most ``CENSUS_BUDGET`` of the run's time
  (beyond the first): a program that grows without pause is not slowed by more;
  except that memory doubling since the highest census always earns one, and so does
  memory that stops (two ticks within 1%) at a high ``CENSUS_STEP`` above every
  census so far: the program holds what it built, the moment a report stands for
  (both are geometric steps, so their cost stays a small multiple of the last one's);
  memory that stops at a smaller new high (``SETTLE_STEP`` above every census, and a
  megabyte: the last census was taken on the way up) earns one within twice the budget;
- every ``INTERVAL`` seconds at most, or less often when a census is dear (never more
  than ``INTERVAL_SHARE`` of the time): resident memory alone misses a large value
  made in memory the allocator had freed before (reused pages do not grow it), and
  this is what draws each variable's retained size over time;
- when asked (``memscope.snapshot()`` from any thread, or SIGUSR1 under ``memscope
  run``): the request is served at the next tick.

Growth and interval censuses wait while the main thread is inside an import: what
grows then is modules and their tables, and a census of a half-imported package (its
functions and classes are every global) costs the import its time for nothing.

A jump of ``JUMP_BYTES`` between two ticks also switches every sleeping guard back on
(``_hooks.rearm``), so the bindings that follow a big allocation are recorded.
"""

from __future__ import annotations

import _thread
import os
import sys
import time

from memscope import _hooks, _threads
from memscope._own import read_proc
from memscope.events import MEM, MODULE, SCOPE

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    from typing import Any

TICK = 0.02  # seconds between samples
MEM_STEP = 0.01  # a move of this fraction of resident memory is worth a MEM row
CENSUS_FIRST = 8 << 20  # the first census: this far above the run's starting memory
CENSUS_STEP = 1.08  # then each time memory passes this factor of the last census's
CENSUS_BUDGET = 0.10  # censuses may take at most this fraction of the run's time
SETTLE_STEP = 1.02  # a plateau this far above every census: one more within 2x budget
JUMP_BYTES = 1 << 20  # growth between two ticks that re-arms every guard
INTERVAL = 0.5  # seconds: a census at least this often ...
INTERVAL_SHARE = 0.05  # ... unless that would take more than this share of the time
TRACING_WAIT = 30.0  # seconds a census waits at most while the program traces (_traced)

_state = {
    "pid": 0,  # the process whose monitor is running (0: none)
    "start_rss": -1,
    "next_census": -1,
    "census_high": -1,  # the highest resident memory a census saw
    "last_census_t": 0,
    "last_census_rss": -1,
    "census_mark": -1,  # the kernel's high-water mark where the last census raising it left it
    "raw": -1,  # the kernel's high-water mark at the last sample
    "walking": 0,  # censuses running now (a snapshot in one thread, growth in another)
    "last_census_cost": 0,
    "census_ns": 0,  # time spent in growth censuses so far
    "t0": 0,
    "last_rss": -1,
    "last_t": 0,
    "hwm": -1,
    "traced_at_start": False,  # tracemalloc was tracing when tracking began
    "tracing_since": 0,  # when a census first waited for the program's tracing (0: none)
}
_census_lock = _thread.allocate_lock()
_requests: list[str] = []  # censuses asked for, served at the next tick
_enabled = [True]  # growth censuses (Config.census)
flush_every = [1_000_000_000]  # ns: the buffer is flushed at least this often (Config)

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def read_memory() -> tuple[int, int]:
    """(resident bytes now, resident high-water mark) of this process; -1 if unknown."""
    try:
        data = read_proc("/proc/self/status", 4096)
        rss = hwm = -1
        i = data.find(b"VmHWM:")
        if i >= 0:
            hwm = int(data[i + 6 : data.index(b"kB", i)]) * 1024
        i = data.find(b"VmRSS:")
        if i >= 0:
            rss = int(data[i + 6 : data.index(b"kB", i)]) * 1024
        return rss, hwm
    except (OSError, ValueError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return -1, peak if sys.platform == "darwin" else peak * 1024
    except Exception:
        return -1, -1


def sample(force: bool = False) -> tuple[int, int]:
    """Read the memory now and record a MEM row if it moved enough (or ``force``).

    Returns (resident bytes, the program's high-water mark). The kernel's mark counts
    memscope's own census walks, whose records for objects with several holders can
    raise it for the length of a walk; the program's mark leaves them out: a raise
    while a census ran counts only once the kernel's mark passes where that census
    left it (``census_mark``), and every resident sample taken while no census walks
    counts."""
    rss, raw = read_memory()
    _state["raw"] = raw
    prog = _state["hwm"]
    if _state["walking"] and not force:
        return rss, prog  # a census walks: its records are resident too; no row now
    if not _state["walking"]:  # (while a census walks, its records are resident too)
        if raw > _state["census_mark"]:
            prog = max(prog, raw)
        prog = max(prog, rss)
    now = _hooks._perf()
    last = _state["last_rss"]
    moved = last < 0 or abs(rss - last) >= max(JUMP_BYTES, int(last * MEM_STEP))
    if force or moved or prog > _state["hwm"] or now - _state["last_t"] >= 1_000_000_000:
        _hooks._buf.append((MEM, now, rss, prog, raw))
        _state["last_rss"] = rss
        _state["last_t"] = now
    _state["hwm"] = prog
    return rss, prog


def census(reason: str) -> int:
    """Take a census now in this thread (``memscope.census.take``) with the memory."""
    from memscope import census as census_

    if _thread.get_ident() != _hooks._main_ident and reason != "end":
        # This thread gets the GIL the moment another one finishes a long C call (the
        # one that made the memory jump): its result is then still on that thread's
        # stack, not yet bound to its name. So take the GIL once (the first sleep
        # ends with it, perhaps right after such a call), then hand it back for a
        # switch interval: the program runs on past the binding before the census.
        time.sleep(0)
        time.sleep(sys.getswitchinterval())
    with _census_lock:  # one at a time: a sample must not see another's working memory
        rss, hwm = sample(force=True)
        _state["last_census_rss"] = rss
        t = time.thread_time_ns()
        begin_own_work(_state["raw"])  # the kernel's mark, as that sample read it
        try:
            cid = census_.take(reason, rss, hwm)
        finally:
            end_own_work()
    _state["last_census_t"] = _hooks._perf()
    _state["last_census_cost"] = time.thread_time_ns() - t  # CPU: what it cost the run
    return cid


_walk_lock = _thread.allocate_lock()
_marks: list[int] = []  # the kernel's mark as each piece of own work under way began


def begin_own_work(raw: int | None = None) -> None:
    """memscope's own work begins (a census walk, instrumenting a module): until
    ``end_own_work``, no sample takes memory as the program's. ``raw``: the kernel's
    high-water mark now, if just read."""
    if raw is None:
        raw = read_memory()[1]
    with _walk_lock:
        _state["walking"] += 1
        _marks.append(raw)


def end_own_work() -> None:
    """What the work raised the kernel's mark by is left out of the program's peak
    (``census_mark``), and the memory it freed is handed back to the system."""
    raw_after = read_memory()[1]
    with _walk_lock:
        raw_before = _marks.pop() if _marks else -1
    if raw_after > raw_before:
        # still own work: trimming releases the GIL, and a sample taken meanwhile
        # would read the walk's freed memory, still resident, as the program's
        _give_back()
    with _walk_lock:
        if raw_after > raw_before:
            _state["census_mark"] = max(raw_after, _state["census_mark"])
        _state["walking"] = max(0, _state["walking"] - 1)


_trim: list[Any] = []  # glibc's malloc_trim, once looked up (None: not there)


def _give_back() -> None:
    """Hand the walk's freed working memory back to the system (glibc's
    ``malloc_trim``): freed, it would stay resident and read as the program's."""
    if not _trim:
        try:
            import ctypes

            _trim.append(ctypes.CDLL(None).malloc_trim)
        except (OSError, AttributeError, ImportError):
            _trim.append(None)
    if _trim[0] is not None:
        try:
            _trim[0](0)
        except Exception as exc:
            _hooks._error("monitor", exc)


def _tick(prev_rss: int) -> int:
    # events wait in the runtime's buffer until 8,192 of them do: a program that records
    # few would lose them all to a SIGKILL; flushed from here, it loses at most
    # ``flush_every`` seconds of them (Config.flush_seconds)
    _hooks.flush_if_older(flush_every[0])
    rss, _hwm = sample()
    jump = prev_rss >= 0 and rss - prev_rss >= JUMP_BYTES
    if jump:
        _hooks.rearm()
    while _requests:
        try:
            reason = _requests.pop(0)
        except IndexError:
            break
        census(reason)
    nxt = _state["next_census"]
    grew = nxt >= 0 and rss >= nxt
    if _state["census_high"] >= 0 and rss >= _state["census_high"] + JUMP_BYTES:
        grew = True  # a new high by a megabyte: perhaps one large value, just made
    if not any(row[0] == MODULE or row[0] == SCOPE for row in _hooks._tables[:64]):
        return rss  # nothing instrumented yet: no name to census
    # a census would wait: during an import (its memory is code and tables) and while
    # the program measures its own allocations; once it is done
    if (grew or _due()) and (_importing() or _traced()):
        return rss
    high = _state["census_high"]
    # memory stopped at a new high (a step above every census so far): the program is
    # holding what it built, the moment the reports stand for, so no budget applies;
    # such highs are geometric, so their cost stays a small multiple of the last
    settled = prev_rss >= 0 and abs(rss - prev_rss) <= max(rss // 100, 256 << 10)
    plateau = settled and (high < 0 or rss >= high * CENSUS_STEP)
    # a smaller new high it stopped at: the last census was taken on the way up (a
    # structure half built), and the program may now hold its peak
    settle = settled and high >= 0 and rss >= high * SETTLE_STEP and within_budget(2.0)
    if _enabled[0] and grew and (within_budget() or rss >= 2 * high or plateau or settle):
        census("growth")
        _state["census_ns"] += _state["last_census_cost"]
        # what the census saw: memory that grew while it ran is still to be seen
        high = max(_state["last_census_rss"], _state["census_high"])
        _state["census_high"] = high
        _state["next_census"] = int(high * CENSUS_STEP)
    elif _enabled[0] and _due():
        census("interval")
    return rss


def _due() -> bool:
    """Is an interval census due (``INTERVAL``, ``INTERVAL_SHARE``)?"""
    return _hooks._perf() - _state["last_census_t"] >= max(
        INTERVAL * 1e9, _state["last_census_cost"] / INTERVAL_SHARE)


def _traced() -> bool:
    """Is the program tracing its own allocations (``tracemalloc``, started after
    tracking began)? A census allocates as it walks, in this thread, and the program
    would count that as its own (more-itertools' suite has a test that retains at most
    256 KiB over a loop: a census during it read 140 to 200 KiB). It waits, at most
    ``TRACING_WAIT`` in a row; a run traced from its start (``-X tracemalloc``) is
    censused as usual (no waiting would end)."""
    if _state["traced_at_start"] or not _hooks._tracing():
        _state["tracing_since"] = 0
        return False
    now = _hooks._perf()
    since = _state["tracing_since"]
    if not since:
        _state["tracing_since"] = now
        return True
    if now - since < TRACING_WAIT * 1e9:
        return True
    _state["tracing_since"] = now  # one census now, then wait again
    return False


def _importing() -> bool:
    """Is the main thread inside an import? (What grows memory then is modules.)"""
    f = sys._current_frames().get(_hooks._main_ident)
    depth = 0
    while f is not None and depth < 256:
        if f.f_code.co_filename.startswith("<frozen importlib"):
            return True
        f = f.f_back
        depth += 1
    return False


def within_budget(times: float = 1.0) -> bool:
    """May a growth census run now? The first always may; then while all of them have
    taken at most ``times`` x ``CENSUS_BUDGET`` of the time since tracking started."""
    return _state["census_ns"] <= times * CENSUS_BUDGET * (_hooks._perf() - _state["t0"]) \
        or _state["census_high"] < 0


def _site_initializing() -> bool:
    spec = getattr(sys.modules.get("site"), "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def _loop(pid: int) -> None:
    # Not while site is being imported: a child of memscope run (spawn, subprocess)
    # starts tracking from sitecustomize, inside the main thread's import of site, and
    # the census's imports go through the import hook, which needs site: this thread
    # waited for site's module lock while the main thread, importing multiprocessing,
    # waited for the import lock (a hang seen twice in test_run_children's spawn case)
    while _state["pid"] == pid and _site_initializing():
        time.sleep(TICK)
    try:
        # Load the census (and ctypes, for frames) now, while the program is starting,
        # not at its first census; under the census lock, so that no fork can happen
        # halfway through the import (the child would inherit a module lock held by a
        # thread it does not have, and hang at its own first census)
        with _census_lock:
            from memscope import census  # noqa: F401
    except Exception as exc:
        _hooks._error("monitor", exc)
    prev = -1
    while _state["pid"] == pid:
        time.sleep(TICK)
        try:
            prev = _tick(prev)
        except Exception as exc:
            _hooks._error("monitor", exc)


def start() -> None:
    """The monitor thread, once per process (again in a forked child)."""
    pid = os.getpid()
    if _state["pid"] == pid:
        return
    rss, _hwm = read_memory()
    _state.update(pid=pid, start_rss=rss, t0=_hooks._perf(), census_ns=0, last_rss=-1,
                  hwm=-1, census_high=-1, census_mark=-1, last_census_t=_hooks._perf(),
                  last_census_cost=0, traced_at_start=_hooks._tracing(), tracing_since=0,
                  next_census=rss + CENSUS_FIRST if rss >= 0 else -1)
    sample(force=True)
    if "memscope.census" not in sys.modules and not _importing():
        # the census (ctypes, the frame reader, the C walk) loaded here, in the thread
        # that starts tracking, so that what it takes is counted as memscope's own
        # (memscope._own, around tracker.init); inside an import (tracking started from
        # sitecustomize) the monitor thread loads it once the import is done
        try:
            from memscope import census  # noqa: F401
        except Exception as exc:
            _hooks._error("monitor", exc)
    try:
        _threads.start(_loop, (pid,))  # it never takes the program's signals
    except Exception as exc:  # at interpreter shutdown, say
        _state["pid"] = 0
        _hooks._error("monitor", exc)


def stop() -> None:
    _state["pid"] = 0


def request(reason: str) -> None:
    """Ask the monitor thread for a census at its next tick (safe in a signal handler)."""
    _requests.append(reason)


def _before_fork() -> None:
    """A fork waits for a census under way (the census thread holds locks, of the
    tables and of the imports, that the child would inherit held)."""
    _census_lock.acquire()


def _after_fork_in_parent() -> None:
    _census_lock.release()


def _after_fork_in_child() -> None:
    global _census_lock
    _census_lock = _thread.allocate_lock()  # the parent's census thread is not here
    _state["walking"] = 0
    _marks.clear()
    if _state["pid"]:
        _state["pid"] = 0
        start()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
