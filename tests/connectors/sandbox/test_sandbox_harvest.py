"""The Harvest v2 module over real HTTP: auth, shapes, paging, filters, flags."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.sandbox import Sandbox
from connectors.sandbox.agency import Agency

FIXTURES = Path(__file__).parents[2] / "fixtures" / "harvest"
TODAY = dt.date(2025, 3, 20)


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def follow(client: httpx.Client, url: str, key: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every item of a list, following links.next like a connector does."""
    pages = [client.get(url, params=params)]
    while True:
        assert pages[-1].status_code == 200, pages[-1].text
        nxt = pages[-1].json()["links"]["next"]
        if nxt is None:
            break
        assert len(pages) < 500, "pagination does not end"
        pages.append(client.get(nxt))
    return [item for page in pages for item in page.json()[key]]


# ---- auth ------------------------------------------------------------------------------------
def test_bad_token_missing_account_and_missing_user_agent(sandbox: Sandbox, harvest_headers: dict[str, str]) -> None:
    url = sandbox.url("harvest") + "/users/me"
    expected = fixture("errors.json")["401_invalid_token"]["body"]
    bad_token = {**harvest_headers, "Authorization": "Bearer nope"}
    no_account = {k: v for k, v in harvest_headers.items() if k != "Harvest-Account-Id"}
    wrong_account = {**harvest_headers, "Harvest-Account-Id": "999"}
    for headers in (bad_token, no_account, wrong_account):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 401
        assert response.json() == expected
    with httpx.Client() as client:
        del client.headers["User-Agent"]
        response = client.get(url, headers={k: v for k, v in harvest_headers.items() if k != "User-Agent"})
    assert response.status_code == 400
    assert response.json() == fixture("errors.json")["400_missing_user_agent"]["body"]
    assert httpx.get(url, headers=harvest_headers).json()["access_roles"] == ["administrator"]


def test_query_string_auth_is_accepted(sandbox: Sandbox, harvest_headers: dict[str, str]) -> None:
    from connectors.sandbox import HARVEST_ACCOUNT_ID, HARVEST_TOKEN

    response = httpx.get(sandbox.url("harvest") + "/company", params={"access_token": HARVEST_TOKEN,
                         "account_id": HARVEST_ACCOUNT_ID}, headers={"User-Agent": "t (t@example.com)"})
    assert response.status_code == 200 and response.json()["name"]


# ---- shapes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "key", "fixture_name"), [
    ("/clients", "clients", "clients_page1.json"),
    ("/projects", "projects", "projects_page1.json"),
    ("/users", "users", "users_page1.json"),
    ("/tasks", "tasks", "tasks_page1.json"),
    ("/time_entries", "time_entries", "time_entries_page1.json"),
    ("/invoices", "invoices", "invoices_page1.json"),
    ("/reports/project_budget", "results", "project_budget_report_page1.json"),
])
def test_list_shapes_match_the_recorded_fixtures(harvest: httpx.Client, path: str, key: str, fixture_name: str) -> None:
    recorded = fixture(fixture_name)
    body = harvest.get(path).json()
    assert set(body) == set(recorded)
    assert set(body["links"]) == set(recorded["links"])
    assert body[key], f"{path} is empty"
    expected_keys = set(recorded[key][0])
    for item in body[key]:
        assert set(item) == expected_keys
        for field, value in recorded[key][0].items():
            if isinstance(value, dict) and isinstance(item[field], dict):
                assert set(item[field]) == set(value), f"{path}: {field}"
    if key == "invoices":
        line_keys = set(recorded[key][0]["line_items"][0])
        assert all(set(line) == line_keys for inv in body[key] for line in inv["line_items"])


def test_payments_shape_and_amounts(harvest: httpx.Client, agency: Agency) -> None:
    recorded = fixture("invoice_payments_inv40100001_page1.json")
    seen = 0
    for inv in follow(harvest, "/invoices", "invoices"):
        payments = harvest.get(f"/invoices/{inv['id']}/payments").json()
        assert set(payments) == set(recorded)
        for p in payments["invoice_payments"]:
            assert set(p) == set(recorded["invoice_payments"][0])
            seen += 1
        paid = sum(p["amount"] for p in payments["invoice_payments"])
        if inv["state"] in ("open", "paid"):
            assert paid == pytest.approx(inv["amount"] - inv["due_amount"])
    assert seen > 0
    assert harvest.get("/invoices/1/payments").status_code == 404


def test_invoice_states_as_harvest_shows_them(harvest: httpx.Client) -> None:
    invoices = follow(harvest, "/invoices", "invoices")
    by_state: dict[str, list[dict[str, Any]]] = {}
    for inv in invoices:
        by_state.setdefault(inv["state"], []).append(inv)
    assert set(by_state) == {"draft", "open", "paid", "closed"}
    open_ones = by_state["open"]
    today = TODAY.isoformat()
    assert any(i["due_date"] < today and i["due_amount"] > 0 for i in open_ones)  # overdue
    assert any(0 < i["due_amount"] < i["amount"] for i in open_ones)  # partially paid
    assert any(i["due_date"] >= today and i["due_amount"] == i["amount"] for i in open_ones)  # not yet due
    assert all(i["due_amount"] == 0 and i["paid_date"] for i in by_state["paid"])
    assert all(i["closed_at"] for i in by_state["closed"])
    assert all(isinstance(i["amount"], float) for i in invoices)
    assert [i["state"] for i in follow(harvest, "/invoices", "invoices", {"state": "draft"})] == ["draft"] * len(by_state["draft"])


def test_hours_are_decimal_and_lossless(harvest: httpx.Client, agency: Agency) -> None:
    entries = follow(harvest, "/time_entries", "time_entries")
    assert len(entries) == len(agency.entries)
    for wire in entries:
        seconds = agency.entries[wire["id"]].seconds
        assert isinstance(wire["hours"], (int, float))
        assert round(wire["hours"] * 3600) == seconds, wire["id"]
        assert wire["hours"] == round(wire["hours"], 2)


def test_time_entry_fields_follow_the_agency(harvest: httpx.Client, agency: Agency) -> None:
    entries = {e["id"]: e for e in follow(harvest, "/time_entries", "time_entries")}
    running = [e for e in entries.values() if e["is_running"]]
    assert len(running) == 1 and running[0]["timer_started_at"]
    for wire in entries.values():
        e = agency.entries[wire["id"]]
        assert wire["spent_date"] == e.spent_date.isoformat()
        assert wire["notes"] == e.notes
        assert wire["billable"] == e.billable
        assert (wire["billable_rate"] is None) == (not e.billable)
        assert wire["is_billed"] == (e.invoice_id is not None) == (wire["invoice"] is not None)
        assert wire["created_at"].endswith("Z") and wire["updated_at"] >= wire["created_at"]
        assert wire["client"]["id"] == agency.projects[e.project_id].client_id


# ---- paging ----------------------------------------------------------------------------------
def test_page_pagination_to_the_last_page_via_links_next(harvest: httpx.Client, agency: Agency, sandbox: Sandbox) -> None:
    first = harvest.get("/time_entries", params={"per_page": 37}).json()
    total = len(agency.entries)
    assert first["total_entries"] == total and first["total_pages"] == -(-total // 37)
    assert first["page"] == 1 and first["previous_page"] is None and first["next_page"] == 2
    assert first["links"]["next"].startswith(sandbox.url("harvest") + "/time_entries?")
    assert "page=2" in first["links"]["next"] and "per_page=37" in first["links"]["next"]
    last = harvest.get(first["links"]["last"]).json()
    assert last["next_page"] is None and last["links"]["next"] is None and last["page"] == first["total_pages"]
    assert last["previous_page"] == first["total_pages"] - 1

    items = follow(harvest, "/time_entries", "time_entries", {"per_page": 37})
    ids = [e["id"] for e in items]
    assert len(ids) == len(set(ids)) == total
    keys = [(e["spent_date"], e["id"]) for e in items]
    assert keys == sorted(keys, reverse=True)  # spent_date desc, then id desc


def test_pages_keep_the_filters(harvest: httpx.Client, agency: Agency) -> None:
    project = next(p for p in agency.projects.values() if p.is_active)
    params = {"project_id": project.id, "from": "2025-01-01", "to": "2025-02-28", "per_page": 5}
    items = follow(harvest, "/time_entries", "time_entries", params)
    expected = {e.id for e in agency.entries.values()
                if e.project_id == project.id and dt.date(2025, 1, 1) <= e.spent_date <= dt.date(2025, 2, 28)}
    assert {e["id"] for e in items} == expected and len(items) == len(expected) > 5


def test_cursor_pagination(agency: Agency, harvest_headers: dict[str, str]) -> None:
    with Sandbox(agency, rate_limits=False, options={"harvest": {"cursor_pagination": True}}) as server, \
            httpx.Client(base_url=server.url("harvest"), headers=harvest_headers) as client:
        first = client.get("/time_entries", params={"per_page": 50}).json()
        assert "cursor=" in first["links"]["next"] and "ref=next_cursor" in first["links"]["next"]
        middle = client.get(first["links"]["next"]).json()
        assert middle["page"] is None and middle["next_page"] is None
        # an entry booked while a client is paging neither duplicates nor hides older entries
        project = next(p for p in agency.projects.values() if p.is_active)
        agency.add_entry(project_id=project.id, person_id=project.person_ids[0], task_id=project.task_ids[0],
                         spent_date=TODAY, seconds=600)
        items = follow(client, "/time_entries", "time_entries", {"per_page": 50})
        ids = [e["id"] for e in items]
        assert len(ids) == len(set(ids)) == len(agency.entries)
        assert client.get("/time_entries", params={"cursor": "%%%"}).status_code == 422


def test_per_page_over_2000_is_422(harvest: httpx.Client) -> None:
    response = harvest.get("/time_entries", params={"per_page": 2001})
    assert response.status_code == 422 and "per_page" in response.json()["message"]
    assert harvest.get("/clients", params={"per_page": 2001}).status_code == 422
    assert harvest.get("/time_entries", params={"per_page": 2000}).json()["per_page"] == 2000
    assert harvest.get("/time_entries").json()["per_page"] == 2000


# ---- filters ---------------------------------------------------------------------------------
def test_updated_since_is_inclusive(harvest: httpx.Client, agency: Agency, clock: Any) -> None:
    clock.advance(86400 * 30)  # later than anything generated
    target = next(iter(agency.entries))
    agency.edit_entry(target, notes="edited for the cursor test")
    wire = harvest.get(f"/time_entries/{target}").json()
    stamp = dt.datetime.fromisoformat(wire["updated_at"].replace("Z", "+00:00"))
    same = follow(harvest, "/time_entries", "time_entries", {"updated_since": wire["updated_at"]})
    assert [e["id"] for e in same] == [target]
    after = (stamp + dt.timedelta(seconds=1)).isoformat()
    assert follow(harvest, "/time_entries", "time_entries", {"updated_since": after}) == []
    before = (stamp - dt.timedelta(days=40)).isoformat()
    expected = {e.id for e in agency.entries.values() if e.updated_at >= int(stamp.timestamp()) - 40 * 86400}
    assert {e["id"] for e in follow(harvest, "/time_entries", "time_entries", {"updated_since": before})} == expected
    assert harvest.get("/time_entries", params={"updated_since": "yesterday"}).status_code == 422


def test_updated_since_on_other_lists(harvest: httpx.Client, agency: Agency) -> None:
    for path, key, table in (("/clients", "clients", agency.clients), ("/projects", "projects", agency.projects),
                             ("/users", "users", agency.people)):
        cut = sorted(x.updated_at for x in table.values())[len(table) // 2]
        got = {x["id"] for x in harvest.get(path, params={"updated_since": cut.isoformat()}).json()[key]}
        assert got == {x.id for x in table.values() if x.updated_at >= cut}, path


def test_is_active_and_client_filters(harvest: httpx.Client, agency: Agency) -> None:
    inactive = harvest.get("/clients", params={"is_active": "false"}).json()["clients"]
    assert [c["id"] for c in inactive] == [c.id for c in agency.clients.values() if not c.is_active]
    client_id = next(iter(agency.clients))
    projects = harvest.get("/projects", params={"client_id": client_id}).json()["projects"]
    assert {p["id"] for p in projects} == {p.id for p in agency.projects.values() if p.client_id == client_id}
    entries = follow(harvest, "/time_entries", "time_entries", {"client_id": client_id})
    assert entries and all(e["client"]["id"] == client_id for e in entries)
    active_users = harvest.get("/users", params={"is_active": "true"}).json()["users"]
    assert len(active_users) == 11


def test_budgets_and_hidden_money(agency: Agency, harvest_headers: dict[str, str]) -> None:
    money_project = next(p for p in agency.projects.values() if p.budget_kind == "money" and not p.budget_is_monthly)
    for hide in (False, True):
        with Sandbox(agency, rate_limits=False, options={"harvest": {"hide_money_budgets": hide}}) as server, \
                httpx.Client(base_url=server.url("harvest"), headers=harvest_headers) as client:
            wire = client.get(f"/projects/{money_project.id}").json()
            assert wire["budget_by"] == "project_cost"
            assert wire["cost_budget"] == (None if hide else float(money_project.budget))
            rows = {r["project_id"]: r for r in client.get("/reports/project_budget").json()["results"]}
            assert (rows[money_project.id]["budget"] is None) == hide
            hours_rows = [r for r in rows.values() if r["budget_by"] == "project"]
            assert hours_rows and all(r["budget"] is not None for r in hours_rows)


def test_hours_budget_report_matches_the_entries(harvest: httpx.Client, agency: Agency) -> None:
    rows = {r["project_id"]: r for r in harvest.get("/reports/project_budget").json()["results"]}
    project = next(p for p in agency.projects.values() if p.budget_kind == "hours" and not p.budget_is_monthly)
    spent = sum(e.seconds for e in agency.entries.values() if e.project_id == project.id) / 3600
    assert rows[project.id]["budget_spent"] == pytest.approx(spent, abs=0.01)
    assert rows[project.id]["budget_remaining"] == pytest.approx(float(project.budget) - spent, abs=0.01)
    monthly = next(p for p in agency.projects.values() if p.budget_kind == "hours" and p.budget_is_monthly)
    this_month = sum(e.seconds for e in agency.entries.values()
                     if e.project_id == monthly.id and e.spent_date >= TODAY.replace(day=1)) / 3600
    assert rows[monthly.id]["budget_spent"] == pytest.approx(this_month, abs=0.01)
    assert all(p.budget_kind for p in agency.projects.values() if p.id in rows)


# ---- mutations as seen on the wire -----------------------------------------------------------
def test_deleted_and_malformed_entries(harvest: httpx.Client, agency: Agency) -> None:
    ids = list(agency.entries)
    agency.delete_entry(ids[0])
    agency.malform_entry(ids[1], "bad_date")
    agency.malform_entry(ids[2], "bad_duration")
    entries = {e["id"]: e for e in follow(harvest, "/time_entries", "time_entries")}
    assert ids[0] not in entries
    assert harvest.get(f"/time_entries/{ids[0]}").status_code == 404
    with pytest.raises(ValueError):
        dt.date.fromisoformat(entries[ids[1]]["spent_date"])
    assert isinstance(entries[ids[2]]["hours"], str)


def test_unknown_path_is_harvest_404(harvest: httpx.Client) -> None:
    response = harvest.get("/nothing_here")
    page = fixture("errors.json")["404_html_page"]
    assert response.status_code == 404 and response.headers["Content-Type"].startswith("text/html")
    assert "<title>Page not found - Harvest</title>" in response.text and page["body"].startswith("<!DOCTYPE html>")


def test_task_assignments(harvest: httpx.Client, agency: Agency) -> None:
    rows = follow(harvest, "/task_assignments", "task_assignments")
    assert len(rows) == sum(len(p.task_ids) for p in agency.projects.values())
    assert all({"project", "task", "billable", "hourly_rate"} <= set(r) for r in rows)
    internal = [r for r in rows if r["task"]["name"] == "Internal Meeting"]
    assert internal and not any(r["billable"] for r in internal)


def test_a_full_page_is_served_quickly(harvest_headers: dict[str, str]) -> None:
    """Not a timed assertion (shared CI machines): prints the time of a 2000-entry page with -s."""
    from connectors.sandbox import generate_agency

    big = generate_agency(seed=2, today=TODAY, entries=6000)
    with Sandbox(big, rate_limits=False) as server, \
            httpx.Client(base_url=server.url("harvest"), headers=harvest_headers) as client:
        client.get("/time_entries", params={"per_page": 1})  # builds the date index once
        timings = []
        for page in (1, 2, 3):
            started = time.perf_counter()
            body = client.get("/time_entries", params={"page": page}).json()
            timings.append(time.perf_counter() - started)
            assert len(body["time_entries"]) == 2000
    print(f"\n2000-entry Harvest pages (request + client decode): {', '.join(f'{t * 1000:.0f} ms' for t in timings)}")
