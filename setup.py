"""The build's only code: memscope's optional compiled parts.

Everything else about the package is in pyproject.toml. ``pip install .`` and
``pip install -e .`` compile, when a C compiler and the Python headers are there:

- the C extensions: the census walk (``memscope/_censusc.c``), the ``__weakref__``
  getter, the death watch and the hot path. Without them the build goes on and memscope
  uses their pure-Python fallbacks (``memscope --version`` says which run).
- the capture replay and the charts' collector (``memscope._compiled.MODULES``) with
  mypyc, the compiler of the type-checked Python the modules already are: one source,
  about 1.7 times faster reports, no second implementation to keep in step. Without
  mypyc, or when its build fails, the modules run from their source.
"""

from __future__ import annotations

import sys
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CLOCK = "memscope/_clock.h"  # the clock both extensions stamp rows with
EXTENSIONS = [
    Extension("memscope._censusc", sources=["memscope/_censusc.c"], optional=True),
    Extension("memscope._weakhide", sources=["memscope/_weakhide.c"], optional=True),
    Extension("memscope._deathwatch", sources=["memscope/_deathwatch.c"], depends=[CLOCK],
              optional=True),
    Extension("memscope._hotpath", sources=["memscope/_hotpath.c"], depends=[CLOCK], optional=True),
]

# memscope._compiled.MODULES, as paths (setup.py does not import the package it builds)
MYPYC_SOURCES = [
    "memscope/analysis.py",
    "memscope/reporters/_spans.py",
    "memscope/reporters/_series.py",
    "memscope/reporters/_raw.py",
    "memscope/reporters/_collector.py",
    "memscope/reporters/load.py",
]
MYPYC_GROUP = "memscope_reports"  # the shared library: memscope_reports__mypyc


def _say(msg: str) -> None:
    print(f"memscope build: {msg}", file=sys.stderr)


def mypyc_extensions() -> list[Extension]:
    """The mypyc-compiled modules, their shared library first; none when mypyc is not
    there or cannot translate them (the modules then run from source)."""
    try:
        from mypyc.build import mypycify
    except ImportError:
        _say("mypyc is not installed: the report modules run from source (slower reports)")
        return []
    try:
        # the build's environment has none of memscope's dependencies (libcst, click:
        # Any to the checker), so ignores the full check needs would read as unused; the
        # modules not compiled are checked by the project's mypy, not here
        options = ["--config-file=", "--ignore-missing-imports", "--no-warn-unused-ignores",
                   "--follow-imports=silent"]
        exts: list[Extension] = mypycify([*options, *MYPYC_SOURCES], opt_level="3",
                                         group_name=MYPYC_GROUP)
    except (Exception, SystemExit) as e:  # mypy's type errors end in SystemExit
        _say(f"mypyc could not translate the report modules ({e}): they run from source")
        return []
    exts.sort(key=lambda e: not e.name.endswith("__mypyc"))
    for e in exts:
        e.optional = True
    return exts


class BuildExt(build_ext):
    """Optional extensions, with one rule more for mypyc's: its modules load only with
    their shared library, so when that fails to compile none of them is built (a module
    whose library is missing would fail to import; its source runs instead)."""

    def finalize_options(self) -> None:
        # mypyc type-checks as it translates (seconds): only when extensions are built,
        # not for every metadata step of an install
        exts = self.distribution.ext_modules or []
        if not any(e.name in MYPYC_NAMES for e in exts):
            extra = mypyc_extensions()
            MYPYC_NAMES.update(e.name for e in extra)
            self.distribution.ext_modules = extra + list(exts)
        self._mypyc_failed = False
        super().finalize_options()

    def build_extension(self, ext: Any) -> None:
        mypyc = ext.name in MYPYC_NAMES
        if mypyc and self._mypyc_failed:
            return
        try:
            super().build_extension(ext)
        except Exception as e:
            if not mypyc:
                raise
            self._mypyc_failed = True
            _say(f"compiling {ext.name} failed ({e}): the report modules run from source")


MYPYC_NAMES: set[str] = set()
setup(ext_modules=EXTENSIONS, cmdclass={"build_ext": BuildExt})
