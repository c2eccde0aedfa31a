"""FreshBooks in its wire shapes, mounted at /freshbooks (base_url = http://HOST:PORT/freshbooks).

OAuth, authorization code: `GET /oauth/authorize?client_id=…&response_type=code&redirect_uri=…`
stands in for auth.freshbooks.com's login and consent page: it approves at once and answers 302
to `redirect_uri?code=…` (a code lives 5 minutes and works once, for that redirect_uri); then
`POST /auth/oauth/token` with grant_type=authorization_code, code, redirect_uri, client_id and
client_secret answers the first access and refresh tokens.
OAuth, refresh: `POST /auth/oauth/token` (JSON or form body) with grant_type=refresh_token, client_id,
client_secret and refresh_token answers a Bearer access token living `access_lifetime` seconds
(12 h by default; tests make it short) and a NEW refresh token. Refresh tokens are single use:
a spent one is answered 400 invalid_grant. Tokens are signed with the client secret, so a
restarted sandbox (`bridge demo` again) still honours the latest token a connector stored;
the spent-token memory is per sandbox. Expired or unknown access tokens get 401 with the
endpoint family's error body (tests/fixtures/freshbooks/errors.json).

Paths: identity `/auth/api/v1/users/me`, team `/auth/api/v1/businesses/{business_id}/team_members`,
accounting `/accounting/account/{account_id}/{users/clients,invoices/invoices,payments/payments}`,
`/projects/business/{business_id}/projects`, `/comments/business/{business_id}/services`
(rates: `…/service_rates`, `…/service/{id}/rate`), `/timetracking/business/{business_id}/time_entries`
and `…/team_member_rates`. Paging is `page`/`per_page` (silently
capped at 100; page 0 is page 1; past the end is an empty list); accounting bodies carry
`page, pages, per_page, total` in `response.result`, projects/services/time in `meta`, team
members only `meta.total`. Incremental: `updated_since` (UTC, inclusive) on projects and time
entries; `search[updated_min]` (a date, compared with the US/Eastern `updated` stamp) on
accounting lists, which hide `vis_state` 1 (deleted) rows unless `search[vis_state]=1` asks for
exactly those.

Mapping from the neutral agency: ids are kept; a person is an identity (`identity_id`); tasks
are services; money is `{"amount": "1222.00", "code": "EUR"}`; durations integer seconds; a
time entry starts on its day in the team member's zone (FreshBooks has no booking date) and
carries `local_started_at`/`local_timezone` as recorded responses do; a running
timer is `is_logged: false` + `timer.is_running` (listed only with include_unlogged=true) with
duration 0; FreshBooks has no void invoices, so a void invoice is a deleted one (vis_state 1);
hours budgets are seconds, a fixed-fee project's budget is its `fixed_price`, and budgets a
FreshBooks project cannot hold (money on hourly projects, monthly resets) are absent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from connectors.sandbox import (
    FRESHBOOKS_ACCOUNT_ID,
    FRESHBOOKS_BUSINESS_ID,
    FRESHBOOKS_CLIENT_ID,
    FRESHBOOKS_CLIENT_SECRET,
    FRESHBOOKS_REFRESH_TOKEN,
)
from connectors.sandbox.agency import Agency, Client, Entry, Invoice, Payment, Person, Project, Task, from_epoch
from connectors.sandbox.server import BadRequest, RateRule, Request, Response, Router, VersionCache, date_arg, int_arg, json_response

NAME = "freshbooks"
PREFIX = "/freshbooks"
# FreshBooks publishes no limit; this one is generous enough for a polite client (10/s).
RATE_LIMITS = [RateRule(150, 10.0)]
MAX_PER_PAGE = 100

CLIENT_ID = FRESHBOOKS_CLIENT_ID
CLIENT_SECRET = FRESHBOOKS_CLIENT_SECRET
ACCOUNT_ID = FRESHBOOKS_ACCOUNT_ID
BUSINESS_ID = int(FRESHBOOKS_BUSINESS_ID)
FIRST_REFRESH_TOKEN = FRESHBOOKS_REFRESH_TOKEN

UTC = dt.timezone.utc
EASTERN = ZoneInfo("America/New_York")
ERRORS = {
    "auth_401": {"error": "unauthenticated", "error_description": "This action requires authentication to continue."},
    "projects_401": {"message": (
        "The server could not verify that you are authorized to access the URL requested. You either supplied "
        "the wrong credentials (e.g. a bad password), or your browser doesn't understand how to supply the "
        "credentials required.")},
    "accounting_401": {"response": {"errors": [{
        "errno": 1003, "field": "userid", "object": "client", "value": None,
        "message": "The server could not verify that you are authorized to access that URL."}]}},
    "invalid_grant": {"error": "invalid_grant", "error_description": (
        "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used "
        "in the authorization request, or was issued to another client.")},
    "invalid_client": {"error": "invalid_client", "error_description": (
        "Client authentication failed due to unknown client, no client authentication included, or "
        "unsupported authentication method.")},
    "projects_404": {"error": "Requested resource could not be found."},
}


@dataclass
class FreshBooksState(VersionCache):
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    account_id: str = ACCOUNT_ID
    business_id: int = BUSINESS_ID
    first_refresh_token: str = FIRST_REFRESH_TOKEN
    access_lifetime: int = 43200
    clock: Callable[[], float] = time.time  # token expiry only; tests move it
    access: dict[str, float] = field(default_factory=dict)  # access token -> expires at
    spent: set[str] = field(default_factory=set)  # refresh tokens already used
    codes: dict[str, tuple[str, float]] = field(default_factory=dict)  # auth code -> (redirect_uri, expires at)
    refreshes: int = 0
    caches: dict[Any, Any] = field(default_factory=dict)

    def sign(self, nonce: str) -> str:
        return hmac.new(self.client_secret.encode(), nonce.encode(), hashlib.sha256).hexdigest()[:24]

    def issue_refresh(self) -> str:
        nonce = secrets.token_hex(12)
        return f"fbrt-{nonce}.{self.sign(nonce)}"

    def refresh_is_valid(self, token: str) -> bool:
        if token in self.spent:
            return False
        if token == self.first_refresh_token:
            return True
        nonce, _, mac = token.removeprefix("fbrt-").partition(".")
        return token.startswith("fbrt-") and hmac.compare_digest(mac, self.sign(nonce))


def make_state(agency: Agency, **options: Any) -> FreshBooksState:
    return FreshBooksState(**options)




ROUTES = Router(lambda request: json_response(ERRORS["projects_404"], 404))


def handle(request: Request, agency: Agency, state: FreshBooksState) -> Response:
    if request.method == "POST" and request.path == "/auth/oauth/token":
        return token(request, state)
    if request.method == "GET" and request.path == "/oauth/authorize":
        return authorize(request, state)
    auth = request.header("Authorization") or ""
    bearer = auth[len("Bearer "):].strip() if auth.startswith("Bearer ") else ""
    expires = state.access.get(bearer)
    if expires is None or state.clock() >= expires:
        return json_response(_unauthorized_body(request.path), 401)
    try:
        return ROUTES.handle(request, agency, state)
    except BadRequest as exc:
        return json_response({"response": {"errors": [{"errno": 2001, "message": str(exc)}]}}, 400)


def _unauthorized_body(path: str) -> Any:
    if path.startswith("/auth/"):
        return ERRORS["auth_401"]
    if path.startswith("/accounting/"):
        return ERRORS["accounting_401"]
    return ERRORS["projects_401"]


# ---- OAuth -------------------------------------------------------------------------------------
def token(request: Request, state: FreshBooksState) -> Response:
    content_type = request.header("Content-Type") or ""
    try:
        body = request.json() if "json" in content_type else request.form()
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        return json_response({"error": "invalid_request", "error_description": "The request is missing a required parameter."}, 400)
    if body.get("client_id") != state.client_id or body.get("client_secret") != state.client_secret:
        return json_response(ERRORS["invalid_client"], 401)
    grant = body.get("grant_type")
    if grant == "authorization_code":
        code = str(body.get("code") or "")
        issued = state.codes.pop(code, None)  # a code works once, even when refused
        if issued is None or state.clock() >= issued[1] or str(body.get("redirect_uri") or "") != issued[0]:
            return json_response(ERRORS["invalid_grant"], 400)
    elif grant == "refresh_token":
        presented = str(body.get("refresh_token") or "")
        if not state.refresh_is_valid(presented):
            return json_response(ERRORS["invalid_grant"], 400)
        state.spent.add(presented)
    else:
        return json_response({"error": "unsupported_grant_type",
                              "error_description": "The authorization grant type is not supported by the authorization server."}, 400)
    state.refreshes += 1
    access = "fbat-" + secrets.token_hex(16)
    now = state.clock()
    state.access[access] = now + state.access_lifetime
    return json_response({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": state.access_lifetime,
        "refresh_token": state.issue_refresh(),
        "scope": "user:profile:read user:clients:read user:projects:read user:time_entries:read "
                 "user:invoices:read user:payments:read user:teams:read",
        "created_at": int(now),
    })


def authorize(request: Request, state: FreshBooksState) -> Response:
    """The consent page, approved at once: 302 to the redirect URI with a fresh code."""
    from urllib.parse import urlencode

    redirect_uri = request.arg("redirect_uri") or ""
    if request.arg("client_id") != state.client_id or request.arg("response_type") != "code" or \
            not redirect_uri.startswith(("http://", "https://")):
        return Response(400, "<h1>Invalid authorization request</h1><p>Unknown client_id, or "
                        "response_type is not code, or no redirect_uri.</p>", {}, "text/html; charset=utf-8")
    code = secrets.token_hex(20)
    state.codes[code] = (redirect_uri, state.clock() + 300)
    query = {"code": code}
    if request.arg("state"):
        query["state"] = str(request.arg("state"))
    sep = "&" if "?" in redirect_uri else "?"
    return Response(302, "", {"Location": f"{redirect_uri}{sep}{urlencode(query)}"}, "text/html; charset=utf-8")


# ---- formatting --------------------------------------------------------------------------------
def utc_z(value: dt.datetime | int | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, int):
        value = from_epoch(value)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_naive(value: dt.datetime | None) -> str | None:
    """Projects print UTC without the Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if value else None


def eastern(value: dt.datetime | None) -> str | None:
    """Accounting stamps: US/Eastern wall clock, no offset."""
    return value.astimezone(EASTERN).strftime("%Y-%m-%d %H:%M:%S") if value else None


def amount(value: Decimal | None) -> str | None:
    return str(value.quantize(Decimal("0.01"))) if value is not None else None


def money(value: Decimal, code: str) -> dict[str, str]:
    return {"amount": str(value.quantize(Decimal("0.01"))), "code": code}


# ---- query parameters --------------------------------------------------------------------------


def _bool_arg(request: Request, name: str) -> bool | None:
    raw = request.arg(name)
    if raw in (None, ""):
        return None
    return raw.lower() in ("true", "1")


def _utc_arg(request: Request, name: str) -> dt.datetime | None:
    raw = request.arg(name)
    if raw in (None, ""):
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} is not a date-time") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)




def _window(request: Request, default_per_page: int, total: int) -> tuple[int, int, int, slice]:
    per_page = min(MAX_PER_PAGE, max(1, int_arg(request, "per_page", default_per_page) or default_per_page))
    page = max(1, int_arg(request, "page", 1) or 1)
    pages = max(1, math.ceil(total / per_page))
    return page, per_page, pages, slice((page - 1) * per_page, page * per_page)


def accounting_page(request: Request, key: str, items: Sequence[Any], render: Callable[[Any], dict[str, Any]]) -> Response:
    page, per_page, pages, window = _window(request, 15, len(items))
    return json_response({"response": {"result": {
        key: [render(i) for i in items[window]], "page": page, "pages": pages, "per_page": per_page, "total": len(items),
    }}})


def meta_page(request: Request, key: str, items: Sequence[Any], render: Callable[[Any], dict[str, Any]]) -> Response:
    page, per_page, pages, window = _window(request, 30, len(items))
    return json_response({key: [render(i) for i in items[window]],
                          "meta": {"total": len(items), "per_page": per_page, "page": page, "pages": pages}})


def _accounting_filter(request: Request, rows: list[tuple[Any, dt.datetime, int]]) -> list[Any]:
    """rows: (item, updated, vis_state). search[updated_min/max] compare Eastern dates."""
    low, high = date_arg(request, "search[updated_min]"), date_arg(request, "search[updated_max]")
    vis = int_arg(request, "search[vis_state]")
    out = []
    for item, updated, vis_state in rows:
        if vis_state != vis if vis is not None else vis_state == 1:  # deleted rows only on request
            continue
        day = updated.astimezone(EASTERN).date()
        if low is not None and day < low or high is not None and day > high:
            continue
        out.append(item)
    return out


def _check_account(state: FreshBooksState, account_id: str) -> None:
    if account_id != state.account_id:
        raise LookupError


def _check_business(state: FreshBooksState, business_id: str) -> None:
    if int(business_id) != state.business_id:
        raise LookupError


def _guard(fn: Callable[..., Response]) -> Callable[..., Response]:
    """Unknown account/business ids answer the family's 404."""

    def wrapped(request: Request, agency: Agency, state: FreshBooksState, **groups: str) -> Response:
        try:
            return fn(request, agency, state, **groups)
        except LookupError:
            if request.path.startswith("/accounting/"):
                return json_response({"response": {"errors": [{
                    "errno": 1012, "field": "accountid", "message": "Account not found.", "object": "account",
                    "value": groups.get("account_id")}]}}, 404)
            return json_response(ERRORS["projects_404"], 404)

    wrapped.__name__ = fn.__name__
    return wrapped


# ---- identity and team -------------------------------------------------------------------------
def _uuid(kind: str, value: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"freshbooks-sandbox/{kind}/{value}"))


@ROUTES.get("/auth/api/v1/users/me")
def users_me(request: Request, agency: Agency, state: FreshBooksState) -> Response:
    owner = agency.owner
    return json_response({"response": {
        "id": owner.id, "identity_id": owner.id, "identity_uuid": _uuid("identity", owner.id),
        "first_name": owner.first_name, "last_name": owner.last_name, "email": owner.email, "language": "en",
        "confirmed_at": utc_z(owner.created_at), "created_at": utc_z(owner.created_at),
        "unconfirmed_email": None, "setup_complete": True,
        "groups": [{"id": 55101, "group_id": 4401, "role": "owner", "identity_id": owner.id,
                    "identity_uuid": _uuid("identity", owner.id), "business_id": state.business_id, "active": True}],
        "business_memberships": [{
            "id": 140901, "role": "owner", "unacknowledged_change": False,
            "business": {
                "id": state.business_id, "business_uuid": _uuid("business", state.business_id), "name": agency.name,
                "account_id": state.account_id, "timezone": agency.timezone, "date_format": "dd/mm/yyyy",
                "address": {"id": 76501, "street": "Hafenstraße 1", "city": "Hamburg", "province": "HH",
                            "country": "Germany", "postal_code": "20457"},
                "phone_number": {"id": 666201, "phone_number": "+49 40 555 0100"}, "business_clients": [],
            },
        }],
        "links": {"me": f"/service/auth/api/v1/users?id={owner.id}", "roles": f"/service/auth/api/v1/users/role/{owner.id}"},
        "permissions": {state.account_id: {}},
        "subscription_statuses": {state.account_id: "active"},
    }})


def team_member(p: Person, state: FreshBooksState) -> dict[str, Any]:
    role = "owner" if p.is_admin else ("business_contractor" if p.is_contractor else "business_employee")
    return {
        "uuid": _uuid("member", p.id), "first_name": p.first_name, "middle_name": None, "last_name": p.last_name,
        "email": p.email, "job_title": p.roles[0] if p.roles else None, "street_1": None, "street_2": None,
        "city": None, "province": None, "country": None, "postal_code": None, "phone_number": None,
        "business_id": state.business_id, "business_role_name": role, "active": p.is_active, "identity_id": p.id,
        "invitation_date_accepted": utc_z(p.created_at), "created_at": utc_z(p.created_at),
        "updated_at": utc_z(p.updated_at),
    }


@ROUTES.get(r"/auth/api/v1/businesses/(?P<business_id>\d+)/team_members")
@_guard
def team_members(request: Request, agency: Agency, state: FreshBooksState, business_id: str) -> Response:
    _check_business(state, business_id)
    active = _bool_arg(request, "active")
    people = [p for p in sorted(agency.people.values(), key=lambda p: p.id) if active is None or p.is_active == active]
    page, per_page, _, window = _window(request, 15, len(people))
    # no "pages" here: FreshBooks gives only the total
    return json_response({"response": [team_member(p, state) for p in people[window]],
                          "meta": {"page": page, "per_page": per_page, "total": len(people)}})


# ---- clients -----------------------------------------------------------------------------------
def client(c: Client, state: FreshBooksState) -> dict[str, Any]:
    lines = (c.address or "").split("\n")
    return {
        "accounting_systemid": state.account_id, "allow_late_fees": False, "allow_late_notifications": True,
        "bus_phone": "", "currency_code": c.currency, "email": c.email, "fax": "", "fname": "", "lname": "",
        "has_retainer": None, "home_phone": None, "id": c.id, "language": "en", "level": 0, "mob_phone": "",
        "note": None, "organization": c.name, "p_city": lines[1] if len(lines) > 1 else "", "p_code": "",
        "p_country": lines[-1] if len(lines) > 2 else "", "p_province": "", "p_street": lines[0],
        "p_street2": "", "retainer_id": None, "role": "client", "s_city": "", "s_code": "", "s_country": "",
        "s_province": "", "s_street": "", "s_street2": "", "signup_date": utc_naive(c.created_at).replace("T", " "),
        "updated": eastern(c.updated_at), "userid": c.id, "username": c.email.split("@")[0],
        "uuid": _uuid("client", c.id), "vat_name": None, "vat_number": None,
        "vis_state": 0 if c.is_active else 2, "allow_email_include_pdf": False, "company_industry": None,
        "company_size": None, "direct_link_token": None, "last_activity": None, "last_login": None,
        "notified": False, "num_logins": 0, "pref_email": True, "pref_gmail": False, "statement_token": None,
        "subdomain": None,
    }


@ROUTES.get(r"/accounting/account/(?P<account_id>[^/]+)/users/clients")
@_guard
def clients(request: Request, agency: Agency, state: FreshBooksState, account_id: str) -> Response:
    _check_account(state, account_id)
    rows = [(c, c.updated_at, 0 if c.is_active else 2) for c in sorted(agency.clients.values(), key=lambda c: c.id)]
    return accounting_page(request, "clients", _accounting_filter(request, rows), lambda c: client(c, state))


# ---- services and projects ---------------------------------------------------------------------
def service(t: Task, state: FreshBooksState) -> dict[str, Any]:
    return {"business_id": state.business_id, "id": t.id, "name": t.name, "billable": t.billable_by_default,
            "vis_state": 0 if t.is_active else 2}


@ROUTES.get(r"/comments/business/(?P<business_id>\d+)/services")
@_guard
def services(request: Request, agency: Agency, state: FreshBooksState, business_id: str) -> Response:
    _check_business(state, business_id)
    items = sorted(agency.tasks.values(), key=lambda t: t.id)
    return meta_page(request, "services", items, lambda t: service(t, state))


def service_rate(t: Task, state: FreshBooksState) -> dict[str, Any]:
    return {"business_id": state.business_id, "service_id": t.id, "rate": amount(t.hourly_rate)}


@ROUTES.get(r"/comments/business/(?P<business_id>\d+)/service_rates")
@_guard
def service_rates(request: Request, agency: Agency, state: FreshBooksState, business_id: str) -> Response:
    """Every service that has a rate (a service without one is simply not listed)."""
    _check_business(state, business_id)
    items = [t for t in sorted(agency.tasks.values(), key=lambda t: t.id) if t.hourly_rate is not None]
    return meta_page(request, "service_rates", items, lambda t: service_rate(t, state))


@ROUTES.get(r"/comments/business/(?P<business_id>\d+)/service/(?P<service_id>\d+)/rate")
@_guard
def one_service_rate(request: Request, agency: Agency, state: FreshBooksState, business_id: str, service_id: str) -> Response:
    _check_business(state, business_id)
    t = agency.tasks.get(int(service_id))
    if t is None or t.hourly_rate is None:
        raise LookupError
    return json_response({"service_rate": service_rate(t, state)})


@ROUTES.get(r"/timetracking/business/(?P<business_id>\d+)/team_member_rates")
@_guard
def team_member_rates(request: Request, agency: Agency, state: FreshBooksState, business_id: str) -> Response:
    _check_business(state, business_id)
    items = sorted(agency.people.values(), key=lambda p: p.id)
    return meta_page(request, "team_member_rates", items, lambda p: {
        "business_id": state.business_id, "identity_id": p.id, "rate": amount(p.hourly_rate)})


def billing_method(p: Project, agency: Agency) -> str:
    """Where FreshBooks finds the rate of this project's time, matching the agency's own rule
    (project rate, else the task's, else the person's)."""
    if p.hourly_rate:
        return "project_rate"
    billable = [agency.tasks[t] for t in p.task_ids if agency.tasks[t].billable_by_default]
    if billable and all(t.hourly_rate is not None for t in billable):
        return "service_rate"
    return "team_member_rate"


def _logged(agency: Agency, state: FreshBooksState) -> dict[int, int]:
    def build() -> dict[int, int]:
        out: dict[int, int] = {}
        for e in agency.entries.values():
            if not e.is_running:
                out[e.project_id] = out.get(e.project_id, 0) + e.seconds
        return out

    return state.cached("logged", agency.version, build)


def project(p: Project, agency: Agency, state: FreshBooksState, *, group: bool, logged: dict[int, int] | None) -> dict[str, Any]:
    fixed = p.is_fixed_fee and p.fee is not None
    budget = int(p.budget * 3600) if p.budget_kind == "hours" and p.budget is not None else None
    billed = sum((i.amount for i in agency.invoices.values() if i.project_id == p.id and i.state != "void"), Decimal(0))
    out: dict[str, Any] = {
        "id": p.id, "title": p.name, "description": p.notes, "due_date": p.ends_on.isoformat() if p.ends_on else None,
        "client_id": p.client_id, "internal": not p.is_billable, "budget": budget,
        "fixed_price": amount(p.fee) if fixed else None, "rate": amount(p.hourly_rate),
        "billing_method": billing_method(p, agency),
        "project_type": "fixed_price" if fixed else "hourly_rate", "project_manager_id": p.manager_id,
        "active": p.is_active, "complete": not p.is_active, "sample": False,
        "created_at": utc_naive(p.created_at), "updated_at": utc_naive(p.updated_at),
        "services": [service(agency.tasks[t], state) for t in p.task_ids],
        "billed_amount": amount(billed), "billed_status": "billed" if billed and not p.is_active else (
            "partially_billed" if billed else "unbilled"),
        "retainer_id": None, "expense_markup": "0", "group_id": 900000 + p.id % 1000,
    }
    if logged is not None:
        out["logged_duration"] = logged.get(p.id, 0)
    if group:
        members = [agency.people[i] for i in p.person_ids]
        out["group"] = {"id": 900000 + p.id % 1000, "pending_invitations": [], "members": [
            {"first_name": m.first_name, "last_name": m.last_name, "role": "owner" if m.is_admin else "member",
             "identity_id": m.id, "active": m.is_active, "company": agency.name, "id": 700000 + m.id % 1000,
             "email": m.email} for m in members]}
    return out


@ROUTES.get(r"/projects/business/(?P<business_id>\d+)/projects")
@_guard
def projects(request: Request, agency: Agency, state: FreshBooksState, business_id: str) -> Response:
    _check_business(state, business_id)
    since = _utc_arg(request, "updated_since")
    active, complete = _bool_arg(request, "active"), _bool_arg(request, "complete")
    items = [
        p for p in sorted(agency.projects.values(), key=lambda p: p.id)
        if (since is None or p.updated_at >= since)
        and (active is None or p.is_active == active)
        and (complete is None or (not p.is_active) == complete)
    ]
    logged = _logged(agency, state) if _bool_arg(request, "include_logged_duration") else None
    group = not _bool_arg(request, "skip_group")
    return meta_page(request, "projects", items, lambda p: project(p, agency, state, group=group, logged=logged))


# ---- time entries ------------------------------------------------------------------------------
def person_zone(e: Entry, agency: Agency) -> ZoneInfo:
    person = agency.people.get(e.person_id)
    return ZoneInfo(person.timezone if person is not None else agency.timezone)


def started_at(e: Entry, agency: Agency) -> dt.datetime:
    """FreshBooks keeps a start instant, not a day. The entry starts on its day in the team
    member's own zone, between 07:00 and 18:00 (spread by id), so early and late work lies on
    another UTC or agency day: a connector that takes the day from the UTC start in the
    agency's zone books some of it a day off."""
    if e.is_running and e.timer_started_at is not None:
        return from_epoch(e.timer_started_at)
    hour = 7 + e.id % 12
    return dt.datetime.combine(e.spent_date, dt.time(hour, 0), person_zone(e, agency)).astimezone(UTC)


def local_started_at(e: Entry, agency: Agency) -> str:
    """Recorded shape: the team member's wall clock without offset, next to `local_timezone`."""
    return started_at(e, agency).astimezone(person_zone(e, agency)).replace(tzinfo=None).isoformat(timespec="seconds")


def time_entry(e: Entry, agency: Agency, *, active: bool = True) -> dict[str, Any]:
    p = agency.projects[e.project_id]
    malformed = agency.malformed.get(e.id) if agency.malformed else None
    start = utc_z(started_at(e, agency))
    if malformed == "bad_date":
        start = f"{e.spent_date.year}-02-30T09:00:00Z"
    return {
        "id": e.id, "identity_id": e.person_id, "is_logged": not e.is_running, "started_at": start,
        "local_started_at": local_started_at(e, agency), "local_timezone": person_zone(e, agency).key,
        "created_at": utc_z(e.created_at), "client_id": p.client_id, "project_id": p.id, "pending_client": None,
        "pending_project": None, "pending_task": None, "task_id": None, "service_id": e.task_id, "note": e.notes,
        "active": active, "billable": e.billable, "billed": e.invoice_id is not None, "internal": not p.is_billable,
        "retainer_id": None, "duration": "1h30" if malformed == "bad_duration" else (0 if e.is_running else e.seconds),
        "timer": {"id": 70000 + e.id % 10000, "is_running": True} if e.is_running else None,
    }


def _entry_key(request: Request) -> tuple[Any, ...]:
    since, start, end = (_utc_arg(request, n) for n in ("updated_since", "started_from", "started_to"))
    return (
        "time_entries", since, start, end, _bool_arg(request, "team") is True,
        _bool_arg(request, "include_unlogged") is True, int_arg(request, "client_id"),
        int_arg(request, "project_id"), int_arg(request, "identity_id"), _bool_arg(request, "billable"),
        _bool_arg(request, "billed"),
    )


def _select_entries(agency: Agency, state: FreshBooksState, key: tuple[Any, ...]) -> list[Entry]:
    _, since, start, end, team, unlogged, client_id, project_id, identity_id, billable, billed = key
    if since is not None:
        entries = agency.entries
        candidates = [entries[i] for i in agency.entry_ids_updated_since(since)]
        candidates.sort(key=lambda e: (e.spent_date, e.id), reverse=True)
    else:
        candidates = agency.entries_by_date_desc()
    owner = agency.owner.id
    out = []
    for e in candidates:
        if not team and e.person_id != owner:  # without team=true FreshBooks lists only your own time
            continue
        if e.is_running and not unlogged:
            continue
        if identity_id is not None and e.person_id != identity_id:
            continue
        if project_id is not None and e.project_id != project_id:
            continue
        if client_id is not None and agency.projects[e.project_id].client_id != client_id:
            continue
        if billable is not None and e.billable != billable:
            continue
        if billed is not None and (e.invoice_id is not None) != billed:
            continue
        if start is not None or end is not None:
            at = started_at(e, agency)
            if start is not None and at < start or end is not None and at > end:
                continue
        out.append(e)
    return out


@ROUTES.get(r"/timetracking/business/(?P<business_id>\d+)/time_entries")
@_guard
def time_entries(request: Request, agency: Agency, state: FreshBooksState, business_id: str) -> Response:
    _check_business(state, business_id)
    key = _entry_key(request)
    items: list[Any] = state.cached(key, agency.version, lambda: _select_entries(agency, state, key))
    if _bool_arg(request, "include_deleted"):
        # deleted entries come back marked inactive, from the agency's deletion log
        since = key[1]
        gone = [d.record for d in agency.deletions
                if d.resource == "time_entry" and (since is None or d.deleted_at >= since)]
        items = [*items, *({"deleted": e} for e in gone)]

    def render(item: Any) -> dict[str, Any]:
        if isinstance(item, dict):
            return time_entry(item["deleted"], agency, active=False)
        return time_entry(item, agency)

    return meta_page(request, "time_entries", items, render)


# ---- invoices and payments ---------------------------------------------------------------------
V3_STATUS = {"draft": "draft", "partial": "partial", "overdue": "overdue", "paid": "paid"}
NUMERIC_STATUS = {"draft": 1, "sent": 2, "viewed": 3, "paid": 4, "partial": 8, "overdue": 2}
PAYMENT_TYPES = {"bank_transfer": "Bank Transfer", "credit_card": "Credit Card", "check": "Check"}


def invoice(inv: Invoice, agency: Agency, state: FreshBooksState, *, lines: bool = False) -> dict[str, Any]:
    c = agency.clients[inv.client_id]
    status = inv.status(agency.today)
    v3 = V3_STATUS.get(status) or ("viewed" if inv.id % 2 else "sent")
    paid, due = inv.paid_amount, inv.due_amount
    payment_status = "paid" if inv.state == "paid" else ("partial" if paid > 0 else "unpaid")
    out: dict[str, Any] = {
        "accountid": state.account_id, "accounting_systemid": state.account_id, "address": "",
        "amount": money(inv.amount, inv.currency), "auto_bill": False, "autobill_status": None,
        "create_date": inv.issue_date.isoformat(), "created_at": eastern(inv.created_at),
        "currency_code": inv.currency, "current_organization": c.name, "customerid": c.id,
        "date_paid": inv.paid_at.astimezone(EASTERN).date().isoformat() if inv.paid_at else None,
        "deposit_status": "none", "description": inv.subject,
        "discount_total": money(Decimal(0), inv.currency), "discount_value": "0",
        "display_status": "draft" if inv.state == "draft" else ("sent" if v3 == "sent" else "outstanding"),
        "dispute_status": None, "due_date": inv.due_date.isoformat(),
        "due_offset_days": (inv.due_date - inv.issue_date).days, "email": c.email, "estimateid": 0, "ext_archive": 0,
        "fname": "", "lname": "", "id": inv.id, "invoice_number": inv.number, "invoiceid": inv.id, "language": "en",
        "notes": "", "organization": c.name, "outstanding": money(due, inv.currency), "ownerid": 1,
        "paid": money(paid, inv.currency), "parent": 0, "payment_status": payment_status, "po_number": None,
        "status": NUMERIC_STATUS.get(v3, 2), "template": "clean-grouped",
        "terms": f"Payment due within {(inv.due_date - inv.issue_date).days} days",
        "updated": eastern(inv.updated_at), "v3_status": v3, "vis_state": 1 if inv.state == "void" else 0,
        "street": "", "street2": "", "city": "", "province": "", "code": "", "country": "",
        "deposit_amount": None, "deposit_percentage": None, "discount_description": None, "fulfillment_date": None,
        "generation_date": None, "gmail": False, "last_order_status": None, "payment_details": "",
        "return_uri": None, "sentid": 0 if inv.state == "draft" else 1, "show_attachments": False,
        "vat_name": None, "vat_number": None,
    }
    if lines:
        out["lines"] = [{
            "amount": money(line.amount, inv.currency), "compounded_tax": False, "date": eastern(inv.created_at),
            "description": line.description, "expenseid": 0, "invoiceid": inv.id, "lineid": n,
            "name": line.kind, "qty": str(line.quantity), "retainer_id": None, "retainer_period_id": None,
            "taskno": n, "taxAmount1": str(inv.tax_percent or 0), "taxAmount2": "0",
            "taxName1": "VAT" if inv.tax_percent else "", "taxName2": "", "taxNumber1": None, "taxNumber2": None,
            "type": 0, "unit_cost": money(line.unit_price, inv.currency), "updated": eastern(inv.updated_at),
        } for n, line in enumerate(inv.lines, 1)]
    return out


@ROUTES.get(r"/accounting/account/(?P<account_id>[^/]+)/invoices/invoices")
@_guard
def invoices(request: Request, agency: Agency, state: FreshBooksState, account_id: str) -> Response:
    _check_account(state, account_id)
    ordered = sorted(agency.invoices.values(), key=lambda i: (i.issue_date, i.id), reverse=True)
    rows = [(i, i.updated_at, 1 if i.state == "void" else 0) for i in ordered]
    lines = "lines" in [v for k, v in request.query if k == "include[]"]
    return accounting_page(request, "invoices", _accounting_filter(request, rows),
                           lambda i: invoice(i, agency, state, lines=lines))


def payment(pay: Payment, agency: Agency, state: FreshBooksState, vis_state: int) -> dict[str, Any]:
    inv = agency.invoices[pay.invoice_id]
    return {
        "accounting_systemid": state.account_id, "amount": money(pay.amount, inv.currency), "bulk_paymentid": None,
        "clientid": inv.client_id, "creditid": None, "date": pay.paid_date.isoformat(), "from_credit": False,
        "gateway": "stripe" if pay.method == "credit_card" else None, "id": pay.id, "invoiceid": pay.invoice_id,
        "logid": pay.id, "note": pay.notes or "", "orderid": None, "overpaymentid": None,
        "send_client_notification": None, "transactionid": None, "type": PAYMENT_TYPES.get(pay.method, "Other"),
        "updated": eastern(pay.updated_at), "vis_state": vis_state,
    }


@ROUTES.get(r"/accounting/account/(?P<account_id>[^/]+)/payments/payments")
@_guard
def payments(request: Request, agency: Agency, state: FreshBooksState, account_id: str) -> Response:
    _check_account(state, account_id)
    rows = []
    for inv in sorted(agency.invoices.values(), key=lambda i: i.id):
        vis = 1 if inv.state == "void" else 0
        rows.extend(((p, vis), p.updated_at, vis) for p in sorted(inv.payments, key=lambda p: p.id))
    return accounting_page(request, "payments", _accounting_filter(request, rows),
                           lambda row: payment(row[0], agency, state, row[1]))
