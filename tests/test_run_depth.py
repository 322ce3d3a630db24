"""`memscope run` gives the program plain Python's recursion depth (issue 16): its runner
starts the program several frames deep, and the program must not pay for them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hook_helpers import PY, clean_env

PROGRAM = '''
import json, sys

def down(n):
    try:
        return down(n + 1)
    except RecursionError:
        return n

def message(limit):
    try:
        sys.setrecursionlimit(limit)
    except (RecursionError, ValueError, TypeError) as exc:
        return [type(exc).__name__, str(exc)]
    return None

seen = {"limit": sys.getrecursionlimit(), "depth": down(0),
        "too low": message(1), "zero": message(0), "text": message("x"),
        "name": sys.setrecursionlimit.__name__}
sys.setrecursionlimit(3000)
seen["limit after"] = sys.getrecursionlimit()
seen["depth after"] = down(0)
print(json.dumps(seen))
'''


@pytest.mark.parametrize("launch", ["console", "python -m memscope"])
@pytest.mark.parametrize("how", ["script", "module"])
def test_the_program_reaches_plain_pythons_depth(tmp_path: Path, launch: str, how: str) -> None:
    (tmp_path / "deep.py").write_text(PROGRAM)
    env = clean_env()
    target = ["deep.py"] if how == "script" else ["-m", "deep"]
    plain = subprocess.run([PY, *target], cwd=tmp_path, env=env, capture_output=True,
                           text=True, check=True)
    runner = ([str(Path(sys.executable).with_name("memscope"))] if launch == "console"
              else [PY, "-m", "memscope"])
    ours = subprocess.run([*runner, "run", "--no-report", "-o", str(tmp_path / "o"),
                           *target], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert ours.returncode == 0, ours.stderr
    want, got = json.loads(plain.stdout), json.loads(ours.stdout.splitlines()[-1])
    assert want["depth"] > 900
    assert got == want
