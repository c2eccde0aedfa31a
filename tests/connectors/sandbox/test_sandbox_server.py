"""The server around the providers: rate limits, faults, request log, counters, admin API."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from connectors.sandbox import RateRule, Sandbox, describe
from connectors.sandbox.agency import Agency


def test_rate_limit_answers_429_with_retry_after(agency: Agency, harvest_headers: dict[str, str]) -> None:
    rules = {"harvest": [RateRule(3, 60.0), RateRule(1, 60.0, "/reports/")]}
    with Sandbox(agency, rate_rules=rules) as server, \
            httpx.Client(base_url=server.url("harvest"), headers=harvest_headers) as client:
        assert [client.get("/company").status_code for _ in range(3)] == [200, 200, 200]
        throttled = client.get("/company")
        assert throttled.status_code == 429
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60
        # /reports/ has its own, separate window
        assert client.get("/reports/project_budget").status_code == 200
        assert client.get("/reports/project_budget").status_code == 429
        server.rate_limits = False
        assert client.get("/company").status_code == 200


def test_harvest_default_limit_is_100_per_15_seconds(agency: Agency, harvest_headers: dict[str, str]) -> None:
    with Sandbox(agency) as server, httpx.Client(base_url=server.url("harvest"), headers=harvest_headers) as client:
        statuses = [client.get("/company").status_code for _ in range(101)]
        assert statuses[:100] == [200] * 100 and statuses[100] == 429
        assert 1 <= int(client.get("/company").headers["Retry-After"]) <= 15


@pytest.mark.parametrize("kind", ["429", "429-no-retry-after", "500", "503", "malformed"])
def test_injected_faults_hit_matching_requests_then_stop(sandbox: Sandbox, harvest: httpx.Client, kind: str) -> None:
    sandbox.inject("harvest", kind, count=2, path_contains="/time_entries", retry_after=7)
    assert harvest.get("/clients").status_code == 200  # path does not match: untouched
    for _ in range(2):
        response = harvest.get("/time_entries", params={"per_page": 5})
        if kind == "malformed":
            assert response.status_code == 200
            with pytest.raises(json.JSONDecodeError):
                json.loads(response.content)
        else:
            assert response.status_code == int(kind[:3])
        if kind == "429":
            assert response.headers["Retry-After"] == "7"
        if kind == "429-no-retry-after":
            assert "Retry-After" not in response.headers
        if kind in ("500", "503"):
            assert response.headers["Content-Type"].startswith("text/html")
    assert harvest.get("/time_entries", params={"per_page": 5}).status_code == 200
    assert sandbox.faults == []


def test_slow_fault_outlasts_a_client_timeout(sandbox: Sandbox, harvest: httpx.Client) -> None:
    sandbox.inject("harvest", "slow", delay=1.0)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        harvest.get("/company", timeout=0.2)
    assert time.monotonic() - started < 0.9
    assert harvest.get("/company", timeout=5).status_code == 200


def test_unknown_fault_kind_and_provider_are_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError):
        sandbox.inject("harvest", "418")
    with pytest.raises(KeyError):
        sandbox.inject("nobody", "500")


def test_request_log_and_counters(sandbox: Sandbox, harvest: httpx.Client) -> None:
    harvest.get("/clients", params={"is_active": "true"})
    harvest.get("/nothing")
    httpx.get(sandbox.base_url + "/elsewhere")
    log = sandbox.requests("harvest")
    assert [(r.method, r.path, r.query, r.status) for r in log] == [
        ("GET", "/harvest/v2/clients", "is_active=true", 200),
        ("GET", "/harvest/v2/nothing", "", 404),
    ]
    assert sandbox.counters["harvest"] == 2
    assert sandbox.status_counters["harvest"] == {200: 1, 404: 1}
    sandbox.reset()
    assert sandbox.counters["harvest"] == 0 and sandbox.requests() == []


def test_admin_api_edits_data_the_provider_then_serves(sandbox: Sandbox, harvest: httpx.Client, admin: httpx.Client,
                                                        agency: Agency, clock: Any) -> None:
    info = admin.get("/info").json()
    assert info["providers"]["harvest"] == sandbox.url("harvest")
    assert info["credentials"]["harvest"]["account_id"]
    entry_id = next(iter(agency.entries))
    clock.advance(86400 * 30)

    edited = admin.patch(f"/entries/{entry_id}", json={"notes": "from the admin API", "seconds": 5400})
    assert edited.status_code == 200, edited.text
    wire = harvest.get(f"/time_entries/{entry_id}").json()
    assert wire["notes"] == "from the admin API" and wire["hours"] == 1.5
    assert wire["updated_at"] == edited.json()["updated_at"]

    project = next(p for p in agency.projects.values() if p.is_active)
    added = admin.post("/entries", json={"project_id": project.id, "person_id": project.person_ids[0],
                                         "task_id": project.task_ids[0], "spent_date": "2025-03-20", "seconds": 900})
    assert added.status_code == 201
    new_id = added.json()["id"]
    assert harvest.get(f"/time_entries/{new_id}").json()["hours"] == 0.25

    assert admin.delete(f"/entries/{new_id}").status_code == 200
    assert harvest.get(f"/time_entries/{new_id}").status_code == 404
    assert [d["id"] for d in admin.get("/deletions").json()["deletions"]] == [new_id]

    assert admin.post(f"/entries/{entry_id}/malform", json={"kind": "bad_duration"}).status_code == 200
    assert isinstance(harvest.get(f"/time_entries/{entry_id}").json()["hours"], str)
    backdated = admin.post(f"/entries/{entry_id}/backdate", json={"updated_at": "2024-01-01T00:00:00Z"})
    assert backdated.json()["updated_at"] == "2024-01-01T00:00:00Z"

    assert admin.patch("/entries/1", json={"notes": "x"}).status_code == 404
    assert admin.patch(f"/entries/{entry_id}", json={"seconds": 61}).status_code == 422


def test_admin_api_faults_counters_and_reset(sandbox: Sandbox, harvest: httpx.Client, admin: httpx.Client) -> None:
    created = admin.post("/faults", json={"provider": "harvest", "kind": "503", "count": 1})
    assert created.status_code == 201
    assert harvest.get("/company").status_code == 503
    assert harvest.get("/company").status_code == 200
    counters = admin.get("/counters").json()
    assert counters["requests"]["harvest"] == 2 and counters["statuses"]["harvest"] == {"503": 1, "200": 1}
    log = admin.get("/log", params={"provider": "harvest", "limit": 1}).json()["requests"]
    assert [(r["path"], r["status"]) for r in log] == [("/harvest/v2/company", 200)]
    admin.post("/faults", json={"provider": "harvest", "kind": "500", "count": 3})
    assert admin.delete("/faults").status_code == 200
    assert harvest.get("/company").status_code == 200
    assert admin.post("/faults", json={"provider": "harvest", "kind": "bogus"}).status_code == 422
    assert admin.post("/reset").status_code == 200
    assert admin.get("/counters").json()["requests"]["harvest"] == 0
    assert admin.put("/rate_limits", json={"enabled": True}).json() == {"rate_limits": True}


def test_describe_names_urls_and_demo_credentials(sandbox: Sandbox) -> None:
    text = "\n".join(describe(sandbox))
    assert sandbox.url("harvest") in text and "export HARVEST_TOKEN=" in text


def test_stop_does_not_wait_for_a_slow_request(agency: Agency, harvest_headers: dict[str, str]) -> None:
    server = Sandbox(agency, rate_limits=False, slow_delay=30)
    server.start()
    server.inject("harvest", "slow")
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(server.url("harvest") + "/company", headers=harvest_headers, timeout=0.2)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5


def test_sandbox_shares_no_code_with_the_connectors() -> None:
    """DESIGN.md: the sandbox is an independent peer; reusing connector or normalizer code would
    make the end-to-end tests prove only that the code agrees with itself."""
    import ast
    from pathlib import Path

    import connectors.sandbox

    package = Path(connectors.sandbox.__file__).parent
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith("bridge"), f"{source.name} imports {name}"
                if name.startswith("connectors"):
                    assert name == "connectors.sandbox" or name.startswith("connectors.sandbox."), \
                        f"{source.name} imports {name}"
