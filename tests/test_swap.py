"""A sleeping scope's functions run their original code until the re-arm (``_swap``).

The module is imported through the real import hook; the re-arm thread is held still
so the tests decide when guards and code come back."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from memscope import _hooks, _swap
from memscope.events import ENTER, SCOPE
from tests.conftest import Recorder
from tests.hook_helpers import hook_sandbox, unique, write_tree

__all__ = ["hook_sandbox"]

SOURCE = '''
import functools

def deco(f):
    @functools.wraps(f)
    def wrapper(*a, **k):
        return f(*a, **k)
    return wrapper

def plain_fn(i):
    x = i * 2
    y = x + 1
    return y

class K:
    def __init__(self, i):
        self.v = i
    def meth(self, i):
        z = i + self.v
        return z
    @staticmethod
    def st(i):
        w = i - 1
        return w
    @classmethod
    def cm(cls, i):
        q = i * 3
        return q
    @property
    def prop(self):
        r = self.v * 2
        return r

@deco
def wrapped(i):
    s = i + 5
    return s

def gen(n):
    for k in range(n):
        yield k

def outer():
    t = 1
    def inner(i):
        u = i + t
        return u
    return inner

def boom(i):
    a = i + 1
    if i < 0:
        raise ValueError("neg")
    return a
'''

CALLS = _hooks.SCALAR_STREAK + 3 * _hooks.SAMPLE_EVERY + 3 * _hooks.SCOPE_STREAK


def _instrumented(f: Any) -> bool:
    return "_memscope_e" in f.__code__.co_names


def _import(base: Path, source: str = SOURCE) -> ModuleType:
    from memscope_instrument.hook import install_import_hook

    name = unique()
    write_tree(base, {f"{name}.py": source})
    install_import_hook([name], start=False)
    return __import__(name)


def _exercise(m: ModuleType) -> dict[str, list[Any]]:
    k = m.K(3)
    inner = m.outer()
    out: dict[str, list[Any]] = {n: [] for n in ("fn", "meth", "st", "cm", "prop", "wrapped",
                                                  "gen", "inner", "boom")}
    for i in range(CALLS):
        out["fn"].append(m.plain_fn(i))
        out["meth"].append(k.meth(i))
        out["st"].append(m.K.st(i))
        out["cm"].append(m.K.cm(i))
        out["prop"].append(k.prop)
        out["wrapped"].append(m.wrapped(i))
        out["gen"].append(sum(m.gen(3)))
        out["inner"].append(inner(i))
        out["boom"].append(m.boom(i))
    return out


def _functions(m: ModuleType) -> dict[str, Any]:
    return {"fn": m.plain_fn, "meth": m.K.meth, "st": m.K.__dict__["st"].__func__,
            "cm": m.K.__dict__["cm"].__func__, "prop": m.K.__dict__["prop"].fget,
            "wrapped": m.wrapped.__wrapped__, "gen": m.gen, "boom": m.boom}


def test_sleeping_functions_run_their_original_code_until_the_rearm(
        hook_sandbox: Path, sampling: Recorder) -> None:
    m = _import(hook_sandbox)
    funcs = _functions(m)
    assert all(_instrumented(f) for f in funcs.values())
    out = _exercise(m)
    assert out["fn"] == [2 * i + 1 for i in range(CALLS)]
    assert out["meth"] == [i + 3 for i in range(CALLS)] and out["gen"] == [3] * CALLS
    assert out["st"][-1] == CALLS - 2 and out["cm"][-1] == 3 * (CALLS - 1)
    assert out["prop"] == [6] * CALLS and out["wrapped"][-1] == CALLS + 4
    swapped = {n for n, f in funcs.items() if not _instrumented(f)}
    assert swapped == set(funcs), f"still instrumented: {set(funcs) - swapped}"
    # a closure made inside a call is not reached by name: it keeps its code
    assert _instrumented(m.outer())
    # the original code is the one compiled from the source, same name and lines
    assert m.plain_fn.__code__.co_firstlineno == _swap.unswapped(m.plain_fn).co_firstlineno
    _hooks.rearm()
    assert all(_instrumented(f) for f in funcs.values())


def test_scopes_are_sampled_again_after_each_rearm(hook_sandbox: Path,
                                                   sampling: Recorder) -> None:
    m = _import(hook_sandbox)
    for i in range(CALLS):
        m.plain_fn(i)
    assert not _instrumented(m.plain_fn)
    scope = next(e[1] for e in sampling.events()
                 if e[0] == SCOPE and e[4] == "plain_fn" and m.__name__ in e[3])
    before = sum(1 for e in sampling.events() if e[0] == ENTER and e[2] == scope)
    _hooks.rearm()
    for i in range(CALLS):
        m.plain_fn(i)
    after = sum(1 for e in sampling.events() if e[0] == ENTER and e[2] == scope)
    assert after > before  # instances of the re-armed scope were recorded again
    assert not _instrumented(m.plain_fn)  # and it went back to sleep, and to plain code


def test_tracebacks_are_the_same_before_and_after_the_swap(hook_sandbox: Path,
                                                           sampling: Recorder) -> None:
    m = _import(hook_sandbox)

    def raised_at() -> tuple[int, str]:
        try:
            m.boom(-1)
        except ValueError as exc:
            tb = exc.__traceback__
            assert tb is not None
            while tb.tb_next is not None:
                tb = tb.tb_next
            return tb.tb_lineno, tb.tb_frame.f_code.co_filename
        raise AssertionError("boom did not raise")

    first = raised_at()
    for i in range(CALLS):
        m.boom(i)
    assert not _instrumented(m.boom)
    assert raised_at() == first
    lines = SOURCE.splitlines()
    assert lines[first[0] - 1].strip() == 'raise ValueError("neg")'


def test_no_swap_when_the_source_changed_after_the_import(hook_sandbox: Path,
                                                          sampling: Recorder) -> None:
    m = _import(hook_sandbox)
    path = Path(m.__file__ or "")
    path.write_text(SOURCE.replace("x = i * 2", "x = i * 4"))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    for i in range(CALLS):
        assert m.plain_fn(i) == 2 * i + 1
    assert _instrumented(m.plain_fn)
    assert _hooks.counters()["scopes_sampled"] >= 1  # it did sleep: only the code stayed


def test_no_swap_for_code_instrumented_outside_the_hook(tmp_path: Path,
                                                        sampling: Recorder) -> None:
    from memscope_instrument.transform import instrument_source

    path = tmp_path / "outside.py"
    path.write_text(SOURCE)
    res = instrument_source(SOURCE, str(path), "outside")
    mod = ModuleType("outside")
    mod.__file__ = str(path)
    exec(compile(res.code, str(path), "exec"), mod.__dict__)
    for i in range(CALLS):
        mod.plain_fn(i)
    assert _instrumented(mod.plain_fn)


def test_a_program_that_sets_its_own_code_keeps_it(hook_sandbox: Path,
                                                   sampling: Recorder) -> None:
    m = _import(hook_sandbox)
    for i in range(CALLS):
        m.plain_fn(i)
    assert not _instrumented(m.plain_fn)
    mine = (lambda i: -i).__code__
    m.plain_fn.__code__ = mine
    _hooks.rearm()
    assert m.plain_fn.__code__ is mine and m.plain_fn(4) == -4


def test_swapping_can_be_switched_off(hook_sandbox: Path, sampling: Recorder) -> None:
    m = _import(hook_sandbox)
    _swap.enabled[0] = False
    try:
        for i in range(CALLS):
            m.plain_fn(i)
    finally:
        _swap.enabled[0] = True
    assert _instrumented(m.plain_fn)


def test_threads_calling_while_code_is_swapped_and_restored(hook_sandbox: Path,
                                                            sampling: Recorder) -> None:
    """Four threads call a hot function and a generator while another thread swaps it
    out and back again and again: every result is right, nothing raises."""
    import threading

    m = _import(hook_sandbox)
    errors: list[BaseException] = []
    stop = threading.Event()
    before = dict(_swap.stats)

    def caller() -> None:
        try:  # as many calls as with a 512-bind streak: every thread meets the swap
            for i in range(30 * CALLS // 4):
                assert m.plain_fn(i) == 2 * i + 1
                assert sum(m.gen(4)) == 6
        except BaseException as exc:  # reported below
            errors.append(exc)

    def rearmer() -> None:
        while not stop.is_set():
            _hooks.rearm()

    threads = [threading.Thread(target=caller) for _ in range(4)]
    r = threading.Thread(target=rearmer)
    r.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    r.join()
    assert not errors, errors
    assert _swap.stats["swapped"] > before["swapped"]
    assert _swap.stats["restored"] > before["restored"]


def test_coroutine_functions_are_swapped_and_still_awaitable(hook_sandbox: Path,
                                                             sampling: Recorder) -> None:
    import asyncio

    m = _import(hook_sandbox, SOURCE + '''
async def coro(i):
    c = i * 2
    return c

async def many(n):
    total = 0
    for i in range(n):
        total += await coro(i)
    return total
''')
    assert asyncio.run(m.many(CALLS)) == CALLS * (CALLS - 1)
    assert not _instrumented(m.coro)
    assert asyncio.run(m.many(10)) == 90  # the plain coroutine code, awaited


def test_a_forked_child_inherits_the_swap_and_its_rearm_restores_it(
        hook_sandbox: Path, sampling: Recorder) -> None:
    m = _import(hook_sandbox)
    for i in range(CALLS):
        m.plain_fn(i)
    assert not _instrumented(m.plain_fn)
    pid = os.fork()
    if pid == 0:  # the child: same functions, still plain; its re-arm brings them back
        ok = not _instrumented(m.plain_fn) and m.plain_fn(3) == 7
        _hooks.rearm()
        ok = ok and _instrumented(m.plain_fn) and m.plain_fn(4) == 9
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_compiling_the_original_source_prints_no_warning(hook_sandbox: Path,
                                                         sampling: Recorder,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    """The import showed (or cached past) the source's SyntaxWarnings; the swap's own
    compile of the same source must not print them again in the middle of the run."""
    import warnings

    m = _import(hook_sandbox, SOURCE + "\ndef odd(i):\n    k = i\n    return k is 1\n")
    capfd.readouterr()
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for i in range(CALLS):
            m.odd(i)
    assert not _instrumented(m.odd)
    assert [w for w in seen if issubclass(w.category, SyntaxWarning)] == []
    assert "SyntaxWarning" not in capfd.readouterr().err
    assert warnings.filters == filters  # the filter held for the compile is gone


@pytest.mark.parametrize("dont_write", [False, True])
def test_the_plain_bytecode_the_swap_compiled_is_written_as_an_import_would(
        hook_sandbox: Path, sampling: Recorder, monkeypatch: pytest.MonkeyPatch,
        dont_write: bool) -> None:
    """An instrumented import writes no standard ``.pyc``, so the swap compiled the
    source in every run; it writes the one a plain import would have (not with
    ``sys.dont_write_bytecode``), and the next lookup reads it, compiling nothing."""
    import marshal
    import sys
    from importlib.util import MAGIC_NUMBER, cache_from_source

    sys.dont_write_bytecode = dont_write  # (the sandbox restores it)
    m = _import(hook_sandbox)
    file = m.__file__
    assert file is not None
    pyc = cache_from_source(file)
    assert not os.path.exists(pyc)  # the instrumented import wrote none
    _exercise(m)
    assert not _instrumented(m.plain_fn)  # swapped: the plain code was compiled
    if dont_write:
        assert not os.path.exists(pyc)
        return
    with open(pyc, "rb") as f:
        data = f.read()
    st = os.stat(file)
    assert data[:4] == MAGIC_NUMBER and data[4:8] == b"\0\0\0\0"
    assert int.from_bytes(data[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
    assert int.from_bytes(data[12:16], "little") == st.st_size
    code = marshal.loads(data[16:])
    assert code.co_filename == file
    assert any(getattr(c, "co_name", "") == "plain_fn" for c in code.co_consts)

    def no_compile(src: bytes, path: str) -> Any:
        raise AssertionError("compiled again")

    monkeypatch.setattr(_swap, "_compile_quietly", no_compile)
    _swap._plain.pop(file, None)
    assert _swap._plain_codes(file)  # read from the .pyc
