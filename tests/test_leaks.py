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


# fixture -> [(type, variable where it was made, text the holder must contain)]
EXPECTED = {
    "module_cache": [("payload.Payload", "load.result", "module `module_cache` global `_CACHE`")]
    * 3,
    "closure_cell": [
        ("payload.Payload", "make_handler.big", "closure variable `big` of function"),
        ("function", "make_handler.handler", "global `HANDLERS`"),
    ],
    "class_attribute": [
        ("payload.Payload", "register.entry", "class `class_attribute.Registry` attribute `items`")
    ],
    "finalizer_cycle": [
        ("finalizer_cycle.Node", "build.first", "reference cycle"),
        ("finalizer_cycle.Node", "build.second", "reference cycle"),
    ],
    "thread_local": [
        ("payload.Payload", "connect.conn", "thread-local `_state` of module `thread_local`")
    ],
    "mutable_default": [
        ("payload.Payload", "collect.record", "default argument of function `collect`")
    ]
    * 3,
    "callback_registry": [
        ("callback_registry.Widget", "create.widget", "global `_callbacks` (list > bound method"),
        ("payload.Payload", "Widget.__init__.self.buffer", "global `_callbacks`"),
        ("method", "on_event.fn", "global `_callbacks`"),
    ],
}


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


@pytest.mark.parametrize("module", ["workload", "generators"])
def test_clean_code_reports_no_leak(module: str) -> None:
    assert leaks_of("clean", module) == []


def test_unweakrefable_leaks_are_reported_only_when_asked_and_marked_probable() -> None:
    assert leaks_of("leaks_probable", "list_cache") == []
    got = leaks_of("leaks_probable", "list_cache", MEMSCOPE_PROBABLE_LEAKS="1")
    assert [(lk["type"], lk["variable"], lk["certain"]) for lk in got] == [
        ("list", "load.row", False)
    ] * 3
    assert all("module `list_cache` global `_ROWS` (list)" in lk["holders"] for lk in got)
