"""Productive in the sandbox: the wire shapes over real HTTP, and the connector end to end."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlmodel import select

from bridge.config import SourceConfig
from bridge.connector import Context
from bridge.errors import AuthError
from bridge.http import RetryPolicy
from bridge.models import Invoice, Payment, Project, TimeEntry
from bridge.sync import sync_source
from connectors.productive import ProductiveConnector
from connectors.sandbox import PRODUCTIVE_ORGANIZATION_ID, PRODUCTIVE_TOKEN, RateRule, Sandbox
from connectors.sandbox import productive as wire
from connectors.sandbox.agency import Agency

BERLIN = ZoneInfo("Europe/Berlin")
HEADERS = {
    "X-Auth-Token": PRODUCTIVE_TOKEN,
    "X-Organization-Id": PRODUCTIVE_ORGANIZATION_ID,
    "Content-Type": "application/vnd.api+json",
}
UTC = dt.timezone.utc


@pytest.fixture
def api(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url("productive"), headers=HEADERS, timeout=10) as client:
        yield client


@pytest.fixture
def connect(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PRODUCTIVE_TOKEN", PRODUCTIVE_TOKEN)
    made: list[ProductiveConnector] = []
    slept: list[float] = []

    def build(**kw: Any) -> ProductiveConnector:
        cfg = SourceConfig(
            name="productive", kind="productive", base_url=sandbox.url("productive"),
            organization_id=kw.pop("organization_id", PRODUCTIVE_ORGANIZATION_ID), token_env="PRODUCTIVE_TOKEN", **kw,
        )
        conn = ProductiveConnector(cfg, tz=BERLIN, sleep=slept.append, retry=RetryPolicy(attempts=4, sleep=slept.append))
        conn.slept = slept  # type: ignore[attr-defined]
        made.append(conn)
        return conn

    yield build
    for conn in made:
        conn.close()


def ctx(agency: Agency) -> Context:
    return Context(source="productive", tz=BERLIN, today=agency.today)


def records(conn: ProductiveConnector, resource: str, agency: Agency, since: dt.datetime | None = None) -> list[Any]:
    res = conn.resources[resource]
    out = []
    for page in conn.pages(resource, since):
        for item in page.items:
            out.append(res.normalize(item, ctx(agency)))
    return out


# --- the wire ---------------------------------------------------------------------------


def test_auth_errors_are_jsonapi(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.url("productive"), timeout=10) as client:
        no_token = client.get("/people", headers={**HEADERS, "X-Auth-Token": "wrong"})
        wrong_org = client.get("/people", headers={**HEADERS, "X-Organization-Id": "1"})
        no_type = client.get("/people", headers={k: v for k, v in HEADERS.items() if k != "Content-Type"})
    assert no_token.status_code == 401 and no_token.json()["errors"][0]["status"] == "401"
    assert wrong_org.status_code == 403 and wrong_org.json()["errors"][0]["title"] == "Forbidden"
    assert no_type.status_code == 415
    assert no_token.headers["Content-Type"].startswith("application/vnd.api+json")


def test_list_shape_meta_links_and_page_size_cap(api: httpx.Client, agency: Agency) -> None:
    body = api.get("/time_entries", params={"page[size]": 500, "page[number]": 2}).json()
    total = len(agency.entries)
    assert body["meta"] == {
        "current_page": 2, "total_pages": math.ceil(total / 200), "total_count": total,
        "page_size": 200, "max_page_size": 200,
    }
    assert len(body["data"]) == min(200, total - 200)
    assert "page%5Bnumber%5D=1" in body["links"]["prev"] and body["links"]["first"].startswith("http://127.0.0.1")
    row = body["data"][0]
    assert row["type"] == "time_entries" and isinstance(row["attributes"]["time"], int)
    assert set(row["relationships"]) >= {"person", "service"}
    assert "included" not in body
    default = api.get("/companies").json()
    assert default["meta"]["page_size"] == 30 and "next" not in default["links"]


def test_include_service_and_its_deal(api: httpx.Client, agency: Agency) -> None:
    body = api.get("/time_entries", params={"include": "service,service.deal.project", "page[size]": 50}).json()
    included = {(r["type"], r["id"]): r for r in body["included"]}
    for row in body["data"]:
        svc = included[("services", row["relationships"]["service"]["data"]["id"])]
        deal = included[("deals", svc["relationships"]["deal"]["data"]["id"])]
        project_id = int(deal["relationships"]["project"]["data"]["id"])
        assert agency.entries[int(row["id"])].project_id == project_id
    assert {t for t, _ in included} == {"services", "deals", "projects"}


NOT_INCLUDED = {"meta": {"included": False}}


def test_linkage_only_for_what_include_names(api: httpx.Client) -> None:
    # Recorded from the real API: without include= every relationship but organization
    # arrives as meta.included false; with include=company only company carries data.
    bare = api.get("/projects").json()
    for row in bare["data"]:
        rels = row["relationships"]
        assert "data" in rels["organization"]
        assert all(rel == NOT_INCLUDED for name, rel in rels.items() if name != "organization")
    named = api.get("/projects", params={"include": "company"}).json()
    for row in named["data"]:
        assert row["relationships"]["company"]["data"]["type"] == "companies"
        assert row["relationships"]["project_manager"] == NOT_INCLUDED
    companies = [r for r in named["included"] if r["type"] == "companies"]
    assert companies and all(
        rel == NOT_INCLUDED for c in companies for name, rel in c["relationships"].items() if name != "organization"
    )


def test_nested_include_links_each_step_and_nothing_else(api: httpx.Client) -> None:
    body = api.get("/time_entries", params={"include": "person,service.deal", "page[size]": 20}).json()
    included = {(r["type"], r["id"]): r for r in body["included"]}
    row = body["data"][0]
    assert row["relationships"]["task"] == NOT_INCLUDED and "data" in row["relationships"]["person"]
    svc = included[("services", row["relationships"]["service"]["data"]["id"])]
    deal = included[("deals", svc["relationships"]["deal"]["data"]["id"])]
    assert deal["relationships"]["project"] == NOT_INCLUDED and deal["relationships"]["company"] == NOT_INCLUDED


def test_rate_limit_answers_429_with_retry_after(agency: Agency) -> None:
    with Sandbox(agency, rate_rules={"productive": [RateRule(2, 30.0)]}) as sandbox:
        with httpx.Client(base_url=sandbox.url("productive"), headers=HEADERS, timeout=10) as client:
            codes = [client.get("/people").status_code for _ in range(3)]
            last = client.get("/people")
    assert codes == [200, 200, 429]
    assert int(last.headers["Retry-After"]) >= 1 and last.json()["errors"][0]["status"] == "429"


def test_declares_both_productive_windows() -> None:
    general = [(r.limit, r.window) for r in wire.RATE_LIMITS if r.path_prefix is None]
    assert general == [(100, 10.0), (4000, 1800.0)]


# --- the connector end to end ---------------------------------------------------------


def test_time_entries_page_to_the_end_and_match_the_agency(connect, agency: Agency) -> None:
    conn = connect()
    got = {r.source_id: r for r in records(conn, "time_entries", agency)}
    assert conn.requests == math.ceil(len(agency.entries) / 200)
    assert set(got) == {str(i) for i in agency.entries}
    for e in agency.entries.values():
        r = got[str(e.id)]
        project = agency.projects[e.project_id]
        assert r.seconds == e.seconds and r.spent_date == e.spent_date
        assert r.project_source_id == str(e.project_id) and r.client_source_id == str(project.client_id)
        assert r.person_source_id == str(e.person_id) and r.is_billable == e.billable
        assert r.is_approved == e.is_locked and r.is_invoiced == (e.invoice_id is not None)
        assert r.is_running == e.is_running
        assert r.notes == ((e.notes or "").strip() or None)
        if e.billable:
            expected = (e.billable_rate * e.seconds / 3600).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            assert r.billable_amount == expected


def test_incremental_fetch_sees_only_what_changed(connect, agency: Agency, clock) -> None:
    conn = connect()
    clock.advance(3600)
    mark = clock()
    some = sorted(agency.entries)[:2]
    agency.edit_entry(some[0], notes="<b>changed</b> & more")
    agency.edit_entry(some[1], seconds=3600)
    got = {r.source_id: r for r in records(conn, "time_entries", agency, since=mark)}
    assert set(got) == {str(i) for i in some}
    assert got[str(some[0])].notes == "<b>changed</b> & more"  # escaped in the HTML, text again here
    assert got[str(some[1])].seconds == 3600


def test_deleted_entries_come_from_the_activity_feed_and_leave_the_id_listing(connect, agency: Agency, clock) -> None:
    conn = connect()
    clock.advance(60)
    before = clock()
    victim = sorted(agency.entries)[5]
    agency.delete_entry(victim)
    assert list(conn.deleted_ids("time_entries", before)) == [str(victim)]
    clock.advance(60)
    assert list(conn.deleted_ids("time_entries", clock())) == []
    window = agency.today - dt.timedelta(days=60)
    ids = set(conn.ids("time_entries", window))
    assert str(victim) not in ids
    assert ids >= {str(e.id) for e in agency.entries.values() if e.spent_date >= window}


def test_projects_carry_budgets_as_the_agency_defines_them(connect, agency: Agency) -> None:
    got = {p.source_id: p for p in records(connect(), "projects", agency)}
    assert set(got) == {str(i) for i in agency.projects}
    for p in agency.projects.values():
        r = got[str(p.id)]
        assert r.client_source_id == str(p.client_id) and r.is_active == p.is_active
        assert r.budget_kind == p.budget_kind
        assert r.budget_period == (None if p.budget_kind is None else ("monthly" if p.budget_is_monthly else "total"))
        if p.budget_kind == "hours":
            assert r.budget_seconds == int(p.budget * 3600) and r.budget_money is None
        elif p.budget_kind == "money":
            assert r.budget_money == p.budget and r.budget_seconds is None
        else:
            assert r.budget_seconds is None and r.budget_money is None


def test_invoices_and_payments_in_cents_match_the_agency(connect, agency: Agency) -> None:
    conn = connect()
    invoices = {i.source_id: i for i in records(conn, "invoices", agency)}
    for inv in agency.invoices.values():
        r = invoices[str(inv.id)]
        assert r.status == inv.status(agency.today), inv.id
        assert r.amount == inv.amount and r.currency == inv.currency
        assert r.due_amount == (inv.amount if inv.state == "draft" else inv.due_amount)
    statuses = {r.status for r in invoices.values()}
    assert statuses == {"draft", "open", "partial", "overdue", "void", "paid"}
    payments = {p.source_id: p for p in records(conn, "payments", agency)}
    expected = {str(p.id): p for inv in agency.invoices.values() for p in inv.payments}
    assert set(payments) == set(expected)
    assert all(payments[k].amount == v.amount and payments[k].invoice_source_id == str(v.invoice_id) for k, v in expected.items())


def test_check_with_a_wrong_token_is_auth_error_without_the_token(connect, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODUCTIVE_TOKEN", "not-the-sandbox-token")
    conn = connect()
    monkeypatch.setenv("PRODUCTIVE_TOKEN", PRODUCTIVE_TOKEN)
    with pytest.raises(AuthError) as info:
        conn.check()
    assert "not-the-sandbox-token" not in str(info.value) and "PRODUCTIVE_TOKEN" in str(info.value)


def test_injected_faults_are_retried(connect, sandbox: Sandbox, agency: Agency) -> None:
    sandbox.inject("productive", "429", count=1, path_contains="/companies", retry_after=3)
    sandbox.inject("productive", "429-no-retry-after", count=1, path_contains="/companies")
    sandbox.inject("productive", "503", count=1, path_contains="/companies")
    conn = connect()
    got = records(conn, "clients", agency)
    assert len(got) == len(agency.clients)
    assert conn.requests == 4 and conn.slept[0] == 3.0 and len(conn.slept) == 3


def test_sync_into_the_store_then_a_deletion_is_soft_deleted(connect, agency: Agency, store, clock) -> None:
    source = SourceConfig(name="productive", kind="productive", organization_id=PRODUCTIVE_ORGANIZATION_ID,
                          token_env="PRODUCTIVE_TOKEN")
    first = sync_source(connect(), store, source, ctx=ctx(agency), now=clock)
    assert first.status == "ok", first.error
    assert store.counts("productive")["time_entries"] == len(agency.entries)
    clock.advance(600)
    victim = sorted(agency.entries)[3]
    agency.delete_entry(victim)
    edited = sorted(agency.entries)[4]
    agency.edit_entry(edited, notes="edited after the first sync")
    clock.advance(600)
    second = sync_source(connect(), store, source, ctx=ctx(agency), now=clock)
    assert second.status == "ok", second.error
    assert second.deleted >= 1
    with store.session() as s:
        row = s.exec(select(TimeEntry).where(TimeEntry.source == "productive", TimeEntry.source_id == str(victim))).one()
        assert row.is_deleted
        assert s.exec(select(TimeEntry).where(TimeEntry.source_id == str(edited))).one().notes == "edited after the first sync"
        assert len(s.exec(select(Project).where(Project.source == "productive")).all()) == len(agency.projects)
        assert len(s.exec(select(Invoice)).all()) == len(agency.invoices) and s.exec(select(Payment)).first() is not None


def test_wire_filters_on_updated_at_and_date(api: httpx.Client, agency: Agency, clock) -> None:
    clock.advance(60)
    mark = clock()
    target = sorted(agency.entries)[10]
    agency.edit_entry(target, notes="x")
    changed = api.get("/time_entries", params={"filter[updated_at][gt_eq]": mark.isoformat()}).json()
    assert [r["id"] for r in changed["data"]] == [str(target)]
    day = agency.entries[target].spent_date
    dated = api.get("/time_entries", params={"filter[after]": day.isoformat(), "filter[before]": day.isoformat(),
                                             "page[size]": 200}).json()
    assert {r["attributes"]["date"] for r in dated["data"]} == {day.isoformat()}
    assert dated["meta"]["total_count"] == sum(1 for e in agency.entries.values() if e.spent_date == day)
    assert api.get("/time_entries", params={"sort": "nope"}).status_code == 400


def test_malformed_entries_render_invalid_and_are_quarantined(connect, agency: Agency) -> None:
    bad_date, bad_time = sorted(agency.entries)[:2]
    agency.malform_entry(bad_date, "bad_date")
    agency.malform_entry(bad_time, "bad_duration")
    conn = connect()
    res = conn.resources["time_entries"]
    failed = {}
    for page in conn.pages("time_entries", None):
        for item in page.items:
            try:
                res.normalize(item, ctx(agency))
            except Exception as exc:  # noqa: BLE001 - the test collects what the sync would quarantine
                failed[item["id"]] = getattr(exc, "field", "")
    assert failed == {str(bad_date): "date", str(bad_time): "time"}
