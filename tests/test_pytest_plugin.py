"""``pytest --memscope`` and ``@pytest.mark.memscope_limit``."""

from __future__ import annotations

from pathlib import Path

import pytest

from memscope_instrument.pytest_plugin import parse_size
from tests.hook_helpers import PY, clean_env, memscope_cmd, run, unique, write_tree
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


BODY_BUDGET = {
    "pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-p no:cacheprovider'\n",
    "tests/test_body.py": (
        "import pytest\n"
        "\n"
        "@pytest.mark.memscope_limit('1 MB')\n"
        "def test_body_over_budget():\n"
        "    data = bytearray(3_000_000)\n"
        "    assert len(data) == 3_000_000\n"
        "\n"
        "@pytest.mark.memscope_limit('1 MB')\n"
        "def test_body_within_budget():\n"
        "    small = bytearray(1000)\n"
        "    assert len(small) == 1000\n"
        "\n"
        "def test_rewritten_assert_still_explains():\n"
        "    seen = [1, 2]\n"
        "    assert seen == [1, 3]\n"
    ),
}


def test_budget_counts_the_test_body(tmp_path: Path) -> None:
    """The test module is instrumented too, composed with pytest's assertion rewriting:
    the body's own bytearray is over the budget, and a failing assert still explains
    itself (rewritten), at the test file's own line."""
    write_tree(tmp_path, BODY_BUDGET)
    env = clean_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # pytest caches its rewritten code
    for mode in ("fast", "full", "fast"):  # the last one from pytest's cache
        res = run([PY, "-m", "pytest", "-q", "--memscope", "--memscope-mode", mode,
                   "--memscope-output", "out", "--memscope-format", "binary", "tests"],
                  tmp_path, env=env)
        out = res.stdout
        assert "2 failed, 1 passed" in out, out + res.stderr
        assert "FAILED tests/test_body.py::test_body_over_budget" in out
        assert "largest: data in test_body_over_budget (test_body.py:5) 3.0 MB" in out
        assert "assert [1, 2] == [1, 3]" in out  # pytest's explanation
        assert "tests/test_body.py:15: AssertionError" in out
    # the composed code is cached apart from pytest's own: a plain run after it
    # is not instrumented
    assert list((tmp_path / "tests" / "__pycache__").glob("test_body.*-memscope-*.pyc"))
    res = run([PY, "-m", "pytest", "-q", "-p", "no:memscope", "tests"], tmp_path, env=env)
    assert "1 failed, 2 passed" in res.stdout, res.stdout


def test_marker_without_memscope_warns_once(tmp_path: Path) -> None:
    write_tree(tmp_path, BODY_BUDGET)
    res = run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], tmp_path)
    out = res.stdout
    assert "1 failed, 2 passed" in out, out
    assert out.count("memscope_limit has no effect without --memscope") == 1, out


def test_malformed_budget_is_a_usage_error_naming_the_test(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "tests/test_bad.py": (
            "import pytest\n"
            "\n"
            "@pytest.mark.memscope_limit('lots')\n"
            "def test_greedy():\n"
            "    pass\n"
            "\n"
            "@pytest.mark.memscope_limit()\n"
            "def test_no_size():\n"
            "    pass\n"
        ),
    })
    for extra in ([], ["--memscope", "--memscope-output", "out", "--memscope-format",
                       "binary"]):
        res = run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, "tests"],
                  tmp_path)
        err = res.stdout + res.stderr
        assert res.returncode == pytest.ExitCode.USAGE_ERROR, err
        assert "tests/test_bad.py::test_greedy: memscope_limit: cannot read 'lots'" in err
        assert "Traceback" not in err and "pytest_plugin.py" not in err, err
