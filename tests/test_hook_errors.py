"""Syntax errors, transformer failures and pytest's assertion rewriting under the hook."""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from memscope.events import ERROR
from memscope_instrument import hook, transform
from tests.conftest import Recorder
from tests.hook_helpers import PY, ROOT, clean_env, hook_sandbox, run, unique, write_tree

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
    with hook.install_import_hook([name], start=False, on_error="raise"):
        with pytest.raises(hook.InstrumentationError) as info:
            importlib.import_module(name)
    err = info.value
    assert err.filename == str(hook_sandbox / f"{name}.py") and err.line == 3 and err.col == 4
    text = str(err)
    assert f"memscope could not instrument {hook_sandbox / name}.py, line 3, col 4" in text
    assert "unsupported node: Match" in text and "at: match a:" in text
    assert "on_error='fallback'" in text
    assert name not in sys.modules


def test_transformer_failure_falls_back_by_default_said_once_on_stderr(
    hook_sandbox: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
    rec: Recorder,
) -> None:
    """Issue 17: a transformer failure on one module does not end the program: the module
    is imported uninstrumented, stderr says so once (file and reason), not through
    ``warnings`` (a ``filterwarnings = error`` turned that back into the import failure),
    and the run's capture counts it (an ERROR row, 'instrument')."""
    name = unique()
    write_tree(hook_sandbox, {f"{name}.py": "def f():\n    v = 41\n    return v + 1\n"})
    monkeypatch.setattr(transform, "instrument_source", _boom)
    path = str(hook_sandbox / f"{name}.py")
    for on_error in ({}, {"on_error": "fallback"}):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with hook.install_import_hook([name], start=False, **on_error):
                m = importlib.import_module(name)
                assert m.f() == 42 and not hasattr(m, "_memscope_")
                del sys.modules[name]
                importlib.import_module(name)  # again: nothing more said
        del sys.modules[name]
    err = capfd.readouterr().err.splitlines()
    assert err == [f"memscope: {path}: imported uninstrumented: could not instrument line 3, "
                   "col 4: unsupported node: Match (a memscope bug; please report it)"]
    rows = [e for e in rec.events() if e[0] == ERROR and e[2] == "instrument"]
    assert len(rows) == 1 and path in rows[0][3] and "unsupported node: Match" in rows[0][3]


def test_fallback_by_environment(hook_sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = unique()
    write_tree(hook_sandbox, {f"{name}.py": "X = 5\n"})
    monkeypatch.setattr(transform, "instrument_source", _boom)
    monkeypatch.setenv("MEMSCOPE_HOOK_ON_ERROR", "fallback")
    with hook.install_import_hook([name], start=False, on_error="raise"):
        m = importlib.import_module(name)
    assert m.X == 5


# a module the transformer fails on, in a subprocess: its instrument_source patched
_BOOM_SITE = """
from memscope_instrument import transform
real = transform.instrument_source
def instrument_source(data, path, *a, **k):
    if path.endswith("boomed.py"):
        raise transform.InstrumentError(path, 2, 0, "simulated failure")
    return real(data, path, *a, **k)
transform.instrument_source = instrument_source
"""


def test_memscope_run_with_warnings_as_errors_falls_back(tmp_path: Path) -> None:
    """``python -W error -m memscope run``: the fallback is not a warning, so the
    program runs to its end; ``--on-error raise`` stops it with the memscope error."""
    write_tree(tmp_path, {
        "site_dir/sitecustomize.py": _BOOM_SITE,
        "boomed.py": "X = 1\nY = X + 1\n",
        "prog.py": "import boomed\nprint('Y is', boomed.Y)\n",
    })
    env = clean_env(PYTHONPATH=f"{tmp_path / 'site_dir'}{os.pathsep}{ROOT}")
    run_cmd = ["-c", "import sys; from memscope.cli import main; sys.argv[0] = 'memscope'; "
               "main()", "run", "--format", "json"]
    r = run([PY, "-W", "error", *run_cmd, "prog.py"], tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Y is 2\n"
    said = [ln for ln in r.stderr.splitlines() if "boomed.py" in ln]
    assert len(said) == 1 and "imported uninstrumented" in said[0], r.stderr
    assert "simulated failure" in said[0] and "Warning" not in r.stderr
    r = run([PY, "-W", "error", *run_cmd, "--on-error", "raise", "prog.py"], tmp_path, env=env)
    assert r.returncode != 0 and "memscope could not instrument" in r.stderr
    assert "Y is" not in r.stdout


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
