"""Productive.io: companies, people, services, projects with their budgets, time entries, invoices, payments.

- Base URL: https://api.productive.io/api/v2 (`base_url` in config overrides it, e.g. the sandbox).
- Auth: `X-Auth-Token: <personal API token>` (env var named by `token_env`) and
  `X-Organization-Id: <organization_id>`; every request also sends
  `Content-Type: application/vnd.api+json`, without which Productive answers 415.
- Format: JSON:API. Lists are `data[]` with `attributes` and `relationships`; linked
  resources asked for with `include=` arrive in `included[]` (connectors/jsonapi.py
  flattens both into one dict per item before a normalizer sees it).
- Paging: `page[number]` (1-based) and `page[size]` (at most 200); stop at `meta.total_pages`.
- Incremental: time entries take `filter[updated_at][gt_eq]=<ISO datetime>` and are read
  newest change first (`sort=-updated_at`): an edit made while we page shifts entries
  towards later pages (seen twice, harmless), and the edited entry itself is newer than the
  run's start, where the next run's cursor begins. The reference data (companies, people, services,
  projects, budgets) and invoices/payments are small and listed in full.
- Deletions: `/activities?filter[item_type]=time_entry&filter[event]=destroy&filter[after]=<last
  reconcile>` names deleted time entries; a window reconciliation of time entry ids (from
  `filter[after]=<date>`) backs it up, since the event and item_type spellings are
  unconfirmed. Other resources are reconciled against a full listing.
- Linkage: a relationship carries `data` only when the request names it in `include=`
  (recorded from the live API: every other one but `organization` is
  `{"meta": {"included": false}}`). Each resource therefore asks for exactly what its
  normalizer reads (INCLUDES), normalizers read links through `jsonapi.link_id`, which
  refuses a relationship reported as not included, and tests/connectors/test_contract.py
  fails when a normalizer reads one the request never asked for.
- Time -> project -> client: an entry links only to its service; `include=service.deal.project`
  and `service.deal.company` bring the service, its deal (budget), and the deal's project
  and company in the same response, so no request per entry is needed.
- Budgets are deals with `budget: true` (`/deals?filter[type]=2`). Projects have no budget
  fields of their own, so the projects resource first lists the budgets, then attaches
  each project's budgets to it; the one project normalizer writes the whole row, budget
  included (two resources writing partial rows would overwrite each other in the store).
- Money is in minor units (cents; UNCONFIRMED), divided by `money_scale` (default 100);
  durations are integer minutes.
- Rate limits: 100 requests / 10 s and 4000 / 30 min (reports 10 / 30 s, not used); 429.
- Check: `GET /people?page[size]=1`.
- Docs: https://developer.productive.io (notes in /work/shared/reference/apis.md §3).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser
from types import MappingProxyType
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx

from bridge import normalize as n
from bridge.config import SourceConfig
from bridge.connector import Access, Context, Page, Resource
from bridge.errors import ConfigError, FatalSourceError, ForbiddenError, NotPermitted, RecordError
from bridge.http import RetryPolicy, client_for
from bridge.models import Client, Invoice, Payment, Person, Project, Task, TimeEntry
from bridge.pagination import PageNumberPager
from connectors import jsonapi
from connectors.access import Identity, guarded

BASE_URL = "https://api.productive.io/api/v2"
JSONAPI = "application/vnd.api+json"
PAGE_SIZE = 200  # meta.max_page_size
RATE_LIMITS = [(100, 10.0), (4000, 1800.0)]  # (requests, seconds), both enforced
DEFAULT_MONEY_SCALE = 100
CHECK_PATH = "people"
BUDGETS_PATH = "deals"
# What each listing must name in include= (linkage comes only for what is named): exactly
# the relationships its normalizer reads. test_contract.py holds the normalizers to it.
INCLUDES: Mapping[str, str] = MappingProxyType({
    "projects": "company",
    "budgets": "project,company",
    "time_entries": "person,service,service.deal,service.deal.project,service.deal.company",
    "invoices": "company",
    "payments": "invoice",
})
BUDGETS_PARAMS: Mapping[str, Any] = MappingProxyType({"filter[type]": 2, "include": INCLUDES["budgets"]})
ACTIVITIES_PATH = "activities"
# Where pages() puts a project's budgets (flattened deals), for the pure project normalizer.
BUDGETS_KEY = "budgets"
# Set by pages() when the token may not list budgets (deals): the budget is unknown, not none.
BUDGETS_HIDDEN = "_budgets_hidden"
HOUR_UNIT = 1  # service unit_id: 1 hour (2 piece, 3 day; UNCONFIRMED order)
INTERNAL_PROJECT_TYPE = 1  # project_type_id 1 internal, 2 client (UNCONFIRMED)
CENT = Decimal("0.01")
EXACT = Decimal("0.0001")  # the store keeps money to 4 places


# --- small pure helpers --------------------------------------------------------------


class _TextOnly(HTMLParser):
    """Collects the text of an HTML fragment; block elements become line breaks."""

    BLOCKS = frozenset({"p", "div", "br", "li", "ul", "ol", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre"})
    DROP = frozenset({"script", "style"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._drop = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.DROP:
            self._drop += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.DROP:
            self._drop = max(0, self._drop - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._drop:
            self.parts.append(data)


def html_to_text(value: Any) -> str | None:
    """Productive notes are HTML (`<p>…</p>`): plain text, one line per block, or None."""
    if value is None:
        return None
    raw = str(value)
    if "<" not in raw and "&" not in raw:
        return n.text(raw)
    inner = raw[3:-4] if raw.startswith("<p>") and raw.endswith("</p>") else None
    if inner is not None and "<" not in inner and "&" not in inner:
        return _tidy(inner)  # the common `<p>plain text</p>`, without the parser's cost
    parser = _TextOnly()
    parser.feed(raw)
    parser.close()
    return _tidy("".join(parser.parts))


def _tidy(text: str) -> str | None:
    """Collapse spaces within lines, drop empty lines; empty becomes None."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return n.text("\n".join(line for line in lines if line))





def _minutes(raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key)
    if value is None:
        return 0
    minutes = n.to_int(value, key)
    if minutes < 0:
        raise RecordError(f"{key} is negative ({minutes})", field=key)
    return minutes


def _money(raw: Mapping[str, Any], key: str, scale: int) -> Decimal | None:
    return n.to_decimal(raw.get(key), key, scale=scale)


def _required_money(raw: Mapping[str, Any], key: str, scale: int) -> Decimal:
    value = _money(raw, key, scale)
    if value is None:
        raise RecordError(f"{key} is missing", field=key)
    return value


def _currency(raw: Mapping[str, Any], key: str = "currency") -> str | None:
    value = raw.get(key)
    return None if value is None else n.currency(value, key)


def _latest(*stamps: dt.datetime | None) -> dt.datetime | None:
    present = [s for s in stamps if s is not None]
    return max(present) if present else None


def _changed_at(raw: Mapping[str, Any]) -> dt.datetime | None:
    """Productive gives `updated_at` on some resources and only `last_activity_at` on others."""
    return _latest(
        n.parse_datetime(raw.get("updated_at"), "updated_at"),
        n.parse_datetime(raw.get("last_activity_at"), "last_activity_at"),
    )


def _common(raw: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    return {"source": ctx.source, "source_id": n.record_id(raw), "updated_at": _changed_at(raw)}



# --- normalizers: one flattened Productive resource -> record --------------------------


@n.record
def _client(raw: Mapping[str, Any], ctx: Context) -> Client:
    return n.validated(Client, {
        **_common(raw, ctx),
        "name": n.required_text(raw),
        "currency": _currency(raw, "default_currency"),
        "is_active": raw.get("archived_at") is None,
    })


@n.record
def _person(raw: Mapping[str, Any], ctx: Context) -> Person:
    return n.validated(Person, {
        **_common(raw, ctx),
        "first_name": n.text(raw.get("first_name")) or "",
        "last_name": n.text(raw.get("last_name")) or "",
        "email": n.text(raw.get("email")),
        "role": n.text(raw.get("title")),
        "is_active": raw.get("deactivated_at") is None and raw.get("archived_at") is None,
    })


def _hourly_price(service: Mapping[str, Any], scale: int) -> Decimal | None:
    """A service's price is per its unit; only an hourly price is a rate for time."""
    if service.get("unit_id") not in (None, HOUR_UNIT):
        return None
    return _money(service, "price", scale)


@n.record
def _task(raw: Mapping[str, Any], ctx: Context, *, scale: int = DEFAULT_MONEY_SCALE) -> Task:
    """Productive tracks time on services (a deal's line of work); they are our tasks."""
    billable = n.flag(raw, "billable", True)
    return n.validated(Task, {
        **_common(raw, ctx),
        "name": n.required_text(raw),
        "is_billable_default": billable,
        "is_active": raw.get("deleted_at") is None,
        "default_hourly_rate": _hourly_price(raw, scale) if billable else None,
    })


def budget_fields(deals: Sequence[Mapping[str, Any]], scale: int = DEFAULT_MONEY_SCALE) -> dict[str, Any]:
    """The Project budget columns from the project's budget deals.

    `budgeted_time` (minutes) gives an hours budget, `budget_total` (minor units) a money
    budget; when a deal has both, both amounts are kept and the kind is hours (what a
    client portal shows first). A retainer with `retainer_interval: month` is monthly.
    0 and 0 means no budget: None, never 0. Several budgets on one project are added up
    (open ones only, when any is open); a money sum is only made within one currency.
    """
    budgets = [d for d in deals if isinstance(d, Mapping) and d.get("budget") is not False]
    none = {"budget_kind": None, "budget_period": None, "budget_seconds": None, "budget_money": None}
    if not budgets:
        return none
    open_ = [d for d in budgets if d.get("closed_at") is None]
    chosen = open_ or budgets
    # A money amount this token may not read is absent, not 0: say so instead of guessing.
    hidden = any("budget_total" not in d for d in chosen)
    minutes = sum(_minutes(d, "budgeted_time") for d in chosen)
    totals = [(_money(d, "budget_total", scale) or Decimal(0), _currency(d)) for d in chosen]
    currencies = {c for amount, c in totals if amount}
    money = sum((amount for amount, _ in totals), Decimal(0)) if len(currencies) <= 1 else None
    monthly = any(str(d.get("retainer_interval") or "").lower() == "month" for d in chosen)
    out = {
        **none,
        "budget_seconds": minutes * 60 if minutes else None,
        "budget_money": money if money else None,
        "budget_visible": not (hidden and not minutes),
        "currency": next(iter(currencies)) if len(currencies) == 1 else _currency(chosen[0]),
    }
    if minutes:
        out["budget_kind"] = "hours"
    elif money:
        out["budget_kind"] = "money"
    if out["budget_kind"] is not None:
        out["budget_period"] = "monthly" if monthly else "total"
    starts = [n.parse_date(d.get("date"), "date") for d in chosen]
    ends = [n.parse_date(d.get("end_date"), "end_date") for d in chosen]
    out["starts_on"] = min((s for s in starts if s), default=None)
    out["ends_on"] = None if any(e is None for e in ends) else max(ends)  # type: ignore[type-var]
    return out


@n.record
def _project(raw: Mapping[str, Any], ctx: Context, *, scale: int = DEFAULT_MONEY_SCALE) -> Project:
    deals = raw.get(BUDGETS_KEY) or []
    # A budget edit changes the deal, not the project: the row's change time must see both,
    # or the store would take the edited row for unchanged and keep the old budget.
    changed = _latest(_changed_at(raw), *(_changed_at(d) for d in deals if isinstance(d, Mapping)))
    return n.validated(Project, {
        **_common(raw, ctx),
        "updated_at": changed,
        "client_source_id": jsonapi.link_id(raw, "company"),
        "name": n.required_text(raw),
        "code": n.text(raw.get("project_number")) or n.text(raw.get("number")),
        "is_active": raw.get("archived_at") is None,
        "is_billable": raw.get("project_type_id") != INTERNAL_PROJECT_TYPE,
        **budget_fields(deals, scale),
        **({"budget_visible": False} if raw.get(BUDGETS_HIDDEN) else {}),
    })


@n.record
def _time_entry(raw: Mapping[str, Any], ctx: Context, *, scale: int = DEFAULT_MONEY_SCALE) -> TimeEntry:
    if raw.get("time") is None:
        raise RecordError("time is missing", field="time")
    minutes = _minutes(raw, "time")
    billable_minutes = _minutes(raw, "billable_time")
    jsonapi.link_id(raw, "service", "deal")  # raises if the request left the service's deal out
    service = raw.get("service") if isinstance(raw.get("service"), Mapping) else {}
    deal = service.get("deal") if isinstance(service.get("deal"), Mapping) else {}
    rate = _hourly_price(service, scale) if billable_minutes else None
    # kept to the store's 4 places, not cents: money is summed first and rounded once, for display
    amount = (rate * billable_minutes / 60).quantize(EXACT, rounding=ROUND_HALF_UP) if rate is not None else None
    running = raw.get("timer_started_at") is not None and raw.get("timer_stopped_at") is None
    return n.validated(TimeEntry, {
        **_common(raw, ctx),
        "updated_at": n.parse_datetime(raw.get("updated_at"), "updated_at") or _changed_at(raw),
        # the entry's budget (deal) knows its project and company
        "client_source_id": jsonapi.link_id(deal, "company"),
        "project_source_id": jsonapi.link_id(deal, "project"),
        "person_source_id": jsonapi.link_id(raw, "person"),
        "task_source_id": jsonapi.link_id(raw, "service"),
        "spent_date": n.require_date(raw.get("date"), "date"),
        "seconds": minutes * 60,
        "is_billable": billable_minutes > 0,
        "is_running": running,
        "is_invoiced": n.flag(raw, "invoiced"),
        "is_approved": n.flag(raw, "approved"),
        "notes": html_to_text(raw.get("note")),
        "billable_rate": rate,
        "billable_amount": amount,
        "currency": _currency(service) or _currency(raw),
    })


def _invoice_state(raw: Mapping[str, Any], scale: int) -> str:
    """Productive stores no state string: derive the lifecycle the shared rules refine."""
    if raw.get("deleted_at") is not None:
        return "void"
    if raw.get("finalized_on") is None:
        return "draft"
    unpaid = _money(raw, "amount_unpaid", scale)
    paid = _money(raw, "amount_paid", scale) or Decimal(0)
    cancelled = (_money(raw, "amount_written_off", scale) or Decimal(0)) + (
        _money(raw, "amount_credited_with_tax", scale) or Decimal(0)
    )
    # written off or credited in full with nothing paid: the invoice no longer asks for money
    if unpaid is not None and unpaid <= 0 and paid <= 0 and cancelled > 0:
        return "void"
    return "finalized"


@n.record
def _invoice(raw: Mapping[str, Any], ctx: Context, *, scale: int = DEFAULT_MONEY_SCALE) -> Invoice:
    amount = _money(raw, "amount_with_tax", scale)
    if amount is None:
        amount = _required_money(raw, "amount", scale)
    due_amount = _required_money(raw, "amount_unpaid", scale)
    state = _invoice_state(raw, scale)
    due_date = n.parse_date(raw.get("pay_on"), "pay_on")
    return n.validated(Invoice, {
        **_common(raw, ctx),
        "updated_at": n.parse_datetime(raw.get("updated_at"), "updated_at") or _changed_at(raw),
        "client_source_id": jsonapi.link_id(raw, "company"),
        "number": n.text(raw.get("number")),
        "issue_date": n.parse_date(raw.get("invoiced_on"), "invoiced_on"),
        "due_date": due_date,
        "paid_date": n.parse_date(raw.get("paid_on"), "paid_on"),
        "amount": amount,
        # a draft asks for nothing yet but will ask for all of it; void asks for nothing
        "due_amount": Decimal(0) if state == "void" else due_amount,
        "currency": n.currency(raw.get("currency")),
        "status": n.invoice_status(
            "productive", state, amount=amount, due_amount=due_amount, due_date=due_date, today=ctx.today
        ),
        "subject": n.text(raw.get("subject")),
    })


@n.record
def _payment(raw: Mapping[str, Any], ctx: Context, *, scale: int = DEFAULT_MONEY_SCALE) -> Payment:
    invoice = jsonapi.link_id(raw, "invoice")
    if invoice is None:
        raise RecordError("the payment's invoice is missing", field="invoice")
    return n.validated(Payment, {
        **_common(raw, ctx),
        "invoice_source_id": invoice,
        "amount": _required_money(raw, "amount", scale),
        "currency": _currency(raw),
        "paid_date": n.parse_date(raw.get("paid_on") or raw.get("date"), "paid_on"),
    })


def attach_budgets(projects: list[dict[str, Any]], deals: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Give each flattened project the flattened budget deals that point at it."""
    by_project: dict[str, list[Mapping[str, Any]]] = {}
    for deal in deals:
        pid = jsonapi.link_id(deal, "project")
        if pid is not None and deal.get("budget") is not False:
            by_project.setdefault(pid, []).append(deal)
    return [{**p, BUDGETS_KEY: by_project.get(str(p.get("id")), [])} for p in projects]


# --- resources, in sync order: reference data before what refers to it -----------------

RESOURCES: Mapping[str, Resource] = MappingProxyType({
    r.name: r
    for r in (
        Resource("clients", "companies", None, _client, Client, incremental=False),
        Resource("people", "people", None, _person, Person, incremental=False),
        Resource("tasks", "services", None, _task, Task, incremental=False),
        # Not reconciled: whether /projects lists archived projects by default is unconfirmed,
        # and taking an archived project for a deleted one would hide its history.
        Resource(
            "projects", "projects", None, _project, Project, incremental=False, reconcile=None,
            params={"include": INCLUDES["projects"]},
        ),
        Resource(
            "time_entries", "time_entries", None, _time_entry, TimeEntry, reconcile="window",
            params={"include": INCLUDES["time_entries"], "sort": "-updated_at"},
        ),
        Resource("invoices", "invoices", None, _invoice, Invoice, incremental=False, params={"include": INCLUDES["invoices"]}),
        Resource("payments", "payments", None, _payment, Payment, incremental=False, params={"include": INCLUDES["payments"]}),
    )
})
# Normalizers that read money take the source's money_scale; the connector binds it.
_SCALED = frozenset({"tasks", "projects", "time_entries", "invoices", "payments"})
# item_type as Productive writes it in activities ("TimeEntry"), and as the filter takes it.
DELETION_FEEDS: Mapping[str, str] = MappingProxyType({"time_entries": "time_entry"})
DESTROY_EVENTS = frozenset({"destroy", "delete"})


def _permission_advice(resource: str) -> str:
    return (
        f"in Productive, the token's user needs a role that may view {resource} "
        "(Settings > Roles and permissions; budgets and invoices need the financial permissions), "
        "or use a token of a user who has one."
    )


def _iso(since: dt.datetime) -> str:
    if since.tzinfo is None:
        raise ValueError("since must be an aware datetime")
    return since.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _snake(name: Any) -> str:
    """'TimeEntry' or 'time_entry' -> 'time_entry'."""
    out = []
    for i, ch in enumerate(str(name)):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


# --- wiring -------------------------------------------------------------------------------


class ProductiveConnector:
    """Productive over the shared HTTP client; see the module docstring for the API facts."""

    kind: ClassVar[str] = "productive"
    resources: Mapping[str, Resource] = RESOURCES

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
        if not source.organization_id:
            raise ConfigError(
                f"sources '{source.name}': organization_id is not set; it is the Productive organization id "
                "(Settings › API integrations)"
            )
        token = source.secret("token_env")  # ConfigError naming the variable if unset
        self.name = source.name
        self.organization_id = str(source.organization_id)
        self.tz = tz
        self.money_scale = source.money_scale or DEFAULT_MONEY_SCALE
        # Per instance: the money normalizers get this source's scale bound in.
        self.resources = MappingProxyType({
            name: replace(res, normalize=functools.partial(res.normalize, scale=self.money_scale))
            if name in _SCALED else res
            for name, res in RESOURCES.items()
        })
        headers = {
            "X-Auth-Token": token,
            "X-Organization-Id": str(source.organization_id),
            "Content-Type": JSONAPI,
            "Accept": JSONAPI,
        }
        self.http = client_for(
            source,
            base_url=source.base_url or BASE_URL,
            windows=RATE_LIMITS,
            headers=lambda: headers,
            secrets=lambda: [token],
            transport=transport, retry=retry, sleep=sleep, clock=clock,
            auth_advice=(
                f"check that the environment variable {source.token_env} holds a valid Productive API token "
                f"and that organization_id {source.organization_id} is the organization it was created in, "
                "with read access to time, projects, budgets and invoices"
            ),
        )
        self.limiter = self.http.limiter
        self.pager = PageNumberPager(
            page_param="page[number]", size_param="page[size]", page_size=PAGE_SIZE, total_pages_path="meta.total_pages"
        )
        self.identity = Identity(self._check_call)
        # resource -> why it could not be read although the source synced (budgets behind projects)
        self.not_permitted: dict[str, str] = {}

    @property
    def requests(self) -> int:
        return self.http.requests

    def _check_call(self) -> Any:
        return self.http.get_json(CHECK_PATH, {"page[number]": 1, "page[size]": 1}, resource="check")

    def check(self) -> None:
        self.identity.remember(self._check_call())

    def access(self) -> Access:
        """Which resources the token may list (one request each) and whether budget money shows."""
        self.check()
        readable: dict[str, bool] = {}
        deals: Any = None
        for name, path, params in [
            *((r.name, r.path, r.params) for r in self.resources.values()), ("budgets", BUDGETS_PATH, BUDGETS_PARAMS),
        ]:
            try:
                body = self.http.get_json(path, {**params, "page[number]": 1, "page[size]": 1}, resource=name)
                readable[name] = True
                if name == "budgets":
                    deals = body.get("data") if isinstance(body, Mapping) else None
            except ForbiddenError:
                readable[name] = False
        visible = None
        if isinstance(deals, list) and deals and isinstance(deals[0], Mapping):
            visible = "budget_total" in (deals[0].get("attributes") or {})
        return Access(
            who=f"organization {self.organization_id}", rates_visible=visible, readable=readable,
            advice={r: _permission_advice(r) for r, ok in readable.items() if not ok},
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
        params: dict[str, Any] = dict(res.params)
        if since is not None and res.incremental:
            params["filter[updated_at][gt_eq]"] = _iso(since)
        # Budgets first, once per pass (also on resume): a project row is written whole.
        deals: list[dict[str, Any]] | None = None
        hidden = False
        if resource == "projects":
            try:
                deals = self._budgets()
            except NotPermitted as exc:
                # The projects themselves may still be read: store them without budgets,
                # marked not visible, and say which permission is missing.
                self.not_permitted["budgets"] = str(exc)
                deals, hidden = [], True
        for items, nxt in self._documents(res.path, params, resume=resume, resource=res.name):
            if deals is not None:
                items = attach_budgets(items, deals)
                if hidden:
                    items = [{**p, BUDGETS_HIDDEN: True} for p in items]
            yield Page(items=items, resume=nxt)

    def ids(self, resource: str, window_start: dt.date | None) -> Iterator[str]:
        res = self._resource(resource)
        params: dict[str, Any] = {}
        if res.reconcile == "window" and window_start is not None:
            # filter[after] is on the entry's date; whether it is inclusive is unconfirmed,
            # so ask from the day before: an extra day is harmless, a missing one is not.
            params["filter[after]"] = (window_start - dt.timedelta(days=1)).isoformat()
        for items, _ in self._documents(res.path, params, resource=res.name):
            for item in items:
                if item.get("id") in (None, "None", ""):
                    # A reconcile pass must not guess: an id it cannot read could be taken for a deletion.
                    raise FatalSourceError(
                        f"{self.name}: {resource} listed an item without an id", source=self.name, resource=resource
                    )
                yield str(item["id"])

    def deleted_ids(self, resource: str, since: dt.datetime | None) -> Iterator[str]:
        """Ids from the activity feed's destroy events since `since` (time entries only).

        Without a `since` (a first or full run) the whole feed could be long, and the id
        reconciliation that runs alongside already covers every deletion: nothing is asked.
        """
        item_type = DELETION_FEEDS.get(resource)
        if item_type is None or since is None:
            return
        params: dict[str, Any] = {
            "filter[item_type]": item_type, "filter[event]": "destroy", "filter[after]": _iso(since),
        }
        for items, _ in self._documents(ACTIVITIES_PATH, params, resource=f"{resource} deletions"):
            for activity in items:
                # the server filters already; re-check so a lax filter can never delete a wrong row.
                # The spec spells the event "destroy"; one third-party client reads "delete".
                if _snake(activity.get("item_type")) != item_type or activity.get("event") not in DESTROY_EVENTS:
                    continue
                if activity.get("item_id") is not None:
                    yield str(activity["item_id"])

    def close(self) -> None:
        self.http.close()

    def _resource(self, name: str) -> Resource:
        try:
            return self.resources[name]
        except KeyError:
            raise ValueError(f"productive has no resource {name!r}; known: {', '.join(self.resources)}") from None

    def _budgets(self) -> list[dict[str, Any]]:
        deals: list[dict[str, Any]] = []
        for items, _ in self._documents(BUDGETS_PATH, BUDGETS_PARAMS, resource="budgets"):
            deals.extend(items)
        return deals

    def _documents(
        self, path: str, params: Mapping[str, Any], *, resume: str | None = None, resource: str
    ) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
        bodies = guarded(
            self.pager.pages(self.http, path, params, resume=resume, resource=resource),
            identity=self.identity, source=self.name, resource=resource, advice=lambda me: _permission_advice(resource),
        )
        for body, nxt in bodies:
            if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
                raise FatalSourceError(
                    f"{self.name}: {resource} page has no JSON:API 'data' list; the API answered an unexpected shape",
                    source=self.name, resource=resource,
                )
            yield jsonapi.documents(body), nxt
