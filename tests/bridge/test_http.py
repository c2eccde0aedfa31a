"""The shared HTTP client: error classification, the one retry loop, Retry-After, the rate limiter."""

from __future__ import annotations

import datetime as dt
import logging
from email.utils import format_datetime

import httpx
import pytest

from bridge.errors import AuthError, FatalSourceError, RetryableSourceError
from bridge.http import HttpClient, RateLimiter, RetryPolicy, parse_retry_after
from tests.helpers.clock import FakeClock

BASE = "https://api.example.test/v1"
SECRET = "s3cr3t-token-value"




def client(slept: list[float] | None = None, **kw) -> HttpClient:
    slept = [] if slept is None else slept
    kw.setdefault("retry", RetryPolicy(attempts=4, max_wait_s=60.0, sleep=slept.append))
    return HttpClient(
        source="acme", base_url=BASE, headers=lambda: {"Authorization": f"Bearer {SECRET}"},
        secrets=lambda: [SECRET], auth_advice="check ACME_TOKEN", **kw,
    )


# --- parse_retry_after ------------------------------------------------------------------


@pytest.mark.parametrize(("value", "seconds"), [("9", 9.0), (" 2.5 ", 2.5), ("0", 0.0), ("-4", 0.0)])
def test_parse_retry_after_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value) == seconds


def test_parse_retry_after_http_date() -> None:
    when = dt.datetime(2025, 3, 20, 12, 0, 30, tzinfo=dt.timezone.utc)
    now = dt.datetime(2025, 3, 20, 12, 0, 0, tzinfo=dt.timezone.utc).timestamp()
    assert parse_retry_after(format_datetime(when, usegmt=True), now=now) == 30.0
    assert parse_retry_after("Thu, 20 Mar 2025 12:00:30 -0000", now=now) == 30.0
    assert parse_retry_after(format_datetime(when, usegmt=True), now=now + 100) == 0.0  # already past


@pytest.mark.parametrize("value", [None, "", "soon", "Thu, 99 Foo 2025"])
def test_parse_retry_after_unreadable_is_none(value: str | None) -> None:
    assert parse_retry_after(value) is None


# --- rate limiter -----------------------------------------------------------------------


def _max_in_window(stamps: list[float], span: float) -> int:
    return max(sum(1 for t in stamps if s <= t < s + span) for s in stamps)


def test_rate_limiter_never_exceeds_100_per_15_seconds() -> None:
    clock = FakeClock(start=50.0)
    limiter = RateLimiter([(100, 15.0)], clock=clock, sleep=clock.sleep)
    stamps = []
    for i in range(350):
        limiter.acquire()
        stamps.append(clock.now)
        clock.now += 0.01  # the request itself takes a little time
    assert _max_in_window(stamps, 15.0) == 100
    # three full windows had to pass for 350 requests, and not much more
    assert 45.0 <= stamps[-1] - stamps[0] < 47.0
    assert limiter.waited == pytest.approx(sum(clock.slept), abs=0.01)


def test_rate_limiter_honours_every_window() -> None:
    clock = FakeClock(start=50.0)
    limiter = RateLimiter([(3, 1.0), (5, 10.0)], clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(12):
        limiter.acquire()
        stamps.append(clock.now)
    assert _max_in_window(stamps, 1.0) <= 3
    assert _max_in_window(stamps, 10.0) <= 5


def test_rate_limiter_without_windows_never_waits() -> None:
    clock = FakeClock(start=50.0)
    limiter = RateLimiter([(0, 15.0)], clock=clock, sleep=clock.sleep)
    for _ in range(500):
        limiter.acquire()
    assert clock.slept == []


@pytest.mark.respx(base_url=BASE)
def test_client_waits_on_its_limiter(respx_mock) -> None:
    respx_mock.get("/ping").respond(json={})
    clock = FakeClock(start=50.0)
    http = client(limiter=RateLimiter([(2, 5.0)], clock=clock, sleep=clock.sleep))
    for _ in range(3):
        http.get_json("ping")
    assert len(clock.slept) == 1 and 5.0 <= clock.slept[0] < 5.4  # the window plus its jitter margin


# --- requests and decoding ----------------------------------------------------------------


@pytest.mark.respx(base_url=BASE)
def test_get_json_relative_path_params_and_headers(respx_mock) -> None:
    route = respx_mock.get("/items", params={"page": "2"}).respond(json={"items": [1]})
    http = client()
    assert http.get_json("items", {"page": 2}) == {"items": [1]}
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {SECRET}"
    assert http.requests == 1


@pytest.mark.respx(base_url=BASE)
def test_get_json_follows_an_absolute_url_as_given(respx_mock) -> None:
    url = f"{BASE}/items?cursor=abc%3D&per_page=50"
    route = respx_mock.get("/items").respond(json={"ok": True})
    client().get_json(url)
    assert str(route.calls.last.request.url) == url


@pytest.mark.respx(base_url=BASE)
def test_headers_are_read_per_request(respx_mock) -> None:
    route = respx_mock.get("/items").respond(json={})
    tokens = iter(["one", "two"])
    http = HttpClient(source="acme", base_url=BASE, headers=lambda: {"Authorization": next(tokens)})
    http.get_json("items")
    http.get_json("items")
    assert [c.request.headers["Authorization"] for c in route.calls] == ["one", "two"]


def test_injected_transport_is_used() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"via": "transport"})

    http = client(transport=httpx.MockTransport(handler))
    assert http.get_json("x") == {"via": "transport"}
    assert seen == [f"{BASE}/x"]
    http.close()


@pytest.mark.respx(base_url=BASE)
def test_non_json_success_fails_after_one_retry(respx_mock) -> None:
    respx_mock.get("/items").respond(200, text="<html>maintenance</html>")
    with pytest.raises(RetryableSourceError, match="not JSON"):
        client().get_json("items", resource="items")


# --- error classification -----------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.respx(base_url=BASE)
def test_auth_failure_is_not_retried_and_hides_secrets(respx_mock, status: int) -> None:
    route = respx_mock.get("/items").respond(status, json={"error": f"bad token {SECRET}"})
    slept: list[float] = []
    with pytest.raises(AuthError) as info:
        client(slept).get_json("items", resource="items")
    msg = str(info.value)
    assert route.call_count == 1 and slept == []
    assert SECRET not in msg and "check ACME_TOKEN" in msg and f"HTTP {status}" in msg
    assert info.value.source == "acme" and info.value.resource == "items"


@pytest.mark.respx(base_url=BASE)
def test_on_unauthorized_renews_once(respx_mock) -> None:
    route = respx_mock.get("/items").mock(side_effect=[httpx.Response(401), httpx.Response(200, json={"ok": 1})])
    renewals = []
    http = client(on_unauthorized=lambda: renewals.append(1) or True)
    assert http.get_json("items") == {"ok": 1}
    assert route.call_count == 2 and renewals == [1]


@pytest.mark.respx(base_url=BASE)
def test_on_unauthorized_gives_up_after_one_renewal(respx_mock) -> None:
    route = respx_mock.get("/items").respond(401)
    with pytest.raises(AuthError):
        client(on_unauthorized=lambda: True).get_json("items")
    assert route.call_count == 2


@pytest.mark.respx(base_url=BASE)
def test_on_unauthorized_that_cannot_renew_fails_at_once(respx_mock) -> None:
    route = respx_mock.get("/items").respond(401)
    with pytest.raises(AuthError):
        client(on_unauthorized=lambda: False).get_json("items")
    assert route.call_count == 1


@pytest.mark.parametrize("status", [400, 404, 422])
@pytest.mark.respx(base_url=BASE)
def test_other_4xx_is_fatal_and_not_retried(respx_mock, status: int) -> None:
    route = respx_mock.get("/items").respond(status, text="x" * 2000)
    slept: list[float] = []
    with pytest.raises(FatalSourceError) as info:
        client(slept).get_json("items")
    assert route.call_count == 1 and slept == []
    assert f"HTTP {status}" in str(info.value)
    assert str(info.value).count("x") <= 510  # error bodies are truncated


@pytest.mark.respx(base_url=BASE)
def test_error_message_sanitizes_secret_query_params(respx_mock) -> None:
    respx_mock.get("/items").respond(404)
    with pytest.raises(FatalSourceError) as info:
        client().get_json("items", {"access_token": "qs-secret-123", "page": 1})
    assert "qs-secret-123" not in str(info.value) and "page=1" in str(info.value)


# --- retries ------------------------------------------------------------------------------


@pytest.mark.respx(base_url=BASE)
def test_429_retry_after_is_what_we_sleep(respx_mock) -> None:
    route = respx_mock.get("/items").mock(side_effect=[
        httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json=[1]),
    ])
    slept: list[float] = []
    assert client(slept).get_json("items") == [1]
    assert route.call_count == 2 and slept == [7.0]


@pytest.mark.respx(base_url=BASE)
def test_a_long_retry_after_is_honoured_up_to_the_configured_maximum(respx_mock) -> None:
    respx_mock.get("/items").mock(side_effect=[
        httpx.Response(503, headers={"Retry-After": "500"}), httpx.Response(200, json=[]),
    ])
    slept: list[float] = []
    client(retry=RetryPolicy(attempts=3, max_wait_s=60.0, max_retry_after_s=600, sleep=slept.append)).get_json("items")
    assert slept == [500.0]  # not cut to the backoff cap: the provider said 500 s


@pytest.mark.respx(base_url=BASE)
def test_a_retry_after_beyond_the_maximum_stops_the_source_saying_when_it_resumes(respx_mock) -> None:
    from bridge.errors import RateLimitedError

    route = respx_mock.get("/items").respond(429, headers={"Retry-After": "3600"})
    slept: list[float] = []
    before = dt.datetime.now(dt.timezone.utc)
    with pytest.raises(RateLimitedError) as info:
        client(retry=RetryPolicy(attempts=3, max_retry_after_s=600, sleep=slept.append)).get_json("items", resource="items")
    assert route.call_count == 1 and slept == []
    resume_at = info.value.resume_at
    assert dt.timedelta(minutes=59) < resume_at - before < dt.timedelta(minutes=61)
    msg = str(info.value)
    assert "60 min" in msg and "max_retry_after_seconds" in msg and f"{resume_at:%H:%M}" in msg


@pytest.mark.respx(base_url=BASE)
def test_a_truncated_page_is_asked_for_once_more(respx_mock) -> None:
    route = respx_mock.get("/items").mock(side_effect=[
        httpx.Response(200, content=b'{"items": [1, 2'), httpx.Response(200, json={"items": [1, 2]}),
    ])
    assert client().get_json("items") == {"items": [1, 2]}
    assert route.call_count == 2


@pytest.mark.respx(base_url=BASE)
def test_a_page_truncated_twice_fails_the_source_after_one_retry(respx_mock) -> None:
    route = respx_mock.get("/items").respond(200, content=b'{"items": [1, 2')
    with pytest.raises(RetryableSourceError, match="not JSON"):
        client().get_json("items", resource="items")
    assert route.call_count == 2


@pytest.mark.respx(base_url=BASE)
def test_429_without_retry_after_backs_off_exponentially_within_cap(respx_mock) -> None:
    route = respx_mock.get("/items").respond(429)
    slept: list[float] = []
    http = client(retry=RetryPolicy(attempts=5, backoff_s=1.0, max_wait_s=3.0, sleep=slept.append))
    with pytest.raises(RetryableSourceError, match="HTTP 429"):
        http.get_json("items")
    assert route.call_count == 5 and len(slept) == 4
    assert all(0 <= s <= 3.0 for s in slept)
    assert http.requests == 5


@pytest.mark.respx(base_url=BASE)
def test_5xx_then_success(respx_mock) -> None:
    route = respx_mock.get("/items").mock(side_effect=[
        httpx.Response(500, text="We're sorry"), httpx.Response(502), httpx.Response(504), httpx.Response(200, json={"a": 1}),
    ])
    assert client().get_json("items") == {"a": 1}
    assert route.call_count == 4


@pytest.mark.respx(base_url=BASE)
def test_timeouts_retried_then_retryable_error(respx_mock) -> None:
    route = respx_mock.get("/items").mock(side_effect=httpx.ConnectTimeout("slow"))
    slept: list[float] = []
    with pytest.raises(RetryableSourceError, match="timed out 4 times") as info:
        client(slept).get_json("items", resource="items")
    assert route.call_count == 4 and len(slept) == 3
    assert info.value.resource == "items"


@pytest.mark.respx(base_url=BASE)
def test_timeout_then_success(respx_mock) -> None:
    route = respx_mock.get("/items").mock(side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json=[])])
    assert client().get_json("items") == []
    assert route.call_count == 2


@pytest.mark.respx(base_url=BASE)
def test_network_errors_become_retryable_source_errors(respx_mock) -> None:
    route = respx_mock.get("/items").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(RetryableSourceError, match="cannot reach"):
        client().get_json("items")
    assert route.call_count == 4


def test_other_transport_errors_are_source_errors() -> None:
    http = HttpClient(source="acme", base_url="ftp://files.example.test", headers=lambda: {})
    with pytest.raises(FatalSourceError, match="UnsupportedProtocol"):
        http.get_json("x")


@pytest.mark.respx(base_url=BASE)
def test_retry_log_lines_carry_no_secret(respx_mock, caplog: pytest.LogCaptureFixture) -> None:
    respx_mock.get("/items").mock(side_effect=[httpx.Response(503), httpx.Response(200, json={})])
    with caplog.at_level(logging.WARNING, logger="bridge.http"):
        client().get_json(f"{BASE}/items?token={SECRET}")
    assert "retry 1" in caplog.text and "503" in caplog.text
    assert SECRET not in caplog.text


# --- real error shapes (issue 15: recorded Harvest responses) -------------------------------


@pytest.mark.respx(base_url=BASE)
def test_html_error_page_is_summarised_not_embedded(respx_mock) -> None:
    page = (
        "<!DOCTYPE html>\n<html><head><title>The page you were looking for doesn't exist (404)</title>"
        "<style>body{color:red}</style></head><body>" + "<div>lots of markup</div>" * 200 + "</body></html>"
    )
    respx_mock.get("/items").respond(404, text=page, headers={"Content-Type": "text/html; charset=utf-8"})
    with pytest.raises(FatalSourceError) as info:
        client().get_json("items", resource="items")
    msg = str(info.value)
    assert "an HTML page titled 'The page you were looking for doesn't exist (404)'" in msg
    assert "<div>" not in msg and "<style>" not in msg and len(msg) < 300


@pytest.mark.respx(base_url=BASE)
def test_html_page_without_title_or_content_type_is_named_only(respx_mock) -> None:
    respx_mock.get("/items").respond(502, text="<html><body><h1>Bad gateway</h1></body></html>")
    with pytest.raises(RetryableSourceError):
        client(retry=RetryPolicy(attempts=1, sleep=lambda s: None)).get_json("items")
    respx_mock.get("/other").respond(404, text="<html><body><h1>Gone</h1></body></html>")
    with pytest.raises(FatalSourceError) as info:
        client().get_json("other")
    assert str(info.value).endswith("an HTML page")


@pytest.mark.respx(base_url=BASE)
def test_403_is_forbidden_a_kind_of_auth_error(respx_mock) -> None:
    from bridge.errors import ForbiddenError

    respx_mock.get("/clients").respond(403, json={"message": "Not authorized!"})
    with pytest.raises(ForbiddenError) as info:
        client().get_json("clients", resource="clients")
    assert isinstance(info.value, AuthError) and "Not authorized!" in str(info.value)


@pytest.mark.respx(base_url=BASE)
def test_empty_html_429_without_retry_after_waits_a_whole_rate_window(respx_mock) -> None:
    # Recorded from Harvest: 429, Content-Type text/html, empty body, no Retry-After.
    route = respx_mock.get("/items").mock(side_effect=[
        httpx.Response(429, text="", headers={"Content-Type": "text/html"}),
        httpx.Response(429, text="", headers={"Content-Type": "text/html"}),
        httpx.Response(200, json=[1]),
    ])
    clock = FakeClock()
    slept: list[float] = []
    limiter = RateLimiter([(100, 15.0)], clock=clock, sleep=clock.sleep, margin=0.0)
    http = client(slept, limiter=limiter, retry=RetryPolicy(attempts=4, max_wait_s=120.0, sleep=slept.append))
    assert http.get_json("items") == [1]
    assert route.call_count == 3
    # the first retry waits Harvest's 15 s window, the next twice that
    assert slept == [15.0, 30.0]
