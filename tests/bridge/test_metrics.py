"""bridge.metrics: every figure checked against a value worked out by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bridge import metrics as m

D = Decimal
BERLIN = ZoneInfo("Europe/Berlin")
MON, SUN = 0, 6


def entry(day: dt.date, hours: float = 1, **kw: object) -> m.Entry:
    return m.Entry(spent_date=day, seconds=int(hours * 3600), **kw)  # type: ignore[arg-type]


# --- calendar ------------------------------------------------------------------------


def test_week_bounds_monday_start() -> None:
    # 2025-03-20 is a Thursday
    assert m.week_bounds(dt.date(2025, 3, 20), MON) == (dt.date(2025, 3, 17), dt.date(2025, 3, 23))
    assert m.week_bounds(dt.date(2025, 3, 17), MON) == (dt.date(2025, 3, 17), dt.date(2025, 3, 23))
    assert m.week_bounds(dt.date(2025, 3, 23), MON) == (dt.date(2025, 3, 17), dt.date(2025, 3, 23))


def test_week_bounds_sunday_start() -> None:
    assert m.week_bounds(dt.date(2025, 3, 20), SUN) == (dt.date(2025, 3, 16), dt.date(2025, 3, 22))
    # a Sunday opens its own week, and a Saturday closes one
    assert m.week_bounds(dt.date(2025, 3, 23), SUN) == (dt.date(2025, 3, 23), dt.date(2025, 3, 29))
    assert m.week_bounds(dt.date(2025, 3, 22), SUN) == (dt.date(2025, 3, 16), dt.date(2025, 3, 22))


def test_today_near_midnight_utc_is_taken_in_the_agency_zone() -> None:
    # Sunday 23:30 UTC is already Monday 00:30 in Berlin (CET, UTC+1)
    now = dt.datetime(2025, 3, 16, 23, 30, tzinfo=dt.timezone.utc)
    today = m.local_date(now, BERLIN)
    assert today == dt.date(2025, 3, 17)
    assert m.week_bounds(today, MON)[0] == dt.date(2025, 3, 17)
    assert m.local_date(now, ZoneInfo("UTC")) == dt.date(2025, 3, 16)
    assert m.week_bounds(m.local_date(now, ZoneInfo("UTC")), MON)[0] == dt.date(2025, 3, 10)
    # summer time: 22:30 UTC is 00:30 CEST the next day
    assert m.local_date(dt.datetime(2025, 7, 6, 22, 30, tzinfo=dt.timezone.utc), BERLIN) == dt.date(2025, 7, 7)


def test_local_date_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError):
        m.local_date(dt.datetime(2025, 1, 1), BERLIN)


def test_month_bounds_roll_over_the_year() -> None:
    assert m.month_bounds(dt.date(2025, 3, 20)) == (dt.date(2025, 3, 1), dt.date(2025, 4, 1))
    assert m.month_bounds(dt.date(2025, 12, 31)) == (dt.date(2025, 12, 1), dt.date(2026, 1, 1))


def test_hours_round_half_up_to_hundredths() -> None:
    assert m.hours(5400) == D("1.50")
    assert m.hours(18) == D("0.01")  # 0.005 h rounds up
    assert m.hours(17) == D("0.00")
    assert m.hours(0) == D("0.00")


# --- hours -----------------------------------------------------------------------------


def test_hours_this_week_by_person_and_to_date() -> None:
    es = [
        entry(dt.date(2025, 3, 16), 2, person="ann"),  # Sunday: previous Monday-week
        entry(dt.date(2025, 3, 17), 1.5, person="ann"),
        entry(dt.date(2025, 3, 20), 3, person="bob"),
        entry(dt.date(2025, 3, 23), 0.25, person="bob"),
    ]
    first, last = m.week_bounds(dt.date(2025, 3, 20), MON)
    assert m.seconds_by(m.between(es, first, last), lambda e: e.person) == {"ann": 5400, "bob": 11700}
    assert m.seconds_by(es, lambda e: e.person) == {"ann": 12600, "bob": 11700}
    # with a Sunday start the 16th belongs to this week and the 23rd to the next
    first, last = m.week_bounds(dt.date(2025, 3, 20), SUN)
    assert m.seconds_by(m.between(es, first, last), lambda e: e.person) == {"ann": 12600, "bob": 10800}


def test_hours_by_task_and_phase_skip_missing_phases() -> None:
    es = [
        entry(dt.date(2025, 3, 1), 1, task="Design", phase="Discovery"),
        entry(dt.date(2025, 3, 2), 2, task="Design", phase=None),
        entry(dt.date(2025, 3, 3), 4, task="Build", phase="Delivery"),
    ]
    assert m.seconds_by(es, lambda e: e.task) == {"Design": 10800, "Build": 14400}
    assert m.seconds_by(es, lambda e: e.phase) == {"Discovery": 3600, "Delivery": 14400}


def test_amounts_are_kept_per_currency_and_running_timers_left_out() -> None:
    es = [
        entry(dt.date(2025, 3, 1), 1, is_billable=True, billable_amount=D("100"), currency="EUR"),
        entry(dt.date(2025, 3, 1), 1, is_billable=True, billable_amount=D("80"), currency="USD"),
        entry(dt.date(2025, 3, 1), 1, is_billable=True, billable_amount=D("20.50"), currency="EUR"),
        entry(dt.date(2025, 3, 1), 1, is_billable=True, is_running=True, billable_amount=D("999"), currency="EUR"),
        entry(dt.date(2025, 3, 1), 1, is_billable=False, billable_amount=D("777"), currency="EUR"),
    ]
    assert m.amounts_by_currency(es) == {"EUR": D("120.50"), "USD": D("80")}
    assert m.billable_seconds_by_currency(es) == {"EUR": 7200, "USD": 3600}


def test_unbilled_is_billable_not_invoiced_not_running() -> None:
    es = [
        entry(dt.date(2025, 3, 1), 2, is_billable=True, billable_amount=D("200"), currency="EUR"),
        entry(dt.date(2025, 3, 1), 1, is_billable=True, is_invoiced=True, billable_amount=D("100"), currency="EUR"),
        entry(dt.date(2025, 3, 1), 1, is_billable=True, is_running=True, billable_amount=D("100"), currency="EUR"),
        entry(dt.date(2025, 3, 1), 3, is_billable=False),
        entry(dt.date(2025, 3, 1), 0.5, is_billable=True, billable_amount=D("40"), currency="USD"),
    ]
    u = m.unbilled(es)
    assert u.seconds == 2 * 3600 + 1800
    assert u.amounts == {"EUR": D("200"), "USD": D("40")}


# --- budgets ---------------------------------------------------------------------------


def test_hours_budget_used_left_and_percent() -> None:
    es = [entry(dt.date(2025, 3, d), 2) for d in (3, 4, 5)]
    use = m.budget_use(es, kind="hours", period="total", budget_seconds=10 * 3600, budget_money=None,
                       currency=None, today=dt.date(2025, 3, 20))
    assert use is not None
    assert (use.allocated, use.used, use.left, use.percent) == (D("10"), D("6"), D("4"), D("60.0"))
    assert use.resets_on is None and use.period == "total"


def test_monthly_budget_counts_this_calendar_month_only() -> None:
    es = [entry(dt.date(2025, 3, 31), 10), entry(dt.date(2025, 4, 1), 2), entry(dt.date(2025, 4, 2), 1)]
    use = m.budget_use(es, kind="hours", period="monthly", budget_seconds=20 * 3600, budget_money=None,
                       currency=None, today=dt.date(2025, 4, 2))
    assert use is not None
    assert use.used == D("3.00") and use.left == D("17.00") and use.percent == D("15.0")
    assert use.period_start == dt.date(2025, 4, 1) and use.resets_on == dt.date(2025, 5, 1)
    # the day before, March's 10 h counted and April's not yet
    before = m.budget_use(es, kind="hours", period="monthly", budget_seconds=20 * 3600, budget_money=None,
                          currency=None, today=dt.date(2025, 3, 31))
    assert before is not None and before.used == D("10.00") and before.resets_on == dt.date(2025, 4, 1)


def test_money_budget_counts_billable_amounts_in_the_project_currency() -> None:
    es = [
        entry(dt.date(2025, 3, 3), 2, is_billable=True, billable_amount=D("300"), currency="EUR"),
        entry(dt.date(2025, 3, 4), 1, is_billable=True, billable_amount=D("150"), currency=None),  # project currency
        entry(dt.date(2025, 3, 4), 1, is_billable=True, billable_amount=D("500"), currency="USD"),  # not EUR
        entry(dt.date(2025, 3, 5), 1, is_billable=False),
    ]
    use = m.budget_use(es, kind="money", period="total", budget_seconds=None, budget_money=D("1000"),
                       currency="EUR", today=dt.date(2025, 3, 20))
    assert use is not None
    assert (use.used, use.left, use.percent) == (D("450"), D("550"), D("45.0"))


@pytest.mark.parametrize("kind,secs,money", [(None, None, None), ("hours", None, None), ("hours", 0, None), ("money", None, None)])
def test_no_budget_gives_none(kind: str | None, secs: int | None, money: Decimal | None) -> None:
    assert m.budget_use([entry(dt.date(2025, 3, 1))], kind=kind or "", period="total", budget_seconds=secs,
                        budget_money=money, currency="EUR", today=dt.date(2025, 3, 20)) is None


@pytest.mark.parametrize(
    "pct,over,expected",
    [
        (D("0"), False, ("ok", None)),
        (D("74.9"), False, ("ok", None)),
        (D("75.0"), False, ("warning", 75)),
        (D("90.0"), False, ("warning", 90)),
        (D("100.0"), False, ("critical", 100)),
        (D("130.0"), True, ("over", 100)),
    ],
)
def test_warning_level_default_thresholds(pct: Decimal, over: bool, expected: tuple[str, int | None]) -> None:
    assert m.warning_level(pct, [75, 90, 100], over=over) == expected


def test_warning_level_custom_thresholds() -> None:
    assert m.warning_level(D("55"), [50, 80], over=False) == ("warning", 50)
    assert m.warning_level(D("85"), [80, 50], over=False) == ("critical", 80)


# --- burn and projection ----------------------------------------------------------------


def test_burn_rate_is_trailing_window_over_n_weeks() -> None:
    today = dt.date(2025, 3, 20)
    # a 4-week window is 2025-02-21 .. 2025-03-20
    es = [entry(dt.date(2025, 2, 20), 100), entry(dt.date(2025, 2, 21), 6), entry(dt.date(2025, 3, 20), 4)]
    b = m.burn(es, today=today, weeks=4)
    assert b.first_day == dt.date(2025, 2, 21)
    assert b.seconds == 10 * 3600
    assert b.hours_per_week == D("2.50") and b.per_week == D("2.50")
    assert m.burn(es, today=today, weeks=2).hours_per_week == D("2.00")  # 03-07 .. 03-20: 4 h / 2


def test_projection_is_the_last_day_that_still_ends_with_budget_left() -> None:
    today = dt.date(2025, 3, 20)
    # 10 h left at 2.5 h/week = 28 days of work: day 28 ends with nothing, day 27 with 1/14 h
    assert m.run_out_date(D("10"), D("2.5"), today) == today + dt.timedelta(days=27)
    # 1 h left at 7 h/week (1 h a day): tomorrow uses it all, so today is the last day with some left
    assert m.run_out_date(D("1"), D("7"), today) == today


@pytest.mark.parametrize(
    "left,per_week,days",
    [
        ("10", "35", 1),  # 5 h a day: tomorrow ends with 5 h, the day after with 0
        ("10.01", "35", 2),  # a hair more than two days' work: the second day still ends with 0.01 h
        ("9.99", "35", 1),  # a hair less: the second day ends below zero
        ("0.01", "35", 0),  # almost nothing: today is the last day with budget left
        ("5", "35", 0),  # exactly one day's work
        ("10", str(D(70) / 3), 2),  # 10/3 h a day: 3 days exactly, despite 70/3 never being exact
    ],
)
def test_projection_boundaries(left: str, per_week: str, days: int) -> None:
    today = dt.date(2025, 12, 30)
    assert m.run_out_date(D(left), D(per_week), today) == today + dt.timedelta(days=days)


def test_zero_burn_or_nothing_left_gives_no_projection() -> None:
    today = dt.date(2025, 3, 20)
    assert m.run_out_date(D("10"), D("0"), today) is None
    assert m.run_out_date(D("0"), D("5"), today) is None
    assert m.run_out_date(D("-3"), D("5"), today) is None
    b = m.burn([entry(dt.date(2024, 1, 1), 8)], today=today, weeks=4)
    assert b.per_week == 0 and b.exact_per_week == 0


def test_running_timers_count_in_no_budget_and_no_burn() -> None:
    today = dt.date(2025, 3, 20)
    es = [entry(dt.date(2025, 3, 18), 2), entry(dt.date(2025, 3, 20), 1.5, is_running=True)]
    use = m.budget_use(es, kind="hours", period="total", budget_seconds=10 * 3600, budget_money=None,
                       currency=None, today=today)
    assert use is not None and use.used == D(2)
    assert m.burn(es, today=today, weeks=1).seconds == 2 * 3600


def test_money_burn_converts_at_the_window_amount() -> None:
    today = dt.date(2025, 3, 20)
    es = [
        entry(dt.date(2025, 3, 10), 4, is_billable=True, billable_amount=D("400"), currency="EUR"),
        entry(dt.date(2025, 3, 11), 4, is_billable=True, billable_amount=D("400"), currency="EUR"),
        entry(dt.date(2025, 3, 12), 2, is_billable=False),
    ]
    b = m.burn(es, today=today, weeks=4, kind="money", currency="EUR")
    assert b.amount == D("800") and b.per_week == D("200.00") and b.hours_per_week == D("2.50")
    # 1000 left at 200/week = 5 weeks = 35 days; day 35 ends with nothing left
    assert m.run_out_date(D("1000"), b.exact_per_week, today) == today + dt.timedelta(days=34)


def test_burn_keeps_the_exact_rate_for_projections() -> None:
    today = dt.date(2025, 3, 20)
    # 10 h over 3 weeks: 3.333… h/week, shown as 3.33
    b = m.burn([entry(dt.date(2025, 3, 18), 10)], today=today, weeks=3)
    assert b.per_week == D("3.33")
    assert b.exact_per_week == D(10) / 3
    # 20 h left: 20 / (10/21 h a day) = 42 days exactly -> day 41; the rounded 3.33 would say day 42
    assert m.run_out_date(D(20), b.exact_per_week, today) == today + dt.timedelta(days=41)
    assert m.run_out_date(D(20), b.per_week, today) == today + dt.timedelta(days=42)


def test_weekly_series_buckets_by_calendar_week() -> None:
    today = dt.date(2025, 3, 20)
    es = [entry(dt.date(2025, 3, 9), 1), entry(dt.date(2025, 3, 10), 2), entry(dt.date(2025, 3, 19), 3)]
    series = m.weekly_series(es, today=today, weeks=3, week_start=MON, value=lambda xs: m.hours(m.total_seconds(xs)))
    assert series == [(dt.date(2025, 3, 3), D("1.00")), (dt.date(2025, 3, 10), D("2.00")), (dt.date(2025, 3, 17), D("3.00"))]
    sunday = m.weekly_series(es, today=today, weeks=2, week_start=SUN, value=lambda xs: m.hours(m.total_seconds(xs)))
    assert sunday == [(dt.date(2025, 3, 9), D("3.00")), (dt.date(2025, 3, 16), D("3.00"))]


# --- invoices ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status,due,amount,due_amount,expected",
    [
        ("open", dt.date(2025, 3, 19), "100", "100", "overdue"),
        ("open", dt.date(2025, 3, 20), "100", "100", "open"),  # due today is not yet overdue
        ("open", dt.date(2025, 4, 1), "100", "40", "partial"),
        ("partial", dt.date(2025, 3, 1), "100", "40", "overdue"),
        ("open", dt.date(2025, 3, 1), "100", "0", "paid"),
        ("paid", dt.date(2025, 3, 1), "100", "0", "paid"),
        ("overdue", dt.date(2025, 4, 1), "100", "100", "open"),  # due date moved out
        ("open", None, "100", "100", "open"),
        ("draft", dt.date(2025, 3, 1), "100", "100", "draft"),
        ("void", dt.date(2025, 3, 1), "100", "100", "void"),
    ],
)
def test_invoice_status_is_re_derived_for_today(status: str, due: dt.date | None, amount: str, due_amount: str, expected: str) -> None:
    assert m.invoice_status(status, due, D(amount), D(due_amount), dt.date(2025, 3, 20)) == expected
