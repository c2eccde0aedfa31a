"""Zero to published portals as a new user would go: init, auth, check, discover, sync, publish;
then a client leaves and its portal is found and retired; status from another directory.

The sandbox stands in for three real tracker accounts (each serves its own clients).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from bridge.cli import cli
from connectors.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_from_nothing_to_portals_for_three_sources_and_four_clients(accounts: Sandbox, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "etc" / "clearhours" / "bridge.toml"
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def bridge(*args: str) -> str:
        out = runner.invoke(cli, ["-c", str(conf), *args])
        assert out.exit_code == 0, (args, out.output)
        return out.output

    redirect = f"http://127.0.0.1:{free_port()}/freshbooks/callback"
    bridge("init", "-y", "--agency", "Nordwind Digital", "--timezone", "Europe/Berlin",
           "--source", "harvest", "--harvest-account-id", "100001", "--source", "freshbooks",
           "--freshbooks-redirect-uri", redirect, "--source", "productive", "--productive-organization-id", "200001",
           *[a for p in ("harvest", "freshbooks", "productive") for a in ("--base-url", f"{p}={accounts.url(p)}")])
    # the secrets, as the guides say, in the environment only
    for var, value in {"HARVEST_TOKEN": "sandbox-harvest-token", "PRODUCTIVE_TOKEN": "sandbox-productive-token",
                       "FRESHBOOKS_CLIENT_ID": "sandbox-freshbooks-client-id",
                       "FRESHBOOKS_CLIENT_SECRET": "sandbox-freshbooks-client-secret"}.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("FRESHBOOKS_REFRESH_TOKEN", raising=False)
    assert "sandbox-" not in conf.read_text()

    # `bridge auth freshbooks` waits on the loopback redirect; a "browser" opens the printed link
    def browser() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                link = f"{accounts.url('freshbooks')}/oauth/authorize"
                page = httpx.get(link, params={"client_id": "sandbox-freshbooks-client-id", "response_type": "code",
                                               "redirect_uri": redirect, "state": state[0]}, follow_redirects=True)
                if page.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)

    from connectors import freshbooks_auth

    state: list[str] = []
    real_new_state = freshbooks_auth.new_state
    monkeypatch.setattr(freshbooks_auth, "new_state", lambda: state.append(real_new_state()) or state[-1])
    opener = threading.Thread(target=lambda: (time.sleep(0.5), browser()))
    opener.start()
    out = bridge("auth", "freshbooks", "--timeout", "20")
    opener.join()
    assert "freshbooks: authorized" in out and "business_id 8801001" in out

    bridge("check")
    blocks = bridge("discover", "--toml")
    conf.write_text(conf.read_text() + blocks)
    assert "4 client portal(s)" in bridge("check-config")
    bridge("sync")
    published = bridge("publish")
    links = dict(re.findall(r"^([a-z-]+): (file://\S+)$", published, re.M))
    assert sorted(links) == ["acme-robotics-gmbh", "blue-heron-studio", "cafe-oresund-aps", "zurich-nordlicht-ag"]
    acme = Path(links["acme-robotics-gmbh"].removeprefix("file://")).read_text()
    # one portal, two trackers: Harvest's projects and Productive's, none twice
    for project in ("Acme Website Redesign", "Acme Support Retainer", "Acme Mobile App"):
        assert project in acme
    assert Path(links["acme-robotics-gmbh"].removeprefix("file://")).is_relative_to(conf.parent)

    # Zürich leaves: its block is removed; its portal is found and retired
    text = conf.read_text()
    conf.write_text(text[:text.index("# Zürich Nordlicht AG")])
    out = runner.invoke(cli, ["-c", str(conf), "portals"])
    assert out.exit_code == 1 and "zurich-nordlicht-ag [" in out.output and "ORPHAN" in out.output
    assert "zurich-nordlicht-ag: retired; 5 object(s) deleted, old link now answers 404." in bridge("retire", "--orphans")
    assert not Path(links["zurich-nordlicht-ag"].removeprefix("file://")).exists()

    # cron's view: an absolute -c from another directory finds the same store
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "bridge", "status", "--json", "-c", str(conf)], cwd=ROOT / "docs",
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    sources = {s["name"]: s for s in json.loads(done.stdout)["sources"]}
    assert all(sources[n]["last_success_at"] for n in ("harvest", "freshbooks", "productive"))
