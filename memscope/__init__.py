"""memscope: memory tracking by variable name.

Which variable in which function holds how many bytes, for how long, shared with which
other names, and which objects outlived the scope that made them. Code reaches the
runtime through the transformer (``memscope-instrument``, the import hook,
``memscope run``) or explicitly through ``track_var`` and ``track_scope``.

PYTEST_DONT_REWRITE (see ``memscope_instrument/__init__.py``).
"""

from __future__ import annotations

from memscope import _own

_own.begin()  # what importing memscope adds is memscope's own memory

from memscope import _compiled  # noqa: E402

_compiled.select()  # compiled report modules, or their source

from memscope.config import Config, ConfigError  # noqa: E402
from memscope.explicit import ignore, track_scope, track_var  # noqa: E402
from memscope.sizing import register_sizer  # noqa: E402
from memscope.tracker import MemoryTracker, get_global_tracker, init, snapshot  # noqa: E402

_own.end()

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from memscope.trackable import Trackable
    from memscope_instrument.hook import ImportHook

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ConfigError",
    "MemoryTracker",
    "Trackable",
    "__version__",
    "get_global_tracker",
    "ignore",
    "init",
    "install_import_hook",
    "instrument_all",
    "instrument_this_package",
    "register_sizer",
    "snapshot",
    "track_scope",
    "track_var",
]


def install_import_hook(
    packages: str | Iterable[str] | None = None,
    *,
    mode: str | None = None,
    config: Config | None = None,
    exclude: Iterable[str] = (),
    roots: Iterable[str] = (),
    on_error: str = "fallback",
    imports: bool = False,
    comprehensions: bool = False,
    cache: bool = True,
    start: bool = True,
) -> ImportHook:
    """Instrument the named packages as they are imported; returns the hook (a context
    manager; ``.uninstall()``). ``packages``: names matched exactly or by dotted prefix
    (None: every module with source outside the standard library and site-packages, or
    under ``roots``); ``mode``: "fast" or "full" (default: the run's); ``on_error``:
    "fallback" (a module the transformer cannot instrument is imported as it is, said
    once on stderr) or "raise"; ``imports``/``comprehensions``: record import bindings
    and comprehension targets too; ``cache``: use the cache of instrumented code;
    ``start``: start tracking (``memscope.init``) unless it already started."""
    from memscope_instrument import hook

    return hook.install_import_hook(
        packages, mode=mode, config=config, exclude=exclude, roots=roots,
        on_error=on_error, imports=imports, comprehensions=comprehensions, cache=cache,
        start=start, _stacklevel=3)


def instrument_this_package(
    *,
    mode: str | None = None,
    config: Config | None = None,
    exclude: Iterable[str] = (),
    on_error: str = "fallback",
    imports: bool = False,
    comprehensions: bool = False,
    cache: bool = True,
    start: bool = True,
) -> ImportHook:
    """Instrument the caller's own package (found from its frame): call it at the top of
    the package's ``__init__.py``, before its submodules are imported. The settings are
    ``install_import_hook``'s."""
    from memscope_instrument import hook

    return hook.instrument_this_package(
        _depth=2, mode=mode, config=config, exclude=exclude, on_error=on_error,
        imports=imports, comprehensions=comprehensions, cache=cache, start=start)


def instrument_all(
    *,
    mode: str | None = None,
    config: Config | None = None,
    exclude: Iterable[str] = (),
    roots: Iterable[str] = (),
    on_error: str = "fallback",
    imports: bool = False,
    comprehensions: bool = False,
    cache: bool = True,
    start: bool = True,
) -> ImportHook:
    """Instrument every module with Python source outside the standard library and
    site-packages (or under ``roots``). For applications only: a library must not call
    this. The settings are ``install_import_hook``'s."""
    from memscope_instrument import hook

    return hook.install_import_hook(
        None, mode=mode, config=config, exclude=exclude, roots=roots, on_error=on_error,
        imports=imports, comprehensions=comprehensions, cache=cache, start=start,
        _stacklevel=3)


def __getattr__(name: str) -> Any:
    """``memscope.Trackable`` is imported when first asked for (it needs ``typing``)."""
    if name == "Trackable":
        from memscope.trackable import Trackable

        return Trackable
    raise AttributeError(f"module 'memscope' has no attribute {name!r}")
