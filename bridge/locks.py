"""At most one sync per source, across threads, processes and machines.

Two syncs of one source would page the same cursor twice and race on its resume point,
so every sync takes the source's lock first:

- PostgreSQL: a session-level advisory lock on a stable 64-bit hash of the source name,
  held on a dedicated connection for the whole sync. The server frees it when that
  connection dies, so a `kill -9` never leaves a stale lock. The connection's
  application_name says who holds it, for the "being synced by" message.
- SQLite: `flock` on `<db file>.<source>.lock` beside the database (a store on one disk
  is only shared by processes on one machine). The kernel frees it when the process
  dies; the file keeps the holder's pid and host for the message.
- An in-memory SQLite store lives in one process: a process-wide lock per source.

Usage (bridge.sync.sync_all's `lock` parameter takes `lambda name: source_lock(store, name)`):

    with source_lock(store, "harvest-eu"):
        sync_source(...)
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from bridge.errors import LockedError
from bridge.store import Store

_APP_PREFIX = "clearhours-sync"
_local_locks: dict[tuple[str, str], threading.Lock] = {}
_local_guard = threading.Lock()


def lock_key(source: str, kind: str = "sync") -> int:
    """A stable signed 64-bit key for `source` (the same on every machine and Python run)."""
    digest = hashlib.blake2b(f"clearhours:{kind}:{source}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _holder_label() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


def _busy(source: str, holder: str | None, kind: str = "sync") -> LockedError:
    who = f" ({holder})" if holder else ""
    if kind == "client":
        return LockedError(f"portal {source} is being published by another process{who}")
    return LockedError(f"source {source} is being synced by another process{who}; skipped")


@contextmanager
def source_lock(store: Store, source: str, *, wait: bool = False) -> Iterator[None]:
    """Hold the sync lock of `source` for the `with` block.

    Raises LockedError at once when another holder has it, or with `wait=True` blocks
    until it is free.
    """
    with _named_lock(store, "sync", source, wait):
        yield


@contextmanager
def client_lock(store: Store, client_key: str, *, wait: bool = False) -> Iterator[None]:
    """Hold the publish lock of one portal client: one publish of it at a time, anywhere.

    Same mechanics as `source_lock`; raises LockedError when busy unless `wait`.
    """
    with _named_lock(store, "client", client_key, wait):
        yield


@contextmanager
def _named_lock(store: Store, kind: str, name: str, wait: bool) -> Iterator[None]:
    if store.dialect == "postgresql":
        with _pg_lock(store, name, wait, kind):
            yield
        return
    path = lock_path(store, name) if kind == "sync" else lock_path(store, f"@{kind}.{name}")
    if path is None:
        with _memory_lock(store, f"{kind}:{name}", wait, name, kind):
            yield
        return
    with _file_lock(path, name, wait, kind):
        yield


def lock_path(store: Store, source: str) -> Path | None:
    """The lock file for `source`, or None for an in-memory SQLite store."""
    db = store.engine.url.database
    if not db or db == ":memory:" or db.startswith("file::memory:"):
        return None
    db_path = Path(db).expanduser().resolve()
    return db_path.with_name(f"{db_path.name}.{source}.lock")


@contextmanager
def _file_lock(path: Path, source: str, wait: bool, kind: str = "sync") -> Iterator[None]:
    # Each call opens its own file description: flock then excludes other threads of
    # this process too, not only other processes.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise _busy(source, _read_holder(path), kind) from None
        # Only the holder writes: the label is for the message a loser prints.
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_label().encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return text[:200] or None


@contextmanager
def _memory_lock(store: Store, slot: str, wait: bool, name: str, kind: str) -> Iterator[None]:
    with _local_guard:
        lock = _local_locks.setdefault((store.url, slot), threading.Lock())
    if not lock.acquire(blocking=wait):
        raise _busy(name, "this process", kind)
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _pg_lock(store: Store, source: str, wait: bool, kind: str = "sync") -> Iterator[None]:
    key = lock_key(source, kind)
    conn = store.engine.connect()
    try:
        # Autocommit: the lock is session-level and must not wait on (or be undone by) a
        # transaction; the sync's writes go through other connections.
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(sa.text("SELECT set_config('application_name', :n, false)"), {"n": f"{_APP_PREFIX} {_holder_label()}"[:63]})
        if wait:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        elif not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one():
            holder = _pg_holder(conn, key)
            raise _busy(source, holder, kind)
        try:
            yield
        finally:
            try:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.execute(sa.text("RESET application_name"))
            except sa.exc.DBAPIError:
                # The connection broke: the server already dropped the lock with the
                # session. Do not return it to the pool.
                conn.invalidate()
    finally:
        conn.close()


def _pg_holder(conn: sa.Connection, key: int) -> str | None:
    # An advisory lock on one bigint shows in pg_locks as classid (high 32 bits),
    # objid (low 32 bits) and objsubid 1.
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = conn.execute(
        sa.text(
            "SELECT a.application_name, a.client_addr FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = :hi AND l.objid::bigint = :lo AND l.objsubid = 1"
        ),
        {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF},
    ).first()
    if row is None:
        return None
    name = str(row[0] or "")
    if name.startswith(_APP_PREFIX):
        return name[len(_APP_PREFIX):].strip()
    return f"server session from {row[1]}" if row[1] else None


__all__ = ["source_lock", "client_lock", "lock_key", "lock_path"]
