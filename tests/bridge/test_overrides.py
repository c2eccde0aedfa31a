"""[[clients.budgets]] overrides and FreshBooks valuation, through the portal view and alerts.

Expected figures are worked out by hand in the comments.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from bridge.alerts import evaluate_alerts
from bridge.config import Config, parse_config
from bridge.models import Client, Person, Project, Task, TimeEntry
from bridge.overrides import unmatched
from bridge.store import Store
from bridge.views import build_portal_view

D = Decimal
NOW = dt.datetime(2025, 3, 20, 12, 0, tzinfo=dt.timezone.utc)


def cfg(budgets: list[dict[str, Any]] | None = None) -> Config:
    return parse_config({
        "agency": {"name": "Agency", "timezone": "Europe/Berlin", "email": "ops@agency.example"},
        "sources": [{"name": "fb", "kind": "freshbooks"}],
        "clients": [{"key": "heron", "name": "Blue Heron", "sources": {"fb": ["7"]},
                     "visibility": {"view": "realtime", "rates": "shown"}, "budgets": budgets or []}],
    })


def te(sid: str, day: dt.date, hours: str, *, project: str, task: str = "s1", person: str = "i1", billable: bool = True) -> TimeEntry:
    return TimeEntry.model_validate({
        "source": "fb", "source_id": sid, "client_source_id": "7", "project_source_id": project,
        "task_source_id": task, "person_source_id": person, "spent_date": day,
        "seconds": int(D(hours) * 3600), "is_billable": billable, "is_approved": True,
    })


def seed(store: Store) -> Store:
    store.upsert([Client.model_validate({"source": "fb", "source_id": "7", "name": "Blue Heron", "currency": "USD"})])
    store.upsert([
        # a retainer FreshBooks can only hold as a lifetime 30 h budget
        Project.model_validate({"source": "fb", "source_id": "100", "client_source_id": "7", "name": "Support Retainer",
                                "budget_kind": "hours", "budget_period": "total", "budget_seconds": 30 * 3600,
                                "billing_method": "team_member_rate"}),
        # fixed price 5000, billed by service rate
        Project.model_validate({"source": "fb", "source_id": "200", "client_source_id": "7", "name": "Brand Refresh",
                                "budget_kind": "money", "budget_period": "total", "budget_money": D("5000"),
                                "fee": D("5000"), "billing_method": "service_rate"}),
        # billed at the business rate: FreshBooks' API does not give it
        Project.model_validate({"source": "fb", "source_id": "300", "client_source_id": "7", "name": "Audit",
                                "billing_method": "business_rate"}),
    ])
    store.upsert([
        Task.model_validate({"source": "fb", "source_id": "s1", "name": "Design", "default_hourly_rate": D("140")}),
        Task.model_validate({"source": "fb", "source_id": "s2", "name": "Copywriting", "default_hourly_rate": D("95")}),
    ])
    store.upsert([Person.model_validate({"source": "fb", "source_id": "i1", "first_name": "Chloe", "last_name": "D",
                                         "default_hourly_rate": D("120")})])
    store.upsert([
        # retainer: 20 h in January, 6 h in February, 2.5 h in March (this month)
        te("r1", dt.date(2025, 1, 15), "20", project="100"),
        te("r2", dt.date(2025, 2, 10), "6", project="100"),
        te("r3", dt.date(2025, 3, 3), "1.5", project="100"),
        te("r4", dt.date(2025, 3, 18), "1", project="100"),
        # fixed price: 10 h Design at 140 + 4 h Copywriting at 95 + 2 h non-billable
        te("b1", dt.date(2025, 3, 4), "10", project="200", task="s1"),
        te("b2", dt.date(2025, 3, 5), "4", project="200", task="s2"),
        te("b3", dt.date(2025, 3, 6), "2", project="200", task="s2", billable=False),
        # business rate: 3 h
        te("a1", dt.date(2025, 3, 7), "3", project="300"),
    ])
    return store


def projects(view: Any) -> dict[str, Any]:
    return {p.name: p for p in view.projects}


def test_without_override_the_retainer_reads_as_a_lifetime_budget(store: Store) -> None:
    view = build_portal_view(seed(store), (c := cfg()), c.clients[0], now=NOW, previous_snapshot=None)
    b = projects(view)["Support Retainer"].budget
    # 20 + 6 + 1.5 + 1 = 28.5 h of 30 h, all time
    assert (b.period, b.allocated, b.used) == ("total", D("30.00"), D("28.50"))


def test_period_month_makes_it_a_monthly_retainer(store: Store) -> None:
    c = cfg([{"project": "fb:100", "period": "month"}])
    view = build_portal_view(seed(store), c, c.clients[0], now=NOW, previous_snapshot=None)
    b = projects(view)["Support Retainer"].budget
    # March only: 1.5 + 1 = 2.5 h of 30 h = 8.3 %, resets 1 April
    assert (b.period, b.allocated, b.used, b.percent_consumed) == ("monthly", D("30.00"), D("2.50"), D("8.3"))
    assert b.resets_on == dt.date(2025, 4, 1)


def test_override_by_name_with_kind_and_amount(store: Store) -> None:
    c = cfg([{"project": "fb:support retainer", "period": "month", "kind": "hours", "amount": 2}])
    view = build_portal_view(seed(store), c, c.clients[0], now=NOW, previous_snapshot=None)
    b = projects(view)["Support Retainer"].budget
    # 2.5 h of 2 h this month: over budget
    assert (b.allocated, b.used, b.is_over_budget) == (D("2.00"), D("2.50"), True)


def test_the_store_keeps_the_tracker_s_budget(store: Store) -> None:
    c = cfg([{"project": "fb:100", "period": "month", "kind": "hours", "amount": 2}])
    build_portal_view(seed(store), c, c.clients[0], now=NOW, previous_snapshot=None)
    with store.session() as s:
        p = s.get(Project, 1)
        assert (p.budget_period, p.budget_seconds) == ("total", 30 * 3600)


def test_fixed_price_is_a_money_budget_valued_at_service_rates(store: Store) -> None:
    c = cfg()
    view = build_portal_view(seed(store), c, c.clients[0], now=NOW, previous_snapshot=None)
    p = projects(view)["Brand Refresh"]
    # 10 h x 140 + 4 h x 95 = 1400 + 380 = 1780 of 5000 = 35.6 %
    assert p.budget_status == "visible"
    assert (p.budget.kind, p.budget.allocated, p.budget.used, p.budget.percent_consumed) == ("money", D("5000.00"), D("1780.00"), D("35.6"))


def test_business_rate_time_is_valued_once_the_agency_sets_a_rate(store: Store) -> None:
    seed(store)
    c = cfg()
    rows = {(r.project, r.spent_date): r for r in build_portal_view(store, c, c.clients[0], now=NOW, previous_snapshot=None).timesheet}
    assert rows[("Audit", dt.date(2025, 3, 7))].amount is None  # unknown, not 0
    c = cfg([{"project": "fb:300", "hourly_rate": 110}])
    view = build_portal_view(store, c, c.clients[0], now=NOW, previous_snapshot=None)
    rows = {(r.project, r.spent_date): r for r in view.timesheet}
    assert rows[("Audit", dt.date(2025, 3, 7))].amount.amount == D("330.00")  # 3 h x 110
    # unbilled value: retainer 28.5 h x 120 = 3420 + 1780 + 330 = 5530
    assert [(x.amount, x.currency) for x in view.unbilled.amounts] == [(D("5530.00"), "USD")]


def test_alerts_use_the_override_too(store: Store) -> None:
    c = cfg([{"project": "fb:100", "period": "month", "kind": "hours", "amount": 2}])
    alerts = {a.project_name: a for a in evaluate_alerts(seed(store), c, NOW)}
    a = alerts["Support Retainer"]
    assert (a.period, a.allocated, a.used) == ("2025-03", D("2.00"), D("2.50"))
    assert "Brand Refresh" not in alerts  # 35.6 % crosses no threshold


def test_unmatched_overrides_are_reported(store: Store) -> None:
    seed(store)
    c = cfg([{"project": "fb:100", "period": "month"}, {"project": "fb:Nope", "period": "month"}])
    with store.session() as s:
        rows = list(s.exec(__import__("sqlmodel").select(Project)))
    assert unmatched(c.clients[0], rows) == ["fb:Nope"]


def test_the_view_says_why_time_has_no_value_and_what_the_agency_can_set(store: Store) -> None:
    seed(store)
    c = cfg()
    audit = projects(build_portal_view(store, c, c.clients[0], now=NOW, previous_snapshot=None))["Audit"]
    assert audit.value_note == ("'Audit' is billed at the business rate, which the FreshBooks API does not give; "
                                "the agency can set hourly_rate for the project in the bridge's [[clients.budgets]]")
    c = cfg([{"project": "fb:300", "hourly_rate": 110}])
    view = build_portal_view(store, c, c.clients[0], now=NOW, previous_snapshot=None)
    assert all(p.value_note is None for p in view.projects)


def test_a_german_portal_gives_the_same_advice_in_german(store: Store) -> None:
    import html

    from publishers.render import render_portal
    from tests.publishers.factory import link

    seed(store)
    c = cfg()
    c.clients[0].locale = "de"
    view = build_portal_view(store, c, c.clients[0], now=NOW, previous_snapshot=None)
    page = next(f for f in render_portal(view, link, "tok") if f.path == "index.html")
    text = html.unescape(page.data.decode("utf-8"))
    assert ("Noch nicht alle diese Arbeit ist bewertet: „Audit“ wird zum Standardsatz des Unternehmens "
            "abgerechnet, den die FreshBooks-API nicht liefert; die Agentur kann hourly_rate für das Projekt "
            "in [[clients.budgets]] der Bridge festlegen.") in text
    assert "business rate" not in text
