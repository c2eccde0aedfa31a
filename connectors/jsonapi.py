"""Tiny JSON:API helpers: turn `data` + `included` into plain nested dicts.

A JSON:API resource keeps its fields under `attributes` and its links under
`relationships.<name>.data = {type, id}`, with the linked resources (when asked for with
`include=`) somewhere in the top-level `included` array. Normalizers are easier to read
and test on one flat dict, so `flatten` merges the attributes up and replaces every
to-one linkage by the linked resource, itself flattened, or by a bare `{"id", "type"}`
stub when the server did not include it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Key = tuple[str, str]


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
    for name, rel in (resource.get("relationships") or {}).items():
        if not _is_map(rel) or "data" not in rel:
            continue
        linkage = rel["data"]
        if isinstance(linkage, list):
            out[name] = [_resolve(link, included, depth, memo) for link in linkage]
        else:
            out[name] = _resolve(linkage, included, depth, memo)
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
