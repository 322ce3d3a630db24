"""The death watch's drain (``_deathwatch.deaths``) must not lose nor overrun: building
the list it returns can start a garbage collection, and a watched object that the
collection frees is a death added while the list is being filled (found by pyparsing's
suite under --mode full: a list's item array overrun, then a crash)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests._reporter_programs import ROOT

_dw = pytest.importorskip("memscope._deathwatch")

PROGRAM = """
import gc
from memscope import _deathwatch as dw

dw.start()
gc.collect()
gc.set_threshold(1)  # every allocation of a tracked object may start a collection
reported, expected = set(), set()
for round_ in range(200):
    first = [round_]  # dies before the drain: the list's first item
    assert dw.watch(first, 1)
    expected.add(id(first))
    del first
    for _ in range(3):  # cycles that only a collection frees, each holding a watched list
        held = [0]
        assert dw.watch(held, 1)
        expected.add(id(held))
        box = [held]
        box.append(box)
        del held, box
    reported.update(dw.deaths())  # its PyList_New collects: three more deaths meanwhile
gc.set_threshold(700)
gc.collect()
reported.update(dw.deaths())
dw.stop()
print(len(expected), len(reported & expected))
"""


def test_deaths_during_the_drain_are_kept_for_the_next_one() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONMALLOC": "debug"}
    r = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    want, got = r.stdout.split()
    assert got == want  # (ids are reused across rounds: counted as distinct addresses)
