"""The `slow` mark is given by tests/conftest.py from what a test does (it starts a
Python process, drives the browser, or runs many hypothesis examples): check the rule on
test-shaped functions, and on this suite's own collection."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import _starts_processes


def _helper_that_starts_python() -> str:
    return subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True,
                          text=True, check=True).stdout


def _direct() -> None:
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def _through_a_helper() -> None:
    assert _helper_that_starts_python() == "1\n"


def _in_a_nested_function() -> None:
    def later() -> None:
        _helper_that_starts_python()

    later()


def _in_process() -> None:
    assert sorted([3, 1, 2]) == [1, 2, 3]


@pytest.mark.parametrize("func", [_direct, _through_a_helper, _in_a_nested_function])
def test_a_function_that_starts_a_process_is_slow(func: object) -> None:
    assert _starts_processes(func, set())


def test_an_in_process_function_is_not(request: pytest.FixtureRequest) -> None:
    assert not _starts_processes(_in_process, set())
    assert request.node.get_closest_marker("slow") is None  # this test itself


def test_this_suites_process_tests_carry_the_mark(request: pytest.FixtureRequest) -> None:
    marked = {item.name: item.get_closest_marker("slow") is not None
              for item in request.session.items if item.module is sys.modules[__name__]}
    expected = {"test_an_in_process_function_is_not": False,
                "test_a_process_started_here_is_marked": True}
    for name, slow in expected.items():
        if name in marked:
            assert marked[name] is slow, name
        else:  # deselected: only a slow one can be, under -m "not slow"
            assert slow and request.config.getoption("-m") == "not slow", name


def test_a_process_started_here_is_marked() -> None:
    _direct()
