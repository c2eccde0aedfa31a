"""A provider that asks for a longer wait than allowed: the source stops, says when, and resumes then."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bridge.errors import RateLimitedError
from bridge.store import Store
from bridge.sync import sync_source
from tests.bridge.test_sync import CTX, SRC, FakeConnector, _data

RESUME_AT = dt.datetime(2025, 3, 20, 13, 0, tzinfo=dt.timezone.utc)


def AsksToWait(data: Any, at: int) -> FakeConnector:  # noqa: N802 - reads like the connector it makes
    conn = FakeConnector(data)
    conn.raise_at = (at, RateLimitedError("fake: wait an hour", source="fake", resource="time_entries", resume_at=RESUME_AT))
    return conn


def _at(hour: int, minute: int = 0):
    return lambda: dt.datetime(2025, 3, 20, hour, minute, tzinfo=dt.timezone.utc)


def test_the_source_stops_waits_and_resumes_where_it_stopped(store: Store) -> None:
    data = _data(10)
    first = sync_source(AsksToWait(data, at=3), store, SRC, ctx=CTX, now=_at(12))
    assert first.status == "failed" and "wait an hour" in (first.error or "")
    assert store.paused_until("fake") == RESUME_AT
    resume = store.cursor("fake", "time_entries").resume
    assert resume is not None

    quiet = FakeConnector(data)
    early = sync_source(quiet, store, SRC, ctx=CTX, now=_at(12, 30))
    assert early.status == "skipped"
    assert "13:00:00 UTC" in (early.error or "") and "Retry-After" in (early.error or "")
    assert quiet.calls == []  # nothing asked before then

    later = FakeConnector(data)
    done = sync_source(later, store, SRC, ctx=CTX, now=_at(13, 1))
    assert done.status == "ok", done.error
    assert store.counts("fake")["time_entries"] == 10
    # clients (1 page) + entries resumed at its second page (3 of 4 pages) + invoices (1 page)
    assert later.page_requests == 1 + 3 + 1
