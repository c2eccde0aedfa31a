"""The pure half of incremental publishing: hashes, plans, order, manifest round trip."""

from __future__ import annotations

import pytest

from bridge.publisher import RenderedFile
from publishers import manifest as mf


def f(path: str, data: bytes = b"x", **kw) -> RenderedFile:
    return RenderedFile(path, data, kw.pop("content_type", "text/csv"), **kw)


def test_first_publish_uploads_everything_exports_before_index() -> None:
    local = mf.hash_tree([f("index.html", content_type="text/html"), f("b.pdf"), f("a.csv")])
    p = mf.plan(local, None)
    assert p.uploads == ["a.csv", "b.pdf", "index.html"]
    assert p.deletes == [] and p.unchanged == []


def test_unchanged_files_are_not_uploaded_and_stale_ones_deleted() -> None:
    old = mf.hash_tree([f("index.html", b"v1"), f("a.csv", b"same"), f("gone.xlsx")])
    new = mf.hash_tree([f("index.html", b"v2"), f("a.csv", b"same"), f("new.pdf")])
    p = mf.plan(new, old)
    assert p.uploads == ["new.pdf", "index.html"]
    assert p.deletes == ["gone.xlsx"]
    assert p.unchanged == ["a.csv"]
    assert not p.is_noop
    assert mf.plan(new, new).is_noop


def test_hash_covers_headers_not_only_bytes() -> None:
    base = f("a.csv", b"1", download_name="Hours.csv")
    assert mf.file_hash(base) != mf.file_hash(f("a.csv", b"1", download_name="Hours March.csv"))
    assert mf.file_hash(base) != mf.file_hash(f("a.csv", b"1", download_name="Hours.csv", content_type="text/plain"))
    assert mf.file_hash(base) == mf.file_hash(f("a.csv", b"1", download_name="Hours.csv"))


def test_manifest_round_trip_and_unreadable_manifest_means_upload_all() -> None:
    hashes = mf.hash_tree([f("index.html"), f("a.csv")])
    assert mf.decode_manifest(mf.encode_manifest(hashes)) == hashes
    for junk in (None, b"", b"not json", b'{"version": 99, "files": {}}', b'{"files": []}', b"[1]"):
        assert mf.decode_manifest(junk) == {}
    assert mf.plan(hashes, mf.decode_manifest(b"garbage")).uploads == ["a.csv", "index.html"]


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../b", "", "a//b", ".manifest.json", "a\\b", "./a"])
def test_paths_stay_inside_the_client_folder(path: str) -> None:
    with pytest.raises(ValueError):
        mf.hash_tree([f(path)])


def test_duplicate_paths_are_refused() -> None:
    with pytest.raises(ValueError, match="share the path"):
        mf.hash_tree([f("a.csv"), f("a.csv", b"y")])


@pytest.mark.parametrize("token", ["short", "x" * 65, "has/slash" + "x" * 20, "dots..." + "x" * 20, ""])
def test_tokens_must_be_long_url_safe_strings(token: str) -> None:
    with pytest.raises(ValueError):
        mf.check_token(token)
    mf.check_token("Ab-_" * 8)
