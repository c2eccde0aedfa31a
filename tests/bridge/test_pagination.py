"""Pagers against fake APIs that really paginate: next links, page numbers, resume, guards."""

from __future__ import annotations

import json

import httpx
import pytest

from bridge.errors import FatalSourceError
from bridge.http import HttpClient, RetryPolicy
from bridge.pagination import NextLinkPager, PageNumberPager, dig

BASE = "https://api.example.test/v2"
ROWS = list(range(1, 24))  # 23 rows


def http() -> HttpClient:
    return HttpClient(source="acme", base_url=BASE, headers=lambda: {}, retry=RetryPolicy(attempts=2, sleep=lambda s: None))


def linked_api(size: int = 10):
    """A fake API that slices ROWS by ?page= and links the next page (absolute URL, as Harvest does)."""

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        rows = ROWS[(page - 1) * size: page * size]
        more = page * size < len(ROWS)
        nxt = f"{BASE}/rows?page={page + 1}&per_page={size}" if more else None
        return httpx.Response(200, json={"rows": rows, "links": {"next": nxt}})

    return handler


def numbered_api(size_param: str = "per_page", page_param: str = "page"):
    """A fake API that reports its page count in the body (FreshBooks/Productive style)."""

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params[page_param])
        size = int(request.url.params[size_param])
        pages = -(-len(ROWS) // size)
        return httpx.Response(200, json={"rows": ROWS[(page - 1) * size: page * size], "meta": {"pages": pages, "page": page}})

    return handler


def test_dig() -> None:
    body = {"response": {"result": {"invoices": [1], "n": 0}}}
    assert dig(body, "response.result.invoices") == [1]
    assert dig(body, ("response", "result", "n")) == 0
    assert dig(body, None) is body
    assert dig(body, "response.missing.deeper") is None
    assert dig({"a": [1]}, "a.b") is None


# --- NextLinkPager ------------------------------------------------------------------------


@pytest.mark.respx(base_url=BASE)
def test_next_link_pager_walks_to_the_last_page(respx_mock) -> None:
    route = respx_mock.get("/rows").mock(side_effect=linked_api())
    out = list(NextLinkPager().pages(http(), "rows", {"per_page": 10}))
    assert [row for body, _ in out for row in body["rows"]] == ROWS
    assert [nxt and json.loads(nxt)["next"] for _, nxt in out] == [f"{BASE}/rows?page=2&per_page=10", f"{BASE}/rows?page=3&per_page=10", None]
    assert route.call_count == 3
    assert route.calls[0].request.url.params["per_page"] == "10"


@pytest.mark.respx(base_url=BASE)
def test_next_link_pager_resumes_from_the_token_verbatim(respx_mock) -> None:
    route = respx_mock.get("/rows").mock(side_effect=linked_api())
    token = f"{BASE}/rows?page=3&per_page=10"
    out = list(NextLinkPager().pages(http(), "rows", {"per_page": 10, "updated_since": "x"}, resume=token))
    assert [row for body, _ in out for row in body["rows"]] == ROWS[20:]
    assert [str(c.request.url) for c in route.calls] == [token]


@pytest.mark.respx(base_url=BASE)
def test_next_link_pager_detects_a_loop(respx_mock) -> None:
    respx_mock.get("/rows", params={"page": "2"}).respond(json={"rows": [2], "links": {"next": f"{BASE}/rows?page=2"}})
    respx_mock.get("/rows").respond(json={"rows": [1], "links": {"next": f"{BASE}/rows?page=2"}})
    pages = NextLinkPager().pages(http(), "rows", {}, resource="rows")
    assert next(pages)[0]["rows"] == [1]
    with pytest.raises(FatalSourceError, match="loops"):
        list(pages)


@pytest.mark.respx(base_url=BASE)
def test_next_link_pager_max_pages_guard(respx_mock) -> None:
    respx_mock.get("/rows").mock(side_effect=linked_api(size=1))
    with pytest.raises(FatalSourceError, match="exceeded 5 pages"):
        list(NextLinkPager(max_pages=5).pages(http(), "rows", {}, resource="rows"))


@pytest.mark.respx(base_url=BASE)
def test_next_link_pager_refuses_a_link_to_another_host(respx_mock) -> None:
    respx_mock.get("/rows").respond(json={"rows": [1], "links": {"next": "https://evil.example/rows?page=2"}})
    pages = NextLinkPager().pages(http(), "rows", {})
    next(pages)
    with pytest.raises(FatalSourceError, match="refusing to send credentials"):
        next(pages)


@pytest.mark.respx(base_url=BASE)
def test_next_link_pager_accepts_relative_and_default_port_links(respx_mock) -> None:
    respx_mock.get("/rows", params={"page": "3"}).respond(json={"rows": [3], "links": {"next": None}})
    respx_mock.get("/rows", params={"page": "2"}).respond(json={"rows": [2], "links": {"next": "/v2/rows?page=3"}})
    respx_mock.get("/rows").respond(json={"rows": [1], "links": {"next": "https://API.example.test:443/v2/rows?page=2"}})
    out = list(NextLinkPager().pages(http(), "rows", {}))
    assert [b["rows"] for b, _ in out] == [[1], [2], [3]]
    assert json.loads(out[1][1])["next"] == f"{BASE}/rows?page=3"  # a root-relative link resolves against the host, as RFC 3986 says


@pytest.mark.respx(base_url=BASE)
def test_next_link_that_is_not_a_string_is_fatal(respx_mock) -> None:
    respx_mock.get("/rows").respond(json={"rows": [], "links": {"next": {"href": "x"}}})
    with pytest.raises(FatalSourceError, match="expected a URL"):
        list(NextLinkPager().pages(http(), "rows", {}))


# --- PageNumberPager ----------------------------------------------------------------------


@pytest.mark.respx(base_url=BASE)
def test_page_number_pager_stops_at_the_reported_count(respx_mock) -> None:
    route = respx_mock.get("/rows").mock(side_effect=numbered_api())
    pager = PageNumberPager(page_size=10, total_pages_path="meta.pages")
    out = list(pager.pages(http(), "rows", {"updated_since": "2025-01-01"}))
    assert [row for body, _ in out for row in body["rows"]] == ROWS
    assert [tok and json.loads(tok) for _, tok in out] == [{"page": 2}, {"page": 3}, None]
    assert [c.request.url.params["page"] for c in route.calls] == ["1", "2", "3"]
    assert all(c.request.url.params["updated_since"] == "2025-01-01" for c in route.calls)


@pytest.mark.respx(base_url=BASE)
def test_page_number_pager_custom_params(respx_mock) -> None:
    route = respx_mock.get("/rows").mock(side_effect=numbered_api("page[size]", "page[number]"))
    pager = PageNumberPager(page_param="page[number]", size_param="page[size]", page_size=20, total_pages_path="meta.pages")
    assert len(list(pager.pages(http(), "rows", {}))) == 2
    assert route.calls.last.request.url.params["page[number]"] == "2"


@pytest.mark.respx(base_url=BASE)
def test_page_number_pager_resumes(respx_mock) -> None:
    route = respx_mock.get("/rows").mock(side_effect=numbered_api())
    pager = PageNumberPager(page_size=10, total_pages_path="meta.pages")
    out = list(pager.pages(http(), "rows", {}, resume=json.dumps({"page": 3})))
    assert [row for body, _ in out for row in body["rows"]] == ROWS[20:]
    assert [c.request.url.params["page"] for c in route.calls] == ["3"]


@pytest.mark.respx(base_url=BASE)
def test_page_number_pager_without_a_count_reads_one_page(respx_mock) -> None:
    route = respx_mock.get("/rows").respond(json={"rows": [1, 2]})
    out = list(PageNumberPager(total_pages_path="meta.pages").pages(http(), "rows", {}))
    assert len(out) == 1 and out[0][1] is None and route.call_count == 1


@pytest.mark.respx(base_url=BASE)
def test_page_number_pager_detects_a_provider_ignoring_the_page(respx_mock) -> None:
    respx_mock.get("/rows").respond(json={"rows": [1, 2], "meta": {"pages": 50}})
    with pytest.raises(FatalSourceError, match="loops"):
        list(PageNumberPager(total_pages_path="meta.pages").pages(http(), "rows", {}, resource="rows"))


@pytest.mark.respx(base_url=BASE)
def test_page_number_pager_max_pages_guard(respx_mock) -> None:
    def endless(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        return httpx.Response(200, json={"rows": [page], "pages": page + 1})  # always "one more"

    respx_mock.get("/rows").mock(side_effect=endless)
    with pytest.raises(FatalSourceError, match="exceeded 4 pages"):
        list(PageNumberPager(max_pages=4).pages(http(), "rows", {}, resource="rows"))


# --- listings that move under us ------------------------------------------------------------


class MovingApi:
    """Records with ids, paged by number or by next link, with the provider's total count.

    `between` runs after each response: the test changes the listing there, as a provider
    would between two of our requests.
    """

    def __init__(self, n: int = 23, size: int = 5, links: bool = False) -> None:
        self.rows = [{"id": i} for i in range(1, n + 1)]
        self.size, self.links = size, links
        self.between: list = []
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        chunk = self.rows[(page - 1) * self.size: page * self.size]
        pages = max(1, -(-len(self.rows) // self.size))
        body: dict = {"rows": chunk, "total_entries": len(self.rows), "meta": {"pages": pages, "total": len(self.rows)}}
        if self.links:
            body["links"] = {"next": f"{BASE}/rows?page={page + 1}" if page < pages else None}
        self.requests += 1
        if self.between:
            self.between.pop(0)(self)
        return httpx.Response(200, json=body)


def _ids(out) -> set[int]:
    return {row["id"] for body, _ in out for row in body["rows"]}


def _delete(*ids: int):
    def go(api: MovingApi) -> None:
        api.rows = [r for r in api.rows if r["id"] not in ids]
    return go


def _pagers():
    return {
        "numbers": (PageNumberPager(page_size=5, total_pages_path="meta.pages"), False),
        # only a record count (FreshBooks team members)
        "counted": (PageNumberPager(page_size=5, total_pages_path=None, count_path="meta.total"), False),
        "links": (NextLinkPager(), True),
    }


@pytest.mark.parametrize("style", ["numbers", "counted", "links"])
@pytest.mark.respx(base_url=BASE)
def test_a_deletion_before_our_position_is_read_around(respx_mock, style: str) -> None:
    pager, links = _pagers()[style]
    api = MovingApi(links=links)
    api.between = [_delete(2)]  # after page 1: record 6 moves up into page 1's range
    respx_mock.get("/rows").mock(side_effect=api)
    out = list(pager.pages(http(), "rows", {}, resource="rows"))
    assert _ids(out) == set(range(1, 24))  # 2 was read before it went; 6 was not skipped
    assert api.requests == 5 + 2  # pages 1 and 2 read again: 1 holds record 6 now, 2 holds 11


@pytest.mark.parametrize("style", ["numbers", "counted", "links"])
@pytest.mark.respx(base_url=BASE)
def test_a_deletion_while_killed_is_read_around_on_resume(respx_mock, style: str) -> None:
    pager, links = _pagers()[style]
    api = MovingApi(links=links)
    respx_mock.get("/rows").mock(side_effect=api)
    walk = pager.pages(http(), "rows", {}, resource="rows")
    read = [next(walk), next(walk)]  # pages 1 and 2 committed; the process dies here
    token = read[-1][1]
    walk.close()
    api.rows = [r for r in api.rows if r["id"] != 3]  # deleted while nothing ran
    rest = list(pager.pages(http(), "rows", {}, resume=token, resource="rows"))
    assert {11} <= _ids(rest)  # 11 moved into page 2's range; it is read again from there
    assert _ids(read) | _ids(rest) == set(range(1, 24))


@pytest.mark.respx(base_url=BASE)
def test_a_shift_larger_than_a_page_reads_the_listing_again_from_the_start(respx_mock) -> None:
    pager, _ = _pagers()["numbers"]
    api = MovingApi()
    api.between = [lambda a: None, _delete(1, 2, 3, 4, 5, 6, 7)]  # after page 2: seven go
    respx_mock.get("/rows").mock(side_effect=api)
    out = list(pager.pages(http(), "rows", {}, resource="rows"))
    assert _ids(out) == set(range(1, 24))
    assert [json.loads(t) for _, t in out if t][2] == {"page": 1, "total": 16}  # the resume point goes back too


@pytest.mark.respx(base_url=BASE)
def test_an_insert_before_our_position_is_noticed_by_a_repeated_first_id(respx_mock) -> None:
    pager, _ = _pagers()["numbers"]
    api = MovingApi()

    def insert(a: MovingApi) -> None:
        a.rows.insert(0, {"id": 100})
        a.rows.pop()  # and one at the end goes: the count stays 23

    api.between = [insert]
    respx_mock.get("/rows").mock(side_effect=api)
    out = list(pager.pages(http(), "rows", {}, resource="rows"))
    assert _ids(out) == set(range(1, 23)) | {100}
    assert api.requests == 5 + 2


@pytest.mark.respx(base_url=BASE)
def test_a_listing_that_never_stops_moving_fails_the_source_without_moving_on(respx_mock) -> None:
    from bridge.errors import RetryableSourceError

    pager, _ = _pagers()["numbers"]
    api = MovingApi(n=200)

    def churn(a: MovingApi) -> None:
        a.rows.append({"id": 1000 + a.requests})
        a.between.append(churn)

    api.between = [churn]
    respx_mock.get("/rows").mock(side_effect=api)
    with pytest.raises(RetryableSourceError, match="kept changing while it was read"):
        list(pager.pages(http(), "rows", {}, resource="rows"))


@pytest.mark.respx(base_url=BASE)
def test_a_bare_next_url_from_an_older_store_still_resumes(respx_mock) -> None:
    api = MovingApi(links=True)
    respx_mock.get("/rows").mock(side_effect=api)
    out = list(NextLinkPager().pages(http(), "rows", {}, resume=f"{BASE}/rows?page=4", resource="rows"))
    assert _ids(out) == set(range(16, 24))
