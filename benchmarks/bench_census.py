"""Census cost (not a test): the walk in pure Python, the walk in C, and gc.collect().

For each heap shape, in a fresh process holding only that heap: a census of the one name
bound to it (``_Census``: roots, walk, the "held elsewhere" pass, totals; the collector
off, as ``census.take`` has it) with the pure-Python walk, the same with the C walk
(memscope/_censusc.c), and a full ``gc.collect()`` of the same process. Each is run
``--repeat`` times, interleaved, and the best time kept (the machine is shared). The
census also reports how many objects it walked; both walks must agree on that and on
every total (checked here too).

    .venv/bin/python benchmarks/bench_census.py [--repeat 5] [--scale 1.0]
        [--shapes strings,csv_rows,linked,int_dict]

Shapes (objects walked at --scale 1):
- strings: a list of 10^6 distinct strings (~10^6);
- csv_rows: csv.DictReader rows of a 10^5-line, 6-column file (~7*10^5: the header's
  strings shared by every row);
- linked: 3*10^5 instances of a class, each holding the next and an int (~6*10^5);
- int_dict: a dict of 5*10^5 ints to ints (~10^6).
"""

from __future__ import annotations

import argparse
import csv
import gc
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(os.environ.get("MEMSCOPE_BENCH_ROOT") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))

SHAPES = ("strings", "csv_rows", "linked", "int_dict")


class Linked:
    def __init__(self, nxt: Any, value: int) -> None:
        self.nxt = nxt
        self.value = value


def make(shape: str, scale: float) -> Any:
    if shape == "strings":
        return [f"item-{i}-{i * 7}" for i in range(int(1_000_000 * scale))]
    if shape == "csv_rows":
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["id", "name", "city", "amount", "currency", "note"])
        for i in range(int(100_000 * scale)):
            w.writerow([i, f"name{i}", f"city{i % 5000}", i * 3.25, "EUR", f"note {i}"])
        return list(csv.DictReader(io.StringIO(out.getvalue())))
    if shape == "linked":
        head = None
        for i in range(int(300_000 * scale)):
            head = Linked(head, i * 1000)
        return head
    if shape == "int_dict":
        return {i * 1000: i * 7000 for i in range(int(500_000 * scale))}
    raise SystemExit(f"unknown shape {shape!r}: {', '.join(SHAPES)}")


def one_census(data: Any, accelerated: bool) -> tuple[float, dict[str, Any]]:
    from memscope import census

    old = census.ACCELERATED
    census.ACCELERATED = accelerated
    gc.disable()
    try:
        t0 = time.perf_counter()
        c = census._Census(census._Scopes())
        c.add_root(census.Root(0, 0, "data", data, 1))
        c.run()
        totals = c.totals()
        t1 = time.perf_counter()
        facts = {"objects": c.objects, "records": c.record_count(), "totals": totals}
        c.release()
        del c
    finally:
        census.ACCELERATED = old
        gc.enable()
    gc.collect()  # the census sits in a cycle (its own stack_roots frame): gone now
    return t1 - t0, facts


def measure(shape: str, scale: float, repeat: int) -> dict[str, Any]:
    """In this process: build the shape, then time the three, interleaved."""
    from memscope import census

    if not census.ACCELERATED:
        raise SystemExit("memscope._censusc is not built (pip install -e .), or "
                         "MEMSCOPE_CENSUS_PURE is set")
    data = make(shape, scale)
    gc.collect()
    best = {"pure": float("inf"), "c": float("inf"), "gc": float("inf")}
    facts: dict[str, Any] = {}
    for _ in range(repeat):
        t, f_pure = one_census(data, False)
        best["pure"] = min(best["pure"], t)
        t, f_c = one_census(data, True)
        best["c"] = min(best["c"], t)
        if f_pure != f_c:
            raise SystemExit(f"{shape}: the two walks disagree: {f_pure} != {f_c}")
        facts = f_c
        t0 = time.perf_counter()
        gc.collect()
        best["gc"] = min(best["gc"], time.perf_counter() - t0)
    return {"shape": shape, "objects": facts["objects"], "tracked": len(gc.get_objects()),
            **best}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--one", help=argparse.SUPPRESS)  # the child: one shape, JSON out
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.scale, args.repeat)))
        return
    print(f"Python {sys.version.split()[0]}, best of {args.repeat}, scale {args.scale}")
    print()
    print("| heap | objects walked | gc-tracked objects | pure-Python census | C census "
          "| gc.collect() | C / gc | pure / gc | pure / C |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for shape in args.shapes.split(","):
        out = subprocess.run(
            [sys.executable, __file__, "--one", shape, "--scale", str(args.scale),
             "--repeat", str(args.repeat)],
            capture_output=True, text=True, check=False,
        )
        if out.returncode != 0:
            raise SystemExit(out.stderr or out.stdout)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {shape} | {r['objects']:,} | {r['tracked']:,} | {r['pure'] * 1e3:.1f} ms "
              f"| {r['c'] * 1e3:.1f} ms | {r['gc'] * 1e3:.1f} ms | {r['c'] / r['gc']:.1f}x "
              f"| {r['pure'] / r['gc']:.0f}x | {r['pure'] / r['c']:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
