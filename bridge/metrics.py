"""Pure arithmetic for one client's portal: weeks, hours, budgets, burn, projection, invoices.

Nothing here reads the store or knows about visibility: functions take plain rows
(`Entry`) that the view builder has already scoped to one client and filtered by policy,
and return plain values, so every figure can be checked by hand in a test.

Conventions (DESIGN.md invariant 4): durations are integer seconds until they are shown,
then Decimal hours rounded to 0.01; money is Decimal per ISO currency and is never added
across currencies; days and weeks are counted in the agency's time zone.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from bridge.valuation import value_entry

HUNDREDTH = Decimal("0.01")
TENTH = Decimal("0.1")
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Entry:
    """The fields of a time entry that metrics need; built by the view builder."""

    spent_date: dt.date
    seconds: int
    is_billable: bool = False
    is_running: bool = False
    is_invoiced: bool = False
    billable_amount: Decimal | None = None
    currency: str | None = None
    project: str = ""  # any stable project key
    person: str = ""  # any stable person key
    task: str | None = None
    phase: str | None = None
    billable_rate: Decimal | None = None


# --- units and calendar ----------------------------------------------------------------


def hours(seconds: int) -> Decimal:
    """Integer seconds -> Decimal hours rounded half-up to 0.01."""
    return (Decimal(seconds) / Decimal(3600)).quantize(HUNDREDTH, ROUND_HALF_UP)


def local_date(at: dt.datetime, zone: ZoneInfo) -> dt.date:
    """The calendar day an aware instant falls on in the agency's zone."""
    if at.tzinfo is None:
        raise ValueError("local_date needs an aware datetime")
    return at.astimezone(zone).date()


def week_bounds(day: dt.date, week_start: int = 0) -> tuple[dt.date, dt.date]:
    """First and last day of the week holding `day`; week_start 0 = Monday … 6 = Sunday."""
    offset = (day.weekday() - week_start) % 7
    start = day - dt.timedelta(days=offset)
    return start, start + dt.timedelta(days=6)


def month_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    """First day of `day`'s month and first day of the next month (the reset date)."""
    start = day.replace(day=1)
    nxt = (start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1))
    return start, nxt


def week_label(start: dt.date) -> str:
    return f"Week of {start.day} {start.strftime('%b')} {start.year}"


# --- hours ----------------------------------------------------------------------------


def between(entries: Iterable[Entry], first: dt.date, last: dt.date) -> list[Entry]:
    """Entries whose spent_date is in [first, last] (both inclusive)."""
    return [e for e in entries if first <= e.spent_date <= last]


def total_seconds(entries: Iterable[Entry]) -> int:
    return sum(e.seconds for e in entries)


def seconds_by(entries: Iterable[Entry], key: Callable[[Entry], K | None]) -> dict[K, int]:
    """Seconds grouped by key; entries whose key is None are left out."""
    out: dict[K, int] = defaultdict(int)
    for e in entries:
        k = key(e)
        if k is not None:
            out[k] += e.seconds
    return dict(out)


def amounts_by_currency(entries: Iterable[Entry], default_currency: str | None = None) -> dict[str, Decimal]:
    """Billable amounts per currency of finished billable entries (running timers excluded)."""
    out: dict[str, Decimal] = defaultdict(Decimal)
    for e in entries:
        if not e.is_billable or e.is_running or e.billable_amount is None:
            continue
        cur = e.currency or default_currency
        if cur:
            out[cur] += e.billable_amount
    return dict(out)


def billable_seconds_by_currency(entries: Iterable[Entry], default_currency: str | None = None) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for e in entries:
        if e.is_billable and not e.is_running and e.billable_amount is not None:
            cur = e.currency or default_currency
            if cur:
                out[cur] += e.seconds
    return dict(out)


# --- unbilled time and invoices --------------------------------------------------------


@dataclass(frozen=True)
class Unbilled:
    seconds: int
    amounts: dict[str, Decimal]  # per currency


def unbilled(entries: Iterable[Entry], default_currency: str | None = None) -> Unbilled:
    """Billable time not yet invoiced; a running timer is not billable until it stops."""
    todo = [e for e in entries if e.is_billable and not e.is_invoiced and not e.is_running]
    return Unbilled(seconds=total_seconds(todo), amounts=amounts_by_currency(todo, default_currency))


def invoice_status(status: str, due_date: dt.date | None, amount: Decimal, due_amount: Decimal, today: dt.date) -> str:
    """Re-derive an invoice's status for today (a stored row cannot know a day has passed).

    draft and void pass through (the view leaves them out); nothing due -> paid; an
    unpaid remainder past its due date -> overdue; otherwise part paid -> partial, else open.
    """
    if status in ("draft", "void"):
        return status
    if status == "paid" or due_amount <= 0:
        return "paid"
    if due_date is not None and due_date < today:
        return "overdue"
    if 0 < due_amount < amount:
        return "partial"
    return "open"


# --- budgets --------------------------------------------------------------------------


Level = Literal["ok", "warning", "critical", "over"]


@dataclass(frozen=True)
class BudgetUse:
    kind: Literal["hours", "money"]
    period: Literal["total", "monthly"]
    allocated: Decimal  # hours or money
    used: Decimal
    left: Decimal
    percent: Decimal
    period_start: dt.date | None
    resets_on: dt.date | None


def budget_use(
    entries: Sequence[Entry],
    *,
    kind: str,
    period: str | None,
    budget_seconds: int | None,
    budget_money: Decimal | None,
    currency: str | None,
    today: dt.date,
) -> BudgetUse | None:
    """Used vs allocated for one project's entries; None when the project has no budget.

    Hours budgets count the seconds of finished entries; money budgets count finished
    billable amounts in the project's currency. A running timer counts nowhere until it
    stops (its duration is still changing). A monthly budget counts this calendar month
    only and resets on the first of the next month. `used` is exact (never rounded here).
    """
    entries = [e for e in entries if not e.is_running]
    monthly = period == "monthly"
    start = reset = None
    if monthly:
        start, reset = month_bounds(today)
        entries = between(entries, start, reset - dt.timedelta(days=1))
    if kind == "hours" and budget_seconds:
        allocated = Decimal(budget_seconds) / 3600
        used = Decimal(total_seconds(entries)) / 3600
    elif kind == "money" and budget_money is not None and budget_money > 0:
        allocated = budget_money
        used = amounts_by_currency(entries, currency).get(currency or "", Decimal(0)) if currency else Decimal(0)
    else:
        return None
    return BudgetUse(
        kind="hours" if kind == "hours" else "money",
        period="monthly" if monthly else "total",
        allocated=allocated,
        used=used,
        left=allocated - used,
        percent=percent(used, allocated),
        period_start=start,
        resets_on=reset,
    )


def percent(used: Decimal, allocated: Decimal) -> Decimal:
    if allocated <= 0:
        return Decimal(0)
    return (used * 100 / allocated).quantize(TENTH, ROUND_HALF_UP)


def warning_level(pct: Decimal, thresholds: Sequence[int], *, over: bool) -> tuple[Level, int | None]:
    """(level, highest threshold reached). Over the allocation is "over"; reaching the
    highest configured threshold is "critical"; reaching any lower one is "warning"."""
    ts = sorted(set(thresholds))
    crossed = [t for t in ts if pct >= t]
    top = crossed[-1] if crossed else None
    if over:
        return "over", top
    if not crossed:
        return "ok", None
    return ("critical" if top == ts[-1] else "warning"), top


# --- burn and projection ----------------------------------------------------------------


@dataclass(frozen=True)
class Burn:
    weeks: int
    first_day: dt.date
    seconds: int
    amount: Decimal | None  # money burned in the window (money budgets), else None
    hours_per_week: Decimal
    per_week: Decimal  # in the budget's unit, rounded to 0.01 for display
    exact_per_week: Decimal = Decimal(0)  # unrounded: what projections divide by


def burn_window(today: dt.date, weeks: int) -> tuple[dt.date, dt.date]:
    """The trailing window: the 7*N days ending today, inclusive."""
    return today - dt.timedelta(days=7 * weeks - 1), today


def burn(entries: Sequence[Entry], *, today: dt.date, weeks: int, kind: str = "hours", currency: str | None = None) -> Burn:
    """Burn rate = amount used over the trailing N weeks / N, in the budget's unit."""
    weeks = max(1, weeks)
    first, last = burn_window(today, weeks)
    window = [e for e in between(entries, first, last) if not e.is_running]
    secs = total_seconds(window)
    exact = Decimal(secs) / 3600 / weeks
    hpw = exact.quantize(HUNDREDTH, ROUND_HALF_UP)
    amount = None
    if kind == "money":
        amount = amounts_by_currency(window, currency).get(currency or "", Decimal(0)) if currency else Decimal(0)
        exact = amount / weeks
    return Burn(weeks=weeks, first_day=first, seconds=secs, amount=amount, hours_per_week=hpw,
                per_week=exact.quantize(HUNDREDTH, ROUND_HALF_UP), exact_per_week=exact)


def run_out_date(left: Decimal, per_week: Decimal, today: dt.date) -> dt.date | None:
    """The last day that still ends with budget left, if work goes on at `per_week`.

    Today's work is already in `left`. At r = per_week / 7 a day, the day k days from
    today ends with left - k*r; the last k for which that is still above zero is
    ceil(left / r) - 1. So 10 h left at 5 h a day: tomorrow ends with 5 h, the day after
    with nothing, and the run-out date is tomorrow. None when nothing burns or nothing is
    left. Pass the unrounded rate (Burn.exact_per_week): a rounded one shifts the date.
    """
    if per_week <= 0 or left <= 0:
        return None
    # ceil(left / r); the quotient is first cut to 12 places so that 2.999…9 from a rate
    # such as 70/3 (28 significant digits) is 3, not 2.999…9 rounded up to 4
    days = (left * 7 / per_week).quantize(Decimal("1e-12"), ROUND_HALF_UP).to_integral_value(ROUND_CEILING)
    return today + dt.timedelta(days=int(days) - 1)


def weekly_series(entries: Sequence[Entry], *, today: dt.date, weeks: int, week_start: int, value: Callable[[Sequence[Entry]], Decimal]) -> list[tuple[dt.date, Decimal]]:
    """`value` of each of the last N calendar weeks (the current one included), oldest first."""
    current, _ = week_bounds(today, week_start)
    out = []
    for i in range(weeks - 1, -1, -1):
        start = current - dt.timedelta(days=7 * i)
        out.append((start, value(between(entries, start, start + dt.timedelta(days=6)))))
    return out


def entry_value(entry: Any, project: Any, task: Any = None, person: Any = None, *, fallback_rate: Decimal | None = None) -> tuple[Decimal | None, Decimal | None]:
    """(billable amount, rate) of a time entry, at the rate the tracker applies.

    The rules (per-entry rates, FreshBooks billing methods, the agency's configured
    fallback) live in bridge/valuation.py; this is the (amount, rate) pair metrics use.
    Without a known rate there is no amount: None, never 0.
    """
    v = value_entry(entry, project, task, person, fallback_rate=fallback_rate)
    return v.amount, v.rate
