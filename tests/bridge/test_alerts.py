"""Budget alerts: once per crossing over real SMTP and a real webhook, re-armed when due."""

from __future__ import annotations

import datetime as dt
import functools
import json
import socket
import threading
from collections.abc import Iterator
from decimal import Decimal
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from bridge.alerts import evaluate_alerts, post_webhook, run_alerts, send_alerts
from bridge.config import Config, parse_config
from bridge.errors import BridgeError
from bridge.models import AlertCrossing, AuditEvent, Client, PortalLink, Project, TimeEntry
from bridge.store import Store

UTC = dt.timezone.utc
NOW = dt.datetime(2025, 3, 20, 12, 0, tzinfo=UTC)
HOUR = 3600
WEBHOOK_ENV = "CLEARHOURS_TEST_WEBHOOK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- loopback servers ------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    try:
        from aiosmtpd.controller import Controller
    except ImportError:  # pragma: no cover
        from tests.conftest import skip_or_fail

        skip_or_fail("aiosmtpd is not installed (pip install -e '.[test]')")
    inbox = Inbox()
    port = _free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    yield port, inbox
    ctl.stop()


class Hook:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail_first = 0
        self.status = 200


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hook]:
    hook = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if hook.fail_first > 0:
                hook.fail_first -= 1
                self.send_response(503)
            else:
                hook.bodies.append(body)
                self.send_response(hook.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    monkeypatch.setenv(WEBHOOK_ENV, f"http://127.0.0.1:{server.server_port}/hooks/T000/SECRET-TOKEN")
    yield hook
    server.shutdown()
    server.server_close()


# --- data ---------------------------------------------------------------------------------


def _config(smtp_port: int = 25, **client: Any) -> Config:
    c = {"key": "acme", "name": "Acme", "sources": {"h": ["10"]}, "contacts": ["pm@acme.test"]}
    c.update(client)
    return parse_config({
        "agency": {"timezone": "Europe/Berlin", "email": "ops@agency.test"},
        "sources": [{"name": "h", "kind": "harvest"}],
        "clients": [c],
        "smtp": {"host": "127.0.0.1", "port": smtp_port},
        "alerts": {"webhook_url_env": WEBHOOK_ENV},
    })


def _seed(store: Store, *, budget_hours: int = 10, period: str = "total", kind: str = "hours",
          budget_money: str | None = None, currency: str = "EUR") -> None:
    store.upsert([Client.model_validate({"source": "h", "source_id": "10", "name": "Acme", "currency": currency})])
    _project(store, budget_hours=budget_hours, period=period, kind=kind, budget_money=budget_money)


def _project(store: Store, *, budget_hours: int = 10, period: str = "total", kind: str = "hours",
             budget_money: str | None = None, stamp: dt.datetime = NOW) -> None:
    store.upsert([Project.model_validate({
        "source": "h", "source_id": "500", "client_source_id": "10", "name": "Website", "budget_kind": kind,
        "budget_period": period, "budget_seconds": budget_hours * HOUR if kind == "hours" else None,
        "budget_money": Decimal(budget_money) if budget_money else None, "updated_at": stamp,
    })])


_ids = iter(range(1, 10_000))


def _log(store: Store, hours: float, day: dt.date = dt.date(2025, 3, 18), amount: str | None = None) -> None:
    i = next(_ids)
    store.upsert([TimeEntry.model_validate({
        "source": "h", "source_id": f"e{i}", "client_source_id": "10", "project_source_id": "500",
        "spent_date": day, "seconds": int(hours * HOUR), "is_billable": True,
        "billable_amount": Decimal(amount) if amount else None, "currency": "EUR",
        "updated_at": NOW,
    })])


def _crossings(store: Store) -> list[tuple[int, str, str]]:
    with store.session() as s:
        from sqlmodel import select

        return sorted((c.threshold, c.period, c.budget) for c in s.exec(select(AlertCrossing)))


# --- evaluating ---------------------------------------------------------------------------


def test_crossing_says_what_burn_and_run_out_and_links_the_portal(store: Store) -> None:
    _seed(store)
    _log(store, 6, dt.date(2025, 3, 3))
    _log(store, 2, dt.date(2025, 3, 18))  # 8 of 10 h: 80 %
    with store.session() as s:
        s.add(PortalLink(client_key="acme", token="tok", url="https://portal.test/tok/index.html?sig=1"))
        s.commit()
    [a] = evaluate_alerts(store, _config(), NOW)
    assert (a.threshold, a.crossed, a.period, a.percent) == (75, (75,), "total", Decimal("80.0"))
    assert a.burn_per_week == Decimal("2.00")  # 8 h over the 4-week window
    # 2 h left at 2/7 h a day: the 7th day ends with nothing, the 6th with 2/7 h
    assert a.run_out_date == dt.date(2025, 3, 26)
    text = a.text()
    assert "80.0% of the total budget" in text and "75% threshold" in text
    assert "Used: 8.00 h of 10.00 h; 2.00 h left." in text
    assert "Burn rate: 2.00 h per week" in text
    assert "At the current pace 26 Mar 2025 is the last day with budget left." in text  # dates as the portal prints them
    assert "Status on the portal: Nearing budget." in text
    assert "Portal: https://portal.test/tok/index.html?sig=1" in text
    assert a.agency_to == ("ops@agency.test",) and a.client_to == ()


def test_below_the_first_threshold_nothing(store: Store) -> None:
    _seed(store)
    _log(store, 7)
    assert evaluate_alerts(store, _config(), NOW) == []


def test_a_jump_over_several_thresholds_is_one_alert_for_the_highest(store: Store) -> None:
    _seed(store)
    _log(store, 9.5)
    [a] = evaluate_alerts(store, _config(), NOW)
    assert a.threshold == 90 and a.crossed == (75, 90)


def test_deleted_entries_and_other_clients_do_not_count(store: Store) -> None:
    _seed(store)
    _log(store, 5)
    store.upsert([TimeEntry.model_validate({
        "source": "h", "source_id": "gone", "client_source_id": "10", "project_source_id": "500",
        "spent_date": dt.date(2025, 3, 18), "seconds": 5 * HOUR, "updated_at": NOW})])
    store.delete_ids("h", TimeEntry, ["gone"])
    store.upsert([Project.model_validate({"source": "h", "source_id": "501", "client_source_id": "99", "name": "Other",
                                          "budget_kind": "hours", "budget_period": "total", "budget_seconds": HOUR})])
    store.upsert([TimeEntry.model_validate({
        "source": "h", "source_id": "other", "client_source_id": "99", "project_source_id": "501",
        "spent_date": dt.date(2025, 3, 18), "seconds": 5 * HOUR, "updated_at": NOW})])
    assert evaluate_alerts(store, _config(), NOW) == []


def test_client_copy_says_what_the_portal_shows_money_budgets_included(store: Store) -> None:
    # the portal shows money budgets as totals whatever the rates policy, so the mail does too
    _seed(store, kind="money", budget_money="1000")
    _log(store, 8, amount="800")
    [a] = evaluate_alerts(store, _config(alert_client=True), NOW)
    assert a.text() == a.text(for_client=True)
    assert "Used: €800.00 of €1,000.00; €200.00 left." in a.text(for_client=True)  # money as the portal prints it
    assert "Burn rate: €200.00 per week" in a.text()


def _internal(store: Store, hours: float, day: dt.date = dt.date(2025, 3, 18)) -> None:
    store.upsert([TimeEntry.model_validate({
        "source": "h", "source_id": f"i{next(_ids)}", "client_source_id": "10", "project_source_id": "500",
        "spent_date": day, "seconds": int(hours * HOUR), "is_billable": True, "notes": "[internal] refactor",
        "updated_at": NOW,
    })])


def test_hidden_work_counts_as_the_tracker_counts_and_the_mail_says_so_as_the_portal_does(store: Store) -> None:
    from bridge.views import build_portal_view

    _seed(store, budget_hours=40)
    _log(store, 5.6)
    _internal(store, 26.2)  # 31.8 of 40 h: 79.5 %
    cfg = _config(alert_client=True)
    [a] = evaluate_alerts(store, cfg, NOW)
    assert (a.used, a.allocated, a.percent) == (Decimal("31.80"), Decimal("40.00"), Decimal("79.5"))
    assert "Includes 26.2 h of internal work not itemized on the portal." in a.text(for_client=True)
    view = build_portal_view(store, cfg, cfg.clients[0], now=NOW, previous_snapshot=None)
    b = view.projects[0].budget
    assert b is not None
    assert (b.used, b.allocated, b.percent_consumed, b.left) == (a.used, a.allocated, a.percent, a.left)
    assert b.unlisted_note == "Includes 26.2 h of internal work not itemized below."
    assert view.total_hours == Decimal("5.60")  # the timesheet lists only the published 5.6 h
    # the other rule, on request: budgets count the published work only, alerts too
    published = _config(alert_client=True, budget_basis="published")
    assert evaluate_alerts(store, published, NOW) == []  # 5.6 of 40 h
    pv = build_portal_view(store, published, published.clients[0], now=NOW, previous_snapshot=None)
    assert pv.projects[0].budget.used == Decimal("5.60") and pv.projects[0].budget.unlisted_note is None  # type: ignore[union-attr]


def test_one_mail_per_client_however_many_sources_cross(store: Store) -> None:
    cfg = parse_config({
        "agency": {"timezone": "Europe/Berlin", "email": "ops@agency.test"},
        "sources": [{"name": "h", "kind": "harvest"}, {"name": "p", "kind": "productive"}],
        "clients": [{"key": "acme", "name": "Acme", "sources": {"h": ["10"], "p": ["70"]},
                     "contacts": ["pm@acme.test"], "alert_client": True}],
    })
    _seed(store)
    _log(store, 8)
    store.upsert([Project.model_validate({"source": "p", "source_id": "900", "client_source_id": "70", "name": "App",
                                          "budget_kind": "hours", "budget_period": "total", "budget_seconds": 4 * HOUR})])
    store.upsert([TimeEntry.model_validate({"source": "p", "source_id": "pe1", "client_source_id": "70",
                                            "project_source_id": "900", "spent_date": dt.date(2025, 3, 18),
                                            "seconds": 4 * HOUR, "is_billable": True})])
    sent: list[tuple[list[str], str, str]] = []
    results = run_alerts(store, cfg, mail=lambda to, subject, text, html: sent.append((to, subject, text)),
                         post=None, now=NOW)
    assert sorted((r.alert.project_name, r.alert.threshold) for r in results) == [("App", 100), ("Website", 75)]
    assert [to for to, _, _ in sent] == [["ops@agency.test"], ["pm@acme.test"]]
    subject, text = sent[1][1], sent[1][2]
    assert subject == "Budget alert: Acme: 2 budgets crossed a threshold"
    assert "App (Acme) has used 100.0%" in text and "Website (Acme) has used 80.0%" in text
    assert sent[0][2] == text  # the agency reads what the client reads
    assert run_alerts(store, cfg, mail=lambda *a: sent.append(a), post=None, now=NOW) == []


# --- delivering ----------------------------------------------------------------------------


def _mailer(cfg: Config) -> Any:
    from publishers.mail import send_mail

    return lambda to, subject, text, html: send_mail(cfg.smtp, to, subject, text, html)


def _body(msg: Message) -> str:
    part = msg.get_body(preferencelist=("plain",)) if hasattr(msg, "get_body") else msg
    return part.get_payload(decode=True).decode() if part is not None else ""


def test_once_per_crossing_across_restarts_and_rearmed_by_a_raised_budget(
    tmp_path: Path, smtp: tuple[int, Inbox], webhook: Hook
) -> None:
    port, inbox = smtp
    cfg = _config(port, alert_client=True)
    url = f"sqlite:///{tmp_path / 'a.db'}"
    store = Store(url)
    store.migrate()
    _seed(store)
    _log(store, 8)
    post = functools.partial(post_webhook, wait_max=0.05)
    results = run_alerts(store, cfg, mail=_mailer(cfg), post=post, now=NOW)
    assert [r.delivered for r in results] == [["mail:agency", "mail:client", "webhook"]]
    assert sorted(rcpt[0] for rcpt, _ in inbox.messages) == ["ops@agency.test", "pm@acme.test"]
    assert all("reached 75%" in m["Subject"] for _, m in inbox.messages)
    assert len(webhook.bodies) == 1 and "reached 75%" in webhook.bodies[0]["text"]
    assert _crossings(store) == [(75, "total", f"{10 * HOUR}s")]

    # a restart: a new Store object on the same database sends nothing again
    store.close()
    store = Store(url)
    assert run_alerts(store, cfg, mail=_mailer(cfg), post=post, now=NOW + dt.timedelta(minutes=5)) == []
    assert len(inbox.messages) == 2 and len(webhook.bodies) == 1

    # the next threshold is a new crossing
    _log(store, 1.5)
    [r] = run_alerts(store, cfg, mail=_mailer(cfg), post=post, now=NOW)
    assert r.alert.threshold == 90 and len(webhook.bodies) == 2

    # the budget is raised to 20 h (9.5 h used: 47.5 %): nothing; past 75 % of 20 h: alerted again
    _project(store, budget_hours=20, stamp=NOW + dt.timedelta(hours=1))
    assert run_alerts(store, cfg, mail=_mailer(cfg), post=post, now=NOW) == []
    _log(store, 6)
    [r] = run_alerts(store, cfg, mail=_mailer(cfg), post=post, now=NOW)
    assert (r.alert.threshold, r.alert.budget) == (75, f"{20 * HOUR}s")
    assert len(webhook.bodies) == 3 and len(inbox.messages) == 6
    with store.session() as s:
        from sqlmodel import select

        assert len(list(s.exec(select(AuditEvent).where(AuditEvent.action == "alert_sent")))) == 3
    store.close()


def test_monthly_budget_rearms_in_a_new_month(store: Store) -> None:
    _seed(store, period="monthly")
    _log(store, 8, dt.date(2025, 3, 10))
    sent: list[str] = []
    mail = lambda to, subject, text, html: sent.append(subject)  # noqa: E731
    [r] = run_alerts(store, _config(), mail=mail, post=None, now=NOW)
    assert r.alert.period == "2025-03"
    assert run_alerts(store, _config(), mail=mail, post=None, now=NOW) == []
    april = dt.datetime(2025, 4, 8, 12, 0, tzinfo=UTC)
    assert run_alerts(store, _config(), mail=mail, post=None, now=april) == []  # April starts at 0 h
    _log(store, 7.5, dt.date(2025, 4, 7))
    [r] = run_alerts(store, _config(), mail=mail, post=None, now=april)
    assert (r.alert.period, r.alert.threshold) == ("2025-04", 75)
    assert len(sent) == 2


def test_webhook_is_retried_after_a_5xx(store: Store, webhook: Hook) -> None:
    _seed(store)
    _log(store, 8)
    webhook.fail_first = 2
    [r] = run_alerts(store, _config(), mail=None, post=functools.partial(post_webhook, wait_max=0.05), now=NOW)
    assert r.delivered == ["webhook"] and len(webhook.bodies) == 1


def test_an_alert_no_channel_delivered_is_kept_for_the_next_run_and_errors_hide_the_url(
    store: Store, webhook: Hook
) -> None:
    _seed(store)
    _log(store, 8)
    webhook.status = 404

    def broken_mail(*_: Any) -> None:
        raise BridgeError("sending mail through 127.0.0.1:1 failed: ConnectionRefusedError")

    [r] = run_alerts(store, _config(), mail=broken_mail, post=functools.partial(post_webhook, wait_max=0.05), now=NOW)
    assert r.delivered == [] and len(r.errors) == 2
    assert "HTTP 404" in " ".join(r.errors) and "SECRET-TOKEN" not in " ".join(r.errors)
    assert _crossings(store) == []
    assert len(evaluate_alerts(store, _config(), NOW)) == 1


def test_send_without_any_channel_reports_it(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(store)
    _log(store, 8)
    cfg = parse_config({"sources": [{"name": "h", "kind": "harvest"}],
                        "clients": [{"key": "acme", "name": "Acme", "sources": {"h": ["10"]}}]})
    [a] = evaluate_alerts(store, cfg, NOW)
    [r] = send_alerts(store, cfg, [a], mail=None, post=None, now=NOW)
    assert not r.recorded and "no channel configured" in r.errors[0]


def test_cli_dry_run_prints_without_sending_then_alerts_sends_once(
    tmp_path: Path, smtp: tuple[int, Inbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from bridge.cli import cli

    port, inbox = smtp
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    store = Store(db)
    store.migrate()
    _seed(store)
    _log(store, 8, dt.date.today() - dt.timedelta(days=1))
    cfg = tmp_path / "bridge.toml"
    cfg.write_text(
        f'[store]\nurl = "{db}"\n[agency]\nemail = "ops@agency.test"\n[smtp]\nhost = "127.0.0.1"\nport = {port}\n'
        '[[sources]]\nname = "h"\nkind = "harvest"\n'
        '[[clients]]\nkey = "acme"\nname = "Acme"\nsources = { h = ["10"] }\n'
    )
    runner = CliRunner()
    dry = runner.invoke(cli, ["-c", str(cfg), "alerts", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "To: ops@agency.test" in dry.output and "Subject: Budget alert: Acme / Website reached 75%" in dry.output
    assert inbox.messages == [] and _crossings(store) == []
    sent = runner.invoke(cli, ["-c", str(cfg), "alerts"])
    assert sent.exit_code == 0, sent.output
    assert "acme / Website: 75% - sent via mail:agency" in sent.output
    assert len(inbox.messages) == 1
    again = runner.invoke(cli, ["-c", str(cfg), "alerts", "--dry-run"])
    assert "No budget threshold newly crossed." in again.output
    store.close()


def test_a_german_client_is_alerted_in_german(store: Store) -> None:
    """The alert speaks the client's language, with the portal's German formats."""
    _seed(store)
    _log(store, 8)
    [a] = evaluate_alerts(store, _config(alert_client=True, locale="de"), NOW)
    text = a.text(for_client=True)
    assert a.subject() == "Budgetwarnung: Acme / Website hat 75\u00a0% erreicht"  # CLDR: a no-break space before %
    assert "Verbraucht: 8,00 Std. von 10,00 Std.; 2,00 Std. übrig." in text
    assert "Status im Portal: Budget bald erreicht." in text and "Used:" not in text
