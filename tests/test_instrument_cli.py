"""The ``memscope-instrument`` command: mirroring, bytes in/bytes out, errors, cache,
--diff, --check, --in-place, parallel jobs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from memscope_instrument.cli import main
from memscope_instrument.transform import ALREADY_INSTRUMENTED_MARKER

ROOT = Path(__file__).resolve().parent.parent


def make_tree(tmp: Path) -> Path:
    src = tmp / "src" / "pkg"
    (src / "sub").mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "a.py").write_text("x = 1\nprint('a', x)\n")
    (src / "sub" / "data.txt").write_bytes(b"\x00\x01data")
    (src / "sub" / "b.py").write_bytes(b"\xef\xbb\xbfy = 2\r\nif y:\r\n\tprint('b', y)\r\n")
    (src / "sub" / "latin.py").write_bytes(
        b"# -*- coding: latin-1 -*-\nname = '\xe9t\xe9'\nprint(len(name))\n")
    return src


def invoke(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.output


def test_mirror_copy_and_bytes(tmp_path: Path) -> None:
    src = make_tree(tmp_path)
    out = tmp_path / "out"
    code, output = invoke(str(src), "-o", str(out), "--jobs", "1")
    assert code == 0, output
    assert "4 files" in output and "0 failed" in output
    assert (out / "pkg" / "sub" / "data.txt").read_bytes() == b"\x00\x01data"
    b = (out / "pkg" / "sub" / "b.py").read_bytes()
    assert b.startswith(b"\xef\xbb\xbf") and b"\r\n" in b and b"\n" not in b.replace(b"\r\n", b"")
    assert b"\tprint('b', y)" in b
    latin = (out / "pkg" / "sub" / "latin.py").read_bytes()
    assert latin.startswith(b"# -*- coding: latin-1 -*-\n") and b"'\xe9t\xe9'" in latin
    # the instrumented tree runs with identical output
    for rel in ("a.py", "sub/b.py", "sub/latin.py"):
        plain = subprocess.run([sys.executable, str(src / rel)], capture_output=True)
        inst = subprocess.run([sys.executable, str(out / "pkg" / rel)], capture_output=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert (inst.returncode, inst.stdout, inst.stderr) == (
            plain.returncode, plain.stdout, plain.stderr)
    assert str(src / "a.py") in (out / "pkg" / "a.py").read_text()  # original path recorded


def test_incremental_and_idempotent(tmp_path: Path) -> None:
    src = make_tree(tmp_path)
    out = tmp_path / "out"
    assert invoke(str(src), "-o", str(out), "-j", "1")[0] == 0
    code, output = invoke(str(src), "-o", str(out), "-j", "1")
    assert code == 0 and "4 cached" in output
    (src / "a.py").write_text("x = 2\nprint('a', x)\n")
    code, output = invoke(str(src), "-o", str(out), "-j", "1")
    assert "3 cached" in output and "x = 2" in (out / "pkg" / "a.py").read_text()
    # instrumenting the instrumented tree changes nothing
    once = (out / "pkg" / "a.py").read_text()
    code, output = invoke(str(out / "pkg"), "--check")
    assert code == 0, output
    assert once.count(ALREADY_INSTRUMENTED_MARKER) == 1


def test_errors_are_located_and_tree_still_done(tmp_path: Path) -> None:
    src = make_tree(tmp_path)
    (src / "bad.py").write_text("x = 1\ndef f(:\n")
    (src / "undecodable.py").write_bytes(b"x = '\xff\xfe'\n")
    (src / "loop").symlink_to(src)  # a directory symlink back to an ancestor
    out = tmp_path / "out"
    code, output = invoke(str(src), "-o", str(out), "-j", "1")
    assert code == 1
    assert f"{src / 'bad.py'}:2:" in output
    assert "undecodable.py:1:" in output and "decode" in output
    assert "symlink loop" in output
    assert (out / "pkg" / "a.py").exists()  # the rest of the tree is done
    assert (out / "pkg" / "bad.py").read_text() == "x = 1\ndef f(:\n"  # copied unchanged
    out2 = tmp_path / "out2"
    invoke(str(src), "-o", str(out2), "-j", "1", "--on-error", "skip")
    assert not (out2 / "pkg" / "bad.py").exists() and (out2 / "pkg" / "a.py").exists()


def test_unreadable_file(tmp_path: Path) -> None:
    from memscope_instrument import tree
    from memscope_instrument.transform import Options

    src = make_tree(tmp_path)
    items = tree.plan([src], tmp_path / "out", [], [], [])
    (src / "a.py").unlink()  # vanished (or unreadable) between planning and reading
    lines: list[str] = []
    summary = tree.run(items, Options(), jobs=1, write=True, want_diff=False,
                       on_error="copy", cache_dir=None, emit=lines.append)
    assert summary.failed == 1 and "cannot read" in lines[0] and "a.py" in lines[0]
    assert (tmp_path / "out" / "pkg" / "sub" / "b.py").exists()


def test_usage_errors(tmp_path: Path) -> None:
    src = make_tree(tmp_path)
    code, output = invoke(str(src), "-o", str(src / "inside"))
    assert code == 2 and "inside SRC" in output
    code, output = invoke(str(tmp_path / "missing"), "-o", str(tmp_path / "o"))
    assert code == 2 and "no such file" in output
    code, output = invoke(str(src))
    assert code == 2


def test_an_output_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    """As ``memscope report`` and ``run`` say it: which folder and why, exit status 1,
    no traceback (there were three chained ones, from the first file's write)."""
    src = make_tree(tmp_path)
    (tmp_path / "file").write_text("not a folder")
    for bad, why in ((tmp_path / "file" / "o", "Not a directory"),
                     (Path("/proc/memscope-no-such"), "No such file or directory")):
        code, output = invoke(str(src), "-o", str(bad))
        assert (code, output) == (1, f"Error: cannot create the output folder {bad}: {why}\n")
        assert not bad.exists()


def test_diff_check_in_place(tmp_path: Path) -> None:
    src = make_tree(tmp_path)
    before = (src / "a.py").read_text()
    code, output = invoke(str(src / "a.py"), "--diff")
    assert code == 0 and "+++ b/a.py" in output and "_memscope_.bind(" in output
    assert (src / "a.py").read_text() == before  # nothing written
    code, _ = invoke(str(src), "--check")
    assert code == 1
    code, output = invoke(str(src), "--in-place", "-j", "1")
    assert code == 0, output
    assert ALREADY_INSTRUMENTED_MARKER in (src / "a.py").read_text()
    assert not (src / "sub" / "data.txt.tmp").exists()
    code, _ = invoke(str(src), "--check")
    assert code == 0


def test_include_exclude_and_jobs(tmp_path: Path) -> None:
    src = make_tree(tmp_path)
    out = tmp_path / "out"
    code, output = invoke(str(src), "-o", str(out), "--jobs", "2", "--exclude", "sub")
    assert code == 0, output
    assert not (out / "pkg" / "sub").exists()
    assert ALREADY_INSTRUMENTED_MARKER in (out / "pkg" / "a.py").read_text()
    out2 = tmp_path / "out2"
    code, output = invoke(str(src), "-o", str(out2), "--include", "a.py")
    assert ALREADY_INSTRUMENTED_MARKER in (out2 / "pkg" / "a.py").read_text()
    b = (out2 / "pkg" / "sub" / "b.py").read_bytes()  # not included: copied as it is
    assert b == (src / "sub" / "b.py").read_bytes()


def test_console_script_summary(tmp_path: Path) -> None:
    src = make_tree(tmp_path)
    exe = Path(sys.executable).with_name("memscope-instrument")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "memscope_instrument.cli"]
    p = subprocess.run([*cmd, str(src), "-o", str(tmp_path / "o")], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("memscope-instrument: 4 files")


def test_several_sources_do_not_collide(tmp_path: Path) -> None:
    for pkg in ("one", "two"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text(f"NAME = {pkg!r}\n")
    out = tmp_path / "out"
    code, output = invoke(str(tmp_path / "one"), str(tmp_path / "two"), "-o", str(out), "-j", "2")
    assert code == 0, output
    assert "NAME = 'one'" in (out / "one" / "__init__.py").read_text()
    assert "NAME = 'two'" in (out / "two" / "__init__.py").read_text()


def test_output_that_does_not_compile_is_a_failure(tmp_path: Path, monkeypatch: Any) -> None:
    """memscope-instrument compiles what it writes: a transformer bug (here simulated:
    issue 17's ':=' inside a comprehension iterable) is one located line, a failure in
    the summary, exit 1, and the file copied unchanged; the rest of the tree is done."""
    from dataclasses import replace

    from memscope_instrument import tree

    real = tree.instrument_source

    def broken(data: Any, src: str, *args: Any) -> Any:
        res = real(data, src, *args)
        if not src.endswith("a.py"):
            return res
        bad = "[v for v in (w := [1])]"  # line 2 of the output, which is line 2 of a.py
        lines = res.code.split("\n")
        return replace(res, code="\n".join([lines[0], bad, *lines[2:]]))

    monkeypatch.setattr(tree, "instrument_source", broken)
    src = make_tree(tmp_path)
    out = tmp_path / "out"
    for extra in ((), ("--check",), ("--diff",)):
        code, output = invoke(str(src), "-o", str(out), "-j", "1", *extra)
        assert code == 1, output
        errs = [ln for ln in output.splitlines() if ln.startswith("error:")]
        assert len(errs) == 1, output
        assert f"{src / 'a.py'}:2:" in errs[0] and "does not compile" in errs[0], errs
        assert "comprehension iterable" in errs[0]
        assert "1 failed" in output
    assert (out / "pkg" / "a.py").read_text() == "x = 1\nprint('a', x)\n"  # copied unchanged
    assert "memscope: instrumented" in (out / "pkg" / "sub" / "b.py").read_text()
