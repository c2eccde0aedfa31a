"""`bridge status`: is every source syncing and every portal fresh? Also a health check.

Per source: last successful sync, the last error (its message already says what to do),
the next scheduled run (from the scheduler's job store, when `bridge run` has written
one), live records and quarantined records. Per portal client: how fresh its data is,
when its link expires and when it was last published. A source that has not synced
successfully within `stale_after` makes the status unhealthy (exit 1 on the CLI).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from bridge.config import Config, parse_duration
from bridge.figures import client_figures, q
from bridge.heartbeat import SchedulerStatus, scheduler_status
from bridge.models import PortalLink, Quarantine, SyncCursor, SyncRun
from bridge.scheduler import next_runs
from bridge.store import Store
from bridge.verify import Drift, last_verification


@dataclass(frozen=True)
class SourceStatus:
    name: str
    kind: str
    last_success_at: dt.datetime | None
    last_run_at: dt.datetime | None
    last_status: str | None  # ok | failed | skipped | stopped | running
    last_error: str | None  # from the newest failed run after the last success
    last_error_at: dt.datetime | None
    next_run_at: dt.datetime | None
    records: dict[str, int]
    quarantined: int
    stale: bool
    # resources whose last pass did not complete (a resume point is pending) or, after an
    # interrupted/killed/stopped last run, every resource: the store holds partial data
    partial: tuple[str, ...] = ()


@dataclass(frozen=True)
class BudgetStatus:
    """One budget as the client's portal shows it (bridge/figures.py, rounded for display)."""

    project: str
    kind: str  # hours | money
    unit: str  # "h" or the currency
    used: Decimal
    allocated: Decimal
    percent: Decimal
    level: str  # ok | warning | at_risk | critical | over
    run_out: dt.date | None  # last day with budget left at the current pace


@dataclass(frozen=True)
class PortalStatus:
    key: str
    name: str
    data_as_of: dt.datetime | None
    published_at: dt.datetime | None
    link_expires_at: dt.datetime | None
    link_expired: bool
    has_link: bool
    budgets: tuple[BudgetStatus, ...] = ()


@dataclass(frozen=True)
class Status:
    generated_at: dt.datetime
    stale_after: dt.timedelta
    sources: tuple[SourceStatus, ...]
    portals: tuple[PortalStatus, ...]
    scheduler: SchedulerStatus | None = None
    # the last `bridge verify` of each client that has one: figures that drifted from the tracker's
    verified: tuple[Drift, ...] = ()

    @property
    def healthy(self) -> bool:
        # A scheduler that died or stalled is unhealthy at once, before any source goes stale.
        return not any(s.stale or s.partial for s in self.sources) and not (
            self.scheduler is not None and self.scheduler.failed)

    def as_dict(self) -> dict[str, Any]:
        def enc(v: Any) -> Any:
            if isinstance(v, (dt.datetime, dt.date)):
                return v.isoformat()
            if isinstance(v, Decimal):
                return str(v)
            if isinstance(v, dict):
                return {k: enc(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [enc(x) for x in v]
            return v

        return {
            "generated_at": self.generated_at.isoformat(),
            "healthy": self.healthy,
            "stale_after_seconds": int(self.stale_after.total_seconds()),
            "sources": [{k: enc(v) for k, v in asdict(s).items()} for s in self.sources],
            "portals": [{k: enc(v) for k, v in asdict(p).items()} for p in self.portals],
            "scheduler": self.scheduler.as_dict() if self.scheduler is not None else None,
            "verified": [{k: enc(v) for k, v in asdict(d).items()} for d in self.verified],
        }


# A last run that ended so has left part of the data unsynced until the next run completes.
INCOMPLETE = frozenset({"interrupted", "killed", "stopped"})


def collect_status(store: Store, config: Config, now: dt.datetime) -> Status:
    stale_after = parse_duration(config.stale_after)
    upcoming = next_runs(store)
    runs = SyncRun.__table__  # type: ignore[attr-defined]
    q = Quarantine.__table__  # type: ignore[attr-defined]
    cursors = SyncCursor.__table__  # type: ignore[attr-defined]
    sources = []
    with store.engine.connect() as conn:
        for src in config.sources:
            last_ok = conn.execute(
                sa.select(sa.func.max(runs.c.finished_at)).where(runs.c.source == src.name, runs.c.status == "ok")
            ).scalar_one()
            last = conn.execute(
                sa.select(runs.c.started_at, runs.c.status).where(runs.c.source == src.name).order_by(runs.c.id.desc()).limit(1)
            ).first()
            err_q = sa.select(runs.c.error, runs.c.finished_at).where(
                runs.c.source == src.name, runs.c.status == "failed"
            ).order_by(runs.c.id.desc()).limit(1)
            err = conn.execute(err_q).first()
            # An error the source has recovered from is history, not status.
            if err is not None and last_ok is not None and err[1] is not None and err[1] <= last_ok:
                err = None
            quarantined = conn.execute(sa.select(sa.func.count()).select_from(q).where(q.c.source == src.name)).scalar_one()
            partial = tuple(r[0] for r in conn.execute(
                sa.select(cursors.c.resource).where(cursors.c.source == src.name, cursors.c.resume.is_not(None))
                .order_by(cursors.c.resource)
            ))
            if not partial and last is not None and last[1] in INCOMPLETE:
                partial = ("every resource not yet completed",)
            sources.append(SourceStatus(
                name=src.name, kind=src.kind, last_success_at=last_ok,
                last_run_at=last[0] if last else None, last_status=last[1] if last else None,
                last_error=err[0] if err else None, last_error_at=err[1] if err else None,
                next_run_at=upcoming.get(f"sync:{src.name}"),
                records={k: v for k, v in store.counts(src.name).items() if v},
                quarantined=int(quarantined),
                stale=last_ok is None or now - last_ok > stale_after,
                partial=partial,
            ))
        links = PortalLink.__table__  # type: ignore[attr-defined]
        rows = {r.client_key: r for r in conn.execute(sa.select(links))}
    portals = []
    for c in config.clients:
        r = rows.get(c.key)
        exp = r.expires_at if r is not None else None
        portals.append(PortalStatus(
            key=c.key, name=c.name, data_as_of=r.data_as_of if r is not None else None,
            published_at=r.published_at if r is not None else None, link_expires_at=exp,
            link_expired=exp is not None and exp <= now, has_link=r is not None and bool(r.url),
            budgets=_budgets(store, config, c, now),
        ))
    return Status(generated_at=now, stale_after=stale_after, sources=tuple(sources), portals=tuple(portals),
                  verified=tuple(last_verification(store, [c.key for c in config.clients])),
                  scheduler=scheduler_status(store, now))


def _budgets(store: Store, config: Config, client: Any, now: dt.datetime) -> tuple[BudgetStatus, ...]:
    """The client's budgets from the one computation the portal and alerts use."""
    if not any(client.sources.values()):
        return ()
    out = []
    for pf in client_figures(store, config, client, now).projects:
        b = pf.budget
        if b is None:
            continue
        out.append(BudgetStatus(
            project=pf.project.name, kind=b.kind, unit=b.unit, used=q(b.used), allocated=q(b.allocated),
            percent=b.percent, level=b.level, run_out=b.projected_run_out,
        ))
    return tuple(out)


def budget_line(b: BudgetStatus) -> str:
    from bridge.figures import level_name

    tail = f", last day with budget left {b.run_out.isoformat()}" if b.run_out else ""
    return f"{b.project} {b.percent}% ({b.used} of {b.allocated} {b.unit}) {level_name(b.level)}{tail}"


# --- output ----------------------------------------------------------------------------------


def _ago(at: dt.datetime | None, now: dt.datetime) -> str:
    if at is None:
        return "never"
    secs = int((now - at).total_seconds())
    future = secs < 0
    secs = abs(secs)
    if secs < 90:
        span = f"{secs}s"
    elif secs < 5400:
        span = f"{secs // 60}m"
    elif secs < 172800:
        span = f"{secs // 3600}h"
    else:
        span = f"{secs // 86400}d"
    return f"in {span}" if future else f"{span} ago"


def _records(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items()) or "none"


def status_lines(status: Status) -> list[str]:
    """Plain text, one fact per line: for logs, cron mail and pipes."""
    now = status.generated_at
    out = ["Sources:"]
    if not status.sources:
        out.append("  (none configured)")
    for s in status.sources:
        flag = "STALE" if s.stale else "ok"
        out.append(f"  {s.name} ({s.kind}): {flag}; last success {_ago(s.last_success_at, now)}; "
                   f"next run {_ago(s.next_run_at, now) if s.next_run_at else 'not scheduled'}")
        out.append(f"    records: {_records(s.records)}; quarantined: {s.quarantined}")
        if s.partial:
            out.append(f"    PARTIAL: the last run ({s.last_status}) did not complete: {', '.join(s.partial)}; "
                       "the store holds part of the data until a run completes (`bridge sync` resumes it)")
        if s.last_error:
            out.append(f"    last error ({_ago(s.last_error_at, now)}): {s.last_error}")
    if status.scheduler is not None:
        out.append("Scheduler:")
        out.extend(status.scheduler.lines(lambda at: _ago(at, now)))
    out.append("Portals:")
    if not status.portals:
        out.append("  (no clients configured)")
    for p in status.portals:
        if not p.has_link and p.published_at is None:
            out.append(f"  {p.key}: never published")
        else:
            link = ("expired " + _ago(p.link_expires_at, now)) if p.link_expired else (
                f"expires {_ago(p.link_expires_at, now)}" if p.link_expires_at else "does not expire")
            out.append(f"  {p.key}: data as of {_ago(p.data_as_of, now)}; published {_ago(p.published_at, now)}; link {link}")
        # the budgets to watch, as the portal shows them (over, almost used up, at risk, nearing)
        watch = [b for b in p.budgets if b.level != "ok"]
        if watch:
            out.append("    budgets: " + "; ".join(budget_line(b) for b in watch))
    out += verified_lines(status)
    if not status.healthy:
        stale = ", ".join(s.name for s in status.sources if s.stale)
        partial = ", ".join(s.name for s in status.sources if s.partial)
        why = []
        if status.scheduler is not None and status.scheduler.failed:
            why.append("scheduler not running: the last leader stopped without being asked to "
                       "(its log says why; restart `bridge run`)")
        if stale:
            why.append(f"no successful sync within {config_span(status.stale_after)} for: {stale}")
        if partial:
            why.append(f"partial data (a sync did not complete) for: {partial}")
        out.append(f"UNHEALTHY: {'; '.join(why)}. "
                   "Run `bridge sync --source NAME` to see the error, or check that `bridge run` is running.")
    return out


def verified_lines(status: Status) -> list[str]:
    """The last `bridge verify` per client: drift from the trackers' own figures."""
    if not status.verified:
        return []
    out = ["Checked against the trackers (`bridge verify`):"]
    for d in status.verified:
        state = "no drift" if not d.drift and not d.errors else (
            f"DRIFT: {d.drift} figure(s) differ" + (f", {d.errors} source(s) unreadable" if d.errors else ""))
        out.append(f"  {d.client}: {state} ({d.checked} checked {_ago(d.at, status.generated_at)})")
        if d.first:
            out.append(f"    {d.first}")
    return out


def config_span(td: dt.timedelta) -> str:
    secs = int(td.total_seconds())
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs % n == 0 and secs >= n:
            return f"{secs // n}{unit}"
    return f"{secs}s"


def print_rich(status: Status, console: Any) -> None:
    """Tables for a person at a terminal."""
    from rich.table import Table

    now = status.generated_at
    t = Table(title="Sources", title_justify="left")
    for col in ("source", "state", "last success", "next run", "records", "quarantined", "last error"):
        t.add_column(col, overflow="fold")
    for s in status.sources:
        t.add_row(
            f"{s.name} ({s.kind})",
            "[red]STALE[/red]" if s.stale else ("[red]PARTIAL[/red]" if s.partial else "[green]ok[/green]"),
            _ago(s.last_success_at, now), _ago(s.next_run_at, now) if s.next_run_at else "-",
            _records(s.records), str(s.quarantined), s.last_error or "",
        )
    console.print(t)
    p = Table(title="Portals", title_justify="left")
    for col in ("client", "data as of", "published", "link", "budgets to watch"):
        p.add_column(col, overflow="fold")
    for x in status.portals:
        link = "-" if x.link_expires_at is None else (
            f"[red]expired {_ago(x.link_expires_at, now)}[/red]" if x.link_expired else f"expires {_ago(x.link_expires_at, now)}")
        watch = "; ".join(budget_line(b) for b in x.budgets if b.level != "ok")
        p.add_row(x.key, _ago(x.data_as_of, now) if x.data_as_of else "-", _ago(x.published_at, now) if x.published_at else "never", link,
                  watch or "-")
    console.print(p)
    if status.scheduler is not None:
        console.print("Scheduler:")
        for line in status.scheduler.lines(lambda at: _ago(at, now)):
            console.print(line, markup=False)
    for line in verified_lines(status):
        console.print(line, markup=False, highlight=False)
    if not status.healthy:
        console.print(f"[red]{status_lines(status)[-1]}[/red]")


def status_json(status: Status) -> str:
    return json.dumps(status.as_dict(), indent=2)


__all__ = ["PortalStatus", "SourceStatus", "Status", "collect_status", "print_rich", "status_json", "status_lines"]
