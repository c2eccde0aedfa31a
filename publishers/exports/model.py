"""The neutral, already-redacted table model the exporters consume.

Values are typed (dates are `date`, hours and money are `Decimal`), so each
format can store them natively: real dates and numbers in XLSX, plain text in CSV.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Kind = Literal["date", "text", "hours", "money", "bool", "percent"]
Cell = dt.date | str | float | int | Decimal | bool | None


@dataclass(frozen=True)
class Column:
    title: str
    kind: Kind = "text"
    width: float = 1.0  # relative width in the PDF; XLSX derives its own


@dataclass(frozen=True)
class Table:
    name: str  # sheet / section title: "Timesheet"
    columns: Sequence[Column]
    rows: Sequence[Sequence[Cell]]
    totals: Sequence[Cell] | None = None  # aligned with columns; None cells stay blank
    currency: str | None = None  # for money columns


@dataclass(frozen=True)
class Report:
    agency: str
    client: str
    as_of: dt.datetime  # aware
    as_of_text: str  # "20 Mar 2025, 12:00 CET": how people read it
    summary: Table
    timesheet: Table
    invoices: Table | None = None
    facts: Sequence[tuple[str, str]] = ()  # short label/value lines under the header
    locale: str = "en"  # the client's language and formats (bridge/i18n.py)

