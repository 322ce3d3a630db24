"""The transformer: rewrite a module so every binding and scope reports to memscope._hooks.

All the rules live in this file (see docs/transformer.md for examples). The design:

* ``ast`` (fast, C) does the analysis: which names a statement binds, their original
  line/column, scopes, ``global``/``nonlocal`` declarations, generators
  (``_Instrumenter``: its docstring lists the state the rules share).
* The output is written by splicing (``memscope_instrument.splice``): insertions into
  the original text at positions ``ast`` knows, so the user's lines keep their text and
  the line map falls out of the assembly. It handles every file of the standard library
  tried (docs/performance.md, "Transformer"). Layouts it declines (a body behind a
  backslash continuation, a header line with a comment and more statements, a
  comprehension iterable it cannot delimit) fall back to ``libcst``, imported only
  then: the two trees are walked in lockstep at statement granularity (a libcst
  ``SimpleStatementLine`` holds as many small statements as ``ast`` has), and
  expressions are only descended into where a walrus, a lambda (or, with
  ``Options.comprehensions``, a comprehension) is on the statement's lines
  (``cst_exprs``). Both write the same output shape.
* Names are recorded by *reading them back* after the binding statement, on the same
  line after a ``;`` (reading a local/global name has no side effect), so the user's
  code keeps its line and columns; a run of consecutive binding statements is read
  back once, after its last one (``_Instrumenter.plan_runs``). ``name.attr`` targets
  are read back too, by ``bind_attr``, which reads the slot or the instance's own
  attribute without running user code nor making its ``__dict__`` (``a.x = a = v``
  wraps its value instead). ``:=`` wraps its value in place. Every call sits behind an
  inline guard (docs/transformer.md).
* Scopes get ``_memscope_s = _memscope_.enter(...)`` (before a ``try``, guarded by
  ``except RecursionError``) and a ``try/finally`` that calls ``_memscope_.exit``;
  class bodies call ``enter_class``/``exit_class`` and read their token with
  ``_memscope_.c()`` (kept by the runtime: nothing is set in the class namespace), after
  ``global _memscope_, _memscope_g`` (not looked up in it either); a lambda's body
  becomes the middle of
  ``((tok := guard and enter(...)), body, tok and exit(tok))[1]``.
"""

from __future__ import annotations

import ast
import bisect
import io
import tokenize
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from memscope.events import BindKind, ScopeKind
from memscope_instrument.linemap import split_lines
from memscope_instrument.options import HOOKS_CONTRACT, TRANSFORM_VERSION, Options
from memscope_instrument.sites import SiteTable

if TYPE_CHECKING:
    import libcst as cst
else:
    class _LazyLibcst:
        """libcst, imported at its first use. Only the fallback emitter uses it, and the
        splice path instruments almost every file without it: importing it anyway cost
        about 11 MB of resident memory in every process that instruments a file, which
        the program's own memory figures then carried."""

        def __getattr__(self, name: str) -> Any:
            global cst
            import libcst

            cst = libcst
            return getattr(libcst, name)

    cst = _LazyLibcst()

__all__ = [
    "ALREADY_INSTRUMENTED_MARKER",
    "HOOKS_CONTRACT",
    "TRANSFORM_VERSION",
    "InstrumentError",
    "Options",
    "Result",
    "instrument_source",
]

ALREADY_INSTRUMENTED_MARKER = "# memscope: instrumented"
SKIP_FILE = "memscope: skip-file"
IGNORE_LINE = "memscope: ignore"

H = "_memscope_"  # the module handle
GUARD = "_memscope_g"  # the handle's per-site inline guards (module global)
SGUARD = "_memscope_e"  # the handle's per-scope inline guards (module global)
TOK = "_memscope_s"  # per scope instance token (functions, lambdas): a local
MTOK = "_memscope_.m"  # the module instance token, kept on the handle (no global of ours)
CTOK = "_memscope_.c()"  # class-body token: kept by the runtime, never in the namespace
QTOK = "_memscope_q"  # comprehension instance token: a target of the comprehension itself
COMP = "_memscope_c"  # module global: memscope_instrument.sites.comprehension
ALIAS = "_memscope_n"  # + scope index: a function's token for its inner `nonlocal` binds
PROLOGUE_START = f"from memscope._hooks import register as {H}"
COMP_IMPORT = f"from memscope_instrument.sites import comprehension as {COMP}"
_COMP_NAMES = {"ListComp": "<listcomp>", "SetComp": "<setcomp>", "DictComp": "<dictcomp>",
               "GeneratorExp": "<genexpr>"}
_PLACEHOLDER = "_memscope_prologue_9d1c7e_"


@dataclass
class Result:
    code: str
    line_map: list[int]
    sites: int
    scopes: int
    skipped: int
    notes: list[str]
    changed: bool
    encoding: str = "utf-8"  # for writing ``code`` back ("utf-8-sig" keeps a BOM)
    kept_lines: int = 0  # original lines whose number is unchanged in ``code``
    # output line -> (column shift, output column where the original text starts)
    col_delta: dict[int, tuple[int, int]] = field(default_factory=dict)


class InstrumentError(Exception):
    def __init__(self, filename: str, line: int, col: int, message: str) -> None:
        super().__init__(f"{filename}:{line}:{col}: {message}")
        self.filename = filename
        self.line = line
        self.col = col
        self.message = message


# ---------------------------------------------------------------------------- helpers


class _Mismatch(Exception):
    """The ast and libcst views of a statement disagree: leave it unchanged."""


def _name(v: str) -> cst.Name:
    return cst.Name(v)


def _tok_expr(t: str) -> cst.BaseExpression:
    """A token as an expression: ``0``, a name, or the class body's ``_memscope_.c()``."""
    if t == "0":
        return cst.Integer("0")
    return _name(t) if t.isidentifier() else cst.parse_expression(t)


def _call(meth: str, *args: cst.BaseExpression) -> cst.Call:
    return cst.Call(cst.Attribute(_name(H), _name(meth)), [cst.Arg(a) for a in args])


def _guard(lst: str, i: int) -> cst.Subscript:
    return cst.Subscript(_name(lst), [cst.SubscriptElement(cst.Index(_int(i)))])


def _and(left: cst.BaseExpression, right: cst.BaseExpression) -> cst.BooleanOperation:
    return cst.BooleanOperation(left, cst.And(), right)


def _value_bind(site: int, value: cst.BaseExpression,
                tok: cst.BaseExpression) -> cst.Call:
    """``(_memscope_.bind if _memscope_g[N] else _memscope_.p)(N, (value), tok)``: no
    callable is added to the module's globals (code that scans a module's callables,
    like toolz's tests, must not see one)."""
    func = cst.IfExp(_guard(GUARD, site), cst.Attribute(_name(H), _name("bind")),
                     cst.Attribute(_name(H), _name("p")),
                     lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.Call(func, [cst.Arg(_int(site)), cst.Arg(_paren(value)), cst.Arg(tok)])


def _int(n: int) -> cst.BaseExpression:
    if n < 0:
        return cst.UnaryOperation(cst.Minus(), cst.Integer(str(-n)))
    return cst.Integer(str(n))


def _paren(e: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(e, (cst.Tuple, cst.Yield, cst.NamedExpr, cst.StarredElement)) and not e.lpar:
        return e.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return e


def _expr_stmt(e: cst.BaseExpression) -> cst.Expr:
    return cst.Expr(e)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


_SCOPE_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def _own_walk(nodes: Sequence[ast.AST]) -> Iterator[ast.AST]:
    """Every node of these subtrees that belongs to the current scope."""
    stack = list(nodes)
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, _SCOPE_NODES):
            # decorators, defaults, bases run in the enclosing scope
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                stack.extend(n.decorator_list)
                stack.extend(n.args.defaults)
                stack.extend(d for d in n.args.kw_defaults if d is not None)
            elif isinstance(n, ast.ClassDef):
                stack.extend(n.decorator_list)
                stack.extend(n.bases)
                stack.extend(n.keywords)
            else:
                stack.extend(n.args.defaults)
                stack.extend(d for d in n.args.kw_defaults if d is not None)
            continue
        stack.extend(ast.iter_child_nodes(n))


def _local_names(node: ast.AST) -> set[str]:
    """Names a def binds in its own scope (parameters included, comprehension targets
    not): where ``nonlocal`` finds a name."""
    out: set[str] = set()
    args = getattr(node, "args", None)
    if isinstance(args, ast.arguments):
        out.update(p.arg for p in (*args.posonlyargs, *args.args, *args.kwonlyargs))
        out.update(v.arg for v in (args.vararg, args.kwarg) if v is not None)
    body = getattr(node, "body", [])
    nodes = list(_own_walk(body if isinstance(body, list) else [body]))
    comp_targets = {id(x) for n in nodes if isinstance(n, ast.comprehension)
                    for x in ast.walk(n.target)}
    for n in nodes:
        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load) and \
                id(n) not in comp_targets:
            out.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            out.update((al.asname or al.name).split(".")[0] for al in n.names)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            out.add(n.name)
        elif isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name:
            out.add(n.name)
        elif isinstance(n, ast.MatchMapping) and n.rest:
            out.add(n.rest)
    return out


def _target_parts(t: ast.expr, names: list[ast.Name], attrs: list[ast.Attribute],
                  other: list[ast.expr]) -> None:
    if isinstance(t, ast.Name):
        names.append(t)
    elif isinstance(t, (ast.Tuple, ast.List)):
        for e in t.elts:
            _target_parts(e, names, attrs, other)
    elif isinstance(t, ast.Starred):
        _target_parts(t.value, names, attrs, other)
    elif isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name):
        attrs.append(t)
    else:
        other.append(t)


def assign_targets(
    targets: list[ast.expr],
) -> tuple[list[ast.Name], list[ast.Attribute], list[tuple[str, int]]]:
    """Split the targets of ``a = b = value``: the names to read back after the
    statement (in order: their sites are numbered that way), the ``name.attr`` targets
    whose value is wrapped, and what is not recorded, as (reason, line)."""
    names: list[ast.Name] = []
    wraps: list[ast.Attribute] = []
    skips: list[tuple[str, int]] = []
    for t in targets:
        attrs: list[ast.Attribute] = []
        other: list[ast.expr] = []
        _target_parts(t, names, attrs, other)
        if isinstance(t, ast.Attribute) and attrs:
            wraps.append(attrs[0])
        else:
            skips.extend(("attribute target inside unpacking not recorded", at.lineno)
                         for at in attrs)
        skips.extend(("subscript/complex target not recorded", o.lineno) for o in other)
    return names, wraps, skips


def readback_split(wraps: list[ast.Attribute], names: list[ast.Name],
                   ) -> tuple[list[ast.Attribute], list[ast.Attribute]]:
    """Which ``name.attr`` targets of one assignment still wrap the value, and which
    are read back after it: all of them, unless the same statement rebinds ``name``
    (``a.x = a = v``: reading ``a.x`` afterwards would read the new ``a``)."""
    rebound = {n.id for n in names}
    keep = [at for at in wraps if cast(ast.Name, at.value).id in rebound]
    return keep, [at for at in wraps if cast(ast.Name, at.value).id not in rebound]


def _constant(e: ast.expr) -> bool:
    if isinstance(e, ast.Constant):
        return True
    if isinstance(e, ast.UnaryOp):
        return _constant(e.operand)
    return isinstance(e, ast.BinOp) and _constant(e.left) and _constant(e.right)


def _inert(a: ast.stmt) -> bool:
    """Can running ``a`` run no user code (so it cannot rebind or delete a global name
    read back after it)? ``x = 0``, ``y = z``, ``t = (0, x)``, ``u = []``: plain name
    targets (unpacking calls ``iter``), a value of constants, names, tuple and list
    displays of them (dict and set displays hash their items)."""
    if not isinstance(a, ast.Assign) or not all(isinstance(t, ast.Name) for t in a.targets):
        return False
    stack = [a.value]
    while stack:
        e = stack.pop()
        if isinstance(e, (ast.Tuple, ast.List)):
            stack.extend(e.elts)
        elif not (isinstance(e, ast.Name) or _constant(e)):
            return False
    return True


def _pattern_names(p: ast.pattern, out: list[tuple[str, ast.AST]]) -> None:
    if isinstance(p, ast.MatchAs):
        if p.pattern is not None:
            _pattern_names(p.pattern, out)
        if p.name is not None:
            out.append((p.name, p))
    elif isinstance(p, ast.MatchStar):
        if p.name is not None:
            out.append((p.name, p))
    elif isinstance(p, ast.MatchSequence):
        for q in p.patterns:
            _pattern_names(q, out)
    elif isinstance(p, ast.MatchMapping):
        for q in p.patterns:
            _pattern_names(q, out)
        if p.rest is not None:
            out.append((p.rest, p))
    elif isinstance(p, ast.MatchClass):
        for q in (*p.patterns, *p.kwd_patterns):
            _pattern_names(q, out)
    elif isinstance(p, ast.MatchOr):
        if p.patterns:  # every alternative binds the same names
            _pattern_names(p.patterns[0], out)


def _is_docstring(st: cst.BaseStatement, a: ast.stmt | None) -> bool:
    return (
        isinstance(st, cst.SimpleStatementLine)
        and isinstance(a, ast.Expr)
        and isinstance(a.value, ast.Constant)
        and isinstance(a.value.value, str)
    )


def _block_of(body: cst.BaseSuite) -> cst.IndentedBlock:
    if isinstance(body, cst.IndentedBlock):
        return body
    suite = cast(cst.SimpleStatementSuite, body)
    return cst.IndentedBlock(
        body=[cst.SimpleStatementLine(body=suite.body)],
        header=suite.trailing_whitespace,
    )


def _prefix(body: cst.BaseSuite, small: list[cst.BaseSmallStatement]) -> cst.BaseSuite:
    """Put small statements at the start of a block, on its first line if possible."""
    if not small:
        return body
    if isinstance(body, cst.SimpleStatementSuite):
        return body.with_changes(body=[*small, *body.body])
    blk = cast(cst.IndentedBlock, body)
    first = blk.body[0] if blk.body else None
    if isinstance(first, cst.SimpleStatementLine):
        return blk.with_changes(body=[first.with_changes(body=[*small, *first.body]),
                                      *blk.body[1:]])
    return blk.with_changes(body=[cst.SimpleStatementLine(body=small), *blk.body])


# ---------------------------------------------------------------------------- scopes


@dataclass
class _Scope:
    index: int
    qualname: str
    kind: str  # "module" | "class" | "function" | "lambda" | "comp"
    parent: _Scope | None
    tok: str | None  # name holding the instance token, None = light mode (tok 0)
    globals: set[str] = field(default_factory=set)
    nonlocals: set[str] = field(default_factory=set)
    node: ast.AST | None = None  # the def (for `nonlocal` resolution)
    alias: str | None = None  # closure-visible copy of the token (see ALIAS)

    def tok_expr(self) -> cst.BaseExpression:
        return _name(self.tok) if self.tok else cst.Integer("0")

    def child_qual(self, name: str) -> str:
        if self.kind == "module":
            return name
        if self.kind in ("class", "comp"):
            return f"{self.qualname}.{name}"
        return f"{self.qualname}.<locals>.{name}"


class _LineIndex:
    """Which lines contain a given substring (pre-scanned once; bisect queries)."""

    def __init__(self, lines: list[str], needles: dict[str, tuple[str, ...]]) -> None:
        self.hits: dict[str, list[int]] = {k: [] for k in needles}
        for i, line in enumerate(lines, 1):
            for key, subs in needles.items():
                for s in subs:
                    if s in line:
                        self.hits[key].append(i)
                        break

    def any(self, key: str, first: int, last: int) -> bool:
        h = self.hits[key]
        if not h:
            return False
        j = bisect.bisect_left(h, first)
        return j < len(h) and h[j] <= last


# ---------------------------------------------------------------------------- expressions


# the libcst fallback's rewriter of one statement's expressions: memscope_instrument/
# cst_exprs.py (imported when the fallback runs, with libcst)


# ---------------------------------------------------------------------------- statements


class _Instrumenter:
    """The rules, over one module; both emitters (splice, libcst) ask it what to write.

    State, set up here and filled as the module is walked:

    * ``source``, ``filename``, ``options``, ``lines``: the input, as given and split;
    * ``table``: the module's scope and site tables (``sites.SiteTable``), what the
      prologue registers; every rule that records something adds its site here;
    * ``skipped``, ``skip_reasons``: what is deliberately not recorded, and why (the
      ``Result``'s ``notes``);
    * ``idx``: a line index of the needles that decide whether a statement needs a
      closer look (walrus, lambda, ``locals()``, ``yield``, ``global``, the ignore
      marker), so most statements are never descended into;
    * ``debt``: output lines inserted minus blank lines absorbed so far (the line map);
    * ``used_comp``: a comprehension instance needs its helper in the prologue;
    * ``_local_names``, ``_cells``: per scope, the names it binds and the names a nested
      ``def`` rebinds (``nonlocal``), which decide how a name is read back;
    * ``deferred``, ``closers``: runs of binding statements (``plan_runs``): statements
      whose read-back is left to a later one, and the last statement of each run with
      every name of the run;
    * ``in_iterable``: depth of comprehension iterables around the current expression
      (no ``:=`` may be written there).
    """

    def __init__(self, source: str, filename: str, options: Options) -> None:
        self.source = source
        self.filename = filename
        self.options = options
        self.lines = split_lines(source)
        self.table = SiteTable()
        self.skipped = 0
        self.skip_reasons: dict[str, list[int]] = {}
        needles: dict[str, tuple[str, ...]] = {
            "expr": (":=", "lambda") + ((" for ",) if options.comprehensions else ()),
            "locals": ("locals(", "vars(", "dir("),
            "yield": ("yield",),
            "suspend": ("yield", "await"),
            "decl": ("global", "nonlocal"),
            "ignore": (IGNORE_LINE,) if IGNORE_LINE in source else (),
        }
        self.idx = _LineIndex(self.lines, {k: v for k, v in needles.items() if v})
        self.idx.hits.setdefault("ignore", [])
        self.debt = 0  # output lines inserted minus blank lines absorbed, so far
        self.used_comp = False  # a comprehension instance needs COMP in the prologue
        self._local_names: dict[int, set[str]] = {}
        self._cells: dict[int, set[str]] = {}  # scope index -> names a nested def rebinds
        # runs of binding statements (plan_runs): statements whose read-back is left to
        # a later one, and the last statement of each run -> every name of the run
        self.deferred: set[int] = set()
        self.closers: dict[int, list[tuple[ast.Name, BindKind]]] = {}
        self.in_iterable = 0  # depth of comprehension iterables around the expression

    @contextmanager
    def comp_iterable(self) -> Iterator[None]:
        """Around a comprehension's iterable: Python rejects ``:=`` anywhere inside one,
        nested lambdas included, so a lambda there gets no scope token (see below)."""
        self.in_iterable += 1
        try:
            yield
        finally:
            self.in_iterable -= 1

    def lambda_in_iterable(self, a: ast.Lambda) -> bool:
        """A lambda inside a comprehension's iterable (``[a for a in map(lambda v: -v,
        xs)]``): its token would be set by ``:=``, which Python forbids there ("assignment
        expression cannot be used in a comprehension iterable expression"), so its
        parameters are bound with token 0 and it has no instance (noted)."""
        if not self.in_iterable:
            return False
        self.skip("lambda inside a comprehension's iterable: no scope instance", a.lineno)
        return True

    # -- notes
    def skip(self, reason: str, line: int) -> None:
        self.skipped += 1
        self.skip_reasons.setdefault(reason, []).append(line)

    def notes(self) -> list[str]:
        out = []
        for reason, lines in self.skip_reasons.items():
            shown = ", ".join(str(n) for n in lines[:10])
            more = f" (+{len(lines) - 10} more)" if len(lines) > 10 else ""
            out.append(f"{reason}: {len(lines)} at line {shown}{more}")
        return out

    # -- positions
    def col(self, node: ast.AST) -> int:
        line_no: int = getattr(node, "lineno", 0)
        col: int = getattr(node, "col_offset", 0)
        if 0 < line_no <= len(self.lines):
            line = self.lines[line_no - 1]
            if not line.isascii():  # ast columns are utf-8 byte offsets
                return len(line.encode("utf-8")[:col].decode("utf-8", "replace"))
        return col

    def ignored(self, first: int, last: int | None = None) -> bool:
        return self.idx.any("ignore", first, first if last is None else last)

    def uses_locals(self, node: ast.AST) -> bool:
        first = getattr(node, "lineno", 0)
        last = getattr(node, "end_lineno", None) or first
        if not self.idx.any("locals", first, last):
            return False
        for n in ast.walk(node):
            if (isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                    and n.func.id in ("locals", "vars", "dir") and not n.args
                    and not n.keywords):
                return True
        return False

    # -- sites
    def owner_scope(self, name: str, scope: _Scope) -> tuple[_Scope, BindKind | None]:
        if name in scope.globals:
            s: _Scope | None = scope
            while s is not None and s.parent is not None:
                s = s.parent
            assert s is not None
            return s, BindKind.GLOBAL
        if name in scope.nonlocals:
            # the nearest enclosing function scope where the name is local
            s = scope.parent
            while s is not None and s.kind != "module" and (
                    s.kind in ("class", "comp") or name in s.nonlocals
                    or not self.binds_locally(s, name)):
                s = s.parent
            if s is not None and s.kind != "module":
                return s, BindKind.NONLOCAL
        return scope, None

    def binds_locally(self, sc: _Scope, name: str) -> bool:
        """Does the def ``sc`` bind ``name`` in its own scope (``nonlocal`` lookup)?"""
        if sc.node is None:
            return True
        got = self._local_names.get(id(sc.node))
        if got is None:
            got = _local_names(sc.node)
            self._local_names[id(sc.node)] = got
        return name in got

    def needs_alias(self, a: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """Does a def nested in ``a`` declare ``nonlocal`` a name local to ``a``?"""
        if not self.idx.any("decl", a.lineno, a.end_lineno or a.lineno):
            return False
        inner: set[str] = set()
        for n in ast.walk(a):
            if isinstance(n, ast.Nonlocal) and n.lineno > a.lineno:
                inner.update(n.names)
        if not inner:
            return False
        own: set[str] = set()
        for n in _own_walk(a.body):
            if isinstance(n, (ast.Nonlocal, ast.Global)):
                own.update(n.names)
        local = _local_names(a)
        return any(x in local and x not in own for x in inner)

    def tok_name(self, owner: _Scope, here: _Scope) -> str:
        """The expression (source) for ``owner``'s instance token, read in ``here``."""
        if owner is here:
            return here.tok or "0"
        if owner.kind == "module":
            return MTOK
        if owner.tok is None:
            return "0"
        s: _Scope | None = here
        direct = True  # only comprehensions in between: the owner's own token name
        while s is not None and s is not owner:
            if s.tok is None:  # a light scope in between: a free name would show in
                return "0"     # its locals()
            if s.kind != "comp":
                direct = False
            s = s.parent
        if s is None:
            return "0"
        if direct:
            return owner.tok
        return owner.alias or "0"  # nonlocal: the alias the owner set at its enter

    def attr_site(self, at: ast.Attribute, scope: _Scope) -> int:
        return self.table.add_site(at.lineno, self.col(at), scope.index, f"{_dotted(at)}",
                                   BindKind.ATTRIBUTE)

    def attr_readback(self, at: ast.Attribute, scope: _Scope) -> tuple[int, str, str]:
        """``name.attr = v`` recorded after the statement by ``bind_attr(site, name,
        'attr', tok)``, which reads the slot or ``__dict__`` entry without running user
        code; ``attr`` as stored (a private ``__x`` inside a class is mangled)."""
        attr = at.attr
        if attr.startswith("__") and not attr.endswith("__"):
            s: _Scope | None = scope
            while s is not None and s.kind != "class":
                s = s.parent
            if s is not None:
                cls = s.qualname.rsplit(".", 1)[-1].lstrip("_")
                if cls:
                    attr = f"_{cls}{attr}"
        assert isinstance(at.value, ast.Name)
        return self.attr_site(at, scope), at.value.id, attr

    def site_for(self, name: str, node: ast.AST, scope: _Scope,
                 kind: BindKind) -> tuple[int, _Scope]:
        owner, override = self.owner_scope(name, scope)
        site = self.table.add_site(getattr(node, "lineno", 0), self.col(node), owner.index,
                                   name, override or kind)
        return site, owner

    def del_sites(self, a: ast.Delete, scope: _Scope) -> list[tuple[int, _Scope | None]]:
        """The DEL sites of ``del`` (for both output paths), in order: a name's site with
        the scope that owns the name, a ``name.attr``'s site with ``None`` (this scope)."""
        out: list[tuple[int, _Scope | None]] = []
        for t in a.targets:
            names: list[ast.Name] = []
            attrs: list[ast.Attribute] = []
            other: list[ast.expr] = []
            _target_parts(t, names, attrs, other)
            for n in names:
                out.append(self.site_for(n.id, n, scope, BindKind.DEL))
            for at in attrs:
                out.append((self.table.add_site(at.lineno, self.col(at), scope.index,
                                                f"{_dotted(at)}", BindKind.DEL), None))
        return out

    def tok_for(self, owner: _Scope, here: _Scope) -> cst.BaseExpression:
        return _tok_expr(self.tok_name(owner, here))

    def walrus_scope(self, sc: _Scope) -> _Scope:
        """Where ``:=`` binds: the nearest enclosing scope that is not a comprehension."""
        while sc.kind == "comp" and sc.parent is not None:
            sc = sc.parent
        return sc

    def comp_scope(self, n: ast.expr, parent: _Scope) -> _Scope:
        """A comprehension's scope (``Options.comprehensions``); ``tok`` None: its
        targets are bound with token 0 (async first loop, or it calls locals())."""
        qual = parent.child_qual(_COMP_NAMES[type(n).__name__])
        idx = self.table.add_scope(qual, ScopeKind.COMPREHENSION, n.lineno)
        gens = cast(Any, n).generators
        light = gens[0].is_async or self.uses_locals(n)
        if gens[0].is_async:
            self.skip("async comprehension: targets bound without an instance", n.lineno)
        sc = _Scope(idx, qual, "comp", parent, None if light else QTOK)
        if not light:
            self.used_comp = True
        return sc

    def comp_sites(self, g: ast.comprehension, sc: _Scope) -> list[tuple[int, str]]:
        names: list[ast.Name] = []
        _target_parts(g.target, names, [], [])
        return [(self.table.add_site(t.lineno, self.col(t), sc.index, t.id, BindKind.FOR),
                 t.id) for t in names]

    def bind_name(self, name: str, node: ast.AST, scope: _Scope, kind: BindKind) -> cst.Expr:
        site, owner = self.site_for(name, node, scope, kind)
        return _expr_stmt(_and(_guard(GUARD, site),
                               _call("bind", _int(site), _name(name), self.tok_for(owner, scope))))

    def name_groups(self, items: Sequence[tuple[ast.Name, BindKind]],
                    scope: _Scope) -> list[tuple[int, list[str], str]]:
        """The read-backs of the names a statement (or a run of statements, see
        ``plan_runs``) binds, for both output paths: runs of names with the same token
        become one group ``(first site, names, token)``, written
        ``_memscope_g[F] and _memscope_.bind_group(F, (a, b), tok)``: one guard for the
        whole group (a loop over ``x, y, z`` checks one flag, not three). Sites are
        allocated here, in order, so a group's sites are consecutive."""
        groups: list[tuple[int, list[str], str]] = []
        for n, kind in items:
            site, owner = self.site_for(n.id, n, scope, kind)
            tok = self.tok_name(owner, scope)
            if groups and groups[-1][2] == tok and \
                    groups[-1][0] + len(groups[-1][1]) == site:
                groups[-1][1].append(n.id)
            else:
                groups.append((site, [n.id], tok))
        return groups

    def group_binds(self, items: Sequence[tuple[ast.Name, BindKind]],
                    scope: _Scope) -> list[cst.BaseSmallStatement]:
        out: list[cst.BaseSmallStatement] = []
        for site, group, tok in self.name_groups(items, scope):
            tk = _tok_expr(tok)
            if len(group) == 1:
                call = _call("bind", _int(site), _name(group[0]), tk)
            else:
                call = _call("bind_group", _int(site),
                             cst.Tuple([cst.Element(_name(x)) for x in group]), tk)
            out.append(_expr_stmt(_and(_guard(GUARD, site), call)))
        return out

    def entry_names(self, targets: Sequence[ast.expr],
                    kind: BindKind) -> list[tuple[ast.Name, BindKind]]:
        """The plain names of ``for``/``with`` targets, read back at the start of the
        body (both paths); the other target parts are noted as not recorded."""
        out: list[tuple[ast.Name, BindKind]] = []
        for t in targets:
            names: list[ast.Name] = []
            attrs: list[ast.Attribute] = []
            other: list[ast.expr] = []
            _target_parts(t, names, attrs, other)
            out.extend((n, kind) for n in names)
            for x in (*attrs, *other):
                self.skip("non-name loop/with target not recorded", x.lineno)
        return out

    # -- runs: one guarded read-back after a run of binding statements
    def plan_runs(self, nodes: Sequence[ast.stmt], scope: _Scope,
                  entry: Sequence[tuple[ast.Name, BindKind]] = ()) -> bool:
        """Find the runs of one block (suite), for both output paths.

        A run is a maximal sequence of consecutive simple statements that bind plain
        names only, each read back after it (``run_member``); a ``for`` loop's target
        names (``entry``) start the run of its body's first statements. The names of a
        run are read back once, after its last statement, behind one guard (sites
        consecutive, one token): ``small_binds`` of a statement in ``deferred`` adds
        nothing, the one in ``closers`` adds the read-back of the whole run. A run ends
        before a statement that is not a member, rebinds a name of the run, has
        another token, can suspend the frame (``yield``, ``await``: no read-back waits
        across a suspension), or, when the run holds a name that other code can rebind
        or delete (``_shared``), could run user code (``_inert``). Class bodies get no
        runs (a custom ``__prepare__`` namespace runs code on every store). Returns
        whether ``entry`` joined a run (then the caller writes no read-back for it)."""
        if scope.kind not in ("module", "function"):
            return False
        joined = False
        run: list[tuple[ast.stmt | None, Sequence[tuple[ast.Name, BindKind]]]] = []
        tok = ""
        names: set[str] = set()
        shared = False

        def close() -> None:
            nonlocal joined
            if len(run) > 1:
                for st, _items in run[:-1]:
                    if st is None:
                        joined = True
                    else:
                        self.deferred.add(id(st))
                self.closers[id(run[-1][0])] = [it for _st, its in run for it in its]
            run.clear()

        if entry:
            got = self.run_tok(entry, scope)
            if got is not None:
                tok, shared = got
                run.append((None, entry))
                names = {n.id for n, _k in entry}
        for a in nodes:
            m = self.run_member(a, scope)
            if m is None:
                close()
                continue
            items, mtok, mshared = m
            mnames = {n.id for n, _k in items}
            if run and (mtok != tok or not mnames.isdisjoint(names)
                        or (shared and not _inert(a)) or self.suspends(a)):
                close()
            if not run:
                tok, names, shared = mtok, set(), False
            run.append((a, items))
            names |= mnames
            shared = shared or mshared
        close()
        return joined

    def run_member(self, a: ast.stmt, scope: _Scope,
                   ) -> tuple[list[tuple[ast.Name, BindKind]], str, bool] | None:
        """Can ``a`` be part of a run (``plan_runs``)? ``x = v`` / ``a, (b, *c) = v`` /
        ``a = b = v`` with plain names only, ``x += v``, ``x: T = v``; not opted out; no
        walrus, lambda or instrumented comprehension in it (they allocate sites or
        scopes in between). Returns its names (with their kinds), their token and
        whether one of them is ``_shared``; None: not a member."""
        items: list[tuple[ast.Name, BindKind]]
        if isinstance(a, ast.Assign):
            names: list[ast.Name] = []
            attrs: list[ast.Attribute] = []
            other: list[ast.expr] = []
            for t in a.targets:
                _target_parts(t, names, attrs, other)
            if attrs or other or not names:
                return None
            items = [(n, BindKind.ASSIGN) for n in names]
        elif isinstance(a, ast.AugAssign) and isinstance(a.target, ast.Name):
            items = [(a.target, BindKind.AUGASSIGN)]
        elif isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and \
                a.value is not None:
            items = [(a.target, BindKind.ANNASSIGN)]
        else:
            return None
        first, last = a.lineno, a.end_lineno or a.lineno
        if self.ignored(first, last) or self.instruments_exprs(a, first, last):
            return None
        got = self.run_tok(items, scope)
        if got is None:
            return None
        return items, got[0], got[1]

    def run_tok(self, items: Sequence[tuple[ast.Name, BindKind]],
                scope: _Scope) -> tuple[str, bool] | None:
        """The one token of these names (None: they have more than one) and whether one
        of them is ``_shared``."""
        toks = {self.tok_name(self.owner_scope(n.id, scope)[0], scope) for n, _k in items}
        if len(toks) != 1:
            return None
        return toks.pop(), any(self._shared(n.id, scope) for n, _k in items)

    def _shared(self, name: str, scope: _Scope) -> bool:
        """Can code other than this frame's own statements rebind or delete ``name``
        (a module or class name, a ``global`` or ``nonlocal`` one, or a local that a
        nested def declares ``nonlocal``)? Then reading it back after a later statement
        that runs user code could read another value, or raise NameError."""
        if scope.kind != "function" or name in scope.globals or name in scope.nonlocals:
            return True
        cells = self._cells.get(scope.index)
        if cells is None:
            cells = set()
            node = scope.node
            first: int = getattr(node, "lineno", 0)
            last: int = getattr(node, "end_lineno", None) or first
            if node is not None and self.idx.any("decl", first, last):
                for n in ast.walk(node):
                    if isinstance(n, ast.Nonlocal):
                        cells.update(n.names)
            self._cells[scope.index] = cells
        return name in cells

    def suspends(self, a: ast.stmt) -> bool:
        """Can running ``a`` suspend the frame (``yield``, ``yield from``, ``await``)?"""
        if not self.idx.any("suspend", a.lineno, a.end_lineno or a.lineno):
            return False
        return any(isinstance(n, (ast.Yield, ast.YieldFrom, ast.Await)) for n in ast.walk(a))

    def instruments_exprs(self, a: ast.stmt, first: int, last: int) -> bool:
        """Would ``expr`` find something to rewrite in ``a`` (walrus, lambda,
        comprehension with ``Options.comprehensions``)?"""
        if not self.idx.any("expr", first, last):
            return False
        kinds: tuple[type[ast.AST], ...] = (ast.NamedExpr, ast.Lambda)
        if self.options.comprehensions:
            kinds += (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
        return any(isinstance(n, kinds) for n in ast.walk(a))

    def param_sites(self, args: ast.arguments, scope: _Scope) -> tuple[int, list[str]]:
        params = [*args.posonlyargs, *args.args]
        if args.vararg:
            params.append(args.vararg)
        params.extend(args.kwonlyargs)
        if args.kwarg:
            params.append(args.kwarg)
        first = -1
        for p in params:
            s = self.table.add_site(p.lineno, self.col(p), scope.index, p.arg, BindKind.PARAM)
            if first < 0:
                first = s
        return first, [p.arg for p in params]

    # -- expressions
    def expr(self, node: Any, parts: Sequence[ast.AST | None], scope: _Scope,
             first: int, last: int) -> Any:
        """Rewrite walrus/lambda/comprehensions inside ``node`` (a libcst node or list)."""
        if not self.idx.any("expr", first, last):
            return node
        comps = self.options.comprehensions
        wanted: list[ast.AST] = []
        for p in parts:
            if p is None:
                continue
            for n in ast.walk(p):
                if isinstance(n, (ast.NamedExpr, ast.Lambda)):
                    wanted.append(n)
                elif comps and isinstance(n, (ast.ListComp, ast.SetComp, ast.DictComp,
                                              ast.GeneratorExp)):
                    wanted.append(n)
        if not wanted:
            return node
        wanted.sort(key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))
        mark = self.table.mark()
        skipped = self.skipped
        depth = self.in_iterable
        from memscope_instrument.cst_exprs import ExprRewriter

        rw = ExprRewriter(self, scope, wanted)
        try:
            if isinstance(node, list):
                new: Any = [n.visit(rw) for n in node]
            else:
                new = node.visit(rw)
            if rw.i != len(wanted):
                raise _Mismatch
        except _Mismatch:
            self.table.rollback(mark)
            self.skipped = skipped
            self.in_iterable = depth
            self.skip("expression not instrumented (layout not understood)", first)
            return node
        return new

    # -- blocks
    def absorb(self, st: Any) -> Any:
        """Drop blank lines before ``st`` to win back lines inserted earlier."""
        if self.debt <= 0:
            return st
        lead = getattr(st, "leading_lines", None)
        if not lead:
            return st
        keep = []
        for ln in lead:
            if self.debt > 0 and ln.comment is None:
                self.debt -= 1
                continue
            keep.append(ln)
        if len(keep) == len(lead):
            return st
        return st.with_changes(leading_lines=keep)

    def block(self, stmts: Sequence[cst.BaseStatement], nodes: Sequence[ast.stmt],
              scope: _Scope, planned: bool = False) -> list[cst.BaseStatement]:
        if not planned:
            self.plan_runs(nodes, scope)
        out: list[cst.BaseStatement] = []
        i = 0
        for st in stmts:
            st = self.absorb(st)
            if isinstance(st, cst.SimpleStatementLine):
                n = len(st.body)
                an = nodes[i : i + n]
                i += n
                if len(an) != n:
                    raise _Mismatch
                body = self.small_list(st.body, an, scope)
                if len(body) != n or any(x is not y for x, y in zip(body, st.body,
                                                                     strict=False)):
                    st = st.with_changes(body=body)
                out.append(st)
            else:
                if i >= len(nodes):
                    raise _Mismatch
                out.extend(self.compound(st, nodes[i], scope))
                i += 1
        if i != len(nodes):
            raise _Mismatch
        return out

    def suite(self, body: cst.BaseSuite, nodes: Sequence[ast.stmt],
              scope: _Scope, planned: bool = False) -> cst.BaseSuite:
        """``planned``: the caller ran ``plan_runs`` on ``nodes`` (a ``for`` body)."""
        if isinstance(body, cst.SimpleStatementSuite):
            if len(body.body) != len(nodes):
                raise _Mismatch
            if not planned:
                self.plan_runs(nodes, scope)
            return body.with_changes(body=self.small_list(body.body, nodes, scope))
        blk = cast(cst.IndentedBlock, body)
        return blk.with_changes(body=self.block(blk.body, nodes, scope, planned))

    def small_list(self, smalls: Sequence[cst.BaseSmallStatement], nodes: Sequence[ast.stmt],
                   scope: _Scope) -> list[cst.BaseSmallStatement]:
        out: list[cst.BaseSmallStatement] = []
        for s, a in zip(smalls, nodes, strict=False):
            out.extend(self.small(s, a, scope))
        return out

    # -- small statements
    def small(self, s: cst.BaseSmallStatement, a: ast.stmt,
              scope: _Scope) -> list[cst.BaseSmallStatement]:
        first, last = a.lineno, a.end_lineno or a.lineno
        if self.ignored(first, last):
            self.skip("`# memscope: ignore`", first)
            return [s]
        if isinstance(a, (ast.Global, ast.Nonlocal, ast.Pass, ast.Break, ast.Continue)):
            return [s]
        s = self.expr(s, [a], scope, first, last)
        if (isinstance(a, ast.Assign) and not isinstance(s, cst.Assign)) or (
                isinstance(a, ast.AnnAssign) and not isinstance(s, cst.AnnAssign)):
            return [s]  # the two trees disagree: leave the statement as it is
        got = self.small_binds(a, scope, self)
        if got is None:
            return [s]
        after, wraps = got
        if wraps:
            value = cast(cst.Assign, s).value
            for at in reversed(wraps):
                value = self.wrap_attr(at, value, scope)
            s = cast(cst.Assign, s).with_changes(value=value)
        return [s, *after]

    def small_binds(self, a: ast.stmt, scope: _Scope,
                    em: Any) -> tuple[list[Any], list[ast.Attribute]] | None:
        """What a simple statement binds, for both output paths: the read-backs to put
        after it, made by ``em`` (this instrumenter for the libcst path, the
        ``Splicer`` for text: both have ``bind_name``, ``group_binds``, ``attr_bind``
        and ``unbind_stmt``), and the ``name.attr`` targets whose value the path wraps
        itself. None: leave the statement alone (``from __future__ import``). A
        statement inside a run (``plan_runs``) adds nothing; the run's last one adds
        the read-back of every name of the run."""
        first = a.lineno
        after: list[Any] = []
        wraps: list[ast.Attribute] = []
        if id(a) in self.deferred:
            return after, wraps
        run = self.closers.pop(id(a), None)
        if run is not None:
            return em.group_binds(run, scope), wraps
        if isinstance(a, ast.Assign):
            names, wraps, skips = assign_targets(a.targets)
            after.extend(em.group_binds([(n, BindKind.ASSIGN) for n in names], scope))
            for why, line in skips:
                self.skip(why, line)
            wraps, reads = readback_split(wraps, names)
            after.extend(em.attr_bind(at, scope) for at in reads)
        elif isinstance(a, ast.AugAssign):
            if isinstance(a.target, ast.Name):
                after.append(em.bind_name(a.target.id, a.target, scope, BindKind.AUGASSIGN))
            else:
                self.skip("augmented assignment to attribute/subscript not recorded", first)
        elif isinstance(a, ast.AnnAssign):
            if a.value is not None:
                if isinstance(a.target, ast.Name):
                    after.append(em.bind_name(a.target.id, a.target, scope,
                                              BindKind.ANNASSIGN))
                elif isinstance(a.target, ast.Attribute) and isinstance(a.target.value,
                                                                        ast.Name):
                    after.append(em.attr_bind(a.target, scope))
                else:
                    self.skip("subscript/complex target not recorded", first)
        elif isinstance(a, ast.Delete):
            for site, owner in self.del_sites(a, scope):
                after.append(em.unbind_stmt(site, owner, scope))
        elif isinstance(a, (ast.Import, ast.ImportFrom)) and self.options.imports:
            if isinstance(a, ast.ImportFrom) and a.module == "__future__":
                return None
            for alias in a.names:
                if alias.name == "*":
                    self.skip("`import *` not recorded", first)
                    continue
                bound = alias.asname or alias.name.split(".")[0]
                after.append(em.bind_name(bound, alias if hasattr(alias, "lineno") else a,
                                          scope, BindKind.IMPORT))
        return after, wraps

    def unbind_stmt(self, site: int, owner: _Scope | None,
                    scope: _Scope) -> cst.BaseSmallStatement:
        tok = scope.tok_expr() if owner is None else self.tok_for(owner, scope)
        return _expr_stmt(_call("unbind", _int(site), tok))

    def wrap_attr(self, at: ast.Attribute, value: cst.BaseExpression,
                  scope: _Scope) -> cst.BaseExpression:
        return _value_bind(self.attr_site(at, scope), value, scope.tok_expr())

    def attr_bind(self, at: ast.Attribute, scope: _Scope) -> cst.BaseSmallStatement:
        site, base, attr = self.attr_readback(at, scope)
        return _expr_stmt(_and(_guard(GUARD, site), _call(
            "bind_attr", _int(site), _name(base), cst.SimpleString(repr(attr)),
            scope.tok_expr())))

    # -- compound statements
    def compound(self, st: cst.BaseStatement, a: ast.stmt,
                 scope: _Scope) -> list[cst.BaseStatement]:
        if isinstance(st, cst.FunctionDef) and isinstance(a, (ast.FunctionDef,
                                                              ast.AsyncFunctionDef)):
            return self.function(st, a, scope)
        if isinstance(st, cst.ClassDef) and isinstance(a, ast.ClassDef):
            return self.classdef(st, a, scope)
        abody: list[ast.stmt] = getattr(a, "body", None) or []
        hdr_last = abody[0].lineno if abody else a.lineno
        if isinstance(st, cst.If) and isinstance(a, ast.If):
            return [self.if_stmt(st, a, scope)]
        if isinstance(st, cst.For) and isinstance(a, (ast.For, ast.AsyncFor)):
            st = st.with_changes(target=self.expr(st.target, [a.target], scope, a.lineno,
                                                  hdr_last),
                                 iter=self.expr(st.iter, [a.iter], scope, a.lineno, hdr_last))
            entry = [] if self.ignored(a.lineno) else self.entry_names([a.target],
                                                                       BindKind.FOR)
            joined = self.plan_runs(a.body, scope, entry)
            body = self.suite(st.body, a.body, scope, planned=True)
            if entry and not joined:
                body = self.prefix_counted(body, self.group_binds(entry, scope))
            return [st.with_changes(body=body, orelse=self.orelse(st.orelse, a.orelse, scope))]
        if isinstance(st, cst.While) and isinstance(a, ast.While):
            st = st.with_changes(test=self.expr(st.test, [a.test], scope, a.lineno, hdr_last))
            return [st.with_changes(body=self.suite(st.body, a.body, scope),
                                    orelse=self.orelse(st.orelse, a.orelse, scope))]
        if isinstance(st, cst.With) and isinstance(a, (ast.With, ast.AsyncWith)):
            st = st.with_changes(items=self.expr(list(st.items), list(a.items), scope,
                                                 a.lineno, hdr_last))
            body = self.suite(st.body, a.body, scope)
            if not self.ignored(a.lineno):
                entry = self.entry_names([i.optional_vars for i in a.items
                                          if i.optional_vars is not None], BindKind.WITH)
                body = self.prefix_counted(body, self.group_binds(entry, scope))
            return [st.with_changes(body=body)]
        if isinstance(st, cst.Try) and isinstance(a, ast.Try):
            return [self.try_stmt(st, a, scope)]
        if isinstance(st, cst.TryStar) and hasattr(ast, "TryStar") and isinstance(
                a, ast.TryStar):
            return [self.try_stmt(st, a, scope)]
        if isinstance(st, cst.Match) and isinstance(a, ast.Match):
            return [self.match_stmt(st, a, scope)]
        raise _Mismatch

    def orelse(self, node: Any, nodes: list[ast.stmt], scope: _Scope) -> Any:
        if node is None:
            return None
        if isinstance(node, cst.If):  # elif
            return self.if_stmt(node, cast(ast.If, nodes[0]), scope)
        node = self.absorb(node)
        return node.with_changes(body=self.suite(node.body, nodes, scope))

    def if_stmt(self, st: cst.If, a: ast.If, scope: _Scope) -> cst.If:
        st = st.with_changes(test=self.expr(st.test, [a.test], scope, a.lineno,
                                            a.body[0].lineno))
        return st.with_changes(body=self.suite(st.body, a.body, scope),
                               orelse=self.orelse(st.orelse, a.orelse, scope))

    def prefix_counted(self, body: cst.BaseSuite,
                       small: list[cst.BaseSmallStatement]) -> cst.BaseSuite:
        if (small and isinstance(body, cst.IndentedBlock) and body.body
                and not isinstance(body.body[0], cst.SimpleStatementLine)):
            self.debt += 1
        return _prefix(body, small)

    def try_stmt(self, st: Any, a: Any, scope: _Scope) -> Any:
        body = self.suite(st.body, a.body, scope)
        handlers = []
        for h, ah in zip(st.handlers, a.handlers, strict=False):
            h = self.absorb(h)
            if h.type is not None and ah.type is not None:
                h = h.with_changes(type=self.expr(h.type, [ah.type], scope, ah.lineno,
                                                  ah.body[0].lineno))
            hbody = self.suite(h.body, ah.body, scope)
            if ah.name and not self.ignored(ah.lineno):
                site, owner = self.site_for(ah.name, ah, scope, BindKind.EXCEPT)
                tok = self.tok_for(owner, scope)
                bind = _expr_stmt(_call("bind", _int(site), _name(ah.name), tok))
                inner = _block_of(_prefix(hbody, [bind]))
                fin = cst.Finally(body=cst.SimpleStatementSuite(
                    [_expr_stmt(_call("unbind", _int(site), tok))]))
                self.debt += 2 + (0 if isinstance(hbody, cst.IndentedBlock) else 1)
                hbody = cst.IndentedBlock(body=[cst.Try(body=inner, finalbody=fin)],
                                          header=inner.header if isinstance(
                                              hbody, cst.SimpleStatementSuite) else
                                          cst.TrailingWhitespace())
                if isinstance(h.body, cst.IndentedBlock):
                    hbody = hbody.with_changes(header=h.body.header, indent=h.body.indent)
                    inner = inner.with_changes(header=cst.TrailingWhitespace())
                    hbody = hbody.with_changes(body=[cst.Try(body=inner, finalbody=fin)])
            handlers.append(h.with_changes(body=hbody))
        return st.with_changes(
            body=body, handlers=handlers,
            orelse=self.orelse(st.orelse, a.orelse, scope) if st.orelse else None,
            finalbody=self.orelse(st.finalbody, a.finalbody, scope) if st.finalbody else None)

    def match_stmt(self, st: cst.Match, a: ast.Match, scope: _Scope) -> cst.Match:
        st = st.with_changes(subject=self.expr(st.subject, [a.subject], scope, a.lineno,
                                               a.cases[0].pattern.lineno if a.cases
                                               else a.lineno))
        cases = []
        for c, ac in zip(st.cases, a.cases, strict=False):
            c = self.absorb(c)
            line = ac.pattern.lineno
            if c.guard is not None and ac.guard is not None:
                c = c.with_changes(guard=self.expr(c.guard, [ac.guard], scope, line,
                                                   ac.body[0].lineno))
            body = self.suite(c.body, ac.body, scope)
            if not self.ignored(line):
                found: list[tuple[str, ast.AST]] = []
                _pattern_names(ac.pattern, found)
                seen: set[str] = set()
                small: list[cst.BaseSmallStatement] = []
                for name, node in found:
                    if name not in seen:
                        seen.add(name)
                        small.append(self.bind_name(name, node, scope, BindKind.MATCH))
                body = self.prefix_counted(body, small)
            cases.append(c.with_changes(body=body))
        return st.with_changes(cases=cases)

    # -- scopes
    def declarations(self, node: ast.AST, body: Sequence[ast.stmt], sc: _Scope) -> None:
        first = getattr(node, "lineno", 0)
        last = getattr(node, "end_lineno", None) or first
        if not self.idx.any("decl", first, last):
            return
        for n in _own_walk(list(body)):
            if isinstance(n, ast.Global):
                sc.globals.update(n.names)
            elif isinstance(n, ast.Nonlocal):
                sc.nonlocals.update(n.names)

    def function_scope(
        self, a: ast.FunctionDef | ast.AsyncFunctionDef, scope: _Scope
    ) -> tuple[_Scope, int, int, list[str], bool]:
        """The scope a ``def`` opens, for both output paths: its kind, qualname and table
        row, its token (none when the function calls ``locals()``: ``light``), the alias
        nested ``nonlocal`` binds read, its declarations, and its parameter sites.
        Returns (scope, table index, first parameter site, parameter names, light)."""
        is_async = isinstance(a, ast.AsyncFunctionDef)
        gen = self.idx.any("yield", a.lineno, a.end_lineno or a.lineno) and any(
            isinstance(n, (ast.Yield, ast.YieldFrom)) for n in _own_walk(a.body))
        if is_async:
            kind = ScopeKind.ASYNC_GENERATOR if gen else ScopeKind.COROUTINE
        elif gen:
            kind = ScopeKind.GENERATOR
        else:
            kind = ScopeKind.METHOD if scope.kind == "class" else ScopeKind.FUNCTION
        qual = scope.child_qual(a.name)
        idx = self.table.add_scope(qual, kind, a.lineno)
        light = self.uses_locals(a)
        sc = _Scope(idx, qual, "function", scope, None if light else TOK, node=a)
        if not light and self.needs_alias(a):
            sc.alias = f"{ALIAS}{idx}"
        self.declarations(a, a.body, sc)
        first, params = self.param_sites(a.args, sc)
        return sc, idx, first, params, light

    def is_ignored_def(self, st: cst.FunctionDef | cst.ClassDef,
                       a: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> bool:
        for d in a.decorator_list:
            target = d.func if isinstance(d, ast.Call) else d
            if _dotted(target) in ("memscope.ignore",):
                return True
        first = a.decorator_list[0].lineno if a.decorator_list else a.lineno
        return self.ignored(first, a.body[0].lineno - 1 if a.body[0].lineno > a.lineno
                            else a.lineno)

    def header_exprs(self, st: Any, a: Any, scope: _Scope) -> Any:
        first = a.decorator_list[0].lineno if a.decorator_list else a.lineno
        last = a.body[0].lineno
        st = st.with_changes(decorators=self.expr(list(st.decorators), list(a.decorator_list),
                                                  scope, first, last))
        if isinstance(st, cst.FunctionDef):
            args = a.args
            parts = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
            if not self.idx.any("expr", first, last):
                return st
            parts += [x.annotation for x in (*args.posonlyargs, *args.args, *args.kwonlyargs,
                                             *(v for v in (args.vararg, args.kwarg) if v))
                      if x.annotation is not None]
            st = st.with_changes(params=self.expr(st.params, parts, scope, first, last))
            if st.returns is not None:
                st = st.with_changes(returns=self.expr(st.returns, [a.returns], scope, first,
                                                       last))
        else:
            st = st.with_changes(bases=self.expr(list(st.bases), list(a.bases), scope, first,
                                                 last),
                                 keywords=self.expr(list(st.keywords), list(a.keywords),
                                                    scope, first, last))
        return st

    def function(self, st: cst.FunctionDef, a: ast.FunctionDef | ast.AsyncFunctionDef,
                 scope: _Scope) -> list[cst.BaseStatement]:
        if self.is_ignored_def(st, a):
            self.skip("function opted out (`@memscope.ignore` / `# memscope: ignore`)",
                      a.lineno)
            return [st]
        st = self.header_exprs(st, a, scope)
        sc, idx, first, params, light = self.function_scope(a, scope)
        if light:
            self.skip("function calls locals()/vars()/dir(): no scope token", a.lineno)
            enter: cst.BaseSmallStatement | None = None
            pbinds: list[cst.BaseSmallStatement] = [
                _expr_stmt(_call("bind", _int(first + k), _name(p), cst.Integer("0")))
                for k, p in enumerate(params)]
        else:
            enter = cst.Assign([cst.AssignTarget(_name(TOK)),
                                *([cst.AssignTarget(_name(sc.alias))] if sc.alias else [])],
                               _and(_guard(SGUARD, idx),
                                    _call("enter", _int(idx), _int(first if params else -1),
                                          *(_name(p) for p in params))))
            pbinds = []
        # a light function has no token of its own and no try/finally: its `finally`
        # would read the module's `_memscope_s` and exit the module instance
        body = self.scope_body(st.body, a.body, sc, enter, pbinds,
                               [] if light else
                               [_expr_stmt(_and(_name(TOK), _call("exit", _name(TOK))))])
        out: list[cst.BaseStatement] = [st.with_changes(body=body)]
        out.extend(self.def_bind(a, scope, BindKind.FUNC_DEF))
        return out

    def def_bind(self, a: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
                 scope: _Scope, kind: BindKind) -> list[cst.BaseStatement]:
        self.debt += 1
        return [cst.SimpleStatementLine([self.bind_name(a.name, a, scope, kind)])]

    def classdef(self, st: cst.ClassDef, a: ast.ClassDef,
                 scope: _Scope) -> list[cst.BaseStatement]:
        if self.is_ignored_def(st, a):
            self.skip("class opted out (`@memscope.ignore` / `# memscope: ignore`)", a.lineno)
            return [st]
        st = self.header_exprs(st, a, scope)
        qual = scope.child_qual(a.name)
        idx = self.table.add_scope(qual, ScopeKind.CLASS, a.lineno)
        light = self.uses_locals(a)
        sc = _Scope(idx, qual, "class", scope, None if light else CTOK)
        self.declarations(a, a.body, sc)
        if light:
            self.skip("class body calls locals()/vars()/dir(): no scope token", a.lineno)
            body = self.scope_body(st.body, a.body, sc, None, [], [])
        else:
            # the token is kept by the runtime (`c()` reads it), so the class namespace
            # never sees it set; `global`: our names are not looked up in the namespace
            glob = cst.Global([cst.NameItem(_name(H)), cst.NameItem(_name(GUARD))])
            fin: list[cst.BaseSmallStatement] = [_expr_stmt(_call("exit_class"))]
            body = self.scope_body(st.body, a.body, sc, None, [], fin,
                                   [glob, _expr_stmt(_call("enter_class", _int(idx)))])
        out: list[cst.BaseStatement] = [st.with_changes(body=body)]
        out.extend(self.def_bind(a, scope, BindKind.CLASS_DEF))
        return out

    def scope_body(self, body: cst.BaseSuite, nodes: list[ast.stmt], sc: _Scope,
                   enter: cst.BaseSmallStatement | None, pbinds: list[cst.BaseSmallStatement],
                   fin: list[cst.BaseSmallStatement],
                   bare: list[cst.BaseSmallStatement] | None = None) -> cst.BaseSuite:
        """``doc; enter`` then ``try: body finally: fin`` (see module docstring); ``bare``
        (a class body's ``global ...; enter_class(...)``): a line before the ``try``."""
        was_suite = isinstance(body, cst.SimpleStatementSuite)
        blk = _block_of(body)
        if was_suite:
            self.debt += 1
        stmts = list(blk.body)
        doc: cst.SimpleStatementLine | None = None
        rest_nodes = nodes
        if stmts and _is_docstring(stmts[0], nodes[0]):
            d = cast(cst.SimpleStatementLine, stmts[0])
            if len(d.body) == 1:
                doc = d
                stmts = stmts[1:]
                rest_nodes = nodes[1:]
        # a scope with a `finally` gets its token before the `try` (no signal can make
        # the `finally` read it unset), as `try: tok = enter(...)` / `except
        # RecursionError: tok = None` (`enter` at the recursion limit: not recorded)
        pre = enter if fin and enter is not None else None
        start: list[cst.BaseSmallStatement] = (
            [enter] if enter is not None and pre is None else []) + pbinds
        if doc is not None:
            doc = doc.with_changes(body=[*doc.body, *start])
            start = []
        if not fin:  # light class or function: no try
            inner = self.block(stmts, rest_nodes, sc)
            ib = self.prefix_counted(blk.with_changes(body=inner), start) \
                if inner or start else blk
            return cast(cst.IndentedBlock, ib).with_changes(
                body=[*([doc] if doc else []), *cast(cst.IndentedBlock, ib).body])
        if not stmts:  # only a docstring
            assert doc is not None
            doc = doc.with_changes(body=[*doc.body, *([pre] if pre else []), *(bare or []),
                                         *fin])
            return blk.with_changes(body=[doc])
        self.debt += 1  # the `try:` line
        lead = stmts[0].leading_lines if isinstance(stmts[0], (cst.SimpleStatementLine,
                                                               cst.BaseCompoundStatement)) \
            else []
        if lead:
            stmts[0] = stmts[0].with_changes(leading_lines=[])
        inner = self.block(stmts, rest_nodes, sc)
        tb = cst.IndentedBlock(body=inner, indent=blk.indent)
        if start:
            if isinstance(inner[0], cst.SimpleStatementLine):
                tb = cast(cst.IndentedBlock, _prefix(tb, start))
            else:
                self.debt += 1
                tb = cast(cst.IndentedBlock, _prefix(tb, start))
        self.debt += 1  # the `finally:` line
        tr = cst.Try(body=tb, finalbody=cst.Finally(body=cst.SimpleStatementSuite(fin)),
                     leading_lines=[] if pre or bare else lead)
        guard: list[cst.BaseStatement] = []
        if bare:
            self.debt += 1
            guard = [cst.SimpleStatementLine(bare, leading_lines=lead)]
        if pre is not None:
            assert isinstance(pre, cst.Assign)
            self.debt += 2
            guard = [cst.Try(
                body=cst.SimpleStatementSuite([pre]),
                handlers=[cst.ExceptHandler(
                    body=cst.SimpleStatementSuite([pre.with_changes(value=_name("None"))]),
                    type=_name("RecursionError"))],
                leading_lines=lead)]
        return blk.with_changes(body=[*([doc] if doc else []), *guard, tr])


# ---------------------------------------------------------------------------- module


def _decode(source: str | bytes, filename: str) -> tuple[str, str]:
    if isinstance(source, str):
        return source, "utf-8"
    try:
        enc, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    except SyntaxError as e:
        if "unknown encoding" in str(e):
            raise InstrumentError(filename, 1, 0, str(e)) from e
        enc = "utf-8"  # undecodable first lines: the decode below says where
    try:
        return source.decode(enc), enc
    except (UnicodeDecodeError, LookupError) as e:
        start = getattr(e, "start", 0)
        line = source[:start].count(b"\n") + 1
        col = start - (source.rfind(b"\n", 0, start) + 1)
        raise InstrumentError(filename, line, col,
                              f"cannot decode as {enc}: {e}") from e


def _formfeed_indents(text: str) -> str:
    """Drop what precedes the last form feed of each line's leading whitespace, outside
    string literals. Python's tokenizer resets the column at a form feed, so the line
    means the same; the wrappers the transformer indents by would otherwise land before
    the form feed and count for nothing (found by hypothesmith: ``class A:\n \f  pass``
    nested in another class gave output Python rejects). Columns on such lines shift
    by what was dropped."""
    lines = io.StringIO(text, newline="").readlines()  # (str.splitlines splits at \f)
    inside: set[int] = set()  # 0-based lines that start inside a string literal
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.start[0] != tok.end[0] and tok.type != tokenize.NL:
                inside.update(range(tok.start[0], tok.end[0]))  # lines after the first
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return text
    for k, line in enumerate(lines):
        lead = line[: len(line) - len(line.lstrip(" \t\f"))]
        if "\f" in lead and k not in inside:
            lines[k] = line[lead.rindex("\f") + 1 :]
    return "".join(lines)


def _is_future_or_doc(a: ast.stmt, first: bool) -> bool:
    if isinstance(a, ast.ImportFrom) and a.module == "__future__":
        return True
    return (first and isinstance(a, ast.Expr) and isinstance(a.value, ast.Constant)
            and isinstance(a.value.value, str))


_DEFAULT_OPTIONS = Options()


def instrument_source(source: str | bytes, filename: str, module: str = "__main__",
                      options: Options = _DEFAULT_OPTIONS) -> Result:
    """Instrument one module's source. ``filename`` is recorded in the site table."""
    from memscope_instrument.linemap import build_line_map, col_deltas

    text, encoding = _decode(source, filename)
    if "\f" in text:
        text = _formfeed_indents(text)
    n_lines = len(split_lines(text))
    if (ALREADY_INSTRUMENTED_MARKER in text and (PROLOGUE_START in text
                                                 or "_memscope_hooks.register(" in text)) or (
            SKIP_FILE in text and _has_comment(text, SKIP_FILE)):
        why = "already instrumented" if ALREADY_INSTRUMENTED_MARKER in text else "skip-file"
        return Result(text, list(range(1, n_lines + 1)), 0, 0, 0, [why], False, encoding,
                      n_lines)
    try:
        tree = ast.parse(text, filename)
    except SyntaxError as e:
        raise InstrumentError(filename, e.lineno or 0, (e.offset or 1) - 1,
                              e.msg or "invalid syntax") from e
    except ValueError as e:  # null bytes
        raise InstrumentError(filename, 1, 0, str(e)) from e
    fast = _splice(text, tree, filename, options, encoding)
    if fast is not None:
        return fast
    try:  # the libcst path: only for layouts the splice path leaves to it
        mod = cst.parse_module(text)
    except cst.ParserSyntaxError as e:
        raise InstrumentError(filename, e.raw_line, e.raw_column, e.message) from e
    except Exception as e:  # libcst internal limits (recursion, ...)
        raise InstrumentError(filename, 1, 0, f"libcst could not parse: {e}") from e
    inst = _Instrumenter(text, filename, options)
    sc = _Scope(inst.table.add_scope("<module>", ScopeKind.MODULE, 1), "<module>", "module",
                None, MTOK)
    try:
        new_body = _module_body(inst, mod, tree, sc)
    except RecursionError as e:
        raise InstrumentError(filename, 1, 0, "too deeply nested to instrument") from e
    except _Mismatch as e:
        raise InstrumentError(filename, 1, 0, "internal: ast/libcst layout mismatch") from e
    code = mod.with_changes(body=new_body).code
    prologue = _prologue(inst, filename)
    code = code.replace(_PLACEHOLDER, prologue, 1)
    line_map = build_line_map(tree, code)
    kept = sum(1 for i, o in enumerate(line_map, 1) if o == i)
    return Result(code, line_map, len(inst.table.sites), len(inst.table.scopes), inst.skipped,
                  inst.notes(), True, encoding, kept, col_deltas(text, code, line_map))


def _prologue(inst: _Instrumenter, filename: str) -> str:
    # one import binding our one name, then rebinding it: the module gets `_memscope_`
    # and the two guard lists, nothing else (before TRANSFORM_VERSION 12 also
    # `_memscope_hooks`, `_memscope_s` and `_memscope_m`)
    return (f"{PROLOGUE_START}; {H} = {H}("
            f"{HOOKS_CONTRACT}, {filename!r}, __name__, {inst.table.render()}); "
            f"{GUARD}, {SGUARD} = {H}.g, {H}.e; "
            f"{MTOK} = {H}.enter(0, -1)"
            + (f"; {COMP_IMPORT}" if inst.used_comp else ""))


def _splice(text: str, tree: ast.Module, filename: str, options: Options,
            encoding: str) -> Result | None:
    """The fast path (:mod:`memscope_instrument.splice`): edits applied to the original
    text, line map and column shifts from the assembly. ``None``: layout left to the
    libcst path."""
    from memscope_instrument.splice import Fallback, Splicer

    inst = _Instrumenter(text, filename, options)
    sc = _Scope(inst.table.add_scope("<module>", ScopeKind.MODULE, 1), "<module>", "module",
                None, MTOK)
    try:
        sp = Splicer(inst, text, tree, options)
        sp.module(sc, _PLACEHOLDER, ALREADY_INSTRUMENTED_MARKER)
        code, line_map, deltas = sp.assemble(_PLACEHOLDER, _prologue(inst, filename))
        if "\\\n" in text or "\\\r" in text:
            # backslash continuations are the one layout the position checks reason
            # about line by line: re-parse the output to be sure (else libcst path)
            ast.parse(code)
    except (Fallback, RecursionError, SyntaxError, ValueError):
        return None
    kept = sum(1 for i, o in enumerate(line_map, 1) if o == i)
    return Result(code, line_map, len(inst.table.sites), len(inst.table.scopes), inst.skipped,
                  inst.notes(), True, encoding, kept, deltas)


def _has_comment(text: str, needle: str) -> bool:
    for line in split_lines(text):
        s = line.lstrip()
        if s.startswith("#") and needle in s:
            return True
    return False


def _module_body(inst: _Instrumenter, mod: cst.Module, tree: ast.Module,
                 sc: _Scope) -> list[cst.BaseStatement]:
    """The prologue goes right after the docstring and ``__future__`` imports, on the
    last header line when it can (or the first statement's line), else on a new line."""
    nodes = tree.body
    k = 0  # ast statements in the header
    while k < len(nodes) and _is_future_or_doc(nodes[k], k == 0):
        k += 1
    marker = cst.Expr(_name(_PLACEHOLDER))
    comment = cst.TrailingWhitespace(whitespace=cst.SimpleWhitespace("  "),
                                     comment=cst.Comment(ALREADY_INSTRUMENTED_MARKER))
    stmts = list(mod.body)
    j = 0  # libcst statements fully inside the header
    count = 0
    while j < len(stmts) and count < k:
        st = stmts[j]
        size = len(st.body) if isinstance(st, cst.SimpleStatementLine) else 1
        if count + size > k:
            break
        count += size
        j += 1
    if count < k:  # header ends inside stmts[j]: `from __future__ import x; y = 1`
        st = cast(cst.SimpleStatementLine, stmts[j])
        pos = k - count
        inst.plan_runs(nodes[k:], sc)  # the rest of the line and the lines after it
        rest = inst.small_list(st.body[pos:], nodes[k : count + len(st.body)], sc)
        if st.trailing_whitespace.comment is None:
            line = st.with_changes(body=[*st.body[:pos], marker, *rest],
                                   trailing_whitespace=comment)
        else:
            line = st.with_changes(body=[*st.body[:pos], marker, *rest])
        return [*stmts[:j], line, *inst.block(stmts[j + 1 :], nodes[count + len(st.body):],
                                              sc, planned=True)]
    if k > 0:
        last = stmts[j - 1]
        if isinstance(last, cst.SimpleStatementLine) and last.trailing_whitespace.comment \
                is None:
            line = last.with_changes(body=[*last.body, marker], trailing_whitespace=comment)
            return [*stmts[: j - 1], line, *inst.block(stmts[j:], nodes[k:], sc)]
    rest_done = inst.block(stmts[j:], nodes[k:], sc)
    first = rest_done[0] if rest_done else None
    if k == 0 and isinstance(first, cst.SimpleStatementLine) and \
            first.trailing_whitespace.comment is None:
        rest_done[0] = first.with_changes(body=[marker, *first.body],
                                          trailing_whitespace=comment)
        return rest_done
    lead: Sequence[cst.EmptyLine] = []
    if isinstance(first, (cst.SimpleStatementLine, cst.BaseCompoundStatement)) and k == 0:
        lead = first.leading_lines
        rest_done[0] = first.with_changes(leading_lines=[])
    pro = cst.SimpleStatementLine(body=[marker], trailing_whitespace=comment,
                                  leading_lines=lead)
    return [*stmts[:j], pro, *rest_done]
