"""PortalView: the typed, redacted picture of one client that templates and exporters render.

Redaction happens once, here (DESIGN.md invariant 1): `build_portal_view` reads the store
for one client's (source, client id) pairs only (invariant 2), applies that client's
visibility policy (bridge/policy.py) and keeps only what the client may see. A field the
policy hides is *absent* from these dataclasses (None or an empty tuple), never a value a
template is trusted to skip. Money is Decimal beside an ISO currency and is never summed
across currencies; hours are Decimal hours (seconds / 3600, rounded to 0.01).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlmodel import select

from bridge import metrics as m
from bridge.models import Client, Invoice, Person, PortalLink, Project, SyncRun, Task, TimeEntry
from bridge.overrides import apply_budget_overrides, fallback_rate
from bridge.valuation import value_entry
from bridge.policy import TEAM_MEMBER, PersonFacts, Policy, anonymous_label, display_names
from bridge.redaction import ContactPolicy, EntryRef, Finding, NoteRedactor, PersonName, ReviewLog, note_redactor

if TYPE_CHECKING:  # pragma: no cover
    from bridge.config import ClientConfig, Config
    from bridge.store import Store

BudgetKind = Literal["hours", "money"]
BudgetPeriod = Literal["total", "monthly"]
BudgetStatus = Literal["none", "visible", "not_visible"]
WarningLevel = Literal["ok", "warning", "critical", "over"]
InvoiceStatus = Literal["open", "partial", "paid", "overdue"]
ViewMode = Literal["realtime", "weekly"]
DescriptionMode = Literal["detailed", "summary", "hidden"]
TeamNames = Literal["full", "first_name", "role", "anonymous"]


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str  # ISO 4217


@dataclass(frozen=True)
class AgencyView:
    name: str
    logo_url: str | None
    accent_color: str  # "#1f5fbf"
    contact: str | None
    ask: bool = True  # offer "Ask about this" (a mailto: to `contact`); off per client


@dataclass(frozen=True)
class PolicyEcho:
    """The settings templates need to lay the page out (not the internal markers)."""

    view: ViewMode
    rates_shown: bool
    invoices_shown: bool
    descriptions: DescriptionMode
    team_names: TeamNames
    non_billable_shown: bool
    approved_only: bool


@dataclass(frozen=True)
class HoursLine:
    """Hours under one label: a task, a phase or a person (display name)."""

    label: str
    hours: Decimal


@dataclass(frozen=True)
class CurrencyTotal:
    """Billable hours and amount in one currency; currencies are never added together."""

    currency: str
    billable_hours: Decimal
    amount: Decimal


@dataclass(frozen=True)
class BurnPoint:
    on: dt.date  # a week's first day (actuals) or a projected date
    value: Decimal  # in the chart's unit (hours, or money in the chart's currency)


@dataclass(frozen=True)
class BurnChart:
    """Trailing weekly burn plus the projection line towards the budget."""

    unit: BudgetKind
    currency: str | None  # money charts only
    weekly: tuple[BurnPoint, ...]  # amount burned in each of the trailing weeks, oldest first
    cumulative: tuple[BurnPoint, ...]  # budget used at the end of each trailing week
    projection: tuple[BurnPoint, ...]  # (today, used now) -> (run-out date, allocated); empty when no projection
    budget: Decimal | None  # the allocated line, None when no visible budget


@dataclass(frozen=True)
class BudgetView:
    """A project's budget in its own unit: hours, or money in `currency`."""

    kind: BudgetKind
    period: BudgetPeriod
    currency: str | None  # money budgets only
    allocated: Decimal
    used: Decimal  # monthly budgets: this calendar month in the agency's zone
    left: Decimal  # negative when over budget
    percent_consumed: Decimal  # used / allocated * 100, one decimal; may exceed 100
    period_start: dt.date | None  # monthly: first day of this month
    resets_on: dt.date | None  # monthly: first day of next month
    level: WarningLevel
    threshold_crossed: int | None  # highest configured threshold reached, e.g. 90
    is_over_budget: bool
    burn_per_week: Decimal  # in the budget's unit, over the trailing window
    burn_hours_per_week: Decimal
    burn_window_weeks: int
    projected_run_out_date: dt.date | None  # None: zero burn, already used up, or not computable
    runs_out_before_end: bool | None  # None when no end date or no projection
    explanation: str  # plain sentence: how used/burn/projection were worked out
    # monthly budgets: last calendar month's use and allocation (a retainer that overran);
    # None for total budgets or when last month had no budget
    last_period_used: Decimal | None = None
    last_period_allocated: Decimal | None = None


@dataclass(frozen=True)
class ProjectView:
    anchor: str  # "project-1": stable within one view, for HTML ids; not a provider id
    name: str
    code: str | None
    starts_on: dt.date | None
    ends_on: dt.date | None
    budget_status: BudgetStatus  # "not_visible": a budget this token cannot read, or money use the tracker does not value
    budget: BudgetView | None
    hours_this_week: Decimal
    hours_to_date: Decimal
    billable_hours_to_date: Decimal
    hours_by_task: tuple[HoursLine, ...]
    hours_by_phase: tuple[HoursLine, ...]
    burn_chart: BurnChart
    # why some billable time here has no value (bridge/valuation.py): the tracker gives no rate
    # for it, and what the agency can set; None when all of it is valued
    value_note: str | None = None


@dataclass(frozen=True)
class TimesheetRow:
    spent_date: dt.date
    person: str  # display name after the team_names policy
    project: str
    task: str | None
    description: str | None  # per the descriptions policy; None when hidden or empty
    hours: Decimal
    is_billable: bool
    is_running: bool
    rate: Money | None  # only when rates are shown
    amount: Money | None  # only when rates are shown


@dataclass(frozen=True)
class WeeklySummaryRow:
    """view = weekly: one row per week, project, person and task instead of entries."""

    week_start: dt.date
    week_end: dt.date
    person: str
    project: str
    task: str | None
    hours: Decimal
    billable_hours: Decimal
    amounts: tuple[Money, ...]  # per currency; only when rates are shown


@dataclass(frozen=True)
class UnbilledView:
    """Billable, not yet invoiced, not running time."""

    hours: Decimal
    amounts: tuple[Money, ...]  # per currency; only when rates are shown


@dataclass(frozen=True)
class InvoicePreviewLine:
    project: str
    hours: Decimal
    rate: Decimal | None  # only when one rate applies to the whole line
    amount: Decimal


@dataclass(frozen=True)
class InvoicePreview:
    """What the next invoice would hold in one currency if it were drawn up today."""

    currency: str
    hours: Decimal
    amount: Decimal
    lines: tuple[InvoicePreviewLine, ...]  # empty when rates are hidden (totals only)


@dataclass(frozen=True)
class InvoiceView:
    number: str | None
    issue_date: dt.date | None
    due_date: dt.date | None
    paid_date: dt.date | None
    amount: Decimal
    due_amount: Decimal
    paid_amount: Decimal
    currency: str
    status: InvoiceStatus  # re-derived at build time: open past due_date -> overdue, part paid -> partial


@dataclass(frozen=True)
class GlossaryEntry:
    term: str
    explanation: str


@dataclass(frozen=True)
class ChangeNote:
    """What changed in the published entries since the previous publish."""

    since: dt.datetime | None  # when the previous snapshot was taken
    added: int
    edited: int
    removed: int
    text: str  # "3 entries edited, 1 removed, 12 added since 12 Nov"


@dataclass(frozen=True)
class Snapshot:
    """Entry key -> fingerprint of its published fields. Keys and values are opaque hashes,
    so the snapshot (kept in PortalLink.snapshot) reveals nothing of the entries."""

    taken_at: dt.datetime
    entries: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        # so a caller that json.dumps(..., default=str) still stores something parse_snapshot reads
        return snapshot_json(self)


@dataclass(frozen=True)
class PortalView:
    client_name: str
    agency: AgencyView
    as_of: dt.datetime | None  # oldest "last successful sync" among the client's sources
    generated_at: dt.datetime
    today: dt.date  # in the agency's zone
    week_start: dt.date
    week_end: dt.date
    week_label: str  # "Week of 17 Mar 2025"
    policy: PolicyEcho
    total_hours: Decimal
    billable_hours: Decimal
    non_billable_hours: Decimal | None  # None when non-billable time is hidden
    totals: tuple[CurrencyTotal, ...]  # per currency, never summed across currencies
    projects: tuple[ProjectView, ...]
    this_week_by_person: tuple[HoursLine, ...]
    hours_to_date_by_person: tuple[HoursLine, ...]
    timesheet: tuple[TimesheetRow, ...]  # view = realtime; empty for weekly
    weekly_summaries: tuple[WeeklySummaryRow, ...]  # view = weekly; empty for realtime
    unbilled: UnbilledView
    invoice_preview: tuple[InvoicePreview, ...]  # per currency; empty when invoices are hidden
    invoices: tuple[InvoiceView, ...]  # empty when invoices are hidden
    glossary: tuple[GlossaryEntry, ...]
    notes: str | None
    change_note: ChangeNote | None  # None on the first publish
    snapshot: Snapshot
    locale: str = "en"  # the client's language and formats (bridge/i18n.py)

    @property
    def data_as_of(self) -> dt.datetime | None:
        """Alias of `as_of` (the name PortalLink uses)."""
        return self.as_of


# --- snapshots and change notes ---------------------------------------------------------


def entry_key(source: str, source_id: str) -> str:
    """An opaque, stable key for one time entry (no provider id reaches the snapshot)."""
    return hashlib.sha256(f"{source}\x1f{source_id}".encode()).hexdigest()[:16]



def fingerprint(*values: Any) -> str:
    text = "\x1f".join("" if v is None else str(v) for v in values)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def snapshot_json(view_or_snapshot: PortalView | Snapshot) -> str:
    """The snapshot as JSON, for PortalLink.snapshot."""
    snap = view_or_snapshot.snapshot if isinstance(view_or_snapshot, PortalView) else view_or_snapshot
    return json.dumps(
        {"taken_at": snap.taken_at.isoformat(), "entries": dict(sorted(snap.entries.items()))},
        separators=(",", ":"),
    )


def parse_snapshot(text: str | None) -> Snapshot | None:
    """PortalLink.snapshot back into a Snapshot; None when absent or unreadable (first publish)."""
    if not text:
        return None
    try:
        data = json.loads(text)
        if isinstance(data, str):  # stored as a JSON string holding the JSON
            data = json.loads(data)
        taken = dt.datetime.fromisoformat(data["taken_at"])
        entries = {str(k): str(v) for k, v in dict(data["entries"]).items()}
    except (ValueError, KeyError, TypeError):
        return None
    if taken.tzinfo is None:
        taken = taken.replace(tzinfo=dt.timezone.utc)
    return Snapshot(taken_at=taken, entries=entries)


def change_note(previous: Snapshot | None, current: Snapshot, zone: Any = None) -> ChangeNote | None:
    """Compare two snapshots: how many published entries were added, edited and removed."""
    if previous is None:
        return None
    old, new = previous.entries, current.entries
    added = sum(1 for k in new if k not in old)
    removed = sum(1 for k in old if k not in new)
    edited = sum(1 for k, v in new.items() if k in old and old[k] != v)
    parts = []
    if edited:
        parts.append(f"{edited} {'entry' if edited == 1 else 'entries'} edited")
    if removed:
        parts.append(f"{removed} removed" if parts else f"{removed} {'entry' if removed == 1 else 'entries'} removed")
    if added:
        parts.append(f"{added} added" if parts else f"{added} {'entry' if added == 1 else 'entries'} added")
    since = previous.taken_at
    local = since.astimezone(zone) if zone is not None else since
    when = f"{local.day} {local.strftime('%b')}"
    text = (", ".join(parts) if parts else "No changes") + f" since {when}"
    return ChangeNote(since=since, added=added, edited=edited, removed=removed, text=text)


# --- building ---------------------------------------------------------------------------

LAST_PUBLISHED: Any = object()  # build_portal_view's default: read PortalLink.snapshot


@dataclass(frozen=True)
class NoteFacts:
    """What description redaction needs beyond the client's own rows: the names a note
    might mention. Read only to be removed from notes; nothing here reaches the view."""

    other_names: list[tuple[str, str]] = field(default_factory=list)  # (name, why it is removed)
    own_names: list[str] = field(default_factory=list)  # this client's names, kept as they are
    people: list[Person] = field(default_factory=list)  # everyone a note may name


@dataclass(frozen=True)
class _Rows:
    """One client's live rows, read once and scoped by its (source, client id) pairs."""

    clients: list[Client]
    projects: list[Project]
    entries: list[TimeEntry]
    people: dict[tuple[str, str], Person]
    tasks: dict[tuple[str, str], Task]
    invoices: list[Invoice]
    as_of: dt.datetime | None
    names: NoteFacts = field(default_factory=NoteFacts)


def load_client_rows(store: "Store", client_cfg: "ClientConfig") -> _Rows:
    """Every row the portal of `client_cfg` may draw on, and nothing of any other client.

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
            clients += s.exec(select(Client).where(Client.source == source, Client.source_id.in_(ids), Client.is_deleted == False)).all()  # noqa: E712
            projs = list(s.exec(
                select(Project).where(Project.source == source, Project.client_source_id.in_(ids), Project.is_deleted == False)  # noqa: E712
            ))
            projects += projs
            pids = [p.source_id for p in projs]
            cond = TimeEntry.client_source_id.in_(ids)
            if pids:
                cond = sa.or_(cond, sa.and_(TimeEntry.client_source_id.is_(None), TimeEntry.project_source_id.in_(pids)))
            src_entries = list(s.exec(select(TimeEntry).where(TimeEntry.source == source, TimeEntry.is_deleted == False, cond)))  # noqa: E712
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
                select(Invoice).where(Invoice.source == source, Invoice.client_source_id.in_(ids), Invoice.is_deleted == False)  # noqa: E712
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
    return _Rows(clients, projects, entries, people, tasks, invoices, as_of, names=load_note_facts(store, client_cfg))


def load_note_facts(store: "Store", client_cfg: "ClientConfig") -> NoteFacts:
    """Other clients' names, their projects and codes, and every person in the store.

    A note may name a client or a colleague from any tracker, so this reads across
    sources; it feeds only the redactor, never the view.
    """
    scope = {(src, str(i)) for src, ids in client_cfg.sources.items() for i in ids}
    other: list[tuple[str, str]] = []
    own: list[str] = [client_cfg.name]
    with store.session() as s:
        for c in s.exec(select(Client)):
            if (c.source, c.source_id) in scope:
                own.append(c.name)
            else:
                other.append((c.name, f"another client's name ({c.source}:{c.source_id})"))
        for p in s.exec(select(Project)):
            if (p.source, p.client_source_id or "") in scope:
                own += [p.name, p.code or ""]
            else:
                other.append((p.name, f"another client's project ({p.source}:{p.source_id})"))
                if p.code:
                    other.append((p.code, f"another client's project code ({p.source}:{p.source_id})"))
        people = list(s.exec(select(Person)))
    return NoteFacts(other_names=other, own_names=[o for o in own if o], people=people)


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _money_tuple(amounts: Mapping[str, Decimal]) -> tuple[Money, ...]:
    return tuple(Money(_q(a), c) for c, a in sorted(amounts.items()))


def _q(amount: Decimal) -> Decimal:
    return Decimal(amount).quantize(m.HUNDREDTH, ROUND_HALF_UP)


@dataclass
class _Published:
    """A published entry: the raw row plus its metrics row and display strings."""

    row: TimeEntry
    metric: m.Entry
    person: str
    project: str
    task: str | None
    description: str | None
    redacted: tuple[str, ...] = ()  # why the description was changed, for the review


def _note_redactor(rows: _Rows, config: "Config", client_cfg: "ClientConfig",
                   shown: Mapping[tuple[str, str], str]) -> NoteRedactor:
    """The description redactor for this client, its policy and the people its view names."""
    mode = client_cfg.visibility.team_names
    everyone = {**rows.people, **{(p.source, p.source_id): p for p in rows.names.people}}
    others = [p for k, p in sorted(everyone.items()) if k not in shown]
    extra = display_names(mode, [PersonFacts((p.source, p.source_id), p.first_name, p.last_name, p.role) for p in others])
    if mode == "anonymous":
        # letters after the view's own, so "Team member B" is never two people
        extra = {k: anonymous_label(len(shown) + i) for i, k in enumerate(sorted(extra))}
    people = []
    for p in everyone.values():
        key = (p.source, p.source_id)
        display = shown.get(key) or extra.get(key) or TEAM_MEMBER
        people.append(PersonName(p.first_name, p.last_name, display, f"a person's name ({p.source}:{p.source_id})",
                                 first_hidden=mode in ("role", "anonymous")))
    other_clients = [(c.name, f"another client's name (config: {c.key})") for c in config.clients if c.key != client_cfg.key]
    own = [*rows.names.own_names, config.agency.name, *(t.name for t in rows.tasks.values())]
    red = config.redact
    return note_redactor(
        own_names=own, other_names=[*rows.names.other_names, *other_clients], people=people,
        terms=red.terms, patterns=red.patterns, internal_prefixes=client_cfg.visibility.internal_note_prefixes,
        contacts=ContactPolicy(emails=red.emails, urls=red.urls, allow_domains=tuple(red.allow_domains)),
    )


def build_portal_view(
    store: "Store",
    config: "Config",
    client_cfg: "ClientConfig",
    *,
    now: dt.datetime,
    previous_snapshot: Snapshot | str | None | object = LAST_PUBLISHED,
    review: ReviewLog | None = None,
) -> PortalView:
    """Build the redacted view of one client from the store.

    Args:
        store: the normalized store.
        config: the whole config (agency name, zone and week start are read from it).
        client_cfg: the client whose portal this is; its `sources` scope every query.
        now: the clock, aware; "today" and "this week" are taken in the agency's zone.
        previous_snapshot: the last published snapshot (Snapshot or its JSON), for the
            change note; None for no change note. By default it is read from this
            client's PortalLink.snapshot.
        review: when given, filled with each timesheet row's entry and every description
            the redaction changed (for `bridge review`; never part of the view).
    """
    if previous_snapshot is LAST_PUBLISHED:
        with store.session() as s:
            link = s.get(PortalLink, client_cfg.key)
            previous_snapshot = link.snapshot if link is not None else None
    rows = load_client_rows(store, client_cfg)
    return assemble_view(rows, config, client_cfg, now=now, previous_snapshot=previous_snapshot, review=review)


def assemble_view(
    rows: _Rows,
    config: "Config",
    client_cfg: "ClientConfig",
    *,
    now: dt.datetime,
    previous_snapshot: Snapshot | str | None = None,
    review: ReviewLog | None = None,
) -> PortalView:
    agency = config.agency
    zone = agency.zone
    ws = agency.week_start_index
    pol = Policy(client_cfg.visibility)
    today = m.local_date(now, zone)
    week_start, week_end = m.week_bounds(today, ws)
    client_currency = {(c.source, c.source_id): c.currency for c in rows.clients}
    project_by_key = {(p.source, p.source_id): p for p in rows.projects}

    def project_currency(p: Project | None, e: TimeEntry | None = None) -> str | None:
        if p is not None and p.currency:
            return p.currency
        if e is not None and e.currency:
            return e.currency
        if p is not None and p.client_source_id:
            return client_currency.get((p.source, p.client_source_id))
        return None

    # 1. the policy decides which entries exist for this client at all
    kept: list[tuple[TimeEntry, Task | None, Project | None]] = []
    for e in rows.entries:
        task = rows.tasks.get((e.source, e.task_source_id or ""))
        task_name = task.name if task else None
        if not pol.publishes(task_name=task_name, notes=e.notes, tags=e.tags, is_billable=e.is_billable, is_approved=e.is_approved):
            continue
        kept.append((e, task, project_by_key.get((e.source, e.project_source_id or ""))))

    facts = []
    for e, _t, _p in kept:
        key = (e.source, e.person_source_id or "")
        person = rows.people.get(key)
        facts.append(PersonFacts(key, person.first_name if person else "", person.last_name if person else "", person.role if person else None))
    names = display_names(client_cfg.visibility.team_names, facts)
    redactor = _note_redactor(rows, config, client_cfg, names) if client_cfg.visibility.descriptions == "detailed" else None
    review = review if review is not None else ReviewLog()

    published: list[_Published] = []
    unvalued: dict[str, str] = {}  # project key -> why some of its billable time has no value
    for e, task, proj in kept:
        task_name = task.name if task else None
        cur = e.currency or project_currency(proj, e)
        value = value_entry(
            e, proj, task, rows.people.get((e.source, e.person_source_id or "")), fallback_rate=fallback_rate(client_cfg, proj),
        )
        amount, rate = value.amount, value.rate
        if value.missing and not e.is_running:
            unvalued.setdefault(f"{e.source}:{e.project_source_id or ''}", value.missing)
        metric = m.Entry(
            spent_date=e.spent_date, seconds=int(e.seconds), is_billable=e.is_billable, is_running=e.is_running,
            is_invoiced=e.is_invoiced, billable_amount=amount, currency=cur,
            project=f"{e.source}:{e.project_source_id or ''}", person=f"{e.source}:{e.person_source_id or ''}",
            task=task_name, phase=e.phase or None, billable_rate=rate,
        )
        description = pol.description(e.notes, task_name)
        why: tuple[str, ...] = ()
        if description and redactor is not None:
            description, why = redactor.redact(description)
        published.append(_Published(
            row=e, metric=metric, person=names[(e.source, e.person_source_id or "")],
            project=proj.name if proj else "Other work", task=task_name,
            description=description, redacted=why,
        ))
    published.sort(key=lambda p: (p.row.spent_date, p.project, p.person, p.row.source, p.row.source_id))
    metrics_rows = [p.metric for p in published]

    # 2. timesheet rows (built in both view modes: they feed the snapshot too)
    weekly = client_cfg.visibility.view == "weekly"
    sheet: list[TimesheetRow] = []
    snap: dict[str, str] = {}
    for p in published:
        show_money = pol.rates_shown and p.metric.currency is not None
        rate = Money(_q(p.metric.billable_rate), p.metric.currency) if show_money and p.metric.billable_rate is not None else None  # type: ignore[arg-type]
        amount = Money(_q(p.metric.billable_amount), p.metric.currency) if show_money and p.metric.billable_amount is not None else None  # type: ignore[arg-type]
        r = TimesheetRow(
            spent_date=p.row.spent_date, person=p.person, project=p.project, task=p.task,
            description=p.description, hours=m.hours(p.metric.seconds), is_billable=p.row.is_billable,
            is_running=p.row.is_running, rate=rate, amount=amount,
        )
        sheet.append(r)
        ref = EntryRef(p.row.source, p.row.source_id, p.row.spent_date, p.project, p.person)
        review.rows.append(ref)
        if p.redacted and not weekly:
            review.findings.append(Finding(ref, "redacted", p.redacted))
        # only what the client can see counts as a change: descriptions are not shown weekly
        snap[entry_key(p.row.source, p.row.source_id)] = fingerprint(
            r.spent_date, r.person, r.project, r.task, None if weekly else r.description, r.hours,
            r.is_billable, r.amount.amount if r.amount else None,
        )

    # 3. projects
    projects: list[ProjectView] = []
    by_project: dict[str, list[m.Entry]] = {}
    for x in metrics_rows:
        by_project.setdefault(x.project, []).append(x)
    visible_projects = sorted(
        (p for p in rows.projects if p.is_active or f"{p.source}:{p.source_id}" in by_project),
        key=lambda p: (p.name.casefold(), p.source, p.source_id),
    )
    for i, proj in enumerate(visible_projects, start=1):
        pe = by_project.get(f"{proj.source}:{proj.source_id}", [])
        projects.append(_project_view(i, proj, pe, project_currency(proj), client_cfg, today, ws,
                                      value_note=unvalued.get(f"{proj.source}:{proj.source_id}")))

    # 4. people, totals, unbilled, invoices
    this_week = m.between(metrics_rows, week_start, week_end)
    by_person_week = m.seconds_by(this_week, lambda x: x.person)
    by_person_all = m.seconds_by(metrics_rows, lambda x: x.person)
    label = {p.metric.person: p.person for p in published}
    billable = [x for x in metrics_rows if x.is_billable]
    non_billable = [x for x in metrics_rows if not x.is_billable]
    totals = []
    amounts = m.amounts_by_currency(metrics_rows)
    bsecs = m.billable_seconds_by_currency(metrics_rows)
    for cur in sorted(amounts):
        totals.append(CurrencyTotal(cur, m.hours(bsecs.get(cur, 0)), _q(amounts[cur])))
    unb = m.unbilled(metrics_rows)
    preview: list[InvoicePreview] = []
    if pol.invoices_shown:
        preview = _invoice_preview(published, pol.rates_shown)
    invoices: list[InvoiceView] = []
    if pol.invoices_shown:
        for inv in sorted(rows.invoices, key=lambda v: (v.issue_date or dt.date.min, v.number or "", v.source_id)):
            status = m.invoice_status(inv.status, inv.due_date, Decimal(inv.amount), Decimal(inv.due_amount), today)
            if status in ("draft", "void"):
                continue
            invoices.append(InvoiceView(
                number=inv.number, issue_date=inv.issue_date, due_date=inv.due_date, paid_date=inv.paid_date,
                amount=_q(inv.amount), due_amount=_q(inv.due_amount), paid_amount=_q(Decimal(inv.amount) - Decimal(inv.due_amount)),
                currency=inv.currency, status=status,  # type: ignore[arg-type]
            ))

    snapshot = Snapshot(taken_at=now.astimezone(dt.timezone.utc), entries=snap)
    prev = parse_snapshot(previous_snapshot) if isinstance(previous_snapshot, str) else previous_snapshot
    glossary = tuple(
        GlossaryEntry(term, text) for term, text in sorted(client_cfg.glossary.items(), key=lambda kv: kv[0].casefold())
        if not pol.is_internal_task(term)
    )
    return PortalView(
        client_name=client_cfg.name,
        agency=AgencyView(name=agency.name, logo_url=agency.logo_url, accent_color=agency.accent_color, contact=agency.contact,
                          ask=client_cfg.ask_about),
        # shown to the client in the agency's zone, with its offset, not in UTC
        as_of=rows.as_of.astimezone(zone) if rows.as_of is not None else None,
        generated_at=now.astimezone(zone),
        today=today,
        week_start=week_start,
        week_end=week_end,
        week_label=m.week_label(week_start),
        policy=PolicyEcho(
            view=client_cfg.visibility.view, rates_shown=pol.rates_shown, invoices_shown=pol.invoices_shown,
            descriptions=client_cfg.visibility.descriptions, team_names=client_cfg.visibility.team_names,
            non_billable_shown=pol.non_billable_shown, approved_only=client_cfg.visibility.approved_only,
        ),
        total_hours=m.hours(m.total_seconds(metrics_rows)),
        billable_hours=m.hours(m.total_seconds(billable)),
        non_billable_hours=m.hours(m.total_seconds(non_billable)) if pol.non_billable_shown else None,
        totals=tuple(totals),
        projects=tuple(projects),
        this_week_by_person=_lines(by_person_week, label),
        hours_to_date_by_person=_lines(by_person_all, label),
        timesheet=() if weekly else tuple(sheet),
        weekly_summaries=_weekly(published, ws, pol.rates_shown) if weekly else (),
        unbilled=UnbilledView(hours=m.hours(unb.seconds), amounts=_money_tuple(unb.amounts) if pol.rates_shown else ()),
        invoice_preview=tuple(preview),
        invoices=tuple(invoices),
        glossary=glossary,
        notes=client_cfg.notes,
        change_note=change_note(prev, snapshot, zone),
        snapshot=snapshot,
        locale=client_cfg.locale or agency.locale,
    )


def _lines(seconds: Mapping[str, int], label: Mapping[str, str]) -> tuple[HoursLine, ...]:
    merged: dict[str, int] = {}
    for k, secs in seconds.items():
        name = label.get(k, TEAM_MEMBER)
        merged[name] = merged.get(name, 0) + secs
    return tuple(HoursLine(n, m.hours(s)) for n, s in sorted(merged.items(), key=lambda kv: (-kv[1], kv[0])))


def _project_view(
    index: int, proj: Project, entries: list[m.Entry], currency: str | None,
    client_cfg: "ClientConfig", today: dt.date, week_start: int, *, value_note: str | None = None,
) -> ProjectView:
    wk_first, wk_last = m.week_bounds(today, week_start)
    weeks = client_cfg.burn_window_weeks
    kind = proj.budget_kind if proj.budget_kind in ("hours", "money") else None
    status: BudgetStatus = "none"
    budget: BudgetView | None = None
    use = None
    billed = [e for e in entries if e.is_billable and not e.is_running]
    if kind is not None and not proj.budget_visible:
        status = "not_visible"
    elif kind == "money" and billed and all(e.billable_amount is None for e in billed):
        # hours were logged but the tracker values none of them (a FreshBooks fixed-price
        # project has no rate): "0.00 used" would be false, so the budget is not shown
        status = "not_visible"
    elif kind is not None:
        use = m.budget_use(
            entries, kind=kind, period=proj.budget_period, budget_seconds=proj.budget_seconds,
            budget_money=proj.budget_money, currency=currency, today=today,
        )
        if kind == "money" and not currency:
            use = None  # a money budget in no known currency cannot be shown honestly
    chart_kind: BudgetKind = use.kind if use else "hours"
    b = m.burn(entries, today=today, weeks=weeks, kind=chart_kind, currency=currency)

    def value(es: Any) -> Decimal:
        if chart_kind == "money":
            return _q(m.amounts_by_currency(es, currency).get(currency or "", Decimal(0)))
        return m.hours(m.total_seconds(es))

    weekly = tuple(BurnPoint(d, v) for d, v in m.weekly_series(entries, today=today, weeks=weeks, week_start=week_start, value=value))
    cumulative: list[BurnPoint] = []
    projection: tuple[BurnPoint, ...] = ()
    if use is not None:
        status = "visible"
        period_first = use.period_start or dt.date.min
        for pt in weekly:
            end = min(pt.on + dt.timedelta(days=6), today)
            cumulative.append(BurnPoint(end, value([e for e in entries if period_first <= e.spent_date <= end])))
        projected = m.run_out_date(use.left, b.per_week, today)
        if projected is not None and use.resets_on is not None and projected >= use.resets_on:
            projected = None
        over = use.used > use.allocated
        level, crossed = m.warning_level(use.percent, client_cfg.thresholds, over=over)
        if projected is not None:
            projection = (BurnPoint(today, _q(use.used)), BurnPoint(projected, _q(use.allocated)))
        last = None
        if use.period == "monthly" and use.period_start is not None:
            last = m.budget_use(
                entries, kind=use.kind, period="monthly", budget_seconds=proj.budget_seconds,
                budget_money=proj.budget_money, currency=currency, today=use.period_start - dt.timedelta(days=1),
            )
        budget = BudgetView(
            kind=use.kind, period=use.period, currency=currency if use.kind == "money" else None,
            allocated=_q(use.allocated), used=_q(use.used), left=_q(use.left), percent_consumed=use.percent,
            period_start=use.period_start, resets_on=use.resets_on, level=level, threshold_crossed=crossed,
            is_over_budget=over, burn_per_week=b.per_week, burn_hours_per_week=b.hours_per_week,
            burn_window_weeks=b.weeks, projected_run_out_date=projected,
            runs_out_before_end=(projected < proj.ends_on) if projected is not None and proj.ends_on is not None else None,
            explanation=m.explain(use, b, projected, proj.ends_on, currency or ""),
            last_period_used=_q(last.used) if last is not None else None,
            last_period_allocated=_q(last.allocated) if last is not None else None,
        )
    return ProjectView(
        anchor=f"project-{index}",
        name=proj.name,
        code=proj.code or None,
        starts_on=proj.starts_on,
        ends_on=proj.ends_on,
        budget_status=status,
        budget=budget,
        hours_this_week=m.hours(m.total_seconds(m.between(entries, wk_first, wk_last))),
        hours_to_date=m.hours(m.total_seconds(entries)),
        billable_hours_to_date=m.hours(m.total_seconds(e for e in entries if e.is_billable)),
        hours_by_task=_label_lines(m.seconds_by(entries, lambda e: e.task or "Other")),
        hours_by_phase=_label_lines(m.seconds_by(entries, lambda e: e.phase)),
        burn_chart=BurnChart(
            unit=chart_kind, currency=currency if chart_kind == "money" else None, weekly=weekly,
            cumulative=tuple(cumulative), projection=projection, budget=_q(use.allocated) if use else None,
        ),
        value_note=value_note,
    )


def _label_lines(seconds: Mapping[str, int]) -> tuple[HoursLine, ...]:
    return tuple(HoursLine(k, m.hours(v)) for k, v in sorted(seconds.items(), key=lambda kv: (-kv[1], kv[0])))


def _invoice_preview(published: list[_Published], rates_shown: bool) -> list[InvoicePreview]:
    todo = [p for p in published if p.metric.is_billable and not p.metric.is_invoiced and not p.metric.is_running]
    out = []
    for cur in sorted({p.metric.currency for p in todo if p.metric.currency and p.metric.billable_amount is not None}):
        mine = [p for p in todo if p.metric.currency == cur and p.metric.billable_amount is not None]
        lines: list[InvoicePreviewLine] = []
        if rates_shown:
            for proj in sorted({p.project for p in mine}):
                pm = [p for p in mine if p.project == proj]
                rates = {p.metric.billable_rate for p in pm}
                lines.append(InvoicePreviewLine(
                    project=proj, hours=m.hours(sum(p.metric.seconds for p in pm)),
                    rate=_q(rates.pop()) if len(rates) == 1 and None not in rates else None,
                    amount=_q(sum((p.metric.billable_amount or Decimal(0) for p in pm), Decimal(0))),
                ))
        out.append(InvoicePreview(
            currency=cur, hours=m.hours(sum(p.metric.seconds for p in mine)),
            amount=_q(sum((p.metric.billable_amount or Decimal(0) for p in mine), Decimal(0))), lines=tuple(lines),
        ))
    return out


def _weekly(published: list[_Published], week_start: int, rates_shown: bool) -> tuple[WeeklySummaryRow, ...]:
    groups: dict[tuple[dt.date, str, str, str], list[_Published]] = {}
    for p in published:
        first, _ = m.week_bounds(p.row.spent_date, week_start)
        groups.setdefault((first, p.project, p.person, p.task or ""), []).append(p)
    out = []
    for (first, project, person, task), ps in sorted(groups.items()):
        ms = [p.metric for p in ps]
        out.append(WeeklySummaryRow(
            week_start=first, week_end=first + dt.timedelta(days=6), person=person, project=project, task=task or None,
            hours=m.hours(m.total_seconds(ms)), billable_hours=m.hours(m.total_seconds(x for x in ms if x.is_billable)),
            amounts=_money_tuple(m.amounts_by_currency(ms)) if rates_shown else (),
        ))
    return tuple(out)
