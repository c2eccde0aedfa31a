"""What the sync_runs table says, for tests that watch several processes share the work."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from bridge.models import SyncRun
from bridge.store import Store


def sync_runs(store: Store) -> list[tuple[str, dt.datetime, str]]:
    """(source, started_at, status) of every run, oldest first."""
    t = SyncRun.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute(sa.select(t.c.source, t.c.started_at, t.c.status).order_by(t.c.id))]
