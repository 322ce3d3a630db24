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

from memscope.config import Config, ConfigError  # noqa: E402
from memscope.explicit import ignore, track_scope, track_var  # noqa: E402
from memscope.sizing import register_sizer  # noqa: E402
from memscope.tracker import MemoryTracker, get_global_tracker, init, snapshot  # noqa: E402

_own.end()

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    from typing import Any

    from memscope.trackable import Trackable

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


def install_import_hook(packages: Any = None, **kwargs: Any) -> Any:
    """Instrument the named packages as they are imported (see memscope_instrument.hook)."""
    from memscope_instrument import hook

    return hook.install_import_hook(packages, **kwargs)


def instrument_this_package(**kwargs: Any) -> Any:
    """Instrument the caller's own package (found from its frame)."""
    from memscope_instrument import hook

    return hook.instrument_this_package(_depth=2, **kwargs)


def instrument_all(**kwargs: Any) -> Any:
    """Instrument every module with Python source outside the standard library and
    site-packages. For applications only: a library must not call this."""
    from memscope_instrument import hook

    return hook.instrument_all(**kwargs)


def __getattr__(name: str) -> Any:
    """``memscope.Trackable`` is imported when first asked for (it needs ``typing``)."""
    if name == "Trackable":
        from memscope.trackable import Trackable

        return Trackable
    raise AttributeError(f"module 'memscope' has no attribute {name!r}")
