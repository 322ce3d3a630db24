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
