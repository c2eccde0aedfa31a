"""One HTTP client for every connector: JSON in, typed errors out, one retry policy.

The only retry loop in the project lives here (tenacity). It retries 408/429/5xx and
transport faults, waits what `Retry-After` says (capped) or backs off exponentially,
and never retries 401/403. A client-side limiter keeps us under the provider's
documented rate limit so that 429s stay the exception.
"""

from __future__ import annotations

import collections
import html
import re
import datetime as dt
import datetime
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from bridge.errors import AuthError, FatalSourceError, ForbiddenError, RateLimitedError, RetryableSourceError
from bridge.redaction import sanitize_url, scrub

log = logging.getLogger(__name__)
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
TRANSIENT = (RetryableSourceError, httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    max_wait_s: float = 120.0  # the longest exponential backoff between two attempts
    backoff_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep  # tests: RetryPolicy(sleep=slept.append)
    # Retry-After is honoured exactly up to this; beyond it the source stops (RateLimitedError)
    max_retry_after_s: float = 600.0


class UndecodableBody(RetryableSourceError):
    """A 2xx body that is not JSON (truncated on the way, say): asked again once, not more."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" zones parse naive; HTTP dates are always GMT
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class RateLimiter:
    """Sliding windows, e.g. [(100, 15.0)] for Harvest or [(100, 10), (4000, 1800)] for Productive.

    `acquire()` blocks (through the injected sleep) until a request fits every window.
    """

    def __init__(
        self,
        windows: list[tuple[int, float]],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = 0.25,
    ) -> None:
        # A request is stamped here when sent and counted by the provider when received;
        # network jitter between the two would let request N+1 land inside the provider's
        # window, so every window is kept a little longer on our side.
        self.windows = [(n, s + margin) for n, s in windows if n > 0]
        self.clock = clock
        self.sleep = sleep
        self._stamps: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> None:
        if not self.windows:
            return
        horizon = max(s for _, s in self.windows)
        with self._lock:
            while True:
                now = self.clock()
                while self._stamps and self._stamps[0] <= now - horizon:
                    self._stamps.popleft()
                wait = 0.0
                for limit, span in self.windows:
                    in_window = [t for t in self._stamps if t > now - span] if len(self._stamps) >= limit else []
                    if len(in_window) >= limit:
                        wait = max(wait, in_window[-limit] + span - now)
                if wait <= 0:
                    self._stamps.append(now)
                    return
                self.waited += wait
                self.sleep(wait + 0.001)


@dataclass
class HttpClient:
    """httpx wrapper for one source. Counts requests; classifies every failure.

    Args:
        source: the source's config name, for error messages.
        base_url: the provider's API root.
        headers: a callable, so rotating credentials (FreshBooks) are read per request.
        on_unauthorized: called on a 401; return True if credentials were renewed and the
            request should be tried once more.
        secrets: values to scrub from any message.
    """

    source: str
    base_url: str
    headers: Callable[[], Mapping[str, str]]
    limiter: RateLimiter | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 30.0
    on_unauthorized: Callable[[], bool] | None = None
    secrets: Callable[[], list[str]] = lambda: []
    transport: httpx.BaseTransport | None = None
    auth_advice: str = "check the API token and account id in the environment variables named in the config"
    requests: int = 0
    # The provider's clock (its Date header) at the first response after `mark_clock()`:
    # the sync engine's cursor follows the provider's clock, never ours.
    server_time: dt.datetime | None = None
    _marking: bool = False
    _client: httpx.Client | None = None

    def mark_clock(self) -> None:
        """Remember the provider's time of the next successful response."""
        self.server_time, self._marking = None, True

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.base_url.rstrip("/") + "/",
                timeout=self.timeout,
                transport=self.transport,
                follow_redirects=False,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def get_json(self, path: str, params: Mapping[str, Any] | None = None, *, resource: str = "") -> Any:
        """GET and decode JSON, retrying transient faults. Absolute URLs are followed as given."""

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.upcoming_sleep if state.upcoming_sleep is not None else 0.0
            log.warning(
                "%s: retry %d after %s on %s (waiting %.1f s)",
                self.source, state.attempt_number, _describe(exc), sanitize_url(path), wait,
                extra={"event": "http.retry", "source": self.source, "resource": resource or None,
                       "attempt": state.attempt_number, "wait_seconds": wait, "requests": self.requests},
            )

        def stop(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, UndecodableBody):
                return state.attempt_number >= 2
            return stop_after_attempt(self.retry.attempts)(state)

        retrying = Retrying(
            retry=retry_if_exception_type(TRANSIENT),
            stop=stop,
            wait=self._wait,
            sleep=self.retry.sleep,
            reraise=True,
            before_sleep=before_sleep,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._get_once(path, params, resource)
        except httpx.TimeoutException:
            raise RetryableSourceError(
                f"{self.source}: {resource or path} timed out {self.retry.attempts} times; "
                "the provider may be slow or down, try again later",
                source=self.source, resource=resource,
            ) from None
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise RetryableSourceError(
                f"{self.source}: cannot reach {sanitize_url(self.base_url)} ({type(exc).__name__}); "
                "check base_url and the network",
                source=self.source, resource=resource,
            ) from None
        except httpx.HTTPError as exc:
            # Anything else httpx raises (bad scheme, proxy, decoding) must still be a
            # SourceError, or it would escape the per-source isolation of a sync run.
            raise FatalSourceError(
                f"{self.source}: request to {sanitize_url(self.base_url)} failed ({type(exc).__name__}); "
                "check base_url",
                source=self.source, resource=resource,
            ) from None

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        after = getattr(exc, "retry_after", None)
        if after is not None:
            return float(after)  # never above max_retry_after_s: longer waits stop in _decode
        backoff = wait_random_exponential(multiplier=self.retry.backoff_s, max=self.retry.max_wait_s)
        wait = backoff(state)
        if getattr(exc, "status", None) == 429 and self.limiter is not None and self.limiter.windows:
            # Throttled without Retry-After (Harvest has answered so): the provider's window
            # must pass before a retry can succeed, so wait at least one whole window.
            span = min(s for _, s in self.limiter.windows)
            wait = max(wait, min(span * 2 ** (state.attempt_number - 1), self.retry.max_wait_s))
        return wait

    def _get_once(self, path: str, params: Mapping[str, Any] | None, resource: str) -> Any:
        renewed = False
        while True:
            if self.limiter is not None:
                self.limiter.acquire()
            self.requests += 1
            response = self.client.get(path, params=params, headers=dict(self.headers()))
            if response.status_code == 401 and self.on_unauthorized is not None and not renewed:
                renewed = True
                if self.on_unauthorized():
                    continue
            break
        return self._decode(response, resource)

    def _decode(self, response: httpx.Response, resource: str) -> Any:
        status = response.status_code
        url = sanitize_url(str(response.request.url))
        what = resource or url
        if 200 <= status < 300:
            if self._marking:
                self.server_time, self._marking = _server_date(response), False
            try:
                # orjson: half the decoding time of json on large pages (the bridge's hot path)
                return orjson.loads(response.content)
            except orjson.JSONDecodeError:
                raise UndecodableBody(
                    f"{self.source}: {what} answered HTTP {status} with a body that is not JSON "
                    f"({len(response.content)} bytes; truncated or not an API answer), twice; check base_url, "
                    "or try again later if the provider is having trouble",
                    source=self.source, resource=resource,
                ) from None
        body = scrub(summarize_body(response), self.secrets())
        if status in (401, 403):
            raise (ForbiddenError if status == 403 else AuthError)(
                f"{self.source}: the provider refused the credentials (HTTP {status}) on {what}; "
                f"{self.auth_advice}. Provider said: {body.strip()[:200]}",
                source=self.source, resource=resource,
            )
        if status in RETRY_STATUSES:
            after = parse_retry_after(response.headers.get("Retry-After"))
            if after is not None and after > self.retry.max_retry_after_s:
                resume_at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=after)).replace(microsecond=0)
                raise RateLimitedError(
                    f"{self.source}: the provider answered HTTP {status} on {what} and asked us to wait "
                    f"{_span(after)}, more than max_retry_after_seconds ({_span(self.retry.max_retry_after_s)}); "
                    f"this source stops now and resumes from where it stopped at {resume_at:%Y-%m-%d %H:%M:%S} UTC",
                    source=self.source, resource=resource, resume_at=resume_at,
                )
            raise RetryableSourceError(
                f"{self.source}: HTTP {status} on {what}",
                source=self.source, resource=resource,
                retry_after=after, status=status,
            )
        raise FatalSourceError(
            f"{self.source}: HTTP {status} on {url}: {body.strip()}",
            source=self.source, resource=resource,
        )


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def summarize_body(response: httpx.Response, limit: int = 500) -> str:
    """An error body fit for a message: JSON or text truncated; an HTML page only named.

    Providers answer some errors with a whole web page (a Harvest 404, a proxy's 502);
    its markup tells the reader nothing and would swamp the message and the logs.
    """
    text = response.text
    kind = response.headers.get("Content-Type", "").lower()
    head = text.lstrip()[:200].lower()
    if "html" in kind or head.startswith(("<!doctype html", "<html")):
        found = _TITLE.search(text[:20_000])
        title = " ".join(html.unescape(found.group(1)).split())[:120] if found else ""
        return f"an HTML page titled '{title}'" if title else "an HTML page"
    return text[:limit]


def _server_date(response: httpx.Response) -> dt.datetime | None:
    try:
        when = parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError):
        return None
    return when.astimezone(dt.timezone.utc) if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _span(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, RetryableSourceError):
        return str(exc).split(": ", 1)[-1]
    return type(exc).__name__ if exc else "error"


def client_for(
    source: Any,
    *,
    base_url: str,
    windows: Sequence[tuple[int, float]],
    headers: Callable[[], Mapping[str, str]],
    auth_advice: str,
    secrets: Callable[[], list[str]],
    on_unauthorized: Callable[[], bool] | None = None,
    limiter: RateLimiter | None = None,
    transport: httpx.BaseTransport | None = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> HttpClient:
    """The HttpClient of one configured source: its documented rate limit (or the config's
    `requests_per_window`/`window_seconds` override), retries, timeout and advice.

    `sleep` and `clock` are test seams shared by the limiter and the retry policy.
    """
    if limiter is None:
        if source.requests_per_window:
            windows = [(source.requests_per_window, source.window_seconds or windows[0][1])]
        limiter = RateLimiter(list(windows), clock=clock or time.monotonic, sleep=sleep or time.sleep)
    return HttpClient(
        source=source.name,
        base_url=base_url,
        headers=headers,
        limiter=limiter,
        retry=_with_limit(retry or (RetryPolicy(sleep=sleep) if sleep else RetryPolicy()), source),
        timeout=source.timeout_seconds,
        on_unauthorized=on_unauthorized,
        secrets=secrets,
        transport=transport,
        auth_advice=auth_advice,
    )


def _with_limit(policy: RetryPolicy, source: Any) -> RetryPolicy:
    """The source's configured Retry-After maximum on the policy (tests pass their own policy)."""
    limit = getattr(source, "max_retry_after_seconds", None)
    if not isinstance(limit, (int, float)) or limit == policy.max_retry_after_s:
        return policy
    from dataclasses import replace

    return replace(policy, max_retry_after_s=float(limit))
