"""Pagers: walk a list endpoint page by page, yielding decoded bodies and a resume token.

A pager knows nothing of models. Each has a `max_pages` guard and loop detection, so a
provider that keeps answering the same "next" link cannot spin a sync forever.

Listings that cannot skip. An offset listing (page numbers, and links that carry them)
shifts when the provider deletes or moves a record before our position: every later
record moves up one place, and the one at the page boundary is never read. So every
pager watches the listing (`ListingWatch`): the provider's total count changing between
pages or across a resume, a page whose first id was already read, or a page shorter than
a full one, all mean it moved. It then re-reads from the shifted point: one page back,
which holds the records a small shift pushed over the boundary, or from the first page
when the shift is larger than a page. The resume token carries the count and the
previous page, so a killed run that resumes after a deletion steps back too. A listing
that keeps moving past a budget of re-reads stops the source with a retryable error:
the resume point stays where it was and the high-water mark does not move.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

from bridge.errors import FatalSourceError, RetryableSourceError
from bridge.http import HttpClient
from bridge.redaction import sanitize_url

log = logging.getLogger(__name__)

# Keys a provider uses for the number of records in the whole listing, looked up beside
# the page count (or at the top level, then under "meta"): Harvest `total_entries`,
# Productive `meta.total_count`, FreshBooks `total` (in `meta` or `response.result`).
TOTAL_KEYS = ("total_count", "total_entries", "total")
MAX_RESTARTS = 2  # full re-reads of one listing in one pass, before giving up for this run


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


def listing_total(body: Any, containers: Sequence[str | None]) -> int | None:
    """The provider's count of records in the whole listing, if the page reports one."""
    for where in containers:
        box = dig(body, where)
        if not isinstance(box, Mapping):
            continue
        for key in TOTAL_KEYS:
            value = box.get(key)
            if isinstance(value, bool):
                continue
            if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
                return int(value)
    return None


def page_ids(body: Any) -> list[str] | None:
    """The ids of a page's records, wherever its list sits: JSON:API `data`, or the one list
    of records with ids at the top level or in FreshBooks' `response.result`. None when
    the page has no such single list (then only counts are watched)."""
    if isinstance(body, Mapping) and isinstance(body.get("data"), list):
        candidates = [body["data"]]
    else:
        candidates = []
        for box in (body, dig(body, "response.result"), dig(body, "response")):
            if isinstance(box, Mapping):
                candidates += [v for v in box.values() if isinstance(v, list) and v and all(isinstance(x, Mapping) and "id" in x for x in v)]
            elif isinstance(box, list) and box and all(isinstance(x, Mapping) and "id" in x for x in box):
                candidates.append(box)
    if len(candidates) != 1:
        return None
    return [str(x.get("id")) for x in candidates[0] if isinstance(x, Mapping)]


@dataclass
class ListingWatch:
    """Notices a listing that moved under us between two pages of one pass."""

    total: int | None = None  # the provider's count at the last page (or from the resume token)
    full_page: int | None = None  # items on a page that had a next page
    # the previous page's ids: a listing pushed down by up to a page starts the next page
    # with one of them (a bigger push changes the count); a page's worth of memory, not a listing's
    seen: set[str] = field(default_factory=set)
    pages: int = 0

    def check(self, body: Any, containers: Sequence[str | None], has_next: bool) -> tuple[str | None, int]:
        """(why the listing moved, or None; how many places it moved, 0 if unknown)."""
        self.pages += 1
        why, moved = None, 0
        total = listing_total(body, containers)
        ids = page_ids(body)
        n = len(ids) if ids is not None else None
        if total is not None and self.total is not None and total != self.total:
            why, moved = f"the provider's count changed from {self.total} to {total}", abs(total - self.total)
        elif ids and ids[0] in self.seen:
            why = f"the first record of a page ({ids[0]}) was already read"
        elif has_next and n is not None and self.full_page is not None and n < self.full_page:
            why = f"a page held {n} records where a full page holds {self.full_page}"
        if total is not None:
            self.total = total
        if ids is not None:
            self.seen = set(ids)
        if has_next and n and self.full_page is None:
            self.full_page = n
        return why, moved

    def restart(self) -> None:
        """Reading from an earlier point: ids read so far will be read again, legitimately."""
        self.seen.clear()

    def big(self, moved: int) -> bool:
        """A shift larger than one page: stepping one page back cannot cover it."""
        return self.full_page is not None and moved >= self.full_page


def _rereads_allowed(watch: ListingWatch) -> int:
    # a busy provider changes now and then while a long listing is read; a listing that
    # changes between almost every two pages is not one we can read completely now
    return 25 + watch.pages // 10


def _keeps_moving(http: HttpClient, resource: str, why: str) -> RetryableSourceError:
    return RetryableSourceError(
        f"{http.source}: {resource} kept changing while it was read ({why}); the records read so far are "
        "kept, and the next run asks again from the same point, so nothing is skipped",
        source=http.source, resource=resource,
    )


def _decode_token(resume: str | None) -> dict[str, Any]:
    """A resume token: this module's JSON, or a bare next URL from an older version."""
    if not resume:
        return {}
    if resume.lstrip().startswith("{"):
        try:
            data = json.loads(resume)
        except ValueError:
            return {"next": resume}
        return data if isinstance(data, dict) else {"next": resume}
    return {"next": resume}


@dataclass(frozen=True)
class NextLinkPager:
    """Follow a link to the next page found in the body (Harvest `links.next`).

    The resume token is JSON: the next URL verbatim (a relative link is first made
    absolute against the base URL), the URL of the page just read (to step back to) and
    the provider's count. A bare URL (older stores) is accepted too.
    """

    next_path: str = "links.next"
    max_pages: int = 100_000
    total_paths: tuple[str | None, ...] = (None, "meta")

    def pages(
        self, http: HttpClient, path: str, params: Mapping[str, Any], *, resume: str | None = None, resource: str = ""
    ) -> Iterator[tuple[Any, str | None]]:
        token = _decode_token(resume)
        first: tuple[str, Mapping[str, Any] | None] = (path, dict(params))
        # a position is a URL, or None for the first page (path and params)
        url: str | None = token.get("next") if resume else None
        prev: str | None | bool = token.get("prev", False) if resume else False  # False: unknown
        watch = ListingWatch(total=token.get("total") if isinstance(token.get("total"), int) else None)
        seen: set[str] = set()
        rereads = restarts = 0
        for _ in range(self.max_pages):
            target, query = (url, None) if url else first
            _check_origin(http, target, resource)
            body = http.get_json(target, query, resource=resource)
            nxt = self._next(http, body, resource)
            if nxt and nxt in seen:
                raise FatalSourceError(f"{http.source}: {resource} pagination loops on the same next link", source=http.source, resource=resource)
            if nxt:
                seen.add(nxt)
            why, moved = watch.check(body, self.total_paths, bool(nxt))
            here = url  # the position just read
            if why is not None and here is not None:  # nothing precedes the first page to skip
                # Re-read from the shifted point: the page before this one, or the start.
                if watch.big(moved) or prev is False:
                    restarts += 1
                    if restarts > MAX_RESTARTS:
                        raise _keeps_moving(http, resource, why)
                    log.info("%s: %s moved while read (%s); reading it again from the first page", http.source, resource, why)
                    url, prev = None, False
                    watch.restart()
                else:
                    rereads += 1
                    if rereads > _rereads_allowed(watch):
                        raise _keeps_moving(http, resource, why)
                    log.info("%s: %s moved while read (%s); reading the previous page again", http.source, resource, why)
                    url, prev = prev or None, False
                    watch.restart()  # pages read again are not a shift
                seen.clear()
                yield body, self._token(url, prev, watch, restart=url is None)
                continue
            if not nxt:
                yield body, None
                return
            yield body, self._token(nxt, here, watch)
            url, prev = nxt, here
        raise FatalSourceError(f"{http.source}: {resource} exceeded {self.max_pages} pages", source=http.source, resource=resource)

    def _next(self, http: HttpClient, body: Any, resource: str) -> str | None:
        nxt = dig(body, self.next_path)
        if nxt is not None and not isinstance(nxt, str):
            raise FatalSourceError(
                f"{http.source}: {resource} next link is {type(nxt).__name__}, expected a URL",
                source=http.source, resource=resource,
            )
        if nxt and not urlsplit(nxt).netloc:
            # httpx would append even "/v2/x" to the base path; resolve it as a browser would
            nxt = urljoin(http.base_url.rstrip("/") + "/", nxt)
        return nxt or None

    @staticmethod
    def _token(url: str | None, prev: str | None | bool, watch: ListingWatch, *, restart: bool = False) -> str:
        data: dict[str, Any] = {"next": url}
        if prev is not False:
            data["prev"] = prev
        if watch.total is not None:
            data["total"] = watch.total
        if restart:
            data["restart"] = True
        return json.dumps(data)


@dataclass(frozen=True)
class PageNumberPager:
    """`page`/`per_page` style; stops at the page count the body reports (FreshBooks, Productive).

    The resume token is JSON {"page": n} for the next page, with the provider's count
    ("total") when it reports one; params are rebuilt from the same `since`, which the
    sync engine keeps stable across a resume.
    """

    page_param: str = "page"
    size_param: str = "per_page"
    page_size: int = 100
    total_pages_path: str | None = "pages"
    # A body with no page count but the listing's record count (FreshBooks team members:
    # meta.total beside meta.per_page): the page count follows from the two.
    count_path: str | None = None
    max_pages: int = 100_000

    def _total_paths(self) -> tuple[str | None, ...]:
        parent = (self.total_pages_path or self.count_path or "").rpartition(".")[0] or None
        return (parent,) if parent else (None, "meta")

    def _page_count(self, body: Any) -> int | None:
        try:
            if self.total_pages_path:
                raw = dig(body, self.total_pages_path)
                return int(raw) if raw is not None else None
            if self.count_path:
                raw = dig(body, self.count_path)
                if raw is None:
                    return None
                parent = self.count_path.rpartition(".")[0]
                per_page = int(dig(body, f"{parent}.per_page" if parent else "per_page") or self.page_size)
                return -(-int(raw) // max(per_page, 1))
        except (TypeError, ValueError):
            return None
        return None

    def pages(
        self, http: HttpClient, path: str, params: Mapping[str, Any], *, resume: str | None = None, resource: str = ""
    ) -> Iterator[tuple[Any, str | None]]:
        token = _decode_token(resume)
        page = int(token.get("page") or 1) if resume else 1
        watch = ListingWatch(total=token.get("total") if isinstance(token.get("total"), int) else None)
        containers = self._total_paths()
        previous: str | None = None
        rereads = restarts = 0
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
            total = self._page_count(body)
            more = total is not None and page < total
            why, moved = watch.check(body, containers, more)
            if why is None and not more and watch.full_page and watch.total is not None and page > 1:
                # the last page must hold what the count leaves for it
                expected = watch.total - (page - 1) * watch.full_page
                ids = page_ids(body)
                if ids is not None and expected > len(ids):
                    why, moved = f"the last page held {len(ids)} records where the count leaves {expected}", expected - len(ids)
            if why is not None and page > 1:
                if watch.big(moved):
                    restarts += 1
                    if restarts > MAX_RESTARTS:
                        raise _keeps_moving(http, resource, why)
                    log.info("%s: %s moved while read (%s); reading it again from the first page", http.source, resource, why)
                    page = 1
                    watch.restart()
                else:
                    rereads += 1
                    if rereads > _rereads_allowed(watch):
                        raise _keeps_moving(http, resource, why)
                    log.info("%s: %s moved while read (%s); reading page %d again", http.source, resource, why, page - 1)
                    page -= 1
                    watch.restart()  # pages read again are not a shift
                previous = None
                yield body, self._token(page, watch)
                continue
            yield body, (self._token(page + 1, watch) if more else None)
            if not more:
                return
            page += 1
        raise FatalSourceError(f"{http.source}: {resource} exceeded {self.max_pages} pages", source=http.source, resource=resource)

    @staticmethod
    def _token(page: int, watch: ListingWatch) -> str:
        data: dict[str, Any] = {"page": page}
        if watch.total is not None:
            data["total"] = watch.total
        return json.dumps(data)
