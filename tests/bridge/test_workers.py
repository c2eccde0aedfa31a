"""Celery mode: `bridge beat` queues, `bridge worker` processes share the work, over the Redis
and RabbitMQ this machine runs. Real processes, the local sandbox, short intervals."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.config import parse_config
from bridge.errors import ConfigError
from bridge.store import Store
from tests.helpers.runs import stop_all, sync_runs
from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
BROKERS = {
    "redis": ("127.0.0.1", 6379, "redis://127.0.0.1:6379/0"),
    "rabbitmq": ("127.0.0.1", 5672, "amqp://guest@127.0.0.1:5672//"),
}
BROKER_PASSWORD = {"rabbitmq": "guest"}

pytestmark = pytest.mark.slow


# --- configuration ---------------------------------------------------------------------------


def test_broker_url_is_validated_and_never_holds_a_password() -> None:
    ok = parse_config({"workers": {"broker_url": "redis://127.0.0.1:6379/0"}})
    assert ok.workers.url() == "redis://127.0.0.1:6379/0"
    with pytest.raises(ConfigError) as err:
        parse_config({"workers": {"broker_url": "http://127.0.0.1:6379"}})
    assert str(err.value).startswith("<config>: workers.broker_url: scheme 'http' is not one of redis, rediss, amqp")
    with pytest.raises(ConfigError) as err:
        parse_config({"workers": {"broker_url": "amqp://bridge:hunter2@mq.internal:5672//"}})
    assert "workers.broker_url: holds a password; secrets never go in the file" in str(err.value)
    assert "hunter2" not in str(err.value)
    with pytest.raises(ConfigError, match="workers.visibility_timeout: "):
        parse_config({"workers": {"broker_url": "redis://h/0", "visibility_timeout": "soon"}})


def test_the_broker_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse_config({"workers": {"broker_url": "amqp://bridge@mq.internal:5672/prod", "broker_password_env": "MQ_PW"}})
    with pytest.raises(ConfigError, match="environment variable MQ_PW .* is not set"):
        cfg.workers.url()
    monkeypatch.setenv("MQ_PW", "p@ss/word")
    assert cfg.workers.url() == "amqp://bridge:p%40ss%2Fword@mq.internal:5672/prod"
    with pytest.raises(ConfigError, match="workers.broker_url is not set"):
        parse_config({}).workers.url()


# --- real workers -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[object]:
    from connectors.sandbox import HARVEST_TOKEN, Sandbox, generate_agency

    with Sandbox(generate_agency(seed=7, entries=60), rate_limits=False) as sb:
        sb.token = HARVEST_TOKEN  # type: ignore[attr-defined]
        yield sb


@pytest.fixture(params=list(BROKERS))
def broker(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, str]]:
    """(kind, url, queue): a queue of this test's own on a running broker."""
    try:
        import celery  # noqa: F401
    except ImportError:
        skip_or_fail("Celery is not installed: pip install -e '.[test]' (or '.[celery]')")
    kind = request.param
    host, port, url = BROKERS[kind]
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        skip_or_fail(f"{kind} is not running on {host}:{port} (.ci/run starts it)")
    queue = f"clearhours-test-{uuid.uuid4().hex[:10]}"
    yield kind, url, queue
    from kombu import Connection

    full = url.replace("guest@", "guest:guest@")
    try:
        with Connection(full, connect_timeout=5) as conn:
            conn.default_channel.queue_delete(queue)
    except Exception:  # noqa: BLE001 - cleanup of a test queue; Redis drops empty lists anyway
        pass


def _config(path: Path, sb: object, store_url: str, broker_url: str, queue: str, sources: dict[str, str], *,
            visibility: str = "10m") -> Path:
    from connectors.sandbox import HARVEST_ACCOUNT_ID

    text = f'[store]\nurl = "{store_url}"\n'
    for name, every in sources.items():
        text += (f'[[sources]]\nname = "{name}"\nkind = "harvest"\nbase_url = "{sb.url("harvest")}"\n'  # type: ignore[attr-defined]
                 f'account_id = "{HARVEST_ACCOUNT_ID}"\ntoken_env = "HARVEST_TOKEN"\nevery = "{every}"\n')
    text += f'[workers]\nbroker_url = "{broker_url}"\nqueue = "{queue}"\nconcurrency = 2\nvisibility_timeout = "{visibility}"\n'
    if broker_url.startswith("amqp"):  # RabbitMQ's guest account: the password from the environment
        text += 'broker_password_env = "TEST_BROKER_PASSWORD"\n'
    path.write_text(text, encoding="utf-8")
    return path


def _bridge(cfg: Path, sb: object, kind: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "HARVEST_TOKEN": sb.token, "PYTHONPATH": str(ROOT),  # type: ignore[attr-defined]
           "TEST_BROKER_PASSWORD": BROKER_PASSWORD.get(kind, "")}
    if not env["TEST_BROKER_PASSWORD"]:
        env.pop("TEST_BROKER_PASSWORD")
    return subprocess.Popen([sys.executable, "-m", "bridge", "-c", str(cfg), "-v", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(cond: Callable[[], bool], timeout: float, what: str, procs: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            pytest.fail(f"a process ended while waiting for {what}: {dead[0].communicate()[1][-3000:]}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")



def test_three_workers_share_the_sources_with_one_sync_per_source_per_interval(
    tmp_path: Path, sandbox: object, broker: tuple[str, str, str]
) -> None:
    kind, url, queue = broker
    every = 4.0
    names = [f"s{i:02d}" for i in range(12)]
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    cfg = _config(tmp_path / "bridge.toml", sandbox, store.url, url, queue, {n: f"{every:g}s" for n in names})
    workers = [_bridge(cfg, sandbox, kind, "worker") for _ in range(3)]
    beat = _bridge(cfg, sandbox, kind, "beat")
    procs = [*workers, beat]
    try:
        _wait_for(lambda: all(sum(1 for s, _, st in sync_runs(store) if s == n and st == "ok") >= 3 for n in names),
                  120, "three syncs of every source", procs)
    finally:
        results = stop_all(procs)
    runs = sync_runs(store)
    for name in names:
        starts = [at for s, at, _ in runs if s == name]
        gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:])]
        # one sync per tick: a second copy of a task (or of a backlog) would start at once
        # after the first; a late task may start up to an interval late, so gaps vary
        assert all(g > every * 0.25 for g in gaps), (name, gaps)
        assert len(starts) <= (starts[-1] - starts[0]).total_seconds() / every + 2, (name, len(starts))
    assert {st for _, _, st in runs} <= {"ok", "running", "stopped"}
    worker_logs = [err for _, err in results[:3]]
    done_by = [len(re.findall(r"\bs\d\d: ok\b", err)) for err in worker_logs]
    assert all(n > 0 for n in done_by), done_by  # every worker took a share
    for code, err in results:
        assert code == 0, err[-3000:]
        assert "being synced by another process" not in err and "Traceback" not in err
    store.close()


def test_a_lost_workers_sync_finishes_on_another_worker(
    tmp_path: Path, sandbox: object, broker: tuple[str, str, str]
) -> None:
    kind, url, queue = broker
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    # hourly: beat queues the sync once, so a second run can only be the redelivered task
    cfg = _config(tmp_path / "bridge.toml", sandbox, store.url, url, queue, {"slow": "1h"}, visibility="3s")
    sandbox.clear_faults()  # type: ignore[attr-defined]
    sandbox.inject("harvest", "slow", count=1, path_contains="/time_entries", delay=6.0)  # type: ignore[attr-defined]
    workers = [_bridge(cfg, sandbox, kind, "worker", "--concurrency", "1") for _ in range(2)]
    time.sleep(1.0)
    beat = _bridge(cfg, sandbox, kind, "beat")
    procs = [*workers, beat]
    lock_file = Path(f"{tmp_path / 'store.db'}.slow.lock")
    try:
        _wait_for(lambda: lock_file.exists() and "pid " in lock_file.read_text() and bool(sync_runs(store)), 60,
                  "a worker to start the sync", procs)
        holder = int(re.search(r"pid (\d+)", lock_file.read_text()).group(1))  # type: ignore[union-attr]
        lost = next(w for w in workers if w.pid == holder)
        lost.send_signal(signal.SIGKILL)
        killed_at = dt.datetime.now(dt.timezone.utc)
        lost.wait(10)
        other = next(w for w in workers if w is not lost)
        _wait_for(lambda: any(st == "ok" and at > killed_at for s, at, st in sync_runs(store)), 60,
                  "the lost sync to finish on the other worker", [other, beat])
    finally:
        sandbox.clear_faults()  # type: ignore[attr-defined]
        results = stop_all(procs)
    runs = sync_runs(store)
    # the killed worker's run, found unfinished by the next holder of the source lock
    assert [st for _, at, st in runs if at <= killed_at] == ["killed"], (killed_at, runs)
    assert [st for _, at, st in runs if at > killed_at] == ["ok"]  # the same task, once more, elsewhere
    other_err = results[workers.index(other)][1]
    assert "slow: ok" in other_err
    store.close()
