"""The report modules compiled with mypyc (setup.py) and run from their source write the
same bytes, and the source runs whenever the build cannot be trusted."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import orjson
import pytest

from memscope import _compiled
from tests._reporter_programs import ROOT
from tests.report_helpers import synthetic_events


def _built() -> bool:
    """Whether setup.py compiled every report module for this Python (found on disk, not
    asked of memscope._compiled)."""
    for name in _compiled.MODULES:
        base = ROOT.joinpath(*name.split("."))
        if not any(Path(str(base) + s).exists() for s in EXTENSION_SUFFIXES):
            return False
    return True


def test_the_modules_that_run_are_the_ones_the_state_names() -> None:
    files = {m: importlib.import_module(m).__file__ or "" for m in _compiled.MODULES}
    if _compiled.STATE == "compiled":
        assert _built()
        assert all(not f.endswith(".py") for f in files.values()), files
    else:
        assert all(f.endswith(".py") for f in files.values()), (_compiled.STATE, files)


def _report(cap: Path, out: Path, pure: bool) -> tuple[str, dict[str, bytes]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MEMSCOPE_PURE_REPORTS", None)
    if pure:
        env["MEMSCOPE_PURE_REPORTS"] = "1"
    version = subprocess.run([sys.executable, "-m", "memscope", "--version"], env=env,
                             capture_output=True, text=True, check=True).stdout
    subprocess.run(
        [sys.executable, "-m", "memscope", "report", str(cap), "-o", str(out), "-f",
         "html,svg,timeline,json,bindings,summary"],
        env=env, capture_output=True, check=True, cwd=out.parent)  # fmt: skip
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
             if p.is_file()}
    return version, files


def _no_timings(name: str, data: bytes) -> bytes:
    """performance.json says how long the report took: every other byte must agree."""
    if not name.endswith("performance.json"):
        return data
    doc = orjson.loads(data)
    assert doc["report"].pop("seconds") > 0
    assert doc["report"].pop("events_per_second") > 0
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


@pytest.mark.slow
def test_compiled_and_source_reports_are_byte_identical(tmp_path: Path) -> None:
    from memscope.capture.writer import write_capture

    ev = synthetic_events(30_000)
    cap = Path(write_capture(tmp_path / "syn.memscope", ev, export_mode="full",
                             runtime_mode="full", start_ns=ev[0][4]))  # fmt: skip
    (tmp_path / "c").mkdir()
    (tmp_path / "s").mkdir()
    v_c, compiled = _report(cap, tmp_path / "c" / "out", pure=False)
    v_s, source = _report(cap, tmp_path / "s" / "out", pure=True)
    assert "report modules: source (MEMSCOPE_PURE_REPORTS)" in v_s
    if _built():
        assert "report modules: compiled" in v_c, v_c
    assert sorted(compiled) == sorted(source)
    assert len(compiled) >= 6
    for name in compiled:
        assert _no_timings(name, compiled[name]) == _no_timings(name, source[name]), name


def test_a_source_newer_than_its_build_runs_from_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An in-place build (``pip install -e .``) whose source changed afterwards: the
    source runs, and the state says which file and what to do."""
    (tmp_path / "setup.py").write_text("")
    suffix = EXTENSION_SUFFIXES[0]
    for name in _compiled.MODULES:
        base = tmp_path.joinpath(*name.split("."))
        base.parent.mkdir(parents=True, exist_ok=True)
        Path(str(base) + ".py").write_text("")
        Path(str(base) + suffix).write_bytes(b"")
        os.utime(str(base) + ".py", (1_000_000, 1_000_000))
        os.utime(str(base) + suffix, (2_000_000, 2_000_000))
    monkeypatch.setattr(_compiled, "_ROOT", str(tmp_path))
    monkeypatch.delenv("MEMSCOPE_PURE_REPORTS", raising=False)
    assert _compiled._why_source() is None  # every build newer than its source
    changed = tmp_path / "memscope" / "reporters" / "_series.py"
    os.utime(changed, (3_000_000, 3_000_000))
    why = _compiled._why_source()
    assert why is not None and "memscope/reporters/_series.py changed" in why
    (tmp_path / "setup.py").unlink()  # installed from a wheel: its files' times say nothing
    assert _compiled._why_source() is None
    monkeypatch.setenv("MEMSCOPE_PURE_REPORTS", "1")
    assert _compiled._why_source() == "source (MEMSCOPE_PURE_REPORTS)"


def test_the_source_finder_serves_only_the_report_modules() -> None:
    spec = _compiled._SourceFinder.find_spec("memscope.reporters._series")
    assert spec is not None and spec.origin is not None and spec.origin.endswith("_series.py")
    assert _compiled._SourceFinder.find_spec("memscope.reporters.html") is None
    assert _compiled._SourceFinder.find_spec("json") is None


def test_setup_compiles_the_modules_the_runtime_names() -> None:
    import ast

    tree = ast.parse((ROOT / "setup.py").read_text())
    sources = next(ast.literal_eval(n.value) for n in ast.walk(tree)
                   if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") ==
                   "MYPYC_SOURCES")  # fmt: skip
    assert [s.removesuffix(".py").replace("/", ".") for s in sources] == list(_compiled.MODULES)


def test_a_raw_sink_dropped_unclosed_leaves_no_folder() -> None:
    """The dashboard's raw detail keeps its columns in a temporary folder: a report that
    ends without closing its sink (an error on the way) must not leave it behind."""
    import gc

    from memscope.reporters._raw import RawSink

    sink = RawSink(10)
    folder = sink.dir
    assert folder is not None and os.path.isdir(folder)
    sink.add((1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 7, 0, 1))
    sink.batch()
    del sink
    gc.collect()
    assert not os.path.exists(folder)
