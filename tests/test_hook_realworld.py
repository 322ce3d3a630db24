"""Fast real-code subset for CI: CPython's own test suites for pure-Python standard
library modules, run plain and with the module instrumented by the import hook (named
explicitly, the only way the hook takes standard-library code), must give identical
results. The third-party suites (toolz, six, more-itertools, idna, pyparsing, tabulate,
cachetools, click, attrs, boltons) run in ``nox -s realworld_hook``
(benchmarks/realworld_hook.py), which downloads them; docs/realworld.md has the table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.hook_helpers import PY, run

DRIVER = """
import sys, unittest
mod, suite = sys.argv[1], sys.argv[2]
if sys.argv[3] == "hook":
    from memscope_instrument.hook import install_import_hook
    install_import_hook([mod], start=False)
assert mod not in sys.modules
tests = unittest.defaultTestLoader.loadTestsFromName(suite)
assert type(sys.modules[mod].__loader__).__name__ == (
    "InstrumentingLoader" if sys.argv[3] == "hook" else "SourceFileLoader")
res = unittest.TextTestRunner(verbosity=0).run(tests)
print("RESULT", res.testsRun, len(res.failures), len(res.errors), len(res.skipped))
"""


@pytest.mark.parametrize(("module", "suite"), [
    ("fractions", "test.test_fractions"),
    ("shlex", "test.test_shlex"),
    ("colorsys", "test.test_colorsys"),
    ("graphlib", "test.test_graphlib"),
    ("calendar", "test.test_calendar"),
    # the test module itself instrumented: functions rebuilt with other globals
    # (types.FunctionType(f.__code__, {}), as cloudpickle does), __builtins__, closures
    ("test.test_funcattrs", "test.test_funcattrs"),
])
def test_stdlib_suite_identical_under_hook(tmp_path: Path, module: str, suite: str) -> None:
    (tmp_path / "driver.py").write_text(DRIVER)
    results = {}
    for mode in ("plain", "hook"):
        res = run([PY, "driver.py", module, suite, mode], tmp_path, timeout=600)
        found = re.findall(r"RESULT (\d+) (\d+) (\d+) (\d+)", res.stdout)
        assert found, res.stdout + res.stderr
        results[mode] = found[0]
    assert int(results["plain"][0]) > 5
    assert results["hook"] == results["plain"]
