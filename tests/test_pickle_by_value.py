"""A function of an instrumented module copied by value (cloudpickle, as attrs' tests,
dask and ray do for closures) works as it does plain: its globals name memscope's
module handle, which cloudpickle pickles by reference, as an importable module, instead
of copying memscope's state (weak references, locks: 'cannot pickle
weakref.ReferenceType', attrs TestCloudpickleCompat; issue 17)."""

from __future__ import annotations

from pathlib import Path

from tests.hook_helpers import PY, run, write_tree

PROGRAM = """
import sys
from memscope_instrument.hook import install_import_hook
install_import_hook(["closures"], mode=sys.argv[1])
import cloudpickle, closures, pickle

add = closures.make_adder(2)
assert "_memscope_" in add.__code__.co_names or "_memscope_e" in add.__globals__
again = cloudpickle.loads(cloudpickle.dumps(add))  # a closure: by value
print("RESULT", again(40), again.__name__)
K = cloudpickle.loads(cloudpickle.dumps(closures.make_class()))  # a local class
k = K(5)
print("CLASS", k.v, type(k).__name__)
"""

CLOSURES = """
def make_adder(n):
    def add(x):
        total = x + n
        items = [i for i in range(2)]
        del items
        return total
    return add

def make_class():
    class K:
        size = 1
        def __init__(self, v):
            self.v = v
    return K
"""


def test_cloudpickle_copies_an_instrumented_closure_by_value(tmp_path: Path) -> None:
    write_tree(tmp_path, {"prog.py": PROGRAM, "closures.py": CLOSURES})
    for mode in ("fast", "full"):
        res = run([PY, "prog.py", mode], tmp_path)
        assert res.returncode == 0, res.stderr
        assert "RESULT 42 add" in res.stdout, res.stdout + res.stderr
        assert "CLASS 5 K" in res.stdout
