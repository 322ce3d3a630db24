"""The libcst fallback's building blocks (the nodes it writes) and its rewriter of the
expressions inside one statement (walrus, lambda, comprehension targets). With
:mod:`memscope_instrument.cst_emit`, imported only when the splicer declines a layout,
so that the splice path, which instruments almost every file, never imports libcst."""

from __future__ import annotations

import ast
from typing import Any, cast

import libcst as cst

from memscope.events import BindKind, ScopeKind
from memscope_instrument.analysis import (
    COMP,
    COMP_NAMES,
    GUARD,
    QTOK,
    SGUARD,
    TOK,
    Analysis,
    H,
    Scope,
    own_walk,
)


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




def _scope_tok(sc: Scope) -> cst.BaseExpression:
    """``sc``'s own token as a node (``0`` for a light scope; the module's and a class
    body's are expressions, not names)."""
    return _tok_expr(sc.tok_text())


class ExprRewriter(cst.CSTTransformer):
    """Walrus, lambda (and comprehension targets) inside one statement's expressions.

    ``targets`` are the matching ast nodes sorted by source position; libcst visits
    nodes in source order, so the i-th libcst node of interest is the i-th target.
    """

    def __init__(self, inst: Analysis, scope: Scope, targets: list[ast.AST]) -> None:
        super().__init__()
        self.inst = inst
        self.targets = targets
        self.i = 0
        self.scopes: list[Scope] = [scope]
        self.walrus: list[tuple[int, Scope]] = []
        self.lambdas: list[tuple[Scope | None, int, list[str]]] = []
        self.comps: list[list[Any]] = []  # [scope, generators, next generator, for_in]
        self.compfor: list[tuple[list[tuple[int, str]], Scope, bool]] = []
        self.lambda_scopes: list[Scope] = []  # made at visit_Lambda, entered at its body

    def _next(self, typ: type) -> ast.AST:
        if self.i >= len(self.targets):
            raise _Mismatch
        n = self.targets[self.i]
        if not isinstance(n, typ):
            raise _Mismatch
        self.i += 1
        return n

    def visit_NamedExpr(self, node: cst.NamedExpr) -> bool:
        a = cast(ast.NamedExpr, self._next(ast.NamedExpr))
        sc = self.inst.walrus_scope(self.scopes[-1])
        site, owner = self.inst.site_for(a.target.id, a.target, sc, BindKind.WALRUS)
        self.walrus.append((site, owner))
        return True

    def leave_NamedExpr(self, original: cst.NamedExpr, updated: cst.NamedExpr) -> cst.NamedExpr:
        site, owner = self.walrus.pop()
        tok = _tok_expr(self.inst.tok_name(owner, self.scopes[-1]))
        return updated.with_changes(value=_value_bind(site, updated.value, tok))

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        a = cast(ast.Lambda, self._next(ast.Lambda))
        parent = self.scopes[-1]
        has_yield = any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in own_walk([a.body]))
        light = has_yield or self.inst.uses_locals(a) or self.inst.lambda_in_iterable(a)
        qual = parent.child_qual("<lambda>")
        idx = self.inst.table.add_scope(qual, ScopeKind.LAMBDA, a.lineno)
        sc = Scope(idx, qual, "lambda", parent, None if light else TOK)
        first, params = self.inst.param_sites(a.args, sc)
        if has_yield:
            self.inst.skip("lambda containing yield: scope not tracked", a.lineno)
        self.lambdas.append((None if has_yield else sc, first, params))
        self.lambda_scopes.append(sc)
        return True

    # the defaults are evaluated in the enclosing scope: the lambda's own scope is
    # entered for its body only (a `:=` in a default binds in the enclosing scope)
    def visit_Lambda_body(self, node: cst.Lambda) -> None:
        self.scopes.append(self.lambda_scopes.pop())

    def leave_Lambda_body(self, node: cst.Lambda) -> None:
        self.scopes.pop()

    def leave_Lambda(self, original: cst.Lambda, updated: cst.Lambda) -> cst.Lambda:
        sc, first, params = self.lambdas.pop()
        if sc is None:
            return updated
        if sc.tok is None:  # calls locals(): no token local, bind params with tok 0
            if not params:
                return updated
            binds = [_call("bind", _int(first + k), _name(p), cst.Integer("0"))
                     for k, p in enumerate(params)]
            body = cst.Subscript(
                cst.Tuple([*(cst.Element(b) for b in binds), cst.Element(updated.body)]),
                [cst.SubscriptElement(cst.Index(_int(-1)))],
            )
            return updated.with_changes(body=body)
        enter = _call("enter", _int(sc.index), _int(first if params else -1),
                      *(_name(p) for p in params))
        tokset = cst.NamedExpr(_name(TOK), _and(_guard(SGUARD, sc.index), enter),
                               lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        body = cst.Subscript(  # ((tok := guard and enter), body, tok and exit(tok))[1]
            cst.Tuple([cst.Element(tokset), cst.Element(updated.body),
                       cst.Element(_and(_name(TOK), _call("exit", _name(TOK))))]),
            [cst.SubscriptElement(cst.Index(_int(1)))],
        )
        return updated.with_changes(body=body)

    # comprehensions (only when Options.comprehensions): see Splicer._comprehension
    def _visit_comp(self, node: Any) -> bool:
        if not self.inst.options.comprehensions:
            return True
        a = cast(ast.expr, self._next(ast.expr))
        if type(a).__name__ not in COMP_NAMES:
            raise _Mismatch
        sc = self.inst.comp_scope(a, self.scopes[-1])
        self.comps.append([sc, cast(Any, a).generators, 0, node.for_in])
        self.scopes.append(sc)
        return True

    def _leave_comp(self, original: Any, updated: Any) -> Any:
        if self.inst.options.comprehensions:
            self.comps.pop()
            self.scopes.pop()
        return updated

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _visit_comp
    leave_ListComp = leave_SetComp = _leave_comp  # type: ignore[assignment]
    leave_DictComp = leave_GeneratorExp = _leave_comp  # type: ignore[assignment]

    def visit_CompFor(self, node: cst.CompFor) -> bool:
        if not self.inst.options.comprehensions:
            return True
        rec = self.comps[-1]
        gens = rec[1]
        if rec[2] >= len(gens):
            raise _Mismatch
        g = gens[rec[2]]
        rec[2] += 1
        sc = rec[0]
        self.compfor.append((self.inst.comp_sites(g, sc), sc, node is rec[3]))
        return True

    def visit_CompFor_iter(self, node: cst.CompFor) -> None:
        self.inst.in_iterable += 1  # no `:=` in there (Analysis.lambda_in_iterable)
        # the outermost iterable is evaluated in the enclosing scope
        if self.inst.options.comprehensions:
            sc = self.scopes[-1]
            self.scopes.append(sc.parent if self.compfor[-1][2] and sc.parent else sc)

    def leave_CompFor_iter(self, node: cst.CompFor) -> None:
        self.inst.in_iterable -= 1
        if self.inst.options.comprehensions:
            self.scopes.pop()

    def leave_CompFor(self, original: cst.CompFor, updated: cst.CompFor) -> cst.CompFor:
        if not self.inst.options.comprehensions:
            return updated
        sites, sc, first = self.compfor.pop()
        tok = _scope_tok(sc)
        if first and sc.tok:
            target = cst.Tuple([cst.Element(_name(QTOK)), cst.Element(_paren(updated.target))],
                               lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
            it = cst.Call(cst.Call(_name(COMP), [cst.Arg(_name(H)), cst.Arg(_int(sc.index))]),
                          [cst.Arg(updated.iter)])
            updated = updated.with_changes(target=target, iter=it)
        if not sites:
            return updated
        binds = [cst.Element(_call("bind", _int(s), _name(n), tok)) for s, n in sites]
        test = cst.Subscript(cst.Tuple([*binds, cst.Element(_name("True"))]),
                             [cst.SubscriptElement(cst.Index(_int(-1)))])
        return updated.with_changes(ifs=[cst.CompIf(test), *updated.ifs])
