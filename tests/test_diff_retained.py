"""``memscope diff`` compares what variables retain (the censuses), not what they
weighed when bound: a list that grows after it is bound reads as grown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

PROGRAM = """\
import sys
n = int(sys.argv[1])
items = []  # bound empty: 56 bytes when bound, whatever it grows to
for i in range(n):
    items.append(str(i) * 4)
"""


def _capture(tmp: Path, name: str, n: int) -> Path:
    script = tmp / f"{name}.py"
    script.write_text(PROGRAM)
    out = tmp / "out"
    subprocess.run([sys.executable, "-m", "memscope", "run", "-o", str(out), "--no-report",
                    str(script), str(n)], check=True, capture_output=True, cwd=tmp)
    return next((out / name).glob(f"{name}.*.memscope"))


def test_a_list_grown_after_binding_reads_as_grown(tmp_path: Path) -> None:
    few = _capture(tmp_path, "few", 100)
    many = _capture(tmp_path, "many", 200_000)
    res = subprocess.run([sys.executable, "-m", "memscope", "diff", str(few), str(many),
                          "--json"], capture_output=True, cwd=tmp_path)
    assert res.returncode == 1, res.stderr  # grown: fails by default
    d = orjson.loads(res.stdout)
    change = {c["key"]: c for c in d["changes"]}["__main__:<module>:items"]
    assert change["status"] == "grown" and change["measure"] == "retained"
    # 200,000 strings of 4-24 characters (about 60 bytes each) and the list's 1.6 MB
    assert change["after"] > 10_000_000 and change["before"] < 100_000
    assert d["process_peak_after"] > d["process_peak_before"] + 10_000_000
    assert d["named_at_peak_after"] >= change["after"]
    text = subprocess.run([sys.executable, "-m", "memscope", "diff", str(few), str(many)],
                          capture_output=True, text=True, cwd=tmp_path).stdout
    assert "process peak (resident):" in text and "named at the peak:" in text
    assert "__main__:<module>:items" in text and "retained" in text


def test_names_that_hide_text_are_shown_escaped(tmp_path: Path) -> None:
    """A path with a bidi override (U+202E) would reorder the terminal's line: the
    text diff shows its escape, as every other report does; --json keeps it as is."""
    here = tmp_path / "ab\u202ecd"
    here.mkdir()
    caps = [str(_capture(here, name, n)) for name, n in (("one", 10), ("two", 100_000))]
    text = subprocess.run([sys.executable, "-m", "memscope", "diff", *caps],
                          capture_output=True, text=True, cwd=tmp_path).stdout
    assert "items" in text and "ab\\u202ecd" in text and "\u202e" not in text
    d = orjson.loads(subprocess.run([sys.executable, "-m", "memscope", "diff", *caps,
                                     "--json"], capture_output=True, cwd=tmp_path).stdout)
    assert any("ab\u202ecd" in c["file"] for c in d["changes"])
