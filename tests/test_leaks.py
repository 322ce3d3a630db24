"""Planted leaks (fixtures/leaks) are all found with the holder named; clean code has none.

Each fixture runs instrumented by the import hook, in full mode, in its own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).with_name("_leak_runner.py")


def leaks_of(kind: str, module: str, **env: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(ROOT / "fixtures" / kind), module],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    assert proc.returncode == 0, proc.stderr
    return orjson.loads(proc.stdout)  # type: ignore[no-any-return]


# fixture -> [(type, variable where it was made, text the holder chain must contain)]
EXPECTED = {
    "module_cache": [
        ("payload.Payload", "load.result", "module `module_cache` global `_CACHE`[<int key>]")
    ] * 3,
    "closure_cell": [
        ("function", "make_handler.handler", "module `closure_cell` global `HANDLERS`[<item>]"),
    ],
    "class_attribute": [
        ("payload.Payload", "register.entry",
         "class `class_attribute.Registry` attribute `items`[<item>]")
    ],
    "finalizer_cycle": [
        ("finalizer_cycle.Node", "build.first", "reference cycle, unreachable"),
        ("finalizer_cycle.Node", "build.second", "reference cycle, unreachable"),
    ],
    "thread_local": [
        ("payload.Payload", "connect.conn",
         "module `thread_local` global `_state` → thread-local `conn`")
    ],
    "mutable_default": [
        ("payload.Payload", "collect.record",
         "module `mutable_default` global `collect` → default argument 1 of `collect`[<item>]")
    ]
    * 3,
    "callback_registry": [
        ("callback_registry.Widget", "create.widget",
         "global `_callbacks`[<item>] → `self` of bound method `Widget.handle`"),
    ],
}
PAYLOAD = 4096  # the bytearray every Payload holds


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_planted_leak_is_found_with_its_holder(module: str) -> None:
    got = leaks_of("leaks", module)
    found = sorted((lk["type"], lk["variable"], " | ".join(lk["holders"])) for lk in got)
    want = sorted(EXPECTED[module])
    assert len(found) == len(want), found
    for (gtype, gvar, gholders), (wtype, wvar, wholder) in zip(found, want, strict=True):
        assert (gtype, gvar) == (wtype, wvar)
        assert wholder in gholders, gholders
    assert all(lk["certain"] for lk in got)
    assert all(lk["file"].endswith(".py") and lk["line"] > 0 for lk in got)
    # each retains its payload's buffer (what a Payload is made of), not its shallow size
    assert all(lk["size"] > PAYLOAD for lk in got), [lk["size"] for lk in got]


def test_a_closure_names_what_it_captured() -> None:
    (lk,) = leaks_of("leaks", "closure_cell")
    assert [(c[0], c[1]) for c in lk["captured"]] == [("big", "payload.Payload")]
    assert lk["captured"][0][2] > PAYLOAD
    assert lk["size"] >= lk["captured"][0][2]  # the closure retains what it captured


@pytest.mark.parametrize("module", ["workload", "generators"])
def test_clean_code_reports_no_leak(module: str) -> None:
    assert leaks_of("clean", module) == []


def test_leaks_of_lists_are_found_and_proven_by_the_death_watch() -> None:
    got = leaks_of("leaks_probable", "list_cache")
    assert [(lk["type"], lk["variable"], lk["proof"]) for lk in got] == [
        ("list", "load.row", "deathwatch")
    ] * 3
    assert all(lk["holders"] == ["module `list_cache` global `_ROWS`[<item>]"] for lk in got)


def test_without_the_death_watch_lists_are_left_out_never_guessed() -> None:
    assert leaks_of("leaks_probable", "list_cache", MEMSCOPE_DEATHWATCH="0") == []
    # weak-referenceable leaks are still found
    assert len(leaks_of("leaks", "module_cache", MEMSCOPE_DEATHWATCH="0")) == 3
