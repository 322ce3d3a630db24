"""The event vocabulary shared by the hot path, the capture file and the reporters.

Events are plain tuples whose first field is the event kind. Tables (sites, scopes,
types, threads, tasks) travel in the same stream as the events that use them, so a
reader that sees an event has always seen the table rows it refers to before.

Layouts (``t`` is ``time.perf_counter_ns()`` at the moment of the event; the capture
header stores the start so reporters can show nanoseconds since start):

    (SCOPE,  gscope, file, module, qualname, scope_kind, line)
    (SITE,   gsite,  gscope, line, col, name, bind_kind)
    (TYPE,   tidx,   type_name)
    (THREAD, ident,  name)
    (TASK,   key,    name)
    (ENTER,  t, gscope, tok, thread_ident, task_key)
    (EXIT,   t, tok)
    (BIND,   t, gsite, tok, oid, tidx, size, deep, refcnt, addr, bufsize)   full mode
    (BIND,   t, gsite, tok, oid, tidx, size)                                fast mode
    (UNBIND, t, gsite, tok)
    (FINAL,  t, oid)
    (LEAK,   t, oid, tidx, size, holders)      holders: tuple of str
    (PROC,   pid, ppid, argv0, start_ns)
    (ERROR,  t, where, message)
    (SAMPLED, t, gsite, every, skipped)  the site binds only small scalars: from now on
                                         1 bind in ``every`` is recorded; ``skipped``
                                         counts the binds not recorded so far (the last
                                         SAMPLED row of a site has its final count)
    (MEM,    t, rss, hwm, kernel_hwm)  the process's memory, sampled by the monitor
                                    thread (memscope._monitor): resident bytes now, the
                                    program's resident high-water mark so far (VmHWM,
                                    less what memscope's census walks raised it by),
                                    and the kernel's mark as it is (older captures:
                                    no fifth field); -1 where unknown
    (CENSUS, t, cid, reason, rss, hwm, named, shared, objects, cost_ns, own)
        a census (memscope.census) finished: what the named bindings of instrumented
        code kept alive at ``t``. ``reason`` is "growth" (the process's memory grew a
        step since the last one: how the peak is caught), "interval" (none for a
        while), "end", "snapshot" (asked
        for) or "signal"; ``named`` the bytes the names retain between them (each
        object once), ``shared`` the part of it more than one name reaches,
        ``objects`` how many objects the walk sized, ``cost_ns`` its own time,
        ``own`` memscope's own resident bytes so far (memscope._own: what its
        steps added, measured around each; older captures: no eleventh field).
        Its CVAR rows come right before it.
    (CVAR,   cid, gscope, tok, name, tidx, shallow, retained, shared, oid)
        one named binding in census ``cid``: a local of a running or suspended frame
        (``tok`` its scope instance, 0 when not recorded), a module global or a class
        attribute (``gscope`` the module or class scope) bound to an object of type
        ``tidx``; ``shallow`` its own size, ``retained`` the bytes freed if this name
        alone were dropped, ``shared`` the bytes it reaches that other names reach too
    (MODULE, site_base, scope_base, file, module, nscopes, nsites, ints, names)
        one instrumented module's whole table, as its code passes it to ``register``
        (constants: no row object is made at import): ``ints`` holds, column after
        column, the scopes' kinds and first lines, then the sites' lines, columns,
        scope indices (module-local) and bind kinds, as ints or (what the transformer
        writes since hooks v4) packed as byte planes (``memscope.planes``, the form
        the capture stores, so neither the import nor the writer packs it);
        ``names`` the scopes' qualnames then the sites' names, joined by NUL. It
        stands for the SCOPE and SITE rows :func:`expand_module` makes of it
        (docs/capture-format.md).

``-1`` stands for "not recorded" in numeric fields: a reader takes the four fields a
fast-mode BIND row leaves out as -1 (each field of a tuple held until the flush costs
the garbage collector a visit), and ``addr``/``bufsize`` are -1 for objects without a
buffer. ``task_key`` is 0 outside asyncio.
"""

from __future__ import annotations

from memscope.planes import all_below, unpack_planes

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from typing import Any

    from memscope.kinds import BindKind as BindKind
    from memscope.kinds import ScopeKind as ScopeKind
    from memscope.kinds import kind_name as kind_name

SCOPE = 1
SITE = 2
TYPE = 3
THREAD = 4
TASK = 5
ENTER = 6
EXIT = 7
BIND = 8
UNBIND = 9
FINAL = 10
LEAK = 11
PROC = 12
ERROR = 13
SAMPLED = 14
MODULE = 15
MEM = 16
CENSUS = 17
CVAR = 18
# the kind numbers the hot path needs, without importing enum (memscope.kinds: all of them)
BIND_PARAM = 9  # BindKind.PARAM
BIND_EXPLICIT = 13  # BindKind.EXPLICIT
SCOPE_EXPLICIT = 10  # ScopeKind.EXPLICIT

# rows that describe rather than happen: they travel first, in table chunks
TABLE_KINDS = frozenset((SCOPE, SITE, TYPE, THREAD, TASK, MODULE))

EVENT_NAMES = {
    SCOPE: "scope",
    SITE: "site",
    TYPE: "type",
    THREAD: "thread",
    TASK: "task",
    ENTER: "enter",
    EXIT: "exit",
    BIND: "bind",
    UNBIND: "unbind",
    FINAL: "final",
    LEAK: "leak",
    PROC: "proc",
    ERROR: "error",
    SAMPLED: "sampled",
    MODULE: "module",
    MEM: "mem",
    CENSUS: "census",
    CVAR: "cvar",
}

if TYPE_CHECKING:
    Event = tuple[Any, ...]
else:
    Event = tuple  # the same type, without importing typing for ``Any``


def module_table(
    scopes: Sequence[tuple[str, int, int]], sites: Sequence[tuple[int, int, int, str, int]]
) -> tuple[int, int, tuple[int, ...], str]:
    """``(nscopes, nsites, ints, names)`` of a MODULE row, from table rows:
    ``scopes`` rows ``(qualname, scope_kind, line)``, ``sites`` rows ``(line, col,
    scope, name, bind_kind)`` (what the transformer builds, and tests write by hand)."""
    quals, skinds, slines = zip(*scopes, strict=True) if scopes else ((), (), ())
    cols = zip(*sites, strict=True) if sites else ((), (), (), (), ())
    lines, offsets, owners, names, bkinds = cols
    return (len(scopes), len(sites), (*skinds, *slines, *lines, *offsets, *owners, *bkinds),
            "\0".join((*quals, *names)))


def table_problem(nscopes: Any, nsites: Any, ints: Sequence[Any] | bytes,
                  nnames: int) -> str | None:
    """What is wrong with a MODULE row's table (``nnames``: ``name_count`` of its
    names; ``ints`` as ints or as byte planes), or None. The writer and the reader
    check a table with this same function; packed numbers are checked on their planes,
    without unpacking them."""
    if not (type(nscopes) is int and type(nsites) is int) or min(nscopes, nsites) < 0:
        return "module table has a count that is not an int of at least 0"
    n = 2 * nscopes + 4 * nsites
    at = 2 * nscopes + 2 * nsites
    wrong_size: int | None = None  # the numbers' bytes, when they are not n values
    if isinstance(ints, (bytes, bytearray)):  # packed: checked on its planes
        owners_ok = all_below(bytes(ints), n, at, nsites, max(nscopes, 1))
        if owners_ok is None:
            wrong_size = len(ints)
    else:
        owners_ok = None
        if len(ints) != n:
            wrong_size = 8 * len(ints)
    if wrong_size is not None:
        return (f"module table of {nscopes} scopes and {nsites} sites "
                f"has {wrong_size} bytes of numbers")
    if nnames != nscopes + nsites:
        return f"module table has {nnames} names for {nscopes + nsites} rows"
    if nsites and not nscopes:
        return "module table has sites but no scope"
    if owners_ok is None:  # ints: the scope column read as it is
        owners = ints[at : at + nsites]
        owners_ok = not owners or (min(owners) >= 0 and max(owners) < nscopes)
    if not owners_ok:
        return "module table site names a scope it does not have"
    return None


def table_ints(nscopes: int, nsites: int, ints: Sequence[int] | bytes) -> Sequence[int]:
    """A MODULE row's numbers as ints, unpacked from byte planes if packed (ValueError
    if they do not hold ``2 * nscopes + 4 * nsites`` values)."""
    if not isinstance(ints, (bytes, bytearray)):
        return ints
    got = unpack_planes(bytes(ints), 2 * nscopes + 4 * nsites)
    if got is None:
        raise ValueError(f"module table of {nscopes} scopes and {nsites} sites "
                         f"has {len(ints)} bytes of numbers")
    return got


def name_count(nscopes: int, nsites: int, names: str) -> int:
    """How many names a MODULE row's ``names`` holds (counted, not split)."""
    return names.count("\0") + 1 if nscopes + nsites else 0


def table_names(nscopes: int, nsites: int, names: str) -> list[str]:
    """The qualnames then site names of a MODULE row (empty when it has no rows)."""
    return names.split("\0") if nscopes + nsites else []


def expand_module(row: Event) -> list[Event]:
    """The SCOPE and SITE rows a MODULE row stands for, scopes first."""
    _, base, sbase, file, module, ns, n, ints, names = row
    ints = table_ints(ns, n, ints)
    strs = table_names(ns, n, names)
    skinds, slines = ints[:ns], ints[ns : 2 * ns]
    lines, cols, owners, bkinds = (ints[2 * ns + i * n : 2 * ns + (i + 1) * n] for i in range(4))
    scopes = zip(strs[:ns], skinds, slines, strict=True)
    out: list[Event] = [(SCOPE, sbase + i, file, module, qual, kind, line)
                        for i, (qual, kind, line) in enumerate(scopes)]
    out += [(SITE, base + i, sbase + scope, line, col, name, kind)
            for i, (line, col, scope, name, kind)
            in enumerate(zip(lines, cols, owners, strs[ns:], bkinds, strict=True))]
    return out


def expand_tables(events: Iterable[Event]) -> Iterator[Event]:
    """``events`` with every MODULE row replaced by its SCOPE and SITE rows; a row
    that is not a table at all (one written by hand) is left out, as the capture
    writer leaves it out, so that one bad ``register`` call cannot break every reader
    of the runtime's tables."""
    for ev in events:
        if ev[0] == MODULE:
            try:
                rows = expand_module(ev)
            except (TypeError, ValueError, IndexError):
                continue
            yield from rows
        else:
            yield ev


def __getattr__(name: str) -> object:
    """``BindKind``, ``ScopeKind`` and ``kind_name`` live in :mod:`memscope.kinds`
    (``enum`` is not imported at ``memscope run``'s start-up)."""
    if name in ("BindKind", "ScopeKind", "kind_name"):
        from memscope import kinds

        return getattr(kinds, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
