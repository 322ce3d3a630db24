"""``pytest --memscope`` and ``@pytest.mark.memscope_limit``."""

from __future__ import annotations

import re
import sys
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


RETAINED_BUDGET = {
    "pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-p no:cacheprovider'\n",
    "helpers.py": (
        "def build(n):\n"
        "    made = []\n"  # bound empty: its bind-time size is a few bytes
        "    made.extend(range(n))\n"
        "    return made\n"
        "\n"
        "def scratch(n):\n"
        "    work = []\n"
        "    work.extend(range(n))\n"
        "    return len(work)\n"  # freed when it returns
    ),
    "tests/test_retained.py": (
        "import functools\n"
        "import sys\n"
        "import pytest\n"
        "import helpers\n"
        "\n"
        "def passing_through(fn):\n"
        "    @functools.wraps(fn)\n"
        "    def wrapper(*args, **kwargs):\n"
        "        return fn(*args, **kwargs)\n"
        "    return wrapper\n"
        "\n"
        "@pytest.mark.memscope_limit('1 MB')\n"
        "def test_grown_in_body():\n"
        "    grown = []\n"
        "    grown.extend(range(100_000))\n"
        "    assert len(grown) == 100_000\n"
        "\n"
        "@pytest.mark.memscope_limit('1 MB')\n"
        "def test_kept_from_helper():\n"
        "    kept = helpers.build(100_000)\n"
        "    assert len(kept) == 100_000\n"
        "\n"
        "@pytest.mark.memscope_limit('1 MB')\n"
        "def test_temporaries_freed():\n"
        "    assert helpers.scratch(100_000) == 100_000\n"
        "    temp = []\n"
        "    temp.extend(range(100_000))\n"
        "    del temp\n"
        "    small = [0] * 10\n"
        "    assert len(small) == 10\n"
        "\n"
        "@pytest.mark.memscope_limit('50 MB')\n"
        "def test_grown_within_budget():\n"
        "    grown = []\n"
        "    grown.extend(range(100_000))\n"
        "    assert len(grown) == 100_000\n"
        "\n"
        "class TestInAClass:\n"
        "    @pytest.mark.memscope_limit('1 MB')\n"
        "    def test_method_keeps(self):\n"
        "        rows = {}\n"
        "        rows.update((i, i) for i in range(100_000))\n"
        "        assert len(rows) == 100_000\n"
        "\n"
        "@pytest.mark.memscope_limit('1 MB')\n"
        "@passing_through\n"
        "def test_decorated():\n"
        "    inner = []\n"
        "    inner.extend(range(100_000))\n"
        "\n"
        "def test_nothing_left_armed():\n"
        "    assert sys.getprofile() is None\n"
        "    mon = getattr(sys, 'monitoring', None)\n"
        "    assert mon is None or 'memscope pytest budget' not in map(mon.get_tool, range(6))\n"
    ),
}


def test_budget_counts_what_the_test_keeps_alive(tmp_path: Path) -> None:
    """Issue 17: the budget counts retained sizes at the test's end, not only sizes at
    bind: a list bound empty and grown in the body (several MB) is over a 1 MB budget,
    and so is a big object a helper returns and the test keeps; what was freed before
    the test ended (the helper's own list, a ``del``-ed one) is not kept alive."""
    write_tree(tmp_path, RETAINED_BUDGET)
    for mode in ("fast", "full"):
        res = run([PY, "-m", "pytest", "-q", "--memscope", "--memscope-mode", mode,
                   "--memscope-output", "out", "--memscope-format", "binary", "tests"],
                  tmp_path)
        out = res.stdout
        assert "4 failed, 3 passed" in out, out + res.stderr
        failed = {line.split(" - ")[0] for line in out.splitlines()
                  if line.startswith("FAILED ")}
        assert failed == {
            "FAILED tests/test_retained.py::test_grown_in_body",
            "FAILED tests/test_retained.py::test_kept_from_helper",
            "FAILED tests/test_retained.py::TestInAClass::test_method_keeps",
            "FAILED tests/test_retained.py::test_decorated",
        }, out
        # names, types and retained sizes of what was kept, never values
        m = re.search(r"test kept (\d+\.\d) MB alive at its end \(retained\), above the "
                      r"1\.0 MB budget; kept: grown in test_grown_in_body "
                      r"\(test_retained\.py:14\) list (\d+\.\d) MB", out)
        assert m is not None, out
        assert m.group(1) == m.group(2), out
        assert 0.9 <= float(m.group(1)) * 1e6 / _grown(100_000) <= 1.3, out
        assert re.search(r"kept: kept in test_kept_from_helper \(test_retained\.py:20\) "
                         r"list \d+\.\d MB", out), out
        assert re.search(r"kept: rows in TestInAClass\.test_method_keeps "
                         r"\(test_retained\.py:\d+\) dict \d+\.\d MB", out), out
        assert re.search(r"kept: inner in test_decorated \(test_retained\.py:\d+\) "
                         r"list \d+\.\d MB", out), out
        (line,) = [ln for ln in out.splitlines() if "kept: grown in test_grown_in_body" in ln]
        assert "tracked variables peaked" not in line  # nothing large at bind
        assert "99999" not in out and "99,999" not in out  # no values


def _grown(n: int) -> int:
    """What a list grown to ``n`` ints holds, as this process sizes it."""
    grown: list[int] = []
    grown.extend(range(n))
    return sys.getsizeof(grown) + sum(map(sys.getsizeof, grown))


def test_retained_budget_names_only_what_the_test_kept(tmp_path: Path) -> None:
    """What a test keeps alive is what it still holds at its end and what other
    variables gained meanwhile: a temporary the body freed is not named, however
    large; a module cache counts with what the test added to it, not what it held
    before; a list both the test and a module's list hold counts once; a fixture's
    value, made before the test started, counts at bind only (the test's parameter)."""
    write_tree(tmp_path, {
        "pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-p no:cacheprovider'\n",
        "cache.py": (
            "CACHE = []\n"
            "HELD = []\n"
            "\n"
            "def remember(n):\n"
            "    CACHE.extend(range(n))\n"
            "    return len(CACHE)\n"
        ),
        "tests/conftest.py": (
            "import pytest\n"
            "\n"
            "@pytest.fixture\n"
            "def grown_fixture():\n"
            "    value = []\n"
            "    value.extend(range(300_000))\n"
            "    return value\n"

        ),
        "tests/test_cache.py": (
            "import pytest\n"
            "import cache\n"
            "\n"
            "@pytest.mark.memscope_limit('50 MB')\n"
            "def test_fills_within_budget():\n"
            "    assert cache.remember(300_000) == 300_000\n"
            "\n"
            "@pytest.mark.memscope_limit('1 MB')\n"
            "def test_fills_more():\n"
            "    assert cache.remember(300_000) == 600_000\n"
            "\n"
            "@pytest.mark.memscope_limit('1 MB')\n"
            "def test_reads_only():\n"
            "    assert cache.remember(0) == 600_000\n"
            "\n"
            "@pytest.mark.memscope_limit('1 MB')\n"
            "def test_fixture_value_is_pytests(grown_fixture):\n"
            "    assert len(grown_fixture) == 300_000\n"
            "\n"
            "@pytest.mark.memscope_limit('1 MB')\n"
            "def test_keeps_what_it_caches():\n"
            "    both = []\n"
            "    both.extend(range(300_000))\n"
            "    cache.HELD.append(both)\n"
        ),
        "tests/test_mixed.py": (
            "import pytest\n"
            "\n"
            "@pytest.mark.memscope_limit('1 MB')\n"
            "def test_mixed():\n"
            "    scratch = []\n"
            "    scratch.extend(range(800_000))\n"
            "    scratch = None\n"
            "    result = []\n"
            "    result.extend(range(300_000))\n"
            "    assert scratch is None\n"
        ),
    })
    res = run([PY, "-m", "pytest", "-q", "--memscope", "--memscope-output", "out",
               "--memscope-format", "binary", "tests"], tmp_path)
    out = res.stdout
    failed = sorted(line.split(" - ")[0] for line in out.splitlines()
                    if line.startswith("FAILED "))
    assert failed == ["FAILED tests/test_cache.py::test_fills_more",
                      "FAILED tests/test_cache.py::test_fixture_value_is_pytests",
                      "FAILED tests/test_cache.py::test_keeps_what_it_caches",
                      "FAILED tests/test_mixed.py::test_mixed"], out + res.stderr
    # a list the test's variable and a module's list both reach: counted once, and
    # each name is said to share it
    (line,) = [ln for ln in out.splitlines() if "both in test_keeps_what_it_caches" in ln]
    m = re.search(r"test kept (\d+\.\d) MB alive", line)
    assert m is not None, out
    assert 0.9 <= float(m.group(1)) * 1e6 / _grown(300_000) <= 1.3, out
    assert re.search(r"both in test_keeps_what_it_caches \(test_cache\.py:\d+\) list "
                     r"\d+\.\d MB \(shared with other names\)", line), out
    # the fixture's value counts at bind (the test's parameter), not as kept
    (line,) = [ln for ln in out.splitlines() if "largest: grown_fixture in" in ln]
    assert "alive at its end" not in line, out
    # a module global the code under test grew: only what it gained during the test
    m = re.search(r"test kept (\d+\.\d) MB alive at its end \(retained\), above the 1\.0 MB "
                  r"budget; kept: CACHE in <module> \(cache\) list", out)
    assert m is not None, out
    gained = _grown(600_000) - _grown(300_000)
    assert 0.8 <= float(m.group(1)) * 1e6 / gained <= 1.3, out
    m = re.search(r"test kept (\d+\.\d) MB alive at its end \(retained\), above the 1\.0 MB "
                  r"budget; kept: result in test_mixed \(test_mixed\.py:8\) list", out)
    assert m is not None, out
    # what ``result`` holds, not ``scratch``'s nearly three times as much besides
    assert 0.9 <= float(m.group(1)) * 1e6 / _grown(300_000) <= 1.3, out
    assert "scratch in test_mixed" not in out, out
