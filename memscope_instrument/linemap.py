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
import sys
from collections.abc import Iterator
from types import CodeType
from typing import Any, cast

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


# ---- 3.11+: the lines of a scope's exit, after compiling (docs/transformer.md, "Line events")

# 3.11: the finally's re-raise took the finally statement's line (ours: none, hook.
# _injected_nodes), and a jump with no line is accepted (3.13's test_patma rejects it)
_LINED_RERAISE = sys.version_info < (3, 12)

_EXITS = frozenset({"RETURN_VALUE", "RETURN_CONST", "RERAISE", "RAISE_VARARGS",
                    "JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT"})


def _varint(out: bytearray, val: int) -> None:
    while val >= 64:
        out.append(64 | (val & 63))
        val >>= 6
    out.append(val)


def encode_positions(first_line: int,
                     units: list[tuple[int | None, int | None, int | None, int | None]],
                     ) -> bytes:
    """A ``co_linetable`` (the 3.11+ location table, CPython's Objects/locations.md)
    giving code unit ``k`` the position ``units[k]``, as ``co_positions`` yields them:
    each run of equal positions (at most 8 units an entry) in the long form (code 14),
    or as no location (code 15) when the line is None."""
    out = bytearray()
    put = out.append
    line = first_line
    k = 0
    n = len(units)
    while k < n:
        pos = units[k]
        j = k + 1
        while j < n and j - k < 8 and units[j] == pos:
            j += 1
        ln, eln, col, ecol = pos
        if ln is None:
            put(0xF8 | (j - k - 1))  # 0x80 | 15 << 3
        else:
            put(0xF0 | (j - k - 1))  # 0x80 | 14 << 3
            d = ln - line
            d = (-d << 1) | 1 if d < 0 else d << 1
            for v in (d, 0 if eln is None else eln - ln, 0 if col is None else col + 1,
                      0 if ecol is None else ecol + 1):
                if v < 64:
                    put(v)
                else:
                    _varint(out, v)
            line = ln
        k = j
    return bytes(out)


_Instr = tuple[int, int, int, int, bool]  # offset, end offset, jump target, opcode, ours


def _instructions(code: CodeType) -> list[_Instr]:
    """``code``'s instructions (EXTENDED_ARG prefixes as their own, inline caches in
    the ``end`` of the one they follow), with each jump's target (-1: not a jump) and
    whether it names something of ours (``_memscope_*``). What ``dis`` gives, without
    its formatting: ``dis.get_instructions`` made compiling a module 80% slower."""
    import opcode

    tables = _OPCODE_TABLES or _opcode_tables()
    caches, jrel, back, names, locs, name_shift, pairs = tables
    ours_names = {k for k, n in enumerate(code.co_names) if n.startswith("_memscope_")}
    ours_locs: set[int] = set()
    varname = getattr(code, "_varname_from_oparg", None)
    if varname is not None:
        n_locals = len(code.co_varnames) + len(code.co_cellvars) + len(code.co_freevars)
        for k in range(n_locals):
            try:
                if varname(k).startswith("_memscope_"):
                    ours_locs.add(k)
            except (IndexError, ValueError):
                break
    raw = code.co_code
    out: list[_Instr] = []
    ext = 0
    i = 0
    n = len(raw)
    extended = opcode.EXTENDED_ARG
    while i < n:
        op = raw[i]
        arg = raw[i + 1] | ext
        end = i + 2 + 2 * caches[op]
        if op == extended:
            ext = arg << 8
            out.append((i, end, -1, op, False))
            i = end
            continue
        ext = 0
        target = -1
        if op in jrel:
            target = end + 2 * (-arg if op in back else arg)
        ours = False
        if op in names:
            ours = (arg >> name_shift.get(op, 0)) in ours_names
        elif op in locs:
            ours = (arg in ours_locs if op not in pairs
                    else (arg >> 4) in ours_locs or (arg & 15) in ours_locs)
        out.append((i, end, target, op, ours))
        i = end
    return out


_OPCODE_TABLES: tuple[Any, ...] = ()


def _opcode_tables() -> tuple[Any, ...]:
    global _OPCODE_TABLES
    import opcode

    entries: Any = getattr(opcode, "_inline_cache_entries", {})
    if isinstance(entries, dict):  # 3.13: by name
        caches = [entries.get(name, 0) for name in opcode.opname]
    else:
        caches = list(entries)
    caches += [0] * (256 - len(caches))
    shifts = [("LOAD_GLOBAL", 1), ("LOAD_SUPER_ATTR", 2)]
    if sys.version_info >= (3, 12):  # (its low bit: a method load)
        shifts.append(("LOAD_ATTR", 1))
    shift = {opcode.opmap[n]: s for n, s in shifts if n in opcode.opmap}
    pairs = {op for op in opcode.haslocal if opcode.opname[op].count("FAST") == 2}
    _OPCODE_TABLES = (caches, set(opcode.hasjrel),
                      {op for op in opcode.hasjrel if "BACKWARD" in opcode.opname[op]},
                      set(opcode.hasname), set(opcode.haslocal) | set(opcode.hasfree),
                      shift, pairs)
    return _OPCODE_TABLES


def _except_varint(out: bytearray, val: int, first: bool) -> None:
    """One value of an exception table entry: 6-bit chunks, most significant first,
    0x40 on all but the last, 0x80 on an entry's first byte."""
    chunks = [val & 63]
    val >>= 6
    while val:
        chunks.append(val & 63)
        val >>= 6
    for k, c in enumerate(reversed(chunks)):
        put = c | (64 if k < len(chunks) - 1 else 0) | (128 if first and k == 0 else 0)
        out.append(put)


def encode_exception_table(entries: list[tuple[int, int, int, int, bool]]) -> bytes:
    """A ``co_exceptiontable`` from ``(start, end, target, depth, lasti)`` entries, byte
    offsets as ``dis._parse_exception_table`` gives them (Objects/exception_handling_notes.txt)."""
    out = bytearray()
    for start, end, target, depth, lasti in entries:
        _except_varint(out, start // 2, True)
        _except_varint(out, (end - start) // 2, False)
        _except_varint(out, target // 2, False)
        _except_varint(out, depth << 1 | int(lasti), False)
    return bytes(out)


def _reraise_at_the_raise(code: CodeType, instrs: list[_Instr], units: list[Any],
                          handlers: set[int], lined_reraise: bool = False,
                          ) -> tuple[CodeType, dict[int, int]]:
    """Our ``finally`` bodies' exception path, made to end where plain code ends: at
    the instruction that raised. Each handler of ours (a region of no line that starts
    at an exception handler with PUSH_EXC_INFO, reads a name of ours and ends in
    ``RERAISE 0``) is entered with the raising instruction's offset pushed (its
    exception table entries' ``lasti``) and ends with ``RERAISE 2``, which puts the
    frame back on that instruction before re-raising, as a ``with`` block's exit does;
    the cleanup entry over the region is one deeper, the stack one larger. So the frame
    an exception leaves shows the raising line (tracebacks' ``tb_frame.f_lineno``, the
    return event), and the handler, of no line, makes no line event.

    ``lined_reraise`` (3.11, where the finally's re-raise and the cleanup after it
    may inherit a line of the finally statement): the region's ``RERAISE`` may have a
    line; it is taken away, with the cleanup's (``units`` changed in place)."""
    import dis
    import opcode

    entries = [(e.start, e.end, e.target, e.depth, e.lasti)
               for e in dis._parse_exception_table(code)]  # type: ignore[attr-defined]
    push_exc = opcode.opmap.get("PUSH_EXC_INFO")
    reraise = opcode.opmap["RERAISE"]
    by_offset = {ins[0]: ins for ins in instrs}
    raw = bytearray(code.co_code)
    ours: dict[int, int] = {}  # handler offset -> the end of its region (and cleanup)
    for h in sorted(handlers):
        ins = by_offset.get(h)
        if ins is None or ins[3] != push_exc or units[h // 2][0] is not None:
            continue
        cleanup = [e for e in entries if e[0] == h and e[4]]
        if len(cleanup) != 1:
            continue
        end = cleanup[0][1]
        region = [i for i in instrs if h <= i[0] < end]
        rr = [i for i in region if i[3] == reraise]
        lined = {u for i in rr for u in range(i[0] // 2, i[1] // 2)} if lined_reraise \
            else set()
        if not any(i[4] for i in region) or any(
                units[u][0] is not None for u in range(h // 2, end // 2) if u not in lined):
            continue
        if not rr or any(raw[i[0] + 1] != 0 for i in rr):
            continue
        for i in rr:
            raw[i[0] + 1] = 2
        if lined_reraise:  # and the cleanup it re-raises into (COPY, POP_EXCEPT, RERAISE)
            k = next((n for n, i in enumerate(instrs) if i[0] == cleanup[0][2]), len(instrs))
            tail = instrs[k:k + 3]
            if [i[3] for i in tail][-1:] == [reraise]:
                lined.update(u for i in tail for u in range(i[0] // 2, i[1] // 2))
        for u in lined:
            units[u] = (None, None, None, None)
        ours[h] = max(end, max(lined, default=0) * 2 + 2)
    if not ours:
        return code, ours
    new = []
    for start, end, target, depth, lasti in entries:
        if target in ours:
            lasti = True
        elif start in ours:  # the cleanup over our region: the pushed offset below it
            depth += 1
        new.append((start, end, target, depth, lasti))
    return code.replace(  # type: ignore[call-arg]  # (co_exceptiontable: 3.11+)
        co_code=bytes(raw), co_exceptiontable=encode_exception_table(new),
        co_stacksize=code.co_stacksize + 1), ours


def encode_lines_310(first_line: int, ranges: list[tuple[int, int, int | None]]) -> bytes:
    """A 3.10 ``co_linetable`` (Objects/lnotab_notes.txt: pairs of a byte delta, 0 to
    254, and a signed line delta, -128 meaning no line) for ``co_lines()``-style
    ``(start, end, line)`` ranges."""
    out = bytearray()
    line = first_line
    for start, end, ln in ranges:
        n = end - start
        if ln is None:
            d = -128
        else:
            d = ln - line
            while d > 127:
                out += bytes((0, 127))
                d -= 127
            while d < -127:
                out += bytes((0, 129))  # -127
                d += 127
            line = ln
        first = True
        while n > 254 or first:
            step = min(n, 254)
            out += bytes((step, d & 255 if first else (128 if ln is None else 0)))
            n -= step
            first = False
        if n:
            out += bytes((n, 128 if ln is None else 0))
    return bytes(out)


def reraise_scope_exits_310(code: CodeType) -> CodeType:
    """3.10: the exception path of each of our ``finally`` bodies re-raises with
    ``RERAISE 1``, which puts the frame back on the offset its ``EXCEPT_HANDLER`` block
    saved, the raising instruction's (as a ``with`` block's exit does), and has no
    line, in ``code`` and every code object nested in it: the frame an exception leaves
    is on the raising line (``f_lineno``, the return event), with no line event on the
    ``def`` (``except``) line, as in plain code. Our handler: the target of a
    ``SETUP_FINALLY``, a run of instructions of no line (but its ``RERAISE 0``s, which
    inherit the finally statement's line) that starts by reading a name of ours and
    ends at a ``RERAISE`` that no jump of the run passes. The rest of our instructions
    left with no line (a read-back guard's join, where two paths meet, and the normal
    exit after it) take the line before them, as ``place_scope_exits`` does from 3.11:
    with none, 3.10 traced the line after them again (a function's last line twice)."""
    import opcode

    consts = code.co_consts
    if any(isinstance(c, CodeType) for c in consts):
        consts = tuple(reraise_scope_exits_310(c) if isinstance(c, CodeType) else c
                       for c in consts)
        code = code.replace(co_consts=consts)
    if not any(n.startswith("_memscope_") for n in (*code.co_varnames, *code.co_names)):
        return code
    raw = bytearray(code.co_code)
    line_of: list[int | None] = [None] * (len(raw) // 2)
    for start, end, ln in code.co_lines():
        for u in range(start // 2, end // 2):
            line_of[u] = ln
    setup, reraise = opcode.opmap["SETUP_FINALLY"], opcode.opmap["RERAISE"]
    jabs, jrel = set(opcode.hasjabs), set(opcode.hasjrel)
    instrs = []  # (offset, opcode, arg, jump target or -1)
    ext = 0
    for i in range(0, len(raw), 2):
        op, arg = raw[i], raw[i + 1] | ext
        ext = arg << 8 if op == opcode.EXTENDED_ARG else 0
        target = 2 * arg if op in jabs else i + 2 + 2 * arg if op in jrel else -1
        instrs.append((i, op, arg, target))
    names = {"LOAD_FAST": code.co_varnames, "LOAD_GLOBAL": code.co_names,
             "LOAD_NAME": code.co_names}
    ours_first = {opcode.opmap[n] for n in names}
    setups = {opcode.opmap[n] for n in ("SETUP_FINALLY", "SETUP_WITH", "SETUP_ASYNC_WITH")
              if n in opcode.opmap}
    if_false = {op for op in jabs | jrel if "IF_FALSE" in opcode.opname[op]}
    exits = {opcode.opmap[n] for n in ("RETURN_VALUE", "RERAISE", "RAISE_VARARGS",
                                       "JUMP_FORWARD", "JUMP_ABSOLUTE")}
    in_handler: set[int] = set()
    changed = False
    for _i, op, _arg, target in instrs:
        if op != setup or target < 0 or target // 2 >= len(instrs):
            continue
        k = target // 2
        h_op, h_arg = instrs[k][1], instrs[k][2]
        if h_op not in ours_first or not names[opcode.opname[h_op]][h_arg].startswith(
                "_memscope_"):
            continue
        region: list[int] = []
        inside: set[int] = set()
        end_ok = False
        while k < len(instrs):
            off, op2, _arg, t2 = instrs[k]
            if line_of[k] is not None and op2 != reraise:
                break
            region.append(k)
            if t2 >= 0:
                inside.add(t2)
            if op2 == reraise and (off + 2) not in inside:
                end_ok = True
                break
            k += 1
        if not end_ok or any(instrs[j][1] == reraise and instrs[j][2] != 0 for j in region):
            continue
        for j in region:
            if instrs[j][1] == reraise:
                raw[2 * j + 1] = 1
            line_of[j] = None
            in_handler.add(j)
        changed = True
    # the rest of ours with no line (a read-back guard's join, the normal exit after
    # it): the line before it, as 3.10 gives an instruction of no line in a block of
    # one predecessor. Left with none, the line after it was traced again.
    ours_at = {k for k, (_o, op, arg, _t) in enumerate(instrs)
               if op in ours_first and names[opcode.opname[op]][arg].startswith("_memscope_")}
    targets = {t // 2 for _o, _op, _a, t in instrs if t >= 0}
    handler_targets = {t // 2 for _o, op, _a, t in instrs if t >= 0 and op in setups}
    joins = {t // 2 for k, (_o, op, _a, t) in enumerate(instrs)
             if t >= 0 and op in if_false and any(j in ours_at for j in range(k - 5, k))}
    k = 0
    after = -1
    while k < len(instrs):
        if line_of[k] is not None or k in in_handler or k in handler_targets:
            k += 1
            continue
        j = k
        while j < len(instrs) and line_of[j] is None and j not in in_handler and (
                j == k or (j not in targets and instrs[j - 1][1] not in exits)):
            j += 1
        prev = next((line_of[u] for u in range(k - 1, -1, -1) if line_of[u] is not None),
                    None)
        if prev is not None and (k in joins or k == after
                                 or any(u in ours_at for u in range(k, j))):
            for u in range(k, j):
                line_of[u] = prev
            after = j
            changed = True
        k = j
    if not changed:
        return code
    ranges: list[tuple[int, int, int | None]] = []
    for u, ln in enumerate(line_of):
        if ranges and ranges[-1][2] == ln:
            ranges[-1] = (ranges[-1][0], 2 * u + 2, ln)
        else:
            ranges.append((2 * u, 2 * u + 2, ln))
    return code.replace(co_code=bytes(raw),
                        co_linetable=encode_lines_310(code.co_firstlineno, ranges))


def _token_preset(code: CodeType) -> set[int]:
    """Offsets of hook._preset_tokens's ``tok = None`` right after the ``RESUME``:
    ``LOAD_CONST None``, then stores of names of ours (``COPY`` between two). Only the
    first instructions are decoded (``_instructions`` of every function cost 5% of
    ``compile_mapped``)."""
    import opcode

    tables = _OPCODE_TABLES or _opcode_tables()
    caches = tables[0]
    raw = code.co_code
    resume = opcode.opmap.get("RESUME")
    load_const = opcode.opmap["LOAD_CONST"]
    store_fast = opcode.opmap["STORE_FAST"]
    store_deref = opcode.opmap["STORE_DEREF"]
    copy = opcode.opmap.get("COPY")
    i = 0
    n = len(raw)
    while i < n and raw[i] != resume:  # the prologue (MAKE_CELL, RETURN_GENERATOR, ...)
        if i > 40:
            return set()
        i += 2 + 2 * caches[raw[i]]
    i += 2 + 2 * caches[resume] if resume is not None else 0
    if i + 1 >= n or raw[i] != load_const or code.co_consts[raw[i + 1]] is not None:
        return set()
    out = {i}
    i += 2
    varname = getattr(code, "_varname_from_oparg", None)
    while i + 1 < n and len(out) < 6:
        op, arg = raw[i], raw[i + 1]
        if op == store_fast:
            ok = code.co_varnames[arg].startswith("_memscope_")
        elif op == store_deref and varname is not None:
            ok = varname(arg).startswith("_memscope_")
        else:
            ok = op == copy
        if not ok:
            break
        out.add(i)
        i += 2 + 2 * caches[op]
    return out if len(out) > 1 else set()


def place_scope_exits(code: CodeType) -> CodeType:
    """Give the instructions of our ``finally`` bodies (a scope's exit, an ``except ...
    as`` body's unbind: compiled with no position, hook._injected_nodes) the lines plain
    code has there, in ``code`` and every code object nested in it (Python 3.12+).

    CPython 3.12+ leaves an instruction of no position with none when its basic block
    has several predecessors or is an exception handler, where 3.11 gave it the line
    before it: a function falling off its end would show its return event at line None,
    and one left by an exception too (pdb cannot show a frame at line None). So, for
    each run of such instructions that reads or writes a name of ours (``_memscope_*``),
    or follows one (the code after it, a forward jump's target reached from it), or
    starts at the join after one of our inline guards (3.13):

    * the copy that runs when the scope is left by an exception (the run starts at an
      exception handler) takes the code object's first line (its ``def`` or ``class``):
      one line event there (a jump must have a line); an ``except ... as`` body's
      unbind, which has no jump, keeps no line and makes no event. Both re-raise at
      the raising instruction (``_reraise_at_the_raise``), so the frame ends on the
      raising line, as in plain code;
    * any other run (the normal exit, after a ``return`` or the body's end) takes the
      line of the instruction before it: the return event is on the line that returns,
      as in plain code, with no line event of its own.

    Instructions CPython itself leaves with no position (a handler's cleanup, the
    ``except RecursionError`` of our ``enter``) are not ours and are left as they are.
    docs/transformer.md ("Line events") has what this changes and what it costs."""
    import dis
    import opcode

    consts = code.co_consts
    if any(isinstance(c, CodeType) for c in consts):
        consts = tuple(place_scope_exits(c) if isinstance(c, CodeType) else c
                       for c in consts)
        code = code.replace(co_consts=consts)
    units = list(code.co_positions())  # type: ignore[attr-defined]  # (3.11+)
    instrs: list[_Instr] | None = None
    preset: set[int] = set()
    if "_memscope_s" in code.co_varnames:  # hook._preset_tokens's `tok = None`: no line
        preset = _token_preset(code)
        for off in preset:
            units[off // 2] = (None, None, None, None)
    if not preset and (not any(p[0] is None for p in units) or not any(
            n.startswith("_memscope_") for n in (*code.co_varnames, *code.co_names))):
        return code
    parse = getattr(dis, "_parse_exception_table", None)
    if parse is None:
        return code
    handlers = {e.target for e in parse(code)}
    if instrs is None:
        instrs = _instructions(code)
    targets = {t for _o, _e, t, _op, _ours in instrs if t >= 0}
    sources: dict[int, list[int]] = {}
    for ins in instrs:
        if ins[2] >= 0:
            sources.setdefault(ins[2], []).append(ins[0])
    index = {ins[0]: k for k, ins in enumerate(instrs)}
    exits = {opcode.opmap[n] for n in _EXITS if n in opcode.opmap}
    first = next((p[0] for p in units if p[0]), code.co_firstlineno)
    runs: list[list[_Instr]] = []
    cur: list[_Instr] = []
    for ins in instrs:
        off = ins[0]
        none = units[off // 2][0] is None
        if cur and (not none or off in handlers or off in targets):
            runs.append(cur)
            cur = []
        if none:
            cur.append(ins)
            if ins[3] in exits:
                runs.append(cur)
                cur = []
    if cur:
        runs.append(cur)
    # the joins after our inline guards (`_memscope_g[N] and ...`: the POP_TOP both
    # paths reach), of no line when the guarded statement has none; not on 3.12, whose
    # line events fire at a jump target even on the line just traced
    joins: set[int] = set()
    if sys.version_info[:2] != (3, 12):
        if_false = {op for op in opcode.hasjrel if "IF_FALSE" in opcode.opname[op]}
        for k, ins in enumerate(instrs):
            if ins[3] in if_false and any(x[4] for x in instrs[max(0, k - 5):k]):
                joins.add(ins[2])
    jumps = {opcode.opmap[n] for n in ("JUMP_FORWARD", "JUMP") if n in opcode.opmap}
    changed = False
    code, patched = _reraise_at_the_raise(code, instrs, units, handlers,
                                          lined_reraise=_LINED_RERAISE)
    changed = bool(patched) or bool(preset)
    after = -1  # the code unit after the last run given a line
    jumped: dict[int, int] = {}  # offset a run given a line jumps forward to -> its line
    for run in runs:
        off = run[0][0]
        start = off // 2
        at_handler = off in handlers
        line: int | None = None
        if off in preset:
            continue  # before the first line event: none (a jump cannot skip it)
        if _LINED_RERAISE and any(h <= off < e for h, e in patched.items()):
            continue  # in a handler of ours, which has no line (a join in it too)
        if not at_handler and off in jumped:
            line = jumped[off]  # reached only from ours: its line
        elif (start != after or at_handler) and off not in joins and not any(
                ins[4] for ins in run):  # (CPython would have propagated its line)
            continue  # not ours, nor the code that follows ours (its line was ours)
        elif at_handler:
            if off in patched and (_LINED_RERAISE or not any(ins[2] >= 0 for ins in run)):
                continue  # no line, no line event: an `except ... as` body's unbind
            line = first  # (a jump must have a line: CPython's test_patma checks it)
        else:
            # reached only by jumps (the instruction before it does not fall through):
            # the line of the jumps when they agree (a class body's exit after an
            # `if`/`else`: the branch that ran, not the one laid out before it)
            k = index[off]
            if off in sources and k and instrs[k - 1][3] in exits:
                lines = {units[src // 2][0] for src in sources[off]}
                if len(lines) == 1:
                    line = lines.pop()
            if line is None:
                line = next((units[k][0] for k in range(start - 1, -1, -1)
                             if units[k][0] is not None), None)
            if line is None:
                continue
        end = run[-1][1] // 2  # with the last instruction's inline caches
        for k in range(start, end):
            units[k] = (line, line, None, None)
        for ins in run:
            if ins[3] in jumps and ins[2] >= 0:
                jumped[ins[2]] = line
        after = end
        changed = True
    # a copy of our exit reached only by such a jump, which CPython gave a line of its
    # own (the line laid out before it, another branch's: 3.11 and 3.12 do so where
    # the jump came from a guard's join of no line): the jump's line
    for target, jline in jumped.items():
        kt = index.get(target)
        if kt is None or not kt or instrs[kt - 1][3] not in exits or not instrs[kt][4] or (
                units[target // 2][0] in (None, jline)) or any(
                src // 2 < len(units) and units[src // 2][0] != jline
                for src in sources.get(target, ())):
            continue
        for ins in instrs[kt:]:
            for u in range(ins[0] // 2, ins[1] // 2):
                units[u] = (jline, jline, None, None)
            if ins[3] in exits:
                break
        changed = True
    if not changed:
        return code
    return code.replace(co_linetable=encode_positions(code.co_firstlineno, units))
