"""`bridge store copy`: a new store keeps the current FreshBooks refresh token; the old one loses it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.store import Store
from connectors.freshbooks import REFRESH_TOKEN
from connectors.sandbox import Sandbox

from tests.onboarding.conftest import write_config


def test_copy_to_another_store_keeps_the_installation_working(accounts: Sandbox, tmp_path: Path,
                                                              any_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = write_config(accounts, tmp_path / "old", monkeypatch=monkeypatch, clients=[
        {"key": "heron", "name": "Blue Heron Studio", "sources": {"harvest": ["5201002"], "freshbooks": ["412207"]}}])
    runner = CliRunner()
    assert runner.invoke(cli, ["-c", str(conf), "sync"]).exit_code == 0
    old_url = f"sqlite:///{tmp_path / 'old' / 'clearhours.db'}"
    old = Store(old_url)
    current = old.get_secret("freshbooks", REFRESH_TOKEN)
    runs_before = len(old.runs())
    old.close()
    assert current and accounts.state("freshbooks").refreshes == 1
    dst_url = any_store.url
    any_store.close()

    out = runner.invoke(cli, ["store", "copy", old_url, dst_url])
    assert out.exit_code == 0, out.output
    assert "moved freshbooks/refresh_token, freshbooks/access_token, freshbooks/access_token_expires_at" in out.output
    new = Store(dst_url)
    assert new.get_secret("freshbooks", REFRESH_TOKEN) == current
    assert len(new.runs()) == runs_before
    new.close()
    old = Store(old_url)
    assert old.get_secret("freshbooks", REFRESH_TOKEN) is None  # nothing left there to spend
    old.close()

    # the new store syncs on, refreshing with the copied token: no invalid_grant, no re-authorization
    moved = conf.read_text().replace('url = "sqlite:///clearhours.db"', f'url = "{dst_url}"')
    conf.write_text(moved)
    accounts.state("freshbooks").access.clear()  # force a refresh on the next request
    out = runner.invoke(cli, ["-c", str(conf), "sync"])
    assert out.exit_code == 0, out.output
    assert accounts.state("freshbooks").refreshes == 2
    again = runner.invoke(cli, ["store", "copy", old_url, dst_url])
    assert again.exit_code == 1 and "the destination store is not empty" in again.output
