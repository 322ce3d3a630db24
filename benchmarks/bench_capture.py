"""Capture and reporter benchmark (not a test): 10^6 real hot-path events.

Measures, in one run: capture bytes per event, write throughput (events handed to the
sink -> bytes on disk), read throughput, read + JSON family throughput, peak memory of
each reporter (tracemalloc, in a fresh subprocess each), and the capture's size and
write time against the same events as JSON (orjson, one list of arrays).

With ``--baseline REF`` it also measures, side by side in one run, the capture code of
git revision REF ("before") against the working tree ("after"): the same pickled events
written through ``CaptureSink`` (time spent in ``write``, and until ``close`` returns),
read back, and recorded live through the real hot path with the sink installed (the
overhead per event against a sink that discards). Each side runs in a fresh process,
alternating, ``--repeat`` times; the best time of each is kept (the machine is shared).

    .venv/bin/python benchmarks/bench_capture.py [--events 1000000] [--out DIR]
        [--no-peaks] [--baseline REF [--repeat 3] [--family]]
    .venv/bin/python benchmarks/bench_capture.py --peaks-only [--events N]
        [--kinds json,summary,html,svg] [--peaks-baseline REF] [--untraced]
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

ROOT = Path(os.environ.get("MEMSCOPE_BENCH_ROOT") or Path(__file__).resolve().parents[1])
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
    evs = [*_hooks.tables(), *_hooks._buf.snapshot()[: n - len(_hooks.tables())]]
    _hooks._buf.clear()
    return evs


def peak_of(
    kind: str, capture: Path, out: Path, root: Path | None = None, traced: bool = True
) -> tuple[float, int, int]:
    """(seconds, peak traced bytes, max RSS bytes) of one reporter, in a fresh process
    under tracemalloc (started before memscope is imported), with memscope imported
    from ``root`` (default: this tree). ``traced=False``: no tracemalloc (peak -1), so
    the seconds and the max RSS are the reporter's own (tracemalloc's bookkeeping for
    millions of short-lived blocks costs far more RSS than the reporters' peak)."""
    code = f"""
import resource, time, tracemalloc, sys
sys.path.insert(0, {str(root or ROOT)!r})
if {traced!r}:
    tracemalloc.start()
t = time.perf_counter()
from memscope.reporters import report
report([{str(capture)!r}], {str(out)!r}, "bench", {kind!r})
# the peak RSS of this process image: VmHWM restarts at exec, ru_maxrss does not (a
# child forked from a bench holding millions of events would report the bench's RSS)
try:
    with open("/proc/self/status") as f:
        hwm = [int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmHWM:")][0]
except (OSError, IndexError, ValueError):
    hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(time.perf_counter() - t, tracemalloc.get_traced_memory()[1] if {traced!r} else -1, hwm)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    s, p, rss = r.stdout.split()
    return float(s), int(p), int(rss)


def baseline_tree(ref: str, work: Path) -> Path:
    """The ``memscope`` package of git revision ``ref``, extracted under ``work``."""
    import io
    import tarfile

    base = work / f"baseline-{ref.replace('/', '_')}"
    if not (base / "memscope").exists():
        base.mkdir(parents=True, exist_ok=True)
        arch = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "memscope"],
                              capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(arch)) as tf:
            tf.extractall(base)
    return base


def peaks(
    capture: Path, work: Path, kinds: list[str], baseline: str | None, traced: bool = True
) -> dict:
    """Peak memory of each reporter on ``capture`` (and of revision ``baseline``'s)."""
    sides: dict[str, Path] = {"after": ROOT}
    if baseline:
        sides = {"before": baseline_tree(baseline, work), "after": ROOT}
    res: dict[str, dict] = {}
    for kind in kinds:
        for side, root in sides.items():
            s, p, rss = peak_of(kind, capture, work / f"peak_{side}_{kind}", root, traced)
            res.setdefault(kind, {})[side] = {
                "seconds": round(s, 2), "peak_bytes": p, "max_rss_bytes": rss
            }
            print(f"  {kind:8s} {side:6s} traced peak {p / 1e6:8.1f} MB  max RSS "
                  f"{rss / 1e6:8.1f} MB  {s:7.1f} s", file=sys.stderr, flush=True)
    return res


class _Discard:
    """A sink that drops everything: the hot path's own cost."""

    def write(self, events: list) -> None:
        pass

    def close(self) -> None:
        pass

    def after_fork(self, tables: list) -> None:
        pass


def live(n: int, sink: object) -> float:
    """Seconds to record n events through the real hot path into ``sink`` (flushes of
    8192 events, as ``memscope run`` does), including the final flush."""
    from memscope import _hooks

    _hooks.configure(full=False, flush_at=8192, deep_objects=1000, deep_ns=10**6)
    if hasattr(_hooks, "set_sampling"):
        _hooks.set_sampling(False)
    _hooks.set_sink(sink)
    h = _hooks.register(
        _hooks.HOOKS_VERSION, "/app/live.py", "app.live", [("f", 1, 1)],
        [(i, 1, 1, f"v{i}", 1) for i in range(6)],
    )
    vals = [1, [1, 2, 3], "some text", b"x" * 100, 3.5, (1, 2)]
    bind, enter, exit_ = h.bind, h.enter, h.exit
    t = time.perf_counter()
    for i in range(n // 8):
        tok = enter(0, -1)
        for s in range(6):
            bind(s, vals[(i + s) % 6], tok)
        exit_(tok)
    _hooks.flush()
    return time.perf_counter() - t


def worker(events_path: str, out: str, family: bool) -> None:
    """One side of --baseline: this process imports memscope from MEMSCOPE_BENCH_ROOT."""
    import pickle  # the bench's own temporary file, never a capture

    from memscope.capture import CaptureSink, read_capture

    with open(events_path, "rb") as f:
        evs = pickle.load(f)
    n = len(evs)
    res: dict[str, float] = {}
    sink = CaptureSink(out, "w")
    inside = 0.0
    t = time.perf_counter()
    for i in range(0, n, 8192):
        t1 = time.perf_counter()
        sink.write(evs[i : i + 8192])
        inside += time.perf_counter() - t1
    sink.close()
    res["write_s"] = inside
    res["write_close_s"] = time.perf_counter() - t
    res["bytes"] = sink.path.stat().st_size
    del evs
    t = time.perf_counter()
    m = sum(1 for _ in read_capture(sink.path).events())
    res["read_s"] = time.perf_counter() - t
    assert m == n, (m, n)
    base = live(n, _Discard())
    cap = CaptureSink(out, "live")
    t = live(n, cap)
    t0 = time.perf_counter()
    cap.close()
    res["live_overhead_ns"] = (t + time.perf_counter() - t0 - base) / n * 1e9
    if family:
        from memscope.reporters.json_report import write_json

        t = time.perf_counter()
        write_json([sink.path], Path(out) / "json", "bench")
        res["read_json_s"] = time.perf_counter() - t
    print(json.dumps(res))


def compare(ref: str, evs: list[tuple], work: Path, repeat: int, family: bool) -> dict:
    """Before (git revision ``ref``) and after (this tree), alternating fresh processes."""
    import pickle

    base = baseline_tree(ref, work)
    ep = work / "events.pickle"
    with open(ep, "wb") as f:
        pickle.dump(evs, f, protocol=pickle.HIGHEST_PROTOCOL)
    sides = {"before": base, "after": ROOT}
    best: dict[str, dict[str, float]] = {k: {} for k in sides}
    for r in range(repeat):
        for side, root in sides.items():
            out = work / f"{side}{r}"
            out.mkdir()
            env = {**os.environ, "MEMSCOPE_BENCH_ROOT": str(root), "MEMSCOPE_CAPTURE": "0"}
            cmd = [sys.executable, __file__, "--worker", str(ep), str(out)]
            if family and r == 0:
                cmd.append("--family")
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            for k, v in json.loads(p.stdout.splitlines()[-1]).items():
                best[side][k] = min(best[side].get(k, v), v)
    best["_meta"] = {"ref": ref, "events": len(evs), "repeat": repeat}  # type: ignore[assignment]
    return best


def print_compare(best: dict) -> None:
    meta = best["_meta"]
    n = meta["events"]
    ref, repeat = meta["ref"], meta["repeat"]
    print(f"\nbefore = {ref}, after = working tree; {n:,} events; best of {repeat}")
    print(f"{'measure':34s} {'before':>12s} {'after':>12s} {'ratio':>7s}")
    rows = [
        ("write: time in sink.write (s)", "write_s", 1),
        ("write + close (s)", "write_close_s", 1),
        ("capture bytes/event", "bytes", 1 / n),
        ("read all events (s)", "read_s", 1),
        ("live hot path + sink, ns/event", "live_overhead_ns", 1),
        ("read + JSON family (s)", "read_json_s", 1),
    ]
    for label, key, scale in rows:
        if key in best["before"] and key in best["after"]:
            b, a = best["before"][key] * scale, best["after"][key] * scale
            print(f"{label:34s} {b:12.3f} {a:12.3f} {b / a if a else 0:6.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-peaks", action="store_true")
    ap.add_argument("--baseline", default=None, help="git revision to compare against")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--family", action="store_true", help="with --baseline: time the JSON family")
    ap.add_argument("--worker", nargs=2, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--peaks-only", action="store_true",
                    help="only the reporters' peak memory (no write/read/JSON timings)")
    ap.add_argument("--kinds", default="json,summary,html,svg",
                    help="reporters whose peak memory is measured")
    ap.add_argument("--peaks-baseline", default=None,
                    help="git revision whose reporters are measured side by side")
    ap.add_argument("--untraced", action="store_true",
                    help="reporters run without tracemalloc: own seconds and max RSS only")
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.family)
        return
    import orjson

    from memscope.capture import CaptureSink, read_capture
    from memscope.reporters.json_report import write_json

    work = Path(args.out or tempfile.mkdtemp(prefix="memscope-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    evs = synthesize(args.events)
    n = len(evs)
    res: dict[str, object] = {"events": n, "python": sys.version.split()[0]}
    kinds = [k for k in args.kinds.split(",") if k]
    if args.peaks_only:
        sink = CaptureSink(work, "bench")
        for i in range(0, n, 8192):
            sink.write(evs[i : i + 8192])
        sink.close()
        del evs
        res["capture_bytes"] = sink.path.stat().st_size
        res["reporters"] = peaks(sink.path, work, kinds, args.peaks_baseline,
                                 not args.untraced)
        print(json.dumps(res, indent=2))
        if args.out is None:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        return

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
        res["reporters"] = peaks(cap, work, kinds, args.peaks_baseline)
    if args.baseline:
        res["compare"] = compare(args.baseline, evs, work, args.repeat, args.family)
    print(json.dumps(res, indent=2))
    print(
        f"\n{n:,} events: capture {size / 1e6:.1f} MB ({size / n:.2f} B/event), JSON "
        f"{len(orjson.dumps([])) and res['json_bytes'] / 1e6:.1f} MB ({res['size_ratio']:.1f}x "
        f"larger); write {w:.2f} s ({n / w / 1e6:.2f} M events/s); read {r:.2f} s; "
        f"read + JSON family {rj:.2f} s"
    )
    if args.baseline:
        print_compare(res["compare"])  # type: ignore[arg-type]
    if args.out is None:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("MEMSCOPE_CAPTURE", "0")
    main()
