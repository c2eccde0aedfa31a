"""`bridge verify` end to end over HTTP: the demo agency synced from the sandbox agrees with every
tracker's own reports, and a change the store has not seen is reported with its cause."""

from __future__ import annotations

import datetime as dt
import json

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from connectors.sandbox import Sandbox, generate_agency
from connectors.sandbox.agency import AGENCY_TIMEZONE
from connectors.sandbox.demo import demo_config, to_toml

# the agency's own dates: entries end today (in the agency's zone), whatever day the test runs
TODAY = dt.datetime.now(ZoneInfo(AGENCY_TIMEZONE)).date()


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Path]]:
    agency = generate_agency(seed=1, today=TODAY, entries=400)
    with Sandbox(agency, rate_limits=False) as box:
        data, env = demo_config(box, store_url=f"sqlite:///{tmp_path / 'store.db'}", target=f"file://{tmp_path / 'site'}")
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        cfg = tmp_path / "bridge.toml"
        cfg.write_text(to_toml(data), encoding="utf-8")
        result = CliRunner().invoke(cli, ["-c", str(cfg), "sync"])
        assert result.exit_code == 0, result.output
        yield box, cfg


def verify(cfg: Path, *args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, ["-c", str(cfg), "verify", "--json", *args])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.output)


def test_verify_reports_no_difference_on_the_demo(demo: tuple[Sandbox, Path]) -> None:
    box, cfg = demo
    code, results = verify(cfg)
    assert code == 0, json.dumps(results, indent=1)
    by_client = {r["client"]: r for r in results}
    # every demo portal was checked against its tracker: Harvest (time, uninvoiced and
    # budget reports), FreshBooks (logged time, invoice totals), Productive (budget totals)
    assert set(by_client) == {"acme-robotics-gmbh", "blue-heron-studio", "zurich-nordlicht-ag", "cafe-resund-aps"}
    assert all(r["checked"] > 0 and r["ok"] and not r["errors"] for r in results)
    # a running timer may be a note (the tracker counts it, the bridge once it stops), never drift
    assert all(d["explained"] for r in results for d in r["differences"])
    # and status shows the outcome
    status = CliRunner().invoke(cli, ["-c", str(cfg), "status", "--json"])
    verified = {v["client"]: v for v in json.loads(status.output)["verified"]}
    assert set(verified) == set(by_client) and all(v["drift"] == 0 for v in verified.values())


def test_an_edit_the_store_has_not_seen_is_a_difference_with_its_cause(demo: tuple[Sandbox, Path]) -> None:
    box, cfg = demo
    agency = box.agency
    # Acme (Harvest) books 3 more hours on the website project after the sync
    agency.add_entry(project_id=14501001, person_id=3101001, task_id=8301002, spent_date=TODAY, seconds=3 * 3600)
    code, results = verify(cfg, "--client", "acme-robotics-gmbh")
    assert code == 1
    [acme] = results
    drift = [d for d in acme["differences"] if not d["explained"]]
    hours = {d["figure"]: d for d in drift if d["subject"] == "Acme Website Redesign"}
    # the tracker has exactly 3.00 h more than the store, everywhere it counts them
    assert hours["hours_logged"]["delta"] == "-3.00"
    assert hours["billable_hours"]["delta"] == "-3.00"
    assert hours["billable_amount"]["delta"] == "-450.00"  # 3 h x 150
    assert hours["uninvoiced_hours"]["delta"] == "-3.00"
    assert "missing from the store" in hours["hours_logged"]["cause"] and "bridge sync harvest" in hours["hours_logged"]["cause"]
    # after a sync it agrees again
    assert CliRunner().invoke(cli, ["-c", str(cfg), "sync"]).exit_code == 0
    assert verify(cfg, "--client", "acme-robotics-gmbh")[0] == 0


def test_a_deletion_not_reconciled_yet_is_explained(demo: tuple[Sandbox, Path]) -> None:
    box, cfg = demo
    agency = box.agency
    # a finished FreshBooks entry of Blue Heron disappears in the tracker
    victim = next(e for e in sorted(agency.entries.values(), key=lambda e: e.id)
                  if e.project_id == 14501003 and not e.is_running)
    agency.delete_entry(victim.id)
    code, results = verify(cfg, "--client", "blue-heron-studio")
    assert code == 1
    [d] = [d for d in results[0]["differences"] if not d["explained"]]
    assert d["figure"] == "hours_logged" and d["source"] == "freshbooks"
    assert d["delta"] == f"{victim.seconds / 3600:.2f}"  # the store holds the deleted time
    assert "deleted" in d["cause"] and "--full" in d["cause"]


def test_unknown_client_is_a_clean_error(demo: tuple[Sandbox, Path]) -> None:
    _, cfg = demo
    result = CliRunner().invoke(cli, ["-c", str(cfg), "verify", "--client", "nope"])
    assert result.exit_code == 1 and "no client 'nope'" in result.output and "Traceback" not in result.output


def test_verify_help_is_useful() -> None:
    result = CliRunner().invoke(cli, ["verify", "--help"])
    assert result.exit_code == 0
    assert "--client" in result.output and "--json" in result.output and "Exits 1" in result.output


def test_freshbooks_values_time_as_harvest_and_productive_do(demo: tuple[Sandbox, Path]) -> None:
    """One agency through three trackers: the same billable value per project once FreshBooks'
    service and team-member rates are fetched (the fixed-price Brand Refresh bills by service rate)."""
    from decimal import Decimal

    from sqlmodel import select

    from bridge.config import load_config
    from bridge.models import Person, Project, Task, TimeEntry
    from bridge.store import Store
    from bridge.valuation import value_entry

    box, cfg = demo
    store = Store(load_config(cfg).store.url)
    totals: dict[tuple[str, str], Decimal] = {}
    with store.session() as s:
        projects = {(p.source, p.source_id): p for p in s.exec(select(Project))}
        tasks = {(t.source, t.source_id): t for t in s.exec(select(Task))}
        people = {(p.source, p.source_id): p for p in s.exec(select(Person))}
        for e in s.exec(select(TimeEntry).where(TimeEntry.is_deleted == False, TimeEntry.is_running == False)):  # noqa: E712
            v = value_entry(e, projects.get((e.source, e.project_source_id or "")),
                            tasks.get((e.source, e.task_source_id or "")), people.get((e.source, e.person_source_id or "")))
            if e.is_billable:
                assert v.amount is not None, (e.source, e.source_id, v.missing)
                key = (e.source, e.project_source_id or "")
                totals[key] = totals.get(key, Decimal(0)) + v.amount
    agency = box.agency
    for pid in (14501001, 14501003, 14501005):  # project rate, fixed price by service rate, monthly money budget
        expected = sum((e.billable_rate * e.seconds / 3600 for e in agency.entries.values()
                        if e.project_id == pid and e.billable and not e.is_running), Decimal(0))
        got = {src: totals.get((src, str(pid)), Decimal(0)).quantize(Decimal("0.01")) for src in ("harvest", "freshbooks")}
        assert got == {"harvest": expected.quantize(Decimal("0.01")), "freshbooks": expected.quantize(Decimal("0.01"))}
    store.close()
