"""`bridge discover`, and configured client ids the provider does not know (`check`, `publish`)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.config import parse_config
from bridge.discovery import require_known_ids, slug
from bridge.errors import ConfigError
from bridge.models import Client
from bridge.store import Store
from connectors.sandbox import Sandbox

from tests.onboarding.conftest import write_config


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_discover_lists_each_accounts_clients_projects_ids_budgets_and_state(
        accounts: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = write_config(accounts, tmp_path, monkeypatch=monkeypatch)
    code, out = run("-c", str(conf), "discover")
    assert code == 0, out
    lines = out.splitlines()
    # each tracker holds its own clients; Acme and Blue Heron are in two, under other ids
    assert "harvest client 5201001: Acme Robotics GmbH [EUR]" in lines
    assert "    project 14501001: Acme Website Redesign - budget 1200 h" in lines
    assert "    project 14501002: Acme Support Retainer - budget 40 h / month" in lines
    assert "    project 14501003: Blue Heron Brand Refresh - budget 60000.00 USD" in lines
    assert "harvest client 5201005: Old Client LLC (inactive) [USD]" in lines
    assert "    project 14501007: Old Client Maintenance - budget 100 h (inactive)" in lines
    assert "freshbooks client 412207: Blue Heron Studio [USD]" in lines
    assert "    project 14501009: Blue Heron Campaign Landing Pages - budget 150 h" in lines
    assert "freshbooks client 412204: Café Øresund ApS [EUR]" in lines
    assert "productive client 701101: Acme Robotics GmbH [EUR]" in lines
    assert "    project 14501008: Acme Mobile App - budget 600 h" in lines
    assert "productive client 701103: Zürich Nordlicht AG [CHF]" in lines


def test_discover_json_and_one_source(accounts: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = write_config(accounts, tmp_path, monkeypatch=monkeypatch)
    code, out = run("-c", str(conf), "discover", "--source", "productive", "--json")
    assert code == 0, out
    found = json.loads(out)
    assert [(c["source"], c["id"], c["name"], c["active"]) for c in found] == [
        ("productive", "701101", "Acme Robotics GmbH", True), ("productive", "701103", "Zürich Nordlicht AG", True)]
    assert found[0]["projects"] == [{"id": "14501008", "name": "Acme Mobile App", "active": True, "budget": "600 h"}]
    code, out = run("-c", str(conf), "discover", "--source", "nope")
    assert code == 1 and "no source named 'nope'" in out


def test_discover_toml_is_ready_to_paste_and_combines_a_client_tracked_twice(
        accounts: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = write_config(accounts, tmp_path, monkeypatch=monkeypatch)
    code, out = run("-c", str(conf), "discover", "--toml")
    assert code == 0, out
    clients = tomllib.loads(out)["clients"]
    assert {c["key"]: c["sources"] for c in clients} == {
        "acme-robotics-gmbh": {"harvest": ["5201001"], "productive": ["701101"]},
        "blue-heron-studio": {"freshbooks": ["412207"], "harvest": ["5201002"]},
        "cafe-oresund-aps": {"freshbooks": ["412204"]},
        "zurich-nordlicht-ag": {"productive": ["701103"]},
    }  # Old Client LLC is inactive: written commented out
    assert '# key = "old-client-llc"' in out
    # pasted under the sources, the blocks make a valid config
    (tmp_path / "bridge.toml").write_text(conf.read_text() + "\n" + out)
    code, out = run("-c", str(conf), "check-config")
    assert code == 0 and "4 client portal(s)" in out


def test_check_names_each_configured_client_whose_id_the_provider_does_not_know(
        accounts: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = write_config(accounts, tmp_path, monkeypatch=monkeypatch, providers=("harvest", "productive"), clients=[
        {"key": "acme", "name": "Acme", "sources": {"harvest": ["5201001"], "productive": ["701101"]}},
        {"key": "heron", "name": "Heron", "sources": {"harvest": ["5201099"]}},  # a typo
        {"key": "zurich", "name": "Zürich", "sources": {"productive": ["5201003"]}},  # Harvest's id for it
    ])
    code, out = run("-c", str(conf), "check")
    assert code == 1
    assert "harvest: UNKNOWN ID - client 'heron' (Heron): harvest has no client with id '5201099'" in out
    assert "productive: UNKNOWN ID - client 'zurich' (Zürich): productive has no client with id '5201003'" in out
    assert "`bridge discover --source productive` lists the ids it has" in out
    assert "acme" not in out


def test_publish_refuses_a_client_whose_ids_match_nothing(store: Store) -> None:
    cfg = parse_config({"sources": [{"name": "harvest", "kind": "harvest"}], "clients": [
        {"key": "acme", "name": "Acme", "sources": {"harvest": ["1", "2"]}},
        {"key": "heron", "name": "Heron", "sources": {"harvest": ["99"]}}]})
    with pytest.raises(ConfigError, match="no clients from harvest in the store yet; run `bridge sync` first"):
        require_known_ids(store, cfg.client("acme"))
    store.upsert([Client(source="harvest", source_id="1", name="Acme")])
    require_known_ids(store, cfg.client("acme"))  # one of its two ids is enough
    with pytest.raises(ConfigError) as err:
        require_known_ids(store, cfg.client("heron"))
    assert str(err.value) == ("client 'heron': none of its client ids (harvest: 99) matches a client the providers "
                              "sent, so its portal would be empty; `bridge discover` lists the real ids")


def test_every_publishing_path_refuses_a_client_whose_ids_match_nothing(store: Store, tmp_path: Path) -> None:
    # `bridge run` and link refresh publish through publish_all too, not only `bridge publish`
    from bridge.publishing import publish_all
    from publishers.local import LocalPublisher
    from publishers.render import render_portal

    cfg = parse_config({"sources": [{"name": "harvest", "kind": "harvest"}], "clients": [
        {"key": "acme", "name": "Acme", "sources": {"harvest": ["1"]}},
        {"key": "heron", "name": "Heron", "sources": {"harvest": ["99"]}}]})
    store.upsert([Client(source="harvest", source_id="1", name="Acme")])
    report = publish_all(store, cfg, LocalPublisher(tmp_path / "out"), render_portal)
    by_key = {o.client_key: o for o in report.outcomes}
    assert by_key["acme"].ok, by_key["acme"].error
    assert not by_key["heron"].ok and "none of its client ids (harvest: 99)" in (by_key["heron"].error or "")
    assert len(list((tmp_path / "out").iterdir())) == 1  # nothing was written for heron


def test_slugs_are_ascii_config_keys() -> None:
    assert slug("Café Øresund ApS") == "cafe-oresund-aps"
    assert slug("Zürich Nordlicht AG") == "zurich-nordlicht-ag"
    assert slug("???") == "client"
