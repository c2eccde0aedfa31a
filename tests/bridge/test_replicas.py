"""Three `bridge run` processes on one store behave as one: real processes, the local sandbox,
SQLite and PostgreSQL. Short intervals (2 s) keep the wall time modest."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bridge.models import AuditEvent, ScheduledJob
from bridge.store import Store
from tests.helpers.runs import stop_all, sync_runs
from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[2]
EVERY = 2.0  # seconds between syncs of one source
SLACK = 2.5  # scheduling and process start-up latency on a busy 2-core machine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sandbox() -> Iterator[object]:
    try:
        from connectors.sandbox import HARVEST_TOKEN, Sandbox, generate_agency
    except ImportError as exc:  # pragma: no cover
        from tests.conftest import skip_or_fail

        skip_or_fail(f"the provider sandbox is not available: {exc}")
    with Sandbox(generate_agency(seed=5, entries=150), rate_limits=False) as sb:
        sb.token = HARVEST_TOKEN  # type: ignore[attr-defined]
        yield sb


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store nobody has created yet: the three processes start on it together."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'replicas.db'}"
        return
    if not PG_URL:
        pytest.skip("BRIDGE_TEST_DATABASE_URL is not set; set it to a PostgreSQL URL to run the store tests there")
    schema = "r_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(Store(PG_URL).url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _config(path: Path, sb: object, store_url: str, site: Path, *, h2_every: str = f"{EVERY:g}s") -> Path:
    from connectors.sandbox import HARVEST_ACCOUNT_ID

    client_id = str(next(iter(sb.agency.clients)))  # type: ignore[attr-defined]
    text = f'[store]\nurl = "{store_url}"\n'
    for name, every in (("h1", f"{EVERY:g}s"), ("h2", h2_every)):
        text += (f'[[sources]]\nname = "{name}"\nkind = "harvest"\nbase_url = "{sb.url("harvest")}"\n'  # type: ignore[attr-defined]
                 f'account_id = "{HARVEST_ACCOUNT_ID}"\ntoken_env = "HARVEST_TOKEN"\nevery = "{every}"\n')
    text += (f'[[clients]]\nkey = "acme"\nname = "Acme"\nsources = {{ h1 = ["{client_id}"] }}\n'
             f'[publish]\ntarget = "file://{site}"\n')
    path.write_text(text, encoding="utf-8")
    return path


def _bridge(cfg: Path, sb: object, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "HARVEST_TOKEN": sb.token, "PYTHONPATH": str(ROOT)}  # type: ignore[attr-defined]
    return subprocess.Popen([sys.executable, "-m", "bridge", "-c", str(cfg), "-v", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except sa.exc.SQLAlchemyError:
            pass  # the store is still being created by the processes under test
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _publishes(store: Store) -> int:
    t = AuditEvent.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t).where(
            t.c.client_key == "acme", t.c.action == "publish")).scalar_one())


def _status(cfg: Path, sb: object) -> dict:
    proc = _bridge(cfg, sb, "status", "--json")
    out, err = proc.communicate(timeout=60)
    return json.loads(out)


def _schedule(store: Store) -> dict[str, tuple[str, str | None]]:
    t = ScheduledJob.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        return {r.id: (r.schedule, r.written_by) for r in conn.execute(sa.select(t))}



def _gaps(runs: list[tuple[str, dt.datetime, str]], source: str) -> list[float]:
    starts = [at for s, at, _ in runs if s == source]
    return [(b - a).total_seconds() for a, b in zip(starts, starts[1:])]


def test_three_processes_behave_as_one_and_the_work_moves_when_the_leader_dies(
    tmp_path: Path, sandbox: object, empty_store_url: str
) -> None:
    sb = sandbox
    cfg = _config(tmp_path / "bridge.toml", sb, empty_store_url, tmp_path / "site")
    # all three start together on a store nobody has created: none may crash
    procs = [_bridge(cfg, sb, "run") for _ in range(3)]
    store = Store(empty_store_url)
    try:
        _wait_for(lambda: sum(1 for s, _, st in sync_runs(store) if s == "h1" and st == "ok") >= 3, 90,
                  "three syncs of h1")
        crashed = [p.communicate(timeout=10)[1][-3000:] for p in procs if p.poll() is not None]
        assert crashed == []

        status = _status(cfg, sb)["scheduler"]
        assert status["running"] is True
        leader_pid = status["leader"]["pid"]
        assert leader_pid in {p.pid for p in procs}
        assert sorted(s["pid"] for s in status["standbys"]) == sorted(p.pid for p in procs if p.pid != leader_pid)

        # exactly one sync per source per interval, by one process: never two starts close together
        runs = sync_runs(store)
        for source in ("h1", "h2"):
            assert all(g > EVERY * 0.5 for g in _gaps(runs, source)), (source, _gaps(runs, source))
        assert all(st in ("ok", "running") for _, _, st in runs)
        # one publish, not one per process: the first sync's (on an empty store the start-up
        # publish waits for it, and a later publish of the same inputs is skipped)
        assert _publishes(store) == 1

        # a replica with another configuration refuses to start and leaves the schedule alone
        before = _schedule(store)
        other = _bridge(_config(tmp_path / "other.toml", sb, empty_store_url, tmp_path / "site", h2_every="5s"), sb, "run")
        _, other_err = other.communicate(timeout=60)
        assert other.returncode == 1
        assert "configuration differs from the leader's (pid" in other_err
        assert "in: sources[h2].every." in other_err
        assert "Traceback" not in other_err
        assert _schedule(store) == before

        # kill -9 the leader: a standby continues the schedule within one interval
        leader = next(p for p in procs if p.pid == leader_pid)
        last_before = max(at for s, at, _ in sync_runs(store) if s == "h1")
        leader.send_signal(signal.SIGKILL)
        killed_at = dt.datetime.now(dt.timezone.utc)
        leader.wait(10)
        _wait_for(lambda: any(s == "h1" and at > killed_at for s, at, _ in sync_runs(store)), 30, "a sync after the kill")
        first_after = min(at for s, at, _ in sync_runs(store) if s == "h1" and at > killed_at)
        assert (first_after - killed_at).total_seconds() <= EVERY + SLACK
        assert (first_after - last_before).total_seconds() <= 2 * EVERY + SLACK

        new_status = _status(cfg, sb)["scheduler"]
        assert new_status["leader"]["pid"] != leader_pid
        assert new_status["leader"]["pid"] in {p.pid for p in procs}
        assert [s["pid"] for s in new_status["standbys"]] == [
            p.pid for p in procs if p.pid not in (leader_pid, new_status["leader"]["pid"])]

        _wait_for(lambda: sum(1 for s, at, _ in sync_runs(store) if s == "h1" and at > killed_at) >= 2, 30,
                  "a second sync after the takeover")
        runs = sync_runs(store)
        for source in ("h1", "h2"):
            after = [(s, at, st) for s, at, st in runs if at > killed_at]
            assert all(g > EVERY * 0.5 for g in _gaps(after, source)), (source, _gaps(after, source))
    finally:
        results = stop_all(procs)
    survivors = [(code, err) for p, (code, err) in zip(procs, results) if p.pid != leader_pid]
    assert [code for code, _ in survivors] == [0, 0], [err[-2000:] for _, err in survivors]
    for _, err in survivors:
        # nobody fought over a source: no "being synced by another process ... skipped" lines
        assert "skipped" not in err
        assert "Traceback" not in err
    store.close()
