"""Plain code for sleeping functions: a function whose scope sleeps runs its original code.

A scope sleeps when every site in its body has been sampled (``_hooks``, "Guards"):
its calls record nothing until the next re-arm, yet the instrumented body still pays
its guards, a few nanoseconds each, on every call. So when a scope goes to sleep,
``swap_out`` points the function's ``__code__`` at the code the *original* source
compiles to, and ``restore`` (run by every re-arm) points it back: the next calls are
instrumented again and sampled, and the function sleeps again. Between re-arms a hot
function costs what it costs without memscope.

It is only done where the plain code is certainly the code that was instrumented:

- the module was loaded by the import hook, which calls :func:`note_source` with the
  source's (mtime_ns, size) that it instrumented; the source must still have that
  stamp, and its plain code comes from the standard ``.pyc`` when that is current, else
  from compiling the source (once per module);
- the function is found without running user code: by its qualified name through the
  module's globals and class ``__dict__`` entries (a ``staticmethod``,
  ``classmethod``, ``property`` or a ``functools.wraps`` wrapper is followed to the
  function inside), and its ``__code__`` is the running instrumented code;
- the two code objects have the same name, first line, parameters, free variables and
  kind (generator, coroutine): a nested function that reads its parent's scope token
  through a closure (``nonlocal`` tokens) keeps its instrumented code.

Frames that are already running keep their code; only new calls switch. Both code
objects carry the original file name, lines and columns, so tracebacks, ``inspect``,
pdb and coverage see the same places; a profiler that keys by code object (cProfile)
lists such a function twice. Setting ``__code__`` raises the ``object.__setattr__``
audit event, as any such assignment does. ``MEMSCOPE_SAMPLING=0`` turns it off with
the sampling it follows.
"""

from __future__ import annotations

import os
import sys
from _weakref import ref as _ref  # weakref.ref, without the weakref module

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType, FrameType
    from typing import Any

_FunctionType = type(lambda: None)
_CodeType = type((lambda: None).__code__)
_type_dict = type.__dict__["__dict__"].__get__  # a class's own namespace: no user code
_KIND_FLAGS = 0x20 | 0x80 | 0x100 | 0x200  # generator, coroutine, iterable coroutine, async gen

_sources: dict[str, tuple[int, int]] = {}  # file -> (mtime_ns, size) the hook instrumented
# file -> the original module's code objects by (name, first line); None: unavailable
_plain: dict[str, dict[tuple[str, int], CodeType] | None] = {}
# id(instrumented code) -> (weakref to that code, its plain code or None when it is never
# swapped (no plain code, no function found, a different shape), weakrefs to its functions)
_targets: dict[int, tuple[Any, CodeType | None, list[Any]]] = {}
_swapped: list[tuple[Any, CodeType, CodeType]] = []  # (function ref, instrumented, plain)
enabled = [True]
stats = {"swapped": 0, "restored": 0}


def note_source(file: str, stamp: tuple[int, int] | None) -> None:
    """The import hook instrumented ``file`` from a source with this stamp."""
    if stamp is not None:
        _sources[file] = stamp
        _plain.pop(file, None)  # a re-import: the plain code is looked up again


def source_stamp(path: str) -> tuple[int, int] | None:
    """A source file's (mtime_ns, size), or None: what the import hook's cache records
    and checks, and what the swap checks again before it trusts the file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _plain_top(file: str, stamp: tuple[int, int]) -> CodeType | None:
    """The original module's code: the standard ``.pyc`` if it is current for this
    stamp, else compiled from the source, which must still carry the stamp, and that
    ``.pyc`` written as a plain import would have written it (``_write_plain``)."""
    import marshal
    from importlib._bootstrap_external import MAGIC_NUMBER, cache_from_source

    if source_stamp(file) != stamp:
        return None
    try:
        with open(cache_from_source(file), "rb") as f:
            data = f.read()
        if (len(data) > 16 and data[:4] == MAGIC_NUMBER and data[4:8] == b"\0\0\0\0"
                and int.from_bytes(data[8:12], "little") == (stamp[0] // 10**9) & 0xFFFFFFFF
                and int.from_bytes(data[12:16], "little") == stamp[1] & 0xFFFFFFFF):
            code = marshal.loads(data[16:])
            if isinstance(code, _CodeType) and code.co_filename == file:
                return code
    except (OSError, ValueError, EOFError, TypeError, NotImplementedError):
        pass
    with open(file, "rb") as f:
        src = f.read()
    if source_stamp(file) != stamp or len(src) != stamp[1]:
        return None
    code = _compile_quietly(src, file)
    _write_plain(file, code, stamp)
    return code


def _write_plain(file: str, code: CodeType, stamp: tuple[int, int]) -> None:
    """The standard ``.pyc`` of ``file``, as the import system writes it (timestamp
    based, atomic, the ``__pycache__`` made if need be; not if ``sys.dont_write_bytecode``):
    an instrumented import writes none, so under ``memscope run`` alone every run
    compiled each module whose function was swapped (43 ms of pyparsing's tests each
    run); the next finds it, as a plain run's import would. Any failure: not written."""
    if sys.dont_write_bytecode:
        return
    try:
        from importlib._bootstrap_external import (  # type: ignore[attr-defined]
            _code_to_timestamp_pyc,
            _write_atomic,
            cache_from_source,
        )

        path = cache_from_source(file)
        data = _code_to_timestamp_pyc(code, stamp[0] // 10**9, stamp[1])
        mode = os.stat(file).st_mode | 0o200  # as SourceFileLoader does (_calc_mode)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if source_stamp(file) == stamp:  # still the source it was compiled from
            _write_atomic(path, data, mode)
    except Exception:
        pass


def _compile_quietly(src: bytes, file: str) -> CodeType:
    """``compile`` without the SyntaxWarnings the program already had its chance to see
    (the import compiled the same source): one filter, for this file only, held for
    the compile (a filter list the program changes meanwhile keeps its changes)."""
    import re
    import warnings

    stem = file[:-3] if file.endswith(".py") else file  # what compile's warnings name
    warnings.filterwarnings("ignore", module=re.escape(stem) + r"\Z")
    filters: Any = warnings.filters  # a list at run time (typeshed says Sequence)
    entry = filters[0]
    try:
        return compile(src, file, "exec", dont_inherit=True)
    finally:
        try:
            filters.remove(entry)
        except ValueError:
            pass
        warnings._filters_mutated()  # type: ignore[attr-defined]


def _plain_codes(file: str) -> dict[tuple[str, int], CodeType] | None:
    """Every function-like code object of the original module, by (name, first line);
    names that are not unique that way are left out."""
    if file in _plain:
        return _plain[file]
    got: dict[tuple[str, int], CodeType] | None = None
    stamp = _sources.get(file)
    if stamp is not None:
        top = _plain_top(file, stamp)
        if top is not None:
            got = {}
            dup: set[tuple[str, int]] = set()
            stack = [top]
            while stack:
                c = stack.pop()
                for k in c.co_consts:
                    if isinstance(k, _CodeType):
                        key = (k.co_name, k.co_firstlineno)
                        if key in got:
                            dup.add(key)
                        got[key] = k
                        stack.append(k)
            for key in dup:
                del got[key]
    _plain[file] = got
    return got


def _params(c: CodeType) -> tuple[str, ...]:
    n = c.co_argcount + c.co_kwonlyargcount + bool(c.co_flags & 0x04) + bool(c.co_flags & 0x08)
    return c.co_varnames[:n]


def _same_shape(a: CodeType, b: CodeType) -> bool:
    """Same parameters, free variables and kind: ``__code__`` may be swapped."""
    flags = _KIND_FLAGS | 0x04 | 0x08  # and *args, **kwargs
    return (a.co_argcount == b.co_argcount and a.co_posonlyargcount == b.co_posonlyargcount
            and a.co_kwonlyargcount == b.co_kwonlyargcount and _params(a) == _params(b)
            and a.co_freevars == b.co_freevars and a.co_flags & flags == b.co_flags & flags)


def _inner_functions(obj: Any, code: CodeType) -> list[Any]:
    """The functions behind ``obj`` whose code is ``code``, read without user code."""
    out = []
    for _ in range(8):  # a few layers of wrappers at most
        tp = type(obj)
        if tp is _FunctionType:
            if obj.__code__ is code:
                out.append(obj)
                return out
            # a functools.wraps wrapper: the wrapped function is in its own __dict__
            obj = obj.__dict__.get("__wrapped__")
        elif tp is staticmethod or tp is classmethod:
            obj = obj.__func__
        elif tp is property:
            for f in (obj.fget, obj.fset, obj.fdel):
                if type(f) is _FunctionType and f.__code__ is code:
                    out.append(f)
            return out
        else:
            return out
    return out


def _find(globals_: dict[str, Any], qualname: str, code: CodeType) -> list[Any]:
    parts = qualname.split(".")
    if "<locals>" in parts or not parts[0].isidentifier():
        return []
    obj = dict.get(globals_, parts[0])
    for name in parts[1:]:
        if not issubclass(type(obj), type):  # not isinstance: no __class__ lookup
            return []
        obj = _type_dict(obj).get(name)
    return _inner_functions(obj, code)


def _target(file: str, qualname: str, code: CodeType,
            globals_: dict[str, Any]) -> tuple[Any, CodeType | None, list[Any]]:
    never: tuple[Any, CodeType | None, list[Any]] = (_ref(code), None, [])
    if code.co_filename != file:
        return never
    codes = _plain_codes(file)
    if not codes:
        return never
    plain = codes.get((code.co_name, code.co_firstlineno))
    if plain is None or not _same_shape(code, plain):
        return never
    funcs = _find(globals_, qualname, code)
    if not funcs:
        return never
    return _ref(code), plain, [_ref(f) for f in funcs]


def swap_out(file: str, qualname: str, frame: FrameType) -> None:
    """The scope of ``frame``'s code just went to sleep: its functions run plain code
    until the next :func:`restore`. Never raises."""
    try:
        code = frame.f_code
        t = _targets.get(id(code))
        if t is None or t[0]() is not code:  # new, or an id reused by another code
            t = _targets[id(code)] = _target(file, qualname, code, frame.f_globals)
        plain = t[1]
        if plain is None:
            return
        for r in t[2]:
            f = r()
            if f is not None and f.__code__ is code:
                f.__code__ = plain
                _swapped.append((r, code, plain))
                stats["swapped"] += 1
    except Exception:
        return


def restore() -> None:
    """Every swapped function runs its instrumented code again (each re-arm)."""
    while _swapped:
        try:
            r, code, plain = _swapped.pop()
        except IndexError:
            break
        try:
            f = r()
            if f is not None and f.__code__ is plain:  # the program may have set its own
                f.__code__ = code
                stats["restored"] += 1
        except Exception:
            pass


def unswapped(func: Any) -> Any:
    """``func``'s instrumented code, whether or not it is swapped out now (for tests)."""
    for r, code, plain in list(_swapped):
        if r() is func and func.__code__ is plain:
            return code
    return func.__code__


if sys.implementation.name != "cpython":  # __code__ assignment rules differ elsewhere
    enabled[0] = False
