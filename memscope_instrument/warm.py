"""``memscope warm PKG``: fill the cache of instrumented code before the first run.

The import hook instruments a module the first time it is imported and caches the
result beside its bytecode (``cache.py``); a large included package pays that once,
module by module, in the program's own process (tens of seconds for rich + jinja2).
``warm`` does the same work ahead of time, for every module of the named packages, in
worker processes side by side, and writes the very cache entries the hook reads
(same options, same digest), so the first ``memscope run --include PKG`` finds them.
"""

from __future__ import annotations

import os
import sys
import time

# the import system's own search, without importlib.util (contextlib, ~1.4 ms): memscope
# run plans with this module before every program that includes a package
from importlib._bootstrap import _find_spec  # type: ignore[attr-defined]

TYPE_CHECKING = False  # typing is for the checker only
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

MODES = ("fast", "full")


class WarmError(Exception):
    """A package that cannot be found: a usage error, said in one line."""


class Result:
    """What warming a set of packages did (a plain class: no dataclasses at start-up)."""

    def __init__(self, modules: int = 0, jobs: int = 1) -> None:
        self.modules = modules
        self.jobs = jobs
        self.lines = 0
        self.instrumented = 0
        self.already = 0  # cache entries that were there and current
        self.failed: list[str] = []  # "path: reason"
        self.seconds = 0.0


def package_files(name: str) -> list[tuple[str, str]]:
    """(source path, module name) of every module of ``name`` (a package, a subpackage
    or one module). Nothing is imported: the top-level name is found by the import
    system's finders (which run no module), the rest by its directories, so warming
    before a run cannot import a package ahead of the hook."""
    top, *rest = name.split(".")
    try:
        spec = _find_spec(top, None) if top.isidentifier() else None
    except (ImportError, ValueError) as exc:
        raise WarmError(f"{name}: cannot be found ({exc})") from None
    if spec is None:
        raise WarmError(f"{name}: no module or package of that name")
    locations = list(spec.submodule_search_locations or ())
    origin = spec.origin or ""
    for part in rest:  # a subpackage or a module of it, by its files
        pkg = [os.path.join(loc, part) for loc in locations
               if os.path.isdir(os.path.join(loc, part))]
        mod = [os.path.join(loc, part + ".py") for loc in locations
               if os.path.isfile(os.path.join(loc, part + ".py"))]
        if pkg:
            locations, origin = pkg, ""
        elif mod:
            locations, origin = [], mod[0]
        else:
            raise WarmError(f"{name}: no module or package of that name")
    if not locations:
        if not origin.endswith(".py"):
            raise WarmError(f"{name}: not Python source ({origin or 'no file'})")
        return [(origin, name)]
    found: list[tuple[str, str]] = []
    for base in locations:
        for dirpath, dirs, files in os.walk(base):
            rel = os.path.relpath(dirpath, base)
            parts = [] if rel == "." else rel.split(os.sep)
            # only directories that can be imported as subpackages
            dirs[:] = sorted(d for d in dirs if d.isidentifier())
            for f in sorted(files):
                stem, ext = os.path.splitext(f)
                if ext != ".py" or not stem.isidentifier():
                    continue
                mod_name = ".".join([name, *parts] + ([] if stem == "__init__" else [stem]))
                found.append((os.path.join(dirpath, f), mod_name))
    return found


def cold_files(packages: Iterable[str], mode: str = "fast") -> list[tuple[str, str]]:
    """The modules of ``packages`` whose instrumented code is not in the cache (for
    ``mode``, with the import hook's default options); names that cannot be found are
    left to the import system to report."""
    from memscope_instrument import cache, hook

    options = hook.make_options(mode)
    cold: list[tuple[str, str]] = []
    for name in packages:
        try:
            files = package_files(name)
        except WarmError:
            continue
        cold.extend((p, m) for p, m in files
                    if not cache.current(p, hook.cache_digest(options, m)))
    return cold


def _warm_one(job: tuple[str, str, str]) -> tuple[str, int, str]:
    """Instrument one module into the cache: (status, lines, reason); status is
    ``instrumented``, ``already`` or ``failed``. Runs in a worker process."""
    path, module, mode = job
    from memscope_instrument import hook

    sys.dont_write_bytecode = False  # writing the cache is what was asked for
    try:
        with open(path, "rb") as f:
            lines = f.read().count(b"\n")
    except OSError as exc:
        return "failed", 0, f"cannot read: {exc.strerror or exc}"
    hits = hook.stats["cache_hits"]
    try:
        hook.load_code(path, module, hook.make_options(mode), on_error="raise")
    except SyntaxError as exc:  # the source itself: python would not import it either
        return "failed", lines, f"does not compile: {exc.msg} (line {exc.lineno})"
    except Exception as exc:  # InstrumentationError and anything else: named, not fatal
        first = str(exc).strip().splitlines()[:1]
        return "failed", lines, f"{type(exc).__name__}: {first[0] if first else ''}"
    return ("already" if hook.stats["cache_hits"] > hits else "instrumented"), lines, ""


def warm(packages: Iterable[str], modes: Iterable[str] = ("fast",), jobs: int = 0,
         progress: Callable[[int, int], None] | None = None) -> Result:
    """Instrument every module of ``packages`` into the cache, in ``jobs`` worker
    processes (0: one per core), for each of ``modes``."""
    files: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name in packages:
        for path, mod in package_files(name):
            if path not in seen:
                seen.add(path)
                files.append((path, mod))
    return warm_files(files, modes, jobs, progress)


def warm_files(files: list[tuple[str, str]], modes: Iterable[str] = ("fast",), jobs: int = 0,
               progress: Callable[[int, int], None] | None = None) -> Result:
    """Instrument ``files`` ((path, module name)) into the cache, side by side."""
    modes = tuple(modes)
    files = sorted(files, key=lambda pm: -_size(pm[0]))  # the largest first: even finish
    work = [(path, mod, mode) for mode in modes for path, mod in files]
    res = Result(modules=len(files), jobs=max(1, min(jobs or os.cpu_count() or 1, len(work))))
    t0 = time.perf_counter()
    if progress:
        progress(0, len(work))
    outcomes: Iterable[tuple[str, int, str]]
    ex: Any = None
    if res.jobs == 1:
        outcomes = map(_warm_one, work)
    else:
        from concurrent.futures import ProcessPoolExecutor

        ex = ProcessPoolExecutor(max_workers=res.jobs)
        outcomes = ex.map(_warm_one, work, chunksize=1)
    try:
        for done, ((path, _mod, mode), (status, lines, reason)) in enumerate(
                zip(work, outcomes, strict=True), 1):
            if mode == modes[0]:
                res.lines += lines
            if status == "instrumented":
                res.instrumented += 1
            elif status == "already":
                res.already += 1
            else:
                res.failed.append(f"{path}: {reason}"
                                  + (f" ({mode} mode)" if len(modes) > 1 else ""))
            if progress:
                progress(done, len(work))
    finally:
        if ex is not None:
            ex.shutdown(cancel_futures=True)
    res.seconds = time.perf_counter() - t0
    return res


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


WARM_AT = 8  # cold modules that make warming ahead worth its worker processes


def before_run(packages: Iterable[str], mode: str, say: Callable[[str], None]) -> Result | None:
    """``memscope run --include PKG``: instrument the included packages' cold modules
    in worker processes before the program starts (the program's own process would
    otherwise do it module by module, on import, one core at a time). Nothing when the
    cache cannot be written (``PYTHONDONTWRITEBYTECODE``) or few modules are cold; a
    module that fails is left to the hook, which says so when it is imported."""
    if sys.dont_write_bytecode:
        return None
    cold = cold_files(packages, mode)
    if len(cold) < WARM_AT:
        return None
    jobs = min(os.cpu_count() or 1, len(cold))
    say(f"instrumenting {len(cold):,} modules of {', '.join(packages)} in {jobs} "
        "processes before the program starts (once: later runs find them cached)")
    res = warm_files(cold, (mode,), jobs)
    say(f"instrumented {res.instrumented:,} modules ({res.lines:,} lines) in "
        f"{res.seconds:.1f} s")
    return res
