"""memscope._censusc: the census walk's hot loop in C (memscope/_censusc.c)."""

from typing import Any

LAYOUT: tuple[int, int, int, int, int, int, int, int]
KINDS: tuple[int, int, int, int, int, int, int]
SHARED: int
OWN_REFS: int

def descend(census: Any, start: Any, start_rec: list[Any], /) -> None: ...
