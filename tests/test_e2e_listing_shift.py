"""Listings that cannot skip: the provider changes between any two pages, with or without a kill.

Over real HTTP against the sandbox (whose Harvest and Productive page by number, as the
real APIs do), with pages small enough that a listing has a dozen of them. The issue's
recipe: kill the sync once the time-entry resume point is at page 3, delete an entry of
page 1 at the provider, sync again twice; a final `--full` must find nothing new. And a
property: random inserts, edits and deletions between pages, an optional kill, then syncs
until quiet: the store holds exactly what the provider holds.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import connectors.freshbooks
import connectors.harvest
import connectors.productive
from bridge.config import parse_config
from bridge.connector import Context
from bridge.http import RetryPolicy
from bridge.models import TimeEntry
from bridge.store import Store
from bridge.sync import sync_source
from connectors import build_connector
from connectors.sandbox import Sandbox, generate_agency
from tests.helpers.sandbox_sources import fast_source_block

TODAY = dt.date(2025, 3, 20)
PAGE = 40
PROVIDERS = ["harvest", "productive"]


class Killed(BaseException):
    """Stands for SIGKILL: not an error the engine may catch and tidy up after."""


class Meddler:
    """Proxies a connector: changes the provider between time-entry pages, may die at one."""

    def __init__(self, inner: Any, agency: Any, ops: dict[int, list[tuple[str, int]]], kill_at: int | None) -> None:
        self.inner, self.agency, self.ops, self.kill_at = inner, agency, ops, kill_at
        self.page = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def pages(self, resource: str, since: Any, **kw: Any):  # type: ignore[no-untyped-def]
        for page in self.inner.pages(resource, since, **kw):
            if resource == "time_entries":
                # runs after this page was fetched and before the next one is asked for
                for kind, pick in self.ops.pop(self.page, []):
                    mutate(self.agency, kind, pick)
                if self.kill_at == self.page:
                    raise Killed()
                self.page += 1
            yield page


def mutate(agency: Any, kind: str, pick: int) -> None:
    ids = sorted(agency.entries)
    victim = agency.entries[ids[pick % len(ids)]]
    if kind == "delete":
        agency.delete_entry(victim.id)
    elif kind == "edit":
        agency.edit_entry(victim.id, notes=f"edited {pick}", seconds=victim.seconds + 60)
    elif kind == "move":  # an edit that moves the entry in a date-ordered listing
        agency.edit_entry(victim.id, spent_date=TODAY - dt.timedelta(days=pick % 170))
    elif kind == "insert":
        agency.add_entry(
            project_id=victim.project_id, person_id=victim.person_id, task_id=victim.task_id,
            spent_date=TODAY - dt.timedelta(days=pick % 170), seconds=1800, notes=f"new {pick}",
        )


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connectors.harvest, "PAGE_SIZE", PAGE)
    monkeypatch.setattr(connectors.productive, "PAGE_SIZE", PAGE)
    monkeypatch.setattr(connectors.freshbooks, "PAGE_SIZE", PAGE)


def _config(box: Sandbox, provider: str) -> Any:
    block, env = fast_source_block(provider, box.url(provider))
    os.environ.update(env)
    block["reconcile_days"] = 3650  # deletions anywhere in the history are checked on each sync
    return parse_config({"agency": {"timezone": box.agency.timezone}, "sources": [block]})


def _sync(box: Sandbox, cfg: Any, store: Store, *, full: bool = False, ops: Any = None, kill_at: int | None = None) -> Any:
    src = cfg.sources[0]
    conn: Any = build_connector(src, tz=cfg.agency.zone, store=store, retry=RetryPolicy(attempts=3, sleep=lambda s: None))
    if ops is not None or kill_at is not None:
        conn = Meddler(conn, box.agency, ops or {}, kill_at)
    try:
        return sync_source(conn, store, src, ctx=Context(source=src.name, tz=cfg.agency.zone, today=TODAY), full=full)
    finally:
        conn.close()


def _live_entries(store: Store, source: str) -> list[tuple[Any, ...]]:
    t = TimeEntry.__table__  # type: ignore[attr-defined]
    cols = [c for c in t.c if c.name not in ("id", "synced_at")]
    with store.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.select(*cols).where(t.c.source == source, t.c.is_deleted.is_(False))))


def _fresh(box: Sandbox) -> None:
    for mounted in box.mounts:
        make_state = getattr(mounted.module, "make_state", None)
        if make_state:
            mounted.state = make_state(box.agency)


@pytest.fixture
def box() -> Sandbox:
    with Sandbox(generate_agency(seed=5, today=TODAY, entries=500), rate_limits=False) as sb:
        yield sb


@pytest.mark.parametrize("provider", [*PROVIDERS, "freshbooks"])
def test_the_issue_recipe_loses_nothing(box: Sandbox, any_store: Store, provider: str) -> None:
    cfg = _config(box, provider)
    first_page_ids: list[int] = []

    class Spy(Meddler):
        def pages(self, resource: str, since: Any, **kw: Any):  # type: ignore[no-untyped-def]
            for page in self.inner.pages(resource, since, **kw):
                if resource == "time_entries":
                    if self.page == 0:
                        first_page_ids.extend(int(str(i.get("id"))) for i in page.items)
                    if self.page == 2:  # pages 1 and 2 committed: the resume point is page 3
                        raise Killed()
                    self.page += 1
                yield page

    src = cfg.sources[0]
    conn = Spy(build_connector(src, tz=cfg.agency.zone, store=any_store, retry=RetryPolicy(attempts=3, sleep=lambda s: None)),
               box.agency, {}, None)
    with pytest.raises(Killed):
        sync_source(conn, any_store, src, ctx=Context(source=src.name, tz=cfg.agency.zone, today=TODAY))
    assert any_store.cursor(provider, "time_entries").resume is not None
    box.agency.delete_entry(first_page_ids[3])

    assert _sync(box, cfg, any_store).status == "ok"
    assert _sync(box, cfg, any_store).status == "ok"
    full = _sync(box, cfg, any_store, full=True)
    assert full.status == "ok", full.error
    assert (full.new, full.deleted) == (0, 0)
    assert any_store.counts(provider)["time_entries"] == len(box.agency.entries)


OPS = st.lists(
    st.tuples(st.integers(0, 14), st.sampled_from(["delete", "edit", "insert", "move"]), st.integers(0, 10_000)),
    max_size=6,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(provider=st.sampled_from(PROVIDERS), ops=OPS, kill_at=st.one_of(st.none(), st.integers(0, 14)))
def test_property_changes_between_pages_then_syncs_until_quiet_store_equals_provider(
    tmp_path_factory: pytest.TempPathFactory, provider: str, ops: list[tuple[int, str, int]], kill_at: int | None
) -> None:
    d = tmp_path_factory.mktemp("shift")
    with Sandbox(generate_agency(seed=7, today=TODAY, entries=400), rate_limits=False) as box:
        cfg = _config(box, provider)
        store = Store(f"sqlite:///{d / 'store.db'}")
        store.migrate()
        plan: dict[int, list[tuple[str, int]]] = {}
        for at, kind, pick in ops:
            plan.setdefault(at, []).append((kind, pick))
        try:
            _sync(box, cfg, store, ops=plan, kill_at=kill_at)
        except Killed:
            pass
        for _ in range(6):  # syncs until quiet
            report = _sync(box, cfg, store)
            assert report.status == "ok", report.error
            if not (report.new or report.updated or report.deleted):
                break
        else:
            pytest.fail("the store never settled")
        _fresh(box)
        clean = Store(f"sqlite:///{d / 'clean.db'}")
        clean.migrate()
        assert _sync(box, cfg, clean).status == "ok"
        assert _live_entries(store, provider) == _live_entries(clean, provider)
        store.close()
        clean.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_record_moved_back_past_our_position_is_caught_by_the_deletion_check(box: Sandbox, store: Store, provider: str) -> None:
    """An entry of page 1 re-dated to the oldest day between pages 1 and 2 (Harvest lists by
    date): the count does not change, yet its neighbour at the boundary moves into page 1
    unread. The id check that follows the listing finds the neighbour missing."""
    cfg = _config(box, provider)
    oldest = min(e.spent_date for e in box.agency.entries.values())
    first = sorted(box.agency.entries.values(), key=lambda e: (e.spent_date, e.id), reverse=True)[0]

    class Mover(Meddler):
        def pages(self, resource: str, since: Any, **kw: Any):  # type: ignore[no-untyped-def]
            for page in self.inner.pages(resource, since, **kw):
                if resource == "time_entries" and self.page == 0:
                    box.agency.edit_entry(first.id, spent_date=oldest - dt.timedelta(days=1))
                    self.page += 1
                yield page

    src = cfg.sources[0]
    conn = Mover(build_connector(src, tz=cfg.agency.zone, store=store, retry=RetryPolicy(attempts=3, sleep=lambda s: None)),
                 box.agency, {}, None)
    assert sync_source(conn, store, src, ctx=Context(source=src.name, tz=cfg.agency.zone, today=TODAY)).status == "ok"
    for _ in range(4):
        report = _sync(box, cfg, store)
        if not (report.new or report.updated or report.deleted):
            break
    assert store.counts(provider)["time_entries"] == len(box.agency.entries)
    full = _sync(box, cfg, store, full=True)
    assert (full.new, full.updated, full.deleted) == (0, 0, 0)
