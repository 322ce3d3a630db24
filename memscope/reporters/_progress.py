"""Progress of report writing on stderr, so a report of a large capture is not minutes
of silence: a rich progress display when stderr is a terminal, else one line for each
step that took longer than a second (logs and CI). Never on stdout: ``memscope
report`` prints the paths written there."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

SLOW = 1.0  # seconds: a step this long gets a line of its own when not on a terminal


class Quiet:
    """Says nothing (the API, tests, a tracker's ``export_*``)."""

    def start_events(self, total: int) -> None:
        pass

    def events(self, done: int) -> None:
        pass

    def end_events(self, done: int) -> None:
        pass

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        yield

    def close(self) -> None:
        pass


class Progress(Quiet):
    """Steps and the replay's event count, on ``stream`` (stderr by default)."""

    def __init__(self, stream: IO[str] | None = None, *, terminal: bool | None = None,
                 prefix: str = "memscope") -> None:
        self.stream = stream if stream is not None else sys.stderr
        if terminal is None:
            try:
                terminal = self.stream.isatty()
            except (AttributeError, ValueError):
                terminal = False
        self.terminal = terminal
        self.prefix = prefix
        self._live: Any = None
        self._task: Any = None
        self._t_events = 0.0
        self._total = 0

    def _display(self) -> Any:
        if self._live is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress

            self._live = RichProgress(
                SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                MofNCompleteColumn(), TimeElapsedColumn(),
                console=Console(file=self.stream, force_terminal=self.terminal),
                transient=True,
            )
            self._live.start()
        return self._live

    def start_events(self, total: int) -> None:
        self._t_events = time.perf_counter()
        self._total = total
        if self.terminal:
            self._task = self._display().add_task("reading events", total=total or None)

    def events(self, done: int) -> None:
        if self._task is not None:
            self._live.update(self._task, completed=done)

    def end_events(self, done: int) -> None:
        took = time.perf_counter() - self._t_events
        if self._task is not None:
            self._live.remove_task(self._task)
            self._task = None
        elif took >= SLOW:
            self._line(f"read {done:,} events in {took:.1f} s")

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        t = time.perf_counter()
        task = self._display().add_task(f"writing {what}", total=None) if self.terminal else None
        try:
            yield
        finally:
            took = time.perf_counter() - t
            if task is not None:
                self._live.remove_task(task)
            elif took >= SLOW:
                self._line(f"wrote {what} in {took:.1f} s")

    def _line(self, text: str) -> None:
        try:
            self.stream.write(f"{self.prefix}: {text}\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
