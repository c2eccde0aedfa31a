"""render_portal on hand-built PortalViews: sections, figures, modes, links, self-containment."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import re
import time
from decimal import Decimal
from html.parser import HTMLParser

import pytest

from publishers import render
from publishers.render import accessible_accent, contrast, json_island, render_portal
from tests.publishers import factory
from tests.publishers.factory import LOGO, make_view, link

SECTION_ORDER = ["attention", "glance", "this-week", "burn", "breakdown", "timesheet-section", "billing", "notes", "updated"]


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of <script> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def parse(html: str) -> Tags:
    p = Tags()
    p.feed(html)
    return p


def index_html(view, token: str = "tok123") -> str:  # type: ignore[no-untyped-def]
    files = {f.path: f for f in render_portal(view, link, token)}
    return files["index.html"].data.decode("utf-8")


def island(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="timesheet-data">(.*?)</script>', html, re.S)
    assert m, "no JSON island"
    return json.loads(m.group(1))


def test_files_have_fixed_paths_types_and_human_download_names() -> None:
    view = make_view(client_name="Acme Robotics")
    files = render_portal(view, link, "tok123")
    assert [f.path for f in files] == ["timesheet.csv", "timesheet.xlsx", "report.pdf", "index.html"]
    for f in files:
        assert "Acme" not in f.path and "tok123" not in f.path
    names = {f.path: f.download_name for f in files}
    day = f"{view.as_of:%Y-%m-%d %H%M}"  # the data-as-of time, by hand: date and hhmm
    assert names["timesheet.csv"] == f"Acme Robotics - timesheet - {day}.csv"
    assert names["report.pdf"] == f"Acme Robotics - report - {day}.pdf"
    assert {f.path: f.content_type.split(";")[0] for f in files}["index.html"] == "text/html"


def test_download_name_drops_path_and_control_characters() -> None:
    view = make_view(client_name='Evil/..\\Name:"x"\u202e\r\n')
    name = render.download_name(view, "timesheet", "csv")
    assert not set('/\\:"\r\n\u202e') & set(name)
    assert name.startswith("Evil")


def test_sections_in_the_issue_order() -> None:
    html = index_html(make_view())
    positions = [html.index(f'id="{s}"') for s in SECTION_ORDER]
    assert positions == sorted(positions)


def test_glance_leads_with_what_is_left() -> None:
    view = make_view()
    html = index_html(view)
    glance = html[html.index('id="glance"'):html.index('id="this-week"')]
    # budgets 200 h with 69.5 h used, and 40 h a month with 43.25 h used (factory.make_view)
    assert "130.50 h <small>left</small>" in glance
    assert "3.25 h <small>over budget</small>" in glance
    assert "69.50 h used of 200.00 h (34.8%)" in glance
    assert "resets on " + render.fmt_date(view.projects[1].budget.resets_on) in glance
    assert f"<dd>{view.total_hours:,.2f} h</dd>" in glance


def test_attention_comes_first_and_links_to_the_details() -> None:
    view = make_view()
    html = index_html(view)
    attention = html[html.index('id="attention"'):html.index('id="glance"')]
    # the over-budget retainer first, then the relaunch (its projection runs out before
    # the end date), then the change note (one entry removed)
    hrefs = re.findall(r'<li class="alert( bad)?"><a href="#([\w-]+)">', attention)
    assert hrefs == [(" bad", "project-2"), ("", "project-1"), ("", "changes")]
    assert "Support retainer is over budget</strong> by 3.25 h (108.1% used this month)" in attention
    assert "2 May 2025 is the last day with budget left, before the project ends" in attention
    for _, target in hrefs:
        assert f'id="{target}"' in html
    assert attention.index("Support retainer") < attention.index("Website relaunch")


def test_overdue_and_due_soon_invoices_head_the_attention_list() -> None:
    view = make_view(change=False)
    overdue = factory.InvoiceView("INV-0999", dt.date(2025, 1, 2), dt.date(2025, 2, 1), None, Decimal("900.00"),
                                  Decimal("400.00"), Decimal("500.00"), "EUR", "overdue")
    soon = factory.InvoiceView("INV-1050", dt.date(2025, 3, 10), dt.date(2025, 3, 21), None, Decimal("1200.00"),
                               Decimal("1200.00"), Decimal("0"), "EUR", "open")
    later = factory.InvoiceView("INV-1051", dt.date(2025, 3, 12), dt.date(2025, 4, 30), None, Decimal("50.00"),
                                Decimal("50.00"), Decimal("0"), "EUR", "open")
    view = dataclasses.replace(view, invoices=(overdue, soon, later) + view.invoices)
    html = index_html(view)
    attention = html[html.index('id="attention"'):html.index('id="glance"')]
    targets = re.findall(r'<a href="#([\w-]+)">', attention)
    assert targets == ["invoice-1", "project-2", "project-1", "invoice-2"]
    assert "Invoice INV-0999 is overdue:</strong> €400.00 was due on 1 Feb 2025." in attention
    assert "Invoice INV-1050 is due tomorrow:</strong> €1,200.00 outstanding." in attention
    assert "INV-1051" not in attention and "INV-1041" not in attention  # due in 41 and 10 days
    assert 'id="invoice-1"' in html and 'id="invoice-2"' in html
    # the invoices table lists the most recently issued first
    numbers = re.findall(r'<tr id="invoice-\d+"><th scope="row">([\w-]+)</th>', html)
    assert numbers == ["INV-1051", "INV-1050", "INV-1041", "INV-1032", "INV-0999"]


def test_a_retainer_that_overran_last_month_needs_attention() -> None:
    view = make_view(change=False)
    retainer = view.projects[1]
    calm = factory.budget("40", "12", period="monthly")
    calm = dataclasses.replace(calm, last_period_used=Decimal("46.50"), last_period_allocated=Decimal("40.00"))
    view = dataclasses.replace(view, projects=(dataclasses.replace(retainer, budget=calm),))
    attention = index_html(view).split('id="attention"')[1].split('id="glance"')[0]
    assert "Support retainer went over last month’s budget:</strong> 46.50 h used of 40.00 h." in attention


def test_nothing_needs_attention_is_one_line() -> None:
    view = make_view(change=False, invoices=False)
    view = dataclasses.replace(view, projects=(dataclasses.replace(
        view.projects[0], budget=dataclasses.replace(factory.budget("200", "20"), runs_out_before_end=False, at_risk=False)),))
    attention = index_html(view).split('id="attention"')[1].split('id="glance"')[0]
    assert "<li" not in attention
    assert '<p class="all-clear">Nothing needs your attention right now.</p>' in attention


def test_this_week_lists_people_with_hours() -> None:
    view = make_view()
    html = index_html(view)
    week = html[html.index('id="this-week"'):html.index('id="burn"')]
    assert view.this_week_by_person, "factory should put time in this week"
    for line in view.this_week_by_person:
        assert f"<th scope=\"row\">{line.label}</th><td class=\"n\">{line.hours:,.2f}</td>" in week
    for line in view.hours_to_date_by_person:
        assert f"<td class=\"n\">{line.hours:,.2f}</td>" in week
    assert f"{sum(h.hours for h in view.hours_to_date_by_person):,.2f}" in week


def test_burn_chart_is_an_accessible_svg_with_a_data_table() -> None:
    view = make_view()
    html = index_html(view)
    burn = html[html.index('id="burn"'):html.index('id="breakdown"')]
    tags = parse(burn).tags
    svgs = [a for t, a in tags if t == "svg" and "chart" in (a.get("class") or "")]
    assert len(svgs) == sum(1 for p in view.projects if p.burn_chart.cumulative)
    for a in svgs:
        assert a["role"] == "img"
        for ref in (a["aria-labelledby"] or "").split():
            assert f'id="{ref}"' in burn
    assert view.projects[0].budget.explanation in burn
    assert "Weekly burn for" in burn
    last = view.projects[0].burn_chart.cumulative[-1]
    assert f"{last.value:,.2f}" in burn


def test_tables_are_labelled() -> None:
    html = index_html(make_view())
    p = parse(html)
    n_tables = sum(1 for t, _ in p.tags if t == "table")
    assert n_tables >= 5
    assert html.count("<caption") == n_tables
    for t, a in p.tags:
        if t == "th":
            assert a.get("scope") in ("col", "row", "rowgroup"), a
    assert parse(html).tags[0] == ("html", {"lang": "en"})
    assert sum(1 for t, _ in p.tags if t == "h1") == 1


def test_timesheet_rows_and_json_island_agree() -> None:
    view = make_view(n=57)
    html = index_html(view)
    data = island(html)
    assert data["mode"] == "entries"
    assert len(data["rows"]) == len(view.timesheet) == 57
    assert sum(r[4] for r in data["rows"]) == int(view.total_hours * 3600)  # seconds
    ordered = render.timesheet_rows(view)
    assert [r.spent_date for r in ordered] == sorted((r.spent_date for r in ordered), reverse=True)
    for entry, row in zip(ordered, data["rows"]):
        assert data["people"][row[1]] == entry.person and data["projects"][row[2]] == entry.project
        assert data["tasks"][row[3]] == (entry.task or "") and row[4] == int(entry.hours * 3600)
        assert row[5] == int(entry.is_billable)
        assert data["dates"][row[0]] == render.fmt_date(entry.spent_date)
        assert data["notes"][row[7]] == entry.description and row[10] == int(entry.is_running)
        week = entry.spent_date - dt.timedelta(days=entry.spent_date.weekday())  # weeks start on Monday here
        assert data["weeks"][row[6]] == render.fmt_date(week)


def test_the_page_lists_the_most_recent_weeks_and_links_the_whole_history() -> None:
    view = make_view(n=300)
    html = index_html(view)
    body = html[html.index('<table id="timesheet"'):html.index("</table>", html.index('<table id="timesheet"'))]
    # PAGE_ROWS (40) entries, newest first, under week headings; the rest only in the island and exports
    assert body.count('<tr><td class="dt">') == 40 == render.PAGE_ROWS
    assert 0 < body.index("Week of 17 Mar 2025") < body.index("Week of 10 Mar 2025")
    listed = re.findall(r'<tr><td class="dt">(\d+ \w+ \d+)', body)
    newest = [render.fmt_date(r.spent_date) for r in render.timesheet_rows(view)[:40]]
    assert listed == newest
    this_week = sum((r.hours for r in view.timesheet if r.spent_date >= factory.WEEK_START), Decimal(0))
    assert f'Week of 17 Mar 2025 <span class="wk-h">{this_week:,.2f}\u00a0h</span>' in body
    history = html[html.index('id="ts-history"'):]
    assert "The whole history is in the exports" in history
    assert 'href="https://files.example.test/tok123/timesheet.csv?sig=abc"' in history[:600]
    assert len(island(html)["rows"]) == 300
    small = index_html(make_view(n=20))
    assert 'id="ts-history"' not in small and small.count('<tr><td class="dt">') == 20


def test_summary_descriptions_do_not_repeat_the_task() -> None:
    view = make_view(n=12)
    rows = tuple(dataclasses.replace(r, description=r.task) for r in view.timesheet)
    view = dataclasses.replace(view, timesheet=rows, policy=dataclasses.replace(view.policy, descriptions="summary"))
    files = {f.path: f for f in render_portal(view, link, "tok")}
    html = files["index.html"].data.decode()
    assert ">Description</th>" not in html and 'class="d"' not in html
    assert "Description" not in files["timesheet.csv"].data.decode("utf-8-sig").splitlines()[0]


def test_ask_about_this_writes_to_the_agency_contact() -> None:
    from urllib.parse import parse_qs, unquote, urlsplit

    view = make_view(n=5)
    html = index_html(view)
    hrefs = [a["href"] for t, a in parse(html).tags if t == "a" and (a.get("href") or "").startswith("mailto:")]
    # one per entry, one per week heading, one per invoice
    weeks = {r.spent_date - dt.timedelta(days=r.spent_date.weekday()) for r in view.timesheet}
    assert len(hrefs) == 5 + len(weeks) + 2
    entry = render.timesheet_rows(view)[0]
    url = urlsplit(hrefs[1])
    assert unquote(url.path) == "ada@example.com"
    q = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert q["subject"] == f"Question about 20 Mar 2025: {entry.task or entry.project}, {entry.hours:,.2f} h"
    for expected in ("Acme Robotics", "Date: 20 Mar 2025", f"Hours: {entry.hours:,.2f}",
                     "Portal data as of 20 Mar 2025, 11:45 UTC", "\r\n"):
        assert expected in q["body"], expected
    assert entry.description not in q["body"]  # the note stays on the page, not in the mail
    invoice = next(urlsplit(h) for h in hrefs if "invoice" in unquote(h))
    q = {k: v[0] for k, v in parse_qs(invoice.query).items()}
    assert q["subject"] == "Question about invoice INV-1041"
    assert "Outstanding: €4,800.00" in q["body"]
    off = index_html(dataclasses.replace(view, agency=dataclasses.replace(view.agency, ask=False)))
    assert 'href="mailto:' not in off and ">Ask about this<" not in off
    none = index_html(dataclasses.replace(view, agency=dataclasses.replace(view.agency, contact=None)))
    assert 'href="mailto:' not in none


def test_weekly_mode_shows_summaries_not_entries() -> None:
    view = make_view(n=80, weekly=True)
    html = index_html(view)
    assert "<h2 id=\"ts-h\">Weekly summary</h2>" in html
    data = island(html)
    assert data["mode"] == "weekly" and len(data["rows"]) == len(view.weekly_summaries)
    assert "Worked on item" not in html  # descriptions belong to entries, not summaries
    assert sum(r[6] for r in data["rows"]) == int(sum(r.billable_hours for r in view.weekly_summaries) * 3600)


def test_policy_shapes_the_page() -> None:
    private = index_html(make_view(rates=False, invoices=False, non_billable=False))
    assert "Invoices issued" not in private and "INV-1041" not in private
    assert 'name="billable"' not in private and "Non-billable hours" not in private
    assert ">Amount</th>" not in private
    public = index_html(make_view(rates=True, invoices=True, non_billable=True))
    assert "INV-1041" in public and 'name="billable"' in public and ">Amount</th>" in public


def test_export_links_come_from_the_publisher() -> None:
    calls: list[tuple[str, str]] = []

    def spy(token: str, path: str) -> str:
        calls.append((token, path))
        return f"https://cdn.example.test/{token}/{path}?X-Amz-Expires=60&X-Amz-Signature=ab"

    files = {f.path: f for f in render_portal(make_view(), spy, "tokXYZ")}
    html = files["index.html"].data.decode()
    assert sorted(calls) == [("tokXYZ", "report.pdf"), ("tokXYZ", "timesheet.csv"), ("tokXYZ", "timesheet.xlsx")]
    hrefs = [a["href"] for t, a in parse(html).tags if t == "a" and "btn" in (a.get("class") or "")]
    assert hrefs == [f"https://cdn.example.test/tokXYZ/{p}?X-Amz-Expires=60&X-Amz-Signature=ab" for p in
                     ("timesheet.csv", "timesheet.xlsx", "report.pdf")]
    assert "X-Amz-Expires=60&amp;X-Amz-Signature" in html


def test_page_is_self_contained() -> None:
    html = index_html(make_view())
    p = parse(html)
    assert not [a for t, a in p.tags if t == "link"]
    for t, a in p.tags:
        if t in ("img", "script", "iframe", "source", "video", "audio", "object", "embed"):
            src = a.get("src")
            assert src is None or src.startswith("data:"), (t, src)
    style = html[html.index("<style>"):html.index("</style>")]
    assert "url(" not in style and "@import" not in style and "@font-face" not in style
    assert "default-src 'none'" in html  # CSP: the browser refuses any other fetch
    assert "@media print" in style and "@media (max-width" in style


def test_logo_only_from_data_or_https() -> None:
    assert LOGO in index_html(make_view(logo=LOGO))
    html = index_html(make_view(logo="javascript:alert(1)"))
    assert "javascript:" not in html
    assert not [a for t, a in parse(html).tags if t == "img"]


@pytest.mark.parametrize("colour", ["#ffdd00", "#7fd1ff", "#1f5fbf", "#000000", "#ffffff", "not-a-colour"])
def test_accent_is_darkened_to_aa_contrast(colour: str) -> None:
    accent = accessible_accent(colour)
    assert contrast(accent, "#ffffff") >= 4.5
    if colour == "#1f5fbf":
        assert accent == colour  # already fine: keep the brand colour exactly
    html = index_html(make_view(accent=colour))
    assert f"--accent:{accent}" in html


def test_change_note_and_as_of_are_shown() -> None:
    view = make_view()
    html = index_html(view)
    assert view.change_note.text in html
    updated = html[html.index('id="updated"'):]
    assert render.fmt_datetime(view.as_of) in updated
    assert "Changes:" not in index_html(make_view(change=False))


def test_json_island_escapes_everything_that_could_end_the_script() -> None:
    text = json_island({"a": "</script><!-- & \u2028\u2029 >"})
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text
    assert json.loads(text) == {"a": "</script><!-- & \u2028\u2029 >"}


@pytest.mark.slow
def test_20000_entries_render_small_and_complete() -> None:
    """Size and completeness only: the 5 s render target is measured by
    benchmarks/render_bench.py and reported as a number, not asserted on a shared machine."""
    view = make_view(n=20_000, rates=True)
    files = {f.path: f for f in render_portal(view, link, "tok")}
    html = files["index.html"].data
    assert len(gzip.compress(html, 6)) < 500_000
    assert len(island(html.decode())["rows"]) == 20_000
    assert sum(Decimal(r[4]) for r in island(html.decode())["rows"]) / 3600 == view.total_hours


def test_unchanged_view_renders_identical_bytes() -> None:
    """The publisher skips unchanged objects by hash: no timestamps or random IDs inside."""
    first = render_portal(make_view(n=20), link, "tok")
    time.sleep(1.1)  # a second boundary: PDF and XLSX dates have one-second resolution
    second = render_portal(make_view(n=20), link, "tok")
    assert [f.data for f in first] == [f.data for f in second]


def test_empty_view_renders() -> None:
    """A new client with no projects, time or invoices yet still gets a sensible page."""
    view = make_view(n=0)
    view = dataclasses.replace(view, projects=(), this_week_by_person=(), invoices=(), invoice_preview=(),
                               glossary=(), notes=None, change_note=None, as_of=None)
    files = {f.path: f for f in render_portal(view, link, "tok")}
    html = files["index.html"].data.decode()
    assert "No projects to show yet." in html and "not yet synced" in html
    assert 'id="timesheet"' not in html and island(html)["rows"] == []
    assert files["timesheet.csv"].download_name.endswith(f"{view.generated_at:%Y-%m-%d %H%M}.csv")


def test_money_budget_is_shown_in_its_currency() -> None:
    view = make_view()
    money = factory.budget("5000", "1250.50", kind="money", currency="EUR")
    project = dataclasses.replace(view.projects[0], budget=money,
                                  burn_chart=factory.burn(unit="money", budget_value="5000", currency="EUR"))
    html = index_html(dataclasses.replace(view, projects=(project,)))
    assert "€3,749.50" in html  # left
    assert "€1,250.50 used of €5,000.00" in html
    assert "Budget €5,000" in html  # the chart's budget line label


def test_far_projection_is_clipped_but_described() -> None:
    view = make_view()
    p = view.projects[0]
    chart = dataclasses.replace(p.burn_chart, projection=(
        p.burn_chart.projection[0], dataclasses.replace(p.burn_chart.projection[-1], on=dt.date(2033, 3, 17))))
    html = index_html(dataclasses.replace(view, projects=(dataclasses.replace(p, burn_chart=chart),)))
    svg = html[html.index('<svg class="chart"'):html.index("</svg>", html.index('<svg class="chart"'))]
    assert "17 Mar 2033" in svg  # in the text alternative
    xs = [float(x) for x in re.findall(r"[ML]([\d.]+),", svg)]
    assert xs and max(xs) <= 400
    # the real weeks keep most of the width instead of a sliver
    actual = re.search(r'class="actual" d="([^"]+)"', svg).group(1)
    ax = [float(x) for x in re.findall(r"[ML]([\d.]+),", actual)]
    assert ax[-1] - ax[0] > 60  # unclipped, eight years would leave them ~4 units


def test_nice_ticks() -> None:
    from publishers.charts import nice_ticks

    for top in (0.4, 7, 73.5, 1234, 98765):
        ticks = nice_ticks(top)
        assert ticks[0] == 0 and ticks[-1] >= top and 3 <= len(ticks) <= 7
        steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
        assert len(steps) == 1


def test_week_headings_sum_exact_time_and_round_once() -> None:
    base = make_view(n=3)
    day = base.timesheet[0].spent_date
    rows = tuple(dataclasses.replace(r, spent_date=day, hours=Decimal("0.33"), seconds=1200, is_billable=True)
                 for r in base.timesheet)
    view = dataclasses.replace(base, timesheet=rows, total_hours=Decimal("1.00"))
    (week,), count = render.first_page(view)
    assert count == 3 and week.hours == Decimal("1.00") and week.billable == Decimal("1.00")
