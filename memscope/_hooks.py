"""The hot path: the small, versioned contract that instrumented code calls (its
shape as a ``Protocol``: ``memscope._contract.ModuleHandle``).

Where things are: the entry points' common case in C (``memscope/_hotpath.c``, with the
event buffer), the rest and the pure-Python fallback here (``_make_handle``), with the
slow path (sizing, full mode's deep sizes, the death watch); re-arming in
``memscope._rearm``; the flush, the sink and ``configure`` in ``memscope._sink``; a
forked child in ``memscope._fork``. Those read this module's state at call time.

Contract version ``HOOKS_VERSION`` (bump it whenever a signature or a meaning changes;
instrumented code checks it at import through ``register``).

An instrumented module starts with::

    from memscope._hooks import register as _memscope_
    _memscope_ = _memscope_(4, FILE, __name__, NSCOPES, NSITES, INTS, NAMES)
    _memscope_g, _memscope_e = _memscope_.g, _memscope_.e   # the inline guards
    _memscope_.m = _memscope_.enter(0, -1)         # the module scope instance

(so the module's globals get three names of ours: the handle and its two guard lists;
code instrumented before TRANSFORM_VERSION 12 also had ``_memscope_hooks``,
``_memscope_s`` and ``_memscope_m``, and still runs)

The table is the columns of a MODULE row (``memscope.events``): scopes ``(qualname,
ScopeKind, first_line)`` and sites ``(line, col, scope_index, name, BindKind)``, both
indexed from 0 within the module, as constants (``events.module_table`` makes them
from rows). ``INTS`` is a bytes constant: the numbers packed as byte planes
(``memscope.planes``), the form the capture stores, so an import packs nothing.
``register`` also takes ``(scopes, sites)`` rows (tables written by hand, as tests
do); code instrumented for another contract version is refused (the cache
and the import hook instrument it again; a tree from ``memscope-instrument`` must be
made again).
Line and column are those of the **original** source. Then:

``_memscope_.bind(site, value, tok) -> value``
    the name of ``site`` was bound to ``value`` in scope instance ``tok``; returns
    ``value`` so it can wrap any expression (``:=``, chained assignment).
``_memscope_.bind_group(first_site, values, tok) -> None``
    the names one statement, or a run of consecutive statements, bound (sites
    ``first_site``, ``first_site + 1``, ...), behind one guard: the guard of
    ``first_site`` (docs/transformer.md, "Runs").
``_memscope_.bind_attr(site, obj, attr, tok) -> None``
    ``obj.attr = v`` ran: records what the slot or the instance's own attribute holds,
    read without running user code (a property is not read) and without asking for
    the instance's ``__dict__`` (which would make one).
``_memscope_.unbind(site, tok) -> None``
    ``del name`` or the implicit end of ``except ... as name``.
``tok = _memscope_.enter(scope, first_param_site, *params)``
    a scope instance starts (function call, class body, generator's first resume);
    ``params`` are bound to sites ``first_param_site``, ``first_param_site + 1``, ...
    (pass ``-1`` and nothing when there are none). Returns a fresh small int, or None
    when the scope sleeps (see below); every entry point ignores a None token.
``_memscope_.exit(tok) -> None``
    the instance ended: returned, raised, or its generator/coroutine was closed.
``_memscope_.enter_class(scope)``, ``_memscope_.c()``, ``_memscope_.exit_class()``
    a class body's ``enter``, its token, its ``exit``: the token is kept by the body's
    frame, so nothing is set in the class namespace (code instrumented before
    TRANSFORM_VERSION 11 kept it there, as ``__memscope_c__``, and still works).
``_memscope_.on``
    the per-site recording rates, shared by all modules and indexed by global site
    (``base + site``): 0 records every bind, ``n > 0`` records 1 in ``n`` (only sites
    that have bound nothing but small scalars get sampled, and the first other value
    stops it for good), -1 switches the site off.
``_memscope_.g`` / ``_memscope_.e`` / ``_memscope_.p`` (contract v2)
    the module's **inline guards**, read by instrumented code before it calls in:
    ``g`` per site (1: call ``bind``, 0: skip the call), ``e`` per scope (1: call
    ``enter``, None: the instance is not recorded and its token is None), and ``p``,
    a pass-through with ``bind``'s signature for a value-passing site whose guard is 0.
    Instrumented code reads them as ``_memscope_g[i] and _memscope_.bind(i, x, tok)``,
    ``tok = _memscope_e[k] and _memscope_.enter(k, ...)`` and
    ``tok and _memscope_.exit(tok)``: a guard that is off costs a list index and a
    branch, no call.

Guards are the sampling that keeps fast mode cheap (README.md, "What each mode
records"): a site that bound ``SCALAR_STREAK`` small values (at most ``SMALL_BYTES``;
deep size in full mode) is sampled 1 in ``SAMPLE_EVERY``, and after each sample it
sleeps: its guard goes off once every site behind that guard sleeps. A scope all of
whose sites sleep or bound nothing since the last check (parameters aside) goes off at
its next ``SCOPE_STREAK``-th entry.
A re-arm thread switches every guard back on each ``REARM_SECONDS``, so sites and
scopes keep being sampled while the program runs; a larger value seen at a sampled
site stops the sampling there for good. Until that re-arm, a sleeping scope's function
runs its original code where that is known to be safe (``memscope._swap``).

Every entry point returns normally whatever the value, never raises into the caller
(but for a signal's exception, handed to the program as plain Python would: see
"interrupts" below and ARCHITECTURE.md), and holds no strong reference to the value.
A site switched off costs one call and one list index; a sampled scalar site adds a
few identity checks.
"""

from __future__ import annotations

import _thread
import _tracemalloc
import _weakref
import gc
import itertools
import os
import sys
import time
from bisect import bisect_left as _bisect

from memscope import _detached, _swap, sizing
from memscope._signals import reraise_signal as _reraise_signal
from memscope._signals import signal_of as _signal_of
from memscope.events import (
    BIND,
    BIND_PARAM,
    ENTER,
    ERROR,
    EXIT,
    FINAL,
    MODULE,
    PROC,
    SAMPLED,
    SCOPE,
    SCOPE_EXPLICIT,
    SITE,
    TASK,
    THREAD,
    TYPE,
    UNBIND,
    Event,
    expand_tables,
    module_table,
    table_ints,
    table_names,
)
from memscope.sizing import _isa

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    import weakref
    from collections.abc import Callable, Sequence
    from types import CodeType
    from typing import Any, TypeVar

    T = TypeVar("T")

HOOKS_VERSION = 4


class _ListBuffer(list[Event]):
    """The event buffer in pure Python (``memscope._hotpath.Buffer`` is the C one, off
    the Python heap): a list, with the C buffer's ``take`` and ``snapshot``."""

    __slots__ = ()

    def take(self, n: int, into: list[Any], batch: bool = False) -> list[Event]:
        """The first ``n`` events, removed; ``into[0]`` holds them before they go
        (always a list: ``batch`` asks the C buffer for its own kind of batch)."""
        out = self[:n]
        into[0] = out
        del self[:n]
        return out

    def snapshot(self) -> list[Event]:
        return self[:]


# the hot path in C (memscope/_hotpath.c) when it is built, unless
# MEMSCOPE_HOTPATH_PURE=1 asks for the Python closures alone (tests run both)
_hotpath: Any = None
if not os.environ.get("MEMSCOPE_HOTPATH_PURE"):
    try:
        from memscope import _hotpath
    except ImportError:
        pass
ACCELERATED = _hotpath is not None
_detached.install_builtins()  # a function run with other globals finds these (issue 17)

_perf = time.perf_counter_ns
_getsizeof = sys.getsizeof
_getrefcount = sys.getrefcount
_get_ident = _thread.get_ident
_main_ident = _thread.get_ident()  # memscope is imported by the main thread
# scope-instance tokens (also the leak check's clock): the C counter, shared with the C
# entry points, where it is built
_next_tok = _hotpath.next_token if _hotpath is not None else itertools.count(1).__next__
_next_type = itertools.count(1).__next__  # type numbers are never reused
_next_task = itertools.count(1).__next__

# ---- shared state (module globals: the fastest thing a closure can read) ----------
# events not yet handed to the sink (never replaced: handles keep its methods)
_buf: Any = _hotpath.Buffer() if _hotpath is not None else _ListBuffer()
_flush_at = 8192
_full = False  # full mode: deep sizes, refcounts, buffers, finalization
_rate: list[int] = []  # per global site: 0 record all, n > 0 record 1 in n, -1 off
_count: list[int] = []  # per sampled site: binds since the last one recorded
_streak: list[int] = []  # per site: small-scalar binds so far
_sampled_recorded: list[int] = []  # per sampled site: binds recorded while sampling
_bound: list[int] = []  # per site: bound since its scope was last checked for sleep
_sampled_sites: set[int] = set()
_sampling_enabled = [True]
_site_scope: dict[int, int] = {}  # register_site's sites only: global site -> scope
_tables: list[Event] = []  # every table row ever emitted (re-sent after fork)
# id(type) -> (type index, C __sizeof__, getsizeof's extra bytes, scalar (deep size is
# its size)?, immutable scalar (a site binding only small ones may sample)?) for
# types whose size needs no care: the fast path sizes them without sys.getsizeof
# (metaclasses: sys.getsizeof itself, extra 0: a class's GC header depends on the class)
_fast_types: dict[int, tuple[int, Any, int, bool, bool]] = {}
# the same entries for static (C, never freed) types, keyed by the type itself: no id()
# call on the hot path (builtins.id raises an audit event each call). Heap types stay
# keyed by id: a dict key would keep a user's class alive
_static_types: dict[type, tuple[int, Any, int, bool, bool]] = {}
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE
# a sizer registered later changes how a type is sized: both tables are made again
# (cleared in place: the handles keep their ``get`` methods)
sizing._on_sizers_changed.append(_fast_types.clear)
sizing._on_sizers_changed.append(_static_types.clear)
_type_index: dict[int, int] = {}  # id(type) -> type index, every type seen
_tasks: weakref.WeakKeyDictionary[Any, int] | None = None  # made for the first task
_watched: dict[int, weakref.ref[Any]] = {}  # oid -> weakref that emits FINAL
_unweakrefable: set[int] = set()  # id(type) of types that refuse weak references
_deep_cache: dict[int, tuple[int, int, int]] = {}  # oid -> (tidx, shallow, deep)
# full mode: memscope._deathwatch when built (lists, dicts, sets, tuples, bytes and
# bytearrays refuse weak references: their deaths are watched in C instead), else None
_dw: Any = None
# full mode: ids of watched objects first bound while a module was being imported (a
# registry an import fills is the program's set-up, not a leak); dropped as they die
_import_time: set[int] = set()
# full mode: ids of watched objects proven older than the scope instance that first
# bound them (``_note_age``) -> that instance's token; dropped as they die
_preexisting: dict[int, int] = {}
# full mode: ids watched because a bind's deep walk reached them, not yet bound
# themselves (``_stamp_reached``): their deaths make no FINAL row
_stamped: set[int] = set()
# [token taken just after, a new dict's version tag]: polls (each list its own marker in
# the collector's young list), the state before every scope instance entered after it;
# a third item: its marker no longer tells order (unpinned, or a full collection)
_polls: list[list[int]] = []
_stale = [0]  # polls with a token up to this one: a collection took their markers out
_pinned = [False]  # the markers are pinned (``_deathwatch.pin``): see _after_collection
# pinned markers: polls with tokens up to [0] are in the oldest generation, up to [1]
# in generation 1 at most
_promoted = [0, 0]
_before_collection = [0]  # the last poll's token when the running collection began
_poll_of: list[tuple[int, Any]] = [(0, None)]  # the last instance looked up, its poll
_local = _thread._local()  # per thread: its ident (set at its first scope), re-entrancy flag
_flush_lock: Any = _thread.RLock()  # (an RLock only to know its owner: never re-entered)
_table_lock = _thread.RLock()
_counters = {
    "errors": 0,
    "deep_truncated": 0,
    "deep_skipped": 0,  # full mode: binds left without a deep size (DEEP_SHARE spent)
    "flushes": 0,
    "events_flushed": 0,
    "sampled_skipped": 0,
    "scopes_sampled": 0,
    "attrs_unread": 0,
    "interrupts_deferred": 0,  # signals that landed in a hook, handed back (_CATCH)
}
_start_ns: int = _perf()
_get_running_loop: Any = None
_getframe = sys._getframe
_tracing = _tracemalloc.is_tracing
_swap_sources = _swap._sources  # files whose plain code may stand in for a sleeping scope
_swap_enabled = _swap.enabled
_current_task: Any = None


class MemorySink:
    """Keeps the newest events in memory, bounded, until a capture sink replaces it
    (public: the pytest plugin records one test's events in one)."""

    def __init__(self, limit: int = 200_000) -> None:
        from _collections import deque  # collections' own: its package costs ~1.5 ms

        self.events: deque[Event] = deque(maxlen=limit)
        self.dropped = 0
        self.limit = limit

    def write(self, events: list[Event]) -> None:
        over = len(self.events) + len(events) - self.limit
        if over > 0:
            self.dropped += over
        self.events.extend(events)

    def after_fork(self, tables: list[Event]) -> None:
        self.events.clear()
        self.dropped = 0
        self.events.extend(tables)

    def iter_events(self) -> Any:
        # the ring may have dropped old table rows: send every table row first
        return expand_tables([*_tables, *self.events])

    def close(self) -> None:
        pass




def _error(where: str, exc: BaseException) -> None:
    """Count an internal error and record it; never raises, but for the exception of a
    signal handler that ran inside a hook: that one goes on to ``_CATCH``."""
    _reraise_signal(exc)
    _counters["errors"] += 1
    try:
        if _counters["errors"] <= 100:
            _buf.append((ERROR, _perf(), where, f"{type(exc).__name__}: {exc}"[:200]))
    except Exception:
        pass


# ---- interrupts and exceptions inside the hooks ------------------------------------
#
# The hooks run in the middle of the program, so a signal can land in them: its Python
# handler runs at the eval loop's next check (a call's return, a loop's back edge, a
# frame's start), and whatever it raises (KeyboardInterrupt, a SIGTERM handler's
# SystemExit, an alarm's TimeoutError) would come out of a memscope frame, where plain
# Python never is, maybe outside the ``try`` the program wrapped around its work. And
# the user code the hooks call (``__sizeof__``, ``__len__`` while sizing) may raise
# anything, though plain Python never calls it there. So:
#
# - no hook the program calls checks for signals as it starts (``_no_entry_check``):
#   a signal that arrived while the program ran is handled at the program's next check;
# - every hook catches BaseException; ``_CATCH`` tells an interrupt from an exception of
#   user code. An interrupt is handed back to the eval loop (``_TRIP``: the signal made
#   pending again, with no call instruction after it in a memscope frame), so its
#   handler runs again at the program's next check and raises there, as plain Python
#   would have; anything else is counted (``errors``) and recorded, never raised.
# - after ``_CATCH`` handed a signal back, a hook returns through no instruction that
#   checks for signals: ``if not _CATCH[...]: return`` then ``raise`` (3.10 checks at a
#   conditional jump taken: ``if _CATCH[...]: raise`` ran the handler in the hook, at
#   that line, and a Ctrl-C in a weakref callback was printed and lost);
# - the hooks catch with ``except BaseException:``, no name (``_CATCH[where]`` reads the
#   exception from ``sys.exc_info()``): on 3.10 the handler that clears the name caught
#   the bare ``raise`` again and reset the exception's traceback to ours.


class _Trip:
    """``_TRIP[signum]`` makes ``signum`` pending as if it had just arrived
    (``_thread.interrupt_main``; nothing if Python does not handle that signal). Done
    by a subscript, not a call: the eval loop checks for signals after each call, so
    a call here would run the handler in the memscope frame that made it pending."""

    __slots__ = ()
    __getitem__ = _thread.interrupt_main


_TRIP = _Trip()


class _Catch:
    """``_CATCH[where]``: the exception a hook's ``except`` is handling (the C hot
    path: ``_CATCH[where, exc]``); see above. Called by a subscript, so that the hook
    returns with no check for signals in between.

    A KeyboardInterrupt of SIGINT's default handler is handed back (``_TRIP``): that
    handler runs again at the program's next check, or in the next hook, which hands
    it back again. In a hook run while the program handles an exception (its
    ``finally``, while that exception unwinds), it is raised at once instead, and
    replaces that exception as it would in plain Python (handed back, it would come
    after that exception was caught: a second one). The exception of a handler
    written in Python is raised again, out of the hook, into the program (the handler
    ran, and runs only once), with the traceback it had from the handler's frame on.
    In a weakref callback (``_finalized``), where Python would print and drop it, the
    signal is handed back. The program sees no frame of memscope in a traceback.

    Returns whether the hook must raise the exception again (``raise``, bare)."""

    __slots__ = ()

    def __getitem__(self, arg: str | tuple[str, BaseException], sig: int = 0,
                    act: int = 0, exc: BaseException | None = None) -> bool:
        # (sig, act, exc: locals set before the first instruction, which is a `try`: 3.10
        # checks for signals as a frame starts, but not at a `try`)
        # act 1: raise exc again, 2: hand the signal back
        try:
            if isinstance(arg, str):  # a hook's `except BaseException:` (no name: below)
                where, (_, exc, head) = arg, _exc_info()
                caller = _getframe(2)  # the program's frame that called the hook
            else:  # the C hot path: (where, exception)
                where, exc = arg
                head, caller = None, _getframe(1)
            assert exc is not None
            if exc is _passing[0]:
                sig, tb = _passing[1], _passing[2]
            else:
                sig, tb = _signal_of(exc)
            if not sig:
                _error(where, exc)
            elif where != "final" and _getframe(2).f_code.co_filename == __file__:
                # a hook called by a hook (enter -> bind): the outer one decides
                _passing[:] = [exc, sig, tb]
                act = 1
            else:
                _passing[:] = [None, 0, None]
                _counters["interrupts_deferred"] += 1
                if where == "final":
                    act = 2
                elif tb is not None:
                    exc.__traceback__ = tb  # from the handler's frame on
                    # (not an exception memscope's own code was handling: the program's)
                    exc.__context__ = _program_context(exc, caller)
                    act = 1
                elif (ctx := _program_context(exc, caller)) is not None:
                    # the hook ran while the program handled an exception (a `finally`
                    # it unwinds through): handed back, the signal would come after
                    # that exception was caught, a second one; raised now, it replaces
                    # it, as plain Python's would. (It was raised at once whenever it
                    # had a context: also when that was an exception memscope's own
                    # code was handling, which the program then saw as its context.)
                    exc.__context__ = ctx
                    exc.__traceback__ = tb = None
                    act = 1
                else:
                    act = 2
                if act == 1 and head is not None and _BARE_RAISE_KEEPS_TB:
                    # 3.10: the hook's bare `raise` re-raises with the traceback its
                    # `except` caught (from the hook's frame on), not the exception's:
                    # that hook's own entry stays, the rest is the one chosen above.
                    # (The C hot path, which called the hook, passes the exception's
                    # own on: no frame of ours.)
                    head.tb_next = tb
        except BaseException as again:  # another signal, landed here
            if not act and again.__class__ is KeyboardInterrupt:
                sig, act = 2, 2
        # no jump that checks for signals (3.10 checks at a conditional jump taken, and
        # would run the handler here), nothing after the trip but the return
        act == 2 and _TRIP[sig]  # type: ignore[misc, call-arg]
        return act == 1  # the hook raises it again: a bare `raise` adds no frame of ours


_passing: list[Any] = [None, 0, None]  # (exception, signal, tb) a hook hands outwards


def _program_context(exc: BaseException, caller: Any) -> BaseException | None:
    """The exception the program was handling when ``exc`` was raised inside a hook
    that the program's frame ``caller`` called: ``exc``'s context, past the exceptions
    handled in frames that call made (memscope's own code, or user code it called,
    ``__sizeof__``): their traceback starts in a frame below ``caller``. None if none."""
    ctx = exc.__context__
    for _ in range(100):  # (a cycle of contexts: Python breaks them, but bounded)
        if ctx is None:
            return None
        tb = ctx.__traceback__
        if tb is None:
            return ctx
        f: Any = tb.tb_frame
        if f is caller:
            return ctx
        f = f.f_back
        while f is not None and f is not caller:
            f = f.f_back
        if f is None:  # handled above the call, or elsewhere: the program's
            return ctx
        ctx = ctx.__context__
    return None
_exc_info = sys.exc_info
_BARE_RAISE_KEEPS_TB = sys.version_info < (3, 11)
_CATCH = _Catch()


def _no_entry_check(code: CodeType) -> CodeType:
    """``code`` (and the functions defined in it) with a first ``RESUME`` that does not
    check for signals (3.11 to 3.13: the oparg of a resumption after ``yield from``,
    2, which skips that check and nothing else). 3.10 has no ``RESUME``: its frames
    check as they start unless their first instruction sets up a ``try`` (the hooks
    start with one). Before 3.12 and 3.13 were included, a signal a hook handed back
    came out of the next hook the program called, at its first line."""
    if sys.version_info < (3, 11):
        return code
    consts = tuple(_no_entry_check(c) if type(c) is type(code) else c
                   for c in code.co_consts)
    b = bytearray(code.co_code)
    for i in range(0, len(b), 2):
        if b[i] == _RESUME:  # after COPY_FREE_VARS / MAKE_CELL
            if b[i + 1] & 3 == 0:  # at the start (3.13: the low two bits say where)
                b[i + 1] |= 2
            break
    return code.replace(co_code=bytes(b), co_consts=consts)


_RESUME = 151 if sys.version_info < (3, 13) else 149  # (3.13 renumbered it)


# ---- tables ------------------------------------------------------------------------


def _table(row: Event) -> None:
    _tables.append(row)
    _buf.append(row)


def _type_idx(tp: type) -> int:
    """Index of a type in the type table, adding a row the first time it is seen."""
    key = id(tp)
    idx = _type_index.get(key)
    if idx is not None:
        return idx
    with _table_lock:
        idx = _type_index.get(key)
        if idx is not None:
            return idx
        idx = _next_type()
        _table((TYPE, idx, sizing.type_name(tp)))
        _type_index[key] = idx
        try:  # a heap type may die and its id be reused: forget it when it goes
            _type_refs[key] = _weakref.ref(tp, _on_death(_forget_type, key))
        except TypeError:
            pass  # static types live forever
    return idx


_type_refs: dict[int, weakref.ref[type]] = {}


def _on_death(fn: Callable[[int, Any], None], key: int) -> Callable[[Any], None]:
    """A weakref callback calling ``fn(key, ref)``: ``fn`` bound to ``key``, a method
    object, no frame of its own (functools.partial is not imported at start-up). It was
    a lambda: on 3.10 its frame checked for signals as it started and after ``fn``
    returned, where a Ctrl-C ``fn`` handed back was raised, printed as ignored in a
    callback, and lost."""
    return _MethodType(fn, key)


_MethodType = type(_on_death.__get__(0))  # types.MethodType


def _forget_type(key: int, _ref: Any = None) -> None:
    """A heap type died (weakref callback): its id may be reused by another type."""
    try:
        _fast_types.pop(key, None)
        _type_index.pop(key, None)
        _type_refs.pop(key, None)
        _unweakrefable.discard(key)
        _hidden.discard(key)
    except BaseException:  # an interrupt: re-delivered, not lost in a callback
        if not _CATCH["final"]:
            return
        raise


def _new_thread(ident: int) -> None:
    """A THREAD row for a thread's first scope; a reused ident gets the new name."""
    name = "?"
    try:
        threading = sys.modules.get("threading")  # not imported: only the main thread
        if threading is None:
            name = "MainThread" if ident == _main_ident else "?"
        elif (th := threading._active.get(ident)) is not None:
            name = th.name
        elif ident == threading.main_thread().ident:
            name = "MainThread"
    except Exception:
        pass
    with _table_lock:
        _table((THREAD, ident, str(name)))


def _thread_ident() -> int:
    """The calling thread's ident, kept in its thread-local, and its THREAD row, at the
    thread's first scope (the C ``enter`` reads ``_local.ident`` itself after that)."""
    ident = _local.ident = _get_ident()
    _new_thread(ident)
    return ident


def _task_key() -> int:
    """Small int naming the running asyncio task (0 outside asyncio)."""
    global _get_running_loop, _current_task, _tasks
    if _get_running_loop is None:
        aio = sys.modules.get("asyncio")
        if aio is None:
            return 0
        _get_running_loop = aio.events._get_running_loop
        _current_task = aio.current_task
    loop = _get_running_loop()
    if loop is None:
        return 0
    task = _current_task(loop)
    if task is None:
        return 0
    if _tasks is None:
        import weakref  # not at start-up: only asyncio programs have tasks

        _tasks = weakref.WeakKeyDictionary()
    key = _tasks.get(task)
    if key is None:
        with _table_lock:
            key = _next_task()
            _tasks[task] = key
            try:
                name = task.get_name()
            except Exception:
                name = "?"
            _table((TASK, key, str(name)))
    return key


# ---- module registration -----------------------------------------------------------

_scope_count = 0


if TYPE_CHECKING:
    from memscope._contract import ModuleHandle  # the contract, as a Protocol

_ModuleType = type(sys)


def register(version: int, file: str, module: str, *table: Any) -> ModuleHandle:
    """Register a module's scopes and sites once, at import; see the module docstring.
    ``table`` is ``(nscopes, nsites, ints, names)`` as a MODULE row holds it, or
    ``(scopes, sites)`` rows (tables written by hand)."""
    global _scope_count
    if version != HOOKS_VERSION:
        raise ImportError(
            f"{file}: instrumented for memscope hooks v{version}, but this memscope "
            f"provides v{HOOKS_VERSION}; instrument the code again with this version"
        )
    nscopes, nsites, ints, names = module_table(*table) if len(table) == 2 else table
    with _table_lock:  # runs at every import: O(1) but for five C-level list extends
        sbase = _scope_count
        _scope_count += nscopes
        base = len(_rate)
        # the table as the code holds it: expanded into SCOPE/SITE rows by whoever reads it
        _table((MODULE, base, sbase, file, module, nscopes, nsites, ints, names))
        _grow_site_lists(nsites)
        h = _make_handle(base, sbase, nsites, nscopes, ints, names, file)
        _scope_entered.extend([0] * nscopes)
    _start_rearm()
    return h


def _grow_site_lists(n: int) -> None:
    _rate.extend([0] * n)
    _count.extend([0] * n)
    _streak.extend([0] * n)
    _sampled_recorded.extend([0] * n)
    _bound.extend([0] * n)
    _asleep.extend([0] * n)


def register_scope(file: str, module: str, qualname: str, kind: int, line: int) -> int:
    """Add one scope row at run time (``track_var``'s sites, ``track_scope``)."""
    global _scope_count
    with _table_lock:
        scope = _scope_count
        _scope_count += 1
        _table((SCOPE, scope, file, module, qualname, int(kind), line))
        _scope_entered.append(0)
    return scope


def register_site(
    file: str, module: str, qualname: str, line: int, col: int, name: str, kind: int
) -> int:
    """Add one site (and its own scope row) at run time: used by ``track_var``."""
    with _table_lock:
        scope = register_scope(file, module, qualname, SCOPE_EXPLICIT, line)
        site = len(_rate)
        _table((SITE, site, scope, line, col, name, kind))
        _site_scope[site] = scope
        _grow_site_lists(1)
        _streak[site] = -(1 << 62)  # asked for by name: every call is recorded
    return site


# a site that bound only small scalars this many times ... (64 values in a row are
# enough to call a site scalar-only; 512 made an import record 1.8x the events, most
# of them None and True bound to the same parameters: docs/performance-history.md)
SCALAR_STREAK = 64
SAMPLE_EVERY = 64  # ... from then on records 1 bind in this many, then its guard goes off
SCOPE_STREAK = 256  # a scope is checked for switch-off every this many entries
REARM_SECONDS = 0.25  # every guard that went off is switched back on this often
SMALL_BYTES = 256  # fast mode: a value of at most this many bytes counts as small
_NoneType = type(None)
_PARAM = BIND_PARAM  # bound inside ``enter``, never behind an inline guard
# global scope -> module-local indices of its sites (parameters aside), made the first
# time the scope is checked for sleep (most scopes never are: no work at import)
_scope_sites: dict[int, list[int]] = {}
_scope_entered: list[int] = []  # global scope -> times entered (while its guard was on)
# guards that went off, to switch back on: global site/scope -> (guard list, index)
_off_sites: dict[int, tuple[list[int], int]] = {}
_off_scopes: dict[int, tuple[list[int | None], int]] = {}
_asleep: list[int] = []  # per global site: recorded its sample, waiting for a re-arm
_napping: set[int] = set()  # asleep sites whose shared guard another member keeps on
_group_of: dict[int, int] = {}  # global site -> first site of its bind_group
_group_n: dict[int, int] = {}  # first site of a bind_group -> number of sites


def _pass(site: int, value: T, tok: Any, /) -> T:
    """``bind``'s stand-in at a value-passing site whose guard is off."""
    try:  # (first: 3.10 checks for signals as a frame starts, not at a `try`)
        return value
    finally:
        pass


def _is_boring(value: Any, tp: type) -> bool:
    """At a sampled site (one that bound ``SCALAR_STREAK`` small immutable values), may
    this value be skipped? Only if it is a small immutable scalar too (a str, bytes or
    complex of at most ``SMALL_BYTES``): a container or an object can grow after it is
    bound, so anything else stops the sampling there for good."""
    ft = _fast_types.get(id(tp))
    if ft is None or not ft[4]:
        return False
    try:
        return bool(ft[1](value) + ft[2] <= SMALL_BYTES)
    except Exception:
        return False


def _make_handle(base: int, sbase: int, nsites: int, nscopes: int = 0,
                 ints: Sequence[int] = (), names: str = "", file: str = "") -> ModuleHandle:
    rate = _rate  # shared lists; this module's sites are [base, base + nsites)
    count = _count
    streak = _streak
    bound = _bound
    buf = _buf  # never replaced (flush deletes a slice), so its methods can be kept
    append = buf.append
    g: list[int] = [1] * nsites
    e: list[int | None] = [1] * nscopes
    off_sites = _off_sites
    asleep = _asleep
    fast_get = _fast_types.get  # never replaced (cleared in place)
    static_get = _static_types.get
    plans_get = _attr_plans.get  # cleared in place, never replaced
    modules = sys.modules

    def sleep(s: int) -> None:
        """Site ``s`` recorded its sample: it sleeps; its guard goes off once every
        site behind that guard (its ``bind_group``, or itself) sleeps."""
        asleep[s] = 1
        lead = _group_of.get(s, s)
        for k in range(_group_n.get(lead, 1)):
            if not asleep[lead + k]:
                _napping.add(s)  # the shared guard stays on: the re-arm wakes it alone
                return
        g[lead - base] = 0
        off_sites[lead] = (g, lead - base)

    def scope_sites(scope: int) -> list[int]:
        got = _scope_sites.get(sbase + scope)
        if got is None:
            # unpacked each time a scope of the module is first checked, and not kept
            # (a program tracing its own allocations would see the table: 92 KB for a
            # module of 600 functions)
            at = 2 * nscopes + 2 * nsites  # the sites' scope column, then their kinds
            nums = table_ints(nscopes, nsites, ints)
            owners, kinds = nums[at : at + nsites], nums[at + nsites : at + 2 * nsites]
            got = _scope_sites[sbase + scope] = [
                i for i, (o, k) in enumerate(zip(owners, kinds, strict=True))
                if o == scope and k != _PARAM]
            del nums, owners, kinds
        return got

    def scope_asleep(scope: int) -> bool:
        """Whether every site in the body of ``scope`` sleeps, is sampled (it has bound
        only small values), or bound nothing since the last check (``SCOPE_STREAK``
        entries ago): a branch the calls seldom take (an ``if x is None: x = ...`` for a
        default, a game's ``self.finished = True``) must not keep every call recorded.
        No, if the module's table cannot say (as a table written by hand may not)."""
        try:
            sites = scope_sites(scope)
            quiet = all(asleep[base + i] or not bound[base + i] or rate[base + i] > 0
                        for i in sites)
            for i in sites:
                bound[base + i] = 0  # the next check looks at the next entries only
            return quiet
        except Exception as exc:
            _error("table", exc)
            return False

    quals: list[str] = []  # the scopes' qualnames, split from ``names`` when first needed

    def qualname(scope: int) -> str:
        if not quals:
            quals.extend(table_names(nscopes, nsites, names)[:nscopes])
        return quals[scope]

    def bind_group(first: int, values: tuple[Any, ...], tok: Any, /) -> None:
        """The names a statement or a run of statements bound, behind one guard (sites
        ``first``, ...). A member that sleeps is skipped until the re-arm, as it would
        be behind a guard of its own (another member keeps the shared guard on)."""
        try:  # (first: 3.10 checks for signals as a frame starts, not at a `try`)
            if tok is None:
                return
            s = base + first
            if s not in _group_n:
                _group_n[s] = len(values)
                for k in range(1, len(values)):
                    _group_of[s + k] = s
            for k, v in enumerate(values):
                if not asleep[s + k]:
                    hot_bind(first + k, v, tok)
        except BaseException:  # an interrupt (re-delivered) or a user hook's
            if not _CATCH["bind_group"]:
                return
            raise

    def bind(site: int, value: T, tok: Any, /) -> T:
        try:  # (first: 3.10 checks for signals as a frame starts, not at a `try`)
            if tok is None:  # inside a scope instance that is not recorded
                return value
            s = base + site
            bound[s] = 1
            if rate[s]:
                r = rate[s]
                if r < 0:
                    return value
                tp = type(value)
                if (tp is int or tp is float or tp is bool or tp is _NoneType
                        or _is_boring(value, tp)):
                    n = count[s] + 1
                    if n < r:
                        count[s] = n
                        return value
                    count[s] = 0
                    _sampled_recorded[s] += 1
                    sleep(s)  # sampled once: its guard may go off until the next re-arm
                else:
                    _stop_sampling(s)
            try:
                tp = type(value)
                ft = static_get(tp) or fast_get(id(tp))
                if ft is None:
                    _slow_bind(s, value, tok)
                elif ft[3] or not _full:  # a scalar, or fast mode: the size is all there is
                    size = ft[1](value) + ft[2]
                    if not _full:  # fast mode's short row: nothing beyond the shallow size
                        append((BIND, _perf(), s, tok, id(value), ft[0], size))
                    else:  # a scalar: its deep size is its size
                        append((BIND, _perf(), s, tok, id(value), ft[0], size, size, -1, -1, -1))
                    if ft[4] and size <= SMALL_BYTES:  # a small immutable scalar
                        n = streak[s] + 1  # inline: _count_small's body, no call here
                        streak[s] = n
                        if n == SCALAR_STREAK:
                            _start_sampling(s)
                else:
                    # re-binding an object whose deep size is known and whose type and
                    # shallow size are unchanged costs about what fast mode costs
                    ti, sizeof, extra = ft[0], ft[1], ft[2]
                    oid = id(value)
                    size = sizeof(value) + extra
                    c = _deep_cache.get(oid)
                    t = _perf()
                    if c is not None and (c[0] != ti or c[1] != size):
                        c = None
                    elif c is None and _unsized.get(oid) == (ti, size) and (
                            t < _deep_resume[1] and _deep_resume[0] == _deep_time[1]):
                        c = _UNSIZED  # (left unknown, the share spent: unknown again)
                    if c is not None and tp in _DW_ONLY and _dw is not None and (
                            _dw.since(oid) is None):
                        c = None  # its death not drained yet: another object, first bound
                    if c is not None:
                        append(
                            (BIND, t, s, tok, oid, ti, size, c[2],
                             _getrefcount(value) - _ref_offset_inline, -1, -1)
                        )  # fmt: skip
                        if c[2] < 0:
                            _counters["deep_skipped"] += 1
                    else:
                        _slow_bind(s, value, tok)  # counts a small deep size itself
                if len(buf) >= _flush_at:  # every path above, _slow_bind's included
                    _flush()
            except Exception as exc:
                _error("bind", exc)
                append(_bind_row(_perf(), s, tok, id(value), 0, -1))
        except BaseException:  # an interrupt (re-delivered) or a user hook's
            if not _CATCH["bind"]:
                return value
            raise
        return value

    def bind_attr(site: int, obj: Any, attr: str, tok: Any, /) -> None:
        """``obj.attr = v`` ran: record what it holds now, read without running user
        code: a ``__slots__`` member or the instance's own attribute, through the
        type's plan (``_attr_plan``); a property, a custom descriptor or a custom
        ``__dict__`` is not read, and nothing is recorded."""
        try:  # (first: 3.10 checks for signals as a frame starts, not at a `try`)
            if tok is None:
                return
            try:
                tp = type(obj)
                plan = plans_get((id(tp), attr))
                if plan is None or plan[0]() is not tp:
                    plan = _attr_plan(tp, attr)
                if plan[1] == _SLOT:
                    value = plan[2](obj, tp)
                elif plan[1] == _DICT:
                    for d, did in plan[2]:  # the classes still as planned?
                        if id(d.get(attr, _MISSING)) != did:  # (a property added...)
                            plan = _attr_plan(tp, attr)
                            break
                    value = _MISSING
                    if plan[1] == _DICT:
                        try:  # object's own lookup: inline values are read in place,
                            value = _getattribute(obj, attr)  # no __dict__ made
                        except AttributeError:
                            pass
                else:
                    value = _MISSING
            except Exception as exc:
                _error("bind_attr", exc)
                return
            if value is not _MISSING:
                hot_bind(site, value, tok)
            else:
                _counters["attrs_unread"] += 1
        except BaseException:  # an interrupt (re-delivered) or a user hook's
            if not _CATCH["bind_attr"]:
                return
            raise

    def unbind(site: int, tok: Any, /) -> None:
        try:
            s = base + site
            if rate[s] >= 0 and tok is not None:
                append((UNBIND, _perf(), s, tok))
        except BaseException:  # an interrupt, re-delivered
            if not _CATCH["unbind"]:
                return
            raise

    def enter(scope: int, first_param: int, /, *params: Any) -> int | None:
        try:  # (first: 3.10 checks for signals as a frame starts, not at a `try`)
            tok = None  # (no check for signals before it)
            sc = sbase + scope
            n = _scope_entered[sc] + 1
            _scope_entered[sc] = n
            if (not n % SCOPE_STREAK and scope < nscopes and _sampling_enabled[0]
                    and scope_asleep(scope) and not (_full and _importing())):
                # (full mode: no instance goes unrecorded while a module is imported, as
                # a registry it fills is the program's set-up: _import_time)
                # every site in the body is off: record no instance until the re-arm
                e[scope] = None
                _off_scopes[sc] = (e, scope)
                _counters["scopes_sampled"] += 1
                # plain code until the re-arm; not while the program traces its own
                # allocations (tracemalloc would count the plain code compiled for it)
                if file in _swap_sources and _swap_enabled[0] and not _tracing():
                    try:
                        _swap.swap_out(file, qualname(scope), _getframe(1))
                    except Exception as exc:  # a table without this scope's name, say
                        _error("swap", exc)
                return None
            k = _next_tok()
            try:  # the thread's ident, kept in its thread-local: one lookup, no call
                ident = _local.ident
            except AttributeError:  # first scope of this thread (idents get reused)
                ident = _thread_ident()
            t = _perf()
            # no call before asyncio is imported: most programs never import it
            task = _task_key() if _get_running_loop is not None or "asyncio" in modules else 0
            append((ENTER, t, sc, k, ident, task))
            tok = k  # returned once its ENTER is recorded (an interrupt: None)
            # bind's one fast path: the C one where built (no frame: a program's usable
            # recursion depth stays plain Python's), else the closure above
            for s, p in enumerate(params, first_param):
                hot_bind(s, p, tok)
            if len(buf) >= _flush_at:
                _flush()
        except BaseException:  # an interrupt (re-delivered) or a user hook's
            if not _CATCH["enter"]:
                return tok
            raise
        return tok

    def enter_class(scope: int, /) -> None:
        """A class body starts: its token is kept here, by the body's frame, not in
        the class namespace (a metaclass's ``__prepare__`` mapping would see it set)."""
        try:
            key = id(_getframe(1))
            _class_toks[key] = None  # (the key is there even if enter is interrupted)
            _class_toks[key] = hot_enter(scope, -1)
        except BaseException:  # an interrupt (re-delivered)
            if not _CATCH["enter"]:
                return
            raise

    def exit_class() -> None:
        """The class body ended (returned or raised)."""
        try:
            tok = _class_toks.pop(id(_getframe(1)), None)
            if tok is not None:
                hot_exit(tok)
        except BaseException:  # an interrupt (re-delivered)
            if not _CATCH["exit"]:
                return
            raise

    def exit(tok: Any, /) -> None:
        try:  # (first: 3.10 checks for signals as a frame starts, not at a `try`)
            if tok is not None:
                append((EXIT, _perf(), tok))
        except BaseException:  # an interrupt, re-delivered
            if not _CATCH["exit"]:
                return
            raise

    # the entry points the program calls: the C ones (memscope/_hotpath.c), which do the
    # common case and hand the rest to the closures above, or the closures themselves
    hot_bind, hot_enter, hot_exit, hot_unbind, hot_group = bind, enter, exit, unbind, bind_group
    hot_attr = bind_attr
    if _hotpath is not None:
        # full mode's re-bind of a known object in C too (_deathwatch.FullBind), the
        # rest in the closure
        py_bind: Any = bind if _FullBind is None else _full_bind(base, bind)
        sites = _hotpath.Sites(base, sbase, py_bind, enter, bind_group, bind_attr)
        hot_bind, hot_enter, hot_exit = sites.bind, sites.enter, sites.exit
        hot_unbind, hot_group, hot_attr = sites.unbind, sites.bind_group, sites.bind_attr

    # a module object, not an instance of a class of ours: instrumented code's
    # ``_memscope_.bind(...)`` is then a specialized module attribute load (21 ns less
    # per call than a __slots__ instance's), and, like an instance, it is not callable
    # (code that scans a module's callables sees none of ours)
    # named as memscope._detached, whose entry points record nothing: a function copied
    # by value (cloudpickle) pickles its handle by that name, by reference
    h: Any = _ModuleType(_detached.__name__)
    h.__dict__.update(base=base, scope_base=sbase, bind=hot_bind, bind_attr=hot_attr,
                      bind_group=hot_group, unbind=hot_unbind, enter=hot_enter,
                      exit=hot_exit, on=rate,
                      g=g, e=e, p=_pass, enter_class=enter_class, exit_class=exit_class,
                      c=_class_tok)
    _module_guards.append((base, nsites, g))
    return h


_class_toks: dict[int, Any] = {}  # id(class body frame) -> its token (enter_class)


def _class_tok() -> Any:
    """The token of the class body that calls (``enter_class``); None if none."""
    try:  # (first: 3.10 checks for signals as a frame starts, not at a `try`)
        return _class_toks.get(id(_getframe(1)))
    finally:
        pass


_MISSING = object()
_type_dict = type.__dict__["__dict__"].__get__  # C: a class's own namespace, no hooks
_get_referents = gc.get_referents
_type_mro = type.__dict__["__mro__"].__get__
_GetSetType = type(type.__dict__["__dict__"])  # types.GetSetDescriptorType
_SlotWrapperType = type(type.__dict__["__call__"])  # a C type's slot, e.g. __get__
_getattribute = object.__getattribute__  # the generic lookup: no __getattr__, C only
_type_flags = type.__dict__["__flags__"].__get__
_MemberType = type(type.__dict__["__weakrefoffset__"])  # types.MemberDescriptorType


def _mro_lookup(tp: type, name: str) -> Any:
    for klass in _type_mro(tp):
        d = _type_dict(klass)
        if name in d:
            return d[name]
    return _MISSING


_SLOT, _DICT = 1, 2  # how an attribute is stored (0: not readable without user code)
# (id(type), attr) -> (weak reference to the type, how, the bound ``__get__`` of the C
# descriptor that reads it)
_attr_plans: dict[tuple[int, str], tuple[Any, int, Any]] = {}


def _attr_plan(tp: type, attr: str) -> tuple[Any, int, Any]:
    """Where ``tp`` stores ``attr``, looked up in its MRO once and kept, checked against
    a weak reference to the type (an id may be reused): ``(ref, _SLOT, get)`` for a
    ``__slots__`` member, where ``get`` is the C descriptor's bound ``__get__``;
    ``(ref, _DICT, seen)`` for an attribute the instance holds itself, read by
    ``object.__getattribute__`` (never through ``__dict__``: asking for it makes a dict
    of an instance whose attributes are inline, 3.11); ``(ref, 0, None)`` when reading
    would run code (a data descriptor, a custom ``__dict__``, a class attribute of that
    name whose ``__get__`` is Python code, which the lookup would call when the instance
    has no such attribute). Only C descriptors are ever called.

    ``seen``: for each heap class of the MRO, its namespace (a mappingproxy) and the id
    of what it held under ``attr`` (of ``_MISSING``: nothing), checked at each read, so
    that a property added to a class later (``mock.patch.object``, say) makes a new
    plan instead of being called. The namespaces are let go when the type dies."""
    how, get = _storage(tp, attr)
    key = id(tp)
    try:
        ref = _weakref.ref(tp, _on_death(_forget_plans, key))
    except TypeError:  # a static type: not kept (its plan is made each time)
        return (None, how, () if how == _DICT else get)
    if how == _DICT:
        get = tuple((d, id(d.get(attr, _MISSING)))
                    for d in (_namespace(k) for k in _type_mro(tp)
                              if _type_flags(k) & _HEAPTYPE))
    if len(_attr_plans) >= 50_000:
        _attr_plans.clear()
        _plan_attrs.clear()
    plan = (ref, how, get)
    _attr_plans[(key, attr)] = plan
    _plan_attrs.setdefault(key, set()).add(attr)
    return plan


_plan_attrs: dict[int, set[str]] = {}  # id(type) -> the attributes it has plans for


def _namespace(klass: type) -> Any:
    """A class's own namespace: the dict its mappingproxy wraps (the proxy's one
    referent), read with no hook; the proxy where that is not a plain dict. The C
    ``bind_attr`` looks an attribute up in a plain dict without raising KeyError for
    each class that lacks it (a mappingproxy has no such call: 4 KeyErrors made and
    dropped per read for a class four deep, half the cost of a read)."""
    proxy = _type_dict(klass)
    inner = _get_referents(proxy)
    if len(inner) == 1 and type(inner[0]) is dict:
        return inner[0]
    return proxy


def _forget_plans(key: int, _ref: Any = None) -> None:
    """A type with attribute plans died (weakref callback): its plans go, and with them
    the namespaces they hold (a new type may get its id)."""
    try:
        for attr in _plan_attrs.pop(key, ()):
            _attr_plans.pop((key, attr), None)
    except BaseException:  # an interrupt: re-delivered, not lost in a callback
        if not _CATCH["final"]:
            return
        raise


def _storage(tp: type, attr: str) -> tuple[int, Any]:
    desc = _mro_lookup(tp, attr)
    if desc is not _MISSING:
        dt = type(desc)
        if dt is _MemberType:  # a __slots__ member: its C __get__ reads the slot
            return _SLOT, desc.__get__
        if _mro_lookup(dt, "__set__") is not _MISSING or \
                _mro_lookup(dt, "__delete__") is not _MISSING:
            return 0, None  # a data descriptor (property, ...): reading runs code
        get = _mro_lookup(dt, "__get__")
        if get is not _MISSING and type(get) is not _SlotWrapperType:
            return 0, None  # a non-data descriptor written in Python
    dd = _mro_lookup(tp, "__dict__")
    if type(dd) is not _GetSetType:
        return 0, None  # a custom __dict__
    return _DICT, None


# (site base, site count, site guards) of every module: set_site_enabled finds a guard
_module_guards: list[tuple[int, int, list[int]]] = []


def _skipped(s: int) -> int:
    return (_rate[s] - 1) * _sampled_recorded[s] + _count[s] if _rate[s] > 0 else 0


def _count_small(s: int) -> None:
    """Site ``s`` bound one more small value; at ``SCALAR_STREAK`` it starts sampling
    (``bind`` has this inline on its hot path)."""
    n = _streak[s] + 1
    _streak[s] = n
    if n == SCALAR_STREAK:
        _start_sampling(s)


def _start_sampling(s: int) -> None:
    """The site bound ``SCALAR_STREAK`` small values: record 1 in SAMPLE_EVERY from now
    on (each recorded sample puts the site to sleep until the next re-arm)."""
    if _sampling_enabled[0] and _rate[s] == 0:
        _rate[s] = SAMPLE_EVERY
        _count[s] = 0
        _sampled_recorded[s] = 0
        _sampled_sites.add(s)
        _buf.append((SAMPLED, _perf(), s, SAMPLE_EVERY, 0))


def _stop_sampling(s: int) -> None:
    """A non-scalar reached a sampled site: record everything there, for good."""
    skipped = _skipped(s)
    _rate[s] = 0
    _streak[s] = -(1 << 62)  # never sampled again
    _sampled_sites.discard(s)
    _buf.append((SAMPLED, _perf(), s, 0, skipped))
    _counters["sampled_skipped"] += skipped


def sampling_report() -> list[Event]:
    """A SAMPLED row with the final skipped count of every site still sampled."""
    t = _perf()
    return [(SAMPLED, t, s, _rate[s], _skipped(s)) for s in sorted(_sampled_sites)]


# ---- the slow path: full mode, unusual types, re-entrancy --------------------------


def _bind_row(t: int, s: int, tok: Any, oid: int, ti: int, size: int) -> Event:
    """A BIND row of the current mode's width (fast mode's rows stop at ``size``)."""
    if _full:
        return (BIND, t, s, tok, oid, ti, size, -1, -1, -1, -1)
    return (BIND, t, s, tok, oid, ti, size)


def _slow_bind(s: int, value: Any, tok: int) -> None:
    """Record a binding whose type needs care (or any binding in full mode)."""
    tp = type(value)
    ti = _type_idx(tp)
    if id(tp) not in _fast_types:
        _classify(tp, ti, value)
    if getattr(_local, "busy", False):
        # sizing called user code that bound a name: record it, size nothing
        _buf.append(_bind_row(_perf(), s, tok, id(value), ti, -1))
        return
    _local.busy = True
    deep = refcnt = addr = bufsize = size = -1
    if _dw is not None:
        drain_deaths()  # a death at this address comes before its next bind
    try:
        plan = sizing.plan_for(tp)
        size = sizing.shallow_size(value, plan)
        if _full:
            oid = id(value)
            refcnt = _getrefcount(value) - _ref_offset
            cached = _deep_cache.get(oid)
            now = _perf()
            if cached is not None and cached[0] == ti and cached[1] == size:
                deep = cached[2]
            elif _unsized.get(oid) == (ti, size) and (
                    now < _deep_resume[1] and _deep_resume[0] == _deep_time[1]):
                _counters["deep_skipped"] += 1  # (no walk allowed yet: unknown again)
            else:
                # deep walks share the run's time: at most DEEP_SHARE of it since
                # tracking began (and DEEP_GRACE_NS to start with), then none until the
                # program has run on; a bind without one records its deep size as unknown
                allowed = (DEEP_GRACE_NS + DEEP_SHARE * (now - _deep_time[1])
                           - _deep_time[0])
                if allowed < DEEP_MIN_NS:
                    # (a walk begun with less would be cut short at once: its size wrong,
                    # its cost spent; floatbm: 117,000 of 150,000 walks were)
                    _counters["deep_skipped"] += 1
                    # no walk before the share allows one again: until then a re-bind of
                    # this object (same type and size) is recorded unknown at once, not
                    # through this path again (richards_lite: 52,000 of 92,000 slow binds)
                    _deep_resume[:] = [_deep_time[1], _deep_time[1] + int(
                        (_deep_time[0] + DEEP_MIN_NS - DEEP_GRACE_NS) / DEEP_SHARE) + 1]
                    if len(_unsized) > 100_000:
                        _unsized.clear()
                    _unsized[oid] = (ti, size)
                else:
                    if _unsized:
                        _unsized.clear()  # (walks again: each one left unknown may get one)
                    reached: list[Any] | None = [] if _age is not None else None
                    res = sizing.deep_size(value, max_objects=_deep_budget[0],
                                           max_ns=min(_deep_budget[1], int(allowed)),
                                           found=reached)
                    if reached:
                        _stamp_reached(reached)
                        reached = None
                    _deep_time[0] += _perf() - now
                    deep = res.size
                    if not res.complete:
                        _counters["deep_truncated"] += 1
                    if len(_deep_cache) > 100_000:
                        _deep_cache.clear()
                    _deep_cache[oid] = (ti, size, deep)
            if plan.buffer_kind or plan.sizer is not None or plan.trackable:
                addr, bufsize = sizing.buffer_info(value, plan)
            first = oid in _stamped  # (watched by a walk, bound now for the first time)
            if first:
                _stamped.discard(oid)  # (bound now: its death is a FINAL row)
            if _watch(value, oid, tp):
                first = True
                if _age is not None:
                    _note_age(value, oid, tok)
            # (at its first bind only: the stack walk cost 6 us at every re-bind of a
            # watched object)
            if first and _importing():
                _import_time.add(oid)  # (only ids whose death is seen: never stale)
    except Exception as exc:
        _error("size", exc)
    finally:
        _local.busy = False
        _buf.append((BIND, _perf(), s, tok, id(value), ti, size, deep, refcnt, addr, bufsize)
                    if _full else (BIND, _perf(), s, tok, id(value), ti, size))
    # as bind's fast path counts it (this was the type's first value, say): a small
    # immutable scalar (whole: its deep size, in full mode) lets the site sample
    ft = _fast_types.get(id(tp))
    small = ft is not None and ft[4] and 0 <= (deep if _full else size) <= SMALL_BYTES
    if small:  # the site may sample
        _count_small(s)


_deep_budget = [1_000_000, 100_000_000]
DEEP_SHARE = 0.25  # full mode's deep walks take at most this share of the run's time ...
DEEP_GRACE_NS = 50_000_000  # ... plus this much to start with
DEEP_MIN_NS = 1_000_000  # ... and a walk starts once the share allows this much
_deep_time = [0, _perf()]  # ns spent walking; when tracking began (configure)
# [the start it was read for (_deep_time[1]), no walk allowed before this time]: the
# share was spent when a bind last asked
_deep_resume = [0, 0]
# ids of objects a bind left without a deep size (the share spent) -> (type index,
# shallow size): until the share allows a walk again, a re-bind of one is recorded
# unknown at once (richards_lite: 52,000 of 92,000 slow binds went through _slow_bind
# for that). Not kept in _deep_cache: there, they pushed out the sizes it had
# (cleared at 100,000 ids: floatbm ran 4% longer). Forgotten at death, as there.
_unsized: dict[int, tuple[int, int]] = {}
_UNSIZED = (0, 0, -1)
_SCALARS = (int, float, bool, _NoneType)  # deep size = size
# values that cannot grow once bound: a site that binds only small ones may be sampled
_IMMUTABLE = (int, float, bool, _NoneType, complex, str, bytes)


def _classify(tp: type, ti: int, value: Any) -> None:
    """Put a type on the fast path when its size is its own C ``__sizeof__`` plus a
    per-type constant (the GC header ``sys.getsizeof`` adds); a class (the value of a
    metaclass) by ``sys.getsizeof`` itself, which is what the slow path measures: its
    GC header varies with it being a heap type, so no constant would do."""
    plan = sizing.plan_for(tp)
    if plan.sizer is not None or plan.trackable or plan.buffer_kind:
        return
    if _isa(value, type):
        sizeof, extra = _getsizeof, 0
    else:
        if not plan.c_sizeof:
            return
        sizeof = sizing._class_attr(tp, "__sizeof__")
        try:
            extra = _getsizeof(value) - sizeof(value)
        except Exception:
            return
    ft = _fast_types[id(tp)] = (ti, sizeof, extra, any(tp is k for k in _SCALARS),
                                any(tp is k for k in _IMMUTABLE))
    if not tp.__flags__ & _HEAPTYPE:
        _static_types[tp] = ft


def _watch(value: Any, oid: int, tp: type) -> bool:
    """Ask for a FINAL event when the object dies: by a weak reference, or for the
    built-in types that refuse one, by the death watch (``memscope._deathwatch``).
    True if this call began watching it (its death will be seen). A str is watched
    only when it is large (its block comes from the raw allocator, where the death
    watch sees it freed) and not a constant of the code binding it."""
    if oid in _watched:
        return False
    if id(tp) not in _unweakrefable:
        try:
            _watched[oid] = _watch_ref(value, tp, _on_death(_finalized, oid))
            return True
        except TypeError:
            _unweakrefable.add(id(tp))
    if _dw is None or (tp not in _DW_TYPES and tp is not str) or _dw.since(oid) is not None:
        return False  # (a type neither way can watch: no call)
    if tp is str:
        return (_large_str[0] and _getsizeof(value) > LARGE_STR and not _a_constant(value)
                and bool(_dw.watch_large(value, _perf())))
    return bool(_dw.watch(value, _perf()))


LARGE_STR = sizing.LARGE_STR  # bytes: a larger str's block is the raw allocator's
# the exact types the death watch wraps (memscope/_deathwatch.c; str apart, large only)
_DW_TYPES = frozenset((list, tuple, dict, set, frozenset, bytes, bytearray))
# ... of which these refuse weak references: the death watch alone sees them die (set and
# frozenset are weak-referenced, their deaths seen at once by _finalized)
_DW_ONLY = frozenset((list, tuple, dict, bytes, bytearray))
_large_str = [False]  # the death watch can watch large str (watch_large)


def _a_constant(value: Any) -> bool:
    """Is ``value`` a constant of the code that binds it (a literal: the code object
    keeps it for ever; not the program's data)? The first frame that is not memscope's
    is the binding code's."""
    f: Any = _getframe(1)
    while f is not None and f.f_code.co_filename == __file__:
        f = f.f_back
    if f is None:
        return False
    return any(c is value for c in f.f_code.co_consts)


_age: Any = None  # memscope._deathwatch when it has older and dict_version
YOUNG_WALK = 100_000  # list nodes one ``older`` call may walk; past that: not known
# ... and all the calls for one scope instance together: a long-running instance whose
# poll is old walks past every object that survived since, at each old object it names
WALK_BUDGET = 1_000_000
_walk_left: dict[int, int] = {}  # scope instance token -> nodes its walks may still take


def _note_age(value: Any, oid: int, tok: int) -> None:
    """At an object's first watch, in the scope instance ``tok``: is it provably older
    than that instance (there before it began: set-up an import left in a registry, an
    object read from a container)? Then it is not that scope's leak (docs/leaks.md).

    Proof, against the latest poll taken before the instance began (a smaller token):
    the collector tracked the object before that poll's marker was made, with no
    collection since (``_deathwatch.older``); or it is a dict whose version tag is
    below the tag of the dict the poll made. Then, if this instance began after the
    last poll, a poll is taken for the scope instances entered after this one."""
    polls = _polls
    cached = _poll_of[0]
    if cached[0] == tok:  # (the instance's earlier first watches found it)
        poll = cached[1]
    elif polls and polls[-1][0] < tok:  # (entered after the last poll)
        poll = polls[-1]
    else:
        poll = poll_before(polls, tok)
    _poll_of[0] = (tok, poll)
    if poll is not None and poll[0] < tok:  # (any poll before the instance will do)
        # (a full collection since the poll put its marker out of order: no walk; nor
        # once a walk for this instance went past its cap: the next ones would too)
        old: bool | None = False
        left = _walk_left.get(tok, WALK_BUDGET)
        if poll[0] > _stale[0] and left > 0 and len(poll) == 2:
            start = _age.walked()
            old = _age.older(value, poll, min(YOUNG_WALK, left))
            left = 0 if old is None else left - (_age.walked() - start)
            if len(_walk_left) > 256:
                _walk_left.clear()
            _walk_left[tok] = left
        if old or (_isa(value, dict) and _age.dict_version(value) < poll[1]):
            _preexisting[oid] = tok
    if oid not in _preexisting:  # it exists now: no instance entered later made it
        _preexisting[oid] = _next_tok()
    # a poll at every first watch: the scope instances entered from now on are judged by
    # it (module data filled just before, then read by the next function, is older)
    _poll()


def _poll_tok(poll: list[int]) -> int:
    return poll[0]


def poll_before(polls: list[list[int]], tok: int) -> list[int] | None:
    """The latest of ``polls`` taken before the scope instance ``tok`` began (a smaller
    token), or None (the age proofs here, the dict proof of the leak check)."""
    try:  # (another thread, or the gc callback, may append or trim meanwhile)
        i = _bisect(polls, tok, key=_poll_tok) - 1
        while i >= 0 and polls[i][0] >= tok:  # (threads may append out of order)
            i -= 1
        return polls[i] if i >= 0 else None
    except IndexError:
        return None


def _poll() -> None:
    poll = [0, 0]  # tracked by the collector now: the young list's tail, the marker
    poll[1] = _age.dict_version(None)
    poll[0] = _next_tok()  # taken last: what was read came before it
    if _pinned[0]:
        _age.pin(poll)  # (no collection moves it: see _deathwatch.c)
    _polls.append(poll)
    if len(_polls) > 1024:  # thinned, the newest 512 aside: every other one goes, so
        # each scope instance, however old, still has a poll before it (the first stays)
        n = len(_polls) - 512
        older = _polls[:n]  # (other threads only append: indices below n stay put)
        for p in older[1::2]:
            _forget_marker(p)
        _polls[:n] = older[::2]


def _forget_marker(poll: list[int]) -> None:
    """The poll's marker no longer tells order: a lookup that still holds the poll (a
    scope instance's cached one) may use its dict version tag, not its marker."""
    if len(poll) == 2:
        poll.append(0)
        if _pinned[0]:
            _age.unpin(poll)


def _after_collection(phase: str, info: Any) -> None:
    """gc callback: a poll after each collection (the scope instances entered after it
    are judged by this one). Collections keep the order of pinned markers but one: a
    full collection merges generation 0 into the oldest before generation 1, so what
    generation 0 held then reads as older than the markers generation 1 held (those
    polls go stale; markers already in the oldest generation, or still in generation
    0, keep a true order). Unpinned markers (an extension built before ``pin``) may be
    moved by any collection that reaches their holder: every collection of generation
    1 or 2 makes all earlier polls stale."""
    try:
        if phase == "start":  # (the markers made before it: a finalizer may poll)
            _before_collection[0] = _polls[-1][0] if _polls else 0
        elif phase == "stop" and _age is not None:
            gen = info.get("generation", 2)
            last = _before_collection[0]
            if not _pinned[0]:
                if gen >= 1:
                    _stale[0] = last  # its marker and every earlier one left them
            elif gen == 2:
                lo, hi = _promoted
                if hi > lo:  # the markers generation 1 held: out of order now
                    for p in _polls[_bisect(_polls, lo + 1, key=_poll_tok):]:
                        if p[0] > hi:
                            break
                        _forget_marker(p)
                _promoted[0] = _promoted[1] = last
            elif gen == 1:
                _promoted[0] = _promoted[1] = last  # every marker: the oldest generation
            else:
                _promoted[1] = last  # generation 0's markers: generation 1
            _poll()
    except BaseException:  # an interrupt: handed back (a callback's exception
        # is printed and dropped by the collector); anything else: counted, never raised
        if not _CATCH["final"]:
            return
        raise


_ModuleSpec = type(sys.__spec__)  # importlib's ModuleSpec (no import here)
# importlib's module locks, by name, while an import holds them (an import from the
# import system takes its module's lock before the module's code runs, and the entry
# goes when the lock does): empty, no import is under way (3.10 to 3.13)
_module_locks: Any = getattr(sys.modules.get("_frozen_importlib"), "_module_locks", (1,))


def _importing() -> bool:
    """Is a module's top-level code, run by an import under way, on this stack?"""
    if not _module_locks:  # no import under way in any thread: no stack to walk
        return False
    f: Any = _getframe(2)
    while f is not None:
        if f.f_code.co_name == "<module>":
            spec = f.f_globals.get("__spec__")
            if type(spec) is _ModuleSpec and spec.__dict__.get("_initializing") is True:
                return True
        f = f.f_back
    return False


def drain_deaths() -> None:
    """FINAL rows for the watched objects without weak references that died since
    the last drain: before any row that could bind their address again."""
    dw = _dw
    if dw is None or not dw.pending():
        return
    t = _perf()
    for oid in dw.deaths():
        _deep_cache.pop(oid, None)
        _unsized.pop(oid, None)
        _import_time.discard(oid)
        _preexisting.pop(oid, None)
        if oid in _stamped:  # never bound: no row
            _stamped.discard(oid)
            continue
        _buf.append((FINAL, t, oid))


def _stamp_reached(objs: list[Any]) -> None:
    """The ``bytes``, ``bytearray`` and ``str`` a bind's deep walk reached existed at
    that bind, so a scope instance entered after it that names one first did not make
    it (an item of a module constant, ``CHUNKS = [bytes(...), ...]``, read later by
    ``for chunk in CHUNKS``). The collector does not track these types, so nothing
    else tells their age: each one not yet watched is watched now (its death forgets
    it) and noted older than the instances entered from now on (``_preexisting``)."""
    t = _perf()
    older = _next_tok()  # (instances entered from now on get larger tokens)
    dw = _dw
    for o in objs:
        oid = id(o)
        if oid in _preexisting or dw.since(oid) is not None:
            continue
        if type(o) is str:
            if not (_large_str[0] and _getsizeof(o) > LARGE_STR and dw.watch_large(o, t)):
                continue
        elif not dw.watch(o, t):
            continue
        _preexisting[oid] = older
        _stamped.add(oid)


def _start_deathwatch() -> None:
    global _dw, _age
    if os.environ.get("MEMSCOPE_DEATHWATCH") == "0":  # as if not built (tests)
        return
    try:
        from memscope import _deathwatch
    except ImportError:  # not built: such objects are left out of the leak check
        return
    _deathwatch.start()
    _dw = _deathwatch
    _large_str[0] = hasattr(_deathwatch, "watch_large")
    if hasattr(_deathwatch, "older") and hasattr(_deathwatch, "dict_version"):
        import gc

        _age = _deathwatch
        _pinned[0] = hasattr(_deathwatch, "pin")
        _poll()  # the state before the first scope instance
        if _after_collection not in gc.callbacks:
            gc.callbacks.append(_after_collection)


class _Watch(_weakref.ref):
    """memscope's weak reference to a watched object: the class that ``obj.__weakref__``
    skips (``memscope._weakhide``). Always made with a callback, so CPython never takes
    it for a "basic" reference, which it would reuse for the program or put first."""

    __slots__ = ()


_hidden: set[int] = set()  # id(type): its ``__weakref__``, if any, skips _Watch refs
_weakhide: list[Any] = []  # memscope._weakhide, set up (or None: not built)


def _watch_ref(value: Any, tp: type, callback: Callable[[Any], None]) -> _Watch:
    """A ``_Watch`` reference to ``value``, made only if the program cannot see it:
    CPython's ``__weakref__`` returns the head of the object's list of weak references,
    where a reference with a callback goes when the program has no plain one (boltons
    copied it, cloudpickle failed on it; issue 17). TypeError when it would be seen (a
    ``__weakref__`` member of a C type, or ``_weakhide`` not built), as for a type that
    refuses weak references: the object's end is then not watched."""
    key = id(tp)
    if key not in _hidden:
        desc = _mro_lookup(tp, "__weakref__")
        dt = type(desc)
        if (dt is _GetSetType or dt is _MemberType) and not _hide_weakref(desc):
            raise TypeError("its __weakref__ would show memscope's reference")
        _hidden.add(key)  # or: nothing shows the list (a C type), or the program's own
    return _Watch(value, callback)


def _hide_weakref(desc: Any) -> bool:
    if not _weakhide:
        try:
            from memscope import _weakhide as wh

            class _Probe:  # a plain class: its __weakref__ getter is CPython's
                pass

            wh.init(_type_dict(_Probe)["__weakref__"], _Watch)
            _weakhide.append(wh)
        except Exception:  # not built (no compiler at install), or another Python
            _weakhide.append(None)
    wh = _weakhide[0]
    return wh is not None and wh.hide(desc)


def _finalized(oid: int, _ref: Any = None) -> None:
    """A watched object died (weakref callback): record FINAL."""
    try:
        _watched.pop(oid, None)
        _deep_cache.pop(oid, None)
        _unsized.pop(oid, None)
        _import_time.discard(oid)
        _preexisting.pop(oid, None)
        _buf.append((FINAL, _perf(), oid))
    except BaseException:  # an interrupt: re-delivered, not lost in a callback
        if not _CATCH["final"]:
            return
        raise


def _through_bind(probe: Callable[[int, Any, int], int]) -> int:
    """``probe(site, value, tok)`` called as instrumented code reaches ``bind``'s Python
    closure (through the C entry point, when it is built: one reference more on some
    Pythons), on an object held by exactly one name here; minus that one."""
    obj = object()
    if _hotpath is not None:  # a site out of range: the C bind hands the call over
        return int(_hotpath.Sites(1 << 40, 0, probe, probe, probe, probe).bind(0, obj, 1)) - 1
    return probe(0, obj, 1) - 1


def _calibrate_refcount() -> int:
    """References our own frames add, so ``refcnt`` counts only the program's."""

    def probe(site: int, value: Any, tok: int) -> int:  # as bind -> _slow_bind
        return _probe2(value)

    return _through_bind(probe)


def _probe2(v: Any) -> int:
    return _getrefcount(v)


_ref_offset = _calibrate_refcount()


def _calibrate_inline() -> int:
    """The same, for a refcount taken directly in ``bind`` (one frame fewer)."""

    def probe(site: int, value: Any, tok: int) -> int:
        return _getrefcount(value)

    return _through_bind(probe)


_ref_offset_inline = _calibrate_inline()


# full mode's common re-bind in C, handed to the C hot path in place of the closure
# (memscope/_deathwatch.c, FullBind): not in pure Python, nor where it is not built
_FullBind: Any = None
if _hotpath is not None:
    try:
        from memscope import _deathwatch as _dwmod
    except ImportError:
        pass
    else:
        _FullBind = getattr(_dwmod, "FullBind", None)
        del _dwmod


def _full_bind(base: int, fallback: Any, *, state: dict[str, Any] | None = None,
               ref_offset: int | None = None) -> Any:
    """``FullBind`` for a module's sites from ``base``, over this module's state (or
    ``state``'s, to calibrate), ``fallback`` (the closure) doing what it does not."""
    st = {"rate": _rate, "bound": _bound, "deep_cache": _deep_cache,
          "static_types": _static_types, "fast_types": _fast_types, "buffer": _buf,
          "globals": globals(), "deep_resume": _deep_resume, "deep_time": _deep_time,
          "unsized": _unsized,
          "counters": _counters, **(state or {})}
    return _FullBind(base, fallback, ref_offset=_ref_offset_fb if ref_offset is None
                     else ref_offset, bind_kind=BIND, **st)


def _calibrate_full_bind() -> int:
    """References the C hot path and FullBind hold while FullBind reads a refcount
    (an object held by exactly one name here, minus that one)."""
    obj = object()
    size = object.__sizeof__(obj)
    extra = _getsizeof(obj) - size
    rows: list[Event] = []
    fb = _full_bind(0, _pass, ref_offset=0, state={
        "rate": [0], "bound": [0], "deep_cache": {id(obj): (1, size + extra, 0)},
        "static_types": {object: (1, object.__sizeof__, extra, False, False)},
        "fast_types": {}, "buffer": rows, "globals": {"_full": True, "_flush_at": 1 << 30},
        "deep_resume": [0, 0], "deep_time": [0, 0], "counters": {}, "unsized": {}})
    _hotpath.Sites(1 << 40, 0, fb, fb, fb, fb).bind(0, obj, 1)
    return int(rows[0][8]) - 1 if rows else 0


_ref_offset_fb = _calibrate_full_bind() if _FullBind is not None else 0


def tables() -> list[Event]:
    """Every table row so far, MODULE rows expanded into SCOPE and SITE rows."""
    return list(expand_tables(_tables))


def counters() -> dict[str, int]:
    return dict(_counters)


def start_ns() -> int:
    return _start_ns


def set_site_enabled(site: int, enabled: bool) -> None:
    """Switch one global site on or off (its inline guard, and the rate bind checks)."""
    if 0 <= site < len(_rate):
        _rate[site] = 0 if enabled else -1
        if site in _group_of or site in _group_n:
            return  # its guard is shared with other sites: the rate alone stops it
        _off_sites.pop(site, None)
        for base, n, g in _module_guards:
            if base <= site < base + n:
                g[site - base] = 1 if enabled else 0


def set_sampling(enabled: bool) -> None:
    """Allow (default) or forbid sampling of sites that bind only small scalars (and
    of scope instances); forbidding it switches every inline guard back on."""
    _sampling_enabled[0] = bool(enabled)
    if not enabled:
        for s in sorted(_sampled_sites):
            _stop_sampling(s)
        rearm()


def proc_event() -> Event:
    argv0 = sys.argv[0] if sys.argv else ""
    return (PROC, os.getpid(), os.getppid(), argv0, _start_ns)


# the parts of the hot path in modules of their own (they read this module's state at
# call time): re-arming, the flush and the sink, fork handling
from memscope import _fork, _rearm, _sink  # noqa: E402,F401  (_fork: the at-fork handler)

# this module's API, from them (memscope.tracker, _monitor, the pytest plugin, tests)
rearm, _start_rearm = _rearm.rearm, _rearm._start_rearm
_rearm_ident, _rearm_paused = _rearm._rearm_ident, _rearm._rearm_paused
_flush, flush, flush_if_older = _sink._flush, _sink.flush, _sink.flush_if_older
pending, configure = _sink.pending, _sink.configure
set_sink, get_sink = _sink.set_sink, _sink.get_sink

# the entry points the program calls, and the callbacks that run in the middle of its
# code, start without a check for signals (see "interrupts" above)
for _fn in (_make_handle, _pass, _on_death, _finalized, _forget_type, _Catch.__getitem__,
            _class_tok, _forget_plans, _after_collection):
    _fn.__code__ = _no_entry_check(_fn.__code__)
del _fn


if _hotpath is not None:  # the C hot path shares this module's state (never replaced)
    _hotpath.setup(
        buffer=_buf, rate=_rate, count=_count, streak=_streak, bound=_bound,
        entered=_scope_entered, asleep=_asleep, group_n=_group_n, attr_plans=_attr_plans,
        missing=_MISSING,
        static_types=_static_types, fast_types=_fast_types,
        flush=_flush, start_sampling=_start_sampling,
        thread_ident=_thread_ident, task_key=_task_key, catch=_CATCH, globals=globals(),
        modules=sys.modules, scope_streak=SCOPE_STREAK,
        small_bytes=SMALL_BYTES, scalar_streak=SCALAR_STREAK, BIND=BIND, ENTER=ENTER,
        EXIT=EXIT, UNBIND=UNBIND)
    _hotpath.set_mode(_full, _flush_at)
    sizing._on_sizers_changed.append(_hotpath.forget_types)  # its cache of the tables
