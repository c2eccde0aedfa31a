"""A valid Harvest token of a non-admin user, end to end through the sandbox.

Recorded from Harvest: `/users/me` answers 200 with `is_admin: false`, `can_see_rates:
false`, while `/clients` answers 403 `{"message": "Not authorized!"}`. The token works: the
sync keeps what it may read, names what it may not (and the role it needs), and `bridge
check` says so before any sync.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.config import parse_config
from bridge.connector import Context
from bridge.http import RetryPolicy
from bridge.models import TimeEntry
from bridge.store import Store
from bridge.sync import sync_source
from connectors import build_connector
from connectors.sandbox import Sandbox, generate_agency
from connectors.sandbox.demo import source_block
from connectors.sandbox.harvest import HarvestState
from tests.onboarding.conftest import write_config

TODAY = dt.date(2025, 3, 20)
MEMBER_TOKEN = HarvestState.member_token


@pytest.fixture
def box() -> Iterator[Sandbox]:
    with Sandbox(generate_agency(seed=7, today=TODAY, entries=150), rate_limits=False) as sandbox:
        yield sandbox


def test_a_member_token_syncs_what_it_may_and_names_what_it_may_not(
        box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block, env = source_block("harvest", box.url("harvest"))
    for var in env:
        monkeypatch.setenv(var, MEMBER_TOKEN)
    config = parse_config({"agency": {"timezone": box.agency.timezone}, "sources": [block]})
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    store.migrate()
    conn = build_connector(config.sources[0], tz=config.agency.zone, retry=RetryPolicy(attempts=2, sleep=lambda s: None))
    try:
        report = sync_source(conn, store, config.sources[0], ctx=Context(source="harvest", tz=config.agency.zone, today=TODAY))
    finally:
        conn.close()
    assert report.status == "ok", report.error
    assert set(report.not_permitted) == {"clients", "projects", "people", "tasks", "task_assignments", "invoices"}
    assert "payments" not in report.not_permitted  # nothing to ask: no invoices were readable
    assert "Manager with permission to create and edit invoices" in report.not_permitted["invoices"]
    assert MEMBER_TOKEN not in (report.error or "")
    counts = store.counts("harvest")
    assert counts["time_entries"] == len(box.agency.entries) and counts["clients"] == 0
    with store.session() as s:
        from sqlmodel import select

        entries = list(s.exec(select(TimeEntry)))
    # the entries keep their client and project ids (they come on the entry), never a rate
    assert all(e.client_source_id and e.project_source_id for e in entries)
    assert all(e.billable_rate is None and e.billable_amount is None for e in entries)
    assert store.cursor("harvest", "clients") is None


def test_bridge_check_reports_who_the_token_is_rates_and_what_it_may_not_read(
        box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = write_config(box, tmp_path, providers=("harvest",), monkeypatch=monkeypatch)
    monkeypatch.setenv("HARVEST_TOKEN", MEMBER_TOKEN)
    result = CliRunner().invoke(cli, ["-c", str(conf), "check"])
    out = result.output
    assert result.exit_code == 0, out  # the token works; some resources are not permitted
    assert "harvest: OK" in out
    assert "is_admin=False, can_see_rates=False, access_roles=member" in out
    assert "rates and money amounts: NOT visible" in out
    assert "may read: time_entries" in out
    assert "may NOT read clients: in Harvest, listing clients needs an Administrator, or a Manager with permission" in out
    assert MEMBER_TOKEN not in out


def test_bridge_check_with_an_admin_token_says_rates_are_visible(
        box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = write_config(box, tmp_path, providers=("harvest", "productive", "freshbooks"), monkeypatch=monkeypatch)
    result = CliRunner().invoke(cli, ["-c", str(conf), "check"])
    assert result.exit_code == 0, result.output
    assert "is_admin=True, can_see_rates=True, access_roles=administrator" in result.output
    assert "rates and money amounts: visible" in result.output
    assert "may NOT" not in result.output


def test_bridge_sync_says_which_resources_it_skipped_and_why(
        box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = write_config(box, tmp_path, providers=("harvest",), monkeypatch=monkeypatch)
    monkeypatch.setenv("HARVEST_TOKEN", MEMBER_TOKEN)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["-c", str(conf), "sync"])
    out = result.output
    assert result.exit_code == 0, out
    assert "harvest: ok - " in out
    assert "harvest: SKIPPED clients - harvest: the token works but may not read clients (HTTP 403)" in out
    assert MEMBER_TOKEN not in out
