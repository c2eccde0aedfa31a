"""`bridge run`: sync each source on its schedule, re-publish what changed, keep links fresh.

Wiring only. What a job *does* (sync a source, publish clients, send alerts) is handed in
by the composition root as a `Jobs` object; this module decides *when*.

- One job per source, `sync:<source>`, on its `every` interval (default 5 min) or its
  `cron` expression in the agency's zone; one nightly `reconcile:<source>` that syncs with
  `full=True` so deletions outside the reconcile window are found; one `links:refresh`
  that re-publishes clients whose signed link expires within `publish.refresh_before`.
- Jobs live in the store's own database (APScheduler's SQLAlchemyJobStore, table
  `bridge_scheduler_jobs`) under stable ids. A restart keeps a job whose trigger did not
  change, with its persisted next run time: a run that was due while the process was
  down happens once (coalesce), never once per missed interval and never twice.
- max_instances=1 keeps a slow sync from overlapping itself inside a process; the
  per-source lock (bridge.locks) does the same across processes.
- The store pickles a job as a reference to a module-level function plus its arguments
  (the config path and the source name), so a restarted process rebuilds its context;
  `register_context` / `context_factory` provide it.
- SIGTERM/SIGINT set `Jobs.stop`: no new job starts, a running sync stops after the page
  it is committing, `serve()` returns 0.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bridge.config import Config, parse_duration
from bridge.errors import BridgeError, ConfigError
from bridge.models import utcnow
from bridge.publishing import links_due
from bridge.store import Store

log = logging.getLogger(__name__)

JOBS_TABLE = "bridge_scheduler_jobs"
RECONCILE_HOUR = 3  # local time in the agency's zone: quiet hours for the providers
LINK_CHECK_MAX = dt.timedelta(hours=1)
LINK_CHECK_MIN = dt.timedelta(minutes=1)
# A nightly reconcile missed by more than this (the process was down all night) waits
# for the next night rather than running in the middle of the working day.
RECONCILE_GRACE = 6 * 3600


@dataclass
class Jobs:
    """What the scheduled jobs do, wired by the composition root (bridge/cli/).

    sync(source, full, stop) -> a bridge.sync.SourceReport (or anything with `status`
    and `changed_clients`); it must take the source lock and honour `stop` between pages.
    publish(client_keys) renders and publishes those clients (and refreshes their links).
    alerts(client_keys) evaluates and sends budget alerts for those clients.
    """

    sync: Callable[[str, bool, threading.Event], Any]
    publish: Callable[[set[str]], Any] | None = None
    alerts: Callable[[set[str]], Any] | None = None
    reinvite: Callable[[set[str]], Any] | None = None  # send refreshed links to those invited before
    verify: Callable[[set[str]], Any] | None = None  # compare those clients' figures with the trackers' (nightly)
    digest: Callable[[], Any] | None = None  # weekly digests that are due (bridge/digest.py sends each once)
    stop: threading.Event = field(default_factory=threading.Event)
    # One publish at a time in this process: a sync job and the link refresh may both
    # want the same client.
    publish_lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class RunContext:
    config: Config
    store: Store
    jobs: Jobs


class _QuietOverlap(logging.Filter):
    """A sync that outlasts its interval is expected (max_instances=1 skips the overlap);
    APScheduler reports each skip as a warning, which would flood the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


logging.getLogger("apscheduler.scheduler").addFilter(_QuietOverlap())
logging.getLogger("apscheduler.executors.default").addFilter(_QuietOverlap())

_contexts: dict[str, RunContext] = {}
_contexts_guard = threading.Lock()
# Set by the composition root: builds the context of a config path a job names when this
# process has not registered it yet.
context_factory: Callable[[str], RunContext] | None = None


def register_context(config_path: str, ctx: RunContext) -> None:
    with _contexts_guard:
        _contexts[config_path] = ctx


def unregister_context(config_path: str) -> None:
    with _contexts_guard:
        _contexts.pop(config_path, None)


def _context(config_path: str) -> RunContext:
    with _contexts_guard:
        ctx = _contexts.get(config_path)
        if ctx is None:
            if context_factory is None:
                raise BridgeError(f"no run context for {config_path}; start the scheduler with `bridge run`")
            ctx = _contexts[config_path] = context_factory(config_path)
        return ctx


# --- what changed -> whom to publish ---------------------------------------------------


def clients_for_changes(config: Config, changed: Iterable[tuple[str, str]]) -> set[str]:
    """Portal client keys whose (source, provider client id) pairs include a changed one."""
    changed = set(changed)
    out = set()
    for c in config.clients:
        for src, ids in c.sources.items():
            if any((src, str(i)) in changed for i in ids):
                out.add(c.key)
                break
    return out


# --- job functions (module level: the job store keeps references to them) ---------------


def sync_job(config_path: str, source: str, full: bool = False) -> None:
    """Sync one source, then re-publish and alert only the clients whose data changed."""
    ctx = _context(config_path)
    jobs = ctx.jobs
    if jobs.stop.is_set():
        return
    report = jobs.sync(source, full, jobs.stop)
    status = getattr(report, "status", "failed")
    if status == "skipped":
        log.info("%s", getattr(report, "error", None) or f"{source}: skipped")
        return
    if status == "failed":
        log.error("%s: sync failed: %s", source, getattr(report, "error", None))
    changed = clients_for_changes(ctx.config, getattr(report, "changed_clients", set()) or set())
    if not changed or jobs.stop.is_set():
        return
    _publish(jobs, changed)
    if jobs.alerts is not None and not jobs.stop.is_set():
        try:
            jobs.alerts(changed)
        except BridgeError as exc:
            log.error("alerts: %s", exc)


def reconcile_job(config_path: str, source: str) -> None:
    """The nightly full pass: every id is checked, so deletions older than the window are found.
    Then the clients of this source are checked against the tracker's own reports (`bridge verify`)."""
    sync_job(config_path, source, True)
    ctx = _context(config_path)
    if ctx.jobs.verify is None or ctx.jobs.stop.is_set():
        return
    keys = {c.key for c in ctx.config.clients if source in c.sources}
    if keys:
        try:
            ctx.jobs.verify(keys)
        except BridgeError as exc:
            log.error("verify %s: %s", ", ".join(sorted(keys)), exc)


def refresh_links_job(config_path: str) -> None:
    """Re-publish (and so re-sign) every client whose link is about to expire or was never issued."""
    ctx = _context(config_path)
    if ctx.jobs.stop.is_set():
        return
    due = set(links_due(ctx.store, ctx.config, utcnow()))
    if due:
        log.info("links: refreshing %s", ", ".join(sorted(due)))
        _publish(ctx.jobs, due)
        if ctx.jobs.reinvite is not None and not ctx.jobs.stop.is_set():
            try:
                ctx.jobs.reinvite(due)
            except BridgeError as exc:
                log.error("reinvite: %s", exc)
    if ctx.jobs.digest is not None and not ctx.jobs.stop.is_set():
        # the links job runs all day; the digest sends each client's week once (audit trail)
        try:
            ctx.jobs.digest()
        except BridgeError as exc:
            log.error("digest: %s", exc)


def publish_all_job(config_path: str) -> None:
    """At start-up: bring every portal up to date with the config (visibility may have changed)."""
    ctx = _context(config_path)
    if not ctx.jobs.stop.is_set():
        _publish(ctx.jobs, {c.key for c in ctx.config.clients})


def _publish(jobs: Jobs, keys: set[str]) -> None:
    if jobs.publish is None or not keys:
        return
    with jobs.publish_lock:
        try:
            jobs.publish(keys)
        except BridgeError as exc:
            log.error("publish %s: %s", ", ".join(sorted(keys)), exc)


# --- building the schedule ---------------------------------------------------------------


class Scheduler(BackgroundScheduler):
    """BackgroundScheduler that never dispatches once shut down.

    APScheduler 3 lets its loop run one more round after `shutdown()`: a job due then is
    handed to the stopped executor, fails, and its next run time still moves on, so the
    run is lost across the restart. Skipping that round leaves the job due in the store.
    """

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        return super()._process_jobs()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: Callable[..., None]
    trigger: Any
    args: tuple[Any, ...]
    misfire_grace_time: int | None
    start_now: bool = True  # a new job runs at once; False waits for its trigger (nightly)


def _trigger_for(config: Config, source: str) -> Any:
    src = config.source(source)
    zone = config.agency.zone
    if src.cron:
        try:
            return CronTrigger.from_crontab(src.cron, timezone=zone)
        except ValueError as exc:
            raise ConfigError(f"sources '{source}': cron {src.cron!r} is not a crontab expression: {exc}") from None
    return IntervalTrigger(seconds=max(1, int(src.interval.total_seconds())), timezone=zone)


def _spread_minute(name: str) -> int:
    # Stagger the nightly passes so several sources do not hit the providers at once.
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=2).digest(), "big") % 60


def job_specs(config: Config, config_path: str) -> list[JobSpec]:
    """The jobs this config asks for, with stable ids."""
    zone = config.agency.zone
    specs = []
    for src in config.sources:
        specs.append(JobSpec(f"sync:{src.name}", sync_job, _trigger_for(config, src.name), (config_path, src.name), None))
        specs.append(JobSpec(
            f"reconcile:{src.name}", reconcile_job,
            CronTrigger(hour=RECONCILE_HOUR, minute=_spread_minute(src.name), timezone=zone),
            (config_path, src.name), RECONCILE_GRACE, start_now=False,
        ))
    if config.clients:
        before = parse_duration(config.publish.refresh_before)
        every = min(max(before / 4, LINK_CHECK_MIN), LINK_CHECK_MAX)
        # start_now=False: the start-up publish covers the first round
        specs.append(JobSpec(
            "links:refresh", refresh_links_job, IntervalTrigger(seconds=int(every.total_seconds()), timezone=zone),
            (config_path,), None, start_now=False,
        ))
    return specs


def _same_schedule(job: Any, spec: JobSpec) -> bool:
    def shape(trigger: Any) -> tuple[Any, ...]:
        return (type(trigger).__name__, str(trigger), str(getattr(trigger, "timezone", "")))

    return (
        job.func_ref == f"{spec.func.__module__}:{spec.func.__qualname__}"
        and tuple(job.args) == spec.args
        and shape(job.trigger) == shape(spec.trigger)
    )


def _job_store(store: Store) -> BaseJobStore:
    db = store.engine.url.database
    if store.dialect == "sqlite" and (not db or db == ":memory:"):
        return MemoryJobStore()  # an in-memory store cannot outlive the process anyway
    return SQLAlchemyJobStore(engine=store.engine, tablename=JOBS_TABLE)


def build_scheduler(
    config: Config,
    store: Store,
    jobs: Jobs,
    *,
    config_path: str | None = None,
    publish_on_start: bool = True,
    now: dt.datetime | None = None,
) -> Scheduler:
    """A scheduler with this config's jobs added (pending until `start()` or `serve()`).

    Jobs already in the store with the same schedule keep their persisted next run
    time; new or changed ones first run now; jobs of removed sources are dropped.
    """
    path = config_path or str(config.path or "bridge.toml")
    register_context(path, RunContext(config, store, jobs))
    jobstore = _job_store(store)
    # Threads, not processes: each sync spends its time waiting on HTTP.
    executor = ThreadPoolExecutor(max_workers=max(2, min(8, len(config.sources) + 1)))
    scheduler = Scheduler(
        jobstores={"default": jobstore, "volatile": MemoryJobStore()},
        executors={"default": executor},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=config.agency.zone,
    )
    # Read what the store holds before anything is replaced.
    jobstore.start(scheduler, "default")
    existing = {j.id: j for j in jobstore.get_all_jobs()}
    now = now or utcnow()
    specs = job_specs(config, path)
    for spec in specs:
        old = existing.get(spec.id)
        if old is not None and _same_schedule(old, spec):
            next_run = old.next_run_time
        else:
            next_run = now if spec.start_now else spec.trigger.get_next_fire_time(None, now)
        scheduler.add_job(
            spec.func, spec.trigger, args=spec.args, id=spec.id, name=spec.id, jobstore="default",
            replace_existing=True, coalesce=True, max_instances=1,
            misfire_grace_time=spec.misfire_grace_time, next_run_time=next_run,
        )
    wanted = {s.id for s in specs}
    for job_id in existing:
        if job_id not in wanted:
            jobstore.remove_job(job_id)
    if publish_on_start and config.clients:
        scheduler.add_job(publish_all_job, "date", run_date=now, args=(path,), id="publish:start",
                          jobstore="volatile", misfire_grace_time=None)
    return scheduler


def serve(scheduler: Scheduler, jobs: Jobs, *, install_signals: bool = True, tick: float = 0.5) -> int:
    """Run until SIGTERM/SIGINT (or `jobs.stop` is set); the page in flight commits; 0."""
    stop = jobs.stop
    previous: dict[int, Any] = {}
    if install_signals and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        scheduler.start()
        log.info("scheduler started with %d job(s)", len(scheduler.get_jobs()))
        while not stop.wait(tick):
            pass
        log.info("stopping: letting running syncs commit their current page")
    finally:
        stop.set()
        if scheduler.running:
            # Stops scheduling first, then waits for running jobs (they see `stop`).
            scheduler.shutdown(wait=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def next_runs(store: Store) -> dict[str, dt.datetime]:
    """Persisted next run time per job id, read without unpickling (for `bridge status`)."""
    if store.dialect == "sqlite" and store.engine.url.database in (None, "", ":memory:"):
        return {}
    try:
        if not sa.inspect(store.engine).has_table(JOBS_TABLE):
            return {}
        with store.engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT id, next_run_time FROM {JOBS_TABLE}")).all()
    except sa.exc.SQLAlchemyError:
        return {}
    return {
        str(r[0]): dt.datetime.fromtimestamp(float(r[1]), dt.timezone.utc) for r in rows if r[1] is not None
    }


__all__ = [
    "Jobs", "RunContext", "build_scheduler", "serve", "sync_job", "reconcile_job", "refresh_links_job",
    "publish_all_job", "clients_for_changes", "job_specs", "next_runs", "register_context",
]
