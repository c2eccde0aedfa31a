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
has `alert_client = true`, to the client's contacts.

Every figure in an alert is the portal's own (bridge/figures.py): the same budget use,
left, burn, projection and status, counted on the client's `budget_basis`, with the same
note on work not itemized. Agency and client copies therefore say the same thing, and no
mail carries a figure the portal does not show. All crossings of one client found in one
evaluation go out as one mail per recipient, however many sources the client combines.

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

from bridge.config import Config
from bridge.errors import BridgeError, ConfigError
from bridge.figures import client_figures, level_name, q, unlisted_sentence
from bridge.i18n import Lang, lang
from bridge.models import AlertCrossing, AuditEvent, PortalLink, utcnow
from bridge.store import Store

log = logging.getLogger(__name__)

MailFn = Callable[[list[str], str, str, str], None]
PostFn = Callable[[str, dict[str, Any]], None]
ALERTS_LOCK = "_alerts"


@dataclass(frozen=True)
class Alert:
    """One crossing to announce. `threshold` is the highest newly crossed; `crossed` all of them.

    Every figure is the portal's, rounded as the portal rounds it."""

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
    left: Decimal = Decimal(0)
    level: str = "ok"
    unlisted_note: str | None = None  # "Includes 26.2 h of internal work not itemized on the portal."
    at_risk: bool = False
    ends_on: dt.date | None = None
    locale: str = "en"  # the client's: agency and client read the same words

    @property
    def t(self) -> Lang:
        return lang(self.locale)

    # --- wording -------------------------------------------------------------------
    def subject(self) -> str:
        return self.t.gettext("Budget alert: %(client)s / %(project)s reached %(percent)s", client=self.client_name,
                              project=self.project_name, percent=self.t.percent(self.threshold, 0))

    def lines(self) -> list[str]:
        """The figures, in the portal's words and the client's language (no link)."""
        t = self.t
        values = {"project": self.project_name, "client": self.client_name, "percent": t.percent(self.percent),
                  "threshold": t.percent(self.threshold, 0), "month": self.period}
        out = [t.gettext("%(project)s (%(client)s) has used %(percent)s of the total budget, crossing the %(threshold)s threshold.", **values)
               if self.period == "total" else
               t.gettext("%(project)s (%(client)s) has used %(percent)s of this month's budget (%(month)s), crossing the %(threshold)s threshold.", **values)]
        used, allocated = self._amount(self.used), self._amount(self.allocated)
        if self.left < 0:
            out.append(t.gettext("Used: %(used)s of %(allocated)s; over budget by %(over)s.", used=used, allocated=allocated,
                                 over=self._amount(-self.left)))
        else:
            out.append(t.gettext("Used: %(used)s of %(allocated)s; %(left)s left.", used=used, allocated=allocated,
                                 left=self._amount(self.left)))
        if self.unlisted_note:
            out.append(self.unlisted_note)
        out.append(t.ngettext("Burn rate: %(amount)s per week (the last week).",
                              "Burn rate: %(amount)s per week (average of the last %(num)s weeks).", self.burn_weeks,
                              amount=self._amount(self.burn_per_week)))
        if self.run_out_date is not None:
            day = t.date(self.run_out_date)
            if self.at_risk and self.resets_on is not None:
                out.append(t.gettext("At the current pace %(date)s is the last day with budget left, before the budget resets on %(reset)s.",
                                     date=day, reset=t.date(self.resets_on)))
            elif self.ends_on is not None and self.run_out_date < self.ends_on:
                out.append(t.gettext("At the current pace %(date)s is the last day with budget left, before the project ends on %(end)s.",
                                     date=day, end=t.date(self.ends_on)))
            else:
                out.append(t.gettext("At the current pace %(date)s is the last day with budget left.", date=day))
        elif self.left <= 0:
            out.append(t.gettext("The budget is used up."))
        elif self.resets_on:
            out.append(t.gettext("No run-out is projected at the current pace before the budget resets on %(reset)s.",
                                 reset=t.date(self.resets_on)))
        else:
            out.append(t.gettext("No run-out is projected at the current pace."))
        out.append(t.gettext("Status on the portal: %(status)s.", status=level_name(self.level, t)))
        return out

    def text(self, *, for_client: bool = False) -> str:
        # Agency and client read the same figures: the portal's (for_client is kept for callers).
        lines = self.lines()
        if self.portal_url:
            lines.append(self.t.gettext("Portal: %(url)s", url=self.portal_url))
        return "\n".join(lines)

    def html(self, *, for_client: bool = False) -> str:
        return _html_mail(self.text(for_client=for_client), self.portal_url, self.t)

    def _amount(self, value: Decimal) -> str:
        if self.kind == "hours":
            return self.t.hours(value)
        return self.t.money(value, self.currency)

    def webhook_payload(self) -> dict[str, Any]:
        """Slack-compatible (`text`) plus the figures for other receivers."""
        return {
            "text": self.subject() + "\n" + self.text(),
            "client": self.client_key, "project": self.project_key, "threshold": self.threshold,
            "crossed": list(self.crossed), "period": self.period, "percent": str(self.percent),
            "run_out_date": self.run_out_date.isoformat() if self.run_out_date else None,
            "level": self.level, "portal_url": self.portal_url,
        }


def _html_mail(text: str, portal_url: str | None, t: Lang | None = None) -> str:
    t = t or lang("en")
    parts = []
    portal_line = t.gettext("Portal: %(url)s", url=portal_url) if portal_url else None
    for line in text.splitlines():
        if portal_line is not None and line == portal_line:
            url = _html.escape(portal_url or "", quote=True)
            parts.append(f'<p><a href="{url}">{_html.escape(t.gettext("Open the portal"))}</a></p>')
        elif not line:
            parts.append("<hr>")
        else:
            parts.append(f"<p>{_html.escape(line)}</p>")
    return "<!doctype html><html><body>" + "".join(parts) + "</body></html>"


def mail_for(alerts: Sequence[Alert]) -> tuple[str, str, str]:
    """(subject, text, html) of the one mail that carries all of one client's new crossings."""
    first = alerts[0]
    if len(alerts) == 1:
        return first.subject(), first.text(), first.html()
    t = first.t
    subject = t.gettext("Budget alert: %(client)s: %(num)s budgets crossed a threshold", client=first.client_name,
                        num=len(alerts))
    blocks = ["\n".join(a.lines()) for a in alerts]
    text = "\n\n".join(blocks) + ("\n\n" + t.gettext("Portal: %(url)s", url=first.portal_url) if first.portal_url else "")
    return subject, text, _html_mail(text, first.portal_url, t)


@dataclass
class SendResult:
    alert: Alert
    delivered: list[str] = field(default_factory=list)  # "mail:agency", "mail:client", "webhook"
    errors: list[str] = field(default_factory=list)

    @property
    def recorded(self) -> bool:
        return bool(self.delivered)


# --- evaluating ----------------------------------------------------------------------------


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
    wanted = set(clients) if clients is not None else None
    out: list[Alert] = []
    for cc in config.clients:
        if wanted is not None and cc.key not in wanted:
            continue
        if not any(cc.sources.values()):
            continue
        out.extend(_client_alerts(store, config, cc, now))
    return out


def _client_alerts(store: Store, config: Config, cc: Any, now: dt.datetime) -> list[Alert]:
    fig = client_figures(store, config, cc, now)
    t = lang(config.locale_of(cc))
    budgets = [pf for pf in fig.projects if pf.budget is not None]
    if not budgets:
        return []
    with store.session() as s:
        link = s.get(PortalLink, cc.key)
        crossings = list(s.exec(select(AlertCrossing).where(AlertCrossing.client_key == cc.key)))
    done = {(c.project_key, c.threshold, c.period, c.budget) for c in crossings}
    agency_to = _recipients([config.agency.email]) if config.alerts.email else ()
    client_to = _recipients(cc.contacts) if (cc.alert_client and config.alerts.email) else ()
    out = []
    for pf in sorted(budgets, key=lambda p: p.key):
        b = pf.budget
        assert b is not None
        period = fig.today.strftime("%Y-%m") if b.period == "monthly" else "total"
        fresh = [t for t in cc.thresholds if b.percent >= t and (pf.key, t, period, b.allocation_key) not in done]
        if not fresh:
            continue
        out.append(Alert(
            client_key=cc.key, client_name=cc.name, project_key=pf.key, project_name=pf.project.name,
            threshold=max(fresh), crossed=tuple(sorted(fresh)), period=period, budget=b.allocation_key,
            kind=b.kind, currency=b.currency, allocated=q(b.allocated), used=q(b.used), percent=b.percent,
            burn_per_week=b.burn.per_week, burn_hours_per_week=b.burn.hours_per_week, burn_weeks=b.burn.weeks,
            run_out_date=b.projected_run_out, resets_on=b.resets_on, portal_url=link.url if link else None,
            agency_to=agency_to, client_to=client_to, left=q(b.left), level=b.level,
            unlisted_note=unlisted_sentence(b, "on the portal", t), at_risk=b.at_risk, ends_on=pf.project.ends_on,
            locale=str(t.locale),
        ))
    return out


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
    mail = config.alerts.email and config.smtp.configured and (
        bool(config.agency.email) or any(c.alert_client and c.contacts for c in config.clients))
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
    """Deliver the alerts; record each crossing once any channel got it through.

    One client's alerts travel together: one mail to the agency and one to the client's
    contacts, however many projects (and sources) crossed. The webhook gets one post per
    crossing. An alert no channel delivered stays unrecorded, so the next evaluation
    tries again.
    """
    url = webhook_url(config) if post is not None else None
    results: list[SendResult] = []
    groups: dict[str, list[Alert]] = {}
    for a in alerts:
        groups.setdefault(a.client_key, []).append(a)
    for group in groups.values():
        rs = [SendResult(a) for a in group]
        subject, text, html = mail_for(group)
        first = group[0]
        if mail is not None and first.agency_to:
            _try_all(rs, "mail:agency", lambda: mail(list(first.agency_to), subject, text, html))
        if mail is not None and first.client_to:
            _try_all(rs, "mail:client", lambda: mail(list(first.client_to), subject, text, html))
        for r in rs:
            if url and post is not None:
                _try(r, "webhook", lambda: post(url, r.alert.webhook_payload()))
            if r.recorded:
                _record(store, r.alert, r, now or utcnow())
            elif not r.errors:
                r.errors.append("no channel configured: set agency.email with [smtp], or alerts.webhook_url_env")
        results.extend(rs)
    return results


def _try_all(results: list[SendResult], channel: str, fn: Callable[[], None]) -> None:
    """One delivery shared by several alerts: each records its outcome."""
    probe = SendResult(results[0].alert)
    _try(probe, channel, fn)
    for r in results:
        r.delivered += probe.delivered
        r.errors += probe.errors


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


__all__ = ["Alert", "SendResult", "evaluate_alerts", "post_webhook", "run_alerts", "send_alerts", "webhook_url"]
