"""The schedule: jobs per source, persistence across restarts, publish only what changed."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bridge.config import Config, parse_config
from bridge.errors import ConfigError
from bridge.models import PortalLink
from bridge.scheduler import (
    Jobs,
    build_scheduler,
    clients_for_changes,
    next_runs,
    publish_all_job,
    refresh_links_job,
    serve,
    unregister_context,
)
from bridge.store import Store

UTC = dt.timezone.utc


def _config(**overrides: Any) -> Config:
    data: dict[str, Any] = {
        "agency": {"timezone": "Europe/Berlin"},
        "sources": [
            {"name": "harvest", "kind": "harvest", "every": "2m"},
            {"name": "fb", "kind": "freshbooks", "cron": "*/15 8-18 * * mon-fri"},
            {"name": "prod", "kind": "productive"},
        ],
        "clients": [
            {"key": "acme", "name": "Acme", "sources": {"harvest": ["1", "2"], "fb": ["77"]}},
            {"key": "globex", "name": "Globex", "sources": {"prod": ["9"]}},
        ],
        "publish": {"refresh_before": "1d"},
    }
    data.update(overrides)
    return parse_config(data)


@dataclass
class Recorder:
    syncs: list[tuple[str, bool]] = field(default_factory=list)
    published: list[set[str]] = field(default_factory=list)
    alerted: list[set[str]] = field(default_factory=list)
    changed: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    event: threading.Event = field(default_factory=threading.Event)

    def jobs(self) -> Jobs:
        return Jobs(sync=self.sync, publish=self.publish, alerts=self.alerts)

    def sync(self, source: str, full: bool, stop: threading.Event) -> Any:
        self.syncs.append((source, full))
        self.event.set()
        return _Report("ok", self.changed.get(source, set()))

    def publish(self, keys: set[str]) -> None:
        self.published.append(set(keys))
        self.event.set()

    def alerts(self, keys: set[str]) -> None:
        self.alerted.append(set(keys))


@dataclass
class _Report:
    status: str
    changed_clients: set[tuple[str, str]]
    error: str | None = None


@pytest.fixture(autouse=True)
def _forget_contexts() -> Any:
    yield
    for p in ("cfg.toml", "other.toml"):
        unregister_context(p)


def test_one_sync_and_one_nightly_reconcile_job_per_source(store: Store) -> None:
    sched = build_scheduler(_config(), store, Recorder().jobs(), config_path="cfg.toml", publish_on_start=False)
    jobs = {j.id: j for j in sched.get_jobs()}
    assert set(jobs) == {
        "sync:harvest", "sync:fb", "sync:prod", "reconcile:harvest", "reconcile:fb", "reconcile:prod", "links:refresh",
    }
    assert isinstance(jobs["sync:harvest"].trigger, IntervalTrigger)
    assert jobs["sync:harvest"].trigger.interval == dt.timedelta(minutes=2)
    assert jobs["sync:prod"].trigger.interval == dt.timedelta(minutes=5)  # the default
    cron = jobs["sync:fb"].trigger
    assert isinstance(cron, CronTrigger)
    assert str(cron.timezone) == "Europe/Berlin"
    # 18:15 Berlin on a Friday fires, Saturday does not: the expression is read in the agency zone
    fri = dt.datetime(2025, 3, 21, 17, 50, tzinfo=UTC)  # 18:50 in Berlin
    assert cron.get_next_fire_time(None, fri) == dt.datetime(2025, 3, 24, 8, 0, tzinfo=cron.timezone)
    for j in jobs.values():
        assert j.max_instances == 1 and j.coalesce is True
        assert j.args[0] == "cfg.toml"
    assert jobs["reconcile:harvest"].args == ("cfg.toml", "harvest")
    assert jobs["reconcile:harvest"].trigger.fields[5].expressions[0].first == 3  # hour field: 03:xx local
    assert not sched.running


def test_bad_cron_is_a_config_error(store: Store) -> None:
    cfg = _config(sources=[{"name": "h", "kind": "harvest", "cron": "every tuesday"}], clients=[])
    with pytest.raises(ConfigError, match="sources 'h': cron"):
        build_scheduler(cfg, store, Recorder().jobs(), config_path="cfg.toml")


def _persist(cfg: Config, store: Store, now: dt.datetime) -> dict[str, dt.datetime]:
    """Build and start paused, so the jobs are written to the store, then stop."""
    sched = build_scheduler(cfg, store, Recorder().jobs(), config_path="cfg.toml", publish_on_start=False, now=now)
    sched.start(paused=True)
    sched.shutdown(wait=False)
    return next_runs(store)


def test_a_restart_keeps_persisted_run_times_and_drops_removed_sources(any_store: Store) -> None:
    store = any_store
    t0 = dt.datetime(2025, 3, 20, 10, 0, tzinfo=UTC)
    first = _persist(_config(), store, t0)
    assert first["sync:harvest"] == t0  # a new sync job runs at once
    nightly = first["reconcile:prod"].astimezone(dt.timezone(dt.timedelta(hours=1)))  # Berlin in March
    assert nightly > t0 and nightly.hour == 3  # the nightly pass waits for the night
    # a new process an hour later, same config: nothing is rescheduled to "now"
    t1 = t0 + dt.timedelta(hours=1)
    again = build_scheduler(_config(), store, Recorder().jobs(), config_path="cfg.toml", publish_on_start=False, now=t1)
    times = {j.id: j.next_run_time for j in again.get_jobs()}
    assert times["sync:harvest"] == t0
    assert times["reconcile:prod"] == first["reconcile:prod"]

    # the harvest interval changes and fb is removed: harvest runs now, fb is not scheduled
    cfg2 = _config(
        sources=[{"name": "harvest", "kind": "harvest", "every": "10m"}, {"name": "prod", "kind": "productive"}],
        clients=[{"key": "globex", "name": "Globex", "sources": {"prod": ["9"]}}],
    )
    third = build_scheduler(cfg2, store, Recorder().jobs(), config_path="cfg.toml", publish_on_start=False, now=t1)
    assert {j.id for j in third.get_jobs()} == {"sync:harvest", "reconcile:harvest", "sync:prod", "reconcile:prod", "links:refresh"}
    stored = next_runs(store)
    assert stored["sync:harvest"] == t1
    assert stored["sync:prod"] == t0
    # fb's rows were written by an earlier leader: kept as they were, never rewritten
    assert stored["sync:fb"] == t0


def test_changed_client_ids_map_to_portal_clients() -> None:
    cfg = _config()
    assert clients_for_changes(cfg, {("harvest", "2")}) == {"acme"}
    assert clients_for_changes(cfg, {("fb", "77"), ("prod", "9")}) == {"acme", "globex"}
    # the same id from another source belongs to nobody
    assert clients_for_changes(cfg, {("prod", "1"), ("harvest", "9")}) == set()


def test_link_refresh_republishes_only_links_about_to_expire(store: Store) -> None:
    now = dt.datetime.now(UTC)
    with store.session() as s:
        s.add(PortalLink(client_key="acme", token="t1", url="u", expires_at=now + dt.timedelta(hours=23)))
        s.add(PortalLink(client_key="globex", token="t2", url="u", expires_at=now + dt.timedelta(days=3)))
        s.add(PortalLink(client_key="gone", token="t3", url="u", expires_at=now))  # no longer configured
        s.commit()
    rec = Recorder()
    build_scheduler(_config(), store, rec.jobs(), config_path="cfg.toml", publish_on_start=False)
    refresh_links_job("cfg.toml")
    assert rec.published == [{"acme"}]
    assert rec.syncs == []


def test_the_start_up_publish_leaves_a_client_to_its_first_sync(store: Store) -> None:
    # a new installation: nothing from "prod" yet, so globex would only fail with
    # "run `bridge sync` first"; its first sync publishes it
    from bridge.models import Client

    store.upsert([Client(source="harvest", source_id="1", name="Acme")])
    rec = Recorder()
    build_scheduler(_config(), store, rec.jobs(), config_path="cfg.toml", publish_on_start=False)
    publish_all_job("cfg.toml")
    assert rec.published == [{"acme"}]


def _run_until(sched: Any, jobs: Jobs, done: Any, timeout: float = 10) -> None:
    t = threading.Thread(target=serve, args=(sched, jobs), kwargs={"install_signals": False, "tick": 0.05})
    t.start()
    try:
        deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)
        while not done() and dt.datetime.now() < deadline:
            threading.Event().wait(0.05)
    finally:
        jobs.stop.set()
        t.join(10)
    assert not t.is_alive()


@pytest.mark.slow
def test_a_real_run_syncs_each_source_and_republishes_only_changed_clients(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.migrate()
    cfg = _config(sources=[{"name": "harvest", "kind": "harvest", "every": "1s"},
                           {"name": "prod", "kind": "productive", "every": "1h"}],
                  clients=[{"key": "acme", "name": "Acme", "sources": {"harvest": ["1"]}},
                           {"key": "globex", "name": "Globex", "sources": {"prod": ["9"]}}])
    far = dt.datetime.now(UTC) + dt.timedelta(days=5)
    with store.session() as s:  # both portals published, links far from expiry
        s.add(PortalLink(client_key="acme", token="t1", url="u", expires_at=far))
        s.add(PortalLink(client_key="globex", token="t2", url="u", expires_at=far))
        s.commit()
    rec = Recorder(changed={"harvest": {("harvest", "1")}})
    jobs = rec.jobs()
    sched = build_scheduler(cfg, store, jobs, config_path="cfg.toml", publish_on_start=False)
    _run_until(sched, jobs, lambda: rec.syncs.count(("harvest", False)) >= 2 and ("prod", False) in rec.syncs)
    assert rec.syncs.count(("harvest", False)) >= 2  # the 1 s interval fired again
    assert rec.syncs.count(("prod", False)) == 1  # the hourly one ran once, at start
    assert rec.published and all(p == {"acme"} for p in rec.published)
    assert all(a == {"acme"} for a in rec.alerted)
    store.close()


@pytest.mark.slow
def test_runs_missed_while_down_happen_once(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.migrate()
    cfg = _config(sources=[{"name": "harvest", "kind": "harvest", "every": "1h"}], clients=[])
    long_ago = dt.datetime.now(UTC) - dt.timedelta(hours=10, minutes=30)
    _persist(cfg, store, long_ago)  # due 10 times over by now
    rec = Recorder()
    jobs = rec.jobs()
    sched = build_scheduler(cfg, store, jobs, config_path="cfg.toml", now=dt.datetime.now(UTC))
    _run_until(sched, jobs, lambda: bool(rec.syncs), timeout=5)
    threading.Event().wait(0.5)  # room for any (wrong) extra runs
    # the nightly pass may fall inside the 10.5 h as well (run at 02:00-04:00 UTC): it too
    # runs once at most; the interval sync runs once, not ten times
    assert [s for s in rec.syncs if s == ("harvest", False)] == [("harvest", False)]
    assert rec.syncs.count(("harvest", True)) <= 1
    nxt = next_runs(store)["sync:harvest"]
    assert nxt > dt.datetime.now(UTC)  # moved past now, not replaying the missed ones
    store.close()


def test_a_run_noted_while_the_scheduler_shuts_down_keeps_its_next_run(store: Store) -> None:
    # The scheduler thread announces a submitted run after another thread has begun
    # shutdown(): the job can no longer be looked up then, yet its next run is known.
    cfg = _config(sources=[{"name": "harvest", "kind": "harvest", "every": "1h"}], clients=[])
    t0 = dt.datetime(2025, 3, 20, 10, 0, tzinfo=UTC)
    sched = build_scheduler(cfg, store, Recorder().jobs(), config_path="cfg.toml", publish_on_start=False, now=t0)
    sched.start(paused=True)
    sched.shutdown(wait=False)
    sched._dispatch_event(JobSubmissionEvent(EVENT_JOB_SUBMITTED, "sync:harvest", "default", [t0]))
    sched.save_schedule()
    assert next_runs(store)["sync:harvest"] == t0 + dt.timedelta(hours=1)


@pytest.mark.slow
def test_stop_lets_the_running_sync_finish_its_page_and_serve_returns_0(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.migrate()
    cfg = _config(sources=[{"name": "harvest", "kind": "harvest", "every": "1h"}], clients=[])
    pages: list[int] = []
    started = threading.Event()

    def slow_sync(source: str, full: bool, stop: threading.Event) -> Any:
        for page in range(1000):
            if stop.is_set():
                return _Report("stopped", set())
            started.set()
            threading.Event().wait(0.02)
            pages.append(page)  # "committed"
        return _Report("ok", set())

    jobs = Jobs(sync=slow_sync)
    sched = build_scheduler(cfg, store, jobs, config_path="cfg.toml")
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(serve(sched, jobs, install_signals=False, tick=0.05)))
    t.start()
    assert started.wait(5)
    jobs.stop.set()
    t.join(10)
    assert result == [0]
    assert 0 < len(pages) < 1000
    assert not sched.running
    store.close()


@pytest.mark.parametrize("status", ["skipped", "failed"])
def test_a_skipped_or_failed_sync_publishes_only_what_it_committed(store: Store, status: str) -> None:
    from bridge.scheduler import sync_job

    committed = {("harvest", "1")} if status == "failed" else set()
    published: list[set[str]] = []
    jobs = Jobs(sync=lambda s, f, stop: _Report(status, set(committed), error="x"), publish=published.append)
    build_scheduler(_config(), store, jobs, config_path="cfg.toml", publish_on_start=False)
    sync_job("cfg.toml", "harvest")
    # a failed run may have committed pages before failing: those clients are re-published
    assert published == ([{"acme"}] if status == "failed" else [])
    jobs.stop.set()
    sync_job("cfg.toml", "harvest")  # stopping: no new sync starts
    assert len(published) == (1 if status == "failed" else 0)
