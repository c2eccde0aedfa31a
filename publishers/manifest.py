"""What a publish must do, decided without touching any target: hashes in, a plan out.

Each client's folder carries `.manifest.json`, a map of file path -> sha256 of what was
written (content plus the headers a target stores with it). A publish compares the new
files with that manifest: changed or new files are uploaded, files the manifest lists but
the new portal lacks are deleted, the rest are left alone. S3 ETags are not used because
they are not content hashes for multipart or SSE-KMS objects.

The manifest is written last, so an interrupted publish leaves the old manifest in place
and the next run simply redoes every step that the old manifest does not account for.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bridge.publisher import RenderedFile

MANIFEST = ".manifest.json"
INDEX = "index.html"
_VERSION = 1


def file_hash(f: RenderedFile) -> str:
    """sha256 over the bytes and every header stored beside them, so a renamed download counts."""
    h = hashlib.sha256()
    meta = json.dumps([f.content_type, f.download_name, f.content_encoding], ensure_ascii=True)
    h.update(meta.encode("ascii"))
    h.update(b"\0")
    h.update(f.data)
    return h.hexdigest()


def hash_tree(files: Iterable[RenderedFile]) -> dict[str, str]:
    tree: dict[str, str] = {}
    for f in files:
        check_path(f.path)
        if f.path in tree:
            raise ValueError(f"two rendered files share the path {f.path!r}")
        tree[f.path] = file_hash(f)
    return tree


def check_path(path: str) -> None:
    """A rendered path stays inside the client's folder and never shadows the manifest."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in path:
        raise ValueError(f"rendered file path {path!r} must be relative, without '..' or empty parts")
    if path == MANIFEST:
        raise ValueError(f"{MANIFEST} is reserved for the publish manifest")


def publish_order(paths: Iterable[str]) -> list[str]:
    """Exports first (sorted, for stable logs), index.html last: a reader never sees a page
    whose exports are not there yet."""
    paths = set(paths)
    out = sorted(p for p in paths if p != INDEX)
    if INDEX in paths:
        out.append(INDEX)
    return out


@dataclass(frozen=True)
class Plan:
    uploads: list[str] = field(default_factory=list)  # in publish order
    deletes: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def is_noop(self) -> bool:
        return not self.uploads and not self.deletes


def plan(local: Mapping[str, str], remote: Mapping[str, str] | None) -> Plan:
    """Compare new hashes with the published manifest (None or {} when there is none)."""
    remote = remote or {}
    changed = [p for p, h in local.items() if remote.get(p) != h]
    return Plan(
        uploads=publish_order(changed),
        deletes=sorted(p for p in remote if p not in local and p != MANIFEST),
        unchanged=sorted(p for p, h in local.items() if remote.get(p) == h),
    )


def encode_manifest(hashes: Mapping[str, str]) -> bytes:
    return json.dumps({"version": _VERSION, "files": dict(sorted(hashes.items()))}, indent=1).encode()


def decode_manifest(data: bytes | None) -> dict[str, str]:
    """A missing or unreadable manifest means 'nothing known': the next publish uploads all."""
    if not data:
        return {}
    try:
        doc = json.loads(data)
        files = doc["files"]
        if doc.get("version") != _VERSION or not isinstance(files, dict):
            return {}
        return {str(k): str(v) for k, v in files.items()}
    except (ValueError, KeyError, TypeError):
        return {}


def by_path(files: Sequence[RenderedFile]) -> dict[str, RenderedFile]:
    return {f.path: f for f in files}


def check_token(token: str) -> None:
    """Tokens become folder names and object keys: URL-safe characters only, long enough
    to be unguessable (secrets.token_urlsafe(24) gives 32 characters)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{22,64}", token or ""):
        raise ValueError("a portal token must be 22-64 URL-safe characters")


def is_token(name: str) -> bool:
    """Whether a folder or key prefix is shaped like a portal token (listing portals)."""
    try:
        check_token(name)
    except ValueError:
        return False
    return True
