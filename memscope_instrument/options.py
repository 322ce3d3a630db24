"""What changes the transformer's output: its version, the hooks contract it targets,
and the user's options. Kept apart from :mod:`memscope_instrument.transform` so that a
run whose instrumented code is all cached never imports libcst."""

from __future__ import annotations

from _blake2 import blake2b  # hashlib's own; importing hashlib loads OpenSSL (~6 ms)

__all__ = ["HOOKS_CONTRACT", "TRANSFORM_VERSION", "Options"]

TRANSFORM_VERSION = "14"  # 12: globals (#16); 13: lambdas in iterables; 14: form feeds (#17)
HOOKS_CONTRACT = 4  # memscope._hooks.HOOKS_VERSION this output targets


class Options:
    """The transformer's settings (immutable, compared by value).

    A plain class, not a dataclass: ``dataclasses`` is a cost of ``memscope run``'s
    start-up."""

    __slots__ = ("comprehensions", "imports", "mode")

    mode: str  # recorded only, the transform is the same
    imports: bool  # instrument import bindings
    comprehensions: bool  # comprehension scopes

    def __init__(
        self, mode: str = "fast", imports: bool = False, comprehensions: bool = False
    ) -> None:
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "imports", imports)
        object.__setattr__(self, "comprehensions", comprehensions)

    def _key(self) -> tuple[str, bool, bool]:
        return (self.mode, self.imports, self.comprehensions)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Options is immutable (setting {name!r})")

    def __reduce__(self) -> tuple[type[Options], tuple[str, bool, bool]]:
        return (Options, self._key())  # pickled to ``memscope-instrument``'s workers

    def __repr__(self) -> str:
        return (
            f"Options(mode={self.mode!r}, imports={self.imports!r}, "
            f"comprehensions={self.comprehensions!r})"
        )

    def __eq__(self, other: object) -> bool:
        return self._key() == other._key() if isinstance(other, Options) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def digest(self) -> str:
        """Stable hash of every setting that changes the output."""
        key = (f"v{TRANSFORM_VERSION};h{HOOKS_CONTRACT};i{int(self.imports)};"
               f"c{int(self.comprehensions)}")
        return blake2b(key.encode(), digest_size=8).hexdigest()
