"""Shared normalization rules: units, money, dates, invoice states, and validation errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bridge import normalize as n
from bridge.errors import RecordError
from bridge.models import Invoice, TimeEntry

UTC = dt.timezone.utc
TODAY = dt.date(2025, 3, 20)


@pytest.mark.parametrize(
    ("hours", "seconds"),
    [(1, 3600), (1.5, 5400), ("0.25", 900), (1.27, 4572), (0.00125, 5), (0.000125, 0), (Decimal("2.75"), 9900), (0, 0)],
)
def test_hours_to_seconds_rounds_half_up(hours, seconds: int) -> None:
    assert n.hours_to_seconds(hours) == seconds


@pytest.mark.parametrize("hours", [None, "", -0.5, "abc", True, float("nan")])
def test_hours_to_seconds_rejects_bad_values(hours) -> None:
    with pytest.raises(RecordError) as info:
        n.hours_to_seconds(hours, "hours")
    assert info.value.field == "hours"


def test_to_decimal_is_exact_and_keeps_none() -> None:
    assert n.to_decimal(0.1) == Decimal("0.1")  # via str, not the binary float
    assert n.to_decimal("1222.00") == Decimal("1222.00")
    assert n.to_decimal(12345, scale=100) == Decimal("123.45")
    assert n.to_decimal(None) is None and n.to_decimal("") is None


@pytest.mark.parametrize("value", ["12,5", "inf", "NaN", False, [1]])
def test_to_decimal_rejects_non_numbers(value) -> None:
    with pytest.raises(RecordError) as info:
        n.to_decimal(value, "fee")
    assert info.value.field == "fee"


def test_to_int() -> None:
    assert n.to_int("42", "n") == 42 and n.to_int(7.0, "n") == 7
    for bad in (None, True, 1.5, "x"):
        with pytest.raises(RecordError):
            n.to_int(bad, "n")


def test_parse_date() -> None:
    assert n.parse_date("2025-03-20", "d") == dt.date(2025, 3, 20)
    assert n.parse_date(None, "d") is None and n.parse_date("", "d") is None
    with pytest.raises(RecordError, match="expected a date"):
        n.parse_date("20/03/2025", "d")
    with pytest.raises(RecordError) as info:
        n.require_date(None, "spent_date")
    assert info.value.field == "spent_date"


def test_parse_datetime_is_aware_utc() -> None:
    assert n.parse_datetime("2025-03-18T13:05:12Z", "t") == dt.datetime(2025, 3, 18, 13, 5, 12, tzinfo=UTC)
    assert n.parse_datetime("2025-03-18T14:05:12.000+01:00", "t") == dt.datetime(2025, 3, 18, 13, 5, 12, tzinfo=UTC)
    # FreshBooks accounting timestamps are naive US/Eastern
    eastern = n.parse_datetime("2025-03-18 09:05:12", "t", assume=ZoneInfo("America/New_York"))
    assert eastern == dt.datetime(2025, 3, 18, 13, 5, 12, tzinfo=UTC) and eastern.tzinfo is UTC
    assert n.parse_datetime(None, "t") is None
    with pytest.raises(RecordError) as info:
        n.parse_datetime("yesterday", "updated_at")
    assert info.value.field == "updated_at"


def test_currency() -> None:
    assert n.currency("eur") == "EUR"
    for bad in (None, "EURO", "E1R", 978):
        with pytest.raises(RecordError):
            n.currency(bad)


@pytest.mark.parametrize(
    ("provider", "state", "amount", "due", "due_date", "status"),
    [
        ("harvest", "draft", "100", "100", "2025-01-01", "draft"),
        ("harvest", "open", "100", "100", "2025-04-01", "open"),
        ("harvest", "open", "100", "40", "2025-04-01", "partial"),
        ("harvest", "open", "100", "40", "2025-03-01", "overdue"),
        ("harvest", "open", "100", "100", "2025-03-19", "overdue"),
        ("harvest", "open", "100", "0", "2025-03-01", "paid"),
        ("harvest", "paid", "100", "0", None, "paid"),
        ("harvest", "closed", "100", "60", "2025-01-01", "void"),
        ("harvest", "OPEN", "100", "100", None, "open"),
        ("freshbooks", "sent", "100", "100", "2025-04-01", "open"),
        ("freshbooks", "partial", "100", "30", "2025-04-01", "partial"),
        ("freshbooks", "overdue", "100", "100", "2025-03-01", "overdue"),
        ("freshbooks", "auto-paid", "100", "0", None, "paid"),
        ("freshbooks", "deleted", "100", "100", None, "void"),
        ("productive", "finalized", "100", "100", "2025-03-21", "open"),
        ("productive", "void", "100", "100", "2025-01-01", "void"),
    ],
)
def test_invoice_status(provider, state, amount, due, due_date, status) -> None:
    got = n.invoice_status(
        provider, state, amount=Decimal(amount), due_amount=Decimal(due),
        due_date=dt.date.fromisoformat(due_date) if due_date else None, today=TODAY,
    )
    assert got == status


def test_invoice_status_without_today_never_says_overdue() -> None:
    got = n.invoice_status("harvest", "open", amount=Decimal(100), due_amount=Decimal(100), due_date=dt.date(2020, 1, 1), today=None)
    assert got == "open"


def test_invoice_status_unknown_state_names_the_field() -> None:
    with pytest.raises(RecordError) as info:
        n.invoice_status("harvest", "archived", amount=None, due_amount=None, due_date=None, today=TODAY)
    assert info.value.field == "state" and "archived" in str(info.value)


def test_invoice_status_table_maps_onto_the_normalized_set() -> None:
    from bridge.models import INVOICE_STATUSES

    for provider, table in n.INVOICE_STATUS.items():
        assert set(table.values()) <= set(INVOICE_STATUSES), provider


def test_text_and_ref_id() -> None:
    assert n.text("  hi  ") == "hi" and n.text("   ") is None and n.text(None) is None
    assert n.text("naïve café ☕") == "naïve café ☕"
    assert n.ref_id({"id": 5}) == "5" and n.ref_id(7) == "7"
    assert n.ref_id(None) is None and n.ref_id({"name": "x"}) is None


def test_validated_builds_a_validated_record() -> None:
    t = n.validated(TimeEntry, {"source": "s", "source_id": "1", "spent_date": "2025-03-20", "seconds": 60, "billable_rate": "1.5"})
    assert t.spent_date == dt.date(2025, 3, 20) and t.billable_rate == Decimal("1.5")


def test_validated_turns_a_validation_error_into_a_record_error() -> None:
    with pytest.raises(RecordError) as info:
        n.validated(Invoice, {"source": "s", "source_id": "9", "currency": "EUR", "status": "open", "issue_date": "soon"})
    assert info.value.field == "issue_date" and info.value.source_id == "9"


@pytest.mark.parametrize(("provider", "state", "amount", "due", "received", "status"), [
    # a draft that already has money received follows its payments (recorded on Harvest)
    ("harvest", "draft", "1000", "400", False, "partial"),
    ("harvest", "draft", "1000", "0", False, "paid"),
    ("harvest", "draft", "1000", "1000", True, "open"),  # a payment recorded, amounts not yet moved
    ("freshbooks", "draft", "500", "200", False, "partial"),
    ("productive", "draft", "800", "0", False, "paid"),
    # an untouched draft stays a draft
    ("harvest", "draft", "1000", "1000", False, "draft"),
    ("productive", "draft", "0", "0", False, "draft"),
])
def test_invoice_status_follows_its_payments(provider: str, state: str, amount: str, due: str, received: bool, status: str) -> None:
    got = n.invoice_status(provider, state, amount=Decimal(amount), due_amount=Decimal(due),
                           due_date=dt.date(2030, 1, 1), today=dt.date(2025, 3, 20), received=received)
    assert got == status
