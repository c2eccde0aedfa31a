"""The sandbox's report endpoints (what `bridge verify` compares the store with) and FreshBooks rates.

Each check books a known amount of time and asserts the report moved by the amount worked
out by hand from the agency's published rates (Acme Website Redesign bills 150/h by
project rate; Blue Heron Brand Refresh is fixed price billed by service rate: Design 140/h).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.sandbox import (
    FRESHBOOKS_BUSINESS_ID,
    FRESHBOOKS_CLIENT_ID,
    FRESHBOOKS_CLIENT_SECRET,
    FRESHBOOKS_REFRESH_TOKEN,
    PRODUCTIVE_ORGANIZATION_ID,
    PRODUCTIVE_TOKEN,
    Sandbox,
)
from connectors.sandbox.agency import Agency
from tests.connectors.sandbox.conftest import TODAY

ACME_WEB, ACME_SUPPORT, HERON = 14501001, 14501002, 14501003
ALICE, CHLOE = 3101001, 3101003
DESIGN, DEVELOPMENT, INTERNAL = 8301001, 8301002, 8301004
WINDOW = {"from": (TODAY - dt.timedelta(days=364)).strftime("%Y%m%d"), "to": TODAY.strftime("%Y%m%d")}


def row(client: httpx.Client, path: str, project_id: int, **params: Any) -> dict[str, Any]:
    body = client.get(path, params={**WINDOW, **params}).json()
    return next(r for r in body["results"] if r["project_id"] == project_id)


def test_time_report_moves_by_the_booked_time(harvest: httpx.Client, agency: Agency) -> None:
    before = row(harvest, "/reports/time/projects", ACME_WEB)
    agency.add_entry(project_id=ACME_WEB, person_id=ALICE, task_id=DEVELOPMENT, spent_date=TODAY, seconds=5400)
    agency.add_entry(project_id=ACME_WEB, person_id=ALICE, task_id=INTERNAL, spent_date=TODAY, seconds=1800)
    after = row(harvest, "/reports/time/projects", ACME_WEB)
    # 1.5 h billable at 150 = 225.00, plus 0.5 h of non-billable internal meeting
    assert round(after["total_hours"] - before["total_hours"], 2) == 2.0
    assert round(after["billable_hours"] - before["billable_hours"], 2) == 1.5
    assert round(after["billable_amount"] - before["billable_amount"], 2) == 225.0
    assert after["currency"] == "EUR" and after["client_id"] == 5201001


def test_uninvoiced_report_counts_billable_time_not_yet_invoiced(harvest: httpx.Client, agency: Agency) -> None:
    before = row(harvest, "/reports/uninvoiced", ACME_WEB)
    agency.add_entry(project_id=ACME_WEB, person_id=ALICE, task_id=DEVELOPMENT, spent_date=TODAY, seconds=3600)
    after = row(harvest, "/reports/uninvoiced", ACME_WEB)
    assert round(after["uninvoiced_hours"] - before["uninvoiced_hours"], 2) == 1.0
    assert round(after["uninvoiced_amount"] - before["uninvoiced_amount"], 2) == 150.0
    assert after["uninvoiced_expenses"] == 0.0


def test_time_reports_need_a_window_of_at_most_a_year(harvest: httpx.Client) -> None:
    assert harvest.get("/reports/time/projects").status_code in (400, 422)
    too_long = {"from": "20230101", "to": "20250320"}
    assert harvest.get("/reports/uninvoiced", params=too_long).status_code in (400, 422)


@pytest.fixture
def productive(sandbox: Sandbox) -> Iterator[httpx.Client]:
    headers = {"X-Auth-Token": PRODUCTIVE_TOKEN, "X-Organization-Id": PRODUCTIVE_ORGANIZATION_ID,
               "Content-Type": "application/vnd.api+json"}
    with httpx.Client(base_url=sandbox.url("productive"), headers=headers, timeout=10) as client:
        yield client


def deal(client: httpx.Client, project_id: int) -> dict[str, Any]:
    body = client.get("/deals", params={"filter[project_id]": project_id}).json()
    return body["data"][0]["attributes"]


def test_productive_deal_totals_move_by_the_booked_time(productive: httpx.Client, agency: Agency) -> None:
    before = deal(productive, HERON)
    agency.add_entry(project_id=HERON, person_id=CHLOE, task_id=DESIGN, spent_date=TODAY, seconds=7200)
    after = deal(productive, HERON)
    # 120 minutes of Design at 140.00 = 280.00 = 28000 cents
    assert after["worked_time"] - before["worked_time"] == 120
    assert after["billable_time"] - before["billable_time"] == 120
    assert after["budget_used"] - before["budget_used"] == 28000


@pytest.fixture
def fb(sandbox: Sandbox) -> Iterator[httpx.Client]:
    base = sandbox.url("freshbooks")
    access = httpx.post(base + "/auth/oauth/token", json={
        "grant_type": "refresh_token", "client_id": FRESHBOOKS_CLIENT_ID, "client_secret": FRESHBOOKS_CLIENT_SECRET,
        "refresh_token": FRESHBOOKS_REFRESH_TOKEN}).json()["access_token"]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {access}"}, timeout=10) as client:
        yield client


BIZ = f"/comments/business/{FRESHBOOKS_BUSINESS_ID}"


def test_freshbooks_service_rates(fb: httpx.Client) -> None:
    rates = {r["service_id"]: r["rate"] for r in fb.get(f"{BIZ}/service_rates").json()["service_rates"]}
    # the agency's task rates; Internal Meeting has none and is not listed
    assert rates[DESIGN] == "140.00" and rates[DEVELOPMENT] == "150.00" and INTERNAL not in rates
    one = fb.get(f"{BIZ}/service/{DESIGN}/rate").json()
    assert one == {"service_rate": {"business_id": int(FRESHBOOKS_BUSINESS_ID), "service_id": DESIGN, "rate": "140.00"}}
    assert fb.get(f"{BIZ}/service/{INTERNAL}/rate").status_code == 404


def test_freshbooks_team_member_rates_and_billing_methods(fb: httpx.Client) -> None:
    body = fb.get(f"/timetracking/business/{FRESHBOOKS_BUSINESS_ID}/team_member_rates").json()
    rates = {r["identity_id"]: r["rate"] for r in body["team_member_rates"]}
    assert rates[ALICE] == "150.00" and rates[CHLOE] == "140.00"
    projects = {p["id"]: p for p in fb.get(f"/projects/business/{FRESHBOOKS_BUSINESS_ID}/projects").json()["projects"]}
    assert projects[ACME_WEB]["billing_method"] == "project_rate" and projects[ACME_WEB]["rate"] == "150.00"
    # fixed price, no project rate: its time is valued at the services' rates
    assert (projects[HERON]["project_type"], projects[HERON]["billing_method"]) == ("fixed_price", "service_rate")
    assert projects[HERON]["fixed_price"] == "60000.00"
    assert projects[ACME_SUPPORT]["billing_method"] == "service_rate"
