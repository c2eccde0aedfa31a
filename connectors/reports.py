"""The trackers' own aggregates, for `bridge verify` (bridge/verify.py compares them with the store).

Each provider computes these itself, from its own data, so they are an independent check
of everything the sync stored:

- Harvest: `GET /v2/reports/project_budget` (budget spent per project, hours or money,
  monthly or total), `GET /v2/reports/time/projects?from&to` (total and billable hours and
  billable amount per project) and `GET /v2/reports/uninvoiced?from&to` (uninvoiced hours
  and amount; its amount includes expenses, which are taken out). Time reports cover at
  most 365 days, so the window is the year up to today. Reports are rate limited harder
  (100 requests / 15 min): three to five requests per client.
- Productive: the budget (deal) totals `worked_time` and `billable_time` (minutes) and
  `budget_used` (money in minor units: the billable value of the time).
- FreshBooks: each project's `logged_duration` (`include_logged_duration=true`, seconds)
  and the totals of the client's invoices (`amount`, `outstanding`; deleted ones are not
  listed). FreshBooks has no budget or time report in its API.

Shapes: /work/shared/reference/apis.md and Harvest's report docs (result rows carry
`client_id, project_id, project_name, currency, total_hours, billable_hours,
billable_amount` and `uninvoiced_hours, uninvoiced_expenses, uninvoiced_amount`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from bridge.errors import FatalSourceError
from bridge.pagination import NextLinkPager, PageNumberPager, dig
from bridge.verify import TrackerFigure
from connectors import jsonapi

HOURS_BUDGETS = {"project", "task", "person"}  # Harvest budget_by in hours; project_cost/task_fees are money
YEAR = dt.timedelta(days=364)  # Harvest time reports: at most 365 days, both ends included


def tracker_figures(connector: Any, client_ids: list[str], today: dt.date) -> list[TrackerFigure]:
    """The figures `connector`'s provider computes for these client ids."""
    fetch = {"harvest": _harvest, "productive": _productive, "freshbooks": _freshbooks}.get(connector.kind)
    if fetch is None:
        return []
    return list(fetch(connector, {str(i) for i in client_ids}, today))


def _d(value: Any, field: str, source: str) -> Decimal:
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise FatalSourceError(f"{source}: report field {field} is {value!r}, not a number", source=source) from None


def _rows(conn: Any, pager: Any, path: str, params: Mapping[str, Any], key: str) -> Iterator[Mapping[str, Any]]:
    for body, _ in pager.pages(conn.http, path, params, resource=path):
        items = dig(body, key)
        if not isinstance(items, list):
            raise FatalSourceError(f"{conn.name}: {path} answered without a {key} list; the API shape changed",
                                   source=conn.name, resource=path)
        yield from (r for r in items if isinstance(r, Mapping))


# --- Harvest ------------------------------------------------------------------------------


def _harvest(conn: Any, clients: set[str], today: dt.date) -> Iterator[TrackerFigure]:
    src, pager = conn.name, NextLinkPager("links.next")
    first = today - YEAR
    window = {"from": first.strftime("%Y%m%d"), "to": today.strftime("%Y%m%d")}
    currency: dict[str, str] = {}
    for r in _rows(conn, pager, "reports/time/projects", window, "results"):
        if str(r.get("client_id")) not in clients:
            continue
        cur = str(r.get("currency") or "")
        currency[str(r.get("project_id"))] = cur
        common = dict(source=src, client_id=str(r.get("client_id")), project_id=str(r.get("project_id")),
                      project_name=r.get("project_name"), first=first, last=today, report="reports/time/projects")
        yield TrackerFigure(figure="hours_logged", value=_d(r.get("total_hours"), "total_hours", src), unit="h", **common)
        yield TrackerFigure(figure="billable_hours", value=_d(r.get("billable_hours"), "billable_hours", src), unit="h", **common)
        if r.get("billable_amount") is not None:
            yield TrackerFigure(figure="billable_amount", value=_d(r.get("billable_amount"), "billable_amount", src),
                                unit=cur, **common)
    for r in _rows(conn, pager, "reports/uninvoiced", window, "results"):
        if str(r.get("client_id")) not in clients:
            continue
        common = dict(source=src, client_id=str(r.get("client_id")), project_id=str(r.get("project_id")),
                      project_name=r.get("project_name"), first=first, last=today, report="reports/uninvoiced")
        yield TrackerFigure(figure="uninvoiced_hours", value=_d(r.get("uninvoiced_hours"), "uninvoiced_hours", src),
                            unit="h", **common)
        if r.get("uninvoiced_amount") is not None:
            # the report's amount is time and expenses; the bridge tracks time only
            amount = _d(r.get("uninvoiced_amount"), "uninvoiced_amount", src) - _d(
                r.get("uninvoiced_expenses") or 0, "uninvoiced_expenses", src)
            yield TrackerFigure(figure="uninvoiced_amount", value=amount, unit=str(r.get("currency") or ""), **common)
    for r in _rows(conn, pager, "reports/project_budget", {}, "results"):
        if str(r.get("client_id")) not in clients or r.get("budget_spent") is None:
            continue  # no budget, or money this token may not see
        by = str(r.get("budget_by") or "none")
        if by == "none":
            continue
        pid = str(r.get("project_id"))
        yield TrackerFigure(
            source=src, figure="budget_used", value=_d(r.get("budget_spent"), "budget_spent", src),
            unit="h" if by in HOURS_BUDGETS else currency.get(pid, ""), client_id=str(r.get("client_id")), project_id=pid,
            project_name=r.get("project_name"), period="month" if r.get("budget_is_monthly") else "total",
            report="reports/project_budget",
        )


# --- Productive ---------------------------------------------------------------------------


def _productive(conn: Any, clients: set[str], today: dt.date) -> Iterator[TrackerFigure]:
    src, scale = conn.name, Decimal(conn.money_scale)
    params = {"filter[type]": 2, "filter[company_id]": ",".join(sorted(clients)), "include": "project,company"}
    for body, _ in conn.pager.pages(conn.http, "deals", params, resource="deals"):
        for deal in jsonapi.documents(body):
            company = jsonapi.link_id(deal, "company")
            project = jsonapi.link_id(deal, "project")
            if company not in clients or project is None:
                continue
            common = dict(source=src, client_id=company, project_id=project, project_name=deal.get("name"), report="deals")
            if deal.get("worked_time") is not None:
                yield TrackerFigure(figure="hours_logged", value=_d(deal["worked_time"], "worked_time", src) / 60, unit="h", **common)
            if deal.get("billable_time") is not None:
                yield TrackerFigure(figure="billable_hours", value=_d(deal["billable_time"], "billable_time", src) / 60,
                                    unit="h", **common)
            if deal.get("budget_used") is not None:
                yield TrackerFigure(figure="billable_amount", value=_d(deal["budget_used"], "budget_used", src) / scale,
                                    unit=str(deal.get("currency") or ""), **common)


# --- FreshBooks ---------------------------------------------------------------------------


def _freshbooks(conn: Any, clients: set[str], today: dt.date) -> Iterator[TrackerFigure]:
    src, t = conn.name, conn.tenant()
    projects = PageNumberPager(page_size=100, total_pages_path="meta.pages")
    path = f"projects/business/{t.business_id}/projects"
    for p in _rows(conn, projects, path, {"include_logged_duration": "true", "skip_group": "true"}, "projects"):
        if str(p.get("client_id")) not in clients or p.get("logged_duration") is None:
            continue
        yield TrackerFigure(source=src, figure="hours_logged", value=_d(p["logged_duration"], "logged_duration", src) / 3600,
                            unit="h", client_id=str(p.get("client_id")), project_id=str(p.get("id")), project_name=p.get("title"),
                            report="projects logged_duration")
    invoices = PageNumberPager(page_size=100, total_pages_path="response.result.pages")
    totals: dict[tuple[str, str], list[Decimal]] = {}
    path = f"accounting/account/{t.account_id}/invoices/invoices"
    for inv in _rows(conn, invoices, path, {}, "response.result.invoices"):
        client = str(inv.get("customerid"))
        if client not in clients or inv.get("vis_state") == 1:
            continue
        amount, outstanding = inv.get("amount") or {}, inv.get("outstanding") or {}
        code = str(amount.get("code") or inv.get("currency_code") or "")
        sums = totals.setdefault((client, code), [Decimal(0), Decimal(0)])
        sums[0] += _d(amount.get("amount") or 0, "amount", src)
        sums[1] += _d(outstanding.get("amount") or 0, "outstanding", src)
    for (client, code), (amount, outstanding) in sorted(totals.items()):
        yield TrackerFigure(source=src, figure="invoiced_total", value=amount, unit=code, client_id=client, report="invoices")
        yield TrackerFigure(source=src, figure="outstanding_total", value=outstanding, unit=code, client_id=client, report="invoices")
