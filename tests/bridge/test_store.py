"""The store: idempotent upserts, SQLite pragmas, and schema migrations that keep data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from bridge import models, store as store_mod
from bridge.errors import StoreError
from bridge.models import Client, TimeEntry
from bridge.store import Store


def _entry(sid: str, seconds: int, notes: str = "x") -> TimeEntry:
    return TimeEntry.model_validate({"source": "h", "source_id": sid, "spent_date": dt.date(2025, 3, 1),
                                     "seconds": seconds, "notes": notes, "client_source_id": "c1",
                                     "updated_at": dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc)})


def test_upsert_twice_gives_one_row_with_the_newest_values(any_store: Store) -> None:
    first = any_store.upsert([_entry("1", 60), _entry("2", 120)])
    assert (first.new, first.updated) == (2, 0)
    again = any_store.upsert([_entry("1", 60), _entry("2", 180, "changed")])
    assert (again.new, again.updated, again.unchanged) == (0, 1, 1)
    with any_store.session() as s:
        rows = {r.source_id: (r.seconds, r.notes) for r in s.exec(sa.select(TimeEntry)).scalars()}
    assert rows == {"1": (60, "x"), "2": (180, "changed")}


def test_sqlite_runs_with_wal_and_foreign_keys(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_an_older_store_is_migrated_in_place_and_keeps_its_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Store(url)
    assert old.migrate() == models.SCHEMA_VERSION
    old.upsert([Client.model_validate({"source": "h", "source_id": "1", "name": "Acme"})])
    old.close()

    def add_column(conn: sa.Connection) -> None:
        conn.exec_driver_sql("ALTER TABLE clients ADD COLUMN nickname VARCHAR")

    # the next release: one more schema version, with its migration
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", models.SCHEMA_VERSION + 1)
    monkeypatch.setitem(store_mod.MIGRATIONS, models.SCHEMA_VERSION + 1, add_column)
    upgraded = Store(url)
    assert upgraded.migrate() == models.SCHEMA_VERSION + 1
    with upgraded.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT name, nickname FROM clients").all() == [("Acme", None)]
        assert conn.exec_driver_sql("SELECT version FROM schema_version").scalar() == models.SCHEMA_VERSION + 1
    assert upgraded.migrate() == models.SCHEMA_VERSION + 1  # running again is a no-op
    upgraded.close()


def test_a_store_newer_than_the_code_is_refused_with_advice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    Store(url).migrate()
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", models.SCHEMA_VERSION - 1)
    with pytest.raises(StoreError, match="newer than this bridge .* upgrade clearhours"):
        Store(url).migrate()
