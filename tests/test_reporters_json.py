"""The JSON family from real captures, validated against docs/schema/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from memscope.reporters import report
from memscope.reporters.json_report import DETAIL, KINDS, write_json
from tests._reporter_programs import make_capture
from tests.report_helpers import read_jsonl

SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "schema"


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_capture(tmp_path_factory.mktemp("cap"), "rich", fork=True)


@pytest.fixture(scope="module")
def json_files(captures: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("json")
    paths = write_json([captures[0]], out, "rich", detail=True)
    assert [p.name for p in paths] == [f"rich_{k}.json" for k in KINDS] + [
        f"rich_{k}.jsonl" for k in DETAIL]
    files: dict[str, Any] = {k: orjson.loads(p.read_bytes())
                             for k, p in zip(KINDS, paths[:len(KINDS)], strict=True)}
    for k, p in zip(DETAIL, paths[len(KINDS):], strict=True):
        files[k] = read_jsonl(p)
    return files


@pytest.mark.parametrize("kind", DETAIL)
def test_detail_lines_match_schema(json_files: dict[str, Any], kind: str) -> None:
    schema = json.loads((SCHEMAS / f"{kind}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert json_files[kind]
    for row in json_files[kind]:
        jsonschema.validate(row, schema, cls=jsonschema.Draft202012Validator)


def test_json_alone_is_aggregated(captures: list[Path], tmp_path: Path) -> None:
    """Format ``json`` holds no per-binding rows: its size follows the variables, not
    the run's length; the detail is format ``bindings``, and the files say so."""
    paths = write_json([captures[0]], tmp_path, "agg")
    assert [p.name for p in paths] == [f"agg_{k}.json" for k in KINDS]
    d = orjson.loads(paths[0].read_bytes())
    assert "allocations" not in d
    assert d["detail"] == {"not_written": "every binding and object: memscope report -f bindings"}
    assert {"data", "alias", "payload"} <= {v["var"] for v in d["variables"]}
    assert d["variables_not_listed"] == 0
    life = orjson.loads(paths[1].read_bytes())
    assert life["bindings"] == d["summary"]["allocations"] > 0 and "objects" not in life


@pytest.mark.parametrize("kind", KINDS)
def test_output_matches_schema(json_files: dict[str, dict], kind: str) -> None:
    schema = json.loads((SCHEMAS / f"{kind}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json_files[kind], schema, cls=jsonschema.Draft202012Validator)


def test_memory_analysis_content(json_files: dict[str, dict]) -> None:
    d = json_files["memory_analysis"]
    rows = json_files["bindings"]
    names = {a["var"] for a in rows}
    assert {"data", "alias", "leaked", "arr", "view", "raw", "payload"} <= names
    assert "child_only" not in names  # the forked child's binds are in its own capture
    assert d["summary"]["allocations"] == len(rows)
    assert d["detail"] == {"bindings": "rich_bindings.jsonl", "objects": "rich_objects.jsonl"}
    assert d["summary"]["peak_bytes"] > 0
    data = [a for a in rows if a["var"] == "data"]
    assert {a["scope"] for a in data} == {"work"}
    assert any(a["thread_name"] == "worker" for a in data)
    payload = [a for a in rows if a["var"] == "payload"]
    assert len(payload) == 2 and all(a["task_name"] for a in payload)
    assert all(a["t_bind"] >= 0 for a in rows)  # ns since start
    oids = {a["oid"] for a in rows}
    assert {o["first_binding"] for o in json_files["objects"]} <= {a["id"] for a in rows}
    assert {o["oid"] for o in json_files["objects"]} <= oids
    assert "list" in d["by_type"] and d["top_variables"][0]["peak_bytes"] > 0


def test_relationships_buffers_leaks(json_files: dict[str, dict]) -> None:
    rel = json_files["variable_relationships"]
    assert any({p["a"], p["b"]} == {"work.data", "work.alias"} for p in rel["aliases"])
    buf = json_files["buffers"]
    by_var = {b["var"]: b for b in buf["buffers"]}
    assert {"arr", "view"} <= set(by_var)
    assert by_var["view"].get("base_key", "").endswith(":arr")
    assert any(c["via"] == "buffer" and c["held"].endswith(":view")
               for c in rel["containment"])
    leaks = json_files["leaks"]
    assert leaks["count"] >= 1
    assert any("CACHE" in " ".join(lk["holders"]) for lk in leaks["leaks"])
    types = {t["type"]: t for t in json_files["type_analysis"]["types"]}
    blob = next(v for k, v in types.items() if k.endswith("Blob"))
    assert blob["binds"] == 3 and blob["max_bytes"] >= 2000
    perf = json_files["performance"]
    assert perf["events"] == sum(perf["events_by_kind"].values())
    assert perf["events_by_kind"]["bind"] >= 10 and perf["capture"]["bytes"] > 0
    life = json_files["lifetime"]
    assert any(s["qualname"] == "work" and s["enters"] == 3 for s in life["scopes"])
    assert life["scope_tree"]["children"]


def test_several_processes_in_one_report(captures: list[Path], tmp_path: Path) -> None:
    assert len(captures) == 2
    paths = report(captures, tmp_path, "both", "json,bindings")
    d = orjson.loads(paths[0].read_bytes())
    rows = read_jsonl(tmp_path / "both_bindings.jsonl")
    pids = {a["pid"] for a in rows}
    assert len(pids) == 2
    child = [a for a in rows if a["var"] == "child_only"]
    assert len(child) == 1 and child[0]["pid"] != d["meta"]["pids"][0]
    assert sorted(d["meta"]["pids"]) == sorted(pids)
    schema = json.loads((SCHEMAS / "memory_analysis.schema.json").read_text())
    jsonschema.validate(d, schema)


def test_report_all_formats(captures: list[Path], tmp_path: Path) -> None:
    paths = report([captures[0]], tmp_path, "all", "all")
    names = {p.name for p in paths}
    assert "all_summary.txt" in names and "all_memory_analysis.json" in names
    assert any(n.endswith(".html") for n in names) and any(n.endswith(".svg") for n in names)
    assert "data" in (tmp_path / "all_summary.txt").read_text()


def test_buffers_are_listed_up_to_a_bound_and_all_counted(
    captures: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """buffers.json lists at most MAX_BUFFERS bindings (it listed 100,000: 5.5 MB for a
    10^6-event capture); its count, bytes and per-type totals cover every one."""
    from memscope.reporters import json_report

    full = write_json([captures[0]], tmp_path / "a", "b", detail=True)
    every = orjson.loads(full[KINDS.index("buffers")].read_bytes())
    rows = [r for r in read_jsonl(tmp_path / "a" / "b_bindings.jsonl")
            if r["addr"] >= 0 or r["bufsize"] >= 0]
    assert every["count"] == len(rows) >= 2 and every["not_listed"] == 0
    monkeypatch.setattr(json_report, "MAX_BUFFERS", 1)
    paths = write_json([captures[0]], tmp_path / "c", "b")
    cut = orjson.loads(paths[KINDS.index("buffers")].read_bytes())
    assert len(cut["buffers"]) == 1 and cut["not_listed"] == len(rows) - 1
    assert cut["count"] == every["count"]
    assert cut["by_type"] == every["by_type"]
    assert cut["total_bytes"] == every["total_bytes"] == sum(max(r["bufsize"], 0) for r in rows)
