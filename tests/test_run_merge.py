"""`memscope run` merges the captures of child processes into the parent's report."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.report_helpers import read_jsonl


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_child_process_variables_reach_the_parents_report(tmp_path: Path, method: str) -> None:
    script = tmp_path / "pool_prog.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import multiprocessing as mp
            import os

            def work(n):
                block = [n] * 5000
                return os.getpid()

            if __name__ == "__main__":
                parent_data = list(range(100))
                with mp.get_context("{method}").Pool(2) as pool:
                    pids = set(pool.map(work, range(8)))
                print(len(pids) >= 1)
            """
        )
    )
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "memscope",
            "run",
            "--output",
            str(out),
            "--format",
            "bindings",
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
    rows = read_jsonl(out / "pool_prog" / "pool_prog_bindings.jsonl")
    by_var: dict[str, set[int]] = {}
    for a in rows:
        by_var.setdefault(a["var"], set()).add(a["pid"])
    parent = by_var["parent_data"]
    assert len(parent) == 1
    assert by_var["block"] and not (by_var["block"] & parent)  # made in the children
    assert len({a["pid"] for a in rows}) >= 2
