"""Publish portals into a local folder: `file://DIR` puts each client's files in DIR/<token>/.

Useful for `bridge demo`, previews and sites served by a web server the agency already
runs. Each file is written to a temporary folder first and moved into place with
os.replace (atomic on one file system), exports before index.html, so a reader who opens
the page mid-publish sees the old page or the new one with every export it links to.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote
from urllib.request import url2pathname

from bridge.config import PublishConfig
from bridge.errors import ConfigError, PublishError
from bridge.publisher import PublishResult, RenderedFile
from publishers import manifest as mf


def folder_from_url(target: str) -> Path:
    """file://./site -> ./site (relative to the working directory); file:///srv/p -> /srv/p."""
    if not target.startswith("file://"):
        raise ConfigError(f"publish.target {target!r} is not a file:// URL")
    raw = target[len("file://"):]
    if not raw:
        raise ConfigError(f"publish.target {target!r} names no folder; use file://./site or file:///srv/portals")
    return Path(url2pathname(raw)).expanduser()


class LocalPublisher:
    """Writes a client's rendered files to <root>/<token>/; links never expire."""

    scheme = "file"
    signs_links = False

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @classmethod
    def from_config(cls, cfg: PublishConfig) -> "LocalPublisher":
        return cls(folder_from_url(cfg.target))

    # --- the Publisher port ----------------------------------------------------------
    def link(self, token: str, path: str) -> str:
        """Exports sit beside index.html, so the page links to them relatively."""
        mf.check_path(path)
        return quote(path)

    def portal_url(self, token: str) -> str:
        return (self._folder(token) / mf.INDEX).resolve().as_uri()

    def bind(self, *, signed_at: dt.datetime, expires_in: int, allow_ips: Sequence[str] = ()) -> "LocalPublisher":
        """Local links carry no signature or expiry; the same publisher serves every client."""
        return self

    @property
    def expires_at(self) -> dt.datetime | None:
        return None

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PublishError(f"cannot create the publish folder {self.root}: {exc.strerror}") from None

    def publish(self, token: str, files: Sequence[RenderedFile]) -> PublishResult:
        mf.check_token(token)
        folder = self._folder(token)
        local = mf.hash_tree(files)
        by_path = mf.by_path(files)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            remote = mf.decode_manifest(_read(folder / mf.MANIFEST))
            # a file removed by hand since the last publish is written again
            remote = {p: h for p, h in remote.items() if (folder / p).is_file()}
            todo = mf.plan(local, remote)
            with tempfile.TemporaryDirectory(prefix=".publish-", dir=folder) as tmp:
                for path in todo.uploads:
                    _place(Path(tmp), folder, path, _plain(by_path[path]))
                for path in todo.deletes:
                    (folder / path).unlink(missing_ok=True)
                _place(Path(tmp), folder, mf.MANIFEST, mf.encode_manifest(local))
        except OSError as exc:
            raise PublishError(f"cannot write the portal folder under {self.root}: {exc.strerror}") from None
        return PublishResult(
            token=token,
            url=self.portal_url(token),
            expires_at=None,
            uploaded=todo.uploads,
            deleted=todo.deletes,
            unchanged=todo.unchanged,
        )

    def remove(self, token: str) -> int:
        mf.check_token(token)
        folder = self._folder(token)
        if not folder.exists():
            return 0
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder)
        return count

    def portals(self) -> dict[str, int]:
        """Every portal folder under the root (token -> file count), whoever published it."""
        out: dict[str, int] = {}
        if not self.root.is_dir():
            return out
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and mf.is_token(folder.name) and (folder / mf.MANIFEST).exists():
                out[folder.name] = sum(1 for p in folder.rglob("*") if p.is_file())
        return out

    def _folder(self, token: str) -> Path:
        return self.root / token


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _plain(f: RenderedFile) -> bytes:
    """A browser opening a file:// page cannot undo Content-Encoding, so store plain bytes."""
    if f.content_encoding == "gzip":
        return gzip.decompress(f.data)
    return f.data


def _place(tmp: Path, folder: Path, path: str, data: bytes) -> None:
    staged = tmp / path.replace("/", "__")
    staged.write_bytes(data)
    dest = folder / path
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, dest)
