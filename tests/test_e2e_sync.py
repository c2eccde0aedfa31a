"""End to end over real HTTP: sandbox -> connector -> store, on SQLite and on PostgreSQL.

The properties of issue "Core sync path": a re-run changes nothing, and a process killed
after any page, then run again, leaves exactly the store one clean run leaves.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.config import parse_config
from bridge.connector import Context
from bridge.http import RetryPolicy
from bridge.store import Store
from bridge.sync import sync_source
from connectors import CONNECTORS, build_connector
from connectors.sandbox import Sandbox, generate_agency
from tests.helpers.sandbox_sources import fast_source_block

TODAY = dt.date(2025, 3, 20)


class Killed(BaseException):
    """Stands for SIGKILL: not an error the engine may catch and tidy up after."""


class KillAfter:
    """Proxies a connector and dies after `pages` pages have been handed to the engine."""

    def __init__(self, inner: Any, pages: int) -> None:
        self.inner, self.left = inner, pages

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def pages(self, *args: Any, **kw: Any):  # type: ignore[no-untyped-def]
        for page in self.inner.pages(*args, **kw):
            if self.left == 0:
                raise Killed()
            self.left -= 1
            yield page


def _setup(box: Sandbox, provider: str) -> Any:
    block, env = fast_source_block(provider, box.url(provider))
    os.environ.update(env)
    return parse_config({"agency": {"timezone": box.agency.timezone}, "sources": [block]})


def _sync(cfg: Any, store: Store, kill_after: int | None = None) -> Any:
    src = cfg.sources[0]
    conn = build_connector(src, tz=cfg.agency.zone, store=store, retry=RetryPolicy(attempts=3, sleep=lambda s: None))
    if kill_after is not None:
        conn = KillAfter(conn, kill_after)
    try:
        return sync_source(conn, store, src, ctx=Context(source=src.name, tz=cfg.agency.zone, today=TODAY))
    finally:
        conn.close()


@pytest.fixture(scope="module")
def box() -> Sandbox:
    with Sandbox(generate_agency(seed=3, today=TODAY, entries=600), rate_limits=False) as sb:
        yield sb


def _fresh_provider_state(box: Sandbox) -> None:
    for mounted in box.mounts:  # each store is a new installation (FreshBooks tokens are single-use)
        make_state = getattr(mounted.module, "make_state", None)
        if make_state:
            mounted.state = make_state(box.agency)


@pytest.mark.parametrize("provider", sorted(CONNECTORS))
def test_sync_over_http_then_rerun_changes_nothing(box: Sandbox, any_store: Store, provider: str) -> None:
    _fresh_provider_state(box)
    cfg = _setup(box, provider)
    first = _sync(cfg, any_store)
    assert first.status == "ok", first.error
    assert any_store.counts(provider)["time_entries"] == len(box.agency.entries)
    snap = any_store.snapshot()
    again = _sync(cfg, any_store)
    assert again.status == "ok", again.error
    assert (again.new, again.updated, again.deleted, again.quarantined) == (0, 0, 0, 0)
    assert not again.changed_clients
    assert any_store.snapshot() == snap


def _killed_then_resumed(box: Sandbox, provider: str, store: Store, kill_after: int) -> dict:
    cfg = _setup(box, provider)
    with pytest.raises(Killed):
        _sync(cfg, store, kill_after=kill_after)
    done = _sync(cfg, store)
    assert done.status == "ok", done.error
    return store.snapshot()


@pytest.mark.parametrize("provider", sorted(CONNECTORS))
def test_killed_after_a_page_then_resumed_equals_a_clean_run_on_both_databases(
    box: Sandbox, any_store: Store, tmp_path: Path, provider: str
) -> None:
    _fresh_provider_state(box)
    clean = Store(f"sqlite:///{tmp_path / 'clean.db'}")
    clean.migrate()
    assert _sync(_setup(box, provider), clean).status == "ok"
    expected = clean.snapshot()
    _fresh_provider_state(box)
    assert _killed_then_resumed(box, provider, any_store, kill_after=3) == expected


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(provider=st.sampled_from(sorted(CONNECTORS)), kill_after=st.integers(min_value=0, max_value=14))
def test_property_kill_after_any_page_then_resume_equals_clean_run(
    box: Sandbox, tmp_path_factory: pytest.TempPathFactory, provider: str, kill_after: int
) -> None:
    d = tmp_path_factory.mktemp("kill")
    _fresh_provider_state(box)
    clean = Store(f"sqlite:///{d / 'clean.db'}")
    clean.migrate()
    assert _sync(_setup(box, provider), clean).status == "ok"
    _fresh_provider_state(box)
    killed = Store(f"sqlite:///{d / 'killed.db'}")
    killed.migrate()
    cfg = _setup(box, provider)
    try:
        _sync(cfg, killed, kill_after=kill_after)
    except Killed:
        pass
    assert _sync(cfg, killed).status == "ok"
    assert killed.snapshot() == clean.snapshot()
    rerun = _sync(cfg, killed)
    assert (rerun.new, rerun.updated, rerun.deleted) == (0, 0, 0)
    clean.close()
    killed.close()
