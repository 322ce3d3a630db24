"""Instrumented code reports the ORIGINAL file, line and column everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.hook_helpers import PY, clean_env, run, unique, write_tree

TARGET = '''\
"""A module with errors on lines the instrumenter rewrites."""
import warnings


def deco(fn):
    return fn


@deco
def index_error(values):
    first = values[0]
    picked = values[first] + 1   # IndexError: caret under values[first]
    return picked


def in_comprehension(rows):
    total = 0
    squares = [r * r for r in rows if 10 // r]
    total += sum(squares)
    return total


def multi_line(a,
               b):
    result = (a
              + b)      # TypeError spans two lines
    return result


class Holder:
    size = 3

    def method(self, n):
        scaled = n * self.size
        key = {"a": 1}[scaled]
        return key


def gen(n):
    for i in range(n):
        item = 100 // (n - i - 1)
        yield item


def warn_here():
    msg = "careful"
    warnings.warn(msg, UserWarning)
    return msg


lam = lambda v: v.missing_attr
'''

DRIVER = '''\
import importlib, inspect, linecache, sys, traceback, warnings
if sys.argv[1] == "hook":
    from memscope_instrument.hook import install_import_hook
    install_import_hook([{name!r}], start=False)
m = importlib.import_module({name!r})
assert (type(m.__loader__).__name__ == "InstrumentingLoader") == (sys.argv[1] == "hook")
cases = [
    lambda: m.index_error([5, 1]),
    lambda: m.in_comprehension([1, 2, 0]),
    lambda: m.multi_line(1, "x"),
    lambda: m.Holder().method(2),
    lambda: list(m.gen(3)),
    lambda: m.lam(1),
]
for case in cases:
    try:
        case()
    except Exception:
        tb = traceback.format_exc()
        keep = [ln for ln in tb.splitlines() if "driver.py" not in ln]
        print("\\n".join(ln for ln in keep if "<lambda>" not in ln or "lam " in ln))
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    m.warn_here()
print("warning at", w[0].filename, w[0].lineno, w[0].message)
for obj in (m.index_error, m.Holder, m.Holder.method, m.gen, m.warn_here):
    print(inspect.getsourcelines(obj)[1], inspect.getsource(obj))
print(inspect.getsource(m)[:60])
print(repr(linecache.getline(m.__file__, 12)))
for fn in (m.index_error, m.multi_line, m.Holder.method, m.gen):
    lines = {{l for _, _, l in fn.__code__.co_lines() if l}}
    src, first = inspect.getsourcelines(fn)
    # every line the code reports lies in the function's own source
    print(fn.__code__.co_firstlineno, lines <= set(range(first, first + len(src))))
print(m.index_error.__name__, m.index_error.__qualname__, inspect.signature(m.multi_line))
'''


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, str]:
    name = unique()
    write_tree(tmp_path, {f"{name}.py": TARGET, "driver.py": DRIVER.format(name=name)})
    return tmp_path, name


def test_tracebacks_warnings_getsource_linecache_identical(project: tuple[Path, str]) -> None:
    base, _ = project
    plain = run([PY, "driver.py", "plain"], base)
    hooked = run([PY, "driver.py", "hook"], base)
    assert plain.returncode == 0, plain.stderr
    assert hooked.returncode == 0, hooked.stderr
    assert "^^^^^^^^^^^^^" in plain.stdout  # the 3.11+ carets are compared too
    assert "in_comprehension" in plain.stdout and "warning at" in plain.stdout
    assert hooked.stdout == plain.stdout


def _pdb(base: Path, name: str, mode: str, call: str, cmds: str) -> str:
    script = base / "pdbdriver.py"
    script.write_text(
        "import pdb, sys\n"
        "if sys.argv[1] == 'hook':\n"
        "    from memscope_instrument.hook import install_import_hook\n"
        f"    install_import_hook([{name!r}], start=False)\n"
        f"import {name} as m\n"
        f"pdb.Pdb(nosigint=True).runcall({call})\n"
    )
    return run([PY, str(script), mode], base, input=cmds).stdout


def test_pdb_breakpoint_print_where_on_original_lines(project: tuple[Path, str]) -> None:
    base, name = project
    cmds = f"b {name}.py:35\nc\np scaled\nwhere\nl 34, 36\nc\n"
    plain = _pdb(base, name, "plain", "m.Holder().method, 3", cmds)
    hooked = _pdb(base, name, "hook", "m.Holder().method, 3", cmds)
    assert f"{name}.py(35)method()" in plain
    assert "-> key = {\"a\": 1}[scaled]" in plain and "(Pdb) 9" in plain
    assert hooked == plain


def test_pdb_steps_through_the_users_lines(project: tuple[Path, str]) -> None:
    """``next`` visits the same lines in the same order; the only addition is that
    leaving the function is shown on its ``def`` line (the scope's end, see hook.py)."""
    import re

    base, name = project
    cmds = "n\n" * 14 + "c\n"
    plain = _pdb(base, name, "plain", "m.in_comprehension, [1, 2, 5]", cmds)
    hooked = _pdb(base, name, "hook", "m.in_comprehension, [1, 2, 5]", cmds)

    def lines(text: str) -> list[int]:
        return [int(n) for n in re.findall(rf"{name}\.py\((\d+)\)in_comprehension\(\)", text)]

    p, h = lines(plain), lines(hooked)
    assert p[:4] == [17, 18, 19, 20]
    def_line = 16
    assert [n for n in h if n != def_line] == [n for n in p if n != def_line][: len(
        [n for n in h if n != def_line])]
    assert p[-1] == 20 and h[-1] == def_line  # the return is shown on the def line


def test_coverage_reports_original_lines(project: tuple[Path, str]) -> None:
    base, name = project
    results = {}
    for mode in ("plain", "hook"):
        data = base / f".cov.{mode}"
        env = clean_env(COVERAGE_FILE=str(data))
        r = run([PY, "-m", "coverage", "run", f"--include={name}.py", "driver.py", mode],
                base, env=env)
        assert r.returncode == 0, r.stderr
        out = base / f"cov.{mode}.json"
        r = run([PY, "-m", "coverage", "json", "-o", str(out)], base, env=env)
        assert r.returncode == 0, r.stderr
        files = json.loads(out.read_text())["files"]
        (entry,) = files.values()
        results[mode] = (entry["executed_lines"], entry["missing_lines"])
    assert results["plain"][0]  # something was measured
    assert results["hook"] == results["plain"]
