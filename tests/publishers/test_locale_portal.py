"""A German client reads German, in German formats, in the page and every export; the figures
parsed back are the English page's figures."""

from __future__ import annotations

import dataclasses
import io
import re
from decimal import Decimal

import openpyxl
import pypdf

from publishers.render import render_portal
from tests.publishers.factory import link, make_view


def files(view) -> dict[str, bytes]:
    return {f.path: f.data for f in render_portal(view, link, "tok")}


def kpis(html: str) -> dict[str, str]:
    block = html[html.index('<dl class="kpis">'):]
    block = block[:block.index("</dl>")]
    return dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", block))


def number(text: str, group: str, decimal: str) -> Decimal:
    figure = re.search(r"[\d" + re.escape(group) + re.escape(decimal) + r"]+", text).group()
    return Decimal(figure.replace(group, "").replace(decimal, "."))


def test_german_page_reads_german_with_the_same_figures() -> None:
    en_view = make_view(n=60, rates=True)
    de_view = dataclasses.replace(en_view, locale="de")
    en, de = files(en_view)["index.html"].decode(), files(de_view)["index.html"].decode()
    assert '<html lang="de">' in de and '<html lang="en">' in en
    for german in ("Budget auf einen Blick", "Stundenzettel", "Abrechnung", "Stunden bisher", "Zum Inhalt springen"):
        assert german in de
    for english in ("Budget at a glance", "Skip to content", "Hours to date", "Not yet invoiced"):
        assert english not in de
    en_k, de_k = kpis(en), kpis(de)
    assert number(en_k["Hours to date"], ",", ".") == en_view.total_hours
    assert number(de_k["Stunden bisher"], ".", ",") == en_view.total_hours
    assert de_k["Stunden bisher"].endswith("Std.")
    assert number(de_k["Abrechenbare Stunden"], ".", ",") == number(en_k["Billable hours"], ",", ".")
    # dates in German: "17. März 2025" style, month names in German
    assert re.search(r"\d{1,2}\. (Jan|Feb|März|Apr|Mai|Juni|Juli|Aug|Sept|Okt|Nov|Dez)\.? \d{4}", de)
    # the timesheet script prints numbers as the page does
    assert '"num":{"group":".","decimal":",","minus":"\u2212"}' in de


def test_german_exports() -> None:
    view = dataclasses.replace(make_view(n=30, rates=True), locale="de")
    out = files(view)
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(out["report.pdf"])).pages)
    assert "Zeit- und Budgetbericht" in text and "Seite 1 von" in text
    total = f"{view.total_hours:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
    assert total in text  # 1.220,75 style
    wb = openpyxl.load_workbook(io.BytesIO(out["timesheet.xlsx"]), read_only=True)
    assert "Stundenzettel" in wb.sheetnames and "Übersicht" in wb.sheetnames
    csv_head = out["timesheet.csv"].decode("utf-8-sig").splitlines()[0]
    assert csv_head.startswith("Datum,Person,Projekt,Aufgabe")


def test_french_page() -> None:
    view = dataclasses.replace(make_view(n=10), locale="fr")
    html = files(view)["index.html"].decode()
    assert '<html lang="fr">' in html and "Le budget en un coup d’œil" in html and "Relevé des temps" in html
