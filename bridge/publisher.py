"""The port every publishing target implements, and the rendered files it receives.

Render knows nothing about publish: the renderer produces `RenderedFile`s in memory and
asks a `LinkFn` for the URL of each export; a publisher writes the files somewhere and
signs links. Targets are chosen by URL scheme (file://, s3://) in publishers/__init__.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# link(client_token, relative_path) -> URL the page should use for that file
LinkFn = Callable[[str, str], str]


@dataclass(frozen=True)
class RenderedFile:
    path: str  # relative to the client's folder: "index.html", "timesheet.csv"
    data: bytes
    content_type: str
    download_name: str | None = None  # human file name for Content-Disposition
    content_encoding: str | None = None  # "gzip" when `data` is stored pre-compressed


@dataclass(frozen=True)
class PublishResult:
    token: str
    url: str
    expires_at: dt.datetime | None
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


class Publisher(Protocol):
    def link(self, token: str, path: str) -> str:
        """URL for one file of a client's portal, signed where the target signs."""

    def publish(self, token: str, files: Sequence[RenderedFile]) -> PublishResult:
        """Write a client's files: exports first, then index.html, then the manifest."""

    def remove(self, token: str) -> int:
        """Delete every object under a (revoked) token; returns how many."""
