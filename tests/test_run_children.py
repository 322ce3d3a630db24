"""Child processes of ``memscope run`` are tracked, each into a capture of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from memscope.capture import read_capture
from memscope.events import BIND, PROC, SITE
from tests.hook_helpers import memscope_cmd, run, write_tree

PARENT = '''\
import multiprocessing as mp
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import worker


def square(n):
    chunk = list(range(n))
    return len(chunk) * n


if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    with ctx.Pool(2) as pool:
        print(pool.map(square, [3, 4]))
    p = ctx.Process(target=worker.job, args=(5,))
    p.start()
    p.join()
    print("exit", p.exitcode)
    with ProcessPoolExecutor(1, mp_context=ctx) as ex:
        print(list(ex.map(worker.pooled, [6])))
    r = subprocess.run([sys.executable, "-c", "import worker; print(worker.job(7))"],
                       capture_output=True, text=True)
    print("sub", r.returncode, r.stdout.strip())
'''

WORKER = '''\
def job(n):
    job_buffer = bytearray(n * 100)
    return len(job_buffer)


def pooled(n):
    pooled_result = [n] * n
    return len(pooled_result)
'''


def captures(out: Path) -> dict[int, tuple[int, set[str]]]:
    """pid -> (parent pid, names bound in that process)."""
    found: dict[int, tuple[int, set[str]]] = {}
    for path in out.rglob("*.memscope"):
        sites: dict[int, str] = {}
        names: set[str] = set()
        pid = ppid = -1
        for ev in read_capture(path).iter_events():
            if ev[0] == SITE:
                sites[ev[1]] = ev[5]
            elif ev[0] == BIND:
                names.add(sites.get(ev[2], "?"))
            elif ev[0] == PROC and pid == -1:
                pid, ppid = ev[1], ev[2]
        assert path.name.endswith(f".{pid}.memscope")
        found[pid] = (ppid, names)
    return found


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_pool_process_executor_and_subprocess(tmp_path: Path, method: str) -> None:
    write_tree(tmp_path, {"parent.py": PARENT, "worker.py": WORKER})
    res = run(memscope_cmd("run", "-o", str(tmp_path / "o"), "--no-report", "parent.py", method),
              tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["[9, 16]", "exit 0", "[6]", "sub 0 700"]
    procs = captures(tmp_path / "o" / "parent")
    (parent,) = [pid for pid, (_, names) in procs.items() if "pool" in names]
    children = {pid: names for pid, (ppid, names) in procs.items() if pid != parent}
    assert all(procs[pid][0] != -1 for pid in children)
    everything = set().union(*children.values())
    assert {"chunk", "job_buffer", "pooled_result"} <= everything
    # the Process child, the executor's worker and the subprocess each have their own
    assert sum("job_buffer" in names for names in children.values()) >= 2
    assert any("pooled_result" in names for names in children.values())
    assert "job_buffer" not in procs[parent][1]  # the child's work is not the parent's
    for pid in children:
        assert f"parent.{pid}.memscope" in res.stderr  # printed with the parent's


def test_child_killed_with_sigkill_keeps_its_flushed_events(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "victim.py": ("import os, signal\n"
                      "from memscope import _hooks\n"
                      "def work():\n"
                      "    before_kill = bytearray(1000)\n"
                      "    _hooks.flush()\n"
                      "    os.kill(os.getpid(), signal.SIGKILL)\n"
                      "    after_kill = 1\n"),
        "killer.py": ("import subprocess, sys\n"
                      "r = subprocess.run([sys.executable, '-c', 'import victim; victim.work()'])\n"
                      "print('child', r.returncode)\n"),
    })
    res = run(memscope_cmd("run", "-o", str(tmp_path / "o"), "--no-report", "killer.py"),
              tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "child -9\n"
    procs = captures(tmp_path / "o" / "killer")
    victim = [names for _, names in procs.values() if "before_kill" in names]
    assert len(victim) == 1 and "after_kill" not in victim[0]


TERMINATED = '''\
import multiprocessing as mp
import sys
import time


def work(ready):
    import memscope
    held = [list(range(50)) for _ in range(2000)]
    ready.set()
    while True:  # a census after another: SIGTERM lands in one, its lock held
        memscope.snapshot()


if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    for _ in range(6):
        ready = ctx.Event()
        p = ctx.Process(target=work, args=(ready,))
        p.start()
        ready.wait(60)
        time.sleep(0.2)
        p.terminate()
        p.join(30)
        print("exit", p.exitcode, flush=True)
        if p.exitcode is None:
            p.kill()
            p.join()
'''


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_child_terminated_in_a_census_dies_as_plain_pythons(tmp_path: Path, method: str) -> None:
    """SIGTERM to a tracked child ends it, as plain Python's default SIGTERM does,
    wherever it lands: its handler closes the capture as an interrupted run's (no end
    census, no leak check, no lock waited for without end). Its full close ran a
    census, and in a census (memscope.snapshot(), or the monitor's) it waited for the
    census lock its own thread held: the child never died and the parent's join()
    waited forever (2 of this test's 6 children, at 936e9df)."""
    write_tree(tmp_path, {"term.py": TERMINATED})
    res = run(memscope_cmd("run", "-o", str(tmp_path / "o"), "--no-report", "term.py", method),
              tmp_path, timeout=400)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "exit -15\n" * 6


def test_children_not_tracked_when_asked(tmp_path: Path) -> None:
    write_tree(tmp_path, {"parent.py": PARENT, "worker.py": WORKER})
    res = run(memscope_cmd("run", "-o", str(tmp_path / "o"), "--no-report", "--no-children",
                           "parent.py", "spawn"), tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    procs = captures(tmp_path / "o" / "parent")
    assert len(procs) == 1


def test_users_own_sitecustomize_still_runs(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "site_dir/sitecustomize.py": "import os\nos.environ['USER_SITECUSTOMIZE'] = 'ran'\n",
        "kid.py": "import os\nprint(os.environ.get('USER_SITECUSTOMIZE'))\n",
        "par.py": ("import subprocess, sys\n"
                   "print(subprocess.run([sys.executable, 'kid.py'], capture_output=True,"
                   " text=True).stdout.strip())\n"),
    })
    from tests.hook_helpers import ROOT, clean_env

    env = clean_env(PYTHONPATH=f"{tmp_path / 'site_dir'}:{ROOT}")
    res = run(memscope_cmd("run", "-o", str(tmp_path / "o"), "--no-report", "par.py"),
              tmp_path, env=env)
    assert res.stdout == "ran\n", res.stderr
    assert len(captures(tmp_path / "o" / "par")) == 2


@pytest.mark.parametrize("settings", [
    {"mode": "full", "sampling": True, "name": None, "parent_pid": 1234, "include": ["a.b"],
     "exclude": [], "roots": ["/tmp/with \"quotes\" \\ and\nnewline\x01", "/tmp/é😀\udcff"]},
    [], {}, "", -3, False,
])
def test_children_settings_are_written_as_json(settings: object) -> None:
    """The parent writes ``MEMSCOPE_CHILD`` without importing json: the same text as
    ``json.dumps``, which the child reads back."""
    import json

    from memscope_instrument.child import to_json

    assert to_json(settings) == json.dumps(settings)
    assert json.loads(to_json(settings)) == settings


TWIN = '''\
import os, subprocess, sys, time
twin_value = bytearray(100)
subprocess.run([sys.executable, "-c", "child_value = 1"], check=True)
print("ready", flush=True)
while not os.path.exists(sys.argv[1]):  # held open until the test lets it end
    time.sleep(0.01)
'''


def test_two_runs_into_one_folder_report_only_their_own_processes(tmp_path: Path) -> None:
    """Two memscope run of one script, into one folder, at the same time: each merges
    its own process and its own child, not the other run's (each process records its
    run's id)."""
    import json
    import subprocess

    from tests.hook_helpers import clean_env

    write_tree(tmp_path, {"twin.py": TWIN})
    out = tmp_path / "o"
    procs = []
    for tag in ("a", "b"):
        p = subprocess.Popen(memscope_cmd("run", "-o", str(out), "--format", "json,binary",
                                          "twin.py", str(tmp_path / f"go-{tag}")),
                             cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
        procs.append(p)
    seen: list[set[str]] = []
    for tag, p in zip("ab", procs, strict=True):
        (tmp_path / f"go-{tag}").touch()
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        printed = {ln.split("capture: ", 1)[1] for ln in err.splitlines()
                   if ln.startswith("memscope: capture: ")}
        meta = json.loads((out / "twin" / "twin_memory_analysis.json").read_text())["meta"]
        assert set(meta["captures"]) == printed
        assert len(printed) == 2, err  # the run's process and its child
        seen.append(printed)
    assert not seen[0] & seen[1]
    assert len(list((out / "twin").glob("twin.*.memscope"))) == 4
