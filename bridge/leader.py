"""One scheduler at a time: the leader lock, and standbys that wait for it.

Every `bridge run` (or `bridge beat`) process takes the leader lock before it schedules
anything. The others are standbys: they poll the lock every `poll` seconds and take
over when the leader dies, so the work moves within one sync interval.

- PostgreSQL: a session-level advisory lock held on a dedicated connection. The server
  drops it the moment that connection closes, so a `kill -9` or a lost machine frees
  it without any timeout of ours. The leader checks the connection on every heartbeat:
  if it broke, the lock is gone too and the process stops scheduling and exits.
- SQLite: `flock` on `<db file>.@leader.lock` (a SQLite store is shared only by
  processes on one machine); the kernel frees it when the process dies.
- In-memory SQLite: one process, a process-wide lock.

Configuration agreement: a process compares its configuration fingerprint with the
leader's (bridge.heartbeat) when it starts, on every standby poll, and at the moment it
would take over. A difference is a ConfigError naming the differing keys: the process
refuses to start or to take over, and never touches the schedule.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bridge.errors import ConfigError
from bridge.fingerprint import describe_difference, differing_keys
from bridge.heartbeat import Heartbeat, current_leader
from bridge.locks import lock_key, lock_path
from bridge.store import Store

log = logging.getLogger(__name__)

LEADER = "leader"
_APP_NAME = "clearhours-leader"
_memory_leaders: dict[str, threading.Lock] = {}
_memory_guard = threading.Lock()


class LeaderLock:
    """The leader lock of one store. `try_acquire()` never blocks."""

    def __init__(self, store: Store, label: str) -> None:
        self.store = store
        self.label = label  # "pid N on HOST", shown to whoever asks who holds it
        self.held = False
        self._conn: Any = None
        self._fd: int | None = None
        self._mem: threading.Lock | None = None

    def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.store.dialect == "postgresql":
            self.held = self._pg_try()
        else:
            path = lock_path(self.store, f"@{LEADER}")
            self.held = self._file_try(path) if path is not None else self._memory_try()
        return self.held

    def healthy(self) -> bool:
        """Still held? (PostgreSQL: the connection that holds it still answers.)"""
        if not self.held:
            return False
        if self._conn is None:
            return True
        try:
            return bool(self._conn.execute(
                sa.text("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' "
                        "AND granted AND objsubid = 1 AND classid::bigint = :hi AND objid::bigint = :lo"),
                _halves(lock_key(LEADER, LEADER)),
            ).scalar_one())
        except sa.exc.DBAPIError:
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
            except sa.exc.DBAPIError:
                self._conn.invalidate()  # the session is gone, and its lock with it
            self._conn.close()
            self._conn = None
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
            self._fd = None
        if self._mem is not None and self.held:
            self._mem.release()
        self._mem = None
        self.held = False

    # --- PostgreSQL ------------------------------------------------------------------
    def _pg_try(self) -> bool:
        try:
            if self._conn is None:
                conn = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                conn.execute(sa.text("SELECT set_config('application_name', :n, false)"),
                             {"n": f"{_APP_NAME} {self.label}"[:63]})
                self._conn = conn
            return bool(self._conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"),
                                           {"k": lock_key(LEADER, LEADER)}).scalar_one())
        except sa.exc.DBAPIError as exc:
            log.warning("leader lock: the database did not answer (%s); trying again", exc.__class__.__name__)
            if self._conn is not None:
                self._conn.invalidate()
                self._conn.close()
                self._conn = None
            return False

    # --- SQLite file ---------------------------------------------------------------------
    def _file_try(self, path: Path) -> bool:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, self.label.encode(), 0)
        self._fd = fd
        return True

    def _memory_try(self) -> bool:
        with _memory_guard:
            lock = _memory_leaders.setdefault(self.store.url, threading.Lock())
        if lock.acquire(blocking=False):
            self._mem = lock
            return True
        return False


def _halves(key: int) -> dict[str, int]:
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF}


class Election:
    """Wait as a standby until this process holds the leader lock (or is told to stop)."""

    def __init__(self, store: Store, heartbeat: Heartbeat, *, poll: float, stop: threading.Event) -> None:
        self.store = store
        self.heartbeat = heartbeat
        self.poll = poll
        self.stop = stop
        self.lock = LeaderLock(store, heartbeat.label)

    def check_config(self) -> None:
        """ConfigError when the leader runs with another configuration than ours."""
        leader = current_leader(self.store)
        if leader is None or leader.id == self.heartbeat.id or leader.fingerprint == self.heartbeat.fingerprint:
            return
        keys = differing_keys(self.heartbeat.keys, leader.config_keys)
        raise ConfigError(
            f"this process's configuration differs from the leader's ({leader.label}) in: "
            f"{describe_difference(keys)}. Every process on one store must use the same configuration: "
            "start this one with the leader's config file, or stop every process and restart them all "
            "with the new one"
        )

    def wait(self) -> bool:
        """True once leader; False if `stop` was set while waiting. Raises ConfigError."""
        if self.lock.try_acquire():
            # Nobody else holds the lock, so any leader row still looking fresh belongs to
            # a process that died: a fresh start (with a new configuration) may lead.
            self.heartbeat.register("leader")
            return True
        self.check_config()
        self.heartbeat.register("standby", note="waiting for the leader lock")
        leader = current_leader(self.store)
        log.info("standby: %s is the leader; taking over if it stops", leader.label if leader else "another process")
        beat_due = 0.0
        while not self.stop.wait(self.poll):
            self.check_config()
            if self.lock.try_acquire():
                return self._took_over()
            beat_due += self.poll
            if beat_due >= self.heartbeat.every:
                beat_due = 0.0
                self.heartbeat.beat()
        return False

    def _took_over(self) -> bool:
        try:
            # The leader died a moment ago; if it ran another configuration (it became
            # leader after this standby last looked), do not replace its set of jobs.
            self.check_config()
        except ConfigError:
            self.lock.release()
            raise
        self.heartbeat.beat(role="leader")
        log.warning("took over as leader (%s): the previous leader stopped", self.heartbeat.label)
        return True

    def release(self) -> None:
        self.lock.release()


__all__ = ["LeaderLock", "Election"]
