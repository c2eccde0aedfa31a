"""The weekly digest: a short mail with last week's hours, each budget's status and the link.

For clients who prefer a summary to watching the portal (`digest = true`). Its figures come
from the client's PortalView, the one computation behind the page, so the mail never says
more, or other, than the portal does. One digest per client per week: the audit trail
records each one sent, so a restart or a second process does not send it again.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bridge.audit import events as audit_events
from bridge.audit import record
from bridge.config import ClientConfig, Config
from bridge.errors import BridgeError
from bridge.store import Store
from bridge.views import PortalView

log = logging.getLogger("bridge.digest")
SENT = "digest_sent"


@dataclass(frozen=True)
class BudgetLine:
    project: str
    kind: str  # "hours" | "money"
    currency: str | None
    used: Decimal
    allocated: Decimal
    left: Decimal
    percent: Decimal
    level: str  # ok | warning | critical | over
    monthly: bool


@dataclass(frozen=True)
class Digest:
    """What one client's weekly mail says, all of it taken from its PortalView."""

    client_key: str
    client_name: str
    agency: str
    contact: str | None
    locale: str
    week_start: dt.date  # the week the mail reports on (the one before this)
    week_end: dt.date
    hours: Decimal
    hours_by_project: tuple[tuple[str, Decimal], ...]
    budgets: tuple[BudgetLine, ...]
    as_of: dt.datetime | None
    url: str
    expires_at: dt.datetime | None


def last_week(view: PortalView) -> tuple[dt.date, dt.date]:
    start = view.week_start - dt.timedelta(days=7)
    return start, start + dt.timedelta(days=6)


def compose(view: PortalView, client: ClientConfig, *, url: str, expires_at: dt.datetime | None) -> Digest:
    """The digest of the week before the view's current week."""
    start, end = last_week(view)
    by_project: dict[str, Decimal] = {}
    if view.weekly_summaries:
        for w in view.weekly_summaries:
            if w.week_start == start:
                by_project[w.project] = by_project.get(w.project, Decimal(0)) + w.hours
    else:
        for r in view.timesheet:
            if start <= r.spent_date <= end and not r.is_running:
                by_project[r.project] = by_project.get(r.project, Decimal(0)) + r.hours
    budgets = tuple(
        BudgetLine(project=p.name, kind=p.budget.kind, currency=p.budget.currency, used=p.budget.used,
                   allocated=p.budget.allocated, left=p.budget.left, percent=p.budget.percent_consumed,
                   level=p.budget.level, monthly=p.budget.period == "monthly")
        for p in view.projects if p.budget is not None
    )
    return Digest(
        client_key=client.key, client_name=view.client_name, agency=view.agency.name, contact=view.agency.contact,
        locale=view.locale, week_start=start, week_end=end, hours=sum(by_project.values(), Decimal(0)),
        hours_by_project=tuple(sorted(by_project.items(), key=lambda kv: (-kv[1], kv[0].casefold()))),
        budgets=budgets, as_of=view.as_of, url=url, expires_at=expires_at,
    )


def already_sent(store: Store, client_key: str, week_start: dt.date) -> bool:
    for ev in audit_events(store, client_key=client_key):
        if ev.action == SENT and ev.detail and json.loads(ev.detail).get("week") == week_start.isoformat():
            return True
    return False


def recipients(client: ClientConfig) -> list[str]:
    return [addr for _, addr in (email.utils.parseaddr(c) for c in client.contacts) if addr]


@dataclass(frozen=True)
class DigestResult:
    client_key: str
    week_start: dt.date | None
    sent_to: tuple[str, ...] = ()
    skipped: str | None = None  # why nothing was sent


def send_digests(
    store: Store,
    config: Config,
    *,
    now: dt.datetime,
    build_view: Callable[[ClientConfig], PortalView],
    send: Callable[[Digest, list[str]], Any],
    clients: Iterable[str] | None = None,
    dry_run: bool = False,
    force: bool = False,
) -> list[DigestResult]:
    """Send each opted-in client's digest for last week, once.

    `build_view` gives the client's PortalView (the same one the portal is rendered from);
    `send(digest, to)` composes and delivers the mail. A client without a live link or
    without contacts is reported, not mailed. `force` sends again a week already sent.
    """
    from bridge.publishing import get_link

    chosen = set(clients) if clients is not None else None
    out: list[DigestResult] = []
    for client in config.clients:
        if chosen is not None and client.key not in chosen:
            continue
        if chosen is None and not client.digest:
            continue
        to = recipients(client)
        link = get_link(store, client.key)
        if not to:
            out.append(DigestResult(client.key, None, skipped="no contacts to send it to"))
            continue
        if link is None or not link.url or (link.expires_at is not None and link.expires_at <= now):
            out.append(DigestResult(client.key, None, skipped=f"no live link yet: run `bridge publish --client {client.key}`"))
            continue
        view = build_view(client)
        digest = compose(view, client, url=link.url, expires_at=link.expires_at)
        if not force and already_sent(store, client.key, digest.week_start):
            out.append(DigestResult(client.key, digest.week_start, skipped="already sent for that week"))
            continue
        if dry_run:
            out.append(DigestResult(client.key, digest.week_start, sent_to=tuple(to), skipped="dry run"))
            continue
        try:
            send(digest, to)
        except (BridgeError, OSError) as exc:
            log.error("digest: %s: %s", client.key, exc)
            out.append(DigestResult(client.key, digest.week_start, skipped=f"not delivered: {exc}"))
            continue
        record(store, SENT, client_key=client.key, detail={"week": digest.week_start.isoformat(), "to": len(to)})
        out.append(DigestResult(client.key, digest.week_start, sent_to=tuple(to)))
    return out
