"""The report, summary, diff and merge commands on real captures."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from memscope.capture import read_capture
from memscope.cli import main
from tests._reporter_programs import ROOT, make_capture
from tests.report_helpers import read_jsonl


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_capture(tmp_path_factory.mktemp("a"), "small", sizes=(100, 200))[0]


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_capture(tmp_path_factory.mktemp("b"), "large", sizes=(100, 50_000))[0]


def test_report_default_folder(
    small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["report", str(small), "-f", "json"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "MemoryAnalysis" / "small"
    assert (out / "small_memory_analysis.json").exists()
    assert (out / "small_leaks.json").exists()
    assert not (out / "small_dashboard.html").exists()


def test_report_into_folder_default_and_asked_formats(small: Path, tmp_path: Path) -> None:
    """By default the dashboard and the two charts; JSON, the summary, the per-binding
    detail and a copy of the capture when asked for."""
    r = CliRunner().invoke(main, ["report", str(small), "-o", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    names = {p.name for p in (tmp_path / "o").iterdir()}
    assert names == {"small_dashboard.html", "small_memory_analysis.svg",
                     "small_lifecycle_timeline.svg"}
    r = CliRunner().invoke(main, ["report", str(small), "-o", str(tmp_path / "p"),
                                  "-f", "json,summary,bindings,binary"])
    assert r.exit_code == 0, r.output
    names = {p.name for p in (tmp_path / "p").iterdir()}
    assert {"small_memory_analysis.json", "small_summary.txt", "small_performance.json",
            "small_bindings.jsonl", "small_objects.jsonl", "small.memscope"} == names - {
        "small_lifetime.json", "small_variable_relationships.json",
        "small_type_analysis.json", "small_buffers.json", "small_leaks.json"}
    assert (tmp_path / "p" / "small.memscope").read_bytes() == small.read_bytes()
    r = CliRunner().invoke(main, ["report", str(small), "-o", str(tmp_path / "t"),
                                  "-f", "timeline"])
    assert r.exit_code == 0, r.output
    assert [p.name for p in (tmp_path / "t").iterdir()] == ["small_lifecycle_timeline.svg"]


def test_report_bad_inputs(tmp_path: Path) -> None:
    junk = tmp_path / "junk.memscope"
    junk.write_bytes(b"hello world, not a capture at all" * 8)
    r = CliRunner().invoke(main, ["report", str(junk), "-o", str(tmp_path)])
    assert r.exit_code == 1 and "not a memscope capture" in r.output
    r = CliRunner().invoke(main, ["report", str(junk), "-f", "pdf"])
    assert r.exit_code != 0


def test_summary_command(small: Path) -> None:
    r = CliRunner().invoke(main, ["summary", str(small), "--width", "150"])
    assert r.exit_code == 0, r.output
    for text in ("memscope summary: small", "Top variables", "data", "work", "peak",
                 "Leaks", "worker"):
        assert text in r.output


def test_summary_shows_places_relative_to_the_current_directory(
    small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run inside the project, ``where`` is ``file.py:line`` as the person knows it, not
    an absolute path cut short by a narrow terminal; from elsewhere, its last two parts."""
    script = small.parent.parent / "small_prog.py"
    monkeypatch.chdir(script.parent)
    r = CliRunner().invoke(main, ["summary", str(small), "--width", "100"])
    assert r.exit_code == 0, r.output
    assert "small_prog.py:" in r.output and str(script.parent) not in r.output
    monkeypatch.chdir(ROOT)  # not above the script
    r = CliRunner().invoke(main, ["summary", str(small), "--width", "100"])
    assert f"…/{script.parent.name}/small_prog.py:" in r.output and str(script) not in r.output


def test_diff_exit_status(small: Path, large: Path) -> None:
    r = CliRunner().invoke(main, ["diff", str(small), str(large)])
    assert r.exit_code == 1, r.output  # data grew from 200 to 50 000 items
    assert "grown" in r.output and "__main__:work:data" in r.output
    r = CliRunner().invoke(main, ["diff", str(small), str(small)])
    assert r.exit_code == 0 and "no changes" in r.output
    r = CliRunner().invoke(main, ["diff", str(large), str(small)])
    assert r.exit_code == 0 and "shrunk" in r.output  # shrinking does not fail by default
    r = CliRunner().invoke(main, ["diff", str(large), str(small), "--fail-on", "shrunk"])
    assert r.exit_code == 1
    r = CliRunner().invoke(main, ["diff", str(small), str(large), "--threshold", "100MiB"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["diff", str(small), str(large), "--json"])
    d = orjson.loads(r.output)
    grown = {c["key"] for c in d["changes"] if c["status"] == "grown"}
    assert "__main__:work:data" in grown and r.exit_code == 1
    r = CliRunner().invoke(main, ["diff", str(small), str(large), "--threshold", "lots"])
    assert r.exit_code == 2


def test_merge_then_report(tmp_path: Path) -> None:
    caps = make_capture(tmp_path / "f", "forked", fork=True)
    assert len(caps) == 2
    out = tmp_path / "merged.memscope"
    r = CliRunner().invoke(main, ["merge", *map(str, caps), "-o", str(out)])
    assert r.exit_code == 0, r.output
    m = read_capture(out)
    assert m.header.complete and len(m.processes) == 2
    assert {p.pid for p in m.processes} == {read_capture(c).processes[0].pid for c in caps}
    assert sum(1 for _ in m.events()) == sum(sum(1 for _ in read_capture(c).events())
                                            for c in caps)
    r = CliRunner().invoke(main, ["report", str(out), "-f", "bindings",
                                  "-o", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    rows = read_jsonl(tmp_path / "r" / "merged_bindings.jsonl")
    assert len({a["pid"] for a in rows}) == 2
    assert any(a["var"] == "child_only" for a in rows)
    r = CliRunner().invoke(main, ["merge", str(caps[0]), "-o", str(caps[0])])
    assert r.exit_code == 1


def test_tracker_exports(tmp_path: Path) -> None:
    code = f"""
        import memscope, os
        t = memscope.init(mode="full", output_dir={str(tmp_path)!r}, name="ex")
        @memscope.track_scope("job")
        def job():
            items = [bytes(100) for _ in range(10)]
            memscope.track_var(items)
            return items
        kept = job()
        print(t.export_to_json())
        print(t.export_to_json("named"))
        print(t.export_to_binary("bin_user"))
        print(t.export_to_binary("bin_full", mode="full"))
        print(memscope.reporters.export(t, "summary"))
        t.close()
        """
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(code).replace("import memscope, os",
                                                     "import memscope, os, memscope.reporters"))
    r = subprocess.run([sys.executable, str(script)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert Path(lines[0]) == tmp_path / "ex"
    assert (tmp_path / "ex" / "ex_memory_analysis.json").exists()
    assert (tmp_path / "named" / "named_lifetime.json").exists()
    user, full = read_capture(lines[2]), read_capture(lines[3])
    assert user.header.mode == "user" and full.header.mode == "full"
    names = {e[5] for e in user.events() if e[0] == 2}
    assert "items" in names
    assert "items" in Path(lines[4]).read_text()
    d = orjson.loads((tmp_path / "ex" / "ex_memory_analysis.json").read_bytes())
    assert any(v["var"] == "items" for v in d["variables"])


def test_summary_times_share_one_origin() -> None:
    """The run's duration and the time of the peak are both counted from the start."""
    from memscope.analysis import Analysis
    from memscope.events import BIND, ENTER, EXIT, SCOPE, SITE, TYPE, ScopeKind
    from memscope.reporters.summary import summary_of

    s = 1_000_000_000
    events = [
        (SCOPE, 0, "m.py", "m", "f", int(ScopeKind.FUNCTION), 1),
        (SITE, 0, 0, 2, 4, "buf", 1),
        (TYPE, 1, "bytearray"),
        (ENTER, 1 * s, 0, 1, 7, 0),
        (BIND, 1 * s, 0, 1, 100, 1, 64, -1, -1, -1, -1),
        (BIND, 2 * s + 9 * s // 10, 0, 1, 101, 1, 10_000, -1, -1, -1, -1),  # the peak
        (EXIT, 3 * s, 1),
    ]
    an = Analysis().feed_all(events)
    text = summary_of(an, {"name": "t"}, io.StringIO(), width=150, t0=s // 2)  # run start
    (row,) = [line for line in text.splitlines() if line.startswith("duration")]
    assert row.split()[1:] == ["2.5", "s"]  # 3.0 - 0.5: not first-to-last event (2.0 s)
    assert "at 2.4 s" in text


def test_summary_type_cell_keeps_whole_names() -> None:
    """A variable that held many types shows two whole names and how many more."""
    from memscope.reporters.summary import _types_cell

    assert _types_cell({"int"}) == "int"
    assert _types_cell({"numpy.ndarray", "NoneType", "dict", "list"}) == \
        "NoneType, dict +2 more"


def _incomplete_copy(src: Path, dst: Path) -> Path:
    """``src`` as a killed writer leaves it: COMPLETE clear, a torn chunk at the end."""
    from memscope.capture import format as F

    data = bytearray(src.read_bytes())
    h = F.Header.unpack(bytes(data[: F.HEADER_SIZE]))
    h.flags &= ~F.FLAG_COMPLETE
    data[: F.HEADER_SIZE] = h.pack()
    dst.write_bytes(bytes(data[:-5]))  # the footer, torn
    assert not read_capture(dst).header.complete
    return dst


def test_merge_refuses_a_capture_given_twice(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.memscope"
    r = CliRunner().invoke(main, ["merge", str(small), str(small), "-o", str(out)])
    assert r.exit_code == 1 and "given twice" in r.output
    copy = tmp_path / "copy.memscope"
    copy.write_bytes(small.read_bytes())
    r = CliRunner().invoke(main, ["merge", str(small), str(copy), "-o", str(out)])
    assert r.exit_code == 1 and "hold the same process" in r.output
    assert not out.exists()


def test_incompleteness_survives_merge_and_every_report(tmp_path: Path) -> None:
    """A capture whose process was killed: ``report`` says so on the terminal and in
    every output; ``merge`` says so and makes an incomplete capture that says which."""
    parent, child = make_capture(tmp_path / "f", "forked", fork=True)
    inc = _incomplete_copy(child, tmp_path / "forked.999.memscope")
    r = CliRunner().invoke(main, ["report", str(inc), "-f", "json", "-o", str(tmp_path / "r1")])
    assert r.exit_code == 0 and f"warning: {inc}: incomplete capture" in r.stderr
    merged = tmp_path / "merged.memscope"
    r = CliRunner().invoke(main, ["merge", str(parent), str(inc), "-o", str(merged)])
    assert r.exit_code == 0, r.output
    assert f"warning: {inc}: incomplete capture" in r.stderr
    m = read_capture(merged)
    assert not m.header.complete and len(m.processes) == 2
    said = [e for e in m.events() if e[0] == 13 and e[2] == "capture"]
    assert len(said) == 1 and "forked.999.memscope: incomplete capture" in said[0][3]
    out = tmp_path / "r2"
    r = CliRunner().invoke(main, ["report", str(merged), "-f", "json,html,svg,timeline,summary",
                                  "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert f"warning: {merged}: merged from captures one of which is incomplete" in r.stderr
    meta = orjson.loads((out / "merged_memory_analysis.json").read_bytes())["meta"]
    assert meta["complete"] is False
    assert "incomplete" in (out / "merged_dashboard.html").read_text()
    assert "INCOMPLETE" in (out / "merged_memory_analysis.svg").read_text()
    assert "INCOMPLETE" in (out / "merged_lifecycle_timeline.svg").read_text()
    assert "recovered" in (out / "merged_summary.txt").read_text()


def test_diff_says_a_capture_is_incomplete(small: Path, tmp_path: Path) -> None:
    inc = _incomplete_copy(small, tmp_path / "small.999.memscope")
    r = CliRunner().invoke(main, ["diff", str(small), str(inc)])
    assert r.exit_code in (0, 1), r.output
    assert f"warning: {inc}: incomplete capture" in r.stderr
    assert f"warning: {small}" not in r.stderr


def test_an_output_folder_that_cannot_be_made_is_one_line(small: Path, tmp_path: Path) -> None:
    """report and merge: one line saying which folder and why, exit status 1."""
    (tmp_path / "file").write_text("not a folder")
    bad = tmp_path / "file" / "o"
    r = CliRunner().invoke(main, ["report", str(small), "-o", str(bad)])
    assert r.exit_code == 1
    assert r.output == f"Error: cannot create the output folder {bad}: Not a directory\n"
    r = CliRunner().invoke(main, ["merge", str(small), "-o", str(bad / "m.memscope")])
    assert r.exit_code == 1
    assert r.output == f"Error: cannot write {bad / 'm.memscope'}: Not a directory\n"


def test_report_progress(small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal, a live display (drawn and wiped); elsewhere one line per step
    that took longer than ``SLOW`` (here every step), none otherwise."""
    from memscope.reporters import _progress, report

    err = io.StringIO()
    prog = _progress.Progress(err, terminal=True)
    try:
        written = report([small], tmp_path / "o", "p", "html,svg", progress=prog)
    finally:
        prog.close()
    assert [p.name for p in written] == ["p_dashboard.html", "p_memory_analysis.svg"]
    assert "\x1b[?25l" in err.getvalue()  # rich's live display hid the cursor
    monkeypatch.setattr(_progress, "SLOW", 60.0)
    quiet = io.StringIO()
    report([small], tmp_path / "q", "p", "html", progress=_progress.Progress(quiet, terminal=False))
    assert quiet.getvalue() == ""  # not a terminal and no step took that long
    monkeypatch.setattr(_progress, "SLOW", 0.0)
    log = io.StringIO()
    report([small], tmp_path / "r", "p", "html,svg,timeline",
           progress=_progress.Progress(log, terminal=False))
    lines = [line.split(" in ")[0] for line in log.getvalue().splitlines()]
    events = sum(1 for _ in read_capture(small).events())
    assert lines == [f"memscope: read {events:,} events", "memscope: wrote dashboard",
                     "memscope: wrote memory chart", "memscope: wrote lifecycle timeline"]


def _capture_on_clock(path: Path, pid: int, start: int, wall: int, seconds: int) -> Path:
    """A capture of a process whose runtime clock read ``start`` when the wall clock
    read ``wall``, binding once at the start and once ``seconds`` later."""
    from memscope.capture import format as F
    from memscope.capture.writer import write_capture
    from memscope.events import BIND, ENTER, EXIT, PROC, SCOPE, SITE, TYPE, ScopeKind

    s = 1_000_000_000
    events = [
        (PROC, pid, 1, "prog", start),
        (SCOPE, 0, "m.py", "m", "f", int(ScopeKind.FUNCTION), 1),
        (SITE, 0, 0, 2, 4, "buf", 1),
        (TYPE, 1, "bytearray"),
        (ENTER, start + s, 0, 1, 7, 0),
        (BIND, start + s, 0, 1, 100, 1, 64, -1, -1, -1, -1),
        (BIND, start + seconds * s, 0, 1, 101, 1, 128, -1, -1, -1, -1),
        (EXIT, start + seconds * s, 1),
    ]
    write_capture(path, events, export_mode="full", runtime_mode="full", start_ns=start)
    data = bytearray(path.read_bytes())
    h = F.Header.unpack(bytes(data[: F.HEADER_SIZE]))
    h.wall_ns, h.pid = wall, pid
    data[: F.HEADER_SIZE] = h.pack()
    path.write_bytes(bytes(data))
    return path


def test_summary_duration_of_processes_on_unrelated_clocks(tmp_path: Path) -> None:
    """Issue 17: a 6-minute run's summary said 1,520,314,064 s. The runtime's clock
    (perf_counter) counts from the machine's boot, so two captures from another boot
    or machine are on unrelated clocks; each process's times are put on the first's
    by the wall clock each capture recorded at its start."""
    wall = 1_790_000_000 * 10**9
    a = _capture_on_clock(tmp_path / "p.100.memscope", 100, 5 * 10**9, wall, 360)
    b = _capture_on_clock(tmp_path / "p.200.memscope", 200, 1_520_000_000 * 10**9,
                          wall + 10 * 10**9, 60)
    r = CliRunner().invoke(main, ["summary", "--width", "150", str(a), str(b)])
    assert r.exit_code == 0, r.output
    (row,) = [line for line in r.output.splitlines() if line.startswith("duration")]
    assert row.split()[1:] == ["360", "s"]  # not 1,520,000,055 s


def test_diff_and_summary_say_their_progress_on_stderr(
    small: Path, large: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off a terminal, a line per step that took longer than ``SLOW`` (here: all)."""
    from memscope.reporters import _progress

    monkeypatch.setattr(_progress, "SLOW", 0.0)
    r = CliRunner().invoke(main, ["diff", str(small), str(large)])
    said = [line for line in r.stderr.splitlines() if line.startswith("memscope: read ")]
    assert len(said) == 2, r.stderr
    assert "memscope: read" not in r.stdout
    r = CliRunner().invoke(main, ["summary", str(small)])
    assert r.exit_code == 0 and r.stderr.startswith("memscope: read ")


def test_a_report_that_cannot_be_written_is_one_line(small: Path, tmp_path: Path) -> None:
    """A write that fails (here: a folder where the dashboard goes) is said in one
    line naming the folder and why, exit status 1, no traceback."""
    (tmp_path / "o" / "small_dashboard.html").mkdir(parents=True)
    r = CliRunner().invoke(main, ["report", str(small), "-o", str(tmp_path / "o")])
    assert r.exit_code == 1, r.output
    assert r.output.startswith(f"Error: cannot write the reports into {tmp_path / 'o'}: ")
    assert "Is a directory" in r.output and len(r.output.splitlines()) == 1
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["small_dashboard.html"]
