"""Run one fixture module instrumented (import hook, full mode), then print its leaks and
what ``tracemalloc`` sees freed when the module's ``clear()`` lets its holders go.

Used by test_leak_kinds.py in a subprocess: ``python _leak_kind_runner.py DIR MODULE``.
Prints ``{"leaks": [...], "freed": bytes, "extra": the module's EXTRA}``.
"""

from __future__ import annotations

import gc
import importlib
import sys
import tracemalloc

import orjson

import memscope


def main() -> None:
    fixture_dir, module = sys.argv[1], sys.argv[2]
    sys.path.insert(0, fixture_dir)
    # no census: one running in the monitor thread while clear() runs would hold what
    # clear() lets go, and tracemalloc would see less freed
    tracker = memscope.init(mode="full", capture=False, census=False)
    with memscope.install_import_hook([module]):
        mod = importlib.import_module(module)
    tracemalloc.start()
    mod.main()
    leaks = tracker.leaks()
    freed = -1
    if hasattr(mod, "clear"):
        enabled = gc.isenabled()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        mod.clear()
        gc.collect()
        freed = before - tracemalloc.get_traced_memory()[0]
        if not enabled:
            gc.disable()
    tracemalloc.stop()
    extra = getattr(mod, "EXTRA", None)
    sys.stdout.write(orjson.dumps({"leaks": leaks, "freed": freed, "extra": extra}).decode())


if __name__ == "__main__":
    main()
