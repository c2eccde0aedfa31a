"""A readable PDF report: header, budget summary and aggregates first, then the timesheet.

Drawn at ReportLab canvas level rather than with platypus tables: for 20,000 entries the
canvas takes about two seconds where table layout engines take a minute. Every table row is
one line (long text is cut with an ellipsis; the CSV/XLSX keep it whole); the header row is
repeated on each page and the footer says "Page n of m" via a form filled in at the end.

DejaVu Sans (Debian package fonts-dejavu-core) covers Latin, Greek, Cyrillic, Arabic,
Hebrew and more (right-to-left text is shaped and reordered before drawing);
characters it lacks (Chinese, Japanese, Korean) are drawn in Droid Sans Fallback (Debian
package fonts-droid-fallback) when that is installed. Without DejaVu we fall back to
Helvetica and replace characters it cannot draw with "?".
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from decimal import Decimal
from pathlib import Path

from reportlab.lib.colors import HexColor
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.lib.utils import TimeStamp
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from bridge.i18n import Lang, lang
from publishers.exports.model import Cell, Column, Report, Table

EN = lang("en")

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
# Fonts for what DejaVu lacks (Chinese, Japanese, Korean), first found wins. TrueType
# outlines only: ReportLab cannot embed the CFF-flavoured .otf/.ttc of Noto CJK.
FALLBACK_FONTS = (
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),  # fonts-droid-fallback
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # fonts-wqy-microhei
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),  # fonts-arphic-uming
)
PAGE = landscape(A4)
MARGIN = 14 * mm
ROW_H = 5.2 * mm
MAX_NAME = 48 * mm  # a person, project or task column never grows wider than this
MIN_FLEX = 45 * mm  # the description keeps at least this
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
    cover: frozenset[int] = frozenset()  # code points the main font draws
    fallback: str | None = None  # font for the rest, if any


_FONTS: Fonts | None = None
_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")


def visual(s: str) -> str:
    """Text as it must be drawn: ReportLab lays glyphs left to right, unjoined, so Arabic
    and Hebrew are shaped (arabic-reshaper) and put in visual order (python-bidi) first.
    Other text passes through untouched, and fast."""
    if not _RTL.search(s):
        return s
    from arabic_reshaper import reshape
    from bidi import get_display

    return get_display(reshape(s))


def _stamp(at: dt.datetime) -> TimeStamp:
    """ReportLab's document time stamp set to `at` (UTC) instead of its invariant 2000-01-01."""
    stamp = TimeStamp(invariant=1)
    t = at.timestamp()
    stamp.t, stamp.lt = t, time.gmtime(t)
    stamp.YMDhms = tuple(stamp.lt)[:6]
    return stamp


def _fonts() -> Fonts:
    global _FONTS
    if _FONTS is not None:
        return _FONTS
    _FONTS = Fonts("Helvetica", "Helvetica-Bold", False)
    for d in FONT_DIRS:
        reg, bold = d / "DejaVuSans.ttf", d / "DejaVuSans-Bold.ttf"
        if reg.exists() and bold.exists():
            regular = TTFont("DejaVuSans", str(reg))
            pdfmetrics.registerFont(regular)
            pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(bold)))
            fallback = None
            for path in FALLBACK_FONTS:
                if path.exists():
                    pdfmetrics.registerFont(TTFont("FallbackSans", str(path)))
                    fallback = "FallbackSans"
                    break
            _FONTS = Fonts("DejaVuSans", "DejaVuSans-Bold", True, frozenset(regular.face.charToGlyph), fallback)
            break
    return _FONTS


class _Doc:
    """A cursor over pages: `need(h)` breaks the page when `h` points do not fit."""

    def __init__(self, report: Report, accent: str) -> None:
        self.r = report
        self.f = _fonts()
        self.accent = HexColor(accent)
        self.buf = io.BytesIO()
        # invariant: no wall-clock dates or random IDs, so unchanged data gives identical bytes
        # and the publisher uploads nothing; the creation date is the data's as-of time, which
        # is both true and stable (ReportLab's invariant mode would say 1 Jan 2000)
        self.c = Canvas(self.buf, pagesize=PAGE, pageCompression=1, invariant=1)
        self.c._doc._timeStamp = _stamp(report.as_of)
        self.c.setTitle(f"{report.client} - report - {report.as_of.date().isoformat()}")
        self.c.setAuthor(report.agency)
        self.t = lang(report.locale)
        self.c.setSubject(self.t.gettext("Data as of %(when)s", when=report.as_of_text))
        self.w, self.h = PAGE
        self.page = 0
        self._width_cache: dict[tuple[str, str], float] = {}
        self._new_page()

    def text(self, s: object) -> str:
        s = "" if s is None else str(s)
        if self.f.unicode:
            return visual(s)
        return s.encode("cp1252", "replace").decode("cp1252")

    def runs(self, s: str, font: str) -> list[tuple[str, str]]:
        """`s` cut into (text, font) runs: the main font where it has the glyph."""
        f = self.f
        if f.fallback is None or s.isascii():
            return [(s, font)]
        cover = f.cover
        if all(ord(ch) in cover for ch in s):
            return [(s, font)]
        out: list[tuple[str, str]] = []
        for ch in s:
            use = font if ord(ch) in cover or ch.isspace() else f.fallback
            if out and out[-1][1] == use:
                out[-1] = (out[-1][0] + ch, use)
            else:
                out.append((ch, use))
        return out

    def width(self, s: str, font: str, size: float = SIZE) -> float:
        key = (s, font)
        w = self._width_cache.get(key) if size == SIZE else None
        if w is None:
            w = sum(pdfmetrics.stringWidth(run, rf, size) for run, rf in self.runs(s, font))
            if size == SIZE and len(self._width_cache) < 50_000:
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

    def out(self, t: Any, s: str, font: str, size: float = SIZE) -> None:
        """Write `s` into text object `t` (whose current font is `font`), switching fonts per run."""
        runs = self.runs(s, font)
        if len(runs) == 1 and runs[0][1] == font:
            t.textOut(s)
            return
        for run, rf in runs:
            t.setFont(rf, size)
            t.textOut(run)
        t.setFont(font, size)

    def draw(self, x: float, y: float, s: str, font: str, size: float, *, right: bool = False) -> None:
        s = self.text(s)
        if right:
            x -= self.width(s, font, size)
        t = self.c.beginText(x, y)
        t.setFont(font, size)
        self.out(t, s, font, size)
        self.c.drawText(t)

    def _new_page(self) -> None:
        if self.page:
            self.c.showPage()
        self.page += 1
        c = self.c
        top = self.h - MARGIN
        c.setFillColor(self.accent)
        self.draw(MARGIN, top, self.r.agency, self.f.bold, 11)
        c.setFillColor(INK)
        self.draw(self.w - MARGIN, top, f"{self.r.client} · " + self.t.gettext("data as of %(when)s", when=self.r.as_of_text), self.f.regular, 9, right=True)
        c.setStrokeColor(RULE)
        c.line(MARGIN, top - 4 * mm, self.w - MARGIN, top - 4 * mm)
        c.setFillColor(MUTED)
        c.setFont(self.f.regular, 8)
        # "Page 3 of" and the count drawn after it once the last page is known
        c.drawRightString(self.w - MARGIN - 9 * mm, MARGIN - 6 * mm, self.t.gettext("Page %(page)s of", page=self.page))
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
        self.draw(MARGIN, self.y - size, s, self.f.bold, size)
        self.y -= size + 3 * mm

    def line(self, s: str, *, muted: bool = False, bold: bool = False) -> None:
        self.need(ROW_H)
        self.c.setFillColor(MUTED if muted else INK)
        self.draw(MARGIN, self.y - 9.5, s, self.f.bold if bold else self.f.regular, 9.5)
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


def _fmt(v: Cell, col: Column, t: Lang = EN) -> str:
    """A cell as the page prints it, in the report's language and formats."""
    if v is None:
        return ""
    if col.kind in ("hours", "money"):
        return t.number(v)  # type: ignore[arg-type]
    if col.kind == "percent":
        return t.percent(Decimal(str(v)) * 100)  # as the page prints budget use: "87.5%"
    if col.kind == "bool":
        return t.gettext("yes") if v else t.gettext("no")
    if isinstance(v, dt.date):
        return t.date(v)
    return str(v)


_NUMERIC = ("hours", "money", "percent")


def _widths(doc: _Doc, table: Table, avail: float, pad: float) -> list[float]:
    """Column widths from the content: dates, figures and short codes get what they need
    (they are never cut); names get up to MAX_NAME; the widest-weighted text column (the
    description) takes what is left, and long text in it is cut with an ellipsis."""
    cols = table.columns
    sample = list(table.rows[:400]) + ([table.totals] if table.totals is not None else [])
    need: list[float] = []
    for i, col in enumerate(cols):
        values = [doc.text(_fmt(r[i], col, doc.t)) for r in sample]
        sizes = sorted(doc.width(v, doc.f.bold if r is table.totals else doc.f.regular)
                       for v, r in zip(values, sample) if v)
        title = doc.width(doc.text(col.title), doc.f.bold)
        if col.kind == "text" and sizes:
            content = sizes[math.ceil(len(sizes) * 0.95) - 1]  # a few outliers may be cut
        else:
            content = sizes[-1] if sizes else 0.0
        need.append(max(title, content) + 2 * pad + 1)
    text = [i for i, c in enumerate(cols) if c.kind == "text"]
    flex = max(text, key=lambda i: cols[i].width) if text else None
    widths = [need[i] if cols[i].kind != "text" else min(need[i], MAX_NAME) for i in range(len(cols))]
    if flex is None:
        return [w * avail / sum(widths) for w in widths]
    widths[flex] = 0.0
    rest = avail - sum(widths)
    if rest >= MIN_FLEX:
        widths[flex] = rest
        return widths
    # too many columns: shrink the names (never the figures) so the description keeps MIN_FLEX
    names = [i for i in text if i != flex]
    short = MIN_FLEX - rest
    total_names = sum(widths[i] for i in names)
    if names and total_names > short:
        for i in names:
            widths[i] -= short * widths[i] / total_names
        widths[flex] = MIN_FLEX
        return widths
    total = sum(c.width for c in cols)
    return [avail * c.width / total for c in cols]


def _table(doc: _Doc, table: Table) -> None:
    cols = table.columns
    avail = doc.w - 2 * MARGIN
    pad = 1.6 * mm
    widths = _widths(doc, table, avail, pad)
    xs = [MARGIN + sum(widths[:i]) for i in range(len(cols))]
    c = doc.c
    reg, bold = doc.f.regular, doc.f.bold

    def titles() -> list[str]:
        cur = f" ({table.currency})" if table.currency else ""
        return [doc.text(col.title + (cur if col.kind == "money" else "")) for col in cols]

    def header() -> None:
        c.setFillColor(BAND)
        c.rect(MARGIN, doc.y - ROW_H, avail, ROW_H, stroke=0, fill=1)
        c.setFillColor(INK)
        for t, col, x, w in zip(titles(), cols, xs, widths):
            t = doc.fit(t, bold, w - 2 * pad)
            base = doc.y - ROW_H + 1.7 * mm
            if col.kind in _NUMERIC:
                doc.draw(x + w - pad, base, t, bold, SIZE, right=True)
            else:
                doc.draw(x + pad, base, t, bold, SIZE)
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
            s = _fmt(v, col, doc.t)
            if not s:
                continue
            if col.kind in _NUMERIC:  # a figure is never cut; it may borrow the gutter
                t.setTextOrigin(x + w - pad - doc.width(s, font), base)
            elif col.kind == "text":
                s = doc.fit(doc.text(s), font, w - 2 * pad)
                t.setTextOrigin(x + pad, base)
            else:
                t.setTextOrigin(x + pad, base)
            doc.out(t, s, font)
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
    doc.heading(doc.t.gettext("%(client)s: time and budget report", client=report.client), 16)
    doc.line(doc.t.gettext("Prepared by %(agency)s. Data as of %(when)s.", agency=report.agency, when=report.as_of_text),
             muted=True)
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
