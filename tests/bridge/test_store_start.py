"""First start of a store: concurrent creation waits on a lock; files are private; clear errors."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from bridge.errors import StoreError
from bridge.models import SCHEMA_VERSION
from bridge.store import Store
from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[2]
STARTERS = 4

# Each child waits for a go file so that all of them create tables at the same moment.
CHILD = """
import sys, time, os
from pathlib import Path
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
from bridge.store import Store
s = Store(sys.argv[1])
print(s.migrate())
s.close()
"""


def _start_together(url: str, tmp_path: Path) -> list[subprocess.CompletedProcess[str]]:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD, url, str(go)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(STARTERS)
    ]
    import time

    time.sleep(1.5)  # let every child import and reach the wait loop
    go.touch()
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def test_concurrent_first_start_on_an_empty_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'store.db'}"
    results = _start_together(url, tmp_path)
    for r in results:
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr
    s = Store(url)
    assert s.migrate() == SCHEMA_VERSION
    assert s.counts("any")["time_entries"] == 0
    s.close()


@pytest.mark.postgres
def test_concurrent_first_start_on_an_empty_postgresql_schema(tmp_path: Path) -> None:
    if not PG_URL:
        pytest.skip("BRIDGE_TEST_DATABASE_URL is not set")
    schema = "start_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(Store(PG_URL).url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in PG_URL else "?"
        url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
        results = _start_together(url, tmp_path)
        for r in results:
            assert r.returncode == 0, r.stderr
            assert "Traceback" not in r.stderr
        with admin.connect() as conn:
            tables = conn.execute(
                sa.text("SELECT count(*) FROM information_schema.tables WHERE table_schema = :s AND table_name = 'schema_version'"),
                {"s": schema},
            ).scalar_one()
        assert tables == 1
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_sqlite_store_and_its_wal_are_private(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    old = os.umask(0o022)
    try:
        s = Store(f"sqlite:///{path}")
        s.migrate()
        s.start_run("harvest")  # a write, so the WAL exists
        wal = path.with_name("store.db-wal")
        assert wal.exists()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600
        s.close()
    finally:
        os.umask(old)


def test_store_whose_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError, match="is a file, not a folder"):
        Store(f"sqlite:///{tmp_path / 'afile' / 'store.db'}")


def test_read_only_store_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can write any file")
    path = tmp_path / "store.db"
    Store(f"sqlite:///{path}").migrate()
    path.chmod(0o400)
    with pytest.raises(StoreError, match="chmod 600"):
        Store(f"sqlite:///{path}")


def test_store_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open the store"):
        Store(f"sqlite:///{path}").migrate()
