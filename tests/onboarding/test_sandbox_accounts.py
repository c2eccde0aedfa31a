"""The sandbox as three real accounts: each provider its own clients, two clients tracked twice
under different ids; the shared mode (one agency everywhere) still there; the admin API documented."""

from __future__ import annotations

import datetime as dt

import httpx
from click.testing import CliRunner

from bridge.cli import cli
from connectors.sandbox import Sandbox, generate_agency
from connectors.sandbox.demo import demo_config

TODAY = dt.date(2025, 3, 20)


def test_each_provider_serves_its_own_account(accounts: Sandbox) -> None:
    served = {m.name: {c.id: c.name for c in m.agency.clients.values()} for m in accounts.mounts}
    assert served == {
        "harvest": {5201001: "Acme Robotics GmbH", 5201002: "Blue Heron Studio", 5201005: "Old Client LLC"},
        "freshbooks": {412207: "Blue Heron Studio", 412204: "Café Øresund ApS"},
        "productive": {701101: "Acme Robotics GmbH", 701103: "Zürich Nordlicht AG"},
    }
    projects = {m.name: sorted(p.code for p in m.agency.projects.values()) for m in accounts.mounts}
    assert projects == {"harvest": ["ACME-SUP", "ACME-WEB", "BH-BRAND", "OLD-MNT"],
                        "freshbooks": ["BH-LAND", "CO-INT", "CO-SHOP"], "productive": ["ACME-APP", "ZN-INTRA"]}
    assert {m.name: len(m.agency.entries) for m in accounts.mounts} == {"harvest": 200, "freshbooks": 200,
                                                                         "productive": 200}
    info = httpx.get(f"{accounts.base_url}/_sandbox/info").json()
    assert info["shared_agency"] is False
    assert info["accounts"]["productive"]["clients"] == {"701101": "Acme Robotics GmbH", "701103": "Zürich Nordlicht AG"}


def test_admin_entry_routes_pick_the_account_by_provider(accounts: Sandbox) -> None:
    entry_id = next(iter(accounts.agency_for("productive").entries))
    prod = httpx.get(f"{accounts.base_url}/_sandbox/entries/{entry_id}", params={"provider": "productive"})
    assert prod.status_code == 200
    assert prod.json()["project_id"] in accounts.agency_for("productive").projects
    first = httpx.get(f"{accounts.base_url}/_sandbox/entries/{entry_id}")  # default: the first provider's
    assert first.status_code == 404 or first.json()["project_id"] in accounts.agency_for("harvest").projects
    edited = httpx.patch(f"{accounts.base_url}/_sandbox/entries/{entry_id}", params={"provider": "productive"},
                         json={"notes": "changed in Productive"})
    assert edited.status_code == 200
    assert accounts.agency_for("productive").entries[entry_id].notes == "changed in Productive"


def test_the_demo_combines_a_client_tracked_twice_into_one_portal(accounts: Sandbox) -> None:
    config, _ = demo_config(accounts, store_url="sqlite://", target="file:///tmp/x")
    assert {c["name"]: c["sources"] for c in config["clients"]} == {
        "Acme Robotics GmbH": {"harvest": ["5201001"], "productive": ["701101"]},
        "Blue Heron Studio": {"harvest": ["5201002"], "freshbooks": ["412207"]},
        "Café Øresund ApS": {"freshbooks": ["412204"]},
        "Zürich Nordlicht AG": {"productive": ["701103"]},
    }


def test_the_shared_mode_serves_one_agency_under_the_same_ids_everywhere() -> None:
    with Sandbox(generate_agency(seed=3, today=TODAY, entries=100), rate_limits=False) as box:
        assert box.shared and all(m.agency is box.agency for m in box.mounts)
        config, _ = demo_config(box, store_url="sqlite://", target="file:///tmp/x")
        # combining one agency's copies would count every hour three times: one provider per portal
        assert all(len(c["sources"]) == 1 for c in config["clients"])


def test_sandbox_help_documents_the_admin_api() -> None:
    out = CliRunner().invoke(cli, ["sandbox", "--help"]).output
    assert "POST   /_sandbox/faults" in out and "PATCH  /_sandbox/entries/{id}" in out
    assert "?provider=harvest|freshbooks|productive" in out and "--shared-agency" in out
