"""The sandbox HTTP server: dispatch to provider modules, plus what every provider needs.

The server owns the cross-cutting behaviour so provider modules stay pure wire-format code:
the request log and counters, per-provider rate limiting, fault injection, JSON encoding, and
the admin API under `/_sandbox/`. See `connectors/sandbox/__init__.py` for the plug-in contract.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from connectors.sandbox.agency import Agency, Entry, from_epoch

FAULT_KINDS = ("429", "429-no-retry-after", "500", "503", "slow", "malformed")


@dataclass
class Request:
    """One HTTP request as a provider sees it: `path` is relative to the provider's PREFIX."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]  # case-insensitive (an http.client.HTTPMessage)
    body: bytes
    base_url: str  # "http://127.0.0.1:PORT", from the request's Host header
    prefix: str

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The last value of a query parameter (repeated keys: last wins, like Rails)."""
        for key, value in reversed(self.query):
            if key == name:
                return value
        return default

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))

    @property
    def api_url(self) -> str:
        """The absolute base of this provider's API, for links in responses."""
        return self.base_url + self.prefix


@dataclass
class Response:
    """`body` may be a JSON-able value (encoded with Decimal support), str or bytes."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, body, headers or {})


class Router:
    """A route table: `@router.get(r"/clients/(?P<id>\\d+)")` then `handle = router.handle`.

    Handlers are called as `fn(request, agency, state, **groups)`; the first full match wins.
    """

    def __init__(self, not_found: Callable[[Request], Response] | None = None) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = []
        self.not_found = not_found or (lambda request: json_response({"status": 404, "error": "Not Found"}, 404))

    def route(self, method: str, pattern: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        def register(fn: Callable[..., Response]) -> Callable[..., Response]:
            self.routes.append((method, re.compile(pattern), fn))
            return fn

        return register

    def get(self, pattern: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        return self.route("GET", pattern)

    def post(self, pattern: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        return self.route("POST", pattern)

    def match(self, method: str, path: str) -> tuple[Callable[..., Response], dict[str, str]] | None:
        for route_method, pattern, fn in self.routes:
            m = pattern.fullmatch(path)
            if m and route_method == method:
                return fn, m.groupdict()
        return None

    def handle(self, request: Request, agency: Agency, state: Any) -> Response:
        found = self.match(request.method, request.path)
        if found is None:
            return self.not_found(request)
        fn, groups = found
        return fn(request, agency, state, **groups)


class BadRequest(Exception):
    """A query parameter the provider would refuse; each provider module answers it with
    its own status and error body."""


def int_arg(request: "Request", name: str, default: int | None = None) -> int | None:
    raw = request.arg(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None


def date_arg(request: "Request", name: str, *, compact: bool = False) -> dt.date | None:
    """An ISO date; with `compact`, also YYYYMMDD (Harvest's reports take both)."""
    raw = request.arg(name)
    if raw in (None, ""):
        return None
    try:
        if compact and len(raw) == 8 and raw.isdigit():
            return dt.date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
        return dt.date.fromisoformat(raw[:10])
    except ValueError:
        raise BadRequest(f"{name} is not a valid date like 2025-03-20") from None


class VersionCache:
    """For provider states (which declare `caches: dict`): one slot per key, valid for one
    agency version, so page 2 of a listing reuses page 1's filtering and sorting."""

    caches: dict[Any, Any]

    def cached(self, key: Any, version: int, build: Callable[[], Any]) -> Any:
        hit = self.caches.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        if len(self.caches) > 32:
            self.caches.clear()
        value = build()
        self.caches[key] = (version, value)
        return value


@dataclass(frozen=True)
class RateRule:
    """At most `limit` requests per `window` seconds, counted over paths starting with `path_prefix`
    (None = every path the other rules do not claim)."""

    limit: int
    window: float
    path_prefix: str | None = None


@dataclass
class Fault:
    provider: str
    kind: str
    count: int = 1
    path_contains: str | None = None
    retry_after: int = 1
    delay: float | None = None


@dataclass
class LogRecord:
    provider: str
    method: str
    path: str  # full path, prefix included
    query: str
    status: int
    at: float

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class RateLimiter:
    """A sliding window per (provider, rule); `check` answers None or seconds until a slot frees."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.hits: dict[tuple[str, int], deque[float]] = {}
        self.lock = threading.Lock()

    def check(self, provider: str, rules: list[RateRule], path: str) -> int | None:
        rule_index = _rule_for(rules, path)
        if rule_index is None:
            return None
        rule = rules[rule_index]
        now = self.clock()
        with self.lock:
            hits = self.hits.setdefault((provider, rule_index), deque())
            while hits and hits[0] <= now - rule.window:
                hits.popleft()
            if len(hits) >= rule.limit:
                return max(1, int(hits[0] + rule.window - now + 0.999))
            hits.append(now)
            return None

    def reset(self) -> None:
        with self.lock:
            self.hits.clear()


def _rule_for(rules: list[RateRule], path: str) -> int | None:
    fallback = None
    for i, rule in enumerate(rules):
        if rule.path_prefix is None:
            fallback = i if fallback is None else fallback
        elif path.startswith(rule.path_prefix):
            return i
    return fallback


@dataclass
class Mounted:
    """A provider module mounted in a sandbox, with its per-sandbox state."""

    name: str
    module: ModuleType
    prefix: str
    state: Any
    rules: list[RateRule]
    agency: Agency


class Sandbox:
    """The local provider server. Use as a context manager or call start()/stop().

    `agency` is one Agency that every provider serves (the same clients under the same ids
    everywhere: what the connector contract tests compare), or a mapping provider -> Agency
    so that each provider serves its own account (`agency.generate_accounts`, the default of
    `bridge sandbox` and `bridge demo`). `sandbox.agency` is then the first provider's.
    `options` maps a provider name to keyword arguments for that module's `make_state`, e.g.
    `{"harvest": {"cursor_pagination": True, "hide_money_budgets": True}}`.
    `rate_limits=False` disables the simulated provider limits (benchmarks); `rate_rules` overrides
    them per provider (tests use small windows). `slow_delay` is how long a "slow" fault sleeps.
    """

    def __init__(
        self,
        agency: Agency | Mapping[str, Agency],
        *,
        rate_limits: bool = True,
        providers: Iterable[ModuleType] | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        rate_rules: Mapping[str, list[RateRule]] | None = None,
        slow_delay: float = 5.0,
        host: str = "127.0.0.1",
        port: int = 0,
        log_size: int = 10_000,
    ) -> None:
        from connectors.sandbox import provider_modules

        own = dict(agency) if isinstance(agency, Mapping) else {}
        if own:
            agency = next(iter(own.values()))
        assert isinstance(agency, Agency)
        self.agency = agency
        self.shared = not own  # every provider serves the one agency
        self.rate_limits = rate_limits
        self.slow_delay = slow_delay
        self.host, self.port = host, port
        self.limiter = RateLimiter()
        self.faults: list[Fault] = []
        self.log: deque[LogRecord] = deque(maxlen=log_size)
        self.counters: dict[str, int] = {}
        self.status_counters: dict[str, dict[int, int]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.mounts: list[Mounted] = []
        options = options or {}
        for module in providers if providers is not None else provider_modules():
            name = module.NAME
            if own and name not in own:
                continue  # no account of this provider in the mapping: not mounted
            served = own.get(name, agency)
            make_state = getattr(module, "make_state", None)
            state = make_state(served, **options.get(name, {})) if make_state else None
            rules = list((rate_rules or {}).get(name, getattr(module, "RATE_LIMITS", [])))
            self.mounts.append(Mounted(name, module, module.PREFIX.rstrip("/"), state, rules, served))
            self.counters[name] = 0
            self.status_counters[name] = {}

    # ---- lifecycle ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the sandbox is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, provider: str) -> str:
        """The API base URL a connector should use, e.g. http://127.0.0.1:PORT/harvest/v2."""
        return self.base_url + self.mount(provider).prefix

    def mount(self, provider: str) -> Mounted:
        for mounted in self.mounts:
            if mounted.name == provider:
                return mounted
        raise KeyError(f"no provider {provider!r} in this sandbox")

    def state(self, provider: str) -> Any:
        return self.mount(provider).state

    def agency_for(self, provider: str | None) -> Agency:
        """The agency `provider` serves (`sandbox.agency` for None)."""
        return self.agency if provider is None else self.mount(provider).agency

    @property
    def agencies(self) -> list[Agency]:
        out: list[Agency] = []
        for m in self.mounts:
            if all(m.agency is not a for a in out):
                out.append(m.agency)
        return out or [self.agency]

    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"sandbox": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self._stopping.clear()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sandbox", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        self._stopping.set()  # wakes up "slow" faults
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self) -> None:
        """Block until stop() or Ctrl-C (for `bridge sandbox`)."""
        try:
            while not self._stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # ---- faults, counters -----------------------------------------------------------------
    def inject(
        self,
        provider: str,
        kind: str,
        count: int = 1,
        path_contains: str | None = None,
        *,
        retry_after: int = 1,
        delay: float | None = None,
    ) -> Fault:
        """The next `count` matching requests to `provider` fail as `kind` (see FAULT_KINDS)."""
        self.mount(provider)
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        fault = Fault(provider, kind, count, path_contains, retry_after, delay)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def reset(self) -> None:
        """Forget counters, the request log, faults and rate-limit windows."""
        with self._lock:
            self.faults.clear()
            self.log.clear()
            for name in self.counters:
                self.counters[name] = 0
                self.status_counters[name] = {}
        self.limiter.reset()

    def requests(self, provider: str | None = None) -> list[LogRecord]:
        with self._lock:
            return [r for r in self.log if provider is None or r.provider == provider]

    def _take_fault(self, provider: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.provider == provider and (fault.path_contains is None or fault.path_contains in path):
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _record(self, provider: str, method: str, path: str, query: str, status: int) -> None:
        with self._lock:
            self.log.append(LogRecord(provider, method, path, query, status, time.time()))
            if provider in self.counters:
                self.counters[provider] += 1
                statuses = self.status_counters[provider]
                statuses[status] = statuses.get(status, 0) + 1

    # ---- dispatch -------------------------------------------------------------------------
    def dispatch(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> tuple[str, Response]:
        """Route one request; returns (provider name or "_sandbox" or "", response)."""
        parts = urlsplit(raw_path)
        path, query_string = parts.path, parts.query
        host = headers.get("Host") or f"{self.host}:{self.port}"
        base_url = f"http://{host}"
        if path.startswith("/_sandbox/") or path == "/_sandbox":
            request = Request(method, path[len("/_sandbox"):] or "/", parse_qsl(query_string, keep_blank_values=True),
                              headers, body, base_url, "/_sandbox")
            return "_sandbox", handle_admin(self, request)
        for mounted in self.mounts:
            if path == mounted.prefix or path.startswith(mounted.prefix + "/"):
                break
        else:
            return "", json_response({"error": f"no sandbox provider serves {path}"}, 404)
        rel = path[len(mounted.prefix):] or "/"
        request = Request(method, rel, parse_qsl(query_string, keep_blank_values=True), headers, body,
                          base_url, mounted.prefix)
        if self.rate_limits:
            wait = self.limiter.check(mounted.name, mounted.rules, rel)
            if wait is not None:
                return mounted.name, _too_many(mounted.module, wait)
        fault = self._take_fault(mounted.name, rel)
        if fault is not None and fault.kind != "slow" and fault.kind != "malformed":
            return mounted.name, _fault_response(mounted.module, fault)
        if fault is not None and fault.kind == "slow":
            self._stopping.wait(fault.delay if fault.delay is not None else self.slow_delay)
        with mounted.agency.lock:
            response = mounted.module.handle(request, mounted.agency, mounted.state)
        if fault is not None and fault.kind == "malformed":
            encoded = encode_body(response)
            response = Response(response.status, encoded[: max(1, len(encoded) // 2)], response.headers,
                                response.content_type)
        return mounted.name, response


def _too_many(module: ModuleType, retry_after: int | None) -> Response:
    custom = getattr(module, "too_many_requests", None)
    if custom is not None:
        return custom(retry_after)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return json_response({"message": "Too Many Requests"}, 429, headers)


def _fault_response(module: ModuleType, fault: Fault) -> Response:
    if fault.kind == "429":
        return _too_many(module, fault.retry_after)
    if fault.kind == "429-no-retry-after":
        return _too_many(module, None)
    if fault.kind == "500":
        return Response(500, "We're sorry, but something went wrong.", {}, "text/html; charset=utf-8")
    return Response(503, "<html><body><h1>503 Service Unavailable</h1></body></html>", {}, "text/html; charset=utf-8")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Entry):
        return entry_as_dict(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode_body(response: Response) -> bytes:
    body = response.body
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    # Providers convert Decimals to their wire type themselves; the fallback makes them numbers.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=_default).encode("utf-8")


def entry_as_dict(entry: Entry) -> dict[str, Any]:
    """The neutral JSON view of an entry, for the admin API."""
    out = entry._asdict()
    out["spent_date"] = entry.spent_date.isoformat()
    for key in ("created_at", "updated_at", "timer_started_at"):
        if out[key] is not None:
            out[key] = from_epoch(out[key]).isoformat().replace("+00:00", "Z")
    for key in ("billable_rate", "cost_rate"):
        if out[key] is not None:
            out[key] = str(out[key])
    return out


class _Handler(BaseHTTPRequestHandler):
    sandbox: Sandbox
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse one connection across pages
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't wait 40 ms for an ACK
    server_version = "clearhours-sandbox"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base signature
        pass  # the sandbox keeps its own request log

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header on the agency's clock, the one its updated_at stamps come from,
        as a real provider's Date and its records share one clock (tests inject a clock)."""
        if timestamp is None:
            stamps = []
            for agency in self.sandbox.agencies:
                with agency.lock:
                    stamps.append(agency.now().timestamp())
            timestamp = max(stamps)
        return email.utils.formatdate(timestamp, usegmt=True)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        provider, response = self.sandbox.dispatch(self.command, self.path, self.headers, body)
        payload = encode_body(response)
        parts = urlsplit(self.path)
        self.sandbox._record(provider, self.command, parts.path, parts.query, response.status)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


# ---- admin API (JSON, unauthenticated, 127.0.0.1 only) ---------------------------------------
# Lets a benchmark or an end-to-end test in another process change data and inject faults.
# `bridge sandbox --help` prints ADMIN_HELP, so the list below is the one documentation.
ADMIN_HELP = """\
Admin API under http://127.0.0.1:PORT/_sandbox/ (JSON, no auth, loopback only):
  GET    /_sandbox/info                  providers, their API base URLs, demo credentials
  GET    /_sandbox/counters              requests per provider and per status
  GET    /_sandbox/log?provider=&limit=  the request log, newest last
  POST   /_sandbox/reset                 clear counters, log, faults and rate-limit windows
  POST   /_sandbox/faults                {"provider","kind","count","path_contains","retry_after","delay"}
  DELETE /_sandbox/faults                clear pending faults
  PUT    /_sandbox/rate_limits           {"enabled": bool}
  GET    /_sandbox/entries/{id}          the neutral entry
  POST   /_sandbox/entries               {"project_id","person_id","task_id","spent_date","seconds",...}
  PATCH  /_sandbox/entries/{id}          {field: value}; updated_at moves to now
  DELETE /_sandbox/entries/{id}          hard delete (logged in the agency's deletions)
  POST   /_sandbox/entries/{id}/malform  {"kind": "bad_date" | "bad_duration"}
  POST   /_sandbox/entries/{id}/backdate {"updated_at": ISO, ...other fields}
  GET    /_sandbox/deletions             the deletion log
  POST   /_sandbox/entries/edit_spread   {"count": N}: edit N entries spread over the history
When each provider serves its own account (the default), the entry routes take
?provider=harvest|freshbooks|productive (default: the first provider).
"""
_admin = Router(lambda request: json_response({"error": f"no admin route {request.method} {request.path}"}, 404))


def handle_admin(sandbox: Sandbox, request: Request) -> Response:
    try:
        # with one account per provider, `?provider=NAME` picks whose data an entry route edits
        return _admin.handle(request, sandbox.agency_for(request.arg("provider") or None), sandbox)
    except KeyError as exc:
        return json_response({"error": str(exc.args[0] if exc.args else exc)}, 404)
    except (ValueError, TypeError) as exc:
        return json_response({"error": str(exc)}, 422)


@_admin.get("/info")
def _info(request: Request, agency: Agency, sandbox: Sandbox) -> Response:
    from connectors.sandbox import DEMO_CREDENTIALS

    return json_response({
        "base_url": request.base_url,
        "providers": {m.name: request.base_url + m.prefix for m in sandbox.mounts},
        "credentials": {m.name: DEMO_CREDENTIALS.get(m.name, {}) for m in sandbox.mounts},
        "seed": agency.seed, "today": agency.today.isoformat(), "entries": len(agency.entries),
        "rate_limits": sandbox.rate_limits, "shared_agency": sandbox.shared,
        "accounts": {m.name: {"clients": {str(c.id): c.name for c in m.agency.clients.values()},
                              "entries": len(m.agency.entries)} for m in sandbox.mounts},
    })


@_admin.get("/counters")
def _counters(request: Request, agency: Agency, sandbox: Sandbox) -> Response:
    with sandbox._lock:
        return json_response({
            "requests": dict(sandbox.counters),
            "statuses": {name: {str(k): v for k, v in s.items()} for name, s in sandbox.status_counters.items()},
            "pending_faults": [dataclasses.asdict(f) for f in sandbox.faults],
        })


@_admin.get("/log")
def _log(request: Request, agency: Agency, sandbox: Sandbox) -> Response:
    records = sandbox.requests(request.arg("provider"))
    limit = int(request.arg("limit") or len(records) or 1)
    return json_response({"requests": [r.as_dict() for r in records[-limit:]]})


@_admin.post("/reset")
def _reset(request: Request, agency: Agency, sandbox: Sandbox) -> Response:
    sandbox.reset()
    return json_response({"ok": True})


@_admin.post("/faults")
def _add_fault(request: Request, agency: Agency, sandbox: Sandbox) -> Response:
    spec = request.json() or {}
    fault = sandbox.inject(
        spec["provider"], str(spec["kind"]), int(spec.get("count", 1)), spec.get("path_contains"),
        retry_after=int(spec.get("retry_after", 1)), delay=spec.get("delay"),
    )
    return json_response(dataclasses.asdict(fault), 201)


@_admin.route("DELETE", "/faults")
def _clear_faults(request: Request, agency: Agency, sandbox: Sandbox) -> Response:
    sandbox.clear_faults()
    return json_response({"ok": True})


@_admin.route("PUT", "/rate_limits")
def _rate_limits(request: Request, agency: Agency, sandbox: Sandbox) -> Response:
    sandbox.rate_limits = bool((request.json() or {}).get("enabled", True))
    sandbox.limiter.reset()
    return json_response({"rate_limits": sandbox.rate_limits})


@_admin.get(r"/entries/(?P<entry_id>\d+)")
def _get_entry(request: Request, agency: Agency, sandbox: Sandbox, entry_id: str) -> Response:
    with agency.lock:
        return json_response(entry_as_dict(agency._entry(int(entry_id))))


@_admin.post("/entries")
def _add_entry(request: Request, agency: Agency, sandbox: Sandbox) -> Response:
    spec = dict(request.json() or {})
    spec["spent_date"] = dt.date.fromisoformat(spec["spent_date"])
    entry = agency.add_entry(**spec)
    return json_response(entry_as_dict(entry), 201)


@_admin.route("PATCH", r"/entries/(?P<entry_id>\d+)")
def _edit_entry(request: Request, agency: Agency, sandbox: Sandbox, entry_id: str) -> Response:
    return json_response(entry_as_dict(agency.edit_entry(int(entry_id), **(request.json() or {}))))


@_admin.route("DELETE", r"/entries/(?P<entry_id>\d+)")
def _delete_entry(request: Request, agency: Agency, sandbox: Sandbox, entry_id: str) -> Response:
    deletion = agency.delete_entry(int(entry_id))
    return json_response({"id": deletion.id, "deleted_at": deletion.deleted_at.isoformat().replace("+00:00", "Z")})


@_admin.post(r"/entries/(?P<entry_id>\d+)/malform")
def _malform(request: Request, agency: Agency, sandbox: Sandbox, entry_id: str) -> Response:
    kind = (request.json() or {}).get("kind", "bad_date")
    return json_response(entry_as_dict(agency.malform_entry(int(entry_id), kind)))


@_admin.post(r"/entries/(?P<entry_id>\d+)/backdate")
def _backdate(request: Request, agency: Agency, sandbox: Sandbox, entry_id: str) -> Response:
    spec = dict(request.json() or {})
    updated_at = dt.datetime.fromisoformat(str(spec.pop("updated_at")).replace("Z", "+00:00"))
    return json_response(entry_as_dict(agency.backdate_entry(int(entry_id), updated_at, **spec)))


@_admin.get("/deletions")
def _deletions(request: Request, agency: Agency, sandbox: Sandbox) -> Response:
    with agency.lock:
        return json_response({"deletions": [
            {"resource": d.resource, "id": d.id, "deleted_at": d.deleted_at.isoformat().replace("+00:00", "Z")}
            for d in agency.deletions
        ]})


@_admin.post("/entries/edit_spread")
def _edit_spread(request: Request, agency: Agency, sandbox: Sandbox) -> Response:
    """Edit `count` entries spread evenly over the whole history (benchmarks: "1% edited")."""
    spec = dict(request.json() or {})
    count = int(spec.pop("count", 1))
    ids = [e.id for e in agency.entries_by_date_desc()]
    step = max(1, len(ids) // max(count, 1))
    chosen = ids[::step][:count]
    for entry_id in chosen:
        notes = spec.get("notes", "edited by benchmark")
        agency.edit_entry(entry_id, notes=f"{notes} {entry_id}")
    return json_response({"edited": len(chosen), "ids": chosen})
