"""``memscope run`` behaves like ``python`` and writes the capture at every kind of exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memscope.capture import read_capture
from memscope.events import BIND, CENSUS, ERROR, SITE
from tests.hook_helpers import PY, clean_env, memscope_cmd, run, strip_memscope, write_tree

PROGRAM = '''\
import sys
import helper


def main(argv):
    greeting = helper.greet(argv[1] if len(argv) > 1 else "world")
    print(greeting)
    print("argv", sys.argv)
    print("name", __name__, "file", __file__ == sys.argv[0] or __file__)
    print("path0", sys.path[0])
    print("main", sys.modules["__main__"].__dict__ is globals())
    print("spec", __spec__, __package__, type(__loader__).__name__)
    line = sys.stdin.readline().strip()
    print("stdin", line)
    action = argv[2] if len(argv) > 2 else ""
    if action == "raise":
        helper.fail(line)
    if action == "exit":
        sys.exit(int(argv[3]))
    if action == "exitmsg":
        sys.exit("fatal: " + line)
    if action == "interrupt":
        raise KeyboardInterrupt
    return 0


if __name__ == "__main__":
    main(sys.argv)
'''

HELPER = '''\
def greet(who):
    message = "hello " + who
    return message


def fail(text):
    reason = ValueError("bad input " + text)
    raise RuntimeError("could not go on") from reason
'''


@pytest.fixture
def app(tmp_path: Path) -> Path:
    write_tree(tmp_path, {"app.py": PROGRAM, "helper.py": HELPER})
    return tmp_path


def _both(app: Path, *args: str, input: str = "line in\n", out: Path | None = None,
          extra: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess[str], ...]:
    out = out or app / "out"
    plain = run([PY, "app.py", *args], app, input=input)
    ours = run(memscope_cmd("run", "-o", str(out), *extra, "app.py", *args), app, input=input)
    return plain, ours


def _names(capture_dir: Path) -> set[str]:
    names: set[str] = set()
    for path in capture_dir.rglob("*.memscope"):
        cap = read_capture(path)
        sites = {}
        for ev in cap.iter_events():
            if ev[0] == SITE:
                sites[ev[1]] = ev[5]
            elif ev[0] == BIND:
                names.add(sites.get(ev[2], "?"))
    return names


@pytest.mark.parametrize("args", [("bob",), ("bob", "raise"), ("bob", "exit", "3"),
                                  ("bob", "exit", "0"), ("bob", "exitmsg")])
def test_same_output_and_exit_status_as_python(app: Path, args: tuple[str, ...]) -> None:
    plain, ours = _both(app, *args)
    assert ours.returncode == plain.returncode
    assert ours.stdout == plain.stdout
    assert strip_memscope(ours.stderr) == plain.stderr
    assert "memscope: capture: " in ours.stderr
    assert {"greeting", "message", "argv"} <= _names(app / "out")


def test_traceback_is_pythons(app: Path) -> None:
    plain, ours = _both(app, "x", "raise")
    assert plain.returncode == 1
    assert "The above exception was the direct cause" in plain.stderr
    assert 'File "' + str(app / "helper.py") + '", line 8, in fail' in plain.stderr
    assert strip_memscope(ours.stderr) == plain.stderr
    assert "run.py" not in ours.stderr and "hook.py" not in ours.stderr


def test_keyboard_interrupt_ends_like_python(app: Path) -> None:
    plain, ours = _both(app, "x", "interrupt")
    assert plain.returncode == ours.returncode == -signal.SIGINT
    assert strip_memscope(ours.stderr) == plain.stderr
    assert "memscope: capture: " in ours.stderr


def test_module_mode(app: Path) -> None:
    write_tree(app, {"pkg/__init__.py": "", "pkg/__main__.py": "from pkg.tool import go\ngo()\n",
                     "pkg/tool.py": ("import sys\n"
                                     "def go():\n"
                                     "    count = len(sys.argv)\n"
                                     "    print('tool', sys.argv[1:], count, __name__)\n"
                                     "    print('main', sys.modules['__main__'].__name__)\n"
                                     "    raise SystemExit(count)\n"
                                     "if __name__ == '__main__':\n"
                                     "    go()\n")})
    for target in ("pkg", "pkg.tool"):
        plain = run([PY, "-m", target, "a", "-b"], app)
        ours = run(memscope_cmd("run", "-o", str(app / "o"), "-m", target, "a", "-b"), app)
        assert ours.returncode == plain.returncode == 3
        assert ours.stdout == plain.stdout
    assert "count" in _names(app / "o")
    missing_plain = run([PY, "-m", "no_such_mod"], app)
    missing = run(memscope_cmd("run", "-o", str(app / "o"), "-m", "no_such_mod"), app)
    assert missing.returncode == missing_plain.returncode == 1
    assert "No module named no_such_mod" in missing.stderr


def test_missing_script_is_like_python(app: Path) -> None:
    plain = run([PY, "nope.py"], app)
    ours = run(memscope_cmd("run", "-o", str(app / "o"), "nope.py"), app)
    assert ours.returncode == plain.returncode == 2
    assert ours.stderr == plain.stderr


def test_program_that_catches_every_exception(app: Path) -> None:
    write_tree(app, {"greedy.py": '''\
import sys
def risky(i):
    data = [i] * 100
    if i % 3 == 0:
        raise ValueError(i)
    if i % 3 == 1:
        sys.exit(i)
    raise KeyboardInterrupt
caught = 0
for i in range(9):
    try:
        risky(i)
    except:  # noqa: E722  catches SystemExit and KeyboardInterrupt too
        caught += 1
print("caught", caught)
'''})
    plain = run([PY, "greedy.py"], app)
    ours = run(memscope_cmd("run", "-o", str(app / "o"), "greedy.py"), app)
    assert plain.stdout == ours.stdout == "caught 9\n"
    assert ours.returncode == 0 and strip_memscope(ours.stderr) == plain.stderr == ""
    assert {"data", "caught", "i"} <= _names(app / "o")


def test_options_name_format_no_report(app: Path) -> None:
    res = run(memscope_cmd("run", "-o", str(app / "o"), "--name", "myrun", "--no-report",
                           "--mode", "full", "app.py"), app, input="\n")
    assert res.returncode == 0
    captures = list((app / "o" / "myrun").glob("myrun.*.memscope"))
    assert len(captures) == 1
    assert read_capture(captures[0]).info()
    assert "report" not in res.stderr
    bad = run(memscope_cmd("run", "--format", "pdf", "app.py"), app)
    assert bad.returncode == 2 and "unknown format 'pdf'" in bad.stderr
    none = run(memscope_cmd("run"), app)
    assert none.returncode == 2 and "expected a script" in none.stderr


def test_include_and_exclude(app: Path) -> None:
    write_tree(app, {"inc.py": ("import helper, humanize\n"
                                "print(humanize.naturalsize(10))\n"
                                "print(type(helper.__loader__).__name__, "
                                "type(humanize.__loader__).__name__)\n")})
    res = run(memscope_cmd("run", "-o", str(app / "o"), "--no-report", "--include", "humanize",
                           "--exclude", "helper", "inc.py"), app)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1] == "SourceFileLoader InstrumentingLoader"


def _wait_or_dump(proc: subprocess.Popen[str], what: str, timeout: float = 60) -> str:
    """Wait for ``proc`` to end; if it hangs, make faulthandler (PYTHONFAULTHANDLER=1)
    print every thread's stack and fail with it. Returns its stderr."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"memscope run did not end after {what}:\n{err[-8000:]}") from None
    return err


def _start(app: Path, script: str, *extra: str,
           env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``memscope run`` a script that prints 'ready' when it is."""
    proc = subprocess.Popen(memscope_cmd("run", "-o", str(app / "o"), *extra, script),
                            cwd=app, env=env or clean_env(PYTHONFAULTHANDLER="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line != "ready\n":
        proc.kill()
        raise AssertionError(f"{line!r}: {proc.communicate()[1][-4000:]}")
    return proc


def test_sigterm_writes_capture_and_dies_by_sigterm(app: Path) -> None:
    write_tree(app, {"sleepy.py": ("import time\n"
                                   "payload = bytearray(4096)\n"
                                   "print('ready', flush=True)\n"
                                   "time.sleep(60)\n")})
    proc = _start(app, "sleepy.py", "--no-report")
    proc.send_signal(signal.SIGTERM)
    err = _wait_or_dump(proc, "SIGTERM", timeout=50)  # below the sleep: a hang shows
    assert proc.returncode == -signal.SIGTERM
    assert "memscope: capture: " in err
    assert "payload" in _names(app / "o")


MASKS = '''\
import os, signal, time
def blocked(tid):
    with open(f"/proc/self/task/{tid}/status") as f:
        for line in f:
            if line.startswith("SigBlk:"):
                return int(line.split()[1], 16)
small = 0
for i in range(200):
    small = i  # a site that binds small ints only is sampled: the re-arm thread starts
deadline = time.monotonic() + 30
while len(os.listdir("/proc/self/task")) < 3 and time.monotonic() < deadline:
    time.sleep(0.01)
tids = sorted(int(t) for t in os.listdir("/proc/self/task"))
bits = 1 << (signal.SIGTERM - 1) | 1 << (signal.SIGINT - 1) | 1 << (signal.SIGUSR1 - 1)
print("threads", len(tids))
for tid in tids:
    mask = blocked(tid)
    print("main" if tid == os.getpid() else "other", mask & bits == bits, mask & bits == 0)
'''


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task")
def test_memscope_threads_leave_signals_to_the_main_thread(app: Path) -> None:
    """A signal sent to the process goes to one of its threads that does not block it;
    Python runs the handler in the main thread, but a blocking call there (the sleep
    above) is cut short only if the main thread took the signal. memscope's threads
    block every asynchronous signal, so the main thread takes them, as without memscope
    (CI once hung in the test above: the SIGTERM went to the monitor thread, which a
    tgkill to it reproduces every time)."""
    write_tree(app, {"masks.py": MASKS})
    res = run(memscope_cmd("run", "-o", str(app / "o"), "--no-report", "masks.py"), app)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert int(lines[0].split()[1]) >= 3, lines  # the monitor and the re-arm thread
    assert "main False True" in lines
    others = [ln for ln in lines[1:] if ln.startswith("other")]
    assert others and all(ln == "other True False" for ln in others), lines


SELF_TERM = """\
import os, signal, time
from memscope import _hooks, _monitor, _sink
payload = bytearray(4096)
{setup}
os.kill(os.getpid(), signal.SIGTERM)  # the handler runs at the next bytecode boundary
for _ in range(100000):
    pass
time.sleep(60)
"""

IN_FLUSH = """
sink = _hooks.get_sink()
real = sink.write
def write(events):  # the handler interrupts the main thread's flush, lock held
    sink.write = real  # once
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(100000):
        pass
    real(events)
sink.write = write
_hooks.flush()
"""


@pytest.mark.parametrize("setup", [
    # a census under way (its lock held by the main thread itself): the old handler
    # took an end census and waited for that lock forever
    "_monitor._census_lock.acquire()",
    # the main thread's own flush under way: the old handler waited forever for the
    # flush lock it held; now it finishes that flush itself (the process ends after)
    IN_FLUSH,
    # the flush lock left held by a flush an exception cut short
    "_sink._flush_lock.acquire()",
])
def test_sigterm_while_memscope_holds_its_locks(app: Path, setup: str) -> None:
    write_tree(app, {"selfterm.py": SELF_TERM.format(setup=setup)})
    proc = subprocess.Popen(memscope_cmd("run", "-o", str(app / "o"), "selfterm.py"), cwd=app,
                            env=clean_env(PYTHONFAULTHANDLER="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    err = _wait_or_dump(proc, "SIGTERM", timeout=50)
    assert proc.returncode == -signal.SIGTERM, err
    assert "reports: not written (stopped by SIGTERM); make them with: memscope report " in err
    (cap,) = (app / "o" / "selfterm").glob("selfterm.*.memscope")
    assert read_capture(cap).header.complete
    assert "payload" in _names(app / "o")  # the interrupted flush's batch too


def test_sigint_while_running(app: Path) -> None:
    write_tree(app, {"loop.py": ("import time\n"
                                 "ticks = 0\n"
                                 "print('ready', flush=True)\n"
                                 "while True:\n"
                                 "    ticks += 1\n"
                                 "    time.sleep(0.01)\n")})
    proc = subprocess.Popen(memscope_cmd("run", "-o", str(app / "o"), "--no-report", "loop.py"),
                            cwd=app, env=clean_env(PYTHONFAULTHANDLER="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # seen once in a full run: say where it hangs
        proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"memscope run did not end after SIGINT:\n{err[-8000:]}") from None
    assert proc.returncode == -signal.SIGINT
    assert "KeyboardInterrupt" in err and 'loop.py", line' in err
    assert "ticks" in _names(app / "o")


def test_memscope_package_does_not_import_libcst() -> None:
    code = ("import sys, memscope, memscope.cli, memscope.commands.run\n"
            "print('libcst' in sys.modules, 'memscope_instrument.transform' in sys.modules)")
    res = run([PY, "-c", code], Path.cwd())
    assert res.stdout.split() == ["False", "False"], res.stderr


# Kept off memscope run's start-up (docs/performance-history.md, "start-up"): click and what it
# imports (memscope run parses its own options), json (the children's settings are
# written without it), and the stdlib modules the runtime reaches through their C
# halves (_thread, _signal, _weakref, _collections) or does without (enum: the hot path
# uses kind numbers; sysconfig: memscope.sysdirs; array: it imports collections).
NOT_AT_STARTUP = ("click", "uuid", "datetime", "platform", "gettext", "difflib", "json",
                  "dataclasses", "inspect", "ast", "dis", "tokenize", "pathlib", "typing", "re",
                  "enum", "signal", "threading", "weakref", "collections", "contextlib",
                  "functools", "sysconfig", "array", "importlib.util",
                  "memscope.commands._group", "memscope.reporters", "libcst")


def test_startup_imports_stay_light(tmp_path: Path) -> None:
    """What ``memscope run`` has imported when the program's first line runs. The first
    run instruments the script (libcst); the second loads it from the cache, as every
    later run does, so the second is the one checked."""
    write_tree(tmp_path, {"probe.py": (
        "import sys\n"
        f"print(sorted(m for m in {NOT_AT_STARTUP!r} if m in sys.modules))\n"
    )})
    env = clean_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the instrumented-code cache must be written
    for _ in range(2):
        res = run(memscope_cmd("run", "-o", str(tmp_path / "o"), "--no-report", "probe.py"),
                  tmp_path, env=env)
        assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_finishing_without_reports_reads_no_capture(tmp_path: Path) -> None:
    """``--no-report``: this run's own capture is known without reading it, and earlier
    runs' captures in the same folder are told apart by their age, so the capture reader
    (and the dataclasses, inspect and ast it imports: 60 ms) is never loaded."""
    write_tree(tmp_path, {"empty.py": ""})
    env = clean_env()
    for _ in range(2):  # the second finds the first's capture in its folder
        res = run([PY, "-X", "importtime", "-m", "memscope", "run", "-o", str(tmp_path / "o"),
                   "--no-report", "empty.py"], tmp_path, env=env)
        assert res.returncode == 0, res.stderr
        assert "memscope: capture:" in res.stderr
        assert "memscope.capture.reader" not in res.stderr
        for old in (tmp_path / "o" / "empty").iterdir():  # an earlier run's, a minute ago
            os.utime(old, (time.time() - 60, time.time() - 60))


def test_run_command_line_grammar(app: Path) -> None:
    """Options up to the script or ``-m MODULE``, as python: the rest is the program's."""
    write_tree(app, {"show.py": "import sys\nprint(sys.argv[1:])\n",
                     "pkg/__init__.py": "", "pkg/__main__.py": "import sys\nprint(sys.argv[1:])\n"})
    o = str(app / "o")
    res = run(memscope_cmd("run", "-o", o, "--no-report", "show.py", "--mode", "x", "-m", "--"),
              app)
    assert res.returncode == 0 and res.stdout == "['--mode', 'x', '-m', '--']\n", res.stderr
    res = run(memscope_cmd("run", f"-o{o}", "--no-report", "-mpkg", "--no-report", "-h"), app)
    assert res.returncode == 0 and res.stdout == "['--no-report', '-h']\n", res.stderr
    res = run(memscope_cmd("run", f"--output={o}", "--no-report", "--", "show.py", "a"), app)
    assert res.returncode == 0 and res.stdout == "['a']\n", res.stderr
    for args, error in [(("--fomat", "html", "show.py"), "No such option: --fomat"),
                        (("--mode", "turbo", "show.py"), "'turbo' is not one of 'fast', 'full'"),
                        (("--no-report=1", "show.py"), "'--no-report' does not take a value"),
                        (("--name",), "'--name' requires an argument"),
                        (("-m",), "'-m' requires an argument")]:
        bad = run(memscope_cmd("run", *args), app)
        assert bad.returncode == 2 and error in bad.stderr, (args, bad.stderr)
        assert "Try 'memscope run --help' for help." in bad.stderr and bad.stdout == ""


def test_main_help_lists_run() -> None:
    res = run(memscope_cmd("--help"), Path.cwd())
    assert res.returncode == 0 and "  run " in res.stdout and "  report " in res.stdout


def test_help_lists_options() -> None:
    res = run(memscope_cmd("run", "--help"), Path.cwd())
    for opt in ("--include", "--exclude", "--mode", "--output", "--name", "--no-report",
                "--format", "--no-sampling", "-m MODULE"):
        assert opt in res.stdout
    assert os.path.exists(sys.executable)


HOT = '''\
def main():
    total = 0
    for i in range(20000):
        step = i % 7
        total += step
    print(total)


main()
'''


def _binds_of(capture_dir: Path, var: str) -> int:
    (path,) = capture_dir.glob("*.memscope")
    cap = read_capture(path)
    sites = {e[1] for e in cap.events() if e[0] == SITE and e[5] == var}
    return sum(1 for e in cap.events() if e[0] == BIND and e[2] in sites)


def test_sampling_is_on_by_default_and_no_sampling_records_every_bind(app: Path) -> None:
    write_tree(app, {"hot.py": HOT})
    expected = str(sum(i % 7 for i in range(20000)))
    for flag, out in (([], "a"), (["--no-sampling"], "b")):
        res = run(memscope_cmd("run", "-o", str(app / out), "--no-report", *flag, "hot.py"),
                  app)
        assert res.returncode == 0 and res.stdout.strip() == expected, res.stderr
    sampled, every = _binds_of(app / "a" / "hot", "step"), _binds_of(app / "b" / "hot", "step")
    assert every == 20000
    assert 0 < sampled < 20000 // 4
    env = clean_env(MEMSCOPE_SAMPLING="0")
    res = run(memscope_cmd("run", "-o", str(app / "c"), "--no-report", "hot.py"), app, env=env)
    assert res.returncode == 0 and _binds_of(app / "c" / "hot", "step") == 20000


def test_reports_of_a_sampled_capture_say_it_was_sampled(app: Path) -> None:
    """A capture's meta knows nothing of sampling; the reports read the SAMPLED rows."""
    write_tree(app, {"hot.py": HOT})
    for flag, out in (([], "a"), (["--no-sampling"], "b")):
        res = run(memscope_cmd("run", "-o", str(app / out), *flag, "--format", "html",
                               "hot.py"), app)
        assert res.returncode == 0, res.stderr
    sampled_page = (app / "a" / "hot" / "hot_dashboard.html").read_text()
    full_page = (app / "b" / "hot" / "hot_dashboard.html").read_text()
    assert "sites sampled, at least" in sampled_page
    assert "sites sampled" not in full_page
    (cap,) = (app / "a" / "hot").glob("*.memscope")
    summary = run(memscope_cmd("summary", str(cap), "--width", "160"), app)
    assert "binds sampled out at" in summary.stdout, summary.stdout
    (cap_b,) = (app / "b" / "hot").glob("*.memscope")
    summary_b = run(memscope_cmd("summary", str(cap_b), "--width", "160"), app)
    assert "sampled out" not in summary_b.stdout


def test_an_unreadable_capture_of_the_run_is_left_out_of_the_reports(tmp_path: Path) -> None:
    """One process's capture that cannot be read (a child killed before it wrote its
    header; simulated here by an empty file) is named on stderr and left out; the
    reports of the others are still written."""
    write_tree(tmp_path, {"prog.py": (
        "import os, sys\n"
        "held = bytearray(4096)\n"
        "folder = os.path.join(sys.argv[1], 'prog')\n"
        "open(os.path.join(folder, 'prog.999999999.memscope'), 'wb').close()\n"
    )})
    out = tmp_path / "o"
    res = run(memscope_cmd("run", "-o", str(out), "--format", "json", "prog.py", str(out)),
              tmp_path)
    assert res.returncode == 0, res.stderr
    assert "capture left out of the reports: " in res.stderr
    assert "prog.999999999.memscope: empty file" in res.stderr
    assert "json report: " in res.stderr and "not written" not in res.stderr
    assert (out / "prog" / "prog_memory_analysis.json").exists()


SERVICE = '''\
import time
table = {i: bytearray(100) for i in range(20000)}
print("ready", flush=True)
while True:
    time.sleep(0.01)
'''


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_by_signal_closes_the_capture_and_leaves_the_reports(app: Path, sig: int) -> None:
    """Stopped by Ctrl-C or SIGTERM, memscope run closes the capture and ends: no end
    census, no report to wait for; it prints the ``memscope report`` command, which
    makes them. (The exit times are in docs/performance.md.)"""
    write_tree(app, {"service.py": SERVICE})
    proc = _start(app, "service.py", "--format", "html,json")
    proc.send_signal(sig)
    err = _wait_or_dump(proc, signal.Signals(sig).name)
    assert proc.returncode == -sig, err
    folder = app / "o" / "service"
    assert not list(folder.glob("*.html")) and not list(folder.glob("*.json"))
    (line,) = [ln for ln in err.splitlines() if "make them with: " in ln]
    assert f"reports: not written (stopped by {signal.Signals(sig).name})" in line
    command = line.split("make them with: ", 1)[1].split()
    assert command[:2] == ["memscope", "report"] and command[-2:] == ["-f", "html,json"]
    (cap,) = folder.glob("service.*.memscope")
    capture = read_capture(cap)
    assert capture.header.complete
    assert not [e for e in capture.events() if e[0] == CENSUS and e[3] == "end"]
    res = run(memscope_cmd(*command[1:]), app)
    assert res.returncode == 0, res.stderr
    assert (folder / "service_dashboard.html").exists()
    assert "table" in _names(app / "o")


SLOW = '''\
import time
print("ready", flush=True)
for i in range(10**6):
    slow_value = bytearray(1000 + i)
    time.sleep(0.05)
'''


def _binds_so_far(folder: Path, var: str) -> int:
    """Binds of ``var`` in the captures of ``folder`` as they are on disk now."""
    n = 0
    for path in folder.glob("*.memscope"):
        sites: set[int] = set()
        for ev in read_capture(path).events():
            if ev[0] == SITE and ev[5] == var:
                sites.add(ev[1])
            elif ev[0] == BIND and ev[2] in sites:
                n += 1
    return n


@pytest.mark.parametrize("flush_seconds", [None, "0.2"])
def test_a_slow_program_killed_by_sigkill_keeps_what_it_recorded(
        app: Path, flush_seconds: str | None) -> None:
    """A program that records a few events a second never fills the runtime's buffer
    (8,192 events): the monitor thread flushes it by time too (a second, or
    MEMSCOPE_FLUSH_SECONDS), so a SIGKILL loses at most that much."""
    write_tree(app, {"slow.py": SLOW})
    extra = {"MEMSCOPE_FLUSH_SECONDS": flush_seconds} if flush_seconds else {}
    proc = _start(app, "slow.py", "--no-report",
                  env=clean_env(PYTHONFAULTHANDLER="1", **extra))
    folder = app / "o" / "slow"
    deadline = time.monotonic() + 60
    seen = 0
    while time.monotonic() < deadline and seen < 3:
        time.sleep(0.1)  # polling the file: the event waited for is on disk
        seen = _binds_so_far(folder, "slow_value")
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert seen >= 3
    (cap,) = folder.glob("slow.*.memscope")
    assert not read_capture(cap).header.complete
    assert _binds_so_far(folder, "slow_value") >= seen


def test_flush_seconds_setting() -> None:
    from memscope.config import Config, ConfigError

    assert Config().flush_seconds == 1.0
    assert Config.from_env({"MEMSCOPE_FLUSH_SECONDS": "0.25"}).flush_seconds == 0.25
    for bad in ("0", "-1", "nan", "x"):
        with pytest.raises(ConfigError, match=r"MEMSCOPE_FLUSH_SECONDS|flush_seconds"):
            Config.from_env({"MEMSCOPE_FLUSH_SECONDS": bad})


FILLER = '''\
values = []
for i in range(300000):
    item = i * 7919 % 1000003
    values.append(item)
print("done", len(values), sum(values))
'''


def test_a_full_disk_is_said_once_and_counted_in_the_capture(app: Path) -> None:
    """The capture's file may not grow past 256 KiB (RLIMIT_FSIZE: a write past it
    fails, as on a full disk): the program runs to its end as python's does, the
    failure is said once on stderr, and the capture counts the events it lost."""
    import resource

    write_tree(app, {"filler.py": FILLER})
    plain = run([PY, "filler.py"], app)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, 256 << 10))

    res = subprocess.run(memscope_cmd("run", "-o", str(app / "o"), "--no-report",
                                      "--no-sampling", "filler.py"),
                         cwd=app, env=clean_env(), capture_output=True, text=True,
                         timeout=300, preexec_fn=limit)
    assert res.returncode == 0 and res.stdout == plain.stdout, res.stderr
    assert res.stderr.count("memscope: writing the capture") == 1, res.stderr
    assert "File too large" in res.stderr
    (cap,) = (app / "o" / "filler").glob("filler.*.memscope")
    assert cap.stat().st_size <= 256 << 10
    capture = read_capture(cap)
    assert capture.header.dropped > 100_000  # most of the 300,000 binds
    errors = [e for e in capture.events() if e[0] == ERROR and e[2] == "capture"]
    assert errors and f"{capture.header.dropped} events dropped" in errors[0][3]


ENDING = '''\
def work(n):
    rows = []
    for i in range(n):
        row = {"id": i, "name": f"item-{i}", "tags": [i, i + 1]}
        rows.append(row)
    return rows


table = work(200_000)
print("done", flush=True)
'''


def test_ctrl_c_while_the_reports_are_written_stops_at_once(app: Path) -> None:
    """The program ends; Ctrl-C while memscope run finishes (its end census, its
    reports: seconds for this heap) stops it as Ctrl-C stops python: the capture is
    closed, the reports are left to the printed command, the process ends by SIGINT,
    and no traceback of memscope's is printed."""
    write_tree(app, {"ending.py": ENDING})
    proc = subprocess.Popen(memscope_cmd("run", "-o", str(app / "o"), "--format", "html,json",
                                         "ending.py"),
                            cwd=app, env=clean_env(PYTHONFAULTHANDLER="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "done\n"
    proc.send_signal(signal.SIGINT)
    err = _wait_or_dump(proc, "SIGINT")
    assert proc.returncode == -signal.SIGINT, err
    assert "make them with: memscope report " in err, err
    # (the signal may also land in the program's last line: then python's traceback of
    # the program's KeyboardInterrupt, as without memscope; never one of memscope's)
    assert "Exception ignored" not in err and f"{os.sep}memscope{os.sep}" not in err, err
    (cap,) = (app / "o" / "ending").glob("ending.*.memscope")
    assert read_capture(cap).header.complete
    assert not list((app / "o" / "ending").glob("*.html"))


def test_default_outputs_are_the_capture_the_dashboard_and_the_svgs(app: Path) -> None:
    """No JSON unless asked for (issue 17: 13 MB of JSON from a 286 KB capture)."""
    res = run(memscope_cmd("run", "-o", str(app / "o"), "app.py", "bob"), app, input="\n")
    assert res.returncode == 0, res.stderr
    names = {p.name.replace(p.name.split(".")[1], "PID") if p.suffix == ".memscope"
             else p.name for p in (app / "o" / "app").iterdir()}
    assert names == {"app.PID.memscope", "app_dashboard.html", "app_memory_analysis.svg",
                     "app_lifecycle_timeline.svg"}
    said = [line for line in res.stderr.splitlines() if line.startswith("memscope:")]
    assert [line.split(":")[1].strip() for line in said] == [
        "capture", "html report", "svg report", "timeline report"]


def test_a_failing_program_says_its_exit_status_before_the_report_lines(app: Path) -> None:
    for args, status in ((("bob", "exit", "3"), 3), (("bob", "raise"), 1)):
        res = run(memscope_cmd("run", "-o", str(app / "o"), "app.py", *args), app, input="\n")
        assert res.returncode == status
        said = [line for line in res.stderr.splitlines() if line.startswith("memscope:")]
        assert said[0] == f"memscope: the program exited with status {status}", res.stderr
        assert any("html report" in line for line in said[1:])
    ok = run(memscope_cmd("run", "-o", str(app / "o"), "app.py", "bob"), app, input="\n")
    assert ok.returncode == 0 and "exited with status" not in ok.stderr


def test_a_script_with_a_syntax_error_looks_as_python_shows_it(app: Path) -> None:
    write_tree(app, {"bad.py": "x = 1\ny = [1, 2\nprint(x)\n"})
    plain = run([PY, "bad.py"], app)
    ours = run(memscope_cmd("run", "-o", str(app / "o"), "bad.py"), app)
    assert plain.returncode == ours.returncode == 1
    assert "SyntaxError" in plain.stderr
    assert strip_memscope(ours.stderr) == plain.stderr
    assert "Traceback" not in ours.stderr and "During handling" not in ours.stderr


def test_an_output_folder_that_cannot_be_made_is_one_line(app: Path) -> None:
    (app / "file").write_text("not a folder")
    res = run(memscope_cmd("run", "-o", str(app / "file" / "o"), "app.py", "bob"), app,
              input="\n")
    assert res.returncode == 1
    assert res.stderr.splitlines() == [
        f"memscope: cannot create the output folder {app / 'file' / 'o'}: Not a directory"]
    assert res.stdout == ""  # the program did not run


def test_run_and_report_accept_the_same_formats() -> None:
    from memscope import formats
    from memscope.commands import run as run_cmd
    from memscope.reporters import parse_formats

    for name in formats.FORMATS:
        assert run_cmd.parse_formats(name) == [name]
        assert parse_formats(name) == [name]
    assert run_cmd.parse_formats("all") == parse_formats("all") == list(formats.FORMATS)
