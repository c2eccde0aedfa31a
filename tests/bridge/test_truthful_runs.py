"""A run is `ok` only when every resource completed; interrupted and killed runs say so."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from bridge.config import parse_config
from bridge.models import SyncRun
from bridge.status import collect_status, status_lines
from bridge.store import Store
from tests.bridge.test_sync import FakeConnector, _data, run

NOW = dt.datetime(2025, 3, 20, 12, 0, tzinfo=dt.timezone.utc)


def CtrlC(data: Any, at: int) -> FakeConnector:  # noqa: N802 - reads like the connector it makes
    """A connector that gets KeyboardInterrupt (what Ctrl-C does) on its Nth page request."""
    conn = FakeConnector(data)
    conn.raise_at = (at, KeyboardInterrupt())
    return conn


def _cfg() -> Any:
    return parse_config({"sources": [{"name": "fake", "kind": "harvest"}], "stale_after": "1h"})


def _runs(store: Store) -> list[SyncRun]:
    return store.runs("fake")


def test_ctrl_c_is_recorded_as_interrupted_and_status_says_partial(store: Store) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(CtrlC(_data(10), at=3), store)  # clients is 1 page; entries' second page is request 3
    [last] = _runs(store)
    assert last.status == "interrupted"
    assert last.finished_at is not None
    assert "partial" in (last.error or "")

    st = collect_status(store, _cfg(), dt.datetime.now(dt.timezone.utc))
    [src] = st.sources
    assert src.partial == ("time_entries",)
    assert not st.healthy
    text = "\n".join(status_lines(st))
    assert "PARTIAL" in text and "time_entries" in text


def test_a_completed_run_after_an_interruption_is_ok_and_healthy(store: Store) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(CtrlC(_data(10), at=3), store)
    report = run(FakeConnector(_data(10)), store)
    assert report.status == "ok"
    assert store.counts("fake")["time_entries"] == 10
    st = collect_status(store, _cfg(), dt.datetime.now(dt.timezone.utc))
    assert st.sources[0].partial == ()
    assert st.healthy


def test_a_killed_runs_row_is_closed_at_the_next_start(store: Store) -> None:
    dead = store.start_run("fake")  # a process that was SIGKILLed leaves this row running
    report = run(FakeConnector(_data(4)), store)
    assert report.status == "ok"
    rows = {r.id: r for r in _runs(store)}
    assert rows[dead].status == "killed"
    assert rows[dead].finished_at is not None
    assert "killed" in (rows[dead].error or "")


def test_status_after_a_killed_run_is_partial_until_a_run_completes(store: Store) -> None:
    dead = store.start_run("fake")
    store.start_run("fake")  # the next start closes the dead one; make that one killed too
    rows = _runs(store)
    assert [r.status for r in rows] == ["running", "killed"]
    assert rows[1].id == dead
    with store.session() as s:
        r = s.get(SyncRun, rows[0].id)
        r.status = "killed"
        s.add(r)
        s.commit()
    st = collect_status(store, _cfg(), NOW)
    assert st.sources[0].partial
    assert not st.healthy


def test_bridge_status_exits_1_and_says_partial_after_an_interrupted_sync(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from bridge.cli import cli

    db = tmp_path / "store.db"
    store = Store(f"sqlite:///{db}")
    store.migrate()
    with pytest.raises(KeyboardInterrupt):
        run(CtrlC(_data(10), at=3), store)
    store.close()
    cfg = tmp_path / "bridge.toml"
    cfg.write_text(f'stale_after = "1h"\n[store]\nurl = "sqlite:///{db}"\n'
                   '[[sources]]\nname = "fake"\nkind = "harvest"\naccount_id = "1"\ntoken_env = "HARVEST_TOKEN"\n')
    result = CliRunner().invoke(cli, ["-c", str(cfg), "status"])
    assert result.exit_code == 1
    assert "PARTIAL" in result.output + result.stderr and "time_entries" in result.output + result.stderr
    as_json = CliRunner().invoke(cli, ["-c", str(cfg), "status", "--json"])
    import json

    doc = json.loads(as_json.stdout)
    assert doc["healthy"] is False and doc["sources"][0]["partial"] == ["time_entries"]
