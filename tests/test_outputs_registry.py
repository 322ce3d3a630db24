"""One registry serves every report format (issue 18: per-format ``if`` chains and five
call shapes before): each format of ``memscope.formats`` but the capture copy is written
by exactly one output family, and every output keeps the one interface."""

from __future__ import annotations

import inspect

from memscope import formats
from memscope.reporters import outputs


def test_every_format_has_exactly_one_output() -> None:
    served = [f for family, _ in outputs.OUTPUTS for f in family]
    assert sorted(served) == sorted(set(served))  # no format in two families
    assert set(served) == set(formats.FORMATS) - {"binary"}


def test_every_output_keeps_the_interface() -> None:
    members = [n for n, v in vars(outputs.Output).items()
               if inspect.isfunction(v) and not n.startswith("_")]
    for cls in (outputs.Charts, outputs._Json, outputs._Summary):
        for n in members:
            want = list(inspect.signature(getattr(outputs.Output, n)).parameters)
            got = list(inspect.signature(getattr(cls, n)).parameters)
            assert got == want, (cls.__name__, n)
