"""FreshBooks in the sandbox over real HTTP: OAuth rotation, shapes, paging, filters, and the
connector end to end (token expiry, rotation across restarts, deletions)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from bridge.config import SourceConfig
from bridge.connector import Context
from bridge.errors import AuthError
from bridge.http import RetryPolicy
from bridge.models import Invoice, Person, Project, TimeEntry
from bridge.store import Store
from bridge.sync import sync_source
from connectors import build_connector
from connectors.freshbooks import REFRESH_TOKEN
from connectors.sandbox import (
    FRESHBOOKS_ACCOUNT_ID,
    FRESHBOOKS_BUSINESS_ID,
    FRESHBOOKS_CLIENT_ID,
    FRESHBOOKS_CLIENT_SECRET,
    FRESHBOOKS_REFRESH_TOKEN,
    Sandbox,
    generate_agency,
)
from connectors.sandbox.agency import Agency

FIXTURES = Path(__file__).parents[2] / "fixtures" / "freshbooks"
TODAY = dt.date(2025, 3, 20)
ACC = f"/accounting/account/{FRESHBOOKS_ACCOUNT_ID}"
BIZ = FRESHBOOKS_BUSINESS_ID
BERLIN = ZoneInfo("Europe/Berlin")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def dig(body: Any, path: str) -> Any:
    for part in path.split("."):
        body = body[part]
    return body


class TokenClock:
    """The sandbox's token clock (epoch seconds), moved by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def token_clock() -> TokenClock:
    return TokenClock()


@pytest.fixture
def fb_sandbox(agency: Agency, token_clock: TokenClock) -> Iterator[Sandbox]:
    options = {"freshbooks": {"access_lifetime": 600, "clock": token_clock}}
    with Sandbox(agency, rate_limits=False, options=options) as server:
        yield server


def refresh(base: str, token: str, **kw: Any) -> httpx.Response:
    body = {"grant_type": "refresh_token", "client_id": FRESHBOOKS_CLIENT_ID,
            "client_secret": FRESHBOOKS_CLIENT_SECRET, "refresh_token": token, **kw}
    return httpx.post(base + "/auth/oauth/token", json=body)


@pytest.fixture
def fb(fb_sandbox: Sandbox) -> Iterator[httpx.Client]:
    base = fb_sandbox.url("freshbooks")
    access = refresh(base, FRESHBOOKS_REFRESH_TOKEN).json()["access_token"]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {access}"}, timeout=10) as client:
        yield client


def every(client: httpx.Client, path: str, key: str, pages_at: str | None, params: dict[str, Any] | None = None) -> list[Any]:
    """All items of a list, paging like a connector: page/per_page until `pages`."""
    out, page = [], 1
    while True:
        body = client.get(path, params={**(params or {}), "page": page, "per_page": 100}).json()
        out.extend(dig(body, key))
        if page >= dig(body, pages_at):
            return out
        page += 1
        assert page < 500


# ---- OAuth -----------------------------------------------------------------------------------
def test_refresh_tokens_are_single_use_and_rotate(fb_sandbox: Sandbox) -> None:
    base = fb_sandbox.url("freshbooks")
    first = refresh(base, FRESHBOOKS_REFRESH_TOKEN)
    assert first.status_code == 200
    body = first.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600
    assert body["refresh_token"] != FRESHBOOKS_REFRESH_TOKEN
    again = refresh(base, FRESHBOOKS_REFRESH_TOKEN)
    assert again.status_code == 400 and again.json() == fixture("errors.json")["token_400_invalid_grant"]["body"]
    # the successor works once, by form body too
    form = {"grant_type": "refresh_token", "client_id": FRESHBOOKS_CLIENT_ID,
            "client_secret": FRESHBOOKS_CLIENT_SECRET, "refresh_token": body["refresh_token"]}
    assert httpx.post(base + "/auth/oauth/token", data=form).status_code == 200
    assert httpx.post(base + "/auth/oauth/token", data=form).status_code == 400
    assert refresh(base, "fbrt-forged.0000").status_code == 400


def test_bad_client_secret_is_invalid_client(fb_sandbox: Sandbox) -> None:
    r = refresh(fb_sandbox.url("freshbooks"), FRESHBOOKS_REFRESH_TOKEN, client_secret="wrong")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    # a refused client did not spend the token
    assert refresh(fb_sandbox.url("freshbooks"), FRESHBOOKS_REFRESH_TOKEN).status_code == 200


def test_access_tokens_expire_with_family_error_bodies(fb: httpx.Client, token_clock: TokenClock) -> None:
    errors = fixture("errors.json")
    assert fb.get("/auth/api/v1/users/me").status_code == 200
    token_clock.now += 601
    me = fb.get("/auth/api/v1/users/me")
    assert me.status_code == 401 and me.json() == errors["auth_401"]["body"]
    projects = fb.get(f"/projects/business/{BIZ}/projects")
    assert projects.status_code == 401 and projects.json() == errors["projects_401"]["body"]
    clients = fb.get(f"{ACC}/users/clients")
    assert clients.status_code == 401 and "errors" in clients.json()["response"]
    assert httpx.get(fb.base_url.join("auth/api/v1/users/me")).status_code == 401  # no token at all


# ---- shapes --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "fixture_name", "key", "params"), [
    (f"{ACC}/users/clients", "clients_page1.json", "response.result.clients", {}),
    (f"{ACC}/invoices/invoices", "invoices_page1.json", "response.result.invoices", {"include[]": "lines"}),
    (f"{ACC}/payments/payments", "payments_page1.json", "response.result.payments", {}),
    (f"/projects/business/{BIZ}/projects", "projects_page1.json", "projects", {"include_logged_duration": "true"}),
    (f"/comments/business/{BIZ}/services", "tasks_page1.json", "services", {}),
    (f"/timetracking/business/{BIZ}/time_entries", "time_entries_page1.json", "time_entries", {"team": "true"}),
    (f"/auth/api/v1/businesses/{BIZ}/team_members", "users_page1.json", "response", {}),
])
def test_list_shapes_match_the_recorded_fixtures(fb: httpx.Client, path: str, fixture_name: str, key: str, params: dict[str, str]) -> None:
    recorded, body = fixture(fixture_name), fb.get(path, params=params).json()
    envelope = key.rsplit(".", 1)[0] if "." in key else None
    if envelope:
        assert set(dig(body, envelope)) == set(dig(recorded, envelope))
    else:
        assert set(body) == set(recorded)
    items = dig(body, key)
    assert items, f"{path} is empty"
    assert set(dig(recorded, key)[0]) <= set(items[0])


def test_users_me_names_the_tenant(fb: httpx.Client, agency: Agency) -> None:
    me = fb.get("/auth/api/v1/users/me").json()["response"]
    business = me["business_memberships"][0]["business"]
    assert (business["account_id"], str(business["id"])) == (FRESHBOOKS_ACCOUNT_ID, BIZ)
    assert me["identity_id"] == agency.owner.id


def test_money_is_string_objects_and_durations_seconds(fb: httpx.Client, agency: Agency) -> None:
    inv = agency.invoices[min(agency.invoices)]
    rows = every(fb, f"{ACC}/invoices/invoices", "response.result.invoices", "response.result.pages")
    got = next(r for r in rows if r["id"] == inv.id)
    assert got["amount"] == {"amount": str(inv.amount.quantize(Decimal("0.01"))), "code": inv.currency}
    assert Decimal(got["outstanding"]["amount"]) == inv.due_amount
    entries = every(fb, f"/timetracking/business/{BIZ}/time_entries", "time_entries", "meta.pages", {"team": "true"})
    some = next(e for e in entries if e["is_logged"])
    assert some["duration"] == agency.entries[some["id"]].seconds


# ---- paging and filters ------------------------------------------------------------------------
def test_per_page_is_capped_and_pages_end(fb: httpx.Client, agency: Agency) -> None:
    path = f"/timetracking/business/{BIZ}/time_entries"
    body = fb.get(path, params={"team": "true", "per_page": 500}).json()
    assert body["meta"]["per_page"] == 100 and len(body["time_entries"]) == 100
    pages = body["meta"]["pages"]
    assert fb.get(path, params={"team": "true", "per_page": 100, "page": pages + 1}).json()["time_entries"] == []
    ids = [e["id"] for e in every(fb, path, "time_entries", "meta.pages", {"team": "true", "include_unlogged": "true"})]
    assert len(ids) == len(set(ids)) == len(agency.entries)


def test_team_and_include_unlogged(fb: httpx.Client, agency: Agency) -> None:
    path = f"/timetracking/business/{BIZ}/time_entries"
    mine = every(fb, path, "time_entries", "meta.pages")
    assert mine and {e["identity_id"] for e in mine} == {agency.owner.id}
    running = [e for e in agency.entries.values() if e.is_running]
    assert running
    listed = {e["id"] for e in every(fb, path, "time_entries", "meta.pages", {"team": "true"})}
    assert running[0].id not in listed
    unlogged = every(fb, path, "time_entries", "meta.pages", {"team": "true", "include_unlogged": "true"})
    timer = next(e for e in unlogged if e["id"] == running[0].id)
    assert timer["is_logged"] is False and timer["timer"]["is_running"] is True and timer["duration"] == 0


def test_updated_since_on_time_entries_is_inclusive(fb: httpx.Client, agency: Agency, clock: Any) -> None:
    clock.advance(3600)
    entry_id = next(iter(agency.entries))
    edited = agency.edit_entry(entry_id, notes="changed in the sandbox")
    since = dt.datetime.fromtimestamp(edited.updated_at, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    got = fb.get(f"/timetracking/business/{BIZ}/time_entries", params={"team": "true", "updated_since": since}).json()
    assert [e["id"] for e in got["time_entries"]] == [entry_id]
    assert got["time_entries"][0]["note"] == "changed in the sandbox"


def test_search_updated_min_compares_eastern_dates(fb: httpx.Client, agency: Agency) -> None:
    newest = max(agency.invoices.values(), key=lambda i: i.updated_at)
    day = newest.updated_at.astimezone(ZoneInfo("America/New_York")).date()
    rows = fb.get(f"{ACC}/invoices/invoices", params={"search[updated_min]": day.isoformat(), "per_page": 100}).json()
    ids = {r["id"] for r in rows["response"]["result"]["invoices"]}
    assert newest.id in ids
    assert all(agency.invoices[i].updated_at.astimezone(ZoneInfo("America/New_York")).date() >= day for i in ids)
    later = (day + dt.timedelta(days=1)).isoformat()
    assert fb.get(f"{ACC}/invoices/invoices", params={"search[updated_min]": later}).json()["response"]["result"]["invoices"] == []


def test_void_invoices_are_deleted_rows_listed_only_on_request(fb: httpx.Client, agency: Agency) -> None:
    void = [i.id for i in agency.invoices.values() if i.state == "void"]
    assert void
    listed = every(fb, f"{ACC}/invoices/invoices", "response.result.invoices", "response.result.pages")
    assert not {r["id"] for r in listed} & set(void)
    deleted = fb.get(f"{ACC}/invoices/invoices", params={"search[vis_state]": "1"}).json()["response"]["result"]["invoices"]
    assert {r["id"] for r in deleted} == set(void) and all(r["vis_state"] == 1 for r in deleted)


def test_invoice_statuses_as_freshbooks_shows_them(fb: httpx.Client, agency: Agency) -> None:
    rows = every(fb, f"{ACC}/invoices/invoices", "response.result.invoices", "response.result.pages")
    by_status = {agency.invoices[r["id"]].status(agency.today): r for r in rows}
    assert by_status["draft"]["v3_status"] == "draft"
    assert by_status["overdue"]["v3_status"] == "overdue"
    assert by_status["partial"]["v3_status"] == "partial" and by_status["partial"]["payment_status"] == "partial"
    assert by_status["paid"]["v3_status"] == "paid"
    assert by_status["open"]["v3_status"] in ("sent", "viewed")


def test_unknown_business_is_404(fb: httpx.Client) -> None:
    r = fb.get("/projects/business/1/projects")
    assert r.status_code == 404 and r.json() == fixture("errors.json")["projects_404"]["body"]


# ---- the connector end to end ------------------------------------------------------------------
class ConnectorClock:
    """Time for the connector's token expiry, and a sleep that moves it (no real waiting)."""

    def __init__(self, shared: TokenClock) -> None:
        self.shared = shared

    def __call__(self) -> float:
        return self.shared.now

    def sleep(self, seconds: float) -> None:
        self.shared.now += seconds


@pytest.fixture
def fb_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FB_CLIENT_ID", FRESHBOOKS_CLIENT_ID)
    monkeypatch.setenv("FB_CLIENT_SECRET", FRESHBOOKS_CLIENT_SECRET)
    monkeypatch.setenv("FB_REFRESH_TOKEN", FRESHBOOKS_REFRESH_TOKEN)


def source_for(sandbox: Sandbox, **kw: Any) -> SourceConfig:
    return SourceConfig(
        name="fb-sandbox", kind="freshbooks", base_url=sandbox.url("freshbooks"), client_id_env="FB_CLIENT_ID",
        client_secret_env="FB_CLIENT_SECRET", refresh_token_env="FB_REFRESH_TOKEN", requests_per_window=1000,
        window_seconds=1.0, **kw,
    )


def connector(sandbox: Sandbox, store: Store, clock: ConnectorClock | None = None, **kw: Any) -> Any:
    extra: dict[str, Any] = {"retry": RetryPolicy(attempts=4, sleep=lambda s: None)}
    if clock is not None:
        extra.update(clock=clock, sleep=clock.sleep)
    return build_connector(source_for(sandbox, **kw), tz=BERLIN, store=store, **extra)


def sync(conn: Any, store: Store, **kw: Any) -> Any:
    ctx = Context(source=conn.name, tz=BERLIN, today=TODAY)
    report = sync_source(conn, store, source_for_name(conn), ctx=ctx, **kw)
    assert report.status == "ok", report.error
    return report


def source_for_name(conn: Any) -> SourceConfig:
    return conn.source


def live(store: Store, model: Any) -> list[Any]:
    with store.session() as s:
        from sqlmodel import select

        return list(s.exec(select(model).where(model.is_deleted == False)))  # noqa: E712


def test_connector_syncs_the_agency_with_token_expiry_and_rotation(
    fb_sandbox: Sandbox, agency: Agency, store: Store, token_clock: TokenClock, fb_env: None,
) -> None:
    state = fb_sandbox.state("freshbooks")
    clock = ConnectorClock(token_clock)
    conn = connector(fb_sandbox, store, clock)  # tenant ids discovered from users/me
    try:
        sync(conn, store)
        assert state.refreshes == 1
        first_stored = store.get_secret("fb-sandbox", REFRESH_TOKEN)
        assert first_stored and first_stored != FRESHBOOKS_REFRESH_TOKEN

        entries = live(store, TimeEntry)
        assert len(entries) == len(agency.entries)
        sample = next(e for e in agency.entries.values() if not e.is_running)
        row = next(r for r in entries if r.source_id == str(sample.id))
        assert (row.seconds, row.spent_date, row.person_source_id) == (sample.seconds, sample.spent_date, str(sample.person_id))
        assert any(r.is_running for r in entries)
        assert {p.source_id for p in live(store, Person)} == {str(i) for i in agency.people}
        assert {p.source_id for p in live(store, Project)} == {str(i) for i in agency.projects}
        non_void = {str(i.id) for i in agency.invoices.values() if i.state != "void"}
        assert {i.source_id for i in live(store, Invoice)} == non_void

        # past the token's lifetime: the connector refreshes before asking, no 401 needed
        token_clock.now += 700
        before_401 = fb_sandbox.status_counters["freshbooks"].get(401, 0)
        sync(conn, store)
        assert state.refreshes == 2
        assert fb_sandbox.status_counters["freshbooks"].get(401, 0) == before_401
        second_stored = store.get_secret("fb-sandbox", REFRESH_TOKEN)
        assert second_stored not in (None, first_stored)

        # revoked early on the provider's side: a 401, one refresh, the request retried
        state.access.clear()
        sync(conn, store)
        assert state.refreshes == 3
        assert fb_sandbox.status_counters["freshbooks"].get(401, 0) == before_401 + 1
    finally:
        conn.close()

    # a restarted process reuses the persisted access token while it is valid (no refresh),
    # then refreshes with the persisted refresh token; the spent ones are refused by the sandbox
    for _ in range(2):
        restarted = connector(fb_sandbox, store, clock)
        try:
            restarted.check()
        finally:
            restarted.close()
        assert state.refreshes == 3
    token_clock.now += 700
    restarted = connector(fb_sandbox, store, clock)
    try:
        restarted.check()
    finally:
        restarted.close()
    assert state.refreshes == 4
    for spent in (FRESHBOOKS_REFRESH_TOKEN, first_stored, second_stored):
        assert refresh(fb_sandbox.url("freshbooks"), spent).status_code == 400


def test_a_store_without_the_rotated_token_fails_with_advice(
    fb_sandbox: Sandbox, store: Store, tmp_path: Path, fb_env: None,
) -> None:
    conn = connector(fb_sandbox, store)
    conn.check()
    conn.close()
    # a second deployment with an empty store but the same (now spent) env token
    other = Store(f"sqlite:///{tmp_path / 'other.db'}")
    other.migrate()
    try:
        with pytest.raises(AuthError) as err:
            connector(fb_sandbox, other).check()
    finally:
        other.close()
    message = str(err.value)
    assert "FB_REFRESH_TOKEN" in message and "re-authorize" in message.lower()
    assert FRESHBOOKS_REFRESH_TOKEN not in message and FRESHBOOKS_CLIENT_SECRET not in message


def test_deleted_entries_and_faults_end_to_end(
    fb_sandbox: Sandbox, agency: Agency, store: Store, clock: Any, fb_env: None,
) -> None:
    conn = connector(fb_sandbox, store, account_id=FRESHBOOKS_ACCOUNT_ID, business_id=FRESHBOOKS_BUSINESS_ID)
    try:
        sync(conn, store)
        recent = max((e for e in agency.entries.values() if not e.is_running), key=lambda e: e.spent_date)
        clock.advance(60)
        agency.delete_entry(recent.id)
        edited = agency.edit_entry(next(e.id for e in agency.entries.values() if e.id != recent.id and not e.is_running),
                                   notes="edited after the first sync")
        fb_sandbox.inject("freshbooks", "503", count=2, path_contains="/time_entries")
        report = sync(conn, store)
        assert report.deleted >= 1
    finally:
        conn.close()
    rows = {r.source_id: r for r in live(store, TimeEntry)}
    assert str(recent.id) not in rows
    assert rows[str(edited.id)].notes == "edited after the first sync"
    statuses = fb_sandbox.status_counters["freshbooks"]
    assert statuses.get(503) == 2
