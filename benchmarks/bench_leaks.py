"""What the leak check costs (issue 15), measured side by side in one process.

1. The death watch (memscope._deathwatch): every list, tuple, dict, set, frozenset,
   bytes and bytearray is deallocated through its wrapper once full mode starts it. A
   loop that makes and frees such objects is timed with the wrappers off, on with an
   empty table, and on with 100,000 addresses watched (rounds interleaved; the best of
   each is kept).
2. The leak check at the end of a full-mode run: a program whose heap holds N small
   objects reachable from its globals (and a few hundred leaks), instrumented by the
   import hook; ``tracker.leaks()`` timed against a ``gc.collect()`` of the same heap.

    python benchmarks/bench_leaks.py [--quick]
"""

from __future__ import annotations

import gc
import importlib
import sys
import tempfile
import textwrap
import time
from pathlib import Path


def churn(n: int) -> None:
    for i in range(n):
        a = [i, i]
        b = (i, a)
        c = {"k": b}
        d = bytes(8)
        del a, b, c, d


def bench_deathwatch(rounds: int, n: int) -> dict[str, float]:
    from memscope import _deathwatch as dw

    keep = [[i] for i in range(100_000)]
    best = {"off": 1e9, "on, empty": 1e9, "on, 100k watched": 1e9}
    for _ in range(rounds):
        for label in best:
            dw.stop()
            if label != "off":
                dw.start()
            if label == "on, 100k watched":
                for k in keep:
                    dw.watch(k, 0)
            t = time.perf_counter()
            churn(n)
            best[label] = min(best[label], time.perf_counter() - t)
            dw.stop()
    return best


PROGRAM = '''
_INDEX = {}
_LEAKED = []


def build(n):
    rows = [{"id": i, "name": str(i), "tags": [i, i + 1]} for i in range(n)]
    for r in rows:
        _INDEX[r["id"]] = r


def leak(i):
    buf = bytearray(1000 + i)
    _LEAKED.append(buf)


def main(n):
    build(n)
    for i in range(300):
        leak(i)
'''


def bench_leak_check(n: int) -> dict[str, float]:
    import memscope

    tmp = Path(tempfile.mkdtemp())
    (tmp / "leaky_app.py").write_text(textwrap.dedent(PROGRAM))
    sys.path.insert(0, str(tmp))
    tracker = memscope.init(mode="full", capture=False, census=False)
    with memscope.install_import_hook(["leaky_app"]):
        mod = importlib.import_module("leaky_app")
    mod.main(n)
    objects = len(gc.get_objects())
    t = time.perf_counter()
    gc.collect()
    collect = time.perf_counter() - t
    t = time.perf_counter()
    found = tracker.leaks()
    check = time.perf_counter() - t
    return {"heap objects (gc)": objects, "leaks": len(found), "gc.collect() s": collect,
            "leak check s": check, "ratio": check / collect}


def main() -> None:
    quick = "--quick" in sys.argv
    dw = bench_deathwatch(3 if quick else 7, 100_000 if quick else 300_000)
    base = dw["off"]
    print("death watch: make-and-free loop (4 watched types a turn), best of rounds")
    for k, v in dw.items():
        print(f"  {k:18s} {v * 1e3:8.1f} ms  {v / base:5.2f}x")
    for n in ((20_000,) if quick else (20_000, 200_000)):
        r = bench_leak_check(n)
        print(f"leak check, {n:,} rows: " + ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v:,}" for k, v in r.items()))


if __name__ == "__main__":
    main()
