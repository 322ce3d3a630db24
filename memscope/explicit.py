"""The explicit API: ``track_var(x)`` and ``track_scope(name)``, for code not instrumented.

``track_var`` recovers the argument's source text from the caller's frame (the exact
call's position where Python records it, 3.11+; the line otherwise), so
``track_var(self.cache)`` is recorded as ``self.cache``. The site is registered once
per call location and cached. ``ast``, ``inspect`` and ``linecache`` are imported on
first use, not at import: ``import memscope`` is part of ``memscope run``'s start-up.
"""

from __future__ import annotations

import _thread
import os
import sys

from memscope import _hooks
from memscope.events import BIND_EXPLICIT, SCOPE_EXPLICIT

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])

_handle = _hooks._make_handle(0, 0, 0)  # global site and scope numbers, no offset
_sites: dict[tuple[str, str, int, int], int] = {}
_site_lock = _thread.allocate_lock()
_tls = _thread._local()  # .stack: [(scope, tok)] of the thread's open track_scope blocks
_thread_toks: dict[tuple[int, int], int] = {}


def _qualname(code: Any) -> str:
    return getattr(code, "co_qualname", code.co_name)


def _call_position(frame: Any) -> tuple[int, int, int, int] | None:
    """(line, end_line, col, end_col) of the call being executed, where Python has it."""
    positions = getattr(frame.f_code, "co_positions", None)
    if positions is None or frame.f_lasti < 0:
        return None
    try:
        for i, pos in enumerate(positions()):
            if i == frame.f_lasti // 2:
                if None in pos:
                    return None
                return pos
    except Exception:
        return None
    return None


def _arg_text(call_src: str) -> str | None:
    """The source text of the first argument of the call expression ``call_src``."""
    import ast

    try:
        tree = ast.parse(call_src.strip(), mode="eval")
    except SyntaxError:
        return None
    node = tree.body
    if isinstance(node, ast.Call) and node.args:
        seg = ast.get_source_segment(call_src.strip(), node.args[0])
        return seg if seg is not None else ast.unparse(node.args[0])
    return None


def recover_name(frame: Any, func_name: str = "track_var") -> tuple[str, int, int]:
    """(name, line, col) of the argument of the call at ``frame``; a clear fallback."""
    import ast
    import linecache

    code = frame.f_code
    filename = code.co_filename
    line = frame.f_lineno or code.co_firstlineno
    lines = linecache.getlines(filename, frame.f_globals)
    pos = _call_position(frame)
    if lines and pos is not None:
        l0, l1, c0, c1 = pos
        if 1 <= l0 <= l1 <= len(lines):
            seg = lines[l0 - 1 : l1]
            if l0 == l1:
                text = seg[0].encode()[c0:c1].decode(errors="replace")
            else:
                text = (
                    seg[0].encode()[c0:].decode(errors="replace")
                    + "".join(seg[1:-1])
                    + seg[-1].encode()[:c1].decode(errors="replace")
                )
            name = _arg_text(text)
            if name:
                return " ".join(name.split()), l0, c0
    if lines and 1 <= line <= len(lines):
        # no exact position (3.10): the one call of func_name on the line
        src = lines[line - 1]
        try:
            tree = ast.parse(src.strip())
        except SyntaxError:
            tree = None
        if tree is not None:
            calls = [
                n
                for n in ast.walk(tree)
                if isinstance(n, ast.Call)
                and n.args
                and (
                    (isinstance(n.func, ast.Name) and n.func.id == func_name)
                    or (isinstance(n.func, ast.Attribute) and n.func.attr == func_name)
                )
            ]
            if len(calls) == 1:
                indent = len(src) - len(src.lstrip())
                return ast.unparse(calls[0].args[0]), line, calls[0].col_offset + indent
    base = os.path.basename(filename) if filename else "?"
    return f"<expr at {base}:{line}>", line, 0


def _explicit_site(frame: Any) -> tuple[int, int]:
    """(global site, global scope) of the track_var call at ``frame``."""
    code = frame.f_code
    key = (code.co_filename, _qualname(code), code.co_firstlineno, frame.f_lasti)
    site = _sites.get(key)
    if site is None:
        with _site_lock:
            site = _sites.get(key)
            if site is None:
                name, line, col = recover_name(frame)
                module = frame.f_globals.get("__name__", "?")
                site = _hooks.register_site(
                    code.co_filename,
                    module if isinstance(module, str) else "?",
                    _qualname(code),
                    line,
                    col,
                    name,
                    BIND_EXPLICIT,
                )
                _sites[key] = site
    return site, _hooks._site_scope[site]


def track_var(value: Any) -> None:
    """Record ``value`` under the name it has at the call site. Never raises."""
    try:
        frame = sys._getframe(1)
        site, scope = _explicit_site(frame)
        del frame
        stack = getattr(_tls, "stack", None)
        if stack:
            tok = stack[-1][1]
        else:
            ident = _thread.get_ident()
            tok = _thread_toks.get((ident, scope), 0)
            if not tok:
                tok = _thread_toks[(ident, scope)] = _handle.enter(scope, -1) or 0
        _handle.bind(site, value, tok)
    except Exception as exc:
        _hooks._error("track_var", exc)


class track_scope:
    """A named scope: ``with track_scope("load"):`` or ``@track_scope("load")``.

    ``track_var`` bindings made inside end when the scope ends, so their lifetimes
    and the scope's peak are reported like those of a function.
    """

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError("track_scope needs a non-empty name")
        self.name = name
        self._scope: int | None = None
        frame = sys._getframe(1)
        module = frame.f_globals.get("__name__", "?")
        self._where = (
            frame.f_code.co_filename,
            module if isinstance(module, str) else "?",
            frame.f_lineno,
        )
        del frame

    def _scope_id(self) -> int:
        if self._scope is None:
            file, module, line = self._where
            scope = _hooks.register_scope(file, module, self.name, SCOPE_EXPLICIT, line)
            self._scope = scope
        return self._scope

    def _active(self) -> _Active:
        return _Active(self)

    def __enter__(self) -> track_scope:
        self._cm = self._active()
        self._cm.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._cm.__exit__(*exc)

    def __call__(self, fn: F) -> F:
        import functools
        import inspect

        self._scope_id()
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                with self._active():
                    return await fn(*args, **kwargs)

            return awrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._active():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class _Active:
    """One activation of a :class:`track_scope`: enter on ``__enter__``, exit on
    ``__exit__`` whatever happened inside (a class, not ``contextlib.contextmanager``:
    contextlib is not imported at ``memscope run``'s start-up)."""

    __slots__ = ("entry", "owner", "stack", "tok")

    def __init__(self, owner: track_scope) -> None:
        self.owner = owner

    def __enter__(self) -> None:
        scope = self.owner._scope_id()
        self.tok = _handle.enter(scope, -1) or 0  # explicit scopes never sleep
        stack = getattr(_tls, "stack", None)
        if stack is None:
            stack = _tls.stack = []
        self.stack = stack
        self.entry = (scope, self.tok)
        stack.append(self.entry)

    def __exit__(self, *exc: object) -> None:
        try:
            self.stack.remove(self.entry)
        except ValueError:
            pass
        _handle.exit(self.tok)


def ignore(fn: F) -> F:
    """Mark a function for the transformer to leave alone (``@memscope.ignore``)."""
    try:
        fn.__memscope_ignore__ = True  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        pass
    return fn
