"""Leaks: objects made under a binding whose scope has ended, still reachable from a root
of the program, proven to be the object that binding saw.

What is a leak (see docs/leaks.md for the full statement and what is left out):

- *made in a scope that ended*: the object's first binding (not as a parameter) was in
  a function, method, lambda or comprehension instance that has exited; what a class body
  or a module binds is program, not a leak;
- *no live binding*: no name of a scope still running holds it (a suspended coroutine's
  names do not count: a task that never finishes keeps its locals for ever);
- *reachable from a root*: a global of a module that is not the standard library's or
  memscope's, a class attribute of such a module's class, a pending asyncio task, or a
  running thread's frame; or, with the cyclic collector off, a cycle nothing else frees;
- *the same object*: its weak reference (full mode) is alive, or, for the built-in types
  that refuse weak references, the death watch (``memscope._deathwatch``) says the
  address has not been deallocated since the binding saw it. Anything else is left out.

Each leak is described by one chain of holders from its root, written with no value
(``module `app` global `_CACHE`[<str key>]``), and its retained size: the bytes that
would be freed if its holders let it go, measured as a census measures (``census``'s
kinds and sizes; an object some other holder keeps is not counted).

Nothing here runs ``gc.collect()`` or user code: contents are read with the types' own
C traversal (``gc.get_referents``) and C-level ``dict`` methods; attribute names of
instances are found without asking for their ``__dict__``.
"""

from __future__ import annotations

import gc
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any

from memscope import _hooks, frames, sizing
from memscope import census as _census_mod
from memscope.analysis import Analysis
from memscope.kinds import ScopeKind
from memscope.sizing import _isa

_OWN_PACKAGE = __name__.rpartition(".")[0]
_get_referents = gc.get_referents
_getrefcount = sys.getrefcount
# the census's C-level readers: a class's or a module's own namespace, no user code
_dict_items = _census_mod._dict_items
_type_dict = _census_mod._type_dict
_module_dict = _census_mod._module_dict
_SUSPENDED_KINDS = (ScopeKind.COROUTINE, ScopeKind.ASYNC_GENERATOR)
_GENS = (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)
# never leaks themselves: modules, classes, and functions written in C
_PROGRAM = (types.ModuleType, type, types.BuiltinFunctionType, types.MethodDescriptorType,
            types.WrapperDescriptorType, types.MethodWrapperType, types.ClassMethodDescriptorType)
_WALKED = (types.FunctionType, types.FrameType)  # entered though the census does not
MAX_WALK_OBJECTS = 5_000_000  # objects a leak's retained-size walk looks at, at most


@dataclass
class Leak:
    oid: int
    type: str
    size: int  # retained: freed if its holders let it go
    shallow: int
    variable: str  # where it was made: "scope.var"
    file: str
    line: int
    certain: bool  # identity proven (weak reference or death watch): always True here
    proof: str  # "weakref" or "deathwatch"
    holders: list[str] = field(default_factory=list)  # [the chain from its root]
    root: str = ""  # module global, class attribute, asyncio task, thread frame, cycle
    inside: int = 0  # oid of the leak whose chain this one's passes through, or 0
    captured: list[tuple[str, str, int]] = field(default_factory=list)  # closures

    def as_dict(self) -> dict[str, Any]:
        return {
            "oid": self.oid,
            "type": self.type,
            "size": self.size,
            "shallow": self.shallow,
            "variable": self.variable,
            "file": self.file,
            "line": self.line,
            "certain": self.certain,
            "proof": self.proof,
            "holders": list(self.holders),
            "root": self.root,
            "inside": self.inside,
            "captured": [list(c) for c in self.captured],
        }

    def holder_rows(self) -> tuple[str, ...]:
        """What a LEAK row stores: the chain, then one line per captured variable."""
        out = list(self.holders)
        for var, tname, size in self.captured:
            out.append(f"captures `{var}` ({tname}): retains {size} B")
        return tuple(out)


def _tname(o: Any) -> str:
    return sizing.type_name(type(o))


def _is_own(o: Any) -> bool:
    mod = sizing.type_name(type(o))
    return mod.startswith(_OWN_PACKAGE + ".")


def _library_module(name: str, mod: Any, stdlib: tuple[str, ...]) -> bool:
    """The standard library's modules (and memscope's): their globals are not roots."""
    if name == _OWN_PACKAGE or name.startswith(_OWN_PACKAGE + ".") or name.startswith(
            "memscope_instrument"):
        return True
    if name in sys.builtin_module_names or name in ("__main__", "__mp_main__"):
        return name != "__main__" and name != "__mp_main__"
    try:
        f = _module_dict(mod).get("__file__")
    except Exception:
        return True
    if not isinstance(f, str):
        return name in sys.stdlib_module_names if hasattr(sys, "stdlib_module_names") \
            else True
    return f.startswith(stdlib)


def _stdlib_dirs() -> tuple[str, ...]:
    import os

    from memscope.sysdirs import library_dirs

    out = []
    for d in library_dirs():
        if "site-packages" in d or "dist-packages" in d:
            continue
        out.append(os.path.join(d, ""))
    return tuple(out)


class _Walker:
    """One walk of the program's roots, looking for the candidates' addresses."""

    def __init__(self, targets: dict[int, Any], deadline: int) -> None:
        self.targets = targets  # oid -> checker(obj) -> proof or None
        self.t_first: dict[int, int] = {}  # oid -> when its first binding was made
        self.deadline = deadline
        self.found: dict[int, tuple[Any, str, str, list[int]]] = {}  # oid -> obj, chain...
        # oid -> id of the tuple or frozenset that holds it on its chain (items fixed
        # when that was made: what it holds is as old as it)
        self.frozen_parent: dict[int, int] = {}
        # oid -> version tag of the dict that holds it on its chain, read when found (a
        # dict unchanged since before its creator began held it already then)
        self.dict_parent: dict[int, int] = {}
        self.dict_version: Any = None  # memscope._deathwatch.dict_version, when built
        self.seen: set[int] = set()
        self.attr_names: dict[type, tuple[str, ...]] = {}
        self.enter_type: dict[type, bool] = {}  # (types: alive while their objects are)
        self.skip_type: dict[type, bool] = {}  # not entered by a retained-size walk
        self.stop: set[int] = set()
        self.kd = _census_mod._Census(_census_mod._Scopes())
        for m in list(sys.modules.values()):
            if type(m) is types.ModuleType:
                try:
                    self.stop.add(id(_module_dict(m)))
                except Exception:
                    continue
        self.out_of_time = False
        # frames on threads' stacks: roots of their own, not entered from elsewhere
        self.running: set[int] = set()
        for top in sys._current_frames().values():
            f: Any = top
            while f is not None:
                self.running.add(id(f))
                f = f.f_back
        del top, f

    # ---- what a holder holds, each with the step that names it -----------------------

    def steps(self, o: Any) -> list[tuple[Any, str]]:
        tp = type(o)
        if tp is dict or (_isa(o, dict) and not _is_own(o)):
            out = []
            for k, v in list(_dict_items(o)):
                out.append((v, f"[<{_tname(k)} key>]"))
                out.append((k, " → a key of"))
            return out
        if _isa(o, (list, tuple, set, frozenset)):
            return [(k, "[<item>]") for k in _get_referents(o)]
        if tp is types.FunctionType:
            return self.function_steps(o)
        if tp is types.MethodType:
            qual = getattr(o.__func__, "__qualname__", "?")
            return [(o.__self__, f" → `self` of bound method `{qual}`"),
                    (o.__func__, " → its function")]
        if tp is types.CellType:
            try:
                return [(o.cell_contents, " → cell")]
            except ValueError:
                return []
        if tp in _GENS:
            return self.frame_steps(o)
        if tp is types.TracebackType:
            return [(o.tb_frame, f" → traceback frame of `{o.tb_frame.f_code.co_name}`"),
                    (o.tb_next, ".tb_next")]
        if tp is types.FrameType:  # a finished frame (a traceback's): its locals
            return self.locals_steps(o, f"finished `{o.f_code.co_name}`")
        if _isa(o, BaseException):
            return [(o.__traceback__, ".__traceback__"), (o.__context__, ".__context__"),
                    (o.__cause__, ".__cause__"), *((a, ".args[<item>]") for a in o.args),
                    *self.object_steps(o)]
        name = _tname(o)
        if name == "_thread._local":
            return [(v, f" → thread-local `{k}`" if type(k) is str and k.isidentifier()
                     else " → thread-local value") for d in _get_referents(o)
                    if type(d) is dict for ld in _dict_values_dicts(d)
                    for k, v in list(_dict_items(ld))]
        if name == "functools._lru_cache_wrapper":
            return self.lru_steps(o)
        if name == "collections.deque" and getattr(o, "maxlen", None) is not None:
            return []  # bounded by its length: a ring, not a leak
        if name in ("_asyncio.Task", "asyncio.tasks.Task"):
            try:
                return [(o.get_coro(), f" → asyncio task `{_coro_name(o)}`")]
            except Exception:
                return []
        return self.object_steps(o)

    def function_steps(self, fn: Any) -> list[tuple[Any, str]]:
        out: list[tuple[Any, str]] = []
        qual = getattr(fn, "__qualname__", "?")
        for i, d in enumerate(fn.__defaults__ or ()):
            out.append((d, f" → default argument {i + 1} of `{qual}`"))
        for k, d in (fn.__kwdefaults__ or {}).items():
            out.append((d, f" → default argument `{k}` of `{qual}`"))
        names = fn.__code__.co_freevars
        for var, cell in zip(names, fn.__closure__ or (), strict=False):
            try:
                out.append((cell.cell_contents, f" → closure variable `{var}` of `{qual}`"))
            except ValueError:
                continue
        d = getattr(fn, "__dict__", None)
        if type(d) is dict:
            out.extend((v, f".{k}") for k, v in _dict_items(d) if type(k) is str)
        return out

    def frame_steps(self, g: Any) -> list[tuple[Any, str]]:
        frame = getattr(g, "gi_frame", None) or getattr(g, "cr_frame", None) or getattr(
            g, "ag_frame", None)
        if frame is None:
            return []
        return self.locals_steps(frame, f"suspended `{getattr(g, '__qualname__', '?')}`")

    def locals_steps(self, frame: Any, what: str) -> list[tuple[Any, str]]:
        try:
            return [(v, f" → local `{n}` of {what}")
                    for n, v in frames.frame_locals(frame) if not n.startswith("_memscope")]
        except Exception:
            return []

    def lru_steps(self, w: Any) -> list[tuple[Any, str]]:
        try:
            maxsize = w.cache_parameters().get("maxsize")
        except Exception:
            maxsize = None
        qual = getattr(getattr(w, "__wrapped__", None), "__qualname__", "?")
        own = getattr(w, "__dict__", None)
        caches = [k for k in _get_referents(w) if type(k) is dict and k is not own]
        if maxsize is None:
            return [(k, f" → lru_cache of `{qual}`") for k in caches]
        # bounded by size: its results come and go; what its keys hold (the arguments:
        # ``self`` of a cached method) is kept only to be looked up
        return [(k, f" → lru_cache of `{qual}`, a key") for c in caches for k in list(c)]

    def object_steps(self, o: Any) -> list[tuple[Any, str]]:
        tp = type(o)
        if _bounded(o):
            return []  # a cache of the program's own, bounded by size: not entered
        try:
            kids = _get_referents(o)
        except Exception:
            return []
        out: list[tuple[Any, str]] = []
        loose = []
        for k in kids:
            if k is tp:
                continue
            if type(k) is dict and id(k) not in self.stop and self.is_attr_dict(o, k):
                out.extend((v, f".{a}" if type(a) is str and a.isidentifier() else
                            f"[<{_tname(a)} key>]") for a, v in list(_dict_items(k)))
            else:
                loose.append(k)
        if loose:  # attribute values kept apart from a dict (3.11+), or slots
            names = self.names_of(o, loose)
            out.extend((k, names.get(id(k), f" → (inside `{_tname(o)}`)")) for k in loose)
        return out

    def is_attr_dict(self, o: Any, d: dict[Any, Any]) -> bool:
        """Is ``d`` (a dict ``o`` holds) ``o``'s own ``__dict__``, not an attribute
        value that is a dict? Its first keys must read back as ``o``'s attributes (read
        only where no class of ``o`` defines the name: no descriptor runs)."""
        n = 0
        for k, v in list(_dict_items(d))[:3]:
            if type(k) is not str or not k.isidentifier() or _defined(type(o), k):
                return False
            try:
                if object.__getattribute__(o, k) is not v:
                    return False
            except Exception:
                return False
            n += 1
        return True

    def names_of(self, o: Any, values: list[Any]) -> dict[int, str]:
        """Attribute names for values an instance holds outside a dict, found by
        reading the names its class's code uses (never asking for its ``__dict__``,
        never running a descriptor: names the class defines are skipped)."""
        tp = type(o)
        names = self.attr_names.get(tp)
        if names is None:
            names = self.attr_names[tp] = _attribute_names(tp)
        want = {id(v) for v in values}
        out: dict[int, str] = {}
        for n in names:
            try:
                v = object.__getattribute__(o, n)
            except Exception:
                continue
            if id(v) in want and id(v) not in out:
                out[id(v)] = f".{n}"
        return out

    # ---- the walk ----------------------------------------------------------------------

    def enters(self, o: Any) -> bool:
        """Is ``o`` looked into (a holder) rather than only looked at?"""
        tp = type(o)
        by_type = self.enter_type.get(tp)
        if by_type is None:
            by_type = self.enter_type[tp] = self.type_enters(tp, o)
        if not by_type:
            return False
        return not (tp is types.FrameType and id(o) in self.running) and id(o) not in self.stop

    def type_enters(self, tp: type, o: Any) -> bool:
        if tp is types.ModuleType or tp is types.CodeType or _isa(o, type) or _is_own(o):
            return False
        kd = self.kd.kind(tp, o)
        return kd.how != _census_mod._LEAF or tp in _WALKED

    def walk(self, root_desc: str, root_kind: str, obj: Any, before: int = -1) -> None:
        """Depth first from one root: the chain of steps to each candidate found.
        ``before``: the root is a result a scope returned, adopted by a live name at
        that time: what was made before then is part of that result, not a leak."""
        if time.perf_counter_ns() > self.deadline:
            self.out_of_time = True
            return
        targets = self.targets
        stack: list[tuple[Any, int, str]] = [(obj, 0, "")]
        path: list[str] = []
        found_path: list[int] = []  # depth -> oid of a leak on the path (0: none)
        frozen_path: list[int] = []  # depth -> id of a tuple or frozenset there, or 0
        dict_path: list[Any] = []  # depth -> the dict there, or None
        dict_version = self.dict_version
        n = 0
        while stack:
            o, depth, step = stack.pop()
            oi = id(o)
            del path[depth:]
            del found_path[depth:]
            del frozen_path[depth:]
            del dict_path[depth:]
            path.append(step)
            found_path.append(0)
            tp = type(o)
            frozen_path.append(oi if tp is tuple or tp is frozenset else 0)
            dict_path.append(o if dict_version is not None and _isa(o, dict) else None)
            if oi in targets and oi not in self.found and (
                    before < 0 or self.t_first.get(oi, 0) >= before):
                proof = targets[oi](o)
                if proof is not None:
                    outer = next((x for x in reversed(found_path[:-1]) if x), 0)
                    self.found[oi] = (o, root_desc + "".join(path), root_kind + "|" + proof,
                                      [outer])
                    found_path[-1] = oi
                    if depth and frozen_path[depth - 1]:
                        self.frozen_parent[oi] = frozen_path[depth - 1]
                    if depth and dict_path[depth - 1] is not None and step.startswith("[<"):
                        try:  # (a value of that dict, not a key)
                            self.dict_parent[oi] = dict_version(dict_path[depth - 1])
                        except Exception:
                            pass
            if oi in self.seen or not self.enters(o):
                continue
            self.seen.add(oi)
            n += 1
            if not n & 0xFFF and time.perf_counter_ns() > self.deadline:
                self.out_of_time = True
                return
            try:
                kids = self.steps(o)
            except Exception:
                continue
            enter_type = self.enter_type
            for k, s in reversed(kids):
                if id(k) in targets or enter_type.get(type(k)) is not False:
                    stack.append((k, depth + 1, s))  # (a leaf no one looks for: skipped)


def _dict_values_dicts(d: dict[Any, Any]) -> list[Any]:
    return [v for v in d.values() if type(v) is dict] if type(d) is dict else []


def _coro_name(task: Any) -> str:
    try:
        c = task.get_coro()
        return str(getattr(c, "__qualname__", "?"))
    except Exception:
        return "?"


def _attribute_names(tp: type) -> tuple[str, ...]:
    """Names the class's functions store or load as attributes, less those its classes
    define (a name with a descriptor could run code when read)."""
    seen: set[str] = set()
    defined: set[str] = set()
    for klass in getattr(tp, "__mro__", (tp,)):
        try:
            d = _type_dict(klass)
        except Exception:
            continue
        defined.update(k for k in d if type(k) is str)
        slots = d.get("__slots__")
        if isinstance(slots, str):
            seen.add(slots)
        elif isinstance(slots, (tuple, list)):
            seen.update(s for s in slots if type(s) is str)
        codes = []
        for v in d.values():
            f = getattr(v, "__func__", v)
            c = getattr(f, "__code__", None)
            if isinstance(c, types.CodeType):
                codes.append(c)
        while codes:
            c = codes.pop()
            seen.update(c.co_names)
            codes.extend(x for x in c.co_consts if isinstance(x, types.CodeType))
    slotted = {s for s in seen if s not in defined or _is_member(tp, s)}
    return tuple(sorted(n for n in slotted if n.isidentifier() and not n.startswith("__")))


_BOUND_NAMES = ("capacity", "maxsize", "maxlen", "max_size", "_Cache__maxsize")


def _bounded(o: Any) -> bool:
    """A container class of the program's own that declares its bound: a positive int
    instance attribute ``capacity``, ``maxsize``, ``maxlen`` or ``max_size`` (jinja2's
    LRUCache, cachetools' caches; hypothesis's GenericCache keeps it in a slot). Read
    from the instance only: a name its class defines otherwise than as a slot (a
    property) is skipped, as a slot's descriptor only reads the object (no code runs)."""
    tp = type(o)
    for name in _BOUND_NAMES:
        if _defined(tp, name) and not _is_member(tp, name):
            continue
        try:
            v = object.__getattribute__(o, name)
        except Exception:
            continue
        if type(v) is int and v > 0:
            return True
    return False


def _defined(tp: type, name: str) -> bool:
    for klass in getattr(tp, "__mro__", (tp,)):
        try:
            if name in _type_dict(klass):
                return True
        except Exception:
            return True
    return False


def _is_member(tp: type, name: str) -> bool:
    for klass in getattr(tp, "__mro__", (tp,)):
        try:
            v = _type_dict(klass).get(name)
        except Exception:
            continue
        if v is not None:
            return type(v) is types.MemberDescriptorType
    return False


# ---- retained size -------------------------------------------------------------------


def _probe_baseline() -> int:
    probe = [object()]
    members: dict[int, list[Any]] = {id(probe[0]): [probe[0], 0]}
    del probe
    for rec in members.values():
        o = rec[0]
        return _getrefcount(o) - 1
    return 3


_BASELINE = _probe_baseline()


def retained_size(obj: Any, walker: _Walker, held: dict[int, int] | None = None,
                  budget: int = MAX_WALK_OBJECTS) -> int:
    """Bytes freed if every reference to ``obj`` went: ``obj`` and what it reaches that
    nothing outside it holds (reference counts against the references found inside),
    sized as the census sizes. Modules, classes, code and frames are not entered.
    ``held``: references this module itself holds, by id (the leaks found)."""
    held = held or {}
    kdc = walker.kd
    start = id(obj)
    members, order = _subtree(obj, walker, budget)
    # held from outside: its count exceeds the references found inside; what such an
    # object reaches stays alive with it (the building's locals are gone: a helper's)
    outside: list[Any] = []
    for ki in order:
        if ki == start:
            continue
        rec = members[ki]
        o = rec[0]
        if _getrefcount(o) - _BASELINE - 1 - held.get(ki, 0) > rec[1]:
            outside.append(o)
        del o
    alive: set[int] = set()
    while outside:
        o = outside.pop()
        if id(o) in alive:
            continue
        alive.add(id(o))
        try:
            kd = kdc.kind(type(o), o)
            kids = ([c for c, _ in walker.function_steps(o)] if type(o) is types.FunctionType
                    else [c for c, _ in walker.locals_steps(o, "")]
                    if type(o) is types.FrameType
                    else _get_referents(o) if kd.how > _census_mod._LEAF else [])
        except Exception:
            kids = []
        outside.extend(k for k in kids if id(k) in members and id(k) not in alive)
    total = 0
    for ki in order:
        if ki not in alive:
            total += members[ki][2]
    members.clear()
    return total


def _subtree(obj: Any, walker: _Walker, budget: int) -> tuple[dict[int, list[Any]], list[int]]:
    """What ``obj`` reaches (modules, classes, code, frames and memscope's own left
    out): id -> [object, references found from inside, size], in the order reached."""
    kdc = walker.kd
    skip = walker.skip_type
    members: dict[int, list[Any]] = {id(obj): [obj, 0, 0]}
    order = [id(obj)]
    stack = [obj]
    while stack and len(members) < budget:
        o = stack.pop()
        kd = kdc.kind(type(o), o)
        rec = members[id(o)]
        try:
            rec[2] = kd.size(o)
        except Exception:
            rec[2] = 0
        if kd.how <= _census_mod._LEAF and type(o) not in _WALKED:
            continue
        if type(o) is types.FunctionType:
            kids = [c for c, _ in walker.function_steps(o)]
        elif type(o) is types.FrameType:  # a finished frame: its locals
            kids = [c for c, _ in walker.locals_steps(o, "")]
        elif kd.how in (_census_mod._PLAIN, _census_mod._GEN):
            kids = _get_referents(o)
            if kd.is_dict and not _census_mod._keys_traversed(kids, o):
                kids = [*dict.keys(o), *kids]
        else:
            try:
                kids = kdc.children(o, kd)
            except Exception:
                kids = []
        for k in kids:
            ki = id(k)
            r = members.get(ki)
            if r is not None:
                r[1] += 1
                continue
            tk = type(k)
            ok = skip.get(tk)
            if ok is None:
                ok = skip[tk] = tk is types.ModuleType or tk is types.CodeType or _isa(
                    k, type) or _is_own(k) or (kdc.kind(tk, k).how == _census_mod._STOP
                                               and tk is not types.FrameType)
            if ok or (tk is types.FrameType and ki in walker.running) or ki in walker.stop:
                continue
            members[ki] = [k, 1, 0]
            order.append(ki)
            stack.append(k)
        del kids
    return members, order


# ---- the replay the check needs -------------------------------------------------------


class _Life:
    """An object from its first bind (as ``analysis.ObjectLife``: the fields the check
    reads)."""

    __slots__ = ("by_param", "creator_tok", "file", "first_var", "line", "oid", "shallow",
                 "t_first", "type")

    def __init__(self, oid: int, tname: str, t: int, tok: int, shallow: int, label: str,
                 file: str, line: int, by_param: bool) -> None:
        self.oid = oid
        self.type = tname
        self.t_first = t
        self.creator_tok = tok
        self.shallow = shallow
        self.first_var = label
        self.file = file
        self.line = line
        self.by_param = by_param


class _Bound:
    """A live binding the check may ask about (``b.scope_id``, ``b.var``, ``b.t_bind``)."""

    __slots__ = ("id", "lkey", "oid", "scope_id", "t_bind", "tok", "var")

    def __init__(self, bid: int, oid: int, tok: int, lkey: Any, var: str, scope_id: int,
                 t: int) -> None:
        self.id = bid
        self.oid = oid
        self.tok = tok
        self.lkey = lkey
        self.var = var
        self.scope_id = scope_id
        self.t_bind = t


class _Site:
    """A site's facts, as the analysis's ``SiteInfo`` has them (made once per site)."""

    __slots__ = ("file", "label", "line", "lkey", "module", "param", "scope_id", "var")

    def __init__(self, var: str, scope_id: int, label: str, file: str, line: int,
                 param: bool, module: bool) -> None:
        self.var = var
        self.scope_id = scope_id
        self.label = label
        self.file = file
        self.line = line
        self.param = param
        self.lkey = (scope_id, var)
        self.module = module  # its scope is a module's: ``bound_at`` asks for its binds


_S_BIND, _S_ENTER, _S_EXIT, _S_UNBIND, _S_FINAL = 8, 6, 7, 9, 10  # memscope.events
_S_SCOPE, _S_SITE, _S_TYPE, _S_MODULE = 1, 2, 3, 15


class LeakReplay:
    """What ``find_leaks`` reads of a replay of the run (``analysis.Analysis``'s
    ``objects``, ``by_oid``, ``instances``, ``ended_instances``, ``scopes`` and
    ``types``, by the same rules), kept only for the objects that can be leaks.

    ``targets``: the ids whose objects the check could prove to be the ones bound (the
    weak references and the death watch's addresses alive now); None: every id. Only
    their lives and live bindings are kept, with the live bindings of module scopes
    (``bound_at``); every other event is looked at only for what it ends (a re-bind of
    the same name in the same instance, an exit). The full analysis keeps every
    binding and every object ever bound: at the end of a full-mode run it took longer
    than the program (floatbm 5.6 s after a 2.5 s run, 300 MB)."""

    def __init__(self, targets: set[int] | None = None) -> None:
        self.targets = targets
        self.scopes: dict[int, Any] = {}
        self.sites: dict[int, Any] = {}
        self.types: dict[int, str] = {}
        self.instances: dict[int, tuple[int, int, int, int]] = {}  # tok -> (tok, scope,
        # thread, t_enter)
        self.ended_instances: dict[int, int] = {}  # class bodies that ran: tok -> scope
        self.objects: dict[int, _Life] = {}
        self.by_oid: dict[int, dict[int, _Bound]] = {}
        self.live: dict[int, dict[Any, _Bound]] = {}
        self.next_id = 0
        self._site_info: dict[int, _Site] = {}
        self._plain_sites: set[int] = set()  # sites known, not in a module's scope
        self._site_info_in: dict[tuple[int, int], _Site] = {}
        self._explicit_scopes: set[int] = set()
        self._lambda_scopes: set[int] = set()
        self._open_lambdas: dict[int, list[tuple[int, int, int, int]]] = {}

    def feed_all(self, events: Any) -> LeakReplay:
        from memscope.analysis import ScopeRow, SiteRow
        from memscope.events import expand_module

        targets = self.targets
        instances = self.instances
        live = self.live
        objects = self.objects
        by_oid = self.by_oid
        site_info = self._site_info
        open_lambdas = self._open_lambdas
        explicit = self._explicit_scopes
        types_ = self.types
        end = self._end
        plain = self._plain_sites
        for ev in events:
            k = ev[0]
            if k == _S_BIND:
                t, site, tok, oid = ev[1], ev[2], ev[3], ev[4]
                # most binds: an object no proof names, at a site outside a module's
                # scope, in an instance holding no binding kept here: nothing to do
                if (site in plain and tok not in live and targets is not None
                        and oid not in targets and not (open_lambdas or explicit)):
                    continue
                si = None
                if open_lambdas or explicit:
                    inst = instances.get(tok)
                    if inst is not None:
                        if open_lambdas:
                            self._lambdas_done(inst, t)
                        if inst[1] in explicit:
                            si = self._site_in(site, inst[1])
                if si is None:
                    si = site_info.get(site)
                    if si is None:
                        si = self._site(site)
                lkey = si.lkey
                in_tok = live.get(tok)
                if in_tok is not None:
                    b = in_tok.get(lkey)
                    if b is not None:
                        end(b)
                tracked = targets is None or oid in targets
                if tracked or si.module:
                    bid = self.next_id
                    self.next_id = bid + 1
                    b = _Bound(bid, oid, tok, lkey, si.var, si.scope_id, t)
                    in_tok = live.get(tok)
                    if in_tok is None:
                        in_tok = live[tok] = {}
                    in_tok[lkey] = b
                    same = by_oid.get(oid)
                    if same is None:
                        by_oid[oid] = {bid: b}
                    else:
                        same[bid] = b
                if tracked:
                    life = objects.get(oid)
                    if life is None:
                        objects[oid] = _Life(oid, types_.get(ev[5], "?"), t, tok, ev[6],
                                             si.label, si.file, si.line, si.param)
                    elif life.by_param and not si.param:
                        # a parameter only receives an object made elsewhere (``self``
                        # in ``__init__``): the first other binding names where it was made
                        life.creator_tok, life.by_param = tok, False
                        life.first_var, life.file, life.line = si.label, si.file, si.line
            elif k == _S_ENTER:
                _, t, scope, tok, thread = ev[:5]
                inst = instances[tok] = (tok, scope, thread, t)
                if scope in self._lambda_scopes:
                    open_lambdas.setdefault(thread, []).append(inst)
            elif k == _S_EXIT:
                self._exit(ev[1], ev[2])
            elif k == _S_UNBIND:
                row = self.sites.get(ev[2])
                if row is not None:
                    in_tok = live.get(ev[3])
                    b = in_tok.get((row.scope, row.name)) if in_tok is not None else None
                    if b is not None:
                        end(b)
            elif k == _S_FINAL:
                oid = ev[2]
                objects.pop(oid, None)
                same = by_oid.get(oid)
                if same:
                    for b in list(same.values()):
                        end(b)
            elif k == _S_SITE:
                self.sites[ev[1]] = SiteRow(ev[2], ev[3], ev[4], ev[5], ev[6])
            elif k == _S_SCOPE:
                self.scopes[ev[1]] = ScopeRow(ev[2], ev[3], ev[4], ev[5], ev[6])
                if ev[5] == ScopeKind.EXPLICIT:
                    explicit.add(ev[1])
                elif ev[5] == ScopeKind.LAMBDA:
                    self._lambda_scopes.add(ev[1])
            elif k == _S_TYPE:
                types_[ev[1]] = ev[2]
            elif k == _S_MODULE:
                try:
                    rows = expand_module(ev)
                except (TypeError, ValueError, IndexError):
                    continue  # (not a table: left out, as events.expand_tables does)
                self.feed_all(rows)
        return self

    def _site(self, site: int, in_scope: int = -1) -> _Site:
        row = self.sites.get(site)
        if row is not None and in_scope >= 0:
            scope_id = in_scope
        else:
            scope_id = row.scope if row is not None else -1
        srow = self.scopes.get(scope_id) if row is not None else None
        var = row.name if row is not None else f"<site {site}>"
        si = _Site(var, scope_id, f"{srow.qualname if srow else '?'}.{var}",
                   srow.file if srow else "?", row.line if row else 0,
                   row is not None and row.kind == _BIND_PARAM,
                   srow is not None and srow.kind == ScopeKind.MODULE)
        if row is not None and in_scope < 0:  # a site seen before its row: later again
            self._site_info[site] = si
            if not si.module:
                self._plain_sites.add(site)
        return si

    def _site_in(self, site: int, scope: int) -> _Site:
        si = self._site_info_in.get((site, scope))
        if si is None:
            si = self._site_info_in[(site, scope)] = self._site(site, scope)
        return si

    def _end(self, b: _Bound) -> None:
        in_tok = self.live.get(b.tok)
        if in_tok is not None and in_tok.get(b.lkey) is b:
            del in_tok[b.lkey]
            if not in_tok:
                del self.live[b.tok]
        same = self.by_oid.get(b.oid)
        if same is not None:
            same.pop(b.id, None)
            if not same:
                del self.by_oid[b.oid]

    def _lambdas_done(self, inst: tuple[int, int, int, int], t: int,
                      exiting: bool = False) -> None:
        """As the analysis: a lambda cannot suspend, so once an instance that was
        running before it runs again, the lambda is over."""
        open_ = self._open_lambdas.get(inst[2])
        if not open_:
            return
        while open_ and open_[-1][3] > inst[3] and open_[-1] is not inst:
            lam = open_.pop()
            if lam[0] in self.instances:
                self._exit(t, lam[0])
        if exiting and open_ and open_[-1] is inst:
            open_.pop()
        if not open_:
            self._open_lambdas.pop(inst[2], None)

    def _exit(self, t: int, tok: int) -> None:
        inst = self.instances.get(tok)
        if inst is None:
            return
        if self._open_lambdas:
            self._lambdas_done(inst, t, exiting=True)
        self.instances.pop(tok, None)
        row = self.scopes.get(inst[1])
        if row is not None and row.kind == ScopeKind.CLASS:
            self.ended_instances[tok] = inst[1]
        in_tok = self.live.get(tok)
        if in_tok:
            for b in list(in_tok.values()):
                self._end(b)


_BIND_PARAM = 9  # BindKind.PARAM


# ---- finding them --------------------------------------------------------------------


def find_leaks(
    analysis: Analysis | LeakReplay,
    watched: dict[int, Any],
    *,
    deathwatch: Any = None,
    import_time: set[int] | frozenset[int] = frozenset(),
    preexisting: dict[int, int] | None = None,
    polls: list[list[int]] | None = None,
    max_candidates: int = 100_000,
    budget_ns: int = 30_000_000_000,
    on_incomplete: Any = None,
) -> list[Leak]:
    """Leaked objects of a finished replay, in this live process (see the module).
    ``import_time``: ids first bound while a module was imported; ``preexisting``: id ->
    token of the scope instance it was first bound in, for objects proven older than
    that instance (``_hooks._note_age``); ``polls``: ``_hooks._polls`` ([token, a new
    dict's version tag] each, in token order). ``on_incomplete(message)`` is told what
    was not looked at (candidates past ``max_candidates``, roots past the time budget)."""
    deadline = time.perf_counter_ns() + budget_ns
    scopes = analysis.scopes

    def protected(oid: int) -> bool:
        for b in analysis.by_oid.get(oid, {}).values():
            row = scopes.get(b.scope_id)
            if row is None or row.kind not in _SUSPENDED_KINDS:
                return True
        return False

    running = analysis.instances
    candidates = {}
    for oid, life in analysis.objects.items():
        if life.creator_tok == 0 or life.creator_tok in running or life.by_param:
            continue
        if life.creator_tok in analysis.ended_instances:  # made in a class body
            continue
        if protected(oid) or oid in import_time:
            continue  # (made while a module was imported: its set-up)
        if _older_than_creator(oid, life.creator_tok, preexisting):
            # it existed before the scope that first named it began (and so before its
            # creator, that scope or a later one): read there, not made there
            continue
        candidates[oid] = life
        if len(candidates) >= max_candidates:
            if on_incomplete is not None:
                on_incomplete(f"leak check: only the first {max_candidates:,} candidates "
                              "were looked for")
            break
    if not candidates:
        return []

    def checker(life: Any) -> Any:
        def check(o: Any) -> str | None:
            if _isa(o, _PROGRAM):
                return None  # a lazy import, a class made at run time: program, not data
            ref = watched.get(life.oid)
            if ref is not None:
                # (the reference is to the object at that address now: one of another
                # type is not the one first bound there, which memscope could not watch)
                return "weakref" if ref() is o and _tname(o) == life.type else None
            if deathwatch is None or _tname(o) != life.type:
                return None  # (modules, classes, functions: weak-referenceable)
            since = deathwatch.since(life.oid)
            return "deathwatch" if since is not None and since <= life.t_first else None
        return check

    targets = {oid: checker(life) for oid, life in candidates.items()}
    walker = _Walker(targets, deadline)
    if polls:
        walker.dict_version = getattr(deathwatch, "dict_version", None)
    walker.t_first = {oid: life.t_first for oid, life in candidates.items()}

    def bound_at(obj: Any, desc: str) -> int:
        """When the module global ``desc`` names was bound to ``obj``: what ``obj``
        held already then is the value it was given (a result, a constant), not a
        leak; -1 if unknown."""
        name = desc.rpartition("global `")[2][:-1]
        for b in analysis.by_oid.get(id(obj), {}).values():
            row = scopes.get(b.scope_id)
            if b.var == name and row is not None and row.kind == ScopeKind.MODULE:
                return b.t_bind
        return -1

    for desc, kind, obj in _roots(walker):
        walker.walk(desc, kind, obj, bound_at(obj, desc) if kind == "module global" else -1)
        if walker.out_of_time:
            if on_incomplete is not None:
                on_incomplete(f"leak check: out of time ({budget_ns / 1e9:.0f} s) before "
                              "every root was walked: leaks may be missing")
            break
    if not gc.isenabled():  # nothing will free an unreachable cycle: look for them too
        _unreachable_cycles(walker, candidates, targets)
    leaks: list[Leak] = []
    held = dict.fromkeys(walker.found, 1)
    dropped = set()
    for oid, parent in walker.frozen_parent.items():
        # an item of a tuple or frozenset older than its creator: as old as its holder
        if _older_than_creator(parent, candidates[oid].creator_tok, preexisting):
            del walker.found[oid]
            dropped.add(oid)
    for oid, version in walker.dict_parent.items():
        # a value of a dict not changed since before its creator began was in it then
        if oid in walker.found and _dict_older_than(version, candidates[oid].creator_tok,
                                                    polls or []):
            del walker.found[oid]
            dropped.add(oid)
    for outer_of in [rec[3] for rec in walker.found.values()]:
        if outer_of[0] in dropped:
            outer_of[0] = 0  # (not inside a leak after all: listed itself)
    for oid, (obj, chain, how, outer) in list(walker.found.items()):
        life = candidates[oid]
        root_kind, _, proof = how.partition("|")
        if outer[0] or _program_itself(obj, chain):
            continue  # inside another leak: counted in its size (a closure names it)
        if time.perf_counter_ns() > deadline:  # out of time: named, not measured
            leaks.append(Leak(
                oid=oid, type=life.type, size=-1, shallow=life.shallow,
                variable=life.first_var, file=life.file, line=life.line, certain=True,
                proof=proof, holders=[chain], root=root_kind))
            continue
        captured = []
        if type(obj) is types.FunctionType:
            for value, step in walker.function_steps(obj):
                if "closure variable" in step:
                    var = step.split("`")[1]
                    captured.append((var, _tname(value), retained_size(value, walker, held)))
            value = None  # (a local holding it would count as a holder below)
        leaks.append(Leak(
            oid=oid, type=life.type, size=retained_size(obj, walker, held),
            shallow=life.shallow,
            variable=life.first_var, file=life.file, line=life.line, certain=True,
            proof=proof, holders=[chain], root=root_kind, inside=outer[0],
            captured=captured,
        ))
        del obj
    walker.found.clear()
    walker.seen.clear()
    walker.frozen_parent.clear()
    return leaks


def _older_than_creator(oid: int, creator_tok: int, preexisting: dict[int, int] | None) -> bool:
    """Was the object ``oid`` proven to exist before the scope instance ``creator_tok``
    began? ``preexisting`` holds, for each object proven older than the instance that
    first bound it, that instance's token; tokens grow with entry order, so an instance
    entered at or after that one began after the object existed."""
    older = preexisting.get(oid) if preexisting else None
    return older is not None and creator_tok >= older


def _dict_older_than(version: int, creator_tok: int, polls: list[list[int]]) -> bool:
    """Was a dict with this version tag last changed before the scope instance
    ``creator_tok`` began? Every dict creation and change takes the next value of one
    interpreter-wide counter, and each poll holds a new dict's tag, taken before the
    scope instances with larger tokens began: a tag below that poll's says so."""
    poll = _hooks.poll_before(polls, creator_tok)
    return poll is not None and version < poll[1]


def _program_itself(obj: Any, chain: str) -> bool:
    """Not a leak: the value of a module global or class attribute itself (a live
    name holds it, even where the module is not instrumented: a decorator's product, a
    constant), and a function defined at module or class level (code, wherever it is
    kept: only a function made at run time, a closure, can leak)."""
    if type(obj) is types.FunctionType and "<locals>" not in getattr(obj, "__qualname__", ""):
        return True
    return chain.endswith("`") and "→" not in chain and "[" not in chain and (
        chain.startswith(("module `", "class `")))


def _roots(walker: _Walker) -> Any:
    """(description, kind, object) of every root, the program's own first: globals and
    class attributes of modules outside the standard library, pending asyncio tasks,
    the frames of running threads."""
    stdlib = _stdlib_dirs()
    mods = [(n, m) for n, m in list(sys.modules.items()) if type(m) is types.ModuleType]
    mods = [(n, m) for n, m in mods if not _library_module(n, m, stdlib)]
    for name, mod in mods:
        try:
            d = _module_dict(mod)
        except Exception:
            continue
        for k, v in list(_dict_items(d)):
            if type(k) is not str or k.startswith(("_memscope", "__memscope")) or (
                    k.startswith("__") and k.endswith("__")):
                continue
            if type(v) is types.ModuleType:
                continue
            if _isa(v, type):
                yield from _class_roots(v, name, 0)
                continue
            yield f"module `{name}` global `{k}`", "module global", v
    aio = sys.modules.get("asyncio")
    task_types = [t for t in (getattr(aio, "Task", None), getattr(aio, "_CTask", None),
                              getattr(getattr(aio, "tasks", None), "_PyTask", None))
                  if isinstance(t, type)]
    if task_types:
        for o in _census_mod.tracked_objects(types=frozenset(map(id, task_types))):
            try:
                if o.done() or o.get_loop().is_closed():
                    continue
            except Exception:
                continue
            yield f"pending asyncio task `{_coro_name(o)}`", "asyncio task", o
    me = sys._getframe()
    for ident, top in sys._current_frames().items():
        f: Any = top
        tname = _thread_name(ident)
        while f is not None:
            if f.f_code.co_filename.startswith(_census_mod._MEMSCOPE_DIR) or f is me:
                f = f.f_back
                continue
            code = f.f_code
            try:
                pairs = frames.frame_locals(f)
            except Exception:
                pairs = []
            for n, v in pairs:
                if type(n) is str and not n.startswith("_memscope"):
                    yield (f"local `{n}` of running `{code.co_name}` (thread `{tname}`)",
                           "running frame", v)
            f = f.f_back
    del top, f, me


def _class_roots(cls: type, module: str, depth: int) -> Any:
    for qual, k, v in _census_mod.class_attributes(cls, module, depth):
        if _isa(v, (staticmethod, classmethod)):
            v = v.__func__
        yield f"class `{module}.{qual}` attribute `{k}`", "class attribute", v


def _thread_name(ident: int) -> str:
    import threading

    t = threading._active.get(ident)  # type: ignore[attr-defined]
    return t.name if t is not None else str(ident)


def _unreachable_cycles(walker: _Walker, candidates: dict[int, Any],
                        targets: dict[int, Any]) -> None:
    """With the collector off, a cycle no root reaches is never freed: candidates in
    one (found among the collector's objects) are leaks, their chain the cycle."""
    missing = {oid for oid in candidates if oid not in walker.found}
    if not missing:
        return
    for o in _census_mod.tracked_objects(ids=frozenset(missing)):
        oi = id(o)
        proof = targets[oi](o)
        if proof is None:
            continue
        cycle = _cycle_through(o, walker)
        if cycle is not None:
            walker.found[oi] = (o, "reference cycle, unreachable (the cyclic collector is "
                                f"off): `{_tname(o)}`{cycle}", "cycle|" + proof, [0])


def _cycle_through(obj: Any, walker: _Walker, limit: int = 10_000) -> str | None:
    """The steps of a path from ``obj`` back to itself, or None."""
    stack: list[tuple[Any, int, str]] = [(k, 1, s) for k, s in reversed(walker.steps(obj))]
    path: list[str] = []
    seen: set[int] = set()
    while stack and len(seen) < limit:
        o, depth, step = stack.pop()
        del path[depth - 1:]
        path.append(step)
        if o is obj:
            return "".join(path) + " → back to itself"
        if id(o) in seen or not walker.enters(o):
            continue
        seen.add(id(o))
        try:
            kids = walker.steps(o)
        except Exception:
            continue
        stack.extend((k, depth + 1, s) for k, s in reversed(kids))
    return None
