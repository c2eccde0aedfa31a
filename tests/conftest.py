"""Shared fixtures: stores (SQLite, and PostgreSQL when BRIDGE_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from bridge.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
STRICT = os.environ.get("BRIDGE_TEST_STRICT") == "1"
PG_URL = os.environ.get("BRIDGE_TEST_DATABASE_URL")
NOW = dt.datetime(2025, 3, 20, 12, 0, tzinfo=dt.timezone.utc)


def skip_or_fail(reason: str) -> None:
    """Skip with a visible reason on a user's machine; fail under BRIDGE_TEST_STRICT=1 (CI)."""
    if STRICT:
        pytest.fail(f"BRIDGE_TEST_STRICT=1 but {reason}")
    pytest.skip(reason)


def fixture_json(provider: str, name: str) -> dict:
    return json.loads((FIXTURES / provider / name).read_text(encoding="utf-8"))


@pytest.fixture
def now() -> dt.datetime:
    return NOW


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    s.migrate()
    yield s
    s.close()


def _pg_store() -> Store:
    """A PostgreSQL store in a fresh schema, so tests never see each other's rows."""
    if not PG_URL:
        # Not skip_or_fail: CI runs the suite once on SQLite, then again with this set.
        pytest.skip("BRIDGE_TEST_DATABASE_URL is not set; set it to a PostgreSQL URL to run the store tests there")
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(Store(PG_URL).url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    sep = "&" if "?" in PG_URL else "?"
    s = Store(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")
    s.migrate()
    s._test_schema = schema  # type: ignore[attr-defined]
    return s


def _drop_pg(s: Store) -> None:
    schema = s._test_schema  # type: ignore[attr-defined]
    s.close()
    admin = sa.create_engine(Store(PG_URL).url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """The same test on the embedded default and on PostgreSQL."""
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'store.db'}")
        s.migrate()
        yield s
        s.close()
    else:
        s = _pg_store()
        yield s
        _drop_pg(s)
