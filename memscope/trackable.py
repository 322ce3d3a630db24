"""The ``Trackable`` protocol (``memscope.Trackable``), in a module of its own: a
runtime-checkable ``Protocol`` needs ``typing`` at import, which ``memscope run``'s
start-up does without (``memscope`` imports this module only when the name is asked for).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Trackable(Protocol):
    """A class that tells memscope how to size it (each method optional in practice).

    - ``__memscope_size__()``: bytes the object itself accounts for (replaces
      ``sys.getsizeof``).
    - ``__memscope_children__()``: the objects it holds, walked for the deep size.
    - ``__memscope_buffer__()``: ``(address, nbytes)`` of memory it owns outside the
      Python heap, or ``None``.
    """

    def __memscope_size__(self) -> int: ...
