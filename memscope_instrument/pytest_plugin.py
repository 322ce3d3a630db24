"""The pytest plugin (registered as ``memscope`` through the ``pytest11`` entry point).

``pytest --memscope`` instruments the project under test (every module with Python
source under the rootdir, outside site-packages; more with ``--memscope-package``) and
writes a capture and reports for the session into ``--memscope-output`` (default
``MemoryAnalysis``) under the name ``pytest``. Test files themselves stay with pytest's
assertion rewriter and are not instrumented.

``@pytest.mark.memscope_limit("50 MB")`` fails a test whose tracked variables together
peak above the budget while it runs, naming the variables that held the most. Units: B,
KB/MB/GB (powers of 1000), KiB/MiB/GiB (powers of 1024). Without ``--memscope`` only
explicitly tracked variables (``memscope.track_var``) count.

Importing this module costs nothing: memscope and libcst are imported only when used.
"""

from __future__ import annotations

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
    group.addoption("--memscope-format", default="html,json,svg,binary",
                    help="reports to write at the end of the session")


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


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers",
        "memscope_limit(size): fail the test if its tracked variables peak above size "
        "(e.g. '50 MB')",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: Any) -> Any:
    marker = item.get_closest_marker("memscope_limit")
    if marker is None:
        return (yield)
    if not marker.args:
        raise pytest.UsageError(f"{item.nodeid}: memscope_limit needs a size, e.g. '50 MB'")
    budget = parse_size(marker.args[0])
    from memscope import _hooks
    from memscope.analysis import Analysis

    mem = _hooks._MemorySink(limit=10_000_000)
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
    h = _state.pop("hook", None)
    if h is None:
        return
    h.uninstall()
    from memscope.commands.run import _Finisher, _parse_formats

    fmt = config.getoption("memscope_format", "html,json,svg,binary")
    fin = _Finisher(_parse_formats(fmt), True)
    fin.started = _state.get("started", fin.started)
    fin()
