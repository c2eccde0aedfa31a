"""The sync engine's guarantees, on a small in-memory connector: nothing lost, nothing twice."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.config import SourceConfig
from bridge.connector import Context, Page, Resource
from bridge.errors import RecordError, RetryableSourceError
from bridge.models import Client, Invoice, Payment, TimeEntry
from bridge.normalize import parse_datetime, require_date, to_int
from bridge.store import Store
from bridge.sync import sync_source

T0 = dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc)


def _client(raw: Mapping[str, Any], ctx: Context) -> Client:
    return Client.model_validate({"source": ctx.source, "source_id": str(raw["id"]), "name": raw["name"],
                                  "updated_at": parse_datetime(raw["updated_at"], "updated_at")})


def _entry(raw: Mapping[str, Any], ctx: Context) -> TimeEntry:
    return TimeEntry.model_validate({
        "source": ctx.source, "source_id": str(raw["id"]), "client_source_id": raw["client"],
        "spent_date": require_date(raw["date"], "date"), "seconds": to_int(raw["seconds"], "seconds"),
        "updated_at": parse_datetime(raw["updated_at"], "updated_at"),
    })


def _invoice(raw: Mapping[str, Any], ctx: Context) -> Invoice:
    return Invoice.model_validate({"source": ctx.source, "source_id": str(raw["id"]), "client_source_id": "c1",
                                   "amount": "10", "due_amount": "0", "currency": "EUR", "status": "paid",
                                   "updated_at": parse_datetime(raw["updated_at"], "updated_at")})


def _payment(raw: Mapping[str, Any], ctx: Context) -> Payment:
    return Payment.model_validate({"source": ctx.source, "source_id": str(raw["id"]),
                                   "invoice_source_id": raw["invoice"], "amount": "10"})


class FakeConnector:
    """Serves a mutable list of raw records in pages; can fail on a chosen request."""

    kind = "fake"
    resources = {
        "clients": Resource("clients", "clients", "clients", _client, Client),
        "time_entries": Resource("time_entries", "entries", "entries", _entry, TimeEntry, reconcile="window"),
        "invoices": Resource("invoices", "invoices", "invoices", _invoice, Invoice),
        "payments": Resource("payments", "p/{parent_id}", "payments", _payment, Payment, parent="invoices", reconcile=None),
    }

    def __init__(self, data: dict[str, list[dict[str, Any]]], page_size: int = 3) -> None:
        self.name = "fake"
        self.data = data
        self.page_size = page_size
        self.calls: list[tuple[str, Any]] = []
        self.fail_at: int | None = None  # fail the Nth page request (1-based)
        self.raise_at: tuple[int, BaseException] | None = None  # raise this on the Nth page request instead
        self.page_requests = 0

    @property
    def requests(self) -> int:
        return len(self.calls)

    def check(self) -> None: ...

    def pages(self, resource: str, since: dt.datetime | None, *, resume: str | None = None, parent_id: str | None = None) -> Iterator[Page]:
        if parent_id is not None:
            self.calls.append((resource, parent_id))
            yield Page([p for p in self.data.get(resource, []) if p["invoice"] == parent_id])
            return
        rows = [r for r in self.data[resource] if since is None or parse_datetime(r["updated_at"], "u") >= since]
        rows.sort(key=lambda r: str(r["id"]))
        start = int(resume) if resume else 0
        while True:
            self.page_requests += 1
            self.calls.append((resource, since))
            if self.fail_at is not None and self.page_requests == self.fail_at:
                raise RetryableSourceError("fake: HTTP 503 on entries", source="fake", resource=resource)
            if self.raise_at is not None and self.page_requests == self.raise_at[0]:
                raise self.raise_at[1]
            chunk = rows[start : start + self.page_size]
            nxt = start + self.page_size
            more = nxt < len(rows)
            yield Page(chunk, str(nxt) if more else None)
            if not more:
                return
            start = nxt

    def ids(self, resource: str, window_start: dt.date | None) -> Iterator[str]:
        self.calls.append((resource, "ids"))
        for r in self.data[resource]:
            if window_start is None or "date" not in r or r["date"] >= window_start.isoformat():
                yield str(r["id"])

    def deleted_ids(self, resource: str, since: dt.datetime | None) -> Iterator[str]:
        return iter(())

    def close(self) -> None: ...


def _data(n: int = 10) -> dict[str, list[dict[str, Any]]]:
    return {
        "clients": [{"id": "c1", "name": "Acme", "updated_at": T0.isoformat()}],
        "time_entries": [
            {"id": f"e{i:03d}", "client": "c1", "date": "2025-03-10", "seconds": 3600 + i,
             "updated_at": (T0 + dt.timedelta(minutes=i)).isoformat()}
            for i in range(n)
        ],
        "invoices": [{"id": "i1", "updated_at": T0.isoformat()}],
        "payments": [{"id": "p1", "invoice": "i1"}],
    }


SRC = SourceConfig(name="fake", kind="harvest", overlap_seconds=0)
CTX = Context(source="fake", today=dt.date(2025, 3, 20))
NOW = lambda: dt.datetime(2025, 3, 20, tzinfo=dt.timezone.utc)  # noqa: E731


def run(conn: FakeConnector, store: Store, **kw: Any):
    return sync_source(conn, store, SRC, ctx=CTX, now=NOW, **kw)


def test_sync_stores_everything_and_reports_counts(any_store: Store) -> None:
    report = run(FakeConnector(_data()), any_store)
    assert report.status == "ok", report.error
    assert (report.new, report.updated, report.deleted, report.quarantined) == (13, 0, 0, 0)
    assert any_store.counts("fake")["time_entries"] == 10
    assert report.changed_clients == {("fake", "c1")}


def test_rerun_changes_nothing_and_fetches_only_since_cursor(any_store: Store) -> None:
    data = _data()
    run(FakeConnector(data), any_store)
    before = any_store.snapshot()
    again = FakeConnector(data)
    report = run(again, any_store)
    assert (report.new, report.updated, report.deleted) == (0, 0, 0)
    assert not report.changed
    assert any_store.snapshot() == before
    # the second run asked for entries updated since the last one seen, not everything
    since = [s for r, s in again.calls if r == "time_entries" and s != "ids"]
    assert since == [T0 + dt.timedelta(minutes=9)]


def test_edit_is_picked_up_and_counted_as_update(store: Store) -> None:
    data = _data()
    run(FakeConnector(data), store)
    data["time_entries"][2].update(seconds=7200, updated_at=(T0 + dt.timedelta(hours=5)).isoformat())
    report = run(FakeConnector(data), store)
    assert (report.new, report.updated) == (0, 1)
    with store.session() as s:
        assert s.get(TimeEntry, 3).seconds == 7200


def test_failure_mid_resource_leaves_cursor_and_resume_resumes(store: Store) -> None:
    data = _data(10)
    conn = FakeConnector(data)
    conn.fail_at = 4  # clients=1 page, then entries pages 1,2 ok, 3rd entries page fails
    report = run(conn, store)
    assert report.status == "failed"
    assert "503" in report.error
    cur = store.cursor("fake", "time_entries")
    assert cur.value is None  # the high-water mark did not move
    assert cur.resume == "6"  # but the two committed pages are remembered
    assert store.counts("fake")["time_entries"] == 6
    conn2 = FakeConnector(data)
    report2 = run(conn2, store)
    assert report2.status == "ok"
    assert report2.new == 4 + 2  # the rest of the entries, the invoice and payment
    entries_calls = [c for c in conn2.calls if c[0] == "time_entries" and c[1] != "ids"]
    assert len(entries_calls) == 2  # pages starting at 6 and 9 only
    clean = Store(f"sqlite:///{store.engine.url.database}-clean")
    clean.migrate()
    run(FakeConnector(data), clean)
    assert _strip(store.snapshot()) == _strip(clean.snapshot())


def _strip(snap: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    # updated_at of bookkeeping is the provider's, so whole rows compare directly
    return snap


def test_bad_record_is_quarantined_and_sync_goes_on(store: Store) -> None:
    data = _data(5)
    data["time_entries"][1]["date"] = "2025-13-45"
    data["time_entries"][3]["seconds"] = "lots"
    report = run(FakeConnector(data), store)
    assert report.status == "ok"
    assert report.quarantined == 2
    assert store.counts("fake")["time_entries"] == 3
    q = {(r.source_id, r.field) for r in store.quarantined()}
    assert q == {("e001", "date"), ("e003", "seconds")}
    reasons = " ".join(r.reason for r in store.quarantined())
    assert "2025-13-45" in reasons and "lots" in reasons
    # fixed at the provider: leaves quarantine on the next sync
    data["time_entries"][1].update(date="2025-03-11", updated_at=(T0 + dt.timedelta(hours=2)).isoformat())
    run(FakeConnector(data), store)
    assert {r.source_id for r in store.quarantined()} == {"e003"}


def test_deleted_entry_disappears_within_window_only(store: Store) -> None:
    data = _data(4)
    data["time_entries"].append({"id": "old", "client": "c1", "date": "2024-01-01", "seconds": 60, "updated_at": T0.isoformat()})
    run(FakeConnector(data), store)
    del data["time_entries"][0]
    data["time_entries"] = [e for e in data["time_entries"] if e["id"] != "old"]
    report = run(FakeConnector(data), store)
    assert report.deleted == 1  # e000; "old" is outside the 60-day window
    assert report.changed_clients == {("fake", "c1")}
    live = {e.source_id for e in _entries(store) if not e.is_deleted}
    assert live == {"e001", "e002", "e003", "old"}
    report = run(FakeConnector(data), store, full=True)
    assert report.deleted == 1
    assert {e.source_id for e in _entries(store) if not e.is_deleted} == {"e001", "e002", "e003"}


def test_payments_fetched_only_for_changed_invoices(store: Store) -> None:
    data = _data(2)
    data["invoices"].append({"id": "i2", "updated_at": T0.isoformat()})
    first = FakeConnector(data)
    run(first, store)
    assert sorted(p for r, p in first.calls if r == "payments") == ["i1", "i2"]
    idle = FakeConnector(data)
    run(idle, store)
    assert [p for r, p in idle.calls if r == "payments"] == []
    data["invoices"][1]["updated_at"] = (T0 + dt.timedelta(days=1)).isoformat()
    changed = FakeConnector(data)
    run(changed, store)
    assert [p for r, p in changed.calls if r == "payments"] == ["i2"]


def test_stop_event_stops_between_pages_with_work_committed(store: Store) -> None:
    stop = threading.Event()

    class StopAfterSecondPage:
        """Plays the scheduler's SIGTERM handler: stop is set once a page has committed."""

        def start(self, source: str, resource: str) -> None: ...
        def done(self, source: str, resource: str) -> None: ...

        def advance(self, source: str, resource: str, records: int) -> None:
            if resource == "time_entries":
                stop.set()

    report = run(FakeConnector(_data(10)), store, stop=stop, progress=StopAfterSecondPage())
    assert report.status == "stopped"
    assert store.counts("fake")["time_entries"] == 3
    cur = store.cursor("fake", "time_entries")
    assert cur.resume == "3" and cur.value is None
    assert run(FakeConnector(_data(10)), store).status == "ok"
    assert store.counts("fake")["time_entries"] == 10


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(min_value=0, max_value=14), fail_at=st.integers(min_value=1, max_value=9), size=st.integers(1, 4))
def test_property_interrupt_anywhere_then_resume_equals_clean_run(tmp_path_factory: pytest.TempPathFactory, n: int, fail_at: int, size: int) -> None:
    d = tmp_path_factory.mktemp("p")
    data = _data(n)
    clean = Store(f"sqlite:///{d / 'clean.db'}")
    clean.migrate()
    run(FakeConnector(data, size), clean)
    broken = Store(f"sqlite:///{d / 'broken.db'}")
    broken.migrate()
    conn = FakeConnector(data, size)
    conn.fail_at = fail_at
    run(conn, broken)
    final = run(FakeConnector(data, size), broken)
    assert final.status == "ok"
    assert broken.snapshot() == clean.snapshot()
    # and running once more changes nothing
    again = run(FakeConnector(data, size), broken)
    assert (again.new, again.updated, again.deleted) == (0, 0, 0)
    clean.close()
    broken.close()


def _entries(store: Store) -> list[TimeEntry]:
    from sqlmodel import select

    with store.session() as s:
        return list(s.exec(select(TimeEntry)))


def test_child_filter_skips_parents_without_children_and_removes_vanished_children(store: Store) -> None:
    class Filtered(FakeConnector):
        resources = {
            **FakeConnector.resources,
            "payments": Resource("payments", "p/{parent_id}", "payments", _payment, Payment, parent="invoices",
                                 reconcile=None, parent_key="invoice_source_id",
                                 parent_filter=lambda inv: inv.source_id != "i2"),
        }

    data = _data(1)
    data["invoices"].append({"id": "i2", "updated_at": T0.isoformat()})
    data["payments"].append({"id": "p2", "invoice": "i1"})
    first = Filtered(data)
    run(first, store)
    assert [p for r, p in first.calls if r == "payments"] == ["i1"]  # i2 cannot have payments
    # a payment is removed at the provider; its invoice changes with it
    data["payments"] = [p for p in data["payments"] if p["id"] != "p2"]
    data["invoices"][0]["updated_at"] = (T0 + dt.timedelta(days=2)).isoformat()
    report = run(Filtered(data), store)
    assert report.deleted == 1
    with store.session() as s:
        from sqlmodel import select

        live = {p.source_id for p in s.exec(select(Payment)) if not p.is_deleted}
    assert live == {"p1"}


def test_prefetch_keeps_order_and_raises_where_the_provider_failed() -> None:
    from bridge.sync import prefetch

    def pages():  # type: ignore[no-untyped-def]
        for i in range(5):
            yield Page([{"id": i}], str(i))
        raise RetryableSourceError("HTTP 503")

    got = []
    with pytest.raises(RetryableSourceError):
        for page in prefetch(pages()):
            got.append(page.resume)
    assert got == ["0", "1", "2", "3", "4"]


class _ProviderClock:
    """The slice of HttpClient the engine reads: the provider's Date at a listing's start."""

    def __init__(self, at: dt.datetime) -> None:
        self.at, self.server_time = at, None

    def mark_clock(self) -> None:
        self.server_time = self.at


def test_cursor_follows_the_providers_clock_at_the_listings_start(store: Store) -> None:
    provider_now = T0 + dt.timedelta(days=3)  # our clock (NOW) may say anything else
    conn = FakeConnector(_data(10))
    conn.http = _ProviderClock(provider_now)  # type: ignore[attr-defined]
    assert run(conn, store).status == "ok"
    assert store.cursor("fake", "time_entries").value == provider_now
    again = FakeConnector(_data(10))
    again.http = _ProviderClock(provider_now + dt.timedelta(hours=1))  # type: ignore[attr-defined]
    run(again, store)
    # asked from the listing's start (overlap 0 here), so nothing seen before is asked for again
    assert [s for r, s in again.calls if r == "time_entries" and s != "ids"] == [provider_now]


def test_reconcile_when_due_skips_recently_checked_resources(store: Store) -> None:
    data = _data(4)
    run(FakeConnector(data), store)  # checks deletions, stamps reconciled_at = NOW
    idle = FakeConnector(data)
    run(idle, store, reconcile="due")  # within reconcile_every (1h): no id listings at all
    assert [c for c in idle.calls if c[1] == "ids"] == []
    later = FakeConnector(data)
    sync_source(later, store, SRC, ctx=CTX, reconcile="due", now=lambda: NOW() + dt.timedelta(hours=2))
    assert {c[0] for c in later.calls if c[1] == "ids"} == {"clients", "time_entries", "invoices"}


def test_a_source_that_cannot_start_is_recorded_as_a_failed_run(store: Store) -> None:
    from bridge.config import parse_config
    from bridge.errors import ConfigError
    from bridge.sync import sync_all

    cfg = parse_config({"sources": [{"name": "a", "kind": "harvest"}, {"name": "b", "kind": "harvest"}]})

    def factory(src):  # type: ignore[no-untyped-def]
        if src.name == "a":
            raise ConfigError("sources 'a': environment variable A_TOKEN (from token_env) is not set or empty")
        return FakeConnector(_data(2))

    reports = sync_all(cfg, store, factory)
    assert [(r.source, r.status) for r in reports] == [("a", "failed"), ("b", "ok")]
    (run_a,) = store.runs("a")
    assert run_a.status == "failed" and "A_TOKEN" in run_a.error
