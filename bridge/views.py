"""PortalView: the typed, redacted picture of one client that templates and exporters render.

Redaction happens once, here (DESIGN.md invariant 1): `build_portal_view` reads the store
for one client's (source, client id) pairs only (invariant 2), applies that client's
visibility policy (bridge/policy.py) and keeps only what the client may see. A field the
policy hides is *absent* from these dataclasses (None or an empty tuple), never a value a
template is trusted to skip. Every figure comes from bridge/figures.py (invariant 7);
this module only rounds it for display and names what the policy lets the client read.
Money is Decimal beside an ISO currency and is never summed across currencies; hours
are Decimal hours (seconds / 3600, rounded to 0.01).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal

from sqlmodel import select

from bridge import metrics as m
from bridge.figures import (
    ClientFigures,
    ClientRows,
    Line,
    ProjectFigures,
    basis_sentence,
    explain,
    unlisted_sentence,
)
from bridge.figures import compute as compute_figures
from bridge.figures import load_client_rows as load_figure_rows
from bridge.i18n import Lang, lang
from bridge.models import Client, Person, PortalLink, Project, TimeEntry
from bridge.policy import (
    TEAM_MEMBER,
    PersonFacts,
    Policy,
    anonymous_label,
    display_names,
)
from bridge.redaction import (
    ContactPolicy,
    EntryRef,
    Finding,
    NoteRedactor,
    PersonName,
    ReviewLog,
    note_redactor,
)
from bridge.valuation import Unvalued

EN = lang("en")

if TYPE_CHECKING:  # pragma: no cover
    from bridge.config import ClientConfig, Config
    from bridge.store import Store

BudgetKind = Literal["hours", "money"]
BudgetPeriod = Literal["total", "monthly"]
BudgetStatus = Literal["none", "visible", "not_visible"]
WarningLevel = Literal["ok", "warning", "at_risk", "critical", "over"]
BudgetBasis = Literal["tracker", "published"]
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
    basis: BudgetBasis = "tracker"  # what `used` counts: all time on the project, or only the listed work
    at_risk: bool = False  # the projection runs out before the period resets or the project ends
    unlisted_hours: Decimal = Decimal(0)  # of `used`, the hours not itemized on the page (internal work…)
    unlisted_note: str | None = None  # "Includes 15.5 h of internal work not itemized below."
    history: tuple[BudgetMonth, ...] = ()  # monthly budgets: previous months, oldest first
    # monthly budgets: last calendar month's use and allocation (a retainer that overran);
    # None for total budgets or when last month had no budget
    last_period_used: Decimal | None = None
    last_period_allocated: Decimal | None = None


@dataclass(frozen=True)
class BudgetMonth:
    """A previous month of a monthly budget: its use and any overrun."""

    month: dt.date  # first day of the month
    allocated: Decimal
    used: Decimal
    over: Decimal  # beyond the allocation; 0 when within it


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
    timers_running: int = 0  # timers in progress: counted nowhere until they stop
    # why some billable time here has no value (bridge/valuation.py): the tracker gives no rate
    # for it, and what the agency can set; None when all of it is valued
    value_note: Unvalued | None = None


@dataclass(frozen=True)
class TimesheetRow:
    spent_date: dt.date
    person: str  # display name after the team_names policy
    project: str
    task: str | None
    description: str | None  # per the descriptions policy; None when hidden or empty
    hours: Decimal
    is_billable: bool
    is_running: bool  # always False: a running timer is not a row until it stops
    rate: Money | None  # only when rates are shown
    amount: Money | None  # only when rates are shown
    # exact duration: a total over any set of rows is their seconds summed, then rounded
    # once (as bridge/figures.py does), never a sum of the rounded `hours`
    seconds: int | None = None


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
    seconds: int | None = None  # exact, as TimesheetRow.seconds
    billable_seconds: int | None = None


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
    unvalued_hours: Decimal = Decimal(0)  # of `hours`, billable time the tracker gives no value


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
    budget_basis: BudgetBasis = "tracker"
    budget_basis_note: str | None = None  # how budgets count, stated on the page when any is shown
    timers_running: int = 0  # timers in progress on listed work

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


# The rows of one client live with the figures computed from them (bridge/figures.py);
# the view adds what description redaction needs (`names`).
_Rows = ClientRows


def load_client_rows(store: "Store", client_cfg: "ClientConfig") -> ClientRows:
    """Every row the portal of `client_cfg` may draw on (bridge.figures.load_client_rows),
    plus the names its notes may mention, for the redactor."""
    rows = load_figure_rows(store, client_cfg)
    return dataclasses.replace(rows, names=load_note_facts(store, client_cfg))


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




def _money_tuple(amounts: Mapping[str, Decimal]) -> tuple[Money, ...]:
    return tuple(Money(_q(a), c) for c, a in sorted(amounts.items()))


def _q(amount: Decimal) -> Decimal:
    return Decimal(amount).quantize(m.HUNDREDTH, ROUND_HALF_UP)


@dataclass
class _Published:
    """A listed entry: its figures line plus the display strings the policy allows."""

    line: Line
    person: str
    project: str
    task: str | None
    description: str | None
    redacted: tuple[str, ...] = ()  # why the description was changed, for the review

    @property
    def row(self) -> TimeEntry:
        return self.line.row

    @property
    def metric(self) -> m.Entry:
        return self.line.metric


def _note_redactor(rows: _Rows, config: "Config", client_cfg: "ClientConfig",
                   shown: Mapping[tuple[str, str], str]) -> NoteRedactor:
    """The description redactor for this client, its policy and the people its view names."""
    mode = client_cfg.visibility.team_names
    facts = rows.names if rows.names is not None else NoteFacts()
    everyone = {**rows.people, **{(p.source, p.source_id): p for p in facts.people}}
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
    own = [*facts.own_names, config.agency.name, *(t.name for t in rows.tasks.values())]
    red = config.redact
    return note_redactor(
        own_names=own, other_names=[*facts.other_names, *other_clients], people=people,
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
    rows: ClientRows,
    config: "Config",
    client_cfg: "ClientConfig",
    *,
    now: dt.datetime,
    previous_snapshot: Snapshot | str | None = None,
    figures: ClientFigures | None = None,
    review: ReviewLog | None = None,
) -> PortalView:
    """The view of one client: its figures (bridge/figures.py) plus what the policy lets it read."""
    agency = config.agency
    zone = agency.zone
    ws = agency.week_start_index
    pol = Policy(client_cfg.visibility)
    fig = figures if figures is not None else compute_figures(rows, config, client_cfg, now)
    today = fig.today

    facts = []
    for ln in fig.lines:
        key = (ln.row.source, ln.row.person_source_id or "")
        person = rows.people.get(key)
        facts.append(PersonFacts(key, person.first_name if person else "", person.last_name if person else "", person.role if person else None))
    names = display_names(client_cfg.visibility.team_names, facts)
    redactor = _note_redactor(rows, config, client_cfg, names) if client_cfg.visibility.descriptions == "detailed" else None
    review = review if review is not None else ReviewLog()

    published: list[_Published] = []
    for ln in fig.lines:
        task_name = ln.task.name if ln.task else None
        description = pol.description(ln.row.notes, task_name)
        why: tuple[str, ...] = ()
        if description and redactor is not None:
            description, why = redactor.redact(description)
        published.append(_Published(
            line=ln, person=names[(ln.row.source, ln.row.person_source_id or "")],
            project=ln.project.name if ln.project else "Other work", task=task_name,
            description=description, redacted=why,
        ))
    published.sort(key=lambda p: (p.row.spent_date, p.project, p.person, p.row.source, p.row.source_id))

    # timesheet rows (built in both view modes: they feed the snapshot too)
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
            is_running=False, rate=rate, amount=amount, seconds=int(p.metric.seconds),
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

    t = lang(client_cfg.locale or config.agency.locale)
    projects = tuple(_project_view(i, pf, client_cfg, today, ws, t) for i, pf in enumerate(fig.projects, start=1))
    label = {p.metric.person: p.person for p in published}
    totals = tuple(
        CurrencyTotal(cur, m.hours(fig.billable_seconds_by_currency.get(cur, 0)), _q(fig.amounts[cur]))
        for cur in sorted(fig.amounts)
    )
    preview: list[InvoicePreview] = []
    invoices: list[InvoiceView] = []
    if pol.invoices_shown:
        for pv in fig.preview:
            preview.append(InvoicePreview(
                currency=pv.currency, hours=m.hours(pv.seconds), amount=_q(pv.amount),
                lines=tuple(
                    InvoicePreviewLine(project=name, hours=m.hours(secs), rate=_q(rate) if rate is not None else None, amount=_q(amt))
                    for name, secs, rate, amt in pv.lines
                ) if pol.rates_shown else (),
                unvalued_hours=m.hours(pv.unvalued_seconds),
            ))
        for inv, status in fig.invoices:
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
        week_start=fig.week_start,
        week_end=fig.week_end,
        week_label=m.week_label(fig.week_start),
        policy=PolicyEcho(
            view=client_cfg.visibility.view, rates_shown=pol.rates_shown, invoices_shown=pol.invoices_shown,
            descriptions=client_cfg.visibility.descriptions, team_names=client_cfg.visibility.team_names,
            non_billable_shown=pol.non_billable_shown, approved_only=client_cfg.visibility.approved_only,
        ),
        total_hours=m.hours(fig.total_seconds),
        billable_hours=m.hours(fig.billable_seconds),
        non_billable_hours=m.hours(fig.non_billable_seconds) if pol.non_billable_shown else None,
        totals=totals,
        projects=projects,
        this_week_by_person=_lines(fig.seconds_this_week_by_person, label),
        hours_to_date_by_person=_lines(fig.seconds_to_date_by_person, label),
        timesheet=() if weekly else tuple(sheet),
        weekly_summaries=_weekly(published, ws, pol.rates_shown) if weekly else (),
        unbilled=UnbilledView(hours=m.hours(fig.unbilled_seconds), amounts=_money_tuple(fig.unbilled_amounts) if pol.rates_shown else ()),
        invoice_preview=tuple(preview),
        invoices=tuple(invoices),
        glossary=glossary,
        notes=client_cfg.notes,
        change_note=change_note(prev, snapshot, zone),
        snapshot=snapshot,
        locale=client_cfg.locale or agency.locale,
        budget_basis=fig.basis,
        budget_basis_note=basis_sentence(fig.basis, t) if any(p.budget is not None for p in projects) else None,
        timers_running=fig.running,
    )


def _lines(seconds: Mapping[str, int], label: Mapping[str, str]) -> tuple[HoursLine, ...]:
    merged: dict[str, int] = {}
    for k, secs in seconds.items():
        name = label.get(k, TEAM_MEMBER)
        merged[name] = merged.get(name, 0) + secs
    return tuple(HoursLine(n, m.hours(s)) for n, s in sorted(merged.items(), key=lambda kv: (-kv[1], kv[0])))


def _project_view(index: int, pf: ProjectFigures, client_cfg: "ClientConfig", today: dt.date, week_start: int,
                  t: Lang = EN) -> ProjectView:
    proj = pf.project
    b = pf.budget
    budget: BudgetView | None = None
    cumulative: tuple[BurnPoint, ...] = ()
    projection: tuple[BurnPoint, ...] = ()
    chart_kind: BudgetKind = b.kind if b is not None else "hours"
    if b is not None:
        # last calendar month of a monthly budget, from the same history the page lists
        prev_month = (b.period_start - dt.timedelta(days=1)).replace(day=1) if b.period_start else None
        last = next((h for h in b.history if h.month == prev_month), None)
        cumulative = tuple(BurnPoint(d, _q(v)) for d, v in b.cumulative)
        if b.projected_run_out is not None:
            projection = (BurnPoint(today, _q(b.used)), BurnPoint(b.projected_run_out, _q(b.allocated)))
        budget = BudgetView(
            kind=b.kind, period=b.period, currency=b.currency,
            allocated=_q(b.allocated), used=_q(b.used), left=_q(b.left), percent_consumed=b.percent,
            period_start=b.period_start, resets_on=b.resets_on, level=b.level, threshold_crossed=b.threshold_crossed,
            is_over_budget=b.is_over, burn_per_week=b.burn.per_week, burn_hours_per_week=b.burn.hours_per_week,
            burn_window_weeks=b.burn.weeks, projected_run_out_date=b.projected_run_out,
            runs_out_before_end=b.runs_out_before_end,
            explanation=explain(b, b.burn, b.projected_run_out, proj.ends_on, b.basis, t),
            basis=b.basis, at_risk=b.at_risk, unlisted_hours=m.hours(b.unlisted_seconds),
            unlisted_note=unlisted_sentence(b, t=t),
            history=tuple(BudgetMonth(h.month, _q(h.allocated), _q(h.used), _q(h.over)) for h in b.history),
            last_period_used=_q(last.used) if last is not None else None,
            last_period_allocated=_q(last.allocated) if last is not None else None,
        )
    return ProjectView(
        anchor=f"project-{index}",
        name=proj.name,
        code=proj.code or None,
        starts_on=proj.starts_on,
        ends_on=proj.ends_on,
        budget_status=pf.budget_status,
        budget=budget,
        hours_this_week=m.hours(pf.seconds_this_week),
        hours_to_date=m.hours(pf.seconds_to_date),
        billable_hours_to_date=m.hours(pf.billable_seconds_to_date),
        hours_by_task=_label_lines(pf.seconds_by_task),
        hours_by_phase=_label_lines(pf.seconds_by_phase),
        burn_chart=BurnChart(
            unit=chart_kind, currency=b.currency if b is not None else None,
            weekly=tuple(BurnPoint(d, _q(v)) for d, v in pf.weekly),
            cumulative=cumulative, projection=projection, budget=_q(b.allocated) if b is not None else None,
        ),
        timers_running=pf.running,
        value_note=pf.value_note,
    )


def _label_lines(seconds: Mapping[str, int]) -> tuple[HoursLine, ...]:
    return tuple(HoursLine(k, m.hours(v)) for k, v in sorted(seconds.items(), key=lambda kv: (-kv[1], kv[0])))


def _weekly(published: list[_Published], week_start: int, rates_shown: bool) -> tuple[WeeklySummaryRow, ...]:
    groups: dict[tuple[dt.date, str, str, str], list[_Published]] = {}
    for p in published:
        first, _ = m.week_bounds(p.row.spent_date, week_start)
        groups.setdefault((first, p.project, p.person, p.task or ""), []).append(p)
    out = []
    for (first, project, person, task), ps in sorted(groups.items()):
        ms = [p.metric for p in ps]
        secs, billable = m.total_seconds(ms), m.total_seconds(x for x in ms if x.is_billable)
        out.append(WeeklySummaryRow(
            week_start=first, week_end=first + dt.timedelta(days=6), person=person, project=project, task=task or None,
            hours=m.hours(secs), billable_hours=m.hours(billable),
            amounts=_money_tuple(m.amounts_by_currency(ms)) if rates_shown else (),
            seconds=int(secs), billable_seconds=int(billable),
        ))
    return tuple(out)
