"""Pagers: walk a list endpoint page by page, yielding decoded bodies and a resume token.

A pager knows nothing of models. Each has a `max_pages` guard and loop detection, so a
provider that keeps answering the same "next" link cannot spin a sync forever.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

from bridge.errors import FatalSourceError
from bridge.http import HttpClient
from bridge.redaction import sanitize_url


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


def _origin(parts: SplitResult) -> tuple[str, str | None, int | None]:
    scheme = parts.scheme.lower()
    return scheme, parts.hostname, parts.port or {"https": 443, "http": 80}.get(scheme)


def _check_origin(http: HttpClient, url: str, resource: str) -> None:
    """Refuse an absolute link to another scheme/host: it would receive our credentials."""
    target = urlsplit(url)
    if not target.netloc:
        return
    base = urlsplit(http.base_url)
    if _origin(target) != _origin(base):
        raise FatalSourceError(
            f"{http.source}: {resource} next link {sanitize_url(url)} leaves {base.scheme}://{base.netloc}; "
            "refusing to send credentials there",
            source=http.source, resource=resource,
        )


@dataclass(frozen=True)
class NextLinkPager:
    """Follow a link to the next page found in the body (Harvest `links.next`).

    The resume token is the next URL itself, verbatim (a relative link is first made
    absolute against the base URL).
    """

    next_path: str = "links.next"
    max_pages: int = 100_000

    def pages(
        self, http: HttpClient, path: str, params: Mapping[str, Any], *, resume: str | None = None, resource: str = ""
    ) -> Iterator[tuple[Any, str | None]]:
        url, query = (resume, None) if resume else (path, dict(params))
        seen: set[str] = set()
        for _ in range(self.max_pages):
            _check_origin(http, url, resource)
            body = http.get_json(url, query, resource=resource)
            nxt = dig(body, self.next_path)
            if nxt is not None and not isinstance(nxt, str):
                raise FatalSourceError(
                    f"{http.source}: {resource} next link is {type(nxt).__name__}, expected a URL",
                    source=http.source, resource=resource,
                )
            if nxt and not urlsplit(nxt).netloc:
                # httpx would append even "/v2/x" to the base path; resolve it as a browser would
                nxt = urljoin(http.base_url.rstrip("/") + "/", nxt)
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
        previous: str | None = None
        for _ in range(self.max_pages):
            query = {**params, self.page_param: page, self.size_param: self.page_size}
            body = http.get_json(path, query, resource=resource)
            # A provider that ignores the page parameter answers the same body every time.
            fingerprint = json.dumps(body, sort_keys=True, default=str)
            if fingerprint == previous:
                raise FatalSourceError(
                    f"{http.source}: {resource} pagination loops: page {page} repeats page {page - 1}",
                    source=http.source, resource=resource,
                )
            previous = fingerprint
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
