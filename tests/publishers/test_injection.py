"""Hostile text in every field a client or a team member can type stays inert text."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from bridge.views import GlossaryEntry, HoursLine
from publishers.render import render_portal
from tests.publishers.factory import make_view, link
from tests.publishers.test_render import island, parse

EVIL = [
    "<script>alert(1)</script>",
    "</script><script>alert(2)</script>",
    '"><img src=x onerror=alert(3)>',
    "{{ 7*7 }}{% raw %}",
    "\u202egnp.exe",
    "<!--<script>",
    "' onmouseover='alert(4)",
    "&lt;b&gt;&amp;",
    "\u2028\u2029line",
]


def hostile_view(evil: str):  # type: ignore[no-untyped-def]
    view = make_view(
        n=12,
        client_name=f"Client {evil}",
        agency_name=f"Agency {evil}",
        people=(f"Person {evil}", "Plain Person"),
        note=f"Note {evil}",
        notes=f"Notes {evil}",
        glossary=(GlossaryEntry(f"Term {evil}", f"Explained {evil}"),),
    )
    projects = tuple(
        dataclasses.replace(p, name=f"Project {evil}", code=f"C{evil}",
                            hours_by_task=(HoursLine(f"Task {evil}", p.hours_to_date),))
        for p in view.projects
    )
    rows = tuple(dataclasses.replace(r, project=f"Project {evil}", task=f"Task {evil}") for r in view.timesheet)
    agency = dataclasses.replace(view.agency, contact=f"Contact {evil}")
    change = dataclasses.replace(view.change_note, text=f"Changed {evil}")
    return dataclasses.replace(view, projects=projects, timesheet=rows, agency=agency, change_note=change,
                               week_label=f"Week {evil}")


@pytest.mark.parametrize("evil", EVIL)
def test_html_has_no_live_markup_from_data(evil: str) -> None:
    view = hostile_view(evil)
    html = next(f for f in render_portal(view, link, "tok") if f.path == "index.html").data.decode()
    tags = parse(html)
    # exactly our two scripts: the JSON island and the filter script
    assert [t for t, _ in tags.tags if t == "script"] == ["script", "script"]
    assert html.count("</script>") == 2
    assert [t for t, _ in tags.tags if t == "img"] == ["img"]  # the logo only
    for _, attrs in tags.tags:
        assert not any(k.startswith("on") for k in attrs), attrs
    # jinja does not evaluate data as a template
    if "{{ 7*7 }}" in evil:
        assert "{{ 7*7 }}{% raw %}" in html and "Client 49" not in html
    # and every value still reads as the text it was
    text = html_text(html)
    # (the change note is worded by the page from its counts, in the client's language)
    for shown in (f"Client {evil}", f"Person {evil}", f"Note {evil}", f"Notes {evil}", f"Term {evil}",
                  f"Project {evil}"):
        assert shown.replace("\u2028", "").replace("\u2029", "") in text.replace("\u2028", "").replace("\u2029", "")


@pytest.mark.parametrize("evil", EVIL)
def test_json_island_cannot_break_out(evil: str) -> None:
    view = hostile_view(evil)
    html = next(f for f in render_portal(view, link, "tok") if f.path == "index.html").data.decode()
    raw = re.search(r'<script type="application/json" id="timesheet-data">(.*?)</script>', html, re.S).group(1)
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in raw
    data = island(html)
    assert f"Person {evil}" in data["people"] and f"Task {evil}" in data["tasks"]
    assert json.dumps(data)  # round-trips


def test_bidi_overrides_are_isolated() -> None:
    html = next(f for f in render_portal(hostile_view("\u202egnp.exe"), link, "tok") if f.path == "index.html").data
    page = html.decode()
    page = page[:page.index('<script type="application/json"')]  # the island is data, not text
    assert page.count("\u202e") >= 8
    # every override sits inside a first-strong isolate, which its closing PDI ends
    for m in re.finditer("\u202e", page):
        before, after = page[:m.start()], page[m.end():]
        assert before.rfind("\u2068") > before.rfind("\u2069")
        assert "\u2069" in after[:200]


def html_text(html: str) -> str:
    """The page's text as a browser shows it (entities decoded, tags dropped)."""
    from html.parser import HTMLParser

    out: list[str] = []

    class T(HTMLParser):
        def handle_data(self, data: str) -> None:
            out.append(data)

    T(convert_charrefs=True).feed(html)
    return "".join(out)
