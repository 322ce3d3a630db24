"""The public API: init/Config/environment, track_var's name recovery, track_scope,
fork isolation of captures, and the examples a newcomer runs first."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import memscope
from memscope import Config, ConfigError
from memscope.explicit import recover_name

from .conftest import Recorder

ROOT = Path(__file__).resolve().parent.parent


class Holder:
    def __init__(self) -> None:
        self.cache = {"k": list(range(10))}
        memscope.track_var(self.cache)


def names(rec: Recorder) -> list[str]:
    return [b.var for b in rec.analysis().all_bindings()]


def test_track_var_recovers_the_argument_text(rec: Recorder) -> None:
    numbers_vec = [1, 2, 3]
    memscope.track_var(numbers_vec)
    Holder()
    table = {"a": [1]}
    memscope.track_var(table["a"])
    memscope.track_var(
        numbers_vec  # a call spread over lines
    )
    got = names(rec)
    assert got == ["numbers_vec", "self.cache", 'table["a"]', "numbers_vec"]


def test_track_var_returns_none_and_records_scope_and_line(rec: Recorder) -> None:
    value = bytearray(100)
    line = sys._getframe().f_lineno + 1
    assert memscope.track_var(value) is None
    b = rec.analysis().all_bindings()[-1]
    assert (b.var, b.line, b.kind, b.type) == ("value", line, "explicit", "bytearray")
    assert b.scope == "test_track_var_returns_none_and_records_scope_and_line"
    assert b.file == __file__


def test_track_var_without_source_falls_back_clearly(rec: Recorder) -> None:
    exec("import memscope\nthing = [1]\nmemscope.track_var(thing)\n", {})
    assert names(rec)[-1] == "<expr at <string>:3>"


def test_recover_name_on_a_line_with_two_calls_uses_the_exact_position() -> None:
    def track_var(x: Any) -> tuple[str, int, int]:
        return recover_name(sys._getframe(1))

    first, second = track_var(len), track_var(print)
    assert (first[0], second[0]) == ("len", "print")


def test_track_scope_ends_its_bindings(rec: Recorder) -> None:
    with memscope.track_scope("load"):
        rows = [list(range(100)) for _ in range(10)]
        memscope.track_var(rows)

    @memscope.track_scope("decorated")
    def work() -> int:
        buf = bytes(500)
        memscope.track_var(buf)
        return len(buf)

    assert work() == 500
    an = rec.analysis()
    got = {b.var: (b.scope, b.end) for b in an.all_bindings()}
    assert got["rows"] == ("load", "scope_exit")
    assert got["buf"] == ("decorated", "scope_exit")
    assert an.stats()["by_scope"][f"{__name__}:load"]["peak_bytes"] > 0


async def _coro() -> int:
    return 3


def test_track_scope_decorates_coroutines(rec: Recorder) -> None:
    import asyncio

    wrapped = memscope.track_scope("c")(_coro)
    assert asyncio.iscoroutinefunction(wrapped)
    assert asyncio.run(wrapped()) == 3


def test_track_scope_rejects_a_bad_name() -> None:
    with pytest.raises(TypeError):
        memscope.track_scope("")


def test_ignore_marks_and_returns_the_function() -> None:
    def f() -> int:
        return 1

    assert memscope.ignore(f) is f and f.__memscope_ignore__ is True  # type: ignore[attr-defined]


def test_config_from_environment_and_arguments() -> None:
    env = {"MEMSCOPE_MODE": "full", "MEMSCOPE_FLUSH_EVENTS": "100", "MEMSCOPE_CAPTURE": "off"}
    cfg = Config.from_env(env, name="x")
    assert (cfg.mode, cfg.flush_events, cfg.capture, cfg.name) == ("full", 100, False, "x")
    assert Config.from_env({}).mode == "fast"
    assert cfg.with_(mode="fast", name=None).name == "x"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MEMSCOPE_MODE": "turbo"}, "mode='turbo'"),
        ({"MEMSCOPE_FLUSH_EVENTS": "many"}, "MEMSCOPE_FLUSH_EVENTS='many'"),
        ({"MEMSCOPE_CAPTURE": "maybe"}, "MEMSCOPE_CAPTURE='maybe'"),
        ({"MEMSCOPE_FLUSH_EVENTS": "0"}, "flush_events=0"),
    ],
)
def test_bad_settings_get_a_clear_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_env(env)


def run_py(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, **env},
    )


def test_fork_child_records_into_its_own_capture(tmp_path: Path) -> None:
    proc = run_py(
        """
        import os, memscope
        from memscope.capture.reader import read_capture
        t = memscope.init(mode="fast", output_dir="out", name="forky")
        with memscope.track_scope("parent_work"):
            parent_list = [1] * 10
            memscope.track_var(parent_list)
        pid = os.fork()
        if pid == 0:
            with memscope.track_scope("child_work"):
                child_list = [2] * 10
                memscope.track_var(child_list)
            memscope.get_global_tracker().close()
            os._exit(0)
        os.waitpid(pid, 0)
        t.close()
        for name in sorted(os.listdir("out/forky")):
            cap = read_capture(os.path.join("out/forky", name))
            vars_ = sorted({e[5] for e in cap.events() if e[0] == 2})
            owner = "parent" if name == f"forky.{os.getpid()}.memscope" else "child"
            print(owner, vars_)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = sorted(proc.stdout.splitlines())
    assert lines == ["child ['child_list', 'parent_list']", "parent ['parent_list']"]


@pytest.mark.parametrize(
    ("example", "args", "expect"),
    [
        ("basic_usage.py", [], ["numbers_vec", "greeting"]),
        ("comprehensive_demo.py", ["--mode", "full"], ["buffer", "small_vec", "boxed_data"]),
        ("threads_demo.py", [], ["chunk", "squares"]),
        ("async_demo.py", [], ["payload", "parsed"]),
        ("leak_demo.py", ["--mode", "full"], ["report", "listener"]),
        ("numpy_demo.py", ["--mode", "full"], ["matrix", "row_view", "c_buffer"]),
    ],
)
def test_examples_run_and_name_their_variables(
    example: str, args: list[str], expect: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "reports"
    cmd = [sys.executable, "-m", "memscope", "run", *args, "--output", str(out), "--format",
           "json", str(ROOT / "examples" / example)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    found = list(out.rglob("*_memory_analysis.json"))
    assert found, proc.stderr
    text = found[0].read_text()
    for var in expect:
        assert f'"{var}"' in text, var
