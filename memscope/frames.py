"""A frame's local variables, read without changing the frame.

``frame.f_locals`` on CPython 3.10 to 3.12 builds a dict, stores it on the frame and
keeps it there: every local it copied stays referenced by that dict until the frame ends
or the next ``locals()``. A census that read ``f_locals`` would keep a ``del``-ed
buffer alive for the rest of the function (and clearing the dict afterwards would clear
a dict the program itself may hold from ``locals()``). So on those versions the locals
are read where the interpreter keeps them, the frame's ``localsplus`` array, through
``ctypes``, for the layouts below; the layout is checked once against a frame whose
locals are known, and where it does not match (another build, another version) the
reader says so and falls back to ``f_locals``. 3.13 and newer give ``f_locals`` as a
proxy over the same array (PEP 667), which stores nothing: it is used as it is.
"""

from __future__ import annotations

import sys
import types

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    from typing import Any

_CellType = types.CellType
# (offset of the interpreter-frame pointer in a frame object, or -1: the frame object
# holds its locals itself; offsets of localsplus and of the f_locals dict from there)
_LAYOUTS = {(3, 10): (-1, 352, 56), (3, 11): (24, 72, 24), (3, 12): (24, 72, 40)}


_UNBOUND = object()  # an empty slot, from frame_slots
_frame_slots: Any = None
_frame_addresses: Any = None
_frame_dict: Any = None
try:  # the C readers (memscope/_hotpath.c), where built: each reads the frame's pointer
    # and what it points at in one go (read word by word through ctypes, the census's
    # reads of another thread's frame faulted when that thread returned from it between
    # two reads and its data stack chunk was given back: pyparsing under --mode full)
    from memscope._hotpath import frame_addresses as _frame_addresses
    from memscope._hotpath import frame_dict as _frame_dict
    from memscope._hotpath import frame_slots as _frame_slots
except ImportError:
    pass


def _names(code: types.CodeType) -> tuple[str, ...]:
    """Names in localsplus order: locals (arguments first), the cells that are not
    arguments, then the free variables (CPython 3.11 and 3.12; 3.10's order is the same)."""
    varnames = code.co_varnames
    cells = tuple(c for c in code.co_cellvars if c not in varnames)
    return (*varnames, *cells, *code.co_freevars)


class _Localsplus:
    """Reads a frame's ``localsplus`` array at one layout (see the module docstring)."""

    def __init__(self, frame_ptr_at: int, locals_at: int, dict_at: int) -> None:
        import ctypes

        self.void_p = ctypes.c_void_p
        self.py_object = ctypes.py_object
        self.cast = ctypes.cast
        self.width = ctypes.sizeof(ctypes.c_void_p)
        self.frame_ptr_at = frame_ptr_at
        self.locals_at = locals_at
        self.dict_at = dict_at
        self.names_of: dict[types.CodeType, tuple[str, ...]] = {}

    def base(self, frame: Any) -> int:
        base = id(frame)
        if self.frame_ptr_at >= 0:
            base = self.void_p.from_address(base + self.frame_ptr_at).value or 0
        return base

    def dict_pointer(self, frame: Any) -> int:
        base = self.base(frame)
        return (self.void_p.from_address(base + self.dict_at).value or 0) if base else 0

    def stored_dict(self, frame: Any) -> dict[str, Any] | None:
        """The dict an earlier ``locals()`` or ``f_locals`` left on the frame, or None."""
        if _frame_dict is not None:
            d = _frame_dict(frame, self.frame_ptr_at, self.dict_at)
            return d if type(d) is dict else None
        p = self.dict_pointer(frame)
        if not p:
            return None
        d = self.cast(p, self.py_object).value
        return d if type(d) is dict else None

    def _bound(self, frame: Any) -> list[tuple[str, Any]]:
        """``(name, object)`` of every bound slot. In C where the hot path is built: the
        slots read and referenced in one call, so the thread running the frame cannot
        return from it or rebind a name between two reads (this one may be another
        thread's frame); else slot by slot (a thread switch between reads can leave an
        address stale)."""
        code = frame.f_code
        names = self.names_of.get(code)
        if names is None:
            names = self.names_of[code] = _names(code)
        if _frame_slots is not None:
            values = _frame_slots(frame, self.frame_ptr_at, self.locals_at, len(names),
                                  _UNBOUND)
            return [(n, v) for n, v in zip(names, values, strict=True) if v is not _UNBOUND]
        cast, py_object = self.cast, self.py_object
        return [(name, cast(p, py_object).value) for name, p in self.pointers(frame)]

    def pointers(self, frame: Any) -> list[tuple[str, int]]:
        """``(name, address of the object)`` of every bound slot, no object touched."""
        code = frame.f_code
        names = self.names_of.get(code)
        if names is None:
            names = self.names_of[code] = _names(code)
        base = self.base(frame)
        if not base:
            return []
        from_address = self.void_p.from_address
        at = base + self.locals_at
        width = self.width
        out = []
        for i, name in enumerate(names):
            p = from_address(at + i * width).value
            if p:  # 0: not bound (yet, or any more)
                out.append((name, p))
        return out

    def raw_slots(self, frame: Any, stack_only: bool = False) -> list[int]:
        """Every address in the frame's locals and value stack (``stack_only``: the
        stack), bound or stale: what a frame may be holding. Only addresses: none is
        made into an object (a slot above the stack's top may name an object gone)."""
        code = frame.f_code
        names = self.names_of.get(code)
        if names is None:
            names = self.names_of[code] = _names(code)
        if _frame_addresses is not None:
            return _frame_addresses(frame, self.frame_ptr_at, self.locals_at,
                                    len(names) if stack_only else 0,
                                    len(names) + code.co_stacksize)
        base = self.base(frame)
        if not base:
            return []
        from_address = self.void_p.from_address
        at = base + self.locals_at
        width = self.width
        out = []
        for i in range(len(names) if stack_only else 0, len(names) + code.co_stacksize):
            p = from_address(at + i * width).value
            if p:
                out.append(p)
        return out

    def __call__(self, frame: Any) -> list[tuple[str, Any]]:
        code = frame.f_code
        cells = code.co_cellvars + code.co_freevars
        out: list[tuple[str, Any]] = []
        for name, value in self._bound(frame):
            if name in cells and type(value) is _CellType:
                try:
                    value = value.cell_contents
                except ValueError:  # an empty cell: the name is not bound
                    continue
            out.append((name, value))
        return out


def _dict_reader(frame: Any) -> list[tuple[str, Any]]:
    return list(frame.f_locals.items())


def _no_dict(frame: Any) -> dict[str, Any] | None:
    return None


def _no_slots(frame: Any, stack_only: bool = False) -> list[int]:
    return []


def _probe(reader: _Localsplus) -> bool:
    """Does ``reader`` find a frame's known locals where they are? Only addresses are
    compared (no object is made from an address until the layout is known good)."""
    a, b = object(), [1]
    cell = (a,)

    def inner() -> Any:
        return cell

    closure = inner.__closure__
    del inner
    frame = sys._getframe()
    if reader.dict_pointer(frame) == 0:
        got = dict(reader.pointers(frame))
        want = {"a": id(a), "b": id(b), "reader": id(reader),
                "cell": id(closure[0]) if closure else -1}
        if all(got.get(k) == v for k, v in want.items()) and "inner" not in got:
            mine = locals()  # now the frame keeps a dict: found where it should be?
            return reader.dict_pointer(frame) == id(mine)
    return False


def _choose() -> tuple[Any, Any, Any, str]:
    """(locals of a frame, the locals dict a frame keeps or None, the addresses a frame
    may hold, how)."""
    if sys.version_info >= (3, 13):
        return _dict_reader, _no_dict, _no_slots, "f_locals (a proxy on 3.13+: nothing stored)"
    layout = _LAYOUTS.get(sys.version_info[:2])
    if layout is None or sys.implementation.name != "cpython" or hasattr(sys, "gettotalrefcount"):
        return (_dict_reader, _no_dict, _no_slots,
                "f_locals (no known frame layout: locals read stay referenced)")
    try:
        reader = _Localsplus(*layout)
        if _probe(reader):
            return reader, reader.stored_dict, reader.raw_slots, "localsplus"
    except Exception:
        pass
    return (_dict_reader, _no_dict, _no_slots,
            "f_locals (the frame layout did not check: locals read stay referenced)")


frame_locals, locals_dict, raw_slots, method = _choose()
