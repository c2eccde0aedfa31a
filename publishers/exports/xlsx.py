"""Summary, Timesheet and Invoices as an XLSX workbook (xlsxwriter).

constant_memory mode streams rows to disk row by row, so a 20,000-entry timesheet costs
little memory; it requires writing each sheet strictly top to bottom, which is how
`_write_table` works. Dates are real dates, hours and money are numbers with a display
format, and the totals row holds the view's own figures as numbers (bridge/figures.py
sums exact values and rounds once; a SUM over the rounded rows could differ by cents).
"""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import xlsxwriter

from bridge.i18n import lang
from publishers.exports.model import Report, Table

_WIDTHS = {"date": 12, "hours": 10, "money": 14, "bool": 10, "percent": 10, "text": 24}


def workbook_xlsx(report: Report) -> bytes:
    out = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        wb = xlsxwriter.Workbook(
            out,
            {"constant_memory": True, "tmpdir": tmp, "strings_to_formulas": False, "strings_to_urls": False},
        )
        # a fixed creation date (the data's as-of time) keeps unchanged data byte-identical
        created = report.as_of.astimezone(dt.timezone.utc).replace(tzinfo=None)
        wb.set_properties({"title": f"{report.client} - {report.agency}", "comments": lang(report.locale).gettext("Data as of %(when)s", when=report.as_of_text),
                           "created": created})
        fmt = _formats(wb)
        for table in (report.summary, report.timesheet, report.invoices):
            if table is not None:
                _write_table(wb, fmt, report, table)
        wb.close()
    return out.getvalue()


def _formats(wb: Any) -> dict[str, Any]:
    return {
        "title": wb.add_format({"bold": True, "font_size": 14}),
        "muted": wb.add_format({"font_color": "#555555"}),
        "head": wb.add_format({"bold": True, "bottom": 1, "bg_color": "#EEF1F5", "text_wrap": True}),
        "date": wb.add_format({"num_format": "yyyy-mm-dd"}),
        "hours": wb.add_format({"num_format": "#,##0.00"}),
        "money": wb.add_format({"num_format": "#,##0.00"}),
        "percent": wb.add_format({"num_format": "0.0%"}),  # as the page: "87.5%"
        "text": wb.add_format({}),
        "bool": wb.add_format({}),
        "total": wb.add_format({"bold": True, "top": 1}),
        "total_num": wb.add_format({"bold": True, "top": 1, "num_format": "#,##0.00"}),
    }


def _write_table(wb: Any, fmt: dict[str, Any], report: Report, table: Table) -> None:
    ws = wb.add_worksheet(table.name[:31])
    cols = table.columns
    for i, c in enumerate(cols):
        ws.set_column(i, i, _WIDTHS.get(c.kind, 16) * (1.6 if c.width >= 2 else 1))
    ws.write_string(0, 0, f"{report.client} - {table.name}", fmt["title"])
    ws.write_string(1, 0, f"{report.agency} · " + lang(report.locale).gettext("data as of %(when)s", when=report.as_of_text),
                    fmt["muted"])
    head = 3
    for i, c in enumerate(cols):
        title = c.title + (f" ({table.currency})" if c.kind == "money" and table.currency else "")
        ws.write_string(head, i, title, fmt["head"])
    ws.freeze_panes(head + 1, 0)
    writers = [_writer(ws, fmt, c.kind, report.locale) for c in cols]
    r = head
    for row in table.rows:
        r += 1
        for i, v in enumerate(row):
            if v is not None:
                writers[i](r, i, v)
    if table.totals is not None:
        r += 1
        for i, (v, c) in enumerate(zip(table.totals, cols)):
            if v is None:
                ws.write_blank(r, i, None, fmt["total"])
            elif isinstance(v, (int, float, Decimal)) and not isinstance(v, bool):
                # The view's figure, not =SUM(): the rows are rounded for display, and a
                # spreadsheet recalculating their sum would show 0.99 h for three 20-minute
                # entries the page, the PDF and the tracker total as 1.00 h.
                ws.write_number(r, i, float(v), fmt["total_num"])
            else:
                ws.write_string(r, i, str(v), fmt["total"])
    if table.rows:
        ws.autofilter(head, 0, head + len(table.rows), len(cols) - 1)


def _writer(ws: Any, fmt: dict[str, Any], kind: str, locale: str = "en") -> Callable[[int, int, Any], None]:
    """One cell writer per column, chosen once instead of per cell (20k rows add up)."""
    if kind == "date":
        f = fmt["date"]
        return lambda r, c, v: ws.write_datetime(r, c, dt.datetime(v.year, v.month, v.day), f)
    if kind in ("hours", "money", "percent"):
        f = fmt[kind]
        return lambda r, c, v: ws.write_number(r, c, float(v), f)
    if kind == "bool":
        yes, no = lang(locale).gettext("yes"), lang(locale).gettext("no")
        return lambda r, c, v: ws.write_string(r, c, yes if v else no)
    # write_string never interprets "=..." as a formula, so notes cannot inject one
    return lambda r, c, v: ws.write_string(r, c, str(v))
