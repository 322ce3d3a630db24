"""Every command the README shows runs as written (issue 17: its ``memscope report -f
timeline`` was rejected). The commands are read from the README itself: its code
blocks, and each inline ``memscope ...`` command whose arguments are placeholders
(CAPTURE, script.py, -m pkg, A B, src/) filled in with a small real run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from memscope import formats

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SCRIPT = "import sys\nkeep = [bytes(1000) for _ in range(100)]\nprint('ok', sys.argv[1:])\n"
PKG_MAIN = "data = list(range(1000))\nprint('pkg ok')\n"


def _blocks(*langs: str) -> list[str]:
    """The fenced code blocks whose language is one of ``langs`` ("" for none)."""
    out: list[str] = []
    lang: str | None = None
    lines: list[str] = []
    for line in README.splitlines():
        if line.startswith("```"):
            if lang is None:
                lang, lines = line[3:].strip(), []
            else:
                if lang in langs:
                    out.append("\n".join(lines) + "\n")
                lang = None
        elif lang is not None:
            lines.append(line)
    return out


def _commands() -> list[str]:
    """Shell commands: the code blocks' lines (split at ``&&``, installs left to CI,
    which runs the README's test command) and the inline ``memscope ...`` commands
    that take arguments (a bare ``memscope run`` or ``-f`` names the command, not a
    command line)."""
    out: list[str] = []
    for block in _blocks("bash", ""):
        for line in block.splitlines():
            line = line.split("  #")[0].strip().removeprefix("$ ")
            if not line or line.startswith("#"):
                continue
            for part in line.split("&&"):
                part = part.strip().replace(".venv/bin/", "")
                if part.startswith(("memscope", "bash ")):
                    out.append(part)
    for code in re.findall(r"`(memscope(?:-instrument)? [^`]+)`", README):
        words = code.split()
        if len(words) > 2 and not words[-1].startswith("-"):
            out.append(code)
    return list(dict.fromkeys(out))


COMMANDS = _commands()


def test_the_readme_commands_were_found() -> None:
    joined = "\n".join(COMMANDS)
    for expected in ("memscope run examples/comprehensive_demo.py", "memscope report CAPTURE",
                     "memscope summary", "memscope diff A B", "-f timeline",
                     "memscope-instrument src/ -o build/", "bash scripts/test"):
        assert expected in joined, COMMANDS


def test_the_test_command_is_what_ci_runs() -> None:
    """The README's test command installs what the tests need and .ci/run calls it."""
    assert "bash scripts/test" in COMMANDS
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^bash scripts/test\b", ci, re.M)
    script = (ROOT / "scripts" / "test").read_text()
    assert "apt-get install" in script and "chromium" in script
    assert 'pip install -q -e ".[test]"' in script and "python -m pytest" in script


def test_the_readme_lists_every_format() -> None:
    table = re.findall(r"^\| `(\w+)` \|", README, re.M)
    assert [f for f in table if f in formats.FORMATS] == list(formats.FORMATS)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("readme")
    (d / "script.py").write_text(SCRIPT)
    (d / "pkg").mkdir()
    (d / "pkg" / "__init__.py").write_text("")
    (d / "pkg" / "__main__.py").write_text(PKG_MAIN)
    (d / "src").mkdir()
    (d / "src" / "mod.py").write_text("def f():\n    x = [1, 2]\n    return x\n")
    return d


def _argv(command: str, work: Path, captures: list[Path]) -> list[str]:
    words = shlex.split(command.replace("[--mode full]", "--mode full"))
    fill = {"CAPTURE": str(captures[0]), "A": str(captures[0]), "B": str(captures[-1]),
            "args...": "one", "pkg": "pkg"}
    words = [fill.get(w, w) for w in words]
    if words[0] == "memscope-instrument":
        return [sys.executable, "-m", "memscope_instrument.cli", *words[1:]]
    if words[:2] == ["memscope", "summary"] and len(words) > 2 and not Path(words[2]).exists():
        words[2] = str(captures[0])  # the README's example path, from its own run
    return [sys.executable, "-m", "memscope", *words[1:]]


def test_the_readme_python_example_runs(work: Path) -> None:
    (block,) = _blocks("python")
    (work / "example.py").write_text(block)
    res = subprocess.run([sys.executable, "example.py"], cwd=work, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[1] == "numbers_vec"
    assert (work / "MemoryAnalysis" / "snapshot" / "snapshot_memory_analysis.json").exists()
    assert list((work / "MemoryAnalysis").rglob("graph.svg"))


def test_every_readme_command_runs(work: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True,
                              timeout=300)

    first = run([sys.executable, "-m", "memscope", "run", "script.py", "x"])
    assert first.returncode == 0, first.stderr
    second = run([sys.executable, "-m", "memscope", "run", "script.py", "y"])
    assert second.returncode == 0, second.stderr
    captures = sorted((work / "MemoryAnalysis" / "script").glob("*.memscope"))
    assert len(captures) == 2
    ran = 0
    for command in COMMANDS:
        if command.startswith("bash "):
            continue  # the test command: CI runs it (test_the_test_command_is_what_ci_runs)
        argv = _argv(command, work, captures)
        if "examples/" in command:
            argv = [str(ROOT / w) if w.startswith("examples/") else w for w in argv]
        res = run(argv)
        assert res.returncode == 0, f"{command}\n{res.stdout}\n{res.stderr}"
        assert "Traceback" not in res.stderr, f"{command}\n{res.stderr}"
        ran += 1
    assert ran >= 8
