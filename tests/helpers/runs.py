"""For tests that watch several processes share the work: what the sync_runs table says,
and stopping the processes."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess

import sqlalchemy as sa

from bridge.models import SyncRun
from bridge.store import Store


def sync_runs(store: Store) -> list[tuple[str, dt.datetime, str]]:
    """(source, started_at, status) of every run, oldest first."""
    t = SyncRun.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute(sa.select(t.c.source, t.c.started_at, t.c.status).order_by(t.c.id))]


def stop_all(procs: list[subprocess.Popen[str]]) -> list[tuple[int | None, str]]:
    """SIGTERM every process still running, then (return code, stderr) of each; a process
    that does not stop within 60 s is killed."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    out = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
        out.append((p.returncode, err))
    return out
