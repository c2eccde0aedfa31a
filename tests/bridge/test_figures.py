"""bridge.figures: one computation, read by the page, every export, the alerts and `bridge status`.

Expected figures are worked out by hand in the comments, never by the product's code.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

import openpyxl
import pypdf
import pytest

from bridge.alerts import evaluate_alerts
from bridge.config import Config, parse_config
from bridge.figures import client_figures
from bridge.models import Client, Invoice, PortalLink, Project, Task, TimeEntry
from bridge.status import collect_status
from bridge.store import Store
from bridge.views import build_portal_view, snapshot_json
from publishers.render import render_portal

D = Decimal
UTC = dt.timezone.utc
NOW = dt.datetime(2025, 3, 20, 12, 0, tzinfo=UTC)  # Thursday; the zone below is UTC
TODAY = NOW.date()
H = 3600


def config(**client: Any) -> Config:
    return parse_config({
        "agency": {"name": "Agency", "timezone": "UTC", "email": "ops@agency.test"},
        "sources": [{"name": "h", "kind": "harvest"}],
        "clients": [{"key": "acme", "name": "Acme", "sources": {"h": ["c1"]}, "contacts": ["pm@acme.test"],
                     "alert_client": True,
                     "visibility": {"view": "realtime", "rates": "shown", "invoices": "shown", "descriptions": "detailed",
                                    "non_billable": "shown"},
                     **client}],
    })


_n = iter(range(1, 10_000))


def entry(project: str, day: dt.date, seconds: int, **kw: Any) -> TimeEntry:
    return TimeEntry.model_validate({
        "source": "h", "source_id": f"e{next(_n)}", "client_source_id": "c1", "project_source_id": project,
        "person_source_id": "u1", "task_source_id": "t1", "spent_date": day, "seconds": seconds,
        "is_billable": True, "is_approved": True, "currency": "EUR", **kw,
    })


@pytest.fixture
def acme(store: Store) -> Store:
    store.upsert([Client.model_validate({"source": "h", "source_id": "c1", "name": "Acme", "currency": "EUR"})])
    store.upsert([Task.model_validate({"source": "h", "source_id": "t1", "name": "Design"})])
    store.upsert([
        # Website: 40 h in total, ends 30 Jun
        Project.model_validate({"source": "h", "source_id": "web", "client_source_id": "c1", "name": "Website",
                                "budget_kind": "hours", "budget_period": "total", "budget_seconds": 40 * H,
                                "ends_on": dt.date(2025, 6, 30)}),
        # Retainer: 10 h a month
        Project.model_validate({"source": "h", "source_id": "ret", "client_source_id": "c1", "name": "Retainer",
                                "budget_kind": "hours", "budget_period": "monthly", "budget_seconds": 10 * H,
                                "starts_on": dt.date(2025, 1, 1)}),
        # Brand: EUR 1,000, valued at the project's rate of 95/h (no rate on the entries)
        Project.model_validate({"source": "h", "source_id": "brand", "client_source_id": "c1", "name": "Brand",
                                "budget_kind": "money", "budget_period": "total", "budget_money": D("1000"),
                                "hourly_rate": D("95"), "currency": "EUR"}),
    ])
    store.upsert([
        # Website: 5.6 h listed (EUR 560) + 26.2 h internal = 31.8 of 40 h = 79.5 %
        entry("web", TODAY - dt.timedelta(days=2), int(5.6 * H), billable_rate=D("100"), billable_amount=D("560")),
        entry("web", TODAY - dt.timedelta(days=1), int(26.2 * H), notes="[internal] rework of our own bug",
              billable_rate=D("100"), billable_amount=D("2620")),
        # Retainer: February 13 h (3 h over), March 12 h (120 %) and a running timer of 1.5 h today
        entry("ret", dt.date(2025, 2, 10), 13 * H, is_billable=False),
        entry("ret", dt.date(2025, 3, 3), 12 * H, is_billable=False),
        entry("ret", TODAY, int(1.5 * H), is_billable=False, is_running=True),
        # Brand: three 20-minute entries at 95/h = 31.666… each; exactly 95.00 together,
        # where rounding each first would give 3 x 31.67 = 95.01
        *[entry("brand", TODAY - dt.timedelta(days=7), 1200, currency=None) for _ in range(3)],
    ])
    store.upsert([Invoice.model_validate({
        "source": "h", "source_id": "i1", "client_source_id": "c1", "number": "2025-001", "issue_date": dt.date(2025, 3, 1),
        "due_date": dt.date(2025, 3, 31), "amount": D("500"), "due_amount": D("200"), "currency": "EUR", "status": "open",
    })])
    with store.session() as s:
        s.add(PortalLink(client_key="acme", token="tok", url="https://portal.test/tok/index.html"))
        s.commit()
    return store


def pdf_text(data: bytes) -> str:
    return " ".join(" ".join(p.extract_text().split()) for p in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_every_output_shows_the_same_figures(acme: Store) -> None:
    cfg = config()
    cc = cfg.clients[0]
    view = build_portal_view(acme, cfg, cc, now=NOW, previous_snapshot=None)
    files = {f.path: f.data for f in render_portal(view, lambda t, p: f"https://x/{t}/{p}", "tok")}
    html = files["index.html"].decode()
    pdf = pdf_text(files["report.pdf"])
    wb = openpyxl.load_workbook(io.BytesIO(files["timesheet.xlsx"]), data_only=True)
    summary = {r[0]: r for r in wb["Summary"].iter_rows(values_only=True) if r and r[0]}
    alerts = {a.project_name: a for a in evaluate_alerts(acme, cfg, NOW)}
    status = {b.project: b for b in next(p for p in collect_status(acme, cfg, NOW).portals if p.key == "acme").budgets}

    by_name = {p.name: p for p in view.projects}
    web, ret, brand = by_name["Website"].budget, by_name["Retainer"].budget, by_name["Brand"].budget
    assert web is not None and ret is not None and brand is not None

    # Website, worked out above: 31.8 of 40 h, 79.5 %, 8.2 h left, 26.2 h not itemized
    assert (web.used, web.allocated, web.left, web.percent_consumed) == (D("31.80"), D("40.00"), D("8.20"), D("79.5"))
    assert web.unlisted_note == "Includes 26.2 h of internal work not itemized below."
    assert "31.80 h used of 40.00 h (79.5%)" in html and web.unlisted_note in html
    assert "Website: 8.20 h left of 40.00 h. Includes 26.2 h of internal work not itemized below." in pdf
    assert "Website hours, total 40.00 31.80 8.20 79.5%" in pdf
    assert summary["Website"][2:6] == (40, 31.8, 8.2, 0.795)
    a = alerts["Website"]
    assert (a.used, a.allocated, a.left, a.percent) == (web.used, web.allocated, web.left, web.percent_consumed)
    assert "Includes 26.2 h of internal work not itemized on the portal." in a.text(for_client=True)
    assert (status["Website"].used, status["Website"].percent, status["Website"].level) == (web.used, web.percent_consumed, web.level)

    # Retainer: 12 of 10 h this month (the running 1.5 h counts nowhere), 2 h over; February 3 h over
    assert (ret.used, ret.left, ret.percent_consumed, ret.is_over_budget) == (D("12.00"), D("-2.00"), D("120.0"), True)
    assert [(h.month, h.used, h.over) for h in ret.history] == [
        (dt.date(2025, 1, 1), D("0.00"), D("0.00")), (dt.date(2025, 2, 1), D("13.00"), D("3.00"))]
    assert "12.00 h used of 10.00 h (120.0%)" in html and "Feb 2025" in html
    assert "Retainer went over last month’s budget:</strong> 13.00 h used of 10.00 h." in html
    assert "Retainer: 2.00 h over budget; resets 1 Apr 2025" in pdf
    assert "Retainer hours, monthly 10.00 12.00 −2.00 120.0%" in pdf  # a real minus sign
    assert "Retainer, previous months: Feb 2025: 13.00 h of 10.00 h (3.00 h over); Jan 2025: 0.00 h of 10.00 h" in pdf
    assert summary["Retainer"][2:6] == (10, 12, -2, 1.2)
    r = alerts["Retainer"]
    assert (r.used, r.left, r.percent, r.level) == (ret.used, ret.left, ret.percent_consumed, "over")
    assert "over budget by 2.00 h" in r.text() and "Status on the portal: Over budget." in r.text()
    assert status["Retainer"].level == "over"
    assert by_name["Retainer"].timers_running == 1 and "1 timer in progress" in html

    # Brand: exactly EUR 95.00 of 1,000, summed before rounding
    assert (brand.used, brand.percent_consumed) == (D("95.00"), D("9.5"))
    assert summary["Brand"][3] == 95
    assert "Brand" not in alerts  # 9.5 % crosses nothing
    assert status["Brand"].used == D("95.00")

    # billable value: 560 + 95.00 (the internal 2,620 is not listed and not in the total)
    [eur] = view.totals
    assert eur.amount == D("655.00")
    assert "€655.00" in html
    assert "Total 31.60 655.00 EUR" in pdf  # not 655.01, the sum of the rounded rows
    ts = list(wb["Timesheet"].iter_rows(values_only=True))
    header = next(row for row in ts if row and "Amount" in row)
    assert [row for row in ts if row[0] == "Total"][0][header.index("Amount")] == 655
    # unbilled = listed billable time: 5.6 h + 1 h
    assert view.unbilled.hours == D("6.60")
    # hours listed: 5.6 + 13 (Feb) + 12 (Mar) + 1 = 31.6 (no internal work, no running timer)
    assert view.total_hours == D("31.60")
    csv_rows = list(csv.reader(io.StringIO(files["timesheet.csv"].decode("utf-8-sig"))))
    csv_hours = sum(D(r[csv_rows[0].index("Hours")]) for r in csv_rows[1:])
    # each row is shown to 0.01 h: three 20-minute rows read 0.33 each, while the total is of
    # exact seconds (31.6 h), so the rows may differ from the total by under 0.005 h per row
    assert csv_hours == sum(r.hours for r in view.timesheet) == D("31.59")


def test_the_change_note_counts_listed_entries_and_budgets_keep_counting_hidden_ones(acme: Store) -> None:
    cfg = config()
    cc = cfg.clients[0]
    first = build_portal_view(acme, cfg, cc, now=NOW, previous_snapshot=None)
    # a hidden entry is removed and a listed one edited: one change for the client, both in the budget
    with acme.session() as s:
        from sqlmodel import select

        rows = list(s.exec(select(TimeEntry).where(TimeEntry.project_source_id == "web")))
    internal = next(e for e in rows if e.notes)
    listed = next(e for e in rows if not e.notes)
    acme.delete_ids("h", TimeEntry, [internal.source_id])
    acme.upsert([TimeEntry.model_validate({**listed.model_dump(), "id": None, "seconds": 6 * H, "billable_amount": D("600")})])
    later = build_portal_view(acme, cfg, cc, now=NOW + dt.timedelta(hours=1), previous_snapshot=snapshot_json(first))
    assert later.change_note is not None and later.change_note.text.startswith("1 entry edited")
    web = next(p for p in later.projects if p.name == "Website").budget
    assert web is not None and web.used == D("6.00") and web.unlisted_note is None


def test_a_budget_is_at_risk_when_it_runs_out_before_its_period_resets(store: Store) -> None:
    store.upsert([Client.model_validate({"source": "h", "source_id": "c1", "name": "Acme", "currency": "EUR"})])
    store.upsert([Project.model_validate({"source": "h", "source_id": "ret", "client_source_id": "c1", "name": "Retainer",
                                          "budget_kind": "hours", "budget_period": "monthly", "budget_seconds": 40 * H})])
    # 2 Dec: 8 h logged this month (20 % of 40 h). Burn: 48 h in the 28 days 5 Nov .. 2 Dec,
    # 48/28 h a day. 32 h left: ceil(32 / (48/28)) - 1 = ceil(18.67) - 1 = 18 -> 20 Dec is the
    # last day with budget left, before the month ends on 31 Dec.
    store.upsert([
        entry("ret", dt.date(2025, 11, 10), 20 * H), entry("ret", dt.date(2025, 11, 20), 20 * H),
        entry("ret", dt.date(2025, 12, 1), 8 * H),
    ])
    cfg = config()
    fig = client_figures(store, cfg, cfg.clients[0], dt.datetime(2025, 12, 2, 12, tzinfo=UTC))
    b = fig.projects[0].budget
    assert b is not None
    assert (b.used, b.percent) == (D(8), D("20.0"))
    assert b.projected_run_out == dt.date(2025, 12, 20)
    assert b.at_risk and b.level == "at_risk"  # only 20 % used, yet it will not last the month
    # the same burn in a budget big enough for the month is on track
    store.upsert([Project.model_validate({"source": "h", "source_id": "ret", "client_source_id": "c1", "name": "Retainer",
                                          "budget_kind": "hours", "budget_period": "monthly", "budget_seconds": 80 * H})])
    fig = client_figures(store, cfg, cfg.clients[0], dt.datetime(2025, 12, 2, 12, tzinfo=UTC))
    b = fig.projects[0].budget
    assert b is not None and b.projected_run_out is None and not b.at_risk and b.level == "ok"


def test_a_total_budget_is_at_risk_when_it_runs_out_before_the_project_ends(store: Store) -> None:
    store.upsert([Client.model_validate({"source": "h", "source_id": "c1", "name": "Acme", "currency": "EUR"})])
    store.upsert([Project.model_validate({"source": "h", "source_id": "web", "client_source_id": "c1", "name": "Website",
                                          "budget_kind": "hours", "budget_period": "total", "budget_seconds": 100 * H,
                                          "ends_on": dt.date(2025, 4, 30)})])
    # 28 h in the last 4 weeks = 1 h a day; 72 h left -> day 71 = 30 May is the last day with budget left
    store.upsert([entry("web", TODAY - dt.timedelta(days=3), 28 * H)])
    cfg = config()
    b = client_figures(store, cfg, cfg.clients[0], NOW).projects[0].budget
    assert b is not None and b.projected_run_out == TODAY + dt.timedelta(days=71)
    assert not b.at_risk and b.level == "ok"  # lasts past the end on 30 Apr
    store.upsert([entry("web", TODAY - dt.timedelta(days=2), 56 * H)])
    # 84 h in 28 days = 3 h a day; 16 h left: ceil(16/3) - 1 = 5 -> 25 Mar, before 30 Apr
    b = client_figures(store, cfg, cfg.clients[0], NOW).projects[0].budget
    assert b is not None and b.projected_run_out == dt.date(2025, 3, 25)
    assert b.at_risk and b.level == "at_risk"  # 84 % is only a warning by percent; the projection says more
