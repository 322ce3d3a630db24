"""What an instrumented function calls once it is detached from its module.

Each instrumented module's handle (``_memscope_``, ``memscope._hooks._make_handle``)
carries this module's ``__name__``, so a tool that copies a function by value with the
globals it names (cloudpickle, dill: attrs' tests, dask, ray, multiprocessing with
them) pickles the handle by reference, as an importable module, instead of copying
memscope's state (its weak references, locks and buffers cannot be pickled). The copy,
in this process or another, calls these entry points: they record nothing and return
what the program expects (``bind`` its value, ``enter`` no token).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    from typing import Any, TypeVar

    T = TypeVar("T")


def bind(site: int, value: T, tok: Any) -> T:
    return value


p = bind  # the pass-through of a site whose guard is off


def bind_group(first: int, values: tuple[Any, ...], tok: Any) -> None:
    return None


def bind_attr(site: int, obj: Any, attr: str, tok: Any) -> None:
    return None


def unbind(site: int, tok: Any) -> None:
    return None


def enter(scope: int, first_param: int, *params: Any) -> None:
    return None


def exit(tok: Any) -> None:
    return None


def enter_class(scope: int) -> None:
    return None


def exit_class() -> None:
    return None


def c() -> None:
    return None


m = None  # the module scope's token: none


class _Off(dict):
    """Every guard off: ``_memscope_g[N]`` and ``_memscope_e[S]`` are 0 for any index
    (nothing is stored: a read of a missing key does not insert it)."""

    __slots__ = ()

    def __missing__(self, key: object) -> int:
        return 0


g = e = _Off()


def comprehension(handle: object, scope: int) -> Any:
    """``_memscope_c(h, S)(it)`` of a detached comprehension: ``zip(repeat(None), it)``,
    the pairs the instrumented comprehension unpacks, with no instance."""
    from functools import partial
    from itertools import repeat

    return partial(zip, repeat(None))


# builtins: what instrumented code finds when it runs with globals that are not its
# module's (``types.FunctionType(f.__code__, {})``, cloudpickle's and dill's copies,
# CPython's test_funcattrs): a name missing from a function's globals is looked up in
# its builtins, so these stand in for the module's handle, guards and comprehension
# helper, and the copy runs as the plain function does, recording nothing. A module's
# own globals come first, so instrumented modules never see these.
BUILTINS = {"_memscope_": None, "_memscope_g": g, "_memscope_e": e,
            "_memscope_c": comprehension}


def install_builtins() -> None:
    """Put the stand-ins into ``builtins`` (once; never over a name already there)."""
    import builtins
    import sys

    names = builtins.__dict__
    for k, v in BUILTINS.items():
        names.setdefault(k, sys.modules[__name__] if v is None else v)
