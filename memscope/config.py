"""Settings of a tracking run, from arguments or ``MEMSCOPE_*`` environment variables."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
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


class Config:
    """Everything that decides what a run records and where it goes (immutable: change a
    copy with ``with_``).

    ``mode``: ``"fast"`` records identity, type, shallow size and time of every binding;
    ``"full"`` adds deep sizes, reference counts, buffer addresses, object finalization
    and leak analysis at exit. ``sampling`` (``MEMSCOPE_SAMPLING``): sites that bind only
    small values are sampled and switched off between re-arms (README, "What each mode
    records"); ``False`` records every bind at several times the cost. ``census``
    (``MEMSCOPE_CENSUS``): walk the heap from the named variables to measure what each
    retains, as memory grows (so the peak is caught), at the end and on demand.

    A plain class, not a dataclass: importing ``dataclasses`` (and the ``inspect``,
    ``ast`` and ``tokenize`` it imports) is a cost of ``memscope run``'s start-up.
    """

    mode: str
    output_dir: str
    name: str | None
    capture: bool  # stream events to a capture file
    flush_events: int  # events buffered before a flush
    flush_seconds: float  # ... and the longest they wait (what a SIGKILL can lose)
    deep_budget_objects: int  # deep-size walk stops after this many objects
    deep_budget_ns: int  # ... or after this long (100 ms)
    leak_check: bool  # full mode: look for leaks at exit
    record_values: bool  # never record reprs unless asked
    sampling: bool  # sample sites and scope instances that bind only small values
    census: bool  # heap walks by variable: at memory growth steps, at the end, on demand
    run_id: str  # the run this process belongs to (memscope run: it and its children)
    extra: dict[str, Any]

    def __init__(
        self,
        mode: str = "fast",
        output_dir: str = "MemoryAnalysis",
        name: str | None = None,
        capture: bool = True,
        flush_events: int = 8192,
        flush_seconds: float = 1.0,
        deep_budget_objects: int = 1_000_000,
        deep_budget_ns: int = 100_000_000,
        leak_check: bool = True,
        record_values: bool = False,
        sampling: bool = True,
        census: bool = True,
        run_id: str = "",
        extra: dict[str, Any] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"mode={mode!r}: expected one of {', '.join(MODES)}")
        if flush_events < 1:
            raise ConfigError(f"flush_events={flush_events}: must be at least 1")
        if not 0 < flush_seconds <= 3600:
            raise ConfigError(f"flush_seconds={flush_seconds}: must be above 0 and at most 3600")
        if deep_budget_objects < 1 or deep_budget_ns < 1:
            raise ConfigError("deep size budgets must be positive")
        self.__dict__.update(
            mode=mode,
            output_dir=output_dir,
            name=name,
            capture=capture,
            flush_events=flush_events,
            flush_seconds=float(flush_seconds),
            deep_budget_objects=deep_budget_objects,
            deep_budget_ns=deep_budget_ns,
            leak_check=leak_check,
            record_values=record_values,
            sampling=sampling,
            census=census,
            run_id=run_id,
            extra={} if extra is None else extra,
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Config is immutable: use config.with_({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Config is immutable")

    def __repr__(self) -> str:
        return f"Config({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(tuple(self.__dict__.values()))  # like a frozen dataclass's (fails on extra)

    def with_(self, **changes: Any) -> Config:
        """A copy with some settings changed (``None`` values are ignored)."""
        return Config(**{**self.__dict__, **{k: v for k, v in changes.items() if v is not None}})

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Config:
        """Settings from ``MEMSCOPE_<SETTING>`` variables, then ``overrides`` on top."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for key_name, default in _DEFAULTS.__dict__.items():
            if key_name == "extra":
                continue
            key = "MEMSCOPE_" + key_name.upper()
            if key not in env:
                continue
            raw = env[key]
            if isinstance(default, bool):
                values[key_name] = _env_bool(raw, key)
            elif isinstance(default, int):
                try:
                    values[key_name] = int(raw)
                except ValueError:
                    raise ConfigError(f"{key}={raw!r}: expected an integer") from None
            elif isinstance(default, float):
                try:
                    values[key_name] = float(raw)
                except ValueError:
                    raise ConfigError(f"{key}={raw!r}: expected a number") from None
            else:
                values[key_name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


_DEFAULTS = Config()  # the type of each setting's default says how MEMSCOPE_<SETTING> reads
