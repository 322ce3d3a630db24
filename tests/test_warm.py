"""Instrumenting a package ahead of its first run (issue 19, cold start): ``memscope
warm PKG`` and ``memscope run --include PKG``'s worker processes fill the same cache the
import hook reads, without importing the package early."""

from __future__ import annotations

import os
from pathlib import Path

from tests.hook_helpers import PY, ROOT, clean_env, memscope_cmd, run, write_tree

MODULES = 10  # more than warm.WARM_AT


def _package(base: Path, name: str = "wpkg") -> Path:
    files = {f"{name}/__init__.py": "print('imported', __name__)\nfrom . import m0\n",
             f"{name}/sub/__init__.py": "",
             f"{name}/sub/deep.py": "def f(x):\n    y = [x] * 3\n    return y\n",
             "main.py": f"import {name}, {name}.sub.deep\n"
                        f"print({name}.m0.g(2), {name}.sub.deep.f(1))\n"}
    for i in range(MODULES - 3):  # and __init__, sub/__init__, sub/deep
        files[f"{name}/m{i}.py"] = f"def g(v):\n    total = v + {i}\n    return total\n"
    files[f"{name}/not-a-module.py"] = "this is not python\n"
    write_tree(base, files)
    return base


def _env(base: Path, **extra: str) -> dict[str, str]:
    env = clean_env(**extra)
    env["PYTHONPATH"] = f"{base}{os.pathsep}{ROOT}"
    if "PYTHONDONTWRITEBYTECODE" not in extra:
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # the cache is written
    return env


HOOK_STATS = ("from memscope_instrument import hook\n"
              "hook.install_import_hook(['wpkg'], start=False)\n"
              "import importlib, wpkg, wpkg.sub.deep\n"
              f"for i in range({MODULES - 3}):\n"
              "    importlib.import_module(f'wpkg.m{i}')\n"
              "print(hook.stats['compiled'], hook.stats['cache_hits'])\n")


def test_warm_fills_the_cache_the_hook_reads(tmp_path: Path) -> None:
    env = _env(_package(tmp_path))
    res = run(memscope_cmd("warm", "wpkg", "-j", "2"), tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert f"{MODULES} modules" in res.stderr and f"{MODULES} instrumented" in res.stderr
    assert "imported" not in res.stdout  # the package was not run
    again = run(memscope_cmd("warm", "wpkg"), tmp_path, env=env)
    assert again.returncode == 0 and f"{MODULES} already warm" in again.stderr, again.stderr
    hook = run([PY, "-c", HOOK_STATS], tmp_path, env=env)
    assert hook.returncode == 0, hook.stderr
    compiled, hits = hook.stdout.splitlines()[-1].split()
    assert (compiled, hits) == ("0", str(MODULES))


def test_warm_names_what_it_cannot_do(tmp_path: Path) -> None:
    env = _env(_package(tmp_path))
    (tmp_path / "wpkg" / "broken.py").write_text("def f(:\n")
    res = run(memscope_cmd("warm", "wpkg", "-j", "1"), tmp_path, env=env)
    assert res.returncode == 1
    assert "not instrumented:" in res.stderr and "broken.py: does not compile" in res.stderr
    assert "Traceback" not in res.stderr
    missing = run(memscope_cmd("warm", "no_such_package_here"), tmp_path, env=env)
    assert missing.returncode == 2
    assert "no_such_package_here: no module or package of that name" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_memscope_run_instruments_a_cold_package_ahead_once(tmp_path: Path) -> None:
    env = _env(_package(tmp_path))
    cmd = memscope_cmd("run", "--no-report", "-o", str(tmp_path / "o"), "--include", "wpkg",
                       "main.py")
    first = run(cmd, tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert f"instrumenting {MODULES} modules of wpkg" in first.stderr
    # the package ran once, as the program imported it (not while it was planned)
    assert first.stdout.splitlines() == ["imported wpkg", "2 [1, 1, 1]"]
    second = run(cmd, tmp_path, env=env)
    assert second.returncode == 0, second.stderr
    assert "instrumenting" not in second.stderr
    assert second.stdout == first.stdout


def test_memscope_run_leaves_the_cache_alone_without_bytecode_writing(tmp_path: Path) -> None:
    env = _env(_package(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    res = run(memscope_cmd("run", "--no-report", "-o", str(tmp_path / "o"), "--include",
                           "wpkg", "main.py"), tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert "instrumenting" not in res.stderr
    assert not list(tmp_path.rglob("*.memscope-*.pyc"))
