"""Normalization rules shared by every connector, in one place (README: "Normalization").

- Durations become integer seconds: Harvest decimal hours x 3600 (half-up), FreshBooks
  seconds as given, Productive minutes x 60.
- Money becomes Decimal (never float) beside an ISO 4217 code; Productive's minor units
  are divided by the source's `money_scale`.
- Provider datetimes become aware UTC; a day a provider gives only as a timestamp is
  taken in the agency's time zone.
- A concept the provider lacks is None, never 0.
- Invoice states map onto draft | open | partial | paid | overdue | void (INVOICE_STATUS).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from bridge.errors import RecordError
from bridge.models import record_model

R = TypeVar("R")

# provider state -> normalized status, before amounts and due dates refine it
# (open + partly paid -> partial; open/partial past due -> overdue).
INVOICE_STATUS: dict[str, dict[str, str]] = {
    "harvest": {"draft": "draft", "open": "open", "paid": "paid", "closed": "void"},
    "freshbooks": {
        "draft": "draft", "created": "draft", "sent": "open", "viewed": "open", "disputed": "open",
        "outstanding": "open", "auto-paid": "paid", "paid": "paid", "partial": "partial",
        "overdue": "overdue", "retry": "open", "failed": "open", "deleted": "void", "void": "void",
        "draft_disputed": "draft", "resolved": "open", "declined": "void",
        # further v3_status values (FreshBooks invoice docs / Node SDK enum), and "unpaid" from
        # payment_status, the fallback when v3_status is absent
        "success": "paid", "autopaid": "paid", "pending": "open", "deposit-partial": "partial",
        "deposit-paid": "partial", "unpaid": "open",
    },
    "productive": {"draft": "draft", "finalized": "open", "paid": "paid", "partial": "partial", "void": "void"},
}


def hours_to_seconds(hours: Any, field: str = "hours") -> int:
    d = to_decimal(hours, field)
    if d is None:
        raise RecordError(f"{field} is missing", field=field)
    if d < 0:
        raise RecordError(f"{field} is negative ({d})", field=field)
    return int((d * 3600).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def to_decimal(value: Any, field: str = "amount", scale: int | None = None) -> Decimal | None:
    """A JSON number or numeric string -> Decimal; None stays None. `scale` divides minor units."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"{field} is a boolean, expected a number", field=field)
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise RecordError(f"{field} is {value!r}, expected a number", field=field) from None
    if not d.is_finite():
        raise RecordError(f"{field} is {value!r}, expected a finite number", field=field)
    if scale:
        d = d / Decimal(scale)
    return d


def to_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or value is None:
        raise RecordError(f"{field} is {value!r}, expected a whole number", field=field)
    try:
        f = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise RecordError(f"{field} is {value!r}, expected a whole number", field=field) from None
    if f != f.to_integral_value():
        raise RecordError(f"{field} is {value!r}, expected a whole number", field=field)
    return int(f)


def parse_date(value: Any, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise RecordError(f"{field} is {value!r}, expected a date like 2025-03-20", field=field) from None


def require_date(value: Any, field: str) -> dt.date:
    d = parse_date(value, field)
    if d is None:
        raise RecordError(f"{field} is missing", field=field)
    return d


def parse_datetime(value: Any, field: str, assume: ZoneInfo | dt.tzinfo = dt.timezone.utc) -> dt.datetime | None:
    """ISO-8601 or 'YYYY-MM-DD HH:MM:SS' -> aware UTC. Naive values are read in `assume`."""
    if value in (None, ""):
        return None
    text = str(value).strip().replace("Z", "+00:00")
    try:
        d = dt.datetime.fromisoformat(text)
    except ValueError:
        raise RecordError(f"{field} is {value!r}, expected a date-time", field=field) from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=assume)
    return d.astimezone(dt.timezone.utc)


def currency(value: Any, field: str = "currency") -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
        raise RecordError(f"{field} is {value!r}, expected a 3-letter ISO currency code", field=field)
    return value.upper()


def invoice_status(
    provider: str,
    state: str | None,
    *,
    amount: Decimal | None,
    due_amount: Decimal | None,
    due_date: dt.date | None,
    today: dt.date | None,
    received: bool = False,
) -> str:
    """Map a provider state onto the normalized set, refined by what is still due.

    The status follows the payments: a "draft" that already received money (recorded
    from Harvest; `received`, or less due than its total) is treated as sent.
    """
    base = INVOICE_STATUS[provider].get((state or "").lower())
    if base is None:
        raise RecordError(f"invoice state {state!r} is not a known {provider} state", field="state")
    if base == "draft" and (
        received or (amount is not None and due_amount is not None and 0 < amount and due_amount < amount)
    ):
        base = "open"
    if base in ("draft", "void", "paid"):
        return base
    if due_amount is not None and due_amount <= 0:
        return "paid"
    if base == "open" and amount is not None and due_amount is not None and 0 < due_amount < amount:
        base = "partial"
    if today is not None and due_date is not None and due_date < today:
        return "overdue"
    return base


def text(value: Any) -> str | None:
    """Strip and collapse an optional string; empty becomes None."""
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def ref_id(obj: Any) -> str | None:
    """`{"id": 5}` or `5` -> "5"; None stays None."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        obj = obj.get("id")
        if obj is None:
            return None
    return str(obj)


def validated(model: Any, data: dict[str, Any]) -> Any:
    """`model.model_validate(data)`, with a pydantic failure turned into a RecordError.

    sqlmodel table models skip validation in `__init__`, so normalizers build records
    through here; the error names the first offending field for the quarantine. The
    record is the table's plain pydantic twin (models.record_model), which validates the
    same fields some thirty times faster than building the table instance.
    """
    try:
        return record_model(model).model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or model.__name__
        raise RecordError(
            f"{where}: {first['msg']}", field=where, source_id=str(data.get("source_id") or "")
        ) from None


# --- record-level helpers every connector's normalizers share ---------------------------


def record_id(raw: Any) -> str:
    """The provider's id of a raw record, as a string; a record without one is refused."""
    if type(raw) is not dict and not isinstance(raw, Mapping):
        raise RecordError(f"record is {type(raw).__name__}, expected a JSON object", field="id")
    sid = ref_id(raw.get("id"))
    if sid in (None, "", "None"):
        raise RecordError("id is missing", field="id")
    return sid  # type: ignore[return-value]


def flag(raw: Mapping[str, Any], key: str, default: bool = False) -> bool:
    """A JSON boolean; anything else ("yes", 1) is an error rather than a guess."""
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RecordError(f"{key} is {value!r}, expected true or false", field=key)
    return value


def required_text(raw: Mapping[str, Any], key: str = "name") -> str:
    value = text(raw.get(key))
    if value is None:
        raise RecordError(f"{key} is missing", field=key)
    return value


def record(fn: Callable[..., R]) -> Callable[..., R]:
    """Decorate a normalizer: check the id first, and stamp it on any RecordError so the
    quarantine can name the record."""

    @functools.wraps(fn)
    def wrapper(raw: Mapping[str, Any], ctx: Any, **kw: Any) -> R:
        record_id(raw)
        try:
            return fn(raw, ctx, **kw)
        except RecordError as exc:
            if not exc.source_id and raw.get("id") is not None:
                exc.source_id = str(raw["id"])
            raise

    return wrapper
