"""The import hook: instrument modules of chosen packages as they are imported.

``install_import_hook(["mypkg"])`` puts one :class:`MemscopeFinder` at the front of
``sys.meta_path``. For a module it may instrument, the finder asks the finders *after*
it for the spec (so editable installs, redirecting finders, namespace packages and
pytest's assertion rewriter keep working) and, when the spec is for Python source
loaded by a ``SourceFileLoader``, swaps in :class:`InstrumentingLoader`. Zip, frozen,
extension and sourceless modules, and modules whose loader is anything else (pytest's
assertion rewriter for test files, for one), load as usual.

Which modules: a package matches exactly or by dotted prefix (``"a.b"`` matches
``a.b`` and ``a.b.c``, not ``a.bc``). memscope itself (and libcst) is never
instrumented; the standard library and site-packages only when named explicitly.

Line mapping: the transformer returns instrumented source plus ``line_map`` (the
original line of every output line). The loader parses the instrumented source with
``ast``, rewrites every node's location to the original file's line and column, and
compiles that tree with the original file name. The code object therefore carries
original positions everywhere (``co_firstlineno``, ``co_lines``, ``co_positions``), so
tracebacks, warnings, ``inspect.getsource``, ``linecache``, pdb and coverage all show
the original file, line and column, with no run-time cost and nothing to patch.
Columns: a node on a line whose text the transformer did not change keeps its column;
on a changed line the node's own text is looked up in the original line (nodes the
transformer added inside user expressions take the span of the original line).
Statements the transformer added (scope enter, binds after an assignment, the module
header) take the position of the user statement next to them, so they make no line
events of their own: pdb steps and coverage counts the user's lines. A scope's end (the
``finally`` wrapping it) is on the line that returns; when an exception leaves it, on
the raising line (see ``_injected_nodes``, ``linemap.place_scope_exits``,
``linemap.reraise_scope_exits_310``).
"""

from __future__ import annotations

import _thread
import importlib.machinery
import os
import site
import sys
import warnings
from _blake2 import blake2b  # hashlib's own; importing hashlib loads OpenSSL (~6 ms)
from types import CodeType, ModuleType

from memscope import _monitor, _own, _swap
from memscope.sysdirs import library_dirs
from memscope_instrument import cache, prologue

# ``ast`` is imported by the functions that compile instrumented code (a cache miss,
# which imports libcst as well), not here: a run whose code is cached never needs it.
TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    import ast
    from collections.abc import Iterable, Sequence
    from typing import Any

NEVER = frozenset(("memscope", "memscope_instrument", "libcst", "_pytest", "pytest", "pluggy"))
ON_ERROR = ("raise", "fallback")


class InstrumentationError(Exception):
    """The transformer failed on a module (not the user's syntax error): names the
    file, line, column and node, and how to import the module uninstrumented."""

    def __init__(self, filename: str, line: int, col: int, detail: str) -> None:
        self.filename = filename
        self.line = line
        self.col = col
        self.detail = detail
        super().__init__(
            f"memscope could not instrument {filename}, line {line}, col {col}: {detail}\n"
            "  (this is a memscope bug; please report it. To import such modules "
            "uninstrumented instead, pass on_error='fallback' to install_import_hook, "
            "use `memscope run --on-error fallback`, or set MEMSCOPE_HOOK_ON_ERROR=fallback)"
        )


# ---- which modules ------------------------------------------------------------------


def _norm(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


_system_dirs_cache: tuple[str, ...] | None = None


def system_dirs() -> tuple[str, ...]:
    """The standard library and site-packages directories (normalized)."""
    global _system_dirs_cache
    if _system_dirs_cache is None:
        dirs = {_norm(p) for p in library_dirs()}
        try:
            dirs.add(_norm(site.getusersitepackages()))
        except Exception:
            pass
        _system_dirs_cache = tuple(sorted(dirs))
    return _system_dirs_cache


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def is_system_path(path: str) -> bool:
    """Whether ``path`` is in the standard library or any site-packages."""
    p = _norm(path)
    parts = p.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    return any(_under(p, d) for d in system_dirs())


def name_matches(fullname: str, packages: Iterable[str]) -> bool:
    """Exact or dotted-prefix match: ``a.b`` matches ``a.b`` and ``a.b.c``, not ``a.bc``.

    Runs for every import while a hook is installed: the name's own dotted prefixes
    are looked up in a set (one to three lookups), not each package tried in turn."""
    names = packages if isinstance(packages, frozenset) else frozenset(packages)
    if fullname in names:
        return True
    dot = fullname.find(".")
    while dot != -1:
        if fullname[:dot] in names:
            return True
        dot = fullname.find(".", dot + 1)
    return False


def _normalize_packages(packages: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if packages is None:
        return None
    if isinstance(packages, str):
        packages = [packages]
    out = []
    for p in packages:
        if not isinstance(p, str) or not p.strip(".").strip():
            raise ValueError(f"package names must be non-empty strings, got {p!r}")
        out.append(p.strip())
    return tuple(out)


class Rule:
    """One installation's choice of modules and how to instrument them (a plain class,
    not a dataclass: ``dataclasses`` is a cost of ``memscope run``'s start-up)."""

    __slots__ = ("_exclude", "_packages", "exclude", "instrumented", "on_error", "options",
                 "packages", "roots", "use_cache")

    def __init__(
        self,
        packages: tuple[str, ...] | None,  # None with no roots: every non-system module
        roots: tuple[str, ...] = (),  # directories whose (non-system) modules match
        exclude: tuple[str, ...] = (),
        options: Any = None,  # options.Options
        on_error: str = "fallback",
        use_cache: bool = True,
    ) -> None:
        self.packages = packages
        self.roots = roots
        self.exclude = exclude
        self._packages = frozenset(packages or ())  # for name_matches
        self._exclude = frozenset(exclude)
        self.options = options
        self.on_error = on_error
        self.use_cache = use_cache
        self.instrumented: list[str] = []  # module names, in order

    def __repr__(self) -> str:
        return f"<memscope Rule packages={self.packages!r} roots={self.roots!r}>"

    def wants_name(self, fullname: str) -> bool | None:
        """True/False when the name alone decides; None when the file decides."""
        if name_matches(fullname, NEVER) or name_matches(fullname, self._exclude):
            return False
        if self.packages and name_matches(fullname, self._packages):
            return True
        if self.packages is None or self.roots:
            return None
        return False

    def wants_file(self, fullname: str, origin: str) -> bool:
        decided = self.wants_name(fullname)
        if decided is not None:
            return decided
        if is_system_path(origin):
            return False
        if self.roots:
            p = _norm(origin)
            return any(_under(p, r) for r in self.roots)
        return self.packages is None


# ---- compiling with original positions ------------------------------------------------


def _find_col(seg: bytes, orig: bytes, near: int) -> int:
    """Offset of ``seg`` in ``orig`` nearest to ``near`` (-1 when absent)."""
    if not seg:
        return -1
    best = -1
    start = orig.find(seg)
    while start != -1:
        if best == -1 or abs(start - near) < abs(best - near):
            best = start
        start = orig.find(seg, start + 1)
    return best


def remap_tree(
    tree: ast.AST, out_lines: Sequence[bytes], orig_lines: Sequence[bytes], line_map: list[int]
) -> None:
    """Rewrite every node's location in ``tree`` (parsed from the instrumented source)
    to the original source's line and column, through ``line_map``."""
    import ast

    n_map = len(line_map)
    n_orig = max(1, len(orig_lines))

    def mline(ln: int) -> int:
        if n_map == 0:
            return min(max(ln, 1), n_orig)
        o = line_map[min(max(ln, 1), n_map) - 1]
        return min(max(o, 1), n_orig)

    def text(lines: Sequence[bytes], ln: int) -> bytes:
        return lines[ln - 1] if 0 < ln <= len(lines) else b""

    blank, lead, heads = _injected_nodes(tree)
    for node in ast.walk(tree):
        ln = getattr(node, "lineno", None)
        if ln is None:
            continue
        if id(node) in blank:
            node.lineno = node.end_lineno = -1  # type: ignore[attr-defined]
            node.col_offset = node.end_col_offset = -1  # type: ignore[attr-defined]
            continue
        col = node.col_offset  # type: ignore[attr-defined]
        eln = getattr(node, "end_lineno", None) or ln
        ecol = getattr(node, "end_col_offset", None)
        out = text(out_lines, ln)
        nl = mline(ln)
        orig = text(orig_lines, nl)
        if out == orig:
            ncol = col
        else:
            seg = out[col : ecol if (eln == ln and ecol is not None) else len(out)].rstrip()
            found = _find_col(seg, orig, col)
            if found == -1:
                ncol = len(orig) - len(orig.lstrip())  # added code: the statement's span
                if eln == ln:
                    ecol = len(orig.rstrip())
            else:
                ncol = found
                if eln == ln:
                    ecol = found + len(seg)
        neln = mline(eln)
        if eln != ln:
            eout = text(out_lines, eln)
            eorig = text(orig_lines, neln)
            if eout != eorig and ecol is not None:
                seg = eout[:ecol].strip()
                found = _find_col(seg, eorig, ecol - len(seg))
                ecol = found + len(seg) if found != -1 else len(eorig.rstrip())
        if neln < nl:
            neln = nl
        if ecol is None:
            ecol = ncol
        if neln == nl and ecol < ncol:
            ecol = max(ncol, len(orig.rstrip()))
        node.lineno = nl  # type: ignore[attr-defined]
        node.col_offset = ncol  # type: ignore[attr-defined]
        if hasattr(node, "end_lineno"):
            node.end_lineno = neln
            node.end_col_offset = ecol  # type: ignore[attr-defined]
    for st, target in lead:  # in source order: a copied position is already final
        pos = (target.lineno, target.col_offset, target.lineno, target.col_offset)
        for n in ast.walk(st):
            if hasattr(n, "lineno"):
                n.lineno, n.col_offset, n.end_lineno, n.end_col_offset = pos  # type: ignore[attr-defined]
    for st, target in heads:  # the wrapper alone, not its body
        st.lineno, st.col_offset = target.lineno, target.col_offset
        st.end_lineno, st.end_col_offset = target.lineno, target.col_offset


# how CPython places instructions of no position (measured: docs/transformer.md, "Line
# events"): up to 3.11 the line before them, the re-raise of a finally its last
# statement's (ours: none, the re-raise goes back to the raising instruction:
# linemap.place_scope_exits, reraise_scope_exits_310), but a block several paths join
# keeps none (3.11: its line traced again after it); 3.12+ leaves more with no line at
# all (a finally's exception handler, a return event whose f_lineno is None, which pdb
# cannot show), so from 3.11 our instructions get their lines after compiling
# (linemap.place_scope_exits)
_FINALLY_INHERITS = sys.version_info < (3, 12)
_SETUP_IS_AN_INSTRUCTION = sys.version_info < (3, 11)  # (3.11+: exception tables)
_LINE_AFTER_A_CALL_AT_A_JOIN = sys.version_info[:2] == (3, 12)  # (see _unjoin_enters)


def _injected_nodes(tree: ast.AST) -> tuple[
        set[int], list[tuple[ast.stmt, ast.stmt]], list[tuple[ast.stmt, ast.stmt]]]:
    """Where the statements the instrumenter added go: ``(blank, copy, heads)``: nodes
    compiled with no position, pairs of added statement and the user statement whose
    position it takes, and (3.10) pairs of our ``try`` wrapper and the user statement
    whose position the wrapper node alone takes (its body keeps its own).

    Added statements must make no line event of their own (issue 17: settrace and
    sys.monitoring line events of instrumented code must be plain code's: pdb, coverage,
    CPython's PEP 626 tests). So:

    * added statements before a body's first user statement (a scope's ``enter``, a
      class body's ``global``, a loop's or ``with``'s read-backs) take that statement's
      position: the line event there is the one plain Python makes;
    * any other added statement (a read-back after a statement, a ``del``'s unbind) is
      compiled at line -1, no position of its own: CPython gives such an instruction
      the location of the one before it in its basic block, so it runs "on" the line
      just run, with no event;
    * the ``try`` wrapping a scope has no position (3.10: the position of the body's
      first statement, whose line its ``SETUP_FINALLY`` instruction then continues);
      its ``finally`` (the scope's exit; an ``except ... as`` body's unbind too) is
      compiled as ``_memscope_s = <exit>`` at -1 (3.12+: but for the statement itself,
      on the ``def`` (``except``) line): a ``return`` runs it on the return's line and
      the return is shown there, as plain Python shows it; leaving by an exception,
      the handler re-raises at the raising instruction, where the frame then ends, as
      a ``with`` block's exit does (``linemap.reraise_scope_exits_310`` on 3.10,
      ``place_scope_exits`` from 3.11; up to 3.11 the handler has no line, on 3.12+
      the ``def`` line where it jumps). Up to 3.11 the statement was on the
      ``def`` line, where its re-raise then left the frame (issue 17: CPython's PEP 626
      tests), and a module ending in an ``except ... as`` body ended on the
      ``except`` line (its implicit return took the last statement's position).
      ``_tail_returns`` ends the paths that fall off an ``if``/``try``/``match`` at
      the end of a function with a ``return``, so each path's exit is on its own last
      line.

    Before, the recognisers here predated the inline guards and missed most added
    statements (3.12: an extra line event at a function's first line), and the
    ``finally`` was on the ``def`` line: an extra line event at every return, the
    return shown on the ``def`` line (3.12 and 3.13 until place_scope_exits). The
    recognisers are the transformer's own.
    """
    import ast

    from memscope_instrument.linemap import _is_inserted, _is_our_try

    blank: set[int] = set()
    copy: list[tuple[ast.stmt, ast.stmt]] = []
    heads: list[tuple[ast.stmt, ast.stmt]] = []

    def first_user(body: list[ast.stmt]) -> ast.stmt | None:
        for st in body:
            if _is_our_try(st):
                inner = first_user(st.body)  # type: ignore[attr-defined]
                if inner is not None:
                    return inner
            elif not _is_inserted(st):
                return st
        return None

    # where a finally of ours stores what its call returned: a function's own scope exit
    # into the function's token local (its last use; a local store is the cheapest);
    # every other one (a module's or class body's exit, an `except ... as` body's unbind
    # anywhere) on the handle, `_memscope_.x`: a name bound in a module or class body is
    # the program's to see (enum's _EnumDict makes it a member), and in a function an
    # `except ... as` body's unbind would overwrite the token the rest of the function
    # binds with and exits by (or show in its locals())
    function_tries = {id(st) for n in ast.walk(tree)
                      if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                      for st in n.body if _is_our_try(st)}
    for node in ast.walk(tree):
        for attr in ("body", "orelse", "finalbody"):
            body = getattr(node, attr, None)
            if not isinstance(body, list) or not body or not isinstance(body[0], ast.stmt):
                continue
            if attr == "finalbody" and _is_our_try(node):  # type: ignore[arg-type]
                for k, f in enumerate(body):
                    for n in ast.walk(f):
                        blank.add(id(n))
                    if isinstance(f, ast.Expr):  # its POP_TOP would carry the def line
                        name: ast.expr = ast.Name("_memscope_s", ast.Store())
                        if id(node) not in function_tries:  # (a class body: global there)
                            name = ast.Attribute(ast.Name("_memscope_", ast.Load()), "x",
                                                 ast.Store())
                        name = ast.fix_missing_locations(ast.copy_location(name, f))
                        a = ast.copy_location(ast.Assign([name], f.value), f)
                        for n in ast.walk(a.targets[0]):
                            blank.add(id(n))
                        body[k] = f = a
                    if not _FINALLY_INHERITS:
                        blank.discard(id(f))
                continue
            first = first_user(body)
            # a scope's enter takes the position of its first statement: the frame's
            # first line event comes before it calls memscope (pdb's first stop is the
            # user's line, not memscope's enter; at -1, 3.11+ would also trace the def
            # line); a loop's, `with`'s or handler's read-backs: at -1, on the header's
            leading = first is not None and isinstance(
                node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            for st in body:
                if _is_our_try(st):
                    # the wrapper; its body is the user's. On 3.10 its SETUP_FINALLY
                    # is an instruction: of no line, the body's first line (just
                    # traced by the enter before it) was traced again after it
                    inner = first_user(st.body)
                    if _SETUP_IS_AN_INSTRUCTION and inner is not None:
                        heads.append((st, inner))
                    else:
                        blank.add(id(st))
                    leading = False
                elif _is_inserted(st):
                    if leading and first is not None:
                        copy.append((st, first))
                    else:
                        for n in ast.walk(st):
                            blank.add(id(n))
                else:
                    leading = False
    return blank, copy, heads


def _split(data: bytes) -> list[bytes]:
    return data.splitlines()


def compile_mapped(code: str, line_map: list[int], source: bytes | str, filename: str) -> CodeType:
    """Compile instrumented ``code`` so that its positions are those of ``source``."""
    import ast

    tree = ast.parse(code, filename, "exec")
    orig_text = _decode(source) if isinstance(source, bytes) else source
    remap_tree(tree, _split(code.encode("utf-8")), _split(orig_text.encode("utf-8")), line_map)
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    _tail_returns(funcs)
    _preset_tokens(funcs)
    if _LINE_AFTER_A_CALL_AT_A_JOIN:
        _unjoin_enters(funcs)
    compiled = compile(tree, filename, "exec", dont_inherit=True, optimize=-1)
    if sys.version_info >= (3, 11):
        from memscope_instrument.linemap import place_scope_exits

        compiled = place_scope_exits(compiled)
    else:
        from memscope_instrument.linemap import reraise_scope_exits_310

        compiled = reraise_scope_exits_310(compiled)
    return compiled


def _is_enter_try(st: ast.stmt) -> bool:
    """A scope's ``try: tok = _memscope_e[S] and _memscope_.enter(...)`` (``except
    RecursionError: tok = None``)."""
    import ast

    from memscope_instrument.linemap import _reserved

    if not (isinstance(st, ast.Try) and len(st.body) == 1 and st.handlers
            and isinstance(st.body[0], ast.Assign)):
        return False
    a = st.body[0]
    v = a.value
    return (all(isinstance(t, ast.Name) and _reserved(t.id) for t in a.targets)
            and isinstance(v, ast.BoolOp) and isinstance(v.op, ast.And)
            and len(v.values) == 2 and isinstance(v.values[0], ast.Subscript)
            and isinstance(v.values[1], ast.Call)
            and isinstance(v.values[1].func, ast.Attribute)
            and v.values[1].func.attr == "enter")


def _preset_tokens(funcs: list[Any]) -> None:
    """A function's scope token is set to None (``tok = None``, compiled with no
    position) before its ``enter``, which is on the first line: a debugger's jump from
    that line (``f_lineno`` set in its line event, pdb's ``jump``) skips the enter, and
    the token was then unbound (``UnboundLocalError`` at the next read-back or at the
    exit; CPython's ``test_sys_settrace`` jump tests). With None, the binds after the
    jump record nothing (``bind`` ignores a None token) and the exit is skipped, as
    for a scope memscope had switched off. It makes no line event (no position, no
    call): 3.11+ give it the line of the ``RESUME`` before it, 3.10 none."""
    import ast

    for node in funcs:  # the module's functions (ast.FunctionDef, AsyncFunctionDef)
        for k, st in enumerate(node.body[:2]):
            if not _is_enter_try(st):
                continue
            targets = st.body[0].targets
            pre = ast.Assign([ast.Name(t.id, ast.Store()) for t in targets],
                             ast.Constant(None))
            for n in ast.walk(pre):
                n.lineno = n.end_lineno = -1  # type: ignore[attr-defined]
                n.col_offset = n.end_col_offset = -1  # type: ignore[attr-defined]
            node.body.insert(k, pre)
            break


def _unjoin_enters(funcs: list[Any]) -> None:
    """3.12: a scope's ``tok = _memscope_e[S] and _memscope_.enter(...)`` becomes
    ``tok = _memscope_e[S]`` / ``if tok: tok = _memscope_.enter(...)`` (same values,
    same calls), so the instruction the Python ``enter`` returns to (the C hot path's
    ``enter`` is no Python function) is not the guard's join. 3.12 makes a line event
    at a jump target reached on the line just traced when the instruction before it
    was a call that returned from a Python frame (its ``prev_instr`` is then the call's
    last inline cache, which has no line): the function's first line was traced
    twice (CPython's ``test_patma.TestTracing``, 6 failures without the C hot path).
    Positions are the statement's (the first user statement's, hook._injected_nodes)."""
    import ast

    from memscope_instrument.linemap import _reserved

    for node in funcs:  # the module's functions (ast.FunctionDef, AsyncFunctionDef)
        for st in node.body[:3]:
            if not (isinstance(st, ast.Try) and len(st.body) == 1 and st.handlers
                    and isinstance(st.body[0], ast.Assign)):
                continue
            a = st.body[0]
            v = a.value
            t = a.targets[0]
            if not (isinstance(t, ast.Name) and _reserved(t.id)
                    and isinstance(v, ast.BoolOp) and isinstance(v.op, ast.And)
                    and len(v.values) == 2 and isinstance(v.values[0], ast.Subscript)
                    and isinstance(v.values[1], ast.Call)
                    and isinstance(v.values[1].func, ast.Attribute)
                    and v.values[1].func.attr == "enter"):
                continue
            guard = ast.copy_location(ast.Assign(a.targets, v.values[0]), a)
            call = ast.copy_location(
                ast.Assign([ast.copy_location(ast.Name(n.id, ast.Store()), n)
                            for n in a.targets if isinstance(n, ast.Name)], v.values[1]), a)
            if len(call.targets) != len(a.targets):
                continue
            test = ast.copy_location(ast.Name(t.id, ast.Load()), t)
            st.body = [guard, ast.copy_location(ast.If(test, [call], []), a)]


def _tail_returns(funcs: list[Any]) -> None:
    """End every path that falls off the end of a function wrapped in a scope ``try``
    of ours with a bare ``return``, where an ``if``, ``try`` or ``match`` ends the body:
    its paths no longer join before the scope's exit (the ``finally``), so CPython
    compiles the exit once per path, on the line that path ran last, as it does for
    plain code (whose exits of no line it copies per path). Falling off the end and
    ``return`` do the same; no ``return`` goes in a ``finally`` or an ``except*`` block
    (Python rejects it there), a ``try`` with ``else`` gets it in the ``else``. Each
    ``return`` takes the position of the statement before it (where that path's last
    line event was: no event of its own); with no position at all, 3.13.0's compiler
    rejects some of them ("Invalid CFG, inconsistent stackdepth", a ``return`` in an
    ``except ... as`` body). Joined, the exit took one line for every path: a function
    ending in ``if``/``else`` showed its return on one branch's line whichever ran."""
    import ast

    from memscope_instrument.linemap import _is_our_try

    def ret(like: ast.AST) -> ast.Return:
        r = ast.Return(None)
        r.lineno = r.end_lineno = like.lineno  # type: ignore[attr-defined]
        r.col_offset = like.col_offset  # type: ignore[attr-defined]
        r.end_col_offset = like.col_offset + 1  # type: ignore[attr-defined]
        return r

    def tails(body: list[ast.stmt]) -> None:
        last = body[-1]
        if isinstance(last, ast.If):
            tails(last.body)
            if last.orelse:
                tails(last.orelse)
            else:
                last.orelse = [ret(last)]
        elif isinstance(last, ast.Try) and _is_our_try(last):
            tails(last.body)  # an `except ... as` body's unbind: in its `finally`
        elif isinstance(last, ast.Try):
            tails(last.orelse or last.body)
            for h in last.handlers:
                tails(h.body)
        elif isinstance(last, ast.Match):
            for c in last.cases:
                tails(c.body)
            body.append(ret(last.cases[-1].pattern))  # no case matched
        elif not isinstance(last, (ast.Return, ast.Raise)):
            like = next((st for st in reversed(body) if st.lineno > 0), None)
            if like is not None:
                body.append(ret(like))

    for node in funcs:  # the module's functions (ast.FunctionDef, AsyncFunctionDef)
        for st in node.body:
            if isinstance(st, ast.Try) and _is_our_try(st) and isinstance(
                    st.body[-1], (ast.If, ast.Try, ast.Match)):
                tails(st.body)


def _decode(src: bytes) -> str:
    """Source bytes decoded as Python would (coding cookie, BOM), newlines kept."""
    import io
    import tokenize

    try:
        enc, _ = tokenize.detect_encoding(io.BytesIO(src).readline)
        return src.decode(enc)
    except (SyntaxError, LookupError, UnicodeDecodeError):
        return src.decode("utf-8", "replace")


# ---- instrumenting one file -------------------------------------------------------------


def _transform() -> Any:
    from memscope_instrument import transform

    return transform


def make_options(mode: str = "fast", **kwargs: Any) -> Any:
    from memscope_instrument.options import Options  # not transform: no libcst import

    return Options(mode=mode, **kwargs)


def cache_digest(options: Any, module: str) -> str:
    h = blake2b(digest_size=12)
    h.update(str(options.digest()).encode())
    h.update(b"\0")
    h.update(module.encode())
    return h.hexdigest()


_fallback_warned: set[str] = set()
stats = {"compiled": 0, "cache_hits": 0, "fallbacks": 0}


def _plain_compile(data: bytes, path: str) -> CodeType:
    loader = importlib.machinery.SourceFileLoader("__memscope_plain__", path)
    return loader.source_to_code(data, path)


def instrument_code(
    data: bytes, path: str, module: str, options: Any, on_error: str = "fallback"
) -> tuple[CodeType, bool]:
    """Instrumented code of ``data`` (the source bytes of ``path``), positions mapped.

    Returns ``(code, instrumented)``. A syntax error in the source surfaces exactly as
    the plain compile raises it; a failure of the transformer itself raises
    :class:`InstrumentationError` with ``on_error="raise"``; with ``"fallback"`` (the
    default) it is said once on stderr and the plain code is returned.
    """
    # instrumenting is memscope's own work: what stays resident of it (the first time,
    # the transformer's modules) is memscope's own memory, and what it took meanwhile
    # (a module's syntax tree: 40 MB at its peak for pydoc's 2,800 lines) is not the
    # program's peak
    _own.begin()
    _monitor.begin_own_work()
    transform = _transform()
    try:
        result = transform.instrument_source(data, path, module, options)
        if not result.changed and not result.sites and not result.scopes:
            return _plain_compile(data, path), False
        code = compile_mapped(result.code, list(result.line_map), data, path)
        stats["compiled"] += 1
        return code, True
    except Exception as exc:
        # the user's own syntax error: raise it exactly as a plain import does
        plain = _plain_compile(data, path)
        line = int(getattr(exc, "line", 0) or getattr(exc, "lineno", 0) or 0)
        col = int(getattr(exc, "col", 0) or getattr(exc, "offset", 0) or 0)
        detail = str(getattr(exc, "message", None) or exc)
        if not isinstance(exc, transform.InstrumentError):
            detail = f"{type(exc).__name__}: {detail}"
        node = _source_line(data, line)
        mode = os.environ.get("MEMSCOPE_HOOK_ON_ERROR", on_error)
        if mode != "fallback":
            if node:
                detail += f"\n    at: {node}"
            raise InstrumentationError(path, line, col, detail) from exc
        stats["fallbacks"] += 1
        _said_fallback(path, f"could not instrument line {line}, col {col}: "
                       f"{detail.splitlines()[0] if detail else '?'}")
        return plain, False
    finally:
        _monitor.end_own_work()
        _own.end()


def _said_fallback(path: str, reason: str) -> None:
    """A module imported uninstrumented (``on_error="fallback"``, the default): said once
    per file on stderr, not through ``warnings`` (a program's ``-W error`` or pytest's
    ``filterwarnings = error`` turned that warning back into the import failure), and
    counted in the run's capture as an ERROR row ('instrument') the reports show."""
    if path in _fallback_warned:
        return
    _fallback_warned.add(path)
    msg = f"{path}: imported uninstrumented: {reason}"
    try:
        sys.stderr.write(f"memscope: {msg} (a memscope bug; please report it)\n")
        sys.stderr.flush()
    except Exception:  # no stderr (closed, or None under pythonw): the row still says it
        pass
    try:
        from memscope import _hooks
        from memscope.events import ERROR

        _hooks._buf.append((ERROR, _hooks._perf(), "instrument", msg[:300]))
    except Exception:
        pass


def _source_line(data: bytes, line: int) -> str:
    if line <= 0:
        return ""
    lines = _decode(data).splitlines()
    return lines[line - 1].strip() if line <= len(lines) else ""


def load_code(
    path: str, module: str, options: Any, on_error: str = "fallback", use_cache: bool = True
) -> CodeType:
    """Instrumented code for the file ``path`` imported as ``module``, through the cache."""
    digest = cache_digest(options, module)
    if use_cache:
        hit = cache.read(path, digest)
        if hit is not None:
            stats["cache_hits"] += 1
            _swap.note_source(path, hit[1])
            return hit[0]
    stamp = cache.source_stamp(path)
    with open(path, "rb") as f:
        data = f.read()
    code, instrumented = instrument_code(data, path, module, options, on_error)
    if instrumented:
        if len(data) == (stamp or (0, -1))[1]:  # read as stamped: plain code may stand in
            _swap.note_source(path, stamp)
        if use_cache:
            cache.write(path, digest, code, stamp)
    return code


# ---- finder and loader ---------------------------------------------------------------


class InstrumentingLoader(importlib.machinery.SourceFileLoader):
    """A ``SourceFileLoader`` whose code is instrumented (and cached as such)."""

    def __init__(self, fullname: str, path: str, rule: Rule) -> None:
        super().__init__(fullname, path)
        self.rule = rule

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        try:
            code: CodeType | None = load_code(path, fullname, self.rule.options,
                                              self.rule.on_error, self.rule.use_cache)
        except SyntaxError as exc:
            if type(exc) is not SyntaxError and not isinstance(exc, IndentationError):
                raise
            code = None  # the module's own syntax error: python's import raises it
        if code is None:  # (outside the except: no chained traceback of ours)
            plain = super().get_code(fullname)  # raises the SyntaxError
            if plain is None:
                raise ImportError(f"no code for {fullname}", name=fullname, path=path)
            return plain
        self.rule.instrumented.append(fullname)
        return prologue.bind_directly(code)  # no import statement of ours runs


_state = _thread._local()


class MemscopeFinder:
    """The meta-path finder; one per process, shared by every installed hook."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []

    def _rule_for(self, fullname: str, origin: str | None) -> Rule | None:
        for rule in list(self.rules):
            if origin is None:
                if rule.wants_name(fullname) is not False:
                    return rule
            elif rule.wants_file(fullname, origin):
                return rule
        return None

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if getattr(_state, "busy", False) or self._rule_for(fullname, None) is None:
            return None
        _state.busy = True
        try:
            spec = None
            meta = sys.meta_path
            try:
                start = meta.index(self) + 1
            except ValueError:
                return None
            for finder in meta[start:]:
                find = getattr(finder, "find_spec", None)
                if find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    break
        finally:
            _state.busy = False
        if spec is None:
            return None
        loader = spec.loader
        origin = spec.origin
        if (
            type(loader) is not importlib.machinery.SourceFileLoader
            or not isinstance(origin, str)
            or not origin.endswith(".py")
        ):
            return spec
        rule = self._rule_for(fullname, origin)
        if rule is not None:
            spec.loader = InstrumentingLoader(fullname, origin, rule)
        return spec

    def invalidate_caches(self) -> None:
        pass


_finder = MemscopeFinder()
_lock = _thread.RLock()
_warned_imported: set[str] = set()


class ImportHook:
    """An installed hook: a context manager, and ``uninstall()`` removes it."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    @property
    def packages(self) -> tuple[str, ...] | None:
        return self.rule.packages

    @property
    def installed(self) -> bool:
        return any(r is self.rule for r in _finder.rules)

    @property
    def instrumented(self) -> list[str]:
        """Names of the modules this hook has instrumented so far."""
        return list(self.rule.instrumented)

    def uninstall(self) -> None:
        """Stop instrumenting new imports (modules already imported stay as they are)."""
        with _lock:
            _finder.rules[:] = [r for r in _finder.rules if r is not self.rule]
            if not _finder.rules:
                while _finder in sys.meta_path:
                    sys.meta_path.remove(_finder)

    def __enter__(self) -> ImportHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def __repr__(self) -> str:
        state = "installed" if self.installed else "uninstalled"
        return f"<memscope ImportHook packages={self.rule.packages!r} {state}>"


def _warn_already_imported(packages: tuple[str, ...], skip: str | None, stacklevel: int) -> None:
    for p in packages:
        if p in _warned_imported:
            continue
        loaded = [m for m in list(sys.modules) if name_matches(m, (p,)) and m != skip]
        if loaded:
            _warned_imported.add(p)
            warnings.warn(
                f"memscope: {p!r} was already imported before the import hook was "
                f"installed; modules imported earlier ({', '.join(sorted(loaded)[:3])}"
                f"{' ...' if len(loaded) > 3 else ''}) are not instrumented. Install the "
                "hook before the first import (or use `memscope run`).",
                stacklevel=stacklevel,
            )


def _start_tracking(mode: str | None, config: Any) -> None:
    from memscope import tracker

    if getattr(tracker, "_exit_registered", False):
        if mode is not None or config is not None:
            t = tracker.get_global_tracker()
            t.apply((config or t.config).with_(mode=mode))
        return
    tracker.init(mode=mode, config=config)


def install_import_hook(
    packages: str | Iterable[str] | None = None,
    *,
    mode: str | None = None,
    config: Any = None,
    exclude: Iterable[str] = (),
    roots: Iterable[str] = (),
    on_error: str = "fallback",
    imports: bool = False,
    comprehensions: bool = False,
    cache: bool = True,
    start: bool = True,
    _skip_warning: str | None = None,
    _stacklevel: int = 2,
) -> ImportHook:
    """Instrument modules of ``packages`` as they are imported; returns the hook.

    ``packages``: names matched exactly or by dotted prefix; ``None`` means every module
    with Python source outside the standard library and site-packages (or, with
    ``roots``, under those directories). ``mode``: ``"fast"`` or ``"full"`` (default:
    the run's mode). ``config``: a ``memscope.Config`` for the run. ``on_error``:
    ``"fallback"`` (the default: a module the transformer fails on is imported
    uninstrumented, said once on stderr and counted in the capture) or ``"raise"`` (an
    :class:`InstrumentationError`). ``start``: start
    tracking (``memscope.init``) unless it already started.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error={on_error!r}: expected one of {', '.join(ON_ERROR)}")
    _own.begin()  # the hook (and the tracker it starts): memscope's own
    try:
        return _install(packages, mode, config, exclude, roots, on_error, imports,
                        comprehensions, cache, start, _skip_warning, _stacklevel + 1)
    finally:
        _own.end()


def _install(packages: str | Iterable[str] | None, mode: str | None, config: Any,
             exclude: Iterable[str], roots: Iterable[str], on_error: str, imports: bool,
             comprehensions: bool, cache: bool, start: bool, _skip_warning: str | None,
             _stacklevel: int) -> ImportHook:
    pkgs = _normalize_packages(packages)
    if mode is None:
        mode = getattr(config, "mode", None)
    tmode = mode or os.environ.get("MEMSCOPE_MODE") or "fast"
    if tmode not in ("fast", "full"):
        raise ValueError(f"mode={tmode!r}: expected 'fast' or 'full'")
    options = make_options(tmode, imports=imports, comprehensions=comprehensions)
    rule = Rule(
        packages=pkgs,
        roots=tuple(_norm(r) for r in roots),
        exclude=tuple(_normalize_packages(list(exclude)) or ()),
        options=options,
        on_error=on_error,
        use_cache=cache,
    )
    if start:
        _start_tracking(mode, config)
    with _lock:
        if pkgs:
            _warn_already_imported(pkgs, _skip_warning, _stacklevel + 1)
        _finder.rules.append(rule)
        if _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
        sys.meta_path.insert(0, _finder)
    return ImportHook(rule)


def _caller_package(depth: int) -> tuple[str, str]:
    frame = sys._getframe(depth + 1)
    g = frame.f_globals
    name = g.get("__name__", "")
    pkg = g.get("__package__")
    spec = g.get("__spec__")
    if not pkg and spec is not None:
        pkg = spec.parent
    if not pkg:
        where = g.get("__file__", "<unknown>")
        raise RuntimeError(
            f"instrument_this_package() was called from {where} (module {name!r}), which "
            "is not part of a package: a script run directly has no package to "
            "instrument. Call it from your package's __init__.py, or use "
            "memscope.install_import_hook(['yourpackage']), or run the script with "
            "`memscope run script.py` (which instruments the script and its directory)."
        )
    return str(pkg), str(name)


def instrument_this_package(_depth: int = 1, **kwargs: Any) -> ImportHook:
    """Instrument the caller's package (found from the caller's frame).

    Call it at the top of the package's ``__init__.py``, before importing submodules;
    the ``__init__`` module itself is already running and is not instrumented.
    """
    pkg, caller = _caller_package(_depth)
    return install_import_hook([pkg], _skip_warning=caller, _stacklevel=_depth + 2, **kwargs)


def instrument_all(**kwargs: Any) -> ImportHook:
    """Instrument every module with Python source outside the standard library and
    site-packages. For applications only: a library must not call this."""
    return install_import_hook(None, **kwargs)


def run_instrumented(
    path: str, module: ModuleType, options: Any, on_error: str = "fallback", use_cache: bool = True
) -> None:
    """Execute the file ``path`` instrumented in ``module``'s namespace."""
    code = load_code(path, module.__name__, options, on_error, use_cache)
    exec(code, module.__dict__)
