"""Settings of a tracking run, from arguments or ``MEMSCOPE_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

MODES = ("fast", "full")


class ConfigError(ValueError):
    """A setting has a value memscope cannot use (named in the message)."""


def _env_bool(text: str, name: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}={text!r}: expected one of 1/0, true/false, yes/no, on/off")


@dataclass(frozen=True)
class Config:
    """Everything that decides what a run records and where it goes.

    ``mode``: ``"fast"`` records identity, type, shallow size and time of every binding;
    ``"full"`` adds deep sizes, reference counts, buffer addresses, object finalization
    and leak analysis at exit. ``sampling`` (``MEMSCOPE_SAMPLING``): sites that bind only
    small values are sampled and switched off between re-arms (README, "What each mode
    records"); ``False`` records every bind at several times the cost.
    """

    mode: str = "fast"
    output_dir: str = "MemoryAnalysis"
    name: str | None = None
    capture: bool = True  # stream events to a capture file
    flush_events: int = 8192  # events buffered before a flush
    deep_budget_objects: int = 1_000_000  # deep-size walk stops after this many objects
    deep_budget_ns: int = 100_000_000  # ... or after this long (100 ms)
    leak_check: bool = True  # full mode: look for leaks at exit
    probable_leaks: bool = False  # also match unweakrefable objects by id (may misname)
    record_values: bool = False  # never record reprs unless asked
    sampling: bool = True  # sample sites and scope instances that bind only small values
    max_holders: int = 8  # holders named per leaked object
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode={self.mode!r}: expected one of {', '.join(MODES)}")
        if self.flush_events < 1:
            raise ConfigError(f"flush_events={self.flush_events}: must be at least 1")
        if self.deep_budget_objects < 1 or self.deep_budget_ns < 1:
            raise ConfigError("deep size budgets must be positive")

    def with_(self, **changes: Any) -> Config:
        """A copy with some settings changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Config:
        """Settings from ``MEMSCOPE_<SETTING>`` variables, then ``overrides`` on top."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            key = "MEMSCOPE_" + f.name.upper()
            if key not in env:
                continue
            raw = env[key]
            if f.type in ("bool", bool):
                values[f.name] = _env_bool(raw, key)
            elif f.type in ("int", int):
                try:
                    values[f.name] = int(raw)
                except ValueError:
                    raise ConfigError(f"{key}={raw!r}: expected an integer") from None
            else:
                values[f.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
