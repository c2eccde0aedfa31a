"""A small agency, built by hand, read through each provider's API: the figures a client sees.

Every expected figure below is worked out by hand from the agency's entries and the
providers' semantics (hours budgets count all hours logged, as Harvest's budget report
does; money budgets count billable amounts at the project's rate; running timers count
nowhere; hidden work is counted in budgets and said so, never listed), never by the
product's code. The same agency must give the same figures through Harvest, FreshBooks and
Productive; FreshBooks cannot say "monthly" or hold a money budget on an hourly project, so
its client says so in `[[clients.budgets]]`, as an agency would.
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bridge.config import parse_config
from bridge.connector import Context
from bridge.figures import ClientFigures, client_figures
from bridge.http import RetryPolicy
from bridge.store import Store
from bridge.sync import sync_source
from bridge.views import build_portal_view
from connectors import CONNECTORS, build_connector
from connectors.sandbox import Sandbox
from connectors.sandbox.agency import (
    Agency,
    Client,
    Entry,
    Invoice,
    InvoiceLine,
    Payment,
    Person,
    Project,
    Task,
    to_epoch,
)
from connectors.sandbox.demo import client_id
from tests.helpers.sandbox_sources import fast_source_block

D = Decimal
UTC = dt.timezone.utc
TODAY = dt.date(2025, 3, 20)  # a Thursday
NOW = dt.datetime(2025, 3, 20, 12, 0, tzinfo=UTC)
H = 3600
PROVIDERS = sorted(CONNECTORS)
ACME, ADA, BO, DESIGN, SUPPORT = 5201001, 3101001, 3101002, 8301001, 8301002
WEBSITE, RETAINER, BRAND = 14501001, 14501002, 14501003
INV_WEB, INV_FEB = 40100001, 40100002


def _at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), UTC)


def small_agency() -> Agency:
    """Acme: Website (60 h in total, to 30 Jun), Retainer (40 h a month), Brand (EUR 1,000)."""
    born = _at(dt.date(2024, 12, 1))
    people = {
        ADA: Person(ADA, "Ada", "Lovelace", "ada@agency.example", ["Design"], True, False, True, D(100), D(40),
                    144000, "Europe/Berlin", born, born),
        BO: Person(BO, "Bo", "Kim", "bo@agency.example", ["Support"], False, False, True, D(80), D(35),
                   144000, "Europe/Berlin", born, born),
    }
    tasks = {
        DESIGN: Task(DESIGN, "Design", True, None, True, born, born),
        SUPPORT: Task(SUPPORT, "Support", True, None, True, born, born),
    }

    def project(pid: int, name: str, code: str, rate: str, kind: str, budget: str, monthly: bool,
                starts: dt.date, ends: dt.date | None, task: int) -> Project:
        return Project(pid, ACME, name, code, True, True, False, D(rate), kind, D(budget), monthly, None, starts, ends,
                       None, [task], [ADA, BO], ADA, born, born)

    projects = {
        WEBSITE: project(WEBSITE, "Website", "WEB", "100", "hours", "60", False, dt.date(2025, 1, 1), dt.date(2025, 6, 30), DESIGN),
        RETAINER: project(RETAINER, "Retainer", "RET", "90", "hours", "40", True, dt.date(2025, 2, 1), None, SUPPORT),
        BRAND: project(BRAND, "Brand", "BRD", "95.50", "money", "1000", False, dt.date(2025, 3, 1), None, DESIGN),
    }
    agency = Agency(
        seed=0, today=TODAY, timezone="Europe/Berlin", name="Small Studio", clock=lambda: NOW,
        generated_at=_at(TODAY, 0), clients={ACME: Client(ACME, "Acme", "EUR", True, None, "ap@acme.example", born, born)},
        people=people, tasks=tasks, projects=projects, entries={}, invoices={},
    )
    n = 2101000000

    def entry(day: dt.date, person: int, pid: int, hours: str, *, billable: bool = True, notes: str | None = None,
              invoice: int | None = None, running: bool = False) -> None:
        nonlocal n
        n += 1
        p = projects[pid]
        stamp = to_epoch(_at(day, 7)) if not running else to_epoch(_at(TODAY, 10))
        agency.entries[n] = Entry(
            n, day, person, pid, p.task_ids[0], int(D(hours) * H), billable, notes, p.hourly_rate if billable else None,
            people[person].cost_rate, running, stamp if running else None, invoice is not None, invoice, stamp, stamp,
        )

    # Website: 10 h invoiced, 20 h, 15.5 h of internal rework (hidden, counted), 24 h; a running timer
    entry(dt.date(2025, 3, 3), ADA, WEBSITE, "10", invoice=INV_WEB)
    entry(dt.date(2025, 3, 10), BO, WEBSITE, "20")
    entry(dt.date(2025, 3, 12), ADA, WEBSITE, "15.5", notes="[internal] rework of our own bug")
    entry(dt.date(2025, 3, 17), ADA, WEBSITE, "24")
    entry(TODAY, ADA, WEBSITE, "1.5", running=True)
    # Retainer: February 45 h (invoiced), March 2 h non-billable (hidden, counted) and 8 h
    entry(dt.date(2025, 2, 10), BO, RETAINER, "45", invoice=INV_FEB)
    entry(dt.date(2025, 3, 5), BO, RETAINER, "2", billable=False, notes="Weekly call")
    entry(dt.date(2025, 3, 14), BO, RETAINER, "8")
    # Brand: three entries of 21 minutes at 95.50/h = 33.425 each, 100.275 together
    for _ in range(3):
        entry(dt.date(2025, 3, 13), ADA, BRAND, "0.35")
    agency._next_entry_id = n

    def invoice(iid: int, number: str, pid: int, issued: dt.date, due: dt.date, hours: str, rate: str,
                paid: str | None) -> None:
        inv = Invoice(iid, number, ACME, pid, "EUR", issued, due, "open", f"{projects[pid].name}",
                      [InvoiceLine(iid * 10, "Service", projects[pid].name, D(hours), D(rate), pid)], [], ADA,
                      None, None, _at(issued), None, _at(issued, 8), _at(issued, 8), None)
        if paid:
            paid_at = _at(issued + dt.timedelta(days=10), 10)
            inv.payments.append(Payment(iid * 10 + 1, iid, D(paid), paid_at, "bank_transfer", None, ADA, paid_at, paid_at))
            inv.updated_at = paid_at
        agency.invoices[iid] = inv

    invoice(INV_WEB, "2025-0001", WEBSITE, dt.date(2025, 3, 5), dt.date(2025, 4, 4), "10", "100", "400")  # partial
    invoice(INV_FEB, "2025-0002", RETAINER, dt.date(2025, 3, 1), dt.date(2025, 3, 15), "45", "90", None)  # overdue
    agency._last_stamp = to_epoch(NOW)
    return agency


def _config(provider: str, box: Sandbox) -> Any:
    block, env = fast_source_block(provider, box.url(provider))
    os.environ.update(env)
    client: dict[str, Any] = {
        "key": "acme", "name": "Acme", "sources": {provider: [client_id(provider, ACME)]},
        "visibility": {"rates": "shown", "invoices": "shown", "view": "realtime"},
    }
    if provider == "freshbooks":
        # FreshBooks has no monthly budget and no money budget on an hourly project: the agency says so
        client["budgets"] = [
            {"project": "freshbooks:Retainer", "period": "month"},
            {"project": "freshbooks:Brand", "kind": "money", "amount": "1000"},
        ]
    return parse_config({"agency": {"timezone": "Europe/Berlin"}, "sources": [block], "clients": [client]})


def _sync(cfg: Any, store: Store) -> None:
    src = cfg.sources[0]
    conn = build_connector(src, tz=cfg.agency.zone, store=store, retry=RetryPolicy(attempts=3, sleep=lambda _s: None))
    try:
        report = sync_source(conn, store, src, ctx=Context(source=src.name, tz=cfg.agency.zone, today=TODAY))
    finally:
        conn.close()
    assert report.status == "ok", report.error
    assert report.quarantined == 0


def _budget(fig: ClientFigures, name: str) -> Any:
    return next(p for p in fig.projects if p.project.name == name).budget


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_small_agency_gives_the_figures_worked_out_by_hand(provider: str, tmp_path: Path) -> None:
    with Sandbox(small_agency(), rate_limits=False) as box:
        cfg = _config(provider, box)
        store = Store(f"sqlite:///{tmp_path / 'store.db'}")
        store.migrate()
        _sync(cfg, store)
        fig = client_figures(store, cfg, cfg.clients[0], NOW)

        # Website: 10 + 20 + 15.5 + 24 = 69.5 of 60 h (115.8 %), the running 1.5 h not counted;
        # 15.5 h of it internal, not listed
        web = _budget(fig, "Website")
        assert (web.used, web.allocated, web.percent, web.is_over, web.level) == (D("69.5"), D(60), D("115.8"), True, "over")
        assert web.unlisted_by_reason == (("internal", int(15.5 * H)),)
        assert web.projected_run_out is None  # used up
        assert next(p for p in fig.projects if p.project.name == "Website").running == 1
        # Retainer: March 2 + 8 = 10 of 40 h (25 %); February 45 h, 5 h over
        ret = _budget(fig, "Retainer")
        assert (ret.period, ret.used, ret.percent, ret.level) == ("monthly", D(10), D("25.0"), "ok")
        assert ret.unlisted_by_reason == (("non_billable", 2 * H),)
        assert [(h.month, h.used, h.over) for h in ret.history] == [(dt.date(2025, 2, 1), D(45), D(5))]
        # 10 h in the 28 days to today: 30 h left lasts 83 more days, past the reset on 1 Apr
        assert ret.projected_run_out is None and not ret.at_risk
        # Brand: 3 x 0.35 h x 95.50 = 100.275 of EUR 1,000 (10.0 %)
        brand = _budget(fig, "Brand")
        assert (brand.kind, brand.currency, brand.used, brand.percent) == ("money", "EUR", D("100.275"), D("10.0"))

        # listed: Website 10 + 20 + 24, Retainer 45 + 8, Brand 1.05 = 108.05 h, all billable
        assert (fig.total_seconds, fig.billable_seconds) == (int(108.05 * H), int(108.05 * H))
        # value: 1,000 + 2,000 + 2,400 + 4,050 + 720 + 100.275 = 10,270.275 (the internal 1,550 is not listed)
        assert fig.amounts == {"EUR": D("10270.275")}
        # unbilled: 20 + 24 + 8 + 1.05 = 53.05 h, 2,000 + 2,400 + 720 + 100.275 = 5,220.275
        assert fig.unbilled_seconds == int(53.05 * H) and fig.unbilled_amounts == {"EUR": D("5220.275")}
        # invoices: 1,000 with 400 paid (partial, 600 due), 4,050 due on 15 Mar (overdue)
        assert sorted((inv.number, D(inv.amount), D(inv.due_amount), status) for inv, status in fig.invoices) == [
            ("2025-0001", D("1000"), D("600"), "partial"), ("2025-0002", D("4050"), D("4050"), "overdue")]

        # the page rounds once: EUR 10,270.28, not the sum of rounded rows (33.43 x 3 = 100.29)
        view = build_portal_view(store, cfg, cfg.clients[0], now=NOW, previous_snapshot=None)
        assert [(t.currency, t.amount) for t in view.totals] == [("EUR", D("10270.28"))]
        assert next(p for p in view.projects if p.name == "Brand").budget.used == D("100.28")  # type: ignore[union-attr]

        # then: an entry deleted, one edited, one backdated into February
        agency = box.agency
        bo_web = next(e for e in agency.entries.values() if e.project_id == WEBSITE and e.person_id == BO)
        ada_24 = next(e for e in agency.entries.values() if e.project_id == WEBSITE and e.seconds == 24 * H)
        agency.delete_entry(bo_web.id)
        agency.edit_entry(ada_24.id, seconds=25 * H)
        agency.add_entry(project_id=RETAINER, person_id=BO, task_id=SUPPORT, spent_date=dt.date(2025, 2, 20), seconds=3 * H)
        _sync(cfg, store)
        fig = client_figures(store, cfg, cfg.clients[0], NOW)
        # Website: 10 + 15.5 + 25 = 50.5 of 60 h (84.2 %). Burn: 50.5 h in 28 days; 9.5 h left:
        # ceil(9.5 / (50.5/28)) - 1 = ceil(5.27) - 1 = 5 -> 25 Mar, before the end on 30 Jun: at risk
        web = _budget(fig, "Website")
        assert (web.used, web.percent, web.projected_run_out, web.at_risk, web.level) == (
            D("50.5"), D("84.2"), dt.date(2025, 3, 25), True, "at_risk")
        ret = _budget(fig, "Retainer")
        assert ret.used == D(10) and [(h.month, h.used, h.over) for h in ret.history] == [(dt.date(2025, 2, 1), D(48), D(8))]
        # unbilled: 24 -> 25 h, Bo's 20 h gone, the backdated 3 h at 90: 25 + 8 + 1.05 + 3 = 37.05 h
        assert fig.unbilled_seconds == int(37.05 * H)
        assert fig.unbilled_amounts == {"EUR": D("2500") + D("720") + D("100.275") + D("270")}
        store.close()
