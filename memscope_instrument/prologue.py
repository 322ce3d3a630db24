"""The instrumented module's prologue imports, bound without an import statement when
the import hook loads the module.

The prologue starts with ``from memscope._hooks import register as _memscope_`` (and
may end with ``from memscope_instrument.sites import comprehension as ...``). An import
statement calls ``builtins.__import__`` with the module's globals and raises an
``import`` audit event, so a program that wraps ``__import__`` to see what its modules
import (click's ``test_light_imports``, in a child process ``memscope run`` tracks)
saw ``memscope._hooks`` among them (issue 17). The loader knows both objects, so it
rewrites those few instructions of the module's code: the six of each import become
``LOAD_CONST <the object>`` and its ``STORE``, the rest ``NOP`` (same length: the line
and exception tables stay valid). Code it does not recognise is left as it is.

Files written by ``memscope-instrument`` and imported without the hook keep the import
statement: a program wrapping ``__import__`` sees it there (docs/realworld.md).
"""

from __future__ import annotations

import importlib
import opcode
from types import CodeType

_OP = opcode.opmap
_LOAD_CONST, _NOP, _EXT = _OP["LOAD_CONST"], _OP["NOP"], _OP["EXTENDED_ARG"]
_IMPORT_NAME, _IMPORT_FROM, _POP_TOP = _OP["IMPORT_NAME"], _OP["IMPORT_FROM"], _OP["POP_TOP"]
_STORES = (_OP["STORE_NAME"], _OP["STORE_GLOBAL"])
# (module, attribute) the prologue imports
_TARGETS = {"memscope._hooks": "register", "memscope_instrument.sites": "comprehension"}


def _cache_units() -> dict[int, int]:
    """Inline cache units after each opcode (3.11+; a list by opcode, or a dict by name
    on 3.13)."""
    ce = getattr(opcode, "_inline_cache_entries", None)
    if ce is None:
        return {}
    if isinstance(ce, dict):
        return {_OP[k]: n for k, n in ce.items() if k in _OP and n}
    return {op: n for op, n in enumerate(ce) if n}


_CACHES = _cache_units()
# the prologue is the module's first statement after its docstring and __future__
# imports: its code starts within the first few hundred bytes
_SCAN_BYTES = 2048


def _target(module: str) -> object | None:
    try:
        return getattr(importlib.import_module(module), _TARGETS[module])
    except Exception:
        return None


def bind_directly(code: CodeType) -> CodeType:
    """``code`` (a module's) with the prologue's imports replaced by the objects they
    import; ``code`` itself when it has none in the expected shape."""
    raw = code.co_code
    names = code.co_names
    out: bytearray | None = None
    consts = list(code.co_consts)
    for module, attr in _TARGETS.items():
        if module not in names:
            continue
        at = _find_import(raw, names.index(module))
        if at < 4:
            continue
        seq = _units(raw, at - 4, 6)  # LOAD_CONST LOAD_CONST IMPORT_NAME IMPORT_FROM ...
        if seq is None:
            continue
        (op1, a1), (op2, a2), _, (op4, a4), (op5, a5), (op6, _) = seq
        if not (op1 == _LOAD_CONST and consts[a1] == 0 and op2 == _LOAD_CONST
                and consts[a2] == (attr,) and op4 == _IMPORT_FROM and names[a4] == attr
                and op5 in _STORES and op6 == _POP_TOP):
            continue
        obj = _target(module)
        k = len(consts)
        if obj is None or k >= 1 << 16:
            continue
        consts.append(obj)
        if out is None:
            out = bytearray(raw)
        out[at - 4 : at + 8] = bytes((
            _NOP, 0,
            *((_EXT, k >> 8) if k > 255 else (_NOP, 0)),
            _LOAD_CONST, k & 255,
            _NOP, 0,
            op5, a5,
            _NOP, 0,
        ))
    if out is None:
        return code
    return code.replace(co_code=bytes(out), co_consts=tuple(consts))


def _find_import(raw: bytes, name_index: int) -> int:
    """Offset of the first ``IMPORT_NAME name_index`` instruction within the first
    ``_SCAN_BYTES``, on an instruction boundary; -1 if none."""
    want = bytes((_IMPORT_NAME, name_index))
    at = raw.find(want, 0, _SCAN_BYTES)
    while at != -1:
        i = 0
        while i < at:  # walk the instructions up to it: a boundary, or inside one
            i += 2 + 2 * _CACHES.get(raw[i], 0)
        if i == at:
            return at
        at = raw.find(want, at + 1, _SCAN_BYTES)
    return -1


def _units(raw: bytes, at: int, n: int) -> list[tuple[int, int]] | None:
    """``n`` instructions from ``at`` as (opcode, oparg), or None unless they are ``n``
    plain two-byte units in a row (no inline caches, no EXTENDED_ARG)."""
    seq = []
    for i in range(at, at + 2 * n, 2):
        if i + 1 >= len(raw) or raw[i] == _EXT:
            return None
        seq.append((raw[i], raw[i + 1]))
    if any(_CACHES.get(op, 0) for op, _ in seq):
        return None
    return seq
