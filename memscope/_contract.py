"""The hot path's contract: what ``memscope._hooks.register`` returns to an instrumented
module, as a ``Protocol`` that type checkers and the tests hold the runtime to
(``tests/test_contract.py`` checks that every handle has exactly these members, with
these parameters). ``memscope._hooks``'s docstring says what each call means; the
transformer (``memscope_instrument``) writes the calls.

Not imported when memscope runs (``typing`` is a start-up cost): ``_hooks`` names it
for the checker only. At run time a handle is a module object whose attributes are
closures over the module's site range (``_hooks._make_handle``), or, where the C hot
path is built, the bound methods of a ``memscope._hotpath.Sites`` for ``bind``,
``enter``, ``exit`` and ``unbind``. Every parameter is positional-only: instrumented
code passes them so, and the C methods take nothing else.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


@runtime_checkable
class ModuleHandle(Protocol):
    """One instrumented module's entry points, bound to its site and scope range."""

    base: int  # the module's first global site
    scope_base: int  # the module's first global scope
    on: list[int]  # per global site: 0 records every bind, n > 0 one in n, -1 none
    g: list[int]  # inline guard per site of this module: 1 call ``bind``, 0 skip it
    e: list[int | None]  # inline guard per scope: 1 call ``enter``, None skip it
    m: int | None  # the module's own instance token (set by the prologue)

    def bind(self, site: int, value: T, tok: Any, /) -> T:
        """The name of ``site`` was bound to ``value`` in instance ``tok``."""

    def p(self, site: int, value: T, tok: Any, /) -> T:
        """``bind``'s stand-in at a value-passing site whose guard is off."""

    def bind_group(self, first: int, values: tuple[Any, ...], tok: Any, /) -> None:
        """The names of sites ``first``, ``first + 1``, ... were bound, one guard."""

    def bind_attr(self, site: int, obj: Any, attr: str, tok: Any, /) -> None:
        """``obj.attr = v`` ran: what the slot or the instance's own attribute holds."""

    def unbind(self, site: int, tok: Any, /) -> None:
        """``del name``, or the end of ``except ... as name``."""

    def enter(self, scope: int, first_param: int, /, *params: Any) -> int | None:
        """A scope instance starts; its parameters bound to ``first_param``, ...;
        returns its token (None: not recorded)."""

    def exit(self, tok: Any, /) -> None:
        """The instance ended (returned, raised, closed)."""

    def enter_class(self, scope: int, /) -> None:
        """A class body starts (its token kept by the body's frame)."""

    def exit_class(self) -> None:
        """The class body ended."""

    def c(self) -> Any:
        """The calling class body's token."""


