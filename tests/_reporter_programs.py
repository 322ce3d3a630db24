"""Programs run in subprocesses to make real captures for the reporter tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RICH = """
import os, threading, asyncio
import memscope
import numpy as np
t = memscope.init(mode="full", output_dir=OUT, name=NAME)

CACHE = []

class Blob:
    def __init__(self, n):
        self.buf = bytearray(n)

@memscope.track_scope("work")
def work(n):
    data = list(range(n))
    memscope.track_var(data)
    alias = data
    memscope.track_var(alias)
    leaked = Blob(n)
    memscope.track_var(leaked)
    CACHE.append(leaked)
    return len(data)

for n in SIZES:
    work(n)
with memscope.track_scope("buffers"):
    arr = np.zeros(1000)
    memscope.track_var(arr)
    view = arr[10:20]
    memscope.track_var(view)
    raw = bytes(300)
    memscope.track_var(raw)
th = threading.Thread(target=work, args=(500,), name="worker")
th.start(); th.join()

@memscope.track_scope("task")
async def task_body():
    payload = "x" * 1000
    memscope.track_var(payload)
    await asyncio.sleep(0)

async def main():
    await asyncio.gather(task_body(), task_body())

asyncio.run(main())
FORK
t.close()
print(os.getpid())
"""

FORK = """
pid = os.fork()
if pid == 0:
    child_only = bytearray(4096)
    memscope.track_var(child_only)
    t.close()
    os._exit(0)
os.waitpid(pid, 0)
"""


def make_capture(out: Path, name: str, sizes: tuple[int, ...] = (100, 2000),
                 fork: bool = False) -> list[Path]:
    """Run the program; returns its captures (parent first)."""
    code = (
        RICH.replace("OUT", repr(str(out)))
        .replace("NAME", repr(name))
        .replace("SIZES", repr(sizes))
        .replace("FORK", FORK if fork else "")
    )
    script = out / f"{name}_prog.py"
    out.mkdir(parents=True, exist_ok=True)
    script.write_text(textwrap.dedent(code))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, str(script)], cwd=out, env=env, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    pid = int(r.stdout.split()[-1])
    caps = sorted((out / name).glob(f"{name}.*.memscope"))
    parent = out / name / f"{name}.{pid}.memscope"
    return [parent, *[c for c in caps if c != parent]]
