"""Run fixture modules instrumented (import hook, full mode) in one process, then find
their leaks twice: from the full analysis of the run (``tracker.analysis()``) and from
the lean replay ``tracker.leaks()`` uses (``leaks.LeakReplay``). Prints both, and the
number of object lives each replay kept.

Used by test_leak_replay.py in a subprocess: ``python _leak_replay_runner.py DIR MODULE...``.
"""

from __future__ import annotations

import importlib
import sys

import orjson

import memscope


def main() -> None:
    fixture_dir, modules = sys.argv[1], sys.argv[2:]
    sys.path.insert(0, fixture_dir)
    tracker = memscope.init(mode="full", capture=False, census=False)
    for module in modules:
        with memscope.install_import_hook([module]):
            mod = importlib.import_module(module)
        if hasattr(mod, "main"):
            mod.main()
    from memscope import _hooks
    from memscope.leaks import find_leaks

    an = tracker.analysis()
    full = [lk.as_dict() for lk in find_leaks(
        an, _hooks._watched, deathwatch=_hooks._dw, import_time=_hooks._import_time,
        preexisting=_hooks._preexisting, polls=_hooks._polls)]
    lives = len(an.objects)
    del an
    lean_an, found = tracker._find_leaks()
    lean = [lk.as_dict() for lk in found]
    sys.stdout.write(orjson.dumps({"full": full, "lean": lean, "full_lives": lives,
                                   "lean_lives": len(lean_an.objects)}).decode())


if __name__ == "__main__":
    main()
