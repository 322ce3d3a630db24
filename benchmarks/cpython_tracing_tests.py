"""CPython's own tests of line events and line numbers, plain and under the import hook.

    python benchmarks/cpython_tracing_tests.py [plain|hook] [test.test_patma ...]

Runs each test module of the running Python's ``test`` package (default:
``test.test_patma`` and ``test.test_exceptions``, whose ``TestTracing`` and PEP 626
tests read ``sys.settrace`` line events and ``frame.f_lineno``) with unittest, plain or
with the module itself instrumented by the import hook, and prints the counts and the
tests that failed. Not a test of this project (it needs the interpreter's ``test``
package); the results are recorded in docs/transformer.md, "Line events".
"""

from __future__ import annotations

import importlib
import io
import sys
import unittest


def run(mode: str, name: str) -> str:
    if mode == "hook":
        from memscope_instrument.hook import install_import_hook

        install_import_hook([name], start=True, on_error="raise")
    module = importlib.import_module(name)
    if mode == "hook" and type(module.__loader__).__name__ != "InstrumentingLoader":
        raise SystemExit(f"{name} was not instrumented")
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    result = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(suite)
    failed = sorted({str(t[0]).split(" ")[0] for t in result.failures + result.errors})
    head = (f"{sys.version_info[0]}.{sys.version_info[1]} {mode} {name}: ran "
            f"{result.testsRun}, failed {len(failed)}, skipped {len(result.skipped)}")
    return "\n    ".join([head, *failed])


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "hook"
    names = sys.argv[2:] or ["test.test_patma", "test.test_exceptions"]
    for name in names:
        print(run(mode, name))


if __name__ == "__main__":
    main()
