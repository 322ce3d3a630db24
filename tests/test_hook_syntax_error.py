"""A module the program imports has a syntax error (issue 17: under memscope run it
showed three chained tracebacks, memscope's InstrumentError among them): the program
gets python's own SyntaxError, told as python tells it, with no exception of memscope's
chained to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hook_helpers import PY, clean_env, memscope_cmd, run, write_tree


@pytest.mark.parametrize("bad", ["def f(:\n    pass\n", "def f():\nreturn 1\n"],
                         ids=["syntax", "indentation"])
def test_an_imported_modules_syntax_error_is_pythons_own(tmp_path: Path, bad: str) -> None:
    write_tree(tmp_path, {"main.py": "import bad\n", "bad.py": bad})
    plain = run([PY, "main.py"], tmp_path, env=clean_env())
    ours = run(memscope_cmd("run", "--no-report", "-o", str(tmp_path / "o"), "main.py"),
               tmp_path, env=clean_env())
    assert plain.returncode == ours.returncode == 1
    # the whole of it, as python tells it: the importing line, then the error (before:
    # four frames of importlib's and the hook's get_code in between)
    lines = [ln for ln in ours.stderr.strip().splitlines() if not ln.startswith("memscope:")]
    assert lines == plain.stderr.strip().splitlines()
    assert "During handling" not in ours.stderr
    assert "InstrumentError" not in ours.stderr and "transform.py" not in ours.stderr
