"""Run one fixture module instrumented (import hook, full mode) and print its leaks as JSON.

Used by test_leaks.py in a subprocess: ``python _leak_runner.py FIXTURE_DIR MODULE``.
"""

from __future__ import annotations

import importlib
import sys

import orjson

import memscope


def main() -> None:
    fixture_dir, module = sys.argv[1], sys.argv[2]
    sys.path.insert(0, fixture_dir)
    tracker = memscope.init(mode="full", capture=False)  # MEMSCOPE_* variables apply
    with memscope.install_import_hook([module, "payload"]):
        mod = importlib.import_module(module)
    mod.main()
    leaks = tracker.leaks()
    sys.stdout.write(orjson.dumps(leaks).decode())


if __name__ == "__main__":
    main()
