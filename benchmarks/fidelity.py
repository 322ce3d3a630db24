"""Does memscope tell the truth about memory? Its numbers against referees (not a test).

Each workload is a small realistic program (written to a temporary folder and run as a
subprocess) with a clear moment of peak, where it calls ``probe.peak()``, holds its big
variables alive for a moment (``FIDELITY_HOLD``, 0.3 s, so the monitor's growth
censuses can see them) and then, for the referee, drops one of them. The same program
is run several ways, each in a process of its own:

- **truth** (plain python, one run per probe): ``tracemalloc`` from the program's start;
  at the peak ``gc.collect()`` and the traced bytes, then the probe's variables are
  dropped (``del``, in their own scope or thread), ``gc.collect()`` and the traced bytes
  again: the difference is what dropping those names frees. A run that drops nothing
  gives tracemalloc's peak and the traced bytes at the peak moment.
- **plain** (``--repeat`` runs): the process's peak (VmHWM; ``ru_maxrss`` elsewhere),
  resident memory at the peak moment and the wall time; **gc**: ``gc.collect()`` timed at the peak.
- **memscope** (``memscope run --no-report``, default mode, no other flag; ``--repeat``
  runs): from the capture, the process peak (VmHWM), the census nearest the peak
  (``Analysis.peak_census()``), per-variable retained and shared bytes, named bytes,
  the censuses' number and cost; and the wall time.
- **snapshot** (a diagnostic, not a target): under ``memscope run`` again, with
  ``memscope.snapshot()`` called at the peak, so a census is taken exactly there: it
  tells a census that measures wrong apart from one that was taken at the wrong time.

Targets (pass/fail per workload, printed and written, never asserted): every variable
retaining >= 5% of the peak (the plain run's VmHWM) is listed at the peak
census with retained bytes (retained + shared, for names that share their data) within
10% of the referee; named + unnamed as the reports give them (the process peak less
what memscope measured as its own at the peak census) within 5% of the plain run's
peak. Also reported: the same at the peak census's moment (its resident memory less
memscope's own: lower where the peak was a moment the census could not catch),
memscope's process peak against the plain one, memscope's own memory as it measured
it beside its referee (resident memory at the peak moment, memscope run minus plain),
the census's cost against a ``gc.collect()`` of the same heap, and the wall-time
ratio.

    python benchmarks/fidelity.py [--only NAME[,NAME]] [--repeat N] [--json out.json]
                                  [--markdown] [--list] [--keep DIR] [--render out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # memscope from this checkout, when run as a script

PY = sys.executable
TIMEOUT = 300.0  # seconds: one subprocess
SIGNIFICANT = 0.05  # a variable retaining this fraction of the peak must be right...
TOLERANCE = 0.10  # ...to within this fraction of the referee
PEAK_TOLERANCE = 0.05  # named + unnamed against the plain run's peak
MB = 1 << 20

# The peak hook every workload imports. It lives in a folder of its own on PYTHONPATH,
# outside the workloads' folder, so ``memscope run`` does not instrument it.
PROBE = '''\
"""The peak hook of a fidelity workload (written by benchmarks/fidelity.py).

FIDELITY_MODE: plain (hold at the peak), gc (time gc.collect() there), truth
(tracemalloc from the start; the bytes freed when FIDELITY_DROP's names are dropped at
the peak, then exit; with nothing to drop, the program runs to its end), memscope
(hold; the program runs under memscope run), snapshot (memscope.snapshot() at the
peak, then hold). Results go to FIDELITY_OUT as JSON.
"""
import atexit
import gc
import json
import os
import resource
import time

MODE = os.environ.get("FIDELITY_MODE", "plain")
DROP = frozenset(n for n in os.environ.get("FIDELITY_DROP", "").split(",") if n)
OUT = os.environ.get("FIDELITY_OUT", "")
HOLD = float(os.environ.get("FIDELITY_HOLD", "0.3"))
if MODE == "truth":
    import tracemalloc

    tracemalloc.start()


def _rss():
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


_t0 = time.perf_counter()
_result = {"mode": MODE, "drop": sorted(DROP), "rss_start": _rss()}


def _write():
    if OUT:
        with open(OUT, "w") as f:
            json.dump(_result, f)


def peak():
    """The program is at its peak: its big variables are alive."""
    _result["rss_at_peak"] = _rss()
    _result["t_peak"] = time.perf_counter() - _t0
    if MODE == "truth":
        gc.collect()
        _result["before"], _result["traced_peak"] = tracemalloc.get_traced_memory()
        return
    if MODE == "gc":
        times = []
        for _ in range(3):
            t = time.perf_counter_ns()
            gc.collect()
            times.append(time.perf_counter_ns() - t)
        _result["gc_ns"] = times
        _result["gc_tracked"] = len(gc.get_objects())
        return
    if MODE == "snapshot":
        import memscope

        memscope.snapshot()
    _result["hold_start_ns"] = time.perf_counter_ns()  # memscope's clock
    time.sleep(HOLD)
    _result["hold_end_ns"] = time.perf_counter_ns()


def drop(name):
    """Whether this run drops ``name`` (truth runs only)."""
    return MODE == "truth" and name in DROP


def after():
    """The probe's names are dropped: a truth run measures and ends here (one that
    drops nothing runs on, for tracemalloc's peak over the whole program)."""
    if MODE == "truth" and DROP:
        gc.collect()
        _result["after"] = tracemalloc.get_traced_memory()[0]
        _result["freed"] = _result["before"] - _result["after"]
        _write()
        os._exit(0)


def _peak_rss():
    # VmHWM: this process's own high-water mark. ru_maxrss is not: Linux keeps, across
    # exec, the high-water mark of the image exec replaced, and subprocess forks with
    # vfork (the parent's own memory): a child of a large harness reads at least the
    # harness's peak (110.7 MB for every plain run of shared and closure, whose own
    # peaks are 62 and 41 MB)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@atexit.register
def _at_exit():
    _result["maxrss"] = _peak_rss()
    _result["t_end"] = time.perf_counter() - _t0
    if MODE == "truth":
        _result["traced_peak_end"] = tracemalloc.get_traced_memory()[1]
    _write()
'''


@dataclass
class Probe:
    """What one truth run drops, and which census rows say the same thing."""

    label: str
    drop: tuple[str, ...]  # names the truth run drops at the peak
    vars: tuple[str, ...]  # census rows: "qualname:var" (module left out), "qualname:*"
    kind: str = "retained"  # retained: sum of retained; group: the names share their
    # data, the referee drops them all: sum of retained + the largest shared
    thread: str | None = None  # only the scope instance running in this thread


@dataclass
class Workload:
    name: str
    title: str
    source: str
    probes: list[Probe] = field(default_factory=list)


def _src(text: str) -> str:
    return textwrap.dedent(text).lstrip()


WORKLOADS: list[Workload] = [
    Workload(
        "append", "a list bound empty, then appended to 300k times (function local)",
        _src('''
        import fidelity_probe as probe


        def main():
            events = []
            for i in range(300_000):
                events.append((i, f"user{i % 5000}", i * 0.25))
            probe.peak()  # events holds 300k tuples
            if probe.drop("events"):
                del events
            probe.after()
            return len(events)


        print(main())
        '''),
        [Probe("events", ("events",), ("main:events",))],
    ),
    Workload(
        "dict_index", "a dict index built key by key at module level",
        _src('''
        import fidelity_probe as probe

        index = {}
        for lineno in range(300_000):
            word = f"term{lineno % 100_000:06d}"
            index.setdefault(word, []).append(lineno)
        probe.peak()  # 100k keys, each a list of three line numbers
        if probe.drop("index"):
            del index
        probe.after()
        print(len(index))
        '''),
        [Probe("index", ("index",), ("<module>:index",))],
    ),
    Workload(
        "numpy_views", "NumPy arrays, and views of them (a view keeps its base alive)",
        _src('''
        import fidelity_probe as probe
        import numpy as np


        def main():
            rng = np.random.default_rng(0)
            readings = rng.random((1500, 1500))  # 18 MB, its own buffer
            smoothed = (readings[:-1] + readings[1:]) / 2  # another 18 MB
            head = rng.random((2000, 1000))[:50]  # a 50-row view: its 16 MB base has no name
            grid = np.zeros((1000, 1000))  # 8 MB
            row = grid[10]  # a view of grid: both names keep its buffer
            probe.peak()
            if probe.drop("readings"):
                del readings
            if probe.drop("smoothed"):
                del smoothed
            if probe.drop("head"):
                del head
            if probe.drop("grid"):
                del grid
            if probe.drop("row"):
                del row
            probe.after()
            return readings.shape, smoothed.shape, head.shape, grid.shape, row.shape


        print(main())
        '''),
        [Probe("readings", ("readings",), ("main:readings",)),
         Probe("smoothed", ("smoothed",), ("main:smoothed",)),
         Probe("head (view, unnamed base)", ("head",), ("main:head",)),
         Probe("grid + row (view)", ("grid", "row"), ("main:grid", "main:row"), "group"),
         Probe("grid alone", ("grid",), ("main:grid",))],
    ),
    Workload(
        "csv_rows", "a list of dicts read with csv.DictReader from a generated file",
        _src('''
        import csv
        import os
        import random

        import fidelity_probe as probe

        CITIES = ["Lyon", "Porto", "Graz", "Turku", "Leeds", "Gent", "Brno", "Bergen"]


        def write_orders(path, n):
            rnd = random.Random(1)
            with open(path, "w", newline="") as f:
                out = csv.writer(f)
                out.writerow(["id", "customer", "city", "amount", "date", "status"])
                for i in range(n):
                    out.writerow([i, f"customer{rnd.randrange(10**6)}", rnd.choice(CITIES),
                                  f"{rnd.random() * 1000:.2f}",
                                  f"2024-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d}",
                                  rnd.choice(["open", "paid", "void"])])


        def load(path):
            with open(path, newline="") as f:
                return list(csv.DictReader(f))


        def main():
            path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "orders.csv")
            write_orders(path, 60_000)
            rows = load(path)
            probe.peak()  # 60k dicts of six strings
            if probe.drop("rows"):
                del rows
            probe.after()
            paid = sum(float(r["amount"]) for r in rows if r["status"] == "paid")
            return len(rows), round(paid)


        print(main())
        '''),
        [Probe("rows", ("rows",), ("main:rows",))],
    ),
    Workload(
        "strings", "a report built from parts and joined (module level)",
        _src('''
        import fidelity_probe as probe

        parts = []
        for i in range(200_000):
            parts.append(f"{i:08d},item-{i % 977},{i * 1.5:.3f},ok\\n")
        report = "".join(parts)
        probe.peak()  # the parts and the joined report, both alive
        if probe.drop("parts"):
            del parts
        if probe.drop("report"):
            del report
        probe.after()
        print(len(parts), len(report))
        '''),
        [Probe("parts", ("parts",), ("<module>:parts",)),
         Probe("report", ("report",), ("<module>:report",))],
    ),
    Workload(
        "cache", "a module-level dict memoizing results, and a functools.lru_cache",
        _src('''
        import functools

        import fidelity_probe as probe

        _CACHE = {}


        def tokenize(text):
            hit = _CACHE.get(text)
            if hit is None:
                hit = _CACHE[text] = tuple(text.split())
            return hit


        @functools.lru_cache(maxsize=None)
        def parse_record(n):
            return {"id": n, "label": f"rec-{n}", "tags": [f"t{n % 7}", f"u{n % 11}"]}


        def main():
            words = 0
            for i in range(60_000):
                words += len(tokenize(f"alpha {i} beta {i * 7} gamma {i % 13} delta"))
            for i in range(40_000):
                words += len(parse_record(i))
            return words


        total = main()
        probe.peak()  # both caches full
        if probe.drop("_CACHE"):
            del _CACHE
        if probe.drop("parse_record"):
            del parse_record
        probe.after()
        print(total, len(_CACHE), parse_record.cache_info().currsize)
        '''),
        [Probe("_CACHE (dict)", ("_CACHE",), ("<module>:_CACHE",)),
         Probe("parse_record (lru_cache)", ("parse_record",), ("<module>:parse_record",))],
    ),
    Workload(
        "generators", "a generator pipeline: a suspended generator holds the file's bytes",
        _src('''
        import os

        import fidelity_probe as probe


        def read_blocks(path, size=64 * 1024):
            with open(path, "rb") as f:
                data = f.read()  # the whole file, held while the generator is suspended
            for start in range(0, len(data), size):
                yield data[start:start + size]


        def split_lines(blocks):
            tail = b""
            for block in blocks:
                lines = (tail + block).split(b"\\n")
                tail = lines.pop()
                yield from lines


        def main():
            path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log.txt")
            with open(path, "wb") as f:
                for i in range(500_000):
                    f.write(b"%08d GET /api/items/%d 200 %d\\n" % (i, i % 9973, i % 500))
            lines = split_lines(read_blocks(path))
            count = 0
            while count < 200_000:
                next(lines)
                count += 1
            probe.peak()  # both generators suspended mid-file
            if probe.drop("lines"):
                del lines
            probe.after()
            return count + sum(1 for _ in lines)


        print(main())
        '''),
        [Probe("pipeline (drop lines)", ("lines",),
               ("main:lines", "split_lines:*", "read_blocks:*"))],
    ),
    Workload(
        "threads", "four threads each building a list (locals in several threads)",
        _src('''
        import threading

        import fidelity_probe as probe

        N = 4
        step = threading.Barrier(N + 1)


        def worker(i, sizes):
            chunk = [(i, j, f"row-{i}-{j}") for j in range((i + 1) * 30_000)]
            step.wait()  # all built: the peak
            step.wait()  # measured
            if probe.drop(f"chunk{i}"):
                del chunk
            step.wait()  # dropped
            step.wait()
            sizes[i] = len(chunk)


        def main():
            sizes = {}
            threads = [threading.Thread(target=worker, args=(i, sizes), name=f"worker-{i}")
                       for i in range(N)]
            for t in threads:
                t.start()
            step.wait()
            probe.peak()  # every thread holds its chunk
            step.wait()
            step.wait()
            probe.after()
            step.wait()
            for t in threads:
                t.join()
            return sizes


        print(main())
        '''),
        [Probe(f"worker-{i}: chunk", (f"chunk{i}",), ("worker:chunk",), thread=f"worker-{i}")
         for i in range(4)],
    ),
    Workload(
        "containers", "memory inside library containers: OrderedDict, array, BytesIO, deque",
        _src('''
        import io
        from array import array
        from collections import OrderedDict, deque

        import fidelity_probe as probe


        def main():
            sessions = OrderedDict()
            for i in range(80_000):
                sessions[f"session-{i:06d}"] = (i, i * 2)
                if i % 10 == 0:
                    sessions.move_to_end(f"session-{i // 2:06d}")
            samples = array("d", (x * 0.5 for x in range(2_000_000)))
            blob = io.BytesIO()
            for i in range(200_000):
                blob.write(b"%08d|payload-%d\\n" % (i, i % 97))
            history = deque(maxlen=150_000)
            for i in range(300_000):
                history.append(f"event-{i}")
            probe.peak()
            if probe.drop("sessions"):
                del sessions
            if probe.drop("samples"):
                del samples
            if probe.drop("blob"):
                del blob
            if probe.drop("history"):
                del history
            probe.after()
            return len(sessions), len(samples), blob.tell(), len(history)


        print(main())
        '''),
        [Probe("sessions (OrderedDict)", ("sessions",), ("main:sessions",)),
         Probe("samples (array)", ("samples",), ("main:samples",)),
         Probe("blob (BytesIO)", ("blob",), ("main:blob",)),
         Probe("history (deque)", ("history",), ("main:history",))],
    ),
    Workload(
        "grouping", "rows grouped in a defaultdict(list), words counted in a Counter",
        _src('''
        from collections import Counter, defaultdict

        import fidelity_probe as probe


        def main():
            by_customer = defaultdict(list)
            for i in range(200_000):
                by_customer[f"cust-{i % 50_000:06d}"].append((i, i * 0.5))
            words = Counter()
            for i in range(300_000):
                words[f"w{i % 100_000}"] += 1
            probe.peak()
            if probe.drop("by_customer"):
                del by_customer
            if probe.drop("words"):
                del words
            probe.after()
            return len(by_customer), words.most_common(1)


        print(main())
        '''),
        [Probe("by_customer (defaultdict)", ("by_customer",), ("main:by_customer",)),
         Probe("words (Counter)", ("words",), ("main:words",))],
    ),
    Workload(
        "documents", "parsed documents held by one name: an xml.etree tree, a json structure",
        _src('''
        import json
        import xml.etree.ElementTree as ET

        import fidelity_probe as probe


        def catalog_xml(n):
            books = (f'<book id="b{i}" lang="en"><title>Title {i}</title>'
                     f'<price>{i % 100}.99</price></book>' for i in range(n))
            return "<catalog>" + "".join(books) + "</catalog>"


        def inventory_json(n):
            items = [{"sku": f"sku-{i}", "qty": i % 50, "bins": [i % 7, i % 11]}
                     for i in range(n)]
            return json.dumps({"warehouse": "north", "items": items})


        catalog = ET.fromstring(catalog_xml(40_000))
        inventory = json.loads(inventory_json(60_000))
        probe.peak()
        if probe.drop("catalog"):
            del catalog
        if probe.drop("inventory"):
            del inventory
        probe.after()
        print(len(catalog), len(inventory["items"]))
        '''),
        [Probe("catalog (xml.etree)", ("catalog",), ("<module>:catalog",)),
         Probe("inventory (json)", ("inventory",), ("<module>:inventory",))],
    ),
    Workload(
        "objects", "graphs of class instances: a tree with parent links, a ring of slots",
        _src('''
        import random

        import fidelity_probe as probe


        class Node:
            def __init__(self, name, parent=None):
                self.name = name
                self.parent = parent  # child -> parent, parent -> child: cycles
                self.children = []
                self.weights = [random.random() for _ in range(6)]
                if parent is not None:
                    parent.children.append(self)


        class Link:
            __slots__ = ("next", "payload")

            def __init__(self, payload):
                self.payload = payload
                self.next = None


        def build_tree(fanout, depth):
            root = Node("root")
            level = [root]
            for d in range(depth):
                level = [Node(f"n{d}-{k}-{j}", p) for k, p in enumerate(level)
                         for j in range(fanout)]
            return root


        def build_ring(n):
            head = tail = Link(b"h" * 64)
            for i in range(n - 1):
                tail.next = Link(b"%064d" % i)
                tail = tail.next
            tail.next = head  # one cycle through every link
            return head


        def main():
            tree = build_tree(6, 6)  # 55,987 nodes
            ring = build_ring(100_000)
            probe.peak()
            if probe.drop("tree"):
                del tree
            if probe.drop("ring"):
                del ring
            probe.after()
            return len(tree.children), ring.next is not None


        print(main())
        '''),
        [Probe("tree (instances, cycles)", ("tree",), ("main:tree",)),
         Probe("ring (slots, one cycle)", ("ring",), ("main:ring",))],
    ),
    Workload(
        "shared", "two more names for one list (an alias and a dict entry), and a derived list",
        _src('''
        import fidelity_probe as probe


        def load_table(n):
            return [(i, f"sku-{i:07d}", i * 0.01) for i in range(n)]


        table = load_table(200_000)
        current = table  # a second name for the same list
        config = {"rows": table, "source": "warehouse"}  # and a third holder
        labels = [row[1].upper() for row in table]  # strings of its own
        probe.peak()
        if probe.drop("table"):
            del table
        if probe.drop("current"):
            del current
        if probe.drop("config"):
            del config
        if probe.drop("labels"):
            del labels
        probe.after()
        print(len(table), len(current), len(config), len(labels))
        '''),
        [Probe("table + current + config", ("table", "current", "config"),
               ("<module>:table", "<module>:current", "<module>:config"), "group"),
         Probe("table alone", ("table",), ("<module>:table",)),
         Probe("labels", ("labels",), ("<module>:labels",))],
    ),
    Workload(
        "closure", "a closure capturing a big dict, held by a module global",
        _src('''
        import fidelity_probe as probe


        def make_lookup(n):
            table = {i: f"value-{i}" for i in range(n)}

            def lookup(key):
                return table.get(key)

            return lookup


        find = make_lookup(200_000)
        probe.peak()  # only the closure's cell keeps the dict
        if probe.drop("find"):
            del find
        probe.after()
        print(find(12345))
        '''),
        [Probe("find (closure)", ("find",), ("<module>:find",))],
    ),
]


# ---- running ----------------------------------------------------------------------------


class RunError(Exception):
    """A workload's subprocess failed: what it ran and the end of what it said."""


SOURCE: list[Path] = []  # --source: the memscope to measure, ahead of the installed one


def run_program(work: Path, wl: Workload, mode: str, tag: str, *, drop: tuple[str, ...] = (),
                memscope: bool = False, hold: float = 0.3) -> dict[str, Any]:
    """Run ``wl``'s program once; returns the probe's results, the wall time and, under
    memscope, the capture's path."""
    script = work / "programs" / f"{wl.name}.py"
    out = work / "results" / f"{wl.name}.{tag}.json"
    out.unlink(missing_ok=True)
    env = dict(os.environ)
    env.pop("MEMSCOPE_MODE", None)
    env.pop("MEMSCOPE_SAMPLING", None)
    env.update(FIDELITY_MODE=mode, FIDELITY_DROP=",".join(drop), FIDELITY_OUT=str(out),
               FIDELITY_HOLD=str(hold),
               PYTHONPATH=os.pathsep.join([str(work / "probe"), *map(str, SOURCE)]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # memscope's cache of instrumented code
    # obeys it: every run would be a cold one, libcst and the transform included
    captures = work / "captures"
    name = f"{wl.name}-{tag}"
    if memscope:
        cmd = [PY, "-m", "memscope", "run", "--no-report", "-o", str(captures),
               "--name", name, str(script)]
    else:
        cmd = [PY, str(script)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=work / "programs", env=env, capture_output=True,
                              text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise RunError(f"{wl.name} ({tag}): timed out after {TIMEOUT:.0f} s: "
                       f"{' '.join(cmd)}") from exc
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not out.exists():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-12:])
        raise RunError(f"{wl.name} ({tag}): exit status {proc.returncode}"
                       f"{'' if out.exists() else ', no probe results'}: {' '.join(cmd)}\n"
                       f"{textwrap.indent(tail, '    ')}")
    res: dict[str, Any] = json.loads(out.read_text())
    res["wall"] = wall
    if memscope:
        found = sorted((captures / name).glob("*.memscope"))
        if not found:
            raise RunError(f"{wl.name} ({tag}): no capture under {captures / name}")
        res["capture"] = str(found[0])
    return res


def load_capture(path: str) -> tuple[Any, dict[int, str]]:
    """The capture's analysis, and the thread each scope instance ran in."""
    from memscope.analysis import Analysis
    from memscope.capture import read_capture

    threads: dict[int, str] = {}

    def on_start(b: Any) -> None:
        threads.setdefault(b.tok, b.thread_name)

    an = Analysis(keep_history=False, on_binding_start=on_start)
    an.feed_all(read_capture(path).events())
    return an, threads


def matches(key: str, probe: Probe) -> bool:
    rest = key.partition(":")[2]  # the module (__main__) left out
    return rest in probe.vars or f"{rest.rpartition(':')[0]}:*" in probe.vars


def census_value(census: Any, probe: Probe, threads: dict[int, str]) -> int:
    """What a census says dropping the probe's names would free (0: not listed)."""
    rows = [v for v in census.vars if matches(v.key, probe)]
    if probe.thread is not None:
        rows = [v for v in rows if threads.get(v.tok) == probe.thread]
    retained = sum(v.retained for v in rows)
    if probe.kind == "group":
        return retained + max((v.shared for v in rows), default=0)
    return retained


def judge(truth: int, value: int, threshold: float) -> tuple[float | None, str]:
    """(relative error, pass | FAIL | info): info below the significance threshold."""
    err = (value - truth) / truth if truth > 0 else None
    if max(truth, value) < threshold:
        return err, "info"
    if err is not None and abs(err) <= TOLERANCE:
        return err, "pass"
    return err, "FAIL"


def census_summary(an: Any) -> list[dict[str, Any]]:
    return [{"reason": c.reason, "t": c.t, "rss": c.rss, "hwm": c.hwm, "named": c.named,
             "shared": c.shared, "objects": c.objects, "cost_ns": c.cost_ns,
             "vars": [[v.key, v.tok, v.retained, v.shared, v.shallow]
                      for v in sorted(c.vars, key=lambda v: -v.retained)[:12]]}
            for c in an.censuses]


def memscope_run(r: dict[str, Any], wl: Workload, threshold: float) -> dict[str, Any]:
    """What one ``memscope run`` capture says, beside what its probe measured."""
    an, threads = load_capture(r["capture"])
    pc = an.peak_census()
    # a census that ran while the program held its peak (census t is its end)
    t0, t1 = r.get("hold_start_ns", -1), r.get("hold_end_ns", -1)
    in_hold = [c for c in an.censuses if c.t - c.cost_ns <= t1 and c.t >= t0]
    growth = [c for c in an.censuses if c.reason == "growth" and c.t - c.cost_ns < t0]
    last = growth[-1].rss if growth else -1
    return {
        "capture": r["capture"], "wall": r["wall"], "rss_start": r["rss_start"],
        "rss_at_peak": r["rss_at_peak"], "maxrss": r["maxrss"],
        "rss_peak": an.rss_peak, "censuses": len(an.censuses),
        "census_cost_ns": sum(c.cost_ns for c in an.censuses),
        "census_in_hold": [c.reason for c in in_hold],
        # resident memory at the peak passed the growth step over the last growth
        # census, yet no census ran while the peak was held: the time budget said no
        "growth_step_passed": last > 0 and r["rss_at_peak"] >= 1.08 * last,
        "peak_census": None if pc is None else {
            "reason": pc.reason, "rss": pc.rss, "hwm": pc.hwm, "named": pc.named,
            "shared": pc.shared, "objects": pc.objects, "cost_ns": pc.cost_ns,
            "own": getattr(pc, "own", -1),
            "when": "at peak" if any(c is pc for c in in_hold) else
            ("before" if pc.t < t0 else "after")},
        "values": {p.label: 0 if pc is None else census_value(pc, p, threads)
                   for p in wl.probes},
        "values_all": {p.label: [census_value(c, p, threads) for c in an.censuses]
                       for p in wl.probes},
        "unrefereed": [] if pc is None else [
            {"key": v.key, "retained": v.retained, "shared": v.shared}
            for v in pc.vars if v.retained >= threshold
            and not any(matches(v.key, p) for p in wl.probes)],
        "all_censuses": census_summary(an),
    }


def measure(work: Path, wl: Workload, repeat: int, hold: float,
            say: Any = print) -> dict[str, Any]:
    """Every run of one workload, and what they say together."""
    out: dict[str, Any] = {"name": wl.name, "title": wl.title}
    say(f"[{wl.name}] truth runs ({len(wl.probes) + 1})")
    traced = run_program(work, wl, "truth", "traced", hold=hold)
    truths = {}
    for k, p in enumerate(wl.probes):
        truths[p.label] = run_program(work, wl, "truth", f"truth{k}", drop=p.drop,
                                      hold=hold)["freed"]
    say(f"[{wl.name}] snapshot, then plain and memscope runs ({repeat} each, "
        "interleaved), gc")
    # first: it also warms memscope's cache of the instrumented program, so the timed
    # runs are warm, as every run after a program's first is
    snap = run_program(work, wl, "snapshot", "snap", memscope=True, hold=hold)
    plain, ms = [], []
    for k in range(repeat):
        plain.append(run_program(work, wl, "plain", f"plain{k}", hold=hold))
        ms.append(run_program(work, wl, "memscope", f"ms{k}", memscope=True, hold=hold))
    gc_run = run_program(work, wl, "gc", "gc", hold=hold)

    peak_plain = int(statistics.median(r["maxrss"] for r in plain))
    threshold = SIGNIFICANT * peak_plain
    out["plain"] = {
        "maxrss": peak_plain, "maxrss_runs": [r["maxrss"] for r in plain],
        "rss_start": int(statistics.median(r["rss_start"] for r in plain)),
        "rss_at_peak": int(statistics.median(r["rss_at_peak"] for r in plain)),
        "wall": [r["wall"] for r in plain],
        "traced_peak": traced["traced_peak_end"], "traced_at_peak": traced["before"],
        "gc_ns": min(gc_run["gc_ns"]), "gc_tracked_objects": gc_run["gc_tracked"],
    }
    runs = [memscope_run(r, wl, threshold) for r in ms]
    out["memscope"] = runs
    an, threads = load_capture(snap["capture"])
    snaps = [c for c in an.censuses if c.reason == "snapshot"]
    sc = snaps[-1] if snaps else None
    out["snapshot"] = {
        "found": sc is not None,
        "values": {p.label: 0 if sc is None else census_value(sc, p, threads)
                   for p in wl.probes},
        "census": None if sc is None else {"rss": sc.rss, "named": sc.named,
                                           "shared": sc.shared, "objects": sc.objects,
                                           "cost_ns": sc.cost_ns},
    }

    probes = []
    for p in wl.probes:
        truth = truths[p.label]
        verdicts = [judge(truth, r["values"][p.label], threshold) for r in runs]
        snap_err, snap_verdict = judge(truth, out["snapshot"]["values"][p.label], threshold)
        statuses = [v for _, v in verdicts]
        fails = statuses.count("FAIL")
        # why it failed: a census taken at the peak is wrong too (measurement); another
        # census of the same run was right, but not the one the reports pick
        # (selection); no census of the run was right (timing)
        right_elsewhere = [any(judge(truth, x, threshold)[1] == "pass"
                               for x in r["values_all"][p.label])
                           for r, st in zip(runs, statuses, strict=True) if st == "FAIL"]
        if not fails:
            cause = None
        elif snap_verdict == "FAIL":
            cause = "measurement"
        elif all(right_elsewhere):
            cause = "selection"
        elif any(right_elsewhere):
            cause = "timing, selection"
        else:
            cause = "timing"
        probes.append({
            "label": p.label, "kind": p.kind, "drop": list(p.drop), "vars": list(p.vars),
            "thread": p.thread, "truth": truth,
            "memscope": [r["values"][p.label] for r in runs],
            "err": [e for e, _ in verdicts], "status": statuses,
            "passes": statuses.count("pass"), "fails": fails,
            "snapshot": out["snapshot"]["values"][p.label], "snapshot_err": snap_err,
            "snapshot_status": snap_verdict, "cause": cause,
        })
    out["probes"] = probes
    out["vars_ok"] = all(p["fails"] == 0 for p in probes)

    def rel(a: int, b: int) -> float | None:
        return None if a < 0 or b <= 0 else (a - b) / b

    def program(r: dict[str, Any], at: str) -> int:
        """named + unnamed: the process peak (``at="peak"``, as the reports give it) or
        the peak census's resident memory, less memscope's own at that census."""
        pc = r["peak_census"]
        top = r["rss_peak"] if at == "peak" else (pc["rss"] if pc else -1)
        if not pc or top < 0:
            return -1
        return top - max(pc.get("own", -1), 0)

    out["peak_err"] = [rel(program(r, "peak"), peak_plain) for r in runs]
    out["census_err"] = [rel(program(r, "census"), peak_plain) for r in runs]
    out["peak_ok"] = all(e is not None and abs(e) <= PEAK_TOLERANCE for e in out["peak_err"])
    # the same, against memscope's own process peak (its memory included on both sides)
    out["peak_err_own"] = [rel(r["peak_census"]["rss"] if r["peak_census"] else -1,
                               r["rss_peak"]) for r in runs]
    out["memscope_peak_err"] = [rel(r["rss_peak"], peak_plain) for r in runs]
    walls_ms = [r["wall"] for r in runs]
    out["wall_ratio"] = min(walls_ms) / min(out["plain"]["wall"])
    out["wall_ratio_median"] = statistics.median(walls_ms) / statistics.median(
        out["plain"]["wall"])
    pc0 = runs[0]["peak_census"]
    gc_ns = out["plain"]["gc_ns"]
    out["census_vs_gc"] = (pc0["cost_ns"] / gc_ns) if pc0 and gc_ns > 0 else None
    out["own_memory_start"] = int(statistics.median(r["rss_start"] for r in runs)) - \
        out["plain"]["rss_start"]
    out["own_memory_at_peak"] = int(statistics.median(r["rss_at_peak"] for r in runs)) - \
        out["plain"]["rss_at_peak"]
    return out


# ---- reporting --------------------------------------------------------------------------


def mb(n: int | None, signed: bool = False) -> str:
    """MiB; "-" for unknown (negative) unless ``signed`` (a difference)."""
    if n is None or (n < 0 and not signed):
        return "-"
    return f"{n / MB:.1f}"


def pct(e: float | None) -> str:
    return "n/a" if e is None else f"{e * 100:+.1f}%"


def verdict(statuses: list[str]) -> str:
    passes, fails = statuses.count("pass"), statuses.count("FAIL")
    if passes == fails == 0:
        return "info"
    return f"{'pass' if fails == 0 else 'FAIL'} {passes}/{len(statuses)}"


def variable_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for w in results:
        if "error" in w:
            rows.append([w["name"], "(error)"] + [""] * (len(VAR_HEADERS) - 2))
            continue
        for p in w["probes"]:
            rows.append([
                w["name"], p["label"], "ret+shared" if p["kind"] == "group" else "retained",
                mb(p["truth"]), mb(p["memscope"][0]), pct(p["err"][0]),
                " ".join(pct(e) for e in p["err"][1:]), verdict(p["status"]),
                mb(p["snapshot"]), pct(p["snapshot_err"]), p["cause"] or "",
            ])
    return rows


VAR_HEADERS = ["workload", "variable (probe)", "compared", "truth MB", "memscope MB",
               "err", "err, other runs", "target (runs)", "snapshot MB", "snapshot err",
               "cause"]


def process_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for w in results:
        if "error" in w:
            continue
        r0 = w["memscope"][0]
        pc = r0["peak_census"] or {}
        extra = r0["rss_peak"] - w["plain"]["maxrss"]
        own = max(pc.get("own", -1), 0) if pc else 0
        top = r0["rss_peak"]
        rows.append([
            w["name"], mb(w["plain"]["maxrss"]), mb(w["plain"]["traced_peak"]),
            mb(top), mb(extra, signed=True),
            mb(w["own_memory_at_peak"], signed=True), mb(pc.get("own", -1)),
            f"{pc.get('reason', '-')} {pc.get('when', '')}",
            mb(pc.get("named")), mb(top - pc["named"] - own, signed=True) if pc else "-",
            mb(top - own) if pc else "-",
            pct(w["peak_err"][0]), verdict(["pass" if e is not None and abs(e) <= PEAK_TOLERANCE
                                            else "FAIL" for e in w["peak_err"]]),
            pct(w["census_err"][0]), pct(w["peak_err_own"][0]),
        ])
    return rows


PROCESS_HEADERS = ["workload", "plain peak MB", "traced peak MB", "memscope peak MB",
                   "extra MB", "own MB at peak (referee)", "memscope itself MB",
                   "peak census", "named MB", "unnamed MB", "named+unnamed MB",
                   "vs plain peak", "target (runs)", "at the census, vs plain peak",
                   "census resident vs memscope peak"]


def cost_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for w in results:
        if "error" in w:
            continue
        r0 = w["memscope"][0]
        pc = r0["peak_census"] or {}
        rows.append([
            w["name"], str(r0["censuses"]), f"{r0['census_cost_ns'] / 1e6:.0f}",
            f"{pc.get('cost_ns', 0) / 1e6:.0f}", f"{pc.get('objects', 0):,}",
            f"{w['plain']['gc_ns'] / 1e6:.1f}", f"{w['plain']['gc_tracked_objects']:,}",
            "-" if w["census_vs_gc"] is None else f"{w['census_vs_gc']:.0f}x",
            f"{min(w['plain']['wall']):.2f}", f"{min(x['wall'] for x in w['memscope']):.2f}",
            f"{w['wall_ratio']:.2f}x", f"{w['wall_ratio_median']:.2f}x",
        ])
    return rows


COST_HEADERS = ["workload", "censuses", "census ms (all)", "peak census ms",
                "objects walked", "gc.collect ms", "gc-tracked objects", "census/gc",
                "wall plain s", "wall memscope s", "ratio (best)", "ratio (median)"]


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def print_tables(results: list[dict[str, Any]], markdown: bool) -> None:
    tables = [("Variables at the peak census against tracemalloc's referee", VAR_HEADERS,
               variable_rows(results), 3),
              ("The process peak: named + unnamed against the plain run", PROCESS_HEADERS,
               process_rows(results), 1),
              ("Census cost against gc.collect(), and wall time", COST_HEADERS,
               cost_rows(results), 1)]
    if markdown:
        for title, headers, rows, _left in tables:
            print(f"\n**{title}**\n\n{markdown_table(headers, rows)}")
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(width=220)
    for title, headers, rows, left in tables:
        t = Table(title=title, title_justify="left")
        for i, h in enumerate(headers):
            t.add_column(h, justify="left" if i < left else "right", overflow="fold")
        for row in rows:
            style = "red" if any(c.startswith("FAIL") for c in row) else None
            t.add_row(*row, style=style)
        console.print(t)


def summary_lines(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for w in results:
        if "error" in w:
            lines.append(f"{w['name']}: ERROR {w['error'].splitlines()[0]}")
            continue
        bad = [f"{p['label']}: {p['cause']}" for p in w["probes"] if p["fails"]]
        extra = [u["key"] for u in w["memscope"][0]["unrefereed"]]
        budget = sum(1 for r in w["memscope"] if r["growth_step_passed"]
                     and not any(x == "growth" for x in r["census_in_hold"]))
        lines.append(
            f"{w['name']}: variables {'pass' if w['vars_ok'] else 'FAIL (' + '; '.join(bad) + ')'}"
            f"; peak {'pass' if w['peak_ok'] else 'FAIL'}"
            + (f"; growth census held back at the peak in {budget}/{len(w['memscope'])} runs"
               if budget else "")
            + (f"; listed at >= 5% without a referee: {', '.join(extra)}" if extra else ""))
    return lines


def source_commit() -> str:
    """The commit of the memscope measured, as far as git can tell ("+dirty" when the
    checkout has changes)."""
    where = SOURCE[0] if SOURCE else ROOT
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], text=True,
                              capture_output=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain",
                                "memscope"], text=True, capture_output=True,
                               timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return (head or "?") + ("+dirty" if dirty else "")


# ---- command line -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", default=[],
                    help="workload names (repeatable, or comma-separated)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="plain and memscope runs per workload (default 3)")
    ap.add_argument("--hold", type=float, default=0.3,
                    help="seconds each program holds its peak (default 0.3)")
    ap.add_argument("--json", type=Path, help="write every workload's numbers here")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (programs, "
                    "probe results, captures)")
    ap.add_argument("--source", type=Path, metavar="DIR",
                    help="measure the memscope in this folder (a checkout or an export of "
                    "a commit) instead of the installed one")
    ap.add_argument("--list", action="store_true", help="list the workloads and exit")
    ap.add_argument("--render", type=Path, metavar="JSON",
                    help="print the tables of an earlier run's --json file, run nothing")
    args = ap.parse_args(argv)
    if args.list:
        for wl in WORKLOADS:
            print(f"{wl.name:12} {wl.title}")
        return 0
    if args.render:
        saved = json.loads(args.render.read_text())
        print_tables(saved["workloads"], args.markdown)
        print()
        for line in summary_lines(saved["workloads"]):
            print(line)
        return 0
    names = [n for item in args.only for n in item.split(",") if n]
    unknown = sorted(set(names) - {wl.name for wl in WORKLOADS})
    if unknown:
        ap.error(f"no workload {', '.join(unknown)} (--list shows them)")
    chosen = [wl for wl in WORKLOADS if not names or wl.name in names]
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if args.source:
        src = args.source.resolve()
        if not (src / "memscope" / "__init__.py").exists():
            ap.error(f"--source {src}: no memscope package there")
        SOURCE.append(src)
        sys.path.insert(0, str(src))  # the captures are read by the same version

    tmp = None
    if args.keep:
        work = args.keep.resolve()
    else:
        tmp = tempfile.TemporaryDirectory(prefix="memscope-fidelity-")
        work = Path(tmp.name)
    for sub in ("programs", "probe", "results", "captures"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "probe" / "fidelity_probe.py").write_text(PROBE)
    for wl in chosen:
        (work / "programs" / f"{wl.name}.py").write_text(wl.source)

    results: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    try:
        for wl in chosen:
            try:
                results.append(measure(work, wl, args.repeat, args.hold,
                                       say=lambda m: print(m, file=sys.stderr, flush=True)))
            except RunError as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
                results.append({"name": wl.name, "title": wl.title, "error": str(exc)})
    finally:
        if tmp is not None:
            tmp.cleanup()
    print_tables(results, args.markdown)
    print()
    for line in summary_lines(results):
        print(line)
    print(f"\n{len(chosen)} workloads in {time.perf_counter() - t0:.0f} s; python "
          f"{sys.version.split()[0]}, {os.cpu_count()} cores")
    if args.json:
        import memscope

        meta = {"python": sys.version, "cores": os.cpu_count(), "repeat": args.repeat,
                "memscope": os.path.dirname(memscope.__file__), "commit": source_commit(),
                "hold": args.hold, "significant": SIGNIFICANT, "tolerance": TOLERANCE,
                "peak_tolerance": PEAK_TOLERANCE, "date": time.strftime("%Y-%m-%d %H:%M")}
        args.json.write_text(json.dumps({"meta": meta, "workloads": results}, indent=1))
        print(f"wrote {args.json}")
    return 1 if any("error" in w for w in results) else 0


if __name__ == "__main__":
    sys.exit(main())
