"""The cost of one bind on the hot path, as a ratio to an empty Python call.

Run: ``python benchmarks/bench_hooks.py`` (or ``nox -s bench -- hooks``). Every number is
measured in the same process, interleaved, best of several repeats, so the ratio holds
on a noisy shared machine even when the absolute times don't.
"""

from __future__ import annotations

import argparse
import gc
import timeit
from typing import Any

from memscope import _hooks


class NullSink:
    """Discards events: measures recording, not writing (bench_capture measures that)."""

    dropped = 0

    def write(self, events: list[Any]) -> None:
        pass


def empty(site: int, value: Any, tok: int) -> Any:
    return value


VALUES: dict[str, Any] = {
    "int": 12345,
    "small list": [1, 2, 3],
    "10^5-element list": list(range(100_000)),
    "dict of dicts": {i: {j: str(j) for j in range(10)} for i in range(100)},
}


def measure(number: int, repeat: int) -> list[tuple[str, str, float, float]]:
    old = _hooks.set_sink(NullSink())
    rows = []
    try:
        m = _hooks.register(
            _hooks.HOOKS_VERSION, "bench.py", "bench", (("<module>", 1, 1), ("f", 3, 2)),
            tuple((10 + i, 4, 1, f"v{i}", 1) for i in range(len(VALUES) + 2)),
        )  # fmt: skip
        tok = m.enter(1, -1)
        bind = m.bind
        for n_mode, mode in enumerate(("fast", "full")):
            _hooks.configure(
                full=mode == "full", flush_at=8192, deep_objects=100_000, deep_ns=10**9
            )
            for i, (label, value) in enumerate(VALUES.items()):
                _hooks.set_sampling(False)
                bind(i, value, tok)  # classify the type, fill the deep-size cache
                g = {"bind": bind, "empty": empty, "v": value, "i": i, "tok": tok}
                base = bind_t = float("inf")
                for _ in range(repeat):  # interleaved: both see the same machine load
                    base = min(base, timeit.timeit("empty(i, v, tok)", globals=g, number=number))
                    bind_t = min(bind_t, timeit.timeit("bind(i, v, tok)", globals=g, number=number))
                rows.append((mode, label, bind_t / number * 1e9, bind_t / base))
            # a site that has bound only small ints is sampled (1 in 64)
            _hooks.set_sampling(True)
            site = len(VALUES) + n_mode  # a fresh site: stopping sampling is for good
            for k in range(_hooks.SCALAR_STREAK + 1):
                bind(site, k, tok)
            g = {"bind": bind, "empty": empty, "site": site, "tok": tok}
            base = bind_t = float("inf")
            for _ in range(repeat):
                base = min(base, timeit.timeit("empty(site, 7, tok)", globals=g, number=number))
                bind_t = min(bind_t, timeit.timeit("bind(site, 7, tok)", globals=g, number=number))
            rows.append((mode, "int, sampled site", bind_t / number * 1e9, bind_t / base))
            # the inline guard that instrumented code runs once the site's guard is off
            g["g"] = m.g
            m.g[site] = 0
            base = guard_t = float("inf")
            for _ in range(repeat):
                base = min(base, timeit.timeit("empty(site, 7, tok)", globals=g, number=number))
                guard_t = min(guard_t, timeit.timeit("g[site] and bind(site, 7, tok)",
                                                     globals=g, number=number))
            rows.append((mode, "int, guard off (no call)", guard_t / number * 1e9,
                         guard_t / base))
            m.g[site] = 1
            _hooks._stop_sampling(site)
        m.exit(tok)
    finally:
        _hooks.configure(full=False, flush_at=8192, deep_objects=100_000, deep_ns=20_000_000)
        _hooks.set_sampling(True)
        _hooks.set_sink(old)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--number", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    gc.collect()
    empty_ns = min(timeit.repeat("empty(0, 1, 1)", globals={"empty": empty}, number=args.number,
                                 repeat=args.repeat)) / args.number * 1e9  # fmt: skip
    print(f"empty Python call: {empty_ns:.1f} ns\n")
    print("| mode | value | one bind | ratio to an empty call |")
    print("|---|---|---|---|")
    for mode, label, ns, ratio in measure(args.number, args.repeat):
        print(f"| {mode} | {label} | {ns:.0f} ns | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
