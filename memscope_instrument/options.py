"""What changes the transformer's output: its version, the hooks contract it targets,
and the user's options. Kept apart from :mod:`memscope_instrument.transform` so that a
run whose instrumented code is all cached never imports libcst."""

from __future__ import annotations

from _blake2 import blake2b  # hashlib's own; importing hashlib loads OpenSSL (~6 ms)
from dataclasses import dataclass

__all__ = ["HOOKS_CONTRACT", "TRANSFORM_VERSION", "Options"]

TRANSFORM_VERSION = "6"
HOOKS_CONTRACT = 2  # memscope._hooks.HOOKS_VERSION this output targets


@dataclass(frozen=True)
class Options:
    mode: str = "fast"  # recorded only, the transform is the same
    imports: bool = False  # instrument import bindings
    comprehensions: bool = False  # comprehension scopes

    def digest(self) -> str:
        """Stable hash of every setting that changes the output."""
        key = (f"v{TRANSFORM_VERSION};h{HOOKS_CONTRACT};i{int(self.imports)};"
               f"c{int(self.comprehensions)}")
        return blake2b(key.encode(), digest_size=8).hexdigest()
