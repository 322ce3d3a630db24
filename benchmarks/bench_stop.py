"""Exit time after a stop (not a test): seconds from SIGTERM or SIGINT to the exit.

A service that built 200,000 small dicts (about 600,000 bind events) and then waits in
a sleep loop is started plain and under ``memscope run`` (every report asked for, the
default), given a second, then sent the signal; the time until the process has exited
is measured. ``--before DIR`` adds a run of another tree (an older commit unpacked with
``git archive``), for the same measure before a change.

    .venv/bin/python benchmarks/bench_stop.py [--runs 3] [--before /tmp/before]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SERVICE = '''\
import time


def work(n):
    rows = []
    for i in range(n):
        row = {"id": i, "name": f"item-{i}", "tags": [i, i + 1]}
        rows.append(row)
    return rows


table = work(200_000)
index = {r["id"]: r for r in table}
print("ready", flush=True)
while True:
    time.sleep(0.01)
'''


def once(folder: Path, root: Path | None, sig: int) -> tuple[float, int]:
    out = folder / "out"
    shutil.rmtree(out, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMSCOPE_")}
    if root is None:
        args = [sys.executable, "service.py"]
    else:
        env["PYTHONPATH"] = str(root)
        args = [sys.executable, "-c",
                "import sys; from memscope.cli import main; sys.argv[0] = 'memscope'; main()",
                "run", "-o", str(out), "service.py"]
    proc = subprocess.Popen(args, cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline() != "ready\n":
        proc.kill()
        raise SystemExit(proc.communicate()[1])
    time.sleep(1.0)
    t0 = time.perf_counter()
    proc.send_signal(sig)
    proc.communicate(timeout=600)
    return time.perf_counter() - t0, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--before", type=Path, help="another memscope tree to measure too")
    opts = ap.parse_args()
    kinds: list[tuple[str, Path | None]] = [("python", None)]
    if opts.before:
        kinds.append((f"memscope ({opts.before})", opts.before))
    kinds.append(("memscope (this tree)", ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "service.py").write_text(SERVICE)
        for sig in (signal.SIGTERM, signal.SIGINT):
            for label, root in kinds:
                runs = [once(folder, root, sig) for _ in range(opts.runs)]
                times = " ".join(f"{t:.3f}" for t, _ in runs)
                codes = sorted({rc for _, rc in runs})
                print(f"{signal.Signals(sig).name:8} {label:32} {times}  (exit {codes})",
                      flush=True)


if __name__ == "__main__":
    main()
