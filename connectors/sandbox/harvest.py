"""Harvest API v2 in its wire shapes, mounted at /harvest/v2 (so base_url = http://HOST:PORT/harvest/v2).

Auth: `Authorization: Bearer <token>` (or `?access_token=`) plus `Harvest-Account-Id` (or
`?account_id=`) must match the configured pair, else 401 with Harvest's `invalid_token` body; a
missing User-Agent is a 400. Lists page with `page`/`per_page` (default and max 2000, above is
422) and absolute `links`; time entries can page by opaque cursor instead
(`make_state(cursor_pagination=True)`). Every list takes `updated_since` (inclusive). Money is a
JSON number, durations decimal hours with 2 decimals (exact, because the agency books multiples
of 3 minutes). Limits: 100 requests / 15 s, and 100 / 15 min on /reports/.
Field shapes follow tests/fixtures/harvest/*.json and /work/shared/reference/apis.md §1.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from connectors.sandbox import HARVEST_ACCOUNT_ID, HARVEST_TOKEN
from connectors.sandbox.agency import Agency, Client, Entry, Invoice, Payment, Person, Project, Task, to_epoch
from connectors.sandbox.server import BadRequest, RateRule, Request, Response, Router, VersionCache, date_arg, int_arg, json_response

NAME = "harvest"
PREFIX = "/harvest/v2"
RATE_LIMITS = [RateRule(100, 15.0), RateRule(100, 900.0, "/reports/")]
MAX_PER_PAGE = 2000
PAGING_PARAMS = ("page", "per_page", "cursor", "ref")

INVALID_TOKEN = {
    "error": "invalid_token",
    "error_description": "The access token provided is expired, revoked, malformed or invalid for other reasons.",
}


@dataclass
class HarvestState(VersionCache):
    token: str = HARVEST_TOKEN
    account_id: str = HARVEST_ACCOUNT_ID
    cursor_pagination: bool = False  # time entries page by opaque cursor, like Harvest's newer API
    hide_money_budgets: bool = False  # the token's user may not see money (cost_budget -> null)
    me_id: int | None = None  # the user behind the token; default the agency owner
    # A second, valid token of a non-admin member (recorded from Harvest: /users/me answers,
    # with is_admin and can_see_rates false; admin-only lists answer 403 "Not authorized!";
    # rates come as null). Only this sandbox's member, not a full model of Harvest roles.
    member_token: str = "hv-member-token-0000"
    caches: dict[Any, Any] = field(default_factory=dict)


def make_state(agency: Agency, **options: Any) -> HarvestState:
    return HarvestState(**options)


def too_many_requests(retry_after: int | None) -> Response:
    if retry_after is None:
        # recorded from Harvest: 429, text/html, an empty body and no Retry-After
        return Response(429, "", {}, "text/html; charset=utf-8")
    return json_response({"message": "Too Many Requests"}, 429, {"Retry-After": str(retry_after)})


# Recorded: Harvest answers an unknown path with its whole web 404 page, not JSON.
NOT_FOUND_PAGE = (
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<title>Page not found - Harvest</title><style>body{font-family:sans-serif;margin:4em}</style></head>"
    "<body><main><h1>Sorry, we can't find that page.</h1><p>The page you were looking for doesn't exist "
    "or has moved.</p><p><a href=\"https://www.getharvest.com\">Harvest home</a></p></main></body></html>"
)


ROUTES = Router(lambda request: Response(404, NOT_FOUND_PAGE, {}, "text/html; charset=utf-8"))


def handle(request: Request, agency: Agency, state: HarvestState) -> Response:
    if not (request.header("User-Agent") or "").strip():
        return json_response({"message": "User-Agent header is required"}, 400)
    token = request.arg("access_token")
    auth = request.header("Authorization") or ""
    if auth.startswith("Bearer "):
        token = auth[len("Bearer "):].strip()
    account = request.header("Harvest-Account-Id") or request.arg("account_id")
    member = bool(state.member_token) and token == state.member_token
    if (token != state.token and not member) or account != state.account_id:
        return json_response(INVALID_TOKEN, 401)
    if member:
        return _as_member(request, agency, state)
    try:
        return ROUTES.handle(request, agency, state)
    except BadRequest as exc:
        return json_response({"message": str(exc)}, 422)


MEMBER_FORBIDDEN = ("/clients", "/users", "/tasks", "/task_assignments", "/invoices", "/reports", "/projects")
NOT_AUTHORIZED = {"message": "Not authorized!"}
RATE_FIELDS = ("billable_rate", "cost_rate", "hourly_rate", "default_hourly_rate")


def member_of(agency: Agency) -> Person:
    return next(p for _, p in sorted(agency.people.items()) if p.is_active and not p.is_admin
                and "Project manager" not in p.roles)


def _as_member(request: Request, agency: Agency, state: HarvestState) -> Response:
    path = request.path
    if path == "/users/me":
        return json_response({**user(member_of(agency)), "is_admin": False, "can_see_rates": False})
    if any(path == p or path.startswith(p + "/") for p in MEMBER_FORBIDDEN):
        return json_response(NOT_AUTHORIZED, 403)
    try:
        response = ROUTES.handle(request, agency, state)
    except BadRequest as exc:
        return json_response({"message": str(exc)}, 422)
    if isinstance(response.body, dict):
        response = Response(response.status, _without_rates(response.body), response.headers, response.content_type)
    return response


def _without_rates(value: Any) -> Any:
    """A member who may not see rates gets them as null, wherever they sit."""
    if isinstance(value, dict):
        return {k: (None if k in RATE_FIELDS else _without_rates(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_rates(v) for v in value]
    return value


# ---- formatting ------------------------------------------------------------------------------
def ts(value: dt.datetime | int | None) -> str | None:
    """UTC `YYYY-MM-DDTHH:MM:SSZ` from an aware datetime or epoch seconds."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = to_epoch(value)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))


def day(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def money(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def hours(seconds: int) -> float:
    return round(seconds / 3600, 2)


# ---- query parameters ------------------------------------------------------------------------


def _bool_arg(request: Request, name: str) -> bool | None:
    raw = request.arg(name)
    if raw in (None, ""):
        return None
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise BadRequest(f"{name} must be true or false")




def _since_arg(request: Request) -> int | None:
    """`updated_since` as epoch seconds; a bare date means its midnight UTC."""
    raw = request.arg("updated_since")
    if raw in (None, ""):
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise BadRequest("updated_since is not a valid ISO 8601 date and time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return to_epoch(value)


def _per_page(request: Request) -> int:
    per_page = int_arg(request, "per_page")
    if per_page is None:
        return MAX_PER_PAGE
    if per_page > MAX_PER_PAGE or per_page < 1:
        raise BadRequest(f"per_page must be between 1 and {MAX_PER_PAGE}")
    return per_page


def _link(request: Request, **paging: Any) -> str:
    """An absolute link that keeps the caller's filters and sets the paging parameters."""
    params = [(k, v) for k, v in request.query if k not in PAGING_PARAMS]
    params += [(k, v) for k, v in paging.items() if v is not None]
    return f"{request.api_url}{request.path}?{urlencode(params)}"


def paginate(request: Request, key: str, items: Sequence[Any], render: Callable[[Any], dict[str, Any]]) -> Response:
    per_page = _per_page(request)
    page = max(1, int_arg(request, "page") or 1)
    total = len(items)
    total_pages = max(1, -(-total // per_page))
    chunk = items[(page - 1) * per_page: page * per_page]
    next_page = page + 1 if page < total_pages else None
    previous_page = page - 1 if page > 1 else None
    return json_response({
        key: [render(item) for item in chunk],
        "per_page": per_page,
        "total_pages": total_pages,
        "total_entries": total,
        "next_page": next_page,
        "previous_page": previous_page,
        "page": page,
        "links": {
            "first": _link(request, page=1, per_page=per_page),
            "next": _link(request, page=next_page, per_page=per_page) if next_page else None,
            "previous": _link(request, page=previous_page, per_page=per_page) if previous_page else None,
            "last": _link(request, page=total_pages, per_page=per_page),
        },
    })


def _filtered(items: Sequence[Any], request: Request, *, active: bool = True, client: bool = False) -> list[Any]:
    """The filters every simple list shares: updated_since (inclusive), is_active, client_id."""
    since = _since_arg(request)
    is_active = _bool_arg(request, "is_active") if active else None
    client_id = int_arg(request, "client_id") if client else None
    out = []
    for item in items:
        if since is not None and to_epoch(item.updated_at) < since:
            continue
        if is_active is not None and item.is_active != is_active:
            continue
        if client_id is not None and item.client_id != client_id:
            continue
        out.append(item)
    return out


def _newest_first(items: Any) -> list[Any]:
    # Harvest lists most resources by creation, newest first
    return sorted(items, key=lambda x: (x.created_at, x.id), reverse=True)


def _one(table: dict[int, Any], item_id: str) -> Any:
    item = table.get(int(item_id))
    if item is None:
        raise LookupError
    return item


def _not_found() -> Response:
    return json_response({"status": 404, "error": "Not Found"}, 404)


# ---- company and users -----------------------------------------------------------------------
@ROUTES.get("/company")
def company(request: Request, agency: Agency, state: HarvestState) -> Response:
    return json_response({
        "base_uri": "https://nordwind.harvestapp.com",
        "full_domain": "nordwind.harvestapp.com",
        "name": agency.name,
        "is_active": True,
        "week_start_day": "Monday",
        "wants_timestamp_timers": False,
        "time_format": "hours_minutes",
        "date_format": "%Y-%m-%d",
        "plan_type": "sponsored",
        "clock": "24h",
        "currency_code_display": "iso_code_before",
        "currency_symbol_display": "symbol_before",
        "decimal_symbol": ",",
        "thousands_separator": ".",
        "color_scheme": "orange",
        "weekly_capacity": 144000,
        "expense_feature": False,
        "invoice_feature": True,
        "estimate_feature": False,
        "approval_feature": True,
        "team_feature": True,
    })


def user(person: Person) -> dict[str, Any]:
    if person.is_admin:
        access = ["administrator"]
    elif "Project manager" in person.roles:
        access = ["manager", "time_and_expenses_manager"]
    else:
        access = ["member"]
    return {
        "id": person.id,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "email": person.email,
        "telephone": "",
        "timezone": person.timezone,
        "has_access_to_all_future_projects": person.is_admin,
        "is_contractor": person.is_contractor,
        "is_active": person.is_active,
        "weekly_capacity": person.weekly_capacity_seconds,
        "default_hourly_rate": money(person.hourly_rate),
        "cost_rate": money(person.cost_rate),
        "roles": list(person.roles),
        "access_roles": access,
        "avatar_url": f"https://cache.harvestapp.com/assets/profile_images/{person.id}.png",
        "created_at": ts(person.created_at),
        "updated_at": ts(person.updated_at),
    }


@ROUTES.get("/users/me")
def users_me(request: Request, agency: Agency, state: HarvestState) -> Response:
    person = agency.people[state.me_id] if state.me_id else agency.owner
    return json_response({**user(person), "is_admin": person.is_admin, "can_see_rates": person.is_admin})


@ROUTES.get("/users")
def users(request: Request, agency: Agency, state: HarvestState) -> Response:
    return paginate(request, "users", _filtered(_newest_first(agency.people.values()), request), user)


@ROUTES.get(r"/users/(?P<item_id>\d+)")
def one_user(request: Request, agency: Agency, state: HarvestState, item_id: str) -> Response:
    person = agency.people.get(int(item_id))
    return json_response(user(person)) if person else _not_found()


# ---- clients, tasks, projects ----------------------------------------------------------------
def client(c: Client) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "is_active": c.is_active,
        "address": c.address,
        "statement_key": hashlib.sha1(f"statement-{c.id}".encode()).hexdigest(),
        "created_at": ts(c.created_at),
        "updated_at": ts(c.updated_at),
        "currency": c.currency,
    }


@ROUTES.get("/clients")
def clients(request: Request, agency: Agency, state: HarvestState) -> Response:
    return paginate(request, "clients", _filtered(_newest_first(agency.clients.values()), request), client)


@ROUTES.get(r"/clients/(?P<item_id>\d+)")
def one_client(request: Request, agency: Agency, state: HarvestState, item_id: str) -> Response:
    c = agency.clients.get(int(item_id))
    return json_response(client(c)) if c else _not_found()


def task(t: Task) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "billable_by_default": t.billable_by_default,
        "default_hourly_rate": money(t.hourly_rate),
        "is_default": t.is_active and t.name != "Legacy Support",
        "is_active": t.is_active,
        "created_at": ts(t.created_at),
        "updated_at": ts(t.updated_at),
    }


@ROUTES.get("/tasks")
def tasks(request: Request, agency: Agency, state: HarvestState) -> Response:
    return paginate(request, "tasks", _filtered(_newest_first(agency.tasks.values()), request), task)


@ROUTES.get(r"/tasks/(?P<item_id>\d+)")
def one_task(request: Request, agency: Agency, state: HarvestState, item_id: str) -> Response:
    t = agency.tasks.get(int(item_id))
    return json_response(task(t)) if t else _not_found()


BUDGET_BY = {"hours": "project", "money": "project_cost", None: "none"}


def project(p: Project, agency: Agency, state: HarvestState) -> dict[str, Any]:
    c = agency.clients[p.client_id]
    money_budget = p.budget if p.budget_kind == "money" and not state.hide_money_budgets else None
    return {
        "id": p.id,
        "name": p.name,
        "code": p.code,
        "is_active": p.is_active,
        "bill_by": "Project" if p.hourly_rate else ("Tasks" if p.is_billable else "none"),
        "budget": money(p.budget) if p.budget_kind == "hours" else None,
        "budget_by": BUDGET_BY[p.budget_kind],
        "budget_is_monthly": p.budget_is_monthly,
        "notify_when_over_budget": p.budget_kind is not None,
        "over_budget_notification_percentage": 80.0,
        "over_budget_notification_date": None,
        "show_budget_to_all": False,
        "created_at": ts(p.created_at),
        "updated_at": ts(p.updated_at),
        "starts_on": day(p.starts_on),
        "ends_on": day(p.ends_on),
        "is_billable": p.is_billable,
        "is_fixed_fee": p.is_fixed_fee,
        "notes": p.notes,
        "client": {"id": c.id, "name": c.name, "currency": c.currency},
        "cost_budget": money(money_budget),
        "cost_budget_include_expenses": False,
        "hourly_rate": money(p.hourly_rate),
        "fee": money(p.fee) if p.is_fixed_fee and not state.hide_money_budgets else None,
    }


@ROUTES.get("/projects")
def projects(request: Request, agency: Agency, state: HarvestState) -> Response:
    items = _filtered(_newest_first(agency.projects.values()), request, client=True)
    return paginate(request, "projects", items, lambda p: project(p, agency, state))


@ROUTES.get(r"/projects/(?P<item_id>\d+)")
def one_project(request: Request, agency: Agency, state: HarvestState, item_id: str) -> Response:
    p = agency.projects.get(int(item_id))
    return json_response(project(p, agency, state)) if p else _not_found()


# ---- assignments -----------------------------------------------------------------------------
def user_assignment_id(project_id: int, person_id: int) -> int:
    return 130_000_000 + (project_id % 1000) * 1000 + person_id % 1000


def task_assignment_id(project_id: int, task_id: int) -> int:
    return 160_000_000 + (project_id % 1000) * 1000 + task_id % 1000


def _task_rate(p: Project, t: Task) -> Decimal | None:
    billable = p.is_billable and t.billable_by_default
    return (p.hourly_rate or t.hourly_rate) if billable else None


def task_assignment(p: Project, t: Task, nested: bool = False) -> dict[str, Any]:
    out = {
        "id": task_assignment_id(p.id, t.id),
        "billable": p.is_billable and t.billable_by_default,
        "is_active": p.is_active and t.is_active,
        "created_at": ts(p.created_at),
        "updated_at": ts(max(p.created_at, t.updated_at)),
        "hourly_rate": money(_task_rate(p, t)),
        "budget": None,
    }
    if not nested:
        out["project"] = {"id": p.id, "name": p.name, "code": p.code}
        out["task"] = {"id": t.id, "name": t.name}
    return out


def user_assignment(p: Project, person: Person) -> dict[str, Any]:
    return {
        "id": user_assignment_id(p.id, person.id),
        "is_project_manager": person.id == p.manager_id,
        "is_active": p.is_active,
        "budget": None,
        "created_at": ts(p.created_at),
        "updated_at": ts(p.created_at),
        "hourly_rate": money(p.hourly_rate or person.hourly_rate),
    }


@ROUTES.get("/task_assignments")
def task_assignments(request: Request, agency: Agency, state: HarvestState) -> Response:
    since, is_active = _since_arg(request), _bool_arg(request, "is_active")
    rows = []
    for p in _newest_first(agency.projects.values()):
        for task_id in p.task_ids:
            row = task_assignment(p, agency.tasks[task_id])
            if is_active is not None and row["is_active"] != is_active:
                continue
            if since is not None and to_epoch(max(p.created_at, agency.tasks[task_id].updated_at)) < since:
                continue
            rows.append(row)
    return paginate(request, "task_assignments", rows, lambda row: row)


# ---- time entries ----------------------------------------------------------------------------
LOCKED_INVOICED = "Item Invoiced and Approved and Locked for this Time Period"
LOCKED_APPROVED = "Item Approved and Locked for this Time Period"
LOCKED_INVOICED_ONLY = "Item Invoiced and Locked for this Time Period"  # recorded; not approval


class _EntryRenderer:
    """Renders entries for one response, memoising the nested objects every entry repeats."""

    def __init__(self, agency: Agency) -> None:
        self.agency = agency
        self.refs: dict[tuple[int, int, int], tuple[dict[str, Any], ...]] = {}

    def _nested(self, e: Entry) -> tuple[dict[str, Any], ...]:
        key = (e.project_id, e.person_id, e.task_id)
        nested = self.refs.get(key)
        if nested is None:
            agency = self.agency
            p, person, t = agency.projects[e.project_id], agency.people[e.person_id], agency.tasks[e.task_id]
            nested = self.refs[key] = (
                {"id": person.id, "name": person.name},
                _client_ref(agency.clients[p.client_id]),
                {"id": p.id, "name": p.name, "code": p.code},
                {"id": t.id, "name": t.name},
                user_assignment(p, person),
                task_assignment(p, t, nested=True),
            )
        return nested

    def __call__(self, e: Entry) -> dict[str, Any]:
        agency = self.agency
        p = agency.projects[e.project_id]
        user_ref, client_ref, project_ref, task_ref, user_assign, task_assign = self._nested(e)
        invoice = agency.invoices.get(e.invoice_id) if e.invoice_id else None
        h = hours(e.seconds)
        malformed = agency.malformed.get(e.id) if agency.malformed else None
        spent = e.spent_date.isoformat()
        if malformed == "bad_date":
            spent = f"{e.spent_date.year}-02-30"
        # e.is_locked is the agency's approval; invoicing locks too, which is not approval
        locked = e.is_locked or invoice is not None
        if invoice is not None:
            reason = LOCKED_INVOICED if e.is_locked else LOCKED_INVOICED_ONLY
        else:
            reason = LOCKED_APPROVED
        return {
            "id": e.id,
            "spent_date": spent,
            "user": user_ref,
            "client": client_ref,
            "project": project_ref,
            "task": task_ref,
            "user_assignment": user_assign,
            "task_assignment": task_assign,
            "hours": "1h30" if malformed == "bad_duration" else h,
            "hours_without_timer": h,
            "rounded_hours": h,
            "notes": e.notes,
            "created_at": ts(e.created_at),
            "updated_at": ts(e.updated_at),
            "is_locked": locked,
            "locked_reason": reason if locked else None,
            "is_closed": e.is_locked,
            "approval_status": "approved" if e.is_locked else "unsubmitted",
            "is_billed": invoice is not None,
            "timer_started_at": ts(e.timer_started_at),
            "started_time": None,
            "ended_time": None,
            "is_running": e.is_running,
            "invoice": {"id": invoice.id, "number": invoice.number} if invoice else None,
            "external_reference": None,
            "billable": e.billable,
            "budgeted": p.budget_kind is not None,
            "billable_rate": float(e.billable_rate) if e.billable_rate is not None else None,
            "cost_rate": float(e.cost_rate),
        }


def _client_ref(c: Client) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "currency": c.currency}


def _entry_filter_key(request: Request) -> tuple[Any, ...]:
    return (
        "time_entries", _since_arg(request), date_arg(request, "from", compact=True), date_arg(request, "to", compact=True),
        int_arg(request, "project_id"), int_arg(request, "client_id"), int_arg(request, "user_id"),
        int_arg(request, "task_id"), _bool_arg(request, "is_billed"), _bool_arg(request, "is_running"),
    )


def _select_entries(agency: Agency, key: tuple[Any, ...]) -> list[Entry]:
    _, since, start, end, project_id, client_id, user_id, task_id, is_billed, is_running = key
    if since is not None:
        entries = agency.entries
        candidates = [entries[i] for i in agency.entry_ids_updated_since(dt.datetime.fromtimestamp(since, dt.timezone.utc))]
        candidates.sort(key=lambda e: (e.spent_date, e.id), reverse=True)
    else:
        candidates = agency.entries_by_date_desc()
    if all(v is None for v in key[2:]):
        return candidates
    client_projects = {p.id for p in agency.projects.values() if p.client_id == client_id} if client_id else None
    out = []
    for e in candidates:
        if start is not None and e.spent_date < start:
            continue
        if end is not None and e.spent_date > end:
            continue
        if project_id is not None and e.project_id != project_id:
            continue
        if client_projects is not None and e.project_id not in client_projects:
            continue
        if user_id is not None and e.person_id != user_id:
            continue
        if task_id is not None and e.task_id != task_id:
            continue
        if is_billed is not None and (e.invoice_id is not None) != is_billed:
            continue
        if is_running is not None and e.is_running != is_running:
            continue
        out.append(e)
    return out


def _sort_key(e: Entry) -> int:
    # one integer that orders like (spent_date, id), so a cursor can be found by bisection
    return e.spent_date.toordinal() * 10**11 + e.id


def encode_cursor(e: Entry) -> str:
    return base64.urlsafe_b64encode(json.dumps([e.spent_date.toordinal(), e.id]).encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> int:
    try:
        ordinal, entry_id = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        return int(ordinal) * 10**11 + int(entry_id)
    except (ValueError, TypeError, binascii.Error):
        raise BadRequest("cursor is invalid") from None


@ROUTES.get("/time_entries")
def time_entries(request: Request, agency: Agency, state: HarvestState) -> Response:
    key = _entry_filter_key(request)
    items = state.cached(key, agency.version, lambda: _select_entries(agency, key))
    render = _EntryRenderer(agency)
    if not state.cursor_pagination:
        return paginate(request, "time_entries", items, render)
    return _cursor_page(request, items, render)


def _cursor_page(request: Request, items: list[Entry], render: Callable[[Entry], dict[str, Any]]) -> Response:
    """Harvest's cursor paging: follow links.next; page numbers are null between first and last."""
    per_page = _per_page(request)
    raw = request.arg("cursor")
    start = 0
    if raw:
        # items are in descending key order; negate so bisect sees ascending values
        start = bisect_right(items, -decode_cursor(raw), key=lambda e: -_sort_key(e))
    chunk = items[start: start + per_page]
    total = len(items)
    total_pages = max(1, -(-total // per_page))
    has_next = start + per_page < total
    first, last = start == 0, not has_next
    return json_response({
        "time_entries": [render(e) for e in chunk],
        "per_page": per_page,
        "total_pages": total_pages,
        "total_entries": total,
        "next_page": 2 if first and has_next else None,
        "previous_page": None,
        "page": 1 if first else (total_pages if last else None),
        "links": {
            "first": _link(request, per_page=per_page),
            "next": _link(request, cursor=encode_cursor(chunk[-1]), per_page=per_page, ref="next_cursor")
            if has_next else None,
            "previous": None,
            "last": None,
        },
    })


@ROUTES.get(r"/time_entries/(?P<item_id>\d+)")
def one_time_entry(request: Request, agency: Agency, state: HarvestState, item_id: str) -> Response:
    e = agency.entries.get(int(item_id))
    return json_response(_EntryRenderer(agency)(e)) if e else _not_found()


# ---- invoices and payments -------------------------------------------------------------------
def _payment_term(inv: Invoice) -> str:
    days = (inv.due_date - inv.issue_date).days
    return {0: "upon receipt", 15: "net 15", 30: "net 30", 45: "net 45", 60: "net 60"}.get(days, "custom")


def invoice(inv: Invoice, agency: Agency) -> dict[str, Any]:
    c = agency.clients[inv.client_id]
    creator = agency.people[inv.creator_id]
    paid_at = inv.paid_at
    return {
        "id": inv.id,
        "client_key": hashlib.sha1(f"invoice-{inv.id}".encode()).hexdigest(),
        "number": inv.number,
        "purchase_order": None,
        "amount": money(inv.amount),
        "due_amount": money(inv.due_amount),
        "tax": money(inv.tax_percent),
        "tax_amount": money(inv.tax_amount),
        "tax2": None,
        "tax2_amount": 0.0,
        "discount": None,
        "discount_amount": 0.0,
        "subject": inv.subject,
        "notes": None,
        "state": "closed" if inv.state == "void" else inv.state,
        "period_start": day(inv.period_start),
        "period_end": day(inv.period_end),
        "issue_date": day(inv.issue_date),
        "due_date": day(inv.due_date),
        "payment_term": _payment_term(inv),
        "payment_options": ["credit_card", "ach"],
        "sent_at": ts(inv.sent_at),
        "paid_at": ts(paid_at),
        "paid_date": day(paid_at.date()) if paid_at else None,
        "closed_at": ts(inv.closed_at),
        "recurring_invoice_id": None,
        "created_at": ts(inv.created_at),
        "updated_at": ts(inv.updated_at),
        "currency": inv.currency,
        "client": {"id": c.id, "name": c.name},
        "estimate": None,
        "retainer": None,
        "creator": {"id": creator.id, "name": creator.name},
        "line_items": [
            {
                "id": line.id,
                "kind": line.kind,
                "description": line.description,
                "quantity": money(line.quantity),
                "unit_price": money(line.unit_price),
                "amount": money(line.amount),
                "taxed": inv.tax_percent is not None,
                "taxed2": False,
                "project": _project_ref(agency, line.project_id),
            }
            for line in inv.lines
        ],
    }


def _project_ref(agency: Agency, project_id: int | None) -> dict[str, Any] | None:
    if project_id is None:
        return None
    p = agency.projects[project_id]
    return {"id": p.id, "name": p.name, "code": p.code}


HARVEST_STATES = ("draft", "open", "paid", "closed")


@ROUTES.get("/invoices")
def invoices(request: Request, agency: Agency, state: HarvestState) -> Response:
    start, end = date_arg(request, "from", compact=True), date_arg(request, "to", compact=True)
    project_id, wanted = int_arg(request, "project_id"), request.arg("state")
    if wanted is not None and wanted not in HARVEST_STATES:
        raise BadRequest(f"state must be one of {', '.join(HARVEST_STATES)}")
    rows = []
    for inv in _filtered(sorted(agency.invoices.values(), key=lambda i: (i.issue_date, i.id), reverse=True),
                         request, active=False, client=True):
        if start is not None and inv.issue_date < start or end is not None and inv.issue_date > end:
            continue
        if project_id is not None and inv.project_id != project_id:
            continue
        if wanted is not None and ("closed" if inv.state == "void" else inv.state) != wanted:
            continue
        rows.append(inv)
    return paginate(request, "invoices", rows, lambda inv: invoice(inv, agency))


@ROUTES.get(r"/invoices/(?P<item_id>\d+)")
def one_invoice(request: Request, agency: Agency, state: HarvestState, item_id: str) -> Response:
    inv = agency.invoices.get(int(item_id))
    return json_response(invoice(inv, agency)) if inv else _not_found()


def payment(pay: Payment, agency: Agency) -> dict[str, Any]:
    recorder = agency.people[pay.recorded_by_id]
    return {
        "id": pay.id,
        "amount": money(pay.amount),
        "paid_at": ts(pay.paid_at),
        "paid_date": day(pay.paid_date),
        "recorded_by": recorder.name,
        "recorded_by_email": recorder.email,
        "notes": pay.notes,
        "transaction_id": None,
        "created_at": ts(pay.created_at),
        "updated_at": ts(pay.updated_at),
        "payment_gateway": {"id": None, "name": None},
    }


@ROUTES.get(r"/invoices/(?P<item_id>\d+)/payments")
def invoice_payments(request: Request, agency: Agency, state: HarvestState, item_id: str) -> Response:
    inv = agency.invoices.get(int(item_id))
    if inv is None:
        return _not_found()
    since = _since_arg(request)
    rows = sorted((p for p in inv.payments if since is None or to_epoch(p.updated_at) >= since),
                  key=lambda p: (p.paid_at, p.id), reverse=True)
    return paginate(request, "invoice_payments", rows, lambda pay: payment(pay, agency))


# ---- reports ---------------------------------------------------------------------------------
def _spent(agency: Agency) -> dict[int, tuple[int, int, Decimal, Decimal]]:
    """Per project: (seconds, seconds this month, billable amount, billable amount this month)."""
    month = agency.today.replace(day=1)
    out: dict[int, list[Any]] = {pid: [0, 0, Decimal(0), Decimal(0)] for pid in agency.projects}
    for e in agency.entries.values():
        row = out[e.project_id]
        this_month = e.spent_date >= month
        row[0] += e.seconds
        if this_month:
            row[1] += e.seconds
        if e.billable_rate is not None:
            amount = e.billable_rate * e.seconds / 3600
            row[2] += amount
            if this_month:
                row[3] += amount
    return {pid: (a, b, c, d) for pid, (a, b, c, d) in out.items()}


@ROUTES.get("/reports/project_budget")
def project_budget(request: Request, agency: Agency, state: HarvestState) -> Response:
    spent = state.cached("spent", agency.version, lambda: _spent(agency))
    is_active = _bool_arg(request, "is_active")
    rows = []
    for p in sorted(agency.projects.values(), key=lambda p: p.id):
        if p.budget_kind is None or (is_active is not None and p.is_active != is_active):
            continue
        total_seconds, month_seconds, amount, month_amount = spent[p.id]
        c = agency.clients[p.client_id]
        if p.budget_kind == "hours":
            used = Decimal(month_seconds if p.budget_is_monthly else total_seconds) / 3600
            budget, used_value = p.budget, used.quantize(Decimal("0.01"))
            visible = True
        else:
            used_amount = month_amount if p.budget_is_monthly else amount
            budget, used_value = p.budget, used_amount.quantize(Decimal("0.01"))
            visible = not state.hide_money_budgets
        rows.append({
            "project_id": p.id,
            "project_name": p.name,
            "client_id": c.id,
            "client_name": c.name,
            "budget_is_monthly": p.budget_is_monthly,
            "budget_by": BUDGET_BY[p.budget_kind],
            "is_active": p.is_active,
            "budget": money(budget) if visible else None,
            "budget_spent": money(used_value) if visible else None,
            "budget_remaining": money(budget - used_value) if visible and budget is not None else None,
        })
    return paginate(request, "results", rows, lambda row: row)


def _report_window(request: Request) -> tuple[dt.date, dt.date]:
    """`from` and `to` (YYYYMMDD or YYYY-MM-DD), both required, at most 365 days apart."""
    out = []
    for name in ("from", "to"):
        raw = (request.arg(name) or "").replace("-", "")
        try:
            out.append(dt.datetime.strptime(raw, "%Y%m%d").date())
        except ValueError:
            raise BadRequest(f"{name} is required as YYYYMMDD") from None
    first, last = out
    if last < first or (last - first).days > 364:
        raise BadRequest("the timeframe must be at most 365 days, from before to")
    return first, last


def _time_by_project(agency: Agency, first: dt.date, last: dt.date) -> dict[int, list[Any]]:
    """Per project, over spent dates first..last: [seconds, billable seconds, billable amount,
    uninvoiced seconds, uninvoiced amount]. Running timers count with their time so far."""
    out: dict[int, list[Any]] = {}
    for e in agency.entries.values():
        if not first <= e.spent_date <= last:
            continue
        row = out.setdefault(e.project_id, [0, 0, Decimal(0), 0, Decimal(0)])
        row[0] += e.seconds
        if e.billable:
            value = (e.billable_rate or Decimal(0)) * e.seconds / 3600
            row[1] += e.seconds
            row[2] += value
            if e.invoice_id is None:
                row[3] += e.seconds
                row[4] += value
    return out


@ROUTES.get("/reports/time/projects")
def time_report_projects(request: Request, agency: Agency, state: HarvestState) -> Response:
    first, last = _report_window(request)
    spent = state.cached(("time", first, last), agency.version, lambda: _time_by_project(agency, first, last))
    rows = []
    for pid, (secs, billable, amount, _, _) in sorted(spent.items()):
        p = agency.projects[pid]
        c = agency.clients[p.client_id]
        rows.append({
            "client_id": c.id, "client_name": c.name, "project_id": p.id, "project_name": p.name,
            "total_hours": hours(secs), "billable_hours": hours(billable), "currency": c.currency,
            "billable_amount": money(amount.quantize(Decimal("0.01"))),
        })
    return paginate(request, "results", rows, lambda row: row)


@ROUTES.get("/reports/uninvoiced")
def uninvoiced_report(request: Request, agency: Agency, state: HarvestState) -> Response:
    first, last = _report_window(request)
    spent = state.cached(("time", first, last), agency.version, lambda: _time_by_project(agency, first, last))
    rows = []
    for pid, (secs, _, _, open_secs, open_amount) in sorted(spent.items()):
        p = agency.projects[pid]
        if not p.is_billable:
            continue  # the report covers billable projects only
        c = agency.clients[p.client_id]
        rows.append({
            "client_id": c.id, "client_name": c.name, "project_id": p.id, "project_name": p.name,
            "currency": c.currency, "total_hours": hours(secs), "uninvoiced_hours": hours(open_secs),
            "uninvoiced_expenses": 0.0, "uninvoiced_amount": money(open_amount.quantize(Decimal("0.01"))),
        })
    return paginate(request, "results", rows, lambda row: row)
