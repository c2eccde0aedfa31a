"""Timesheet as CSV.

UTF-8 *with* a byte-order mark: most clients double-click a CSV into Excel, which reads
BOM-less UTF-8 as the local ANSI code page and mangles names like "Zoë" or "Łukasz";
LibreOffice, Numbers, pandas (`utf-8-sig`) and csv tools all accept the BOM. Rows end in
CRLF (RFC 4180). The file holds the header row and the data rows, nothing else, so every
import tool reads it as it is; the data-as-of time travels in the download's file name.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

from bridge.i18n import lang
from publishers.exports.model import Cell, Column, Report

BOM = "\ufeff"
# A spreadsheet evaluates a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse(text: str) -> str:
    """Prefix a leading apostrophe so a spreadsheet shows the text instead of running it."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _cell(value: Cell, col: Column, yes_no: tuple[str, str] = ("yes", "no")) -> str:
    if value is None:
        return ""
    if col.kind == "bool":
        return yes_no[0] if value else yes_no[1]
    if col.kind == "hours":
        return f"{float(value):.2f}"
    if col.kind == "money":
        return f"{Decimal(value):.2f}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return defuse(str(value))


def timesheet_csv(report: Report) -> bytes:
    table = report.timesheet
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([defuse(c.title) for c in table.columns])
    cols = table.columns
    # figures stay machine-readable in every language (ISO dates, "." decimals); the
    # header and the yes/no words are in the client's language
    t = lang(report.locale)
    yes_no = (t.gettext("yes"), t.gettext("no"))
    w.writerows([_cell(v, c, yes_no) for v, c in zip(row, cols)] for row in table.rows)
    return (BOM + buf.getvalue()).encode("utf-8")
