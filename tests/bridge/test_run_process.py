"""Process-level: `bridge run` killed mid-sync loses and duplicates nothing; concurrent syncs of
one source across processes: exactly one syncs. Real processes against the local sandbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bridge.models import SyncRun, TimeEntry
from bridge.store import Store

ROOT = Path(__file__).resolve().parents[2]
ENTRIES = 3000  # two Harvest pages of time entries (2000 per page)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sandbox() -> Iterator[object]:
    try:
        from connectors.sandbox import HARVEST_TOKEN, Sandbox, generate_agency
    except ImportError as exc:  # pragma: no cover
        from tests.conftest import skip_or_fail

        skip_or_fail(f"the provider sandbox is not available: {exc}")
    with Sandbox(generate_agency(seed=11, entries=ENTRIES), rate_limits=False) as sb:
        sb.token = HARVEST_TOKEN  # type: ignore[attr-defined]
        yield sb


def _config(tmp_path: Path, sb: object, store_url: str, name: str = "bridge.toml", every: str = "2s") -> Path:
    path = tmp_path / name
    path.write_text(
        f'[store]\nurl = "{store_url}"\n'
        f'[[sources]]\nname = "harvest"\nkind = "harvest"\nbase_url = "{sb.url("harvest")}"\n'  # type: ignore[attr-defined]
        f'account_id = "100001"\ntoken_env = "HARVEST_TOKEN"\nevery = "{every}"\n',
        encoding="utf-8",
    )
    return path


def _bridge(cfg: Path, *args: str, sb: object) -> subprocess.Popen[str]:
    env = {**os.environ, "HARVEST_TOKEN": sb.token, "PYTHONPATH": str(ROOT)}  # type: ignore[attr-defined]
    return subprocess.Popen(
        [sys.executable, "-m", "bridge", "-c", str(cfg), *args], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.03)
    pytest.fail(f"timed out waiting for {what}")


def _runs(store: Store) -> list[tuple[int, str]]:
    t = SyncRun.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        return [(r[0], r[1]) for r in conn.execute(sa.select(t.c.id, t.c.status).order_by(t.c.id))]


def _entries(store: Store) -> int:
    t = TimeEntry.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    if proc.poll() is None:
        proc.kill()
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


def test_kill_9_mid_sync_then_restart_equals_one_clean_sync(tmp_path: Path, sandbox: object) -> None:
    sb = sandbox
    store = Store(f"sqlite:///{tmp_path / 'run.db'}")
    store.migrate()
    cfg = _config(tmp_path, sb, store.url)
    # Every time-entries page takes a while, so the kill lands between two of them.
    sb.clear_faults()  # type: ignore[attr-defined]
    sb.inject("harvest", "slow", count=50, path_contains="/time_entries", delay=1.0)  # type: ignore[attr-defined]
    first = _bridge(cfg, "run", "--no-publish", sb=sb)
    try:
        _wait_for(lambda: _entries(store) > 0, 60, "the first page of time entries to commit")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        _stop(first)
    assert first.returncode == -signal.SIGKILL
    killed_at = _entries(store)
    assert 0 < killed_at < ENTRIES, "the kill did not land mid-sync"
    assert _runs(store)[-1][1] == "running"  # the killed run never finished
    last_killed = _runs(store)[-1][0]
    sb.clear_faults()  # type: ignore[attr-defined]

    second = _bridge(cfg, "run", "--no-publish", sb=sb)
    try:
        _wait_for(lambda: any(i > last_killed and s == "ok" for i, s in _runs(store)), 60, "a sync after the restart")
        second.send_signal(signal.SIGTERM)
        code, _, err = _stop_after(second, 60)
    finally:
        _stop(second)
    assert code == 0, err  # SIGTERM is a clean stop

    clean = Store(f"sqlite:///{tmp_path / 'clean.db'}")
    clean.migrate()
    once = _bridge(_config(tmp_path, sb, clean.url, "clean.toml"), "sync", sb=sb)
    ccode, cout, cerr = _stop_after(once)
    assert ccode == 0, cerr
    got, want = store.snapshot(), clean.snapshot()
    assert {k: len(v) for k, v in got.items()} == {k: len(v) for k, v in want.items()}
    assert got == want
    assert len(want["time_entries"]) == ENTRIES
    store.close()
    clean.close()


def _stop_after(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_two_concurrent_syncs_of_one_source_exactly_one_syncs(
    tmp_path: Path, sandbox: object, any_store: Store
) -> None:
    sb = sandbox
    cfg = _config(tmp_path, sb, any_store.url)
    sb.clear_faults()  # type: ignore[attr-defined]
    sb.inject("harvest", "slow", count=1, path_contains="/time_entries", delay=2.5)  # type: ignore[attr-defined]
    a = _bridge(cfg, "sync", "--json", sb=sb)
    try:
        _wait_for(lambda: bool(_runs(any_store)), 60, "the first sync to start")
        b = _bridge(cfg, "sync", "--json", sb=sb)
        bcode, bout, berr = _stop_after(b)
        acode, aout, aerr = _stop_after(a)
    finally:
        _stop(a)
    sb.clear_faults()  # type: ignore[attr-defined]
    assert (acode, bcode) == (0, 0), aerr + berr
    [ra], [rb] = json.loads(aout), json.loads(bout)
    assert ra["status"] == "ok" and ra["new"] > ENTRIES
    assert rb["status"] == "skipped" and rb["new"] == 0 and rb["requests"] == 0
    assert f"source harvest is being synced by another process (pid {a.pid}" in rb["error"]
    assert [s for _, s in _runs(any_store)] == ["ok"]  # one run recorded, by the one that synced
    assert _entries(any_store) == ENTRIES


def test_after_a_scheduler_failure_a_stuck_thread_does_not_keep_the_process_alive() -> None:
    # exit 3 must reach the service manager even when the stuck job that stalled the
    # scheduler never returns (interpreter exit would otherwise wait for it for ever)
    script = (
        "import threading\n"
        "from bridge.cli.base import exit_scheduler\n"
        "threading.Thread(target=threading.Event().wait, daemon=False).start()\n"
        "exit_scheduler(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], timeout=60, capture_output=True)
    assert done.returncode == 3, done.stderr
