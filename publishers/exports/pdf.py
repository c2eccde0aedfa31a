"""A readable PDF report: header, budget summary and aggregates first, then the timesheet.

Drawn at ReportLab canvas level rather than with platypus tables: for 20,000 entries the
canvas takes about two seconds where table layout engines take a minute. Every table row is
one line (long text is cut with an ellipsis; the CSV/XLSX keep it whole); the header row is
repeated on each page and the footer says "Page n of m" via a form filled in at the end.

DejaVu Sans (Debian package fonts-dejavu-core) covers Latin, Greek, Cyrillic and more; when
it is missing we fall back to Helvetica and replace characters it cannot draw with "?".
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from reportlab.lib.colors import HexColor
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from publishers.exports.model import Cell, Column, Report, Table

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
PAGE = landscape(A4)
MARGIN = 14 * mm
ROW_H = 5.2 * mm
SIZE = 8.5
INK = HexColor("#1d2330")
MUTED = HexColor("#5a6272")
RULE = HexColor("#d5dae2")
BAND = HexColor("#f3f5f8")


@dataclass(frozen=True)
class Fonts:
    regular: str
    bold: str
    unicode: bool


def _fonts() -> Fonts:
    for d in FONT_DIRS:
        reg, bold = d / "DejaVuSans.ttf", d / "DejaVuSans-Bold.ttf"
        if reg.exists() and bold.exists():
            if "DejaVuSans" not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont("DejaVuSans", str(reg)))
                pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(bold)))
            return Fonts("DejaVuSans", "DejaVuSans-Bold", True)
    return Fonts("Helvetica", "Helvetica-Bold", False)


class _Doc:
    """A cursor over pages: `need(h)` breaks the page when `h` points do not fit."""

    def __init__(self, report: Report, accent: str) -> None:
        self.r = report
        self.f = _fonts()
        self.accent = HexColor(accent)
        self.buf = io.BytesIO()
        # invariant: no wall-clock dates or random IDs, so unchanged data gives identical bytes
        # and the publisher uploads nothing
        self.c = Canvas(self.buf, pagesize=PAGE, pageCompression=1, invariant=1)
        self.c.setTitle(f"{report.client} - report - {report.as_of.date().isoformat()}")
        self.c.setAuthor(report.agency)
        self.c.setSubject(f"Data as of {report.as_of_text}")
        self.w, self.h = PAGE
        self.page = 0
        self._width_cache: dict[tuple[str, str], float] = {}
        self._new_page()

    def text(self, s: object) -> str:
        s = "" if s is None else str(s)
        if self.f.unicode:
            return s
        return s.encode("cp1252", "replace").decode("cp1252")

    def width(self, s: str, font: str) -> float:
        key = (s, font)
        w = self._width_cache.get(key)
        if w is None:
            w = pdfmetrics.stringWidth(s, font, SIZE)
            if len(self._width_cache) < 50_000:
                self._width_cache[key] = w
        return w

    def fit(self, s: str, font: str, room: float) -> str:
        if self.width(s, font) <= room:
            return s
        # cut by an estimate first, then trim: one or two measurements instead of one per char
        keep = max(1, int(len(s) * room / max(self.width(s, font), 1)))
        s = s[:keep]
        while s and self.width(s + "…", font) > room:
            s = s[:-1]
        return s + "…"

    def _new_page(self) -> None:
        if self.page:
            self.c.showPage()
        self.page += 1
        c = self.c
        top = self.h - MARGIN
        c.setFillColor(self.accent)
        c.setFont(self.f.bold, 11)
        c.drawString(MARGIN, top, self.text(self.r.agency))
        c.setFillColor(INK)
        c.setFont(self.f.regular, 9)
        c.drawRightString(self.w - MARGIN, top, self.text(f"{self.r.client} · data as of {self.r.as_of_text}"))
        c.setStrokeColor(RULE)
        c.line(MARGIN, top - 4 * mm, self.w - MARGIN, top - 4 * mm)
        c.setFillColor(MUTED)
        c.setFont(self.f.regular, 8)
        c.drawRightString(self.w - MARGIN - 9 * mm, MARGIN - 6 * mm, f"Page {self.page} of")
        c.doForm("page_count")
        self.y = top - 11 * mm

    def need(self, h: float) -> bool:
        """Break the page if `h` does not fit; True when a break happened."""
        if self.y - h < MARGIN:
            self._new_page()
            return True
        return False

    def heading(self, s: str, size: float = 14) -> None:
        # keep a heading with the table header and a few rows under it
        self.need(size + 3 * mm + 5 * ROW_H)
        self.c.setFillColor(INK)
        self.c.setFont(self.f.bold, size)
        self.c.drawString(MARGIN, self.y - size, self.text(s))
        self.y -= size + 3 * mm

    def line(self, s: str, *, muted: bool = False, bold: bool = False) -> None:
        self.need(ROW_H)
        self.c.setFillColor(MUTED if muted else INK)
        font = self.f.bold if bold else self.f.regular
        self.c.setFont(font, 9.5)
        self.c.drawString(MARGIN, self.y - 9.5, self.text(s))
        self.y -= ROW_H + 0.6 * mm

    def finish(self) -> bytes:
        self.c.showPage()
        self.c.beginForm("page_count")
        self.c.setFont(self.f.regular, 8)
        self.c.setFillColor(MUTED)
        self.c.drawString(self.w - MARGIN - 8 * mm, MARGIN - 6 * mm, str(self.page))
        self.c.endForm()
        self.c.save()
        return self.buf.getvalue()


def _fmt(v: Cell, col: Column) -> str:
    if v is None:
        return ""
    if col.kind == "hours":
        return f"{float(v):,.2f}"
    if col.kind == "money":
        return f"{Decimal(v):,.2f}"
    if col.kind == "percent":
        return f"{float(v):.0%}"
    if col.kind == "bool":
        return "yes" if v else "no"
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


_NUMERIC = ("hours", "money", "percent")


def _table(doc: _Doc, table: Table) -> None:
    cols = table.columns
    avail = doc.w - 2 * MARGIN
    total_w = sum(c.width for c in cols)
    widths = [avail * c.width / total_w for c in cols]
    xs = [MARGIN + sum(widths[:i]) for i in range(len(cols))]
    pad = 1.6 * mm
    c = doc.c
    reg, bold = doc.f.regular, doc.f.bold

    def titles() -> list[str]:
        cur = f" ({table.currency})" if table.currency else ""
        return [doc.text(col.title + (cur if col.kind == "money" else "")) for col in cols]

    def header() -> None:
        c.setFillColor(BAND)
        c.rect(MARGIN, doc.y - ROW_H, avail, ROW_H, stroke=0, fill=1)
        c.setFillColor(INK)
        c.setFont(bold, SIZE)
        for t, col, x, w in zip(titles(), cols, xs, widths):
            t = doc.fit(t, bold, w - 2 * pad)
            if col.kind in _NUMERIC:
                c.drawRightString(x + w - pad, doc.y - ROW_H + 1.7 * mm, t)
            else:
                c.drawString(x + pad, doc.y - ROW_H + 1.7 * mm, t)
        doc.y -= ROW_H

    # One text object per run of rows (instead of one per string) keeps 20k rows fast;
    # rules are collected and stroked as one path.
    state: dict[str, object] = {"t": None, "rules": None}

    def flush() -> None:
        if state["t"] is not None:
            c.drawText(state["t"])
            c.setStrokeColor(RULE)
            c.drawPath(state["rules"], stroke=1, fill=0)
            state["t"] = state["rules"] = None

    def row(values: Sequence[Cell], font: str, rule: bool) -> None:
        if doc.y - ROW_H < MARGIN:
            flush()
            doc.need(ROW_H)
            header()
        if state["t"] is None:
            t = c.beginText()
            t.setFillColor(INK)
            state["t"], state["rules"], state["font"] = t, c.beginPath(), None
        t = state["t"]
        if state["font"] != font:
            t.setFont(font, SIZE)
            state["font"] = font
        base = doc.y - ROW_H + 1.7 * mm
        for v, col, x, w in zip(values, cols, xs, widths):
            s = _fmt(v, col)
            if not s:
                continue
            if col.kind in _NUMERIC:  # a figure is never cut; it may borrow the gutter
                t.setTextOrigin(x + w - pad - doc.width(s, font), base)
            else:
                s = doc.fit(doc.text(s), font, w - 2 * pad)
                t.setTextOrigin(x + pad, base)
            t.textOut(s)
        doc.y -= ROW_H
        if rule:
            state["rules"].moveTo(MARGIN, doc.y)
            state["rules"].lineTo(MARGIN + avail, doc.y)

    doc.need(3 * ROW_H)
    header()
    for r in table.rows:
        row(r, reg, True)
    if table.totals is not None:
        row(table.totals, bold, False)
    flush()
    doc.y -= 6 * mm


def report_pdf(report: Report, *, accent: str = "#1f5fbf") -> bytes:
    doc = _Doc(report, accent)
    doc.heading(f"{report.client}: time and budget report", 16)
    doc.line(f"Prepared by {report.agency}. Data as of {report.as_of_text}.", muted=True)
    for label, value in report.facts:
        doc.line(f"{label}: {value}")
    doc.y -= 3 * mm
    doc.heading(report.summary.name, 12)
    _table(doc, report.summary)
    if report.invoices is not None:
        doc.heading(report.invoices.name, 12)
        _table(doc, report.invoices)
    doc.heading(report.timesheet.name, 12)
    _table(doc, report.timesheet)
    return doc.finish()
