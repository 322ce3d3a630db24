"""The transformer's analysis: what a module binds, where, in which scope, and what to
record of it. Plain data out (site and scope tables, ``Scope`` records, names, sites,
tokens as source text); no output is written here.

The two emitters ask :class:`Analysis` what to write and write it their own way: the
splicer (:mod:`memscope_instrument.splice`, text insertions into the original source,
used for almost every file) and the libcst fallback (:mod:`memscope_instrument.cst_emit`,
for the layouts the splicer declines). Both implement :class:`Emitter`, the part of the
output the shared rules (``Analysis.small_binds``) need. See docs/transformer.md.
"""

from __future__ import annotations

import ast
import bisect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from memscope.events import BindKind, ScopeKind
from memscope_instrument.linemap import split_lines
from memscope_instrument.options import Options
from memscope_instrument.sites import SiteTable

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
COMP_NAMES = {"ListComp": "<listcomp>", "SetComp": "<setcomp>", "DictComp": "<dictcomp>",
              "GeneratorExp": "<genexpr>"}


# ---------------------------------------------------------------------------- helpers


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


_SCOPE_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


def own_walk(nodes: Sequence[ast.AST]) -> Iterator[ast.AST]:
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
    nodes = list(own_walk(body if isinstance(body, list) else [body]))
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


def pattern_names(p: ast.pattern, out: list[tuple[str, ast.AST]]) -> None:
    if isinstance(p, ast.MatchAs):
        if p.pattern is not None:
            pattern_names(p.pattern, out)
        if p.name is not None:
            out.append((p.name, p))
    elif isinstance(p, ast.MatchStar):
        if p.name is not None:
            out.append((p.name, p))
    elif isinstance(p, ast.MatchSequence):
        for q in p.patterns:
            pattern_names(q, out)
    elif isinstance(p, ast.MatchMapping):
        for q in p.patterns:
            pattern_names(q, out)
        if p.rest is not None:
            out.append((p.rest, p))
    elif isinstance(p, ast.MatchClass):
        for q in (*p.patterns, *p.kwd_patterns):
            pattern_names(q, out)
    elif isinstance(p, ast.MatchOr):
        if p.patterns:  # every alternative binds the same names
            pattern_names(p.patterns[0], out)


def is_future_or_doc(a: ast.stmt, first: bool) -> bool:
    if isinstance(a, ast.ImportFrom) and a.module == "__future__":
        return True
    return (first and isinstance(a, ast.Expr) and isinstance(a.value, ast.Constant)
            and isinstance(a.value.value, str))


@dataclass
class Scope:
    index: int
    qualname: str
    kind: str  # "module" | "class" | "function" | "lambda" | "comp"
    parent: Scope | None
    tok: str | None  # name holding the instance token, None = light mode (tok 0)
    globals: set[str] = field(default_factory=set)
    nonlocals: set[str] = field(default_factory=set)
    node: ast.AST | None = None  # the def (for `nonlocal` resolution)
    alias: str | None = None  # closure-visible copy of the token (see ALIAS)

    def tok_text(self) -> str:
        """This scope's own token as source: its name, or ``0`` (light: no token)."""
        return self.tok or "0"

    def child_qual(self, name: str) -> str:
        if self.kind == "module":
            return name
        if self.kind in ("class", "comp"):
            return f"{self.qualname}.{name}"
        return f"{self.qualname}.<locals>.{name}"


class LineIndex:
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


# ---------------------------------------------------------------------------- emitters


Out = TypeVar("Out")


class Emitter(Protocol[Out]):
    """What the shared rules (``Analysis.small_binds``) ask of an emitter: the
    read-backs to put after a simple statement, in the emitter's own currency ``Out``
    (source text for the splicer, libcst small statements for the fallback). Each
    method allocates its sites through the :class:`Analysis` the emitter wraps."""

    def bind_name(self, name: str, node: ast.AST, scope: Scope, kind: BindKind) -> Out:
        """``_memscope_g[N] and _memscope_.bind(N, name, tok)``."""
        ...

    def group_binds(self, items: Sequence[tuple[ast.Name, BindKind]],
                    scope: Scope) -> list[Out]:
        """One guarded ``bind``/``bind_group`` per group (``Analysis.name_groups``)."""
        ...

    def attr_bind(self, at: ast.Attribute, scope: Scope) -> Out:
        """``_memscope_g[N] and _memscope_.bind_attr(N, name, 'attr', tok)``."""
        ...

    def unbind_stmt(self, site: int, owner: Scope | None, scope: Scope) -> Out:
        """``_memscope_.unbind(N, tok)`` (``owner`` None: ``scope``'s own token)."""
        ...


# ---------------------------------------------------------------------------- the rules


class Analysis:
    """The rules, over one module: both emitters ask it what to write (sites, scopes,
    tokens, runs, what is skipped) and it never writes output itself.

    State, set up here and filled as an emitter walks the module:

    * ``source``, ``filename``, ``options``, ``lines``: the input, as given and split;
    * ``table``: the module's scope and site tables (``sites.SiteTable``), what the
      prologue registers; every rule that records something adds its site here, in
      the order the emitter asks (so both emitters must ask in the same order);
    * ``skipped``, ``skip_reasons``: what is deliberately not recorded, and why (the
      ``Result``'s ``notes``);
    * ``idx``: a line index of the needles that decide whether a statement needs a
      closer look (walrus, lambda, ``locals()``, ``yield``, ``global``, the ignore
      marker), so most statements are never descended into;
    * ``used_comp``: a comprehension instance needs its helper in the prologue;
    * ``_local_names``, ``_cells``: per scope, the names it binds and the names a nested
      ``def`` rebinds (``nonlocal``), which decide how a name is read back;
    * ``deferred``, ``closers``: runs of binding statements (``plan_runs``): statements
      whose read-back is left to a later one, and the last statement of each run with
      every name of the run;
    * ``in_iterable``: depth of comprehension iterables around the current expression
      (no ``:=`` may be written there).

    The emitters keep their own output state (the splicer its insertions, both a
    ``debt`` of lines inserted minus blank lines absorbed, for the line map).
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
        self.idx = LineIndex(self.lines, {k: v for k, v in needles.items() if v})
        self.idx.hits.setdefault("ignore", [])
        self.used_comp = False  # a comprehension instance needs COMP in the prologue
        self._local_names: dict[int, set[str]] = {}
        self._cells: dict[int, set[str]] = {}  # scope index -> names a nested def rebinds
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

    def owner_scope(self, name: str, scope: Scope) -> tuple[Scope, BindKind | None]:
        if name in scope.globals:
            s: Scope | None = scope
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

    def binds_locally(self, sc: Scope, name: str) -> bool:
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
        for n in own_walk(a.body):
            if isinstance(n, (ast.Nonlocal, ast.Global)):
                own.update(n.names)
        local = _local_names(a)
        return any(x in local and x not in own for x in inner)

    def tok_name(self, owner: Scope, here: Scope) -> str:
        """The expression (source) for ``owner``'s instance token, read in ``here``."""
        if owner is here:
            return here.tok or "0"
        if owner.kind == "module":
            return MTOK
        if owner.tok is None:
            return "0"
        s: Scope | None = here
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

    def attr_site(self, at: ast.Attribute, scope: Scope) -> int:
        return self.table.add_site(at.lineno, self.col(at), scope.index, f"{_dotted(at)}",
                                   BindKind.ATTRIBUTE)

    def attr_readback(self, at: ast.Attribute, scope: Scope) -> tuple[int, str, str]:
        """``name.attr = v`` recorded after the statement by ``bind_attr(site, name,
        'attr', tok)``, which reads the slot or ``__dict__`` entry without running user
        code; ``attr`` as stored (a private ``__x`` inside a class is mangled)."""
        attr = at.attr
        if attr.startswith("__") and not attr.endswith("__"):
            s: Scope | None = scope
            while s is not None and s.kind != "class":
                s = s.parent
            if s is not None:
                cls = s.qualname.rsplit(".", 1)[-1].lstrip("_")
                if cls:
                    attr = f"_{cls}{attr}"
        assert isinstance(at.value, ast.Name)
        return self.attr_site(at, scope), at.value.id, attr

    def site_for(self, name: str, node: ast.AST, scope: Scope,
                 kind: BindKind) -> tuple[int, Scope]:
        owner, override = self.owner_scope(name, scope)
        site = self.table.add_site(getattr(node, "lineno", 0), self.col(node), owner.index,
                                   name, override or kind)
        return site, owner

    def del_sites(self, a: ast.Delete, scope: Scope) -> list[tuple[int, Scope | None]]:
        """The DEL sites of ``del`` (for both output paths), in order: a name's site with
        the scope that owns the name, a ``name.attr``'s site with ``None`` (this scope)."""
        out: list[tuple[int, Scope | None]] = []
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

    def walrus_scope(self, sc: Scope) -> Scope:
        """Where ``:=`` binds: the nearest enclosing scope that is not a comprehension."""
        while sc.kind == "comp" and sc.parent is not None:
            sc = sc.parent
        return sc

    def comp_scope(self, n: ast.expr, parent: Scope) -> Scope:
        """A comprehension's scope (``Options.comprehensions``); ``tok`` None: its
        targets are bound with token 0 (async first loop, or it calls locals())."""
        qual = parent.child_qual(COMP_NAMES[type(n).__name__])
        idx = self.table.add_scope(qual, ScopeKind.COMPREHENSION, n.lineno)
        gens = cast(Any, n).generators
        light = gens[0].is_async or self.uses_locals(n)
        if gens[0].is_async:
            self.skip("async comprehension: targets bound without an instance", n.lineno)
        sc = Scope(idx, qual, "comp", parent, None if light else QTOK)
        if not light:
            self.used_comp = True
        return sc

    def comp_sites(self, g: ast.comprehension, sc: Scope) -> list[tuple[int, str]]:
        names: list[ast.Name] = []
        _target_parts(g.target, names, [], [])
        return [(self.table.add_site(t.lineno, self.col(t), sc.index, t.id, BindKind.FOR),
                 t.id) for t in names]

    def name_groups(self, items: Sequence[tuple[ast.Name, BindKind]],
                    scope: Scope) -> list[tuple[int, list[str], str]]:
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

    def plan_runs(self, nodes: Sequence[ast.stmt], scope: Scope,
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

    def run_member(self, a: ast.stmt, scope: Scope,
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
                scope: Scope) -> tuple[str, bool] | None:
        """The one token of these names (None: they have more than one) and whether one
        of them is ``_shared``."""
        toks = {self.tok_name(self.owner_scope(n.id, scope)[0], scope) for n, _k in items}
        if len(toks) != 1:
            return None
        return toks.pop(), any(self._shared(n.id, scope) for n, _k in items)

    def _shared(self, name: str, scope: Scope) -> bool:
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

    def param_sites(self, args: ast.arguments, scope: Scope) -> tuple[int, list[str]]:
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

    def small_binds(self, a: ast.stmt, scope: Scope,
                    em: Emitter[Out]) -> tuple[list[Out], list[ast.Attribute]] | None:
        """What a simple statement binds, for both output paths: the read-backs to put
        after it, made by ``em`` (an :class:`Emitter`: the ``Splicer`` writes text, the
        libcst fallback ``CstEmitter`` writes nodes), and the ``name.attr`` targets
        whose value the emitter wraps itself. None: leave the statement alone (``from
        __future__ import``). A statement inside a run (``plan_runs``) adds nothing;
        the run's last one adds the read-back of every name of the run."""
        first = a.lineno
        after: list[Out] = []
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

    def declarations(self, node: ast.AST, body: Sequence[ast.stmt], sc: Scope) -> None:
        first = getattr(node, "lineno", 0)
        last = getattr(node, "end_lineno", None) or first
        if not self.idx.any("decl", first, last):
            return
        for n in own_walk(list(body)):
            if isinstance(n, ast.Global):
                sc.globals.update(n.names)
            elif isinstance(n, ast.Nonlocal):
                sc.nonlocals.update(n.names)

    def function_scope(
        self, a: ast.FunctionDef | ast.AsyncFunctionDef, scope: Scope
    ) -> tuple[Scope, int, int, list[str], bool]:
        """The scope a ``def`` opens, for both output paths: its kind, qualname and table
        row, its token (none when the function calls ``locals()``: ``light``), the alias
        nested ``nonlocal`` binds read, its declarations, and its parameter sites.
        Returns (scope, table index, first parameter site, parameter names, light)."""
        is_async = isinstance(a, ast.AsyncFunctionDef)
        gen = self.idx.any("yield", a.lineno, a.end_lineno or a.lineno) and any(
            isinstance(n, (ast.Yield, ast.YieldFrom)) for n in own_walk(a.body))
        if is_async:
            kind = ScopeKind.ASYNC_GENERATOR if gen else ScopeKind.COROUTINE
        elif gen:
            kind = ScopeKind.GENERATOR
        else:
            kind = ScopeKind.METHOD if scope.kind == "class" else ScopeKind.FUNCTION
        qual = scope.child_qual(a.name)
        idx = self.table.add_scope(qual, kind, a.lineno)
        light = self.uses_locals(a)
        sc = Scope(idx, qual, "function", scope, None if light else TOK, node=a)
        if not light and self.needs_alias(a):
            sc.alias = f"{ALIAS}{idx}"
        self.declarations(a, a.body, sc)
        first, params = self.param_sites(a.args, sc)
        return sc, idx, first, params, light

    def is_ignored_def(self, a: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
                       ) -> bool:
        """``@memscope.ignore`` or the ignore marker on the def's header lines."""
        for d in a.decorator_list:
            target = d.func if isinstance(d, ast.Call) else d
            if _dotted(target) in ("memscope.ignore",):
                return True
        first = a.decorator_list[0].lineno if a.decorator_list else a.lineno
        return self.ignored(first, a.body[0].lineno - 1 if a.body[0].lineno > a.lineno
                            else a.lineno)

