"""What a row of each known event kind must hold before an analysis uses it.

The capture format stores any kind with any fields (docs/capture-format.md); the event
vocabulary (``memscope.events``) says what the runtime writes. A capture read for an
analysis (``CaptureFile.events(check=True)``, what every reporter reads through
``memscope.reporters.load``) has each row checked here once, where the reader decodes
it, so that no reporter needs to guard its own arithmetic:

- **fields after the last one this reader knows are ignored** (a newer runtime's
  fields): the row is cut to the widest layout of its kind that it fills (BIND: 10
  fields, or the fast mode's 6; MEM: 4, or 3);
- **a row that cannot be used** (fewer fields than its kind's narrowest layout, a field
  of another type, a number outside what the runtime can write) **is skipped and
  counted**; the first ``LISTED`` such rows of a capture become ERROR rows naming the
  chunk (index and file offset), the event in it, the kind, the field and the value;
  a last ERROR row gives the total when there were more;
- kinds this reader does not know pass unchanged (the analysis ignores them).

Numbers: every int field holds a value from -(2**62) to below 2**62 (the runtime's ids,
tokens, object ids, addresses, lines and clock readings all do, and differences and
the per-process shifts of ``memscope.reporters.load`` then stay within int64, which
the reporters' packed columns need); times (the runtime's ``perf_counter_ns``) and
counts are at least 0; sizes are at least -1 ("not recorded"); lines and columns fit
in 31 bits (the dashboard stores them as int32).

Columns the reader decodes as int64 (I64, I64_PLANES) are checked on their most
significant byte plane where it settles the range (one C pass over a byte string,
one byte when the plane is elided), else (and for I64_DELTA) by their minimum and
maximum; string columns not at all: only generic columns and generic rows (what the
writer makes of mixed or unusual groups) are checked value by value.
"""

from __future__ import annotations

from memscope.capture import format as F
from memscope.events import (
    BIND,
    CENSUS,
    CVAR,
    ENTER,
    ERROR,
    EVENT_NAMES,
    EXIT,
    FINAL,
    LEAK,
    MEM,
    SAMPLED,
    SCOPE,
    SITE,
    TASK,
    THREAD,
    TYPE,
    UNBIND,
    Event,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

LIMIT = 1 << 62  # magnitude bound of every int field

# field types: (lowest value, description) for ints; STR, STRS for text
ID, TIME, SIZE, COUNT, LINE, STR, STRS = range(7)
_LOW = {ID: -LIMIT, TIME: 0, SIZE: -1, COUNT: 0, LINE: -1}
_HIGH = {ID: LIMIT, TIME: LIMIT, SIZE: LIMIT, COUNT: LIMIT, LINE: 1 << 31}
_WHAT = {
    ID: "an int from -2**62 to 2**62",
    TIME: "a time (an int from 0 to 2**62)",
    SIZE: "a size (an int from -1 to 2**62)",
    COUNT: "a count (an int from 0 to 2**62)",
    LINE: "a line or column (an int from -1 to 2**31)",
    STR: "a string",
    STRS: "a tuple of strings",
}

# kind -> (field names and types, accepted widths from narrowest to widest)
SHAPES: dict[int, tuple[tuple[tuple[str, int], ...], tuple[int, ...]]] = {
    SCOPE: ((("scope", ID), ("file", STR), ("module", STR), ("qualname", STR),
             ("scope kind", ID), ("line", LINE)), (6,)),
    SITE: ((("site", ID), ("scope", ID), ("line", LINE), ("column", LINE), ("name", STR),
            ("bind kind", ID)), (6,)),
    TYPE: ((("type", ID), ("name", STR)), (2,)),
    THREAD: ((("thread", ID), ("name", STR)), (2,)),
    TASK: ((("task", ID), ("name", STR)), (2,)),
    ENTER: ((("time", TIME), ("scope", ID), ("token", ID), ("thread", ID), ("task", ID)),
            (5,)),
    EXIT: ((("time", TIME), ("token", ID)), (2,)),
    BIND: ((("time", TIME), ("site", ID), ("token", ID), ("object", ID), ("type", ID),
            ("size", SIZE), ("deep size", SIZE), ("refcount", ID), ("address", ID),
            ("buffer size", SIZE)), (6, 10)),
    UNBIND: ((("time", TIME), ("site", ID), ("token", ID)), (3,)),
    FINAL: ((("time", TIME), ("object", ID)), (2,)),
    LEAK: ((("time", TIME), ("object", ID), ("type", ID), ("size", SIZE),
            ("holders", STRS)), (5,)),
    ERROR: ((("time", ID), ("where", STR), ("message", STR)), (3,)),
    SAMPLED: ((("time", TIME), ("site", ID), ("every", COUNT), ("skipped", COUNT)), (4,)),
    MEM: ((("time", TIME), ("rss", SIZE), ("high-water mark", SIZE),
           ("kernel high-water mark", SIZE)), (3, 4)),
    CENSUS: ((("time", TIME), ("census", ID), ("reason", STR), ("rss", SIZE),
              ("high-water mark", SIZE), ("named", SIZE), ("shared", SIZE),
              ("objects", COUNT), ("cost", COUNT), ("memscope's own", SIZE)), (9, 10)),
    CVAR: ((("census", ID), ("scope", ID), ("token", ID), ("name", STR), ("type", ID),
            ("shallow", SIZE), ("retained", SIZE), ("shared", SIZE), ("object", ID)),
           (9,)),
}

INT_ENCODINGS = frozenset((F.COL_I64, F.COL_I64_DELTA, F.COL_I64_PLANES))
LISTED = 10  # malformed rows named one by one per capture; the rest are counted


def width_for(kind: int, n: int) -> int:
    """The number of fields a row of ``kind`` with ``n`` fields is read with (extra
    trailing ones ignored), or 0 if it has too few."""
    best = 0
    for w in SHAPES[kind][1]:
        if n >= w:
            best = w
    return best


def value_ok(spec: int, v: Any) -> bool:
    if spec == STR:
        return type(v) is str
    if spec == STRS:
        return type(v) is tuple and all(type(x) is str for x in v)
    return type(v) is int and _LOW[spec] <= v < _HIGH[spec]


def _show(v: Any) -> str:
    """A value from the file as a short ASCII text (never raw control characters)."""
    if type(v) is int and abs(v) >= LIMIT:
        return f"{'-' if v < 0 else ''}{abs(v).bit_length()}-bit int"
    t = ascii(v)
    return t if len(t) <= 40 else t[:37] + "..."


def row_problem(ev: Event) -> tuple[Event | None, str]:
    """``(row, "")`` with extra fields cut, or ``(None, why)`` for a row of a known
    kind that cannot be used; rows of unknown kinds come back as they are."""
    shape = SHAPES.get(ev[0])
    if shape is None:
        return ev, ""
    fields, widths = shape
    n = len(ev) - 1
    w = width_for(ev[0], n)
    if not w:
        return None, f"{n} fields, expected {widths[0]}"
    for j in range(w):
        v = ev[j + 1]
        name, spec = fields[j]
        if not value_ok(spec, v):
            return None, f"field {j + 1} ({name}) is {_show(v)}, expected {_WHAT[spec]}"
    return (ev if w == n else ev[: w + 1]), ""


# most significant bytes of int64 values from 0 to 2**62 and from -2**62 to -1
_NONNEG = bytes(range(0x40))
_NEG = bytes(range(0xC0, 0x100))


def _in_range(spec: int, top: bytes | None, col: Sequence[int]) -> bool:
    """Are the values of an int64 column all allowed for ``spec``? Decided from their
    most significant bytes (``top``: one per row, or one for all) where they settle it,
    else by the column's minimum and maximum."""
    if top is not None and spec != LINE:
        rest = top.translate(None, _NONNEG)
        if not rest:  # every value from 0 to 2**62
            return True
        if spec == ID and not rest.translate(None, _NEG):
            return True  # negatives down to -(2**62)
        if spec in (TIME, COUNT) or rest.strip(b"\xff"):
            return False  # a negative time or count, or a value beyond 2**62
    return min(col) >= _LOW[spec] and max(col) < _HIGH[spec]


def column_problems(kind: int, cols: list[Sequence[Any]],
                    encs: Sequence[tuple[int, bytes | None]],
                    rows: int) -> tuple[list[Sequence[Any]], dict[int, str]]:
    """One column group of a known kind: its columns cut to the width it is read with,
    and the rows (index in the group) that cannot be used, with why. ``encs``: each
    column's encoding and, for stored int64 columns, their most significant bytes."""
    fields, widths = SHAPES[kind]
    w = width_for(kind, len(cols))
    if not w:
        why = f"{len(cols)} fields, expected {widths[0]}"
        return [], dict.fromkeys(range(rows), why)
    cols = cols[:w]
    bad: dict[int, str] = {}
    for j, (col, (enc, top)) in enumerate(zip(cols, encs, strict=False)):
        name, spec = fields[j]
        if not col:
            continue
        if enc in INT_ENCODINGS and spec not in (STR, STRS):
            if _in_range(spec, top, col):
                continue  # the usual case: no value looked at one by one
        elif enc == F.COL_STR and spec == STR:
            continue
        for i, v in enumerate(col):
            if i not in bad and not value_ok(spec, v):
                bad[i] = f"field {j + 1} ({name}) is {_show(v)}, expected {_WHAT[spec]}"
    return cols, bad


class RowCheck:
    """The count of a capture's skipped rows, and where the reader is (for messages)."""

    __slots__ = ("chunk", "listed", "offset", "skipped")

    def __init__(self) -> None:
        self.skipped = 0
        self.listed = 0
        self.chunk = 0
        self.offset = 0

    def skip(self, kind: int, event: int, events: int, why: str) -> Event | None:
        """Count one skipped row; the ERROR row that names it while fewer than
        ``LISTED`` were named, else None."""
        self.skipped += 1
        if self.listed >= LISTED:
            return None
        self.listed += 1
        name = EVENT_NAMES.get(kind, str(kind))
        where = (f"event {event + 1} of {events}" if event >= 0
                 else f"a module table (one of {events} events)")
        return (ERROR, -1, "capture",
                f"chunk {self.chunk} at offset {self.offset}, {where}: {name} row "
                f"skipped: {why}")

    def total(self) -> Event | None:
        """The ERROR row that gives the count, when more rows were skipped than named."""
        if self.skipped <= self.listed:
            return None
        return (ERROR, -1, "capture", f"{self.skipped} malformed rows skipped in all "
                f"(the first {self.listed} are named in the errors before this one)")
