"""Budget alerts: one message per threshold crossing, never repeated, re-armed when it should be.

A project *crosses* a threshold (a client's `thresholds`, default 75/90/100 percent)
when its consumption reaches it. Each crossing is remembered in `alert_crossings` under
(client, project, threshold, period, budget):

- period is "total", or "YYYY-MM" for a monthly budget, so a new month re-arms;
- budget is the allocation it was crossed against, so a raised budget re-arms;
- the row is written after delivery, inside a store-wide lock, so a restarted process
  (or a second one) never sends it again.

When one sync jumps over several thresholds, one alert names the highest and all of them
are recorded. Alerts go to the agency (`agency.email`, the webhook) and, when the client
has `alert_client = true`, to the client's contacts. Figures are the agency's (all time,
not only what the portal publishes); the client's copy leaves out money unless that
client's portal shows rates.

Delivery is injected: `mail(to, subject, text, html)` (publishers/mail.py over SMTP in
the CLI) and `post(url, payload)` (a JSON POST retried with backoff, `post_webhook`).
"""

from __future__ import annotations

import datetime as dt
import html as _html
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from sqlmodel import select
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from bridge import metrics as m
from bridge.config import ClientConfig, Config
from bridge.errors import BridgeError, ConfigError
from bridge.models import AlertCrossing, AuditEvent, Client, Person, PortalLink, Project, Task, TimeEntry, utcnow
from bridge.overrides import apply_budget_overrides, fallback_rate
from bridge.store import Store

log = logging.getLogger(__name__)

MailFn = Callable[[list[str], str, str, str], None]
PostFn = Callable[[str, dict[str, Any]], None]
ALERTS_LOCK = "_alerts"


@dataclass(frozen=True)
class Alert:
    """One crossing to announce. `threshold` is the highest newly crossed; `crossed` all of them."""

    client_key: str
    client_name: str
    project_key: str  # "<source>:<project source id>"
    project_name: str
    threshold: int
    crossed: tuple[int, ...]
    period: str  # "total" | "YYYY-MM"
    budget: str  # the allocation, as stored in alert_crossings
    kind: str  # "hours" | "money"
    currency: str | None
    allocated: Decimal  # hours or money
    used: Decimal
    percent: Decimal
    burn_per_week: Decimal  # in the budget's unit
    burn_hours_per_week: Decimal
    burn_weeks: int
    run_out_date: dt.date | None
    resets_on: dt.date | None
    portal_url: str | None
    agency_to: tuple[str, ...]
    client_to: tuple[str, ...]
    money_for_client: bool = False

    # --- wording -------------------------------------------------------------------
    def subject(self) -> str:
        return f"Budget alert: {self.client_name} / {self.project_name} reached {self.threshold}%"

    def text(self, *, for_client: bool = False) -> str:
        # A client's copy carries money only when that client's portal shows rates.
        show_money = self.kind == "hours" or not for_client or self.money_for_client
        period = f"this month's budget ({self.period})" if self.period != "total" else "the total budget"
        lines = [f"{self.project_name} ({self.client_name}) has used {self.percent}% of {period}, crossing the {self.threshold}% threshold."]
        if show_money:
            lines.append(f"Used: {self._amount(self.used)} of {self._amount(self.allocated)}.")
        rate = self._amount(self.burn_per_week) if show_money else f"{self.burn_hours_per_week} h"
        lines.append(f"Burn rate: {rate} per week (average of the last {self.burn_weeks} weeks).")
        if self.run_out_date is not None:
            lines.append(f"Projected run-out date: {self.run_out_date.isoformat()}.")
        elif self.percent >= 100:
            lines.append("The budget is used up.")
        else:
            lines.append("No run-out date is projected at the current rate" + (f" before the budget resets on {self.resets_on.isoformat()}." if self.resets_on else "."))
        if self.portal_url:
            lines.append(f"Portal: {self.portal_url}")
        return "\n".join(lines)

    def html(self, *, for_client: bool = False) -> str:
        parts = []
        for line in self.text(for_client=for_client).splitlines():
            if line.startswith("Portal: ") and self.portal_url:
                url = _html.escape(self.portal_url, quote=True)
                parts.append(f'<p><a href="{url}">Open the portal</a></p>')
            else:
                parts.append(f"<p>{_html.escape(line)}</p>")
        return "<!doctype html><html><body>" + "".join(parts) + "</body></html>"

    def _amount(self, value: Decimal) -> str:
        if self.kind == "hours":
            return f"{value} h"
        return f"{value:,.2f} {self.currency or ''}".strip()

    def webhook_payload(self) -> dict[str, Any]:
        """Slack-compatible (`text`) plus the figures for other receivers; agency figures."""
        return {
            "text": self.subject() + "\n" + self.text(),
            "client": self.client_key, "project": self.project_key, "threshold": self.threshold,
            "crossed": list(self.crossed), "period": self.period, "percent": str(self.percent),
            "run_out_date": self.run_out_date.isoformat() if self.run_out_date else None,
            "portal_url": self.portal_url,
        }


@dataclass
class SendResult:
    alert: Alert
    delivered: list[str] = field(default_factory=list)  # "mail:agency", "mail:client", "webhook"
    errors: list[str] = field(default_factory=list)

    @property
    def recorded(self) -> bool:
        return bool(self.delivered)


# --- evaluating ----------------------------------------------------------------------------


def _budget_label(p: Project, currency: str | None) -> str:
    if p.budget_kind == "hours":
        return f"{p.budget_seconds}s"
    return f"{p.budget_money} {currency or ''}".strip()


def _project_currency(p: Project, clients: dict[tuple[str, str], Client]) -> str | None:
    if p.currency:
        return p.currency
    c = clients.get((p.source, p.client_source_id or ""))
    return c.currency if c else None


def _recipients(values: Iterable[str | None]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        if v and v.strip() and v.strip() not in out:
            out.append(v.strip())
    return tuple(out)


def evaluate_alerts(
    store: Store, config: Config, now: dt.datetime, *, clients: Iterable[str] | None = None
) -> list[Alert]:
    """The crossings not yet alerted, as of `now`. Reads the store, writes nothing."""
    today = now.astimezone(config.agency.zone).date()
    wanted = set(clients) if clients is not None else None
    out: list[Alert] = []
    for cc in config.clients:
        if wanted is not None and cc.key not in wanted:
            continue
        out.extend(_client_alerts(store, config, cc, today))
    return out


def _client_alerts(store: Store, config: Config, cc: ClientConfig, today: dt.date) -> list[Alert]:
    pairs = [(src, str(cid)) for src, ids in cc.sources.items() for cid in ids]
    if not pairs:
        return []
    with store.session() as s:
        projects: list[Project] = []
        clients: dict[tuple[str, str], Client] = {}
        for src, ids in cc.sources.items():
            sids = [str(i) for i in ids]
            projects += list(s.exec(select(Project).where(
                Project.source == src, Project.client_source_id.in_(sids), Project.is_deleted.is_(False),  # type: ignore[union-attr,attr-defined]
            )))
            for c in s.exec(select(Client).where(Client.source == src, Client.source_id.in_(sids))):  # type: ignore[attr-defined]
                clients[(c.source, c.source_id)] = c
        # the config's [[clients.budgets]] may give a project its budget or period: apply it to
        # detached rows (never flushed back), then keep the projects that have a budget
        for p in projects:
            s.expunge(p)
        apply_budget_overrides(projects, cc)
        projects = [p for p in projects if p.budget_kind in ("hours", "money") and p.budget_visible]
        if not projects:
            return []
        link = s.get(PortalLink, cc.key)
        crossings = list(s.exec(select(AlertCrossing).where(AlertCrossing.client_key == cc.key)))
        entries: dict[str, list[m.Entry]] = {}
        by_source: dict[str, list[str]] = {}
        for p in projects:
            by_source.setdefault(p.source, []).append(p.source_id)
        project_rows = {f"{p.source}:{p.source_id}": p for p in projects}
        # FreshBooks values time by service or team-member rate: both lists are small
        tasks = {(t.source, t.source_id): t for t in s.exec(select(Task).where(Task.source.in_(list(by_source))))}  # type: ignore[attr-defined]
        people = {(x.source, x.source_id): x for x in s.exec(select(Person).where(Person.source.in_(list(by_source))))}  # type: ignore[attr-defined]
        for src, pids in by_source.items():
            for e in s.exec(select(TimeEntry).where(
                TimeEntry.source == src, TimeEntry.project_source_id.in_(pids), TimeEntry.is_deleted.is_(False),  # type: ignore[union-attr,attr-defined]
            )):
                key = f"{e.source}:{e.project_source_id}"
                proj = project_rows.get(key)
                amount, rate = m.entry_value(  # valued as the portal values it
                    e, proj, tasks.get((e.source, e.task_source_id or "")), people.get((e.source, e.person_source_id or "")),
                    fallback_rate=fallback_rate(cc, proj),
                )
                entries.setdefault(key, []).append(m.Entry(
                    spent_date=e.spent_date, seconds=int(e.seconds), is_billable=e.is_billable,
                    is_running=e.is_running, is_invoiced=e.is_invoiced,
                    billable_amount=amount, billable_rate=rate, currency=e.currency, project=key,
                ))
    done = {(c.project_key, c.threshold, c.period, c.budget) for c in crossings}
    agency_to = _recipients([config.agency.email]) if config.alerts.email else ()
    client_to = _recipients(cc.contacts) if (cc.alert_client and config.alerts.email) else ()
    out = []
    for p in sorted(projects, key=lambda p: (p.source, p.source_id)):
        key = f"{p.source}:{p.source_id}"
        currency = _project_currency(p, clients)
        pe = [e if e.currency else _with_currency(e, currency) for e in entries.get(key, [])]
        use = m.budget_use(pe, kind=p.budget_kind or "", period=p.budget_period, budget_seconds=p.budget_seconds,
                           budget_money=p.budget_money, currency=currency, today=today)
        if use is None or (use.kind == "money" and not currency):
            continue
        period = today.strftime("%Y-%m") if use.period == "monthly" else "total"
        budget = _budget_label(p, currency)
        fresh = [t for t in cc.thresholds if use.percent >= t and (key, t, period, budget) not in done]
        if not fresh:
            continue
        b = m.burn(pe, today=today, weeks=cc.burn_window_weeks, kind=use.kind, currency=currency)
        projected = m.run_out_date(use.left, b.per_week, today)
        if projected is not None and use.resets_on is not None and projected >= use.resets_on:
            projected = None
        out.append(Alert(
            client_key=cc.key, client_name=cc.name, project_key=key, project_name=p.name,
            threshold=max(fresh), crossed=tuple(sorted(fresh)), period=period, budget=budget,
            kind=use.kind, currency=currency if use.kind == "money" else None,
            allocated=_q(use.allocated), used=_q(use.used), percent=use.percent,
            burn_per_week=b.per_week, burn_hours_per_week=b.hours_per_week, burn_weeks=b.weeks,
            run_out_date=projected, resets_on=use.resets_on, portal_url=link.url if link else None,
            agency_to=agency_to, client_to=client_to, money_for_client=cc.visibility.rates == "shown",
        ))
    return out


def _with_currency(e: m.Entry, currency: str | None) -> m.Entry:
    return m.Entry(**{**e.__dict__, "currency": currency})


def _q(v: Decimal) -> Decimal:
    return v.quantize(Decimal("0.01"))


# --- delivering ------------------------------------------------------------------------------


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and (exc.response.status_code == 429 or exc.response.status_code >= 500)


def post_webhook(url: str, payload: dict[str, Any], *, attempts: int = 4, wait_max: float = 30.0, timeout: float = 10.0) -> None:
    """POST `payload` as JSON; 429/5xx and transport faults are retried with backoff."""

    @retry(
        retry=retry_if_exception(_retryable), stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.5, max=wait_max), reraise=True,
    )
    def _once() -> None:
        with httpx.Client(timeout=timeout) as client:
            resp = client.post(url, json=payload)
            resp.raise_for_status()

    try:
        _once()
    except httpx.HTTPStatusError as exc:
        # The URL embeds the secret: name only the status.
        raise BridgeError(f"webhook answered HTTP {exc.response.status_code}") from None
    except httpx.TransportError as exc:
        raise BridgeError(f"webhook unreachable: {type(exc).__name__}") from None


def webhook_url(config: Config) -> str | None:
    var = config.alerts.webhook_url_env
    if not var:
        return None
    url = os.environ.get(var)
    if not url:
        raise ConfigError(f"alerts.webhook_url_env: environment variable {var} is not set or empty")
    return url


def channels_configured(config: Config) -> bool:
    """Whether any alert could reach anyone: an agency address, client contacts or a webhook."""
    mail = config.alerts.email and (bool(config.agency.email) or any(c.alert_client and c.contacts for c in config.clients))
    return mail or bool(config.alerts.webhook_url_env)


def send_alerts(
    store: Store,
    config: Config,
    alerts: Sequence[Alert],
    *,
    mail: MailFn | None = None,
    post: PostFn | None = post_webhook,
    now: dt.datetime | None = None,
) -> list[SendResult]:
    """Deliver each alert on every configured channel; record the crossing once any got through.

    An alert no channel delivered stays unrecorded, so the next evaluation tries again.
    """
    url = webhook_url(config) if post is not None else None
    results = []
    for a in alerts:
        r = SendResult(a)
        if mail is not None and a.agency_to:
            _try(r, "mail:agency", lambda: mail(list(a.agency_to), a.subject(), a.text(), a.html()))
        if mail is not None and a.client_to:
            _try(r, "mail:client", lambda: mail(list(a.client_to), a.subject(), a.text(for_client=True), a.html(for_client=True)))
        if url and post is not None:
            _try(r, "webhook", lambda: post(url, a.webhook_payload()))
        if r.recorded:
            _record(store, a, r, now or utcnow())
        elif not r.errors:
            r.errors.append("no channel configured: set agency.email with [smtp], or alerts.webhook_url_env")
        results.append(r)
    return results


def _try(result: SendResult, channel: str, fn: Callable[[], None]) -> None:
    try:
        fn()
        result.delivered.append(channel)
    except Exception as exc:  # noqa: BLE001 - one channel failing must not stop the others
        msg = str(exc) if isinstance(exc, BridgeError) else type(exc).__name__
        result.errors.append(f"{channel}: {msg}")
        log.error("alert %s %s %s%%: %s failed: %s", result.alert.client_key, result.alert.project_key, result.alert.threshold, channel, msg)


def _record(store: Store, a: Alert, r: SendResult, now: dt.datetime) -> None:
    with store.session() as s:
        for t in a.crossed:
            s.add(AlertCrossing(client_key=a.client_key, project_key=a.project_key, threshold=t,
                                period=a.period, budget=a.budget, sent_at=now))
        s.add(AuditEvent(at=now, client_key=a.client_key, action="alert_sent", object_key=a.project_key,
                         detail=json.dumps({"threshold": a.threshold, "crossed": list(a.crossed), "period": a.period,
                                            "channels": r.delivered})))
        s.commit()


def run_alerts(
    store: Store,
    config: Config,
    *,
    mail: MailFn | None,
    post: PostFn | None = post_webhook,
    now: dt.datetime | None = None,
    clients: Iterable[str] | None = None,
) -> list[SendResult]:
    """Evaluate and send under one store-wide lock, so two processes never both send."""
    from bridge.locks import source_lock

    now = now or utcnow()
    with source_lock(store, ALERTS_LOCK, wait=True):
        return send_alerts(store, config, evaluate_alerts(store, config, now, clients=clients), mail=mail, post=post, now=now)


__all__ = ["Alert", "SendResult", "evaluate_alerts", "send_alerts", "run_alerts", "post_webhook", "webhook_url"]
