"""Render one client's PortalView into the files of its portal, in memory.

`render_portal(view, link, token)` returns index.html (inline CSS, inline SVG, a small
inline filter script, no other request) and the exports timesheet.csv, timesheet.xlsx and
report.pdf. File paths are fixed names: nothing of the client's name or of any secret is in
a path; the human file name travels separately as `RenderedFile.download_name`.

Only the PortalView reaches this module (DESIGN.md dependency rules), so a template cannot
show what redaction removed. Text is escaped by jinja2's autoescape; the JSON island that
drives the filters is escaped separately (`json_island`) so no string can close the
<script> element.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from bridge.i18n import Lang, lang
from bridge.metrics import hours as hours_of
from bridge.publisher import LinkFn, RenderedFile
from bridge.views import ChangeNote, BudgetView, InvoiceView, PortalView, ProjectView, TimesheetRow, WeeklySummaryRow
from publishers import charts
from publishers.exports.csv import timesheet_csv
from publishers.exports.model import Cell, Column, Report, Table
from publishers.exports.pdf import report_pdf
from publishers.exports.xlsx import workbook_xlsx

INDEX, CSV, XLSX, PDF = "index.html", "timesheet.csv", "timesheet.xlsx", "report.pdf"
DEFAULT_ACCENT = "#1f5fbf"
SOFT = 0.92  # how far the soft background tint mixes the accent with white
EN = lang("en")
_SAFE_LOGO = re.compile(r"^(data:image/(png|jpeg|gif|webp|svg\+xml)(;base64)?,|https://)", re.I)


# --- formatting ------------------------------------------------------------------------


def fmt_hours(h: Decimal | float | None, t: Lang = EN) -> str:
    """Every hours figure on the page and in the PDF: two places, grouped ("1,275.80")."""
    return t.number(h)


def fmt_money(amount: Decimal | float | None, currency: str | None, t: Lang = EN) -> str:
    return t.money(amount, currency)


def fmt_date(d: dt.date | None, t: Lang = EN) -> str:
    return t.date(d)


def fmt_short_date(d: dt.date | None, t: Lang = EN) -> str:
    return t.short_date(d)


def fmt_datetime(moment: dt.datetime | None, t: Lang = EN) -> str:
    """As the view gives it: views.py decides the zone, we print its name."""
    return t.datetime(moment)


def fmt_budget(value: Decimal, budget: BudgetView, t: Lang = EN) -> str:
    # hours read the same here as in every table and export: "562.00 h", never "562.0 h"
    if budget.kind == "money":
        return t.money(value, budget.currency)
    return t.hours(value)


def fmt_percent(value: Decimal | float | None, t: Lang = EN) -> str:
    """Budget use as the view gives it (one decimal), e.g. "87.5%"; exports print the same."""
    return t.percent(value)


# --- what needs the client's attention ---------------------------------------------------

DUE_SOON_DAYS = 7  # an open invoice due within a week is worth a line at the top
BIG_EDIT = 5  # this many edited entries since the last update is a change worth a line; any removal is


@dataclass(frozen=True)
class Attention:
    """One line at the top of the page; the template words it (by `kind`), this only decides.

    kind: "overdue" | "due_soon" | "over_budget" | "retainer_overran" | "at_risk" | "changes".
    target: the id of the part of the page that has the details.
    """

    kind: str
    target: str
    bad: bool
    project: ProjectView | None = None
    invoice: InvoiceView | None = None
    days: int | None = None  # due_soon: days until the due date (0 = today)


def invoice_anchor(index: int) -> str:
    return f"invoice-{index}"


def budget_at_risk(b: BudgetView) -> bool:
    """The alerts' rule (a configured threshold reached), or a projection that runs out
    before the period resets or the project ends (bridge/figures.py decides both)."""
    return b.level != "ok" or b.at_risk


def invoices_newest_first(view: PortalView) -> list[tuple[str, InvoiceView]]:
    """(anchor, invoice), the most recently issued first; anchors follow the view's order."""
    numbered = [(invoice_anchor(i), inv) for i, inv in enumerate(view.invoices, start=1)]
    return sorted(numbered, key=lambda p: (p[1].issue_date or dt.date.min, p[0]), reverse=True)


def attention_items(view: PortalView) -> list[Attention]:
    """What needs the client's attention, most urgent first: overdue invoices, budgets over,
    a retainer that overran last month, budgets at risk, invoices due soon, big changes."""
    overdue: list[Attention] = []
    due_soon: list[Attention] = []
    for i, inv in enumerate(view.invoices, start=1):
        if inv.due_amount <= 0:
            continue
        if inv.status == "overdue":
            overdue.append(Attention("overdue", invoice_anchor(i), True, invoice=inv))
        elif inv.due_date is not None and 0 <= (inv.due_date - view.today).days <= DUE_SOON_DAYS:
            due_soon.append(Attention("due_soon", invoice_anchor(i), False, invoice=inv,
                                      days=(inv.due_date - view.today).days))
    over: list[Attention] = []
    overran: list[Attention] = []
    risk: list[Attention] = []
    for p in view.projects:
        b = p.budget
        if b is None:
            continue
        if b.is_over_budget or b.left < 0:
            over.append(Attention("over_budget", p.anchor, True, project=p))
        elif budget_at_risk(b):
            risk.append(Attention("at_risk", p.anchor, b.level in ("critical", "over"), project=p))
        if (b.period == "monthly" and b.last_period_used is not None and b.last_period_allocated is not None
                and b.last_period_used > b.last_period_allocated):
            overran.append(Attention("retainer_overran", p.anchor, False, project=p))
    changes: list[Attention] = []
    note = view.change_note
    if note is not None and (note.removed or note.edited >= BIG_EDIT):
        changes.append(Attention("changes", "changes", False))
    overdue.sort(key=lambda a: a.invoice.due_date or dt.date.min)  # type: ignore[union-attr]
    due_soon.sort(key=lambda a: a.days or 0)
    return overdue + over + overran + risk + due_soon + changes


# --- "Ask about this" ------------------------------------------------------------------


def ask_address(contact: str | None) -> str | None:
    """The bare e-mail address of the agency contact ("Alice <alice@x>" -> "alice@x")."""
    if not contact:
        return None
    addr = email.utils.parseaddr(contact)[1]
    return addr if "@" in addr else None


def fill(pattern: str, values: Mapping[str, object]) -> str:
    """A sentence from the template with {name} slots filled; values are never re-read as
    slots, so a "{client}" inside a task name stays as typed. The script does the same."""
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), m.group(0))), pattern)


def mailto(to: str, subject: str, body: str) -> str:
    """A mailto: URL (RFC 6068): every character of subject and body percent-encoded,
    line breaks as CRLF; the browser's mail client opens with them filled in."""
    body = body.replace("\r\n", "\n").replace("\n", "\r\n")
    return f"mailto:{quote(to, safe='@')}?subject={quote(subject, safe='')}&body={quote(body, safe='')}"


# --- colour ----------------------------------------------------------------------------


def _luminance(hex_colour: str) -> float:
    def chan(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * chan(r) + 0.7152 * chan(g) + 0.0722 * chan(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def accessible_accent(colour: str, background: str = "#ffffff", ratio: float = 4.5) -> str:
    """The agency colour, darkened just enough for AA text contrast on `background`."""
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", colour or ""):
        colour = DEFAULT_ACCENT
    colour = colour.lower()
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    for step in range(0, 101):
        k = 1 - step / 100
        c = f"#{int(r * k):02x}{int(g * k):02x}{int(b * k):02x}"
        # links also sit on the accent's own soft tint (week headings, table heads)
        if contrast(c, background) >= ratio and contrast(c, tint(c, SOFT)) >= ratio:
            return c
    return "#000000"


def tint(colour: str, amount: float) -> str:
    """Mix with white: soft backgrounds in the agency's hue."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    mix = [round(c + (255 - c) * amount) for c in (r, g, b)]
    return "#" + "".join(f"{c:02x}" for c in mix)


# --- the JSON island -------------------------------------------------------------------

_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")


def json_island(data: object) -> Markup:
    """JSON safe inside <script type="application/json">: no `<`, `>` or `&` survives,
    so `</script>` or `<!--` in a name cannot end the element; U+2028/9 are escaped for
    older JavaScript parsers."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Markup(_JSON_ESCAPE_RE.sub(lambda m: _JSON_ESCAPES[m.group()], text))


def _indexer(values: Iterable[str | None]) -> tuple[list[str], Callable[[str | None], int]]:
    names = sorted({v or "" for v in values}, key=str.casefold)
    index = {n: i for i, n in enumerate(names)}
    return names, lambda v: index[v or ""]


def _secs(seconds: int | None, hours: Decimal) -> int:
    # Exact seconds: the browser sums them, then rounds once to hundredths of an hour, so
    # a filtered total is what bridge/figures.py would compute for those rows. Views built
    # without seconds fall back to their rounded hours.
    return int(seconds) if seconds is not None else int((Decimal(hours) * 3600).to_integral_value())


def timesheet_rows(view: PortalView) -> list[TimesheetRow]:
    """Entries newest first, the order of the page, the island and every export."""
    return sorted(view.timesheet, key=lambda r: (r.spent_date, r.person, r.project), reverse=True)


def weekly_rows(view: PortalView) -> list[WeeklySummaryRow]:
    return sorted(view.weekly_summaries, key=lambda r: (r.week_start, r.person, r.project, r.task or ""), reverse=True)


PAGE_ROWS = 40  # rows listed at first and per "show earlier weeks": a phone page that ends


def week_of(day: dt.date, first: dt.date) -> dt.date:
    """The first day of `day`'s week, weeks starting on `first`'s weekday."""
    return day - dt.timedelta(days=(day.weekday() - first.weekday()) % 7)


def described(view: PortalView) -> bool:
    """Whether the Description column says anything the Task column does not (in summary
    mode the description is the task name: a second column repeating it is noise)."""
    return view.policy.descriptions != "hidden" and any(
        r.description and r.description != r.task for r in view.timesheet)


def shown_description(r: TimesheetRow) -> str:
    return "" if not r.description or r.description == r.task else r.description


@dataclass(frozen=True)
class WeekGroup:
    """One week of the listing: its label, total hours, rows and how many it holds."""

    start: dt.date
    hours: Decimal
    billable: Decimal
    count: int
    rows: tuple[TimesheetRow | WeeklySummaryRow, ...]  # those listed on first load (a page)


def first_page(view: PortalView) -> tuple[list[WeekGroup], int]:
    """The most recent rows (PAGE_ROWS at most), grouped by week, as the page lists them
    before any script runs; and how many rows in all."""
    weekly = view.policy.view == "weekly"
    rows: list = weekly_rows(view) if weekly else timesheet_rows(view)
    groups: dict[dt.date, list] = {}
    for r in rows:
        groups.setdefault(r.week_start if weekly else week_of(r.spent_date, view.week_start), []).append(r)
    out, left = [], PAGE_ROWS
    for start, rs in groups.items():  # newest week first: rows are newest first
        if left <= 0:
            break
        # exact seconds summed, rounded once: what the script shows for the week once it runs
        secs = sum(_secs(r.seconds, r.hours) for r in rs)
        if weekly:
            billable = sum(_secs(r.billable_seconds, r.billable_hours) for r in rs)
        else:
            billable = sum(_secs(r.seconds, r.hours) for r in rs if r.is_billable)
        out.append(WeekGroup(start, hours_of(secs), hours_of(billable), len(rs), tuple(rs[:left])))
        left -= len(rs)
    return out, len(rows)


def timesheet_data(view: PortalView) -> dict[str, object]:
    """Everything the timesheet script lists and filters, compact: arrays, short keys,
    names as indexes, dates as day offsets, labels already formatted (so the page and the
    script print a date or an amount the same way). The page itself lists only the most
    recent weeks; the whole history is here and in the exports."""
    weekly = view.policy.view == "weekly"
    t = lang(view.locale)
    entries, summaries = timesheet_rows(view), weekly_rows(view)
    rows = summaries if weekly else entries
    people, pi = _indexer(r.person for r in rows)
    projects, ji = _indexer(r.project for r in rows)
    tasks, ti = _indexer(r.task for r in rows)
    if weekly:
        days = [r.week_start for r in summaries]
    else:
        days = [r.spent_date for r in entries]
    d0 = min(days) if days else view.today
    starts = sorted({week_of(d, view.week_start) for d in set(days)}, reverse=True)
    wi = {w: i for i, w in enumerate(starts)}
    data: dict[str, object] = {
        "mode": "weekly" if weekly else "entries",
        "d0": d0.isoformat(),
        "people": people,
        "projects": projects,
        "tasks": tasks,
        # each week's label, newest first ("weeks" in a row index this list)
        "weeks": [t.date(w) for w in starts],
        "num": t.number_symbols,
        "page": PAGE_ROWS,
    }
    if weekly:
        # [week offset, last day offset, person, project, task, seconds, billable seconds, week,
        #  any billable 0/1]. Every row ends in a 0/1 flag: the leak guard
        # reads a bare number before "]" as a possible rate, one before ",<digit>" not.
        data["rows"] = [
            [(r.week_start - d0).days, (r.week_end - d0).days, pi(r.person), ji(r.project), ti(r.task),
             _secs(r.seconds, r.hours), _secs(r.billable_seconds, r.billable_hours), wi[r.week_start],
             int(r.billable_hours > 0)]
            for r in summaries
        ]
    else:
        notes, ni = _indexer(shown_description(r) for r in entries)
        rates = view.policy.rates_shown
        cache: dict[object, str] = {}

        def money_text(x: object) -> str:  # many entries share a rate or an amount
            if x not in cache:
                cache[x] = t.money(x.amount, x.currency) if x else ""  # type: ignore[attr-defined]
            return cache[x]

        money, mi = _indexer(money_text(x) for r in entries for x in (r.rate, r.amount)) if rates else ([], None)
        # the label of each day offset that has an entry ("" for the others): a list, as
        # numeric keys would read as numbers to the leak guard
        labels = {(d - d0).days: t.date(d) for d in set(days)}
        data["dates"] = [labels.get(k, "") for k in range(max(labels, default=-1) + 1)]
        data["notes"] = notes if described(view) else []
        data["money"] = money
        # [day offset, person, project, task, seconds, billable 0/1, week, note,
        #  rate, amount (indexes into "money"; 0 when rates are hidden), running 0/1]
        out = []
        week_index = {d: wi[week_of(d, view.week_start)] for d in set(days)}
        for r in entries:
            row = [(r.spent_date - d0).days, pi(r.person), ji(r.project), ti(r.task), _secs(r.seconds, r.hours),
                   int(r.is_billable), week_index[r.spent_date],
                   ni(shown_description(r)) if data["notes"] else 0,
                   mi(money_text(r.rate)) if mi else 0, mi(money_text(r.amount)) if mi else 0,
                   int(r.is_running)]
            out.append(row)
        data["rows"] = out
    return data


# --- exports ---------------------------------------------------------------------------


def download_name(view: PortalView, what: str, ext: str) -> str:
    """The name a person saves, like "Acme Robotics - timesheet - 2025-03-20 1200.csv".

    It carries the data-as-of time (agency zone, no colon: Windows forbids it in names), so
    the files themselves hold only data."""
    day = f"{(view.as_of or view.generated_at):%Y-%m-%d %H%M}"
    client = re.sub(r'[\x00-\x1f\x7f/\\:*?"<>|\u202a-\u202e\u2066-\u2069]+', " ", view.client_name).strip() or "Portal"
    return f"{client[:80]} - {what} - {day}.{ext}"


def build_report(view: PortalView) -> Report:
    """The exports' shared model: summary, timesheet (or weekly summaries), invoices."""
    as_of = view.as_of or view.generated_at
    t = lang(view.locale)
    T = t.gettext
    summary_rows = []
    for p in view.projects:
        b = p.budget
        if b is None:
            status = {"none": T("no budget"), "not_visible": T("tracked by the agency")}.get(p.budget_status, "")
            summary_rows.append((p.name, status, None, None, None, None, p.hours_to_date, p.hours_this_week))
            continue
        unit = T("hours") if b.kind == "hours" else (b.currency or "")
        period = T("monthly") if b.period == "monthly" else T("total")
        summary_rows.append(
            (p.name, f"{unit}, {period}", b.allocated, b.used, b.left, b.percent_consumed / 100, p.hours_to_date,
             p.hours_this_week)
        )
    summary = Table(
        T("Summary"),
        # budget figures are numbers in each project's own unit, named in the Budget column
        [Column(T("Project"), "text", 3), Column(T("Budget"), "text", 1.5), Column(T("Allocated"), "hours", 1.1),
         Column(T("Used"), "hours", 1.1), Column(T("Left"), "hours", 1.1), Column(T("Used %"), "percent", 0.9),
         Column(T("Hours to date"), "hours", 1.3), Column(T("Hours this week"), "hours", 1.5)],
        summary_rows,
        [T("Total"), None, None, None, None, None, view.total_hours, sum((p.hours_this_week for p in view.projects), Decimal(0))],
    )

    rates = view.policy.rates_shown
    if view.policy.view == "weekly":
        cols = [Column(T("Week starting"), "date", 1.2), Column(T("Week ending"), "date", 1.2), Column(T("Person"), "text", 1.6),
                Column(T("Project"), "text", 2), Column(T("Task"), "text", 1.8), Column(T("Hours"), "hours", 1),
                Column(T("Billable hours"), "hours", 1.1)]
        rows = [[r.week_start, r.week_end, r.person, r.project, r.task, r.hours, r.billable_hours]
                for r in weekly_rows(view)]
        totals: list[Cell] = [T("Total"), None, None, None, None, view.total_hours, view.billable_hours]
        if rates:
            cols.append(Column(T("Amount"), "text", 1.6))
            for row, r in zip(rows, weekly_rows(view)):
                row.append("; ".join(t.money(m.amount, m.currency) for m in r.amounts))
            totals.append(None)
        name = T("Weekly summary")
    else:
        entries = timesheet_rows(view)
        shown = described(view)
        billing = view.policy.non_billable_shown
        cols = [Column(T("Date"), "date", 1.0), Column(T("Person"), "text", 1.4), Column(T("Project"), "text", 2.0),
                Column(T("Task"), "text", 1.6)]
        cols += [Column(T("Description"), "text", 4.2)] if shown else []
        cols += [Column(T("Hours"), "hours", 1)]
        cols += [Column(T("Billable"), "bool", 0.8)] if billing else []
        rows = []
        for r in entries:
            row: list[Cell] = [r.spent_date, r.person, r.project, r.task]
            row += [shown_description(r)] if shown else []
            row += [r.hours]
            row += [r.is_billable] if billing else []
            rows.append(row)
        totals = [T("Total")] + [None] * (len(cols) - 1)
        totals[[c.title for c in cols].index(T("Hours"))] = view.total_hours
        if rates:
            # each entry carries its own currency; amounts are only totalled within one
            cols += [Column(T("Rate"), "money", 1), Column(T("Amount"), "money", 1.1), Column(T("Currency"), "text", 0.8)]
            for row, r in zip(rows, entries):
                row += [r.rate.amount if r.rate else None, r.amount.amount if r.amount else None,
                        (r.amount or r.rate).currency if (r.amount or r.rate) else None]
            currencies = {(r.amount or r.rate).currency for r in entries if r.amount or r.rate}
            one = next(iter(currencies)) if len(currencies) == 1 else None
            # the view's total: amounts summed exactly, then rounded once (not a sum of rounded rows)
            total = next((tot.amount for tot in view.totals if tot.currency == one), None) if one else None
            totals += [None, total, one]
        name = T("Timesheet")
    timesheet = Table(name, cols, rows, totals)

    invoices = None
    if view.policy.invoices_shown:
        inv_rows = [[i.number or "", i.issue_date, i.due_date, invoice_status(i.status, t), i.currency, i.amount, i.due_amount]
                    for i in view.invoices]
        currencies = {i.currency for i in view.invoices}
        one = len(currencies) == 1
        invoices = Table(
            T("Invoices"),
            [Column(T("Number"), "text", 1.4), Column(T("Issued"), "date", 1.2), Column(T("Due"), "date", 1.2),
             Column(T("Status"), "text", 1.1), Column(T("Currency"), "text", 0.9), Column(T("Amount"), "money", 1.3),
             Column(T("Outstanding"), "money", 1.3)],
            inv_rows,
            [T("Total"), None, None, None, next(iter(currencies)) if one else None,
             sum((i.amount for i in view.invoices), Decimal(0)) if one else None,
             sum((i.due_amount for i in view.invoices), Decimal(0)) if one else None],
        )
    facts = [(T("Hours to date"), t.hours(view.total_hours)), (T("Billable hours"), t.hours(view.billable_hours))]
    for p in view.projects:
        if p.budget is not None:
            facts.append((p.name, _left_sentence(p.budget, t) + (f". {p.budget.unlisted_note}" if p.budget.unlisted_note else "")))
            if p.budget.history:
                b = p.budget
                facts.append((T("%(project)s, previous months", project=p.name), "; ".join(
                    T("%(month)s: %(used)s of %(allocated)s", month=t.month(h.month),
                      used=fmt_budget(h.used, b, t), allocated=fmt_budget(h.allocated, b, t))
                    + (" " + T("(%(over)s over)", over=fmt_budget(h.over, b, t)) if h.over > 0 else "")
                    for h in reversed(b.history))))
    if view.budget_basis_note:
        facts.append((T("Budgets"), view.budget_basis_note))
    if view.unbilled.hours:
        facts.append((T("Not yet invoiced"), t.hours(view.unbilled.hours)))
    return Report(
        agency=view.agency.name,
        client=view.client_name,
        as_of=as_of,
        as_of_text=t.datetime(view.as_of),
        locale=view.locale,
        summary=summary,
        timesheet=timesheet,
        invoices=invoices,
        facts=facts,
    )


def change_sentence(note: ChangeNote | None, t: Lang = EN, zone: object = None) -> str:
    """"3 entries edited, 1 removed, 12 added since 12 Nov", in the page's language."""
    if note is None:
        return ""
    parts = []
    if note.edited:
        parts.append(t.ngettext("%(num)s entry edited", "%(num)s entries edited", note.edited))
    # the noun once, on the first part: "3 entries edited, 1 removed, 12 added"
    if note.removed:
        parts.append(t.gettext("%(num)s removed", num=note.removed) if parts else
                     t.ngettext("%(num)s entry removed", "%(num)s entries removed", note.removed))
    if note.added:
        parts.append(t.gettext("%(num)s added", num=note.added) if parts else
                     t.ngettext("%(num)s entry added", "%(num)s entries added", note.added))
    what = ", ".join(parts) if parts else t.gettext("No changes")
    if note.since is None:
        return what
    since = note.since.astimezone(zone) if isinstance(zone, dt.tzinfo) else note.since
    return t.gettext("%(changes)s since %(date)s", changes=what, date=t.short_date(since.date()))


def invoice_status(status: str, t: Lang = EN) -> str:
    """How the portal and the exports name an invoice's status."""
    return {"open": t.gettext("Open"), "partial": t.gettext("Partly paid"), "paid": t.gettext("Paid"),
            "overdue": t.gettext("Overdue")}.get(status, status)


def _left_sentence(b: BudgetView, t: Lang = EN) -> str:
    if b.is_over_budget or b.left < 0:
        s = t.gettext("%(amount)s over budget", amount=fmt_budget(-b.left, b, t))
    else:
        s = t.gettext("%(left)s left of %(allocated)s", left=fmt_budget(b.left, b, t),
                      allocated=fmt_budget(b.allocated, b, t))
    if b.period == "monthly" and b.resets_on:
        s += t.gettext("; resets %(date)s", date=t.date(b.resets_on))
    return s


# --- the page --------------------------------------------------------------------------


_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def isolate_bidi(value: object) -> object:
    """Wrap text holding bidi controls in FSI…PDI, so a stray U+202E in a name reorders
    only that name and not the sentence around it. Other values pass through untouched."""
    if isinstance(value, str) and not isinstance(value, Markup) and _BIDI.search(value):
        return "\u2068" + value + "\u2069"
    return value


def _env(t: Lang) -> jinja2.Environment:
    """The page's environment in one language: filters print in its formats, and `tr`/`trn`
    look sentences up in its catalog (plain text: autoescape still escapes the result)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("publishers", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=isolate_bidi,
    )
    env.filters.update(
        hours=t.number, h=t.hours, count=t.count, money=t.money, date=t.date, short_date=t.short_date,
        datetime=t.datetime, budget=lambda value, b: fmt_budget(value, b, t), percent=t.percent,
        island=json_island, fill=fill, description=shown_description,
    )
    env.globals.update(left_sentence=lambda b: _left_sentence(b, t), zip=zip, mailto=mailto,
                       invoice_anchor=invoice_anchor, tr=t.gettext, trn=t.ngettext, hu=t.hours_text, t=t)
    return env


_ENVS: dict[str, jinja2.Environment] = {}


def env(locale: str = "en") -> jinja2.Environment:
    if locale not in _ENVS:
        _ENVS[locale] = _env(lang(locale))
    return _ENVS[locale]


def _burn_svg(p: ProjectView, accent: str, t: Lang = EN) -> Markup:
    chart = p.burn_chart
    if not chart.cumulative:
        return Markup("")
    unit_fmt: Callable[[float], str]
    if chart.unit == "money":
        unit_fmt = lambda v: t.money(Decimal(str(v)), chart.currency).replace(  # noqa: E731
            t.number_symbols["decimal"] + "00", "")
    else:
        unit_fmt = lambda v: t.hours(Decimal(str(v)), 0) if float(v).is_integer() else t.hours(Decimal(str(v)), 1)  # noqa: E731
    actual = [(pt.on, float(pt.value)) for pt in chart.cumulative]
    projected = [(pt.on, float(pt.value)) for pt in chart.projection]
    full_projection = projected[-1] if projected else None
    projected = _clip_projection(projected, actual, p.ends_on)
    last = actual[-1]
    desc = t.gettext("Budget used rose to %(amount)s by %(date)s.", amount=unit_fmt(last[1]), date=t.date(last[0]))
    if chart.budget is not None:
        desc += " " + t.gettext("The budget is %(amount)s.", amount=unit_fmt(float(chart.budget)))
    if full_projection:
        desc += " " + t.gettext("At the current pace it reaches %(amount)s on %(date)s.",
                                amount=unit_fmt(full_projection[1]), date=t.date(full_projection[0]))
    return charts.burn_chart(
        charts.BurnSeries(actual, projected, float(chart.budget) if chart.budget is not None else None, unit_fmt,
                          day=t.short_date, budget_label=t.gettext("Budget %(amount)s")),
        title=t.gettext("Budget burn for %(project)s", project=isolate_bidi(p.name)),
        desc=desc,
        accent=accent,
        chart_id=f"burn-{p.anchor}",
    )


def _clip_projection(
    projected: list[charts.Point], actual: list[charts.Point], ends_on: dt.date | None
) -> list[charts.Point]:
    """Cut a projection that runs years ahead, so the weeks of real data stay readable;
    the text alternative and the sentence under the chart still give the full date."""
    if len(projected) < 2 or not actual:
        return projected
    first, last = actual[0][0], actual[-1][0]
    span = max((last - first).days, 7)
    horizon = max(last + dt.timedelta(days=2 * span), last + dt.timedelta(weeks=8), ends_on or last)
    horizon = min(horizon, last + dt.timedelta(days=730))
    (d0, v0), (d1, v1) = projected[0], projected[-1]
    if d1 <= horizon or d1 <= d0:
        return projected
    frac = (horizon - d0).days / (d1 - d0).days
    return [projected[0], (horizon, v0 + (v1 - v0) * frac)]


def render_index(view: PortalView, link: LinkFn, token: str) -> str:
    accent = accessible_accent(view.agency.accent_color)
    t = lang(view.locale)
    logo = view.agency.logo_url if view.agency.logo_url and _SAFE_LOGO.match(view.agency.logo_url) else None
    meters = {}
    for p in view.projects:
        if p.budget is not None:
            b = p.budget
            meters[p.anchor] = charts.meter(
                float(b.percent_consumed) / 100, label=t.gettext("%(percent)s of the budget used", percent=t.percent(b.percent_consumed)), accent=accent,
                over=b.is_over_budget,
            )
    max_week = max((float(h.hours) for h in view.this_week_by_person), default=0.0)
    # this week's people first, then everyone else who logged time to date
    week = {h.label: h.hours for h in view.this_week_by_person}
    to_date = {h.label: h.hours for h in view.hours_to_date_by_person}
    week_rows = [(label, hours, to_date.get(label)) for label, hours in week.items()]
    week_rows += [(label, None, hours) for label, hours in to_date.items() if label not in week]
    weeks, row_count = first_page(view)
    return env(view.locale).get_template("portal/index.html.j2").render(
        view=view,
        accent=accent,
        accent_soft=tint(accent, SOFT),
        logo=logo,
        meters=meters,
        burn_svgs={p.anchor: _burn_svg(p, accent, t) for p in view.projects},
        max_week=max_week,
        week_rows=week_rows,
        has_to_date=bool(to_date),
        data=timesheet_data(view),
        weeks=weeks,
        row_count=row_count,
        links={"csv": link(token, CSV), "xlsx": link(token, XLSX), "pdf": link(token, PDF)},
        weekly=view.policy.view == "weekly",
        described=described(view),
        attention=attention_items(view),
        invoices=invoices_newest_first(view),
        ask_to=ask_address(view.agency.contact) if view.agency.ask else None,
        as_of_text=t.datetime(view.as_of),
        change_text=change_sentence(view.change_note, t, view.generated_at.tzinfo),
        invoice_status=lambda status: invoice_status(status, t),
    )


def render_portal(view: PortalView, link: LinkFn, token: str) -> list[RenderedFile]:
    """Every file of one client's portal; exports first, index.html last (publish order)."""
    report = build_report(view)
    accent = accessible_accent(view.agency.accent_color)
    return [
        RenderedFile(CSV, timesheet_csv(report), "text/csv; charset=utf-8", download_name(view, "timesheet", "csv")),
        RenderedFile(
            XLSX, workbook_xlsx(report), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            download_name(view, "timesheet", "xlsx"),
        ),
        RenderedFile(PDF, report_pdf(report, accent=accent), "application/pdf", download_name(view, "report", "pdf")),
        RenderedFile(INDEX, render_index(view, link, token).encode("utf-8"), "text/html; charset=utf-8"),
    ]
