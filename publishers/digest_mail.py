"""The weekly digest as an e-mail, in the client's language (bridge/digest.py decides what
it says; this module only words and formats it)."""

from __future__ import annotations

import html
from email.message import EmailMessage

from bridge.config import Config
from bridge.digest import BudgetLine, Digest
from bridge.i18n import Lang, lang
from publishers.mail import build_message


def _level(t: Lang, level: str) -> str:
    return {
        "ok": t.gettext("On track"),
        "warning": t.gettext("Nearing budget"),
        "at_risk": t.gettext("At risk"),
        "critical": t.gettext("Almost used up"),
        "over": t.gettext("Over budget"),
    }.get(level, level)


def _amount(t: Lang, b: BudgetLine, value: object) -> str:
    return t.money(value, b.currency) if b.kind == "money" else t.hours(value, 1)  # type: ignore[arg-type]


def _budget_line(t: Lang, b: BudgetLine) -> str:
    used = t.gettext("%(used)s used of %(allocated)s (%(percent)s)", used=_amount(t, b, b.used),
                     allocated=_amount(t, b, b.allocated), percent=t.percent(b.percent))
    if b.monthly:
        used += " " + t.gettext("this month")
    return f"{b.project}: {used} · {_level(t, b.level)}"


def digest_message(config: Config, digest: Digest, to: list[str]) -> EmailMessage:
    t = lang(digest.locale)
    period = f"{t.date(digest.week_start)} – {t.date(digest.week_end)}"
    subject = t.gettext("%(client)s: weekly summary, %(period)s", client=digest.client_name, period=period)
    intro = t.gettext("Here is last week's summary of the work %(agency)s did for %(client)s (%(period)s).",
                      agency=digest.agency, client=digest.client_name, period=period)
    hours_head = t.gettext("Hours last week: %(hours)s", hours=t.hours(digest.hours))
    projects = [f"{name}: {t.hours(h)}" for name, h in digest.hours_by_project]
    budgets = [_budget_line(t, b) for b in digest.budgets]
    open_portal = t.gettext("Open your portal for the details:")
    valid = (t.gettext("This link is valid until %(date)s.", date=t.date(digest.expires_at.date()))
             if digest.expires_at else "")
    as_of = t.gettext("Figures as of %(when)s.", when=t.datetime(digest.as_of))
    ask = t.gettext("Questions? Ask %(contact)s.", contact=digest.contact) if digest.contact else ""
    text_lines = [t.gettext("Hello,"), "", intro, "", hours_head, *[f"  - {p}" for p in projects]]
    if budgets:
        text_lines += ["", t.gettext("Budgets:"), *[f"  - {b}" for b in budgets]]
    text_lines += ["", open_portal, digest.url, valid, "", as_of, ask, "", f"-- {digest.agency}"]
    text = "\n".join(line for line in text_lines if line is not None)
    e = html.escape
    body = [f"<p>{e(t.gettext('Hello,'))}</p>", f"<p>{e(intro)}</p>", f"<p><strong>{e(hours_head)}</strong></p>"]
    if projects:
        body.append("<ul>" + "".join(f"<li>{e(p)}</li>" for p in projects) + "</ul>")
    if budgets:
        body.append(f"<p>{e(t.gettext('Budgets:'))}</p><ul>" + "".join(f"<li>{e(b)}</li>" for b in budgets) + "</ul>")
    body.append(f"<p><a href=\"{e(digest.url, quote=True)}\">{e(open_portal)}</a> {e(valid)}</p>")
    body.append(f"<p>{e(as_of)} {e(ask)}</p><p>&mdash; {e(digest.agency)}</p>")
    html_body = f"<!doctype html><html lang=\"{e(t.language)}\"><body style=\"font-family:sans-serif\">" \
                + "".join(body) + "</body></html>"
    return build_message(config.smtp, to, subject, text, html_body, reply_to=config.agency.email)
