"""Class bodies whose namespace watches every assignment (enum's ``_EnumDict``, a
metaclass's ``__prepare__``) behave exactly as plain Python under the import hook:
rich's ``ColorSystem(IntEnum)`` is one (``memscope run --include rich``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.hook_helpers import PY, clean_env, write_tree

CLASSES = '''
import enum, typing, dataclasses

class ColorSystem(enum.IntEnum):
    STANDARD = 1
    EIGHT_BIT = 2
    TRUECOLOR = 3
    WINDOWS = 4

class Perm(enum.Flag):
    R = 4
    W = 2
    X = 1
    RW = R | W

class Shape(enum.Enum):
    SQUARE = "square"
    _ignore_ = ["tmp"]
    tmp = 5
    ROUND = "round"

    def describe(self):
        label = self.value.upper()
        return label

class Recorded(dict):
    def __setitem__(self, key, value):
        self.setdefault("__order__", []).append(key) if key != "__order__" else None
        super().__setitem__(key, value)

class Meta(type):
    @classmethod
    def __prepare__(mcs, name, bases):
        return Recorded()

    def __new__(mcs, name, bases, ns):
        cls = super().__new__(mcs, name, bases, dict(ns))
        cls.order = [k for k in ns.get("__order__", []) if not k.startswith("__")]
        return cls

class Ordered(metaclass=Meta):
    first = 1
    second = [first, 2]

    def third(self):
        return self.second

class Point(typing.NamedTuple):
    x: int
    y: int = 0

@dataclasses.dataclass
class Box:
    items: list = dataclasses.field(default_factory=list)
    size: int = 3

def report():
    return [list(ColorSystem), [int(c) for c in ColorSystem], Perm.RW, list(Shape),
            Shape.ROUND.describe(), Ordered.order, Ordered().third(), Point(1),
            Box(), sorted(vars(ColorSystem)["_member_names_"])]
'''

DRIVER = '''
import sys
if sys.argv[1] == "hook":
    from memscope_instrument.hook import install_import_hook
    install_import_hook(["classes"], start=False, on_error="raise")
import classes
print(repr(classes.report()))
'''


@pytest.mark.parametrize("sampling", ["1", "0"], ids=["sampling", "every-bind"])
def test_class_bodies_that_watch_assignments_behave_as_plain(tmp_path: Path,
                                                             sampling: str) -> None:
    write_tree(tmp_path, {"classes.py": CLASSES, "driver.py": DRIVER})
    env = clean_env(MEMSCOPE_SAMPLING=sampling)
    out = {}
    for how in ("plain", "hook"):
        r = subprocess.run([PY, "driver.py", how], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        out[how] = r.stdout
    assert out["hook"] == out["plain"]
