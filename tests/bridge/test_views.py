"""bridge.views: a PortalView built from a real store holds one client's figures, and only those."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from bridge.config import Config, parse_config
from bridge.models import Client, Invoice, Person, PortalLink, Project, SyncRun, Task, TimeEntry
from bridge.store import Store
from bridge.views import (
    PortalView,
    Snapshot,
    build_portal_view,
    change_note,
    parse_snapshot,
    snapshot_json,
)

D = Decimal
NOW = dt.datetime(2025, 3, 20, 12, 0, tzinfo=dt.timezone.utc)  # Thursday
TODAY = NOW.date()


def cfg(visibility: dict[str, Any] | None = None, **client: Any) -> Config:
    return parse_config({
        "agency": {"name": "Agency", "timezone": client.pop("tz", "Europe/Berlin"), "week_start": client.pop("week_start", "monday")},
        "sources": [{"name": "h", "kind": "harvest"}, {"name": "f", "kind": "freshbooks"}],
        "clients": [{"key": "acme", "name": "Acme", "sources": client.pop("sources", {"h": ["c1"]}),
                     "visibility": {"view": "realtime", **(visibility or {})}, **client}],
    })


def te(sid: str, day: dt.date, hours: float, *, source: str = "h", client: str = "c1", project: str = "p1",
       person: str = "u1", task: str = "t1", **kw: Any) -> TimeEntry:
    data = {"source": source, "source_id": sid, "client_source_id": client, "project_source_id": project,
            "person_source_id": person, "task_source_id": task, "spent_date": day, "seconds": int(hours * 3600),
            "is_billable": True, "is_approved": True, **kw}
    return TimeEntry.model_validate(data)


@pytest.fixture
def agency(store: Store) -> Store:
    """Acme (c1) and Globex (c2) in source h; Acme also in source f under id 9, in USD."""
    store.upsert([
        Client.model_validate({"source": "h", "source_id": "c1", "name": "Acme", "currency": "EUR"}),
        Client.model_validate({"source": "h", "source_id": "c2", "name": "Globex", "currency": "EUR"}),
    ])
    store.upsert([Client.model_validate({"source": "f", "source_id": "9", "name": "Acme Inc", "currency": "USD"})])
    store.upsert([
        Project.model_validate({"source": "h", "source_id": "p1", "client_source_id": "c1", "name": "Website",
                                "budget_kind": "hours", "budget_period": "total", "budget_seconds": 40 * 3600,
                                "ends_on": dt.date(2025, 6, 30)}),
        Project.model_validate({"source": "h", "source_id": "p2", "client_source_id": "c2", "name": "Globex Secret"}),
        Project.model_validate({"source": "h", "source_id": "p3", "client_source_id": "c1", "name": "Gone", "is_deleted": False}),
    ])
    store.upsert([Project.model_validate({"source": "f", "source_id": "p9", "client_source_id": "9", "name": "App",
                                          "currency": "USD", "budget_kind": "money", "budget_money": D("1000")})])
    store.upsert([
        Person.model_validate({"source": "h", "source_id": "u1", "first_name": "Ann", "last_name": "Lee", "role": "Designer"}),
        Person.model_validate({"source": "h", "source_id": "u2", "first_name": "Bo", "last_name": "Kim", "is_active": False}),
    ])
    store.upsert([Person.model_validate({"source": "f", "source_id": "u1", "first_name": "Cy", "last_name": "Ng"})])
    store.upsert([Task.model_validate({"source": "h", "source_id": "t1", "name": "Design"})])
    store.upsert([Task.model_validate({"source": "f", "source_id": "t1", "name": "Build"})])
    store.upsert([
        te("e1", TODAY, 2, billable_amount=D("200"), currency="EUR", notes="Homepage"),
        te("e2", TODAY - dt.timedelta(days=7), 3, person="u2", billable_amount=D("300"), currency="EUR"),
        te("e3", TODAY, 5, client="c2", project="p2", billable_amount=D("999"), currency="EUR", notes="Globex only"),
        te("e4", TODAY, 1, project="p3", billable_amount=D("100"), currency="EUR"),
    ])
    store.upsert([te("fe1", TODAY, 4, source="f", client="9", project="p9", billable_amount=D("400"), currency="USD")])
    store.delete_ids("h", Project, ["p3"])
    return store


def build(store: Store, config: Config, **kw: Any) -> PortalView:
    return build_portal_view(store, config, config.clients[0], now=kw.pop("now", NOW), **kw)


def strings(obj: Any) -> str:
    return repr(obj)


def test_view_is_frozen(agency: Store) -> None:
    view = build(agency, cfg())
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.client_name = "x"  # type: ignore[misc]


def test_no_cross_client_rows(agency: Store) -> None:
    view = build(agency, cfg())
    text = strings(view)
    assert "Globex" not in text
    assert "999" not in text
    # e1 + e2 (+ e4, whose project was deleted) - never Globex's 5 hours
    assert view.total_hours == D("6.00")
    assert [p.name for p in view.projects] == ["Website"]


def test_sources_combine_but_currencies_do_not(agency: Store) -> None:
    view = build(agency, cfg(sources={"h": ["c1"], "f": ["9"]}))
    assert view.total_hours == D("10.00")
    totals = {t.currency: (t.billable_hours, t.amount) for t in view.totals}
    assert totals == {"EUR": (D("6.00"), D("600.00")), "USD": (D("4.00"), D("400.00"))}
    assert [p.name for p in view.projects] == ["App", "Website"]
    app = view.projects[0]
    assert app.budget is not None and app.budget.kind == "money" and app.budget.currency == "USD"
    assert app.budget.used == D("400.00") and app.budget.percent_consumed == D("40.0")


def test_inactive_people_keep_their_history(agency: Store) -> None:
    view = build(agency, cfg({"team_names": "full"}))
    assert {line.label for line in view.hours_to_date_by_person} == {"Ann Lee", "Bo Kim"}
    assert {line.label for line in view.this_week_by_person} == {"Ann Lee"}


def test_deleted_entries_are_ignored(agency: Store) -> None:
    agency.delete_ids("h", TimeEntry, ["e1"])
    view = build(agency, cfg({"descriptions": "detailed"}))
    assert "Homepage" not in strings(view)
    assert view.total_hours == D("4.00")


def test_week_and_today_follow_the_agency_zone(agency: Store) -> None:
    sunday_night = dt.datetime(2025, 3, 16, 23, 30, tzinfo=dt.timezone.utc)  # Monday 00:30 in Berlin
    view = build(agency, cfg(), now=sunday_night)
    assert view.today == dt.date(2025, 3, 17)
    assert (view.week_start, view.week_end) == (dt.date(2025, 3, 17), dt.date(2025, 3, 23))
    assert view.week_label == "Week of 17 Mar 2025"
    utc = build(agency, cfg(tz="UTC"), now=sunday_night)
    assert utc.week_start == dt.date(2025, 3, 10)
    sunday = build(agency, cfg(week_start="sunday"))
    assert (sunday.week_start, sunday.week_end) == (dt.date(2025, 3, 16), dt.date(2025, 3, 22))


def test_project_budget_and_projection(agency: Store) -> None:
    view = build(agency, cfg())
    web = view.projects[0]
    b = web.budget
    assert web.budget_status == "visible" and b is not None
    assert (b.allocated, b.used, b.left) == (D("40.00"), D("5.00"), D("35.00"))
    # 5 h in the last 4 weeks -> 1.25 h/week; 35 / 1.25 = 28 weeks = 196 days: day 196 ends with
    # nothing left, so day 195 is the last day with budget left
    assert b.burn_hours_per_week == D("1.25")
    assert b.projected_run_out_date == TODAY + dt.timedelta(days=195)
    assert b.runs_out_before_end is False and b.level == "ok"
    assert b.explanation
    assert b.last_period_used is None  # a total budget has no "last month"
    assert web.hours_this_week == D("2.00") and web.hours_to_date == D("5.00")
    assert [(x.label, x.hours) for x in web.hours_by_task] == [("Design", D("5.00"))]
    assert web.burn_chart.projection[-1].on == b.projected_run_out_date
    assert sum(p.value for p in web.burn_chart.weekly) == D("5.00")


def test_budget_not_visible_with_this_token(agency: Store) -> None:
    agency.upsert([Project.model_validate({"source": "h", "source_id": "p1", "client_source_id": "c1", "name": "Website",
                                           "budget_kind": "money", "budget_visible": False})])
    web = build(agency, cfg()).projects[0]
    assert web.budget_status == "not_visible" and web.budget is None


def test_over_budget_is_shown_as_such(agency: Store) -> None:
    agency.upsert([Project.model_validate({"source": "h", "source_id": "p1", "client_source_id": "c1", "name": "Website",
                                           "budget_kind": "hours", "budget_seconds": 4 * 3600})])
    b = build(agency, cfg()).projects[0].budget
    assert b is not None
    assert b.is_over_budget and b.level == "over" and b.left == D("-1.00") and b.percent_consumed == D("125.0")
    assert b.projected_run_out_date is None


def test_a_monthly_budget_knows_last_months_use(agency: Store) -> None:
    """A retainer that overran last month (the portal's attention list uses it)."""
    agency.upsert([Project.model_validate({"source": "h", "source_id": "p1", "client_source_id": "c1", "name": "Website",
                                           "budget_kind": "hours", "budget_period": "monthly",
                                           "budget_seconds": 10 * 3600})])
    # February 2025: 6 + 5.5 = 11.5 h against 10 h; a January entry counts for January only
    agency.upsert([te("m1", dt.date(2025, 2, 3), 6), te("m2", dt.date(2025, 2, 28), 5.5),
                   te("m3", dt.date(2025, 1, 31), 8)])
    b = build(agency, cfg()).projects[0].budget
    assert b is not None and b.period == "monthly"
    assert (b.used, b.last_period_used, b.last_period_allocated) == (D("5.00"), D("11.50"), D("10.00"))


def test_invoices_status_derived_and_drafts_left_out(agency: Store) -> None:
    agency.upsert([
        Invoice.model_validate({"source": "h", "source_id": "i1", "client_source_id": "c1", "number": "INV-1",
                                "due_date": TODAY - dt.timedelta(days=1), "amount": D("500"), "due_amount": D("500"),
                                "currency": "EUR", "status": "open"}),
        Invoice.model_validate({"source": "h", "source_id": "i2", "client_source_id": "c1", "number": "INV-2",
                                "due_date": TODAY + dt.timedelta(days=9), "amount": D("500"), "due_amount": D("200"),
                                "currency": "EUR", "status": "open"}),
        Invoice.model_validate({"source": "h", "source_id": "i3", "client_source_id": "c1", "number": "INV-3",
                                "amount": D("10"), "due_amount": D("10"), "currency": "EUR", "status": "draft"}),
        Invoice.model_validate({"source": "h", "source_id": "i4", "client_source_id": "c2", "number": "GLOBEX-1",
                                "amount": D("10"), "due_amount": D("10"), "currency": "EUR", "status": "open"}),
    ])
    view = build(agency, cfg({"invoices": "shown"}))
    assert {(i.number, i.status, i.paid_amount) for i in view.invoices} == {
        ("INV-1", "overdue", D("0.00")), ("INV-2", "partial", D("300.00"))}
    assert [(p.currency, p.hours, p.amount, p.lines) for p in view.invoice_preview] == [("EUR", D("6.00"), D("600.00"), ())]
    hidden = build(agency, cfg({"invoices": "hidden"}))
    assert hidden.invoices == () and hidden.invoice_preview == ()
    assert "INV-1" not in strings(hidden)


def test_weekly_view_summarises_instead_of_listing_entries(agency: Store) -> None:
    view = build(agency, cfg({"view": "weekly", "descriptions": "detailed", "team_names": "full"}))
    assert view.timesheet == ()
    assert "Homepage" not in strings(view)
    rows = {(r.week_start, r.person, r.project, r.hours) for r in view.weekly_summaries}
    assert rows == {
        (dt.date(2025, 3, 17), "Ann Lee", "Website", D("2.00")),
        (dt.date(2025, 3, 17), "Ann Lee", "Other work", D("1.00")),  # its project was deleted
        (dt.date(2025, 3, 10), "Bo Kim", "Website", D("3.00")),
    }
    assert sum(r.hours for r in view.weekly_summaries) == view.total_hours


def test_as_of_is_the_oldest_last_successful_sync(agency: Store) -> None:
    with agency.session() as s:
        s.add(SyncRun(source="h", started_at=NOW, finished_at=NOW - dt.timedelta(minutes=5), status="ok"))
        s.add(SyncRun(source="h", started_at=NOW, finished_at=NOW - dt.timedelta(minutes=1), status="failed"))
        s.add(SyncRun(source="f", started_at=NOW, finished_at=NOW - dt.timedelta(minutes=30), status="ok"))
        s.commit()
    assert build(agency, cfg()).as_of == NOW - dt.timedelta(minutes=5)
    both = build(agency, cfg(sources={"h": ["c1"], "f": ["9"]}))
    assert both.as_of == NOW - dt.timedelta(minutes=30)
    assert both.data_as_of == both.as_of


# --- change note ------------------------------------------------------------------------


def test_snapshot_round_trips_through_json(agency: Store) -> None:
    view = build(agency, cfg())
    text = snapshot_json(view)
    again = parse_snapshot(text)
    assert again == view.snapshot
    # a caller that json.dumps(snapshot, default=str) still stores a readable snapshot
    assert parse_snapshot(json.dumps(view.snapshot, default=str)) == view.snapshot
    assert parse_snapshot(None) is None and parse_snapshot("not json") is None
    # the snapshot names no entry and no note
    assert "e1" not in text and "Homepage" not in text


def test_change_note_counts_added_edited_removed(agency: Store) -> None:
    config = cfg({"descriptions": "detailed"})
    first = build(agency, config)
    assert first.change_note is None
    agency.upsert([
        te("e1", TODAY, 2, billable_amount=D("200"), currency="EUR", notes="Homepage v2",
           updated_at=NOW),
        te("e5", TODAY, 1, billable_amount=D("100"), currency="EUR"),
        te("e6", TODAY, 1, billable_amount=D("100"), currency="EUR"),
    ])
    agency.delete_ids("h", TimeEntry, ["e2"])
    later = NOW + dt.timedelta(days=1)
    second = build(agency, config, now=later, previous_snapshot=first.snapshot)
    note = second.change_note
    assert note is not None
    assert (note.added, note.edited, note.removed) == (2, 1, 1)
    assert note.text == "1 entry edited, 1 removed, 2 added since 20 Mar"
    # an edit to a field the client cannot see is not a change for them
    agency.upsert([te("e5", TODAY, 1, billable_amount=D("100"), currency="EUR", cost_rate=D("10"), updated_at=later)])
    third = build(agency, config, now=later, previous_snapshot=snapshot_json(second))
    assert third.change_note is not None and third.change_note.text == "No changes since 21 Mar"


def test_previous_snapshot_defaults_to_the_published_one(agency: Store) -> None:
    first = build(agency, cfg())
    with agency.session() as s:
        s.add(PortalLink(client_key="acme", token="t" * 32, snapshot=snapshot_json(first)))
        s.commit()
    agency.upsert([te("e7", TODAY, 1)])
    note = build(agency, cfg()).change_note
    assert note is not None and note.added == 1
    assert build(agency, cfg(), previous_snapshot=None).change_note is None


def test_change_note_helper_directly() -> None:
    old = Snapshot(taken_at=NOW, entries={"a": "1", "b": "2"})
    new = Snapshot(taken_at=NOW, entries={"a": "1", "b": "3", "c": "4", "d": "5"})
    note = change_note(old, new)
    assert note is not None and note.text == "1 entry edited, 2 added since 20 Mar"
    assert change_note(None, new) is None


def test_an_entry_without_its_own_rate_is_valued_at_its_projects_rate() -> None:
    """FreshBooks bills by project rate: its entries carry no rate of their own."""
    from types import SimpleNamespace as NS

    from bridge.metrics import entry_value

    project = NS(hourly_rate=Decimal("120.00"))
    fb_entry = NS(is_billable=True, billable_amount=None, billable_rate=None, seconds=5400)
    assert entry_value(fb_entry, project) == (Decimal("180.00"), Decimal("120.00"))
    harvest_entry = NS(is_billable=True, billable_amount=Decimal("99.50"), billable_rate=Decimal("99.50"), seconds=3600)
    assert entry_value(harvest_entry, project) == (Decimal("99.50"), Decimal("99.50"))  # its own value wins
    assert entry_value(NS(is_billable=False, billable_amount=None, billable_rate=None, seconds=60), project) == (None, None)
    # no rate anywhere: no amount - never a zero that would read as "nothing spent"
    assert entry_value(fb_entry, NS(hourly_rate=None)) == (None, None)
    assert entry_value(fb_entry, None) == (None, None)


def test_a_money_budget_whose_hours_carry_no_value_is_not_shown_as_unspent(store: Store) -> None:
    """A FreshBooks fixed-price project: hours logged, no rate anywhere. "0.00 used" would be false."""
    client = Client.model_validate({"source": "fb", "source_id": "1", "name": "Blue Heron", "currency": "USD"})
    project = Project.model_validate({"source": "fb", "source_id": "p", "client_source_id": "1", "name": "Brand Refresh",
                                      "currency": "USD", "budget_kind": "money", "budget_period": "total",
                                      "budget_money": "12000"})
    entry = TimeEntry.model_validate({"source": "fb", "source_id": "e1", "client_source_id": "1", "project_source_id": "p",
                                      "spent_date": dt.date(2025, 3, 18), "seconds": 7200, "is_billable": True,
                                      "currency": "USD"})
    store.upsert([client])
    store.upsert([project])
    store.upsert([entry])
    cfg = parse_config({"sources": [{"name": "fb", "kind": "freshbooks"}],
                        "clients": [{"key": "bh", "name": "Blue Heron", "sources": {"fb": ["1"]}}]})
    view = build_portal_view(store, cfg, cfg.clients[0], now=dt.datetime(2025, 3, 20, 12, tzinfo=dt.timezone.utc),
                             previous_snapshot=None)
    (p,) = view.projects
    assert p.budget_status == "not_visible" and p.budget is None
    assert p.hours_to_date == Decimal("2.00")
