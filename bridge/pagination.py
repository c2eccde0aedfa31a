"""Pagers: walk a list endpoint page by page, yielding decoded bodies and a resume token.

A pager knows nothing of models. Each has a `max_pages` guard and loop detection, so a
provider that keeps answering the same "next" link cannot spin a sync forever.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.errors import FatalSourceError
from bridge.http import HttpClient


def dig(body: Any, path: str | Sequence[str] | None) -> Any:
    """`dig(body, "response.result.invoices")` -> the nested value, or None."""
    if path is None:
        return body
    keys = path.split(".") if isinstance(path, str) else path
    cur = body
    for k in keys:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(k)
    return cur


@dataclass(frozen=True)
class NextLinkPager:
    """Follow a link to the next page found in the body (Harvest `links.next`).

    The resume token is the next URL itself, verbatim.
    """

    next_path: str = "links.next"
    max_pages: int = 100_000

    def pages(
        self, http: HttpClient, path: str, params: Mapping[str, Any], *, resume: str | None = None, resource: str = ""
    ) -> Iterator[tuple[Any, str | None]]:
        url, query = (resume, None) if resume else (path, dict(params))
        seen: set[str] = set()
        for _ in range(self.max_pages):
            body = http.get_json(url, query, resource=resource)
            nxt = dig(body, self.next_path)
            if nxt and nxt in seen:
                raise FatalSourceError(f"{http.source}: {resource} pagination loops on the same next link", source=http.source, resource=resource)
            if nxt:
                seen.add(nxt)
            yield body, nxt or None
            if not nxt:
                return
            url, query = nxt, None
        raise FatalSourceError(f"{http.source}: {resource} exceeded {self.max_pages} pages", source=http.source, resource=resource)


@dataclass(frozen=True)
class PageNumberPager:
    """`page`/`per_page` style; stops at the page count the body reports (FreshBooks, Productive).

    The resume token is JSON {"page": n} for the next page; params are rebuilt from the
    same `since`, which the sync engine keeps stable across a resume.
    """

    page_param: str = "page"
    size_param: str = "per_page"
    page_size: int = 100
    total_pages_path: str = "pages"
    max_pages: int = 100_000

    def pages(
        self, http: HttpClient, path: str, params: Mapping[str, Any], *, resume: str | None = None, resource: str = ""
    ) -> Iterator[tuple[Any, str | None]]:
        page = json.loads(resume)["page"] if resume else 1
        for _ in range(self.max_pages):
            query = {**params, self.page_param: page, self.size_param: self.page_size}
            body = http.get_json(path, query, resource=resource)
            total = dig(body, self.total_pages_path)
            try:
                total = int(total) if total is not None else None
            except (TypeError, ValueError):
                total = None
            more = total is not None and page < total
            yield body, (json.dumps({"page": page + 1}) if more else None)
            if not more:
                return
            page += 1
        raise FatalSourceError(f"{http.source}: {resource} exceeded {self.max_pages} pages", source=http.source, resource=resource)
