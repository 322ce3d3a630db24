"""The fast path of the transformer: insert text into the original source.

The rules are :class:`~memscope_instrument.analysis.Analysis`'s (see
docs/transformer.md); this module only decides *how* the output is written. Everything
the transformer adds is an insertion at a position ``ast`` knows (a statement's start
or end, an expression's start or end, the end of a physical line), or one more
indentation unit on the lines of a body that gets a ``try:`` wrapper, or a blank line
dropped to win back a line. The output is the original text with those edits applied, so no code
generation of the whole module is needed, and the line map and column shifts fall out
of the assembly for free (no second parse of the output).

Layouts this path does not handle (a statement that does not start its physical line
where it has to, a backslash continuation in the way, a comprehension whose iterable
is hard to delimit) raise :class:`Fallback`; the caller then uses the libcst fallback
(:mod:`memscope_instrument.cst_emit`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

from memscope.events import BindKind, ScopeKind
from memscope_instrument.analysis import (
    COMP,
    CTOK,
    GUARD,
    QTOK,
    SGUARD,
    TOK,
    Analysis,
    Emitter,
    H,
    Scope,
    is_future_or_doc,
    own_walk,
    pattern_names,
)
from memscope_instrument.options import Options

__all__ = ["Fallback", "Splicer"]

_NL = re.compile(r"\r\n|\r|\n")
_WS = " \t\f"
_SIMPLE_HEADER = (ast.Expr, ast.ImportFrom)


class Fallback(Exception):
    """This layout is left to the libcst path."""


def _first_line(a: ast.stmt) -> int:
    decos = getattr(a, "decorator_list", None)
    return decos[0].lineno if decos else a.lineno


_COMPOUND: tuple[type[ast.stmt], ...] = (
    ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If, ast.For, ast.AsyncFor,
    ast.While, ast.With, ast.AsyncWith, ast.Try, ast.Match)
if hasattr(ast, "TryStar"):
    _COMPOUND = (*_COMPOUND, ast.TryStar)


class Splicer(Emitter[str]):
    """Walks the ``ast`` of one module and records the edits; :meth:`assemble` applies
    them. ``inst`` is the :class:`~memscope_instrument.analysis.Analysis` that owns the
    site table, the notes and the rules."""

    def __init__(self, inst: Analysis, text: str, tree: ast.Module, options: Options) -> None:
        self.i = inst
        self.text = text
        self.tree = tree
        self.options = options
        lines: list[str] = []
        eols: list[str] = []
        pos = 0
        for m in _NL.finditer(text):
            lines.append(text[pos : m.start()])
            eols.append(m.group())
            pos = m.end()
        if pos < len(text):
            lines.append(text[pos:])
            eols.append("")
        self.lines = lines
        self.eols = eols
        self.nl = eols[0] if eols and eols[0] else "\n"
        # line -> [(col, seq, text, owners)]; owners[k] owns the output line begun after
        # the k-th newline of text (owners[0]: the line the text begins, if it does)
        self.ins: dict[int, list[tuple[int, int, str, tuple[int, ...]]]] = {}
        self.seq = 0
        self.deleted: set[int] = set()
        self.stack: list[tuple[int, str]] = []  # active wrappers: (col, unit)
        self.wraps: list[tuple[int, int, int, str]] = []  # (first, last, col, unit)
        self.debt = 0
        self.strings = self._string_lines()
        self._unit: str | None = None

    # ------------------------------------------------------------------ positions
    def _string_lines(self) -> set[int]:
        """Lines inside a multi-line string literal (after its first line)."""
        t = self.text
        if '"""' not in t and "'''" not in t and "\\\n" not in t and "\\\r" not in t:
            return set()
        out: set[int] = set()
        for n in ast.walk(self.tree):
            if isinstance(n, (ast.Constant, ast.JoinedStr)):
                end = n.end_lineno or n.lineno
                if end > n.lineno and (isinstance(n, ast.JoinedStr)
                                       or isinstance(n.value, (str, bytes))):
                    out.update(range(n.lineno + 1, end + 1))
        return out

    def c(self, line: int, bcol: int) -> int:
        """ast's utf-8 byte column -> character column."""
        s = self.lines[line - 1]
        if s.isascii():
            return bcol
        return len(s.encode("utf-8")[:bcol].decode("utf-8", "replace"))

    def start(self, n: ast.AST) -> tuple[int, int]:
        ln: int = n.lineno  # type: ignore[attr-defined]
        return ln, self.c(ln, n.col_offset)  # type: ignore[attr-defined]

    def end(self, n: ast.AST) -> tuple[int, int]:
        ln: int = n.end_lineno  # type: ignore[attr-defined]
        return ln, self.c(ln, n.end_col_offset)  # type: ignore[attr-defined]

    def lead(self, line: int) -> str:
        s = self.lines[line - 1]
        return s[: len(s) - len(s.lstrip(_WS))]

    def starts_line(self, line: int, col: int) -> bool:
        if self.lines[line - 1][:col].strip(_WS):
            return False
        return line == 1 or not self.lines[line - 2].endswith("\\")

    def logical_line_end(self, nodes: list[ast.stmt], first: int) -> tuple[int, int, str]:
        """The last simple statement on ``nodes[first]``'s logical line (``a; b; c``), the
        line it ends on, and the text after it there."""
        last = first
        while last + 1 < len(nodes) and nodes[last + 1].lineno == \
                (nodes[last].end_lineno or 0) and not isinstance(nodes[last + 1], _COMPOUND):
            last += 1
        ll = nodes[last].end_lineno or nodes[last].lineno
        return last, ll, self.lines[ll - 1][self.end(nodes[last])[1]:]

    def stmt_head(self, a: ast.stmt) -> tuple[int, str]:
        """First line of a statement that must begin its line, and its indentation."""
        if getattr(a, "decorator_list", None):
            line = _first_line(a)
            if not self.lines[line - 1].lstrip(_WS).startswith("@") or \
                    not self.starts_line(line, len(self.lead(line))):
                raise Fallback
            return line, self.lead(line)
        line, col = self.start(a)
        if not self.starts_line(line, col):
            raise Fallback
        return line, self.lines[line - 1][:col]

    def is_suite(self, header_line: int, body0: ast.stmt) -> bool:
        line, col = self.start(body0)
        if line == header_line:
            return True
        pre = self.lines[line - 1][:col]
        if pre.strip(_WS):
            if self.lines[line - 1][len(self.lead(line))] == "\\":
                raise Fallback
            return True  # header spans lines and the body follows its colon
        # a body behind a backslash continuation is on the header's logical line
        return self.lines[line - 2].endswith("\\")

    def unit(self) -> str:
        if self._unit is None:
            self._unit = "    "
            for a in self.tree.body:
                body = getattr(a, "body", None)
                if isinstance(a, _COMPOUND) and body and isinstance(body, list):
                    ln = body[0].lineno
                    if ln != a.lineno:
                        u = self.lead(ln).rsplit("\f", 1)[-1]
                        if u and not u.strip(_WS):
                            self._unit = u
                            break
        return self._unit

    def ind(self, base: str) -> str:
        """``base`` (an original indentation) as it comes out, given the active wrappers."""
        out = base
        for col, unit in reversed(self.stack):
            if col <= len(base):
                out = out[:col] + unit + out[col:]
        return out

    # ------------------------------------------------------------------ edits
    def put(self, line: int, col: int, text: str, owners: tuple[int, ...] = ()) -> None:
        self.seq += 1
        self.ins.setdefault(line, []).append((col, self.seq, text, owners))

    def put_end_of_line(self, line: int, text: str, owners: tuple[int, ...]) -> None:
        self.put(line, len(self.lines[line - 1]), text, owners)

    def absorb(self, prev_end: int, next_start: int) -> None:
        """Drop blank lines between two statements to win back inserted lines."""
        ln = prev_end + 1
        while self.debt > 0 and ln < next_start:
            if not self.lines[ln - 1].strip(_WS) and ln not in self.strings:
                self.deleted.add(ln)
                self.debt -= 1
            ln += 1

    def push(self, first: int, last: int, col: int, unit: str) -> None:
        self.stack.append((col, unit))
        self.wraps.append((first, last, col, unit))

    # ------------------------------------------------------------------ text
    def call(self, meth: str, *args: object) -> str:
        return f"{H}.{meth}({', '.join(str(a) for a in args)})"

    def tok(self, sc: Scope) -> str:
        return sc.tok if sc.tok else "0"

    def tok_for(self, owner: Scope, here: Scope) -> str:
        return str(self.i.tok_name(owner, here))

    def bind_name(self, name: str, node: ast.AST, scope: Scope, kind: BindKind) -> str:
        site, owner = self.i.site_for(name, node, scope, kind)
        return f"{GUARD}[{site}] and " + self.call("bind", site, name,
                                                          self.tok_for(owner, scope))

    def group_binds(self, items: Sequence[tuple[ast.Name, BindKind]],
                    scope: Scope) -> list[str]:
        """One guarded read-back per group of names (``name_groups``)."""
        out = []
        for site, group, tok in self.i.name_groups(items, scope):
            if len(group) == 1:
                call = self.call("bind", site, group[0], tok)
            else:
                call = self.call("bind_group", site, "(" + ", ".join(group) + ")", tok)
            out.append(f"{GUARD}[{site}] and {call}")
        return out

    def value_bind(self, site: int) -> str:
        """The opener of a value-passing bind (``:=``, ``name.attr = v``): behind the
        site's guard, ``bind`` or its pass-through (the value is written once)."""
        return f"({H}.bind if {GUARD}[{site}] else {H}.p)({site}, ("

    # ------------------------------------------------------------------ expressions
    def expr(self, parts: Sequence[ast.AST | None], scope: Scope, first: int,
             last: int) -> None:
        if not self.i.idx.any("expr", first, last):
            return
        for p in parts:
            if p is not None:
                self._visit(p, scope)

    def _visit(self, n: ast.AST, sc: Scope) -> None:
        i = self.i
        if isinstance(n, ast.NamedExpr):
            assert isinstance(n.target, ast.Name)
            site, owner = i.site_for(n.target.id, n.target, i.walrus_scope(sc),
                                     BindKind.WALRUS)
            ln, col = self.start(n.value)
            self.put(ln, col, self.value_bind(site))
            self._visit(n.value, sc)
            ln, col = self.end(n.value)
            self.put(ln, col, f"), {self.tok_for(owner, sc)})")
            return
        if isinstance(n, ast.Lambda):
            self._lambda(n, sc)
            return
        if isinstance(n, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            if self.options.comprehensions:
                self._comprehension(n, sc)
                return
            for g in n.generators:  # the iterables, where Python allows no `:=`
                with i.comp_iterable():
                    self._visit(g.iter, sc)
            for ch in ast.iter_child_nodes(n):
                if not isinstance(ch, ast.comprehension):
                    self._visit(ch, sc)
            for g in n.generators:
                for c in g.ifs:
                    self._visit(c, sc)
            return
        for ch in ast.iter_child_nodes(n):
            self._visit(ch, sc)

    def _lambda(self, a: ast.Lambda, parent: Scope) -> None:
        i = self.i
        for d in (*a.args.defaults, *(d for d in a.args.kw_defaults if d is not None)):
            self._visit(d, parent)
        has_yield = any(isinstance(n, (ast.Yield, ast.YieldFrom))
                        for n in own_walk([a.body]))
        light = has_yield or i.uses_locals(a) or i.lambda_in_iterable(a)
        qual = parent.child_qual("<lambda>")
        idx = i.table.add_scope(qual, ScopeKind.LAMBDA, a.lineno)
        sc = Scope(idx, qual, "lambda", parent, None if light else TOK)
        first, params = i.param_sites(a.args, sc)
        if has_yield:
            i.skip("lambda containing yield: scope not tracked", a.lineno)
            self._visit(a.body, sc)
            return
        bl, bc = self.start(a.body)
        opener = closer = ""
        if sc.tok is None:
            if params:
                opener = "(" + "".join(self.call("bind", first + k, p, 0) + ", "
                                       for k, p in enumerate(params))
                closer = ")[-1]"
        else:
            # ((tok := guard and enter(...)), body, tok and exit(tok))[1]: no call at all
            # while the lambda's scope sleeps (a hot `key=lambda r: r[1]`)
            enter = self.call("enter", idx, first if params else -1, *params)
            opener = f"(({TOK} := {SGUARD}[{idx}] and {enter}), "
            closer = f", {TOK} and {self.call('exit', TOK)})[1]"
        if opener:
            self.put(bl, bc, opener)
        self._visit(a.body, sc)
        if closer:
            el, ec = self.end(a.body)
            self.put(el, ec, closer)

    def _comprehension(self, n: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp,
                       parent: Scope) -> None:
        """A comprehension is a scope of its own (``Options.comprehensions``)::

            [e for t in it if c]
            -> [e for (_memscope_q, t) in _memscope_c(_memscope_, S)(it)
                  if (_memscope_.bind(N, t, _memscope_q), True)[-1] if c]

        ``_memscope_c(h, S)`` (``memscope_instrument.sites.comprehension``) returns
        ``functools.partial(zip, toks)``: ``zip`` (C) calls ``iter(it)`` in the
        enclosing scope, where Python does; ``toks`` calls ``enter`` at the first step
        of the comprehension's own frame and then repeats the token, so each element
        comes with it and the targets are bound with it; the instance exits when the
        iterator is freed (the comprehension finished, raised, or the generator
        expression was exhausted, closed or collected). Only C code runs between the
        user's code and the iterable, so tracebacks are unchanged.
        """
        i = self.i
        sc = i.comp_scope(n, parent)
        kids: list[ast.AST] = [n.key, n.value] if isinstance(n, ast.DictComp) else [n.elt]
        for k, g in enumerate(n.generators):
            sites = i.comp_sites(g, sc)
            self._visit(g.target, sc)
            wrap = k == 0 and sc.tok is not None
            if wrap:
                tl, tc = self.start(g.target)
                self.put(tl, tc, f"({QTOK}, (")
                tl, tc = self.end(g.target)
                self.put(tl, tc, "))")
                il, ic = self.start(g.iter)
                self.put(il, ic, f"{COMP}({H}, {sc.index})(")
            with i.comp_iterable():
                self._visit(g.iter, parent if k == 0 else sc)
            if wrap:
                il, ic = self.end(g.iter)
                self.put(il, ic, ")")
            if sites:
                ln, col = self._after_iter(g.iter)
                tok = self.tok(sc)
                binds = "".join(self.call("bind", s, nm, tok) + ", " for s, nm in sites)
                self.put(ln, col, f" if ({binds}True)[-1]")
            for c in g.ifs:
                self._visit(c, sc)
        for kid in kids:
            self._visit(kid, sc)

    def _after_iter(self, it: ast.expr) -> tuple[int, int]:
        """The position right after a comprehension's iterable, its parentheses included."""
        sl, sc_ = self.start(it)
        s = self.lines[sl - 1]
        k = sc_
        opened = 0
        while True:
            while k > 0 and s[k - 1] in _WS:
                k -= 1
            if k > 0 and s[k - 1] == "(":
                opened += 1
                k -= 1
                continue
            break
        if k < 2 or s[k - 2 : k] != "in":
            raise Fallback
        el, ec = self.end(it)
        e = self.lines[el - 1]
        while opened:
            while ec < len(e) and e[ec] in _WS:
                ec += 1
            if ec < len(e) and e[ec] == ")":
                ec += 1
                opened -= 1
            else:
                raise Fallback
        return el, ec

    # ------------------------------------------------------------------ blocks
    def block(self, nodes: Sequence[ast.stmt], scope: Scope, planned: bool = False) -> None:
        """``planned``: the caller ran ``plan_runs`` on ``nodes`` (a ``for`` body)."""
        if not planned:
            self.i.plan_runs(nodes, scope)
        prev_end = 0
        for a in nodes:
            if prev_end and self.debt > 0:
                self.absorb(prev_end, _first_line(a))
            if isinstance(a, _COMPOUND):
                self.compound(a, scope)
            else:
                self.small(a, scope)
            prev_end = a.end_lineno or a.lineno

    def small(self, a: ast.stmt, scope: Scope) -> None:
        i = self.i
        first, last = a.lineno, a.end_lineno or a.lineno
        if i.ignored(first, last):
            i.skip("`# memscope: ignore`", first)
            return
        if isinstance(a, (ast.Global, ast.Nonlocal, ast.Pass, ast.Break, ast.Continue)):
            return
        got = i.small_binds(a, scope, self)
        if got is None:
            return
        after, wraps = got
        closers: list[tuple[int, int, str]] = []
        if wraps:
            assert isinstance(a, ast.Assign)
            vl, vc = self.start(a.value)
            el, ec = self.end(a.value)
            for at in wraps:  # outermost first
                site = self.wrap_site(at, scope)
                self.put(vl, vc, self.value_bind(site))
                closers.append((el, ec, f"), {self.tok(scope)})"))
        self.expr([a], scope, first, last)
        for el, ec, text in reversed(closers):  # innermost first
            self.put(el, ec, text)
        if after:
            el, ec = self.end(a)
            self.put(el, ec, "".join("; " + x for x in after))

    def unbind_stmt(self, site: int, owner: Scope | None, scope: Scope) -> str:
        tok = self.tok(scope) if owner is None else self.tok_for(owner, scope)
        return self.call("unbind", site, tok)

    def wrap_site(self, at: ast.Attribute, scope: Scope) -> int:
        return int(self.i.attr_site(at, scope))

    def attr_bind(self, at: ast.Attribute, scope: Scope) -> str:
        """``name.attr`` read back after the statement (see ``attr_readback``)."""
        site, base, attr = self.i.attr_readback(at, scope)
        return (f"{GUARD}[{site}] and "
                + self.call("bind_attr", site, base, repr(attr), self.tok(scope)))

    def prefix(self, body: list[ast.stmt], small: list[str], header: int,
               owner: int) -> None:
        """Put statements at the start of a body: on its first line, or on a line of
        their own before a compound statement."""
        if not small:
            return
        b0 = body[0]
        if not isinstance(b0, _COMPOUND):
            ln, col = self.start(b0)
            self.put(ln, col, "; ".join(small) + "; ")
            return
        if self.is_suite(header, b0):  # cannot happen: a compound statement in a suite
            raise Fallback
        line, ind = self.stmt_head(b0)
        self.debt += 1
        self.put(line, 0, self.ind(ind) + "; ".join(small) + "\n", (owner, line))

    def compound(self, a: ast.stmt, scope: Scope) -> None:
        i = self.i
        if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.function(a, scope)
            return
        if isinstance(a, ast.ClassDef):
            self.classdef(a, scope)
            return
        abody: list[ast.stmt] = getattr(a, "body", None) or []
        hdr_last = abody[0].lineno if abody else a.lineno
        if isinstance(a, ast.If):
            self.expr([a.test], scope, a.lineno, hdr_last)
            self.block(a.body, scope)
            self.block(a.orelse, scope)
        elif isinstance(a, (ast.For, ast.AsyncFor)):
            self.expr([a.target, a.iter], scope, a.lineno, hdr_last)
            entry = [] if i.ignored(a.lineno) else i.entry_names([a.target], BindKind.FOR)
            if not i.plan_runs(a.body, scope, entry):  # else read back after the run
                self.prefix(a.body, self.group_binds(entry, scope), a.lineno, a.lineno)
            self.block(a.body, scope, planned=True)
            self.block(a.orelse, scope)
        elif isinstance(a, ast.While):
            self.expr([a.test], scope, a.lineno, hdr_last)
            self.block(a.body, scope)
            self.block(a.orelse, scope)
        elif isinstance(a, (ast.With, ast.AsyncWith)):
            self.expr(list(a.items), scope, a.lineno, hdr_last)
            if not i.ignored(a.lineno):
                targets = [x.optional_vars for x in a.items if x.optional_vars is not None]
                self.prefix(a.body, self.group_binds(i.entry_names(targets, BindKind.WITH),
                                                     scope), a.lineno, a.lineno)
            self.block(a.body, scope)
        elif isinstance(a, ast.Match):
            self.match_stmt(a, scope)
        else:
            self.try_stmt(a, scope)

    def try_stmt(self, a: ast.stmt, scope: Scope) -> None:
        i = self.i
        self.block(a.body, scope)  # type: ignore[attr-defined]
        prev_end = a.body[-1].end_lineno or 0  # type: ignore[attr-defined]
        for h in a.handlers:  # type: ignore[attr-defined]
            if self.debt > 0:
                self.absorb(prev_end, h.lineno)
            prev_end = h.end_lineno or h.lineno
            if h.type is not None:
                self.expr([h.type], scope, h.lineno, h.body[0].lineno)
            if not (h.name and not i.ignored(h.lineno)):
                self.block(h.body, scope)
                continue
            site, owner = i.site_for(h.name, h, scope, BindKind.EXCEPT)
            tok = self.tok_for(owner, scope)
            bind = self.call("bind", site, h.name, tok)
            fin = self.call("unbind", site, tok)
            self.wrapped(h, h.body, [bind], fin, scope, h.lineno)
        self.block(a.orelse, scope)  # type: ignore[attr-defined]
        self.block(a.finalbody, scope)  # type: ignore[attr-defined]

    def match_stmt(self, a: ast.Match, scope: Scope) -> None:
        i = self.i
        self.expr([a.subject], scope, a.lineno, a.cases[0].pattern.lineno if a.cases
                  else a.lineno)
        for c in a.cases:
            line = c.pattern.lineno
            if c.guard is not None:
                self.expr([c.guard], scope, line, c.body[0].lineno)
            if not i.ignored(line):
                found: list[tuple[str, ast.AST]] = []
                pattern_names(c.pattern, found)
                seen: set[str] = set()
                small: list[str] = []
                for name, node in found:
                    if name not in seen:
                        seen.add(name)
                        small.append(self.bind_name(name, node, scope, BindKind.MATCH))
                self.prefix(c.body, small, c.pattern.end_lineno or line, line)
            self.block(c.body, scope)

    # ------------------------------------------------------------------ scopes
    def header_exprs(self, a: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
                     scope: Scope) -> None:
        first = _first_line(a)
        last = a.body[0].lineno
        if not self.i.idx.any("expr", first, last):
            return
        parts: list[ast.AST | None] = list(a.decorator_list)
        if isinstance(a, ast.ClassDef):
            parts += [*a.bases, *a.keywords]
        else:
            args = a.args
            parts += [*args.defaults, *args.kw_defaults]
            parts += [x.annotation for x in (*args.posonlyargs, *args.args,
                                             *args.kwonlyargs,
                                             *(v for v in (args.vararg, args.kwarg) if v))]
            parts.append(a.returns)
        self.expr(parts, scope, first, last)

    def function(self, a: ast.FunctionDef | ast.AsyncFunctionDef, scope: Scope) -> None:
        i = self.i
        if i.is_ignored_def(a):
            i.skip("function opted out (`@memscope.ignore` / `# memscope: ignore`)",
                   a.lineno)
            return
        self.header_exprs(a, scope)
        sc, idx, first, params, light = i.function_scope(a, scope)
        if light:
            i.skip("function calls locals()/vars()/dir(): no scope token", a.lineno)
            start = [self.call("bind", first + k, p, 0) for k, p in enumerate(params)]
            self.scope_body(a, sc, start, None)
        else:
            enter = self.call("enter", idx, first if params else -1, *params)
            alias = f" = {sc.alias}" if sc.alias else ""
            # the token is set before the `try` whose `finally` reads it, so no signal
            # can make that `finally` read it unset; `enter` at the recursion limit
            # (its frame is one too many) leaves the instance unrecorded
            self.scope_body(a, sc, [], f"{TOK} and " + self.call("exit", TOK),
                            (f"{TOK}{alias} = {SGUARD}[{idx}] and {enter}",
                             f"{TOK}{alias} = None"))
        self.def_bind(a, scope, BindKind.FUNC_DEF)

    def classdef(self, a: ast.ClassDef, scope: Scope) -> None:
        i = self.i
        if i.is_ignored_def(a):
            i.skip("class opted out (`@memscope.ignore` / `# memscope: ignore`)", a.lineno)
            return
        self.header_exprs(a, scope)
        qual = scope.child_qual(a.name)
        idx = i.table.add_scope(qual, ScopeKind.CLASS, a.lineno)
        light = i.uses_locals(a)
        sc = Scope(idx, qual, "class", scope, None if light else CTOK)
        i.declarations(a, a.body, sc)
        if light:
            i.skip("class body calls locals()/vars()/dir(): no scope token", a.lineno)
            self.scope_body(a, sc, [], None)
        else:
            # the token is kept by the runtime (`c()` reads it), so the class namespace
            # never sees it set; `global`: our names are not looked up in the namespace
            enter = f"global {H}, {GUARD}; {self.call('enter_class', idx)}"
            self.scope_body(a, sc, [], self.call("exit_class"), (enter, None))
        self.def_bind(a, scope, BindKind.CLASS_DEF)

    def def_bind(self, a: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
                 scope: Scope, kind: BindKind) -> None:
        _line, ind = self.stmt_head(a)
        self.debt += 1
        end = a.end_lineno or a.lineno
        self.put_end_of_line(end, "\n" + self.ind(ind) + self.bind_name(a.name, a, scope, kind),
                             (0, a.lineno))

    def scope_body(self, a: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
                   sc: Scope, start: list[str], fin: str | None,
                   pre: tuple[str, str | None] | None = None) -> None:
        """``doc; enter`` then ``try: body finally: fin`` (``fin`` None: no wrapper);
        ``pre`` (a function's ``tok = enter(...)`` and ``tok = None``) goes before the
        ``try``: ``try: tok = enter(...)`` / ``except RecursionError: tok = None``; a
        class body's ``(enter, None)``: its line as it is."""
        body = a.body
        rest = body
        doc = None
        b0 = body[0]
        if (isinstance(b0, ast.Expr) and isinstance(b0.value, ast.Constant)
                and isinstance(b0.value.value, str)
                and (len(body) == 1 or body[1].lineno != b0.end_lineno)):
            doc = b0
            rest = body[1:]
        if doc is not None and start:
            el, ec = self.end(doc)
            self.put(el, ec, "".join("; " + x for x in start))
            start = []
        if fin is None:
            if rest and start:
                self.prefix(rest, start, a.lineno, a.lineno)
            self.block(rest, sc)
            return
        if not rest:  # only a docstring
            assert doc is not None
            el, ec = self.end(doc)
            self.put(el, ec, ("; " + pre[0] if pre else "") + "; " + fin)
            return
        _head_line, hi = self.stmt_head(a)
        self.wrapped(a, rest, start, fin, sc, a.lineno, hi, pre)

    def wrapped(self, a: ast.stmt | ast.excepthandler, body: list[ast.stmt],
                start: list[str], fin: str, sc: Scope, owner: int,
                hi: str | None = None, pre: tuple[str, str | None] | None = None) -> None:
        """``try: start; body`` / ``finally: fin`` around ``body`` (a def, class or
        except body, or what follows its docstring), after ``pre`` (see
        :meth:`scope_body`)."""
        b0 = body[0]
        header = a.lineno
        end = a.end_lineno or a.lineno
        if hi is None:
            line, col = self.start(a)
            if not self.starts_line(line, col):
                raise Fallback
            hi = self.lines[line - 1][:col]
        lead = ([] if pre is None else [pre[0]] if pre[1] is None
                else [f"try: {pre[0]}", f"except RecursionError: {pre[1]}"])
        pre_s = "".join(x + "; " for x in start)
        if self.is_suite(header, b0):
            # `def f(): a; b` -> the body on a line of its own inside `try:`
            ln, col = self.start(b0)
            out_ind = self.ind(hi) + self.unit()
            self.debt += 2 + len(lead)
            self.put(ln, col, "".join("\n" + out_ind + x for x in lead)
                     + "\n" + out_ind + "try: " + pre_s, (0, *[ln] * len(lead), ln))
            self.block(body, sc)
            self.put_end_of_line(end, "\n" + out_ind + "finally: " + fin, (0, owner))
            return
        line, bi = self.stmt_head(b0)
        eb, eh = bi.rsplit("\f", 1)[-1], hi.rsplit("\f", 1)[-1]  # a form feed resets
        if not eb.startswith(eh) or len(eb) <= len(eh):
            raise Fallback
        unit = eb[len(eh):]
        outer = self.ind(bi)
        self.debt += 2 + len(lead)
        self.push(line, end, len(bi), unit)
        first = "".join(outer + x + "\n" for x in lead) + outer + "try:\n"
        # a function's `enter` and `try:` take the line of its first statement, so its
        # first line event is where plain Python has it (pdb stops there, not at `def`)
        heads = (line if lead else owner,) * (len(lead) + 1)
        if start and isinstance(b0, _COMPOUND):
            self.debt += 1
            self.put(line, 0, first + self.ind(bi) + "; ".join(start) + "\n",
                     (*heads, owner, line))
        else:
            self.put(line, 0, first, (*heads, line))
            if start:
                ln, col = self.start(b0)
                self.put(ln, col, pre_s)
        self.block(body, sc)
        self.stack.pop()
        self.put_end_of_line(end, "\n" + outer + "finally: " + fin, (0, owner))

    # ------------------------------------------------------------------ module
    def module(self, sc: Scope, placeholder: str, marker: str) -> None:
        nodes = self.tree.body
        k = 0
        while k < len(nodes) and is_future_or_doc(nodes[k], k == 0):
            k += 1
        comment = "  " + marker
        if k > 0:
            h = nodes[k - 1]
            el, ec = self.end(h)
            # the last statement on h's logical line
            last, ll, tail = self.logical_line_end(nodes, k - 1)
            if "#" not in tail and "\\" not in tail:
                self.put(el, ec, "; " + placeholder)
                self.block(nodes[k:], sc)
                self.put_end_of_line(ll, comment, ())
            elif last == k - 1:
                self.put_end_of_line(ll, "\n" + placeholder + comment, (0, 1))
                self.block(nodes[k:], sc)
            else:
                raise Fallback
            return
        if not nodes:
            n = len(self.lines)
            if n == 0:
                self.lines.append("")
                self.eols.append("")
                n = 1
            pre = "" if not self.lines[n - 1] and not self.eols[n - 1] else "\n"
            self.put_end_of_line(n, pre + placeholder + comment + "\n", (0, 1, 1))
            return
        s0 = nodes[0]
        line, ind = self.stmt_head(s0)
        if ind:
            raise Fallback
        placed = False
        if not isinstance(s0, _COMPOUND):
            last, ll, tail = self.logical_line_end(nodes, 0)
            if "#" not in tail and "\\" not in tail:
                self.put(line, 0, placeholder + "; ")
                self.block(nodes, sc)
                self.put_end_of_line(ll, comment, ())
                placed = True
        if not placed:
            self.put(line, 0, placeholder + comment + "\n", (1, line))
            self.block(nodes, sc)

    # ------------------------------------------------------------------ output
    def assemble(self, placeholder: str,
                 prologue: str) -> tuple[str, list[int], dict[int, tuple[int, int]]]:
        for items in self.ins.values():
            for j, (col, seq, text, owners) in enumerate(items):
                if placeholder in text:
                    items[j] = (col, seq, text.replace(placeholder, prologue), owners)
                    break
            else:
                continue
            break
        out: list[str] = []
        lmap: list[int] = []
        deltas: dict[int, tuple[int, int]] = {}
        nl = self.nl
        wstart: dict[int, list[tuple[int, int, str]]] = {}
        for first, last, col, unit in self.wraps:
            wstart.setdefault(first, []).append((last, col, unit))
        active: list[tuple[int, int, str]] = []
        strings = self.strings
        deleted = self.deleted
        ins = self.ins
        for ln, s in enumerate(self.lines, 1):
            eol = self.eols[ln - 1]
            if active and active[-1][0] < ln:
                active = [w for w in active if w[0] >= ln]
            ws = wstart.get(ln)
            if ws:
                active.extend(ws)
                active.sort(key=lambda w: w[1])
            if ln in deleted:
                continue
            items = ins.get(ln) or []
            units = None
            if active and ln not in strings:
                stripped = s.lstrip(_WS)
                if stripped:
                    lead = len(s) - len(stripped)
                    units = [(c, u) for _e, c, u in active if c <= lead]
            if not items and not units:
                out.append(s)
                out.append(eol)
                lmap.append(ln)
                continue
            edits: list[tuple[int, int, str, tuple[int, ...]]] = []
            if units:
                edits.extend((c, -1, u, ()) for c, u in units)
            if items:
                edits.extend(items)
            edits.sort(key=lambda e: (e[0], e[1]))
            # walk the line: original segments and inserted texts
            owner = ln
            if edits[0][0] == 0 and edits[0][1] >= 0:
                owner = edits[0][3][0] if edits[0][3] else ln
                if owner == 0:
                    owner = ln
            lmap.append(owner)
            outcol = 0
            need = True  # the first original non-blank character on this output line
            pos = 0
            line_no = len(lmap)
            for col, _seq, text, owners in edits:
                if col > pos:
                    seg = s[pos:col]
                    if need:
                        st = seg.lstrip(_WS)
                        if st:
                            j = len(seg) - len(st)
                            if outcol + j != pos + j:
                                deltas[line_no] = (outcol - pos, outcol + j)
                            need = False
                    out.append(seg)
                    outcol += len(seg)
                    pos = col
                if "\n" in text:
                    parts = text.split("\n")
                    out.append(parts[0])
                    for k, p in enumerate(parts[1:], 1):
                        out.append(nl)
                        lmap.append(owners[k] if k < len(owners) and owners[k] else ln)
                        line_no = len(lmap)
                        out.append(p)
                        outcol = len(p)
                        need = True
                else:
                    out.append(text)
                    outcol += len(text)
            seg = s[pos:]
            if need and seg:
                st = seg.lstrip(_WS)
                if st:
                    j = len(seg) - len(st)
                    if outcol != pos:
                        deltas[line_no] = (outcol - pos, outcol + j)
            out.append(seg)
            out.append(eol)
        code = "".join(out)
        if (not self.eols or not self.eols[-1]) and code.endswith(("\n", "\r")):
            del lmap[len(_NL.findall(code)):]  # no line after a final newline
        return code, lmap, deltas
