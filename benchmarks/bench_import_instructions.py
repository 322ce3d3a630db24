"""Warm-cache import of rich under the hook, counted in CPU instructions (not a test).

Wall-clock import ratios on a shared machine move by 10% from run to run (1.19x to
1.33x for the same tree); ``valgrind --tool=callgrind`` counts the instructions a
process executes, the same count every time for the same binary and inputs, whatever
else the machine is doing. Each mode runs in a fresh process, after one run of every
mode that fills the caches. Two measures::

    python benchmarks/bench_import_instructions.py [--modules rich.console,...]

- **the import itself**: callgrind counts only inside the ``exec`` that runs the
  imports (``--toggle-collect=builtin_exec``); in ``tracked`` mode that ``exec`` also
  flushes, so encoding and writing the import's events is counted;
- **the whole process**, minus a process that does the same set-up and imports
  nothing: this adds what the imported modules cost at interpreter shutdown (under the
  hook, the events kept in memory and the larger code are torn down too).

Modes: ``plain`` (no hook), ``hook`` (installed, tracking not started: events go to
the in-memory sink), ``tracked`` (``memscope.init()`` first: events are encoded and
written to a capture), ``quiet`` (the hook with every inline guard off from the start:
what loading and running the instrumented code costs without recording; set by
``MEMSCOPE_BENCH_GUARDS_OFF``, which only this benchmark's snippet reads).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["rich.console", "rich.table", "rich.syntax", "rich.markdown", "rich.progress",
           "rich.tree", "rich.pretty", "rich.traceback", "rich.logging", "rich.panel"]

SNIPPET = """
import importlib, os, sys
mode, mods = sys.argv[1], sys.argv[2].split(",")
nothing = mode.endswith("-none")  # the baseline of a mode: the same set-up, no import
mode = mode.removesuffix("-none")
import memscope_instrument.hook as hook
if mode == "tracked":
    import memscope
    memscope.init()
if mode == "quiet":  # every guard off from the start: nothing is recorded
    from memscope import _hooks
    make = _hooks._make_handle
    def quiet(*a, **k):
        h = make(*a, **k)
        h.g[:] = [0] * len(h.g)
        h.e[:] = [None] * len(h.e)
        return h
    _hooks._make_handle = quiet
if mode != "plain":
    hook.install_import_hook(["rich"], start=False)
from memscope import _hooks
# the imports, and in tracked mode the flush that encodes their events: the one region
# callgrind counts when asked for the import alone (--toggle-collect=builtin_exec)
exec("for m in ([] if nothing else mods):\\n    importlib.import_module(m)\\n"
     "if mode == 'tracked':\\n    _hooks.flush()\\n")
print(hook.stats["cache_hits"])
"""


def count(mode: str, mods: list[str], prefix: str, *, region: bool = False) -> tuple[int, int]:
    """(instructions, instrumented-cache hits) of one process running ``mode``: all of
    them, or (``region``) only those of the imports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMSCOPE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONPYCACHEPREFIX"] = prefix
    env["MEMSCOPE_OUTPUT_DIR"] = os.path.join(prefix, "captures")
    only = ["--collect-atstart=no", "--toggle-collect=builtin_exec"] if region else []
    res = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *only,
         sys.executable, "-c", SNIPPET, mode, ",".join(mods)],
        env=env, capture_output=True, text=True, check=True)
    m = re.search(r"refs:\s+([\d,]+)", res.stderr)
    if m is None:
        raise SystemExit(f"no instruction count from valgrind:\n{res.stderr[-2000:]}")
    return int(m.group(1).replace(",", "")), int(res.stdout.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", default=",".join(MODULES))
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    mods = args.modules.split(",")
    prefix = tempfile.mkdtemp(prefix="memscope-bench-instr-")
    try:
        # fill the plain and instrumented caches, and the .pyc of every module a mode
        # imports (memscope.init's own: else the first tracked run pays their compile)
        for mode in ("plain", "hook", "tracked-none", "tracked"):
            count(mode, mods, prefix)
        got = {mode: count(mode, mods, prefix)
               for mode in ("plain-none", "plain", "hook", "quiet", "tracked-none", "tracked")}
        alone = {mode: count(mode, mods, prefix, region=True)
                 for mode in ("plain", "hook", "quiet", "tracked")}
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
    print(f"import of {len(mods)} modules, instructions of the import itself:")
    for mode, (n, hits) in alone.items():
        print(f"  {mode:8s} {n:>13,}  {n / alone['plain'][0]:.3f}x"
              + (f"  ({hits} cache hits)" if mode != "plain" else ""))
    base = got["plain-none"][0]
    plain = got["plain"][0] - base
    print(f"the whole process, beyond the same process importing nothing ({base:,}; "
          f"{got['tracked-none'][0]:,} with memscope.init()):")
    for mode, (n, _hits) in got.items():
        if mode.endswith("-none"):
            continue
        extra = n - got["tracked-none" if mode == "tracked" else "plain-none"][0]
        print(f"  {mode:8s} {extra:>13,}  {extra / plain:.3f}x")


if __name__ == "__main__":
    main()
