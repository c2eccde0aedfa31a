"""Every client-facing figure of one client, computed once (DESIGN.md invariant 7).

The portal page, its CSV/XLSX/PDF exports (through the PortalView), the change note,
agency and client alerts and `bridge status` all read `ClientFigures`; none of them
adds up an entry itself. `bridge/metrics.py` holds the arithmetic; this module decides
which entries each figure counts:

* **Listed** entries are the finished entries the client's policy publishes. The
  timesheet, hours to date, hours by person, task and phase, billable value, unbilled
  time and the invoice preview count these.
* **Budgets count as the tracker counts** (`budget_basis = "tracker"`, the default):
  an hours budget counts every finished hour logged on the project, internal,
  non-billable and unapproved work included (as Harvest's budget report does); a
  money budget counts the billable amount of those entries at the tracker's rates.
  Work the policy hides stays unlisted but is counted, and `BudgetFigures.unlisted_*`
  says how much of the total that is, so the timesheet still reconciles with the
  budget. `budget_basis = "published"` counts listed entries only.
* **Running timers** count nowhere (no total, export, budget, burn or projection)
  until they stop: their duration is still changing. A project only says how many
  are in progress.
* **Money** is exact Decimal per entry and per sum; it is rounded once, for display.
* **Projected run-out** is the last day that still ends with budget left at the burn
  rate of the trailing window (metrics.run_out_date). A budget is **at risk** when
  that day falls before the end of its period (monthly budgets) or before the
  project's end date, however little of it is used so far.

Budget kind, period and allocation come from the project row (`Project.budget_*`) with
the client's `[[clients.budgets]]` overrides applied as the rows are read
(bridge/overrides.py), so every figure uses the same budget. Entries are valued at the
rate the tracker applies (bridge/valuation.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlmodel import select

from bridge import metrics as m
from bridge.models import Client, Invoice, Person, Project, SyncRun, Task, TimeEntry
from bridge.overrides import apply_budget_overrides, fallback_rate
from bridge.i18n import Lang, lang
from bridge.policy import Policy
from bridge.valuation import Unvalued, value_entry

if TYPE_CHECKING:  # pragma: no cover
    from bridge.config import ClientConfig, Config
    from bridge.store import Store

Basis = Literal["tracker", "published"]
Level = Literal["ok", "warning", "at_risk", "critical", "over"]
HiddenReason = Literal["internal", "non_billable", "unapproved"]

LEVEL_NAMES: dict[str, str] = {
    "ok": "On track", "warning": "Nearing budget", "at_risk": "At risk",
    "critical": "Almost used up", "over": "Over budget",
}
HISTORY_MONTHS = 12  # previous months a monthly budget lists
EN = lang("en")


# --- the store rows of one client ----------------------------------------------------------


@dataclass(frozen=True)
class ClientRows:
    """One client's live rows, read once and scoped by its (source, client id) pairs."""

    clients: list[Client]
    projects: list[Project]
    entries: list[Any]  # time_entries rows (attribute access like TimeEntry, read-only)
    people: dict[tuple[str, str], Person]
    tasks: dict[tuple[str, str], Task]
    invoices: list[Invoice]
    as_of: dt.datetime | None
    names: Any = None  # what description redaction needs (bridge/views.py adds it); no figure reads it


def load_client_rows(store: "Store", client_cfg: "ClientConfig") -> ClientRows:
    """Every row the figures of `client_cfg` may draw on, and nothing of any other client.

    Entries are matched on their own client id or, when a provider leaves that empty, on a
    project that belongs to this client in the same source; both keep the scope per client.
    """
    clients: list[Client] = []
    projects: list[Project] = []
    entries: list[TimeEntry] = []
    invoices: list[Invoice] = []
    people: dict[tuple[str, str], Person] = {}
    tasks: dict[tuple[str, str], Task] = {}
    finished: list[dt.datetime | None] = []
    with store.session() as s:
        for source, ids in sorted(client_cfg.sources.items()):
            ids = [str(i) for i in ids]
            if not ids:
                continue
            clients += s.exec(select(Client).where(Client.source == source, Client.source_id.in_(ids), Client.is_deleted == False)).all()
            projs = list(s.exec(
                select(Project).where(Project.source == source, Project.client_source_id.in_(ids), Project.is_deleted == False)
            ))
            projects += projs
            pids = [p.source_id for p in projs]
            # plain rows, not ORM instances: a client may have tens of thousands of entries,
            # and instrumented attribute access costs more than every figure computed from them
            te = TimeEntry.__table__  # type: ignore[attr-defined]
            src_entries = list(s.connection().execute(sa.select(te).where(
                te.c.source == source, te.c.is_deleted.is_(False), _entry_scope(te, ids, pids))))
            entries += src_entries
            person_ids = sorted({e.person_source_id for e in src_entries if e.person_source_id})
            task_ids = sorted({e.task_source_id for e in src_entries if e.task_source_id})
            # inactive or since-deleted people still name their historical entries
            for chunk in _chunks(person_ids):
                for p in s.exec(select(Person).where(Person.source == source, Person.source_id.in_(chunk))):
                    people[(source, p.source_id)] = p
            for chunk in _chunks(task_ids):
                for t in s.exec(select(Task).where(Task.source == source, Task.source_id.in_(chunk))):
                    tasks[(source, t.source_id)] = t
            invoices += s.exec(
                select(Invoice).where(Invoice.source == source, Invoice.client_source_id.in_(ids), Invoice.is_deleted == False)
            ).all()
            last_ok = s.exec(
                select(sa.func.max(SyncRun.finished_at)).where(SyncRun.source == source, SyncRun.status == "ok")
            ).one()
            finished.append(last_ok)
    known = [f for f in finished if f is not None]
    as_of = min(known) if known else None
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.timezone.utc)
    # the agency's [[clients.budgets]] entries, on detached rows: never written back
    apply_budget_overrides(projects, client_cfg)
    return ClientRows(clients, projects, entries, people, tasks, invoices, as_of)


def _entry_scope(te: sa.Table, ids: list[str], pids: list[str]) -> sa.ColumnElement[bool]:
    """This client's entries: by their client id, or by its project when the client id is empty."""
    cond = te.c.client_source_id.in_(ids)
    if pids:
        cond = sa.or_(cond, sa.and_(te.c.client_source_id.is_(None), te.c.project_source_id.in_(pids)))
    return cond


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --- the figures -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One finished entry as the figures see it: its metrics row and where it came from."""

    row: Any  # a time_entries row (read-only, TimeEntry attributes)
    metric: m.Entry
    task: Task | None
    project: Project | None
    hidden: HiddenReason | None  # None: listed on the portal

    @property
    def listed(self) -> bool:
        return self.hidden is None


@dataclass(frozen=True)
class BudgetSpec:
    """What a project's budget is: read from the project row (or an override)."""

    kind: Literal["hours", "money"]
    period: Literal["total", "monthly"]
    seconds: int | None
    money: Decimal | None
    visible: bool


@dataclass(frozen=True)
class MonthUse:
    """A past month of a monthly budget."""

    month: dt.date  # its first day
    allocated: Decimal
    used: Decimal
    over: Decimal  # used beyond the allocation; 0 when within it


@dataclass(frozen=True)
class BudgetFigures:
    kind: Literal["hours", "money"]
    period: Literal["total", "monthly"]
    currency: str | None  # money budgets
    basis: Basis
    allocated: Decimal  # hours or money, exact
    used: Decimal  # exact; monthly: this calendar month
    left: Decimal  # negative when over
    percent: Decimal  # one decimal
    period_start: dt.date | None
    resets_on: dt.date | None
    unlisted_seconds: int  # counted in `used` but not listed (tracker basis), this period
    unlisted_by_reason: tuple[tuple[str, int], ...]
    level: Level
    threshold_crossed: int | None
    is_over: bool
    at_risk: bool
    burn: m.Burn
    projected_run_out: dt.date | None  # last day with budget left; None: no burn, used up, or lasts the period
    runs_out_before_end: bool | None
    weekly: tuple[tuple[dt.date, Decimal], ...]  # budget unit burned per calendar week, exact
    cumulative: tuple[tuple[dt.date, Decimal], ...]  # budget used by each week's end (or today)
    history: tuple[MonthUse, ...]  # monthly budgets: the previous months, oldest first
    explanation: str
    allocation_key: str = ""  # the allocation as alerts remember it ("36000s", "1000 EUR"): a change re-arms

    @property
    def unit(self) -> str:
        return "h" if self.kind == "hours" else (self.currency or "")


BudgetStatus = Literal["none", "visible", "not_visible"]


@dataclass(frozen=True)
class ProjectFigures:
    key: str  # "<source>:<project source id>"
    project: Project
    currency: str | None
    lines: tuple[Line, ...]  # listed finished entries, the timesheet's order
    budget_status: BudgetStatus
    budget: BudgetFigures | None
    running: int  # timers in progress on listed work
    seconds_this_week: int
    seconds_to_date: int
    billable_seconds_to_date: int
    seconds_by_task: dict[str, int]
    seconds_by_phase: dict[str, int]
    weekly: tuple[tuple[dt.date, Decimal], ...]  # chart actuals (budget unit, else listed hours)
    # why some billable time here has no value (bridge/valuation.py): the tracker gives no
    # rate for it, and what the agency can set; None when all of it is valued
    value_note: Unvalued | None = None


@dataclass(frozen=True)
class PreviewFigures:
    """What the next invoice would hold in one currency: all unbilled listed time in it."""

    currency: str
    seconds: int
    amount: Decimal  # exact
    unvalued_seconds: int  # billable hours the tracker gives no value
    lines: tuple[tuple[str, int, Decimal | None, Decimal], ...]  # (project name, seconds, one rate or None, amount)


@dataclass(frozen=True)
class ClientFigures:
    client_key: str
    today: dt.date
    week_start: dt.date
    week_end: dt.date
    basis: Basis
    lines: tuple[Line, ...]  # every listed finished entry, sorted
    projects: tuple[ProjectFigures, ...]  # the projects the portal shows, by name
    total_seconds: int
    billable_seconds: int
    non_billable_seconds: int
    amounts: dict[str, Decimal]  # billable value per currency, exact
    billable_seconds_by_currency: dict[str, int]
    unbilled_seconds: int
    unbilled_amounts: dict[str, Decimal]  # exact
    preview: tuple[PreviewFigures, ...]
    invoices: tuple[tuple[Invoice, str], ...]  # issued invoices and their status today
    running: int  # timers in progress on listed work
    seconds_this_week_by_person: dict[str, int] = field(default_factory=dict)  # "<source>:<person id>"
    seconds_to_date_by_person: dict[str, int] = field(default_factory=dict)

    def project(self, key: str) -> ProjectFigures | None:
        return next((p for p in self.projects if p.key == key), None)


def project_budget(project: Project, client_cfg: "ClientConfig" | None = None) -> BudgetSpec | None:
    """The budget a project has, or None. The one place budget settings are read."""
    if project.budget_kind not in ("hours", "money"):
        return None
    return BudgetSpec(
        kind=project.budget_kind,  # type: ignore[arg-type]
        period="monthly" if project.budget_period == "monthly" else "total",
        seconds=project.budget_seconds, money=project.budget_money, visible=bool(project.budget_visible),
    )


def client_figures(store: "Store", config: "Config", client_cfg: "ClientConfig", now: dt.datetime) -> ClientFigures:
    """Read one client's rows and compute every figure (what alerts and status call)."""
    return compute(load_client_rows(store, client_cfg), config, client_cfg, now)


def compute(rows: ClientRows, config: "Config", client_cfg: "ClientConfig", now: dt.datetime) -> ClientFigures:
    agency = config.agency
    today = m.local_date(now, agency.zone)
    ws = agency.week_start_index
    week_start, week_end = m.week_bounds(today, ws)
    pol = Policy(client_cfg.visibility)
    basis: Basis = getattr(client_cfg, "budget_basis", "tracker")
    client_currency = {(c.source, c.source_id): c.currency for c in rows.clients}
    project_by_key = {(p.source, p.source_id): p for p in rows.projects}

    def currency_of(p: Project | None, e: TimeEntry | None = None) -> str | None:
        if p is not None and p.currency:
            return p.currency
        if e is not None and e.currency:
            return e.currency
        if p is not None and p.client_source_id:
            return client_currency.get((p.source, p.client_source_id))
        return None

    lines: list[Line] = []
    running: dict[str, int] = {}
    unvalued: dict[str, Unvalued] = {}  # project key -> why some of its billable time has no value
    for e in rows.entries:
        task = rows.tasks.get((e.source, e.task_source_id or ""))
        task_name = task.name if task else None
        hidden: HiddenReason | None = None
        if pol.is_internal(task_name=task_name, notes=e.notes, tags=e.tags):
            hidden = "internal"
        elif not e.is_billable and not pol.non_billable_shown:
            hidden = "non_billable"
        elif client_cfg.visibility.approved_only and not e.is_approved:
            hidden = "unapproved"
        pkey = f"{e.source}:{e.project_source_id or ''}"
        if e.is_running:
            # counts nowhere until stopped; the page may say a timer is in progress
            if hidden is None:
                running[pkey] = running.get(pkey, 0) + 1
            continue
        proj = project_by_key.get((e.source, e.project_source_id or ""))
        # at the rate the tracker applies (bridge/valuation.py), exact
        value = value_entry(
            e, proj, task, rows.people.get((e.source, e.person_source_id or "")), fallback_rate=fallback_rate(client_cfg, proj),
        )
        amount, rate = value.amount, value.rate
        if value.missing:
            unvalued.setdefault(pkey, value.missing)
        metric = m.Entry(
            spent_date=e.spent_date, seconds=int(e.seconds), is_billable=e.is_billable, is_running=False,
            is_invoiced=e.is_invoiced, billable_amount=amount, currency=e.currency or currency_of(proj, e),
            project=pkey, person=f"{e.source}:{e.person_source_id or ''}",
            task=task_name, phase=e.phase or None, billable_rate=rate,
        )
        lines.append(Line(row=e, metric=metric, task=task, project=proj, hidden=hidden))
    lines.sort(key=lambda ln: (ln.row.spent_date, ln.project.name if ln.project else "", ln.row.source, ln.row.source_id))
    listed = [ln for ln in lines if ln.listed]
    listed_metrics = [ln.metric for ln in listed]

    by_project_all: dict[str, list[Line]] = {}
    for ln in lines:
        by_project_all.setdefault(ln.metric.project, []).append(ln)
    shown = sorted(
        (p for p in rows.projects if p.is_active or any(ln.listed for ln in by_project_all.get(_key(p), []))),
        key=lambda p: (p.name.casefold(), p.source, p.source_id),
    )
    projects = tuple(
        _project(p, by_project_all.get(_key(p), []), currency_of(p), client_cfg, basis, today, ws, running.get(_key(p), 0),
                 unvalued.get(_key(p)))
        for p in shown
    )

    billable = [x for x in listed_metrics if x.is_billable]
    unbilled = m.unbilled(listed_metrics)
    invoices = []
    for inv in sorted(rows.invoices, key=lambda v: (v.issue_date or dt.date.min, v.number or "", v.source_id)):
        status = m.invoice_status(inv.status, inv.due_date, Decimal(inv.amount), Decimal(inv.due_amount), today)
        if status not in ("draft", "void"):
            invoices.append((inv, status))
    this_week = m.between(listed_metrics, week_start, week_end)
    return ClientFigures(
        client_key=client_cfg.key, today=today, week_start=week_start, week_end=week_end, basis=basis,
        lines=tuple(listed), projects=projects,
        total_seconds=m.total_seconds(listed_metrics),
        billable_seconds=m.total_seconds(billable),
        non_billable_seconds=m.total_seconds(x for x in listed_metrics if not x.is_billable),
        amounts=m.amounts_by_currency(listed_metrics),
        billable_seconds_by_currency=m.billable_seconds_by_currency(listed_metrics),
        unbilled_seconds=unbilled.seconds, unbilled_amounts=unbilled.amounts,
        preview=tuple(_preview(listed)),
        invoices=tuple(invoices),
        running=sum(running.values()),
        seconds_this_week_by_person=m.seconds_by(this_week, lambda x: x.person),
        seconds_to_date_by_person=m.seconds_by(listed_metrics, lambda x: x.person),
    )


def _key(p: Project) -> str:
    return f"{p.source}:{p.source_id}"


def _project(
    proj: Project, lines: list[Line], currency: str | None, client_cfg: "ClientConfig", basis: Basis,
    today: dt.date, ws: int, running: int, value_note: Unvalued | None = None,
) -> ProjectFigures:
    listed = [ln for ln in lines if ln.listed]
    lm = [ln.metric for ln in listed]
    counted = lines if basis == "tracker" else listed
    wk_first, wk_last = m.week_bounds(today, ws)
    spec = project_budget(proj, client_cfg)
    status: BudgetStatus = "none"
    budget = None
    if spec is not None:
        billed = [ln.metric for ln in counted if ln.metric.is_billable]
        if not spec.visible:
            status = "not_visible"
        elif spec.kind == "money" and billed and all(e.billable_amount is None for e in billed):
            # hours were logged but the tracker values none of them (no rate known):
            # "0.00 used" would be false, so the budget is not shown
            status = "not_visible"
        elif spec.kind == "money" and not currency:
            status = "not_visible"  # a money budget in no known currency cannot be shown honestly
        else:
            budget = _budget(spec, counted, currency, client_cfg, basis, today, ws, proj)
            status = "visible" if budget is not None else "none"
    if budget is not None:
        weekly = budget.weekly
    else:
        weekly = tuple(m.weekly_series(lm, today=today, weeks=client_cfg.burn_window_weeks, week_start=ws,
                                       value=lambda es: Decimal(m.total_seconds(es)) / 3600))
    return ProjectFigures(
        key=_key(proj), project=proj, currency=currency, lines=tuple(listed), budget_status=status, budget=budget,
        running=running,
        seconds_this_week=m.total_seconds(m.between(lm, wk_first, wk_last)),
        seconds_to_date=m.total_seconds(lm),
        billable_seconds_to_date=m.total_seconds(e for e in lm if e.is_billable),
        seconds_by_task=m.seconds_by(lm, lambda e: e.task or "Other"),
        seconds_by_phase=m.seconds_by(lm, lambda e: e.phase),
        weekly=weekly, value_note=value_note,
    )


def _budget(
    spec: BudgetSpec, counted: list[Line], currency: str | None, client_cfg: "ClientConfig", basis: Basis,
    today: dt.date, ws: int, proj: Project,
) -> BudgetFigures | None:
    entries = [ln.metric for ln in counted]
    use = m.budget_use(entries, kind=spec.kind, period=spec.period, budget_seconds=spec.seconds,
                       budget_money=spec.money, currency=currency, today=today)
    if use is None:
        return None
    first = use.period_start or dt.date.min
    unlisted: dict[str, int] = {}
    for ln in counted:
        if ln.hidden is not None and first <= ln.metric.spent_date <= today:
            unlisted[ln.hidden] = unlisted.get(ln.hidden, 0) + ln.metric.seconds
    value = _valuer(spec.kind, currency)
    weeks = client_cfg.burn_window_weeks
    b = m.burn(entries, today=today, weeks=weeks, kind=spec.kind, currency=currency)
    weekly = tuple(m.weekly_series(entries, today=today, weeks=weeks, week_start=ws, value=value))
    cumulative = []
    for start, _v in weekly:
        end = min(start + dt.timedelta(days=6), today)
        cumulative.append((end, value([e for e in entries if first <= e.spent_date <= end])))
    projected = m.run_out_date(use.left, b.exact_per_week, today)
    period_last = use.resets_on - dt.timedelta(days=1) if use.resets_on else None
    if projected is not None and period_last is not None and projected >= period_last:
        projected = None  # what is left lasts until the budget resets
    over = use.used > use.allocated
    level, crossed = m.warning_level(use.percent, client_cfg.thresholds, over=over)
    ends = proj.ends_on
    at_risk = projected is not None and (
        (period_last is not None and projected < period_last) or (ends is not None and projected < ends)
    )
    if at_risk and level in ("ok", "warning"):
        level = "at_risk"
    history: tuple[MonthUse, ...] = ()
    if use.period == "monthly":
        history = tuple(_history(entries, use.allocated, value, today, proj.starts_on))
    return BudgetFigures(
        kind=use.kind, period=use.period, currency=currency if use.kind == "money" else None, basis=basis,
        allocated=use.allocated, used=use.used, left=use.left, percent=use.percent,
        period_start=use.period_start, resets_on=use.resets_on,
        unlisted_seconds=sum(unlisted.values()),
        unlisted_by_reason=tuple(sorted(unlisted.items(), key=lambda kv: (-kv[1], kv[0]))),
        level=level, threshold_crossed=crossed, is_over=over, at_risk=at_risk,
        burn=b, projected_run_out=projected,
        runs_out_before_end=(projected < ends) if projected is not None and ends is not None else None,
        weekly=weekly, cumulative=tuple(cumulative), history=history,
        explanation=explain(use, b, projected, ends, basis),
        allocation_key=f"{spec.seconds}s" if spec.kind == "hours" else f"{spec.money} {currency or ''}".strip(),
    )


def _valuer(kind: str, currency: str | None) -> Callable[[Sequence[m.Entry]], Decimal]:
    if kind == "money":
        return lambda es: m.amounts_by_currency(es, currency).get(currency or "", Decimal(0))
    return lambda es: Decimal(m.total_seconds(es)) / 3600


def _history(
    entries: list[m.Entry], allocated: Decimal, value: Callable[[Sequence[m.Entry]], Decimal],
    today: dt.date, starts_on: dt.date | None,
) -> list[MonthUse]:
    """The previous months (up to HISTORY_MONTHS) since the project started or first logged."""
    this_month, _ = m.month_bounds(today)
    earliest = min([e.spent_date for e in entries] + ([starts_on] if starts_on else []), default=this_month)
    out: list[MonthUse] = []
    start = this_month
    for _ in range(HISTORY_MONTHS):
        prev_end = start - dt.timedelta(days=1)
        start = prev_end.replace(day=1)
        if prev_end < earliest.replace(day=1):
            break
        used = value(m.between(entries, start, prev_end))
        out.append(MonthUse(month=start, allocated=allocated, used=used, over=max(used - allocated, Decimal(0))))
    return list(reversed(out))


def _preview(listed: list[Line]) -> list[PreviewFigures]:
    todo = [ln for ln in listed if ln.metric.is_billable and not ln.metric.is_invoiced]
    out = []
    for cur in sorted({ln.metric.currency for ln in todo if ln.metric.currency}):
        mine = [ln for ln in todo if ln.metric.currency == cur]
        lines = []
        for name in sorted({_name(ln) for ln in mine}):
            pm = [ln for ln in mine if _name(ln) == name]
            rates = {ln.metric.billable_rate for ln in pm}
            lines.append((name, sum(ln.metric.seconds for ln in pm),
                          next(iter(rates)) if len(rates) == 1 and None not in rates else None,
                          sum((ln.metric.billable_amount or Decimal(0) for ln in pm), Decimal(0))))
        out.append(PreviewFigures(
            currency=cur, seconds=sum(ln.metric.seconds for ln in mine),
            amount=sum((ln.metric.billable_amount or Decimal(0) for ln in mine), Decimal(0)),
            unvalued_seconds=sum(ln.metric.seconds for ln in mine if ln.metric.billable_amount is None),
            lines=tuple(lines),
        ))
    return out


def _name(ln: Line) -> str:
    return ln.project.name if ln.project else "Other work"


# --- words shared by the page, the exports and the alerts ----------------------------------


def q(amount: Decimal) -> Decimal:
    """Round once, for display: half-up to 0.01."""
    return Decimal(amount).quantize(m.HUNDREDTH, ROUND_HALF_UP)


def hours_text(seconds: int) -> str:
    return f"{m.hours(seconds).quantize(m.TENTH, ROUND_HALF_UP)}"


def level_name(level: str, t: Lang = EN) -> str:
    """A budget's status as the portal, the alerts and status name it."""
    return {"ok": t.gettext("On track"), "warning": t.gettext("Nearing budget"), "at_risk": t.gettext("At risk"),
            "critical": t.gettext("Almost used up"), "over": t.gettext("Over budget")}.get(level, level)


def reason_name(reason: str, t: Lang = EN) -> str:
    return {"internal": t.gettext("internal work"), "non_billable": t.gettext("non-billable time"),
            "unapproved": t.gettext("time not yet approved")}.get(reason, reason)


def unlisted_sentence(b: BudgetFigures, where: str = "below", t: Lang = EN) -> str | None:
    """'Includes 15.5 h of internal work not itemized below.' None when everything is listed.
    `where` is "below" (the page) or "on the portal" (mail); worded in `t`'s language."""
    if not b.unlisted_seconds:
        return None
    hours = t.hours(m.hours(b.unlisted_seconds).quantize(m.TENTH, ROUND_HALF_UP), 1)
    on_page = where == "below"
    if len(b.unlisted_by_reason) == 1:
        reason = reason_name(b.unlisted_by_reason[0][0], t)
        if b.kind == "money":
            text = (t.gettext("Includes the value of %(hours)s of %(reason)s not itemized below.", hours=hours, reason=reason)
                    if on_page else
                    t.gettext("Includes the value of %(hours)s of %(reason)s not itemized on the portal.", hours=hours, reason=reason))
        else:
            text = (t.gettext("Includes %(hours)s of %(reason)s not itemized below.", hours=hours, reason=reason)
                    if on_page else
                    t.gettext("Includes %(hours)s of %(reason)s not itemized on the portal.", hours=hours, reason=reason))
        return text
    parts = ", ".join(f"{reason_name(r, t)} {t.hours(m.hours(s).quantize(m.TENTH, ROUND_HALF_UP), 1)}"
                      for r, s in b.unlisted_by_reason)
    if b.kind == "money":
        return (t.gettext("Includes the value of %(hours)s not itemized below (%(parts)s).", hours=hours, parts=parts)
                if on_page else
                t.gettext("Includes the value of %(hours)s not itemized on the portal (%(parts)s).", hours=hours, parts=parts))
    return (t.gettext("Includes %(hours)s not itemized below (%(parts)s).", hours=hours, parts=parts)
            if on_page else t.gettext("Includes %(hours)s not itemized on the portal (%(parts)s).", hours=hours, parts=parts))


def basis_sentence(basis: Basis, t: Lang = EN) -> str:
    if basis == "tracker":
        return t.gettext("Budgets count all time logged on each project, as the time tracker does, "
                         "including work that is not itemized here.")
    return t.gettext("Budgets count only the work listed on this page; "
                     "the time tracker's own budget figures may be higher.")


def explain(use: Any, b: m.Burn, projected: dt.date | None, ends_on: dt.date | None, basis: Basis,
            t: Lang = EN) -> str:
    """A few plain sentences saying how the budget figures were worked out. `use` is a
    BudgetUse or a BudgetFigures (kind, period, resets_on, left)."""
    hours = use.kind == "hours"
    tracker = basis == "tracker"
    monthly = use.period == "monthly"
    if hours and tracker:
        first = (t.gettext("Used is the hours of all time logged on the project this month, timers still running left out")
                 if monthly else
                 t.gettext("Used is the hours of all time logged on the project so far, timers still running left out"))
    elif hours:
        first = (t.gettext("Used is the hours of the work listed here this month, timers still running left out")
                 if monthly else
                 t.gettext("Used is the hours of the work listed here so far, timers still running left out"))
    elif tracker:
        first = (t.gettext("Used is the billable amount of all time logged on the project this month, timers still running left out")
                 if monthly else
                 t.gettext("Used is the billable amount of all time logged on the project so far, timers still running left out"))
    else:
        first = (t.gettext("Used is the billable amount of the work listed here this month, timers still running left out")
                 if monthly else
                 t.gettext("Used is the billable amount of the work listed here so far, timers still running left out"))
    first += (t.gettext("; the budget resets on %(date)s.", date=t.date(use.resets_on)) if use.resets_on else ".")
    parts = [first]
    parts.append(t.ngettext("Burn rate is the hours of the last week.", "Burn rate is the hours of the last %(num)s weeks divided by %(num)s.", b.weeks)
                 if hours else
                 t.ngettext("Burn rate is the amount of the last week.", "Burn rate is the amount of the last %(num)s weeks divided by %(num)s.", b.weeks))
    if use.left <= 0:
        parts.append(t.gettext("The budget is used up, so there is no projection."))
    elif b.exact_per_week <= 0:
        parts.append(t.ngettext("Nothing was logged in the last week, so there is no projection.",
                                "Nothing was logged in the last %(num)s weeks, so there is no projection.", b.weeks)
                     if hours else
                     t.ngettext("No billable amount was recorded in the last week, so there is no projection.",
                                "No billable amount was recorded in the last %(num)s weeks, so there is no projection.", b.weeks))
    elif projected is None:
        parts.append(t.gettext("At this rate the budget lasts until it resets."))
    elif ends_on is None:
        parts.append(t.gettext("At that rate %(date)s is the last day with budget left.", date=t.date(projected)))
    elif projected < ends_on:
        parts.append(t.gettext("At that rate %(date)s is the last day with budget left, before the project's end on %(end)s.",
                               date=t.date(projected), end=t.date(ends_on)))
    else:
        parts.append(t.gettext("At that rate %(date)s is the last day with budget left, after the project's end on %(end)s.",
                               date=t.date(projected), end=t.date(ends_on)))
    return " ".join(parts)


def all_client_figures(store: "Store", config: "Config", now: dt.datetime,
                       keys: Iterable[str] | None = None) -> list[ClientFigures]:
    wanted = set(keys) if keys is not None else None
    return [client_figures(store, config, c, now) for c in config.clients if wanted is None or c.key in wanted]


__all__ = [
    "LEVEL_NAMES",
    "BudgetFigures",
    "BudgetSpec",
    "ClientFigures",
    "ClientRows",
    "Line",
    "MonthUse",
    "PreviewFigures",
    "ProjectFigures",
    "all_client_figures",
    "basis_sentence",
    "level_name",
    "client_figures",
    "compute",
    "load_client_rows",
    "project_budget",
    "q",
    "unlisted_sentence",
]
