"""The line map: for each line of instrumented code, the original line it comes from.

Built after code generation by walking the original ``ast`` and the ``ast`` of the
output in lockstep: every original statement is in the output, in the same nesting
and order, next to statements the transformer inserted (recognised by the reserved
``_memscope_`` / ``__memscope_c__`` names). Inserted lines map to the header line of
the statement that owns them (the ``def``, ``class``, ``except``), which always runs
when they run, so coverage-style tools never see a line executed that was not.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from types import CodeType
from typing import cast

__all__ = [
    "build_line_map", "col_deltas", "compile_with_line_map", "remap_tree", "split_lines",
]

_RESERVED = ("_memscope_", "__memscope_c__")  # (the latter: code of TRANSFORM_VERSION < 11)
_NL = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """Lines as Python counts them (only CR, LF, CRLF end a line, unlike splitlines)."""
    parts = _NL.split(text)
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def _reserved(name: str) -> bool:
    return name.startswith(_RESERVED)


def _is_hook_call(v: ast.expr) -> bool:
    """``_memscope_.meth(...)``, or behind its inline guard: ``guard and _memscope_...``."""
    if isinstance(v, ast.BoolOp) and isinstance(v.op, ast.And) and len(v.values) == 2:
        g = v.values[0]
        if isinstance(g, ast.Subscript):
            g = g.value
        if not (isinstance(g, ast.Name) and _reserved(g.id)):
            return False
        v = v.values[1]
    if isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute):
        f = v.func.value
        return isinstance(f, ast.Name) and f.id == "_memscope_"
    return False


def _is_inserted(s: ast.stmt) -> bool:
    if isinstance(s, ast.Expr):
        return _is_hook_call(s.value)
    if isinstance(s, ast.Assign):
        t = s.targets[0]
        if isinstance(t, ast.Attribute):  # `_memscope_.m = _memscope_.enter(0, -1)`
            return isinstance(t.value, ast.Name) and _reserved(t.value.id)
        if isinstance(t, ast.Tuple):
            return all(isinstance(e, ast.Name) and _reserved(e.id) for e in t.elts)
        return isinstance(t, ast.Name) and _reserved(t.id)
    if isinstance(s, ast.ImportFrom):
        return any(a.asname is not None and _reserved(a.asname) for a in s.names)
    if isinstance(s, ast.Delete):
        return all(isinstance(t, ast.Name) and _reserved(t.id) for t in s.targets)
    if isinstance(s, ast.Global):  # a class body's `global _memscope_, _memscope_g`
        return all(_reserved(n) for n in s.names)
    if isinstance(s, ast.Try) and s.handlers and not s.finalbody and not s.orelse:
        # `try: tok = enter(...)` / `except RecursionError: tok = None`
        return all(_is_inserted(b) for b in s.body) and all(
            _is_inserted(b) for h in s.handlers for b in h.body)
    return False


def _is_our_try(s: ast.stmt) -> bool:
    return (isinstance(s, ast.Try) and not s.handlers and not s.orelse and bool(s.finalbody)
            and all(_is_inserted(f) for f in s.finalbody))


class _Mapper:
    def __init__(self, n_out: int) -> None:
        self.anchor: dict[int, int] = {}
        self.owned: dict[int, int] = {}

    def span(self, o: ast.AST, n: ast.AST) -> None:
        a0, a1 = o.lineno, o.end_lineno or o.lineno  # type: ignore[attr-defined]
        b0, b1 = n.lineno, n.end_lineno or n.lineno  # type: ignore[attr-defined]
        for k in range(min(a1 - a0, b1 - b0) + 1):
            self.anchor.setdefault(b0 + k, a0 + k)

    def own(self, n: ast.AST, owner: int) -> None:
        for ln in range(n.lineno, (n.end_lineno or n.lineno) + 1):  # type: ignore[attr-defined]
            self.owned.setdefault(ln, owner)

    def items(self, body: list[ast.stmt]) -> Iterator[tuple[bool, ast.stmt]]:
        """(is_original, stmt), our try/finally wrappers flattened away."""
        for s in body:
            if _is_our_try(s):
                assert isinstance(s, ast.Try)
                yield False, s
                yield from self.items(s.body)
                for f in s.finalbody:
                    yield False, f
            else:
                yield not _is_inserted(s), s

    def walk(self, ob: list[ast.stmt], nb: list[ast.stmt], owner: int) -> None:
        it = iter(ob)
        prev: ast.stmt | None = None
        lead: list[ast.stmt] = []  # a scope's `try: tok = enter(...)` and its `try:`
        for orig, n in self.items(nb):
            if orig:
                o = next(it, None)
                if o is None:
                    return
                for t in lead:  # on the first statement's line, as its line event is
                    if _is_our_try(t):
                        self.owned.setdefault(t.lineno, o.lineno)
                    else:
                        self.own(t, o.lineno)
                lead = []
                self.stmt(o, n)
                prev = o
            elif isinstance(n, ast.Try) and (lead or bool(n.handlers)):
                lead.append(n)
            else:
                own = owner
                if isinstance(prev, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    own = prev.lineno  # the name binding right after a def/class
                if isinstance(n, ast.Try):
                    self.owned.setdefault(n.lineno, own)
                else:
                    self.own(n, own)

    def stmt(self, o: ast.stmt, n: ast.stmt) -> None:
        body = getattr(o, "body", None)
        if not isinstance(body, list) or not body:
            self.span(o, n)
            return
        for d_o, d_n in zip(getattr(o, "decorator_list", []),
                            getattr(n, "decorator_list", []), strict=False):
            self.span(d_o, d_n)
        nbody = getattr(n, "body", [])
        # header lines: up to the line before the body (same count in the output)
        self.anchor.setdefault(n.lineno, o.lineno)
        first_n = [s for orig, s in self.items(nbody) if orig][:1]
        if first_n and body[0].lineno > o.lineno:
            extra = min(body[0].lineno - o.lineno, first_n[0].lineno - n.lineno)
            for k in range(1, extra):
                self.anchor.setdefault(n.lineno + k, o.lineno + k)
        self.walk(body, nbody, o.lineno)
        for fld in ("orelse", "finalbody"):
            ob, nb = getattr(o, fld, None), getattr(n, fld, None)
            if ob and nb:
                self.walk(ob, nb, o.lineno)
        for h_o, h_n in zip(getattr(o, "handlers", []), getattr(n, "handlers", []), strict=False):
            self.anchor.setdefault(h_n.lineno, h_o.lineno)
            self.walk(h_o.body, h_n.body, h_o.lineno)
        for c_o, c_n in zip(getattr(o, "cases", []), getattr(n, "cases", []), strict=False):
            self.span(c_o.pattern, c_n.pattern)
            self.walk(c_o.body, c_n.body, c_o.pattern.lineno)


def build_line_map(orig: ast.Module, code: str) -> list[int]:
    """``line_map[i]`` is the original line (1-based) of output line ``i + 1``."""
    n_out = len(split_lines(code))
    n_orig = max([getattr(orig.body[-1], "end_lineno", 1) or 1] if orig.body else [1])
    m = _Mapper(n_out)
    m.walk(orig.body, ast.parse(code).body, 1)
    out: list[int] = []
    last_out, last_orig = 0, 0
    anchors = sorted(m.anchor.items())
    nxt = 0
    for ln in range(1, n_out + 1):
        while nxt < len(anchors) and anchors[nxt][0] < ln:
            nxt += 1
        a = m.anchor.get(ln)
        if a is not None:
            last_out, last_orig = ln, a
            out.append(a)
            continue
        o = m.owned.get(ln)
        if o is not None:
            out.append(o)
            continue
        guess = last_orig + (ln - last_out) if last_orig else ln
        if nxt < len(anchors):
            guess = min(guess, max(anchors[nxt][1] - 1, last_orig, 1))
        out.append(max(1, min(guess, max(n_orig, guess if not anchors else n_orig))))
    return out


def col_deltas(orig: str, code: str, line_map: list[int]) -> dict[int, tuple[int, int]]:
    """Output line -> (columns the original text moved right, column where it starts).

    The transformer only adds indentation (``try:`` blocks) and ``...; `` prefixes in
    front of the user's text on a line, so the original text is found right after the
    indentation or after a ``;``.
    """
    orig_lines = split_lines(orig)
    out: dict[int, tuple[int, int]] = {}
    n = len(orig_lines)
    for i, o in enumerate(split_lines(code), 1):
        ln = line_map[i - 1] if i <= len(line_map) else 0
        if not 0 < ln <= n:
            continue
        src = orig_lines[ln - 1]
        s = src.lstrip()
        if not s:
            continue
        ind = len(src) - len(s)
        pos = o.find(s)
        while pos >= 0:
            before = o[:pos].rstrip()
            if not before or before.endswith(";"):
                break
            pos = o.find(s, pos + 1)
        if pos >= 0 and pos != ind:
            out[i] = (pos - ind, pos)
    return out


def remap_tree(tree: ast.AST, line_map: list[int],
               deltas: dict[int, tuple[int, int]] | None = None) -> ast.AST:
    """Give every node of the instrumented code's ast its original line numbers (and
    columns, with ``deltas`` from :func:`col_deltas`)."""
    n = len(line_map)
    d = deltas or {}
    for node in ast.walk(tree):
        ln = getattr(node, "lineno", None)
        if ln is not None and d:
            dc = d.get(ln)
            if dc and getattr(node, "col_offset", -1) >= dc[1]:
                node.col_offset -= dc[0]  # type: ignore[attr-defined]
            end = getattr(node, "end_lineno", None)
            de = d.get(end) if end is not None else None
            if de and (getattr(node, "end_col_offset", None) or -1) >= de[1]:
                node.end_col_offset -= de[0]  # type: ignore[attr-defined]
        if ln is not None and 0 < ln <= n:
            node.lineno = line_map[ln - 1]  # type: ignore[attr-defined]
            end = getattr(node, "end_lineno", None)
            if end is not None and 0 < end <= n:
                node.end_lineno = max(line_map[end - 1], node.lineno)  # type: ignore
    return tree


def compile_with_line_map(code: str, line_map: list[int], filename: str,
                          dont_inherit: bool = True,
                          deltas: dict[int, tuple[int, int]] | None = None) -> CodeType:
    """Compile instrumented code so tracebacks, ``co_firstlineno``, pdb, coverage and
    ``inspect.getsource`` see the ORIGINAL line numbers (for the import hook); pass
    ``Result.col_delta`` as ``deltas`` to restore the original columns too."""
    tree = remap_tree(ast.parse(code, filename), line_map, deltas)
    return compile(cast(ast.Module, tree), filename, "exec", dont_inherit=dont_inherit)
