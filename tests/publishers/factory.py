"""PortalViews built by hand for renderer tests: no store, no policy, just the dataclasses."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from decimal import Decimal
from typing import Any

from bridge.views import (
    AgencyView,
    BudgetView,
    BurnChart,
    BurnPoint,
    ChangeNote,
    CurrencyTotal,
    GlossaryEntry,
    HoursLine,
    InvoicePreview,
    InvoicePreviewLine,
    InvoiceView,
    Money,
    PolicyEcho,
    PortalView,
    ProjectView,
    Snapshot,
    TimesheetRow,
    UnbilledView,
    WeeklySummaryRow,
)

UTC = dt.timezone.utc
AS_OF = dt.datetime(2025, 3, 20, 11, 45, tzinfo=UTC)
TODAY = dt.date(2025, 3, 20)
WEEK_START = dt.date(2025, 3, 17)
# a 1x1 PNG: the logo travels inside the page, never fetched
LOGO = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PEOPLE = ("Ada Lovelace", "Grace Hopper", "Team member C")
TASKS = ("Design", "Development", "Project management", None)
PROJECTS = ("Website relaunch", "Support retainer")


def h(x: str | float) -> Decimal:
    return Decimal(str(x)).quantize(Decimal("0.01"))


def entries(n: int, seed: int = 7, *, people: tuple[str, ...] = PEOPLE, note: str | None = None,
            rates: bool = False) -> tuple[TimesheetRow, ...]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        quarters = rnd.randint(1, 32)
        hours = h(quarters / 4)
        rows.append(TimesheetRow(
            spent_date=TODAY - dt.timedelta(days=rnd.randint(0, 3) if i < 6 else rnd.randint(0, 80)),
            person=people[i % len(people)],
            project=PROJECTS[i % 2],
            task=TASKS[i % len(TASKS)],
            description=note if note is not None else f"Worked on item {i}",
            hours=hours,
            is_billable=i % 4 != 0,
            is_running=i == 0,
            rate=Money(Decimal("120.00"), "EUR") if rates else None,
            amount=Money(hours * 120, "EUR") if rates else None,
        ))
    rows.sort(key=lambda r: r.spent_date, reverse=True)
    return tuple(rows)


def weekly_rows(rows: tuple[TimesheetRow, ...]) -> tuple[WeeklySummaryRow, ...]:
    groups: dict[tuple[Any, ...], list[TimesheetRow]] = {}
    for r in rows:
        ws = r.spent_date - dt.timedelta(days=r.spent_date.weekday())
        groups.setdefault((ws, r.person, r.project, r.task), []).append(r)
    out = []
    for (ws, person, project, task), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], kv[0][3] or ""), reverse=True):
        out.append(WeeklySummaryRow(
            week_start=ws, week_end=ws + dt.timedelta(days=6), person=person, project=project, task=task,
            hours=sum((r.hours for r in rs), Decimal(0)),
            billable_hours=sum((r.hours for r in rs if r.is_billable), Decimal(0)),
            amounts=(),
        ))
    return tuple(out)


def budget(allocated: str, used: str, *, kind: str = "hours", period: str = "total", level: str = "ok",
           currency: str | None = None) -> BudgetView:
    a, u = Decimal(allocated), Decimal(used)
    pct = (u / a * 100).quantize(Decimal("0.1"))
    return BudgetView(
        kind=kind, period=period, currency=currency, allocated=a, used=u, left=a - u, percent_consumed=pct,
        period_start=dt.date(2025, 3, 1) if period == "monthly" else None,
        resets_on=dt.date(2025, 4, 1) if period == "monthly" else None,
        level=level, threshold_crossed=None if level == "ok" else 90, is_over_budget=u > a,
        burn_per_week=Decimal("12.5"), burn_hours_per_week=Decimal("12.5"), burn_window_weeks=4,
        projected_run_out_date=dt.date(2025, 5, 2) if u < a else None,
        runs_out_before_end=True if u < a else None,
        at_risk=u < a,  # as bridge/figures.py decides: the projection ends before the project does
        explanation="Burn rate is the average use per week over the last 4 full weeks; "
                    "the projection assumes that pace continues.",
    )


def burn(unit: str = "hours", budget_value: str | None = "200", currency: str | None = None) -> BurnChart:
    weeks = [WEEK_START - dt.timedelta(weeks=k) for k in range(5, -1, -1)]
    weekly = tuple(BurnPoint(w, Decimal(v)) for w, v in zip(weeks, ("10", "14", "12.5", "9", "16", "8")))
    cum, total = [], Decimal(0)
    for p in weekly:
        total += p.value
        cum.append(BurnPoint(p.on + dt.timedelta(days=6), total))
    proj = (BurnPoint(TODAY, total), BurnPoint(dt.date(2025, 5, 2), Decimal(budget_value))) if budget_value else ()
    return BurnChart(unit=unit, currency=currency, weekly=weekly, cumulative=tuple(cum), projection=proj,
                     budget=Decimal(budget_value) if budget_value else None)


def make_view(
    n: int = 40,
    *,
    weekly: bool = False,
    rates: bool = False,
    invoices: bool = True,
    non_billable: bool = True,
    client_name: str = "Acme Robotics",
    agency_name: str = "Northwind Studio",
    people: tuple[str, ...] = PEOPLE,
    note: str | None = None,
    notes: str | None = "Hours are rounded to the nearest quarter hour.\nMonthly budgets reset on the 1st.",
    glossary: tuple[GlossaryEntry, ...] = (GlossaryEntry("DSN", "Design work: wireframes, mock-ups"),
                                          GlossaryEntry("PM", "Project management and meetings")),
    accent: str = "#1f5fbf",
    logo: str | None = LOGO,
    change: bool = True,
) -> PortalView:
    rows = entries(n, people=people, note=note, rates=rates)
    total = sum((r.hours for r in rows), Decimal(0))
    billable = sum((r.hours for r in rows if r.is_billable), Decimal(0))
    week = [r for r in rows if r.spent_date >= WEEK_START]
    by_person: dict[str, Decimal] = {}
    for r in week:
        by_person[r.person] = by_person.get(r.person, Decimal(0)) + r.hours
    projects = (
        ProjectView(
            anchor="project-1", name=PROJECTS[0], code="WEB-7", starts_on=dt.date(2025, 1, 6),
            ends_on=dt.date(2025, 6, 30), budget_status="visible", budget=budget("200", "69.5", level="ok"),
            hours_this_week=h(sum(float(r.hours) for r in week if r.project == PROJECTS[0])),
            hours_to_date=sum((r.hours for r in rows if r.project == PROJECTS[0]), Decimal(0)),
            billable_hours_to_date=Decimal("50"),
            hours_by_task=(HoursLine("Design", Decimal("30.25")), HoursLine("Development", Decimal("39.25"))),
            hours_by_phase=(HoursLine("Discovery", Decimal("20")), HoursLine("Build", Decimal("49.5"))),
            burn_chart=burn(),
        ),
        ProjectView(
            anchor="project-2", name=PROJECTS[1], code=None, starts_on=None, ends_on=None,
            budget_status="visible", budget=budget("40", "43.25", period="monthly", level="over"),
            hours_this_week=h(sum(float(r.hours) for r in week if r.project == PROJECTS[1])),
            hours_to_date=sum((r.hours for r in rows if r.project == PROJECTS[1]), Decimal(0)),
            billable_hours_to_date=Decimal("40"),
            hours_by_task=(HoursLine("Support", Decimal("43.25")),), hours_by_phase=(),
            burn_chart=burn(budget_value=None),
        ),
    )
    policy = PolicyEcho(view="weekly" if weekly else "realtime", rates_shown=rates, invoices_shown=invoices,
                        descriptions="detailed", team_names="full", non_billable_shown=non_billable,
                        approved_only=False)
    inv = (
        InvoiceView("INV-1041", dt.date(2025, 2, 28), dt.date(2025, 3, 30), None, Decimal("4800.00"),
                    Decimal("4800.00"), Decimal("0"), "EUR", "open"),
        InvoiceView("INV-1032", dt.date(2025, 1, 31), dt.date(2025, 3, 2), dt.date(2025, 2, 27), Decimal("3600.00"),
                    Decimal("0"), Decimal("3600.00"), "EUR", "paid"),
    ) if invoices else ()
    preview = (InvoicePreview("EUR", Decimal("22.50"), Decimal("2700.00"),
                              (InvoicePreviewLine(PROJECTS[0], Decimal("22.50"), Decimal("120.00"), Decimal("2700.00")),)
                              if rates else ()),) if invoices else ()
    return PortalView(
        client_name=client_name,
        agency=AgencyView(name=agency_name, logo_url=logo, accent_color=accent, contact="Ada <ada@example.com>"),
        as_of=AS_OF,
        generated_at=AS_OF + dt.timedelta(minutes=5),
        today=TODAY,
        week_start=WEEK_START,
        week_end=WEEK_START + dt.timedelta(days=6),
        week_label="Week of 17 Mar 2025",
        policy=policy,
        total_hours=total,
        billable_hours=billable,
        non_billable_hours=total - billable if non_billable else None,
        totals=(CurrencyTotal("EUR", billable, billable * 120 if rates else Decimal(0)),),
        projects=projects,
        this_week_by_person=tuple(HoursLine(k, v) for k, v in sorted(by_person.items())),
        hours_to_date_by_person=tuple(
            HoursLine(p, sum((r.hours for r in rows if r.person == p), Decimal(0))) for p in sorted({r.person for r in rows})),
        timesheet=() if weekly else rows,
        weekly_summaries=weekly_rows(rows) if weekly else (),
        unbilled=UnbilledView(Decimal("22.50"), (Money(Decimal("2700.00"), "EUR"),) if rates else ()),
        invoice_preview=preview,
        invoices=inv,
        glossary=glossary,
        notes=notes,
        change_note=ChangeNote(AS_OF - dt.timedelta(days=8), 12, 3, 1, "3 entries edited, 1 removed, 12 added since 12 Mar")
        if change else None,
        snapshot=Snapshot(taken_at=AS_OF),
    )


def replace(view: PortalView, **changes: Any) -> PortalView:
    return dataclasses.replace(view, **changes)


def link(token: str, path: str) -> str:
    return f"https://files.example.test/{token}/{path}?sig=abc"
