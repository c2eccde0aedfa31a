"""Valuing billable time at the rate the tracker applies (FreshBooks billing methods)."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace as NS

from bridge.valuation import value_entry

D = Decimal


def entry(seconds: int = 5400, billable: bool = True, rate: str | None = None, amount: str | None = None) -> NS:
    return NS(seconds=seconds, is_billable=billable, billable_rate=D(rate) if rate else None,
              billable_amount=D(amount) if amount else None)


def project(method: str | None, rate: str | None = None, name: str = "Brand Refresh") -> NS:
    return NS(billing_method=method, hourly_rate=D(rate) if rate else None, name=name)


DESIGN = NS(name="Design", default_hourly_rate=D("140.00"))
NO_RATE = NS(name="Internal Meeting", default_hourly_rate=None)
CHLOE = NS(default_hourly_rate=D("95.50"))


def test_project_rate() -> None:
    v = value_entry(entry(5400), project("project_rate", "150.00"), DESIGN, CHLOE)
    assert (v.amount, v.rate, v.missing) == (D("225"), D("150.00"), None)  # 1.5 h x 150


def test_service_rate_uses_the_entry_s_service() -> None:
    v = value_entry(entry(5400), project("service_rate", "150.00"), DESIGN, CHLOE)
    assert (v.amount, v.rate) == (D("210"), D("140.00"))  # 1.5 h x 140, not the project's 150


def test_team_member_rate_uses_the_person() -> None:
    v = value_entry(entry(1800), project("team_member_rate"), DESIGN, CHLOE)
    assert (v.amount, v.rate) == (D("47.75"), D("95.50"))  # 0.5 h x 95.50


def test_amounts_are_exact_not_rounded_per_entry() -> None:
    # 20 minutes at 95.50 = 31.8333…: rounding happens once, after summing
    v = value_entry(entry(1200), project("team_member_rate"), DESIGN, CHLOE)
    assert v.amount is not None and v.amount.quantize(D("0.0001")) == D("31.8333")


def test_business_rate_is_unknown_and_says_what_to_set() -> None:
    v = value_entry(entry(3600), project("business_rate"), DESIGN, CHLOE)
    assert v.amount is None and v.rate is None
    assert "business rate" in v.missing and "hourly_rate" in v.missing and "[[clients.budgets]]" in v.missing


def test_configured_rate_fills_only_a_gap() -> None:
    assert value_entry(entry(3600), project("business_rate"), fallback_rate=D("110")).amount == D("110")
    # the tracker's own rate wins over the configured one
    assert value_entry(entry(3600), project("service_rate"), DESIGN, fallback_rate=D("110")).amount == D("140.00")


def test_service_without_rate_says_so_without_naming_it() -> None:
    v = value_entry(entry(3600), project("service_rate"), NO_RATE)
    # the reason may reach the portal: it names the project, never a service or person
    assert v.amount is None and "a service its time was logged on has no rate" in v.missing
    assert "Internal Meeting" not in v.missing and "the agency can set" in v.missing


def test_entry_rates_from_harvest_or_productive_are_taken_as_they_are() -> None:
    assert value_entry(entry(3600, rate="120"), project("service_rate"), DESIGN).amount == D("120")
    assert value_entry(entry(3600, amount="99.99", rate="100"), project(None)).amount == D("99.99")


def test_non_billable_time_has_no_value() -> None:
    v = value_entry(entry(3600, billable=False), project("project_rate", "150"))
    assert (v.amount, v.rate, v.missing) == (None, None, None)


def test_no_method_falls_back_to_the_project_rate() -> None:
    assert value_entry(entry(7200), project(None, "100")).amount == D("200")
    assert value_entry(entry(7200), project(None)).amount is None
