"""A module the import hook instruments runs no import statement of memscope's: a
program that wraps ``builtins.__import__`` sees only the module's own imports (click's
test_light_imports in a child of ``memscope run``; issue 17). The loader binds the
prologue's imports itself (memscope_instrument/prologue.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hook_helpers import PY, memscope_cmd, run, write_tree

PKG = {
    "quietpkg/__init__.py": """
        import json

        def work(n):
            rows = [json.dumps(i) for i in range(n)]
            total = sum(len(r) for r in rows)
            return total
    """,
}

WATCH = """
import builtins, sys
found = set()
real_import = builtins.__import__

def tracking_import(module, globals=None, locals=None, fromlist=None, level=0):
    if globals and globals.get("__name__", "").startswith("quietpkg") and level == 0:
        found.add(module)
    return real_import(module, globals, locals, fromlist, level)

builtins.__import__ = tracking_import
import quietpkg
assert quietpkg.work(12) == 14
print("FOUND", sorted(found))
print("LOADER", type(quietpkg.__loader__).__name__)
"""

IN_PROCESS = """
import sys
from memscope_instrument.hook import install_import_hook
install_import_hook(["quietpkg"], mode=sys.argv[1], comprehensions=True)
""" + WATCH

PARENT = """
import subprocess, sys
child = subprocess.run([sys.executable, "-"], input=CHILD, capture_output=True, text=True)
sys.stdout.write(child.stdout)
sys.stderr.write(child.stderr)
""".replace("CHILD", repr(WATCH))


def _check(out: str) -> None:
    assert "LOADER InstrumentingLoader" in out, out  # the premise: it is instrumented
    assert "FOUND ['json']" in out


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_an_instrumented_module_shows_only_its_own_imports(tmp_path: Path, mode: str) -> None:
    write_tree(tmp_path, {**PKG, "prog.py": IN_PROCESS})
    res = run([PY, "prog.py", mode], tmp_path)
    assert res.returncode == 0, res.stderr
    _check(res.stdout)


def test_a_child_of_memscope_run_shows_only_its_own_imports(tmp_path: Path) -> None:
    write_tree(tmp_path, {**PKG, "parent.py": PARENT})
    res = run(memscope_cmd("run", "--include", "quietpkg", "-o", str(tmp_path / "out"),
                           "--no-report", "parent.py"), tmp_path)
    assert res.returncode == 0, res.stderr
    _check(res.stdout)
