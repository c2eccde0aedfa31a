"""Progress for long syncs: rich bars on a terminal, plain lines when output is piped."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class PlainProgress:
    """One line per resource when it finishes; a line every 10 s for long resources."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._counts: dict[tuple[str, str], int] = {}
        self._last: dict[tuple[str, str], float] = {}

    def start(self, source: str, resource: str) -> None:
        self._counts[(source, resource)] = 0
        self._last[(source, resource)] = time.monotonic()

    def advance(self, source: str, resource: str, records: int) -> None:
        key = (source, resource)
        self._counts[key] = self._counts.get(key, 0) + records
        if time.monotonic() - self._last.get(key, 0) > 10:
            self._last[key] = time.monotonic()
            print(f"{source}: {resource}: {self._counts[key]} records so far", file=self.stream, flush=True)

    def done(self, source: str, resource: str) -> None:
        print(f"{source}: {resource}: {self._counts.get((source, resource), 0)} records", file=self.stream, flush=True)


class RichProgress:
    """A spinner and running count per resource (totals are unknown until the last page)."""

    def __init__(self) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), TextColumn("{task.completed:>9,.0f} records"),
            TimeElapsedColumn(), transient=False,
        )
        self._tasks: dict[tuple[str, str], Any] = {}

    def __enter__(self) -> "RichProgress":
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, source: str, resource: str) -> None:
        self._tasks[(source, resource)] = self._progress.add_task(f"{source} {resource}", total=None)

    def advance(self, source: str, resource: str, records: int) -> None:
        self._progress.advance(self._tasks[(source, resource)], records)

    def done(self, source: str, resource: str) -> None:
        task = self._tasks[(source, resource)]
        self._progress.update(task, total=self._progress.tasks[task].completed)


def progress_for(stream: TextIO | None = None) -> Any:
    stream = stream or sys.stderr
    return RichProgress() if stream.isatty() else PlainProgress(stream)
