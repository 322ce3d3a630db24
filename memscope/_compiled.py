"""Whether the report modules run compiled (mypyc, built by setup.py at install) or from
their source, the same code either way.

The compiled modules call each other's classes natively, so it is all of them or none.
They run from source when ``MEMSCOPE_PURE_REPORTS`` is set (tests compare the two), when
they were not built (no mypyc or no compiler at install), and, in a source tree built
in place (``pip install -e .``), when a source is newer than its build: the source is
what the developer changed, and a stale build would silently run the old code."""

from __future__ import annotations

import _imp
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

MODULES = (
    "memscope.analysis",
    "memscope.reporters._spans",
    "memscope.reporters._series",
    "memscope.reporters._raw",
    "memscope.reporters._collector",
    "memscope.reporters.load",
)
"""setup.py's ``MYPYC_SOURCES``, as module names."""

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE = "compiled"
"""``compiled``, or why the modules run from source (``memscope --version`` says it)."""


def _paths(name: str) -> tuple[str, str | None]:
    """(the module's source, its compiled build or None)."""
    base = os.path.join(_ROOT, *name.split("."))
    for suffix in _imp.extension_suffixes():  # (importlib.machinery's, not imported)
        if os.path.exists(base + suffix):
            return base + ".py", base + suffix
    return base + ".py", None


def _why_source(built: list[tuple[str, str | None]] | None = None) -> str | None:
    """Why built modules (``built``: ``_paths`` of each, looked up when not given) should
    run from source, or None."""
    if os.environ.get("MEMSCOPE_PURE_REPORTS"):
        return "source (MEMSCOPE_PURE_REPORTS)"
    if built is None:
        built = [_paths(m) for m in MODULES]
    if os.path.exists(os.path.join(_ROOT, "setup.py")):  # a source tree, built in place
        for py, so in built:
            assert so is not None
            if os.path.getmtime(py) > os.path.getmtime(so) + 1.0:
                return (f"source ({os.path.relpath(py, _ROOT)} changed since the build: "
                        "pip install -e . to compile again)")
    return None


class _SourceFinder:
    """Finds the report modules' source ahead of their compiled build."""

    @staticmethod
    def find_spec(name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:  # fmt: skip
        if name not in MODULES:
            return None
        from importlib.util import spec_from_file_location

        return spec_from_file_location(name, _paths(name)[0])

    @staticmethod
    def invalidate_caches() -> None:
        pass


def select() -> None:
    """Decide once, at memscope's import, before any report module is imported."""
    global STATE
    built = [_paths(m) for m in MODULES]  # (looked up once: this runs at memscope's import)
    if any(so is None for _, so in built):
        STATE = "source (not compiled at install: no mypyc or no C compiler)"
        return  # (the import system finds the sources by itself)
    why = _why_source(built)
    if why is None:
        return
    STATE = why
    if not any(isinstance(f, _SourceFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFinder())
