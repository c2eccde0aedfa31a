"""FreshBooks' OAuth authorization-code flow: how a source gets its first tokens (`bridge auth`).

1. `authorize_url()` is the page a person opens: they log in to FreshBooks and approve the
   app; FreshBooks then sends the browser to the app's redirect URI with `?code=…` (the code
   lives 5 minutes and works once).
2. The code arrives either at a loopback listener (`LoopbackReceiver`, when the redirect URI
   is http://127.0.0.1:PORT/… or http://localhost:PORT/…) or pasted by the person: the whole
   URL the browser ended on, or the code alone (`code_from`). FreshBooks only registers https
   redirect URIs, so with a real account the paste is the usual route: the browser shows an
   error page for https://127.0.0.1/… but its address bar holds the code.
3. `exchange_code()` trades it for the first access and refresh tokens and stores them in the
   store, where the connector's TokenManager takes over (it rotates the refresh token).

The same command recovers a source whose refresh token was spent without us receiving its
successor (a refresh answer lost to a timeout or a kill): authorizing again issues a new one.
"""

from __future__ import annotations

import http.server
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from bridge.config import SourceConfig
from bridge.errors import AuthError, ConfigError, SourceError
from connectors.freshbooks import (
    ACCESS_EXPIRES,
    ACCESS_TOKEN,
    BASE_URL,
    REFRESH_TOKEN,
    REFRESHED_AT,
    SEED_HASH,
    TOKEN_PATH,
    SecretStore,
    _sha256,
    save_access,
)

AUTHORIZE_URL = "https://auth.freshbooks.com/oauth/authorize"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8976/freshbooks/callback"
AUTHORIZED_AT = "authorized_at"
# Read-only scopes for everything the bridge syncs; FreshBooks asks the person to approve them.
SCOPES = ("user:profile:read user:clients:read user:projects:read user:time_entries:read "
          "user:invoices:read user:payments:read user:teams:read user:billable_items:read")


def _base(source: SourceConfig) -> str:
    return (source.base_url or BASE_URL).rstrip("/")


def token_url(source: SourceConfig) -> str:
    return source.token_url or f"{_base(source)}/{TOKEN_PATH}"


def authorize_endpoint(source: SourceConfig) -> str:
    """auth.freshbooks.com for the real API; `<base_url>/oauth/authorize` for a stand-in (the sandbox)."""
    if source.authorize_url:
        return source.authorize_url
    return AUTHORIZE_URL if _base(source) == BASE_URL else f"{_base(source)}/oauth/authorize"


def redirect_uri_for(source: SourceConfig, override: str | None = None) -> str:
    return override or source.redirect_uri or DEFAULT_REDIRECT_URI


def authorize_url(source: SourceConfig, redirect_uri: str, state: str) -> str:
    query = {"client_id": source.secret("client_id_env"), "response_type": "code",
             "redirect_uri": redirect_uri, "scope": SCOPES, "state": state}
    return f"{authorize_endpoint(source)}?{urlencode(query)}"


def new_state() -> str:
    return secrets.token_urlsafe(16)


def code_from(pasted: str, state: str | None = None) -> str:
    """The code from a pasted redirect URL (checking `state` when it carries one), or a bare code."""
    text = pasted.strip()
    if not text:
        raise ConfigError("nothing was pasted; paste the whole address the browser ended on, or the code")
    if "://" in text:
        raw = urlsplit(text).query
    elif "?" in text:
        raw = text.split("?", 1)[1]  # a path and query, as the loopback listener receives it
    elif "=" in text:
        raw = text
    else:
        return text  # the code alone
    query = parse_qs(raw)
    if "error" in query:
        raise AuthError(f"FreshBooks did not authorize the app: {query['error'][0]}"
                        + (f" ({query['error_description'][0]})" if "error_description" in query else ""))
    codes = query.get("code")
    if not codes:
        raise ConfigError("the pasted address has no `code=` parameter; paste the address the browser "
                          "ended on after you approved the app")
    if state is not None and query.get("state", [state])[0] != state:
        raise AuthError("the pasted address belongs to another authorization attempt (its state differs); "
                        "open the authorize link printed now and paste the new address")
    return codes[0]


def is_loopback(redirect_uri: str) -> bool:
    parts = urlsplit(redirect_uri)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost") and parts.port is not None


class LoopbackReceiver:
    """A one-shot HTTP listener on the redirect URI's loopback port and path."""

    def __init__(self, redirect_uri: str, state: str) -> None:
        if not is_loopback(redirect_uri):
            raise ConfigError(f"{redirect_uri} is not an http://127.0.0.1:PORT/… address this machine can listen on")
        parts = urlsplit(redirect_uri)
        self.path = parts.path or "/"
        self.state = state
        self.results: queue.Queue[tuple[str | None, str | None]] = queue.Queue()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base signature
                pass  # the query holds the code: never logged

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urlsplit(self.path)
                if url.path != receiver.path:
                    self.send_error(404)
                    return
                try:
                    if "?" not in self.path:
                        raise ConfigError("the redirect carried no code")
                    code, error = code_from(self.path, receiver.state), None
                except (ConfigError, AuthError) as exc:
                    code, error = None, str(exc)
                body = ("<h1>clearhours: authorized</h1><p>You can close this tab and go back to the terminal.</p>"
                        if code else f"<h1>clearhours: not authorized</h1><p>{_html(error or '')}</p>")
                data = body.encode()
                self.send_response(200 if code else 400)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                receiver.results.put((code, error))

        host = parts.hostname or "127.0.0.1"
        try:
            self.server = http.server.HTTPServer(("127.0.0.1" if host == "localhost" else host, parts.port or 0), Handler)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {redirect_uri} ({exc.strerror}); free the port, or use "
                              "--code to paste the address instead") from None
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def wait(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AuthError("no redirect arrived in time; run `bridge auth` again, or paste the address "
                                "with --code")
            try:
                code, error = self.results.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if code:
                return code
            raise AuthError(error or "the redirect carried no code")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Authorized:
    expires_at: float
    scope: str


def exchange_code(
    source: SourceConfig,
    store: SecretStore,
    code: str,
    redirect_uri: str,
    *,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> Authorized:
    """Trade an authorization code for tokens and store them (refresh token first)."""
    payload = {"grant_type": "authorization_code", "client_id": source.secret("client_id_env"),
               "client_secret": source.secret("client_secret_env"), "code": code, "redirect_uri": redirect_uri}
    try:
        with httpx.Client(transport=transport, timeout=source.timeout_seconds) as client:
            response = client.post(token_url(source), json=payload,
                                   headers={"Accept": "application/json", "User-Agent": source.user_agent})
    except httpx.HTTPError as exc:
        raise SourceError(f"{source.name}: cannot reach the FreshBooks token endpoint ({type(exc).__name__}); "
                          "check base_url/token_url and the network", source=source.name) from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code >= 400 or not isinstance(body, dict) or not body.get("access_token"):
        error = str(body.get("error") or "") if isinstance(body, dict) else ""
        if error == "invalid_grant":
            raise AuthError(f"{source.name}: FreshBooks refused the code (invalid_grant): it expired (codes live "
                            "5 minutes), was already used, or the redirect URI differs from the one the app "
                            f"registered ({redirect_uri}); run `bridge auth {source.name}` again", source=source.name)
        if error == "invalid_client":
            raise AuthError(f"{source.name}: FreshBooks does not know this app's client id and secret; check "
                            f"{source.client_id_env} and {source.client_secret_env}", source=source.name)
        raise SourceError(f"{source.name}: the FreshBooks token endpoint answered HTTP {response.status_code}"
                          + (f" ({error})" if error else ""), source=source.name)
    refresh = body.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        raise SourceError(f"{source.name}: FreshBooks issued no refresh token", source=source.name)
    now = clock()
    store.put_secret(source.name, REFRESH_TOKEN, refresh)
    if source.refresh_token_env:
        # a token still sitting in the env var is older than this one: never spend it over the new one
        import os

        old = os.environ.get(source.refresh_token_env)
        if old:
            store.put_secret(source.name, SEED_HASH, _sha256(old))
    lifetime = float(body.get("expires_in") or 43200)
    expires_at = now + lifetime - min(60.0, lifetime / 10)
    save_access(store, source.name, str(body["access_token"]), expires_at, now)
    store.put_secret(source.name, AUTHORIZED_AT, f"{now:.0f}")
    return Authorized(expires_at, str(body.get("scope") or ""))


@dataclass(frozen=True)
class TokenStatus:
    source: str
    authorized: bool
    authorized_at: float | None
    refreshed_at: float | None
    access_expires_at: float | None
    env_token: bool

    def lines(self, now: float) -> list[str]:
        import datetime as dt

        def when(ts: float | None) -> str:
            return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if ts else "never"

        if not self.authorized:
            how = " (a first refresh token waits in the environment variable)" if self.env_token else ""
            return [f"{self.source}: not authorized{how}; run `bridge auth {self.source}`"]
        out = [f"{self.source}: authorized (refresh token in the store)",
               f"  authorized at   {when(self.authorized_at)}", f"  last refresh    {when(self.refreshed_at)}"]
        if self.access_expires_at and self.access_expires_at > now:
            left = int(self.access_expires_at - now)
            out.append(f"  access token    valid until {when(self.access_expires_at)} "
                       f"(next refresh in {left // 3600}h {left % 3600 // 60}m)")
        else:
            out.append("  access token    expired or none: the next sync refreshes it")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "authorized": self.authorized, "authorized_at": self.authorized_at,
                "refreshed_at": self.refreshed_at, "access_expires_at": self.access_expires_at,
                "env_token": self.env_token}


def token_status(source: SourceConfig, store: SecretStore) -> TokenStatus:
    """What the store holds for a FreshBooks source; never the token values themselves."""
    import os

    def num(name: str) -> float | None:
        raw = store.get_secret(source.name, name)
        try:
            return float(raw) if raw else None
        except ValueError:
            return None

    env_token = bool(source.refresh_token_env and os.environ.get(source.refresh_token_env))
    return TokenStatus(
        source=source.name,
        authorized=bool(store.get_secret(source.name, REFRESH_TOKEN)),
        authorized_at=num(AUTHORIZED_AT),
        refreshed_at=num(REFRESHED_AT),
        access_expires_at=num(ACCESS_EXPIRES) if store.get_secret(source.name, ACCESS_TOKEN) else None,
        env_token=env_token,
    )
