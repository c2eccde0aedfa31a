"""`bridge status`: sources, portals, and the health-check exit code."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from bridge.cli import cli
from bridge.config import parse_config
from bridge.models import PortalLink, Quarantine, SyncRun, TimeEntry
from bridge.scheduler import Jobs, build_scheduler, unregister_context
from bridge.status import collect_status, status_lines
from bridge.store import Store

UTC = dt.timezone.utc
NOW = dt.datetime(2025, 3, 20, 12, 0, tzinfo=UTC)


def _cfg(db: str | None = None) -> Any:
    data: dict[str, Any] = {
        "sources": [{"name": "harvest", "kind": "harvest"}, {"name": "prod", "kind": "productive"}],
        "clients": [{"key": "acme", "name": "Acme", "sources": {"harvest": ["1"]}},
                    {"key": "globex", "name": "Globex", "sources": {"prod": ["2"]}}],
        "stale_after": "1h",
    }
    if db:
        data["store"] = {"url": db}
    return parse_config(data)


def _run(store: Store, source: str, status: str, finished: dt.datetime, error: str | None = None) -> None:
    with store.session() as s:
        s.add(SyncRun(source=source, started_at=finished - dt.timedelta(seconds=30), finished_at=finished,
                      status=status, error=error))
        s.commit()


def _seed(store: Store) -> None:
    _run(store, "harvest", "failed", NOW - dt.timedelta(hours=3), "harvest: 401 Unauthorized - check the API token")
    _run(store, "harvest", "ok", NOW - dt.timedelta(minutes=10))
    _run(store, "prod", "ok", NOW - dt.timedelta(hours=2))
    _run(store, "prod", "failed", NOW - dt.timedelta(minutes=5), "prod: HTTP 500 after 5 attempts - try again later")
    store.upsert([TimeEntry.model_validate({"source": "harvest", "source_id": str(i), "spent_date": dt.date(2025, 3, 1),
                                            "seconds": 60, "updated_at": NOW}) for i in range(3)])
    with store.session() as s:
        s.add(Quarantine(source="prod", resource="time_entries", source_id="9", reason="bad date", payload="{}"))
        s.add(PortalLink(client_key="acme", token="t", url="https://x/t/index.html", published_at=NOW - dt.timedelta(minutes=9),
                         data_as_of=NOW - dt.timedelta(minutes=10), expires_at=NOW + dt.timedelta(days=6)))
        s.add(PortalLink(client_key="globex", token="u", url="https://x/u/index.html", published_at=NOW - dt.timedelta(days=8),
                         data_as_of=NOW - dt.timedelta(days=8), expires_at=NOW - dt.timedelta(days=1)))
        s.commit()


def test_sources_show_last_success_current_error_records_and_staleness(store: Store) -> None:
    _seed(store)
    st = collect_status(store, _cfg(), NOW)
    h, p = st.sources
    assert (h.name, h.last_success_at, h.last_status, h.stale) == ("harvest", NOW - dt.timedelta(minutes=10), "ok", False)
    assert h.last_error is None  # it recovered from the 401
    assert h.records == {"time_entries": 3} and h.quarantined == 0
    assert p.stale is True and p.last_status == "failed"
    assert p.last_error == "prod: HTTP 500 after 5 attempts - try again later" and p.quarantined == 1
    assert not st.healthy
    acme, globex = st.portals
    assert acme.link_expired is False and acme.data_as_of == NOW - dt.timedelta(minutes=10)
    assert globex.link_expired is True
    text = "\n".join(status_lines(st))
    assert "prod (productive): STALE" in text and "last error (5m ago): prod: HTTP 500" in text
    assert "globex: data as of 8d ago; published 8d ago; link expired 24h ago" in text
    assert "UNHEALTHY: no successful sync within 1h for: prod" in text


def test_a_source_that_never_synced_is_stale_and_healthy_when_all_are_recent(store: Store) -> None:
    assert collect_status(store, _cfg(), NOW).sources[0].stale is True
    _run(store, "harvest", "ok", NOW - dt.timedelta(minutes=59))
    _run(store, "prod", "ok", NOW - dt.timedelta(minutes=1))
    st = collect_status(store, _cfg(), NOW)
    assert st.healthy
    assert not collect_status(store, _cfg(), NOW + dt.timedelta(minutes=2)).healthy


def test_next_run_comes_from_the_job_store(store: Store) -> None:
    t = NOW + dt.timedelta(minutes=3)
    sched = build_scheduler(_cfg(), store, Jobs(sync=lambda *a: None), config_path="status.toml",
                            publish_on_start=False, now=t)
    sched.start(paused=True)
    sched.shutdown(wait=False)
    unregister_context("status.toml")
    st = collect_status(store, _cfg(), NOW)
    assert st.sources[0].next_run_at == t
    assert "next run in 3m" in status_lines(st)[1]


def test_cli_status_json_and_exit_code(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'st.db'}"
    (tmp_path / "bridge.toml").write_text(
        f'stale_after = "100000d"\n[store]\nurl = "{db}"\n'
        '[[sources]]\nname = "harvest"\nkind = "harvest"\n'
    )
    store = Store(db)
    store.migrate()
    runner = CliRunner()
    cfg = str(tmp_path / "bridge.toml")
    res = runner.invoke(cli, ["-c", cfg, "status", "--json"])
    assert res.exit_code == 1, res.output
    body = json.loads(res.output)
    assert body["healthy"] is False and body["sources"][0]["last_success_at"] is None
    _run(store, "harvest", "ok", dt.datetime.now(UTC))
    res = runner.invoke(cli, ["-c", cfg, "status"])
    assert res.exit_code == 0, res.output
    assert "harvest (harvest): ok; last success" in res.output  # plain text: not a terminal
    store.close()


def test_rich_tables_for_a_terminal(store: Store) -> None:
    from rich.console import Console

    from bridge.status import print_rich

    _seed(store)
    console = Console(record=True, width=200, force_terminal=True)
    print_rich(collect_status(store, _cfg(), NOW), console)
    out = console.export_text()
    assert "Sources" in out and "Portals" in out
    assert "STALE" in out and "prod: HTTP 500 after 5 attempts" in out
    assert "expired 24h ago" in out


def test_portals_show_the_budgets_to_watch_as_the_portal_shows_them(store: Store) -> None:
    from decimal import Decimal

    from bridge.models import Project

    _seed(store)
    # Acme's Website: 12 of 10 h (the entries above have no project and count nowhere)
    store.upsert([Project.model_validate({"source": "harvest", "source_id": "p1", "client_source_id": "1", "name": "Website",
                                          "budget_kind": "hours", "budget_period": "total", "budget_seconds": 36000})])
    store.upsert([TimeEntry.model_validate({"source": "harvest", "source_id": "w1", "client_source_id": "1",
                                            "project_source_id": "p1", "spent_date": dt.date(2025, 3, 18),
                                            "seconds": 12 * 3600, "updated_at": NOW})])
    st = collect_status(store, _cfg(), NOW)
    acme = next(p for p in st.portals if p.key == "acme")
    [b] = acme.budgets
    assert (b.project, b.used, b.allocated, b.percent, b.level) == ("Website", Decimal("12.00"), Decimal("10.00"), Decimal("120.0"), "over")
    assert "    budgets: Website 120.0% (12.00 of 10.00 h) Over budget" in status_lines(st)
    assert st.as_dict()["portals"][0]["budgets"][0]["percent"] == "120.0"
