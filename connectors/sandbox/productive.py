"""Productive.io in its JSON:API wire shapes, mounted at /productive/api/v2.

Auth: `X-Auth-Token` must be the configured token (else 401) and `X-Organization-Id` the
configured organization (else 403), and requests must declare
`Content-Type: application/vnd.api+json` (else 415), each with a JSON:API `errors` body.
Lists page with `page[number]`/`page[size]` (default 30, at most 200: larger sizes are capped)
and answer `data`, `links` (first/prev/next/last, absolute) and `meta` (current_page,
total_pages, total_count, page_size, max_page_size); `include=a,b.c` adds the linked resources
to `included`. As in the real API (recorded responses), a relationship carries linkage
(`data`) only when the request's `include` names it; every other one except `organization`
is `{"meta": {"included": false}}`, on rows and included resources alike. Money is integer minor units (cents, MONEY_SCALE), durations integer minutes.
Limits: 100 requests / 10 s and 4000 / 30 min; /reports/ 10 / 30 s.

How the neutral agency maps onto Productive's model:
- clients -> companies; people -> people; projects -> projects.
- each project has exactly one budget (a deal with `budget: true`, id DEAL_BASE + project id):
  an hours budget is `budgeted_time` minutes, a money budget `budget_total` cents, a monthly
  one a retainer (`retainer_interval: "month"`), no budget is 0 and 0.
- time is tracked on services, one per (project, task): id = project id * 1000 + the task's
  position among the agency's tasks; its `price` is the hourly rate in cents.
- time entries link person and service (not the project, as in the real API); notes are
  HTML (`<p>…</p>`); `approved` is the agency's lock; `invoiced` whether it was invoiced.
- deletions from the agency's log are `/activities` with `event: destroy`, `item_type: TimeEntry`.
- a void invoice is finalized and written off in full.
Field shapes follow tests/fixtures/productive/*.json and /work/shared/reference/apis.md §3.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

from connectors.sandbox.agency import Agency, Client, Entry, Invoice, Payment, Person, Project, from_epoch, to_epoch
from connectors.sandbox.server import BadRequest, RateRule, Request, Response, Router, VersionCache, date_arg, int_arg

NAME = "productive"
PREFIX = "/productive/api/v2"
RATE_LIMITS = [RateRule(100, 10.0), RateRule(4000, 1800.0), RateRule(10, 30.0, "/reports/")]
JSONAPI = "application/vnd.api+json"
DEFAULT_PAGE_SIZE = 30
MAX_PAGE_SIZE = 200
MONEY_SCALE = 100  # amounts are integer cents
DEAL_BASE = 900_000_000
ACTIVITY_BASE = 77_000_000
SERVICE_FACTOR = 1000
ORG_TYPE = "organizations"


def _creds() -> tuple[str, str]:
    from connectors.sandbox import PRODUCTIVE_ORGANIZATION_ID, PRODUCTIVE_TOKEN

    return PRODUCTIVE_TOKEN, PRODUCTIVE_ORGANIZATION_ID


@dataclass
class ProductiveState(VersionCache):
    token: str = field(default_factory=lambda: _creds()[0])
    organization_id: str = field(default_factory=lambda: _creds()[1])
    require_content_type: bool = True
    hide_money_budgets: bool = False  # the token may not read budget_total (attribute absent)
    caches: dict[Any, Any] = field(default_factory=dict)


def make_state(agency: Agency, **options: Any) -> ProductiveState:
    return ProductiveState(**options)


def _errors(status: int, title: str, detail: str | None = None, headers: dict[str, str] | None = None) -> Response:
    error: dict[str, Any] = {"status": str(status), "title": title}
    if detail is not None:
        error["detail"] = detail
    return Response(status, {"errors": [error]}, headers or {}, JSONAPI)


def too_many_requests(retry_after: int | None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return _errors(429, "Too Many Requests", "Rate limit exceeded", headers)




ROUTES = Router(lambda request: _errors(404, "Not found", "Record not found"))


def handle(request: Request, agency: Agency, state: ProductiveState) -> Response:
    if (request.header("X-Auth-Token") or "") != state.token:
        return _errors(401, "Unauthorized", "Unauthorized")
    if (request.header("X-Organization-Id") or "") != state.organization_id:
        return _errors(403, "Forbidden", "Forbidden")
    if state.require_content_type and not (request.header("Content-Type") or "").startswith(JSONAPI):
        return _errors(415, "Unsupported Media Type", f"Content-Type must be {JSONAPI}")
    try:
        return ROUTES.handle(request, agency, state)
    except BadRequest as exc:
        return _errors(400, "Bad Request", str(exc))


# ---- wire formatting -------------------------------------------------------------------------
def ts(value: dt.datetime | int | None) -> str | None:
    """Productive's datetime shape: `2025-03-18T13:05:12.000+00:00`."""
    if value is None:
        return None
    if isinstance(value, int):
        value = from_epoch(value)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def day(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def cents(value: Decimal | None) -> int | None:
    if value is None:
        return None
    return int((value * MONEY_SCALE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def link(type_: str, id_: Any) -> dict[str, Any]:
    return {"data": None if id_ is None else {"type": type_, "id": str(id_)}}


NOT_LOADED = {"meta": {"included": False}}


def resource(type_: str, id_: Any, attributes: dict[str, Any], relationships: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(id_), "type": type_, "attributes": attributes, "relationships": relationships}


def _org(state: ProductiveState) -> dict[str, Any]:
    return link(ORG_TYPE, state.organization_id)


# ---- id mapping ------------------------------------------------------------------------------
def deal_id(project_id: int) -> int:
    return DEAL_BASE + project_id


def _task_order(agency: Agency) -> list[int]:
    return sorted(agency.tasks)


def service_id(agency: Agency, project_id: int, task_id: int) -> int:
    return project_id * SERVICE_FACTOR + _task_order(agency).index(task_id) + 1


def service_parts(agency: Agency, sid: int) -> tuple[int, int] | None:
    project_id, index = divmod(sid, SERVICE_FACTOR)
    order = _task_order(agency)
    if project_id not in agency.projects or not 1 <= index <= len(order):
        return None
    return project_id, order[index - 1]


# ---- renderers: neutral record -> JSON:API resource ------------------------------------------
def company(c: Client, state: ProductiveState) -> dict[str, Any]:
    return resource("companies", c.id, {
        "name": c.name,
        "billing_name": c.name,
        "vat": None,
        "default_currency": c.currency,
        "created_at": ts(c.created_at),
        "last_activity_at": ts(c.updated_at),
        "archived_at": None if c.is_active else ts(c.updated_at),
        "company_code": None,
        "due_days": 30,
        "tag_list": [],
        "contact": {"emails": [{"name": "Billing", "email": c.email}], "phones": [], "websites": [],
                    "addresses": [{"name": "Billing", "billing_address": True, "address": c.address}] if c.address else []},
        "external_id": None,
        "description": None,
    }, {"organization": _org(state), "default_subsidiary": NOT_LOADED, "subsidiary": NOT_LOADED})


def person(p: Person, state: ProductiveState) -> dict[str, Any]:
    return resource("people", p.id, {
        "first_name": p.first_name,
        "last_name": p.last_name,
        "email": p.email,
        "title": p.roles[0] if p.roles else None,
        "avatar_url": None,
        "role_id": 2 if p.is_admin else 3,
        "archived_at": None,
        "deactivated_at": None if p.is_active else ts(p.updated_at),
        "joined_at": ts(p.created_at),
        "created_at": ts(p.created_at),
        "last_activity_at": ts(p.updated_at),
        "is_user": True,
        "virtual": False,
        "placeholder": False,
        "hrm_type_id": 1,
        "tag_list": [],
        "custom_fields": None,
        "external_id": None,
    }, {"organization": _org(state), "company": link("companies", None), "manager": link("people", None),
        "subsidiary": NOT_LOADED})


def project(p: Project, state: ProductiveState) -> dict[str, Any]:
    return resource("projects", p.id, {
        "name": p.name,
        "number": str(p.id % 1000),
        "project_number": p.code,
        "project_type_id": 2 if p.is_billable else 1,
        "project_color_id": None,
        "archived_at": None if p.is_active else ts(p.updated_at),
        "created_at": ts(p.created_at),
        "last_activity_at": ts(p.updated_at),
        "template": False,
        "public_access": False,
        "time_on_tasks": False,
        "custom_fields": None,
    }, {"organization": _org(state), "company": link("companies", p.client_id),
        "project_manager": link("people", p.manager_id), "workflow": NOT_LOADED, "memberships": NOT_LOADED})


def _deal_totals(agency: Agency) -> dict[int, tuple[int, int, int]]:
    """Per project: (worked minutes, billable minutes, budget used in cents). Each entry's
    revenue is its service's price x its billable minutes, rounded to the cent on the entry,
    as Productive keeps it; a running timer counts with its time so far."""
    out: dict[int, list[int]] = {}
    for e in agency.entries.values():
        p, t = agency.projects[e.project_id], agency.tasks[e.task_id]
        minutes = e.seconds // 60
        billable = minutes if e.billable else 0
        price = cents(p.hourly_rate or t.hourly_rate) if p.is_billable and t.billable_by_default else None
        row = out.setdefault(e.project_id, [0, 0, 0])
        row[0] += minutes
        row[1] += billable
        if price:
            row[2] += int((Decimal(price) * billable / 60).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return {pid: (a, b, c) for pid, (a, b, c) in out.items()}


def deal(agency: Agency, p: Project, state: ProductiveState) -> dict[str, Any]:
    currency = agency.clients[p.client_id].currency
    worked, billable, used = state.cached("deal_totals", agency.version, lambda: _deal_totals(agency)).get(p.id, (0, 0, 0))
    minutes = int(p.budget * 60) if p.budget_kind == "hours" and p.budget is not None else 0
    total = cents(p.budget) if p.budget_kind == "money" and p.budget is not None else 0
    attributes = {
        "name": p.name,
        "date": day(p.starts_on),
        "end_date": day(p.ends_on),
        "number": str(p.id % 1000),
        "deal_number": str(p.id % 1000),
        "deal_type_id": 2 if p.budget_is_monthly else 1,
        "budget": True,
        "time_approval": True,
        "retainer_interval": "month" if p.budget_is_monthly else None,
        "retainer_interval_count": 1 if p.budget_is_monthly else None,
        "budgeted_time": minutes,
        "estimated_time": minutes,
        "budget_warning": 80 if p.budget_kind else None,
        "probability": 100,
        "note": p.notes,
        "closed_at": None if p.is_active else ts(p.updated_at),
        "created_at": ts(p.created_at),
        "last_activity_at": ts(p.updated_at),
        "currency": currency,
        "currency_default": "EUR",
        "currency_normalized": "EUR",
        "budget_total": total,
        "worked_time": worked,
        "billable_time": billable,
        "budget_used": used,
    }
    if state.hide_money_budgets:
        del attributes["budget_total"]
        del attributes["budget_used"]
    return resource("deals", deal_id(p.id), attributes, {
        "organization": _org(state), "company": link("companies", p.client_id), "project": link("projects", p.id),
        "responsible": link("people", p.manager_id), "deal_status": NOT_LOADED, "contract": NOT_LOADED,
    })


def service(agency: Agency, sid: int, state: ProductiveState) -> dict[str, Any] | None:
    parts = service_parts(agency, sid)
    if parts is None:
        return None
    p, t = agency.projects[parts[0]], agency.tasks[parts[1]]
    rate = p.hourly_rate or t.hourly_rate
    billable = p.is_billable and t.billable_by_default
    return resource("services", sid, {
        "name": t.name,
        "position": _task_order(agency).index(t.id) + 1,
        "deleted_at": None if t.is_active else ts(t.updated_at),
        "billable": billable,
        "description": None,
        "time_tracking_enabled": True,
        "pricing_type_id": 2,
        "billing_type_id": 2 if billable else 3,
        "unit_id": 1,
        "quantity": "1.0",
        "currency": agency.clients[p.client_id].currency,
        "price": cents(rate) if billable and rate is not None else 0,
    }, {"organization": _org(state), "deal": link("deals", deal_id(p.id)), "service_type": NOT_LOADED,
        "person": link("people", None), "section": NOT_LOADED})


def time_entry(agency: Agency, e: Entry, state: ProductiveState) -> dict[str, Any]:
    minutes = e.seconds // 60
    running = e.is_running
    malformed = agency.malformed.get(e.id)
    hours = Decimal(e.seconds) / 3600
    attributes = {
        "date": "2025-02-30" if malformed == "bad_date" else day(e.spent_date),
        "created_at": ts(e.created_at),
        "time": "forty-five" if malformed == "bad_duration" else minutes,
        "billable_time": minutes if e.billable else 0,
        "note": f"<p>{html.escape(e.notes, quote=False)}</p>" if e.notes else e.notes,
        "track_method_id": 2 if e.timer_started_at is not None else 1,
        "started_at": ts(e.timer_started_at),
        "timer_started_at": ts(e.timer_started_at),
        "timer_stopped_at": None if running or e.timer_started_at is None else ts(e.updated_at),
        "approved": e.is_locked,
        "approved_at": ts(e.updated_at) if e.is_locked else None,
        "updated_at": ts(e.updated_at),
        "invoiced": e.invoice_id is not None,
        "invoice_attribution_id": e.invoice_id,
        "overhead": False,
        "rejected": False,
        "submitted": False,
        "last_activity_at": ts(e.updated_at),
        "currency": agency.clients[agency.projects[e.project_id].client_id].currency,
        "cost": cents(e.cost_rate * hours),
    }
    return resource("time_entries", e.id, attributes, {
        "organization": _org(state),
        "person": link("people", e.person_id),
        "service": link("services", service_id(agency, e.project_id, e.task_id)),
        "task": link("tasks", None),
        "approver": link("people", agency.owner.id if e.is_locked else None),
        "creator": link("people", e.person_id),
        "timesheet": NOT_LOADED,
    })


def _invoice_amounts(inv: Invoice) -> dict[str, int]:
    with_tax = cents(inv.amount) or 0
    paid = cents(inv.paid_amount) or 0
    if inv.state == "void":
        unpaid, written_off = 0, with_tax - paid
    else:
        unpaid, written_off = with_tax - paid, 0
    return {
        "amount": cents(inv.subtotal) or 0, "amount_tax": cents(inv.tax_amount) or 0, "amount_with_tax": with_tax,
        "amount_paid": paid, "amount_unpaid": unpaid, "amount_written_off": written_off,
        "amount_credited": 0, "amount_credited_with_tax": 0,
    }


def invoice(inv: Invoice, state: ProductiveState) -> dict[str, Any]:
    draft = inv.state == "draft"
    paid_at = inv.paid_at
    return resource("invoices", inv.id, {
        "number": None if draft else inv.number,
        "subject": inv.subject,
        "invoiced_on": day(inv.issue_date),
        "sent_on": day(inv.sent_at.date()) if inv.sent_at else None,
        "pay_on": day(inv.due_date),
        "paid_on": day(paid_at.date()) if paid_at else None,
        "finalized_on": None if draft else day(inv.issue_date),
        "deleted_at": None,
        "tax1_name": "VAT" if inv.tax_percent is not None else None,
        "tax1_value": float(inv.tax_percent) if inv.tax_percent is not None else None,
        "note": None,
        "created_at": ts(inv.created_at),
        "updated_at": ts(inv.updated_at),
        "last_activity_at": ts(inv.updated_at),
        "invoice_type_id": 1,
        "credited": False,
        "payment_terms": (inv.due_date - inv.issue_date).days,
        "currency": inv.currency,
        "currency_default": "EUR",
        "currency_normalized": "EUR",
        **_invoice_amounts(inv),
    }, {"organization": _org(state), "company": link("companies", inv.client_id),
        "deal": link("deals", deal_id(inv.project_id) if inv.project_id else None),
        "creator": link("people", inv.creator_id), "invoice_attributions": NOT_LOADED})


def payment(pay: Payment, currency: str, state: ProductiveState) -> dict[str, Any]:
    return resource("payments", pay.id, {
        "amount": cents(pay.amount),
        "currency": currency,
        "paid_on": day(pay.paid_date),
        "date": day(pay.paid_date),
        "note": pay.notes,
        "external_id": None,
        "written_off_on": None,
        "created_at": ts(pay.created_at),
        "updated_at": ts(pay.updated_at),
    }, {"organization": _org(state), "invoice": link("invoices", pay.invoice_id)})


def render(agency: Agency, state: ProductiveState, type_: str, id_: str) -> dict[str, Any] | None:
    """Any linked resource by (type, id), for `include`."""
    try:
        key = int(id_)
    except ValueError:
        return None
    if type_ == "services":
        return service(agency, key, state)
    if type_ == "deals":
        p = agency.projects.get(key - DEAL_BASE)
        return deal(agency, p, state) if p else None
    if type_ == "projects":
        p = agency.projects.get(key)
        return project(p, state) if p else None
    if type_ == "companies":
        c = agency.clients.get(key)
        return company(c, state) if c else None
    if type_ == "people":
        pe = agency.people.get(key)
        return person(pe, state) if pe else None
    if type_ == "invoices":
        inv = agency.invoices.get(key)
        return invoice(inv, state) if inv else None
    return None


# ---- query parameters ------------------------------------------------------------------------




def _datetime_arg(request: Request, name: str) -> int | None:
    """A datetime filter as epoch seconds; a bare date means its midnight UTC."""
    raw = request.arg(name)
    if raw in (None, ""):
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise BadRequest(f"{name} is not a valid ISO 8601 date and time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return to_epoch(value)


def _ids_arg(request: Request, name: str) -> set[int] | None:
    raw = request.arg(name)
    if raw in (None, ""):
        return None
    try:
        return {int(v) for v in raw.split(",") if v.strip()}
    except ValueError:
        raise BadRequest(f"{name} must be ids separated by commas") from None


def _link(request: Request, number: int, size: int) -> str:
    params = [(k, v) for k, v in request.query if k not in ("page[number]", "page[size]")]
    params += [("page[number]", str(number)), ("page[size]", str(size))]
    return f"{request.api_url}{request.path}?{urlencode(params)}"


def _includes(request: Request) -> list[list[str]]:
    raw = request.arg("include") or ""
    return [p.strip().split(".") for p in raw.split(",") if p.strip()]


def _included(agency: Agency, state: ProductiveState, rows: Sequence[dict[str, Any]], paths: list[list[str]]) -> list[dict[str, Any]]:
    """Walk each include path from the page's rows; every linked resource once.

    Then, as the real API does, keep linkage (`data`) only on the relationships the
    request named: on a row those named first in a path (`service` of `service.deal`), on
    an included resource those named after the step that reached it (`deal` on the
    service). Every other relationship but `organization` becomes `meta.included: false`.
    """
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    keep: dict[tuple[str, str], set[str]] = {}
    for path in paths:
        level: Iterable[dict[str, Any]] = rows
        for depth, name in enumerate(path):
            nxt: list[dict[str, Any]] = []
            for row in level:
                linkage = (row.get("relationships", {}).get(name) or {}).get("data")
                for ref in linkage if isinstance(linkage, list) else [linkage]:
                    if not isinstance(ref, dict):
                        continue
                    key = (ref["type"], ref["id"])
                    if key not in seen:
                        target = render(agency, state, *key)
                        if target is None:
                            continue
                        seen[key] = target
                    if depth + 1 < len(path):
                        keep.setdefault(key, set()).add(path[depth + 1])
                    nxt.append(seen[key])
            level = nxt
    named = {path[0] for path in paths}
    for row in rows:
        _only_included(row, named)
    for key, target in seen.items():
        _only_included(target, keep.get(key, set()))
    return list(seen.values())


def _only_included(res: dict[str, Any], names: set[str]) -> None:
    """Linkage only for `names` (and the organization); the rest reported not included."""
    rels = res.get("relationships") or {}
    res["relationships"] = {
        name: rel if name == "organization" or name in names else NOT_LOADED for name, rel in rels.items()
    }


def paginate(
    request: Request, agency: Agency, state: ProductiveState, items: Sequence[Any],
    render_one: Callable[[Any], dict[str, Any]],
) -> Response:
    size = int_arg(request, "page[size]") or DEFAULT_PAGE_SIZE
    if size < 1:
        raise BadRequest("page[size] must be at least 1")
    size = min(size, MAX_PAGE_SIZE)
    number = max(1, int_arg(request, "page[number]") or 1)
    total = len(items)
    total_pages = math.ceil(total / size)
    rows = [render_one(item) for item in items[(number - 1) * size: number * size]]
    links = {"first": _link(request, 1, size), "last": _link(request, max(1, total_pages), size)}
    if number < total_pages:
        links["next"] = _link(request, number + 1, size)
    if number > 1:
        links["prev"] = _link(request, number - 1, size)
    body: dict[str, Any] = {"data": rows}
    paths = _includes(request)
    included = _included(agency, state, rows, paths)  # also hides linkage not asked for
    if paths:
        body["included"] = included
    body["links"] = links
    body["meta"] = {
        "current_page": number, "total_pages": total_pages, "total_count": total,
        "page_size": size, "max_page_size": MAX_PAGE_SIZE,
    }
    return Response(200, body, {}, JSONAPI)


def _status_filter(request: Request, active: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """`filter[status]` 1 active, 2 archived/deactivated."""
    status = int_arg(request, "filter[status]")
    if status is None:
        return lambda item: True
    return lambda item: active(item) == (status == 1)


# ---- routes ----------------------------------------------------------------------------------
@ROUTES.get("/companies")
def companies(request: Request, agency: Agency, state: ProductiveState) -> Response:
    keep = _status_filter(request, lambda c: c.is_active)
    items = [c for _, c in sorted(agency.clients.items()) if keep(c)]
    return paginate(request, agency, state, items, lambda c: company(c, state))


@ROUTES.get("/people")
def people(request: Request, agency: Agency, state: ProductiveState) -> Response:
    keep = _status_filter(request, lambda p: p.is_active)
    items = [p for _, p in sorted(agency.people.items()) if keep(p)]
    return paginate(request, agency, state, items, lambda p: person(p, state))


@ROUTES.get("/projects")
def projects(request: Request, agency: Agency, state: ProductiveState) -> Response:
    keep = _status_filter(request, lambda p: p.is_active)
    company_ids = _ids_arg(request, "filter[company_id]")
    items = [p for _, p in sorted(agency.projects.items())
             if keep(p) and (company_ids is None or p.client_id in company_ids)]
    return paginate(request, agency, state, items, lambda p: project(p, state))


@ROUTES.get("/deals")
def deals(request: Request, agency: Agency, state: ProductiveState) -> Response:
    kind = int_arg(request, "filter[type]")
    project_ids = _ids_arg(request, "filter[project_id]")
    # every deal here is a budget (type 2); sales deals (type 1) do not exist in the agency
    items = [] if kind == 1 else [p for _, p in sorted(agency.projects.items())
                                  if project_ids is None or p.id in project_ids]
    return paginate(request, agency, state, items, lambda p: deal(agency, p, state))


def _services(agency: Agency) -> list[int]:
    return [service_id(agency, p.id, t) for _, p in sorted(agency.projects.items()) for t in p.task_ids]


@ROUTES.get("/services")
def services(request: Request, agency: Agency, state: ProductiveState) -> Response:
    deal_ids = _ids_arg(request, "filter[deal_id]")
    project_ids = _ids_arg(request, "filter[project_id]")
    items = [sid for sid in _services(agency)
             if (deal_ids is None or deal_id(sid // SERVICE_FACTOR) in deal_ids)
             and (project_ids is None or sid // SERVICE_FACTOR in project_ids)]
    return paginate(request, agency, state, items, lambda sid: service(agency, sid, state) or {})


SORTS = {"date", "-date", "updated_at", "-updated_at", "id", "-id"}


def _entries(request: Request, agency: Agency, state: ProductiveState) -> list[Entry]:
    sort = request.arg("sort") or "-date"
    if sort not in SORTS:
        raise BadRequest(f"sort must be one of {', '.join(sorted(SORTS))}")
    since = _datetime_arg(request, "filter[updated_at][gt_eq]")
    until = _datetime_arg(request, "filter[updated_at][lt_eq]")
    after, before = date_arg(request, "filter[after]"), date_arg(request, "filter[before]")
    people_ids = _ids_arg(request, "filter[person_id]")
    project_ids = _ids_arg(request, "filter[project_id]")
    service_ids = _ids_arg(request, "filter[service_id]")
    key = ("entries", sort, since, until, after, before, *(tuple(sorted(s)) if s else None
                                                          for s in (people_ids, project_ids, service_ids)))

    def build() -> list[Entry]:
        if sort.endswith("updated_at"):
            ids = agency.entry_ids_updated_since(from_epoch(since or 0))
            rows = [agency.entries[i] for i in ids]
            if sort.startswith("-"):
                rows.reverse()
        elif sort.endswith("date"):
            rows = list(agency.entries_by_date_desc())
            if not sort.startswith("-"):
                rows.reverse()
        else:
            rows = sorted(agency.entries.values(), key=lambda e: e.id, reverse=sort.startswith("-"))
        return [
            e for e in rows
            if (since is None or e.updated_at >= since) and (until is None or e.updated_at <= until)
            and (after is None or e.spent_date >= after) and (before is None or e.spent_date <= before)
            and (people_ids is None or e.person_id in people_ids)
            and (project_ids is None or e.project_id in project_ids)
            and (service_ids is None or service_id(agency, e.project_id, e.task_id) in service_ids)
        ]

    return state.cached(key, agency.version, build)


@ROUTES.get("/time_entries")
def time_entries(request: Request, agency: Agency, state: ProductiveState) -> Response:
    items = _entries(request, agency, state)
    return paginate(request, agency, state, items, lambda e: time_entry(agency, e, state))


@ROUTES.get(r"/time_entries/(?P<item_id>\d+)")
def one_time_entry(request: Request, agency: Agency, state: ProductiveState, item_id: str) -> Response:
    e = agency.entries.get(int(item_id))
    if e is None:
        return _errors(404, "Not found", "Record not found")
    row = time_entry(agency, e, state)
    paths = _includes(request)
    included = _included(agency, state, [row], paths)
    return Response(200, {"data": row, **({"included": included} if paths else {})}, {}, JSONAPI)


@ROUTES.get("/invoices")
def invoices(request: Request, agency: Agency, state: ProductiveState) -> Response:
    company_ids = _ids_arg(request, "filter[company_id]")
    items = sorted((i for i in agency.invoices.values() if company_ids is None or i.client_id in company_ids),
                   key=lambda i: (i.issue_date, i.id), reverse=True)
    return paginate(request, agency, state, items, lambda i: invoice(i, state))


@ROUTES.get("/payments")
def payments(request: Request, agency: Agency, state: ProductiveState) -> Response:
    invoice_ids = _ids_arg(request, "filter[invoice_id]")
    rows = [(p, inv.currency) for inv in agency.invoices.values() for p in inv.payments
            if invoice_ids is None or inv.id in invoice_ids]
    rows.sort(key=lambda r: (r[0].paid_at, r[0].id), reverse=True)
    return paginate(request, agency, state, rows, lambda r: payment(r[0], r[1], state))


def _snake(name: str) -> str:
    return "".join(("_" + c.lower()) if c.isupper() and i else c.lower() for i, c in enumerate(name))


@ROUTES.get("/activities")
def activities(request: Request, agency: Agency, state: ProductiveState) -> Response:
    """Destroy events from the agency's deletion log (the only events the sandbox records)."""
    event = request.arg("filter[event]")
    item_type = request.arg("filter[item_type]")
    after = _datetime_arg(request, "filter[after]")
    rows = [
        (n, d) for n, d in enumerate(agency.deletions)
        if (event in (None, "", "destroy"))
        and (item_type in (None, "") or _snake(item_type) == d.resource)
        and (after is None or to_epoch(d.deleted_at) >= after)
    ]
    rows.reverse()  # newest first

    def render_one(row: tuple[int, Any]) -> dict[str, Any]:
        n, d = row
        record = d.record
        changeset = []
        if isinstance(record, Entry):
            changeset = [{"time": [record.seconds // 60, None]}, {"date": [day(record.spent_date), None]},
                         {"note": [record.notes, None]}]
        return resource("activities", ACTIVITY_BASE + n + 1, {
            "event": "destroy",
            "item_type": "".join(part.capitalize() for part in d.resource.split("_")),
            "item_id": d.id,
            "item_name": None,
            "changeset": changeset,
            "created_at": ts(d.deleted_at),
        }, {"organization": _org(state), "creator": link("people", agency.owner.id)})

    return paginate(request, agency, state, rows, render_one)
