"""The sync engine: drive one connector resource by resource into the store.

For each resource: ask for pages updated since (cursor - overlap), normalize each raw
item with the resource's pure normalizer, quarantine what fails, and commit the page's
rows together with the resume point in one transaction. The high-water mark moves only
after the last page committed, and never past the moment the run began, so an edit made
while we paged is fetched next time. Deletions are found by reconciling ids.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from bridge.config import Config, SourceConfig, parse_duration
from bridge.connector import Connector, Context, Page, Resource
from bridge.errors import BridgeError, FatalSourceError, LockedError, NotPermitted, RateLimitedError, RecordError, SourceError
from bridge.models import Synced, utcnow
from bridge.store import Rejected, Store

log = logging.getLogger(__name__)


class Progress(Protocol):
    """What the CLI shows while a source syncs (rich bars on a TTY, plain lines otherwise)."""

    def start(self, source: str, resource: str) -> None: ...
    def advance(self, source: str, resource: str, records: int) -> None: ...
    def done(self, source: str, resource: str) -> None: ...


class Stopped(BridgeError):
    """The run was asked to stop between two pages; everything so far is committed."""


@dataclass
class SourceReport:
    source: str
    # running until it ends; then ok (every resource completed) | failed | skipped |
    # stopped (asked to stop between pages) | interrupted (Ctrl-C or another signal)
    status: str = "running"
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    requests: int = 0
    reconcile_requests: int = 0
    seconds: float = 0.0
    error: str | None = None
    changed_clients: set[tuple[str, str]] = field(default_factory=set)
    resources: dict[str, int] = field(default_factory=dict)
    # resource -> why the token may not read it; those resources were skipped, cursors untouched
    not_permitted: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.new or self.updated or self.deleted)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "status": self.status, "new": self.new, "updated": self.updated,
            "deleted": self.deleted, "quarantined": self.quarantined, "requests": self.requests,
            "reconcile_requests": self.reconcile_requests, "seconds": round(self.seconds, 3),
            "error": self.error, "changed_clients": sorted(f"{s}:{c}" for s, c in self.changed_clients),
            "not_permitted": dict(self.not_permitted),
        }


def _normalize(resource: Resource, items: Iterable[Mapping[str, Any]], ctx: Context) -> tuple[list[Synced], list[Rejected]]:
    records: list[Synced] = []
    rejected: list[Rejected] = []
    for raw in items:
        sid = str(raw.get("id", "")) if isinstance(raw, Mapping) else ""
        try:
            out = resource.normalize(raw, ctx)
        except RecordError as exc:
            rejected.append(Rejected(sid or exc.source_id or "?", exc.field, str(exc), raw))
            continue
        except ValidationError as exc:
            err = exc.errors()[0]
            fld = ".".join(str(p) for p in err["loc"])
            rejected.append(Rejected(sid or "?", fld, f"{fld}: {err['msg']}", raw))
            continue
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            fld = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else ""
            reason = f"missing field {fld!r}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
            rejected.append(Rejected(sid or "?", fld, reason, raw))
            continue
        if out is None:
            continue
        records.extend(out if isinstance(out, list) else [out])
    return records, rejected


def _max_updated(records: list[Synced], current: dt.datetime | None) -> dt.datetime | None:
    best = current
    for r in records:
        if r.updated_at is not None and (best is None or r.updated_at > best):
            best = r.updated_at
    return best


def sync_source(
    connector: Connector,
    store: Store,
    source_cfg: SourceConfig,
    *,
    ctx: Context,
    full: bool = False,
    reconcile: bool | str = True,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    now: Callable[[], dt.datetime] = utcnow,
) -> SourceReport:
    """Sync every resource of one source; a SourceError fails this source only.

    Args:
        full: ignore cursors (fetch everything) and reconcile every id, not just the window.
        reconcile: run the deletion check after fetching: True, False, or "due" (only for
            resources not checked within the source's `reconcile_every`).
        stop: set by the scheduler on SIGTERM; checked between pages.
    """
    name = source_cfg.name
    report = SourceReport(source=name)
    until = store.paused_until(name)
    if until is not None and until > now():
        report.status = "skipped"
        report.error = (
            f"{name}: the provider asked us to wait until {until:%Y-%m-%d %H:%M:%S} UTC (Retry-After); "
            "nothing is asked before then, and the next run after it resumes where the last one stopped"
        )
        return report
    started = time.monotonic()
    run_id = store.start_run(name)
    overlap = dt.timedelta(seconds=source_cfg.overlap_seconds)
    try:
        if full:
            store.reset_cursors(name)
        # Each resource's high-water mark before this run: where the next run asks again
        # if the deletion check finds records the listing should have held and did not.
        marks = {r: (c.value if (c := store.cursor(name, r)) is not None else None) for r in connector.resources}
        for res in connector.resources.values():
            try:
                if res.parent:
                    _sync_child(connector, store, res, ctx, report, overlap, progress, stop)
                else:
                    _sync_resource(connector, store, res, ctx, report, overlap, progress, stop, now)
            except NotPermitted as exc:
                # A valid token without this permission: skip the resource, keep its
                # cursor where it was, and sync the rest of the source.
                report.not_permitted[res.name] = str(exc)
                log.warning("%s", exc)
        if reconcile:
            before = connector.requests
            _reconcile(connector, store, source_cfg, ctx, report, full, now, only_due=reconcile == "due", marks=marks)
            report.reconcile_requests = connector.requests - before
        report.status = "ok"
        # parts a connector read around (Productive budgets behind its projects)
        report.not_permitted.update(getattr(connector, "not_permitted", None) or {})
        if report.not_permitted:
            report.error = " ".join(report.not_permitted.values())  # `bridge status` shows what was skipped
    except Stopped:
        report.status = "stopped"
        report.error = "stopped on request; the next run resumes from the last committed page"
    except SourceError as exc:
        report.status = "failed"
        report.error = str(exc)
        log.error("%s", exc, extra={"event": "sync.failed", "source": name, "resource": exc.resource or None})
        if isinstance(exc, RateLimitedError):
            store.pause_source(name, exc.resume_at)  # type: ignore[arg-type]
    except BridgeError as exc:
        report.status = "failed"
        report.error = f"{name}: {exc}"
        log.error("%s: %s", name, exc)
    except BaseException:
        # Ctrl-C (KeyboardInterrupt) or an unexpected error: the run did not complete, and
        # must never be recorded as ok. Committed pages stay; the next run resumes.
        report.status = "interrupted"
        report.error = "interrupted before every resource completed; the data is partial until the next run resumes it"
        raise
    finally:
        if report.status == "running":  # a path that set nothing is not a success
            report.status = "interrupted"
        report.requests = connector.requests
        report.seconds = time.monotonic() - started
        log.info(
            "%s: %s - %d new, %d updated, %d deleted, %d quarantined, %d requests, %.1f s", name, report.status,
            report.new, report.updated, report.deleted, report.quarantined, report.requests, report.seconds,
            extra={"event": "sync.source", "source": name, "status": report.status, "requests": report.requests,
                   "seconds": report.seconds, "records": report.new + report.updated + report.unchanged},
        )
        store.finish_run(
            run_id, status=report.status, new=report.new, updated=report.updated, deleted=report.deleted,
            quarantined=report.quarantined, requests=report.requests, error=report.error,
            changed_clients=json.dumps(sorted(c for _, c in report.changed_clients)),
        )
    return report


def _check_stop(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise Stopped("stop requested")


def _sync_resource(
    connector: Connector, store: Store, res: Resource, ctx: Context, report: SourceReport,
    overlap: dt.timedelta, progress: Progress | None, stop: threading.Event | None,
    now: Callable[[], dt.datetime],
) -> None:
    source = connector.name
    cur = store.cursor(source, res.name)
    resume = cur.resume if cur else None
    our_start = now()
    if resume and cur is not None:
        # Resuming a killed run: keep its `since` and its start, so the cursor lands
        # where one clean run would have put it.
        started: dt.datetime | None = cur.run_started_at
        pending = cur.pending
    else:
        started, pending = None, None
    since = None
    if res.incremental and cur is not None and cur.value is not None:
        since = cur.value - overlap
    if progress:
        progress.start(source, res.name)
    count = 0
    try:
        try:
            count, started = _pull(connector, store, res, ctx, report, since, resume, pending, started, progress, stop)
        except FatalSourceError:
            if not resume:
                raise
            # A stale resume link (cursor links can expire): start this resource over;
            # upserts are idempotent, so re-reading committed pages is harmless.
            log.warning("%s: could not resume %s; starting it over", source, res.name)
            count, started = _pull(connector, store, res, ctx, report, since, None, None, None, progress, stop)
        after = store.cursor(source, res.name)
        pending = after.pending if after else None
    finally:
        if progress:
            progress.done(source, res.name)
    store.finish_cursor(source, res.name, _next_cursor(cur, started, pending, our_start))
    report.resources[res.name] = count


def _next_cursor(
    cur: Any, started: dt.datetime | None, pending: dt.datetime | None, our_start: dt.datetime
) -> dt.datetime | None:
    """Where the next run of a completed listing asks from.

    The listing saw everything the provider changed before it began, so that moment,
    on the provider's own clock (its Date header), is the cursor: our clock's skew
    cannot hide an edit, and records changed long before it are not asked for again.
    Without a Date header: the newest change seen, never past our own start (a record
    edited while we paged may have moved between pages).
    """
    if started is not None:
        value: dt.datetime | None = started
    else:
        value = min(pending, our_start) if pending is not None else None
    previous = cur.value if cur is not None else None
    if value is None or (previous is not None and value < previous):
        return previous
    return value


def _pull(
    connector: Connector, store: Store, res: Resource, ctx: Context, report: SourceReport,
    since: dt.datetime | None, resume: str | None, pending: dt.datetime | None,
    started: dt.datetime | None, progress: Progress | None, stop: threading.Event | None,
) -> tuple[int, dt.datetime | None]:
    """Page through one resource; returns the item count and the provider's clock at its start."""
    source = connector.name
    http = getattr(connector, "http", None)
    fresh = started is None and not resume
    if fresh and http is not None:
        http.mark_clock()
    count = 0
    for page in prefetch(connector.pages(res.name, since, resume=resume)):
        _check_stop(stop)
        if fresh and count == 0 and http is not None:
            started = http.server_time
        records, rejected = _normalize(res, page.items, ctx)
        pending = _max_updated(records, pending)
        write = store.commit_page(
            source, res.name, res.model, records, rejected,
            resume=page.resume, pending=pending, run_started_at=started,
        )
        _tally(report, write, source)
        for rej in rejected:
            log.warning("%s: quarantined %s %s: %s", source, res.name, rej.source_id, rej.reason,
                        extra={"event": "sync.quarantined", "source": source, "resource": res.name})
        count += len(page.items) or 0
        if progress:
            progress.advance(source, res.name, len(page.items))
    return count, started


_DONE = object()


def prefetch(pages: Iterator[Page], depth: int = 2) -> Iterator[Page]:
    """Fetch the next pages on a worker thread while this one is normalized and committed.

    Order is kept, so resume points stay in sequence; an error from the provider is
    raised here, after the pages before it were handed out. At most `depth` pages wait
    in memory, so a large sync stays streaming.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    cancelled = threading.Event()

    def work() -> None:
        try:
            for page in pages:
                while not cancelled.is_set():
                    try:
                        q.put(page, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if cancelled.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer to raise
            q.put(exc)

    worker = threading.Thread(target=work, name="page-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancelled.set()
        worker.join(timeout=30)


def _tally(report: SourceReport, write: Any, source: str) -> None:
    report.new += write.new
    report.updated += write.updated
    report.unchanged += write.unchanged
    report.quarantined += write.quarantined
    report.changed_clients |= {(source, c) for c in write.clients}


def _sync_child(
    connector: Connector, store: Store, res: Resource, ctx: Context, report: SourceReport,
    overlap: dt.timedelta, progress: Progress | None, stop: threading.Event | None,
) -> None:
    """A child resource (invoice payments) is fetched only for parents changed since its last pass."""
    source = connector.name
    parent = connector.resources[res.parent]  # type: ignore[index]
    cur = store.cursor(source, res.name)
    # Our own clock, not the provider's: a parent row's synced_at moves only when its
    # content changed, so this is exactly "invoices that changed since the last pass".
    mark = utcnow()
    parents = store.changed_rows(source, parent.model, cur.value if cur else None)
    if progress:
        progress.start(source, res.name)
    count = 0
    for row in parents:
        _check_stop(stop)
        pid = row.source_id
        present: set[str] = set()
        if res.parent_filter is None or res.parent_filter(row):
            for page in connector.pages(res.name, None, parent_id=pid):
                records, rejected = _normalize(res, page.items, ctx)
                present |= {r.source_id for r in records} | {r.source_id for r in rejected}
                write = store.commit_page(source, res.name, res.model, records, rejected, resume=None, pending=None, run_started_at=None)
                _tally(report, write, source)
                count += len(page.items)
                if progress:
                    progress.advance(source, res.name, len(page.items))
        if res.parent_key:
            report.deleted += store.reconcile_children(source, res.model, res.parent_key, pid, present)
    if progress:
        progress.done(source, res.name)
    store.finish_cursor(source, res.name, mark)
    report.resources[res.name] = count


def _reconcile(
    connector: Connector, store: Store, source_cfg: SourceConfig, ctx: Context, report: SourceReport,
    full: bool, now: Callable[[], dt.datetime], only_due: bool = False,
    marks: Mapping[str, dt.datetime | None] | None = None,
) -> None:
    source = connector.name
    every = parse_duration(source_cfg.reconcile_every)
    today = ctx.today or now().astimezone(ctx.tz).date()
    overlap = dt.timedelta(seconds=source_cfg.overlap_seconds)
    for res in connector.resources.values():
        if res.parent or res.name in report.not_permitted:
            continue  # a resource we may not read cannot tell us what was deleted
        checked_at = now()
        # Deletion feeds (Productive's activities, FreshBooks' vis_state) first: cheap and
        # exact. Asked from the last check minus the overlap, so nothing falls between.
        cur = store.cursor(source, res.name)
        if only_due and cur is not None and cur.reconciled_at is not None and checked_at - cur.reconciled_at < every:
            continue
        since = cur.reconciled_at - overlap if cur is not None and cur.reconciled_at is not None and not full else None
        deleted = list(connector.deleted_ids(res.name, since))
        if deleted:
            store.clear_quarantine(source, res.name, deleted)  # deleted records are never fixed
            n, clients = store.delete_ids(source, res.model, deleted)
            report.deleted += n
            report.changed_clients |= {(source, c) for c in clients}
        if res.reconcile is not None:
            window = None
            if res.reconcile == "window" and not full:
                window = today - dt.timedelta(days=source_cfg.reconcile_days)
            present = set(connector.ids(res.name, window))
            missing = store.absent_ids(source, res.model, present, window, resource=res.name)
            if missing and marks is not None and res.incremental:
                # The provider holds records its listing never gave us: it moved under us
                # in a way no count showed (a record moved back past our position, say).
                # Keep the old high-water mark, so the next run asks for them again.
                log.warning(
                    "%s: %d %s the provider lists were not in its listing (e.g. %s); the next run asks again from the previous point",
                    source, len(missing), res.name, ", ".join(sorted(missing)[:3]),
                )
                store.rewind_cursor(source, res.name, marks.get(res.name))
            if window is None:
                # a complete listing: a quarantined record it lacks was deleted at the provider
                store.prune_quarantine(source, res.name, present)
            n, clients = store.reconcile(source, res.model, present, window)
            report.deleted += n
            report.changed_clients |= {(source, c) for c in clients}
        store.mark_reconciled(source, res.name, checked_at)


ConnectorFactory = Callable[[SourceConfig], Connector]


def sync_all(
    config: Config,
    store: Store,
    connector_factory: ConnectorFactory,
    *,
    names: list[str] | None = None,
    full: bool = False,
    reconcile: bool | str = True,
    progress: Progress | None = None,
    lock: Callable[[str], AbstractContextManager[Any]] | None = None,
    stop: threading.Event | None = None,
    today: dt.date | None = None,
) -> list[SourceReport]:
    """Sync the named sources (all when None); one source's failure never stops the others."""
    reports = []
    sources = [config.source(n) for n in names] if names else list(config.sources)
    ctx_tz = config.agency.zone
    for src in sources:
        try:
            with (lock(src.name) if lock else nullcontext()):
                connector = connector_factory(src)
                try:
                    ctx = Context(source=src.name, tz=ctx_tz, today=today or utcnow().astimezone(ctx_tz).date())
                    reports.append(
                        sync_source(connector, store, src, ctx=ctx, full=full, reconcile=reconcile, progress=progress, stop=stop)
                    )
                finally:
                    connector.close()
        except LockedError as exc:
            reports.append(SourceReport(source=src.name, status="skipped", error=str(exc)))
        except BridgeError as exc:
            # the source failed before it could sync (a missing secret, say): recorded as a
            # run, so `bridge status` shows the error and its advice
            store.finish_run(store.start_run(src.name, close_stale=False), status="failed", error=str(exc))
            reports.append(SourceReport(source=src.name, status="failed", error=str(exc)))
        if stop is not None and stop.is_set():
            break
    return reports
