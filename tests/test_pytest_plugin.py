"""``pytest --memscope`` and ``@pytest.mark.memscope_limit``."""

from __future__ import annotations

from pathlib import Path

import pytest

from memscope_instrument.pytest_plugin import parse_size
from tests.hook_helpers import PY, memscope_cmd, run, unique, write_tree
from tests.test_run_children import captures


def _project(tmp_path: Path) -> str:
    pkg = unique()
    write_tree(tmp_path, {
        "pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-p no:cacheprovider'\n",
        f"{pkg}/__init__.py": "",
        f"{pkg}/core.py": (
            "def small():\n"
            "    tiny_list = [0] * 10\n"
            "    return len(tiny_list)\n"
            "\n"
            "def hungry():\n"
            "    big_block = bytearray(3_000_000)\n"
            "    other_block = bytearray(500_000)\n"
            "    return len(big_block) + len(other_block)\n"
        ),
        "tests/test_core.py": (
            "import pytest\n"
            f"from {pkg} import core\n"
            "\n"
            "def test_loaded_instrumented():\n"
            "    assert type(core.__loader__).__name__ == 'InstrumentingLoader'\n"
            "    assert core.small() == 11\n"  # a rewritten assert failing on purpose
            "\n"
            "@pytest.mark.memscope_limit('1 MB')\n"
            "def test_within_budget():\n"
            "    assert core.small() == 10\n"
            "\n"
            "@pytest.mark.memscope_limit('1 MB')\n"
            "def test_over_budget():\n"
            "    assert core.hungry() == 3_500_000\n"
            "\n"
            "@pytest.mark.memscope_limit('10 MiB')\n"
            "def test_big_budget():\n"
            "    assert core.hungry() == 3_500_000\n"
        ),
    })
    return pkg


def test_memscope_session_report_and_limits(tmp_path: Path) -> None:
    _project(tmp_path)
    res = run([PY, "-m", "pytest", "-q", "--memscope", "--memscope-output", "out",
               "--memscope-format", "binary", "tests"], tmp_path)
    out = res.stdout
    assert "2 failed, 2 passed" in out, out + res.stderr
    assert "FAILED tests/test_core.py::test_loaded_instrumented - assert 10 == 11" in out
    assert "FAILED tests/test_core.py::test_over_budget" in out
    assert "memscope_limit: tracked variables peaked at 3.5 MB, above the 1.0 MB budget" in out
    assert "largest: big_block in hungry (core.py:6) 3.0 MB, other_block in hungry" in out
    procs = captures(tmp_path / "out" / "pytest")
    assert len(procs) == 1
    (names,) = [n for _, n in procs.values()]
    assert {"tiny_list", "big_block", "other_block"} <= names
    assert "memscope: capture: " in res.stderr


def test_pytest_under_memscope_run(tmp_path: Path) -> None:
    """``memscope run -m pytest``: memscope is imported before pytest loads its plugin,
    and pytest says nothing about it (no PytestAssertRewriteWarning: our modules opt
    out of assertion rewriting); test files are still rewritten, the project is
    instrumented."""
    _project(tmp_path)
    res = run(memscope_cmd("run", "-o", "out", "--no-report", "-m", "pytest", "-q", "tests"),
              tmp_path)
    out = res.stdout + res.stderr
    assert "FAILED tests/test_core.py::test_loaded_instrumented - assert 10 == 11" in out, out
    assert "PytestAssertRewriteWarning" not in out and "already imported" not in out, out


def test_without_memscope_nothing_is_instrumented(tmp_path: Path) -> None:
    _project(tmp_path)
    res = run([PY, "-m", "pytest", "-q", "tests"], tmp_path)
    # not instrumented: the loader check fails on its first assert, limits see nothing
    assert "1 failed, 3 passed" in res.stdout, res.stdout
    assert "FAILED tests/test_core.py::test_loaded_instrumented - AssertionError" in res.stdout
    assert not (tmp_path / "MemoryAnalysis").exists()


def test_parse_size() -> None:
    assert parse_size("50 MB") == 50_000_000
    assert parse_size("1.5KiB") == 1536
    assert parse_size("100") == 100
    assert parse_size(2048) == 2048
    assert parse_size("2 GiB") == 2 * 1024**3
    with pytest.raises(ValueError, match="cannot read"):
        parse_size("lots")
