"""Sessions: tests, lint, typecheck, bench (and realworld: third-party suites instrumented)."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (what CI runs)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "memscope", "memscope_instrument", "tests", "benchmarks")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[test]", "mypy")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (timings are recorded in docs/performance.md, never asserted)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def realworld(session: nox.Session) -> None:
    """Third-party suites (six, cachetools, idna, more-itertools, toolz, attrs) run plain
    and instrumented: identical pass/fail counts (tests/test_realworld.py)."""
    session.install("-e", ".[test]")
    session.run("python", "tests/test_realworld.py", *session.posargs)


@nox.session
def realworld_hook(session: nox.Session) -> None:
    """Third-party test suites (toolz, six, more-itertools, pyparsing, tabulate, idna,
    cachetools, click, attrs, boltons) plain, then under ``pytest --memscope`` in fast and
    full mode: identical counts, and the wall-time ratios (docs/realworld.md keeps the
    table; ``-- --warm`` times warm caches)."""
    session.install("-e", ".[test]", "railroad-diagrams")  # pyparsing's diagram tests
    session.run("python", "benchmarks/realworld_hook.py", *session.posargs)
