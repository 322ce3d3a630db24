"""The JSON family: seven files under ``<out_dir>/`` (format ``json``), aggregated, so
their size follows the program's variables, scopes and types, not the length of the
run; and, asked for as format ``bindings``, every binding and every object seen, one
JSON object a line (``<name>_bindings.jsonl``, ``<name>_objects.jsonl``), written with
orjson while the events stream through the analysis (finished bindings go straight to
disk), so memory stays bounded by what is live at one moment plus per-variable
aggregates.

Times are nanoseconds since the run started (``meta.start_ns``: the capture header's
start, the same origin as every other report; the first event when no start is
known), ``-1`` for "not yet" / "not recorded". Schemas: ``docs/schema/<kind>.schema.json``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from memscope.analysis import Analysis, Binding
from memscope.events import EVENT_NAMES, ScopeKind, kind_name
from memscope.reporters import _memory
from memscope.reporters.meta import leak_check_state

FORMAT_VERSION = 2  # 2: per-binding detail moved to format ``bindings`` (JSON Lines)
KINDS = (
    "memory_analysis",
    "lifetime",
    "variable_relationships",
    "type_analysis",
    "buffers",
    "leaks",
    "performance",
)
MAX_BUFFERS = 2_000  # buffer bindings listed (and matched as views and bases); all counted
_OPT = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=str, option=_OPT)


MAX_VARIABLES = 10_000  # rows of ``variables`` in memory_analysis.json; the rest counted
DETAIL = ("bindings", "objects")  # the JSON Lines files of format ``bindings``


class JsonReport:
    """Open the files, take bindings as they end (``on_binding_end``), ``finish``.
    ``aggregated``: the seven JSON files; ``detail``: the two JSON Lines files."""

    def __init__(self, out_dir: str | os.PathLike[str], name: str, meta: dict[str, Any],
                 *, aggregated: bool = True, detail: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.meta = meta
        self.t0 = int(meta.get("start_ns") or 0)
        self.kinds = KINDS if aggregated else ()
        self.detail = detail
        self.paths = {k: self.out_dir / f"{name}_{k}.json" for k in self.kinds}
        if detail:
            self.paths.update({k: self.out_dir / f"{name}_{k}.jsonl" for k in DETAIL})
        self._tmp = {k: p.with_name(p.name + ".tmp") for k, p in self.paths.items()}
        self.files: dict[str, IO[bytes]] = {}
        self.buffers: list[dict[str, Any]] = []
        self.buffers_over = 0
        self.buffer_types: dict[str, list[int]] = {}  # type -> [bindings, bytes], all of them
        self.type_extra: dict[str, list[int]] = {}  # type -> [min, max] bytes
        self.first_site: dict[int, dict[str, Any]] = {}  # oid -> where first bound
        self.an: Analysis | None = None
        self.bindings = 0
        try:
            if detail:
                for k in DETAIL:
                    self.files[k] = open(self._tmp[k], "wb")
        except BaseException:
            self.abort()
            raise

    def rel(self, t: int) -> int:
        if self.t0 <= 0 and self.an is not None and self.an.t_first >= 0:
            self.t0 = _memory.origin(self.an, self.meta)  # no start known: the first event
        return -1 if t < 0 else (t - self.t0 if self.t0 else t)

    # ---- streaming ------------------------------------------------------------------

    def attach(self, an: Analysis) -> None:
        self.an = an

    def _binding(self, b: Binding) -> None:
        self.bindings += 1
        t_bind = self.rel(b.t_bind)
        t_unbind = self.rel(b.t_unbind)
        if self.detail:
            d = b.as_dict()
            d["key"] = b.key
            d["bytes"] = b.bytes
            d["t_bind"] = t_bind
            d["t_unbind"] = t_unbind
            d["lifetime_ns"] = b.lifetime_ns
            d["end"] = b.end
            f = self.files["bindings"]
            f.write(_dumps(d))
            f.write(b"\n")
        mm = self.type_extra.get(b.type)
        nbytes = b.bytes
        if mm is None:
            self.type_extra[b.type] = [nbytes, nbytes]
        else:
            if nbytes < mm[0]:
                mm[0] = nbytes
            if nbytes > mm[1]:
                mm[1] = nbytes
        if b.addr >= 0 or b.bufsize >= 0:
            bt = self.buffer_types.get(b.type)
            if bt is None:
                bt = self.buffer_types[b.type] = [0, 0]
            bt[0] += 1
            bt[1] += max(b.bufsize, 0)
            if len(self.buffers) < MAX_BUFFERS:
                self.buffers.append(
                    {
                        "key": b.key,
                        "var": b.var,
                        "type": b.type,
                        "oid": b.oid,
                        "addr": b.addr,
                        "bufsize": b.bufsize,
                        "size": b.size,
                        "pid": b.pid,
                        "file": b.file,
                        "line": b.line,
                        "t_bind": t_bind,
                        "t_unbind": t_unbind,
                    }
                )
            else:
                self.buffers_over += 1
        an = self.an
        if an is not None:
            life = an.objects.get(b.oid)
            if life is not None and life.first_binding == b.id:
                self.first_site[b.oid] = {
                    "key": b.key,
                    "file": b.file,
                    "line": b.line,
                    "t_bind": t_bind,
                }
                if len(self.first_site) > 2 * len(an.objects) + 10_000:
                    self.first_site = {o: v for o, v in self.first_site.items() if o in an.objects}

    on_binding_end = _binding  # each binding as it ends (the same method: one call)

    # ---- the end ---------------------------------------------------------------------

    def finish(
        self,
        an: Analysis,
        *,
        kinds: dict[int, int] | None = None,
        sampled: dict[int, tuple[int, int]] | None = None,
        seconds: float = 0.0,
    ) -> list[Path]:
        try:
            for b in an.active():
                self._binding(b)
            if self.detail:
                self._finish_detail(an)
            if self.kinds:
                self._write("memory_analysis", self._memory(an))
                self._write("lifetime", self._lifetime(an))
                self._write("variable_relationships", self._relationships(an))
                self._write("type_analysis", self._types(an))
                self._write("buffers", self._buffers())
                self._write("leaks", self._leaks(an))
                self._write("performance",
                            self._performance(an, kinds or {}, sampled or {}, seconds))
        except BaseException:
            self.abort()
            raise
        for k in self.paths:
            os.replace(self._tmp[k], self.paths[k])
        return list(self.paths.values())

    def abort(self) -> None:
        for f in self.files.values():
            try:
                f.close()
            except OSError:
                pass
        for p in self._tmp.values():
            try:
                p.unlink()
            except OSError:
                pass

    def _write(self, kind: str, body: dict[str, Any]) -> None:
        doc = {"format": f"memscope.{kind}", "version": FORMAT_VERSION, "meta": self.meta}
        doc.update(body)
        self._tmp[kind].write_bytes(_dumps(doc))

    def _memory(self, an: Analysis) -> dict[str, Any]:
        st = an.stats()
        self.rel(0)  # settles the origin if no start was known
        t0 = self.t0 if self.t0 > 0 else _memory.origin(an, self.meta)
        summary = {k: v for k, v in st.items() if not k.startswith("by_")}
        summary["peak_t"] = self.rel(an.peak_t)
        for k in ("process_peak_t", "peak_census_t"):
            summary[k] = self.rel(summary[k])
        summary["duration_ns"] = _memory.end_of_run(an, t0)
        summary["first_event_t"] = self.rel(an.t_first)
        summary["t0"] = self.t0
        summary["allocations"] = self.bindings
        cv = _memory.census_vars(an, t0)
        top = []
        for k in _memory.ranked_vars(an, cv, 50):
            d = an.vars[k].as_dict()
            c = cv.get(k)
            d["retained_over_time"] = c["series"] if c else []
            d["peak_retained_bytes"] = c["retained_max"] if c else -1
            d["retained_bytes"] = c["retained"] if c else -1
            d["shared_bytes"] = c["shared"] if c else -1
            d["shallow_bytes"] = c["shallow"] if c else -1
            top.append(d)
        censuses = []
        for cz in an.censuses:
            row = cz.as_dict()
            row["t"] = self.rel(cz.t)
            censuses.append(row)
        ranked = sorted(an.vars.values(), key=lambda v: (-v.peak_retained, -v.peak_bytes, v.key))
        variables = []
        for vs in ranked[:MAX_VARIABLES]:
            d = vs.as_dict()
            d.pop("retained_over_time", None)  # top_variables has it, on the reports' clock
            variables.append(d)
        return {
            "summary": summary,
            "headline": _memory.headline(an, t0),
            "process_memory": {
                "available": an.rss_peak >= 0 or bool(an.memory),
                "peak_bytes": an.rss_peak,
                "peak_t": self.rel(an.rss_peak_t) if an.rss_peak >= 0 else -1,
                "last_bytes": an.rss_last,
                "series": [[self.rel(t), r] for t, r in an.memory],
            },
            "censuses": censuses,
            "by_type": st["by_type"],
            "by_scope": st["by_scope"],
            "by_thread": st["by_thread"],
            "by_task": st["by_task"],
            "top_variables": top,
            "variables": variables,
            "variables_not_listed": max(0, len(ranked) - MAX_VARIABLES),
            "timeline": [[self.rel(t), b] for t, b in an.timeline],
            "detail": self._detail_note(),
        }

    def _detail_note(self) -> dict[str, Any]:
        """Where every binding and object is (format ``bindings``), or how to get it."""
        if self.detail:
            return {k: self.paths[k].name for k in DETAIL}
        return {"not_written": "every binding and object: memscope report -f bindings"}

    def _finish_detail(self, an: Analysis) -> None:
        f = self.files["objects"]
        for life in _objects(an):
            f.write(_dumps(
                {
                    "oid": life.oid,
                    "type": life.type,
                    "size": life.size,
                    "first_binding": life.first_binding,
                    "t_first": self.rel(life.t_first),
                    "t_final": self.rel(life.t_final),
                    "lifetime_ns": life.t_final - life.t_first if life.t_final >= 0 else -1,
                }))
            f.write(b"\n")
        for fh in self.files.values():
            fh.close()

    def _lifetime(self, an: Analysis) -> dict[str, Any]:
        scopes = []
        by_scope = an.by_scope
        for sid, row in an.scopes.items():
            c = an.scope_instances.get(sid, [0, 0, 0])
            g = by_scope.get(f"{row.module}:{row.qualname}")
            scopes.append(
                {
                    "id": sid,
                    "module": row.module,
                    "qualname": row.qualname,
                    "kind": kind_name(row.kind, ScopeKind),
                    "file": row.file,
                    "line": row.line,
                    "enters": c[0],
                    "max_live": c[1],
                    "peak_bytes": g.peak_bytes if g else 0,
                }
            )
        return {
            "bindings": self.bindings,
            "scopes": scopes,
            "scope_tree": _tree(an.scope_tree()),
            "detail": self._detail_note(),
        }

    def _relationships(self, an: Analysis) -> dict[str, Any]:
        pairs = sorted(an.alias_pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        aliases = [{"a": a, "b": b, "count": n} for (a, b), n in pairs[:10_000]]
        shared: dict[int, list[str]] = {}
        for oid, bs in an.by_oid.items():
            if len(bs) > 1:
                shared[oid] = sorted({f"{b.scope}.{b.var}" for b in bs.values()})
        contains = [
            {
                "holder": v["base_key"],
                "held": v["key"],
                "via": "buffer",
                "holder_oid": v["base_oid"],
                "held_oid": v["oid"],
            }
            for v in self._buffers()["buffers"]
            if v.get("base_key")
        ]
        for lk in an.leaks:
            for h in lk.get("holders", []):
                contains.append(
                    {
                        "holder": str(h),
                        "held": _leak_name(lk, self.first_site),
                        "via": "leak_holder",
                        "holder_oid": -1,
                        "held_oid": lk.get("oid", -1),
                    }
                )
        return {
            "aliases": aliases,
            "alias_pairs": len(an.alias_pairs),
            "shared_objects": [{"oid": o, "names": n} for o, n in list(shared.items())[:10_000]],
            "containment": contains,
        }

    def _types(self, an: Analysis) -> dict[str, Any]:
        nvars: dict[str, int] = {}
        for vs in an.vars.values():
            for t in vs.types:
                nvars[t] = nvars.get(t, 0) + 1
        total = sum(g.bytes for g in an.by_type.values()) or 1
        rows = []
        for t, g in sorted(an.by_type.items(), key=lambda kv: (-kv[1].peak_bytes, kv[0])):
            mm = self.type_extra.get(t, [0, 0])
            rows.append(
                {
                    "type": t,
                    **g.as_dict(),
                    "variables": nvars.get(t, 0),
                    "avg_bytes": g.bytes // g.binds if g.binds else 0,
                    "min_bytes": mm[0],
                    "max_bytes": mm[1],
                    "share": round(g.bytes / total, 6),
                }
            )
        return {"types": rows, "type_count": len(rows)}

    def _buffers(self) -> dict[str, Any]:
        rows = [dict(r) for r in self.buffers]
        # views and their bases: a buffer lying inside another object's buffer
        spans = sorted(
            (r for r in rows if r["addr"] >= 0 and r["bufsize"] > 0),
            key=lambda r: (r["pid"], r["addr"], -r["bufsize"]),
        )
        stack: list[dict[str, Any]] = []
        for r in spans:
            while stack and (
                stack[-1]["pid"] != r["pid"]
                or stack[-1]["addr"] + stack[-1]["bufsize"] <= r["addr"]
            ):
                stack.pop()
            base = next((s for s in reversed(stack) if s["oid"] != r["oid"]), None)
            if base is not None and r["addr"] + r["bufsize"] <= base["addr"] + base["bufsize"]:
                r["base_key"] = base["key"]
                r["base_oid"] = base["oid"]
            stack.append(r)
        by_type = {t: {"count": n, "bytes": nb} for t, (n, nb) in self.buffer_types.items()}
        return {
            "buffers": rows,
            "count": len(rows) + self.buffers_over,
            "not_listed": self.buffers_over,
            "total_bytes": sum(nb for _n, nb in self.buffer_types.values()),
            "views": sum(1 for r in rows if r.get("base_key")),
            "by_type": by_type,
        }

    def _leaks(self, an: Analysis) -> dict[str, Any]:
        rows = []
        for lk in an.leaks:
            b = lk.get("binding")
            where = self.first_site.get(lk.get("oid", -1))
            rows.append(
                {
                    "oid": lk.get("oid", -1),
                    "type": lk.get("type", "?"),
                    "size": lk.get("size", -1),
                    "t": self.rel(lk.get("t", -1)),
                    "holders": [str(h) for h in lk.get("holders", [])],
                    "variable": b["key"]
                    if isinstance(b, dict) and "key" in b
                    else (
                        f"{b['module']}:{b['scope']}:{b['var']}"
                        if isinstance(b, dict)
                        else (where or {}).get("key", "")
                    ),
                    "file": b["file"] if isinstance(b, dict) else (where or {}).get("file", ""),
                    "line": b["line"] if isinstance(b, dict) else (where or {}).get("line", 0),
                }
            )
        groups = [
            {
                "variable": g["binding"].get("key", "") if isinstance(g.get("binding"), dict)
                else "",
                "type": g.get("type", "?"),
                "holders": [str(h) for h in g.get("holders", [])],
                "count": g["count"],
                "total_bytes": g["total_bytes"],
                "oids": g["oids"],
            }
            for g in sorted(an.leak_groups(), key=lambda g: -g["total_bytes"])
        ]
        return {
            "leak_check": leak_check_state(self.meta),
            "leaks": rows,
            "count": len(rows),
            "bytes": sum(max(r["size"], 0) for r in rows),
            "groups": groups,
        }

    def _performance(
        self,
        an: Analysis,
        kinds: dict[int, int],
        sampled: dict[int, tuple[int, int]],
        seconds: float,
    ) -> dict[str, Any]:
        counters = dict(self.meta.get("counters") or {})
        cap_bytes = int(counters.get("capture_bytes", 0))
        return {
            "events": an.events,
            "events_by_kind": {
                EVENT_NAMES.get(k, f"kind_{k}"): n for k, n in sorted(kinds.items())
            },
            "duration_ns": _memory.end_of_run(an, self.t0 if self.t0 > 0 else an.t_first),
            "capture": {
                "bytes": cap_bytes,
                "bytes_per_event": round(cap_bytes / an.events, 3) if an.events else 0,
                "complete": bool(self.meta.get("complete", False)),
                "recovery": self.meta.get("recovery", []),
            },
            "tracker": counters,
            "dropped": int(self.meta.get("dropped") or 0),
            "sampled": {
                "sites": len(sampled),
                "skipped": sum(s for _e, s in sampled.values()),
                "by_site": [
                    {"site": s, "every": e, "skipped": k} for s, (e, k) in sorted(sampled.items())
                ][:1000],
            },
            "errors": [{"t": self.rel(t), "where": w, "message": m} for t, w, m in an.errors[:100]],
            "error_count": len(an.errors),
            "report": {
                "seconds": round(seconds, 6),
                "events_per_second": round(an.events / seconds) if seconds > 0 else 0,
            },
        }


def _objects(an: Analysis) -> Iterator[Any]:
    yield from an.finished_objects
    yield from an.objects.values()


def _tree(node: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": node["name"],
        "peak_bytes": node["peak_bytes"],
        "children": [_tree(c) for c in node.get("children", {}).values()],
    }


def _leak_name(lk: dict[str, Any], first: dict[int, dict[str, Any]]) -> str:
    b = lk.get("binding")
    if isinstance(b, dict):
        return f"{b.get('module')}:{b.get('scope')}:{b.get('var')}"
    return str(first.get(lk.get("oid", -1), {}).get("key", f"<object {lk.get('oid')}>"))


def write_json(
    source: Any,
    out_dir: str | os.PathLike[str],
    name: str | None = None,
    meta: dict[str, Any] | None = None,
    *,
    aggregated: bool = True,
    detail: bool = False,
) -> list[Path]:
    """The JSON family for ``source`` (capture paths, captures or a live tracker);
    ``detail``: every binding and object too (JSON Lines)."""
    from memscope.reporters import load

    rep: JsonReport | None = None

    def cb(b: Binding) -> None:
        assert rep is not None
        rep.on_binding_end(b)

    # meta first: the files need the time origin before the first binding arrives
    pre = load.prepare(source, meta)
    rep = JsonReport(out_dir, name or pre.meta["name"], pre.meta, aggregated=aggregated,
                     detail=detail)
    run = pre.run(keep_history=False, on_binding_end=cb, attach=rep.attach)
    return rep.finish(run.analysis, kinds=run.kinds, sampled=run.sampled, seconds=run.seconds)
