"""Storage and reporting import nothing of collection (issue 18: the capture writer
pulled the process record and tables out of ``_hooks``, ``reporters/meta.py`` dug into
the sink's writer header). What they need is passed in: the sink gets its preamble from
the tracker, reporters ask the tracker's public API. Checked on the source's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COLLECTION = {"memscope._hooks", "memscope._monitor", "memscope.tracker", "memscope.census",
              "memscope._swap", "memscope._threads"}
LAYERS = sorted([*(ROOT / "memscope" / "capture").glob("*.py"),
                 *(ROOT / "memscope" / "reporters").glob("*.py")])


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


@pytest.mark.parametrize("path", LAYERS, ids=[str(p.relative_to(ROOT)) for p in LAYERS])
def test_storage_and_reporters_import_nothing_of_collection(path: Path) -> None:
    assert not _imports(path) & COLLECTION
