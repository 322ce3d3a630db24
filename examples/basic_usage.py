"""The seed's first example, in Python: track a list, export JSON and SVG.

python examples/basic_usage.py            # explicit API, as written here
memscope run examples/basic_usage.py      # every variable, no edit needed
"""

import memscope
from memscope import get_global_tracker, track_var


def main() -> None:
    # 1. start tracking (mode="full" adds deep sizes, finalization and leak checks)
    memscope.init(mode="full", name="basic_usage")

    # 2. create and track variables
    numbers_vec = [1, 2, 3, 4, 5]
    track_var(numbers_vec)
    greeting = "hello, memscope " * 8
    track_var(greeting)

    # 3. export the analysis
    tracker = get_global_tracker()
    folder = tracker.export_to_json("basic_usage_snapshot")
    svg = tracker.export_memory_analysis("basic_usage_graph.svg")
    stats = tracker.stats()
    print(f"tracked {stats['total_binds']} bindings, peak {stats['peak_bytes']} bytes")
    print(f"JSON in {folder}")
    print(f"SVG  in {svg}")


if __name__ == "__main__":
    main()
