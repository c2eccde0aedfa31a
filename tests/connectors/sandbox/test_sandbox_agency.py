"""The generated agency: deterministic, covers the cases connectors must handle, mutations behave."""

from __future__ import annotations

import datetime as dt
import time
import unicodedata
from typing import Any

import pytest

from connectors.sandbox.agency import Agency, from_epoch, generate_agency, to_epoch

TODAY = dt.date(2025, 3, 20)  # the conftest agency's today


def _snapshot(agency: Agency) -> tuple:
    return (
        sorted(agency.entries.values()),
        [(i.id, i.number, i.amount, i.state, [(p.id, p.amount, p.paid_at) for p in i.payments]) for i in agency.invoices.values()],
        [(p.id, p.budget, p.starts_on, p.ends_on, p.created_at) for p in agency.projects.values()],
        [(c.id, c.name, c.created_at, c.updated_at) for c in agency.clients.values()],
    )


def test_same_seed_same_agency_and_other_seed_differs() -> None:
    first = generate_agency(seed=3, today=TODAY, entries=300)
    second = generate_agency(seed=3, today=TODAY, entries=300)
    other = generate_agency(seed=4, today=TODAY, entries=300)
    assert _snapshot(first) == _snapshot(second)
    assert _snapshot(first)[0] != _snapshot(other)[0]


def test_clients_people_tasks_cover_the_awkward_cases(agency: Agency) -> None:
    clients = list(agency.clients.values())
    assert 4 <= len(clients) <= 6
    assert {"EUR", "USD", "CHF"} <= {c.currency for c in clients}
    assert any(not c.is_active for c in clients)
    assert any(not c.name.isascii() for c in clients)
    people = list(agency.people.values())
    assert len(people) == 12
    assert sum(not p.is_active for p in people) == 1
    assert any(p.is_contractor for p in people)
    assert len({p.email for p in people}) == 12 and all(p.email.isascii() for p in people)
    assert all(p.hourly_rate > 0 and p.cost_rate > 0 for p in people)
    names = {t.name: t for t in agency.tasks.values()}
    assert {"Design", "Development", "Project Management", "Internal Meeting"} <= set(names)
    assert not names["Internal Meeting"].billable_by_default


def test_projects_cover_every_budget_kind(agency: Agency) -> None:
    kinds = {(p.budget_kind, p.budget_is_monthly) for p in agency.projects.values()}
    assert {("hours", False), ("hours", True), ("money", False), (None, False)} <= kinds
    assert any(p.ends_on is not None for p in agency.projects.values())
    assert any(not p.is_active for p in agency.projects.values())
    for p in agency.projects.values():
        assert p.starts_on is not None and (p.ends_on is None or p.ends_on >= p.starts_on)
        assert set(p.task_ids) <= set(agency.tasks) and set(p.person_ids) <= set(agency.people)


def test_entries_cover_the_awkward_cases(agency: Agency) -> None:
    entries = list(agency.entries.values())
    assert len(entries) == 400
    notes = [e.notes for e in entries]
    assert None in notes and "" in notes
    assert any(n and n.startswith("[internal]") for n in notes)
    assert any(n and not n.isascii() for n in notes)
    assert sum(e.is_running for e in entries) == 1
    assert {True, False} == {e.billable for e in entries}
    assert any(e.is_locked for e in entries) and any(not e.is_locked for e in entries)
    assert any(e.invoice_id for e in entries)
    for e in entries:
        assert e.seconds > 0 and e.seconds % 60 == 0  # whole minutes
        assert e.spent_date <= TODAY
        assert e.created_at <= e.updated_at < to_epoch(agency.generated_at)
        assert e.billable == (e.billable_rate is not None)
        project = agency.projects[e.project_id]
        assert project.starts_on <= e.spent_date
        if not agency.people[e.person_id].is_active:
            assert e.spent_date < agency.people[e.person_id].deactivated_on
    months = {(e.spent_date.year, e.spent_date.month) for e in entries}
    assert len(months) >= 4


def test_invoices_exist_in_every_status_with_consistent_amounts(agency: Agency) -> None:
    statuses = {}
    for inv in agency.invoices.values():
        statuses.setdefault(inv.status(TODAY), inv)
        assert inv.amount == sum(line.amount for line in inv.lines) + inv.tax_amount
        assert inv.currency == agency.clients[inv.client_id].currency
        assert inv.issue_date <= inv.due_date
    assert set(statuses) == {"draft", "open", "partial", "overdue", "paid", "void"}
    assert statuses["paid"].due_amount == 0 and statuses["paid"].paid_at is not None
    assert 0 < statuses["partial"].due_amount < statuses["partial"].amount
    assert statuses["open"].due_date >= TODAY and statuses["open"].due_amount == statuses["open"].amount
    assert statuses["overdue"].due_date < TODAY and statuses["overdue"].due_amount > 0
    assert statuses["void"].closed_at is not None


def test_edit_moves_updated_at_forward_even_when_the_clock_stands_still(agency: Agency, clock: Any) -> None:
    entry = next(iter(agency.entries.values()))
    first = agency.edit_entry(entry.id, notes="changed")
    second = agency.edit_entry(entry.id, seconds=3600)  # same clock second
    assert first.notes == "changed" and second.seconds == 3600 and second.notes == "changed"
    assert entry.updated_at < first.updated_at < second.updated_at
    assert first.updated_at == to_epoch(clock())
    clock.advance(3600)
    third = agency.edit_entry(entry.id, notes="later")
    assert third.updated_at == to_epoch(clock())
    assert agency.entry_ids_updated_since(from_epoch(third.updated_at)) == [entry.id]
    with pytest.raises(ValueError):
        agency.edit_entry(entry.id, seconds=90)  # not whole minutes


def test_add_delete_backdate_and_malform(agency: Agency, clock: Any) -> None:
    project = next(p for p in agency.projects.values() if p.is_active and p.is_billable)
    added = agency.add_entry(project_id=project.id, person_id=project.person_ids[0], task_id=project.task_ids[0],
                             spent_date=TODAY, seconds=1800, notes="new")
    assert added.id > max(i for i in agency.entries if i != added.id)
    assert added.created_at == added.updated_at == to_epoch(clock())
    assert agency.entries_by_date_desc()[0].spent_date == TODAY
    assert added.id in {e.id for e in agency.entries_by_date_desc()}

    clock.advance(10)
    deletion = agency.delete_entry(added.id)
    assert added.id not in agency.entries
    assert agency.deletions[-1] == deletion and deletion.record == added
    assert deletion.deleted_at == clock() and deletion.resource == "time_entry"
    assert added.id not in {e.id for e in agency.entries_by_date_desc()}

    victim = next(iter(agency.entries))
    old = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    backdated = agency.backdate_entry(victim, old, notes="sneaky")
    assert backdated.updated_at == to_epoch(old) and backdated.notes == "sneaky"
    assert victim not in agency.entry_ids_updated_since(old + dt.timedelta(seconds=1))

    agency.malform_entry(victim, "bad_duration")
    assert agency.malformed[victim] == "bad_duration"
    with pytest.raises(ValueError):
        agency.malform_entry(victim, "nonsense")


def test_names_survive_ascii_folding_for_emails(agency: Agency) -> None:
    chloe = next(p for p in agency.people.values() if p.first_name == "Chloé")
    assert chloe.email.startswith(unicodedata.normalize("NFKD", "chloe"))


def test_200k_entries_generate_quickly() -> None:
    """Not a timed assertion: prints the time so benchmark regressions are visible with -s."""
    start = time.perf_counter()
    agency = generate_agency(seed=1, today=TODAY, entries=200_000)
    generated = time.perf_counter() - start
    start = time.perf_counter()
    ordered = agency.entries_by_date_desc()
    indexed = time.perf_counter() - start
    print(f"\n200k entries: generated in {generated:.2f}s, date index in {indexed:.2f}s")
    assert len(ordered) == 200_000
    assert all(a.spent_date >= b.spent_date for a, b in zip(ordered[:1000], ordered[1:1001]))


def test_indexes_patched_in_place_agree_with_a_fresh_sort(agency: Agency, clock: Any) -> None:
    agency.entries_by_date_desc()
    agency.entry_ids_updated_since(dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))  # build both indexes
    ids = list(agency.entries)
    project = next(p for p in agency.projects.values() if p.is_active)
    for n, entry_id in enumerate(ids[:30]):
        clock.advance(1)
        if n % 5 == 0:
            agency.edit_entry(entry_id, spent_date=TODAY - dt.timedelta(days=n))
        elif n % 5 == 1:
            agency.delete_entry(entry_id)
        elif n % 5 == 2:
            agency.backdate_entry(entry_id, dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc))
        elif n % 5 == 3:
            agency.add_entry(project_id=project.id, person_id=project.person_ids[0], task_id=project.task_ids[0],
                             spent_date=TODAY - dt.timedelta(days=n), seconds=600)
        else:
            agency.edit_entry(entry_id, notes=f"edit {n}")
    patched_dates = [e.id for e in agency.entries_by_date_desc()]
    patched_updates = agency.entry_ids_updated_since(dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))
    fresh = sorted(agency.entries.values(), key=lambda e: (e.spent_date, e.id), reverse=True)
    assert patched_dates == [e.id for e in fresh]
    assert patched_updates == [i for _, i in sorted((e.updated_at, e.id) for e in agency.entries.values())]
    assert [e for e in agency.entries_by_date_desc()] == fresh  # the tuples themselves are current
