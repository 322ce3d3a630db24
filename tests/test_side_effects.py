"""Side effects of instrumented code that plain Python does not have (issue 16, "Values
and names"): instance ``__dict__`` materialised by reading an attribute back, a
metaclass ``__prepare__`` namespace seeing memscope's class token, memscope's names in
an instrumented module's globals."""

from __future__ import annotations

import gc
import textwrap
import types
from pathlib import Path
from typing import Any

from memscope.events import BIND, ENTER, EXIT

from .conftest import Recorder
from .test_interrupts import PATHS, load


def plain(tmp_path: Path, src: str, name: str = "plainprog") -> Any:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(src))
    mod = types.ModuleType(name)
    mod.__file__ = str(path)
    exec(compile(path.read_text(), str(path), "exec"), mod.__dict__)
    return mod


ATTRS = """
class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y
        self.label = "p"


class WithDefault:
    kind = "class default"

    def __init__(self):
        self.kind = [1, 2]


def make():
    return Point([1], [2])


def cycle():
    a, b = Point([], []), Point([], [])
    a.x.append(b)
    b.x.append(a)
"""


def _kinds(obj: Any) -> list[str]:
    return sorted(type(r).__name__ for r in gc.get_referents(obj))


@PATHS
def test_reading_an_attribute_back_does_not_make_the_instance_dict(
        rec: Recorder, tmp_path: Path, libcst: bool) -> None:
    m = load(tmp_path, ATTRS, libcst=libcst)
    p = plain(tmp_path, ATTRS)
    # an instance keeps its attributes inline (3.11) until something asks for its
    # __dict__: then it holds a dict too, one more object and more bytes
    assert _kinds(m.make()) == _kinds(p.make())
    assert "dict" not in _kinds(m.make())
    assert _kinds(m.WithDefault()) == _kinds(p.WithDefault())
    binds = [e for e in rec.events() if e[0] == BIND]
    assert len(binds) >= 4  # and the attributes were still read: x, y, label, kind


@PATHS
def test_a_collected_cycle_leaves_no_extra_dict_in_gc_garbage(
        rec: Recorder, tmp_path: Path, libcst: bool) -> None:
    def garbage(fn: Any) -> list[str]:
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            fn()
            gc.collect()
            return sorted(type(o).__name__ for o in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()

    m = load(tmp_path, ATTRS, libcst=libcst)
    p = plain(tmp_path, ATTRS)
    assert garbage(m.cycle) == garbage(p.cycle)


PREPARE = """
log = []


class Recording(dict):
    def __setitem__(self, key, value):
        log.append(("set", key))
        super().__setitem__(key, value)

    def __delitem__(self, key):
        log.append(("del", key))
        super().__delitem__(key)

    def __getitem__(self, key):
        log.append(("get", key))
        return super().__getitem__(key)


class Meta(type):
    @classmethod
    def __prepare__(mcs, name, bases, **kw):
        return Recording()

    def __new__(mcs, name, bases, ns, **kw):
        return super().__new__(mcs, name, bases, dict(ns))


class Config(metaclass=Meta):
    size = 3
    name = "c"

    def method(self):
        return self.size

    class Inner(metaclass=Meta):
        depth = 1
"""


@PATHS
def test_a_prepare_namespace_sees_only_the_programs_names(
        rec: Recorder, tmp_path: Path, libcst: bool) -> None:
    m = load(tmp_path, PREPARE, libcst=libcst)
    p = plain(tmp_path, PREPARE)
    # what the class bodies set and delete is exactly plain Python's: no token of ours
    changes = [e for e in m.log if e[0] != "get"]
    assert changes == [e for e in p.log if e[0] != "get"]
    # nor does it look up our names (`global` in the class body); it does see each name
    # read back after it is bound (docs/transformer.md, "Known limits")
    assert not any(k.startswith(("_memscope", "__memscope")) for _, k in m.log)
    gets = {k for op, k in m.log if op == "get"}
    assert gets - {k for op, k in p.log if op == "get"} <= {"size", "name", "method", "Inner",
                                                             "depth"}
    assert m.Config().method() == 3 and m.Config.Inner.depth == 1
    scopes = [e for e in rec.events() if e[0] == ENTER]
    assert len(scopes) >= 2  # the class bodies were entered, with their tokens
    exited = {e[2] for e in rec.events() if e[0] == EXIT}
    assert exited >= {e[3] for e in scopes[1:]}  # (the first: the module's, still running)


GLOBALS = """
import sys

TOTAL = 0


def count(n):
    global TOTAL
    for i in range(n):
        TOTAL += i
    return TOTAL


class Box:
    size = 2


values = [count(3), Box.size]
"""


@PATHS
def test_an_instrumented_module_gets_three_names_of_ours(
        rec: Recorder, tmp_path: Path, libcst: bool) -> None:
    """The handle and its two guard lists, read as globals on the hot path (an attribute
    of the handle would cost a second load at every guarded site); before, also
    ``_memscope_hooks``, ``_memscope_s`` and ``_memscope_m``. Module-level and `global`
    bindings still carry the module's instance token (kept on the handle)."""
    m = load(tmp_path, GLOBALS, libcst=libcst)
    p = plain(tmp_path, GLOBALS)
    ours = sorted(set(vars(m)) - set(vars(p)))
    assert ours == ["_memscope_", "_memscope_e", "_memscope_g"]
    assert m.values == p.values
    mtok = m._memscope_.m
    binds = {e[2] - m._memscope_.base: e[3] for e in rec.events() if e[0] == BIND}
    assert binds and set(binds.values()) >= {mtok}  # TOTAL, values... with its token
