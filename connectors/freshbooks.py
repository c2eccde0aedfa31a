"""FreshBooks: clients, projects, team, services, time entries, invoices and payments.

- API: https://api.freshbooks.com, docs https://www.freshbooks.com/api/start
  Path families: accounting `/accounting/account/{account_id}/…`, projects
  `/projects/business/{business_id}/…`, time tracking `/timetracking/business/{business_id}/…`,
  services `/comments/business/{business_id}/…`, identity `/auth/api/v1/…`.
- Auth: OAuth2, `Authorization: Bearer <access token>`. Access tokens live about 12 hours;
  refresh tokens never expire but are SINGLE USE: every refresh returns a new one, which we
  persist (store.put_secret, its own transaction) before the new access token is used, so a
  crash in between can never strand the account. See `TokenManager`.
- Tenant ids: `GET /auth/api/v1/users/me` (also the cheap `check()` call) names the business
  memberships; account_id (accounting) and business_id (everything else) are discovered
  there unless configured.
- Paging: `page`/`per_page` (max 100, silently capped); accounting bodies carry the page count
  in `response.result.pages`, projects/time tracking in `meta.pages`, team members only
  `meta.total`.
- Incremental: time entries and projects take `updated_since` (a UTC datetime); accounting
  lists take `search[updated_min]` (a DATE, compared with the US/Eastern `updated` field), so
  we send the Eastern date of `since` minus one day of overlap.
- Deletions: accounting objects are soft-deleted (`vis_state` 1; 2 = archived, still listed
  and normalized as inactive). Normalizers skip a vis_state-1 row (the store's upsert would
  revive it) and `deleted_ids()` reports them from `search[vis_state]=1`. Time entries,
  projects, services and team members are reconciled by id (`ids()`): time entries over the
  reconcile window, the small lists whole.
- Time entries carry no update stamp, so their `updated_at` is `created_at`: the cursor then
  trails the newest creation, and `updated_since` from there still returns every later edit.
- Running timers are listed only with `include_unlogged=true`; FreshBooks reports duration 0.
- Rate limit: not published. We stay polite client-side (10 requests/s) and the shared HTTP
  client honours 429 with backoff.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo

import httpx

from bridge.config import SourceConfig
from bridge.connector import Access, Context, Page, Resource
from bridge.errors import AuthError, ConfigError, FatalSourceError, ForbiddenError, RecordError, SourceError
from bridge.http import RateLimiter, RetryPolicy, client_for, parse_retry_after
from bridge.models import Client, Invoice, Payment, Person, Project, Task, TimeEntry
from bridge.normalize import (
    currency,
    invoice_status,
    parse_date,
    parse_datetime,
    ref_id,
    require_date,
    text,
    to_decimal,
    to_int,
    validated,
)
from bridge.pagination import PageNumberPager, dig
from bridge.redaction import scrub
from connectors.access import Identity, guarded

log = logging.getLogger(__name__)

BASE_URL = "https://api.freshbooks.com"
TOKEN_PATH = "auth/oauth/token"
PAGE_SIZE = 100
EASTERN = ZoneInfo("America/New_York")  # accounting `updated` stamps are Eastern wall-clock
UTC = dt.timezone.utc
DEFAULT_RATE = (10, 1.0)  # not published by FreshBooks; polite
REFRESH_MARGIN_S = 60.0  # refresh this long before the access token's stated expiry


# --- normalizers (pure) ---------------------------------------------------------------


def _money(obj: Any, field: str) -> tuple[Decimal | None, str | None]:
    """`{"amount": "1222.00", "code": "USD"}` -> (Decimal("1222.00"), "USD")."""
    if obj is None:
        return None, None
    if not isinstance(obj, Mapping):
        raise RecordError(f"{field} is {obj!r}, expected a money object", field=field)
    code = obj.get("code")
    return to_decimal(obj.get("amount"), field), (currency(code, f"{field}.code") if code else None)


def _eastern(value: Any, field: str) -> dt.datetime | None:
    """Accounting 'YYYY-MM-DD HH:MM:SS' (US/Eastern wall clock, DST-aware) -> aware UTC."""
    return parse_datetime(value, field, assume=EASTERN)


def _deleted(raw: Mapping[str, Any]) -> bool:
    return raw.get("vis_state") == 1


def _client(raw: Mapping[str, Any], ctx: Context) -> Client | None:
    if _deleted(raw):
        return None  # soft-deleted: reported through deleted_ids(), never upserted live
    name = text(raw.get("organization")) or " ".join(
        p for p in (text(raw.get("fname")), text(raw.get("lname"))) if p
    )
    return validated(Client, {
        "source": ctx.source,
        "source_id": ref_id(raw.get("id") or raw.get("userid")),
        "name": name or None,
        "currency": currency(raw["currency_code"]) if raw.get("currency_code") else None,
        "is_active": raw.get("vis_state", 0) == 0,
        "updated_at": _eastern(raw.get("updated"), "updated"),
    })


BUDGET_UNITS = ("auto", "seconds", "hours")


def budget_seconds(value: Any, unit: str = "auto") -> int | None:
    """A project's time `budget` in seconds; None for none (absent, empty or zero).

    FreshBooks' own SDKs disagree on the wire type: two show an integer (`21600`, seconds:
    durations are seconds everywhere in FreshBooks), one a decimal string (`"50.00"`, which
    read as seconds would be a 50-second budget; the web app takes budgets in hours). So by
    default ("auto") a number is seconds and a string is hours; the source's `budget_unit`
    setting forces one unit for both if an account shows otherwise.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"budget is {value!r}, expected a number", field="budget")
    if unit not in BUDGET_UNITS:
        raise ConfigError(f"budget_unit {unit!r} is not one of {', '.join(BUDGET_UNITS)}")
    if unit == "auto":
        unit = "hours" if isinstance(value, str) else "seconds"
    amount = to_decimal(value, "budget")
    if amount is None:
        return None
    if amount < 0:
        raise RecordError(f"budget is negative ({value!r})", field="budget")
    seconds = int((amount * 3600 if unit == "hours" else amount).to_integral_value())
    return seconds or None  # a zero budget is no budget


def _project(raw: Mapping[str, Any], ctx: Context, *, budget_unit: str = "auto") -> Project:
    # A fixed-price project's price is a money budget; a time `budget` beside it is kept
    # too (both amounts; the kind is hours, what a portal shows first, as for Productive).
    fixed = to_decimal(raw.get("fixed_price"), "fixed_price")
    money = fixed if raw.get("project_type") == "fixed_price" and fixed else None
    seconds = budget_seconds(raw.get("budget"), budget_unit)
    kind = "hours" if seconds is not None else ("money" if money is not None else None)
    internal = bool(raw.get("internal"))
    return validated(Project, {
        "source": ctx.source,
        "source_id": ref_id(raw.get("id")),
        "client_source_id": ref_id(raw.get("client_id")),
        "name": text(raw.get("title")),
        "is_active": bool(raw.get("active", True)) and not raw.get("complete"),
        "is_billable": not internal,  # an internal project is tracked, never invoiced
        "budget_kind": kind,
        "budget_period": "total" if kind else None,  # FreshBooks has no monthly budgets
        "budget_seconds": seconds,
        "budget_money": money,
        "fee": fixed,
        "ends_on": parse_date(raw.get("due_date"), "due_date"),
        "billing_method": text(raw.get("billing_method")),
        "hourly_rate": to_decimal(raw.get("rate"), "rate"),
        "notes": text(raw.get("description")),
        "updated_at": parse_datetime(raw.get("updated_at"), "updated_at"),
    })


def _person_id(raw: Mapping[str, Any]) -> str | None:
    """Time entries name people by identity id; an invitee who has not accepted has none yet."""
    identity = ref_id(raw.get("identity_id"))
    return identity if identity else (f"uuid:{raw['uuid']}" if raw.get("uuid") else None)


def _person(raw: Mapping[str, Any], ctx: Context) -> Person:
    role_name = str(raw.get("business_role_name") or "")
    return validated(Person, {
        "source": ctx.source,
        "source_id": _person_id(raw),
        "first_name": text(raw.get("first_name")) or "",
        "last_name": text(raw.get("last_name")) or "",
        "email": text(raw.get("email")),
        "role": text(raw.get("job_title")),
        "is_active": bool(raw.get("active", True)),
        "is_contractor": "contractor" in role_name,
        # joined by the connector from team_member_rates (team members carry no rate themselves)
        "default_hourly_rate": to_decimal(raw.get("rate"), "rate"),
        "updated_at": parse_datetime(raw.get("updated_at"), "updated_at"),
    })


def _task(raw: Mapping[str, Any], ctx: Context) -> Task | None:
    if _deleted(raw):
        return None
    return validated(Task, {
        "source": ctx.source,
        "source_id": ref_id(raw.get("id")),
        "name": text(raw.get("name")),
        "is_billable_default": bool(raw.get("billable", True)),
        "is_active": raw.get("vis_state", 0) == 0,
        # joined by the connector from service_rates: a service-rate project bills at it
        "default_hourly_rate": to_decimal(raw.get("rate"), "rate"),
    })


def _local_day(raw: Mapping[str, Any], started: dt.datetime, agency_tz: ZoneInfo) -> dt.date:
    """The day the person worked, on their own calendar.

    Every recorded entry carries `local_started_at` (the person's wall clock, no offset)
    and `local_timezone` (IANA): its date is the day. Without the wall clock, the UTC start
    in `local_timezone`; without either, the UTC start in the agency's zone. Taking the
    agency's zone first would move late or early work a day for an agency east or west of
    its team.
    """
    local = raw.get("local_started_at")
    if local not in (None, ""):
        try:
            # the wall clock as written; a stray "Z" or offset on it does not make it UTC
            return dt.date.fromisoformat(str(local).strip()[:10])
        except ValueError:
            raise RecordError(f"local_started_at is {local!r}, not a date and time", field="local_started_at") from None
    zone = raw.get("local_timezone")
    if zone not in (None, ""):
        try:
            return started.astimezone(ZoneInfo(str(zone))).date()
        except (KeyError, ValueError):
            raise RecordError(f"local_timezone {zone!r} is not a known time zone", field="local_timezone") from None
    return started.astimezone(agency_tz).date()


def _time_entry(raw: Mapping[str, Any], ctx: Context) -> TimeEntry:
    started = parse_datetime(raw.get("started_at"), "started_at")
    if started is None:
        raise RecordError("started_at is missing", field="started_at")
    timer = raw.get("timer") if isinstance(raw.get("timer"), Mapping) else {}
    running = not raw.get("is_logged", True) and bool(timer.get("is_running"))
    duration = raw.get("duration")
    seconds = 0 if duration is None and running else to_int(duration, "duration")
    if seconds < 0:
        raise RecordError(f"duration is negative ({seconds})", field="duration")
    billed = bool(raw.get("billed"))
    return validated(TimeEntry, {
        "source": ctx.source,
        "source_id": ref_id(raw.get("id")),
        # FreshBooks has no booking day: the day the work started, on the person's calendar.
        "spent_date": _local_day(raw, started, ctx.tz),
        "seconds": seconds,
        "client_source_id": ref_id(raw.get("client_id")),
        "project_source_id": ref_id(raw.get("project_id")),
        "task_source_id": ref_id(raw.get("service_id")),
        "person_source_id": ref_id(raw.get("identity_id")),
        "is_billable": bool(raw.get("billable")),
        "is_running": running,
        "is_invoiced": billed,
        # No approval workflow in FreshBooks; billed entries are locked, so they count as approved.
        "is_approved": billed,
        "notes": text(raw.get("note")),
        # Time entries expose no update stamp. created_at is a safe stand-in for the cursor: an
        # entry edited later is re-sent by `updated_since`, which is never after its creation.
        "updated_at": parse_datetime(raw.get("created_at"), "created_at") or started,
    })


def _invoice(raw: Mapping[str, Any], ctx: Context) -> Invoice | None:
    if _deleted(raw):
        return None
    amount, code = _money(raw.get("amount"), "amount")
    due, due_code = _money(raw.get("outstanding"), "outstanding")
    code = code or due_code or (currency(raw["currency_code"]) if raw.get("currency_code") else None)
    due_date = parse_date(raw.get("due_date"), "due_date")
    state = raw.get("v3_status") or raw.get("payment_status")
    return validated(Invoice, {
        "source": ctx.source,
        "source_id": ref_id(raw.get("id") or raw.get("invoiceid")),
        "client_source_id": ref_id(raw.get("customerid")),
        "number": text(raw.get("invoice_number")),
        "issue_date": parse_date(raw.get("create_date"), "create_date"),
        "due_date": due_date,
        "paid_date": parse_date(raw.get("date_paid"), "date_paid"),
        "amount": amount,
        "due_amount": due,
        "currency": code,
        "status": invoice_status(
            "freshbooks", state, amount=amount, due_amount=due, due_date=due_date, today=ctx.today
        ),
        "subject": text(raw.get("description")),
        "updated_at": _eastern(raw.get("updated"), "updated"),
    })


def _payment(raw: Mapping[str, Any], ctx: Context) -> Payment | None:
    if _deleted(raw):
        return None
    amount, code = _money(raw.get("amount"), "amount")
    return validated(Payment, {
        "source": ctx.source,
        "source_id": ref_id(raw.get("id") or raw.get("logid")),
        "invoice_source_id": ref_id(raw.get("invoiceid")),
        "amount": amount,
        "currency": code,
        "paid_date": require_date(raw.get("date"), "date"),
        "updated_at": _eastern(raw.get("updated"), "updated"),
    })


# --- resources ---------------------------------------------------------------------------

ACCOUNTING = "accounting"  # incremental by search[updated_min]; soft deletes by vis_state
TRACKING = "tracking"  # incremental by updated_since (UTC)

RESOURCES: Mapping[str, Resource] = {
    "clients": Resource(
        "clients", "accounting/account/{account_id}/users/clients", "response.result.clients", _client, Client,
        reconcile=None,  # soft deletes come through deleted_ids()
    ),
    "projects": Resource(
        "projects", "projects/business/{business_id}/projects", "projects", _project, Project,
        params={"skip_group": "true"},
    ),
    "people": Resource(
        "people", "auth/api/v1/businesses/{business_id}/team_members", "response", _person, Person,
        incremental=False,
    ),
    "tasks": Resource(
        "tasks", "comments/business/{business_id}/services", "services", _task, Task, incremental=False,
    ),
    "time_entries": Resource(
        "time_entries", "timetracking/business/{business_id}/time_entries", "time_entries", _time_entry, TimeEntry,
        reconcile="window", params={"team": "true", "include_unlogged": "true"},
    ),
    "invoices": Resource(
        "invoices", "accounting/account/{account_id}/invoices/invoices", "response.result.invoices", _invoice, Invoice,
        reconcile=None,
    ),
    "payments": Resource(
        "payments", "accounting/account/{account_id}/payments/payments", "response.result.payments", _payment, Payment,
        reconcile=None,
    ),
}

# Rates live apart from what they price: services and team members list none themselves.
# `service_rates` is one list for every service (the per-service `service/{id}/rate` would
# cost a request each). `team_member_rates` is the path FreshBooks' web app and third-party
# clients use; it is not in the public reference (UNCONFIRMED), so a 404 or 403 there only
# means team-member rates are unknown, and the portal says so.
RATE_PATHS = {
    "tasks": ("comments/business/{business_id}/service_rates", "service_rates", "service_id"),
    "people": ("timetracking/business/{business_id}/team_member_rates", "team_member_rates", "identity_id"),
}

FAMILY = {
    "clients": ACCOUNTING, "invoices": ACCOUNTING, "payments": ACCOUNTING,
    "projects": TRACKING, "time_entries": TRACKING,
}
ID_OF: Mapping[str, Callable[[Mapping[str, Any]], str | None]] = {"people": _person_id}


def incremental_params(resource: str, since: dt.datetime | None) -> dict[str, str]:
    """The provider's updated-since filter for `resource` (empty when not incremental)."""
    if since is None or not RESOURCES[resource].incremental:
        return {}
    if FAMILY.get(resource) == ACCOUNTING:
        # Day granularity on an Eastern wall-clock field: a day earlier covers the zone shift.
        day = since.astimezone(EASTERN).date() - dt.timedelta(days=1)
        return {"search[updated_min]": day.isoformat()}
    return {"updated_since": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")}


def _pager(resource: str) -> Any:
    if resource == "people":  # team members report meta.total and meta.per_page, no page count
        return PageNumberPager(page_size=PAGE_SIZE, total_pages_path=None, count_path="meta.total")
    path = "response.result.pages" if FAMILY.get(resource) == ACCOUNTING else "meta.pages"
    return PageNumberPager(page_size=PAGE_SIZE, total_pages_path=path)


# --- OAuth ---------------------------------------------------------------------------------


class SecretStore(Protocol):
    """The two store methods the token manager needs (bridge.store.Store provides them)."""

    def get_secret(self, source: str, name: str) -> str | None: ...

    def put_secret(self, source: str, name: str, value: str) -> None: ...


REFRESH_TOKEN = "refresh_token"
SEED_HASH = "refresh_token_seed_sha256"
# The access token and its expiry (epoch seconds) are kept too, so that each `bridge run`
# cycle (a new connector every 5 minutes) reuses it instead of spending the single-use
# refresh token ~288 times a day: a refresh happens only when the access token is near expiry.
ACCESS_TOKEN = "access_token"
ACCESS_EXPIRES = "access_token_expires_at"
REFRESHED_AT = "refreshed_at"


def reauthorize_advice(source: SourceConfig) -> str:
    """The one command that recovers a FreshBooks source whose refresh token is spent or revoked."""
    advice = f"re-authorize with `bridge auth {source.name}`"
    if source.refresh_token_env:
        advice += f" (or put a new refresh token in {source.refresh_token_env})"
    return advice


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class TokenManager:
    """Access tokens in memory; the single-use refresh token persisted before each use of its successor.

    Which refresh token to spend: the one the store holds, unless the environment variable
    holds a token we have never seen (its hash differs from the seed we recorded), which is
    what a person does after re-authorizing. So setting a new token in the env var is the
    whole recovery procedure. If the stored token is refused and the env var holds a
    different one, that one is tried once too (it may be unspent after a crash).

    Retries of the token POST: only faults where the request certainly never reached the
    server (connect errors, connect timeouts) and 429 are retried. After a read timeout or
    a 5xx the server may have consumed the token and issued a successor we never received;
    we fail the run instead (SourceError), and the next run tries the stored token
    once more: if it was consumed, FreshBooks says invalid_grant and the error explains how
    to re-authorize. Token errors are plain SourceErrors, never RetryableSourceError: the
    refresh runs inside the API client's retry loop (headers are read per request), which
    would otherwise resend a possibly spent token.
    """

    def __init__(
        self,
        source: SourceConfig,
        store: SecretStore | None,
        *,
        token_url: str,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 30.0,
        user_agent: str = "clearhours-bridge",
    ) -> None:
        self.source = source
        self.store = store
        self.token_url = token_url
        self.transport = transport
        self.clock = clock
        self.sleep = sleep
        self.timeout = timeout
        self.user_agent = user_agent
        self.refreshes = 0
        self._access: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self._known: list[str] = []  # every token value seen, for scrubbing messages

    @property
    def env_name(self) -> str:
        return self.source.refresh_token_env or "the refresh_token_env variable"

    def secrets(self) -> list[str]:
        return [s for s in self._known if s]

    def access_token(self) -> str:
        """A valid access token: in memory, else the stored one if not near expiry, else refreshed."""
        with self._lock:
            if self._access is None:
                self._load_stored_access()
            if self._access is None or self.clock() >= self._expires_at:
                self._refresh()
            assert self._access is not None
            return self._access

    def on_unauthorized(self) -> bool:
        """HTTP 401 mid-run: the token expired early or was revoked; refresh and retry once."""
        with self._lock:
            self._access = None
            if self.store is not None:
                self.store.put_secret(self.source.name, ACCESS_TOKEN, "")
            self._refresh()
        return True

    def _load_stored_access(self) -> None:
        if self.store is None:
            return
        access = self.store.get_secret(self.source.name, ACCESS_TOKEN)
        expires = _float(self.store.get_secret(self.source.name, ACCESS_EXPIRES), 0.0)
        if access and self.clock() < expires:
            self._known.append(access)
            self._access, self._expires_at = access, expires

    # -- internals --
    def _env_token(self) -> str | None:
        var = self.source.refresh_token_env
        return (os.environ.get(var) or None) if var else None

    def _current_refresh_token(self) -> str:
        if self.store is None:
            raise ConfigError(
                f"sources '{self.source.name}': FreshBooks rotates its refresh token on every use, "
                "so the connector needs the store to keep it; build it with store="
            )
        stored = self.store.get_secret(self.source.name, REFRESH_TOKEN)
        env_value = self._env_token()
        if env_value and _sha256(env_value) != self.store.get_secret(self.source.name, SEED_HASH):
            # A token we have never used: first run, or a fresh authorization after invalid_grant.
            # Remember it as spent before spending it: if we crash before the POST, the next
            # run falls back to it anyway (nothing stored), and it can never shadow a newer
            # stored token afterwards.
            self.store.put_secret(self.source.name, SEED_HASH, _sha256(env_value))
            self._known.append(env_value)
            return env_value
        if stored:
            self._known.append(stored)
            return stored
        if env_value:  # already spent, and nothing stored: FreshBooks will refuse it with advice
            self._known.append(env_value)
            return env_value
        raise ConfigError(
            f"sources '{self.source.name}': not authorized with FreshBooks yet; {reauthorize_advice(self.source)}"
        )

    def _refresh(self) -> None:
        refresh_token = self._current_refresh_token()
        try:
            body = self._grant(refresh_token)
        except AuthError:
            # Another process (`bridge run` while someone ran `bridge check`) may have spent
            # the same token a moment earlier and stored its successor and a fresh access token.
            if self.store is not None and self.store.get_secret(self.source.name, REFRESH_TOKEN) not in (None, refresh_token):
                self._load_stored_access()
                if self._access is not None and self.clock() < self._expires_at:
                    return
            # The stored token was refused, but the env var holds a different one: after a
            # crash between recording a new env token and spending it, that one is unspent.
            env_value = self._env_token()
            if not env_value or env_value == refresh_token:
                raise
            self._known.append(env_value)
            body = self._grant(env_value)
        self._accept(body)

    def _grant(self, refresh_token: str) -> dict[str, Any]:
        payload = {
            "grant_type": "refresh_token",
            "client_id": self.source.secret("client_id_env"),
            "client_secret": self.source.secret("client_secret_env"),
            "refresh_token": refresh_token,
        }
        self._known.append(payload["client_secret"])
        if self.source.redirect_uri:
            payload["redirect_uri"] = self.source.redirect_uri
        return self._post(payload)

    def _accept(self, body: dict[str, Any]) -> None:
        new_refresh, access = body.get("refresh_token"), body.get("access_token")
        if not isinstance(access, str) or not access:
            raise FatalSourceError(
                f"{self.source.name}: the FreshBooks token endpoint answered without an access token",
                source=self.source.name,
            )
        self._known.extend([access, new_refresh or ""])
        assert self.store is not None
        # Persist the successor BEFORE anything uses the new access token: the old refresh
        # token is spent now, and a crash must leave the store holding a usable one.
        if new_refresh:
            self.store.put_secret(self.source.name, REFRESH_TOKEN, new_refresh)
        lifetime = _float(body.get("expires_in"), 12 * 3600.0)
        self._access = access
        self._expires_at = self.clock() + lifetime - min(REFRESH_MARGIN_S, lifetime / 10)
        save_access(self.store, self.source.name, access, self._expires_at, self.clock())
        self.refreshes += 1
        log.info("%s: FreshBooks access token refreshed (valid %.0fs)", self.source.name, lifetime)

    def _post(self, payload: dict[str, str]) -> dict[str, Any]:
        name = self.source.name
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                with httpx.Client(transport=self.transport, timeout=self.timeout, follow_redirects=False) as client:
                    response = client.post(
                        self.token_url, json=payload,
                        headers={"Accept": "application/json", "User-Agent": self.user_agent},
                    )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # The request never left: the refresh token is certainly unspent, so retry.
                if attempt == attempts:
                    raise SourceError(
                        f"{name}: cannot reach the FreshBooks token endpoint ({type(exc).__name__}); "
                        "check base_url/token_url and the network", source=name,
                    ) from None
                self.sleep(min(2.0 ** attempt, 10.0))
                continue
            except httpx.HTTPError as exc:
                raise SourceError(
                    f"{name}: the FreshBooks token refresh did not complete ({type(exc).__name__}); "
                    "the next run retries with the stored refresh token", source=name,
                ) from None
            if response.status_code == 429 and attempt < attempts:
                # Rejected before processing: the token was not consumed.
                wait = parse_retry_after(response.headers.get("Retry-After")) or 2.0 ** attempt
                self.sleep(min(wait, 60.0))
                continue
            return self._decode(response)
        raise SourceError(f"{name}: the FreshBooks token endpoint keeps rate limiting", source=name)

    def _decode(self, response: httpx.Response) -> dict[str, Any]:
        name, status = self.source.name, response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {}
        if 200 <= status < 300 and isinstance(body, dict):
            return body
        error = str(body.get("error") or "") if isinstance(body, dict) else ""
        if status in (400, 401, 403) and error in ("invalid_grant", ""):
            raise AuthError(
                f"{name}: FreshBooks refused the refresh token (HTTP {status} {error or 'error'}); it was "
                f"already used (a refresh whose answer was lost, or another store holding a copy) or "
                f"revoked: {reauthorize_advice(self.source)}",
                source=name,
            )
        if status in (400, 401, 403):
            said = scrub(str(body.get("error_description") or "")[:200], self.secrets())
            raise AuthError(
                f"{name}: FreshBooks refused the token refresh (HTTP {status} {error}): {said} "
                f"Check the client id and secret in {self.source.client_id_env} and "
                f"{self.source.client_secret_env}, or {reauthorize_advice(self.source)}",
                source=name,
            )
        raise SourceError(
            f"{name}: the FreshBooks token endpoint answered HTTP {status}; the refresh token may or "
            "may not have been spent; the next run retries with the stored one", source=name,
        )


def save_access(store: SecretStore, source: str, access: str, expires_at: float, now: float) -> None:
    """Keep the access token for later processes (written after its refresh token, see _accept)."""
    store.put_secret(source, ACCESS_TOKEN, access)
    store.put_secret(source, ACCESS_EXPIRES, f"{expires_at:.0f}")
    store.put_secret(source, REFRESHED_AT, f"{now:.0f}")


def _float(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


# --- the connector -------------------------------------------------------------------------


@dataclass(frozen=True)
class Tenant:
    account_id: str
    business_id: str


class FreshBooksConnector:
    """Wiring only: tokens, tenant ids, paths, pagers. Records come from the normalizers above."""

    kind: ClassVar[str] = "freshbooks"
    resources: ClassVar[Mapping[str, Resource]] = RESOURCES

    def __init__(
        self,
        source: SourceConfig,
        *,
        store: SecretStore | None = None,
        tz: ZoneInfo | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        clock = clock or time.time
        sleep = sleep or time.sleep
        # Fail on missing app credentials now, before any network call (ConfigError names the var).
        source.secret("client_id_env")
        source.secret("client_secret_env")
        self.source = source
        self.name = source.name
        self.tz = tz or ZoneInfo("UTC")
        base = (source.base_url or BASE_URL).rstrip("/")
        self.tokens = TokenManager(
            source, store, token_url=source.token_url or f"{base}/{TOKEN_PATH}", transport=transport,
            clock=clock, sleep=sleep, timeout=source.timeout_seconds, user_agent=source.user_agent,
        )
        self.http = client_for(
            source, base_url=base, windows=[DEFAULT_RATE], headers=self._headers,
            on_unauthorized=self.tokens.on_unauthorized, secrets=self.tokens.secrets, limiter=limiter,
            transport=transport, retry=retry, sleep=sleep, clock=clock,
            auth_advice=reauthorize_advice(source),
        )
        # Per instance: the project normalizer gets this source's budget unit bound in.
        self.resources = {
            **RESOURCES,
            "projects": replace(RESOURCES["projects"], normalize=functools.partial(_project, budget_unit=source.budget_unit)),
        }
        self.identity = Identity(self._me)
        self._tenant: Tenant | None = None
        if source.account_id and source.business_id:
            self._tenant = Tenant(str(source.account_id), str(source.business_id))

    @property
    def requests(self) -> int:
        return self.http.requests

    def _headers(self) -> dict[str, str]:
        # No Content-Type: FreshBooks asks for none on project/time-tracking GETs.
        return {
            "Authorization": f"Bearer {self.tokens.access_token()}",
            "Accept": "application/json",
            "User-Agent": self.source.user_agent,
        }

    def check(self) -> None:
        self.identity.remember(self._me())

    def access(self) -> Access:
        """Who authorized the app and which resources it may list (one request each)."""
        me = self.identity.remember(self._me())
        readable: dict[str, bool] = {}
        for name in RESOURCES:
            try:
                self.http.get_json(self._path(name), {**RESOURCES[name].params, "page": 1, "per_page": 1}, resource=name)
                readable[name] = True
            except ForbiddenError:
                readable[name] = False
        who = " ".join(str(dig(me, f"response.{k}") or "") for k in ("first_name", "last_name")).strip()
        return Access(
            who=who or "the authorizing user", readable=readable,
            advice={r: _permission_advice(r) for r, ok in readable.items() if not ok},
        )

    def _bodies(
        self, resource: str, params: Mapping[str, Any], resume: str | None = None
    ) -> Iterator[tuple[Any, str | None]]:
        """Pages of one resource; a 403 after a working users/me skips only this resource."""
        return guarded(
            _pager(resource).pages(self.http, self._path(resource), params, resume=resume, resource=resource),
            identity=self.identity, source=self.name, resource=resource,
            advice=lambda me: _permission_advice(resource),
        )

    def _me(self) -> Any:
        return self.http.get_json("auth/api/v1/users/me", resource="users/me")

    def tenant(self) -> Tenant:
        """account_id and business_id: configured, or discovered from the user's memberships."""
        if self._tenant is None:
            self._tenant = _pick_tenant(self._me(), self.source)
        return self._tenant

    def _path(self, resource: str) -> str:
        t = self.tenant()
        return RESOURCES[resource].path.format(account_id=t.account_id, business_id=t.business_id)

    def pages(
        self,
        resource: str,
        since: dt.datetime | None,
        *,
        resume: str | None = None,
        parent_id: str | None = None,
    ) -> Iterator[Page]:
        res = RESOURCES[resource]
        params = {**res.params, **incremental_params(resource, since)}
        rates: dict[str, Any] | None = None
        for body, token in self._bodies(resource, params, resume):
            items = _items(body, res, self.name)
            if resource in RATE_PATHS:
                if rates is None:  # once per run, after the list itself answered
                    rates = self._rates(resource)
                key = ID_OF.get(resource, lambda raw: ref_id(raw.get("id")))
                items = [{**raw, "rate": rates.get(key(raw) or "")} for raw in items]
            yield Page(items, token)

    def _rates(self, resource: str) -> dict[str, Any]:
        """id -> rate string, from the list FreshBooks keeps beside `resource`; {} if refused."""
        template, items_key, id_key = RATE_PATHS[resource]
        t = self.tenant()
        path = template.format(account_id=t.account_id, business_id=t.business_id)
        out: dict[str, Any] = {}
        page = 1
        try:
            while True:
                body = self.http.get_json(path, {"page": page, "per_page": PAGE_SIZE}, resource=f"{resource} rates")
                rows = dig(body, items_key) or []
                if not isinstance(rows, list):
                    raise FatalSourceError(
                        f"{self.name}: {items_key} page has no list; the API shape changed", source=self.name, resource=resource,
                    )
                for row in rows:
                    if isinstance(row, Mapping) and row.get(id_key) is not None and row.get("rate") not in (None, ""):
                        out[str(row[id_key])] = row["rate"]
                pages = dig(body, "meta.pages")
                if not isinstance(pages, int) or page >= pages or not rows:
                    return out
                page += 1
        except (AuthError, FatalSourceError) as exc:
            if resource != "people" and not isinstance(exc, AuthError):
                raise
            # a token without rate permission, or no team-member rates endpoint: rates unknown
            log.warning("%s: %s rates not available (%s); their time is valued only where another rate applies",
                        self.name, resource, str(exc)[:200])
            return {}

    def ids(self, resource: str, window_start: dt.date | None) -> Iterator[str]:
        res = RESOURCES[resource]
        params = dict(res.params)
        if resource == "time_entries" and window_start is not None:
            # Entries carry only a UTC start; a day of margin covers any agency zone. Extra ids
            # outside the window are harmless: the store reconciles only rows inside it.
            start = dt.datetime.combine(window_start - dt.timedelta(days=1), dt.time(0), UTC)
            params["started_from"] = start.strftime("%Y-%m-%dT%H:%M:%S")
        id_of = ID_OF.get(resource, lambda raw: ref_id(raw.get("id")))
        for body, _ in self._bodies(resource, params):
            for raw in _items(body, res, self.name):
                if not _deleted(raw):
                    sid = id_of(raw)
                    if sid:
                        yield sid

    def deleted_ids(self, resource: str, since: dt.datetime | None) -> Iterator[str]:
        """Accounting objects soft-deleted since `since` (vis_state 1); nothing for the rest."""
        if FAMILY.get(resource) != ACCOUNTING:
            return
        res = RESOURCES[resource]
        params = {**res.params, **incremental_params(resource, since), "search[vis_state]": "1"}
        for body, _ in self._bodies(resource, params):
            for raw in _items(body, res, self.name):
                if _deleted(raw) and raw.get("id") is not None:
                    yield str(raw["id"])

    def close(self) -> None:
        self.http.close()


def _permission_advice(resource: str) -> str:
    return (
        f"in FreshBooks, the user who authorized the app needs access to {resource} (the business owner or an "
        "admin sees everything; an employee sees only their own time), or authorize the app as such a user."
    )


def _items(body: Any, res: Resource, source: str) -> list[Mapping[str, Any]]:
    items = dig(body, res.items_key)
    if items is None:
        items = []
    if not isinstance(items, list):
        raise FatalSourceError(
            f"{source}: {res.name} page has no list at {res.items_key!r}; the API shape changed",
            source=source, resource=res.name,
        )
    return items


def _pick_tenant(me: Any, source: SourceConfig) -> Tenant:
    memberships = dig(me, "response.business_memberships") or []
    found = [
        Tenant(str(b.get("account_id")), str(b.get("id")))
        for m in memberships if isinstance(m, Mapping) and isinstance(b := m.get("business"), Mapping)
    ]
    wanted = [
        t for t in found
        if (not source.account_id or t.account_id == str(source.account_id))
        and (not source.business_id or t.business_id == str(source.business_id))
    ]
    if len(wanted) == 1:
        return wanted[0]
    listing = ", ".join(f"business_id {t.business_id} (account_id {t.account_id})" for t in found) or "none"
    if not wanted:
        raise ConfigError(
            f"sources '{source.name}': this FreshBooks user has no matching business; memberships: {listing}"
        )
    raise ConfigError(
        f"sources '{source.name}': this FreshBooks user belongs to several businesses; set business_id "
        f"(and account_id) in the config to one of: {listing}"
    )
