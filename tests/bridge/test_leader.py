"""One scheduler per store: the leader lock, standbys, configuration agreement, the watchdog."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_SUBMITTED
from apscheduler.jobstores.memory import MemoryJobStore

from bridge.config import Config, parse_config
from bridge.errors import ConfigError
from bridge.fingerprint import config_keys, differing_keys, fingerprint
from bridge.heartbeat import Heartbeat, current_leader, processes, scheduler_status
from bridge.leader import Election, LeaderLock
from bridge.scheduler import (
    EXIT_SCHEDULER_FAILED,
    Jobs,
    Timing,
    build_scheduler,
    run_scheduler,
    serve,
    unregister_context,
)
from bridge.store import Store

UTC = dt.timezone.utc


def _config(every: str = "1s", **extra: Any) -> Config:
    data: dict[str, Any] = {
        "store": {"url": "sqlite:///ignored.db"},
        "sources": [{"name": "harvest", "kind": "harvest", "every": every},
                    {"name": "prod", "kind": "productive", "every": "1h"}],
        "clients": [{"key": "acme", "name": "Acme", "sources": {"harvest": ["1"]}}],
    }
    data.update(extra)
    return parse_config(data)


@pytest.fixture(autouse=True)
def _forget_contexts() -> Any:
    yield
    unregister_context("cfg.toml")


# --- the fingerprint ----------------------------------------------------------------------


def test_fingerprint_names_differing_keys_and_holds_no_values() -> None:
    a = config_keys(_config())
    b = config_keys(_config(every="3s"))
    assert differing_keys(a, b) == ["sources[harvest].every"]
    c = config_keys(_config(clients=[{"key": "acme", "name": "Acme", "sources": {"harvest": ["1"]},
                                      "visibility": {"rates": "shown"}}]))
    assert differing_keys(a, c) == ["clients[acme].visibility.rates"]
    # the store URL and the file's path may differ between machines sharing one store
    d = _config(store={"url": "postgresql://bridge@db.internal/clearhours"})  # a password is refused in the file
    assert differing_keys(a, config_keys(d)) == []
    assert fingerprint(a) == fingerprint(config_keys(d))
    # only hashes are recorded: no value appears anywhere in them
    blob = repr(config_keys(d))
    for value in ("s3cret-pw", "db.internal", "Acme", "harvest\"", "1s"):
        assert value not in blob


def test_sources_are_compared_by_name_not_position() -> None:
    a = _config()
    b = _config(sources=list(reversed([s.model_dump() for s in a.sources])))
    assert fingerprint(config_keys(a)) == fingerprint(config_keys(b))


# --- the lock -----------------------------------------------------------------------------


def test_one_leader_lock_holder_at_a_time(any_store: Store) -> None:
    first, second = LeaderLock(any_store, "first"), LeaderLock(any_store, "second")
    assert first.try_acquire()
    assert not second.try_acquire()
    assert first.healthy()
    first.release()
    assert second.try_acquire()
    assert not first.try_acquire()
    second.release()


# --- election -------------------------------------------------------------------------------


def _heartbeat(store: Store, cfg: Config, every: float = 0.2) -> Heartbeat:
    return Heartbeat(store, mode="run", keys=config_keys(cfg), every=every)


def test_a_standby_takes_over_when_the_leader_releases(any_store: Store) -> None:
    cfg = _config()
    stop = threading.Event()
    leader = Election(any_store, _heartbeat(any_store, cfg), poll=0.05, stop=stop)
    assert leader.wait() is True
    assert current_leader(any_store).id == leader.heartbeat.id

    standby = Election(any_store, _heartbeat(any_store, cfg), poll=0.05, stop=threading.Event())
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(standby.wait()))
    t.start()
    time.sleep(0.4)
    assert result == []  # still waiting
    roles = {p.id: p.role for p in processes(any_store)}
    assert roles[standby.heartbeat.id] == "standby"
    leader.release()
    leader.heartbeat.stopped()
    t.join(5)
    assert result == [True]
    assert current_leader(any_store).id == standby.heartbeat.id
    standby.release()


def test_a_process_with_another_config_refuses_to_start_naming_the_keys(any_store: Store) -> None:
    leader = Election(any_store, _heartbeat(any_store, _config()), poll=0.05, stop=threading.Event())
    assert leader.wait()
    other = Election(any_store, _heartbeat(any_store, _config(every="3s")), poll=0.05, stop=threading.Event())
    with pytest.raises(ConfigError) as exc:
        other.wait()
    msg = str(exc.value)
    assert "differs from the leader's (pid " in msg
    assert "in: sources[harvest].every." in msg
    assert not other.lock.held
    leader.release()


def test_a_standby_that_sees_a_leader_with_another_config_stops_waiting(any_store: Store) -> None:
    # The old leader stops and a process with a new configuration becomes leader: the
    # standby still running the old configuration must not take over from it later.
    old = Election(any_store, _heartbeat(any_store, _config()), poll=0.05, stop=threading.Event())
    assert old.wait()
    # a slow poll: the new process below wins the lock before the standby looks again
    standby = Election(any_store, _heartbeat(any_store, _config()), poll=1.0, stop=threading.Event())
    errors: list[Exception] = []

    def wait() -> None:
        try:
            standby.wait()
        except ConfigError as exc:
            errors.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.3)
    old.release()
    old.heartbeat.stopped()
    new = Election(any_store, _heartbeat(any_store, _config(every="5s")), poll=0.05, stop=threading.Event())
    assert new.wait()
    t.join(5)
    assert len(errors) == 1 and "in: sources[harvest].every." in str(errors[0])
    assert not standby.lock.held
    new.release()


# --- the watchdog -----------------------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.syncs: list[str] = []

    def jobs(self) -> Jobs:
        def sync(source: str, full: bool, stop: threading.Event) -> Any:
            self.syncs.append(source)
            return None

        return Jobs(sync=sync)


class _FailingJobStore(MemoryJobStore):
    """APScheduler 3.11 ends its thread when a job store's update raises (a database
    error, or a job another process removed): this store does exactly that."""

    def update_job(self, job: Any) -> None:
        raise RuntimeError("job store update failed: connection reset")


def _serve_in_thread(sched: Any, jobs: Jobs, hb: Heartbeat, stall_after: float,
                     **kw: Any) -> tuple[threading.Thread, list[int]]:
    out: list[int] = []
    t = threading.Thread(target=lambda: out.append(
        serve(sched, jobs, install_signals=False, tick=0.05, heartbeat=hb, stall_after=stall_after, **kw)))
    t.start()
    return t, out


def test_a_dead_scheduler_thread_ends_the_process_with_a_reason(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    cfg = _config()
    rec = _Recorder()
    jobs = rec.jobs()
    hb = _heartbeat(store, cfg)
    hb.register("leader")
    sched = build_scheduler(cfg, store, jobs, config_path="cfg.toml", publish_on_start=False)
    sched.add_jobstore(_FailingJobStore(), "fragile")
    sched.add_job(lambda: None, "interval", seconds=1, id="fragile", jobstore="fragile",
                  next_run_time=dt.datetime.now(UTC))
    t, out = _serve_in_thread(sched, jobs, hb, stall_after=30)
    t.join(10)
    assert out == [EXIT_SCHEDULER_FAILED]
    assert "the scheduler thread died (RuntimeError: job store update failed: connection reset)" in caplog.text
    assert "exiting with status 3" in caplog.text
    st = scheduler_status(store, dt.datetime.now(UTC))
    assert not st.running and st.failed
    assert "scheduler not running" in st.lines(str)[0]
    assert "the scheduler thread died" in st.lines(str)[0]


def test_a_stalled_scheduler_ends_the_process(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    cfg = _config()
    jobs = _Recorder().jobs()
    hb = _heartbeat(store, cfg)
    hb.register("leader")
    sched = build_scheduler(cfg, store, jobs, config_path="cfg.toml", publish_on_start=False)
    release = threading.Event()
    # a listener that never returns holds the scheduler thread: nothing fires any more
    sched.add_listener(lambda event: release.wait(30), EVENT_JOB_SUBMITTED)
    t, out = _serve_in_thread(sched, jobs, hb, stall_after=1.0, failed_stop_grace=0.5)
    deadline = time.monotonic() + 15
    while not out and time.monotonic() < deadline:
        time.sleep(0.05)
    stuck = not release.is_set()
    release.set()
    t.join(10)
    # serve() returned while the scheduler thread was still stuck: a stall that never
    # clears must still end the process
    assert out == [EXIT_SCHEDULER_FAILED] and stuck
    assert "the scheduler stopped firing: " in caplog.text and "sync:harvest" in caplog.text
    assert scheduler_status(store, dt.datetime.now(UTC)).failed


def test_heartbeat_stops_and_status_says_scheduler_not_running(store: Store) -> None:
    cfg = _config()
    hb = _heartbeat(store, cfg, every=0.1)
    hb.register("leader")
    now = dt.datetime.now(UTC)
    st = scheduler_status(store, now)
    assert st.running and st.leader.pid == hb.pid and not st.failed
    assert st.lines(lambda at: "just now")[0].startswith(f"  leader: run pid {hb.pid} on ")
    # no heartbeat for longer than the dead window (5 s minimum): the leader counts as gone
    later = now + dt.timedelta(seconds=6)
    st = scheduler_status(store, later)
    assert not st.running and st.failed
    assert st.lines(lambda at: "6s ago")[0] == (
        f"  scheduler not running; last leader pid {hb.pid} on {hb.host}, last heartbeat 6s ago (its heartbeat stopped)")


def test_a_clean_stop_is_not_a_failure(store: Store) -> None:
    cfg = _config(every="1h")
    jobs = _Recorder().jobs()
    timing = Timing(poll=0.05, heartbeat=0.1, stall_after=30)
    threading.Timer(0.8, jobs.stop.set).start()
    code = run_scheduler(cfg, store, jobs, config_path="cfg.toml", publish_on_start=False, timing=timing,
                         install_signals=False)
    assert code == 0
    st = scheduler_status(store, dt.datetime.now(UTC))
    assert not st.running and not st.failed
    assert st.last_leader is not None and st.last_leader.stopped_at is not None


def test_a_new_leader_continues_the_persisted_schedule(store: Store) -> None:
    cfg = _config(every="1h")
    t0 = dt.datetime(2025, 3, 20, 10, 0, tzinfo=UTC)
    first = build_scheduler(cfg, store, _Recorder().jobs(), config_path="cfg.toml", publish_on_start=False, now=t0)
    assert first.get_job("sync:harvest").next_run_time == t0
    # the leader fired it at t0 (recorded by the submission listener) and died
    from bridge.scheduler import _write_schedule, _schedule_of, job_specs

    spec = next(s for s in job_specs(cfg, "cfg.toml") if s.id == "sync:harvest")
    _write_schedule(store, "sync:harvest", _schedule_of(spec), writer="old", next_run=t0 + dt.timedelta(hours=1), last_run=t0)
    t1 = t0 + dt.timedelta(minutes=20)
    second = build_scheduler(cfg, store, _Recorder().jobs(), config_path="cfg.toml", publish_on_start=False, now=t1)
    assert second.get_job("sync:harvest").next_run_time == dt.datetime(2025, 3, 20, 11, 0, tzinfo=UTC)
