"""bridge.verify: store figures against tracker figures, written by hand, and the nightly hook."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from types import SimpleNamespace as NS
from typing import Any

import pytest

from bridge.config import Config, parse_config
from bridge.errors import SourceError
from bridge.models import Client, Invoice, Project, Quarantine, Task, TimeEntry
from bridge.scheduler import Jobs, RunContext, reconcile_job, register_context, unregister_context
from bridge.store import Store
from bridge.verify import TrackerFigure, last_verification, report_lines, verify

D = Decimal
NOW = dt.datetime(2025, 3, 20, 12, 0, tzinfo=dt.timezone.utc)
TODAY = NOW.date()


def cfg() -> Config:
    return parse_config({
        "agency": {"timezone": "Europe/Berlin"},
        "sources": [{"name": "h", "kind": "harvest"}, {"name": "fb", "kind": "freshbooks"}],
        "clients": [{"key": "acme", "name": "Acme", "sources": {"h": ["c1"], "fb": ["9"]}}],
    })


def te(sid: str, day: dt.date, hours: str, *, source: str = "h", project: str = "p1", **kw: Any) -> TimeEntry:
    client = "c1" if source == "h" else "9"
    return TimeEntry.model_validate({"source": source, "source_id": sid, "client_source_id": client,
                                     "project_source_id": project, "task_source_id": "t1", "spent_date": day,
                                     "seconds": int(D(hours) * 3600), **kw})


@pytest.fixture
def seeded(store: Store) -> Store:
    store.upsert([Client.model_validate({"source": "h", "source_id": "c1", "name": "Acme", "currency": "EUR"})])
    store.upsert([Client.model_validate({"source": "fb", "source_id": "9", "name": "Acme", "currency": "USD"})])
    store.upsert([Project.model_validate({"source": "h", "source_id": "p1", "client_source_id": "c1", "name": "Website",
                                          "budget_kind": "hours", "budget_period": "monthly", "budget_seconds": 40 * 3600})])
    store.upsert([Project.model_validate({"source": "fb", "source_id": "f1", "client_source_id": "9", "name": "App",
                                          "billing_method": "service_rate"})])
    store.upsert([Task.model_validate({"source": "fb", "source_id": "t1", "name": "Build"})])  # no rate
    store.upsert([
        # February 10 h billable at 150, March 4 h billable (invoiced 1.5 h of it) + 2 h not billable
        te("e1", dt.date(2025, 2, 12), "10", is_billable=True, billable_rate=D("150"), billable_amount=D("1500")),
        te("e2", dt.date(2025, 3, 3), "2.5", is_billable=True, billable_rate=D("150"), billable_amount=D("375")),
        te("e3", dt.date(2025, 3, 4), "1.5", is_billable=True, is_invoiced=True, billable_rate=D("150"), billable_amount=D("225")),
        te("e4", dt.date(2025, 3, 5), "2", is_billable=False),
        # a running timer at 0.75 h so far
        te("e5", TODAY, "0.75", is_billable=True, is_running=True, billable_rate=D("150"), billable_amount=D("112.5")),
    ])
    store.upsert([te("f1", dt.date(2025, 3, 6), "3", source="fb", project="f1", is_billable=True)])
    store.upsert([
        Invoice.model_validate({"source": "fb", "source_id": "i1", "client_source_id": "9", "amount": D("1000"),
                                "due_amount": D("400"), "currency": "USD", "status": "partial"}),
        Invoice.model_validate({"source": "fb", "source_id": "i2", "client_source_id": "9", "amount": D("250"),
                                "due_amount": D("0"), "currency": "USD", "status": "void"}),
    ])
    return store


def fig(figure: str, value: str, unit: str = "h", source: str = "h", **kw: Any) -> TrackerFigure:
    project = None if figure.endswith("_total") else kw.pop("project_id", "p1" if source == "h" else "f1")
    return TrackerFigure(source=source, figure=figure, value=D(value), unit=unit, project_id=project, **kw)


def run(store: Store, figures: list[TrackerFigure]) -> Any:
    def fetch(source: str, ids: list[str], today: dt.date) -> list[TrackerFigure]:
        return [f for f in figures if f.source == source]

    [result] = verify(store, cfg(), fetch, now=NOW)
    return result


def test_agreeing_figures_report_no_difference(seeded: Store) -> None:
    result = run(seeded, [
        fig("hours_logged", "16.00"),  # 10 + 2.5 + 1.5 + 2 (the running 0.75 h not yet)
        fig("billable_hours", "14.00"),  # 10 + 2.5 + 1.5
        fig("billable_amount", "2100.00", "EUR"),  # 1500 + 375 + 225
        fig("uninvoiced_hours", "12.50"),  # 10 + 2.5
        fig("uninvoiced_amount", "1875.00", "EUR"),
        fig("budget_used", "6.00", period="month"),  # March: 2.5 + 1.5 + 2
        fig("hours_logged", "3.00", source="fb"),
        fig("invoiced_total", "1000.00", "USD", source="fb", client_id="9"),  # the void invoice is not counted
        fig("outstanding_total", "400.00", "USD", source="fb", client_id="9"),
        fig("hours_logged", "6.00", first=dt.date(2025, 3, 1), last=TODAY),  # a window: March only, 2.5 + 1.5 + 2
    ])
    assert (result.checked, result.differences, result.ok) == (10, [], True)


def test_rounding_is_not_a_difference(seeded: Store) -> None:
    assert run(seeded, [fig("hours_logged", "16.01"), fig("billable_amount", "2099.99", "EUR")]).ok


def test_a_running_timer_is_explained_not_drift(seeded: Store) -> None:
    result = run(seeded, [fig("hours_logged", "16.75")])
    [d] = result.differences
    assert d.explained and "running timer" in d.cause and result.ok


def test_missing_time_names_the_sync_and_quarantine(seeded: Store) -> None:
    with seeded.session() as s:
        s.add(Quarantine(source="h", resource="time_entries", source_id="e9", reason="bad date", payload="{}"))
        s.commit()
    result = run(seeded, [fig("hours_logged", "18.00")])
    [d] = result.drift
    assert (d.tracker, d.store, d.delta) == (D("18.00"), D("16.00"), D("-2.00"))
    assert "missing from the store" in d.cause and "bridge sync h" in d.cause and "1 record(s) of h are quarantined" in d.cause
    assert not result.ok


def test_extra_time_points_at_deletions(seeded: Store) -> None:
    [d] = run(seeded, [fig("hours_logged", "15.00")]).drift
    assert d.delta == D("1.00") and "deleted" in d.cause and "bridge sync --full h" in d.cause


def test_money_differences_point_at_rates(seeded: Store) -> None:
    [d] = run(seeded, [fig("billable_amount", "2200.00", "EUR")]).drift
    assert d.delta == D("-100.00") and "rate" in d.cause


def test_unvalued_time_says_what_to_set(seeded: Store) -> None:
    # FreshBooks bills App by service rate and the service "Build" has none
    [d] = run(seeded, [fig("billable_amount", "300.00", "USD", source="fb")]).drift
    assert d.store is None and "'App' is billed by service rate" in d.cause and "[[clients.budgets]]" in d.cause


def test_invoice_differences(seeded: Store) -> None:
    [d] = run(seeded, [fig("invoiced_total", "1250.00", "USD", source="fb", client_id="9")]).drift
    assert d.subject == "all invoices" and "invoice" in d.cause and "bridge sync fb" in d.cause


def test_a_source_that_cannot_answer_is_an_error_not_a_crash(seeded: Store) -> None:
    def fetch(source: str, ids: list[str], today: dt.date) -> list[TrackerFigure]:
        if source == "fb":
            raise SourceError("fb: HTTP 503 on reports", source="fb")
        return [fig("hours_logged", "16.00")]

    [result] = verify(seeded, cfg(), fetch, now=NOW)
    assert result.checked == 1 and result.errors == ["fb: cannot read the tracker's reports: fb: HTTP 503 on reports"]
    assert not result.ok
    assert report_lines([result])[0] == "acme: 1 figure(s) checked, 0 difference(s), 1 source error(s)"


def test_the_outcome_is_kept_for_status(seeded: Store) -> None:
    run(seeded, [fig("hours_logged", "18.00"), fig("billable_hours", "14.00")])
    [drift] = last_verification(seeded, ["acme", "other"])
    assert (drift.client, drift.checked, drift.drift, drift.errors) == ("acme", 2, 1, 0)
    assert drift.first is not None and drift.first.startswith("DIFF acme · h · Website: hours logged tracker 18.00h")


def test_nightly_reconcile_runs_verify_for_that_source_s_clients(store: Store, tmp_path: Any) -> None:
    called: list[set[str]] = []
    config = cfg()
    jobs = Jobs(sync=lambda source, full, stop: NS(status="ok", changed_clients=set()), verify=called.append,
                stop=threading.Event())
    path = str(tmp_path / "bridge.toml")
    register_context(path, RunContext(config=config, store=store, jobs=jobs))
    try:
        reconcile_job(path, "fb")
    finally:
        unregister_context(path)
    assert called == [{"acme"}]


def test_an_override_naming_no_project_is_reported(seeded: Store) -> None:
    config = parse_config({
        "sources": [{"name": "h", "kind": "harvest"}],
        "clients": [{"key": "acme", "name": "Acme", "sources": {"h": ["c1"]},
                     "budgets": [{"project": "h:Websitee", "period": "month"}]}],
    })
    [result] = verify(seeded, config, lambda source, ids, today: [], now=NOW)
    assert result.errors == ["budgets: 'h:Websitee' names no project of this client in the store; check the id or name "
                             "in its [[clients.budgets]] entry (the override is not applied)"]


def test_a_running_timer_s_value_is_explained_too(seeded: Store) -> None:
    # the tracker values the running 0.75 h at 150 = 112.50 on top of 2100.00
    [d] = run(seeded, [fig("billable_amount", "2212.50", "EUR")]).differences
    assert d.explained and "running timer" in d.cause


def test_reports_are_read_once_per_source_and_split_by_client(seeded: Store) -> None:
    config = parse_config({
        "sources": [{"name": "h", "kind": "harvest"}],
        "clients": [{"key": "acme", "name": "Acme", "sources": {"h": ["c1"]}},
                    {"key": "globex", "name": "Globex", "sources": {"h": ["c2"]}}],
    })
    calls: list[list[str]] = []

    def fetch(source: str, ids: list[str], today: dt.date) -> list[TrackerFigure]:
        calls.append(ids)
        return [fig("hours_logged", "16.00", client_id="c1"), fig("hours_logged", "5.00", client_id="c2", project_id="p9")]

    acme, globex = verify(seeded, config, fetch, now=NOW)
    assert calls == [["c1", "c2"]]
    assert (acme.checked, acme.ok) == (1, True)
    # Globex's project is not in the store at all: the tracker's 5 h are missing from it
    [d] = globex.drift
    assert (d.subject, d.tracker, d.store) == ("project p9", D("5.00"), D("0.00"))


def test_the_budget_is_checked_as_the_portal_shows_it(seeded: Store) -> None:
    # with budget_basis = "published" the portal leaves the 2 h of non-billable time (hidden
    # by the default policy) out of March: 4.00 h shown against the tracker's 6.00 h
    config = parse_config({
        "agency": {"timezone": "Europe/Berlin"},
        "sources": [{"name": "h", "kind": "harvest"}],
        "clients": [{"key": "acme", "name": "Acme", "sources": {"h": ["c1"]}, "budget_basis": "published"}],
    })
    [result] = verify(seeded, config, lambda source, ids, today: [fig("budget_used", "6.00", period="month")], now=NOW)
    [d] = result.drift
    assert (d.tracker, d.store) == (D("6.00"), D("4.00"))
    assert d.cause.startswith("the portal counts this budget on the published basis")
