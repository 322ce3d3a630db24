"""The pytest plugin (registered as ``memscope`` through the ``pytest11`` entry point).

``pytest --memscope`` instruments the project under test (every module with Python
source under the rootdir, outside site-packages; more with ``--memscope-package``) and
writes a capture and reports for the session into ``--memscope-output`` (default
``MemoryAnalysis``) under the name ``pytest``. Test files and conftests under the
rootdir are instrumented too, composed with pytest's assertion rewriting: memscope's
transformer first, positions mapped back to the file's own, then pytest rewrites the
asserts of that tree (``_compose``); pytest caches the result apart from its plain
rewrite (its pyc name carries memscope's options digest).

``@pytest.mark.memscope_limit("50 MB")`` fails a test when either of two measures is
above the budget, naming the variables behind it (names, types, sizes; never values):

- *kept alive at its end* (retained sizes): a census (``memscope.census``) taken as the
  test function returns, its locals still alive, and one taken as it starts (its
  parameters, the fixtures' values, bound): what the named variables of instrumented
  code retain (the census's ``named`` bytes, each object once) grew by between them.
  So it counts what the body's variables hold at its end (a list bound empty and grown
  afterwards counts at its size then; a big object a helper returned and the test kept
  counts, once even when a cache holds it too), and what module globals, class
  attributes and the test's parameters gained (a module cache a helper filled). Not
  counted: what was freed before the test returned (a helper's locals, a ``del``-ed
  temporary); what a fixture made before the test started; what something the census
  does not see holds too (a library's cache): that is not the test's to free. It is a
  net growth: memory the test frees that was held before it started offsets what it
  keeps. A fixture's value is held by pytest too, so what the body adds to it may be
  left out as held elsewhere: it is on 3.10, 3.11 and 3.13, where 3.12's census
  counts it. The failure names the variables behind it, largest first: the bytes each
  reaches (retained and shared) less what it reached at the start.
- *peak at bind*: the sizes the variables of the test body and of the code it calls
  had when bound (deep in full mode), summed at their highest while the test ran. So
  a temporary that was big when bound counts here even when it is freed before the end.

The two censuses are taken on PY_START and PY_RETURN events of the test's code objects
only (``sys.monitoring`` local events, 3.12+: the code the test calls runs as without
a budget), or by a profile function (``sys.setprofile``, 3.10 and 3.11: it runs at
every call in a budgeted test). Where neither can be armed (a generator or coroutine
test; on 3.10 and 3.11 a profile function already set, such as cProfile's) they are
taken before and after the test: its own locals are gone by then, and only what other
variables gained counts. Units: B, KB/MB/GB (powers of 1000), KiB/MiB/GiB (powers of
1024). A budget that cannot be read is a usage error naming the test. Without
``--memscope`` only explicitly tracked variables (``memscope.track_var``) count, at
bind, and the first such test warns so, once a session.

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
        "memscope_limit(size): fail the test if what it keeps alive at its end (retained "
        "sizes), or its variables' sizes at bind at their peak, are above size (e.g. '50 MB')",
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


_GENERATOR_FLAGS = 0x20 | 0x80 | 0x100 | 0x200  # generator, coroutine, iterable, async gen


def _test_codes(item: Any) -> list[Any]:
    """The code objects of the test function itself (and, for a decorated test, of the
    function it wraps): the frames whose return ends the test's body. Empty for a
    generator or coroutine test (its frame returns at each suspension)."""
    import inspect

    codes: list[Any] = []
    fn = getattr(item, "obj", None)
    try:
        inner = inspect.unwrap(fn) if callable(fn) else None
    except ValueError:  # a cycle of __wrapped__
        inner = None
    for f in (fn, inner):
        code = getattr(f, "__code__", None)
        if code is not None and not code.co_flags & _GENERATOR_FLAGS and \
                all(c is not code for c in codes):
            codes.append(code)
    return codes


class _Marks:
    """The censuses of one budgeted test: as its function starts (its parameters, the
    fixtures' values, bound; for a decorated test, as the innermost of its functions
    starts) and as it returns (its locals still alive). 0: not taken."""

    def __init__(self) -> None:
        self.start = 0
        self.end = 0

    def census(self, at_end: bool) -> None:
        if self.end:
            return
        from memscope import _monitor

        try:
            cid = _monitor.census("snapshot")
        except Exception:
            return
        if at_end:
            self.end = cid or -1
        else:
            self.start = cid


def _arm_censuses(item: Any, marks: _Marks) -> Any:
    """Take ``marks``' censuses as the test function starts and returns. Returns what
    disarms it, or None when it cannot be armed (a generator or coroutine test, no
    free sys.monitoring tool, or on 3.10 and 3.11 another profile function set):
    ``pytest_runtest_call`` then takes them before and after the test instead.

    On 3.12+ PY_START and PY_RETURN events of the test's code objects only
    (``sys.monitoring``'s local events: the code the test calls runs as fast as
    without a budget); before, a profile function (``sys.setprofile``: called at
    every call in the test)."""
    import sys

    codes = _test_codes(item)
    if not codes:
        return None
    ids = {id(c) for c in codes}

    mon = getattr(sys, "monitoring", None)
    if mon is not None:
        tool = next((t for t in (3, 4, 2, 5, 1, 0) if mon.get_tool(t) is None), None)
        if tool is None:
            return None
        start, end = mon.events.PY_START, mon.events.PY_RETURN

        def _started(code: Any, offset: int) -> None:
            if id(code) in ids:
                marks.census(False)

        def _returned(code: Any, offset: int, retval: Any) -> None:
            if id(code) in ids:
                marks.census(True)

        mon.use_tool_id(tool, "memscope pytest budget")
        mon.register_callback(tool, start, _started)
        mon.register_callback(tool, end, _returned)
        for c in codes:
            mon.set_local_events(tool, c, start | end)

        def _disarm() -> None:
            for c in codes:
                mon.set_local_events(tool, c, 0)
            mon.register_callback(tool, start, None)
            mon.register_callback(tool, end, None)
            mon.free_tool_id(tool)

        return _disarm

    if sys.getprofile() is not None:
        return None

    def _profile(frame: Any, event: str, arg: Any) -> None:
        if (event == "call" or event == "return") and id(frame.f_code) in ids:
            marks.census(event == "return")

    sys.setprofile(_profile)

    def _unprofile() -> None:
        if sys.getprofile() is _profile:
            sys.setprofile(None)

    return _unprofile


class _Kept:
    """What the test kept alive at its end. ``total``: how much more the named
    variables of instrumented code retained in the census at its end than in the one
    at its start, each object once (the censuses' ``named`` bytes); ``rows``: the bound
    objects behind it, each with the bytes it reaches (retained and shared) less what
    it reached at the start (an object both censuses found: only its growth), largest
    first, and whether other names reach some of it too."""

    def __init__(self, an: Any, before: int, after: int) -> None:
        cens = {c.cid: c for c in an.censuses}
        start: dict[tuple[int, str], int] = {}
        for v in cens[before].vars if before in cens else ():
            k = (v.oid, v.key)
            start[k] = max(start.get(k, 0), v.retained + v.shared)
        groups: dict[int, list[Any]] = {}
        for v in cens[after].vars if after in cens else ():
            groups.setdefault(v.oid, []).append(v)
        self.rows: list[tuple[int, Any, bool]] = []  # (bytes gained, first binding, shared)
        for vs in groups.values():
            now = max(v.retained + v.shared for v in vs)
            was = max(start.get((v.oid, v.key), 0) for v in vs)
            if now > was:
                shared = len(vs) == 1 and vs[0].shared > 0
                self.rows.append((now - was, min(vs, key=lambda v: v.key), shared))
        self.rows.sort(key=lambda r: (-r[0], r[1].key))
        self.total = 0
        if after in cens:
            self.total = cens[after].named - (cens[before].named if before in cens else 0)
            self.total = max(0, min(self.total, sum(n for n, _, _ in self.rows)))


def _where(an: Any, v: Any) -> str:
    """`` (file:line)`` of a census variable's binding seen during the test, else
    `` (module)`` (a global bound before the test began)."""
    vs = an.vars.get(v.key)
    if vs is None or vs.line <= 0:
        return f" ({v.module})" if v.module else ""
    return f" ({vs.file.rsplit('/', 1)[-1]}:{vs.line})"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: Any) -> Any:
    budget = _budget(item)
    if budget is None:
        return (yield)
    memscope_on = bool(item.config.getoption("memscope", False))
    if not memscope_on and not _state.get("warned"):
        _state["warned"] = True
        item.warn(pytest.PytestWarning(
            "memscope_limit has no effect without --memscope: only variables tracked "
            "with memscope.track_var count (said once a session)"))
    from memscope import _hooks
    from memscope.analysis import Analysis

    mem = _hooks.MemorySink(limit=10_000_000)
    old = _hooks.set_sink(mem)
    marks = _Marks()
    before = 0
    try:
        disarm = None
        if memscope_on:
            from memscope import _monitor

            before = _monitor.census("snapshot")  # unless the test's start is seen
            disarm = _arm_censuses(item, marks)
        try:
            result = yield
        finally:
            if disarm is not None:
                disarm()
        if memscope_on and not marks.end:
            marks.census(True)  # its frame's end not seen: what outlives it
    finally:
        _hooks.set_sink(old)
        events = list(mem.events)
        try:
            old.write(events)  # the session's capture keeps them
        except Exception:
            pass
    an = Analysis().feed_all([*_hooks.tables(), *events]).finish()
    peak = an.peak_bytes
    kept = _Kept(an, marks.start or before, marks.end) if marks.end > 0 else None
    said = []
    if peak > budget:
        top = [v for v in an.top_variables(5) if v.peak_bytes > 0]
        names = ", ".join(
            f"{v.var} in {v.scope} ({v.file.rsplit('/', 1)[-1]}:{v.line}) {_fmt(v.peak_bytes)}"
            for v in top
        )
        said.append(f"tracked variables peaked at {_fmt(peak)}, above the {_fmt(budget)} "
                    f"budget; largest: {names or 'none recorded'}")
    if kept is not None and kept.total > budget:
        names = ", ".join(
            f"{v.var} in {v.scope}{_where(an, v)} {v.type} {_fmt(n)}"
            + (" (shared with other names)" if shared else "")
            for n, v, shared in kept.rows[:5]
        )
        said.append(f"the test kept {_fmt(kept.total)} alive at its end (retained), above "
                    f"the {_fmt(budget)} budget; kept: {names}")
    if said:
        pytest.fail("memscope_limit: " + ". And ".join(said), pytrace=False)
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
