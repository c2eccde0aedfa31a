"""`bridge run`: sync each source on its schedule, re-publish what changed, keep links fresh.

Wiring only. What a job *does* (sync a source, publish clients, send alerts) is handed in
by the composition root as a `Jobs` object; this module decides *when*.

- One job per source, `sync:<source>`, on its `every` interval (default 5 min) or its
  `cron` expression in the agency's zone; one nightly `reconcile:<source>` that syncs with
  `full=True` so deletions outside the reconcile window are found; one `links:refresh`
  that re-publishes clients whose signed link expires within `publish.refresh_before`.
- Exactly one process schedules: `run_scheduler` first wins the leader lock
  (bridge.leader); other processes wait as standbys and take over when it dies.
- APScheduler keeps the jobs in memory. Only the leader schedules, so nothing needs
  sharing, and APScheduler 3's shared job stores are exactly what it warns against (every
  process fires every job; a job-store error or a job removed by another process kills
  the scheduler thread). What must outlive the process is small: each job's last and
  next run time, in the `scheduled_jobs` table. A new leader (a restart, or a standby
  taking over) continues from there: a run that was due while no leader ran happens once
  (coalesce), never once per missed interval and never twice. The leader writes only
  its own jobs' rows and never deletes one.
- max_instances=1 keeps a slow sync from overlapping itself; the per-source lock
  (bridge.locks) does the same against a `bridge sync` run by hand.
- A watchdog (`serve`) checks the scheduler thread on every tick: if it died, or a job
  is overdue by more than `stall_after`, the process logs why and exits 3, so a service
  manager restarts it; its heartbeat stops, and `bridge status` says so.
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
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bridge.config import Config, parse_duration
from bridge.errors import BridgeError, ConfigError
from bridge.fingerprint import config_keys
from bridge.heartbeat import Heartbeat
from bridge.leader import Election, LeaderLock
from bridge.models import ScheduledJob, utcnow
from bridge.publishing import links_due
from bridge.store import Store

log = logging.getLogger(__name__)

EXIT_SCHEDULER_FAILED = 3  # the scheduler thread died or stalled, or leadership was lost
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
    # Replaces publish + reinvite for the link refresh when both run elsewhere
    # (`bridge beat` queues one task per client that publishes, then re-invites).
    refresh: Callable[[set[str]], Any] | None = None
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
        if ctx.jobs.refresh is not None:
            ctx.jobs.refresh(due)
        else:
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
    """At start-up: bring every portal up to date with the config (visibility may have changed).

    A client none of whose sources has been synced yet waits for its first sync, which
    publishes it; publishing it now would only fail with "run `bridge sync` first".
    """
    from bridge.discovery import never_synced

    ctx = _context(config_path)
    if ctx.jobs.stop.is_set():
        return
    keys = set()
    for c in ctx.config.clients:
        pending = never_synced(ctx.store, c)
        if c.sources and len(pending) == len(c.sources):
            log.info("publish: %s waits for the first sync of %s", c.key, ", ".join(pending))
        else:
            keys.add(c.key)
    _publish(ctx.jobs, keys)


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
    """BackgroundScheduler that never dispatches once shut down, and says why it died.

    APScheduler 3 lets its loop run one more round after `shutdown()`: a job due then is
    handed to the stopped executor, fails, and its next run time still moves on, so the
    run is lost. Skipping that round leaves the job due for the next leader.

    An exception in its loop ends the scheduler thread while the process lives on with
    nothing scheduled; `failure` keeps the reason for the watchdog.
    """

    failure: str | None = None
    store: Store | None = None
    writer: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schedules: dict[str, str] = {}
        # job id -> (last run, next run) waiting to be written by `save_schedule()`
        self._unsaved: dict[str, tuple[dt.datetime, dt.datetime | None]] = {}
        self._unsaved_guard = threading.Lock()

    def note_fired(self, job_id: str, last_run: dt.datetime, next_run: dt.datetime | None) -> None:
        with self._unsaved_guard:
            self._unsaved[job_id] = (last_run, next_run)

    def save_schedule(self) -> None:
        """Write the run times noted since the last call (from the serving thread, never
        the scheduler's: a slow or failing database must not hold or end that thread)."""
        with self._unsaved_guard:
            batch, self._unsaved = self._unsaved, {}
        for job_id, (last_run, next_run) in batch.items():
            try:
                _write_schedule(self.store, job_id, self.schedules[job_id], writer=self.writer,  # type: ignore[arg-type]
                                next_run=next_run, last_run=last_run)
            except sa.exc.SQLAlchemyError as exc:
                log.warning("schedule of %s not saved (%s); retrying", job_id, exc.__class__.__name__)
                with self._unsaved_guard:
                    self._unsaved.setdefault(job_id, (last_run, next_run))

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        return super()._process_jobs()  # type: ignore[no-any-return]

    def _main_loop(self) -> None:
        try:
            super()._main_loop()
        except Exception as exc:
            # The thread ends here, as it would anyway; the watchdog exits the process.
            self.failure = f"{exc.__class__.__name__}: {exc}"
            log.exception("the scheduler thread failed")

    def thread_alive(self) -> bool:
        thread = getattr(self, "_thread", None)
        return thread is not None and thread.is_alive()


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


def _schedule_of(spec: JobSpec) -> str:
    """What makes two schedules the same job: function, arguments' source and trigger."""
    trigger = spec.trigger
    name = spec.args[1] if len(spec.args) > 1 else ""
    return f"{spec.func.__qualname__}({name}) {type(trigger).__name__} {trigger} {getattr(trigger, 'timezone', '')}"[:500]


# --- the persisted schedule --------------------------------------------------------------

_SJ = ScheduledJob.__table__  # type: ignore[attr-defined]


def _stored_schedule(store: Store) -> dict[str, Any]:
    with store.engine.connect() as conn:
        return {r.id: r for r in conn.execute(sa.select(_SJ))}


def _write_schedule(store: Store, job_id: str, schedule: str, *, writer: str | None,
                    next_run: dt.datetime | None, last_run: dt.datetime | None = None) -> None:
    values: dict[str, Any] = {"schedule": schedule, "next_run_at": next_run, "written_by": writer, "updated_at": utcnow()}
    if last_run is not None:
        values["last_run_at"] = last_run
    ins = store._insert(_SJ).values(id=job_id, **values)
    with store.engine.begin() as conn:
        conn.execute(ins.on_conflict_do_update(index_elements=["id"], set_=values))


def _first_run(spec: JobSpec, old: Any, now: dt.datetime) -> dt.datetime | None:
    """When a job of this schedule runs first in this process."""
    if old is not None and old.schedule == _schedule_of(spec):
        if old.next_run_at is not None:
            return old.next_run_at  # type: ignore[no-any-return]
        if old.last_run_at is not None:
            return spec.trigger.get_next_fire_time(old.last_run_at, now)  # type: ignore[no-any-return]
    return now if spec.start_now else spec.trigger.get_next_fire_time(None, now)


def build_scheduler(
    config: Config,
    store: Store,
    jobs: Jobs,
    *,
    config_path: str | None = None,
    publish_on_start: bool = True,
    now: dt.datetime | None = None,
    writer: str | None = None,
) -> Scheduler:
    """A scheduler with this config's jobs added (pending until `start()` or `serve()`).

    A job whose schedule is unchanged continues from its persisted next run time; a new
    or changed one first runs now (the nightly pass: at night). Call it only while
    holding the leader lock (`run_scheduler` does): it writes the schedule's rows.
    """
    path = config_path or str(config.path or "bridge.toml")
    register_context(path, RunContext(config, store, jobs))
    # Threads, not processes: each sync spends its time waiting on HTTP.
    # 16 at most: enough for dozens of sources on short intervals (seen: 60 sources every
    # 10 s fall behind with 8), few enough for SQLite's one writer at a time.
    executor = ThreadPoolExecutor(max_workers=max(2, min(16, len(config.sources) + 1)))
    scheduler = Scheduler(
        jobstores={"default": MemoryJobStore()},
        executors={"default": executor},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=config.agency.zone,
    )
    stored = _stored_schedule(store)
    now = now or utcnow()
    specs = job_specs(config, path)
    schedules = {spec.id: _schedule_of(spec) for spec in specs}
    for spec in specs:
        next_run = _first_run(spec, stored.get(spec.id), now)
        scheduler.add_job(
            spec.func, spec.trigger, args=spec.args, id=spec.id, name=spec.id,
            coalesce=True, max_instances=1, misfire_grace_time=spec.misfire_grace_time, next_run_time=next_run,
        )
        _write_schedule(store, spec.id, schedules[spec.id], writer=writer, next_run=next_run)

    scheduler.store, scheduler.writer, scheduler.schedules = store, writer, schedules

    triggers = {spec.id: spec.trigger for spec in specs}

    def record(event: JobSubmissionEvent) -> None:
        # Runs in the scheduler thread: only noted here, written by serve() (APScheduler
        # 3.11 loses its thread on a failing job-store write, one reason no job store is
        # shared). The next run comes from the trigger, as APScheduler computes it for a
        # coalescing job; looking the job up instead finds nothing once shutdown() has
        # begun on another thread, and would blank the persisted next run.
        if event.job_id in schedules:
            last = event.scheduled_run_times[-1]
            nxt = triggers[event.job_id].get_next_fire_time(last, dt.datetime.now(last.tzinfo))
            scheduler.note_fired(event.job_id, last, nxt)

    scheduler.add_listener(record, EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES)
    if publish_on_start and config.clients:
        scheduler.add_job(publish_all_job, "date", run_date=now, args=(path,), id="publish:start",
                          misfire_grace_time=None)
    return scheduler


# --- running it: leader election, watchdog, heartbeat ----------------------------------------


@dataclass(frozen=True)
class Timing:
    """How often a standby looks for the lock, the heartbeat, and when a job counts as stalled."""

    poll: float
    heartbeat: float
    stall_after: float

    @classmethod
    def for_config(cls, config: Config) -> "Timing":
        # Derived from the shortest sync interval, so a standby takes over well within one
        # interval: a 5-minute schedule polls every 2 s; a 2-second test schedule, 0.2 s.
        shortest = min((s.interval.total_seconds() for s in config.sources if not s.cron), default=300.0)
        poll = min(2.0, max(0.2, shortest / 10))
        heartbeat = min(10.0, max(0.5, shortest / 2))
        return cls(poll=poll, heartbeat=heartbeat, stall_after=max(30.0, 3 * heartbeat))


def scheduler_problem(scheduler: Scheduler, now: dt.datetime, stall_after: float) -> str | None:
    """Why the scheduler is not working, or None while it is."""
    if scheduler.failure is not None:
        return f"the scheduler thread died ({scheduler.failure})"
    if not scheduler.thread_alive():
        return "the scheduler thread is not running"
    overdue = [
        j for j in scheduler.get_jobs()
        if j.next_run_time is not None and (now - j.next_run_time).total_seconds() > stall_after
    ]
    if overdue:
        late = max(now - j.next_run_time for j in overdue)
        return (f"the scheduler stopped firing: {', '.join(sorted(j.id for j in overdue))} overdue by "
                f"{int(late.total_seconds())} s")
    return None


def serve(
    scheduler: Scheduler,
    jobs: Jobs,
    *,
    install_signals: bool = True,
    tick: float = 0.5,
    heartbeat: Heartbeat | None = None,
    leader: LeaderLock | None = None,
    stall_after: float = 60.0,
    failed_stop_grace: float = 30.0,
) -> int:
    """Run until SIGTERM/SIGINT (or `jobs.stop`): 0. The page in flight commits.

    Returns EXIT_SCHEDULER_FAILED, after logging why, when the scheduler thread dies or
    stalls or (PostgreSQL) the leader lock's connection broke. Then running syncs get
    `failed_stop_grace` seconds to commit their page: a stalled scheduler thread may never
    return, and waiting on it would keep a dead scheduler alive.
    """
    stop = jobs.stop
    previous = _install_signals(stop) if install_signals else {}
    code = 0
    since_beat = 0.0
    try:
        scheduler.start()
        log.info("scheduler started with %d job(s)", len(scheduler.get_jobs()))
        while not stop.wait(tick):
            scheduler.save_schedule()
            problem = scheduler_problem(scheduler, dt.datetime.now(dt.timezone.utc), stall_after)
            since_beat += tick
            beat_due = heartbeat is not None and since_beat >= heartbeat.every
            if problem is None and beat_due and leader is not None and not leader.healthy():
                problem = "the leader lock was lost (its database connection broke)"
            if problem is not None:
                log.error("%s; exiting with status %d so that the service manager restarts this process",
                          problem, EXIT_SCHEDULER_FAILED)
                if heartbeat is not None:
                    heartbeat.stopped(problem)
                code = EXIT_SCHEDULER_FAILED
                break
            if beat_due and heartbeat is not None:
                since_beat = 0.0
                heartbeat.beat()
        if code == 0:
            log.info("stopping: letting running syncs commit their current page")
    finally:
        stop.set()
        if scheduler.state != STATE_STOPPED:
            # Stops scheduling first, then waits for running jobs (they see `stop`).
            if code == 0:
                scheduler.shutdown(wait=True)
            else:
                _shutdown_within(scheduler, failed_stop_grace)
        scheduler.save_schedule()
        _restore_signals(previous)
    return code


def _shutdown_within(scheduler: Scheduler, seconds: float) -> None:
    closer = threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, daemon=True, name="scheduler-stop")
    closer.start()
    closer.join(seconds)
    if closer.is_alive():
        log.error("the scheduler did not stop within %.0f s; leaving it behind", seconds)


def _install_signals(stop: threading.Event) -> dict[int, Any]:
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def run_scheduler(
    config: Config,
    store: Store,
    jobs: Jobs,
    *,
    config_path: str,
    mode: str = "run",
    publish_on_start: bool = True,
    timing: Timing | None = None,
    install_signals: bool = True,
    on_leader: Callable[[], None] | None = None,
) -> int:
    """`bridge run` (or `bridge beat`): wait to lead, then schedule until stopped.

    Raises ConfigError when this process's configuration differs from the leader's.
    Returns serve()'s exit status; 0 when stopped while still a standby.
    """
    timing = timing or Timing.for_config(config)
    heartbeat = Heartbeat(store, mode=mode, keys=config_keys(config), every=timing.heartbeat)
    election = Election(store, heartbeat, poll=timing.poll, stop=jobs.stop)
    previous = _install_signals(jobs.stop) if install_signals else {}
    note = None
    try:
        if not election.wait():
            return 0
        if on_leader is not None:
            on_leader()
        scheduler = build_scheduler(config, store, jobs, config_path=config_path,
                                    publish_on_start=publish_on_start, writer=heartbeat.id)
        code = serve(scheduler, jobs, install_signals=False, tick=min(0.5, timing.poll), heartbeat=heartbeat,
                     leader=election.lock, stall_after=timing.stall_after)
        return code
    except ConfigError as exc:
        note = str(exc)[:1000]
        raise
    finally:
        election.release()
        if not heartbeat.done:  # serve() already wrote why the scheduler failed
            heartbeat.stopped(note)
        _restore_signals(previous)


def next_runs(store: Store) -> dict[str, dt.datetime]:
    """The leader's persisted next run time per job id (for `bridge status`)."""
    try:
        return {job_id: row.next_run_at for job_id, row in _stored_schedule(store).items() if row.next_run_at}
    except sa.exc.SQLAlchemyError:
        return {}


__all__ = [
    "Jobs", "RunContext", "Timing", "build_scheduler", "serve", "run_scheduler", "scheduler_problem", "sync_job", "reconcile_job", "refresh_links_job",
    "publish_all_job", "clients_for_changes", "job_specs", "next_runs", "register_context",
]
