"""Capture and reporter benchmark (not a test): 10^6 real hot-path events.

Measures, in one run: capture bytes per event, write throughput (events handed to the
sink -> bytes on disk), read throughput, read + JSON family throughput, peak memory of
each reporter (tracemalloc, in a fresh subprocess each), and the capture's size and
write time against the same events as JSON (orjson, one list of arrays).

    .venv/bin/python benchmarks/bench_capture.py [--events 1000000] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synthesize(n: int) -> list[tuple]:
    """Real events from the hot path: a module registered through _hooks.register,
    functions entered, names bound (ints, lists, strings, bytes), exited."""
    from memscope import _hooks

    _hooks.configure(full=False, flush_at=1 << 30, deep_objects=1000, deep_ns=10**6)
    if hasattr(_hooks, "set_sampling"):
        _hooks.set_sampling(False)
    scopes = [("<module>", 1, 1), ("load", 3, 10), ("Parser.parse", 4, 20)]
    sites = [(11, 4, 1, "rows", 1), (12, 4, 1, "line", 5), (13, 8, 1, "total", 2),
             (21, 8, 2, "self", 9), (22, 8, 2, "tokens", 1), (23, 8, 2, "buf", 1)]
    h = _hooks.register(_hooks.HOOKS_VERSION, "/app/parser.py", "app.parser", scopes, sites)
    _hooks._buf.clear()
    vals = [1, [1, 2, 3], "some text", b"x" * 100, 3.5, (1, 2)]
    bind, enter, exit_ = h.bind, h.enter, h.exit
    i = 0
    while len(_hooks._buf) < n:
        tok = enter(1, -1)
        for s in range(6):
            bind(s, vals[(i + s) % 6], tok)
        exit_(tok)
        i += 1
    evs = [*_hooks.tables(), *_hooks._buf[: n - len(_hooks.tables())]]
    _hooks._buf.clear()
    return evs


def peak_of(kind: str, capture: Path, out: Path) -> tuple[float, int]:
    """(seconds, peak bytes) of one reporter, in a fresh process under tracemalloc."""
    code = f"""
import time, tracemalloc, sys
sys.path.insert(0, {str(ROOT)!r})
tracemalloc.start()
t = time.perf_counter()
from memscope.reporters import report
report([{str(capture)!r}], {str(out)!r}, "bench", {kind!r})
print(time.perf_counter() - t, tracemalloc.get_traced_memory()[1])
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    s, p = r.stdout.split()
    return float(s), int(p)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-peaks", action="store_true")
    args = ap.parse_args()
    import orjson

    from memscope.capture import CaptureSink, read_capture
    from memscope.reporters.json_report import write_json

    work = Path(args.out or tempfile.mkdtemp(prefix="memscope-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    evs = synthesize(args.events)
    n = len(evs)
    res: dict[str, object] = {"events": n, "python": sys.version.split()[0]}

    # write: the sink as the runtime uses it, batches of 8192
    sink = CaptureSink(work, "bench")
    t = time.perf_counter()
    for i in range(0, n, 8192):
        sink.write(evs[i : i + 8192])
    sink.close()
    w = time.perf_counter() - t
    cap = sink.path
    size = cap.stat().st_size
    res.update(capture_bytes=size, bytes_per_event=size / n, write_s=w,
               write_events_per_s=n / w)

    # the same events as JSON
    t = time.perf_counter()
    js = orjson.dumps(evs)
    (work / "events.json").write_bytes(js)
    jw = time.perf_counter() - t
    t = time.perf_counter()
    back = orjson.loads((work / "events.json").read_bytes())
    jr = time.perf_counter() - t
    res.update(json_bytes=len(js), json_write_s=jw, json_read_s=jr,
               size_ratio=len(js) / size)
    del js, back

    # read back
    t = time.perf_counter()
    m = sum(1 for _ in read_capture(cap).events())
    r = time.perf_counter() - t
    assert m == n, (m, n)
    res.update(read_s=r, read_events_per_s=n / r)

    # read + the JSON family
    t = time.perf_counter()
    paths = write_json([cap], work / "json", "bench")
    rj = time.perf_counter() - t
    res.update(read_json_s=rj, read_json_events_per_s=n / rj,
               json_family_bytes=sum(p.stat().st_size for p in paths))

    if not args.no_peaks:
        peaks = {}
        for kind in ("json", "summary", "html", "svg"):
            s, p = peak_of(kind, cap, work / f"peak_{kind}")
            peaks[kind] = {"seconds": round(s, 2), "peak_bytes": p}
        res["reporters"] = peaks
    print(json.dumps(res, indent=2))
    print(
        f"\n{n:,} events: capture {size / 1e6:.1f} MB ({size / n:.2f} B/event), JSON "
        f"{len(orjson.dumps([])) and res['json_bytes'] / 1e6:.1f} MB ({res['size_ratio']:.1f}x "
        f"larger); write {w:.2f} s ({n / w / 1e6:.2f} M events/s); read {r:.2f} s; "
        f"read + JSON family {rj:.2f} s"
    )
    if args.out is None:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("MEMSCOPE_CAPTURE", "0")
    main()
