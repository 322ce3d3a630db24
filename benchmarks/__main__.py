"""``python -m benchmarks [NAME ...]``: run the named benchmarks (default: all quick ones).

A name is ``bench_NAME.py``, or else ``NAME.py``: ``python -m benchmarks fidelity`` runs
``fidelity.py`` (memscope's numbers against referees; minutes, so never in the default).
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent
QUICK = ["hooks", "capture", "transform", "html", "hook"]


def main(argv: list[str]) -> None:
    names = argv or QUICK
    for name in names:
        path = HERE / f"bench_{name}.py"
        if not path.exists() and (HERE / f"{name}.py").exists():
            path = HERE / f"{name}.py"
        if not path.exists():
            sys.exit(f"no benchmark {name!r}: expected {path}")
        print(f"\n## {name}\n", flush=True)
        saved = sys.argv
        sys.argv = [str(path)]
        try:
            runpy.run_path(str(path), run_name="__main__")
        finally:
            sys.argv = saved


if __name__ == "__main__":
    main(sys.argv[1:])
