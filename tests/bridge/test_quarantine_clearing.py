"""A quarantined record leaves the quarantine when it is fixed or deleted at the provider."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bridge.store import Store
from tests.bridge.test_sync import T0, FakeConnector, _data, run


def _ids(store: Store) -> set[str]:
    return {r.source_id for r in store.quarantined()}


def test_deleted_at_the_provider_leaves_quarantine_on_a_complete_id_check(store: Store) -> None:
    data = _data(5)
    data["time_entries"][1]["date"] = "2025-13-45"
    data["clients"].append({"id": "c2", "name": None, "updated_at": T0.isoformat()})  # no name: quarantined
    run(FakeConnector(data), store)
    assert _ids(store) == {"e001", "c2"}
    data["time_entries"] = [e for e in data["time_entries"] if e["id"] != "e001"]
    data["clients"] = [c for c in data["clients"] if c["id"] != "c2"]
    run(FakeConnector(data), store)
    # clients are checked against every id on each run; entries only over a date window,
    # which a record with an unreadable date cannot be placed in: the full check clears it
    assert _ids(store) == {"e001"}
    run(FakeConnector(data), store, full=True)
    assert _ids(store) == set()


class WithDeletionFeed(FakeConnector):
    def __init__(self, data: Any, gone: list[str]) -> None:
        super().__init__(data)
        self.gone = gone

    def deleted_ids(self, resource: str, since: dt.datetime | None):  # type: ignore[override]
        return iter(self.gone if resource == "time_entries" else [])


def test_a_deletion_feed_clears_quarantine_at_once(store: Store) -> None:
    data = _data(5)
    data["time_entries"][2]["seconds"] = "lots"
    run(FakeConnector(data), store)
    assert _ids(store) == {"e002"}
    data["time_entries"] = [e for e in data["time_entries"] if e["id"] != "e002"]
    run(WithDeletionFeed(data, ["e002"]), store)
    assert _ids(store) == set()


def test_fixed_at_the_provider_leaves_quarantine(store: Store) -> None:
    data = _data(5)
    data["time_entries"][2]["seconds"] = "lots"
    run(FakeConnector(data), store)
    data["time_entries"][2].update(seconds=60, updated_at=(T0 + dt.timedelta(hours=3)).isoformat())
    run(FakeConnector(data), store)
    assert _ids(store) == set()
    assert store.counts("fake")["time_entries"] == 5


def test_a_quarantined_record_does_not_hold_the_cursor_back(store: Store) -> None:
    """The deletion check puts a cursor back when the provider lists records the store lacks;
    a quarantined record is listed and lacking on purpose, and must not do that run after run."""
    data = _data(5)
    data["time_entries"][2]["seconds"] = "lots"
    run(FakeConnector(data), store)
    first = store.cursor("fake", "time_entries").value
    assert first is not None
    data["time_entries"].append({"id": "e100", "client": "c1", "date": "2025-03-12", "seconds": 60,
                                 "updated_at": (T0 + dt.timedelta(days=1)).isoformat()})
    run(FakeConnector(data), store)
    assert store.cursor("fake", "time_entries").value > first
