"""memscope's own memory (memscope/_own.py): what its own steps added to the process,
measured around each step, so that reports can tell it from the program's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_a_step_inside_another_is_counted_once() -> None:
    from memscope import _own

    before = _own.total()
    _own.begin()
    _own.begin()  # (installing the hook starts the tracker: one step inside another)
    grown = bytearray(8 << 20)
    grown[::4096] = b"x" * len(grown[::4096])  # resident now
    _own.end()
    inner = _own.total() - before
    _own.end()
    outer = _own.total() - before
    assert inner == 0 and 8 << 20 <= outer < 9 << 20
    del grown
