"""The hot path's type cache, re-entered during a bind (b3d3ce5).

``bind_core`` (``memscope/_hotpath.c``) takes a type's entry (type index, extra bytes)
from a direct-mapped cache, then calls the type's ``__sizeof__``. That call can run
Python code, here a metaclass's ``__sizeof__``, and a bind inside it of a value whose
type shares the cache slot refills the slot. The entry must be read before the call:
read after it, the outer bind's row named the inner value's type (at b3d3ce5~1, every
bind of ``c`` below was recorded as a ``list`` subclass ``L<n>``, not ``Meta``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROGRAM = '''
class Meta(type):
    def __sizeof__(cls) -> int:
        refill()
        return type.__sizeof__(cls)


def slot(t: type) -> int:  # the cache's slot of a type (_hotpath.c, type_entry)
    return (id(t) >> 4) % 512


class C(metaclass=Meta):
    pass


keep = []  # the classes made before the one found stay alive (other addresses)
FILL = None
for i in range(20000):
    L = type(f"L{i}", (list,), {})
    if slot(L) == slot(Meta):
        FILL = L
        break
    keep.append(L)
assert FILL is not None


def refill() -> None:
    y = FILL()  # bound through the hot path: its type's entry takes the slot
    del y


def main() -> None:
    y0 = FILL()  # FILL classified (a type's first bind is Python's)
    for _ in range(4):
        c = C  # Meta's first bind classifies it; then the C path calls its __sizeof__
        del c
    del y0


main()
print("done", FILL.__name__)
'''


def test_a_bind_names_its_own_type_when_its_sizeof_binds_a_type_of_the_same_slot(
    tmp_path: Path,
) -> None:
    from memscope.reporters import load

    (tmp_path / "prog.py").write_text(textwrap.dedent(PROGRAM))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-m", "memscope", "run", "--no-report", "-o", str(tmp_path / "out"),
         "--name", "p", "prog.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    fill = r.stdout.split()[-1]
    assert r.stdout.startswith("done L")
    (cap,) = (tmp_path / "out" / "p").glob("p.*.memscope")
    an = load.prepare([cap]).run().analysis
    types = [(b.var, b.type) for b in an.all_bindings() if b.var in ("c", "y")]
    assert [t for v, t in types if v == "c"] == ["__main__.Meta"] * 4
    # the inner binds were recorded too, with their own type
    assert [t for v, t in types if v == "y"] == [f"__main__.{fill}"] * 4
