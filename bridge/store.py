"""The store: an engine from a URL, schema migrations, idempotent upserts, cursors, quarantine.

SQLite (the embedded default) runs with WAL and foreign keys on; PostgreSQL goes through
psycopg 3. Every write that a sync makes for one page - its rows, its quarantined
records and its cursor's resume point - is one transaction, so a killed process loses
nothing and duplicates nothing (DESIGN.md invariant 3).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import operator
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel, select

from bridge.errors import StoreError
from bridge.models import (
    SCHEMA_VERSION,
    DescriptionReview,
    SYNCED_MODELS,
    ScheduledJob,
    SchedulerProcess,
    Quarantine,
    SchemaVersion,
    SourceSecret,
    Synced,
    SyncCursor,
    SyncRun,
    TimeEntry,
    table_of,
    utcnow,
)

log = logging.getLogger(__name__)

# Each migration takes the store from version N-1 to N. Version 1 is the initial schema
# (create_all). A later change appends a function here, e.g. ALTER TABLE ... ADD COLUMN;
# `migrate()` runs the missing ones in order inside one transaction and records the
# version, so an upgrade never needs a fresh store.
def _add_description_reviews(conn: Connection) -> None:
    # create_all has usually made it already; checkfirst keeps the step idempotent
    DescriptionReview.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]


MIGRATIONS: dict[int, Callable[[Connection], None]] = {2: _add_description_reviews}


def _add_scheduler_tables(conn: Connection) -> None:
    # The process heartbeats and the leader's persisted schedule (issue 16).
    for model in (SchedulerProcess, ScheduledJob):
        model.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]


MIGRATIONS[3] = _add_scheduler_tables


def _add_published_fingerprint(conn: Connection) -> None:
    # what the last publish of each portal was made from (publish only on change, issue 12)
    columns = {c["name"] for c in sa.inspect(conn).get_columns("portal_links")}
    if "published_fingerprint" not in columns:
        conn.exec_driver_sql("ALTER TABLE portal_links ADD COLUMN published_fingerprint VARCHAR(64)")


MIGRATIONS[4] = _add_published_fingerprint

ANALYZE_EVERY = 20_000  # new rows in a table between planner-statistics refreshes (PostgreSQL)


def normalize_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            _prepare_sqlite_file(Path(path).expanduser())
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if path and path != ":memory:":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    try:
        return sa.create_engine(url, pool_pre_ping=True)
    except (sa.exc.ArgumentError, ModuleNotFoundError) as exc:
        raise StoreError(f"store url {url.split('@')[-1]!r} is not usable: {exc}") from None


def _prepare_sqlite_file(path: Path) -> None:
    """Make the database file's folder, and the file itself readable by its owner only.

    The store holds passphrases, a rotating refresh token and live links. SQLite gives
    its -wal and -shm files the database file's own mode, so creating it 0600 covers them.
    """
    where = f"the store {path}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise StoreError(
            f"{where}: a part of the folder {path.parent} is a file, not a folder; "
            "point [store] url at a path inside a folder"
        ) from None
    except PermissionError:
        raise StoreError(f"{where}: cannot create the folder {path.parent} (permission denied); create it or choose another [store] url") from None
    if path.is_dir():
        raise StoreError(f"{where} is a folder; [store] url must name a database file, e.g. sqlite:///{path / 'clearhours.db'}")
    if not path.exists():
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass  # another process created it first
        except PermissionError:
            raise StoreError(f"{where}: cannot create the file (permission denied on {path.parent}); choose another [store] url") from None
    elif not os.access(path, os.R_OK | os.W_OK):
        raise StoreError(
            f"{where} is not readable and writable by this user; fix its permissions "
            f"(chmod 600 {path}, owned by the user running the bridge) or choose another [store] url"
        )


@dataclass
class PageWrite:
    """What one committed page did, for the run's summary."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    clients: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Rejected:
    """A raw record that failed normalization."""

    source_id: str
    field: str
    reason: str
    payload: Any


class Store:
    """All reads and writes of the normalized store. One instance per process."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        try:
            self.engine = make_engine(self.url)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot open the store: {exc.__class__.__name__}") from None
        self.dialect = self.engine.dialect.name
        self._writers: dict[str, tuple[str, list[str], list[tuple[int, Any]]]] = {}
        self._unanalyzed: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    # --- lifecycle ----------------------------------------------------------------
    def migrate(self) -> int:
        """Create missing tables and run pending migrations; returns the schema version.

        Several processes may start at once on an empty store (`bridge run` beside a cron
        `bridge sync`, replicas): creating tables is check-then-create, so it runs under a
        lock and the others wait, then find the tables made.
        """
        try:
            with self._migration_lock() as conn:
                SQLModel.metadata.create_all(conn)
                return self._migrate_version(conn)
        except sa.exc.DBAPIError as exc:
            raise StoreError(
                f"cannot open the store at {self!r}: {_first_line(exc.orig)}; check [store] url, that the "
                "database server is running and that this user may create tables there"
            ) from None

    @contextmanager
    def _migration_lock(self) -> Iterator[Connection]:
        """One transaction holding the store's creation lock.

        PostgreSQL: a transaction-level advisory lock keyed by the schema, released at
        commit or when the connection dies (a killed process never leaves it held).
        SQLite: `flock` on `<db file>.migrate.lock`, which the kernel releases with the process.
        """
        if self.dialect == "postgresql":
            with self.engine.begin() as conn:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('clearhours.migrate.' || current_schema()))"))
                yield conn
            return
        path = self.sqlite_path()
        if path is None:
            with self.engine.begin() as conn:
                yield conn
            return
        lock_file = path.with_name(path.name + ".migrate.lock")
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with self.engine.begin() as conn:
                yield conn
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def sqlite_path(self) -> Path | None:
        """The database file of a SQLite store (None for PostgreSQL or in-memory)."""
        if self.dialect != "sqlite":
            return None
        database = self.engine.url.database
        if not database or database == ":memory:":
            return None
        return Path(database).expanduser()

    def _migrate_version(self, conn: Connection) -> int:
        row = conn.execute(sa.select(SchemaVersion.__table__.c.version)).first()
        current = row[0] if row else None
        if current is None:
            conn.execute(sa.insert(SchemaVersion.__table__).values(id=1, version=SCHEMA_VERSION, migrated_at=utcnow()))
            return SCHEMA_VERSION
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"the store is at schema version {current}, newer than this bridge ({SCHEMA_VERSION}); upgrade clearhours"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            log.info("store: migrating schema to version %d", version)
            MIGRATIONS[version](conn)
        if current < SCHEMA_VERSION:
            conn.execute(sa.update(SchemaVersion.__table__).values(version=SCHEMA_VERSION, migrated_at=utcnow()))
        return SCHEMA_VERSION

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    # --- upserts ------------------------------------------------------------------
    def _insert(self, table: sa.Table) -> Any:
        return (postgresql if self.dialect == "postgresql" else sqlite).insert(table)

    def commit_page(
        self,
        source: str,
        resource: str,
        model: type[Synced],
        records: Sequence[Synced],
        rejected: Sequence[Rejected] = (),
        *,
        resume: str | None,
        pending: dt.datetime | None,
        run_started_at: dt.datetime | None,
    ) -> PageWrite:
        """Upsert a page's records, quarantine its rejects and move the resume point, atomically."""
        now = utcnow()
        table: sa.Table = model.__table__  # type: ignore[attr-defined]
        write = PageWrite()
        rows = _rows(records, now)
        with self.engine.begin() as conn:
            if rows:
                write = self._upsert(conn, table, source, rows)
                ok_ids = [r["source_id"] for r in rows]
                conn.execute(
                    sa.delete(Quarantine.__table__).where(
                        Quarantine.__table__.c.source == source,
                        Quarantine.__table__.c.resource == resource,
                        Quarantine.__table__.c.source_id.in_(ok_ids),
                    )
                )
            self._keep_statistics(conn, table, write.new)
            for rej in rejected:
                self._quarantine(conn, source, resource, rej, now)
            write.quarantined = len(rejected)
            self._put_cursor(conn, source, resource, resume=resume, pending=pending, run_started_at=run_started_at, now=now)
        return write

    def _upsert(self, conn: Connection, table: sa.Table, source: str, rows: list[dict[str, Any]]) -> PageWrite:
        """Insert new rows, rewrite changed ones, and leave identical ones alone.

        An identical row keeps its `synced_at`, so "changed since" questions (which
        invoices need their payments fetched, which clients need re-publishing) stay exact.
        """
        write = PageWrite()
        has_client = "client_source_id" in table.c
        compared = [k for k in rows[0] if k not in ("id", "synced_at")]
        existing: dict[str, dict[str, Any]] = {}
        ids = [r["source_id"] for r in rows]
        cols = [table.c[k] for k in compared]
        for chunk in _chunks(ids, 900):
            for row in conn.execute(sa.select(*cols).where(table.c.source == source, table.c.source_id.in_(chunk))):
                existing[row.source_id] = row._asdict()
        changed: list[dict[str, Any]] = []
        for r in rows:
            old = existing.get(r["source_id"])
            if old is None:
                write.new += 1
            elif all(_same(old[k], r.get(k)) for k in compared):
                write.unchanged += 1
                continue
            else:
                write.updated += 1
                if has_client and old.get("client_source_id"):
                    write.clients.add(old["client_source_id"])
            if has_client and r.get("client_source_id"):
                write.clients.add(r["client_source_id"])
            changed.append(r)
        if not changed:
            return write
        sql, columns, processors = self._writer(table)
        pick = operator.itemgetter(*columns)
        params = []
        for r in changed:
            values = list(pick(r))
            for i, proc in processors:
                values[i] = proc(values[i])
            params.append(tuple(values))
        conn.exec_driver_sql(sql, params)
        return write

    def _writer(self, table: sa.Table) -> tuple[str, list[str], list[tuple[int, Any]]]:
        """One compiled upsert per table, and each column's own bind processor.

        SQLAlchemy's per-row statement machinery costs more than the database itself at
        tens of thousands of rows a second; the column types' processors keep the exact
        storage format (UTC datetimes, Decimals) the ORM reads back.
        """
        cached = self._writers.get(table.name)
        if cached is not None:
            return cached
        dialect = self.engine.dialect
        quote = dialect.identifier_preparer.quote
        columns = [c.name for c in table.c if c.name != "id"]
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns if c not in ("source", "source_id"))
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join([mark] * len(columns))}) "
            f"ON CONFLICT ({quote('source')}, {quote('source_id')}) DO UPDATE SET {updates}"
        )
        processors = [(i, p) for i, c in enumerate(columns) if (p := table.c[c].type._cached_bind_processor(dialect))]
        self._writers[table.name] = (sql, columns, processors)
        return self._writers[table.name]

    def _keep_statistics(self, conn: Connection, table: sa.Table, new_rows: int) -> None:
        """PostgreSQL: refresh a table's planner statistics as a large first sync fills it.

        Autovacuum analyzes long after the fact; until then the planner believes the table
        holds a few rows and answers "which of these ids exist" by scanning every row of
        the source (seen: 40 ms to a second per page at 130,000 rows, instead of 1 ms).
        """
        if self.dialect != "postgresql" or not new_rows:
            return
        pending = self._unanalyzed.get(table.name, 0) + new_rows
        if pending >= ANALYZE_EVERY:
            conn.exec_driver_sql(f"ANALYZE {self.engine.dialect.identifier_preparer.quote(table.name)}")
            pending = 0
        self._unanalyzed[table.name] = pending

    def upsert(self, records: Sequence[Synced]) -> PageWrite:
        """Upsert records of one model outside a sync (tests, tools)."""
        if not records:
            return PageWrite()
        table = table_of(records[0]).__table__  # type: ignore[attr-defined]
        with self.engine.begin() as conn:
            return self._upsert(conn, table, records[0].source, _rows(records, utcnow()))

    def _quarantine(self, conn: Connection, source: str, resource: str, rej: Rejected, now: dt.datetime) -> None:
        q = Quarantine.__table__
        stmt = self._insert(q).values(
            source=source, resource=resource, source_id=rej.source_id, field=rej.field,
            reason=rej.reason, payload=json.dumps(rej.payload, default=str, ensure_ascii=False)[:20000],
            first_seen_at=now, last_seen_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["source", "resource", "source_id"],
            set_={"field": stmt.excluded.field, "reason": stmt.excluded.reason, "payload": stmt.excluded.payload, "last_seen_at": now},
        )
        conn.execute(stmt)

    # --- cursors --------------------------------------------------------------------
    def cursor(self, source: str, resource: str) -> SyncCursor | None:
        with self.session() as s:
            return s.get(SyncCursor, (source, resource))

    def _put_cursor(self, conn: Connection, source: str, resource: str, *, now: dt.datetime, **values: Any) -> None:
        t = SyncCursor.__table__
        values = {**values, "updated_at": now}
        stmt = self._insert(t).values(source=source, resource=resource, **values)
        stmt = stmt.on_conflict_do_update(index_elements=["source", "resource"], set_=values)
        conn.execute(stmt)

    def finish_cursor(self, source: str, resource: str, value: dt.datetime | None) -> None:
        """The resource ran to its last page: the high-water mark moves, the resume point clears."""
        with self.engine.begin() as conn:
            vals: dict[str, Any] = {"resume": None, "pending": None, "run_started_at": None}
            if value is not None:
                vals["value"] = value
            self._put_cursor(conn, source, resource, now=utcnow(), **vals)

    def mark_reconciled(self, source: str, resource: str, at: dt.datetime) -> None:
        with self.engine.begin() as conn:
            self._put_cursor(conn, source, resource, now=utcnow(), reconciled_at=at)

    def reset_cursors(self, source: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(SyncCursor.__table__).where(SyncCursor.__table__.c.source == source))

    # --- deletions ------------------------------------------------------------------
    def reconcile(
        self, source: str, model: type[Synced], present: set[str], window_start: dt.date | None = None
    ) -> tuple[int, set[str]]:
        """Soft-delete rows of `source` the provider no longer returns (within the window)."""
        t: sa.Table = model.__table__  # type: ignore[attr-defined]
        cond = [t.c.source == source, t.c.is_deleted.is_(False)]
        if window_start is not None and "spent_date" in t.c:
            cond.append(t.c.spent_date >= window_start)
        cols = [t.c.source_id] + ([t.c.client_source_id] if "client_source_id" in t.c else [])
        with self.engine.begin() as conn:
            gone = [r for r in conn.execute(sa.select(*cols).where(*cond)) if r[0] not in present]
            for chunk in _chunks([r[0] for r in gone], 900):
                conn.execute(sa.update(t).where(t.c.source == source, t.c.source_id.in_(chunk)).values(is_deleted=True, synced_at=utcnow()))
        return len(gone), {r[1] for r in gone if len(r) > 1 and r[1]}

    def absent_ids(
        self, source: str, model: type[Synced], present: set[str], window_start: dt.date | None = None,
        resource: str | None = None,
    ) -> set[str]:
        """Ids the provider lists (within the window) that the store lacks or holds as deleted.

        A quarantined record is not absent: the listing gave it, and it waits for a fix.
        """
        t: sa.Table = model.__table__  # type: ignore[attr-defined]
        cond = [t.c.source == source, t.c.is_deleted.is_(False)]
        if window_start is not None and "spent_date" in t.c:
            cond.append(t.c.spent_date >= window_start)
        q = Quarantine.__table__
        with self.engine.connect() as conn:
            live = {r[0] for r in conn.execute(sa.select(t.c.source_id).where(*cond))}
            if resource is not None:
                live |= {r[0] for r in conn.execute(sa.select(q.c.source_id).where(q.c.source == source, q.c.resource == resource))}
        missing = present - live
        if missing and window_start is not None and "spent_date" in t.c:
            # the provider's window may reach a day further (zones); a row we hold just
            # outside ours is not missing
            with self.engine.connect() as conn:
                for chunk in _chunks(sorted(missing), 900):
                    missing -= {r[0] for r in conn.execute(sa.select(t.c.source_id).where(
                        t.c.source == source, t.c.is_deleted.is_(False), t.c.source_id.in_(chunk)))}
        return missing

    # A source the provider asked to wait (Retry-After beyond the configured maximum) keeps
    # the moment it may be asked again in a cursor row of its own.
    PAUSE = "(retry-after)"

    def pause_source(self, source: str, until: dt.datetime | None) -> None:
        with self.engine.begin() as conn:
            self._put_cursor(conn, source, self.PAUSE, now=utcnow(), value=until)

    def paused_until(self, source: str) -> dt.datetime | None:
        cur = self.cursor(source, self.PAUSE)
        return cur.value if cur is not None else None

    def clear_quarantine(self, source: str, resource: str, ids: Iterable[str]) -> int:
        """Forget quarantined records the provider deleted (they will never be fixed)."""
        q = Quarantine.__table__
        n = 0
        with self.engine.begin() as conn:
            for chunk in _chunks(sorted(set(ids)), 900):
                n += conn.execute(sa.delete(q).where(q.c.source == source, q.c.resource == resource, q.c.source_id.in_(chunk))).rowcount or 0
        return n

    def prune_quarantine(self, source: str, resource: str, present: set[str]) -> int:
        """Forget quarantined records absent from a complete id listing of their resource."""
        q = Quarantine.__table__
        with self.engine.connect() as conn:
            held = [r[0] for r in conn.execute(sa.select(q.c.source_id).where(q.c.source == source, q.c.resource == resource))]
        return self.clear_quarantine(source, resource, [i for i in held if i not in present])

    def rewind_cursor(self, source: str, resource: str, value: dt.datetime | None) -> None:
        """Put a resource's high-water mark back (None: list everything next time)."""
        with self.engine.begin() as conn:
            self._put_cursor(conn, source, resource, now=utcnow(), value=value)

    def delete_ids(self, source: str, model: type[Synced], ids: Iterable[str]) -> tuple[int, set[str]]:
        """Soft-delete rows the provider reported deleted (Productive's activity feed)."""
        t: sa.Table = model.__table__  # type: ignore[attr-defined]
        ids = list(set(ids))
        count, clients = 0, set()
        cols = [t.c.source_id] + ([t.c.client_source_id] if "client_source_id" in t.c else [])
        with self.engine.begin() as conn:
            for chunk in _chunks(ids, 900):
                hit = list(conn.execute(sa.select(*cols).where(t.c.source == source, t.c.source_id.in_(chunk), t.c.is_deleted.is_(False))))
                count += len(hit)
                clients |= {r[1] for r in hit if len(r) > 1 and r[1]}
                conn.execute(sa.update(t).where(t.c.source == source, t.c.source_id.in_(chunk)).values(is_deleted=True, synced_at=utcnow()))
        return count, clients

    def changed_rows(self, source: str, model: type[Synced], since: dt.datetime | None) -> list[Any]:
        """Live rows written (new or changed) at/after `since` by our clock; all when None."""
        t: sa.Table = model.__table__  # type: ignore[attr-defined]
        cond = [t.c.source == source, t.c.is_deleted.is_(False)]
        if since is not None:
            cond.append(t.c.synced_at >= since)
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(t).where(*cond).order_by(t.c.source_id)))

    def reconcile_children(self, source: str, model: type[Synced], key: str, parent_id: str, present: set[str]) -> int:
        """Soft-delete a parent's children that the provider no longer lists."""
        t: sa.Table = model.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as conn:
            gone = [r[0] for r in conn.execute(
                sa.select(t.c.source_id).where(t.c.source == source, t.c[key] == parent_id, t.c.is_deleted.is_(False))
            ) if r[0] not in present]
            if gone:
                conn.execute(sa.update(t).where(t.c.source == source, t.c.source_id.in_(gone)).values(is_deleted=True, synced_at=utcnow()))
        return len(gone)

    def changed_since(self, source: str, model: type[Synced], since: dt.datetime | None) -> list[str]:
        """Ids of live rows written (new or changed) at/after `since` by our clock; all when None."""
        t: sa.Table = model.__table__  # type: ignore[attr-defined]
        cond = [t.c.source == source, t.c.is_deleted.is_(False)]
        if since is not None:
            cond.append(t.c.synced_at >= since)
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.select(t.c.source_id).where(*cond).order_by(t.c.source_id))]

    def max_updated_at(self, source: str, model: type[Synced]) -> dt.datetime | None:
        t: sa.Table = model.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.c.updated_at).where(t.c.source == source, t.c.updated_at.is_not(None))
                .order_by(t.c.updated_at.desc()).limit(1)
            ).first()
        return row[0] if row else None

    # --- runs, quarantine, secrets ---------------------------------------------------
    def start_run(self, source: str, *, close_stale: bool = True) -> int:
        """Record a new run of `source`, closing any run of it still marked running.

        Runs of one source are serialized by its sync lock, so a `running` row found here
        belongs to a process that died (SIGKILL, power loss) before it could say so.
        """
        t = SyncRun.__table__
        with self.engine.begin() as conn:
            if close_stale:  # only under the source's sync lock
                conn.execute(
                sa.update(t).where(t.c.source == source, t.c.status == "running").values(
                    status="killed", finished_at=utcnow(),
                    error="the process ended before this run finished (killed or crashed); "
                    "the next run resumed from the last committed page",
                )
            )
            res = conn.execute(sa.insert(SyncRun.__table__).values(source=source, started_at=utcnow(), status="running"))
            return int(res.inserted_primary_key[0])

    def finish_run(self, run_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(SyncRun.__table__).where(SyncRun.__table__.c.id == run_id).values(finished_at=utcnow(), **values))

    def runs(self, source: str | None = None, limit: int = 50) -> list[SyncRun]:
        with self.session() as s:
            q = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)  # type: ignore[union-attr]
            if source:
                q = q.where(SyncRun.source == source)
            return list(s.exec(q))

    def quarantined(self, source: str | None = None) -> list[Quarantine]:
        with self.session() as s:
            q = select(Quarantine).order_by(Quarantine.source, Quarantine.resource, Quarantine.source_id)
            if source:
                q = q.where(Quarantine.source == source)
            return list(s.exec(q))

    def get_secret(self, source: str, name: str) -> str | None:
        with self.session() as s:
            row = s.get(SourceSecret, (source, name))
            return row.value if row else None

    def put_secret(self, source: str, name: str, value: str) -> None:
        """Persist a rotated credential durably before it is used (FreshBooks refresh tokens)."""
        t = SourceSecret.__table__
        with self.engine.begin() as conn:
            stmt = self._insert(t).values(source=source, name=name, value=value, updated_at=utcnow())
            stmt = stmt.on_conflict_do_update(index_elements=["source", "name"], set_={"value": value, "updated_at": utcnow()})
            conn.execute(stmt)

    def counts(self, source: str) -> dict[str, int]:
        """Live rows per resource for one source."""
        out = {}
        with self.engine.connect() as conn:
            for m in SYNCED_MODELS:
                t = m.__table__  # type: ignore[attr-defined]
                out[m.resource] = conn.execute(
                    sa.select(sa.func.count()).select_from(t).where(t.c.source == source, t.c.is_deleted.is_(False))
                ).scalar_one()
        return out

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every synced row without bookkeeping columns: for tests that compare whole stores."""
        out = {}
        skip = {"id", "synced_at"}
        with self.engine.connect() as conn:
            for m in SYNCED_MODELS:
                t = m.__table__  # type: ignore[attr-defined]
                cols = [c for c in t.c if c.name not in skip]
                out[m.resource] = sorted(tuple(r) for r in conn.execute(sa.select(*cols)))
        return out


def _rows(records: Sequence[Synced], now: dt.datetime) -> list[dict[str, Any]]:
    rows = []
    seen: dict[str, int] = {}
    for rec in records:
        if "_sa_instance_state" in rec.__dict__:  # a table instance: read through its attributes
            d = {k: getattr(rec, k) for k in type(rec).model_fields if k != "id"}
        else:  # a plain pydantic record: its fields are its __dict__
            d = dict(rec.__dict__)
            d.pop("id", None)
        d["synced_at"] = now
        d["is_deleted"] = False
        # a page may list the same record twice (a provider's overlap); keep the last
        if d["source_id"] in seen:
            rows[seen[d["source_id"]]] = d
        else:
            seen[d["source_id"]] = len(rows)
            rows.append(d)
    return rows


def _first_line(exc: BaseException | None) -> str:
    return str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else type(exc).__name__


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        if a.tzinfo is None:
            a = a.replace(tzinfo=dt.timezone.utc)
        if b.tzinfo is None:
            b = b.replace(tzinfo=dt.timezone.utc)
    return bool(a == b)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


__all__ = ["Store", "PageWrite", "Rejected", "make_engine", "normalize_url", "TimeEntry"]
