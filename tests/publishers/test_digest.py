"""The weekly digest: last week's figures from the view, in the client's language, sent once
a week through a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
from decimal import Decimal

from bridge.config import parse_config
from bridge.digest import compose, send_digests
from bridge.models import PortalLink
from bridge.store import Store
from bridge.views import TimesheetRow
from publishers.digest_mail import digest_message
from publishers.mail import send_message
from tests.publishers.factory import make_view

NOW = dt.datetime(2025, 3, 20, 9, 0, tzinfo=dt.timezone.utc)  # the factory's week starts Mon 17 Mar


def row(day: int, project: str, hours: str, *, running: bool = False) -> TimesheetRow:
    return TimesheetRow(spent_date=dt.date(2025, 3, day), person="Team member A", project=project, task="Design",
                        description=None, hours=Decimal(hours), is_billable=True, is_running=running, rate=None,
                        amount=None)


def digest_view(locale: str = "en"):
    rows = (row(18, "Website", "5.00"),  # this week: not in last week's digest
            row(16, "Website", "2.50"), row(14, "Website", "4.25"), row(10, "App", "1.00"),
            row(12, "App", "0.75", running=True),  # a running timer counts nowhere until stopped
            row(9, "App", "8.00"))  # the week before last
    return dataclasses.replace(make_view(n=0), timesheet=rows, locale=locale)


def config(smtp_host: str = "127.0.0.1", port: int = 25, locale: str = "en"):
    return parse_config({
        "agency": {"name": "Northwind Studio", "contact": "Pat <pat@northwind.test>", "timezone": "Europe/Berlin"},
        "smtp": {"host": smtp_host, "port": port, "security": "none", "sender": "portal@northwind.test"},
        "clients": [{"key": "acme", "name": "Acme Robotics", "sources": {}, "contacts": ["Ann <ann@acme.test>"],
                     "digest": True, "locale": locale},
                    {"key": "globex", "name": "Globex", "sources": {}, "contacts": ["g@globex.test"]}],
    })


def test_digest_reports_last_week_only_from_the_view() -> None:
    view = digest_view()
    d = compose(view, config().client("acme"), url="https://x.test/p", expires_at=None)
    assert (d.week_start, d.week_end) == (dt.date(2025, 3, 10), dt.date(2025, 3, 16))
    # by hand: Website 2.50 + 4.25 = 6.75; App 1.00 (the running 0.75 and the 9 Mar 8.00 are out)
    assert d.hours == Decimal("7.75")
    assert d.hours_by_project == (("Website", Decimal("6.75")), ("App", Decimal("1.00")))
    # budgets: exactly the view's, none added or dropped
    assert [b.project for b in d.budgets] == [p.name for p in view.projects if p.budget is not None]


def test_german_digest_reads_german() -> None:
    d = compose(digest_view("de"), config(locale="de").client("acme"), url="https://x.test/p",
                expires_at=dt.datetime(2025, 3, 27, 9, tzinfo=dt.timezone.utc))
    msg = digest_message(config(locale="de"), d, ["ann@acme.test"])
    text = msg.get_body(("plain",)).get_content()
    assert msg["Subject"] == "Acme Robotics: Wochenübersicht, 10. März 2025 – 16. März 2025"
    assert "Stunden letzte Woche: 7,75 Std." in text and "Website: 6,75 Std." in text
    assert "Dieser Link ist gültig bis 27. März 2025." in text
    assert "Guten Tag," in text and "Hello" not in text


def test_sent_once_a_week_through_smtp(tmp_path, smtp_server) -> None:
    host, port, received = smtp_server
    cfg = config(host, port)
    store = Store(f"sqlite:///{tmp_path}/s.db")
    store.migrate()
    with store.session() as s:
        s.add(PortalLink(client_key="acme", token="t" * 32, url="https://portal.test/acme/index.html",
                         expires_at=NOW + dt.timedelta(days=3)))
        s.commit()
    view = digest_view()

    def send(digest, to):
        send_message(cfg.smtp, digest_message(cfg, digest, to))

    first = send_digests(store, cfg, now=NOW, build_view=lambda c: view, send=send)
    again = send_digests(store, cfg, now=NOW + dt.timedelta(hours=1), build_view=lambda c: view, send=send)
    assert [(r.client_key, r.sent_to) for r in first] == [("acme", ("ann@acme.test",))]  # globex did not opt in
    assert [r.skipped for r in again] == ["already sent for that week"]
    assert len(received) == 1
    msg = email.message_from_bytes(received[0].content, policy=email.policy.default)
    body = msg.get_body(("plain",)).get_content()
    assert "https://portal.test/acme/index.html" in body and "Hours last week: 7.75 h" in body
    # a client named on the command line gets one without opting in, but not without a link
    named = send_digests(store, cfg, now=NOW, build_view=lambda c: view, send=send, clients=["globex"])
    assert named[0].skipped.startswith("no live link yet")


def test_invitation_in_the_clients_language() -> None:
    from publishers.mail import invitation

    cfg = parse_config({
        "agency": {"name": "Northwind Studio", "contact": "Pat <pat@northwind.test>", "timezone": "Europe/Berlin",
                   "locale": "de"},
        "clients": [{"key": "acme", "name": "Acme Robotics", "sources": {}, "contacts": ["ann@acme.test"],
                     "passphrase": True},
                    {"key": "bleu", "name": "Bleu SA", "sources": {}, "contacts": ["b@bleu.test"], "locale": "fr"}],
    })
    expires = dt.datetime(2026, 12, 11, 11, 0, tzinfo=dt.timezone.utc)
    de = invitation(cfg, cfg.client("acme"), "https://x.test/p", expires, "ann@acme.test")
    text = de.get_body(("plain",)).get_content()
    assert de["Subject"] == "Ihr Projektportal von Northwind Studio"
    assert "Dieser Link ist gültig bis Freitag, 11. Dezember 2026, 12:00 (Europe/Berlin)." in text
    assert "Das Portal fragt nach einer Passphrase." in text and "Hello" not in text
    fr = invitation(cfg, cfg.client("bleu"), "https://x.test/p", None, "b@bleu.test")
    assert fr["Subject"] == "Votre portail de projet de Northwind Studio"
    assert "Ce lien n’expire pas." in fr.get_body(("plain",)).get_content()
