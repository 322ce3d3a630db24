"""Well-framed captures whose rows are not what the runtime writes (issue 16, "hostile
and future captures"): a field more, a field less, another type, None, NaN, ints far out
of range, kinds no reader knows, table indices that name nothing. Every row is checked
once where the reader decodes it for an analysis (``CaptureFile.events(check=True)``):
extra trailing fields are ignored, as docs/capture-format.md promises; a row that cannot
be used is skipped and counted, its chunk and event named in the report's errors. The
commands (``summary``, ``report -f json|html|svg``) either succeed or stop with a
one-line error, never a traceback.

The captures mutated here are real ones, made by ``memscope run`` on a small program
(module tables, binds of both widths, census rows, leaks, threads, tasks), re-framed
with valid checksums by the writer's own code (``write_capture``).
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memscope.capture import read_capture, write_capture
from memscope.cli import main
from memscope.events import BIND, CENSUS, CVAR, ENTER, ERROR, MEM, SITE, TYPE
from tests._reporter_programs import ROOT

PROGRAM = """
import threading, asyncio

CACHE = []

class Holder:
    def __init__(self, n):
        self.buf = bytearray(n)

def work(n):
    data = list(range(n))
    alias = data
    leaked = Holder(n)
    CACHE.append(leaked)
    text = "x" * n
    del text
    return len(alias)

total = 0
for n in (100, 2000, 50_000):
    total += work(n)
th = threading.Thread(target=work, args=(500,), name="worker")
th.start(); th.join()

async def task_body(k):
    payload = b"y" * (1000 * k)
    await asyncio.sleep(0)
    return len(payload)

async def main():
    return await asyncio.gather(task_body(1), task_body(2))

asyncio.run(main())
sq = [i * i for i in range(300)]
print(total)
"""


def _run(folder: Path, mode: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prog.py").write_text(textwrap.dedent(PROGRAM))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-m", "memscope", "run", "--mode", mode, "--no-report",
         "-o", str(folder / "out"), "--name", "p", "prog.py"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    (cap,) = (folder / "out" / "p").glob("p.*.memscope")
    return cap


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    """The events of a full-mode and of a fast-mode capture of PROGRAM."""
    out = {}
    for mode in ("full", "fast"):
        cap = _run(tmp_path_factory.mktemp(mode), mode)
        out[mode] = list(read_capture(cap).events())
    kinds = {ev[0] for ev in out["full"]}
    assert {BIND, ENTER, SITE, TYPE, MEM, CVAR, CENSUS} <= kinds  # a rich sample
    return out


def _cmd(args: list[str]) -> tuple[int, str, str]:
    """Run a memscope command in process: (exit code, stdout, stderr). A traceback (an
    exception other than the clean exit click makes of an error) fails the test."""
    r = CliRunner().invoke(main, args)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        import traceback

        tb = "".join(traceback.format_exception(r.exception))
        raise AssertionError(f"memscope {' '.join(args[:1] + args[2:])} raised:\n{tb}")
    return r.exit_code, r.stdout, r.stderr


def _all_commands(cap: Path, out: Path) -> dict[str, tuple[int, str, str]]:
    res = {"summary": _cmd(["summary", str(cap), "--width", "200"])}
    for fmt in ("json", "html", "svg"):
        res[fmt] = _cmd(["report", str(cap), "-f", fmt, "-o", str(out), "-n", "m"])
    for what, (code, _stdout, stderr) in res.items():
        if code != 0:  # a clear one-line error, nothing else
            assert code == 1, (what, code, stderr)
            assert stderr.startswith("Error: ") and stderr.count("\n") == 1, (what, stderr)
    return res


def _no_clock(text: str) -> str:
    """A summary without its wall-clock start (the writer's time of writing)."""
    return re.sub(r"\d{4}-\d\d-\d\dT[\d:.+]+", "", text)


def _json(out: Path) -> dict[str, Any]:
    return orjson.loads((out / "m_memory_analysis.json").read_bytes())


def _errors(out: Path) -> list[str]:
    perf = orjson.loads((out / "m_performance.json").read_bytes())
    return [e["message"] for e in perf["errors"]]


def test_an_extra_trailing_field_on_every_row_changes_nothing(
        real: dict[str, list[Any]], tmp_path: Path) -> None:
    """The doc: a new field needs no format change. One more field on one BIND row,
    then on every row of every kind: the reports read as before, no error."""
    evs = real["full"]
    base = write_capture(tmp_path / "base" / "c.memscope", evs)
    ref = _all_commands(base, tmp_path / "ref")
    assert all(code == 0 for code, _, _ in ref.values())
    ref_json = _json(tmp_path / "ref")
    i = next(i for i, ev in enumerate(evs) if ev[0] == BIND)
    one = [*evs[:i], (*evs[i], 12345), *evs[i + 1:]]
    every = [ev if ev[0] == 12 else (*ev, "future", 7) for ev in evs]  # PROC: a chunk
    for name, mutated in (("one", one), ("every", every)):
        cap = write_capture(tmp_path / name / "c.memscope", mutated)
        res = _all_commands(cap, tmp_path / name)
        assert all(code == 0 for code, _, _ in res.values()), (name, res)
        got = _json(tmp_path / name)
        assert got["summary"] == ref_json["summary"], name
        assert _errors(tmp_path / name) == _errors(tmp_path / "ref") == []
        assert _no_clock(res["summary"][1]) == _no_clock(ref["summary"][1]), name


@pytest.mark.parametrize("field, value, why", [
    (1, None, "time"),  # a time of None
    (6, -(2**70), "size"),  # a size far below any int64
    (6, float("nan"), "size"),
    (2, "site", "site"),
])
def test_a_malformed_bind_row_is_skipped_and_named(
        real: dict[str, list[Any]], tmp_path: Path, field: int, value: Any,
        why: str) -> None:
    evs = real["full"]
    binds = [i for i, ev in enumerate(evs) if ev[0] == BIND]
    i = binds[len(binds) // 2]
    row = evs[i]
    bad = [*evs[:i], (*row[:field], value, *row[field + 1:]), *evs[i + 1:]]
    cap = write_capture(tmp_path / "bad.memscope", bad)
    res = _all_commands(cap, tmp_path / "o")
    assert all(code == 0 for code, _, _ in res.values()), res
    errors = _errors(tmp_path / "o")
    assert len(errors) == 1
    # the chunk (index and file offset), the event in it, the kind and the field
    assert "chunk " in errors[0] and "offset " in errors[0] and "event " in errors[0]
    assert "bind row skipped" in errors[0] and why in errors[0], errors[0]
    stats = _json(tmp_path / "o")["summary"]
    assert stats["total_binds"] == len(binds) - 1
    assert "1 row" in res["summary"][1] or "malformed" in res["summary"][1]


def test_rows_of_the_wrong_width_unknown_kinds_and_dangling_indices(
        real: dict[str, list[Any]], tmp_path: Path) -> None:
    """A field less (skipped, counted), an unknown kind (ignored: a newer runtime's),
    ids that name no table row (shown as unknown), a fast-mode row among full ones."""
    evs = real["full"]
    binds = [i for i, ev in enumerate(evs) if ev[0] == BIND]
    m = list(evs)
    m[binds[0]] = m[binds[0]][:-4]  # full -> fast width: fine
    m[binds[1]] = m[binds[1]][:6]  # a field short of the fast width: skipped
    m[binds[2]] = (*m[binds[2]][:2], 10**12, *m[binds[2]][3:])  # no such site
    m[binds[3]] = (*m[binds[3]][:5], 999_999, *m[binds[3]][6:])  # no such type
    m.insert(binds[4], (99, 1, "from the future"))
    m.insert(binds[4], (200,))
    cap = write_capture(tmp_path / "w.memscope", m)
    res = _all_commands(cap, tmp_path / "o")
    assert all(code == 0 for code, _, _ in res.values()), res
    errors = _errors(tmp_path / "o")
    assert len(errors) == 1 and "bind row skipped" in errors[0]
    assert "5 fields, expected 6" in errors[0]
    assert _json(tmp_path / "o")["summary"]["total_binds"] == len(binds) - 1


def test_many_malformed_rows_are_counted_not_each_listed(
        real: dict[str, list[Any]], tmp_path: Path) -> None:
    evs = real["full"]
    m = [(*ev[:1], None, *ev[2:]) if ev[0] == ENTER else ev for ev in evs]
    n = sum(1 for ev in evs if ev[0] == ENTER)
    cap = write_capture(tmp_path / "e.memscope", m)
    res = _all_commands(cap, tmp_path / "o")
    assert all(code == 0 for code, _, _ in res.values()), res
    errors = _errors(tmp_path / "o")
    assert len(errors) <= 11
    assert any(f"{n} malformed rows skipped" in e for e in errors), errors
    assert "malformed" in res["summary"][1]


# ---- structured fuzzing of real captures ----------------------------------------------

WEIRD = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([2**63, -(2**63) - 1, 2**70, -(2**70), 2**63 - 1, -(2**63), -1, -2,
                     0, 10**12, 2**62, -(2**62)]),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0]),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.tuples(st.integers(-3, 3), st.text(max_size=3)),
    st.tuples(),
)

MUTATION = st.one_of(
    st.tuples(st.just("extra"), st.integers(0, 10**6), st.lists(WEIRD, min_size=1, max_size=3)),
    st.tuples(st.just("drop"), st.integers(0, 10**6), st.integers(1, 4)),
    st.tuples(st.just("set"), st.integers(0, 10**6), st.tuples(st.integers(1, 12), WEIRD)),
    st.tuples(st.just("kind"), st.integers(0, 10**6),
              st.sampled_from([0, 19, 99, 200, 255, BIND, ERROR, MEM, CENSUS, CVAR])),
    st.tuples(st.just("index"), st.integers(0, 10**6),
              st.tuples(st.integers(2, 6), st.sampled_from([-1, 10**9, 2**40, 2**62]))),
)


def _mutate(evs: list[Any], muts: list[tuple[str, int, Any]]) -> list[Any]:
    m = list(evs)
    for what, at, arg in muts:
        i = 1 + at % (len(m) - 1)  # the PROC row (a chunk of its own) stays first
        ev = m[i]
        if what == "extra":
            m[i] = (*ev, *arg)
        elif what == "drop":
            m[i] = ev[: max(1, len(ev) - arg)]
        elif what == "set":
            j, v = arg
            j = 1 + (j - 1) % max(1, len(ev) - 1)
            m[i] = (*ev[:j], v, *ev[j + 1:])
        elif what == "kind":
            m[i] = (arg, *ev[1:])
        else:  # an id (site, scope, type, token, object) that names nothing
            j, v = arg
            if j < len(ev):
                m[i] = (*ev[:j], v, *ev[j + 1:])
    return m


_N = int(os.environ.get("MEMSCOPE_FUZZ_EXAMPLES", "40"))


@settings(max_examples=_N, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mode=st.sampled_from(["full", "fast"]), muts=st.lists(MUTATION, min_size=1, max_size=3))
def test_mutated_real_captures_report_or_fail_in_one_line(
        real: dict[str, list[Any]], tmp_path_factory: pytest.TempPathFactory, mode: str,
        muts: list[tuple[str, int, Any]]) -> None:
    tmp = tmp_path_factory.mktemp("fz")
    m = _mutate(real[mode], muts)
    cap = write_capture(tmp / "m.memscope", m)
    res = _all_commands(cap, tmp / "o")
    if res["json"][0] == 0:
        doc = _json(tmp / "o")
        assert doc["summary"]["events"] <= len(m) + 1


EDGE = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, 1, -1, -2, 2**31 - 1, 2**31, 2**56, -(2**56), 2**62 - 1, 2**62,
                     -(2**62), -(2**62) - 1, 2**63 - 1, -(2**63)]),
    st.integers(-3, 300),
)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.tuples(*[EDGE] * 10), min_size=1, max_size=40),
       general=st.booleans(), data=st.data())
def test_column_range_checks_agree_with_the_row_by_row_check(
        tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[int, ...]],
        general: bool, data: st.DataObject) -> None:
    """Int64 columns are checked on their most significant bytes (byte planes, or
    shuffled int64 on the writer's general path, forced here by one row holding None):
    the rows kept are exactly those the value-by-value check keeps."""
    from memscope.capture.rows import row_problem

    evs: list[Any] = [(BIND, *r) for r in rows]
    if general:
        i = data.draw(st.integers(0, len(evs) - 1))
        evs[i] = (BIND, *rows[i][:3], None, *rows[i][4:])
    p = write_capture(tmp_path_factory.mktemp("cols") / "c.memscope", evs)
    got = [ev for ev in read_capture(p).events(check=True) if ev[0] == BIND]
    assert got == [ev for ev in evs if row_problem(ev)[0] is not None]


def test_process_record_extras_of_other_kinds_are_left_out(
        real: dict[str, list[Any]], tmp_path: Path) -> None:
    """A process chunk's (key, value) pairs are the writer's own (python, wall_ns,
    runtime_mode); a value that is not text, an int of magnitude below 2**62 or a
    finite float (2**70 made every JSON report fail) is left out, the rest read."""
    from memscope.capture.writer import CaptureWriter

    evs = real["full"]
    w = CaptureWriter(tmp_path / "p" / "c.memscope")
    w.write_proc(evs[0], {"python": "3.11.7", "wall_ns": 2**70, "runtime_mode": math.nan,
                          "other": (1, 2), "note": -(2**70)})
    w.write(evs[1:])
    w.close()
    (proc,) = read_capture(w.path).processes
    assert proc.extra == {"python": "3.11.7"}
    res = _all_commands(w.path, tmp_path / "o")
    assert all(code == 0 for code, _, _ in res.values()), res
