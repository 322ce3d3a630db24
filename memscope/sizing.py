"""How big an object is: shallow size, deep size, and memory outside the Python heap.

Nothing here calls user code except ``__sizeof__`` (through ``sys.getsizeof``) and the
hooks a class opts into (the ``Trackable`` protocol of ``memscope.trackable``,
``register_sizer``). Attribute look-ups that could run a user descriptor go through the
C-level descriptors of the built-in types instead, and children are found with
``gc.get_referents`` (the type's C traversal), so sizing never triggers properties,
``__getattr__`` or ``__iter__``.

The small records here are plain classes with ``__slots__``, not dataclasses: decorating
them took ~2 ms of ``memscope run``'s start-up, besides importing ``dataclasses``.
"""

from __future__ import annotations

import gc
import sys
import time
import types

from memscope._signals import reraise_signal as _reraise_signal

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

_getsizeof = sys.getsizeof


def _isa(obj: Any, types_: type | tuple[type, ...]) -> bool:
    """``isinstance`` that never runs the object's own ``__class__`` (user code)."""
    return issubclass(type(obj), types_)


_get_referents = gc.get_referents
_dict_keys = dict.keys  # the C method: never a subclass's override
_mro_of = type.__dict__["__mro__"].__get__
_type_module = type.__dict__["__module__"].__get__
_type_qualname = type.__dict__["__qualname__"].__get__

# Objects that are part of the program, not data held by a variable: never walked into.
_NOT_DATA: tuple[type, ...] = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CodeType,
    types.FrameType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
)
_C_CALLABLE = (
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
)


class Sizer:
    """How to size one type (see ``register_sizer``)."""

    __slots__ = ("buffer", "children", "size")

    def __init__(
        self,
        size: Callable[[Any], int] | None = None,
        children: Callable[[Any], Iterable[Any]] | None = None,
        buffer: Callable[[Any], tuple[int, int] | None] | None = None,
    ) -> None:
        self.size = size
        self.children = children
        self.buffer = buffer


_SIZERS: dict[type, Sizer] = {}


def register_sizer(
    tp: type,
    size: Callable[[Any], int] | None = None,
    *,
    children: Callable[[Any], Iterable[Any]] | None = None,
    buffer: Callable[[Any], tuple[int, int] | None] | None = None,
) -> None:
    """Teach memscope to size a type you don't own (applies to subclasses too)."""
    if not isinstance(tp, type):
        raise TypeError(f"register_sizer needs a type, got {type(tp).__name__}")
    _SIZERS[tp] = Sizer(size, children, buffer)
    sizers_changed()


# callbacks of caches made from sizing facts elsewhere (the hot path's fast types)
_on_sizers_changed: list[Callable[[], None]] = []


def sizers_changed() -> None:
    """Forget every sizing fact kept about types: a sizer was registered (or removed)."""
    _plan_cache.clear()
    _static_walk.clear()
    _heap_walk.clear()
    for forget in _on_sizers_changed:
        forget()


def type_name(tp: type) -> str:
    """``module.qualname`` of a type, read without running any user descriptor."""
    try:
        mod = _type_module(tp)
        qual = _type_qualname(tp)
    except Exception as _e:
        _reraise_signal(_e)  # a signal handler's, not ours to drop
        return "<unknown type>"
    mod = mod if isinstance(mod, str) else "?"
    qual = qual if isinstance(qual, str) else "?"
    return qual if mod == "builtins" else f"{mod}.{qual}"


def _class_attr(tp: type, name: str) -> Any:
    """The raw class attribute ``name`` found along the MRO, without descriptors."""
    try:
        mro = _mro_of(tp)
    except Exception as _e:
        _reraise_signal(_e)  # a signal handler's, not ours to drop
        return None
    for klass in mro:
        try:
            d = type.__dict__["__dict__"].__get__(klass)
        except Exception as _e:
            _reraise_signal(_e)  # a signal handler's, not ours to drop
            continue
        if name in d:
            return d[name]
    return None


class Plan:
    """What sizing one type needs, decided once per type."""

    __slots__ = ("buffer_kind", "c_sizeof", "sizer", "trackable")

    def __init__(
        self,
        c_sizeof: bool,  # __sizeof__ is C code: sys.getsizeof is safe and fast
        sizer: Sizer | None,  # registered sizer (found along the MRO)
        trackable: bool,  # implements part of the Trackable protocol
        buffer_kind: str,  # "", "numpy", "ctypes", "array", "bytearray", "memoryview", "mmap"
    ) -> None:
        self.c_sizeof = c_sizeof
        self.sizer = sizer
        self.trackable = trackable
        self.buffer_kind = buffer_kind


_plan_cache: dict[type, Plan] = {}


def plan_for(tp: type) -> Plan:
    """The sizing plan of a type (cached; the cache holds types, which are long-lived)."""
    plan = _plan_cache.get(tp)
    if plan is not None:
        return plan
    sizer = None
    try:
        for klass in _mro_of(tp):
            if klass in _SIZERS:
                sizer = _SIZERS[klass]
                break
    except Exception as _e:
        _reraise_signal(_e)  # a signal handler's, not ours to drop
        pass
    sizeof = _class_attr(tp, "__sizeof__")
    trackable = any(
        _class_attr(tp, n) is not None
        for n in ("__memscope_size__", "__memscope_children__", "__memscope_buffer__")
    )
    plan = Plan(
        c_sizeof=_isa(sizeof, _C_CALLABLE),
        sizer=sizer,
        trackable=trackable,
        buffer_kind=_buffer_kind(tp),
    )
    if len(_plan_cache) > 10_000:
        _plan_cache.clear()
        _heap_walk.clear()  # (its classes go with their plans)
    _plan_cache[tp] = plan
    return plan


def _buffer_kind(tp: type) -> str:
    name = type_name(tp)
    try:
        mro = _mro_of(tp)
    except Exception as _e:
        _reraise_signal(_e)  # a signal handler's, not ours to drop
        return ""
    names = {type_name(k) for k in mro}
    if "numpy.ndarray" in names:
        return "numpy"
    if names & {"_ctypes._SimpleCData", "_ctypes.Array", "_ctypes.Structure", "_ctypes.Union"}:
        return "ctypes"
    if "array.array" in names:
        return "array"
    if "bytearray" in names:
        return "bytearray"
    if "memoryview" in names:
        return "memoryview"
    if "mmap.mmap" in names:
        return "mmap"
    del name
    return ""


def shallow_size(obj: Any, plan: Plan | None = None) -> int:
    """Bytes of the object itself (``sys.getsizeof`` unless a sizer says otherwise)."""
    if plan is None:
        plan = plan_for(type(obj))
    try:
        if plan.sizer is not None and plan.sizer.size is not None:
            return int(plan.sizer.size(obj))
        if plan.trackable:
            fn = _class_attr(type(obj), "__memscope_size__")
            if fn is not None:
                return int(fn(obj))
        return int(_getsizeof(obj, -1))
    except Exception as _e:
        _reraise_signal(_e)  # a signal handler's, not ours to drop
        return -1


_HAVE_GC = 1 << 14  # Py_TPFLAGS_HAVE_GC: only such types can hold references


class _WalkType:
    """What the deep walk needs of one type, resolved once per walk."""

    __slots__ = ("container", "dict_desc", "extra", "is_dict", "not_data", "plan", "sizeof")

    def __init__(
        self,
        plan: Plan,
        sizeof: Any,  # the C __sizeof__ when getsizeof = sizeof + extra, else None
        extra: int,
        container: bool,  # may hold references (has the GC flag, or declares children)
        dict_desc: Any,  # the C ``__dict__`` getset descriptor of instances, or None
        is_dict: bool,
        not_data: bool,  # part of the program (function, class, module ...): never walked
    ) -> None:
        self.plan = plan
        self.sizeof = sizeof
        self.extra = extra
        self.container = container
        self.dict_desc = dict_desc
        self.is_dict = is_dict
        self.not_data = not_data

    def size(self, o: Any) -> int:
        """Bytes of ``o`` rounded to the allocator's 8-byte granule (0 if unknown)."""
        if self.sizeof is not None:
            try:
                s = int(self.sizeof(o)) + self.extra
            except Exception as _e:
                _reraise_signal(_e)  # a signal handler's, not ours to drop
                return 0
        else:
            s = shallow_size(o, self.plan)
        return (s + 7) & ~7 if s > 0 else 0


_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class made at run time (it may die, change)
# builtin types' walk facts, kept across walks: they never die or change, but for
# register_sizer (which clears this). A small tuple's deep size took two _walk_type
# calls of ~3 us each (tuple, int) for ~5 us of walking.
_static_walk: dict[type, _WalkType] = {}


# the same for classes, as long as ``_plan_cache`` keeps their plans (it holds the
# classes already: this holds none longer): a Task's deep walk spent 4 us of its 20 us
# finding them again
_heap_walk: dict[type, _WalkType] = {}


def _walk_type_of(tp: type, sample: Any) -> _WalkType:
    wt = _static_walk.get(tp)
    if wt is None:
        wt = _heap_walk.get(tp)
        if wt is not None and _plan_cache.get(tp) is wt.plan:
            return wt
        wt = _walk_type(tp, sample)
        try:
            static = not type.__dict__["__flags__"].__get__(tp) & _HEAPTYPE
        except Exception as _e:
            _reraise_signal(_e)  # a signal handler's, not ours to drop
            static = False
        if static:
            _static_walk[tp] = wt
        elif _plan_cache.get(tp) is wt.plan:
            if len(_heap_walk) >= 10_000:
                _heap_walk.clear()
            _heap_walk[tp] = wt
    return wt


def _walk_type(tp: type, sample: Any) -> _WalkType:
    plan = plan_for(tp)
    sizeof = None
    extra = 0
    if plan.c_sizeof and plan.sizer is None and not plan.trackable:
        sizeof = _class_attr(tp, "__sizeof__")
        try:
            extra = _getsizeof(sample) - sizeof(sample)
        except Exception as _e:
            _reraise_signal(_e)  # a signal handler's, not ours to drop
            sizeof = None
    desc = _class_attr(tp, "__dict__")
    try:
        flags = type.__dict__["__flags__"].__get__(tp)
    except Exception as _e:
        _reraise_signal(_e)  # a signal handler's, not ours to drop
        flags = _HAVE_GC
    declared = plan.trackable or (plan.sizer is not None and plan.sizer.children is not None)
    return _WalkType(
        plan,
        sizeof,
        extra,
        bool(flags & _HAVE_GC) or declared,
        desc if _isa(desc, types.GetSetDescriptorType) else None,
        issubclass(tp, dict),
        issubclass(tp, _NOT_DATA),
    )


def _children(obj: Any, wt: _WalkType) -> Iterable[Any]:
    plan = wt.plan
    if plan.sizer is not None and plan.sizer.children is not None:
        return plan.sizer.children(obj)
    if plan.trackable:
        fn = _class_attr(type(obj), "__memscope_children__")
        if fn is not None:
            return fn(obj)
    kids = _get_referents(obj)
    if wt.is_dict:
        # CPython's traversal of a str-keyed dict visits only the values
        kids = [*_dict_keys(obj), *kids]
    # Instances keep their attributes in a dict that 3.11+ may not have materialized;
    # count it as pympler and ``obj.__dict__`` users see it, via the C descriptor only.
    if wt.dict_desc is not None:
        try:
            d = wt.dict_desc.__get__(obj)
        except Exception as _e:
            _reraise_signal(_e)  # a signal handler's, not ours to drop
            d = None
        if _isa(d, dict):
            kids = [k for k in kids if k is not d]
            kids.append(d)
    return kids


class DeepResult:
    """What ``deep_size`` found."""

    __slots__ = ("complete", "objects", "size")

    def __init__(self, size: int, objects: int, complete: bool) -> None:
        self.size = size
        self.objects = objects
        self.complete = complete  # False: the walk hit its object or time budget

    def __repr__(self) -> str:
        return f"DeepResult(size={self.size}, objects={self.objects}, complete={self.complete})"


FOUND_CAP = 4096  # objects one deep walk hands to ``found`` at most
LARGE_STR = 576  # bytes: past pymalloc's 512, a str's block is the raw allocator's
# (full mode watches such a str's death: _hooks._watch; deep_size hands them over)


_BUILTIN_CONTAINERS = frozenset((list, tuple, dict, set, frozenset))
_deep_builtin: Any = None
try:  # (a C extension of its own: no hot path, nothing started by importing it)
    from memscope._deathwatch import deep_builtin as _deep_builtin
except ImportError:  # not built: the walk in Python
    pass


def deep_size(
    obj: Any,
    *,
    max_objects: int = 1_000_000,
    max_ns: int = 100_000_000,
    found: list[Any] | None = None,
) -> DeepResult:
    """Bytes reachable from ``obj``, each object counted once, within a budget.
    ``found``, if given, gets the exact ``bytes`` and ``bytearray`` objects and the
    ``str`` over LARGE_STR bytes it reached (at most FOUND_CAP), for full mode's age
    evidence (``_hooks._stamp_reached``).

    Types, modules, functions and code are part of the program, not the data, and are
    neither counted nor walked (as ``pympler.asizeof`` does by default). Each object
    counts its ``sys.getsizeof`` rounded up to the allocator's 8-byte granule, as
    pympler does, which is closer to the memory really taken. The walk is
    iterative, so a 10^6-deep nesting does not recurse.
    """
    if _isa(obj, _NOT_DATA):
        # a function, class or module: its own size only (walking it would reach its
        # module's globals, i.e. the whole program)
        s = shallow_size(obj)
        return DeepResult((s + 7) & ~7 if s > 0 else 0, 1, True)
    if _deep_builtin is not None and not _SIZERS and type(obj) in _BUILTIN_CONTAINERS:
        # built-in data only (lists, dicts, tuples, sets of scalars, str, bytes): the
        # same walk in C (_deathwatch.deep_builtin), which answers None at the first
        # object of another kind (then the walk below does it all)
        hits: list[Any] | None = [] if found is not None else None
        try:
            got = _deep_builtin(obj, max_objects, max_ns, hits, LARGE_STR)
        except MemoryError:
            got = None
        if got is not None:
            if found is not None and hits:
                found.extend(hits[:FOUND_CAP - len(found)])
            return DeepResult(*got)
    deadline = time.perf_counter_ns() + max_ns
    seen: set[int] = {id(obj)}
    stack: list[Any] = [obj]
    count = 1
    complete = True
    kinds: dict[type, _WalkType] = {}
    root = _walk_type_of(type(obj), obj)
    kinds[type(obj)] = root
    total = root.size(obj)
    while stack:
        o = stack.pop()  # a container, already sized and counted when it was found
        if time.perf_counter_ns() > deadline:
            complete = False
            break
        wt = kinds[type(o)]
        if not wt.container:
            continue
        try:
            kids = _children(o, wt)
            for k in kids:
                ki = id(k)
                if ki in seen:
                    continue
                seen.add(ki)
                kt = type(k)
                kw = kinds.get(kt)
                if kw is None:
                    kw = kinds[kt] = _walk_type_of(kt, k)
                if kw.not_data:
                    continue
                if count >= max_objects or (
                    count & 4095 == 0 and time.perf_counter_ns() > deadline
                ):
                    complete = False
                    break
                count += 1
                size = kw.size(k)
                total += size
                if kw.container:
                    stack.append(k)
                elif found is not None and (kt is bytes or kt is bytearray or (
                        kt is str and size > LARGE_STR)) and len(found) < FOUND_CAP:
                    found.append(k)
        except Exception as _e:
            _reraise_signal(_e)  # a signal handler's, not ours to drop
            continue
        if not complete:
            break
    stack.clear()
    return DeepResult(total, count, complete)


def buffer_info(obj: Any, plan: Plan | None = None) -> tuple[int, int]:
    """``(address, nbytes)`` of memory the object owns or views outside its header.

    ``(-1, -1)`` when the object has none or it can't be read safely.
    """
    if plan is None:
        plan = plan_for(type(obj))
    try:
        if plan.sizer is not None and plan.sizer.buffer is not None:
            got = plan.sizer.buffer(obj)
            return (int(got[0]), int(got[1])) if got else (-1, -1)
        if plan.trackable:
            fn = _class_attr(type(obj), "__memscope_buffer__")
            if fn is not None:
                got = fn(obj)
                return (int(got[0]), int(got[1])) if got else (-1, -1)
        kind = plan.buffer_kind
        if not kind:
            return (-1, -1)
        if kind == "numpy":
            nd = sys.modules["numpy"].ndarray
            iface = nd.__dict__["__array_interface__"].__get__(obj)
            return (int(iface["data"][0]), int(nd.__dict__["nbytes"].__get__(obj)))
        if kind == "ctypes":
            import ctypes

            return (ctypes.addressof(obj), ctypes.sizeof(obj))
        if kind == "array":
            import array

            addr, n = array.array.buffer_info(obj)
            return (addr, n * array.array.__dict__["itemsize"].__get__(obj))
        if kind in ("bytearray", "mmap"):
            n = len(obj) if kind == "mmap" else bytearray.__len__(obj)
            return (_writable_address(obj, n), n)
        if kind == "memoryview":
            n = memoryview.__dict__["nbytes"].__get__(obj)
            ro = memoryview.__dict__["readonly"].__get__(obj)
            return (-1 if ro else _writable_address(obj, n), n)
    except Exception as _e:
        _reraise_signal(_e)  # a signal handler's, not ours to drop
        return (-1, -1)
    return (-1, -1)


def _writable_address(obj: Any, n: int) -> int:
    """Address of a writable buffer; the temporary export is released at once."""
    if n <= 0:
        return -1
    import ctypes

    try:
        view = ctypes.c_char.from_buffer(obj)
    except (TypeError, ValueError, BufferError):
        return -1
    addr = ctypes.addressof(view)
    del view
    return addr


def buffer_base(obj: Any) -> Any:
    """The object whose memory a view (numpy view, memoryview) keeps alive, or None."""
    kind = plan_for(type(obj)).buffer_kind
    try:
        if kind == "numpy":
            return sys.modules["numpy"].ndarray.__dict__["base"].__get__(obj)
        if kind == "memoryview":
            return memoryview.__dict__["obj"].__get__(obj)
    except Exception as _e:
        _reraise_signal(_e)  # a signal handler's, not ours to drop
        return None
    return None
