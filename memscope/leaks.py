"""Leaks: objects still alive after the scope that created them ended, and who holds them.

An object is a leak candidate when the scope instance that first bound it has exited
and no live binding (a name in a scope still running) refers to it. It is a leak when
it is still alive: known for certain for objects the runtime weak-referenced (full
mode), and *probable* for others, found by ``id`` among the objects the garbage
collector tracks with the same type and size (an ``id`` may be reused).

Holders are named by walking ``gc.get_referrers`` outwards from the object until a
root a person recognises: a module global, a class attribute, a closure cell, a
default argument, a thread-local, a running frame, or a reference cycle. Nothing here
runs ``gc.collect()``: collecting would run finalizers early and change the program.
"""

from __future__ import annotations

import gc
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any

from memscope import sizing
from memscope.analysis import Analysis
from memscope.sizing import _isa

_OWN_PACKAGE = __name__.rpartition(".")[0]
_get_referrers = gc.get_referrers


@dataclass
class Leak:
    oid: int
    type: str
    size: int
    variable: str  # where it was first bound: "scope.var"
    file: str
    line: int
    certain: bool  # False: found by id among live objects (id may be reused)
    holders: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "oid": self.oid,
            "type": self.type,
            "size": self.size,
            "variable": self.variable,
            "file": self.file,
            "line": self.line,
            "certain": self.certain,
            "holders": list(self.holders),
        }


def _is_own_frame(f: types.FrameType) -> bool:
    mod = f.f_globals.get("__name__", "")
    return isinstance(mod, str) and (mod == _OWN_PACKAGE or mod.startswith(_OWN_PACKAGE + "."))


def _is_own_object(o: Any) -> bool:
    """memscope's own objects (and closures of its functions) never count as holders."""
    if _isa(o, types.FunctionType) or _isa(o, types.CellType):
        fn_mod = getattr(o, "__module__", None) if _isa(o, types.FunctionType) else None
        return isinstance(fn_mod, str) and fn_mod.startswith(_OWN_PACKAGE + ".")
    mod = sizing.type_name(type(o))
    return mod.startswith(_OWN_PACKAGE + ".")


class HolderNamer:
    """Names the holders of objects; caches the module and class dict maps it needs."""

    def __init__(self, exclude: set[int], max_holders: int = 8, max_depth: int = 4) -> None:
        self.exclude = exclude
        self.max_holders = max_holders
        self.max_depth = max_depth
        self.modules: dict[int, str] = {}
        for name, mod in list(sys.modules.items()):
            d = getattr(mod, "__dict__", None) if isinstance(mod, types.ModuleType) else None
            if _isa(d, dict):
                self.modules[id(d)] = name
        self.exclude.add(id(self.modules))

    def _referrers(self, obj: Any) -> list[Any]:
        refs = _get_referrers(obj)
        self.exclude.add(id(refs))
        out = []
        for r in refs:
            if id(r) in self.exclude:
                continue
            if _isa(r, types.FrameType) and _is_own_frame(r):
                continue
            if _is_own_object(r):
                continue
            out.append(r)
        return out

    def name(self, obj: Any) -> list[str]:
        """Descriptions like "module `app.cache` global `_CACHE` (dict)", outermost first."""
        found: list[str] = []
        self._walk(obj, [], {id(obj)}, found, obj)
        return found[: self.max_holders]

    def _walk(
        self, obj: Any, chain: list[str], path: set[int], found: list[str], root: Any
    ) -> None:
        """``chain``: the containers between ``obj`` and the object asked about."""
        via = f" ({' > '.join(reversed(chain))})" if chain else ""
        for r in self._referrers(obj):
            if len(found) >= self.max_holders:
                return
            if r is root:
                found.append(f"reference cycle: the object holds itself{via}")
                continue
            if id(r) in path:
                continue
            desc, container = self._describe(r, obj)
            if desc is not None:
                found.append(desc + via)
            elif container is not None and len(chain) < self.max_depth:
                self._walk(r, [*chain, container], path | {id(r)}, found, root)

    def _describe(self, r: Any, obj: Any) -> tuple[str | None, str | None]:
        """A root description of ``r`` holding ``obj``, or else a container name."""
        if _isa(r, dict):
            keys = _keys_of(r, obj)
            mod = self.modules.get(id(r))
            if mod is not None:
                return f"module `{mod}` global `{keys}`", None
            for rr in self._referrers(r):
                if _isa(rr, type) and type.__dict__["__dict__"].__get__(rr) is not None:
                    return f"class `{sizing.type_name(rr)}` attribute `{keys}`", None
                if _tname(rr) == "_thread._local":
                    return self._thread_local(rr), None
            return None, f"dict[{keys}]"
        if _isa(r, types.CellType):
            for tup in self._referrers(r):
                if _isa(tup, tuple):
                    for fn in self._referrers(tup):
                        if _isa(fn, types.FunctionType) and fn.__closure__ is tup:
                            var = fn.__code__.co_freevars[tup.index(r)]
                            return f"closure variable `{var}` of function `{fn.__qualname__}`", None
            return "closure cell", None
        if _isa(r, types.FrameType):
            code = r.f_code
            return (
                f"local of running frame `{code.co_name}` ({code.co_filename}:{r.f_lineno})",
                None,
            )
        if _isa(r, types.FunctionType):
            return f"function `{r.__qualname__}` (default argument or attribute)", None
        if _isa(r, tuple):
            for fn in self._referrers(r):
                if _isa(fn, types.FunctionType) and fn.__defaults__ is r:
                    return f"default argument of function `{fn.__qualname__}`", None
            return None, "tuple"
        if _isa(r, type):
            return f"class `{sizing.type_name(r)}`", None
        if _tname(r) == "_thread._local":
            return "thread-local", None
        if _isa(r, types.MethodType):
            return None, f"bound method `{r.__func__.__qualname__}`"
        if _isa(r, (list, set, frozenset)):
            return None, _tname(r)
        return None, f"`{_tname(r)}` object"

    def _thread_local(self, local: Any) -> str:
        """Name a ``threading.local`` by the module global that holds it."""
        for rr in self._referrers(local):
            mod = self.modules.get(id(rr)) if type(rr) is dict else None
            if mod is not None:
                return f"thread-local `{_keys_of(rr, local)}` of module `{mod}`"
        return "thread-local storage"


def _tname(o: Any) -> str:
    return sizing.type_name(type(o))


def _keys_of(d: dict[Any, Any], obj: Any) -> str:
    keys = []
    try:
        for k, v in list(d.items()):
            if v is obj:
                keys.append(k if type(k) is str else sizing.type_name(type(k)))
                if len(keys) > 3:
                    break
    except Exception:
        pass
    return ", ".join(str(k) for k in keys) or "?"


def find_leaks(
    analysis: Analysis,
    watched: dict[int, Any],
    *,
    probable: bool = False,
    max_candidates: int = 500,
    max_holders: int = 8,
    budget_ns: int = 5_000_000_000,
) -> list[Leak]:
    """Leaked objects of a finished replay, with holders, in this live process.

    ``probable``: also look for objects that refuse weak references (lists, dicts) by
    ``id`` among the live objects of the same type and size. Off by default: CPython
    reuses the ids of dead lists constantly, so such a match can name the wrong object.
    """
    deadline = time.perf_counter_ns() + budget_ns
    live_oids = set(analysis.by_oid)
    running = analysis.instances  # scope instances that have not exited

    def made_in_class_body(life: Any) -> bool:
        # names bound in a class body become class attributes: long-lived by design
        inst = analysis.ended_instances.get(life.creator_tok)
        return inst is not None and analysis.scope_kind(inst) == "class"

    candidates = [
        life
        for oid, life in analysis.objects.items()
        if oid not in live_oids
        and life.creator_tok not in running
        and life.creator_tok != 0
        and not made_in_class_body(life)
    ]
    if not candidates:
        return []
    candidates = candidates[:max_candidates]
    exclude: set[int] = {id(candidates), id(watched), id(analysis.objects)}
    objs: dict[int, tuple[Any, bool]] = {}
    for life in candidates:
        ref = watched.get(life.oid)
        if ref is not None:
            o = ref()
            if o is not None and _tname(o) == life.type:
                objs[life.oid] = (o, True)
    missing = {life.oid: life for life in candidates if life.oid not in objs}
    if missing and probable:
        for o in gc.get_objects():
            found = missing.get(id(o))
            if found is not None and _tname(o) == found.type and found.oid not in watched:
                size = sizing.shallow_size(o)
                if size == found.shallow or found.shallow < 0:
                    objs[found.oid] = (o, False)
    exclude.add(id(objs))
    namer = HolderNamer(exclude, max_holders=max_holders)
    leaks: list[Leak] = []
    for life in candidates:
        got = objs.get(life.oid)
        if got is None:
            continue
        obj, certain = got
        holders = namer.name(obj) if time.perf_counter_ns() < deadline else ["(not searched)"]
        if not holders:
            continue  # nothing but memscope holds it: it is garbage awaiting collection
        leaks.append(
            Leak(
                oid=life.oid,
                type=life.type,
                size=life.size,
                variable=life.first_var,
                file=life.file,
                line=life.line,
                certain=certain,
                holders=holders,
            )
        )
        del obj
    objs.clear()
    return leaks
