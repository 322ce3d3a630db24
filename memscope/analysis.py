"""Replay of an event stream into bindings, lifetimes, aliases and statistics.

One piece of code turns events into meaning, for the live tracker API
(``MemoryTracker.stats()`` ...) and for every reporter reading a capture. It streams:
memory is bounded by what is live at one moment plus per-variable aggregates, and
finished bindings go to a callback instead of a list when a caller asks
(``keep_history=False``), so a capture larger than RAM can still be reported.

Meanings:
- a *binding* is one name bound to one object in one scope instance; it ends at the
  next bind of the same name in that instance, ``del``, or the instance's exit;
- an *object* is identified by ``id()`` from its first bind to its FINAL event (only
  objects the runtime could weak-reference ever get one; others have an unknown end);
- *aliases* are other live bindings of the same object when a binding is made;
- *tracked bytes* count each live object once, deep size where recorded else shallow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from memscope.events import (
    BIND,
    CENSUS,
    CVAR,
    ENTER,
    ERROR,
    EVENT_NAMES,
    EXIT,
    FINAL,
    LEAK,
    MEM,
    MODULE,
    PROC,
    SAMPLED,
    SCOPE,
    SITE,
    TASK,
    THREAD,
    TYPE,
    UNBIND,
    BindKind,
    Event,
    ScopeKind,
    expand_module,
    kind_name,
)


@dataclass(frozen=True)
class ScopeRow:
    file: str
    module: str
    qualname: str
    kind: int
    line: int


@dataclass(frozen=True)
class SiteRow:
    scope: int
    line: int
    col: int
    name: str
    kind: int


@dataclass(slots=True, init=False)
class Instance:
    """One run of a scope (a call, a class body, a generator's whole life)."""

    tok: int
    scope: int
    thread: int
    task: int
    t_enter: int
    thread_name: str = "?"
    task_name: str = ""
    groups: tuple[Group, Group] | None = None  # (by_thread, by_task) aggregates

    def __init__(
        self,
        tok: int,
        scope: int,
        thread: int,
        task: int,
        t_enter: int,
        thread_name: str = "?",
        task_name: str = "",
        groups: tuple[Group, Group] | None = None,
    ) -> None:
        # (written out: mypyc compiles this one, dataclass's would run interpreted)
        self.tok = tok
        self.scope = scope
        self.thread = thread
        self.task = task
        self.t_enter = t_enter
        self.thread_name = thread_name
        self.task_name = task_name
        self.groups = groups


@dataclass(slots=True, eq=False)
class SiteInfo:
    """Everything about a site that does not change between its binds, made once."""

    scope_id: int
    var: str
    scope: str
    module: str
    file: str
    line: int
    col: int
    kind: str
    key: str
    label: str
    vs: VarStats
    group: Group  # by_scope aggregate
    # (scope id, name): its key among a scope instance's names; typed ``Any`` so that
    # compiled code keeps the one tuple (a ``tuple[int, str]`` is held unboxed and made
    # again at each use as a key)
    lkey: Any
    param: bool  # bound as a parameter


@dataclass(slots=True, eq=False, init=False)
class Binding:
    """One name bound to one object (the Python ``AllocationInfo`` of the seed)."""

    id: int
    var: str
    scope: str  # qualname of the scope the name lives in
    module: str
    file: str
    line: int
    col: int
    kind: str
    type: str
    oid: int
    size: int
    deep: int
    refcnt: int
    addr: int
    bufsize: int
    thread: int
    thread_name: str
    task: int
    task_name: str
    pid: int
    tok: int
    scope_id: int
    t_bind: int
    aliases: list[str]
    bytes: int  # what it accounts for: deep where recorded, else shallow
    key: str  # ``module:qualname:variable``: stable across commits (used by diff)
    groups: tuple[Group, ...] = ()
    vs: VarStats | None = None
    t_unbind: int = -1
    end: str = "live"  # rebind | unbind | scope_exit | final | live
    # (scope id, var): its key among its scope instance's names (``SiteInfo.lkey``, the
    # one tuple of its site: no tuple made as it ends)
    lkey: Any = None

    def __init__(
        self,
        id: int,
        var: str,
        scope: str,
        module: str,
        file: str,
        line: int,
        col: int,
        kind: str,
        type: str,
        oid: int,
        size: int,
        deep: int,
        refcnt: int,
        addr: int,
        bufsize: int,
        thread: int,
        thread_name: str,
        task: int,
        task_name: str,
        pid: int,
        tok: int,
        scope_id: int,
        t_bind: int,
        aliases: list[str],
        bytes: int,
        key: str,
        groups: tuple[Group, ...] = (),
        vs: VarStats | None = None,
        t_unbind: int = -1,
        end: str = "live",
        lkey: Any = None,
    ) -> None:
        # (written out: mypyc compiles this one, dataclass's would run interpreted)
        self.id = id
        self.var = var
        self.scope = scope
        self.module = module
        self.file = file
        self.line = line
        self.col = col
        self.kind = kind
        self.type = type
        self.oid = oid
        self.size = size
        self.deep = deep
        self.refcnt = refcnt
        self.addr = addr
        self.bufsize = bufsize
        self.thread = thread
        self.thread_name = thread_name
        self.task = task
        self.task_name = task_name
        self.pid = pid
        self.tok = tok
        self.scope_id = scope_id
        self.t_bind = t_bind
        self.aliases = aliases
        self.bytes = bytes
        self.key = key
        self.groups = groups
        self.vs = vs
        self.t_unbind = t_unbind
        self.end = end
        self.lkey = lkey

    @property
    def lifetime_ns(self) -> int:
        return -1 if self.t_unbind < 0 else self.t_unbind - self.t_bind

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "var": self.var,
            "scope": self.scope,
            "module": self.module,
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "kind": self.kind,
            "type": self.type,
            "oid": self.oid,
            "size": self.size,
            "deep": self.deep,
            "refcnt": self.refcnt,
            "addr": self.addr,
            "bufsize": self.bufsize,
            "thread": self.thread,
            "thread_name": self.thread_name,
            "task": self.task,
            "task_name": self.task_name,
            "pid": self.pid,
            "t_bind": self.t_bind,
            "t_unbind": self.t_unbind,
            "lifetime_ns": self.lifetime_ns,
            "end": self.end,
            "aliases": list(self.aliases),
        }


@dataclass(slots=True, init=False)
class ObjectLife:
    """An object from its first bind to its FINAL event."""

    oid: int
    type: str
    t_first: int
    first_binding: int
    creator_tok: int
    size: int  # bytes it accounted for when first bound (deep where recorded)
    shallow: int  # sys.getsizeof when first bound
    first_var: str  # "scope.var" of the first binding
    first_key: str  # module:scope:var of the first binding
    file: str
    line: int
    t_final: int = -1  # -1: still alive, or its end is unknown (see ``end_known``)
    end_known: bool = False  # True once a FINAL arrived; weak-referenceable types only
    by_param: bool = False  # so far only bound as a parameter

    def __init__(
        self,
        oid: int,
        type: str,
        t_first: int,
        first_binding: int,
        creator_tok: int,
        size: int,
        shallow: int,
        first_var: str,
        first_key: str,
        file: str,
        line: int,
        t_final: int = -1,
        end_known: bool = False,
        by_param: bool = False,
    ) -> None:
        # (written out: mypyc compiles this one, dataclass's would run interpreted)
        self.oid = oid
        self.type = type
        self.t_first = t_first
        self.first_binding = first_binding
        self.creator_tok = creator_tok
        self.size = size
        self.shallow = shallow
        self.first_var = first_var
        self.first_key = first_key
        self.file = file
        self.line = line
        self.t_final = t_final
        self.end_known = end_known
        self.by_param = by_param


@dataclass
class VarStats:
    """Aggregate of every binding of one variable (module:scope:name)."""

    key: str
    var: str
    scope: str
    module: str
    file: str
    line: int
    types: set[str] = field(default_factory=set)
    binds: int = 0
    peak_bytes: int = 0
    total_bytes: int = 0
    max_lifetime_ns: int = -1
    threads: set[int] = field(default_factory=set)
    # from the censuses (heap walks): the largest retained size any census found for
    # this variable, and (t, retained, shallow) per census it was live in
    peak_retained: int = -1
    census_series: list[tuple[int, int, int]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "peak_retained_bytes": self.peak_retained,
            "retained_over_time": [[t, r, sh] for t, r, sh in self.census_series],
            "key": self.key,
            "var": self.var,
            "scope": self.scope,
            "module": self.module,
            "file": self.file,
            "line": self.line,
            "types": sorted(self.types),
            "binds": self.binds,
            "peak_bytes": self.peak_bytes,
            "total_bytes": self.total_bytes,
            "max_lifetime_ns": self.max_lifetime_ns,
            "threads": sorted(self.threads),
        }


_CLASS = int(ScopeKind.CLASS)
_I = int
# the fields of the rows a census and the monitor write: ints, but a string where named
_SHAPES: dict[int, tuple[type, ...]] = {
    MEM: (_I, _I, _I),
    CVAR: (_I, _I, _I, str, _I, _I, _I, _I, _I),
    CENSUS: (_I, _I, str, _I, _I, _I, _I, _I, _I),
}


def _well_formed(ev: Event) -> bool:
    """Does a MEM, CVAR or CENSUS row have its fields, of their types? (A capture is
    read from disk: a damaged or hand-made one must not stop a report.) A MEM row may
    end with the kernel's own high-water mark (census walks included)."""
    shape = _SHAPES[ev[0]]
    if ev[0] in (MEM, CENSUS) and len(ev) == len(shape) + 2:
        shape = (*shape, _I)  # MEM: the kernel's mark; CENSUS: memscope's own bytes
    return len(ev) == len(shape) + 1 and all(
        type(v) is tp for v, tp in zip(ev[1:], shape, strict=True))


@dataclass(slots=True)
class CensusVar:
    """One named binding as a census found it (a CVAR row, resolved)."""

    key: str  # module:qualname:variable, as VarStats keys it
    var: str
    scope: str
    module: str
    type: str
    tok: int  # the scope instance (0: not recorded, or a module global / class attribute)
    shallow: int  # the object's own size
    retained: int  # freed if this name alone were dropped
    shared: int  # reached by this name and by others: freed only when all of them go
    oid: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "var": self.var,
            "scope": self.scope,
            "module": self.module,
            "type": self.type,
            "shallow_bytes": self.shallow,
            "retained_bytes": self.retained,
            "shared_bytes": self.shared,
        }


@dataclass(slots=True)
class Census:
    """What the named bindings kept alive at one moment (``memscope.census``)."""

    t: int
    cid: int
    reason: str  # growth | end | snapshot | signal
    rss: int  # resident bytes of the process at the census (-1 unknown)
    hwm: int  # resident high-water mark so far (-1 unknown)
    named: int  # bytes retained by names, each object once (retained + shared)
    shared: int  # the part of ``named`` reached by more than one name
    objects: int  # objects the walk sized
    cost_ns: int  # the census's own time
    vars: list[CensusVar] = field(default_factory=list)
    own: int = -1  # memscope's own resident bytes then (memscope._own; -1 unknown)

    def by_key(self) -> dict[str, tuple[int, int, int, int]]:
        """Per variable key: (shallow, retained, shared, rows) summed over its rows in
        this census (a function running in several frames has one row per frame; what
        each retains is its own, so the sum is what the variable retains)."""
        out: dict[str, tuple[int, int, int, int]] = {}
        for v in self.vars:
            sh, r, s, n = out.get(v.key, (0, 0, 0, 0))
            out[v.key] = (sh + v.shallow, r + v.retained, s + v.shared, n + 1)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "reason": self.reason,
            "process_rss_bytes": self.rss,
            "process_rss_peak_bytes": self.hwm,
            "named_bytes": self.named,
            "shared_bytes": self.shared,
            "objects": self.objects,
            "cost_ns": self.cost_ns,
            "memscope_own_bytes": self.own,
            "variables": [v.as_dict() for v in sorted(self.vars, key=lambda v: -v.retained)],
        }


@dataclass
class Group:
    """Counts and bytes of one type / scope / thread / task.

    ``active_bytes`` counts each live object once, however many of the group's names
    hold it (three aliases of one list in one scope are one list's bytes).
    """

    binds: int = 0
    bytes: int = 0
    active: int = 0
    active_bytes: int = 0
    peak_bytes: int = 0
    objs: dict[int, list[int]] = field(default_factory=dict)  # oid -> [names, bytes]

    def as_dict(self) -> dict[str, int]:
        return {
            "binds": self.binds,
            "bytes": self.bytes,
            "active": self.active,
            "active_bytes": self.active_bytes,
            "peak_bytes": self.peak_bytes,
        }


class Analysis:
    """Feed events in order (``feed``), then read the results; ``finish`` closes up."""

    def __init__(
        self,
        *,
        keep_history: bool = True,
        on_binding_end: Callable[[Binding], None] | None = None,
        on_object_end: Callable[[ObjectLife], None] | None = None,
        on_binding_start: Callable[[Binding], None] | None = None,
        max_timeline_points: int = 4096,
    ) -> None:
        self.on_object_end = on_object_end
        # called with each new binding once the analysis has counted it (after the
        # previous binding of the name, if any, went to ``on_binding_end``)
        self.on_binding_start = on_binding_start
        self.sampled: dict[int, tuple[int, int]] = {}  # site -> (1 in N or 0, skipped)
        self.scopes: dict[int, ScopeRow] = {}
        self.sites: dict[int, SiteRow] = {}
        self.types: dict[int, str] = {}
        self.threads: dict[int, str] = {}
        self.tasks: dict[int, str] = {}
        self.procs: dict[int, dict[str, Any]] = {}
        self.instances: dict[int, Instance] = {}
        # tok -> scope of the class bodies that exited (leak detection skips what they
        # made); other instances are not kept, so this does not grow with the run
        self.ended_instances: dict[int, int] = {}
        self.scope_instances: dict[int, list[int]] = {}  # scope -> [enters, max_live, live]
        self.live: dict[int, dict[tuple[int, str], Binding]] = {}  # tok -> (scope, name)
        self.by_oid: dict[int, dict[int, Binding]] = {}  # oid -> live bindings by id
        self.objects: dict[int, ObjectLife] = {}
        self.finished_objects: list[ObjectLife] = []
        self.history: list[Binding] = []
        self.keep_history = keep_history
        self.on_binding_end = on_binding_end
        self.vars: dict[str, VarStats] = {}
        self._site_info: dict[int, SiteInfo] = {}
        self._site_info_in: dict[tuple[int, int], SiteInfo] = {}
        self._explicit_scopes: set[int] = set()
        self._lambda_scopes: set[int] = set()
        # open lambda instances per thread: a lambda that raised never EXITs
        self._open_lambdas: dict[int, list[Instance]] = {}
        self.by_type: dict[str, Group] = {}
        self.by_scope: dict[str, Group] = {}
        self.by_thread: dict[str, Group] = {}
        self.by_task: dict[str, Group] = {}
        self._type_group: dict[int, tuple[str, Group]] = {}  # type id -> (name, by_type)
        self._no_inst_groups: tuple[Group, Group] | None = None
        # (thread name, task name) -> (by_thread, by_task) groups of scope instances
        self._inst_groups: dict[tuple[str, str], tuple[Group, Group]] = {}
        self.leaks: list[dict[str, Any]] = []
        self.errors: list[tuple[int, str, str]] = []
        self.alias_pairs: dict[tuple[str, str], int] = {}
        self.timeline: list[tuple[int, int]] = []  # (t, tracked bytes)
        self._timeline_step = 1
        self._timeline_skip = 0
        self.max_timeline_points = max_timeline_points
        self.pid = 0
        self.next_id = 0
        self.nlive = 0
        self.events = 0
        self.binds = 0
        self.unbinds = 0
        self.active_bytes = 0
        self.peak_bytes = 0
        self.peak_t = -1
        self.peak_count = 0
        self.t_first = -1
        self.t_last = -1
        self.finals = 0
        # objects with more than one live binding (or that had, while any lives):
        # oid -> number of live bindings, oid -> bytes counted for it; the groups of
        # their bindings hold them in ``Group.objs``. An object named once is counted
        # by its one binding alone, in none of these.
        self._obj_live: dict[int, int] = {}
        self._obj_bytes: dict[int, int] = {}
        # the process's own memory (MEM rows): (t, resident bytes), thinned like
        # ``timeline``; the resident peak is the largest high-water mark reported
        self.memory: list[tuple[int, int]] = []
        self._memory_step = 1
        self._memory_skip = 0
        self.rss_peak = -1  # resident high-water mark (VmHWM): the process's real peak
        # (the program's: what memscope's census walks raised it by left out) and the
        # kernel's own mark, walks included
        self.rss_peak_kernel = -1
        self.rss_peak_t = -1  # when a sample first showed that mark
        self.rss_last = -1
        self.censuses: list[Census] = []
        self._census_vars: dict[int, list[CensusVar]] = {}  # cid -> rows before CENSUS

    # ---- feeding ----------------------------------------------------------------

    def feed_all(self, events: Iterable[Event]) -> Analysis:
        feed = self.feed
        for ev in events:
            feed(ev)
        return self

    def feed(self, ev: Event) -> None:
        k = ev[0]
        if k == BIND:
            self._bind(ev)  # counts itself
            return
        self.events += 1
        if k == ENTER:
            _, t, scope, tok, thread, task = ev
            if self.t_first < 0:  # _time, inline
                self.t_first = t
            if t > self.t_last:
                self.t_last = t
            tn = self.threads.get(thread, "?") if thread else "?"
            kn = self.tasks.get(task, "") if task else ""
            tgroups = self._inst_groups.get((tn, kn))
            if tgroups is None:
                tgroups = self._inst_groups[(tn, kn)] = (
                    self._group(self.by_thread, tn), self._group(self.by_task, kn or "-"))
            inst = self.instances[tok] = Instance(tok, scope, thread, task, t, tn, kn, tgroups)
            if scope in self._lambda_scopes:
                self._open_lambdas.setdefault(thread, []).append(inst)
            c = self.scope_instances.get(scope)
            if c is None:
                c = self.scope_instances[scope] = [0, 0, 0]
            c[0] += 1
            n = c[2] = c[2] + 1
            if n > c[1]:
                c[1] = n
        elif k == EXIT:
            self._exit(ev[1], ev[2])
        elif k == UNBIND:
            _, t, site, tok = ev
            if self.t_first < 0:
                self.t_first = t
            if t > self.t_last:
                self.t_last = t
            row = self.sites.get(site)
            if row is not None:
                in_tok = self.live.get(tok)
                b = in_tok.get((row.scope, row.name)) if in_tok is not None else None
                if b is not None:
                    self._end(b, t, "unbind")
                self.unbinds += 1
        elif k == FINAL:
            _, t, oid = ev
            if self.t_first < 0:
                self.t_first = t
            if t > self.t_last:
                self.t_last = t
            self.finals += 1
            life = self.objects.pop(oid, None)
            if life is not None:
                life.t_final = t
                life.end_known = True
                if self.keep_history:
                    self.finished_objects.append(life)
                if self.on_object_end is not None:
                    self.on_object_end(life)
            # bindings still naming a finalized object are stale (their scope went)
            same = self.by_oid.get(oid)
            if same:
                for b in list(same.values()):
                    self._end(b, t, "final")
        elif k == SITE:
            self.sites[ev[1]] = SiteRow(ev[2], ev[3], ev[4], ev[5], ev[6])
        elif k == MODULE:  # a module's table straight from the runtime (not a capture)
            for table_row in expand_module(ev):
                self.feed(table_row)
        elif k == SCOPE:
            self.scopes[ev[1]] = ScopeRow(ev[2], ev[3], ev[4], ev[5], ev[6])
            if ev[5] == ScopeKind.EXPLICIT:
                self._explicit_scopes.add(ev[1])
            elif ev[5] == ScopeKind.LAMBDA:
                self._lambda_scopes.add(ev[1])
        elif k == TYPE:
            self.types[ev[1]] = ev[2]
            self._type_group.pop(ev[1], None)
        elif k == THREAD:
            self.threads[ev[1]] = ev[2]
        elif k == TASK:
            self.tasks[ev[1]] = ev[2]
        elif k == PROC:
            self.pid = ev[1]
            self.procs[ev[1]] = {"pid": ev[1], "ppid": ev[2], "argv0": ev[3], "start_ns": ev[4]}
        elif k == LEAK:
            self.leaks.append(
                {
                    "t": ev[1],
                    "oid": ev[2],
                    "type": self.types.get(ev[3], "?"),
                    "size": ev[4],
                    "holders": list(ev[5]),
                    "binding": self._leak_binding(ev[2]),
                }
            )
        elif k == ERROR:  # time -1: a row the capture reader skipped (at no known time)
            self.errors.append((ev[1] if ev[1] >= 0 else self.t_last, ev[2], ev[3]))
        elif k == SAMPLED:
            _, t, site, every, skipped = ev
            self.sampled[site] = (every, skipped)
        elif k in _SHAPES:
            if not _well_formed(ev):  # a hand-made or damaged row: said, not fed
                self.errors.append((self.t_last, "capture", f"malformed {EVENT_NAMES[k]} row"))
            elif k == MEM:
                self._memory(ev[1], ev[2], ev[3])
                if len(ev) > 4 and ev[4] > self.rss_peak_kernel:
                    self.rss_peak_kernel = ev[4]
            elif k == CVAR:
                self._census_var(ev)
            else:
                self._census(ev)

    def _census(self, ev: Event) -> None:
        _, t, cid, reason, rss, hwm, named, shared, nobj, cost = ev[:10]
        self._time(t)
        cen = Census(t, cid, reason, rss, hwm, named, shared, nobj, cost,
                     self._census_vars.pop(cid, []), ev[10] if len(ev) > 10 else -1)
        self.censuses.append(cen)
        if rss >= 0 or hwm >= 0:
            self._memory(t, rss, hwm)
        for v in cen.vars:
            vs = self.vars.get(v.key)
            if vs is None:
                vs = self.vars[v.key] = VarStats(v.key, v.var, v.scope, v.module, "?", 0)
            vs.types.add(v.type)
            vs.census_series.append((t, v.retained, v.shallow))
            if v.retained > vs.peak_retained:
                vs.peak_retained = v.retained

    def _memory(self, t: int, rss: int, hwm: int) -> None:
        self._time(t)
        # the peak is the program's high-water mark (which counts every resident sample
        # taken while no census walked); a sample taken during a walk is not the
        # program's alone
        top = hwm if hwm >= 0 else rss
        if top > self.rss_peak:
            self.rss_peak = top
            self.rss_peak_t = t
        if rss < 0:
            return
        self.rss_last = rss
        self._memory_skip += 1
        if self._memory_skip < self._memory_step:
            return
        self._memory_skip = 0
        self.memory.append((t, rss))
        if len(self.memory) >= self.max_timeline_points:
            tl = self.memory  # halve, keeping each pair's larger value (peaks survive)
            self.memory = [max(tl[i], tl[i + 1], key=lambda p: p[1])
                           for i in range(0, len(tl) - 1, 2)]
            self._memory_step *= 2

    def _census_var(self, ev: Event) -> None:
        _, cid, gscope, tok, name, ti, shallow, retained, shared, oid = ev
        row = self.scopes.get(gscope)
        scope = row.qualname if row else "?"
        module = row.module if row else "?"
        self._census_vars.setdefault(cid, []).append(CensusVar(
            f"{module}:{scope}:{name}", name, scope, module, self.types.get(ti, "?"),
            tok, shallow, retained, shared, oid))

    def peak_census(self) -> Census | None:
        """The census that stands for the peak: the one that found the most retained
        by names (of equals, the one nearest the process's peak in time). Not the one
        at the highest resident memory: memory freed stays resident, and a census's own
        working memory raises it, so the end census often reads highest and names
        nothing."""
        if not self.censuses:
            return None
        peak_t = self.rss_peak_t
        return max(self.censuses, key=lambda c: (c.named, -abs(c.t - peak_t)))

    def last_census(self) -> Census | None:
        return self.censuses[-1] if self.censuses else None

    def start_ns(self) -> int:
        """The earliest start of a process in the stream (its PROC row's ``start_ns``:
        the runtime's clock when memscope started in it), -1 when no PROC row said."""
        starts = [int(p.get("start_ns") or 0) for p in self.procs.values()]
        starts = [s for s in starts if s > 0]
        return min(starts) if starts else -1

    def _time(self, t: int) -> None:
        if self.t_first < 0:
            self.t_first = t
        if t > self.t_last:
            self.t_last = t

    def _site(self, site: int, in_scope: int = -1) -> SiteInfo:
        """Site facts; ``in_scope``: a ``track_scope`` the explicit site ran inside."""
        row = self.sites.get(site)
        if row is not None and in_scope >= 0:
            row = SiteRow(in_scope, row.line, row.col, row.name, row.kind)
        srow = self.scopes.get(row.scope) if row is not None else None
        var = row.name if row is not None else f"<site {site}>"
        scope = srow.qualname if srow else "?"
        module = srow.module if srow else "?"
        key = f"{module}:{scope}:{var}"
        vs = self.vars.get(key)
        if vs is None:
            vs = self.vars[key] = VarStats(
                key, var, scope, module, srow.file if srow else "?", row.line if row else 0
            )
        elif not vs.line and row is not None and srow is not None:
            vs.file, vs.line = srow.file, row.line  # a census named it before its bind
        gkey = f"{module}:{scope}"
        group = self.by_scope.get(gkey)
        if group is None:
            group = self.by_scope[gkey] = Group()
        kind = kind_name(row.kind, BindKind) if row else "unknown"
        info = SiteInfo(
            row.scope if row is not None else -1,
            var,
            scope,
            module,
            srow.file if srow else "?",
            row.line if row else 0,
            row.col if row else 0,
            kind,
            key,
            f"{scope}.{var}",
            vs,
            group,
            (row.scope if row is not None else -1, var),
            kind == "param",
        )
        if row is not None and in_scope < 0:  # a site seen before its row: look again later
            self._site_info[site] = info
        return info

    def _lambdas_done(self, inst: Instance, t: int, exiting: bool = False) -> None:
        """End the thread's lambdas entered after ``inst``: a lambda cannot suspend, so
        once an instance that was running before it runs again, the lambda is over (it
        raised, or its exit was otherwise not seen)."""
        open_ = self._open_lambdas.get(inst.thread)
        if not open_:
            return
        while open_ and open_[-1].t_enter > inst.t_enter and open_[-1] is not inst:
            lam = open_.pop()
            if lam.tok in self.instances:
                self._exit(t, lam.tok)
        if exiting and open_ and open_[-1] is inst:
            open_.pop()  # the lambda's own exit
        if not open_:
            self._open_lambdas.pop(inst.thread, None)

    def _explicit_site(self, site: int, scope: int) -> SiteInfo:
        info = self._site_info_in.get((site, scope))
        if info is None:
            info = self._site_info_in[(site, scope)] = self._site(site, scope)
        return info

    def _group(self, groups: dict[str, Group], key: str) -> Group:
        g = groups.get(key)
        if g is None:
            g = groups[key] = Group()
        return g

    def _bind(self, ev: Event) -> None:
        self.events += 1
        # the time and the size as ints (compiled: native arithmetic, where the row's
        # values would box every sum); site, tok, oid and type stay the row's objects,
        # the keys of the dicts below (an int would be boxed again for each lookup)
        t: int
        size: int
        if len(ev) == 7:  # fast mode's short row: nothing beyond the shallow size
            _, t, site, tok, oid, ti, size = ev
            deep = refcnt = addr = bufsize = -1
        else:
            _, t, site, tok, oid, ti, size, deep, refcnt, addr, bufsize = ev
        if t > self.t_last:
            self.t_last = t
            if self.t_first < 0:
                self.t_first = t
        self.binds += 1
        # (lookups that nearly always find their key index the dict; the others ask
        # ``in`` first: both cheaper than ``get``)
        instances = self.instances
        if tok in instances:
            inst = instances[tok]
            if self._open_lambdas:
                self._lambdas_done(inst, t)
            if inst.scope in self._explicit_scopes:  # track_var inside a track_scope
                si = self._explicit_site(site, inst.scope)
            else:
                try:
                    si = self._site_info[site]
                except KeyError:
                    si = self._site(site)
            thread, task, tgroups = inst.thread, inst.task, inst.groups
            thread_name, task_name = inst.thread_name, inst.task_name
        else:
            inst = None
            try:
                si = self._site_info[site]
            except KeyError:
                si = self._site(site)
            thread = task = 0
            thread_name, task_name, tgroups = "?", "", None
        lkey = si.lkey
        live = self.live
        if tok not in live:
            in_tok = live[tok] = {}
        else:
            in_tok = live[tok]
            if lkey in in_tok:
                self._end(in_tok[lkey], t, "rebind")
                if tok not in live:  # ending the last binding dropped the dict
                    in_tok = live[tok] = {}
        if tgroups is None:
            tgroups = self._no_instance_groups()
        try:
            tname, tgroup = self._type_group[ti]
        except KeyError:
            tname = self.types.get(ti, "?")
            tgroup = self._group(self.by_type, tname)
            self._type_group[ti] = (tname, tgroup)
        nbytes = deep if deep >= 0 else (size if size > 0 else 0)
        groups = (tgroup, si.group, tgroups[0], tgroups[1])
        bid = self.next_id
        self.next_id = bid + 1
        b = Binding(
            bid, si.var, si.scope, si.module, si.file, si.line, si.col, si.kind,
            tname, oid, size, deep, refcnt, addr, bufsize, thread, thread_name, task,
            task_name, self.pid, tok, si.scope_id, t, [], nbytes, si.key, groups, si.vs,
            -1, "live", lkey,
        )  # fmt: skip
        by_oid = self.by_oid
        if oid not in by_oid:
            same = None
            by_oid[oid] = {bid: b}
        else:
            same = by_oid[oid]
            label = si.label
            pairs = self.alias_pairs
            aliases = b.aliases
            for other in same.values():
                olabel = f"{other.scope}.{other.var}"
                aliases.append(olabel)
                other.aliases.append(label)
                pair = (olabel, label) if olabel <= label else (label, olabel)
                pairs[pair] = pairs.get(pair, 0) + 1
            same[bid] = b
        in_tok[lkey] = b
        nlive = self.nlive = self.nlive + 1
        objects = self.objects
        if oid not in objects:
            objects[oid] = ObjectLife(
                oid, tname, t, bid, tok, nbytes, size, si.label, si.key, si.file, si.line,
                -1, False, si.param,
            )  # fmt: skip
        elif (life := objects[oid]).by_param and not si.param:
            # a parameter only receives an object made elsewhere (``self`` in
            # ``__init__``): the first other binding names where it was made
            life.first_binding, life.creator_tok, life.by_param = bid, tok, False
            life.first_var, life.first_key = si.label, si.key
            life.file, life.line = si.file, si.line
        vs = si.vs
        vs.binds += 1
        if tname not in vs.types:
            vs.types.add(tname)
        vs.total_bytes += nbytes
        if nbytes > vs.peak_bytes:
            vs.peak_bytes = nbytes
        if thread not in vs.threads:
            vs.threads.add(thread)
        # tracked bytes: each object once, at its latest size
        if same is None:  # named once: counted by this binding, in every group
            active = self.active_bytes = self.active_bytes + nbytes
            for g in groups:
                g.binds += 1
                g.bytes += nbytes
                g.active += 1
                ab = g.active_bytes = g.active_bytes + nbytes
                if ab > g.peak_bytes:
                    g.peak_bytes = ab
        else:
            active = self._bind_shared(b, same)
        if active > self.peak_bytes:
            self.peak_bytes = active
            self.peak_t = t
            self.peak_count = nlive
        if self.on_binding_start is not None:
            self.on_binding_start(b)
        skip = self._timeline_skip + 1
        if skip < self._timeline_step:
            self._timeline_skip = skip
        else:
            self._timeline_skip = 0
            self._take_sample(t)

    def feed_bind(self, ev: Event) -> None:
        """``feed`` of a BIND row, for a caller that knows it is one."""
        self._bind(ev)

    def _bind_shared(self, b: Binding, same: dict[int, Binding]) -> int:
        """Count ``b``, a binding of an object other live bindings name (``same``, ``b``
        among them): each object once, at its latest size, in the analysis and in each
        group; returns the tracked bytes."""
        oid, nbytes = b.oid, b.bytes
        obj_live, obj_bytes = self._obj_live, self._obj_bytes
        if oid not in obj_bytes:  # its second name: the first one's count, held now
            for ob in same.values():
                if ob is not b:
                    obj_live[oid] = 1
                    obj_bytes[oid] = ob.bytes
                    for g in ob.groups:
                        g.objs[oid] = [1, ob.bytes]
        n = obj_live.get(oid, 0)
        obj_live[oid] = n + 1
        prev = obj_bytes.get(oid, 0) if n > 0 else 0
        obj_bytes[oid] = nbytes
        active = self.active_bytes = self.active_bytes + nbytes - prev
        for g in b.groups:
            g.binds += 1
            g.bytes += nbytes
            g.active += 1
            objs = g.objs
            held = objs.get(oid)
            if held is None:
                objs[oid] = [1, nbytes]
                ab = g.active_bytes = g.active_bytes + nbytes
            else:  # another name of the group for an object it holds: latest size
                held[0] += 1
                ab = g.active_bytes = g.active_bytes + nbytes - held[1]
                held[1] = nbytes
            if ab > g.peak_bytes:
                g.peak_bytes = ab
        return active

    def _no_instance_groups(self) -> tuple[Group, Group]:
        """(thread, task) groups of a bind outside any recorded scope instance."""
        g = self._no_inst_groups
        if g is None:
            g = self._no_inst_groups = (self._group(self.by_thread, "?"),
                                        self._group(self.by_task, "-"))
        return g

    def _sample(self, t: int) -> None:
        self._timeline_skip += 1
        if self._timeline_skip < self._timeline_step:
            return
        self._timeline_skip = 0
        self._take_sample(t)

    def _take_sample(self, t: int) -> None:
        self.timeline.append((t, self.active_bytes))
        if len(self.timeline) >= self.max_timeline_points:
            # halve the resolution, keep each pair's larger value so peaks survive
            tl = self.timeline
            self.timeline = [
                max(tl[i], tl[i + 1], key=lambda p: p[1]) for i in range(0, len(tl) - 1, 2)
            ]
            self._timeline_step *= 2

    def _end(self, b: Binding, t: int, why: str) -> None:
        # boxed once (compiled, each dict lookup would box a native int again)
        tok: Any = b.tok
        oid: Any = b.oid
        live = self.live
        key = b.lkey
        if key is None:
            key = (b.scope_id, b.var)
        in_tok = live.get(tok)
        if in_tok is not None and in_tok.get(key) is b:
            del in_tok[key]
            self.nlive -= 1
            if not in_tok:
                del live[tok]
        by_oid = self.by_oid
        if oid in by_oid:
            same = by_oid[oid]
            same.pop(b.id, None)
            if not same:
                del by_oid[oid]
        b.t_unbind = t
        b.end = why
        nbytes = b.bytes
        if oid not in self._obj_bytes:  # named once: counted by this binding alone
            self.active_bytes -= nbytes
            for g in b.groups:
                g.active -= 1
                g.active_bytes -= nbytes
        else:
            obj_live = self._obj_live
            n = obj_live.get(oid, 0) - 1
            if n <= 0:
                obj_live.pop(oid, None)
                self.active_bytes -= self._obj_bytes.pop(oid, nbytes)
            else:
                obj_live[oid] = n
            for g in b.groups:
                g.active -= 1
                objs = g.objs
                held = objs.get(oid)
                if held is not None:
                    c = held[0] = held[0] - 1
                    if c <= 0:
                        g.active_bytes -= held[1]
                        del objs[oid]
        vs = b.vs
        if vs is not None and t - b.t_bind > vs.max_lifetime_ns:
            vs.max_lifetime_ns = t - b.t_bind
        skip = self._timeline_skip + 1
        if skip < self._timeline_step:
            self._timeline_skip = skip
        else:
            self._timeline_skip = 0
            self._take_sample(t)
        if self.keep_history:
            self.history.append(b)
        if self.on_binding_end is not None:
            self.on_binding_end(b)

    def _exit(self, t: int, tok: int) -> None:
        if self.t_first < 0:  # _time, inline
            self.t_first = t
        if t > self.t_last:
            self.t_last = t
        inst = self.instances.get(tok)
        if inst is None:
            return
        if self._open_lambdas:
            self._lambdas_done(inst, t, exiting=True)
        del self.instances[tok]
        scope = inst.scope
        row = self.scopes.get(scope)
        if row is not None and row.kind == _CLASS:
            self.ended_instances[tok] = scope
        c = self.scope_instances.get(scope)
        if c is not None:
            c[2] -= 1
        in_tok = self.live.get(tok)
        if in_tok:
            end = self._end
            for b in list(in_tok.values()):
                end(b, t, "scope_exit")

    def leak_groups(self) -> list[dict[str, Any]]:
        """Leaks made at one site and kept by one chain (a chain holds no values, so the
        entries of one dict share it): the first leak's fields,
        with ``count``, ``total_bytes`` and ``oids``, in the order first found."""
        groups: dict[tuple[str, str, str], dict[str, Any]] = {}
        for lk in self.leaks:
            b = lk.get("binding") or {}
            holders = lk.get("holders") or [""]
            key = (str(b.get("key", "?")), str(lk.get("type", "?")), str(holders[0]))
            g = groups.get(key)
            if g is None:
                g = groups[key] = {**lk, "count": 0, "total_bytes": 0, "oids": []}
            g["count"] += 1
            g["total_bytes"] += max(int(lk.get("size", 0) or 0), 0)
            g["oids"].append(lk.get("oid"))
        return list(groups.values())

    def _leak_binding(self, oid: int) -> dict[str, Any] | None:
        """Where a leaked object was first bound (kept on its ObjectLife)."""
        life = self.objects.get(oid)
        if life is None:
            return None
        scope, _, var = life.first_var.rpartition(".")
        return {
            "var": var,
            "scope": scope,
            "module": life.first_key.partition(":")[0],
            "key": life.first_key,
            "file": life.file,
            "line": life.line,
            "t_bind": life.t_first,
        }

    def set_process(self, pid: int) -> None:
        """Attribute the events fed from now on to process ``pid`` (merging captures)."""
        self.pid = pid

    # ---- results ----------------------------------------------------------------

    def finish(self) -> Analysis:
        """Nothing is closed at the end: live bindings stay live (end = "live")."""
        return self

    def _live_bindings(self) -> Iterable[Binding]:
        for in_tok in self.live.values():
            yield from in_tok.values()

    def active(self) -> list[Binding]:
        return sorted(self._live_bindings(), key=lambda b: b.t_bind)

    def all_bindings(self) -> list[Binding]:
        return sorted([*self.history, *self._live_bindings()], key=lambda b: b.t_bind)

    def stats(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "total_binds": self.binds,
            "total_unbinds": self.unbinds,
            "active_bindings": self.nlive,
            "active_bytes": self.active_bytes,
            "peak_bytes": self.peak_bytes,
            "peak_t": self.peak_t,
            "peak_bindings": self.peak_count,
            "objects_finalized": self.finals,
            "variables": len(self.vars),
            "scopes_entered": sum(c[0] for c in self.scope_instances.values()),
            "duration_ns": max(0, self.t_last - self.t_first) if self.t_first >= 0 else 0,
            "errors": len(self.errors),
            "sampled_sites": sum(1 for every, _ in self.sampled.values() if every),
            "sampled_skipped": sum(skipped for _, skipped in self.sampled.values()),
            **self.memory_stats(),
            "by_type": {k: g.as_dict() for k, g in self.by_type.items()},
            "by_scope": {k: g.as_dict() for k, g in self.by_scope.items()},
            "by_thread": {k: g.as_dict() for k, g in self.by_thread.items()},
            "by_task": {k: g.as_dict() for k, g in self.by_task.items()},
        }

    def memory_stats(self) -> dict[str, Any]:
        """The process's memory beside what the names retain, at the peak census:
        ``named_at_peak`` of ``process_peak_bytes`` (resident, VmHWM); memscope's own
        (``memscope_own_at_peak_bytes``, measured: -1 in older captures); the rest is
        unnamed (temporaries, library internals, the interpreter; memscope too where
        its own is not known)."""
        pc = self.peak_census()
        named = pc.named if pc is not None else -1
        rss_at = pc.rss if pc is not None else -1
        own = pc.own if pc is not None else -1
        return {
            "process_peak_bytes": self.rss_peak,
            "process_peak_t": self.rss_peak_t,
            "process_peak_kernel_bytes": max(self.rss_peak_kernel, self.rss_peak),
            "process_rss_last_bytes": self.rss_last,
            "censuses": len(self.censuses),
            "census_cost_ns": sum(c.cost_ns for c in self.censuses),
            "peak_census_t": pc.t if pc is not None else -1,
            "peak_census_rss_bytes": rss_at,
            "named_at_peak_bytes": named,
            "memscope_own_at_peak_bytes": own,
            "unnamed_at_peak_bytes": rss_at - named - max(own, 0)
            if pc is not None and rss_at >= 0 else -1,
        }

    def top_variables(self, n: int = 20) -> list[VarStats]:
        return sorted(self.vars.values(), key=lambda v: (-v.peak_bytes, v.key))[:n]

    def scope_tree(self) -> dict[str, Any]:
        """module > class > function nesting of per-scope peaks (from qualnames)."""
        root: dict[str, Any] = {"name": "<all>", "peak_bytes": 0, "children": {}}
        for key, g in self.by_scope.items():
            module, _, qual = key.partition(":")
            node = root["children"].setdefault(
                module, {"name": module, "peak_bytes": 0, "children": {}}
            )
            node["peak_bytes"] += g.peak_bytes
            if qual and qual != "<module>":
                for part in qual.replace(".<locals>", "").split("."):
                    node = node["children"].setdefault(
                        part, {"name": part, "peak_bytes": 0, "children": {}}
                    )
                    node["peak_bytes"] += g.peak_bytes
            root["peak_bytes"] += g.peak_bytes
        return root

    def scope_kind(self, scope_id: int) -> str:
        row = self.scopes.get(scope_id)
        return kind_name(row.kind, ScopeKind) if row else "unknown"
