"""The libcst fallback emitter: writes the instrumented module for the layouts the
splicer (:mod:`memscope_instrument.splice`) declines, by rewriting a libcst tree.

Which layouts (where ``splice.Splicer`` raises ``Fallback``): a statement or decorator
that does not begin its physical line (a backslash continuation in front of it), a
suite behind a backslash continuation, a body whose indentation does not extend its
header's, a module header (docstring, ``__future__`` imports) whose last line holds
more statements and a comment, a module whose first statement's line starts with
whitespace, a comprehension iterable it cannot delimit, and any spliced output that
does not re-parse when the source has backslash continuations. None of 150
standard-library files needs it (docs/transformer.md).

The rules are :class:`~memscope_instrument.analysis.Analysis`'s (the same calls, in the
same order, as the splicer makes, so the site table is the same); this module only
turns its answers into libcst nodes. The ``ast`` and libcst trees are walked in
lockstep at statement granularity (a libcst ``SimpleStatementLine`` holds as many small
statements as ``ast`` has); expressions are descended into only where a walrus, a
lambda (or, with ``Options.comprehensions``, a comprehension) is on the statement's
lines (:class:`~memscope_instrument.cst_exprs.ExprRewriter`). A disagreement between
the two trees raises ``_Mismatch``.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any, cast

import libcst as cst

from memscope.events import BindKind, ScopeKind
from memscope_instrument.analysis import (
    CTOK,
    GUARD,
    SGUARD,
    TOK,
    Analysis,
    Emitter,
    H,
    Scope,
    is_future_or_doc,
    pattern_names,
)
from memscope_instrument.cst_exprs import (
    ExprRewriter,
    _and,
    _call,
    _expr_stmt,
    _guard,
    _int,
    _Mismatch,
    _name,
    _scope_tok,
    _tok_expr,
    _value_bind,
)

__all__ = ["CstEmitter", "CstError", "emit"]


class CstError(Exception):
    """The fallback could not write this module (the caller reports where and why)."""

    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(f"{line}:{col}: {message}")
        self.line = line
        self.col = col
        self.message = message


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



class CstEmitter(Emitter[cst.BaseSmallStatement]):
    """Writes libcst nodes for one module (an :class:`Emitter` of small statements).

    State: ``an``, the :class:`Analysis` that owns the rules, the site and scope tables
    and the notes; ``debt``, output lines inserted minus blank lines absorbed so far
    (``absorb`` drops blank lines before a statement to win lines back, so most lines
    keep their number; the line map itself is computed from the output afterwards).
    """

    def __init__(self, an: Analysis) -> None:
        self.an = an
        self.debt = 0

    def tok_for(self, owner: Scope, here: Scope) -> cst.BaseExpression:
        return _tok_expr(self.an.tok_name(owner, here))

    def bind_name(self, name: str, node: ast.AST, scope: Scope, kind: BindKind) -> cst.Expr:
        site, owner = self.an.site_for(name, node, scope, kind)
        return _expr_stmt(_and(_guard(GUARD, site),
                               _call("bind", _int(site), _name(name), self.tok_for(owner, scope))))

    def group_binds(self, items: Sequence[tuple[ast.Name, BindKind]],
                    scope: Scope) -> list[cst.BaseSmallStatement]:
        out: list[cst.BaseSmallStatement] = []
        for site, group, tok in self.an.name_groups(items, scope):
            tk = _tok_expr(tok)
            if len(group) == 1:
                call = _call("bind", _int(site), _name(group[0]), tk)
            else:
                call = _call("bind_group", _int(site),
                             cst.Tuple([cst.Element(_name(x)) for x in group]), tk)
            out.append(_expr_stmt(_and(_guard(GUARD, site), call)))
        return out

    def expr(self, node: Any, parts: Sequence[ast.AST | None], scope: Scope,
             first: int, last: int) -> Any:
        """Rewrite walrus/lambda/comprehensions inside ``node`` (a libcst node or list)."""
        if not self.an.idx.any("expr", first, last):
            return node
        comps = self.an.options.comprehensions
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
        mark = self.an.table.mark()
        skipped = self.an.skipped
        depth = self.an.in_iterable
        rw = ExprRewriter(self.an, scope, wanted)
        try:
            if isinstance(node, list):
                new: Any = [n.visit(rw) for n in node]
            else:
                new = node.visit(rw)
            if rw.i != len(wanted):
                raise _Mismatch
        except _Mismatch:
            self.an.table.rollback(mark)
            self.an.skipped = skipped
            self.an.in_iterable = depth
            self.an.skip("expression not instrumented (layout not understood)", first)
            return node
        return new

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
              scope: Scope, planned: bool = False) -> list[cst.BaseStatement]:
        if not planned:
            self.an.plan_runs(nodes, scope)
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
              scope: Scope, planned: bool = False) -> cst.BaseSuite:
        """``planned``: the caller ran ``plan_runs`` on ``nodes`` (a ``for`` body)."""
        if isinstance(body, cst.SimpleStatementSuite):
            if len(body.body) != len(nodes):
                raise _Mismatch
            if not planned:
                self.an.plan_runs(nodes, scope)
            return body.with_changes(body=self.small_list(body.body, nodes, scope))
        blk = cast(cst.IndentedBlock, body)
        return blk.with_changes(body=self.block(blk.body, nodes, scope, planned))

    def small_list(self, smalls: Sequence[cst.BaseSmallStatement], nodes: Sequence[ast.stmt],
                   scope: Scope) -> list[cst.BaseSmallStatement]:
        out: list[cst.BaseSmallStatement] = []
        for s, a in zip(smalls, nodes, strict=False):
            out.extend(self.small(s, a, scope))
        return out

    def small(self, s: cst.BaseSmallStatement, a: ast.stmt,
              scope: Scope) -> list[cst.BaseSmallStatement]:
        first, last = a.lineno, a.end_lineno or a.lineno
        if self.an.ignored(first, last):
            self.an.skip("`# memscope: ignore`", first)
            return [s]
        if isinstance(a, (ast.Global, ast.Nonlocal, ast.Pass, ast.Break, ast.Continue)):
            return [s]
        s = self.expr(s, [a], scope, first, last)
        if (isinstance(a, ast.Assign) and not isinstance(s, cst.Assign)) or (
                isinstance(a, ast.AnnAssign) and not isinstance(s, cst.AnnAssign)):
            return [s]  # the two trees disagree: leave the statement as it is
        got = self.an.small_binds(a, scope, self)
        if got is None:
            return [s]
        after, wraps = got
        if wraps:
            value = cast(cst.Assign, s).value
            for at in reversed(wraps):
                value = self.wrap_attr(at, value, scope)
            s = cast(cst.Assign, s).with_changes(value=value)
        return [s, *after]

    def unbind_stmt(self, site: int, owner: Scope | None,
                    scope: Scope) -> cst.BaseSmallStatement:
        tok = _scope_tok(scope) if owner is None else self.tok_for(owner, scope)
        return _expr_stmt(_call("unbind", _int(site), tok))

    def wrap_attr(self, at: ast.Attribute, value: cst.BaseExpression,
                  scope: Scope) -> cst.BaseExpression:
        return _value_bind(self.an.attr_site(at, scope), value, _scope_tok(scope))

    def attr_bind(self, at: ast.Attribute, scope: Scope) -> cst.BaseSmallStatement:
        site, base, attr = self.an.attr_readback(at, scope)
        return _expr_stmt(_and(_guard(GUARD, site), _call(
            "bind_attr", _int(site), _name(base), cst.SimpleString(repr(attr)),
            _scope_tok(scope))))

    def compound(self, st: cst.BaseStatement, a: ast.stmt,
                 scope: Scope) -> list[cst.BaseStatement]:
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
            entry = [] if self.an.ignored(a.lineno) else self.an.entry_names([a.target],
                                                                       BindKind.FOR)
            joined = self.an.plan_runs(a.body, scope, entry)
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
            if not self.an.ignored(a.lineno):
                entry = self.an.entry_names([i.optional_vars for i in a.items
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

    def orelse(self, node: Any, nodes: list[ast.stmt], scope: Scope) -> Any:
        if node is None:
            return None
        if isinstance(node, cst.If):  # elif
            return self.if_stmt(node, cast(ast.If, nodes[0]), scope)
        node = self.absorb(node)
        return node.with_changes(body=self.suite(node.body, nodes, scope))

    def if_stmt(self, st: cst.If, a: ast.If, scope: Scope) -> cst.If:
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

    def try_stmt(self, st: Any, a: Any, scope: Scope) -> Any:
        body = self.suite(st.body, a.body, scope)
        handlers = []
        for h, ah in zip(st.handlers, a.handlers, strict=False):
            h = self.absorb(h)
            if h.type is not None and ah.type is not None:
                h = h.with_changes(type=self.expr(h.type, [ah.type], scope, ah.lineno,
                                                  ah.body[0].lineno))
            hbody = self.suite(h.body, ah.body, scope)
            if ah.name and not self.an.ignored(ah.lineno):
                site, owner = self.an.site_for(ah.name, ah, scope, BindKind.EXCEPT)
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

    def match_stmt(self, st: cst.Match, a: ast.Match, scope: Scope) -> cst.Match:
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
            if not self.an.ignored(line):
                found: list[tuple[str, ast.AST]] = []
                pattern_names(ac.pattern, found)
                seen: set[str] = set()
                small: list[cst.BaseSmallStatement] = []
                for name, node in found:
                    if name not in seen:
                        seen.add(name)
                        small.append(self.bind_name(name, node, scope, BindKind.MATCH))
                body = self.prefix_counted(body, small)
            cases.append(c.with_changes(body=body))
        return st.with_changes(cases=cases)

    def header_exprs(self, st: Any, a: Any, scope: Scope) -> Any:
        first = a.decorator_list[0].lineno if a.decorator_list else a.lineno
        last = a.body[0].lineno
        st = st.with_changes(decorators=self.expr(list(st.decorators), list(a.decorator_list),
                                                  scope, first, last))
        if isinstance(st, cst.FunctionDef):
            args = a.args
            parts = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
            if not self.an.idx.any("expr", first, last):
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
                 scope: Scope) -> list[cst.BaseStatement]:
        if self.an.is_ignored_def(a):
            self.an.skip("function opted out (`@memscope.ignore` / `# memscope: ignore`)",
                      a.lineno)
            return [st]
        st = self.header_exprs(st, a, scope)
        sc, idx, first, params, light = self.an.function_scope(a, scope)
        if light:
            self.an.skip("function calls locals()/vars()/dir(): no scope token", a.lineno)
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
                 scope: Scope, kind: BindKind) -> list[cst.BaseStatement]:
        self.debt += 1
        return [cst.SimpleStatementLine([self.bind_name(a.name, a, scope, kind)])]

    def classdef(self, st: cst.ClassDef, a: ast.ClassDef,
                 scope: Scope) -> list[cst.BaseStatement]:
        if self.an.is_ignored_def(a):
            self.an.skip("class opted out (`@memscope.ignore` / `# memscope: ignore`)", a.lineno)
            return [st]
        st = self.header_exprs(st, a, scope)
        qual = scope.child_qual(a.name)
        idx = self.an.table.add_scope(qual, ScopeKind.CLASS, a.lineno)
        light = self.an.uses_locals(a)
        sc = Scope(idx, qual, "class", scope, None if light else CTOK)
        self.an.declarations(a, a.body, sc)
        if light:
            self.an.skip("class body calls locals()/vars()/dir(): no scope token", a.lineno)
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

    def scope_body(self, body: cst.BaseSuite, nodes: list[ast.stmt], sc: Scope,
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



def _module_body(inst: CstEmitter, mod: cst.Module, tree: ast.Module, sc: Scope,
                 placeholder: str, marker_comment: str) -> list[cst.BaseStatement]:
    """The prologue goes right after the docstring and ``__future__`` imports, on the
    last header line when it can (or the first statement's line), else on a new line."""
    nodes = tree.body
    k = 0  # ast statements in the header
    while k < len(nodes) and is_future_or_doc(nodes[k], k == 0):
        k += 1
    marker = cst.Expr(_name(placeholder))
    comment = cst.TrailingWhitespace(whitespace=cst.SimpleWhitespace("  "),
                                     comment=cst.Comment(marker_comment))
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
        inst.an.plan_runs(nodes[k:], sc)  # the rest of the line and the lines after it
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




def emit(an: Analysis, text: str, tree: ast.Module, sc: Scope, placeholder: str,
         marker: str) -> str:
    """The instrumented module, with ``placeholder`` (a name statement) where the
    prologue goes, on the line ending with the comment ``marker``."""
    try:
        mod = cst.parse_module(text)
    except cst.ParserSyntaxError as e:
        raise CstError(e.raw_line, e.raw_column, e.message) from e
    except Exception as e:  # libcst internal limits (recursion, ...)
        raise CstError(1, 0, f"libcst could not parse: {e}") from e
    em = CstEmitter(an)
    try:
        new_body = _module_body(em, mod, tree, sc, placeholder, marker)
    except RecursionError as e:
        raise CstError(1, 0, "too deeply nested to instrument") from e
    except _Mismatch as e:
        raise CstError(1, 0, "internal: ast/libcst layout mismatch") from e
    return mod.with_changes(body=new_body).code
