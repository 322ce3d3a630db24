"""Helpers for the import-hook, ``memscope run`` and pytest-plugin tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PY = sys.executable
ROOT = Path(__file__).resolve().parents[1]


def unique(prefix: str = "mshk") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def write_tree(base: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = base / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return base


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMSCOPE_")}
    env.pop("PYTHONPATH", None)
    # pytest run by a test prints its summary lines whole on CI (CI, BUILD_NUMBER): the
    # tests read its output as a terminal shows it, on CI as here
    env.pop("CI", None)
    env.pop("BUILD_NUMBER", None)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, *, env: dict[str, str] | None = None,
        input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env or clean_env(), input=input,
                          capture_output=True, text=True, timeout=timeout)


def memscope_cmd(*args: str) -> list[str]:
    return [PY, "-c", "import sys; from memscope.cli import main; sys.argv[0] = 'memscope'; main()",
            *args]


def strip_memscope(stderr: str) -> str:
    return "".join(line for line in stderr.splitlines(True) if not line.startswith("memscope: "))


@pytest.fixture
def hook_sandbox(tmp_path: Path) -> Iterator[Path]:
    """sys.path gets tmp_path; hooks, modules and warnings state are restored after."""
    from memscope_instrument import hook

    saved_path = sys.path[:]
    saved_mods = set(sys.modules)
    saved_meta = sys.meta_path[:]
    saved_dwb = sys.dont_write_bytecode
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        hook._finder.rules.clear()
        sys.meta_path[:] = [f for f in saved_meta if f is not hook._finder]
        sys.path[:] = saved_path
        for m in set(sys.modules) - saved_mods:
            f = getattr(sys.modules[m], "__file__", None) or ""
            if m.startswith("mshk_") or f.startswith(str(tmp_path)):
                del sys.modules[m]
        hook._warned_imported.clear()
        sys.dont_write_bytecode = saved_dwb


def loader_name(mod: Any) -> str:
    return type(mod.__spec__.loader).__name__
