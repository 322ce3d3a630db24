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


# every supported Python (requires-python >= 3.10; issue 17): 3.12 and 3.13 change
# f-strings (PEP 701), comprehensions (PEP 709, inlined), frame locals (PEP 667, 3.13),
# line events (sys.monitoring) and the bytecode the code swap relies on
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
# what runs on each: the transformer corpus and its properties, real libraries
# instrumented, the import hook (finder, cache, line mapping, errors), memscope run,
# memscope-instrument and the capture round trip
COMPAT_TESTS = [
    "tests/test_transform_corpus.py",
    "tests/test_transform_properties.py",
    "tests/test_rebuilt_functions.py",
    "tests/test_hook_linemap.py",
    "tests/test_hook_errors.py",
    "tests/test_hook_finder.py",
    "tests/test_hook_cache.py",
    "tests/test_hook_class_bodies.py",
    "tests/test_run_cli.py",
    "tests/test_instrument_cli.py",
    "tests/test_capture_roundtrip.py",
    # what the program must not see of memscope (issue 17): the __weakref__ getter on
    # 3.12+'s managed weak references, the prologue's bytecode rewrite per version, the
    # handle copied by value, pytest's assertion rewriting composed with the transformer
    "tests/test_weakref_invisible.py",
    "tests/test_prologue_imports.py",
    "tests/test_pickle_by_value.py",
    "tests/test_pytest_plugin.py",
    # the C hot path (issue 19) per version: its buffer, its entry points against the
    # Python ones, the guards through them (3.13 reads the clock through a new API)
    "tests/test_hotpath.py",
    "tests/test_guards.py",
    # signals (issue 16): where a Ctrl-C or a handler's exception reaches the program
    # depends on where each version checks for signals (3.10 at jumps taken and frame
    # starts, 3.11+ at RESUME and back edges); the whole file, 7 to 12 s per version
    "tests/test_interrupts.py",
    # the report modules mypyc compiles for each version (setup.py), against their source
    "tests/test_compiled_reports.py",
]
COMPAT_DEPS = ["pytest>=8.0", "hypothesis>=6.100", "hypothesmith>=0.3", "coverage>=7.0",
               "humanize>=4.0", "jinja2>=3.1", "cloudpickle>=3.0"]


@nox.session(python=PYTHONS)
def compat(session: nox.Session) -> None:
    """COMPAT_TESTS on one Python (``nox -s compat-3.12``); CI runs the versions the
    full suite does not (scripts/compat). The C extensions build for that version."""
    session.install("-e", ".", *COMPAT_DEPS)
    # hypothesmith's grammar and node programs run with the full suite (scripts/test):
    # a minute per version, and which programs they draw follows hypothesis's version
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *COMPAT_TESTS,
                "-k", "not test_grammar_programs and not test_node_programs",
                *session.posargs)


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
