"""The runtime never changes the program: no strong references, no exceptions into user
code, no recursion into itself, exact under threads, task-aware under asyncio."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import weakref
from typing import Any

import pytest

import memscope
from memscope import _hooks
from memscope.events import BIND, ENTER, ERROR, FINAL

from .conftest import Recorder


class Payload:
    def __init__(self, n: int = 10) -> None:
        self.data = list(range(n))


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_bound_object_dies_exactly_when_it_would_untracked(rec: Recorder, mode: str) -> None:
    _hooks.configure(full=mode == "full", flush_at=8192, deep_objects=1000, deep_ns=10**9)
    m = rec.module("x")
    tok = m.enter(1, -1)
    obj = Payload()
    ref = weakref.ref(obj)
    assert m.bind(0, obj, tok) is obj
    m.exit(tok)
    del obj
    assert ref() is None  # no gc.collect(): refcounting alone frees it
    if mode == "full":
        assert any(e[0] == FINAL for e in rec.events())


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_track_var_then_del_frees_the_object(rec: Recorder, mode: str) -> None:
    _hooks.configure(full=mode == "full", flush_at=8192, deep_objects=1000, deep_ns=10**9)
    x = Payload()
    ref = weakref.ref(x)
    memscope.track_var(x)
    del x
    assert ref() is None
    names = [b.var for b in rec.analysis().all_bindings()]
    assert "x" in names


def test_full_mode_records_finalization_time(full: Recorder) -> None:
    m = full.module("x")
    tok = m.enter(1, -1)
    obj = Payload()
    m.bind(0, obj, tok)
    m.exit(tok)
    del obj
    an = full.analysis()
    lives = [life for life in an.finished_objects if life.type.endswith("Payload")]
    assert len(lives) == 1 and lives[0].t_final >= lives[0].t_first


def test_objects_without_weak_references_end_by_the_death_watch(full: Recorder) -> None:
    from memscope import _hooks

    if _hooks._dw is None:
        pytest.skip("memscope._deathwatch is not built here")
    m = full.module("xs", "text", "word")
    tok = m.enter(1, -1)
    xs, text, word = [1, 2, 3], "x" * 5000, "".join(["y"] * 20)
    m.bind(0, xs, tok)  # lists refuse weak references: their deallocation is watched
    m.bind(1, text, tok)  # a large str: its block's free is seen (the raw allocator's)
    m.bind(2, word, tok)  # a small str is not watched (freed by the interpreter's paths)
    m.exit(tok)
    del xs, text, word
    an = full.analysis()
    ended = [(life.type, life.shallow) for life in an.finished_objects if life.end_known]
    assert [t for t, _ in ended] == ["list", "str"] and ended[1][1] > 5000
    assert next(b for b in an.all_bindings() if b.type == "list").end == "scope_exit"


# ---- fault injection: hostile objects ------------------------------------------------


class RaisingSizeof:
    def __sizeof__(self) -> int:
        raise RuntimeError("boom")


class LyingSizeof:
    def __sizeof__(self) -> int:
        return -5


class HugeSizeof:
    def __sizeof__(self) -> int:
        return 10**30


class NonIntSizeof:
    def __sizeof__(self) -> Any:
        return "big"


class RecursingSizeof:
    """Its __sizeof__ calls back into memscope: must not recurse forever."""

    def __sizeof__(self) -> int:
        memscope.track_var(self)
        return 64


class HostileDunders:
    @property  # type: ignore[misc]
    def __class__(self) -> Any:
        raise RuntimeError("__class__")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("__eq__")

    def __hash__(self) -> int:
        raise RuntimeError("__hash__")

    def __len__(self) -> int:
        raise RuntimeError("__len__")

    def __iter__(self) -> Any:
        raise RuntimeError("__iter__")

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"__getattr__ {name}")

    def __getattribute__(self, name: str) -> Any:
        raise RuntimeError(f"__getattribute__ {name}")


class RaisingDel:
    def __del__(self) -> None:
        raise RuntimeError("__del__")


class RaisingTrackable:
    def __memscope_size__(self) -> int:
        raise ValueError("size")

    def __memscope_children__(self) -> Any:
        raise ValueError("children")

    def __memscope_buffer__(self) -> Any:
        raise ValueError("buffer")


HOSTILE = [
    RaisingSizeof,
    LyingSizeof,
    HugeSizeof,
    NonIntSizeof,
    RecursingSizeof,
    HostileDunders,
    RaisingDel,
    RaisingTrackable,
]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # RaisingDel's own
@pytest.mark.parametrize("mode", ["fast", "full"])
@pytest.mark.parametrize("cls", HOSTILE, ids=lambda c: c.__name__)
def test_hostile_objects_never_raise_into_user_code(rec: Recorder, mode: str, cls: type) -> None:
    _hooks.configure(full=mode == "full", flush_at=8192, deep_objects=1000, deep_ns=10**9)
    m = rec.module("x")
    tok = m.enter(1, -1)
    obj = cls()
    assert m.bind(0, obj, tok) is obj
    memscope.track_var(obj)
    m.unbind(0, tok)
    m.exit(tok)
    del obj
    an = rec.analysis()
    assert an.binds >= 2  # both bindings recorded despite the hostile object


def test_proxies_and_dead_proxies(full: Recorder) -> None:
    m = full.module("p")
    tok = m.enter(1, -1)
    target = Payload()
    proxy = weakref.proxy(target)
    m.bind(0, proxy, tok)
    del target
    m.bind(0, proxy, tok)  # a dead proxy raises ReferenceError on any use
    m.exit(tok)
    assert full.analysis().binds == 2


@pytest.mark.slow  # seconds in-process (large data): not the inner loop
def test_deeply_nested_list_does_not_recurse(full: Recorder) -> None:
    deep: list[Any] = []
    cur = deep
    for _ in range(10**6):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    m = full.module("deep")
    tok = m.enter(1, -1)
    m.bind(0, deep, tok)
    m.exit(tok)
    b = full.analysis().all_bindings()[-1]
    assert b.var == "deep" and b.deep > sys.getsizeof(deep)
    # tear down iteratively: CPython's own deallocation of a 10^6-deep list is safe
    while deep:
        deep = deep[0]


def test_self_referencing_containers(full: Recorder) -> None:
    a: list[Any] = []
    a.append(a)
    d: dict[str, Any] = {}
    d["self"] = d
    d["a"] = a
    m = full.module("a", "d")
    tok = m.enter(1, -1)
    m.bind(0, a, tok)
    m.bind(1, d, tok)
    m.exit(tok)
    got = {b.var: b.deep for b in full.analysis().all_bindings()}

    def aligned(o: Any) -> int:
        return (sys.getsizeof(o) + 7) & ~7

    assert got["a"] == aligned(a)
    assert got["d"] == aligned(d) + aligned(a) + aligned("self") + aligned("a")


def test_internal_errors_are_counted_not_raised(rec: Recorder, monkeypatch: Any) -> None:
    def broken(*_a: Any, **_k: Any) -> None:
        raise MemoryError("simulated")

    class Fresh:  # a class never bound before: not on the fast-type tables
        pass

    monkeypatch.setattr(_hooks, "_slow_bind", broken)
    before = _hooks.counters()["errors"]
    m = rec.module("x")
    tok = m.enter(1, -1)
    assert m.bind(0, Fresh(), tok) is not None
    assert _hooks.counters()["errors"] == before + 1
    assert any(e[0] == ERROR and e[2] == "bind" for e in rec.events())


# ---- threads and asyncio -------------------------------------------------------------


@pytest.mark.slow  # seconds in-process (large data): not the inner loop
def test_32_threads_times_10000_binds_are_counted_exactly(rec: Recorder) -> None:
    m = rec.module("item")
    n_threads, n_binds = 32, 10_000
    barrier = threading.Barrier(n_threads)

    def work() -> None:
        tok = m.enter(1, -1)
        barrier.wait()
        for i in range(n_binds):
            m.bind(0, [i], tok)
        m.exit(tok)

    threads = [threading.Thread(target=work, name=f"worker-{i}") for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = rec.events()
    assert sum(1 for e in events if e[0] == BIND) == n_threads * n_binds
    assert sum(1 for e in events if e[0] == ENTER) == n_threads
    an = Recorder(rec.sink).analysis()
    per_thread = an.stats()["by_thread"]
    assert sorted(per_thread) == sorted(f"worker-{i}" for i in range(n_threads))
    assert all(g["binds"] == n_binds for g in per_thread.values())


def test_asyncio_events_carry_their_task(rec: Recorder) -> None:
    m = rec.module("value")

    async def job(n: int) -> None:
        tok = m.enter(1, -1)
        for i in range(3):
            m.bind(0, [n, i], tok)
            await asyncio.sleep(0)
        m.exit(tok)

    async def main() -> None:
        await asyncio.gather(
            asyncio.create_task(job(1), name="alpha"), asyncio.create_task(job(2), name="beta")
        )

    asyncio.run(main())
    an = rec.analysis()
    tasks = {b.task_name for b in an.all_bindings() if b.var == "value"}
    assert tasks == {"alpha", "beta"}
    assert an.stats()["by_task"]["alpha"]["binds"] == 3


def test_outside_asyncio_the_task_is_empty(rec: Recorder) -> None:
    m = rec.module("v")
    tok = m.enter(1, -1)
    m.bind(0, [1], tok)
    m.exit(tok)
    assert rec.analysis().all_bindings()[-1].task == 0


# ---- bounded memory --------------------------------------------------------------------


def test_memory_sink_is_bounded_and_counts_what_it_drops() -> None:
    sink = _hooks.MemorySink(limit=1000)
    old = _hooks.set_sink(sink)
    try:
        m = _hooks.register(_hooks.HOOKS_VERSION, "b.py", "b", (("<module>", 1, 1),),
                            ((1, 0, 0, "x", 1),))
        tok = m.enter(0, -1)
        for i in range(20_000):
            m.bind(0, [i] * 64, tok)  # not small: never sampled
        _hooks.flush()
        assert len(sink.events) <= 1000
        assert sink.dropped > 15_000
    finally:
        _hooks.set_sink(old)


@pytest.mark.slow
def test_ten_million_binds_keep_the_tracker_flat() -> None:
    """The buffer is flushed in chunks, so tracker memory does not grow with binds."""

    class CountingSink:
        def __init__(self) -> None:
            self.n = 0

        def write(self, events: list[Any]) -> None:
            self.n += len(events)

    sink = CountingSink()
    old = _hooks.set_sink(sink)
    _hooks.set_sampling(False)
    try:
        m = _hooks.register(_hooks.HOOKS_VERSION, "c.py", "c", (("<module>", 1, 1),),
                            ((1, 0, 0, "x", 1),))
        tok = m.enter(0, -1)
        bind = m.bind
        value = [1, 2]
        sizes = []
        for _round in range(10):
            for _ in range(1_000_000):
                bind(0, value, tok)
            gc.collect()
            sizes.append(len(_hooks._buf) + sum(len(x) for x in _hooks._tables))
        _hooks.flush()
        assert sink.n >= 10_000_000
        assert max(sizes) < 3 * _hooks._flush_at  # never more than a few chunks held
    finally:
        _hooks.set_sampling(True)
        _hooks.set_sink(old)


@pytest.mark.parametrize("path", ["first bind", "cached re-bind"])
def test_full_mode_refcount_counts_only_the_programs_references(full: Recorder, path: str) -> None:
    m = full.module("x")
    tok = m.enter(1, -1)
    value = [1, 2, 3]
    other = [value, value]  # two more references from the program
    m.bind(0, value, tok)
    m.bind(0, value, tok)
    m.exit(tok)
    first, second = full.analysis().all_bindings()[-2:]
    got = first if path == "first bind" else second
    assert got.refcnt == 3  # the name `value` and two slots of `other`
    del other


def test_sampled_scalar_sites_count_what_they_skip(rec: Recorder) -> None:
    _hooks.set_sampling(True)
    m = rec.module("i")
    tok = m.enter(1, -1)
    n = _hooks.SCALAR_STREAK + 10 * _hooks.SAMPLE_EVERY
    for i in range(n):
        m.bind(0, i, tok)
    report = _hooks.sampling_report()
    m.bind(0, [1] * 64, tok)  # a value not small stops sampling for good, exactly counted
    m.exit(tok)
    an = rec.analysis()
    recorded = sum(1 for b in an.all_bindings() if b.var == "i" and b.type == "int")
    (every, skipped) = an.sampled[m.base]
    assert every == 0 and recorded + skipped == n
    assert [r[3:] for r in report if r[2] == m.base] == [(_hooks.SAMPLE_EVERY, skipped)]


def test_parameters_bound_by_enter_are_sampled_exactly_as_bind_samples(
        sampling: Recorder) -> None:
    """``enter`` binds its parameters with bind's sampling inline: the same rows are
    recorded, the same values skipped and counted, as when each is bound by ``bind``;
    a large value stops the sampling for good in both, and a site switched off (-1)
    records nothing in both."""
    rec = sampling
    inline = rec.module("a", "b", "off")
    called = rec.module("a", "b", "off")
    n = _hooks.SCALAR_STREAK + 5 * _hooks.SAMPLE_EVERY + 3
    values = [(i, None if i % 3 else True, 1.5) for i in range(n)]
    values += [([0] * 100, None, 2.5), (7, None, 3.5)]  # a large list at site 0
    for m in (inline, called):
        _hooks.set_site_enabled(m.base + 2, False)
    for vals in values:
        tok = inline.enter(1, 0, *vals)
        inline.exit(tok)
        tok = called.enter(1, -1)
        for site, v in enumerate(vals):
            called.bind(site, v, tok)
        called.exit(tok)
    report = {r[2]: r[3:] for r in _hooks.sampling_report()}
    got: dict[int, list[tuple[object, ...]]] = {inline.base: [], called.base: []}
    for ev in rec.events():
        for base in got:
            if ev[0] == BIND and base <= ev[2] < base + 3:
                got[base].append((ev[2] - base, ev[5], ev[6]))
    assert got[inline.base] == got[called.base]
    assert len(got[inline.base]) < 2 * n  # sampling skipped most of them
    assert all(site != 2 for site, _, _ in got[inline.base])
    for site in (0, 1):
        assert report.get(inline.base + site) == report.get(called.base + site)
    assert report.get(inline.base + 1) is not None  # None and True: still sampled
    assert report.get(inline.base) is None  # the large list ended it


def test_a_lambda_that_raised_ends_when_its_caller_runs_again(rec: Recorder) -> None:
    from memscope.events import ScopeKind

    m = _hooks.register(
        _hooks.HOOKS_VERSION,
        "lam.py",
        "lam",
        (
            ("<module>", int(ScopeKind.MODULE), 1),
            ("f", int(ScopeKind.FUNCTION), 2),
            ("f.<locals>.<lambda>", int(ScopeKind.LAMBDA), 3),
        ),
        ((3, 10, 2, "x", 9), (4, 4, 1, "after", 1), (5, 4, 2, "x", 9)),
    )
    f_tok = m.enter(1, -1)
    m.enter(2, 0, [1, 2])  # the lambda raises: no exit
    m.bind(1, [3], f_tok)  # f runs again: the lambda is over
    ok_tok = m.enter(2, 2, [4])  # a lambda that returns normally
    m.exit(ok_tok)
    m.exit(f_tok)
    an = rec.analysis()
    got = {(b.var, b.scope): b for b in an.all_bindings()}
    raised = next(b for b in an.all_bindings() if b.var == "x")
    assert raised.end == "scope_exit"
    assert raised.t_unbind <= got[("after", "f")].t_bind
    assert not an.instances and not an._open_lambdas


def test_a_scope_counts_an_object_held_by_three_names_once(rec: Recorder) -> None:
    m = rec.module("shared", "alias_one", "alias_two")
    tok = m.enter(1, -1)
    shared = list(range(1000))
    for site in range(3):
        m.bind(site, shared, tok)
    m.exit(tok)
    st = rec.analysis().stats()
    assert st["by_scope"]["fake_module:f"]["peak_bytes"] == sys.getsizeof(shared)
    assert st["by_type"]["list"]["peak_bytes"] == sys.getsizeof(shared)
    assert st["peak_bytes"] == sys.getsizeof(shared)


def test_a_site_switched_off_records_nothing_until_switched_on(rec: Recorder) -> None:
    m = rec.module("x")
    tok = m.enter(1, -1)
    _hooks.set_site_enabled(m.base, False)
    value = [1]
    assert m.bind(0, value, tok) is value
    m.unbind(0, tok)
    _hooks.set_site_enabled(m.base, True)
    m.bind(0, [2], tok)
    m.exit(tok)
    an = rec.analysis()
    assert an.binds == 1 and an.unbinds == 0


def test_register_records_one_row_per_module(rec: Any) -> None:
    """``register`` does no per-site work at import: it records one MODULE row holding
    the module's own table constants (not copies); readers see the usual SCOPE and SITE
    rows with global ids, in-process (``tables()``, Analysis) as from a capture."""
    from memscope.events import MODULE, SCOPE, SITE, module_table
    from memscope.planes import pack_planes

    scopes = (("<module>", 1, 1), ("f", 3, 2))
    sites = tuple((10 + i, 4, 1, f"v{i}", 1) for i in range(50))
    ns, nt, nums, names = module_table(scopes, sites)
    ints = pack_planes(nums)  # v4 code passes the numbers packed
    before = len(_hooks._buf)
    m = _hooks.register(_hooks.HOOKS_VERSION, "t.py", "t", ns, nt, ints, names)
    new = _hooks._buf.snapshot()[before:]
    assert [e[0] for e in new] == [MODULE] and new[0][5:7] == (2, 50)
    assert new[0][7] is ints and new[0][8] is names
    rows = {(e[0], e[1]): e for e in _hooks.tables()}
    assert rows[(SCOPE, m.scope_base + 1)] == (SCOPE, m.scope_base + 1, "t.py", "t", "f", 3, 2)
    assert rows[(SITE, m.base + 49)] == (SITE, m.base + 49, m.scope_base + 1, 59, 4, "v49", 1)
    tok = m.enter(1, -1)
    m.bind(49, [1, 2, 3], tok)
    m.exit(tok)
    b = rec.analysis().all_bindings()[-1]
    assert (b.var, b.scope, b.line, b.size) == ("v49", "f", 59, sys.getsizeof([1, 2, 3]))
    # a hand-written table (rows): the same table, the same rows
    by_hand = _hooks.register(_hooks.HOOKS_VERSION, "t.py", "t", scopes, sites)
    rows = {(e[0], e[1]): e for e in _hooks.tables()}
    assert rows[(SITE, by_hand.base + 49)] == (SITE, by_hand.base + 49,
                                               by_hand.scope_base + 1, 59, 4, "v49", 1)
    # code instrumented for an older contract (v1 to v3: 0.1.0 has no users of them)
    for old in (1, 2, 3, _hooks.HOOKS_VERSION + 1):
        with pytest.raises(ImportError, match="instrument the code again"):
            _hooks.register(old, "t.py", "t", scopes, sites)


def test_a_parameter_that_cannot_be_sized_does_not_stop_the_others(rec: Recorder) -> None:
    """``enter`` binds parameters with bind's fast path: a parameter whose size raises
    is recorded unsized and counted as an error, as ``bind`` would, and the parameters
    after it are still recorded."""
    from memscope.kinds import BindKind, ScopeKind

    class Odd:
        pass

    def boom(_obj: Any) -> int:
        raise RuntimeError("no size")

    m = _hooks.register(_hooks.HOOKS_VERSION, "p.py", "p",
                        (("<module>", int(ScopeKind.MODULE), 1), ("f", int(ScopeKind.FUNCTION), 2)),
                        ((2, 6, 1, "a", int(BindKind.PARAM)), (2, 9, 1, "b", int(BindKind.PARAM))))
    tok = m.enter(1, -1)
    m.bind(0, Odd(), tok)  # Odd goes on the fast path
    m.exit(tok)
    ti, _sizeof, extra, *flags = _hooks._fast_types[id(Odd)]
    _hooks._fast_types[id(Odd)] = (ti, boom, extra, *flags)
    if _hooks._hotpath is not None:  # the C hot path caches the tables: told of the edit
        _hooks._hotpath.forget_types()
    before = _hooks.counters()["errors"]
    big = [0] * 1000
    tok = m.enter(1, 0, Odd(), big)
    m.exit(tok)
    binds = [e for e in rec.events() if e[0] == BIND and e[3] == tok]
    assert [(e[2] - m.base, e[6]) for e in binds] == [(0, -1), (1, sys.getsizeof(big))]
    assert _hooks.counters()["errors"] == before + 1


def test_a_broken_table_never_raises_into_the_program(sampling: Recorder) -> None:
    """A table written by hand may not say which sites a scope has (numbers of the
    wrong length, a name missing): when the scope is checked for sleeping, the
    program goes on, the scope just never sleeps, and the error is counted."""
    from memscope.events import module_table

    ns, nt, nums, names = module_table((("<module>", 1, 1), ("f", 3, 2)),
                                       ((3, 4, 1, "x", 1),))
    broken = [(nums[:-1], names), (b"\x00", names), (nums, "<module>")]
    before = _hooks.counters()["errors"]
    for ints, text in broken:
        m = _hooks.register(_hooks.HOOKS_VERSION, "bad.py", "bad", ns, nt, ints, text)
        for i in range(2 * _hooks.SCOPE_STREAK):
            tok = m.enter(1, -1)
            # numbers it cannot read: never put to sleep (names alone may be missing)
            assert tok is not None or text != names
            m.bind(0, i, tok)
            m.exit(tok)
    assert _hooks.counters()["errors"] > before
    # the runtime's own readers of its tables leave the unreadable ones out
    assert not [r for r in _hooks.tables() if r[2:4] == ("bad.py", "bad")]
    assert sampling.analysis() is not None


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_classes_are_sized_alike_on_the_fast_path(rec: Recorder, mode: str) -> None:
    """A class statement binds a class: after the first of a metaclass, classes take
    the fast path, sized by ``sys.getsizeof`` as the slow path sizes them, whether the
    class is a heap type (its GC header) or a static one."""
    import abc
    import enum

    _hooks.configure(full=mode == "full", flush_at=8192, deep_objects=1000, deep_ns=10**9)
    m = rec.module("cls")
    classes: list[type] = [int, dict]
    for i in range(3):
        classes += [type(f"C{i}", (), {}), abc.ABCMeta(f"A{i}", (abc.ABC,), {}),
                    enum.Enum(f"E{i}", "a b")]
    tok = m.enter(1, -1)
    for c in classes:
        m.bind(0, c, tok)
    m.exit(tok)
    binds = [e for e in rec.events() if e[0] == BIND and e[2] == m.base]
    assert [e[6] for e in binds] == [sys.getsizeof(c) for c in classes]
    assert id(abc.ABCMeta) in _hooks._fast_types and type in _hooks._static_types


def test_import_time_marks_only_objects_whose_death_is_seen(full: Recorder) -> None:
    """Objects first bound while a module is imported are set-up, not leaks; their ids
    are kept only while memscope can see them die (a weak reference or the death
    watch), else a reused id would hide a later leak."""
    import importlib.machinery

    from memscope import _hooks

    m = full.module("a", "b", "c")
    tok = m.enter(1, -1)
    spec = importlib.machinery.ModuleSpec("fake_module", None)
    spec._initializing = True  # as importlib sets it while the module's code runs
    kept, text, number = [1, 2], "s" * 300, 10**30
    ns = {"__spec__": spec, "m": m, "tok": tok, "kept": kept, "text": text, "n": number}
    # (and its module's lock held, as an import holds it while the module's code runs)
    with importlib._bootstrap._ModuleLockManager("fake_module"):  # type: ignore[attr-defined]
        exec(compile("m.bind(0, kept, tok); m.bind(1, text, tok); m.bind(2, n, tok)",
                     "fake_module.py", "exec"), ns)
    m.exit(tok)
    watched = _hooks._dw is not None
    assert (id(kept) in _hooks._import_time) is watched
    assert id(text) not in _hooks._import_time and id(number) not in _hooks._import_time
    ns.clear()
    ident = id(kept)
    del kept
    _hooks.drain_deaths()
    assert ident not in _hooks._import_time
