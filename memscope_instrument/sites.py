"""Scope and site tables of one module (what ``memscope._hooks.register`` receives,
as the columns of a MODULE row: ``memscope.events.module_table``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from itertools import chain, repeat
from typing import Any

from memscope._hooks import _CATCH, _no_entry_check
from memscope.events import BindKind, ScopeKind, module_table
from memscope.planes import pack_planes

__all__ = ["BindKind", "ScopeKind", "SiteTable", "comprehension"]


@dataclass
class SiteTable:
    """Rows are appended while the transformer walks the module, in source order.

    ``scopes`` rows: ``(qualname, ScopeKind, first_line)``; ``sites`` rows:
    ``(line, col, scope_index, name, BindKind)``. Lines are 1-based, columns 0-based
    character offsets, both in the ORIGINAL source.
    """

    scopes: list[tuple[str, int, int]] = field(default_factory=list)
    sites: list[tuple[int, int, int, str, int]] = field(default_factory=list)

    def add_scope(self, qualname: str, kind: ScopeKind, line: int) -> int:
        self.scopes.append((qualname, int(kind), line))
        return len(self.scopes) - 1

    def add_site(self, line: int, col: int, scope: int, name: str, kind: BindKind) -> int:
        self.sites.append((line, col, scope, name, int(kind)))
        return len(self.sites) - 1

    def mark(self) -> tuple[int, int]:
        return len(self.scopes), len(self.sites)

    def rollback(self, mark: tuple[int, int]) -> None:
        del self.scopes[mark[0] :]
        del self.sites[mark[1] :]

    def render(self) -> str:
        """``register``'s table arguments as Python source, one line: the MODULE row's
        ``nscopes, nsites, ints, names`` (constants: the import makes no row object),
        ``ints`` packed as byte planes, the form the capture stores: neither the
        import nor the capture writer packs them again."""
        ns, nt, ints, names = module_table(self.scopes, self.sites)
        return f"{ns}, {nt}, {pack_planes(ints)!r}, {names!r}"


class _CompInstance:
    """One comprehension instance: enters at the first step of its iterator, exits when
    the iterator is freed (see :func:`comprehension`)."""

    __slots__ = ("enter", "exit", "scope", "tok")

    def __init__(self, handle: Any, scope: int) -> None:
        self.enter = handle.enter
        self.exit = handle.exit
        self.scope = scope
        self.tok = 0

    def start(self, _: object) -> Any:
        toks = _NO_TOKS
        try:
            self.tok = tok = self.enter(self.scope, -1)
            toks = repeat(tok)
        except BaseException as exc:  # an interrupt: handed to the program (_hooks)
            if _CATCH["enter", exc]:
                raise
        return toks

    def __del__(self) -> None:
        if self.tok:
            self.exit(self.tok)


_NO_TOKS = repeat(0)  # (a repeat without a count is the same for every reader)
# no check for signals as they start: a signal is handled in the program's code
# (memscope._hooks, "interrupts"); __del__ runs where Python would drop an exception
_CompInstance.start.__code__ = _no_entry_check(_CompInstance.start.__code__)
_CompInstance.__del__.__code__ = _no_entry_check(_CompInstance.__del__.__code__)


def comprehension(handle: Any, scope: int) -> Any:
    """Runtime helper of instrumented comprehensions (``Options(comprehensions=True)``):
    ``comprehension(h, S)(iterable)`` is ``zip(toks, iterable)``, where ``toks`` calls
    ``h.enter(S, -1)`` when first stepped (the first thing the comprehension's own
    frame does) and then repeats that token forever. Everything between the user's
    code and ``iterable`` is C (``partial``, ``zip``, ``chain``, ``map``, ``repeat``):
    ``iter(iterable)`` runs in the caller as without instrumentation, and an exception
    from the iterable has no extra frame in its traceback. The instance state is
    referenced only from that iterator chain, so the instance exits when the
    comprehension drops its iterator: it finished or raised (once its traceback is
    gone), or the generator expression was exhausted, closed or collected. A
    generator expression that is never stepped never enters.
    """
    st = _CompInstance(handle, scope)
    return partial(zip, chain.from_iterable(map(st.start, (0,))))
