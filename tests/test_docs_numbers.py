"""The numbers the README and ARCHITECTURE.md quote are the code's constants (issue 18:
ARCHITECTURE.md said sites were sampled after 512 binds when the code said 64, and spoke
of hooks contract v2 at v4). Each entry: a file, a phrase with the number in it, and the
constant it must equal; a phrase that is gone fails too, so the docs cannot drift by
rewording."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from memscope import _hooks, _monitor
from memscope.config import Config

ROOT = Path(__file__).resolve().parents[1]
CFG = Config()

QUOTES = [
    ("README.md", r"has bound (\d+) small values", _hooks.SCALAR_STREAK),
    ("README.md", r"records 1 bind in (\d+)", _hooks.SAMPLE_EVERY),
    ("README.md", r"str or bytes, each of at most (\d+) bytes", _hooks.SMALL_BYTES),
    ("README.md", r"next re-arm \(every ([\d.]+) s", _hooks.REARM_SECONDS),
    ("README.md", r"whenever resident memory jumps by (\d+) MiB", _monitor.JUMP_BYTES >> 20),
    ("README.md", r"then (\d+) instances", _hooks.SCOPE_STREAK),
    ("README.md", r"sampled\s+every (\d+) ms", round(_monitor.TICK * 1000)),
    ("README.md", r"first passes (\d+) MiB above", _monitor.CENSUS_FIRST >> 20),
    ("README.md", r"each new high by (\d+)%", round((_monitor.CENSUS_STEP - 1) * 100)),
    ("README.md", r"take at most (\d+)% of the run's time", round(_monitor.CENSUS_BUDGET * 100)),
    ("README.md", r"every ([\d.]+) s otherwise", _monitor.INTERVAL),
    ("README.md", r"at most (\d+)% of the time\)", round(_monitor.INTERVAL_SHARE * 100)),
    ("ARCHITECTURE.md", r"code calls \(contract v(\d+)\)", _hooks.HOOKS_VERSION),
    ("ARCHITECTURE.md", r"flush every (\d+) events", CFG.flush_events),
    ("ARCHITECTURE.md", r"flush every \d+ events or ([\d.]+) s", CFG.flush_seconds),
    ("ARCHITECTURE.md", r"bound (\d+) small values are sampled", _hooks.SCALAR_STREAK),
    ("ARCHITECTURE.md", r"sampled \(1 in (\d+)\)", _hooks.SAMPLE_EVERY),
    ("ARCHITECTURE.md", r"re-arms every guard each ([\d.]+) s", _hooks.REARM_SECONDS),
    ("ARCHITECTURE.md", r"larger than (\d+) bytes \(deep", _hooks.SMALL_BYTES),
    ("ARCHITECTURE.md", r"`/proc/self/status` every (\d+) ms", round(_monitor.TICK * 1000)),
]


@pytest.mark.parametrize(("doc", "phrase", "value"), QUOTES,
                         ids=[f"{d}:{p}" for d, p, _ in QUOTES])
def test_a_quoted_number_is_the_constant(doc: str, phrase: str, value: float) -> None:
    text = " ".join((ROOT / doc).read_text().split())  # line breaks as spaces
    found = re.findall(phrase.replace(r"\s+", " "), text)
    assert found, f"{doc} no longer says {phrase!r}: update the phrase or the doc"
    assert all(float(f) == float(value) for f in found), (doc, phrase, found, value)
