"""Syntax errors, transformer failures and pytest's assertion rewriting under the hook."""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from memscope_instrument import hook, transform
from tests.hook_helpers import PY, hook_sandbox, run, unique, write_tree

__all__ = ["hook_sandbox"]


def test_user_syntax_error_is_exactly_the_plain_one(tmp_path: Path) -> None:
    name = unique()
    write_tree(tmp_path, {
        f"{name}.py": "def f():\n    x = 1\n    return x +\n",
        "bad2.py": "def g():\n    return 1\nreturn 2\n",  # parses, but is not valid Python
        "driver.py": (
            "import sys, traceback\n"
            "if sys.argv[1] == 'hook':\n"
            "    from memscope_instrument.hook import install_import_hook\n"
            f"    install_import_hook([{name!r}, 'bad2'], start=False)\n"
            "for mod in (sys.argv[2],):\n"
            "    try:\n"
            "        __import__(mod)\n"
            "    except SyntaxError as e:\n"
            "        print(type(e).__name__, e.msg, e.filename, e.lineno, e.offset, e.text)\n"
            "        print(''.join(traceback.format_exception_only(type(e), e)))\n"
        ),
    })
    for mod in (name, "bad2"):
        plain = run([PY, "driver.py", "plain", mod], tmp_path)
        hooked = run([PY, "driver.py", "hook", mod], tmp_path)
        assert plain.stdout.startswith("SyntaxError"), plain
        assert hooked.stdout == plain.stdout
        assert hooked.stderr == plain.stderr == ""


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise transform.InstrumentError("ignored.py", 3, 4, "unsupported node: Match")


def test_transformer_failure_is_a_clear_memscope_error(
    hook_sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique()
    write_tree(hook_sandbox, {f"{name}.py": "a = 1\nb = 2\nmatch a:\n    case 1: pass\n"})
    monkeypatch.setattr(transform, "instrument_source", _boom)
    with hook.install_import_hook([name], start=False):
        with pytest.raises(hook.InstrumentationError) as info:
            importlib.import_module(name)
    err = info.value
    assert err.filename == str(hook_sandbox / f"{name}.py") and err.line == 3 and err.col == 4
    text = str(err)
    assert f"memscope could not instrument {hook_sandbox / name}.py, line 3, col 4" in text
    assert "unsupported node: Match" in text and "at: match a:" in text
    assert "on_error='fallback'" in text
    assert name not in sys.modules


def test_transformer_failure_can_fall_back_to_plain_import(
    hook_sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique()
    write_tree(hook_sandbox, {f"{name}.py": "def f():\n    v = 41\n    return v + 1\n"})
    monkeypatch.setattr(transform, "instrument_source", _boom)
    with hook.install_import_hook([name], start=False, on_error="fallback"):
        with pytest.warns(UserWarning, match="imported uninstrumented"):
            m = importlib.import_module(name)
    assert m.f() == 42
    assert not hasattr(m, "_memscope_")


def test_fallback_by_environment(hook_sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = unique()
    write_tree(hook_sandbox, {f"{name}.py": "X = 5\n"})
    monkeypatch.setattr(transform, "instrument_source", _boom)
    monkeypatch.setenv("MEMSCOPE_HOOK_ON_ERROR", "fallback")
    with hook.install_import_hook([name], start=False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = importlib.import_module(name)
    assert m.X == 5


def test_pytest_assertion_rewriting_still_works(tmp_path: Path) -> None:
    """The project under test is instrumented; its test files are still rewritten."""
    pkg = unique()
    write_tree(tmp_path, {
        f"{pkg}/__init__.py": "",
        f"{pkg}/core.py": "def double(x):\n    result = x * 2\n    return result\n",
        "conftest.py": (
            "from memscope_instrument.hook import install_import_hook\n"
            f"install_import_hook([{pkg!r}], start=False)\n"
        ),
        "test_it.py": (
            f"from {pkg} import core\n"
            "def test_instrumented():\n"
            "    assert type(core.__loader__).__name__ == 'InstrumentingLoader'\n"
            "def test_rewritten():\n"
            "    assert core.double(2) == 5\n"
        ),
    })
    res = run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_it.py"], tmp_path)
    assert "1 failed, 1 passed" in res.stdout, res.stdout + res.stderr
    # pytest's rewritten assert explains the values: only the rewriter does that
    assert "assert 4 == 5" in res.stdout
    assert "where 4 = <function double at" in res.stdout
