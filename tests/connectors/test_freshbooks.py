"""FreshBooks connector: normalizers on recorded payloads, OAuth rotation and wiring over respx."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import respx

import connectors
from bridge.config import SourceConfig
from bridge.connector import Context
from bridge.errors import AuthError, ConfigError, RecordError, RetryableSourceError, SourceError, StoreError
from bridge.http import RateLimiter, RetryPolicy
from bridge.store import Store
from connectors.freshbooks import (
    REFRESH_TOKEN,
    RESOURCES,
    FreshBooksConnector,
    incremental_params,
)
from tests.conftest import fixture_json

BASE = "https://api.freshbooks.com"
TOKEN_URL = f"{BASE}/auth/oauth/token"
ACCOUNT, BUSINESS = "Xk3Lm9", "7702134"
BERLIN = ZoneInfo("Europe/Berlin")
TODAY = dt.date(2025, 3, 20)
CTX = Context(source="fb", tz=BERLIN, today=TODAY)
UTC = dt.timezone.utc
SECRET = "cs-0123456789-very-secret"
FIRST_REFRESH = "rt-first-0123456789"


def rows(name: str, key: str) -> list[dict[str, Any]]:
    body = fixture_json("freshbooks", name)
    for part in key.split("."):
        body = body[part]
    return copy.deepcopy(body)


def one(name: str, key: str, id_: int, **overrides: Any) -> dict[str, Any]:
    raw = next(r for r in rows(name, key) if r.get("id") == id_)
    return {**raw, **overrides}


def entry(id_: int = 419006, **kw: Any) -> dict[str, Any]:
    everything = rows("time_entries_page1.json", "time_entries") + rows("time_entries_page2.json", "time_entries")
    return {**next(r for r in everything if r["id"] == id_), **kw}


def invoice(id_: int, **kw: Any) -> dict[str, Any]:
    return one("invoices_page1.json", "response.result.invoices", id_, **kw)


# --- normalizers --------------------------------------------------------------------------


def test_client_name_currency_and_eastern_updated_stamp() -> None:
    c = RESOURCES["clients"].normalize(one("clients_page1.json", "response.result.clients", 310501), CTX)
    assert (c.source_id, c.name, c.currency, c.is_active) == ("310501", "Acme Robotics GmbH", "EUR", True)
    # "2025-01-06 04:30:11" is Eastern standard time (UTC-5)
    assert c.updated_at == dt.datetime(2025, 1, 6, 9, 30, 11, tzinfo=UTC)


def test_eastern_stamps_follow_daylight_saving() -> None:
    summer = one("clients_page1.json", "response.result.clients", 310504)  # "2024-06-30 11:20:00", EDT
    assert RESOURCES["clients"].normalize(summer, CTX).updated_at == dt.datetime(2024, 6, 30, 15, 20, tzinfo=UTC)


def test_client_without_organization_uses_contact_name() -> None:
    raw = one("clients_page1.json", "response.result.clients", 310502, organization="")
    assert RESOURCES["clients"].normalize(raw, CTX).name == "Maya Chen"


@pytest.mark.parametrize("vis_state, active", [(0, True), (2, False)])
def test_client_vis_state_archived_is_inactive(vis_state: int, active: bool) -> None:
    raw = one("clients_page1.json", "response.result.clients", 310501, vis_state=vis_state)
    assert RESOURCES["clients"].normalize(raw, CTX).is_active is active


@pytest.mark.parametrize("resource, raw", [
    ("clients", lambda: one("clients_page1.json", "response.result.clients", 310501, vis_state=1)),
    ("invoices", lambda: invoice(120002, vis_state=1)),
    ("payments", lambda: one("payments_page1.json", "response.result.payments", 990001, vis_state=1)),
    ("tasks", lambda: one("tasks_page1.json", "services", 45001, vis_state=1)),
])
def test_deleted_rows_are_skipped_not_upserted_live(resource: str, raw: Any) -> None:
    assert RESOURCES[resource].normalize(raw(), CTX) is None


def test_project_hours_budget_is_seconds_and_rate_kept() -> None:
    p = RESOURCES["projects"].normalize(one("projects_page1.json", "projects", 602001), CTX)
    assert (p.budget_kind, p.budget_seconds, p.budget_money, p.budget_period) == ("hours", 720000, None, "total")
    assert p.hourly_rate == Decimal("150.00") and p.billing_method == "project_rate"
    assert p.client_source_id == "310501" and p.ends_on == dt.date(2025, 6, 30)
    assert p.updated_at == dt.datetime(2025, 3, 5, 11, 2, 19, tzinfo=UTC)  # no "Z" on the wire: UTC


def test_fixed_price_project_keeps_its_money_and_its_time_budget() -> None:
    # recorded: a fixed-price project can also carry a time budget (here 288000 s = 80 h)
    p = RESOURCES["projects"].normalize(one("projects_page1.json", "projects", 602003), CTX)
    assert (p.budget_kind, p.budget_money, p.fee, p.budget_seconds) == ("hours", Decimal("12000.00"), Decimal("12000.00"), 288000)
    only_money = RESOURCES["projects"].normalize(one("projects_page1.json", "projects", 602003, budget=None), CTX)
    assert (only_money.budget_kind, only_money.budget_money, only_money.budget_seconds) == ("money", Decimal("12000.00"), None)


@pytest.mark.parametrize(("budget", "unit", "seconds"), [
    (21600, "auto", 21600),       # an SDK fixture: integer seconds (6 h)
    ("50.00", "auto", 180000),    # another SDK: a decimal string, hours (50 h)
    ("50.00", "seconds", 50),     # forced by the source's budget_unit
    (50, "hours", 180000),
    ("21600", "seconds", 21600),
    (0, "auto", None),            # zero is no budget
    ("0.00", "auto", None),
    ("", "auto", None),
    (None, "auto", None),
])
def test_budget_unit_follows_the_wire_type_unless_configured(budget: Any, unit: str, seconds: Any) -> None:
    import functools

    from connectors.freshbooks import _project

    normalize = functools.partial(_project, budget_unit=unit)
    p = normalize(one("projects_page1.json", "projects", 602001, budget=budget), CTX)
    assert p.budget_seconds == seconds
    assert p.budget_kind == ("hours" if seconds else None)


def test_budget_unit_setting_reaches_the_connector(env: None, store: Store) -> None:
    conn = make(store, source=source(budget_unit="hours"))
    p = conn.resources["projects"].normalize(one("projects_page1.json", "projects", 602001, budget=2), CTX)
    assert p.budget_seconds == 7200


def test_negative_or_boolean_budget_is_a_record_error() -> None:
    for bad in (-3600, True):
        with pytest.raises(RecordError) as err:
            RESOURCES["projects"].normalize(one("projects_page1.json", "projects", 602001, budget=bad), CTX)
        assert err.value.field == "budget"


def test_project_without_budget_and_completed_project() -> None:
    p = RESOURCES["projects"].normalize(one("projects_page1.json", "projects", 602004, complete=True), CTX)
    assert p.budget_kind is None and p.budget_seconds is None and p.is_active is False


def test_internal_project_is_not_billable() -> None:
    p = RESOURCES["projects"].normalize(one("projects_page1.json", "projects", 602004, internal=True), CTX)
    assert p.is_billable is False
    p = RESOURCES["projects"].normalize(one("projects_page1.json", "projects", 602004, internal=True, client_id=None), CTX)
    assert p.client_source_id is None


def test_person_is_keyed_by_identity_id_or_invite_uuid() -> None:
    people = [RESOURCES["people"].normalize(r, CTX) for r in rows("users_page1.json", "response")]
    by_name = {p.first_name: p for p in people}
    assert by_name["Bob"].source_id == "880102" and by_name["Bob"].role == "Developer"
    assert by_name["Dmitri"].is_active is False
    assert by_name["Eva"].source_id == "uuid:7b0e2a54-3c55-4f0c-9a55-1b7c1f6a0105"


def test_service_becomes_task() -> None:
    t = RESOURCES["tasks"].normalize(one("tasks_page1.json", "services", 45004), CTX)
    assert (t.source_id, t.name, t.is_billable_default) == ("45004", "Internal Meeting", False)


def test_time_entry_seconds_ids_and_flags() -> None:
    e = RESOURCES["time_entries"].normalize(entry(419004), CTX)
    assert (e.seconds, e.spent_date, e.is_billable, e.is_invoiced, e.is_running) == (23400, dt.date(2025, 3, 3), True, True, False)
    assert (e.client_source_id, e.project_source_id, e.task_source_id, e.person_source_id) == ("310501", "602001", "45002", "880102")
    assert e.billable_rate is None  # FreshBooks keeps no rate on an entry


def test_non_billable_entry_and_empty_note() -> None:
    e = RESOURCES["time_entries"].normalize(entry(419006, billable=False, note="  "), CTX)
    assert e.is_billable is False and e.notes is None


def test_running_timer_is_running() -> None:
    e = RESOURCES["time_entries"].normalize(entry(419009), CTX)
    assert e.is_running is True and e.seconds == 0


def test_stopped_unlogged_entry_is_not_running() -> None:
    e = RESOURCES["time_entries"].normalize(entry(419009, timer={"id": 1, "is_running": False}), CTX)
    assert e.is_running is False


def day_of(raw: dict[str, Any], agency_zone: str) -> dt.date:
    return RESOURCES["time_entries"].normalize(raw, Context("fb", ZoneInfo(agency_zone))).spent_date


def test_spent_date_without_local_fields_is_the_start_day_in_the_agency_zone() -> None:
    late = {k: v for k, v in entry(419006, started_at="2025-03-17T23:30:00Z").items()
            if k not in ("local_started_at", "local_timezone")}
    assert day_of(late, "Europe/Berlin") == dt.date(2025, 3, 18)  # 00:30 in Berlin
    assert day_of(late, "UTC") == dt.date(2025, 3, 17)


# A New York team member works 18:30-20:00 on Monday 17 March (22:30Z): an agency in Tokyo
# (east of its team) must still book it on the 17th, not on Tuesday morning Tokyo time.
EVENING_NY = {"started_at": "2025-03-17T22:30:00Z", "local_started_at": "2025-03-17T18:30:00",
              "local_timezone": "America/New_York"}
# A Berlin team member starts at 00:30 on Tuesday 18 March (23:30Z on the 17th): an agency in
# Los Angeles (west of its team) must book it on the 18th, not on Monday afternoon LA time.
AFTER_MIDNIGHT_BERLIN = {"started_at": "2025-03-17T23:30:00Z", "local_started_at": "2025-03-18T00:30:00",
                         "local_timezone": "Europe/Berlin"}


@pytest.mark.parametrize(("fields", "agency_zone", "day"), [
    (EVENING_NY, "Asia/Tokyo", dt.date(2025, 3, 17)),
    (EVENING_NY, "America/New_York", dt.date(2025, 3, 17)),
    (AFTER_MIDNIGHT_BERLIN, "America/Los_Angeles", dt.date(2025, 3, 18)),
    (AFTER_MIDNIGHT_BERLIN, "Pacific/Honolulu", dt.date(2025, 3, 18)),
    (AFTER_MIDNIGHT_BERLIN, "Asia/Tokyo", dt.date(2025, 3, 18)),
])
def test_spent_date_is_the_team_members_local_day_for_an_agency_east_or_west(fields: dict, agency_zone: str, day: dt.date) -> None:
    assert day_of(entry(419006, **fields), agency_zone) == day


def test_spent_date_from_local_timezone_alone() -> None:
    raw = {k: v for k, v in entry(419006, **EVENING_NY).items() if k != "local_started_at"}
    assert day_of(raw, "Asia/Tokyo") == dt.date(2025, 3, 17)


def test_every_fixture_entry_is_booked_on_its_local_day_in_any_agency_zone() -> None:
    raws = rows("time_entries_page1.json", "time_entries") + rows("time_entries_page2.json", "time_entries")
    for zone in ("Asia/Tokyo", "Pacific/Auckland", "America/Los_Angeles", "Europe/Berlin"):
        for raw in raws:
            assert day_of(raw, zone) == dt.date.fromisoformat(raw["local_started_at"][:10]), (zone, raw["id"])


@pytest.mark.parametrize(("change", "field"), [
    ({"local_started_at": "yesterday evening"}, "local_started_at"),
    ({"local_started_at": None, "local_timezone": "Mars/Olympus_Mons"}, "local_timezone"),
])
def test_bad_local_fields_are_record_errors(change: dict[str, Any], field: str) -> None:
    with pytest.raises(RecordError) as err:
        RESOURCES["time_entries"].normalize(entry(419006, **change), CTX)
    assert err.value.field == field


@pytest.mark.parametrize("change, field", [
    ({"duration": "2h"}, "duration"),
    ({"duration": -60}, "duration"),
    ({"started_at": "2025-02-30T09:00:00Z"}, "started_at"),
    ({"started_at": None}, "started_at"),
])
def test_bad_time_entries_raise_record_error(change: dict[str, Any], field: str) -> None:
    with pytest.raises(RecordError) as err:
        RESOURCES["time_entries"].normalize(entry(419006, **change), CTX)
    assert err.value.field == field


def test_invoice_money_objects_become_decimals() -> None:
    inv = RESOURCES["invoices"].normalize(invoice(120002), CTX)
    assert (inv.amount, inv.due_amount, inv.currency) == (Decimal("1874.25"), Decimal("1874.25"), "EUR")
    assert isinstance(inv.amount, Decimal)
    assert (inv.number, inv.client_source_id, inv.issue_date, inv.due_date) == ("ACME-0002", "310501", dt.date(2025, 3, 5), dt.date(2025, 4, 4))


@pytest.mark.parametrize("raw, today, status", [
    (lambda: invoice(120004), TODAY, "draft"),
    (lambda: invoice(120002), TODAY, "open"),
    (lambda: invoice(120001), TODAY, "paid"),
    (lambda: invoice(120003), TODAY, "overdue"),  # v3 "overdue", partly paid, past due
    # partly paid, not yet due: partial, whether FreshBooks says "partial" or still "sent"
    (lambda: invoice(120003, v3_status="partial", due_date="2025-04-30"), TODAY, "partial"),
    (lambda: invoice(120003, v3_status="sent", due_date="2025-04-30"), TODAY, "partial"),
    # sent and unpaid, but the due date passed since FreshBooks last computed its status
    (lambda: invoice(120002, due_date="2025-03-01"), TODAY, "overdue"),
    (lambda: invoice(120001, v3_status="autopaid"), TODAY, "paid"),
    (lambda: invoice(120002, v3_status=None, payment_status="unpaid"), TODAY, "open"),
])
def test_invoice_statuses(raw: Any, today: dt.date, status: str) -> None:
    assert RESOURCES["invoices"].normalize(raw(), Context("fb", BERLIN, today)).status == status


def test_unknown_invoice_status_is_a_record_error() -> None:
    with pytest.raises(RecordError):
        RESOURCES["invoices"].normalize(invoice(120002, v3_status="teleported"), CTX)


def test_payment() -> None:
    p = RESOURCES["payments"].normalize(one("payments_page1.json", "response.result.payments", 990002), CTX)
    assert (p.invoice_source_id, p.amount, p.currency, p.paid_date) == ("120003", Decimal("3500.00"), "USD", dt.date(2025, 2, 20))
    assert p.updated_at == dt.datetime(2025, 2, 20, 15, 4, 41, tzinfo=UTC)


def test_incremental_params_per_family() -> None:
    since = dt.datetime(2025, 3, 10, 3, 0, tzinfo=UTC)  # 2025-03-09 23:00 in New York
    assert incremental_params("time_entries", since) == {"updated_since": "2025-03-10T03:00:00"}
    assert incremental_params("projects", since) == {"updated_since": "2025-03-10T03:00:00"}
    # the Eastern date (the 9th) minus one day of overlap
    assert incremental_params("invoices", since) == {"search[updated_min]": "2025-03-08"}
    assert incremental_params("people", since) == {}
    assert incremental_params("invoices", None) == {}


# --- wiring over respx ------------------------------------------------------------------------


class Recorder:
    """A store wrapper that records when a secret is written, to check ordering against HTTP."""

    def __init__(self, store: Store, events: list[str]) -> None:
        self.store, self.events = store, events

    def get_secret(self, source: str, name: str) -> str | None:
        return self.store.get_secret(source, name)

    def put_secret(self, source: str, name: str, value: str) -> None:
        if name == REFRESH_TOKEN:
            self.events.append(f"persist {value}")
        self.store.put_secret(source, name, value)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FB_CLIENT_ID", "client-id-1")
    monkeypatch.setenv("FB_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("FB_REFRESH", FIRST_REFRESH)


def source(**kw: Any) -> SourceConfig:
    base = dict(
        name="fb", kind="freshbooks", client_id_env="FB_CLIENT_ID", client_secret_env="FB_CLIENT_SECRET",
        refresh_token_env="FB_REFRESH", account_id=ACCOUNT, business_id=BUSINESS,
    )
    return SourceConfig(**{**base, **kw})


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def make(store: Any, clock: Clock | None = None, **kw: Any) -> FreshBooksConnector:
    clock = clock or Clock()
    return FreshBooksConnector(
        kw.pop("source", None) or source(), store=store, tz=BERLIN, clock=clock, sleep=clock.sleep,
        retry=RetryPolicy(attempts=4, sleep=clock.sleep), limiter=RateLimiter([]), **kw,
    )


def token_reply(n: int, expires_in: int = 43200) -> httpx.Response:
    return httpx.Response(200, json={
        "access_token": f"at-{n}-abcdef", "refresh_token": f"rt-{n}-abcdef", "token_type": "Bearer",
        "expires_in": expires_in, "created_at": 1_700_000_000, "scope": "user:profile:read",
    })


class TokenServer:
    """The token endpoint: issues at-N/rt-N, accepts each refresh token once."""

    def __init__(self, events: list[str], first: str = FIRST_REFRESH, expires_in: int = 43200) -> None:
        self.events, self.valid, self.n, self.expires_in = events, {first}, 0, expires_in
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        if body.get("refresh_token") not in self.valid:
            self.events.append("token refused")
            return httpx.Response(400, json={"error": "invalid_grant", "error_description": "The provided authorization grant is invalid"})
        self.valid.discard(body["refresh_token"])
        self.n += 1
        self.valid.add(f"rt-{self.n}-abcdef")
        self.events.append(f"token {self.n}")
        return token_reply(self.n, self.expires_in)


def auth_of(request: httpx.Request) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ")


def page_of(body: dict[str, Any], key: str, items: list[dict[str, Any]], page: int, pages: int) -> dict[str, Any]:
    return {key: items, "meta": {"page": page, "pages": pages, "per_page": 100, "total": len(items)}}


def test_registered_in_the_connector_registry() -> None:
    assert connectors.CONNECTORS["freshbooks"] is FreshBooksConnector


def test_time_entries_page_to_the_last_page_with_params(env: None, store: Store) -> None:
    events: list[str] = []
    with respx.mock(assert_all_called=True) as mock:
        mock.post(TOKEN_URL).mock(side_effect=TokenServer(events))
        route = mock.get(f"{BASE}/timetracking/business/{BUSINESS}/time_entries").mock(side_effect=[
            httpx.Response(200, json=fixture_json("freshbooks", "time_entries_page1.json")),
            httpx.Response(200, json=fixture_json("freshbooks", "time_entries_page2.json")),
        ])
        conn = make(store)
        since = dt.datetime(2025, 2, 1, 8, 0, tzinfo=UTC)
        pages = list(conn.pages("time_entries", since))
    assert [len(p.items) for p in pages] == [6, 3]
    assert pages[0].resume is not None and pages[-1].resume is None
    params = [dict(c.request.url.params) for c in route.calls]
    assert [p["page"] for p in params] == ["1", "2"]
    assert all(p["per_page"] == "100" and p["team"] == "true" and p["include_unlogged"] == "true" for p in params)
    assert all(p["updated_since"] == "2025-02-01T08:00:00" for p in params)
    assert conn.requests == 2  # the token POST is not an API request


def test_resume_token_continues_at_the_next_page(env: None, store: Store) -> None:
    with respx.mock(assert_all_called=True) as mock:
        mock.post(TOKEN_URL).mock(side_effect=TokenServer([]))
        route = mock.get(f"{BASE}/timetracking/business/{BUSINESS}/time_entries").mock(
            return_value=httpx.Response(200, json=fixture_json("freshbooks", "time_entries_page2.json")))
        first = list(make(store).pages("time_entries", None, resume=json.dumps({"page": 2})))
    assert route.calls[0].request.url.params["page"] == "2" and len(first) == 1


def test_accounting_lists_use_updated_min_and_the_result_envelope(env: None, store: Store) -> None:
    with respx.mock(assert_all_called=True) as mock:
        mock.post(TOKEN_URL).mock(side_effect=TokenServer([]))
        route = mock.get(f"{BASE}/accounting/account/{ACCOUNT}/invoices/invoices").mock(
            return_value=httpx.Response(200, json=fixture_json("freshbooks", "invoices_page1.json")))
        pages = list(make(store).pages("invoices", dt.datetime(2025, 3, 5, 12, 0, tzinfo=UTC)))
    assert len(pages) == 1 and len(pages[0].items) == 4 and pages[0].resume is None
    assert route.calls[0].request.url.params["search[updated_min]"] == "2025-03-04"


def test_team_members_page_by_total_count(env: None, store: Store) -> None:
    people = rows("users_page1.json", "response")
    with respx.mock(assert_all_called=True) as mock:
        mock.post(TOKEN_URL).mock(side_effect=TokenServer([]))
        route = mock.get(f"{BASE}/auth/api/v1/businesses/{BUSINESS}/team_members").mock(side_effect=[
            httpx.Response(200, json={"response": people[:3], "meta": {"page": 1, "per_page": 3, "total": 5}}),
            httpx.Response(200, json={"response": people[3:], "meta": {"page": 2, "per_page": 3, "total": 5}}),
        ])
        ids = list(make(store).ids("people", None))
    assert len(route.calls) == 2
    assert ids == ["880101", "880102", "880103", "880104", "uuid:7b0e2a54-3c55-4f0c-9a55-1b7c1f6a0105"]


def test_ids_of_time_entries_cover_the_window(env: None, store: Store) -> None:
    with respx.mock(assert_all_called=True) as mock:
        mock.post(TOKEN_URL).mock(side_effect=TokenServer([]))
        route = mock.get(f"{BASE}/timetracking/business/{BUSINESS}/time_entries").mock(side_effect=[
            httpx.Response(200, json=fixture_json("freshbooks", "time_entries_page1.json")),
            httpx.Response(200, json=fixture_json("freshbooks", "time_entries_page2.json")),
        ])
        ids = list(make(store).ids("time_entries", dt.date(2025, 2, 1)))
    assert len(ids) == 9 and "419001" in ids
    params = route.calls[0].request.url.params
    assert params["started_from"] == "2025-01-31T00:00:00" and "updated_since" not in params


def test_deleted_ids_list_vis_state_1_for_accounting_only(env: None, store: Store) -> None:
    gone = one("clients_page1.json", "response.result.clients", 310504, vis_state=1)
    with respx.mock(assert_all_called=True) as mock:
        mock.post(TOKEN_URL).mock(side_effect=TokenServer([]))
        route = mock.get(f"{BASE}/accounting/account/{ACCOUNT}/users/clients").mock(return_value=httpx.Response(
            200, json={"response": {"result": {"clients": [gone], "page": 1, "pages": 1, "per_page": 100, "total": 1}}}))
        conn = make(store)
        assert list(conn.deleted_ids("clients", dt.datetime(2025, 3, 1, tzinfo=UTC))) == ["310504"]
        assert list(conn.deleted_ids("time_entries", None)) == []
    params = route.calls[0].request.url.params
    assert params["search[vis_state]"] == "1" and params["search[updated_min]"] == "2025-02-27"


def test_tenant_ids_are_discovered_from_users_me(env: None, store: Store) -> None:
    with respx.mock(assert_all_called=True) as mock:
        mock.post(TOKEN_URL).mock(side_effect=TokenServer([]))
        mock.get(f"{BASE}/auth/api/v1/users/me").mock(return_value=httpx.Response(200, json=fixture_json("freshbooks", "users_me.json")))
        clients = mock.get(f"{BASE}/accounting/account/{ACCOUNT}/users/clients").mock(
            return_value=httpx.Response(200, json=fixture_json("freshbooks", "clients_page1.json")))
        projects = mock.get(f"{BASE}/projects/business/{BUSINESS}/projects").mock(
            return_value=httpx.Response(200, json=fixture_json("freshbooks", "projects_page1.json")))
        conn = make(store, source=source(account_id=None, business_id=None))
        assert len(list(conn.pages("clients", None))[0].items) == 4
        assert len(list(conn.pages("projects", None))[0].items) == 4
    assert clients.called and projects.called and conn.requests == 3  # users/me once


def test_several_businesses_need_business_id(env: None, store: Store) -> None:
    me = fixture_json("freshbooks", "users_me.json")
    other = copy.deepcopy(me["response"]["business_memberships"][0])
    other["business"].update(id=999, account_id="Other1")
    me["response"]["business_memberships"].append(other)
    with respx.mock() as mock:
        mock.post(TOKEN_URL).mock(side_effect=TokenServer([]))
        mock.get(f"{BASE}/auth/api/v1/users/me").mock(return_value=httpx.Response(200, json=me))
        with pytest.raises(ConfigError, match="business_id 999"):
            make(store, source=source(account_id=None, business_id=None)).tenant()
        assert make(store, source=source(account_id=None, business_id="999")).tenant().account_id == "Other1"


def test_first_refresh_uses_env_token_and_persists_the_successor(env: None, store: Store) -> None:
    events: list[str] = []
    server = TokenServer(events)
    with respx.mock(assert_all_called=True) as mock:
        mock.post(TOKEN_URL).mock(side_effect=server)
        mock.get(f"{BASE}/auth/api/v1/users/me").mock(return_value=httpx.Response(200, json=fixture_json("freshbooks", "users_me.json")))
        make(store, source=source(redirect_uri="https://example.com/cb")).check()
    assert server.bodies == [{
        "grant_type": "refresh_token", "client_id": "client-id-1", "client_secret": SECRET,
        "refresh_token": FIRST_REFRESH, "redirect_uri": "https://example.com/cb",
    }]
    assert store.get_secret("fb", REFRESH_TOKEN) == "rt-1-abcdef"


def test_401_refreshes_persists_then_retries(env: None, store: Store) -> None:
    events: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        token = auth_of(request)
        events.append(f"GET with {token}")
        if token == "at-1-abcdef":  # revoked early on the provider's side
            return httpx.Response(401, json=fixture_json("freshbooks", "errors.json")["projects_401"]["body"])
        return httpx.Response(200, json=fixture_json("freshbooks", "tasks_page1.json"))

    with respx.mock(assert_all_called=True) as mock:
        mock.post(TOKEN_URL).mock(side_effect=TokenServer(events))
        mock.get(f"{BASE}/comments/business/{BUSINESS}/services").mock(side_effect=api)
        mock.get(f"{BASE}/comments/business/{BUSINESS}/service_rates").mock(
            return_value=httpx.Response(200, json=fixture_json("freshbooks", "service_rates_page1.json")))
        pages = list(make(Recorder(store, events)).pages("tasks", None))
    assert len(pages[0].items) == 4
    assert events == [
        "token 1", "persist rt-1-abcdef", "GET with at-1-abcdef",
        "token 2", "persist rt-2-abcdef", "GET with at-2-abcdef",
    ]
    assert store.get_secret("fb", REFRESH_TOKEN) == "rt-2-abcdef"


def test_a_failed_persist_stops_before_the_new_access_token_is_used(env: None, store: Store) -> None:
    class Broken(Recorder):
        def put_secret(self, source: str, name: str, value: str) -> None:
            if name == REFRESH_TOKEN:
                raise StoreError("disk full")
            super().put_secret(source, name, value)

    with respx.mock(assert_all_called=False) as mock:
        mock.post(TOKEN_URL).mock(side_effect=TokenServer([]))
        api = mock.get(f"{BASE}/auth/api/v1/users/me").mock(return_value=httpx.Response(200, json=fixture_json("freshbooks", "users_me.json")))
        conn = make(Broken(store, []))
        with pytest.raises(StoreError):
            conn.check()
        # nor on a later call: the unpersisted access token was never kept (the spent
        # refresh token is all that is left, and the provider refuses it)
        with pytest.raises(AuthError):
            conn.check()
    assert not api.called


def test_expired_access_token_is_refreshed_before_the_next_request(env: None, store: Store) -> None:
    events: list[str] = []
    clock = Clock()

    def api(request: httpx.Request) -> httpx.Response:
        events.append(f"GET with {auth_of(request)}")
        return httpx.Response(200, json=fixture_json("freshbooks", "tasks_page1.json"))

    with respx.mock(assert_all_called=True) as mock:
        mock.post(TOKEN_URL).mock(side_effect=TokenServer(events, expires_in=3600))
        mock.get(f"{BASE}/comments/business/{BUSINESS}/services").mock(side_effect=api)
        mock.get(f"{BASE}/comments/business/{BUSINESS}/service_rates").mock(
            return_value=httpx.Response(200, json=fixture_json("freshbooks", "service_rates_page1.json")))
        conn = make(Recorder(store, events), clock)
        list(conn.pages("tasks", None))
        clock.now += 1800
        list(conn.pages("tasks", None))  # still valid: no refresh
        clock.now += 1800
        list(conn.pages("tasks", None))
    assert events == [
        "token 1", "persist rt-1-abcdef", "GET with at-1-abcdef", "GET with at-1-abcdef",
        "token 2", "persist rt-2-abcdef", "GET with at-2-abcdef",
    ]


def test_restarted_connector_uses_the_stored_token_not_the_spent_env_one(env: None, store: Store) -> None:
    events: list[str] = []
    server = TokenServer(events)
    with respx.mock() as mock:
        mock.post(TOKEN_URL).mock(side_effect=server)
        mock.get(f"{BASE}/auth/api/v1/users/me").mock(return_value=httpx.Response(200, json=fixture_json("freshbooks", "users_me.json")))
        clock = Clock()
        make(store, clock).check()
        make(store, clock).check()  # a new process within the access token's life: no refresh
        assert [b["refresh_token"] for b in server.bodies] == [FIRST_REFRESH]
        clock.now += 43200  # the stored access token has expired
        make(store, clock).check()  # the env var still holds the spent first token
    assert [b["refresh_token"] for b in server.bodies] == [FIRST_REFRESH, "rt-1-abcdef"]
    assert "token refused" not in events


def test_each_cycle_reuses_the_stored_access_token_until_it_is_near_expiry(env: None, store: Store) -> None:
    # `bridge run` builds a new connector every cycle: 288 cycles a day must not mean 288
    # spends of the single-use refresh token, each a chance to lose its answer
    server = TokenServer([], expires_in=43200)
    clock = Clock()
    with respx.mock() as mock:
        mock.post(TOKEN_URL).mock(side_effect=server)
        mock.get(f"{BASE}/auth/api/v1/users/me").mock(return_value=httpx.Response(200, json=fixture_json("freshbooks", "users_me.json")))
        for _ in range(288):  # one day of 5-minute cycles
            make(store, clock).check()
            clock.now += 300
    assert len(server.bodies) == 2  # at the start, and once the 12-hour token came near expiry
    assert store.get_secret("fb", "access_token") == "at-2-abcdef"


def test_a_new_env_token_after_reauthorizing_wins_over_the_stored_one(env: None, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.put_secret("fb", REFRESH_TOKEN, "rt-dead-stored")  # revoked at the provider
    events: list[str] = []
    server = TokenServer(events, first="rt-reauthorized-1")
    with respx.mock() as mock:
        mock.post(TOKEN_URL).mock(side_effect=server)
        mock.get(f"{BASE}/auth/api/v1/users/me").mock(return_value=httpx.Response(200, json=fixture_json("freshbooks", "users_me.json")))
        monkeypatch.setenv("FB_REFRESH", "rt-reauthorized-1")
        make(store).check()
    assert [b["refresh_token"] for b in server.bodies] == ["rt-reauthorized-1"]
    assert store.get_secret("fb", REFRESH_TOKEN) == "rt-1-abcdef"


def test_refused_refresh_is_an_auth_error_with_advice_and_no_secrets(env: None, store: Store) -> None:
    store.put_secret("fb", REFRESH_TOKEN, "rt-spent-0123456789")
    store.put_secret("fb", "refresh_token_seed_sha256", hashlib.sha256(FIRST_REFRESH.encode()).hexdigest())
    with respx.mock(assert_all_called=False) as mock:
        token = mock.post(TOKEN_URL).mock(return_value=httpx.Response(400, json={
            "error": "invalid_grant", "error_description": "The provided authorization grant is invalid"}))
        api = mock.get(f"{BASE}/auth/api/v1/users/me").mock(return_value=httpx.Response(200))
        with pytest.raises(AuthError) as err:
            make(store).check()
    message = str(err.value)
    assert "re-authorize" in message.lower() and "FB_REFRESH" in message
    assert "`bridge auth fb`" in message  # the one command that recovers
    for secret in ("rt-spent-0123456789", FIRST_REFRESH, SECRET):
        assert secret not in message
    # each token tried once: the stored one, then the different one in the env var
    assert [json.loads(c.request.content)["refresh_token"] for c in token.calls] == ["rt-spent-0123456789", FIRST_REFRESH]
    assert not api.called


def test_an_unspent_env_token_rescues_a_refused_stored_one(env: None, store: Store) -> None:
    # a crash after recording the new env token as seen but before spending it
    store.put_secret("fb", REFRESH_TOKEN, "rt-revoked-0123456789")
    store.put_secret("fb", "refresh_token_seed_sha256", hashlib.sha256(FIRST_REFRESH.encode()).hexdigest())
    server = TokenServer([])
    with respx.mock() as mock:
        mock.post(TOKEN_URL).mock(side_effect=server)
        mock.get(f"{BASE}/auth/api/v1/users/me").mock(return_value=httpx.Response(200, json=fixture_json("freshbooks", "users_me.json")))
        make(store).check()
    assert [b["refresh_token"] for b in server.bodies] == ["rt-revoked-0123456789", FIRST_REFRESH]
    assert store.get_secret("fb", REFRESH_TOKEN) == "rt-1-abcdef"


def test_bad_client_secret_names_the_variables(env: None, store: Store) -> None:
    with respx.mock() as mock:
        mock.post(TOKEN_URL).mock(return_value=httpx.Response(401, json={"error": "invalid_client", "error_description": "Client authentication failed"}))
        with pytest.raises(AuthError, match="FB_CLIENT_SECRET") as err:
            make(store).check()
    assert SECRET not in str(err.value)


def test_token_post_connect_error_is_retried_but_a_read_timeout_is_not(env: None, store: Store) -> None:
    with respx.mock() as mock:
        route = mock.post(TOKEN_URL).mock(side_effect=[httpx.ConnectError("refused"), token_reply(1)])
        mock.get(f"{BASE}/auth/api/v1/users/me").mock(return_value=httpx.Response(200, json=fixture_json("freshbooks", "users_me.json")))
        make(store).check()
        assert route.call_count == 2 and store.get_secret("fb", REFRESH_TOKEN) == "rt-1-abcdef"
    store2_events: list[str] = []
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(TOKEN_URL).mock(side_effect=[httpx.ReadTimeout("slow"), token_reply(2)])
        later = Clock()
        later.now += 43200  # the stored access token has expired: this run must refresh
        with pytest.raises(SourceError, match="stored refresh token") as err:
            make(Recorder(store, store2_events), later).check()
        # the server may have spent the token: we do not resend it in this run
        assert route.call_count == 1 and store2_events == []
    assert not isinstance(err.value, RetryableSourceError)  # the API retry loop must not resend it


def test_no_store_is_a_config_error(env: None) -> None:
    with pytest.raises(ConfigError, match="store"):
        make(None).check()


@pytest.mark.parametrize("failure", [
    httpx.Response(429, headers={"Retry-After": "7"}, json={"message": "Too Many Requests"}),
    httpx.Response(503, json={"message": "Internal Server Error"}),
    httpx.ReadTimeout("slow"),
])
def test_transient_api_failures_are_retried(env: None, store: Store, failure: Any) -> None:
    clock = Clock()
    with respx.mock(assert_all_called=True) as mock:
        mock.post(TOKEN_URL).mock(side_effect=TokenServer([]))
        route = mock.get(f"{BASE}/comments/business/{BUSINESS}/services").mock(side_effect=[
            failure, httpx.Response(200, json=fixture_json("freshbooks", "tasks_page1.json"))])
        mock.get(f"{BASE}/comments/business/{BUSINESS}/service_rates").mock(
            return_value=httpx.Response(200, json=fixture_json("freshbooks", "service_rates_page1.json")))
        pages = list(make(store, clock).pages("tasks", None))
    assert len(pages[0].items) == 4 and route.call_count == 2
    if isinstance(failure, httpx.Response) and failure.status_code == 429:
        assert 7 in clock.slept


def test_403_is_an_auth_error_with_advice(env: None, store: Store) -> None:
    with respx.mock() as mock:
        mock.post(TOKEN_URL).mock(side_effect=TokenServer([]))
        mock.get(f"{BASE}/accounting/account/{ACCOUNT}/users/clients").mock(
            return_value=httpx.Response(403, json=fixture_json("freshbooks", "errors.json")["403_forbidden"]["body"]))
        # users/me refused as well: the token itself is the problem, not one permission
        mock.get(f"{BASE}/auth/api/v1/users/me").mock(return_value=httpx.Response(403, json={"message": "forbidden"}))
        with pytest.raises(AuthError, match="re-authorize") as err:
            list(make(store).pages("clients", None))
    assert "at-1-abcdef" not in str(err.value)


def test_403_on_one_resource_after_a_working_users_me_is_not_permitted(env: None, store: Store) -> None:
    from bridge.errors import NotPermitted

    with respx.mock() as mock:
        mock.post(TOKEN_URL).mock(side_effect=TokenServer([]))
        mock.get(f"{BASE}/accounting/account/{ACCOUNT}/invoices/invoices").mock(
            return_value=httpx.Response(403, json=fixture_json("freshbooks", "errors.json")["403_forbidden"]["body"]))
        mock.get(f"{BASE}/auth/api/v1/users/me").mock(return_value=httpx.Response(200, json=fixture_json("freshbooks", "users_me.json")))
        with pytest.raises(NotPermitted, match="may not read invoices") as err:
            list(make(store).pages("invoices", None))
    assert "at-1-abcdef" not in str(err.value) and err.value.resource == "invoices"


def test_missing_app_credentials_fail_before_any_request(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FB_CLIENT_SECRET")
    with respx.mock(assert_all_called=False) as mock, pytest.raises(ConfigError, match="FB_CLIENT_SECRET"):
        make(None)
    assert not mock.calls


# --- valuation data: service and team-member rates are joined onto their lists -----------


def test_services_carry_their_rate_from_service_rates(env: None, store: Store) -> None:
    with respx.mock(assert_all_called=True) as mock:
        mock.post(TOKEN_URL).mock(side_effect=TokenServer([]))
        mock.get(f"{BASE}/comments/business/{BUSINESS}/services").mock(
            return_value=httpx.Response(200, json=fixture_json("freshbooks", "tasks_page1.json")))
        rates = mock.get(f"{BASE}/comments/business/{BUSINESS}/service_rates").mock(
            return_value=httpx.Response(200, json=fixture_json("freshbooks", "service_rates_page1.json")))
        pages = list(make(store).pages("tasks", None))
    assert rates.call_count == 1
    tasks = {t.source_id: t for t in (RESOURCES["tasks"].normalize(raw, CTX) for raw in pages[0].items)}
    # the recorded rates: Design 140, Development 150, Project Management 125; the
    # non-billable Internal Meeting has none
    assert tasks["45001"].default_hourly_rate == Decimal("140.00")
    assert tasks["45002"].default_hourly_rate == Decimal("150.00")
    assert tasks["45003"].default_hourly_rate == Decimal("125.00")
    assert tasks["45004"].default_hourly_rate is None


def test_team_members_carry_their_rate(env: None, store: Store) -> None:
    people = rows("users_page1.json", "response")
    with respx.mock(assert_all_called=True) as mock:
        mock.post(TOKEN_URL).mock(side_effect=TokenServer([]))
        mock.get(f"{BASE}/auth/api/v1/businesses/{BUSINESS}/team_members").mock(
            return_value=httpx.Response(200, json={"response": people, "meta": {"page": 1, "per_page": 100, "total": 5}}))
        mock.get(f"{BASE}/timetracking/business/{BUSINESS}/team_member_rates").mock(
            return_value=httpx.Response(200, json={"team_member_rates": [
                {"business_id": 7702134, "identity_id": 880102, "rate": "120.00"},
                {"business_id": 7702134, "identity_id": 880103, "rate": "95.50"},
            ], "meta": {"page": 1, "per_page": 100, "total": 2, "pages": 1}}))
        pages = list(make(store).pages("people", None))
    got = {p.source_id: p.default_hourly_rate for p in (RESOURCES["people"].normalize(raw, CTX) for raw in pages[0].items)}
    assert got["880102"] == Decimal("120.00") and got["880103"] == Decimal("95.50")
    assert got["880101"] is None  # no rate listed for Alice


def test_team_member_rates_refused_leaves_rates_unknown_not_the_sync_failed(env: None, store: Store) -> None:
    people = rows("users_page1.json", "response")
    with respx.mock(assert_all_called=True) as mock:
        mock.post(TOKEN_URL).mock(side_effect=TokenServer([]))
        mock.get(f"{BASE}/auth/api/v1/businesses/{BUSINESS}/team_members").mock(
            return_value=httpx.Response(200, json={"response": people, "meta": {"page": 1, "per_page": 100, "total": 5}}))
        mock.get(f"{BASE}/timetracking/business/{BUSINESS}/team_member_rates").mock(
            return_value=httpx.Response(404, json={"error": "Requested resource could not be found."}))
        pages = list(make(store).pages("people", None))
    assert len(pages[0].items) == 5
    assert all(RESOURCES["people"].normalize(raw, CTX).default_hourly_rate is None for raw in pages[0].items)
