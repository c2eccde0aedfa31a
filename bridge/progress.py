"""Progress for long syncs: rich bars on a terminal, plain lines when output is piped."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

log = logging.getLogger("bridge.progress")


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


class LogProgress:
    """`--log-format json`: progress as structured log events, not text lines."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}
        self._pages: dict[tuple[str, str], int] = {}
        self._started: dict[tuple[str, str], float] = {}

    def start(self, source: str, resource: str) -> None:
        key = (source, resource)
        self._counts[key], self._pages[key], self._started[key] = 0, 0, time.monotonic()

    def advance(self, source: str, resource: str, records: int) -> None:
        key = (source, resource)
        self._counts[key] = self._counts.get(key, 0) + records
        self._pages[key] = self._pages.get(key, 0) + 1
        log.debug("%s: %s: page %d, %d records", source, resource, self._pages[key], records, extra={
            "event": "sync.page", "source": source, "resource": resource, "page": self._pages[key], "records": records,
        })

    def done(self, source: str, resource: str) -> None:
        key = (source, resource)
        seconds = time.monotonic() - self._started.get(key, time.monotonic())
        log.info("%s: %s: %d records", source, resource, self._counts.get(key, 0), extra={
            "event": "sync.resource", "source": source, "resource": resource, "records": self._counts.get(key, 0),
            "page": self._pages.get(key, 0), "seconds": seconds,
        })


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
    from bridge.logs import JsonLinesStderr

    if isinstance(stream, JsonLinesStderr):
        return LogProgress()
    return RichProgress() if stream.isatty() else PlainProgress(stream)
