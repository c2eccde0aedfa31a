"""bridge.policy and its effect on the PortalView: each visibility setting on its own."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from bridge.config import VisibilityConfig, parse_config
from bridge.models import Person, Project, Task, TimeEntry
from bridge.policy import Policy, PersonFacts, anonymous_label, display_names
from bridge.store import Store
from bridge.views import PortalView, build_portal_view

D = Decimal
NOW = dt.datetime(2025, 3, 20, 12, 0, tzinfo=dt.timezone.utc)
TODAY = NOW.date()


# --- the predicates ------------------------------------------------------------------


def test_internal_markers_are_case_insensitive() -> None:
    pol = Policy(VisibilityConfig(internal_tasks=["Admin"], internal_note_prefixes=["[internal]", "INT:"], internal_tags=["internal"]))
    assert pol.is_internal_task("admin") and not pol.is_internal_task("Administration")
    assert pol.is_internal_note("  [Internal] fix the build") and pol.is_internal_note("\nint: x")
    assert not pol.is_internal_note("Homepage\n[internal] later")  # only the first line marks the entry
    assert pol.has_internal_tag("billing, Internal") and not pol.has_internal_tag("internals")
    assert not pol.is_internal(task_name=None, notes=None, tags=None)


def test_descriptions_modes() -> None:
    note = "Homepage hero\n[internal] client was late again\nMobile nav"
    assert Policy(VisibilityConfig(descriptions="detailed")).description(note, "Design") == "Homepage hero\nMobile nav"
    assert Policy(VisibilityConfig(descriptions="summary")).description(note, "Design") == "Design"
    assert Policy(VisibilityConfig(descriptions="hidden")).description(note, "Design") is None
    assert Policy(VisibilityConfig(descriptions="detailed")).description("[internal] only", "Design") is None
    assert Policy(VisibilityConfig(descriptions="summary")).description(note, None) is None


@pytest.mark.parametrize(
    "vis,billable,approved,expected",
    [
        ({}, True, False, True),
        ({}, False, True, False),  # non-billable hidden by default
        ({"non_billable": "shown"}, False, True, True),
        ({"approved_only": True}, True, False, False),
        ({"approved_only": True}, True, True, True),
    ],
)
def test_publishes(vis: dict[str, Any], billable: bool, approved: bool, expected: bool) -> None:
    pol = Policy(VisibilityConfig(**vis))
    assert pol.publishes(task_name="Design", notes="x", tags=None, is_billable=billable, is_approved=approved) is expected


def test_anonymous_labels_go_past_z() -> None:
    assert [anonymous_label(i) for i in (0, 1, 25, 26, 27, 52)] == [
        "Team member A", "Team member B", "Team member Z", "Team member AA", "Team member AB", "Team member BA"]


def test_display_names_per_mode_and_stable_order() -> None:
    people = [PersonFacts(("h", "9"), "Zoe", "Ray", None), PersonFacts(("h", "10"), "Ann", "Lee", "Designer"),
              PersonFacts(("a", "5"), "", "", None)]
    assert display_names("full", people) == {("h", "9"): "Zoe Ray", ("h", "10"): "Ann Lee", ("a", "5"): "Team member"}
    assert display_names("first_name", people)[("h", "9")] == "Zoe"
    assert display_names("role", people) == {("h", "9"): "Team member", ("h", "10"): "Designer", ("a", "5"): "Team member"}
    anon = display_names("anonymous", people)
    # ordered by (source, person id): ("a","5") < ("h","10") < ("h","9")
    assert anon == {("a", "5"): "Team member A", ("h", "10"): "Team member B", ("h", "9"): "Team member C"}
    assert display_names("anonymous", list(reversed(people))) == anon


# --- in the built view -------------------------------------------------------------------


@pytest.fixture
def store_with_work(store: Store) -> Store:
    store.upsert([Project.model_validate({"source": "h", "source_id": "p1", "client_source_id": "c1", "name": "Website",
                                          "currency": "EUR", "budget_kind": "hours", "budget_seconds": 100 * 3600})])
    store.upsert([
        Person.model_validate({"source": "h", "source_id": "u1", "first_name": "Ann", "last_name": "Lee", "role": "Designer"}),
        Person.model_validate({"source": "h", "source_id": "u2", "first_name": "Bo", "last_name": "Kim"}),
    ])
    store.upsert([
        Task.model_validate({"source": "h", "source_id": "t1", "name": "Design"}),
        Task.model_validate({"source": "h", "source_id": "t2", "name": "Admin"}),
    ])

    def e(sid: str, hours: float, **kw: Any) -> TimeEntry:
        base = {"source": "h", "source_id": sid, "client_source_id": "c1", "project_source_id": "p1",
                "person_source_id": "u1", "task_source_id": "t1", "spent_date": TODAY, "seconds": int(hours * 3600),
                "is_billable": True, "is_approved": True, "billable_rate": D("120"), "cost_rate": D("45"),
                "billable_amount": D(str(hours * 120)), "currency": "EUR"}
        return TimeEntry.model_validate({**base, **kw})

    store.upsert([
        e("public", 2, notes="Homepage\n[internal] slow client"),
        e("nonbill", 1, is_billable=False, notes="Pairing", person_source_id="u2"),
        e("unapproved", 3, is_approved=False, notes="Draft layouts"),
        e("admin", 4, task_source_id="t2", notes="Timesheets"),
        e("prefixed", 5, notes="[internal] Refactor"),
        e("tagged", 6, tags="internal", notes="Team offsite"),
    ])
    return store


def view_of(store: Store, **vis: Any) -> PortalView:
    config = parse_config({
        "sources": [{"name": "h", "kind": "harvest"}],
        "clients": [{"key": "acme", "name": "Acme", "sources": {"h": ["c1"]},
                     "visibility": {"view": "realtime", "internal_tasks": ["Admin"], **vis}}],
    })
    return build_portal_view(store, config, config.clients[0], now=NOW, previous_snapshot=None)


def test_internal_work_is_left_out_of_rows_and_totals(store_with_work: Store) -> None:
    view = view_of(store_with_work, descriptions="detailed", non_billable="shown")
    text = repr(view)
    for secret in ("Timesheets", "Refactor", "Team offsite", "slow client", "Admin"):
        assert secret not in text
    # public 2 + nonbill 1 + unapproved 3; never admin 4, prefixed 5, tagged 6
    assert view.total_hours == D("6.00")
    # the budget counts as the tracker does: all 21 h, the 15 h not listed said so in numbers only
    b = view.projects[0].budget
    assert b is not None and b.used == D("21.00") and b.unlisted_hours == D("15.00")
    assert b.unlisted_note == "Includes 15.0 h of internal work not itemized below."
    assert {r.description for r in view.timesheet} == {"Homepage", "Pairing", "Draft layouts"}


def test_budget_basis_published_counts_only_the_listed_work(store_with_work: Store) -> None:
    config = parse_config({
        "sources": [{"name": "h", "kind": "harvest"}],
        "clients": [{"key": "acme", "name": "Acme", "sources": {"h": ["c1"]}, "budget_basis": "published",
                     "visibility": {"view": "realtime", "internal_tasks": ["Admin"], "non_billable": "shown"}}],
    })
    view = build_portal_view(store_with_work, config, config.clients[0], now=NOW, previous_snapshot=None)
    b = view.projects[0].budget
    assert b is not None and b.used == D("6.00") and b.unlisted_note is None and b.basis == "published"
    assert view.budget_basis_note is not None and "only the work listed" in view.budget_basis_note


def test_budget_basis_is_validated() -> None:
    from bridge.errors import ConfigError

    with pytest.raises(ConfigError, match=r"clients\[0\]\.budget_basis"):
        parse_config({"sources": [{"name": "h", "kind": "harvest"}],
                      "clients": [{"key": "acme", "name": "Acme", "sources": {"h": ["c1"]}, "budget_basis": "trackr"}]})


def test_non_billable_hidden_drops_entries_and_totals(store_with_work: Store) -> None:
    hidden = view_of(store_with_work)
    assert hidden.non_billable_hours is None
    assert all(r.is_billable for r in hidden.timesheet) and hidden.total_hours == D("5.00")
    shown = view_of(store_with_work, non_billable="shown")
    assert shown.non_billable_hours == D("1.00") and shown.total_hours == D("6.00")


def test_approved_only_publishes_only_approved_time(store_with_work: Store) -> None:
    view = view_of(store_with_work, approved_only=True, descriptions="detailed")
    assert "Draft layouts" not in repr(view)
    assert view.total_hours == D("2.00") and view.policy.approved_only


@pytest.mark.parametrize(
    "mode,expected", [("detailed", {"Homepage", "Draft layouts"}), ("summary", {"Design"}), ("hidden", {None})]
)
def test_descriptions_in_the_view(store_with_work: Store, mode: str, expected: set[str | None]) -> None:
    view = view_of(store_with_work, descriptions=mode)
    assert len(view.timesheet) == 2
    assert {r.description for r in view.timesheet} == expected
    assert view.policy.descriptions == mode
    if mode != "detailed":
        assert "Homepage" not in repr(view) and "Draft layouts" not in repr(view)


@pytest.mark.parametrize(
    "mode,names",
    [("full", {"Ann Lee", "Bo Kim"}), ("first_name", {"Ann", "Bo"}), ("role", {"Designer", "Team member"}),
     ("anonymous", {"Team member A", "Team member B"})],
)
def test_team_names_in_the_view(store_with_work: Store, mode: str, names: set[str]) -> None:
    view = view_of(store_with_work, team_names=mode, non_billable="shown")
    assert {r.person for r in view.timesheet} == names
    assert {line.label for line in view.hours_to_date_by_person} == names
    text = repr(view)
    if mode != "full":
        assert "Lee" not in text and "Kim" not in text
    if mode in ("role", "anonymous"):
        assert "Ann" not in text and "'Bo" not in text


def test_anonymous_letters_are_consistent_across_the_view(store_with_work: Store) -> None:
    view = view_of(store_with_work, team_names="anonymous", non_billable="shown")
    by_row: dict[str, Decimal] = {}
    for r in view.timesheet:
        by_row[r.person] = by_row.get(r.person, D(0)) + r.hours
    by_line = {line.label: line.hours for line in view.hours_to_date_by_person}
    assert by_row == by_line == {"Team member A": D("5.00"), "Team member B": D("1.00")}


def test_rates_hidden_means_totals_only(store_with_work: Store) -> None:
    hidden = view_of(store_with_work, invoices="shown")
    assert all(r.rate is None and r.amount is None for r in hidden.timesheet)
    assert hidden.unbilled.amounts == ()
    assert all(p.lines == () for p in hidden.invoice_preview)
    assert "120" not in repr([hidden.timesheet, hidden.invoice_preview])
    assert [(t.currency, t.amount) for t in hidden.totals] == [("EUR", D("600.00"))]
    shown = view_of(store_with_work, rates="shown", invoices="shown")
    assert {(r.rate.amount if r.rate else None) for r in shown.timesheet} == {D("120.00")}
    assert [m.amount for m in shown.unbilled.amounts] == [D("600.00")]
    assert shown.invoice_preview[0].lines[0].rate == D("120.00")
    assert "45" not in repr(shown)  # a cost rate is never published


def test_glossary_never_explains_an_internal_task(store: Store) -> None:
    config = parse_config({
        "sources": [{"name": "h", "kind": "harvest"}],
        "clients": [{"key": "acme", "name": "Acme", "sources": {"h": ["c1"]},
                     "visibility": {"internal_tasks": ["Admin"]},
                     "glossary": {"DSN": "Design", "admin": "Our own paperwork"}}],
    })
    view = build_portal_view(store, config, config.clients[0], now=NOW)
    assert [(g.term, g.explanation) for g in view.glossary] == [("DSN", "Design")]
