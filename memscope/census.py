"""The census: what each named binding of instrumented code keeps alive, right now.

A BIND event says what a name pointed to when it was bound; a list appended to later
reads as an empty list. The census answers "what would be freed if this name were
dropped" by walking the live heap from the *named roots*:

- the locals of every running frame of instrumented code (every thread), and of every
  suspended generator or coroutine of instrumented code the walk comes across;
- the globals of instrumented modules, and the attributes of their classes.

From each root it walks the objects reachable through ``gc.get_referents`` (the types'
own C traversal: no user code runs), stopping at what is program rather than data
(modules and their globals, classes, code, frames; another instrumented frame's locals
are roots of their own). Every object reached is sized once (``sizing``'s sizes, a
NumPy view's base included) and labelled:

- *retained* by a root when only that root reaches it and nothing outside the walk
  holds it: dropping the name would free it;
- *shared* when two or more roots reach it (counted once, shown as shared by each);
- *held elsewhere* when something the walk does not see holds it too (a library's cache,
  an uninstrumented frame, the interpreter): its reference count says more holders
  than the walk found. Such memory is not the name's to free and is left out.

Objects with a single holder (most of the heap: the strings in a list, the rows of a
table) are never remembered, only sized: their holder's label is theirs, so the census
keeps state only for objects with several holders, and its own memory stays small.

A census leaves the switch interval as the program set it: its walk is compiled C,
which holds the GIL throughout, and raising the interval to hold the heap still
longer would let a thread that took the GIL meanwhile keep it that long too, and
starve the program's other threads. What a census keeps in its
records stays alive while it runs, so an id is never reused under it; the collector
is off while it walks. It never calls user code, never keeps a reference after it
returns, and never raises: its cost (``cost_ns``, the CPU time of the thread that ran
it) and its results are recorded as CVAR rows and one CENSUS row (``memscope.events``).
"""

from __future__ import annotations

import gc
import itertools
import os
import sys
import time
import types

from memscope import _hooks, _own, frames, sizing
from memscope.events import CENSUS, CVAR, MODULE, SCOPE, expand_module, table_names
from memscope.sizing import _isa

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    from typing import Any

_getrefcount = sys.getrefcount
_thread_time = time.thread_time_ns
_getsizeof = sys.getsizeof
_add = int.__add__
_and = int.__and__
_repeat = itertools.repeat
_get_referents = gc.get_referents
_ModuleType = types.ModuleType
_CodeType = types.CodeType
_FrameType = types.FrameType
_GenTypes = (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)
_GEN_SET = frozenset(_GenTypes)
_COROUTINE, _ASYNC_GENERATOR = 6, 7  # ScopeKind numbers (memscope.kinds: not imported)
_CellType = types.CellType
_dict_keys = dict.keys
_dict_len = dict.__len__
_dict_items = dict.items
_type_module = type.__dict__["__module__"].__get__
_type_qualname = type.__dict__["__qualname__"].__get__
_type_dict = type.__dict__["__dict__"].__get__
_module_dict = _ModuleType.__dict__["__dict__"].__get__  # type: ignore[index]
_MEMSCOPE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
# what a class body holds that is code, not data: never a class-attribute root
_CODE_ATTRS = (types.FunctionType, staticmethod, classmethod, property, type,
               types.BuiltinFunctionType, types.MethodDescriptorType)
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE
_mro = type.__dict__["__mro__"].__get__
_MANAGED_DICT = 1 << 4  # Py_TPFLAGS_MANAGED_DICT (3.11, 3.12): attribute values apart
_VALUES_APART = (3, 11) <= sys.version_info[:2] < (3, 13)

SHARED = -1  # label: reached by more than one root
ELSEWHERE = -2  # label: held by something the walk does not see
RESCUE_BYTES = 64 << 10  # unexplained holders of this much are looked for on stacks
MAX_SHARERS = 8  # roots remembered per shared object (the rest still see it as shared)
MAX_ROWS = 2000  # CVAR rows per census (the largest); the CENSUS row counts them all
MIN_ROW_BYTES = 1024  # a root retaining and sharing less than this gets no CVAR row

# the fields of one remembered object (a list: updated in place): the object, its
# label, references found to it, bytes that are its own (its single-holder objects
# included), references it has, references its names hold, roots sharing it, and the
# holder visit it was found in
_OBJ, _LABEL, _INDEG, _PRIVATE, _HOLDERS, _ROOTREFS, _SHARERS, _VISIT = range(8)

# what the walk does with a type's objects (_Kind.how): ordered, > _LEAF are entered
_STOP, _GEN, _LEAF, _SIZED, _PLAIN, _DECLARED, _NUMPY = range(7)


def _solid_base(tp: type) -> type:
    """The first built-in (static) type in ``tp``'s MRO: what its instances are laid
    out as (``object`` for a plain class, ``dict`` for a dict subclass)."""
    for base in _mro(tp):
        if not type.__dict__["__flags__"].__get__(base) & _HEAPTYPE:
            return base
    return object


class _Kind:
    """One type as the walk sees it: how to size it, whether and how to enter it."""

    __slots__ = ("extra", "how", "is_dict", "sizeof", "values_apart", "wt")

    def __init__(self, tp: type, sample: Any) -> None:
        wt = self.wt = sizing._walk_type_of(tp, sample)
        self.sizeof = wt.sizeof
        self.extra = wt.extra
        self.is_dict = wt.is_dict
        plan = wt.plan
        flags = type.__dict__["__flags__"].__get__(tp)
        # attribute values in an array apart: instances of plain classes only (a dict
        # or list subclass's referents are its items, not its attributes)
        self.values_apart = _VALUES_APART and bool(flags & _MANAGED_DICT) and \
            _solid_base(tp) is object
        if tp is _ModuleType or tp is _CodeType or tp is _FrameType or issubclass(tp, type):
            self.how = _STOP  # program, not data
        elif tp in _GenTypes:
            self.how = _GEN
        elif plan.sizer is not None and plan.sizer.children is not None:
            self.how = _DECLARED
        elif plan.buffer_kind == "numpy":
            self.how = _NUMPY
        elif wt.container:
            self.how = _PLAIN
        elif self.sizeof is not None and not self.values_apart:
            self.how = _LEAF
        else:
            self.how = _SIZED

    def size(self, o: Any) -> int:
        return self.wt.size(o)


class Root:
    """One named binding: where it lives and what it is bound to."""

    __slots__ = ("gscope", "name", "obj", "refs", "tok")

    def __init__(self, gscope: int, tok: int, name: str, obj: Any, refs: int) -> None:
        self.gscope = gscope
        self.tok = tok
        self.name = name
        self.obj = obj
        self.refs = refs  # references the binding itself holds (slot, dict entry)


def _single_holder_refs() -> int:
    """What ``getrefcount`` says, in the walk's loop shape, of an object with one holder."""
    holder = [object()]
    kids = _get_referents(holder)
    for k in kids:
        return _getrefcount(k)
    return 4


def _single_holder_refs_mapped() -> int:
    """The same, in the bulk shape (``map`` over a holder's referents)."""
    holder = [object()]
    kids = _get_referents(holder)
    return max(map(_getrefcount, kids))


def _root_refs() -> int:
    """What ``_measure`` says of an object with exactly one holder besides the root."""
    probe = [object()]
    root = Root(0, 0, "p", probe[0], 1)
    return _measure(root)


def _measure(root: Root) -> int:
    obj = root.obj
    return _getrefcount(obj)


_SINGLE = _single_holder_refs()
_SINGLE_MAPPED = _single_holder_refs_mapped()
_BULK = 16  # a holder of at least this many leaves is sized in C-level passes
_ROOT_BASE = _root_refs() - 1


def _keys_traversed(kids: list[Any], d: dict[Any, Any]) -> bool:
    """Did a dict's own traversal visit its keys? CPython's visits value then key of
    each entry, but only values when every key is a str; a subclass's traversal puts
    what it holds first (its class, ``default_factory``, an OrderedDict's links to
    every key). So: are the last ``2 * len`` referents the entries, value first?
    (Sizes and items are read with dict's own C methods: no user code runs.)"""
    n = _dict_len(d)
    if not n:
        return True
    if len(kids) < 2 * n:
        return False
    for key, value in _dict_items(d):
        return kids[-2 * n] is value and kids[-2 * n + 1] is key
    return True


class _Scopes:
    """The scope tables as the census needs them: instrumented files, and in each the
    global scope of every qualname; the modules with their module scope."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, int]] = {}
        self.modules: list[tuple[str, str]] = []  # (module name, file)
        self.module_rows: dict[str, list[Any]] = {}  # file -> its MODULE rows (3.10)
        self.by_name: dict[str, dict[str, list[int]]] = {}  # file -> name -> scopes
        # coroutines to look for: asyncio's tasks, or coroutine scopes registered by
        # hand (the module tables' kinds are not unpacked here: that imports array,
        # and an import in the census thread is a hazard to a fork)
        self.coroutines = "asyncio" in sys.modules
        for row in list(_hooks._tables):
            try:
                if row[0] == MODULE:
                    _, _base, sbase, file, module, ns, n, _ints, names = row
                    quals = table_names(ns, n, names)[:ns]
                    by_qual = self.files.setdefault(file, {})
                    for i, q in enumerate(quals):
                        by_qual.setdefault(q, sbase + i)
                    self.modules.append((module, file))
                    self.module_rows.setdefault(file, []).append(row)
                elif row[0] == SCOPE:
                    self.files.setdefault(row[2], {}).setdefault(row[4], row[1])
                    self.coroutines = self.coroutines or row[5] in (_COROUTINE, _ASYNC_GENERATOR)
            except Exception:
                continue

    def scope_of(self, code: _CodeType) -> int:
        by_qual = self.files.get(code.co_filename)
        if by_qual is None:
            return -1
        qual = getattr(code, "co_qualname", None)
        if qual is not None:
            return by_qual.get(qual, -1)
        return self._scope_by_name(code, by_qual)  # 3.10: no co_qualname

    def _scope_by_name(self, code: _CodeType, by_qual: dict[str, int]) -> int:
        """3.10's code objects have no qualname: the scope whose qualname ends with
        the code's name; of several (``__init__`` of two classes), the one whose ``def``
        line is the first at or after the code's first line (its decorators)."""
        file, name = code.co_filename, code.co_name
        names = self.by_name.get(file)
        if names is None:
            names = self.by_name[file] = {}
            for q, scope in by_qual.items():
                names.setdefault(q.rpartition(".")[2], []).append(scope)
        found = names.get(name)
        if not found:
            return -1
        if len(found) == 1:
            return found[0]
        lines = self._scope_lines(file)
        first = code.co_firstlineno
        after = [(lines.get(s, -1) - first, s) for s in found if lines.get(s, -1) >= first]
        return min(after)[1] if after else -1

    def _scope_lines(self, file: str) -> dict[int, int]:
        """scope -> its ``def`` line, for one file (from its table rows)."""
        out: dict[int, int] = {}
        for row in self.module_rows.get(file, ()):
            try:
                for ev in expand_module(row):
                    if ev[0] == SCOPE:
                        out[ev[1]] = ev[6]
            except Exception:
                continue
        for row in list(_hooks._tables):
            if row[0] == SCOPE and row[2] == file:
                out[row[1]] = row[6]
        return out


def _skip_name(name: str) -> bool:
    return name.startswith(("_memscope", "__memscope")) or (
        name.startswith("__") and name.endswith("__"))


def class_attributes(cls: type, module: str, depth: int = 0) -> Any:
    """``(qualname, name, value)`` of each attribute a class of ``module`` defines in
    its own namespace (and of its nested classes', four deep), read without running
    user code; dunders and memscope's names left out. The census's and the leak
    check's class roots."""
    try:
        if _type_module(cls) != module or depth > 4:
            return
        qual = _type_qualname(cls)
        d = _type_dict(cls)
    except Exception:
        return
    for name, value in list(d.items()):
        if type(name) is not str or _skip_name(name):
            continue
        if _isa(value, type):
            yield from class_attributes(value, module, depth + 1)
            continue
        yield qual, name, value


class _Census:
    """One census: gather the roots, walk, label, sum (see the module docstring)."""

    def __init__(self, scopes: _Scopes) -> None:
        self.scopes = scopes
        self.roots: list[Root] = []
        self.frames_seen: set[int] = set()
        self.pending_frames: list[tuple[Any, int]] = []
        self.rec: dict[int, list[Any]] = {}  # the pure walk's records
        self.store: Any = None  # the C walk's records (memscope._censusc.Records)
        self.kinds: dict[type, _Kind] = {}
        self.visit = 0
        self.objects = 0
        self.occurrences: dict[int, int] = {}  # id -> Root objects holding it so far
        # address -> slots of running frames (locals, value stacks) that hold it, maybe
        self.slots: dict[int, int] = {}
        self.running: set[int] = set()  # ids of the frames on threads' stacks
        self.stop: set[int] = set()  # ids of module dicts: globals are not data
        for m in list(sys.modules.values()):
            if type(m) is _ModuleType:
                try:
                    self.stop.add(id(_module_dict(m)))
                except Exception:
                    continue

    # ---- roots -------------------------------------------------------------------

    def add_frame(self, frame: Any, gscope: int) -> None:
        if id(frame) in self.frames_seen:
            return
        self.frames_seen.add(id(frame))
        self.pending_frames.append((frame, gscope))

    def add_root(self, root: Root) -> None:
        self.roots.append(root)
        key = id(root.obj)
        self.occurrences[key] = self.occurrences.get(key, 0) + 1

    def frame_roots(self, frame: Any, gscope: int) -> None:
        pairs = frames.frame_locals(frame)
        extra = frames.locals_dict(frame)
        tok = 0
        for name, value in pairs:
            if name == "_memscope_s":
                tok = value if type(value) is int else 0
        if id(frame) not in self.running:
            # a suspended frame's value stack (the iterator its ``for`` loop runs) holds
            # references too; a running frame's slots were counted with its stack
            for p in frames.raw_slots(frame, stack_only=True):
                self.slots[p] = self.slots.get(p, 0) + 1
        for name, value in pairs:
            if _skip_name(name):
                continue
            refs = 1
            if extra is not None and extra.get(name, extra) is value:
                refs += 1  # the frame's own locals() dict holds it too
            self.add_root(Root(gscope, tok, name, value, refs))

    def stack_roots(self) -> None:
        me = _hooks._get_ident()
        slots = self.slots
        for ident, top in sys._current_frames().items():
            f: Any = top
            while f is not None:
                code = f.f_code
                if ident == me and code.co_filename.startswith(_MEMSCOPE_DIR):
                    f = f.f_back
                    continue
                gscope = self.scopes.scope_of(code)
                # an instrumented frame's locals are roots (their references counted
                # as such): only its value stack is counted here
                for p in frames.raw_slots(f, stack_only=gscope >= 0):
                    slots[p] = slots.get(p, 0) + 1
                self.running.add(id(f))
                if gscope >= 0 and code.co_name != "<module>":
                    self.add_frame(f, gscope)
                f = f.f_back
        # this thread's top frame is this very frame: holding it in a local would be a
        # cycle (frame -> local -> frame) that keeps the census, and what it holds, alive
        # until the next collection
        del top
        f = None

    def module_roots(self) -> None:
        for module, file in self.scopes.modules:
            mod = sys.modules.get(module)
            if type(mod) is not _ModuleType:
                continue
            try:
                d: dict[str, Any] = _module_dict(mod)
            except Exception:
                continue
            if d.get("__file__") not in (file, None) and d.get("_memscope_") is None:
                continue
            by_qual = self.scopes.files.get(file, {})
            mscope = by_qual.get("<module>", -1)
            h = d.get("_memscope_")  # the module token is kept on its handle ...
            tok = h.__dict__.get("m", 0) if type(h) is _ModuleType else 0
            tok = tok or d.get("_memscope_m", d.get("_memscope_s", 0))  # ... or was
            tok = tok if type(tok) is int else 0
            for name, value in list(d.items()):
                if type(name) is not str or _skip_name(name):
                    continue
                tp = type(value)
                if tp is _ModuleType:
                    continue
                if _isa(value, type):
                    self.class_roots(value, module, by_qual, 0)
                    continue
                self.add_root(Root(mscope, tok, name, value, 1))

    def class_roots(self, cls: type, module: str, by_qual: dict[str, int], depth: int) -> None:
        for qual, name, value in class_attributes(cls, module, depth):
            gscope = by_qual.get(qual, -1)
            if gscope >= 0 and not _isa(value, _CODE_ATTRS):
                self.add_root(Root(gscope, 0, name, value, 1))

    # ---- the walk ----------------------------------------------------------------

    def kind(self, tp: type, sample: Any) -> _Kind:
        """What the walk does with objects of ``tp`` (made once per type per census)."""
        kd = self.kinds.get(tp)
        if kd is None:
            kd = self.kinds[tp] = _Kind(tp, sample)
        return kd

    def children(self, o: Any, kd: _Kind) -> list[Any]:
        """What ``o`` references, each reference once per holding slot (as counted by
        the reference counts); [] for what the walk does not enter."""
        if kd.how == _PLAIN or kd.how == _GEN:
            kids = _get_referents(o)
            if kd.is_dict and not _keys_traversed(kids, o):
                kids = [*_dict_keys(o), *kids]  # a str-keyed dict: values only, so far
            return kids
        if kd.how == _DECLARED:
            sizer = kd.wt.plan.sizer
            return list(sizer.children(o)) if sizer is not None and sizer.children else []
        if kd.how == _NUMPY:
            base = sizing.buffer_base(o)
            return [] if base is None else [base]
        return []

    def gen_scope(self, k: Any) -> int:
        """The instrumented scope of ``k`` (a generator, coroutine or async generator),
        or -1."""
        code = getattr(k, "gi_code", None) or getattr(k, "cr_code", None) or getattr(
            k, "ag_code", None)
        return self.scopes.scope_of(code) if type(code) is _CodeType else -1

    def instrumented(self, k: Any) -> bool:
        """Is ``k`` (a generator, coroutine or async generator) of instrumented code?"""
        return self.gen_scope(k) >= 0

    def frame_of(self, k: Any) -> bool:
        """An instrumented generator or coroutine: its frame's locals become roots
        (True). Another one (False) is walked like any container."""
        gscope = self.gen_scope(k)
        if gscope >= 0:
            frame = getattr(k, "gi_frame", None) or getattr(k, "cr_frame", None) or getattr(
                k, "ag_frame", None)
            if frame is not None:
                self.add_frame(frame, gscope)
            return True
        return False

    def walk_root(self, r: int, root: Root) -> None:
        # first, while no local of ours holds the object (as calibrated)
        measured = _measure(root)
        obj = root.obj
        kd = self.kind(type(obj), obj)
        if kd.how == _STOP or id(obj) in self.stop:
            return
        # the other Root objects made so far for this object hold it too
        holders = measured - _ROOT_BASE - (self.occurrences.get(id(obj), 1) - 1)
        if self.store is not None:
            self.store.root(r, obj, holders, root.refs)
            return
        rec = self.rec.get(id(obj))
        if rec is not None:
            rec[_ROOTREFS] += root.refs
            self.meet(rec, r, None)
            return
        rec = [obj, r, 0, kd.size(obj), holders, root.refs, None, 0]
        self.rec[id(obj)] = rec
        self.objects += 1
        if kd.how == _GEN and self.frame_of(obj):
            return  # the generator is not walked: its locals are roots
        self.descend(obj, rec)

    def descend(self, start: Any, start_rec: list[Any]) -> None:
        """The first walk below a newly remembered object: count, size, label."""
        stack: list[tuple[Any, list[Any]]] = [(start, start_rec)]
        kinds = self.kinds
        recs = self.rec
        stop = self.stop
        single = _SINGLE
        getrefcount = _getrefcount
        children = self.children
        visit = self.visit
        objects = 0
        while stack:
            o, owner = stack.pop()
            kd = kinds[type(o)]
            try:
                kids = children(o, kd)
            except Exception:
                continue
            if kd.values_apart and not any(type(x) is dict for x in kids):
                # 3.11/3.12 keep an instance's attribute values in an array of their
                # own until its __dict__ is asked for (then the dict is a referent)
                owner[_PRIVATE] += (8 * len(kids) + 15) & ~7  # the values and the class
            visit += 1
            if len(kids) >= _BULK and self.bulk(kids, owner):
                objects += len(kids)
                continue
            for k in kids:
                n = getrefcount(k)
                ki = id(k)
                rec = recs.get(ki)
                if rec is not None:
                    rec[_INDEG] += 1
                    if rec[_VISIT] == visit:  # twice in one holder: counted once too many
                        rec[_HOLDERS] -= 1
                    if rec[_LABEL] != owner[_LABEL] or owner[_LABEL] == SHARED:
                        self.meet(rec, owner[_LABEL], owner[_SHARERS])
                    continue
                kt = type(k)
                kkd = kinds.get(kt)
                if kkd is None:
                    kkd = self.kind(kt, k)
                kd = kkd
                how = kd.how
                if how == _STOP or (kd.is_dict and ki in stop):
                    continue
                objects += 1
                if how == _LEAF:
                    size = kd.sizeof(k) + kd.extra
                    size = (size + 7) & ~7
                else:
                    size = kd.size(k)
                if n <= single:  # o is its one holder: o's owner's, never met again
                    owner[_PRIVATE] += size
                    if how >= _PLAIN or (how == _GEN and not self.frame_of(k)):
                        stack.append((k, owner))
                    continue
                rec = [k, owner[_LABEL], 1, size, n - single + 1, 0,
                       None if owner[_SHARERS] is None else list(owner[_SHARERS]), visit]
                recs[ki] = rec
                if how >= _PLAIN or (how == _GEN and not self.frame_of(k)):
                    stack.append((k, rec))
        self.visit = visit
        self.objects += objects

    def bulk(self, kids: list[Any], owner: list[Any]) -> bool:
        """Size many referents at once when every one is a leaf (a string, a number,
        bytes) with ``o`` as its only holder: the common list of strings or numbers.
        False (nothing done) otherwise."""
        kinds = self.kinds
        for t in set(map(type, kids)):
            kd = kinds.get(t)
            if kd is None or kd.how != _LEAF:
                return False
        if max(map(_getrefcount, kids)) > _SINGLE_MAPPED:
            return False
        # leaves have no GC header: getsizeof is their __sizeof__; each rounded up to
        # the allocator's 8-byte granule, as sizing does
        owner[_PRIVATE] += sum(map(_and, map(_add, map(_getsizeof, kids), _repeat(7)),
                                   _repeat(~7)))
        return True

    def meet(self, rec: list[Any], label: int, sharers: list[int] | None) -> None:
        """``rec`` is reached again, from ``label`` (a root, SHARED with ``sharers``, or
        ELSEWHERE): merge, and spread what changed below it. Only a change of label
        spreads (one root's to shared, anything to held elsewhere): a shared object
        reached by one more name records that name itself, but what is shared below
        it keeps the names it had (re-walking a structure every named frame of a
        recursion reaches, once per frame, made a census of a 56k-node tree cost a
        second); the totals are the same, a third name's ``shared`` may count less."""
        old = rec[_LABEL]
        if old == ELSEWHERE:
            return
        if label == ELSEWHERE:
            new_label, new_sharers = ELSEWHERE, None
        else:
            mine = [old] if old >= 0 else list(rec[_SHARERS] or ())
            theirs = [label] if label >= 0 else list(sharers or ())
            merged = mine + [s for s in theirs if s not in mine]
            if len(merged) == len(mine) and old == SHARED:
                return
            if len(merged) == 1:
                return
            new_label, new_sharers = SHARED, merged[:MAX_SHARERS]
            if old == SHARED and new_sharers == rec[_SHARERS]:
                return
        rec[_LABEL] = new_label
        rec[_SHARERS] = new_sharers
        if old != SHARED or new_label == ELSEWHERE:
            self.spread(rec)

    def spread(self, top: list[Any]) -> None:
        """Carry ``top``'s new label down to what it reaches (no counting: the first
        walk counted every edge)."""
        self.spread_all([top])

    def spread_all(self, tops: list[list[Any]]) -> None:
        """``spread`` from several records at once, each object looked at once."""
        recs = self.rec
        kinds = self.kinds
        seen_here: set[int] = set()
        for top in tops:
            start = top[_OBJ]
            kd = kinds.get(type(start))
            if kd is None or (kd.how < _PLAIN and kd.how != _GEN) or id(start) in seen_here:
                continue  # a leaf: nothing below it
            if kd.how == _GEN and self.instrumented(start):
                continue  # its locals are roots of their own
            seen_here.add(id(start))
            label, sharers = top[_LABEL], top[_SHARERS]
            stack: list[Any] = [start]
            while stack:
                o = stack.pop()
                try:
                    kids = self.children(o, kinds[type(o)])
                except Exception:
                    continue
                for k in kids:
                    ki = id(k)
                    if ki in seen_here:
                        continue
                    rec = recs.get(ki)
                    if rec is None:
                        kd = self.kind(type(k), k)
                        if (kd.how >= _PLAIN or (kd.how == _GEN and not self.instrumented(k))) \
                                and _getrefcount(k) <= _SINGLE:
                            stack.append(k)  # a single-holder object: look through it
                        continue
                    seen_here.add(ki)
                    old = rec[_LABEL]
                    if old == ELSEWHERE or (old == label and rec[_SHARERS] == sharers):
                        continue
                    if label == ELSEWHERE:
                        rec[_LABEL], rec[_SHARERS] = ELSEWHERE, None
                    else:
                        mine = [old] if old >= 0 else list(rec[_SHARERS] or ())
                        merged = mine + [s for s in (sharers or ()) if s not in mine]
                        if old == SHARED and merged[:MAX_SHARERS] == rec[_SHARERS]:
                            continue
                        rec[_LABEL], rec[_SHARERS] = SHARED, merged[:MAX_SHARERS]
                    if type(k) not in _GEN_SET or not self.instrumented(k):
                        stack.append(k)  # (an instrumented generator's locals are roots)

    def suspended_roots(self) -> None:
        """Suspended coroutines (and generators) of instrumented code wherever they are
        held (an event loop's pending tasks, say): their frames' locals are roots.
        Only where asyncio runs (or coroutine scopes were registered by hand): a
        generator is found where it is used (a frame's local, a named object). The
        list of every object is dropped before the walk counts references."""
        if not self.scopes.coroutines:
            return
        for o in tracked_objects(types=_GEN_IDS):
            self.frame_of(o)

    def recorded(self, address: int) -> bool:
        """Is the object at ``address`` remembered (a record of either walk)?"""
        return self.store.has(address) if self.store is not None else address in self.rec

    def records(self) -> dict[int, list[Any]]:
        """id -> record (laid out as _OBJ.._VISIT), of either walk: for tests."""
        if self.store is not None:
            return {id(rec[_OBJ]): rec for rec in self.store.records()}
        return self.rec

    def record_count(self) -> int:
        return len(self.store) if self.store is not None else len(self.rec)

    def release(self) -> None:
        """Drop every reference the census took (objects, frames), at once: what the
        program freed meanwhile is freed now, not at the next collection."""
        if self.store is not None:
            self.store.release()  # its memory goes back to the system too
            self.store = None
        self.rec.clear()
        self.roots.clear()
        self.pending_frames.clear()
        self.kinds.clear()
        self.occurrences.clear()
        self.slots.clear()
        self.running.clear()
        self.frames_seen.clear()

    def run(self) -> None:
        if ACCELERATED:  # the records and the walk in C (memscope/_censusc.c)
            self.store = _CRecords(self)
        try:
            self._run()
        finally:
            if self.store is not None:
                self.visit = self.store.visit
                self.objects = self.store.objects

    def _run(self) -> None:
        self.stack_roots()
        self.suspended_roots()
        self.module_roots()
        r = 0
        while True:
            while r < len(self.roots):
                self.walk_root(r, self.roots[r])
                r += 1
            if not self.pending_frames:
                break
            frame, gscope = self.pending_frames.pop()
            try:
                self.frame_roots(frame, gscope)
            except Exception as exc:
                _hooks._error("census", exc)
        # more holders than the walk found: something unseen holds it too, unless it
        # is running code (a frame's slot, or what a frame's stack holds, such as the
        # iterator of a ``for`` loop over the object)
        slots = self.slots
        seen = {p: n for p, n in slots.items() if self.recorded(p)}
        store = self.store
        if store is not None:
            if store.unexplained(seen) >= RESCUE_BYTES:
                self.held_by_running(seen)
            store.settle(seen)
            return
        unseen = [ki for ki, rec in self.rec.items() if rec[_LABEL] != ELSEWHERE
                  and rec[_HOLDERS] > rec[_INDEG] + rec[_ROOTREFS] + seen.get(ki, 0)]
        if any(self.rec[ki][_PRIVATE] >= RESCUE_BYTES for ki in unseen):
            self.held_by_running(seen)  # one pass over the heap: worth it for these
        elsewhere = []
        for ki in unseen:
            rec = self.rec[ki]
            if rec[_HOLDERS] > rec[_INDEG] + rec[_ROOTREFS] + seen.get(ki, 0):
                rec[_LABEL], rec[_SHARERS] = ELSEWHERE, None
                elsewhere.append(rec)
        self.spread_all(elsewhere)

    def held_by_running(self, seen: dict[int, int]) -> None:
        """Add to ``seen`` the references to remembered objects from what running
        frames' slots hold (one level: the iterator a loop runs, a bound method); the
        C walk keeps them with its records instead (``Records.held``), and its
        ``unexplained`` and ``settle`` count them as ``seen``. A slot above a stack's
        top may be stale, so an address is made into an object only when a live
        object has it (found among ``gc.get_objects()``)."""
        slots = self.slots
        store = self.store
        recorded = store.has if store is not None else self.rec.__contains__
        loose = frozenset(itertools.filterfalse(recorded, slots))
        objs = [o for o in tracked_objects(ids=loose) if type(o) is not _FrameType]
        if store is not None:
            # the C walk counts them with its records (a frame's iterator over a million
            # recorded objects: 0.8 s a census of pyparsing's tests in a Python loop)
            store.held(objs, [slots[id(o)] for o in objs])
            return
        for o in objs:
            try:
                kids = _get_referents(o)
            except Exception:
                continue
            n = slots[id(o)]
            for ki in filter(recorded, map(id, kids)):  # C callables only in the loop
                seen[ki] = seen.get(ki, 0) + n

    def totals(self) -> tuple[list[int], list[int], int, int]:
        """(retained per root, shared per root, named bytes, shared bytes)."""
        n = len(self.roots)
        if self.store is not None:
            retained, shared, named, shared_total = self.store.totals(n)
            return retained, shared, named, shared_total
        retained = [0] * n
        shared = [0] * n
        named = shared_total = 0
        for rec in self.rec.values():
            label = rec[_LABEL]
            if label >= 0:
                retained[label] += rec[_PRIVATE]
                named += rec[_PRIVATE]
            elif label == SHARED:
                for s in rec[_SHARERS] or ():
                    shared[s] += rec[_PRIVATE]
                named += rec[_PRIVATE]
                shared_total += rec[_PRIVATE]
        return retained, shared, named, shared_total


def tracked_objects(*, types: frozenset[int] = frozenset(),
                    ids: frozenset[int] = frozenset()) -> list[Any]:
    """The collector's objects whose type's id is in ``types``, or whose id is in
    ``ids``. ``gc.get_objects()``'s list holds every tracked object, a tuple another
    thread is still building included (its resize then fails: SystemError in the
    program), so no other thread may run while it exists: in C (``_censusc.tracked``)
    it lives inside one call that runs no bytecode. Without the extension it is
    filtered by C callables only with the switch interval raised, which leaves a few
    bytecodes' window (a thread already asking for the GIL)."""
    if _c_tracked is not None:
        return _c_tracked(types, ids)
    old = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    objs: list[Any] | None = None
    sel: Any = None
    try:
        objs = gc.get_objects()
        if types:
            sel = map(types.__contains__, map(id, map(type, objs)))
        else:
            sel = map(ids.__contains__, map(id, objs))
        return list(itertools.compress(objs, sel))
    finally:
        objs = sel = None
        sys.setswitchinterval(old)


_GEN_IDS = frozenset(map(id, _GenTypes))  # (static types: their ids never change)
_next_cid = [1]
_one_at_a_time = _hooks._thread.allocate_lock()
# [a census is running, the collector state it will restore]
_running: list[Any] = [False, True]


def take(reason: str, rss: int = -1, hwm: int = -1) -> int:
    """Take a census now and record it (CVAR rows, then a CENSUS row); returns its id,
    or 0 if it could not be taken (an error is counted, never raised)."""
    if getattr(_hooks._local, "busy", False):
        return 0
    with _one_at_a_time:
        return _take(reason, rss, hwm)


def _take(reason: str, rss: int, hwm: int) -> int:
    _hooks._local.busy = True
    t0 = _thread_time()
    gc_was = gc.isenabled()
    _running[:] = [True, gc_was]
    census = None
    try:
        gc.disable()  # a collection mid-walk would free what a record still names
        census = _Census(_Scopes())
        census.run()
        retained, shared, named, shared_total = census.totals()
        cid = _next_cid[0]
        _next_cid[0] += 1
        rows = []
        for i in range(len(census.roots)):
            if retained[i] + shared[i] >= MIN_ROW_BYTES:
                rows.append((retained[i], shared[i], i))
        rows.sort(reverse=True)
        out = _hooks._buf
        for ret, sh, i in rows[:MAX_ROWS]:
            root = census.roots[i]
            obj = root.obj
            shallow = census.kind(type(obj), obj).size(obj)
            out.append((CVAR, cid, root.gscope, root.tok, root.name, _hooks._type_idx(type(obj)),
                        shallow, ret, sh, id(obj)))
        objects = census.objects
    except Exception as exc:
        _hooks._error("census", exc)
        return 0
    finally:
        if census is not None:
            census.release()  # every reference the census took goes, before anything else
        census = None
        if gc_was:
            gc.enable()
        _running[0] = False
        _hooks._local.busy = False
    t1 = _hooks._perf()
    cost = _thread_time() - t0
    _hooks._buf.append((CENSUS, t1, cid, reason, rss, hwm, named, shared_total, objects,
                        cost, _own.total()))
    return cid


try:  # the records and the walk in C: built by ``pip install`` where a compiler is
    from memscope._censusc import Records as _CRecords
except ImportError:  # none was: the pure-Python walk above
    _CRecords = None  # type: ignore[assignment,misc]
try:
    from memscope._censusc import tracked as _c_tracked
except ImportError:
    _c_tracked = None  # type: ignore[assignment]
# False: the census walks in Python (no extension, or MEMSCOPE_CENSUS_PURE set)
ACCELERATED = _CRecords is not None and not os.environ.get("MEMSCOPE_CENSUS_PURE")


def _after_fork_in_child() -> None:
    """A fork while a census ran (its thread lost the GIL for a moment): the child has
    no census thread, so it gets its lock and collector back."""
    global _one_at_a_time
    _one_at_a_time = _hooks._thread.allocate_lock()
    if _running[0]:
        _running[0] = False
        if _running[1]:
            gc.enable()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
