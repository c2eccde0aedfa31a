"""E-mail: a generic sender (invitations, alerts) and the portal invitation itself.

SMTP host, port and security (none, STARTTLS, implicit TLS) come from `[smtp]`; the user
name and password come from the environment variables it names, never from the file.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from bridge.config import ClientConfig, Config, SmtpConfig
from bridge.errors import ConfigError, PublishError
from bridge.i18n import Lang, lang

EN = lang("en")


def build_message(smtp: SmtpConfig, to: Sequence[str], subject: str, text: str, html_body: str | None = None,
                  *, reply_to: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=smtp.sender.rsplit("@", 1)[-1].strip("> ") or None)
    if reply_to:
        msg["Reply-To"] = reply_to
    msg.set_content(text)
    if html_body is not None:
        msg.add_alternative(html_body, subtype="html")
    return msg


def _credentials(smtp: SmtpConfig) -> tuple[str, str] | None:
    if not smtp.user_env:
        return None
    user = os.environ.get(smtp.user_env, "")
    password = os.environ.get(smtp.password_env, "") if smtp.password_env else ""
    if not user or (smtp.password_env and not password):
        missing = smtp.user_env if not user else smtp.password_env
        raise ConfigError(f"smtp: environment variable {missing} is not set or empty")
    return user, password


def send_message(smtp: SmtpConfig, msg: EmailMessage, *, timeout: float = 30.0) -> None:
    """Deliver one message; errors name the server, never the credentials."""
    if not smtp.host:
        raise ConfigError("mail is not set up: set [smtp] host (and port, security, user_env/password_env) "
                          "in the config, then check it with `bridge mail --test YOUR@ADDRESS`")
    creds = _credentials(smtp)
    context = ssl.create_default_context()
    try:
        if smtp.security == "tls":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=context)
        else:
            conn = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        with conn:
            if smtp.security == "starttls":
                conn.starttls(context=context)
            if creds:
                conn.login(*creds)
            conn.send_message(msg)
    except smtplib.SMTPAuthenticationError:
        raise PublishError(f"SMTP server {smtp.host}:{smtp.port} refused the login (check {smtp.user_env})") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise PublishError(f"sending mail through {smtp.host}:{smtp.port} failed: {exc.__class__.__name__}") from None


def send_mail(smtp: SmtpConfig, to: Sequence[str], subject: str, text: str, html_body: str | None = None) -> EmailMessage:
    """Build and send a plain-text (+ optional HTML) message; returns what was sent."""
    msg = build_message(smtp, to, subject, text, html_body)
    send_message(smtp, msg)
    return msg


# --- the invitation ------------------------------------------------------------------------


def portal_contents(client: ClientConfig, t: Lang = EN) -> list[str]:
    """What this client's portal shows, in plain words, from its visibility settings."""
    v = client.visibility
    items = [t.gettext("hours worked on your projects, by week and by project"),
             t.gettext("budget used and remaining, with a projection of when it runs out")]
    if v.descriptions == "summary":
        items.append(t.gettext("what the time was spent on (summarised)"))
    elif v.descriptions != "hidden":
        items.append(t.gettext("what the time was spent on"))
    if v.rates == "shown":
        items.append(t.gettext("rates and amounts"))
    if v.invoices == "shown":
        items.append(t.gettext("invoices and what is still due"))
    items.append(t.gettext("downloads of the same figures as CSV, Excel and PDF"))
    return items


def _when(at: dt.datetime | None, config: Config, t: Lang = EN) -> str:
    if at is None:
        return t.gettext("This link does not expire.")
    local = at.astimezone(config.agency.zone)
    clock = local.strftime("%H:%M")
    return t.gettext("This link is valid until %(date)s, %(time)s (%(zone)s).", date=t.long_date(local.date()),
                     time=clock, zone=config.agency.timezone)


def passphrase_note(t: Lang = EN) -> str:
    # Never the passphrase itself: a mail that carries both would make it pointless.
    return t.gettext("The portal asks for a passphrase. It is not in this e-mail: we send it to you separately, "
                     "by phone or another message.")


PASSPHRASE_NOTE = passphrase_note()


def send_test_message(config: Config, to: str) -> EmailMessage:
    """`bridge mail --test`: a short message proving [smtp] delivers, sent now."""
    text = (f"This is a test message from the clearhours bridge of {config.agency.name}.\n\n"
            f"It went through {config.smtp.host}:{config.smtp.port} ({config.smtp.security}) from "
            f"{config.smtp.sender}. Invitations and budget alerts will arrive the same way.\n")
    return send_mail(config.smtp, [to], f"clearhours: test message from {config.agency.name}", text)


def invitation(config: Config, client: ClientConfig, url: str, expires_at: dt.datetime | None, to: str) -> EmailMessage:
    """The invitation mail, in the client's language: link, expiry, what the portal shows, whom to ask."""
    t = lang(config.locale_of(client))
    agency = config.agency
    contact = agency.contact or agency.email or agency.name
    subject = t.gettext("Your project portal from %(agency)s", agency=agency.name)
    shows = portal_contents(client, t)
    set_up = t.gettext("%(agency)s has set up a private portal for %(client)s.", agency=agency.name, client=client.name)
    valid = _when(expires_at, config, t) + " " + t.gettext(
        "Please don't forward it: anyone with the link can open the portal.")
    ask = t.gettext("Questions? Ask %(contact)s.", contact=contact)
    text = "\n".join([
        t.gettext("Hello,"),
        "",
        set_up + " " + t.gettext("Open it here:"),
        "",
        url,
        "",
        valid,
        *(["", passphrase_note(t)] if client.passphrase else []),
        "",
        t.gettext("The portal shows:"),
        *[f"  - {item}" for item in shows],
        "",
        ask,
        "",
        f"-- {agency.name}",
    ])
    e = html.escape
    html_body = (
        f"<!doctype html><html lang=\"{e(t.language)}\"><body style=\"font-family:sans-serif\">"
        f"<p>{e(t.gettext('Hello,'))}</p><p>{e(set_up)}</p>"
        f"<p><a href=\"{e(url, quote=True)}\">{e(t.gettext('Open your portal'))}</a></p>"
        f"<p>{e(valid)}</p>"
        + (f"<p><strong>{e(passphrase_note(t))}</strong></p>" if client.passphrase else "") +
        f"<p>{e(t.gettext('The portal shows:'))}</p><ul>" + "".join(f"<li>{e(i)}</li>" for i in shows) + "</ul>"
        f"<p>{e(ask)}</p><p>&mdash; {e(agency.name)}</p></body></html>"
    )
    return build_message(config.smtp, [to], subject, text, html_body, reply_to=agency.email)
