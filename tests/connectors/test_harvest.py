"""Harvest v2 connector: normalizers on recorded payloads, and the wiring over respx."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

import connectors
from bridge.config import SourceConfig
from bridge.connector import Context
from bridge.errors import AuthError, ConfigError, FatalSourceError, RecordError, RetryableSourceError
from bridge.http import RetryPolicy
from connectors.harvest import PARENT_ID_KEY, RESOURCES, HarvestConnector
from tests.helpers.clock import FakeClock
from tests.conftest import fixture_json

BASE = "https://api.harvestapp.com/v2"
TOKEN = "hv-pat-0123456789abcdef"
BERLIN = ZoneInfo("Europe/Berlin")
TODAY = dt.date(2025, 3, 20)
CTX = Context(source="harvest", tz=BERLIN, today=TODAY)
UTC = dt.timezone.utc


def items(name: str, key: str) -> list[dict[str, Any]]:
    return fixture_json("harvest", name)[key]


def item(name: str, key: str, id_: int) -> dict[str, Any]:
    return copy.deepcopy(next(i for i in items(name, key) if i["id"] == id_))


def entry(id_: int = 2101000007, **overrides: Any) -> dict[str, Any]:
    pages = items("time_entries_page1.json", "time_entries") + items("time_entries_page2.json", "time_entries")
    raw = copy.deepcopy(next(i for i in pages if i["id"] == id_))
    return {**raw, **overrides}


def project(id_: int = 14501001, **overrides: Any) -> dict[str, Any]:
    return {**item("projects_page1.json", "projects", id_), **overrides}


def invoice(id_: int = 40100002, **overrides: Any) -> dict[str, Any]:
    return {**item("invoices_page1.json", "invoices", id_), **overrides}


def page(rows: list[dict[str, Any]], key: str, next_url: str | None = None) -> dict[str, Any]:
    return {"per_page": 2000, key: rows, "links": {"next": next_url}}




@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(monkeypatch: pytest.MonkeyPatch, clock: FakeClock):
    monkeypatch.setenv("HARVEST_TOKEN", TOKEN)

    def build(**source_kw: Any) -> HarvestConnector:
        retry = source_kw.pop("retry", None)
        cfg = SourceConfig(
            name="harvest-eu", kind="harvest", account_id="987654", token_env="HARVEST_TOKEN",
            user_agent="Acme Bridge (ops@acme.example)", **source_kw,
        )
        return HarvestConnector(cfg, tz=BERLIN, retry=retry, sleep=clock.sleep, clock=clock)

    return build


# --- normalizers ------------------------------------------------------------------------


def test_client_normalizes_every_fixture_row() -> None:
    rows = {r.source_id: r for r in (RESOURCES["clients"].normalize(raw, CTX) for raw in items("clients_page1.json", "clients"))}
    assert set(rows) == {"5201001", "5201002", "5201003", "5201004"}
    zurich = rows["5201003"]
    assert (zurich.source, zurich.name, zurich.currency, zurich.is_active) == ("harvest", "Zürich Nordlicht AG", "CHF", True)
    assert zurich.updated_at == dt.datetime(2025, 2, 24, 10, 11, tzinfo=UTC)
    assert rows["5201004"].is_active is False


def test_project_hours_budget_total() -> None:
    p = RESOURCES["projects"].normalize(project(14501001), CTX)
    assert p.source_id == "14501001" and p.client_source_id == "5201001"
    assert (p.name, p.code, p.currency) == ("Acme Website Redesign", "ACME-WEB", "EUR")
    assert (p.budget_kind, p.budget_period, p.budget_seconds, p.budget_money) == ("hours", "total", 200 * 3600, None)
    assert p.budget_visible is True
    assert (p.starts_on, p.ends_on) == (dt.date(2025, 1, 6), dt.date(2025, 6, 30))
    assert p.billing_method == "project"
    assert p.hourly_rate == Decimal("150.0") and p.fee is None
    assert p.notes == "Phase 1: marketing site + shop checkout."
    assert p.updated_at == dt.datetime(2025, 1, 6, 9, 42, 10, tzinfo=UTC)


def test_project_monthly_hours_budget() -> None:
    p = RESOURCES["projects"].normalize(project(14501002), CTX)
    assert (p.budget_kind, p.budget_period, p.budget_seconds) == ("hours", "monthly", 20 * 3600)
    assert p.ends_on is None and p.billing_method == "tasks"


def test_project_money_budget_from_cost_budget() -> None:
    p = RESOURCES["projects"].normalize(project(14501003), CTX)
    assert (p.budget_kind, p.budget_money, p.budget_seconds, p.budget_visible) == ("money", Decimal("12000.0"), None, True)
    assert p.fee == Decimal("12000.0") and p.currency == "USD"
    assert p.notes is None  # "" is no note


def test_project_money_budget_hidden_from_token_is_not_zero() -> None:
    p = RESOURCES["projects"].normalize(project(14501003, cost_budget=None), CTX)
    assert p.budget_kind == "money"
    assert p.budget_money is None and p.budget_visible is False


@pytest.mark.parametrize(
    ("budget_by", "budget", "cost_budget", "kind", "seconds", "money"),
    [
        ("task", 12.5, None, "hours", 45000, None),
        ("person", None, None, "hours", None, None),
        ("task_fees", None, 800.5, "money", None, Decimal("800.5")),
    ],
)
def test_project_budget_kinds(budget_by: str, budget: Any, cost_budget: Any, kind: str, seconds: Any, money: Any) -> None:
    p = RESOURCES["projects"].normalize(project(budget_by=budget_by, budget=budget, cost_budget=cost_budget), CTX)
    assert (p.budget_kind, p.budget_seconds, p.budget_money) == (kind, seconds, money)


def test_project_without_budget() -> None:
    p = RESOURCES["projects"].normalize(project(14501004), CTX)
    assert (p.budget_kind, p.budget_period, p.budget_seconds, p.budget_money) == (None, None, None, None)
    assert p.currency == "CHF" and p.billing_method == "people" and p.hourly_rate is None
    assert p.starts_on == dt.date(2025, 3, 1) and p.notes is None


def test_person_fields_and_deactivated_user() -> None:
    people = {r.source_id: r for r in (RESOURCES["people"].normalize(raw, CTX) for raw in items("users_page1.json", "users"))}
    alice = people["3101001"]
    assert (alice.first_name, alice.last_name, alice.email) == ("Alice", "Martin", "alice.martin@example.com")
    assert alice.role == "Project lead"  # the first of several roles
    assert (alice.default_hourly_rate, alice.cost_rate) == (Decimal("150.0"), Decimal("60.0"))
    assert people["3101004"].is_active is False and people["3101002"].is_active is True
    assert people["3101003"].is_contractor is True and people["3101003"].first_name == "Chloé"
    assert people["3101003"].updated_at == dt.datetime(2025, 2, 3, 7, 55, tzinfo=UTC)


def test_person_role_falls_back_to_access_role() -> None:
    raw = {**item("users_page1.json", "users", 3101004), "roles": []}
    assert RESOURCES["people"].normalize(raw, CTX).role == "manager"


def test_task_fields() -> None:
    tasks = {r.source_id: r for r in (RESOURCES["tasks"].normalize(raw, CTX) for raw in items("tasks_page1.json", "tasks"))}
    assert tasks["8301004"].name == "Internal Meeting"
    assert tasks["8301004"].is_billable_default is False and tasks["8301004"].default_hourly_rate is None
    assert tasks["8301002"].default_hourly_rate == Decimal("150.0") and tasks["8301002"].is_billable_default is True


def test_task_assignment_fields() -> None:
    raw = {
        "id": 160000012, "billable": False, "is_active": True, "hourly_rate": 95.5, "budget": 7.25,
        "project": {"id": 14501001, "name": "Acme Website Redesign", "code": "ACME-WEB"},
        "task": {"id": 8301002, "name": "Development"}, "updated_at": "2025-01-06T09:35:00Z",
    }
    ta = RESOURCES["task_assignments"].normalize(raw, CTX)
    assert (ta.source_id, ta.project_source_id, ta.task_source_id) == ("160000012", "14501001", "8301002")
    assert (ta.is_billable, ta.budget_seconds, ta.hourly_rate) == (False, 26100, Decimal("95.5"))


def test_time_entry_running_timer_keeps_hours_so_far() -> None:
    t = RESOURCES["time_entries"].normalize(entry(2101000009), CTX)
    assert t.is_running is True
    assert t.seconds == 4572  # 1.27 h, including the running timer
    assert t.billable_amount == Decimal("190.50")  # 1.27 x 150
    assert (t.billable_rate, t.cost_rate, t.currency) == (Decimal("150.0"), Decimal("60.0"), "EUR")
    assert (t.client_source_id, t.project_source_id, t.person_source_id, t.task_source_id) == (
        "5201001", "14501001", "3101001", "8301002",
    )
    assert t.spent_date == dt.date(2025, 3, 18)
    assert t.updated_at == dt.datetime(2025, 3, 18, 13, 5, 12, tzinfo=UTC)
    assert (t.is_approved, t.is_invoiced, t.invoice_source_id) == (False, False, None)


def test_time_entry_non_billable_has_no_amount() -> None:
    t = RESOURCES["time_entries"].normalize(entry(2101000008), CTX)
    assert t.is_billable is False and t.billable_rate is None and t.billable_amount is None
    assert t.cost_rate == Decimal("55.0") and t.seconds == 1800


def test_time_entry_billable_flag_wins_over_a_rate() -> None:
    t = RESOURCES["time_entries"].normalize(entry(2101000007, billable=False), CTX)
    assert t.billable_rate == Decimal("140.0") and t.billable_amount is None


def test_time_entry_unicode_and_null_notes() -> None:
    t = RESOURCES["time_entries"].normalize(entry(2101000007), CTX)
    assert t.notes == "Überarbeitung des Logos — naïve café ☕ · ロゴ案 v3 «final» 🎨"
    assert t.billable_amount == Decimal("455.00") and t.currency == "USD"
    assert RESOURCES["time_entries"].normalize(entry(2101000006), CTX).notes is None


def test_time_entry_locked_and_closed_is_approved_not_invoiced() -> None:
    t = RESOURCES["time_entries"].normalize(entry(2101000005), CTX)
    assert (t.is_approved, t.is_invoiced, t.invoice_source_id, t.currency) == (True, False, None, "CHF")


INVOICED_LOCK = "Item Invoiced and Locked for this Time Period"
APPROVED_LOCK = "Item Approved and Locked for this Time Period"


@pytest.mark.parametrize(("fields", "approved"), [
    ({"approval_status": "approved", "is_closed": False}, True),
    ({"approval_status": "submitted", "is_closed": True}, False),  # the newer field decides
    ({"approval_status": "unsubmitted", "is_locked": True, "locked_reason": INVOICED_LOCK}, False),
    # older payloads without approval_status
    ({"is_closed": True, "is_locked": False}, True),
    ({"is_closed": False, "is_locked": True, "locked_reason": APPROVED_LOCK}, True),
    ({"is_closed": False, "is_locked": True, "locked_reason": INVOICED_LOCK}, False),
    ({"is_closed": False, "is_locked": False, "locked_reason": None}, False),
])
def test_time_entry_approval_reads_approval_status_and_never_an_invoicing_lock(fields: dict, approved: bool) -> None:
    raw = {k: v for k, v in entry().items() if k != "approval_status"}
    t = RESOURCES["time_entries"].normalize({**raw, **fields}, CTX)
    assert t.is_approved is approved


def test_unknown_approval_status_is_a_record_error() -> None:
    with pytest.raises(RecordError) as info:
        RESOURCES["time_entries"].normalize(entry(approval_status="pending-ish"), CTX)
    assert info.value.field == "approval_status"


def test_person_budgeted_project_with_zero_budget_has_no_budget() -> None:
    # recorded: budget_by person carries budget 0.0 (the budgets live on the assignments)
    p = RESOURCES["projects"].normalize(project(budget_by="person", budget=0.0), CTX)
    assert (p.budget_kind, p.budget_period, p.budget_seconds) == (None, None, None)
    money = RESOURCES["projects"].normalize(project(budget_by="project_cost", budget=None, cost_budget=0.0), CTX)
    assert (money.budget_kind, money.budget_money) == (None, None)


def test_task_assignment_zero_budget_is_no_budget() -> None:
    raw = {"id": 1, "project": {"id": 14501001}, "task": {"id": 8301001}, "billable": True, "is_active": True,
           "budget": 0.0, "hourly_rate": None, "updated_at": "2025-03-01T10:00:00Z"}
    assert RESOURCES["task_assignments"].normalize(raw, CTX).budget_seconds is None
    assert RESOURCES["task_assignments"].normalize({**raw, "budget": 12.5}, CTX).budget_seconds == 45000


def test_draft_invoice_with_a_payment_is_not_a_draft() -> None:
    # recorded: a draft can already have a payment
    part = RESOURCES["invoices"].normalize(invoice(40100004, state="draft", amount=1000.0, due_amount=400.0), CTX)
    assert part.status in ("partial", "overdue") and part.status != "draft"
    ctx = Context(source="harvest", tz=BERLIN, today=dt.date(2025, 1, 1))
    assert RESOURCES["invoices"].normalize(invoice(40100004, state="draft", amount=1000.0, due_amount=400.0), ctx).status == "partial"
    paid = RESOURCES["invoices"].normalize(
        invoice(40100004, state="draft", amount=1000.0, due_amount=0.0, paid_date="2025-03-01"), CTX
    )
    assert paid.status == "paid"
    assert RESOURCES["invoices"].normalize(invoice(40100004), CTX).status == "draft"


def test_time_entry_invoiced() -> None:
    t = RESOURCES["time_entries"].normalize(entry(2101000004), CTX)
    assert (t.is_invoiced, t.invoice_source_id) == (True, "40100002")
    assert (t.seconds, t.billable_amount) == (23400, Decimal("975.00"))
    t2 = RESOURCES["time_entries"].normalize(entry(2101000002), CTX)
    assert (t2.invoice_source_id, t2.billable_amount, t2.seconds) == ("40100003", Decimal("385.00"), 9900)


def test_time_entry_amount_is_kept_exact_not_rounded_to_cents() -> None:
    # money is summed first and rounded once, for display (issue 10): 0.125 h x 100.10 = 12.5125
    t = RESOURCES["time_entries"].normalize(entry(hours=0.125, billable_rate=100.1), CTX)
    assert t.billable_amount == Decimal("12.5125")
    assert t.seconds == 450


def test_invoice_statuses_from_fixture() -> None:
    rows = {r.source_id: r for r in (RESOURCES["invoices"].normalize(raw, CTX) for raw in items("invoices_page1.json", "invoices"))}
    assert {k: v.status for k, v in rows.items()} == {
        "40100004": "draft", "40100003": "overdue", "40100002": "open", "40100001": "paid",
    }
    paid = rows["40100001"]
    assert (paid.amount, paid.due_amount, paid.paid_date) == (Decimal("2975.0"), Decimal("0.0"), dt.date(2025, 2, 25))
    open_ = rows["40100002"]
    assert (open_.number, open_.client_source_id, open_.currency) == ("2025-0002", "5201001", "EUR")
    assert (open_.amount, open_.due_amount) == (Decimal("1874.25"), Decimal("1874.25"))
    assert (open_.issue_date, open_.due_date, open_.paid_date) == (dt.date(2025, 3, 5), dt.date(2025, 4, 4), None)
    assert (open_.period_start, open_.period_end) == (dt.date(2025, 2, 1), dt.date(2025, 3, 3))
    assert open_.updated_at == dt.datetime(2025, 3, 5, 11, 5, tzinfo=UTC)
    assert rows["40100004"].currency == "CHF" and rows["40100004"].period_start is None


def test_invoice_partly_paid_before_due_date_is_partial() -> None:
    ctx = Context(source="harvest", tz=BERLIN, today=dt.date(2025, 2, 10))
    assert RESOURCES["invoices"].normalize(invoice(40100003), ctx).status == "partial"


def test_invoice_paid_date_falls_back_to_paid_at_in_agency_zone() -> None:
    raw = invoice(40100001, paid_date=None, paid_at="2025-02-25T23:30:00Z")
    assert RESOURCES["invoices"].normalize(raw, CTX).paid_date == dt.date(2025, 2, 26)


def test_invoice_closed_is_void() -> None:
    assert RESOURCES["invoices"].normalize(invoice(state="closed"), CTX).status == "void"


def test_payment_takes_invoice_id_from_parent() -> None:
    raw = {**items("invoice_payments_inv40100003_page1.json", "invoice_payments")[0], PARENT_ID_KEY: "40100003"}
    p = RESOURCES["payments"].normalize(raw, CTX)
    assert (p.source_id, p.invoice_source_id, p.amount, p.currency) == ("10336002", "40100003", Decimal("3500.0"), None)
    assert p.paid_date == dt.date(2025, 2, 20)
    assert p.updated_at == dt.datetime(2025, 2, 20, 15, 4, 41, tzinfo=UTC)


MALFORMED = [
    ("time_entries", lambda: entry(hours="1,5"), "hours"),
    ("time_entries", lambda: entry(hours=None), "hours"),
    ("time_entries", lambda: entry(hours=-1), "hours"),
    ("time_entries", lambda: entry(spent_date="2025-13-01"), "spent_date"),
    ("time_entries", lambda: entry(spent_date=None), "spent_date"),
    ("time_entries", lambda: entry(billable="yes"), "billable"),
    ("time_entries", lambda: entry(billable_rate="n/a"), "billable_rate"),
    ("time_entries", lambda: entry(cost_rate=True), "cost_rate"),
    ("time_entries", lambda: entry(client={"id": 1, "currency": "EURO"}), "client.currency"),
    ("time_entries", lambda: entry(updated_at="yesterday"), "updated_at"),
    ("projects", lambda: project(name=None), "name"),
    ("projects", lambda: project(budget="lots"), "budget"),
    ("projects", lambda: project(budget_by="vibes"), "budget_by"),
    ("projects", lambda: project(starts_on="01/06/2025"), "starts_on"),
    ("projects", lambda: project(budget_is_monthly="no"), "budget_is_monthly"),
    ("invoices", lambda: invoice(amount=None), "amount"),
    ("invoices", lambda: invoice(due_amount="?"), "due_amount"),
    ("invoices", lambda: invoice(state="weird"), "state"),
    ("invoices", lambda: invoice(currency=None), "currency"),
    ("invoices", lambda: invoice(due_date="soon"), "due_date"),
    ("people", lambda: {**item("users_page1.json", "users", 3101001), "cost_rate": "high"}, "cost_rate"),
    ("tasks", lambda: {**item("tasks_page1.json", "tasks", 8301001), "name": "  "}, "name"),
    ("task_assignments", lambda: {"id": 5, "task": {"id": 1}}, "project"),
    ("payments", lambda: {"id": 7, "amount": 1.0}, PARENT_ID_KEY),
    ("payments", lambda: {"id": 7, "amount": None, PARENT_ID_KEY: "1"}, "amount"),
]


@pytest.mark.parametrize(("resource", "build", "field"), MALFORMED, ids=[f"{r}-{f}" for r, _, f in MALFORMED])
def test_malformed_record_raises_record_error_naming_field(resource: str, build: Any, field: str) -> None:
    raw = build()
    with pytest.raises(RecordError) as info:
        RESOURCES[resource].normalize(raw, CTX)
    assert info.value.field == field
    assert info.value.source_id == str(raw["id"])


@pytest.mark.parametrize("resource", list(RESOURCES))
def test_record_without_id_is_a_record_error(resource: str) -> None:
    with pytest.raises(RecordError) as info:
        RESOURCES[resource].normalize({"name": "x"}, CTX)
    assert info.value.field == "id"


def test_resources_are_declared_in_sync_order() -> None:
    assert list(RESOURCES) == [
        "clients", "projects", "people", "tasks", "task_assignments", "time_entries", "invoices", "payments",
    ]
    assert RESOURCES["people"].path == "users"
    pay = RESOURCES["payments"]
    assert (pay.parent, pay.path, pay.items_key, pay.reconcile) == (
        "invoices", "invoices/{parent_id}/payments", "invoice_payments", None,
    )
    assert RESOURCES["time_entries"].reconcile == "window" and RESOURCES["clients"].reconcile == "all"
    assert pay.parent_key == "invoice_source_id"


def test_payments_are_asked_for_only_on_invoices_with_something_paid() -> None:
    invoices = {r.source_id: r for r in (RESOURCES["invoices"].normalize(raw, CTX) for raw in items("invoices_page1.json", "invoices"))}
    wanted = {sid for sid, inv in invoices.items() if RESOURCES["payments"].parent_filter(inv)}
    assert wanted == {"40100001", "40100003"}  # paid, partly paid; the draft and the unpaid one have none


# --- wiring over HTTP -------------------------------------------------------------------


@pytest.mark.respx(base_url=BASE)
def test_pages_follow_links_next_to_the_last_page(respx_mock, make) -> None:
    p1, p2 = fixture_json("harvest", "time_entries_page1.json"), fixture_json("harvest", "time_entries_page2.json")
    second = respx_mock.get("/time_entries", params={"ref": "next_cursor"}).respond(json=p2)
    first = respx_mock.get("/time_entries", params={"per_page": "2000"}).respond(json=p1)
    conn = make()
    pages = list(conn.pages("time_entries", None))
    assert [len(p.items) for p in pages] == [6, 3]
    # the resume token holds the next link verbatim (and the listing's count, to notice a shift)
    assert json.loads(pages[0].resume)["next"] == p1["links"]["next"] and pages[1].resume is None
    assert str(second.calls.last.request.url) == p1["links"]["next"]
    assert "updated_since" not in first.calls.last.request.url.params
    assert conn.requests == 2
    ids = [RESOURCES["time_entries"].normalize(i, CTX).source_id for p in pages for i in p.items]
    assert len(set(ids)) == 9


@pytest.mark.respx(base_url=BASE)
def test_pages_send_updated_since_in_utc(respx_mock, make) -> None:
    route = respx_mock.get("/clients").respond(json=fixture_json("harvest", "clients_page1.json"))
    since = dt.datetime(2025, 3, 1, 10, 0, 30, tzinfo=BERLIN)
    pages = list(make().pages("clients", since))
    params = route.calls.last.request.url.params
    assert params["updated_since"] == "2025-03-01T09:00:30Z"
    assert params["per_page"] == "2000"
    assert len(pages) == 1 and len(pages[0].items) == 4 and pages[0].resume is None


@pytest.mark.respx(base_url=BASE)
def test_pages_resume_from_a_next_link(respx_mock, make) -> None:
    next_url = "https://api.harvestapp.com/v2/time_entries?cursor=eyJhZnRlciI6MTIzfQ&per_page=2000&ref=next_cursor"
    route = respx_mock.get("/time_entries").respond(json=fixture_json("harvest", "time_entries_page2.json"))
    pages = list(make().pages("time_entries", dt.datetime(2025, 1, 1, tzinfo=UTC), resume=next_url))
    assert route.call_count == 1
    assert str(route.calls.last.request.url) == next_url  # verbatim, no params added
    assert [p.resume for p in pages] == [None]


@pytest.mark.respx(base_url=BASE)
def test_every_request_carries_auth_account_and_user_agent(respx_mock, make) -> None:
    route = respx_mock.get("/users/me").respond(json={"id": 3101001})
    make().check()
    headers = route.calls.last.request.headers
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Harvest-Account-Id"] == "987654"
    assert headers["User-Agent"] == "Acme Bridge (ops@acme.example)"


@pytest.mark.respx(base_url=BASE)
def test_401_is_auth_error_with_advice_and_no_token(respx_mock, make) -> None:
    body = fixture_json("harvest", "errors.json")["401_invalid_token"]["body"]
    body = {**body, "error_description": body["error_description"] + f" (token {TOKEN})"}
    route = respx_mock.get("/users/me").respond(401, json=body)
    with pytest.raises(AuthError) as info:
        make().check()
    message = str(info.value)
    assert route.call_count == 1  # never retried
    assert TOKEN not in message
    assert "HARVEST_TOKEN" in message and "987654" in message
    assert "invalid_token" in message


@pytest.mark.respx(base_url=BASE)
def test_429_waits_retry_after_then_succeeds(respx_mock, make, clock) -> None:
    err = fixture_json("harvest", "errors.json")["429_throttled"]
    route = respx_mock.get("/tasks").mock(side_effect=[
        httpx.Response(429, headers=err["headers"], json=err["body"]),
        httpx.Response(200, json=fixture_json("harvest", "tasks_page1.json")),
    ])
    pages = list(make().pages("tasks", None))
    assert route.call_count == 2 and len(pages[0].items) == 4
    assert clock.slept == [9.0]


@pytest.mark.respx(base_url=BASE)
def test_429_without_retry_after_backs_off(respx_mock, make, clock) -> None:
    recorded = fixture_json("harvest", "errors.json")["429_recorded_no_retry_after"]  # text/html, empty
    throttled = httpx.Response(429, text=recorded["body"], headers=recorded["headers"])
    route = respx_mock.get("/tasks").mock(side_effect=[throttled, throttled, httpx.Response(200, json=page([], "tasks"))])
    conn = make(retry=RetryPolicy(attempts=4, backoff_s=2.0, max_wait_s=30.0, sleep=clock.sleep))
    list(conn.pages("tasks", None))
    assert route.call_count == 3
    # at least Harvest's 15 s window (plus the limiter's margin), then twice that up to the cap
    assert clock.slept == [15.25, 30.0]


@pytest.mark.respx(base_url=BASE)
def test_html_404_page_is_named_not_pasted(respx_mock, make) -> None:
    recorded = fixture_json("harvest", "errors.json")["404_html_page"]
    respx_mock.get("/tasks").respond(404, text=recorded["body"], headers=recorded["headers"])
    with pytest.raises(FatalSourceError) as info:
        list(make().pages("tasks", None))
    assert "HTTP 404" in str(info.value) and "an HTML page titled 'Page not found - Harvest'" in str(info.value)
    assert "<" not in str(info.value)


@pytest.mark.respx(base_url=BASE)
def test_500s_then_success(respx_mock, make) -> None:
    err = fixture_json("harvest", "errors.json")["500_server_error"]
    route = respx_mock.get("/clients").mock(side_effect=[
        httpx.Response(500, text=err["body"]), httpx.Response(503),
        httpx.Response(200, json=fixture_json("harvest", "clients_page1.json")),
    ])
    assert len(next(make().pages("clients", None)).items) == 4
    assert route.call_count == 3


@pytest.mark.respx(base_url=BASE)
def test_timeouts_are_retried_then_raise_retryable(respx_mock, make, clock) -> None:
    route = respx_mock.get("/clients").mock(side_effect=httpx.ReadTimeout("slow"))
    conn = make(retry=RetryPolicy(attempts=3, sleep=clock.sleep))
    with pytest.raises(RetryableSourceError, match="timed out 3 times"):
        list(conn.pages("clients", None))
    assert route.call_count == 3 and len(clock.slept) == 2


@pytest.mark.respx(base_url=BASE)
def test_rate_limit_from_config_holds_requests_back(respx_mock, make, clock) -> None:
    respx_mock.get("/clients", params={"page": "3"}).respond(json=page([{"id": 3}], "clients"))
    respx_mock.get("/clients", params={"page": "2"}).respond(json=page([{"id": 2}], "clients", f"{BASE}/clients?page=3"))
    respx_mock.get("/clients").respond(json=page([{"id": 1}], "clients", f"{BASE}/clients?page=2"))
    conn = make(requests_per_window=2, window_seconds=15)
    assert list(conn.ids("clients", None)) == ["1", "2", "3"]
    assert len(clock.slept) == 1 and 15.0 <= clock.slept[0] < 15.4  # the window plus its jitter margin


@pytest.mark.respx(base_url=BASE)
def test_default_rate_limit_keeps_under_100_requests_per_15_seconds(respx_mock, make, clock) -> None:
    sent: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(clock.now)
        clock.now += 0.02  # each request takes a moment
        return httpx.Response(200, json={"id": 1})

    respx_mock.get("/users/me").mock(side_effect=answer)
    conn = make()
    for _ in range(250):
        conn.check()
    busiest = max(sum(1 for t in sent if start <= t < start + 15.0) for start in sent)
    assert busiest == 100
    assert sent[-1] - sent[0] >= 30.0  # 250 requests need at least two full windows


@pytest.mark.respx(base_url=BASE)
def test_payments_are_fetched_per_invoice_and_carry_its_id(respx_mock, make) -> None:
    route = respx_mock.get("/invoices/40100001/payments").respond(
        json=fixture_json("harvest", "invoice_payments_inv40100001_page1.json")
    )
    pages = list(make().pages("payments", None, parent_id="40100001"))
    assert route.call_count == 1
    [raw] = pages[0].items
    p = RESOURCES["payments"].normalize(raw, CTX)
    assert (p.invoice_source_id, p.amount, p.paid_date) == ("40100001", Decimal("2975.0"), dt.date(2025, 2, 25))


def test_payments_need_a_parent_id(make) -> None:
    with pytest.raises(ValueError, match="parent_id"):
        list(make().pages("payments", None))


@pytest.mark.respx(base_url=BASE)
def test_ids_of_time_entries_list_the_window_on_all_pages(respx_mock, make) -> None:
    p1, p2 = fixture_json("harvest", "time_entries_page1.json"), fixture_json("harvest", "time_entries_page2.json")
    respx_mock.get("/time_entries", params={"ref": "next_cursor"}).respond(json=p2)
    first = respx_mock.get("/time_entries", params={"from": "2025-02-01"}).respond(json=p1)
    ids = list(make().ids("time_entries", dt.date(2025, 2, 1)))
    assert len(ids) == 9 and "2101000001" in ids and "2101000009" in ids
    assert "updated_since" not in first.calls.last.request.url.params


@pytest.mark.respx(base_url=BASE)
def test_ids_of_reference_resources_list_everything(respx_mock, make) -> None:
    route = respx_mock.get("/users").respond(json=fixture_json("harvest", "users_page1.json"))
    assert sorted(make().ids("people", dt.date(2025, 2, 1))) == ["3101001", "3101002", "3101003", "3101004"]
    assert "from" not in route.calls.last.request.url.params


@pytest.mark.respx(base_url=BASE)
def test_ids_refuse_an_item_without_id(respx_mock, make) -> None:
    respx_mock.get("/tasks").respond(json=page([{"id": 1}, {"name": "no id"}], "tasks"))
    with pytest.raises(FatalSourceError, match="without an id"):
        list(make().ids("tasks", None))


def test_ids_of_payments_are_not_reconciled(make) -> None:
    with pytest.raises(ValueError):
        list(make().ids("payments", None))


def test_no_deletion_feed(make) -> None:
    conn = make()
    assert list(conn.deleted_ids("time_entries", None)) == []
    assert conn.requests == 0


@pytest.mark.respx(base_url=BASE)
def test_unexpected_page_shape_is_fatal(respx_mock, make) -> None:
    respx_mock.get("/invoices").respond(json={"message": "not a list page"})
    with pytest.raises(FatalSourceError, match="'invoices' list"):
        list(make().pages("invoices", None))


def test_missing_account_id_or_token_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARVEST_TOKEN", TOKEN)
    with pytest.raises(ConfigError, match="account_id"):
        HarvestConnector(SourceConfig(name="h", kind="harvest", token_env="HARVEST_TOKEN"), tz=BERLIN)
    monkeypatch.delenv("HARVEST_TOKEN")
    with pytest.raises(ConfigError, match="HARVEST_TOKEN"):
        HarvestConnector(SourceConfig(name="h", kind="harvest", account_id="1", token_env="HARVEST_TOKEN"), tz=BERLIN)


@pytest.mark.respx(base_url="http://127.0.0.1:8765/harvest/v2")
def test_base_url_override(respx_mock, make) -> None:
    route = respx_mock.get("/users/me").respond(json={"id": 1})
    make(base_url="http://127.0.0.1:8765/harvest/v2").check()
    assert route.call_count == 1


# --- registry ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(connectors.CONNECTORS))
def test_registry_contract(kind: str) -> None:
    cls = connectors.CONNECTORS[kind]
    assert cls.kind == kind
    assert cls.resources and all(name == r.name for name, r in cls.resources.items())
    for r in cls.resources.values():
        assert r.parent is None or r.parent in cls.resources


def test_build_connector_dispatches_on_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARVEST_TOKEN", TOKEN)
    cfg = SourceConfig(name="harvest-eu", kind="harvest", account_id="1", token_env="HARVEST_TOKEN")
    conn = connectors.build_connector(cfg, tz=BERLIN, store=object())
    assert isinstance(conn, HarvestConnector) and conn.name == "harvest-eu"
    conn.close()


def test_build_connector_passes_store_only_to_connectors_that_take_it(monkeypatch: pytest.MonkeyPatch) -> None:
    class NeedsStore:
        kind = "productive"

        def __init__(self, source: SourceConfig, *, tz: ZoneInfo, store: Any = None) -> None:
            self.store = store

    monkeypatch.setitem(connectors.CONNECTORS, "productive", NeedsStore)
    marker = object()
    conn = connectors.build_connector(SourceConfig(name="p", kind="productive"), tz=BERLIN, store=marker)
    assert conn.store is marker


def test_build_connector_unknown_kind_is_config_error() -> None:
    cfg = SourceConfig.model_construct(name="x", kind="nope")
    with pytest.raises(ConfigError, match="nope"):
        connectors.build_connector(cfg, tz=BERLIN)


# --- through the sync engine ------------------------------------------------------------


@pytest.mark.respx(base_url=BASE)
def test_sync_source_fills_the_store_with_the_minimum_of_requests(respx_mock, make, store) -> None:
    from bridge.sync import sync_source

    p1 = fixture_json("harvest", "time_entries_page1.json")
    bad = next(i for i in p1["time_entries"] if i["id"] == 2101000006)
    bad["hours"] = "1h30"  # quarantined, not fatal
    for path, name in [("/clients", "clients"), ("/projects", "projects"), ("/users", "users"), ("/tasks", "tasks"),
                       ("/invoices", "invoices")]:
        respx_mock.get(path).respond(json=fixture_json("harvest", f"{name}_page1.json"))
    respx_mock.get("/task_assignments").respond(json=page([], "task_assignments"))
    respx_mock.get("/time_entries", params={"ref": "next_cursor"}).respond(json=fixture_json("harvest", "time_entries_page2.json"))
    respx_mock.get("/time_entries").respond(json=p1)
    for inv in ("40100001", "40100003"):
        respx_mock.get(f"/invoices/{inv}/payments").respond(
            json=fixture_json("harvest", f"invoice_payments_inv{inv}_page1.json")
        )
    conn = make()
    report = sync_source(conn, store, conn_source(), ctx=Context(source="harvest-eu", tz=BERLIN, today=TODAY))
    assert report.status == "ok", report.error
    counts = store.counts("harvest-eu")
    assert {k: counts[k] for k in ("clients", "projects", "people", "tasks", "time_entries", "invoices", "payments")} == {
        "clients": 4, "projects": 4, "people": 4, "tasks": 4, "time_entries": 8, "invoices": 4, "payments": 2,
    }
    [q] = store.quarantined("harvest-eu")
    assert (q.resource, q.source_id, q.field) == ("time_entries", "2101000006", "hours")
    # 8 list pages, 2 payment lists (only the invoices with something paid), 8 reconcile pages
    assert report.requests == 18


def conn_source() -> SourceConfig:
    return SourceConfig(name="harvest-eu", kind="harvest", account_id="987654", token_env="HARVEST_TOKEN")


# --- a valid token without every permission (recorded: non-admin user) ----------------------

NOT_AUTHORIZED = {"message": "Not authorized!"}
ME_MEMBER = {
    "id": 3101002, "first_name": "Bob", "last_name": "Okafor", "email": "bob@example.com",
    "is_admin": False, "can_see_rates": False, "access_roles": ["member"],
}


def _serve_member(respx_mock, forbidden: tuple[str, ...]) -> None:
    respx_mock.get("/users/me").respond(json=ME_MEMBER)
    for path, name in [("/clients", "clients"), ("/projects", "projects"), ("/users", "users"), ("/tasks", "tasks"),
                       ("/invoices", "invoices")]:
        if path.strip("/") in forbidden:
            respx_mock.get(path).respond(403, json=NOT_AUTHORIZED)
        else:
            respx_mock.get(path).respond(json=fixture_json("harvest", f"{name}_page1.json"))
    for path in ("/task_assignments",):
        respx_mock.get(path).respond(json=page([], "task_assignments"))
    respx_mock.get("/time_entries", params={"ref": "next_cursor"}).respond(json=fixture_json("harvest", "time_entries_page2.json"))
    respx_mock.get("/time_entries").respond(json=fixture_json("harvest", "time_entries_page1.json"))
    for inv in ("40100001", "40100003"):
        respx_mock.get(f"/invoices/{inv}/payments").respond(
            json=fixture_json("harvest", f"invoice_payments_inv{inv}_page1.json")
        )


@pytest.mark.respx(base_url=BASE, assert_all_called=False)
def test_403_after_a_working_identity_skips_that_resource_and_syncs_the_rest(respx_mock, make, store) -> None:
    from bridge.sync import sync_source

    _serve_member(respx_mock, forbidden=("clients", "invoices"))
    conn = make()
    report = sync_source(conn, store, conn_source(), ctx=Context(source="harvest-eu", tz=BERLIN, today=TODAY))
    assert report.status == "ok", report.error
    assert set(report.not_permitted) == {"clients", "invoices"}
    msg = report.not_permitted["clients"]
    assert "may not read clients (HTTP 403)" in msg and "Manager with permission to create and edit clients" in msg
    assert "Bob Okafor" in msg and "member" in msg and TOKEN not in msg
    assert "check the token" not in msg.lower()
    counts = store.counts("harvest-eu")
    assert (counts["clients"], counts["invoices"], counts["payments"]) == (0, 0, 0)
    assert (counts["projects"], counts["time_entries"]) == (4, 9)
    # the skipped resources keep no cursor; the others have one
    assert store.cursor("harvest-eu", "clients") is None and store.cursor("harvest-eu", "invoices") is None
    assert store.cursor("harvest-eu", "time_entries").value is not None
    assert "may not read clients" in (report.error or "")


@pytest.mark.respx(base_url=BASE)
def test_403_with_a_refused_identity_is_still_a_credentials_error(respx_mock, make) -> None:
    respx_mock.get("/users/me").respond(401, json={"error": "invalid_token"})
    respx_mock.get("/clients").respond(403, json=NOT_AUTHORIZED)
    with pytest.raises(AuthError) as info:
        list(make().pages("clients", None))
    assert "HARVEST_TOKEN" in str(info.value)


@pytest.mark.respx(base_url=BASE, assert_all_called=False)
def test_access_reports_roles_rates_and_what_the_token_may_read(respx_mock, make) -> None:
    _serve_member(respx_mock, forbidden=("clients", "invoices", "users"))
    access = make().access()
    assert access.who == "Bob Okafor"
    assert dict(access.facts) == {"is_admin": False, "can_see_rates": False, "access_roles": ["member"]}
    assert access.rates_visible is False
    assert dict(access.readable) == {
        "clients": False, "projects": True, "people": False, "tasks": True, "task_assignments": True,
        "time_entries": True, "invoices": False, "payments": False,
    }
    assert "create and edit invoices" in access.advice["payments"] and "projects" not in access.advice
