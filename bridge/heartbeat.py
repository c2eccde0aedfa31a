"""Who is running: one row per `bridge run` / `beat` / `worker` process, kept fresh.

Each process writes its host, pid, role (leader, standby, worker), the fingerprint of its
configuration and a heartbeat every `every` seconds. The leader lock (bridge.leader), not
this table, decides who schedules; the table lets the others compare configurations and
lets `bridge status` name the leader and the standbys, and say "scheduler not running"
once the leader's heartbeat stops (a dead or stalled process writes none).

A process writes only its own row. Rows of processes silent for a day are pruned by
whichever process starts next, so the table stays as small as the fleet.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bridge.fingerprint import fingerprint
from bridge.models import SchedulerProcess, utcnow
from bridge.store import Store

log = logging.getLogger(__name__)

MISSED_BEATS = 3  # a process silent for this many beats (and at least DEAD_AFTER_MIN) is dead
DEAD_AFTER_MIN = dt.timedelta(seconds=5)
PRUNE_AFTER = dt.timedelta(days=1)

_T = SchedulerProcess.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ProcessInfo:
    id: str
    host: str
    pid: int
    mode: str
    role: str
    fingerprint: str
    config_keys: dict[str, str]
    heartbeat_every: float
    started_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    leader_since: dt.datetime | None
    stopped_at: dt.datetime | None
    note: str | None

    def dead_after(self) -> dt.timedelta:
        return max(DEAD_AFTER_MIN, dt.timedelta(seconds=self.heartbeat_every * MISSED_BEATS))

    def alive(self, now: dt.datetime) -> bool:
        return self.stopped_at is None and self.heartbeat_at is not None and now - self.heartbeat_at <= self.dead_after()

    @property
    def label(self) -> str:
        return f"pid {self.pid} on {self.host}"


class Heartbeat:
    """This process's row."""

    def __init__(self, store: Store, *, mode: str, keys: dict[str, str], every: float) -> None:
        self.store = store
        self.mode = mode
        self.keys = keys
        self.fingerprint = fingerprint(keys)
        self.every = every
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.host}:{self.pid}:{secrets.token_hex(3)}"[-120:]
        self.role = "starting"
        self.done = False  # stopped() was written

    @property
    def label(self) -> str:
        return f"pid {self.pid} on {self.host}"

    def register(self, role: str, note: str | None = None) -> None:
        now = utcnow()
        self.role = role
        with self.store.engine.begin() as conn:
            conn.execute(sa.delete(_T).where(_T.c.heartbeat_at < now - PRUNE_AFTER))
            conn.execute(sa.insert(_T).values(
                id=self.id, host=self.host[:255], pid=self.pid, mode=self.mode, role=role,
                fingerprint=self.fingerprint, config_keys=json.dumps(self.keys, sort_keys=True),
                heartbeat_every=self.every, started_at=now, heartbeat_at=now,
                leader_since=now if role == "leader" else None, note=note,
            ))

    def beat(self, *, role: str | None = None, note: str | None = None) -> bool:
        """Write the heartbeat; False (logged) when the store could not be reached."""
        now = utcnow()
        values: dict[str, object] = {"heartbeat_at": now, "note": note}
        if role is not None and role != self.role:
            values["role"] = role
            if role == "leader":
                values["leader_since"] = now
        try:
            with self.store.engine.begin() as conn:
                conn.execute(sa.update(_T).where(_T.c.id == self.id).values(**values))
        except sa.exc.SQLAlchemyError as exc:
            log.warning("heartbeat not written (%s); retrying at the next beat", exc.__class__.__name__)
            return False
        if role is not None:
            self.role = role
        return True

    def stopped(self, note: str | None = None) -> None:
        self.done = True
        try:
            with self.store.engine.begin() as conn:
                conn.execute(sa.update(_T).where(_T.c.id == self.id).values(
                    role="stopped", stopped_at=utcnow(), note=note))
        except sa.exc.SQLAlchemyError:
            pass  # the row goes stale instead: status reads it the same way


def processes(store: Store) -> list[ProcessInfo]:
    """Every recorded process, newest heartbeat first."""
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(_T).order_by(_T.c.heartbeat_at.desc())).all()
    except sa.exc.SQLAlchemyError:
        return []
    return [
        ProcessInfo(
            id=r.id, host=r.host, pid=r.pid, mode=r.mode, role=r.role, fingerprint=r.fingerprint,
            config_keys=json.loads(r.config_keys or "{}"), heartbeat_every=float(r.heartbeat_every),
            started_at=r.started_at, heartbeat_at=r.heartbeat_at, leader_since=r.leader_since,
            stopped_at=r.stopped_at, note=r.note,
        )
        for r in rows
    ]


def current_leader(store: Store, now: dt.datetime | None = None, *, mode: str | None = None) -> ProcessInfo | None:
    """The live process that most recently became leader (of `mode`: run or beat), if any."""
    now = now or utcnow()
    leaders = [p for p in processes(store) if p.role == "leader" and p.alive(now) and (mode is None or p.mode == mode)]
    leaders.sort(key=lambda p: p.leader_since or p.started_at or now, reverse=True)
    return leaders[0] if leaders else None




@dataclass(frozen=True)
class SchedulerStatus:
    """Who schedules on this store, for `bridge status`."""

    leader: ProcessInfo | None
    standbys: tuple[ProcessInfo, ...]
    workers: tuple[ProcessInfo, ...]
    last_leader: ProcessInfo | None  # the newest leader row when none is alive
    ever_ran: bool

    @property
    def running(self) -> bool:
        return self.leader is not None

    @property
    def failed(self) -> bool:
        """A scheduler ran and stopped without being asked to: killed, stalled or crashed."""
        if self.running or self.last_leader is None:
            return False
        return self.last_leader.stopped_at is None or bool(self.last_leader.note)

    def lines(self, ago: Any) -> list[str]:
        if self.leader is not None:
            p = self.leader
            out = [f"  leader: {p.mode} {p.label}, leading since {ago(p.leader_since)}, heartbeat {ago(p.heartbeat_at)}"]
        elif self.last_leader is not None:
            p = self.last_leader
            why = f": {p.note}" if p.note else (" (stopped)" if p.stopped_at else " (its heartbeat stopped)")
            out = [f"  scheduler not running; last leader {p.label}, last heartbeat {ago(p.heartbeat_at)}{why}"]
        else:
            out = ["  scheduler not running: no `bridge run` or `bridge beat` has run on this store"]
        if self.standbys:
            out.append("  standbys: " + ", ".join(p.label for p in self.standbys))
        if self.workers:
            out.append(f"  workers ({len(self.workers)}): " + ", ".join(p.label for p in self.workers))
        return out

    def as_dict(self) -> dict[str, Any]:
        def one(p: ProcessInfo | None) -> dict[str, Any] | None:
            if p is None:
                return None
            return {"host": p.host, "pid": p.pid, "mode": p.mode, "role": p.role,
                    "leader_since": p.leader_since.isoformat() if p.leader_since else None,
                    "heartbeat_at": p.heartbeat_at.isoformat() if p.heartbeat_at else None,
                    "stopped_at": p.stopped_at.isoformat() if p.stopped_at else None, "note": p.note}

        return {"running": self.running, "failed": self.failed, "leader": one(self.leader),
                "last_leader": one(self.last_leader) if not self.running else None,
                "standbys": [one(p) for p in self.standbys], "workers": [one(p) for p in self.workers]}


def scheduler_status(store: Store, now: dt.datetime) -> SchedulerStatus:
    procs = processes(store)
    alive = [p for p in procs if p.alive(now)]
    leader = current_leader(store, now)
    leaders = [p for p in procs if p.leader_since is not None and p.mode in ("run", "beat")]
    leaders.sort(key=lambda p: p.leader_since or now, reverse=True)
    return SchedulerStatus(
        leader=leader,
        standbys=tuple(p for p in alive if p.role == "standby"),
        workers=tuple(p for p in alive if p.mode == "worker"),
        last_leader=None if leader is not None else (leaders[0] if leaders else None),
        ever_ran=any(p.mode in ("run", "beat") for p in procs),
    )


__all__ = ["Heartbeat", "ProcessInfo", "SchedulerStatus", "processes", "current_leader", "scheduler_status"]
