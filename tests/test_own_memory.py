"""memscope's own memory (memscope/_own.py): what its own steps added to the process,
measured around each step, so that reports can tell it from the program's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """\
import sys
from memscope import _own
after_import = _own.total()
from memscope_instrument import hook
before = _own.total()
code, done = hook.instrument_code(b"def f(x):\\n    y = [x]\\n    return y\\n", "m.py", "m",
                                  hook.make_options("fast"))
after_first = _own.total()
data = bytearray(30 << 20)  # the program's own memory: not memscope's
data[::4096] = b"x" * len(data[::4096])
print(after_import, after_first - before, _own.total() - after_first, done)
"""


def test_own_memory_counts_memscope_steps_and_not_the_program(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         cwd=tmp_path, check=True)
    after_import, first_instrument, program, done = res.stdout.split()
    assert done == "True"
    assert int(after_import) > 100_000  # memscope's modules
    # the first instrumentation loads the transformer (ast, tokenize, its modules)
    assert int(first_instrument) > 500_000
    assert int(program) == 0  # 30 MB the program made: none of it memscope's


def test_instrumenting_a_module_is_not_the_programs_peak(tmp_path: Path) -> None:
    """Instrumenting a large module cold takes tens of megabytes for a moment (its
    syntax tree): memscope's work, left out of the program's peak as a census walk's
    working memory is; the kernel's own mark, kept beside it, still counts it."""
    from memscope.capture import read_capture
    from memscope.reporters import load

    lines = [f"def f{i}(x):\n    y{i} = [x, {i}]\n    return y{i}\n" for i in range(6000)]
    (tmp_path / "big_module.py").write_text("".join(lines))
    (tmp_path / "main.py").write_text("import big_module\nprint(big_module.f1(2))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMSCOPE_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # cold: instrumented now, in this process
    subprocess.run([sys.executable, "-m", "memscope", "run", "-o", str(tmp_path / "o"),
                    "--no-report", "main.py"], check=True, capture_output=True,
                   cwd=tmp_path, env=env)
    capture = next((tmp_path / "o" / "main").glob("main.*.memscope"))
    stats = load.analyze(read_capture(capture)).analysis.memory_stats()
    assert stats["process_peak_kernel_bytes"] - stats["process_peak_bytes"] > 10 << 20


NESTED = """\
import mmap
from memscope import _own
before = _own.total()
_own.begin()
_own.begin()  # (installing the hook starts the tracker: one step inside another)
grown = mmap.mmap(-1, 8 << 20)  # fresh pages: resident once touched, whatever malloc holds
for at in range(0, len(grown), mmap.PAGESIZE):
    grown[at] = 1
_own.end()
inner = _own.total() - before
_own.end()
print(inner, _own.total() - before)
"""


def test_a_step_inside_another_is_counted_once(tmp_path: Path) -> None:
    """In a fresh process: in the test runner's, earlier tests' freed memory (and glibc's
    raised mmap threshold) can make an 8 MB buffer land on pages already resident."""
    res = subprocess.run([sys.executable, "-c", NESTED], capture_output=True, text=True,
                         cwd=tmp_path, check=True)
    inner, outer = map(int, res.stdout.split())
    assert inner == 0
    assert 8 << 20 <= outer < 9 << 20


def test_a_step_that_fails_is_closed(tmp_path: Path) -> None:
    """memscope run's set-up failing half-way (a bad setting) must not leave a step open:
    every later step would be taken as part of it and counted nowhere."""
    from memscope import _own
    from memscope.commands.run import run_program
    from memscope.config import ConfigError

    script = tmp_path / "x.py"
    script.write_text("x = 1\n")
    depth = _own._open[0]
    with pytest.raises(ConfigError):
        run_program(script=str(script), module=None, args=(), mode="bogus", report=False)
    assert _own._open[0] == depth
