"""The transformer: rewrite a module so every binding and scope reports to memscope._hooks.

``instrument_source`` is the entry point. How a module is rewritten (docs/transformer.md
gives the rules with examples):

* ``ast`` (fast, C) parses it, and :mod:`memscope_instrument.analysis` holds the rules
  over that tree: which names a statement binds, their original line/column, scopes,
  ``global``/``nonlocal`` declarations, generators, runs of binding statements read
  back once, what is skipped (``Analysis``: plain data out, no output written).
* The splicer (:mod:`memscope_instrument.splice`) writes the output: insertions into
  the original text at positions ``ast`` knows, so the user's lines keep their text and
  the line map and column shifts fall out of the assembly. It handles every file of
  the standard library tried (docs/performance.md, "Transformer").
* The layouts the splicer declines (it raises ``Fallback``: a body behind a backslash
  continuation, a header line with a comment and more statements, a module whose first
  statement is indented, a comprehension iterable it cannot delimit) are written by the
  libcst fallback (:mod:`memscope_instrument.cst_emit`), imported only then, which
  asks the same ``Analysis`` the same questions in the same order and writes the same
  output shape from a libcst tree. Both emitters implement ``analysis.Emitter``.

What the output does (the same from both emitters):

* Names are recorded by *reading them back* after the binding statement, on the same
  line after a ``;`` (reading a local/global name has no side effect), so the user's
  code keeps its line and columns; a run of consecutive binding statements is read
  back once, after its last one (``Analysis.plan_runs``). ``name.attr`` targets
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
import io
import tokenize
from dataclasses import dataclass, field

from memscope.events import ScopeKind
from memscope_instrument.analysis import (
    COMP,
    GUARD,
    IGNORE_LINE,
    MTOK,
    SGUARD,
    Analysis,
    H,
    Scope,
)
from memscope_instrument.linemap import build_line_map, col_deltas, split_lines
from memscope_instrument.options import HOOKS_CONTRACT, TRANSFORM_VERSION, Options
from memscope_instrument.splice import Fallback, Splicer

__all__ = [
    "ALREADY_INSTRUMENTED_MARKER",
    "HOOKS_CONTRACT",
    "IGNORE_LINE",
    "TRANSFORM_VERSION",
    "InstrumentError",
    "Options",
    "Result",
    "instrument_source",
]

ALREADY_INSTRUMENTED_MARKER = "# memscope: instrumented"
SKIP_FILE = "memscope: skip-file"
PROLOGUE_START = f"from memscope._hooks import register as {H}"
COMP_IMPORT = f"from memscope_instrument.sites import comprehension as {COMP}"
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


_DEFAULT_OPTIONS = Options()


def instrument_source(source: str | bytes, filename: str, module: str = "__main__",
                      options: Options = _DEFAULT_OPTIONS) -> Result:
    """Instrument one module's source. ``filename`` is recorded in the site table."""
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
    # the libcst fallback: only for layouts the splicer declines (libcst, about 11 MB
    # resident once imported, is loaded by the first such file only)
    from memscope_instrument import cst_emit

    an = Analysis(text, filename, options)
    sc = Scope(an.table.add_scope("<module>", ScopeKind.MODULE, 1), "<module>", "module",
               None, MTOK)
    try:
        code = cst_emit.emit(an, text, tree, sc, _PLACEHOLDER, ALREADY_INSTRUMENTED_MARKER)
    except cst_emit.CstError as e:
        raise InstrumentError(filename, e.line, e.col, e.message) from e
    code = code.replace(_PLACEHOLDER, _prologue(an, filename), 1)
    line_map = build_line_map(tree, code)
    kept = sum(1 for i, o in enumerate(line_map, 1) if o == i)
    return Result(code, line_map, len(an.table.sites), len(an.table.scopes), an.skipped,
                  an.notes(), True, encoding, kept, col_deltas(text, code, line_map))


def _prologue(an: Analysis, filename: str) -> str:
    # one import binding our one name, then rebinding it: the module gets `_memscope_`
    # and the two guard lists, nothing else (before TRANSFORM_VERSION 12 also
    # `_memscope_hooks`, `_memscope_s` and `_memscope_m`)
    return (f"{PROLOGUE_START}; {H} = {H}("
            f"{HOOKS_CONTRACT}, {filename!r}, __name__, {an.table.render()}); "
            f"{GUARD}, {SGUARD} = {H}.g, {H}.e; "
            f"{MTOK} = {H}.enter(0, -1)"
            + (f"; {COMP_IMPORT}" if an.used_comp else ""))


def _splice(text: str, tree: ast.Module, filename: str, options: Options,
            encoding: str) -> Result | None:
    """The fast path (:mod:`memscope_instrument.splice`): edits applied to the original
    text, line map and column shifts from the assembly. ``None``: layout left to the
    libcst path."""
    an = Analysis(text, filename, options)
    sc = Scope(an.table.add_scope("<module>", ScopeKind.MODULE, 1), "<module>", "module",
               None, MTOK)
    try:
        sp = Splicer(an, text, tree, options)
        sp.module(sc, _PLACEHOLDER, ALREADY_INSTRUMENTED_MARKER)
        code, line_map, deltas = sp.assemble(_PLACEHOLDER, _prologue(an, filename))
        if "\\\n" in text or "\\\r" in text:
            # backslash continuations are the one layout the position checks reason
            # about line by line: re-parse the output to be sure (else libcst path)
            ast.parse(code)
    except (Fallback, RecursionError, SyntaxError, ValueError):
        return None
    kept = sum(1 for i, o in enumerate(line_map, 1) if o == i)
    return Result(code, line_map, len(an.table.sites), len(an.table.scopes), an.skipped,
                  an.notes(), True, encoding, kept, deltas)


def _has_comment(text: str, needle: str) -> bool:
    for line in split_lines(text):
        s = line.lstrip()
        if s.startswith("#") and needle in s:
            return True
    return False
