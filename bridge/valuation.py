"""What a billable time entry is worth: the rate the tracker itself would apply.

Harvest and Productive put a rate (or an amount) on each entry, and that is taken as it is.
FreshBooks puts none on the entry: the project's `billing_method` says where the rate lives.

    project_rate      the project's own `rate`
    service_rate      the rate of the entry's service (task)         -> Task.default_hourly_rate
    team_member_rate  the rate of the person who logged it           -> Person.default_hourly_rate
    business_rate     the business's default rate: its API does not give it
    (none)            the project's rate, where it has one

A rate the tracker does not give can be supplied by the agency per project in the config
(`[[clients.budgets]]` `hourly_rate`). It only fills a gap: a rate the tracker gives always
wins, so the portal never disagrees with the tracker's own figures. When no rate is known
the entry has no amount (None, never 0) and `Value.missing` says why, in words for the
agency, naming what it can set.

Amounts are exact Decimals (seconds x rate / 3600, not rounded): money is rounded once,
for display, after summing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bridge.i18n import N_

FRESHBOOKS_METHODS = ("project_rate", "service_rate", "team_member_rate", "business_rate")

NO_SERVICE_RATE = N_("'%(project)s' is billed by service rate, and a service its time was logged on has no rate "
                     "in the tracker; the agency can set that rate in the tracker, or hourly_rate for the "
                     "project in the bridge's [[clients.budgets]]")
NO_MEMBER_RATE = N_("'%(project)s' is billed by team member rate, and the tracker gives no rate for someone who "
                    "logged time on it; the agency can set hourly_rate for the project in the bridge's "
                    "[[clients.budgets]]")
BUSINESS_RATE = N_("'%(project)s' is billed at the business rate, which the FreshBooks API does not give; the "
                   "agency can set hourly_rate for the project in the bridge's [[clients.budgets]]")
NO_PROJECT_RATE = N_("'%(project)s' has no hourly rate in the tracker; the agency can set hourly_rate for the "
                     "project in the bridge's [[clients.budgets]]")


class Unvalued(str):
    """Why a project's billable time has no value: the English advice itself, with its msgid
    and the project's name kept so that a portal can say it in the client's language."""

    msgid: str
    project: str

    def __new__(cls, msgid: str, project: str) -> "Unvalued":
        text = super().__new__(cls, msgid % {"project": project})
        text.msgid, text.project = msgid, project
        return text


@dataclass(frozen=True)
class Value:
    amount: Decimal | None
    rate: Decimal | None
    missing: Unvalued | None = None  # why a billable entry has no amount (advice naming what to set)


NOT_BILLABLE = Value(None, None)


def _rate(obj: Any, attr: str) -> Decimal | None:
    value = getattr(obj, attr, None) if obj is not None else None
    return Decimal(value) if value is not None else None


def tracker_rate(project: Any, task: Any = None, person: Any = None) -> tuple[Decimal | None, Unvalued | None]:
    """(rate, why not) for an entry with no rate of its own, by the project's billing method.

    The reason is written for the portal as much as for the agency: it names the project
    (already on the page) but no person, service or amount, and says what the agency can set.
    """
    method = getattr(project, "billing_method", None) if project is not None else None
    name = getattr(project, "name", None) or "this project"
    if method == "service_rate":
        rate = _rate(task, "default_hourly_rate")
        return (rate, None) if rate is not None else (None, Unvalued(NO_SERVICE_RATE, name))
    if method == "team_member_rate":
        rate = _rate(person, "default_hourly_rate")
        return (rate, None) if rate is not None else (None, Unvalued(NO_MEMBER_RATE, name))
    if method == "business_rate":
        return None, Unvalued(BUSINESS_RATE, name)
    rate = _rate(project, "hourly_rate")
    return (rate, None) if rate is not None else (None, Unvalued(NO_PROJECT_RATE, name))


def value_entry(
    entry: Any, project: Any = None, task: Any = None, person: Any = None, *, fallback_rate: Decimal | None = None
) -> Value:
    """The billable amount and rate of one time entry (a TimeEntry row or anything alike).

    `fallback_rate` is the agency's configured rate for the project, used only where the
    tracker gives none.
    """
    if not entry.is_billable:
        return NOT_BILLABLE
    own_amount, own_rate = entry.billable_amount, entry.billable_rate
    if own_amount is not None or own_rate is not None:
        if own_amount is None:
            own_amount = Decimal(int(entry.seconds)) * Decimal(own_rate) / 3600
        return Value(Decimal(own_amount), Decimal(own_rate) if own_rate is not None else None)
    rate, why = tracker_rate(project, task, person)
    if rate is None and fallback_rate is not None:
        rate, why = Decimal(fallback_rate), None
    if rate is None:
        return Value(None, None, why)
    return Value(Decimal(int(entry.seconds)) * rate / 3600, rate)
