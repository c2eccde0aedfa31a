"""Tiny JSON:API helpers: turn `data` + `included` into plain nested dicts.

A JSON:API resource keeps its fields under `attributes` and its links under
`relationships.<name>.data = {type, id}`, with the linked resources (when asked for with
`include=`) somewhere in the top-level `included` array. Normalizers are easier to read
and test on one flat dict, so `flatten` merges the attributes up and replaces every
to-one linkage by the linked resource, itself flattened, or by a bare `{"id", "type"}`
stub when the server did not include it.

Productive sends linkage only for relationships the request names in `include=`; the
others arrive as `{"meta": {"included": false}}` (recorded from the live API). Such a
relationship is unknown, not empty: `flatten` lists its name under NOT_INCLUDED and
`link_id` refuses to read it, so a request that forgot an include fails loudly (and the
contract tests catch it) instead of storing an entry without its client.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bridge.errors import RecordError

Key = tuple[str, str]
# Where a flattened resource lists the relationships the server reported as not included.
NOT_INCLUDED = "_not_included"


class NotIncluded(RecordError):
    """A normalizer read a relationship the request did not ask for: a bug in the request."""


def _is_map(obj: Any) -> bool:
    # decoded JSON is made of dicts; the Mapping ABC check costs ~1 us and runs per field
    return type(obj) is dict or isinstance(obj, Mapping)


def index(included: Iterable[Mapping[str, Any]] | None) -> dict[Key, Mapping[str, Any]]:
    """`included` array -> {(type, id): resource}."""
    return {(str(r.get("type")), str(r.get("id"))): r for r in included or () if _is_map(r)}


def flatten(
    resource: Mapping[str, Any],
    included: Mapping[Key, Mapping[str, Any]] | None = None,
    depth: int = 4,
    memo: dict[tuple[str, str, int], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One resource as `{"id", "type", **attributes, <relationship>: {...} | [...] | None}`.

    Relationships whose linkage was not sent (`meta.included: false`) are left out, so a
    normalizer can tell "not loaded" (absent) from "linked to nothing" (None). `depth`
    bounds the recursion: linkage cycles (deal -> project -> deal) are common in JSON:API.
    `memo` shares one flattened copy of an included resource between the items of a page
    (a page of 200 time entries links the same few services); treat results as read-only.
    """
    included = included or {}
    out: dict[str, Any] = {"id": str(resource.get("id")), "type": resource.get("type")}
    attributes = resource.get("attributes") or {}
    out.update(attributes)
    skipped: list[str] = []
    for name, rel in (resource.get("relationships") or {}).items():
        if not _is_map(rel) or "data" not in rel:
            if _is_map(rel):
                skipped.append(name)
            continue
        linkage = rel["data"]
        if isinstance(linkage, list):
            out[name] = [_resolve(link, included, depth, memo) for link in linkage]
        else:
            out[name] = _resolve(linkage, included, depth, memo)
    if skipped:
        out[NOT_INCLUDED] = tuple(skipped)
    return out


def _resolve(
    link: Any, included: Mapping[Key, Mapping[str, Any]], depth: int, memo: dict[tuple[str, str, int], dict[str, Any]] | None
) -> dict[str, Any] | None:
    if not _is_map(link):
        return None
    key = (str(link.get("type")), str(link.get("id")))
    target = included.get(key)
    if target is None or depth <= 0:
        return {"id": key[1], "type": key[0]}
    if memo is None:
        return flatten(target, included, depth - 1)
    slot = (*key, depth - 1)
    if slot not in memo:
        memo[slot] = flatten(target, included, depth - 1, memo)
    return memo[slot]


def documents(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A list response's `data`, each flattened against the page's `included`."""
    data = body.get("data")
    if not isinstance(data, list):
        return []
    included = index(body.get("included"))
    memo: dict[tuple[str, str, int], dict[str, Any]] = {}
    return [flatten(r, included, memo=memo) for r in data if _is_map(r)]


def dig_id(obj: Any, *path: str) -> str | None:
    """`dig_id(entry, "service", "deal", "project")` -> the id at the end of a resolved chain."""
    cur = obj
    for name in path:
        if not _is_map(cur):
            return None
        cur = cur.get(name)
    if _is_map(cur) and cur.get("id") is not None:
        return str(cur["id"])
    return None


def link_id(obj: Any, *path: str) -> str | None:
    """Like `dig_id`, but a step the server reported as not included raises NotIncluded.

    `None` means "linked to nothing" (`data: null`) or "no such relationship"; a
    relationship sent as `meta.included: false` is never taken for either.
    """
    cur = obj
    walked: list[str] = []
    for name in path:
        if not _is_map(cur):
            return None
        walked.append(name)
        if name not in cur and name in (cur.get(NOT_INCLUDED) or ()):
            dotted = ".".join(walked)
            raise NotIncluded(
                f"relationship {dotted!r} came without linkage (meta.included false): the request must name "
                f"it in include=; this is a bug in the bridge's request, not a record without {name}",
                field=dotted,
            )
        cur = cur.get(name)
    if _is_map(cur) and cur.get("id") is not None:
        return str(cur["id"])
    return None
