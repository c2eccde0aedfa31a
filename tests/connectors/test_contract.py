"""One contract for every connector, over real HTTP to the sandbox.

Part one: the same generated agency, read through each provider's API, yields the same
normalized figures per client, and the same client-facing figures (budgets, billable
value, unbilled time, invoices) from bridge/figures.py. Part two: every connector passes the same checks -
pagination to the last page, incremental edits and backdated entries, deletions, 429s
with and without Retry-After, 5xx, timeouts, a malformed record, a bad credential.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bridge.config import parse_config
from bridge.connector import Context
from bridge.http import RetryPolicy
from bridge.models import Invoice, Person, Project, TimeEntry
from bridge.store import Store
from bridge.sync import SourceReport, sync_source
from connectors import CONNECTORS, build_connector
from connectors.sandbox import Sandbox, generate_agency
from tests.helpers.sandbox_sources import fast_source_block

PROVIDERS = sorted(CONNECTORS)
TODAY = dt.date(2025, 3, 20)
ENTRIES = 2500  # more than one page for every provider (Harvest's maximum page is 2000)


@pytest.fixture(scope="module")
def shared_sandbox() -> Sandbox:
    """For checks that change no data: faults are consumed or cleared after each test."""
    with Sandbox(generate_agency(seed=11, today=TODAY, entries=ENTRIES), rate_limits=False) as box:
        yield box


@pytest.fixture
def sandbox(shared_sandbox: Sandbox) -> Sandbox:
    # Each test is a new installation: fresh OAuth state (FreshBooks refresh tokens are
    # single-use), an empty request log, no leftover faults.
    for mounted in shared_sandbox.mounts:
        make_state = getattr(mounted.module, "make_state", None)
        if make_state:
            mounted.state = make_state(shared_sandbox.agency)
    shared_sandbox.reset()
    yield shared_sandbox
    shared_sandbox.clear_faults()


@pytest.fixture
def fresh_sandbox() -> Sandbox:
    """For checks that edit, add, delete or break records."""
    with Sandbox(generate_agency(seed=11, today=TODAY, entries=ENTRIES), rate_limits=False) as box:
        yield box


class Harness:
    """A store, a source config and a way to sync one provider of the sandbox into it."""

    def __init__(self, box: Sandbox, provider: str, tmp: Path, **source: Any) -> None:
        self.box, self.provider = box, provider
        block, env = fast_source_block(provider, box.url(provider))
        block.update(source)
        os.environ.update(env)
        self.env = env
        self.config = parse_config({"agency": {"timezone": box.agency.timezone}, "sources": [block]})
        self.src = self.config.sources[0]
        self.store = Store(f"sqlite:///{tmp / f'{provider}.db'}")
        self.store.migrate()
        self.slept: list[float] = []

    def sync(self, **kw: Any) -> SourceReport:
        conn = build_connector(self.src, tz=self.config.agency.zone, store=self.store,
                               retry=RetryPolicy(attempts=4, sleep=self.slept.append))
        try:
            ctx = Context(source=self.src.name, tz=self.config.agency.zone, today=TODAY)
            return sync_source(conn, self.store, self.src, ctx=ctx, **kw)
        finally:
            conn.close()

    def entries(self) -> list[TimeEntry]:
        from sqlmodel import select

        with self.store.session() as s:
            return list(s.exec(select(TimeEntry).where(TimeEntry.is_deleted == False)))  # noqa: E712


def figures(h: Harness) -> dict[str, Any]:
    """Per client: hours per person per week, billable split, unbilled, budgets, invoices."""
    from sqlmodel import select

    out: dict[str, Any] = defaultdict(lambda: defaultdict(dict))
    with h.store.session() as s:
        people = {p.source_id: f"{p.first_name} {p.last_name}" for p in s.exec(select(Person))}
        projects = {p.source_id: p for p in s.exec(select(Project))}
        for e in h.entries():
            if e.is_running:  # FreshBooks reports no duration for a running timer
                continue
            c = out[e.client_source_id]
            week = e.spent_date.isocalendar()[:2]
            key = (people[e.person_source_id], week)
            c["person_week"][key] = c["person_week"].get(key, 0) + e.seconds
            split = "billable" if e.is_billable else "non_billable"
            c["split"][split] = c["split"].get(split, 0) + e.seconds
            if e.is_billable and not e.is_invoiced:
                c["unbilled"]["seconds"] = c["unbilled"].get("seconds", 0) + e.seconds
            p = projects[e.project_source_id]
            c["project_seconds"][p.name] = c["project_seconds"].get(p.name, 0) + e.seconds
        for p in projects.values():
            out[p.client_source_id]["budgets"][p.name] = (p.budget_kind, p.budget_seconds, p.budget_money)
        for inv in s.exec(select(Invoice).where(Invoice.is_deleted == False)):  # noqa: E712
            if inv.status == "void":
                continue
            key = (inv.status, inv.currency)
            c = out[inv.client_source_id]["invoices"]
            c[key] = c.get(key, Decimal(0)) + inv.amount
    return {k: {kk: dict(vv) for kk, vv in v.items()} for k, v in out.items()}


def test_every_provider_yields_the_same_figures_per_client(sandbox: Sandbox, tmp_path: Path) -> None:
    results = {}
    for provider in PROVIDERS:
        h = Harness(sandbox, provider, tmp_path)
        report = h.sync()
        assert report.status == "ok", report.error
        assert report.quarantined == 0
        results[provider] = figures(h)
    base = results["harvest"]
    assert len(base) >= 4
    for provider, got in results.items():
        assert set(got) == set(base), provider
        for client, fig in base.items():
            for key in ("person_week", "split", "unbilled", "project_seconds", "invoices"):
                assert got[client].get(key) == fig.get(key), (provider, client, key)
            for project, budget in fig["budgets"].items():
                other = got[client]["budgets"][project]
                if provider == "freshbooks" and other != budget:
                    # FreshBooks has no monthly budgets: a monthly money budget has no
                    # FreshBooks counterpart, so it is None there - never a zero.
                    assert other == (None, None, None), (project, other)
                    continue
                assert other == budget, (provider, project)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_pagination_reaches_the_last_page(sandbox: Sandbox, tmp_path: Path, provider: str) -> None:
    h = Harness(sandbox, provider, tmp_path)
    report = h.sync()
    assert report.status == "ok", report.error
    assert len(h.entries()) == len(sandbox.agency.entries)
    entry_requests = [r for r in sandbox.requests(provider) if "time_entries" in r.path and r.status == 200]
    assert len(entry_requests) >= 2  # more than one page was needed and followed


@pytest.mark.parametrize("provider", PROVIDERS)
def test_incremental_sync_picks_up_an_edit_and_a_backdated_entry(fresh_sandbox: Sandbox, tmp_path: Path, provider: str) -> None:
    h = Harness(fresh_sandbox, provider, tmp_path)
    assert h.sync().status == "ok"
    agency = fresh_sandbox.agency
    victim = sorted(agency.entries.values(), key=lambda e: e.id)[10]
    agency.edit_entry(victim.id, seconds=victim.seconds + 1800)
    template = next(e for e in agency.entries.values() if not e.is_running)
    added = agency.add_entry(project_id=template.project_id, person_id=template.person_id, task_id=template.task_id,
                             spent_date=TODAY - dt.timedelta(days=45), seconds=5400, notes="forgot to book this")
    report = h.sync()
    assert report.status == "ok", report.error
    assert (report.new, report.updated) == (1, 1)
    by_seconds = {e.seconds for e in h.entries()}
    assert 5400 in by_seconds
    edited = [e for e in h.entries() if e.seconds == victim.seconds + 1800 and e.spent_date == victim.spent_date]
    assert edited, "the edit was not picked up"
    backdated = [e for e in h.entries() if e.notes and "forgot to book this" in e.notes]
    assert backdated and backdated[0].spent_date == added.spent_date


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_deleted_entry_disappears(fresh_sandbox: Sandbox, tmp_path: Path, provider: str) -> None:
    h = Harness(fresh_sandbox, provider, tmp_path)
    assert h.sync().status == "ok"
    before = len(h.entries())
    recent = max((e for e in fresh_sandbox.agency.entries.values() if not e.is_running), key=lambda e: e.spent_date)
    fresh_sandbox.agency.delete_entry(recent.id)
    report = h.sync()
    assert report.status == "ok", report.error
    assert report.deleted == 1
    assert len(h.entries()) == before - 1


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("fault", ["429", "429-no-retry-after", "500", "503"])
def test_transient_faults_are_retried(sandbox: Sandbox, tmp_path: Path, provider: str, fault: str) -> None:
    h = Harness(sandbox, provider, tmp_path)
    sandbox.inject(provider, fault, count=2, path_contains="time_entries", retry_after=3)
    report = h.sync()
    assert report.status == "ok", report.error
    assert len(h.entries()) == len(sandbox.agency.entries)
    assert len(h.slept) >= 2
    if fault == "429":
        assert h.slept[:2] == [3.0, 3.0]  # the server's Retry-After, not a guess


@pytest.mark.parametrize("provider", PROVIDERS)
def test_timeouts_are_retried(sandbox: Sandbox, tmp_path: Path, provider: str) -> None:
    # the timeout leaves room for a busy machine (a 2,000-entry page can take 0.5 s under
    # load); only the injected 6 s answer trips it
    h = Harness(sandbox, provider, tmp_path, timeout_seconds=2.5)
    sandbox.inject(provider, "slow", count=1, path_contains="time_entries", delay=6.0)
    report = h.sync()
    assert report.status == "ok", report.error
    assert len(h.slept) >= 1
    assert len(h.entries()) == len(sandbox.agency.entries)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_persistent_5xx_fails_the_source_with_its_name_and_keeps_the_cursor(sandbox: Sandbox, tmp_path: Path, provider: str) -> None:
    h = Harness(sandbox, provider, tmp_path)
    sandbox.inject(provider, "503", count=50, path_contains="time_entries")
    report = h.sync()
    assert report.status == "failed"
    assert provider in report.error and "503" in report.error
    cur = h.store.cursor(provider, "time_entries")
    assert cur is None or cur.value is None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_malformed_record_is_quarantined_and_the_rest_stored(fresh_sandbox: Sandbox, tmp_path: Path, provider: str) -> None:
    h = Harness(fresh_sandbox, provider, tmp_path)
    victim = sorted(fresh_sandbox.agency.entries)[5]
    fresh_sandbox.agency.malform_entry(victim, "bad_date")
    report = h.sync()
    assert report.status == "ok", report.error
    assert report.quarantined == 1
    (q,) = h.store.quarantined()
    assert (q.source, q.resource) == (provider, "time_entries")
    assert q.field and q.reason
    assert len(h.entries()) == len(fresh_sandbox.agency.entries) - 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_bad_credentials_give_a_clear_error_without_the_secret(sandbox: Sandbox, tmp_path: Path, provider: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(sandbox, provider, tmp_path)
    for var in h.env:
        monkeypatch.setenv(var, "wrong-" + var.lower())
    report = h.sync()
    assert report.status == "failed"
    assert provider in report.error
    assert any(word in report.error.lower() for word in ("token", "credential", "authori", "refresh"))
    for var in h.env:
        assert "wrong-" + var.lower() not in report.error
    assert not h.slept  # an auth failure is never retried


# --- the figures a client sees, through every provider ------------------------------------


def _client_figures(h: Harness, provider: str) -> dict[str, Any]:
    """Per agency client: each budget's use, billable value, unbilled time and invoices,
    from the one figures computation the portal, exports and alerts read."""
    from bridge.figures import client_figures
    from connectors.sandbox.demo import client_id

    agency = h.box.agency
    clients = []
    for cid, client in sorted(agency.clients.items()):
        entry: dict[str, Any] = {"key": f"c{cid}", "name": client.name, "sources": {provider: [client_id(provider, cid)]},
                                 "visibility": {"invoices": "shown"}}
        if provider == "freshbooks":
            # FreshBooks has no monthly budgets and no money budget on an hourly project:
            # the agency says so in the config, as the README tells it to
            entry["budgets"] = [
                {"project": f"freshbooks:{p.name}", "period": "month" if p.budget_is_monthly else "total",
                 **({"kind": "money", "amount": str(p.budget)} if p.budget_kind == "money" and not p.is_fixed_fee else {})}
                for p in agency.projects.values() if p.client_id == cid and p.budget_kind is not None
            ]
        clients.append(entry)
    cfg = parse_config({"agency": {"timezone": agency.timezone}, "sources": [h.config.sources[0].model_dump(exclude_none=True)],
                        "clients": clients})
    now = dt.datetime.combine(TODAY, dt.time(12), dt.timezone.utc)
    out = {}
    for cc in cfg.clients:
        fig = client_figures(h.store, cfg, cc, now)
        out[cc.name] = {
            "budgets": {p.project.name: (p.budget_status, p.budget.kind, p.budget.period, p.budget.used, p.budget.percent, p.budget.level)
                        if p.budget else (p.budget_status,) for p in fig.projects},
            "value": fig.amounts,
            "unbilled": (fig.unbilled_seconds, fig.unbilled_amounts),
            "invoices": sorted((i.number or "", i.currency, Decimal(i.amount), Decimal(i.due_amount), s) for i, s in fig.invoices),
            "hours": (fig.total_seconds, fig.billable_seconds),
        }
    return out


def test_every_provider_gives_the_same_client_figures(sandbox: Sandbox, tmp_path: Path) -> None:
    results = {}
    for provider in PROVIDERS:
        h = Harness(sandbox, provider, tmp_path)
        assert h.sync().status == "ok"
        results[provider] = _client_figures(h, provider)
    base = results["harvest"]
    assert any(b[0] == "visible" for c in base.values() for b in c["budgets"].values())
    for provider, got in results.items():
        for client, fig in base.items():
            for key in ("budgets", "value", "unbilled", "invoices", "hours"):
                assert got[client][key] == fig[key], (provider, client, key)
