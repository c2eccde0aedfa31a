"""CSV, XLSX and PDF exports read back with ordinary tools and checked against the view."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import openpyxl
import pypdf
import pytest

from publishers.exports.csv import defuse
from publishers.render import build_report, fmt_datetime, render_portal, timesheet_rows
from tests.conftest import skip_or_fail
from tests.publishers.factory import make_view, link


def files_of(view):  # type: ignore[no-untyped-def]
    return {f.path: f.data for f in render_portal(view, link, "tok")}


# --- CSV -------------------------------------------------------------------------------


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM so Excel reads accents right"
    text = data.decode("utf-8-sig")
    assert "\r\n" in text
    return list(csv.reader(io.StringIO(text, newline="")))


def test_csv_is_exactly_header_and_data_rows() -> None:
    """Machine imports read every row as data: no trailing "Data as of" line (issue 14)."""
    view = make_view(n=33)
    files = {f.path: f for f in render_portal(view, link, "tok")}
    text = files["timesheet.csv"].data.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == 33
    assert list(rows[0])[:4] == ["Date", "Person", "Project", "Task"] and "Hours" in rows[0]
    assert sum(Decimal(r["Hours"]) for r in rows) == view.total_hours
    assert [dt.date.fromisoformat(r["Date"]) for r in rows] == [r.spent_date for r in timesheet_rows(view)]
    assert all(r["Date"] for r in rows)  # no stamp row smuggled in at the end
    # the as-of time is in the file name a person saves instead
    as_of = view.as_of
    assert files["timesheet.csv"].download_name.endswith(f"{as_of:%Y-%m-%d %H%M}.csv")


def test_pdf_creation_date_is_the_data_as_of_time() -> None:
    """Not ReportLab's invariant 2000-01-01: the date the data is true of, stable across renders."""
    from pypdf import PdfReader

    view = make_view(n=5)
    pdf = PdfReader(io.BytesIO(files_of(view)["report.pdf"]))
    created = pdf.metadata.creation_date
    assert created.astimezone(dt.timezone.utc).replace(microsecond=0) == \
        view.as_of.astimezone(dt.timezone.utc).replace(microsecond=0, second=view.as_of.second)


def test_csv_keeps_unicode() -> None:
    view = make_view(n=6, people=("Zoë Łukasz", "李雷"), note="Café — naïve ✓")
    text = files_of(view)["timesheet.csv"].decode("utf-8-sig")
    assert "Zoë Łukasz" in text and "李雷" in text and "Café — naïve ✓" in text


@pytest.mark.parametrize("evil", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "=cmd|' /C calc'!A0"])
def test_csv_defuses_formulas(evil: str) -> None:
    view = make_view(n=4, note=evil, people=(evil,))
    rows = read_csv(files_of(view)["timesheet.csv"])
    for r in rows[1:]:
        assert r[1] == "'" + evil and r[4] == "'" + evil
    # numbers we format ourselves are never prefixed, even when negative-looking text is not
    assert defuse("12.50") == "12.50" and defuse("-1") == "'-1"


def test_weekly_csv_has_week_columns() -> None:
    view = make_view(n=50, weekly=True)
    rows = read_csv(files_of(view)["timesheet.csv"])
    assert rows[0][:2] == ["Week starting", "Week ending"]
    assert len(rows) - 1 == len(view.weekly_summaries)  # header + one row a week, nothing else


# --- XLSX ------------------------------------------------------------------------------


def load_xlsx(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data), data_only=True)


def test_xlsx_sheets_types_and_totals() -> None:
    view = make_view(n=45, rates=True)
    wb = load_xlsx(files_of(view)["timesheet.xlsx"])
    assert wb.sheetnames == ["Summary", "Timesheet", "Invoices"]
    ws = wb["Timesheet"]
    rows = list(ws.iter_rows(values_only=True))
    head = next(i for i, r in enumerate(rows) if r and r[0] == "Date")
    header = rows[head]
    body = rows[head + 1:head + 1 + len(view.timesheet)]
    totals = rows[head + 1 + len(view.timesheet)]
    hours_col = header.index("Hours")
    assert all(isinstance(r[0], dt.datetime) for r in body)
    assert [r[0].date() for r in body] == [e.spent_date for e in timesheet_rows(view)]
    assert all(isinstance(r[hours_col], (int, float)) and not isinstance(r[hours_col], bool) for r in body)
    assert totals[0] == "Total"
    assert round(Decimal(str(totals[hours_col])), 2) == view.total_hours
    assert round(sum(Decimal(str(r[hours_col])) for r in body), 2) == view.total_hours
    assert any("data as of" in str(c).lower() for r in rows[:3] for c in r if c)

    inv = list(wb["Invoices"].iter_rows(values_only=True))
    numbers = [r[0] for r in inv if r and r[0] and str(r[0]).startswith("INV-")]
    assert numbers == [i.number for i in view.invoices]


def test_xlsx_totals_are_the_views_figures_even_where_rounded_rows_add_up_differently() -> None:
    """Three 20-minute entries are 0.33 h each on every output and 1.00 h in total; money
    summed exactly then rounded once. A spreadsheet recalculating a SUM would say 0.99 h."""
    import dataclasses

    base = make_view(n=3, rates=True)
    cur = base.timesheet[0].amount.currency
    rows = tuple(dataclasses.replace(r, hours=Decimal("0.33"), is_billable=True, rate=None,
                                     amount=type(r.amount)(Decimal("10.01"), cur)) for r in base.timesheet)
    totals = (dataclasses.replace(base.totals[0], currency=cur, billable_hours=Decimal("1.00"), amount=Decimal("30.02")),)
    view = dataclasses.replace(base, timesheet=rows, total_hours=Decimal("1.00"), totals=totals)
    # formulas as written, not cached values: what Excel or LibreOffice shows after recalculating
    ws = openpyxl.load_workbook(io.BytesIO(files_of(view)["timesheet.xlsx"]))["Timesheet"]
    rows_read = list(ws.iter_rows(values_only=True))
    head = next(i for i, r in enumerate(rows_read) if r and r[0] == "Date")
    header, total_row = rows_read[head], rows_read[head + 1 + len(rows)]
    assert total_row[0] == "Total"
    assert total_row[header.index("Hours")] == 1.0
    assert total_row[header.index("Amount")] == 30.02


def test_xlsx_text_is_never_a_formula() -> None:
    view = make_view(n=3, note="=1+2", people=("@evil",))
    wb = openpyxl.load_workbook(io.BytesIO(files_of(view)["timesheet.xlsx"]))
    values = [c.value for r in wb["Timesheet"].iter_rows() for c in r]
    assert "=1+2" in values and "@evil" in values
    assert all(c.data_type != "f" for r in wb["Timesheet"].iter_rows() for c in r if c.value in ("=1+2",))


def test_xlsx_without_invoices_has_no_invoice_sheet() -> None:
    wb = load_xlsx(files_of(make_view(n=3, invoices=False))["timesheet.xlsx"])
    assert wb.sheetnames == ["Summary", "Timesheet"]


# --- PDF -------------------------------------------------------------------------------


def pdf_pages(data: bytes) -> list[str]:
    return [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data)).pages]


def test_pdf_reads_like_a_report() -> None:
    view = make_view(n=120, people=("Zoë Łukasz", "Grace Hopper"))
    pages = pdf_pages(files_of(view)["report.pdf"])
    assert len(pages) >= 3
    first = pages[0]
    assert view.client_name in first and view.agency.name in first
    assert fmt_datetime(view.as_of) in first
    # summary and aggregates come before the detail
    assert first.index("Summary") < first.index("Timesheet")
    for n, text in enumerate(pages, start=1):
        assert f"Page {n} of" in text.replace("\n", " ")
        assert text.rstrip().endswith(str(len(pages))) or f"of {len(pages)}" in text.replace("\n", " ")
    # each page after the first repeats the header row of the timesheet
    for text in pages[1:]:
        assert "Date" in text and "Hours" in text
    everything = "\n".join(pages)
    assert "Zoë Łukasz" in everything
    assert f"{view.total_hours:,.2f}" in pages[-1]
    # dates print as on the page ("20 Mar 2025"), in the client's language
    entries = sum(1 for line in everything.splitlines() if re.match(r"\d{1,2} [A-Z][a-z]{2} \d{4}\b", line))
    assert entries == len(view.timesheet)


def test_pdf_summary_matches_budget_figures() -> None:
    view = make_view(n=10)
    first = pdf_pages(files_of(view)["report.pdf"])[0]
    b = view.projects[0].budget
    for value in (b.allocated, b.used, b.left):
        assert f"{value:,.2f}" in first


def test_report_model_totals_equal_view() -> None:
    view = make_view(n=30, weekly=True)
    report = build_report(view)
    hours_at = [c.title for c in report.timesheet.columns].index("Hours")
    assert report.timesheet.totals[hours_at] == view.total_hours
    assert sum(r[hours_at] for r in report.timesheet.rows) == view.total_hours


def test_pdf_draws_names_in_any_script() -> None:
    from publishers.exports.pdf import FALLBACK_FONTS, _fonts

    if not _fonts().unicode:
        skip_or_fail("DejaVu Sans is missing (apt-get install fonts-dejavu-core)")
    if not any(p.exists() for p in FALLBACK_FONTS):
        skip_or_fail("no CJK fallback font (apt-get install fonts-droid-fallback)")
    view = make_view(n=8, people=("李雷", "Ζωή Παπαδοπούλου", "Łukasz Żółć"), note="数据迁移脚本 – review ✓",
                     rates=True)
    text = "\n".join(pdf_pages(files_of(view)["report.pdf"]))
    for s in ("李雷", "Ζωή Παπαδοπούλου", "Łukasz Żółć", "数据迁移脚本 – review ✓"):
        assert s in text
    assert "Currency" in text and "Curr…" not in text  # short columns are sized, not cut


def test_pdf_prints_every_script_in_the_data() -> None:
    """Cyrillic, Greek, CJK and Arabic notes all print; Arabic shaped and right to left
    (the text layer holds presentation forms in visual order; NFKC gives the letters back)."""
    import unicodedata

    from tests.conftest import skip_or_fail
    from publishers.exports.pdf import _fonts

    if _fonts().fallback is None:
        skip_or_fail("no CJK fallback font (apt-get install fonts-droid-fallback)")
    notes = ("Миграция данных", "Μετάβαση δεδομένων", "ترحيل البيانات", "数据迁移脚本")
    for note in notes:  # one at a time: a long description is cut to its column
        view = make_view(n=2, note=note, rates=True)
        text = unicodedata.normalize("NFKC", "\n".join(pdf_pages(files_of(view)["report.pdf"])))
        assert note in text, note
    assert "\ufe97" not in "\n".join(notes)  # the input was plain letters; shaping happened in the PDF
