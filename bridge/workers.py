"""Workers on Celery, for deployments that outgrow one `bridge run` process.

`bridge beat` is `bridge run` whose jobs, instead of running, queue one task each: a sync
per source per interval, a publish per client, a link refresh per client. `bridge worker`
processes (any number, on any machines) take the tasks from the broker (Redis or
RabbitMQ, `[workers] broker_url`) and run them with the same code and the same locks as
`bridge run`:

- `clearhours.sync(source, full)`: the per-source lock makes it exactly one sync of a
  source at a time anywhere; a copy that finds the lock held (a redelivered task whose
  first run is still going) ends as "skipped". It queues a publish per client whose data
  changed, and that clients' alerts.
- `clearhours.publish(client, reinvite)`: under the per-client lock.
- `clearhours.alerts(clients)`.

A lost worker's task runs elsewhere: tasks are acknowledged only when they end
(acks_late) and given back when their worker dies (reject_on_worker_lost); RabbitMQ
redelivers when the dead worker's connection closes, Redis after `visibility_timeout`.
A sync task carries the time it was due: a worker drops it, quietly, when a sync of the
source that started at or after that time has already finished (a late task of an
earlier interval did its work). So a backlog (workers busy or down) becomes one sync per
source, not one per missed interval, while a task whose worker died (its run never
finished) still runs again elsewhere.

Workers run tasks in threads (a sync waits on HTTP), all sharing one store and one
wiring per process, built by the composition root (bridge/cli/workers.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bridge.config import Config, parse_duration
from bridge.errors import BridgeError, ConfigError
from bridge.models import SyncRun, utcnow
from bridge.scheduler import Jobs, RunContext, clients_for_changes

log = logging.getLogger(__name__)

TASK_SYNC = "clearhours.sync"
TASK_PUBLISH = "clearhours.publish"
TASK_ALERTS = "clearhours.alerts"
BACKLOG_EXPIRY = 3600.0  # seconds; at least this long in the queue before a sync task expires


def make_app(config: Config) -> Any:
    """The Celery app of this deployment (broker, queue, delivery guarantees)."""
    try:
        from celery import Celery
    except ImportError:
        raise ConfigError("Celery is not installed: pip install 'clearhours[celery]' for `bridge worker` "
                          "and `bridge beat` (`bridge run` needs nothing more)") from None
    w = config.workers
    app = Celery("clearhours", broker=w.url(), set_as_current=False)
    app.conf.update(
        task_default_queue=w.queue,
        task_acks_late=True,  # a task is done when it ends, not when a worker took it
        task_reject_on_worker_lost=True,  # a worker that dies gives its task back
        worker_prefetch_multiplier=1,  # a worker holds no more tasks than it runs
        task_ignore_result=True,  # results live in the store (sync runs, audit), not in a backend
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options=_transport_options(int(parse_duration(w.visibility_timeout).total_seconds())),
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,  # bridge.logs formats the lines (and keeps secrets out)
        worker_send_task_events=False,
        enable_utc=True,
    )
    return app


def _transport_options(visibility: int) -> dict[str, int]:
    # Redis: kombu looks for tasks of vanished workers only every ~100 s by default;
    # sweep often enough that a task comes back about `visibility` after its worker died.
    # (RabbitMQ ignores these: it redelivers when the dead worker's connection closes.)
    return {"visibility_timeout": visibility, "unacked_restore_interval": max(1, min(10, visibility // 3)),
            "unacked_restore_throttle": 1}


@dataclass
class _Queued:
    """What `bridge beat`'s sync job returns: the work happens in a worker."""

    status: str = "queued"
    changed_clients: frozenset[tuple[str, str]] = frozenset()
    error: str | None = None


def beat_jobs(app: Any, config: Config) -> Jobs:
    """Jobs for `bridge beat`: each one queues tasks; the workers do the work."""
    intervals = {s.name: s.interval.total_seconds() for s in config.sources}

    def sync(source: str, full: bool, stop: threading.Event) -> _Queued:
        due = utcnow().isoformat()
        # A task older than this is dropped unread by the broker's consumer: after a long
        # outage the queue does not hold one task per missed interval.
        expires = max(BACKLOG_EXPIRY, 10 * intervals.get(source, 300.0))
        app.send_task(TASK_SYNC, args=(source, full, due), expires=expires)
        return _Queued()

    def publish(keys: set[str]) -> None:
        for key in sorted(keys):
            app.send_task(TASK_PUBLISH, args=(key, False))

    def refresh(keys: set[str]) -> None:
        for key in sorted(keys):
            app.send_task(TASK_PUBLISH, args=(key, True))

    return Jobs(sync=sync, publish=publish, refresh=refresh)


def already_synced(store: Any, source: str, due: dt.datetime) -> bool:
    """Has a sync of `source` that started at or after `due` finished ok?"""
    t = SyncRun.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        newest = conn.execute(
            sa.select(sa.func.max(t.c.started_at)).where(t.c.source == source, t.c.status == "ok")
        ).scalar_one()
    if newest is None:
        return False
    if newest.tzinfo is None:  # SQLite's aggregate returns the raw stored value
        newest = newest.replace(tzinfo=dt.timezone.utc)
    return bool(newest >= due)


def register_tasks(app: Any, ctx: RunContext) -> None:
    """The worker side: run each task with the composition root's jobs."""
    jobs = ctx.jobs

    @app.task(name=TASK_SYNC, acks_late=True, reject_on_worker_lost=True)
    def sync(source: str, full: bool = False, due: str | None = None) -> str:
        if not full and due is not None and already_synced(ctx.store, source, dt.datetime.fromisoformat(due)):
            log.debug("%s: a sync for the interval due %s already ran; dropped", source, due)
            return "done"
        report = jobs.sync(source, full, jobs.stop)
        status = str(getattr(report, "status", "failed"))
        if status == "skipped":
            # A backlog's next task, or a redelivered copy, while the sync still runs
            # elsewhere: the running one does the work. Not worth a line at INFO.
            log.debug("%s", getattr(report, "error", None) or f"{source}: skipped")
            return "running elsewhere"
        changed = clients_for_changes(ctx.config, getattr(report, "changed_clients", set()) or set())
        for key in sorted(changed):
            app.send_task(TASK_PUBLISH, args=(key, False))
        if changed and jobs.alerts is not None:
            app.send_task(TASK_ALERTS, args=(sorted(changed),))
        return status

    @app.task(name=TASK_PUBLISH, acks_late=True, reject_on_worker_lost=True)
    def publish(client_key: str, reinvite: bool = False) -> None:
        if jobs.publish is None:
            return
        jobs.publish({client_key})  # takes the client's lock (the composition root's publisher)
        if reinvite and jobs.reinvite is not None:
            try:
                jobs.reinvite({client_key})
            except BridgeError as exc:
                log.error("reinvite %s: %s", client_key, exc)

    @app.task(name=TASK_ALERTS, acks_late=True, reject_on_worker_lost=True)
    def alerts(client_keys: list[str]) -> None:
        if jobs.alerts is None:
            return
        try:
            jobs.alerts(set(client_keys))
        except BridgeError as exc:
            log.error("alerts: %s", exc)


class WorkerPresence:
    """A worker's heartbeat row (for `bridge status`), after checking it agrees with the leader."""

    def __init__(self, store: Any, config: Config, every: float = 5.0) -> None:
        from bridge.fingerprint import config_keys
        from bridge.heartbeat import Heartbeat

        self.heartbeat = Heartbeat(store, mode="worker", keys=config_keys(config), every=every)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from bridge.leader import Election

        # The same check a standby makes: a worker with another configuration would sync
        # and publish by other rules than the schedule it serves.
        Election(self.heartbeat.store, self.heartbeat, poll=1.0, stop=self._stop).check_config()
        self.heartbeat.register("worker")
        self._thread = threading.Thread(target=self._beat, name="clearhours-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat.every):
            self.heartbeat.beat()

    def stop(self) -> None:
        self._stop.set()
        self.heartbeat.stopped()


def run_worker(app: Any, *, concurrency: int, queue: str, name: str, loglevel: str = "INFO") -> None:
    """Consume tasks until SIGTERM (warm shutdown: running tasks finish first)."""
    app.worker_main(argv=[
        "worker", "--pool", "threads", "--concurrency", str(concurrency), "--queues", queue,
        "--hostname", name, "--loglevel", loglevel, "--without-gossip", "--without-mingle",
    ])


__all__ = ["make_app", "beat_jobs", "register_tasks", "run_worker", "WorkerPresence", "TASK_SYNC", "TASK_PUBLISH", "TASK_ALERTS"]
