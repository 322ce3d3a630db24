"""What the age proofs cost (issue 15: objects older than the scope that first names them
are not its leaks). At every object's first watch in full mode, ``_hooks._note_age``
reads the young list back to a poll's marker (``_deathwatch.older``) and may take a
new poll. Timed here: an instrumented function that binds fresh lists, tuples and
objects (each a first watch; sampling off, so each is recorded) and one that reads old
ones from a registry, with the proofs on and off (``_hooks._age`` set to None), rounds
interleaved, the best of each kept.

Then the raw allocator's hook that sees large str die (``_deathwatch.watch_large``): a
loop that makes and frees a 1 KB bytes and a 1 KB str (both the raw allocator's
blocks), in a process where the hook is installed with 1,000 strings watched and in one
where it is not (the hook cannot be taken out of a process), alternated.

    python benchmarks/bench_leak_age.py [--quick]
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

PROGRAM = textwrap.dedent("""
    REGISTRY = [(i, [i]) for i in range(20_000)]


    class Row:
        def __init__(self, i):
            self.i = i


    def fresh(n):
        for i in range(n):
            a = [i]
            b = (i, a)
            c = Row(i)


    def read(n):
        for i in range(n):
            entry = REGISTRY[i % 20_000]
            items = entry[1]
""")


def main() -> None:
    quick = "--quick" in sys.argv
    n, rounds = (5_000, 3) if quick else (20_000, 7)
    import memscope
    from memscope import _hooks

    memscope.init(mode="full", capture=False, census=False)
    _hooks.set_sampling(False)  # every bind recorded: small values are not sampled away
    age = _hooks._age
    assert age is not None, "the death watch's age proofs are not built"
    with tempfile.TemporaryDirectory() as d:
        Path(d, "age_prog.py").write_text(PROGRAM)
        sys.path.insert(0, d)
        with memscope.install_import_hook(["age_prog"]):
            prog = importlib.import_module("age_prog")
        best: dict[str, float] = {}
        for _ in range(rounds):
            for label, on in (("on", True), ("off", False)):
                _hooks._age = age if on else None
                for fn in ("fresh", "read"):
                    t0 = time.perf_counter()
                    getattr(prog, fn)(n)
                    dt = time.perf_counter() - t0
                    key = f"{fn} {label}"
                    best[key] = min(best.get(key, 1e9), dt)
                _hooks.flush()
        _hooks._age = age
    for fn in ("fresh", "read"):
        on, off = best[f"{fn} on"], best[f"{fn} off"]
        print(f"{fn:6} ({n} iterations): proofs on {on * 1e3:8.1f} ms, off {off * 1e3:8.1f} ms,"
              f" {on / off:.2f}x ({(on - off) / n * 1e6:+.2f} us an iteration)")


RAW = textwrap.dedent("""
    import sys, time
    from memscope import _deathwatch as dw
    dw.start()
    keep = []
    if sys.argv[1] == "on":
        for i in range(1000):
            s = "q" * 2000 + str(i)
            keep.append(s)
            assert dw.watch_large(s, 1)
    def loop(n):
        for i in range(n):
            b = bytes(1000)
            t = "a" * (1000 + i % 2)
            del b, t
    best = 1e9
    for _ in range(5):
        t0 = time.perf_counter()
        loop(int(sys.argv[2]))
        best = min(best, time.perf_counter() - t0)
    print(best)
""")


def raw_hook(quick: bool) -> None:
    n = 100_000 if quick else 300_000
    best = {"off": 1e9, "on": 1e9}
    for _ in range(2 if quick else 4):
        for label in best:
            out = subprocess.run([sys.executable, "-c", RAW, label, str(n)], check=True,
                                 capture_output=True, text=True).stdout
            best[label] = min(best[label], float(out))
    print(f"raw hook ({n} iterations): installed {best['on'] * 1e3:.1f} ms, not "
          f"{best['off'] * 1e3:.1f} ms, {best['on'] / best['off']:.2f}x")


if __name__ == "__main__":
    main()
    raw_hook("--quick" in sys.argv)
