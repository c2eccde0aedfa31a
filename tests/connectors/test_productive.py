"""Productive connector: JSON:API flattening, normalizers on recorded payloads, wiring over respx."""

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
from bridge.http import RateLimiter, RetryPolicy
from connectors import jsonapi
from connectors.productive import RESOURCES, ProductiveConnector, attach_budgets, budget_fields, html_to_text
from tests.helpers.clock import FakeClock
from tests.conftest import fixture_json

BASE = "https://api.productive.io/api/v2"
TOKEN = "pr-token-0123456789abcdef"
ORG = "24311"
BERLIN = ZoneInfo("Europe/Berlin")
TODAY = dt.date(2025, 3, 20)
CTX = Context(source="productive", tz=BERLIN, today=TODAY)
UTC = dt.timezone.utc


def body(name: str) -> dict[str, Any]:
    return fixture_json("productive", name)


def docs(name: str) -> list[dict[str, Any]]:
    return jsonapi.documents(body(name))


def doc(name: str, id_: str) -> dict[str, Any]:
    return copy.deepcopy(next(d for d in docs(name) if d["id"] == id_))


def norm(resource: str, raw: dict[str, Any], ctx: Context = CTX) -> Any:
    return RESOURCES[resource].normalize(raw, ctx)


def entries_with_included() -> list[dict[str, Any]]:
    """Both time entry pages as the server answers the connector's include= (real shape:
    linkage only for the named relationships)."""
    return docs("time_entries_page1.json") + docs("time_entries_page2.json")


def entry(id_: str = "9100003", **attrs: Any) -> dict[str, Any]:
    raw = copy.deepcopy(next(e for e in entries_with_included() if e["id"] == id_))
    return {**raw, **attrs}


def projects() -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in attach_budgets(docs("projects_page1.json"), docs("budgets_page1.json"))}


def jpage(rows: list[dict[str, Any]], page: int = 1, total_pages: int = 1, included: list | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "data": rows,
        "links": {},
        "meta": {"current_page": page, "total_pages": total_pages, "total_count": len(rows), "page_size": 200, "max_page_size": 200},
    }
    if included is not None:
        out["included"] = included
    return out


def res(type_: str, id_: Any, **attributes: Any) -> dict[str, Any]:
    return {"id": str(id_), "type": type_, "attributes": attributes, "relationships": {}}




@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(monkeypatch: pytest.MonkeyPatch, clock: FakeClock):
    monkeypatch.setenv("PRODUCTIVE_TOKEN", TOKEN)

    def build(**source_kw: Any) -> ProductiveConnector:
        retry = source_kw.pop("retry", None)
        cfg = SourceConfig(name="productive", kind="productive", organization_id=ORG, token_env="PRODUCTIVE_TOKEN", **source_kw)
        return ProductiveConnector(cfg, tz=BERLIN, retry=retry, sleep=clock.sleep, clock=clock)

    return build


# --- JSON:API helpers -------------------------------------------------------------------


def test_flatten_merges_attributes_and_resolves_nested_includes() -> None:
    e = entry("9100003")
    assert e["time"] == 240 and e["type"] == "time_entries"
    assert e["service"]["name"] == "Design"  # resolved from included
    assert e["service"]["deal"]["name"] == "Website Redesign – Phase 1"  # one level deeper
    assert e["service"]["deal"]["project"]["name"] == "Acme Website Redesign"  # service.deal.project
    # named nowhere in include=: no linkage, reported as such, never None
    assert "task" not in e and "timesheet" not in e
    assert set(e[jsonapi.NOT_INCLUDED]) >= {"task", "approver", "timesheet"}
    assert jsonapi.dig_id(e, "service", "deal", "company") == "701101"
    assert jsonapi.dig_id(e, "service", "nope") is None


def test_a_relationship_reported_not_included_is_a_request_bug_not_an_empty_link() -> None:
    e = entry("9100003")
    with pytest.raises(jsonapi.NotIncluded, match="'task'.*include="):
        jsonapi.link_id(e, "task")
    # the included project was reached through service.deal.project only: its company was not asked for
    with pytest.raises(jsonapi.NotIncluded, match="service.deal.project.company"):
        jsonapi.link_id(e, "service", "deal", "project", "company")
    assert jsonapi.link_id(e, "service", "deal", "company") == "701101"
    linked_to_nothing = jsonapi.documents({"data": [{"id": "1", "type": "x", "relationships": {"task": {"data": None}}}]})[0]
    assert jsonapi.link_id(linked_to_nothing, "task") is None


def test_time_entry_from_a_request_without_includes_is_quarantined_with_the_reason() -> None:
    bare = {"data": [{**r, "relationships": {k: ({"meta": {"included": False}} if k != "organization" else v)
                                              for k, v in r["relationships"].items()}}
                     for r in body("time_entries_page1.json")["data"]]}
    raw = jsonapi.documents(bare)[0]
    with pytest.raises(RecordError, match="include=") as info:
        norm("time_entries", raw)
    assert info.value.field == "service"


def test_flatten_survives_a_linkage_cycle() -> None:
    a = {"id": "1", "type": "a", "relationships": {"b": {"data": {"type": "b", "id": "2"}}}}
    b = {"id": "2", "type": "b", "relationships": {"a": {"data": {"type": "a", "id": "1"}}}}
    flat = jsonapi.documents({"data": [a], "included": [b, a]})[0]
    depth, cur = 0, flat
    while isinstance(cur, dict) and ("b" in cur or "a" in cur):
        cur = cur.get("b") or cur.get("a")
        depth += 1
    assert 3 <= depth <= 6


def test_flatten_to_many_linkage() -> None:
    r = {"id": "1", "type": "x", "relationships": {"tags": {"data": [{"type": "t", "id": "7"}, {"type": "t", "id": "8"}]}}}
    flat = jsonapi.documents({"data": [r], "included": [res("t", 7, name="seven")]})[0]
    assert flat["tags"] == [{"id": "7", "type": "t", "name": "seven"}, {"id": "8", "type": "t"}]


# --- normalizers ------------------------------------------------------------------------


@pytest.mark.parametrize(("note", "text"), [
    ("<p>Checkout flow – fixing cart rounding</p>", "Checkout flow – fixing cart rounding"),
    ("<p> two\n  lines </p>", "two\nlines"),
    ("<p>a &lt;b&gt; c</p>", "a <b> c"),
    ("<p>one</p><p>two &amp; three</p>", "one\ntwo & three"),
    ("line<br>next<br/>  spaced   out ", "line\nnext\nspaced out"),
    ("<ul><li>a</li><li><strong>b</strong></li></ul>", "a\nb"),
    ("<p>x</p><script>alert(1)</script>", "x"),
    ("plain, not HTML", "plain, not HTML"),
    ("<p></p>", None),
    (None, None),
])
def test_html_notes_become_plain_text(note: Any, text: str | None) -> None:
    assert html_to_text(note) == text


def test_time_entry_minutes_become_seconds_and_links_resolve_through_service_deal() -> None:
    te = norm("time_entries", entry("9100003"))
    assert te.source_id == "9100003" and te.source == "productive"
    assert te.seconds == 240 * 60
    assert te.spent_date == dt.date(2025, 2, 27)
    assert te.person_source_id == "512001" and te.task_source_id == "445501"
    assert te.project_source_id == "880201" and te.client_source_id == "701101"
    assert te.is_billable and te.is_approved and te.is_invoiced and not te.is_running
    assert te.updated_at == dt.datetime(2025, 3, 5, 11, 2, 19, tzinfo=UTC)


def test_time_entry_billable_amount_from_the_services_hourly_price_in_cents() -> None:
    te = norm("time_entries", entry("9100007"))  # Brand Design, 195 min at 14000 cents/h
    assert te.billable_rate == Decimal("140") and te.currency == "USD"
    assert te.billable_amount == Decimal("455.00")
    assert te.project_source_id == "880203" and te.client_source_id == "701102"


def test_time_entry_money_scale_is_configurable() -> None:
    te = RESOURCES["time_entries"].normalize(entry("9100007"), CTX, scale=1000)
    assert te.billable_rate == Decimal("14")


def test_time_entry_non_billable_time_has_no_amount() -> None:
    te = norm("time_entries", entry("9100008"))  # Internal Meeting, billable_time 0
    assert not te.is_billable and te.billable_amount is None and te.billable_rate is None
    assert te.seconds == 1800


def test_time_entry_billable_time_decides_billable() -> None:
    assert norm("time_entries", entry("9100006", billable_time=0)).is_billable is False
    assert norm("time_entries", entry("9100006", billable_time=15)).is_billable is True


def test_time_entry_running_timer_and_html_note() -> None:
    te = norm("time_entries", entry("9100009"))
    assert te.is_running and te.seconds == 45 * 60
    assert te.notes == "Checkout flow – fixing cart rounding (timer running)"
    stopped = norm("time_entries", entry("9100009", timer_stopped_at="2025-03-18T14:00:00.000+00:00"))
    assert not stopped.is_running


def test_time_entry_unicode_and_null_notes() -> None:
    assert norm("time_entries", entry("9100007")).notes == "Überarbeitung des Logos — naïve café ☕ · ロゴ案 v3 «final» 🎨"
    assert norm("time_entries", entry("9100006")).notes is None


def test_time_entry_approval_is_the_approved_flag() -> None:
    assert norm("time_entries", entry("9100005")).is_approved is True
    assert norm("time_entries", entry("9100005", approved=False)).is_approved is False


def test_time_entry_without_included_service_keeps_ids_it_has() -> None:
    # linkage sent (service named in include=) but the service itself missing from included
    raw = jsonapi.documents({"data": body("time_entries_page1.json")["data"]})[0]
    te = norm("time_entries", raw)
    assert te.task_source_id == "445502" and te.project_source_id is None and te.client_source_id is None


@pytest.mark.parametrize(("attrs", "field"), [
    ({"time": "abc"}, "time"),
    ({"time": -5}, "time"),
    ({"time": None}, "time"),
    ({"date": "2025-02-30"}, "date"),
    ({"date": None}, "date"),
    ({"approved": "yes"}, "approved"),
])
def test_malformed_time_entry_is_a_record_error_naming_the_field(attrs: dict[str, Any], field: str) -> None:
    with pytest.raises(RecordError) as info:
        norm("time_entries", entry("9100003", **attrs))
    assert info.value.field == field and info.value.source_id == "9100003"


def test_project_hours_budget_total_with_money_alongside() -> None:
    p = norm("projects", projects()["880201"])
    assert (p.budget_kind, p.budget_period) == ("hours", "total")
    assert p.budget_seconds == 12000 * 60  # 200 h
    assert p.budget_money == Decimal("30000")  # 3 000 000 cents
    assert p.currency == "EUR" and p.client_source_id == "701101" and p.code == "ACME-1"
    assert p.starts_on == dt.date(2025, 1, 6) and p.ends_on == dt.date(2025, 6, 30)
    # the deal's last activity is later than the project's: the row must count as changed
    assert p.updated_at == dt.datetime(2025, 3, 18, 13, 5, 12, tzinfo=UTC)


def test_project_monthly_retainer_budget() -> None:
    p = norm("projects", projects()["880202"])
    assert (p.budget_kind, p.budget_period, p.budget_seconds) == ("hours", "monthly", 20 * 3600)


def test_project_money_only_budget() -> None:
    p = norm("projects", projects()["880203"])
    assert (p.budget_kind, p.budget_period) == ("money", "total")
    assert p.budget_money == Decimal("12000") and p.budget_seconds is None and p.currency == "USD"


def test_project_zero_budget_is_no_budget_not_zero() -> None:
    p = norm("projects", projects()["880204"])
    assert p.budget_kind is None and p.budget_period is None
    assert p.budget_seconds is None and p.budget_money is None


def test_project_without_any_deal_has_no_budget() -> None:
    raw = {**projects()["880201"], "budgets": []}
    p = norm("projects", raw)
    assert p.budget_kind is None and p.budget_seconds is None and p.budget_money is None


def test_budget_hidden_from_token_is_not_zero() -> None:
    deal = doc("budgets_page1.json", "330303")
    del deal["budget_total"]
    out = budget_fields([deal])
    assert out["budget_visible"] is False and out["budget_money"] is None and out["budget_kind"] is None


def test_several_budgets_on_one_project_add_up_and_closed_ones_drop_out() -> None:
    a, b = doc("budgets_page1.json", "330301"), doc("budgets_page1.json", "330301")
    b["budgeted_time"], b["budget_total"] = 600, 150000
    assert budget_fields([a, b])["budget_seconds"] == (12000 + 600) * 60
    assert budget_fields([a, b])["budget_money"] == Decimal("31500")
    b["closed_at"] = "2025-02-01T00:00:00.000+00:00"
    assert budget_fields([a, b])["budget_seconds"] == 12000 * 60


def test_budgets_in_two_currencies_are_not_added() -> None:
    a, b = doc("budgets_page1.json", "330301"), doc("budgets_page1.json", "330303")
    out = budget_fields([a, b])
    assert out["budget_money"] is None and out["budget_kind"] == "hours"


def test_internal_project_is_not_billable() -> None:
    assert norm("projects", {**projects()["880201"], "project_type_id": 1}).is_billable is False
    assert norm("projects", projects()["880201"]).is_billable is True


def test_invoice_statuses_from_fixture() -> None:
    got = {d["id"]: norm("invoices", d) for d in docs("invoices_page1.json")}
    assert got["5550004"].status == "draft"  # finalized_on null
    assert got["5550003"].status == "overdue"  # part paid, pay_on 2025-02-16 < today
    assert got["5550002"].status == "open"
    assert got["5550001"].status == "paid"
    inv = got["5550002"]
    assert inv.amount == Decimal("1874.25") and inv.due_amount == Decimal("1874.25") and inv.currency == "EUR"
    assert inv.number == "2025-3" and inv.client_source_id == "701101"
    assert inv.issue_date == dt.date(2025, 3, 5) and inv.due_date == dt.date(2025, 4, 4)
    assert got["5550001"].paid_date == dt.date(2025, 2, 25) and got["5550001"].due_amount == 0


def test_invoice_partly_paid_before_due_date_is_partial() -> None:
    inv = norm("invoices", doc("invoices_page1.json", "5550003"), Context(source="p", today=dt.date(2025, 2, 10)))
    assert inv.status == "partial" and inv.due_amount == Decimal("2500")


def test_invoice_unpaid_past_due_is_overdue() -> None:
    inv = norm("invoices", doc("invoices_page1.json", "5550002"), Context(source="p", today=dt.date(2025, 4, 5)))
    assert inv.status == "overdue"


def test_invoice_written_off_in_full_is_void() -> None:
    raw = {**doc("invoices_page1.json", "5550002"), "amount_unpaid": 0, "amount_written_off": 187425}
    inv = norm("invoices", raw)
    assert inv.status == "void" and inv.due_amount == 0


def test_invoice_without_unpaid_amount_is_quarantined() -> None:
    raw = doc("invoices_page1.json", "5550002")
    del raw["amount_unpaid"]
    with pytest.raises(RecordError, match="amount_unpaid"):
        norm("invoices", raw)


def test_payments_in_minor_units_link_their_invoice() -> None:
    got = {d["id"]: norm("payments", d) for d in docs("payments_page1.json")}
    assert got["7720002"].amount == Decimal("3500") and got["7720002"].currency == "USD"
    assert got["7720002"].invoice_source_id == "5550003" and got["7720002"].paid_date == dt.date(2025, 2, 20)


def test_clients_people_and_services() -> None:
    clients = {d["id"]: norm("clients", d) for d in docs("clients_page1.json")}
    assert clients["701101"].currency == "EUR" and clients["701101"].is_active
    assert clients["701104"].is_active is False  # archived
    people = {d["id"]: norm("people", d) for d in docs("users_page1.json")}
    assert (people["512001"].first_name, people["512001"].role) == ("Alice", "Managing Director")
    assert people["512004"].is_active is False  # deactivated
    tasks = {d["id"]: norm("tasks", d) for d in docs("tasks_page1.json")}
    assert tasks["445501"].name == "Design" and tasks["445501"].default_hourly_rate == Decimal("150")
    assert tasks["445503"].is_billable_default is False and tasks["445503"].default_hourly_rate is None


def test_record_without_id_is_a_record_error() -> None:
    raw = {**docs("clients_page1.json")[0], "id": None}
    with pytest.raises(RecordError):
        norm("clients", raw)


def test_resources_are_declared_in_sync_order() -> None:
    names = list(RESOURCES)
    assert names.index("projects") < names.index("time_entries") < names.index("invoices") < names.index("payments")
    assert RESOURCES["time_entries"].incremental and RESOURCES["time_entries"].reconcile == "window"
    assert not any(RESOURCES[r].incremental for r in ("clients", "people", "tasks", "projects", "invoices", "payments"))
    assert RESOURCES["projects"].reconcile is None  # an archived project must never pass for deleted


# --- wiring over HTTP -------------------------------------------------------------------


def _paged_route(respx_mock: Any, path: str, pages: list[dict[str, Any]]) -> Any:
    def answer(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params.get("page[number]", "1"))
        return httpx.Response(200, json=pages[number - 1])

    return respx_mock.get(path).mock(side_effect=answer)


@pytest.mark.respx(base_url=BASE)
def test_pages_run_to_the_last_page_and_resolve_includes(respx_mock, make) -> None:
    p1, p2 = body("time_entries_page1.json"), body("time_entries_page2.json")
    route = _paged_route(respx_mock, "/time_entries", [p1, p2])
    conn = make()
    pages = list(conn.pages("time_entries", None))
    assert [len(p.items) for p in pages] == [6, 3]
    assert json.loads(pages[0].resume)["page"] == 2 and pages[1].resume is None
    params = route.calls[0].request.url.params
    assert params["page[size]"] == "200" and params["page[number]"] == "1"
    assert params["include"] == "person,service,service.deal,service.deal.project,service.deal.company"
    assert params["sort"] == "-updated_at"
    assert "filter[updated_at][gt_eq]" not in params
    assert conn.requests == 2
    records = [conn.resources["time_entries"].normalize(i, CTX) for p in pages for i in p.items]
    assert len({r.source_id for r in records}) == 9
    assert all(r.project_source_id and r.client_source_id for r in records)


@pytest.mark.respx(base_url=BASE)
def test_updated_at_filter_is_sent_in_utc(respx_mock, make) -> None:
    route = respx_mock.get("/time_entries").respond(json=jpage([]))
    since = dt.datetime(2025, 3, 1, 10, 0, 30, tzinfo=BERLIN)
    list(make().pages("time_entries", since))
    assert route.calls.last.request.url.params["filter[updated_at][gt_eq]"] == "2025-03-01T09:00:30Z"


@pytest.mark.respx(base_url=BASE)
def test_reference_resources_ignore_since(respx_mock, make) -> None:
    route = respx_mock.get("/companies").respond(json=body("clients_page1.json"))
    pages = list(make().pages("clients", dt.datetime(2025, 3, 1, tzinfo=UTC)))
    assert "filter[updated_at][gt_eq]" not in route.calls.last.request.url.params
    assert len(pages[0].items) == 4


@pytest.mark.respx(base_url=BASE)
def test_resume_starts_at_the_stored_page(respx_mock, make) -> None:
    route = _paged_route(respx_mock, "/time_entries", [jpage([res("time_entries", 1)], 1, 2), jpage([res("time_entries", 2)], 2, 2)])
    pages = list(make().pages("time_entries", None, resume=json.dumps({"page": 2})))
    assert route.call_count == 1 and [i["id"] for p in pages for i in p.items] == ["2"]


@pytest.mark.respx(base_url=BASE)
def test_projects_carry_their_budgets_from_one_deals_listing(respx_mock, make) -> None:
    deals = respx_mock.get("/deals").respond(json=body("budgets_page1.json"))
    respx_mock.get("/projects").respond(json=body("projects_page1.json"))
    conn = make(money_scale=100)
    items = [i for p in conn.pages("projects", None) for i in p.items]
    assert deals.call_count == 1 and deals.calls.last.request.url.params["filter[type]"] == "2"
    got = {p.source_id: p for p in (conn.resources["projects"].normalize(i, CTX) for i in items)}
    assert got["880202"].budget_period == "monthly" and got["880204"].budget_kind is None
    assert conn.requests == 2


@pytest.mark.respx(base_url=BASE)
def test_money_scale_from_config_reaches_the_normalizers(respx_mock, make) -> None:
    respx_mock.get("/payments").respond(json=body("payments_page1.json"))
    conn = make(money_scale=1000)
    items = next(conn.pages("payments", None)).items
    assert conn.resources["payments"].normalize(items[0], CTX).amount == Decimal("350")


@pytest.mark.respx(base_url=BASE)
def test_every_request_carries_token_organization_and_jsonapi_type(respx_mock, make) -> None:
    route = respx_mock.get("/people").respond(json=body("users_page1.json"))
    make().check()
    headers = route.calls.last.request.headers
    assert headers["X-Auth-Token"] == TOKEN and headers["X-Organization-Id"] == ORG
    assert headers["Content-Type"] == "application/vnd.api+json"
    assert route.calls.last.request.url.params["page[size]"] == "1"


@pytest.mark.respx(base_url=BASE)
def test_401_is_auth_error_with_advice_and_no_token(respx_mock, make) -> None:
    err = body("errors.json")["401_unauthorized"]
    bad = {"errors": [{**err["body"]["errors"][0], "detail": f"Unauthorized token {TOKEN}"}]}
    route = respx_mock.get("/people").respond(401, json=bad)
    with pytest.raises(AuthError) as info:
        make().check()
    message = str(info.value)
    assert route.call_count == 1  # never retried
    assert TOKEN not in message
    assert "PRODUCTIVE_TOKEN" in message and ORG in message


@pytest.mark.respx(base_url=BASE)
def test_403_is_auth_error(respx_mock, make) -> None:
    err = body("errors.json")["403_forbidden"]
    respx_mock.get("/invoices").respond(403, json=err["body"])
    respx_mock.get("/people").respond(403, json=err["body"])  # wrong organization: everything refused
    with pytest.raises(AuthError, match="403"):
        list(make().pages("invoices", None))


@pytest.mark.respx(base_url=BASE)
def test_403_on_invoices_with_a_working_token_skips_only_invoices(respx_mock, make) -> None:
    from bridge.errors import NotPermitted

    respx_mock.get("/invoices").respond(403, json=body("errors.json")["403_forbidden"]["body"])
    respx_mock.get("/people").respond(json=body("users_page1.json"))
    with pytest.raises(NotPermitted, match="may not read invoices.*Roles and permissions") as info:
        list(make().pages("invoices", None))
    assert TOKEN not in str(info.value)


@pytest.mark.respx(base_url=BASE)
def test_429_waits_retry_after_then_succeeds(respx_mock, make, clock) -> None:
    err = body("errors.json")["429_rate_limited"]
    route = respx_mock.get("/services").mock(side_effect=[
        httpx.Response(429, headers=err["headers"], json=err["body"]),
        httpx.Response(200, json=body("tasks_page1.json")),
    ])
    pages = list(make().pages("tasks", None))
    assert route.call_count == 2 and len(pages[0].items) == 7
    assert clock.slept == [10.0]


@pytest.mark.respx(base_url=BASE)
def test_429_without_retry_after_backs_off(respx_mock, make, clock) -> None:
    route = respx_mock.get("/services").mock(side_effect=[httpx.Response(429), httpx.Response(429), httpx.Response(200, json=jpage([]))])
    conn = make(retry=RetryPolicy(attempts=4, backoff_s=2.0, max_wait_s=30.0, sleep=clock.sleep))
    list(conn.pages("tasks", None))
    assert route.call_count == 3
    assert len(clock.slept) == 2 and all(0 <= s <= 30.0 for s in clock.slept)


@pytest.mark.respx(base_url=BASE)
def test_5xx_then_success(respx_mock, make) -> None:
    err = body("errors.json")["500"]
    route = respx_mock.get("/companies").mock(side_effect=[
        httpx.Response(500, json=err["body"]), httpx.Response(502),
        httpx.Response(200, json=body("clients_page1.json")),
    ])
    assert len(next(make().pages("clients", None)).items) == 4
    assert route.call_count == 3


@pytest.mark.respx(base_url=BASE)
def test_timeouts_are_retried_then_raise_retryable(respx_mock, make, clock) -> None:
    route = respx_mock.get("/companies").mock(side_effect=httpx.ReadTimeout("slow"))
    conn = make(retry=RetryPolicy(attempts=3, sleep=clock.sleep))
    with pytest.raises(RetryableSourceError, match="timed out 3 times"):
        list(conn.pages("clients", None))
    assert route.call_count == 3 and len(clock.slept) == 2


@pytest.mark.respx(base_url=BASE)
def test_unexpected_page_shape_is_fatal(respx_mock, make) -> None:
    respx_mock.get("/companies").respond(json={"companies": []})
    with pytest.raises(FatalSourceError, match="data"):
        list(make().pages("clients", None))


def test_default_rate_limit_has_both_productive_windows(make) -> None:
    assert make().limiter.windows == [(100, 10.25), (4000, 1800.25)]  # documented limits plus jitter margin


def test_rate_limiter_holds_to_the_short_and_the_long_window(clock: FakeClock) -> None:
    # scaled down: 3 per 10 s and 5 per 100 s
    limiter = RateLimiter([(3, 10.0), (5, 100.0)], clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(7):
        limiter.acquire()
        stamps.append(clock.now)
    start = stamps[0]
    offsets = [round(s - start, 2) for s in stamps]
    assert offsets[:3] == [0, 0, 0]  # a burst up to the short window
    assert 10.0 <= offsets[3] < 10.4 and offsets[4] == offsets[3]  # short window reopens
    assert 100.0 <= offsets[5] < 100.4  # the long window holds the 6th back to t=100
    for i in range(len(stamps)):  # never more than 3 in any 10 s or 5 in any 100 s
        assert sum(1 for s in stamps if stamps[i] <= s < stamps[i] + 10.0 - 1e-9) <= 3
        assert sum(1 for s in stamps if stamps[i] <= s < stamps[i] + 100.0 - 1e-9) <= 5


@pytest.mark.respx(base_url=BASE)
def test_configured_rate_limit_holds_requests_back(respx_mock, make, clock) -> None:
    _paged_route(respx_mock, "/companies", [jpage([res("companies", i)], i, 3) for i in (1, 2, 3)])
    conn = make(requests_per_window=2, window_seconds=10)
    assert list(conn.ids("clients", None)) == ["1", "2", "3"]
    assert len(clock.slept) == 1 and 10.0 <= clock.slept[0] < 10.4


@pytest.mark.respx(base_url=BASE)
def test_ids_of_time_entries_list_the_window_from_the_day_before(respx_mock, make) -> None:
    route = _paged_route(respx_mock, "/time_entries", [jpage([res("time_entries", 1)], 1, 2), jpage([res("time_entries", 2)], 2, 2)])
    assert list(make().ids("time_entries", dt.date(2025, 3, 1))) == ["1", "2"]
    assert route.calls.last.request.url.params["filter[after]"] == "2025-02-28"


@pytest.mark.respx(base_url=BASE)
def test_deleted_time_entries_come_from_destroy_activities(respx_mock, make) -> None:
    feed = body("activities_time_entry_destroy_page1.json")
    other = res("activities", 1, event="destroy", item_type="Task", item_id=5)
    updated = res("activities", 2, event="update", item_type="TimeEntry", item_id=6)
    route = respx_mock.get("/activities").respond(json={**feed, "data": feed["data"] + [other, updated]})
    since = dt.datetime(2025, 3, 13, 12, 0, tzinfo=UTC)
    assert list(make().deleted_ids("time_entries", since)) == ["9100010"]
    params = route.calls.last.request.url.params
    assert params["filter[item_type]"] == "time_entry" and params["filter[event]"] == "destroy"
    assert params["filter[after]"] == "2025-03-13T12:00:00Z"


@pytest.mark.respx(base_url=BASE)
def test_delete_spelling_is_accepted_too(respx_mock, make) -> None:
    rows = [res("activities", 1, event="delete", item_type="time_entry", item_id=41)]
    respx_mock.get("/activities").respond(json=jpage(rows))
    assert list(make().deleted_ids("time_entries", dt.datetime(2025, 3, 1, tzinfo=UTC))) == ["41"]


def test_no_feed_without_since_or_for_other_resources(make) -> None:
    conn = make()
    since = dt.datetime(2025, 3, 1, tzinfo=UTC)
    assert list(conn.deleted_ids("projects", since)) == [] and list(conn.deleted_ids("time_entries", None)) == []
    assert conn.requests == 0


def test_missing_organization_or_token_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRODUCTIVE_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="organization_id"):
        ProductiveConnector(SourceConfig(name="p", kind="productive", token_env="PRODUCTIVE_TOKEN"), tz=BERLIN)
    with pytest.raises(ConfigError, match="PRODUCTIVE_TOKEN"):
        ProductiveConnector(SourceConfig(name="p", kind="productive", organization_id=ORG, token_env="PRODUCTIVE_TOKEN"), tz=BERLIN)


def test_registered_and_built_by_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODUCTIVE_TOKEN", TOKEN)
    cfg = SourceConfig(name="prod", kind="productive", organization_id=ORG, token_env="PRODUCTIVE_TOKEN")
    conn = connectors.build_connector(cfg, tz=BERLIN)
    assert isinstance(conn, ProductiveConnector) and conn.name == "prod" and conn.money_scale == 100
    conn.close()


@pytest.mark.respx(base_url=BASE)
def test_budgets_the_token_may_not_list_leave_projects_synced_and_budgets_not_visible(respx_mock, make) -> None:
    respx_mock.get("/deals").respond(403, json=body("errors.json")["403_forbidden"]["body"])
    respx_mock.get("/people").respond(json=body("users_page1.json"))
    respx_mock.get("/projects").respond(json=body("projects_page1.json"))
    conn = make()
    [page] = list(conn.pages("projects", None))
    rows = [conn.resources["projects"].normalize(p, CTX) for p in page.items]
    assert len(rows) == 4 and all(r.client_source_id for r in rows)
    assert all(r.budget_kind is None and r.budget_visible is False for r in rows)
    assert "may not read budgets" in conn.not_permitted["budgets"]
