"""The pytest plugin (registered as ``memscope`` through the ``pytest11`` entry point).

``pytest --memscope`` instruments the project under test (every module with Python
source under the rootdir, outside site-packages; more with ``--memscope-package``) and
writes a capture and reports for the session into ``--memscope-output`` (default
``MemoryAnalysis``) under the name ``pytest``. Test files and conftests under the
rootdir are instrumented too, composed with pytest's assertion rewriting: memscope's
transformer first, positions mapped back to the file's own, then pytest rewrites the
asserts of that tree (``_compose``); pytest caches the result apart from its plain
rewrite (its pyc name carries memscope's options digest).

``@pytest.mark.memscope_limit("50 MB")`` fails a test whose tracked variables (the test
body's and those of the code it calls) together peak above the budget while it runs,
naming the variables that held the most. A variable counts with its size at bind (deep
in full mode); the census's retained sizes are not used here yet. Units: B, KB/MB/GB
(powers of 1000), KiB/MiB/GiB (powers of 1024). A budget that cannot be read is a usage
error naming the test. Without ``--memscope`` only explicitly tracked variables
(``memscope.track_var``) count, and the first such test warns so, once a session.

Importing this module costs nothing: memscope and libcst are imported only when used.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

_UNITS = {
    "": 1, "b": 1,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "k": 1000, "m": 1000**2, "g": 1000**3,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}


def parse_size(text: str | int | float) -> int:
    """``"50 MB"`` -> 50000000; ``"1.5 KiB"`` -> 1536; an int is bytes."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return int(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(
            f"memscope_limit: cannot read {text!r} as a size; write e.g. '50 MB', '512 KiB'"
        )
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _fmt(n: int) -> str:
    for unit, size in (("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("memscope", "memory tracking by variable name")
    group.addoption("--memscope", action="store_true", default=False,
                    help="instrument the project under test and write a memscope report")
    group.addoption("--memscope-output", default=None, metavar="DIR",
                    help="folder for the capture and reports (default: MemoryAnalysis)")
    group.addoption("--memscope-package", action="append", default=[], metavar="PKG",
                    help="also instrument this package (repeatable; may be installed)")
    group.addoption("--memscope-mode", default=None, choices=("fast", "full"),
                    help="what to record (default: fast)")
    group.addoption("--memscope-format", default="binary,html,svg,timeline",
                    help="outputs to write at the end of the session, as memscope run "
                    "--format (default: the capture, the dashboard and the SVGs)")


_state: dict[str, Any] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: Any, parser: Any, args: Any) -> None:
    """Install the hook before conftest files import the project."""
    ns = early_config.known_args_namespace
    if not getattr(ns, "memscope", False) or "hook" in _state:
        return
    import os
    import time

    from memscope import tracker
    from memscope_instrument import hook

    output = getattr(ns, "memscope_output", None) or "MemoryAnalysis"
    tracker.init(mode=getattr(ns, "memscope_mode", None), output_dir=os.path.abspath(output),
                 name="pytest")
    _state["started"] = time.time()
    _state["hook"] = hook.install_import_hook(
        tuple(getattr(ns, "memscope_package", None) or ()),
        roots=[str(early_config.rootpath)],
        mode=getattr(ns, "memscope_mode", None),
        start=False,
    )
    _compose(str(early_config.rootpath), _state["hook"].rule.options)


def _compose(root: str, options: Any) -> None:
    """Instrument the files pytest's assertion rewriter loads (test modules, conftests)
    under ``root``: wraps its ``_rewrite_test`` (read, parse, rewrite, compile) so that
    the tree it rewrites is the instrumented one, positions mapped to the file's own
    (its assertion messages quote the file's own lines). Undone by ``_uncompose``."""
    from _pytest.assertion import rewrite as rw

    from memscope_instrument import hook

    plain = rw._rewrite_test
    said: set[str] = set()
    top = os.path.join(os.path.normcase(os.path.abspath(root)), "")

    def _rewrite_test(fn: Any, config: Any) -> Any:
        path = str(fn)
        if hook.is_system_path(path) or not os.path.normcase(path).startswith(top):
            return plain(fn, config)
        import ast
        import importlib.util

        from memscope import _monitor, _own
        from memscope_instrument import transform

        source = fn.read_bytes()
        _own.begin()  # memscope's own work, as the import hook's
        _monitor.begin_own_work()
        try:
            result = transform.instrument_source(source, path, fn.stem, options)
            if not result.changed:
                return plain(fn, config)
            tree = ast.parse(result.code, path)
            text = importlib.util.decode_source(source)  # as Python reads it (coding, BOM)
            hook.remap_tree(tree, result.code.encode("utf-8").splitlines(),
                            text.encode("utf-8").splitlines(), list(result.line_map))
        except Exception as exc:  # the file's own syntax error is pytest's to report
            if path not in said and not isinstance(exc, SyntaxError):
                said.add(path)
                import sys

                sys.stderr.write(f"memscope: {path}: not instrumented ({exc})\n")
            return plain(fn, config)
        finally:
            _monitor.end_own_work()
            _own.end()
        rw.rewrite_asserts(tree, source, path, config)
        code = compile(tree, path, "exec", dont_inherit=True)
        return importlib.util.source_hash(source), code

    _state["composed"] = (plain, rw.PYC_TAIL)
    rw._rewrite_test = _rewrite_test
    # cached apart from pytest's plain rewrite, and per memscope's options
    rw.PYC_TAIL = f".{rw.PYTEST_TAG}-memscope-{options.digest()}{rw.PYC_EXT}"


def _uncompose() -> None:
    composed = _state.pop("composed", None)
    if composed is not None:
        from _pytest.assertion import rewrite as rw

        rw._rewrite_test, rw.PYC_TAIL = composed


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers",
        "memscope_limit(size): fail the test if its tracked variables peak above size "
        "(e.g. '50 MB')",
    )


def _budget(item: Any) -> int | None:
    """The test's memscope_limit in bytes (None: no marker); a usage error naming the
    test when it cannot be read."""
    marker = item.get_closest_marker("memscope_limit")
    if marker is None:
        return None
    if not marker.args:
        raise pytest.UsageError(f"{item.nodeid}: memscope_limit needs a size, e.g. '50 MB'")
    try:
        return parse_size(marker.args[0])
    except ValueError as exc:
        raise pytest.UsageError(f"{item.nodeid}: {exc}") from None


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    for item in items:  # every budget read before any test runs
        _budget(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: Any) -> Any:
    budget = _budget(item)
    if budget is None:
        return (yield)
    if not item.config.getoption("memscope", False) and not _state.get("warned"):
        _state["warned"] = True
        item.warn(pytest.PytestWarning(
            "memscope_limit has no effect without --memscope: only variables tracked "
            "with memscope.track_var count (said once a session)"))
    from memscope import _hooks
    from memscope.analysis import Analysis

    mem = _hooks.MemorySink(limit=10_000_000)
    old = _hooks.set_sink(mem)
    try:
        result = yield
    finally:
        _hooks.set_sink(old)
        events = list(mem.events)
        try:
            old.write(events)  # the session's capture keeps them
        except Exception:
            pass
    an = Analysis().feed_all([*_hooks.tables(), *events]).finish()
    peak = an.peak_bytes
    if peak > budget:
        top = [v for v in an.top_variables(5) if v.peak_bytes > 0]
        names = ", ".join(
            f"{v.var} in {v.scope} ({v.file.rsplit('/', 1)[-1]}:{v.line}) {_fmt(v.peak_bytes)}"
            for v in top
        )
        pytest.fail(
            f"memscope_limit: tracked variables peaked at {_fmt(peak)}, above the "
            f"{_fmt(budget)} budget; largest: {names or 'none recorded'}",
            pytrace=False,
        )
    return result


def pytest_unconfigure(config: Any) -> None:
    _state.pop("warned", None)
    _uncompose()
    h = _state.pop("hook", None)
    if h is None:
        return
    h.uninstall()
    from memscope.commands.run import Finisher, parse_formats

    fmt = config.getoption("memscope_format", "binary,html,svg,timeline")
    fin = Finisher(parse_formats(fmt), True)
    fin.started = _state.get("started", fin.started)
    fin()
