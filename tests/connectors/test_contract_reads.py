"""Contract: a normalizer reads only what its request asked for, per provider.

Every connector here is driven through its real requests against the sandbox, whose
responses follow the recorded shapes (Productive sends linkage only for relationships named
in `include=`). Each raw item is wrapped so that every key a normalizer reads is noted:
reading a field the response does not carry (a FreshBooks `logged_duration` without
`include_logged_duration`, a Productive `company` without `include=company`) fails the
test, so a forgotten request parameter cannot pass as "no client" or "no budget".

All three providers serve the SAME agency here (`Sandbox(agency)`), which is also what lets
test_contract.py compare their figures; a per-provider agency must keep this mode.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bridge.config import parse_config
from bridge.connector import Context
from bridge.http import RetryPolicy
from bridge.store import Store
from connectors import CONNECTORS, build_connector, jsonapi
from connectors.sandbox import Sandbox, generate_agency
from tests.helpers.sandbox_sources import fast_source_block

PROVIDERS = sorted(CONNECTORS)
TODAY = dt.date(2025, 3, 20)

# Keys a connector itself puts on an item before the normalizer sees it (parent ids, a
# project's budgets, the JSON:API "not included" marker): not part of any response.
CONNECTOR_KEYS = frozenset({"_parent_id", "budgets", "_budgets_hidden", jsonapi.NOT_INCLUDED})
# Fields a normalizer reads on purpose although real responses may leave them out: the
# reader falls back. Each is named with the reason; anything else absent is a request bug.
OPTIONAL = {
    "harvest": {
        "approval_status",  # newer accounts only; older ones: is_closed / locked_reason
    },
    "freshbooks": {
        "local_started_at", "local_timezone",  # fall back to the UTC start in the agency's zone
    },
    "productive": {
        # resources carry one or the other (people have no updated_at): the newest present wins
        "updated_at", "last_activity_at",
    },
}


class Recording(dict):
    """A decoded JSON object that notes every key read through it (nested ones too)."""

    def __init__(self, data: Mapping[str, Any], path: str, log: set[tuple[str, bool]]) -> None:
        super().__init__(data)
        self._path, self._log = path, log

    def _wrap(self, key: str, value: Any) -> Any:
        if isinstance(value, dict) and not isinstance(value, Recording):
            return Recording(value, f"{self._path}{key}.", self._log)
        if isinstance(value, list):
            return [Recording(v, f"{self._path}{key}[].", self._log) if isinstance(v, dict) else v for v in value]
        return value

    def _note(self, key: Any) -> None:
        if isinstance(key, str) and key not in CONNECTOR_KEYS:
            self._log.add((self._path + key, dict.__contains__(self, key)))

    def __getitem__(self, key: Any) -> Any:
        self._note(key)
        return self._wrap(key, dict.__getitem__(self, key))

    def get(self, key: Any, default: Any = None) -> Any:
        self._note(key)
        return self._wrap(key, dict.get(self, key, default))


def read_outside_response(log: set[tuple[str, bool]], provider: str) -> set[str]:
    absent = {path for path, present in log if not present}
    present = {path for path, ok in log if ok}
    # absent on every item it was read from, and not a declared optional field
    return {p for p in absent - present if p.rsplit(".", 1)[-1] not in OPTIONAL[provider]}


@pytest.fixture(scope="module")
def shared_box() -> Iterator[Sandbox]:
    with Sandbox(generate_agency(seed=5, today=TODAY, entries=300), rate_limits=False) as sandbox:
        yield sandbox


@pytest.fixture
def box(shared_box: Sandbox) -> Sandbox:
    # a new installation per test: FreshBooks refresh tokens are single-use
    for mounted in shared_box.mounts:
        make_state = getattr(mounted.module, "make_state", None)
        if make_state:
            mounted.state = make_state(shared_box.agency)
    shared_box.reset()
    return shared_box


def connector(box: Sandbox, provider: str, tmp: Path, zone: str | None = None) -> tuple[Any, Store, Any]:
    block, env = fast_source_block(provider, box.url(provider))
    os.environ.update(env)
    config = parse_config({"agency": {"timezone": zone or box.agency.timezone}, "sources": [block]})
    store = Store(f"sqlite:///{tmp / f'{provider}.db'}")
    store.migrate()
    conn = build_connector(config.sources[0], tz=config.agency.zone, store=store,
                           retry=RetryPolicy(attempts=3, sleep=lambda s: None))
    return conn, store, config


def read_everything(conn: Any, ctx: Context) -> dict[str, set[tuple[str, bool]]]:
    """Every resource through the connector's own requests, each item normalized under a Recording."""
    logs: dict[str, set[tuple[str, bool]]] = {}
    parents: dict[str, list[str]] = {}
    for res in conn.resources.values():
        log = logs.setdefault(res.name, set())
        if res.parent:
            pages = (p for pid in parents.get(res.parent, [])[:20] for p in conn.pages(res.name, None, parent_id=pid))
        else:
            pages = conn.pages(res.name, None)
        for page in pages:
            for raw in page.items:
                out = res.normalize(Recording(raw, "", log), ctx)  # a NotIncluded here fails the test
                for record in out if isinstance(out, list) else [out] if out is not None else []:
                    parents.setdefault(res.name, []).append(record.source_id)
    return logs


@pytest.mark.parametrize("provider", PROVIDERS)
def test_normalizers_read_only_what_the_requests_asked_for(box: Sandbox, tmp_path: Path, provider: str) -> None:
    conn, _, _ = connector(box, provider, tmp_path)
    try:
        logs = read_everything(conn, Context(source=provider, tz=conn.tz, today=TODAY))
    finally:
        conn.close()
    assert all(logs.values()), {name: len(log) for name, log in logs.items()}  # every resource was read
    bad = {name: sorted(read_outside_response(log, provider)) for name, log in logs.items()}
    assert not any(bad.values()), f"{provider}: read but never in the response: {bad}"


def test_the_check_catches_a_productive_request_without_its_include(box: Sandbox, tmp_path: Path) -> None:
    conn, _, _ = connector(box, "productive", tmp_path)
    try:
        res = conn.resources["time_entries"]
        conn.resources = {**conn.resources, "time_entries": replace(res, params={"sort": "-updated_at"})}
        with pytest.raises(jsonapi.NotIncluded, match="include="):
            read_everything(conn, Context(source="productive", tz=conn.tz, today=TODAY))
    finally:
        conn.close()


def test_the_check_catches_a_field_the_request_did_not_ask_for(box: Sandbox, tmp_path: Path) -> None:
    conn, _, _ = connector(box, "freshbooks", tmp_path)
    try:
        res = conn.resources["projects"]

        def reads_logged_duration(raw: Mapping[str, Any], ctx: Context) -> Any:
            raw.get("logged_duration")  # only sent with include_logged_duration=true, which is not asked
            return res.normalize(raw, ctx)

        conn.resources = {**conn.resources, "projects": replace(res, normalize=reads_logged_duration)}
        logs = read_everything(conn, Context(source="freshbooks", tz=conn.tz, today=TODAY))
    finally:
        conn.close()
    assert read_outside_response(logs["projects"], "freshbooks") == {"logged_duration"}


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "Pacific/Auckland", "America/Los_Angeles", "Pacific/Honolulu"])
def test_freshbooks_days_are_right_for_an_agency_east_or_west_of_its_team(box: Sandbox, tmp_path: Path, zone: str) -> None:
    from sqlmodel import select

    from bridge.models import TimeEntry
    from bridge.sync import sync_source

    conn, store, config = connector(box, "freshbooks", tmp_path, zone=zone)
    try:
        report = sync_source(conn, store, config.sources[0], ctx=Context(source="freshbooks", tz=config.agency.zone, today=TODAY))
    finally:
        conn.close()
    assert report.status == "ok", report.error
    with store.session() as s:
        got = {e.source_id: e.spent_date for e in s.exec(select(TimeEntry))}
    want = {str(e.id): e.spent_date for e in box.agency.entries.values() if not e.is_running}
    wrong = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
    assert not wrong, f"{len(wrong)} entries booked on another day, e.g. {list(wrong.items())[:3]}"


def test_harvest_approved_only_publishes_only_approved_time(tmp_path: Path) -> None:
    """Invoiced time is locked in Harvest ("Item Invoiced and Locked") whether or not it was
    approved: only the agency's approved entries may pass the approved_only gate."""
    from sqlmodel import select

    from bridge.config import VisibilityConfig
    from bridge.models import TimeEntry
    from bridge.policy import Policy
    from bridge.sync import sync_source

    with Sandbox(generate_agency(seed=5, today=TODAY, entries=300), rate_limits=False) as box:
        invoiced = sorted(e.id for e in box.agency.entries.values() if e.invoice_id)
        for entry_id in invoiced[::3]:  # invoiced without ever being approved
            box.agency.edit_entry(entry_id, is_locked=False)
        conn, store, config = connector(box, "harvest", tmp_path)
        try:
            report = sync_source(conn, store, config.sources[0], ctx=Context(source="harvest", tz=config.agency.zone, today=TODAY))
        finally:
            conn.close()
    assert report.status == "ok", report.error
    with store.session() as s:
        stored = {e.source_id: e for e in s.exec(select(TimeEntry))}
    gate = Policy(VisibilityConfig(approved_only=True, non_billable="shown"))
    published = {sid for sid, e in stored.items()
                 if gate.publishes(task_name=None, notes=None, tags=None, is_billable=e.is_billable, is_approved=e.is_approved)}
    approved = {str(e.id) for e in box.agency.entries.values() if e.is_locked}
    invoiced_unapproved = {str(e.id) for e in box.agency.entries.values() if e.invoice_id and not e.is_locked}
    assert invoiced_unapproved, "the agency should have invoiced time that was never approved"
    assert published == approved
    assert not published & invoiced_unapproved
