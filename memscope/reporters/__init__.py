"""Reporters: each turns recorded events (a live tracker or a capture) into an output."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ReportError(Exception):
    """A report could not be made (the message says which and why)."""


def export(tracker: Any, fmt: str, target: Any = None, **options: Any) -> Path:
    """Write ``fmt`` (json, binary, html, svg, timeline) for a live tracker."""
    raise ReportError(f"the {fmt!r} reporter is not available in this build")
