"""`bridge verify`: the store's figures against the tracker's own aggregates.

A connector's report fetcher (connectors/reports.py) asks the provider for figures it
computes itself (Harvest's budget, time and uninvoiced reports, Productive's budget totals,
FreshBooks' logged durations and invoice totals) and hands them over as `TrackerFigure`s.
This module works out the same figure from the store, the way the bridge counts it, and
lists every difference beyond rounding with its likely cause.

How the store counts (and so what a tracker figure is compared with):
    hours_logged        every finished entry on the project (billable or not)
    billable_hours      finished billable entries
    billable_amount     their value at the tracker's rates (bridge/valuation.py)
    uninvoiced_hours    finished billable entries not yet invoiced; uninvoiced_amount their value
    budget_used         hours_logged ("h") or billable_amount (a currency), for the whole
                        project or, with period "month", for the current calendar month
    invoiced_total      invoices of the client, except void ones, in one currency
    outstanding_total   what is still due on them
A budget the portal shows in the tracker's unit and period is taken from bridge/figures.py,
the one computation behind the portal, exports and alerts, so the check covers what clients read.
A running timer is never counted (it counts once it stops); when the only difference is
the time on running timers it is reported as explained, not as drift. Each figure may be
limited to a window of spent dates (`first`..`last`), as Harvest's time reports are.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from sqlmodel import select

from bridge import metrics as m
from bridge.figures import compute as compute_figures
from bridge.models import AuditEvent, Quarantine, SyncRun
from bridge.overrides import fallback_rate, unmatched
from bridge.valuation import value_entry
from bridge.views import load_client_rows

if TYPE_CHECKING:  # pragma: no cover
    from bridge.config import ClientConfig, Config
    from bridge.store import Store

CENT = Decimal("0.01")
HOUR_FIGURES = ("hours_logged", "billable_hours", "uninvoiced_hours")
MONEY_FIGURES = ("billable_amount", "uninvoiced_amount", "invoiced_total", "outstanding_total")
FIGURES = (*HOUR_FIGURES, *MONEY_FIGURES, "budget_used")
LABELS = {
    "hours_logged": "hours logged", "billable_hours": "billable hours", "uninvoiced_hours": "uninvoiced hours",
    "billable_amount": "billable amount", "uninvoiced_amount": "uninvoiced amount", "budget_used": "budget used",
    "invoiced_total": "invoiced total", "outstanding_total": "outstanding on invoices",
}
# Two figures that differ by no more than this are equal: both sides round to cents or
# hundredths of an hour, so one unit of the last place is rounding, not drift.
TOLERANCE = CENT


@dataclass(frozen=True)
class TrackerFigure:
    """One figure as the tracker computes it."""

    source: str
    figure: str  # one of FIGURES
    value: Decimal
    unit: str  # "h" or an ISO currency
    client_id: str | None = None  # the provider's client id the figure belongs to
    project_id: str | None = None
    project_name: str | None = None
    first: dt.date | None = None  # the spent-date window the tracker summed, inclusive
    last: dt.date | None = None
    period: str = "total"  # budget_used: "total" or "month" (the current calendar month)
    report: str = ""  # where the tracker said it, e.g. "reports/project_budget"


@dataclass(frozen=True)
class Difference:
    client: str
    source: str
    subject: str  # the project's name, or "all invoices"
    figure: str
    unit: str
    tracker: Decimal
    store: Decimal | None  # None: the bridge cannot compute it (unvalued time)
    cause: str
    report: str = ""
    explained: bool = False  # fully accounted for (running timers): not drift

    @property
    def delta(self) -> Decimal | None:
        return None if self.store is None else self.store - self.tracker

    def line(self) -> str:
        unit = "h" if self.unit == "h" else f" {self.unit}"
        ours = "unknown" if self.store is None else f"{self.store}{unit}"
        where = f" ({self.report})" if self.report else ""
        tag = "note" if self.explained else "DIFF"
        return (f"{tag} {self.client} · {self.source} · {self.subject}: {LABELS.get(self.figure, self.figure)} "
                f"tracker {self.tracker}{unit}{where}, bridge {ours}. Likely cause: {self.cause}")


@dataclass
class ClientVerification:
    client: str
    checked: int = 0
    differences: list[Difference] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # a source whose reports could not be read

    @property
    def drift(self) -> list[Difference]:
        return [d for d in self.differences if not d.explained]

    @property
    def ok(self) -> bool:
        return not self.drift and not self.errors


# fetch(source_name, provider client ids, today) -> the tracker's figures for those clients
Fetch = Callable[[str, list[str], dt.date], Sequence[TrackerFigure]]


def verify(
    store: "Store", config: "Config", fetch: Fetch, *, now: dt.datetime, clients: Iterable[str] | None = None,
    record: bool = True,
) -> list[ClientVerification]:
    """Compare every (or the named) client's store figures with its trackers' own.

    `fetch` is the composition root's: it builds each source's connector and asks it for
    its reports. A source that cannot answer is listed in `errors` (verify still checks
    the others). With `record`, each client's outcome is kept as an audit event, which
    `bridge status` shows as drift.
    """
    from bridge.errors import BridgeError, ConfigError

    wanted = list(clients) if clients is not None else None
    if wanted:
        for key in wanted:
            config.client(key)  # ConfigError naming the configured clients
    today = m.local_date(now, config.agency.zone)
    chosen = [cc for cc in config.clients if wanted is None or cc.key in wanted]
    # one round of reports per source for every client (Harvest allows 100 report requests
    # per 15 minutes); each figure names the provider client it belongs to
    reports: dict[str, list[TrackerFigure] | str] = {}
    for source in sorted({s for cc in chosen for s in cc.sources}):
        ids = sorted({str(i) for cc in chosen for i in cc.sources.get(source, [])})
        try:
            reports[source] = list(fetch(source, ids, today))
        except ConfigError:
            raise
        except BridgeError as exc:
            reports[source] = f"{source}: cannot read the tracker's reports: {exc}"
    out = []
    for cc in chosen:
        result = ClientVerification(cc.key)
        rows = load_client_rows(store, cc)
        # the budgets exactly as the portal, exports and alerts show them (bridge/figures.py)
        portal = {pf.key: pf.budget for pf in compute_figures(rows, config, cc, now).projects if pf.budget is not None}
        for ref in unmatched(cc, rows.projects):
            result.errors.append(f"budgets: {ref!r} names no project of this client in the store; check the id or name "
                                 "in its [[clients.budgets]] entry (the override is not applied)")
        for source, ids in sorted(cc.sources.items()):
            got = reports[source]
            if isinstance(got, str):
                result.errors.append(got)
                continue
            mine = {str(i) for i in ids}
            for f in got:
                if f.client_id is not None and f.client_id not in mine:
                    continue
                result.checked += 1
                diff = compare(f, rows, cc, store, today, portal=portal)
                if diff is not None:
                    result.differences.append(diff)
        out.append(result)
        if record:
            _record(store, result, now)
    return out


def compare(
    f: TrackerFigure, rows: Any, cc: "ClientConfig", store: "Store", today: dt.date, *, portal: Mapping[str, Any] | None = None,
) -> Difference | None:
    """The difference between one tracker figure and the store's, or None when they agree.

    A budget the portal shows in the tracker's own unit and period is compared as the portal
    shows it (`portal`: project key -> bridge.figures.BudgetFigures), so the check covers the
    figure clients read, not only the rows under it.
    """
    projects = {(p.source, p.source_id): p for p in rows.projects}
    project = projects.get((f.source, f.project_id or ""))
    subject = (project.name if project else f.project_name) or (f"project {f.project_id}" if f.project_id else "all invoices")
    ours, missing, running = _store_value(f, rows, cc, project, today)
    shown = (portal or {}).get(f"{f.source}:{f.project_id}") if f.figure == "budget_used" else None
    basis_note = ""
    if shown is not None and shown.unit == f.unit and shown.period == ("monthly" if f.period == "month" else "total"):
        if ours is not None and shown.basis == "published" and abs(shown.used - ours) > TOLERANCE:
            basis_note = ("the portal counts this budget on the published basis (budget_basis = \"published\"), so work the "
                          "policy hides is left out of it; the tracker counts everything")
        ours, missing = shown.used, None
    tracker = f.value.quantize(CENT, ROUND_HALF_UP)

    def diff(cause: str, store_value: Decimal | None, explained: bool = False) -> Difference:
        return Difference(cc.key, f.source, subject, f.figure, f.unit, tracker, store_value, cause, f.report, explained)

    if ours is None:
        return diff(missing or "the bridge cannot value this time", None)
    ours = ours.quantize(CENT, ROUND_HALF_UP)
    if abs(ours - tracker) <= TOLERANCE:
        return None
    if running and abs(ours + running - tracker) <= TOLERANCE:
        return diff("a running timer: the tracker counts it, the bridge only once it stops", ours, True)
    return diff(basis_note.strip() or _cause(f, ours, tracker, store, rows), ours)


def _store_value(
    f: TrackerFigure, rows: Any, cc: "ClientConfig", project: Any, today: dt.date
) -> tuple[Decimal | None, str | None, Decimal]:
    """(the store's figure, why it cannot be known, what running timers would add)."""
    if f.figure in ("invoiced_total", "outstanding_total"):
        invoices = [i for i in rows.invoices if i.source == f.source and i.status != "void" and i.currency == f.unit
                    and (f.client_id is None or i.client_source_id == f.client_id)]
        field_ = "amount" if f.figure == "invoiced_total" else "due_amount"
        return sum((Decimal(getattr(i, field_) or 0) for i in invoices), Decimal(0)), None, Decimal(0)
    first, last = f.first, f.last
    if f.period == "month":
        start, reset = m.month_bounds(today)
        first, last = max(first or start, start), min(last or today, reset - dt.timedelta(days=1))
    entries = [
        e for e in rows.entries
        if e.source == f.source and (f.project_id is None or e.project_source_id == f.project_id)
        and (first is None or e.spent_date >= first) and (last is None or e.spent_date <= last)
    ]
    running = [e for e in entries if e.is_running]
    entries = [e for e in entries if not e.is_running]
    figure = f.figure
    if figure == "budget_used":
        figure = "hours_logged" if f.unit == "h" else "billable_amount"
    if figure in ("billable_hours", "billable_amount"):
        entries = [e for e in entries if e.is_billable]
        running = [e for e in running if e.is_billable]
    elif figure in ("uninvoiced_hours", "uninvoiced_amount"):
        entries = [e for e in entries if e.is_billable and not e.is_invoiced]
        running = [e for e in running if e.is_billable and not e.is_invoiced]
    if figure in HOUR_FIGURES:
        return Decimal(sum(int(e.seconds) for e in entries)) / 3600, None, Decimal(sum(int(e.seconds) for e in running)) / 3600
    def value(e: Any) -> tuple[Decimal | None, str | None]:
        proj = project or next((p for p in rows.projects if p.source == e.source and p.source_id == e.project_source_id), None)
        task = rows.tasks.get((e.source, e.task_source_id or ""))
        person = rows.people.get((e.source, e.person_source_id or ""))
        v = value_entry(e, proj, task, person, fallback_rate=fallback_rate(cc, proj))
        return v.amount, v.missing

    total = Decimal(0)
    for e in entries:
        amount, missing = value(e)
        if amount is None:
            return None, missing, Decimal(0)
        total += amount
    # what the running timers are worth so far, at the same rates (the tracker may count it)
    running_value = sum((a for a, _ in map(value, running) if a is not None), Decimal(0))
    return total, None, running_value


def _cause(f: TrackerFigure, ours: Decimal, tracker: Decimal, store: "Store", rows: Any) -> str:
    with store.session() as s:
        held = len(list(s.exec(select(Quarantine).where(Quarantine.source == f.source))))
        last_ok = s.exec(select(SyncRun.finished_at).where(SyncRun.source == f.source, SyncRun.status == "ok")
                         .order_by(SyncRun.finished_at.desc())).first()  # type: ignore[union-attr]
    synced = f"the last good sync of {f.source} finished {last_ok:%Y-%m-%d %H:%M} UTC" if last_ok else f"{f.source} has never synced"
    quarantined = f"; {held} record(s) of {f.source} are quarantined (`bridge status` lists them) and the tracker counts them" if held else ""
    if f.figure in ("invoiced_total", "outstanding_total"):
        return (f"an invoice was issued, paid, voided or deleted in the tracker after the last sync ({synced}); "
                f"run `bridge sync {f.source}`" + quarantined)
    money = f.figure in MONEY_FIGURES or (f.figure == "budget_used" and f.unit != "h")
    if money:
        return ("the tracker values this time differently: a rate changed after the time was logged, or the project's "
                "billing method points at a rate the bridge does not have; compare the rates, and set hourly_rate in "
                f"[[clients.budgets]] only for time the tracker leaves unvalued ({synced})" + quarantined)
    if ours < tracker:
        return (f"time the tracker has is missing from the store: entries added or edited since the last sync ({synced}), "
                f"or quarantined; run `bridge sync {f.source}`" + quarantined)
    return (f"the store still holds time the tracker no longer has: entries deleted or moved to another project in the "
            f"tracker and not reconciled yet; run `bridge sync --full {f.source}`" + quarantined)


# --- keeping the outcome for `bridge status` ------------------------------------------------

VERIFY_ACTION = "verify"


def _record(store: "Store", result: ClientVerification, now: dt.datetime) -> None:
    detail = json.dumps({
        "checked": result.checked, "drift": len(result.drift), "errors": result.errors,
        "differences": [d.line() for d in result.drift][:20],
    })
    with store.session() as s:
        s.add(AuditEvent(at=now, client_key=result.client, action=VERIFY_ACTION, detail=detail))
        s.commit()


@dataclass(frozen=True)
class Drift:
    """The last `bridge verify` of one client, for `bridge status`."""

    client: str
    at: dt.datetime
    checked: int
    drift: int
    errors: int
    first: str | None  # the first difference, as printed


def last_verification(store: "Store", client_keys: Iterable[str]) -> list[Drift]:
    out = []
    with store.session() as s:
        for key in client_keys:
            ev = s.exec(select(AuditEvent).where(AuditEvent.client_key == key, AuditEvent.action == VERIFY_ACTION)
                        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())).first()  # type: ignore[union-attr]
            if ev is None:
                continue
            try:
                d = json.loads(ev.detail or "{}")
            except ValueError:
                d = {}
            diffs = d.get("differences") or []
            at = ev.at if ev.at.tzinfo else ev.at.replace(tzinfo=dt.timezone.utc)
            out.append(Drift(key, at, int(d.get("checked", 0)), int(d.get("drift", 0)), len(d.get("errors") or []),
                             diffs[0] if diffs else None))
    return out


def as_json(results: Sequence[ClientVerification]) -> str:
    def enc(v: Any) -> Any:
        if isinstance(v, Decimal):
            return str(v)
        raise TypeError(type(v))

    return json.dumps([{
        "client": r.client, "checked": r.checked, "ok": r.ok, "errors": r.errors,
        "differences": [{**asdict(d), "delta": str(d.delta) if d.delta is not None else None} for d in r.differences],
    } for r in results], default=enc, indent=2)


def report_lines(results: Sequence[ClientVerification]) -> list[str]:
    lines = []
    for r in results:
        head = "no difference" if r.ok else f"{len(r.drift)} difference(s)" + (f", {len(r.errors)} source error(s)" if r.errors else "")
        lines.append(f"{r.client}: {r.checked} figure(s) checked, {head}")
        lines += [f"  {d.line()}" for d in r.differences]
        lines += [f"  ERROR {e}" for e in r.errors]
    return lines


__all__ = [
    "ClientVerification", "Difference", "Drift", "FIGURES", "TrackerFigure", "as_json", "compare",
    "last_verification", "report_lines", "verify",
]
