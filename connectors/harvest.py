"""Harvest API v2: clients, projects, people, tasks, task assignments, time entries, invoices, payments.

- Base URL: https://api.harvestapp.com/v2 (`base_url` in config overrides it, e.g. the sandbox).
- Auth: `Authorization: Bearer <personal access token>` (env var named by `token_env`),
  `Harvest-Account-Id: <account_id>`, and a `User-Agent` naming the app and a contact;
  without one Harvest answers 400.
- Paging: follow `links.next` verbatim until it is null (page numbers on older endpoints,
  opaque cursors on newer ones); `per_page` is at most 2000, more gives 422.
- Incremental: `updated_since=<ISO-8601 UTC>` on every list endpoint. No deletion feed:
  time entries are reconciled by listing ids over a `from=<date>` window.
- Rate limit: 100 requests per 15 s (reports: 100 per 15 min, not used here); 429 carries
  `Retry-After` in seconds.
- Check: `GET /users/me`, the cheapest authenticated call. It also tells a token that may
  not read a resource (403 after a working `/users/me`: a non-admin user) from a wrong
  token; `access()` lists what the token may read.
- Docs: https://help.getharvest.com/api-v2/ (notes in /work/shared/reference/apis.md §1).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from bridge import normalize as n
from bridge.config import SourceConfig
from bridge.connector import Access, Context, Page, Resource
from bridge.errors import ConfigError, FatalSourceError, ForbiddenError, RecordError
from bridge.http import RetryPolicy, client_for
from bridge.models import Client, Invoice, Payment, Person, Project, Synced, Task, TaskAssignment, TimeEntry
from bridge.pagination import NextLinkPager, dig
from connectors.access import Identity, guarded

BASE_URL = "https://api.harvestapp.com/v2"
PAGE_SIZE = 2000
RATE_LIMIT = (100, 15.0)  # requests, seconds
CHECK_PATH = "users/me"
# A child item (a payment) does not name its parent; pages() stamps the parent id on it
# under this key so that the normalizer stays a pure function of the item.
PARENT_ID_KEY = "_parent_id"

HOURS_BUDGETS = frozenset({"project", "task", "person"})
MONEY_BUDGETS = frozenset({"project_cost", "task_fees"})
CENT = Decimal("0.01")
EXACT = Decimal("0.0001")  # the store keeps money to 4 places
R = TypeVar("R", bound=Synced)


# --- normalizers: raw Harvest item -> record ------------------------------------------





def _client_currency(raw: Mapping[str, Any]) -> str | None:
    """Harvest gives money in the currency of the project's client, nested as `client.currency`."""
    client = raw.get("client")
    value = client.get("currency") if isinstance(client, Mapping) else None
    return None if value is None else n.currency(value, "client.currency")


def _day(raw: Mapping[str, Any], date_key: str, at_key: str, tz: ZoneInfo) -> dt.date | None:
    """A date field, or the day of its timestamp sibling in the agency's zone."""
    day = n.parse_date(raw.get(date_key), date_key)
    if day is None:
        at = n.parse_datetime(raw.get(at_key), at_key)
        day = at.astimezone(tz).date() if at is not None else None
    return day


def _common(raw: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    return {
        "source": ctx.source,
        "source_id": n.record_id(raw),
        "updated_at": n.parse_datetime(raw.get("updated_at"), "updated_at"),
    }



@n.record
def _client(raw: Mapping[str, Any], ctx: Context) -> Client:
    cur = raw.get("currency")
    return n.validated(Client, {
        **_common(raw, ctx),
        "name": n.required_text(raw),
        "currency": None if cur is None else n.currency(cur),
        "is_active": n.flag(raw, "is_active", True),
    })


def _budget(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Harvest's `budget_by` names both the unit and the scope; we keep the unit and amount."""
    by = raw.get("budget_by") or "none"
    period = "monthly" if n.flag(raw, "budget_is_monthly") else "total"
    none = {"budget_kind": None, "budget_period": None}
    if by in HOURS_BUDGETS:
        hours = raw.get("budget")
        seconds = None if hours is None else n.hours_to_seconds(hours, "budget")
        if seconds == 0:
            # `budget: 0.0` is what Harvest sends for a project budgeted per person (the
            # budgets live on the assignments): no project budget, never a 0-hour one.
            return none
        return {"budget_kind": "hours", "budget_period": period, "budget_seconds": seconds}
    if by in MONEY_BUDGETS:
        # A token without permission to see rates/amounts gets cost_budget null: the budget
        # exists but we cannot read it, which is not the same as a budget of 0.
        money = n.to_decimal(raw.get("cost_budget"), "cost_budget")
        if money is not None and money == 0:
            return none
        return {
            "budget_kind": "money", "budget_period": period,
            "budget_money": money, "budget_visible": money is not None,
        }
    if by == "none":
        return none
    raise RecordError(f"budget_by is {by!r}, not a known Harvest budget type", field="budget_by")


@n.record
def _project(raw: Mapping[str, Any], ctx: Context) -> Project:
    bill_by = n.text(raw.get("bill_by"))
    return n.validated(Project, {
        **_common(raw, ctx),
        "client_source_id": n.ref_id(raw.get("client")),
        "name": n.required_text(raw),
        "code": n.text(raw.get("code")),
        "is_active": n.flag(raw, "is_active", True),
        "is_billable": n.flag(raw, "is_billable", True),
        "currency": _client_currency(raw),
        **_budget(raw),
        "starts_on": n.parse_date(raw.get("starts_on"), "starts_on"),
        "ends_on": n.parse_date(raw.get("ends_on"), "ends_on"),
        "billing_method": None if bill_by is None or bill_by.lower() == "none" else bill_by.lower(),
        "hourly_rate": n.to_decimal(raw.get("hourly_rate"), "hourly_rate"),
        "fee": n.to_decimal(raw.get("fee"), "fee"),
        "notes": n.text(raw.get("notes")),
    })


def _role(raw: Mapping[str, Any]) -> str | None:
    for key in ("roles", "access_roles"):
        values = raw.get(key)
        if isinstance(values, list):
            for v in values:
                if n.text(v):
                    return n.text(v)
    return None


@n.record
def _person(raw: Mapping[str, Any], ctx: Context) -> Person:
    return n.validated(Person, {
        **_common(raw, ctx),
        "first_name": n.text(raw.get("first_name")) or "",
        "last_name": n.text(raw.get("last_name")) or "",
        "email": n.text(raw.get("email")),
        "role": _role(raw),
        "is_active": n.flag(raw, "is_active", True),
        "is_contractor": n.flag(raw, "is_contractor"),
        "default_hourly_rate": n.to_decimal(raw.get("default_hourly_rate"), "default_hourly_rate"),
        "cost_rate": n.to_decimal(raw.get("cost_rate"), "cost_rate"),
    })


@n.record
def _task(raw: Mapping[str, Any], ctx: Context) -> Task:
    return n.validated(Task, {
        **_common(raw, ctx),
        "name": n.required_text(raw),
        "is_billable_default": n.flag(raw, "billable_by_default", True),
        "is_active": n.flag(raw, "is_active", True),
        "default_hourly_rate": n.to_decimal(raw.get("default_hourly_rate"), "default_hourly_rate"),
    })


@n.record
def _task_assignment(raw: Mapping[str, Any], ctx: Context) -> TaskAssignment:
    project, task = n.ref_id(raw.get("project")), n.ref_id(raw.get("task"))
    if project is None:
        raise RecordError("project.id is missing", field="project")
    if task is None:
        raise RecordError("task.id is missing", field="task")
    budget = raw.get("budget")
    return n.validated(TaskAssignment, {
        **_common(raw, ctx),
        "project_source_id": project,
        "task_source_id": task,
        "is_billable": n.flag(raw, "billable", True),
        "is_active": n.flag(raw, "is_active", True),
        # 0 is what Harvest sends for "no task budget": none, never a 0-hour budget
        "budget_seconds": (None if budget is None else n.hours_to_seconds(budget, "budget")) or None,
        "hourly_rate": n.to_decimal(raw.get("hourly_rate"), "hourly_rate"),
    })


APPROVAL_STATES = frozenset({"unsubmitted", "submitted", "approved"})
APPROVED_LOCK = "approved"  # locked_reason "Item Approved and Locked for this Time Period"


def _approved(raw: Mapping[str, Any]) -> bool:
    """Approved through Harvest's timesheet approval, and nothing else.

    `approval_status` (newer payloads) is the answer when present. Older payloads mark an
    approved entry `is_closed`, or lock it with an approval reason; an entry locked because
    it was invoiced ("Item Invoiced and Locked for this Time Period") was never approved.
    """
    status = raw.get("approval_status")
    if status is not None:
        value = str(status).strip().lower()
        if value not in APPROVAL_STATES:
            raise RecordError(
                f"approval_status is {status!r}, not one of {', '.join(sorted(APPROVAL_STATES))}",
                field="approval_status",
            )
        return value == "approved"
    if n.flag(raw, "is_closed"):
        return True
    reason = str(raw.get("locked_reason") or "").lower()
    return n.flag(raw, "is_locked") and APPROVED_LOCK in reason


@n.record
def _time_entry(raw: Mapping[str, Any], ctx: Context) -> TimeEntry:
    # `hours` includes a running timer's time so far; the next sync brings the final value.
    hours = n.to_decimal(raw.get("hours"), "hours")
    seconds = n.hours_to_seconds(hours, "hours")
    is_billable = n.flag(raw, "billable")
    rate = n.to_decimal(raw.get("billable_rate"), "billable_rate")
    # kept to the store's 4 places, not cents: money is summed first and rounded once, for display
    amount = (hours * rate).quantize(EXACT, rounding=ROUND_HALF_UP) if is_billable and rate is not None else None
    return n.validated(TimeEntry, {
        **_common(raw, ctx),
        "client_source_id": n.ref_id(raw.get("client")),
        "project_source_id": n.ref_id(raw.get("project")),
        "person_source_id": n.ref_id(raw.get("user")),
        "task_source_id": n.ref_id(raw.get("task")),
        "spent_date": n.require_date(raw.get("spent_date"), "spent_date"),
        "seconds": seconds,
        "is_billable": is_billable,
        "is_running": n.flag(raw, "is_running"),
        "is_invoiced": n.flag(raw, "is_billed"),
        "is_approved": _approved(raw),
        "invoice_source_id": n.ref_id(raw.get("invoice")),
        "notes": n.text(raw.get("notes")),
        "billable_rate": rate,
        "cost_rate": n.to_decimal(raw.get("cost_rate"), "cost_rate"),
        "billable_amount": amount,
        "currency": _client_currency(raw),
    })


def _required_money(raw: Mapping[str, Any], key: str) -> Decimal:
    value = n.to_decimal(raw.get(key), key)
    if value is None:
        raise RecordError(f"{key} is missing", field=key)
    return value


@n.record
def _invoice(raw: Mapping[str, Any], ctx: Context) -> Invoice:
    amount = _required_money(raw, "amount")
    due_amount = _required_money(raw, "due_amount")
    due_date = n.parse_date(raw.get("due_date"), "due_date")
    return n.validated(Invoice, {
        **_common(raw, ctx),
        "client_source_id": n.ref_id(raw.get("client")),
        "number": n.text(raw.get("number")),
        "issue_date": n.parse_date(raw.get("issue_date"), "issue_date"),
        "due_date": due_date,
        "paid_date": _day(raw, "paid_date", "paid_at", ctx.tz),
        "period_start": n.parse_date(raw.get("period_start"), "period_start"),
        "period_end": n.parse_date(raw.get("period_end"), "period_end"),
        "amount": amount,
        "due_amount": due_amount,
        "currency": n.currency(raw.get("currency")),
        "status": n.invoice_status(
            "harvest", raw.get("state"), amount=amount, due_amount=due_amount, due_date=due_date, today=ctx.today,
            # a draft that already has a payment (seen in recorded responses) is not a draft
            received=raw.get("paid_at") is not None or raw.get("paid_date") is not None,
        ),
        "subject": n.text(raw.get("subject")),
    })


@n.record
def _payment(raw: Mapping[str, Any], ctx: Context) -> Payment:
    invoice = n.ref_id(raw.get(PARENT_ID_KEY))
    if invoice is None:
        raise RecordError("the payment's invoice id is missing", field=PARENT_ID_KEY)
    return n.validated(Payment, {
        **_common(raw, ctx),
        "invoice_source_id": invoice,
        "amount": _required_money(raw, "amount"),
        "currency": None,  # not in the payment payload; the invoice carries it
        "paid_date": _day(raw, "paid_date", "paid_at", ctx.tz),
    })


def _may_have_payments(invoice: Invoice) -> bool:
    """Only an invoice with less due than its total can have payments: the rest cost no request."""
    return invoice.amount is None or invoice.due_amount is None or invoice.due_amount < invoice.amount


# --- resources, in sync order: reference data before what refers to it -----------------

RESOURCES: Mapping[str, Resource] = MappingProxyType({
    r.name: r
    for r in (
        Resource("clients", "clients", "clients", _client, Client),
        Resource("projects", "projects", "projects", _project, Project),
        Resource("people", "users", "users", _person, Person),
        Resource("tasks", "tasks", "tasks", _task, Task),
        Resource("task_assignments", "task_assignments", "task_assignments", _task_assignment, TaskAssignment),
        Resource("time_entries", "time_entries", "time_entries", _time_entry, TimeEntry, reconcile="window"),
        Resource("invoices", "invoices", "invoices", _invoice, Invoice),
        Resource(
            "payments", "invoices/{parent_id}/payments", "invoice_payments", _payment, Payment,
            parent="invoices", reconcile=None, parent_key="invoice_source_id", parent_filter=_may_have_payments,
        ),
    )
})


# Who may list what, from the "Required permissions" section of each Harvest v2 page; a
# 403 on a resource names it, so the agency knows which permission to give.
ROLE_NEEDED: Mapping[str, str] = MappingProxyType({
    "clients": "an Administrator, or a Manager with permission to create and edit clients",
    "projects": "an Administrator, or a Manager (who sees the projects they manage)",
    "people": "an Administrator, or a Manager (who sees the people they manage)",
    "tasks": "an Administrator, or a Manager with permission to create and edit tasks",
    "task_assignments": "an Administrator, or a Manager of the projects",
    "time_entries": "any user; a Member sees only their own time, a Manager their projects' time",
    "invoices": "an Administrator, or a Manager with permission to create and edit invoices",
    "payments": "an Administrator, or a Manager with permission to create and edit invoices",
})


def _who(me: Any) -> str:
    if not isinstance(me, Mapping):
        return "unknown user"
    name = " ".join(p for p in (n.text(me.get("first_name")), n.text(me.get("last_name"))) if p)
    return name or n.text(me.get("email")) or f"user {me.get('id')}"


def _roles(me: Any) -> list[str]:
    roles = me.get("access_roles") if isinstance(me, Mapping) else None
    return [str(r) for r in roles] if isinstance(roles, list) else []


def rates_visible(me: Any) -> bool | None:
    """`can_see_rates` when Harvest sends it; an administrator always sees rates."""
    if not isinstance(me, Mapping):
        return None
    if isinstance(me.get("can_see_rates"), bool):
        return bool(me["can_see_rates"])
    if me.get("is_admin") is True or "administrator" in _roles(me):
        return True
    return None


def permission_advice(resource: str, me: Any) -> str:
    roles = ", ".join(_roles(me)) or ("administrator" if isinstance(me, Mapping) and me.get("is_admin") else "member")
    need = ROLE_NEEDED.get(resource, "an Administrator")
    return (
        f"in Harvest, listing {resource} needs {need}; this token belongs to {_who(me)} (access roles: {roles}). "
        "Give that user the permission (Team > the person > Permissions), or use a token of a user who has it."
    )


def _utc_z(since: dt.datetime) -> str:
    if since.tzinfo is None:
        raise ValueError("since must be an aware datetime")
    return since.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- wiring -------------------------------------------------------------------------------


class HarvestConnector:
    """Harvest v2 over the shared HTTP client; see the module docstring for the API facts."""

    kind: ClassVar[str] = "harvest"
    resources: ClassVar[Mapping[str, Resource]] = RESOURCES

    def __init__(
        self,
        source: SourceConfig,
        *,
        tz: ZoneInfo,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not source.account_id:
            raise ConfigError(f"sources '{source.name}': account_id is not set; it is the Harvest account id")
        token = source.secret("token_env")  # ConfigError naming the variable if unset
        self.name = source.name
        self.tz = tz
        headers = {
            "Authorization": f"Bearer {token}",
            "Harvest-Account-Id": source.account_id,
            "User-Agent": source.user_agent,
            "Accept": "application/json",
        }
        self.http = client_for(
            source,
            base_url=source.base_url or BASE_URL,
            windows=[RATE_LIMIT],
            headers=lambda: headers,
            secrets=lambda: [token],
            transport=transport, retry=retry, sleep=sleep, clock=clock,
            auth_advice=(
                f"check that the environment variable {source.token_env} holds a valid Harvest personal "
                f"access token and that account_id {source.account_id} is the Harvest account it belongs to"
            ),
        )
        self.limiter = self.http.limiter
        self.pager = NextLinkPager("links.next")
        self.identity = Identity(lambda: self.http.get_json(CHECK_PATH, resource="users/me"))

    @property
    def requests(self) -> int:
        return self.http.requests

    def check(self) -> None:
        self.identity.remember(self.http.get_json(CHECK_PATH, resource="check"))

    def access(self) -> Access:
        """Who the token is, whether it sees rates, and which resources it may list (one
        request each, `per_page=1`)."""
        me = self.identity.remember(self.http.get_json(CHECK_PATH, resource="check"))
        readable: dict[str, bool] = {}
        for res in self.resources.values():
            if res.parent:
                readable[res.name] = readable.get(res.parent, True)  # read through the parent
                continue
            try:
                self.http.get_json(res.path, {"per_page": 1, **res.params}, resource=res.name)
                readable[res.name] = True
            except ForbiddenError:
                readable[res.name] = False
        facts = {k: me.get(k) for k in ("is_admin", "can_see_rates", "access_roles") if isinstance(me, Mapping) and k in me}
        return Access(
            who=_who(me), facts=facts, rates_visible=rates_visible(me), readable=readable,
            advice={r: permission_advice(r, me) for r, ok in readable.items() if not ok},
        )

    def pages(
        self,
        resource: str,
        since: dt.datetime | None,
        *,
        resume: str | None = None,
        parent_id: str | None = None,
    ) -> Iterator[Page]:
        res = self._resource(resource)
        params: dict[str, Any] = {"per_page": PAGE_SIZE, **res.params}
        if since is not None and res.incremental:
            params["updated_since"] = _utc_z(since)
        yield from self._pages(res, params, resume=resume, parent_id=parent_id)

    def ids(self, resource: str, window_start: dt.date | None) -> Iterator[str]:
        res = self._resource(resource)
        if res.reconcile is None or res.parent:
            raise ValueError(f"harvest: {resource} has no id listing to reconcile against")
        params: dict[str, Any] = {"per_page": PAGE_SIZE, **res.params}
        if res.reconcile == "window" and window_start is not None:
            params["from"] = window_start.isoformat()  # on spent_date
        for page in self._pages(res, params):
            for item in page.items:
                sid = n.ref_id(item.get("id")) if isinstance(item, Mapping) else None
                if sid is None:
                    # A reconcile pass must not guess: an id it cannot read could be taken for a deletion.
                    raise FatalSourceError(
                        f"{self.name}: {resource} listed an item without an id", source=self.name, resource=resource
                    )
                yield sid

    def deleted_ids(self, resource: str, since: dt.datetime | None) -> Iterator[str]:
        """Harvest has no deletion feed; deletions are found by `ids()` reconciliation."""
        yield from ()

    def close(self) -> None:
        self.http.close()

    def _resource(self, name: str) -> Resource:
        try:
            return self.resources[name]
        except KeyError:
            raise ValueError(f"harvest has no resource {name!r}; known: {', '.join(self.resources)}") from None

    def _pages(
        self, res: Resource, params: Mapping[str, Any], *, resume: str | None = None, parent_id: str | None = None
    ) -> Iterator[Page]:
        if res.parent and parent_id is None:
            raise ValueError(f"harvest: {res.name} is fetched per {res.parent} row; pass parent_id")
        path = res.path.format(parent_id=quote(str(parent_id), safe="")) if res.parent else res.path
        bodies = guarded(
            self.pager.pages(self.http, path, params, resume=resume, resource=res.name),
            identity=self.identity, source=self.name, resource=res.name,
            advice=lambda me: permission_advice(res.name, me),
        )
        for body, nxt in bodies:
            items = dig(body, res.items_key)
            if not isinstance(items, list):
                raise FatalSourceError(
                    f"{self.name}: {res.name} page has no '{res.items_key}' list; the API answered an unexpected shape",
                    source=self.name, resource=res.name,
                )
            if parent_id is not None:
                items = [{**item, PARENT_ID_KEY: parent_id} if isinstance(item, Mapping) else item for item in items]
            yield Page(items=items, resume=nxt)
