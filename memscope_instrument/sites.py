"""Scope and site tables of one module (what ``_memscope_hooks.register`` receives)."""

from __future__ import annotations

from dataclasses import dataclass, field

from memscope.events import BindKind, ScopeKind

__all__ = ["BindKind", "ScopeKind", "SiteTable"]


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

    def render(self) -> tuple[str, str]:
        """The two tuple literals, as Python source (one line each)."""
        return repr(tuple(self.scopes)), repr(tuple(self.sites))
