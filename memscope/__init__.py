"""memscope: memory tracking by variable name."""

from __future__ import annotations

__version__ = "0.1.0"
