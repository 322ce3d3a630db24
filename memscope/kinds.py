"""The kinds of bindings and scopes, as the site and scope tables store them.

Stable numbers: they are stored in captures. The hot path uses the numbers
(``memscope._hooks`` and ``memscope.explicit`` name the few they need), so ``enum`` is
imported only by the transformer and the reporters.
"""

from __future__ import annotations

from enum import IntEnum


class BindKind(IntEnum):
    """How a name was bound at a site (stable numbers: they are stored in captures)."""

    ASSIGN = 1
    AUGASSIGN = 2
    ANNASSIGN = 3
    WALRUS = 4
    FOR = 5
    WITH = 6
    EXCEPT = 7
    MATCH = 8
    PARAM = 9
    IMPORT = 10
    ATTRIBUTE = 11
    DEL = 12
    EXPLICIT = 13  # memscope.track_var
    GLOBAL = 14
    NONLOCAL = 15
    CLASS_DEF = 16
    FUNC_DEF = 17


class ScopeKind(IntEnum):
    """What kind of code block a scope is (stable numbers: stored in captures)."""

    MODULE = 1
    CLASS = 2
    FUNCTION = 3
    METHOD = 4
    GENERATOR = 5
    COROUTINE = 6
    ASYNC_GENERATOR = 7
    LAMBDA = 8
    COMPREHENSION = 9
    EXPLICIT = 10  # memscope.track_scope


def kind_name(kind: int, enum: type[IntEnum]) -> str:
    """The lower-case name of a stored kind number, or ``"unknown(N)"``."""
    try:
        return enum(kind).name.lower()
    except ValueError:
        return f"unknown({kind})"
