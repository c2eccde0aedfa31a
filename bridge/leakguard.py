"""The publish-time leak guard: values the policy hides must not appear in rendered files.

Redaction happens once, while the PortalView is built; this is the second line of
defence. `hidden_values` lists everything of one client that its policy hides and the
store knows (rates, internal notes and tasks, other clients, people's e-mails and hidden
names); `scan` looks for each of them in every rendered file and its name and raises
LeakError naming the field - never the value itself, except a masked e-mail.

False positives stop a publish, so the list is kept honest:
* numbers are matched only as whole numbers, and only in forms with at least three
  characters or with decimals ("150", "150.00", "1,500.00"; never "15");
* a number that the view legitimately shows as some other quantity (a total that
  happens to equal a rate) is dropped when the view is passed in;
* a text value that is part of this client's own visible names (its name, its projects,
  its visible tasks, the agency) is dropped: another client called "Acme" must not block
  the portal of "Acme Labs".
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import html
import io
import re
import unicodedata
import zipfile
from html.parser import HTMLParser
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlmodel import select

from bridge.errors import LeakError
from bridge.models import Client, Person, Project, Task, TaskAssignment, TimeEntry
from bridge.policy import Policy
from bridge.redaction import MARKER, WITHHELD, ReviewLog, Finding, internal_pattern

if TYPE_CHECKING:  # pragma: no cover
    from bridge.config import ClientConfig, Config
    from bridge.publisher import RenderedFile
    from bridge.store import Store
    from bridge.views import PortalView

MIN_TEXT = 3  # shorter text values match too much ordinary text to be useful
MIN_NOTE = 6


@dataclass(frozen=True)
class HiddenValue:
    field: str  # what it is, e.g. "people.cost_rate (harvest:42)"; safe to print
    value: str  # the text to look for; never printed
    kind: str = "text"  # "text" | "number" | "email"

    @property
    def shown(self) -> str:
        """How the value may appear in an error: only e-mails, masked."""
        if self.kind == "email" and "@" in self.value:
            local, _, domain = self.value.partition("@")
            return f" ({local[:1]}***@{domain})"
        return ""


# --- what is hidden ------------------------------------------------------------------


def number_forms(value: Decimal | int | float | str | None) -> list[str]:
    """The strings a number could be printed as; [] for zero or forms too short to trust."""
    if value is None:
        return []
    return list(_number_forms(str(value)))


@lru_cache(maxsize=65536)  # a few rates repeat on every entry
def _number_forms(value: str) -> tuple[str, ...]:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return ()
    if d == 0 or not d.is_finite():
        return ()
    d = abs(d)
    forms = {f"{d:.2f}"}
    if d >= 1000:
        forms.add(f"{d:,.2f}")
    norm = d.normalize()
    if norm == norm.to_integral_value():
        forms.add(f"{int(norm)}")
        if d >= 1000:
            forms.add(f"{int(norm):,}")
    else:
        forms.add(format(norm, "f"))
    return tuple(sorted(f for f in forms if "." in f or len(f.replace(",", "")) >= MIN_TEXT))


def _nums(field: str, value: Any) -> list[HiddenValue]:
    return [HiddenValue(field, f, "number") for f in number_forms(value)]


def hidden_values(
    store: "Store", config: "Config", client_cfg: "ClientConfig", *, view: "PortalView | None" = None
) -> list[HiddenValue]:
    """Everything of this client that its policy hides and the store knows.

    Args:
        view: the view being published; numbers it shows as other quantities (hours,
            totals) are not treated as leaks of an equal rate.
    """
    pol = Policy(client_cfg.visibility)
    vis = client_cfg.visibility
    out: list[HiddenValue] = []
    own: list[str] = [client_cfg.name, config.agency.name, config.agency.contact or "", client_cfg.notes or ""]
    own += [f"{k} {v}" for k, v in client_cfg.glossary.items()]
    scope = {src: [str(i) for i in ids] for src, ids in client_cfg.sources.items()}
    with store.session() as s:
        for c in s.exec(select(Client)):
            if c.source_id not in scope.get(c.source, []):
                out.append(HiddenValue(f"another client's name ({c.source}:{c.source_id})", c.name))
        own_projects: set[tuple[str, str]] = set()
        for p in s.exec(select(Project)):
            mine = p.client_source_id in scope.get(p.source, [])
            if mine:
                own_projects.add((p.source, p.source_id))
            if mine and not p.is_deleted:
                own += [p.name, p.code or ""]
            elif not mine:
                out.append(HiddenValue(f"another client's project name ({p.source}:{p.source_id})", p.name))
            if mine and not pol.rates_shown:
                out += _nums(f"projects.hourly_rate ({p.source}:{p.source_id})", p.hourly_rate)
        entries = []
        for src, ids in scope.items():
            entries += list(s.exec(select(TimeEntry).where(TimeEntry.source == src, TimeEntry.client_source_id.in_(ids))))
        tasks = {(t.source, t.source_id): t for t in s.exec(select(Task)) if t.source in scope}
        people = {(p.source, p.source_id): p for p in s.exec(select(Person)) if p.source in scope}
        for a in s.exec(select(TaskAssignment)):
            if not pol.rates_shown and (a.source, a.project_source_id) in own_projects:
                out += _nums(f"task_assignments.hourly_rate ({a.source}:{a.source_id})", a.hourly_rate)
    # everyone in the client's trackers: a note may name a colleague who never logged time here
    used_people = {(e.source, e.person_source_id) for e in entries} | set(people)
    inline = internal_pattern(vis.internal_note_prefixes)
    for e in entries:
        where = f"{e.source}:{e.source_id}"
        task = tasks.get((e.source, e.task_source_id or ""))
        tname = task.name if task else None
        out += _nums(f"time_entries.cost_rate ({where})", e.cost_rate)
        if not pol.rates_shown:
            out += _nums(f"time_entries.billable_rate ({where})", e.billable_rate)
        internal = pol.is_internal(task_name=tname, notes=e.notes, tags=e.tags)
        if e.notes:
            lines = [ln.strip() for ln in e.notes.splitlines() if ln.strip()]
            if internal or vis.descriptions != "detailed":
                out += [HiddenValue(f"time_entries.notes ({where})", ln) for ln in lines if len(ln) >= MIN_NOTE]
            else:
                out += [HiddenValue(f"internal note line ({where})", ln) for ln in lines if pol.is_internal_line(ln) and len(ln) >= MIN_NOTE]
                out += [HiddenValue(f"internal remark ({where})", r) for r in _inline_remarks(e.notes, inline)]
        if task is not None and not pol.rates_shown:
            out += _nums(f"tasks.default_hourly_rate ({e.source}:{task.source_id})", task.default_hourly_rate)
        if task is not None and pol.is_internal_task(task.name):
            out.append(HiddenValue(f"internal task name ({e.source}:{task.source_id})", task.name))
        elif task is not None and not internal:
            own.append(task.name)
    for key in sorted(used_people):
        p = people.get(key)  # type: ignore[arg-type]
        if p is None:
            continue
        where = f"{p.source}:{p.source_id}"
        if p.email:
            out.append(HiddenValue(f"people.email ({where})", p.email, "email"))
        out += _nums(f"people.cost_rate ({where})", p.cost_rate)
        if not pol.rates_shown:
            out += _nums(f"people.default_hourly_rate ({where})", p.default_hourly_rate)
        full = f"{p.first_name.strip()} {p.last_name.strip()}".strip()
        if vis.team_names != "full":
            if p.last_name.strip():
                out.append(HiddenValue(f"people.last_name ({where})", p.last_name.strip()))
            if p.last_name.strip() and p.first_name.strip():
                out.append(HiddenValue(f"people full name ({where})", full))
        if vis.team_names in ("role", "anonymous") and p.first_name.strip():
            # a first name alone is too common a word to scan for; only its pairing is
            # checked above. Roles are not secret.
            pass
    return _prune(out, own, view)


def _inline_remarks(notes: str, pattern: re.Pattern[str] | None) -> list[str]:
    """The text of each inline internal remark ("… [internal] too slow" -> "too slow")."""
    if pattern is None:
        return []
    out = []
    for m in pattern.finditer(notes):
        text = re.sub(r"^\[[^\]]*\]|\[/[^\]]*\]$", "", m.group()).strip(" :-")
        if len(text) >= MIN_NOTE and not text.startswith(MARKER):
            out.append(text)
    return out


# Hidden notes that the view legitimately shows as (part of) a visible note reveal nothing.
_NOTE_FIELDS = ("time_entries.notes", "internal note line", "internal remark")


def _prune(values: list[HiddenValue], own: Iterable[str], view: "PortalView | None") -> list[HiddenValue]:
    own_text = "\n".join(o for o in own if o).casefold()
    shown_numbers: set[str] = set()
    shown_texts: set[str] = set()
    if view is not None:
        for d in set(_decimals(view)):  # thousands of rows share a few hundred quantities
            shown_numbers.update(number_forms(d))
        for n in set(_counts(view)):  # "135 entries": how many rows the page says it has
            shown_numbers.update(number_forms(n))
        # A note hidden on one entry (internal) may be the very text the client sees on
        # another: equal text shown legitimately reveals nothing. Whole strings only.
        shown_texts = {_SPACE.sub(" ", t.strip()).casefold() for t in _strings(view)}
    inside = _shown_within(values, shown_texts)
    def shown(kind: str, v: str) -> bool:
        if not v or (kind == "text" and len(v) < MIN_TEXT):
            return True
        if kind in ("text", "email") and v.casefold() in own_text:  # e.g. the agency contact
            return True
        if kind == "number" and v in shown_numbers:
            return True
        return kind == "text" and _SPACE.sub(" ", v).casefold() in shown_texts

    decided: dict[tuple[str, str], bool] = {}  # one rate repeats on thousands of entries
    seen: set[tuple[str, str]] = set()
    kept = []
    for hv in values:
        v = hv.value.strip()
        drop = decided.get((hv.kind, v))
        if drop is None:
            drop = decided[(hv.kind, v)] = shown(hv.kind, v)
        if drop or (v in inside and hv.field.startswith(_NOTE_FIELDS)):
            continue
        if (hv.field, v) in seen:
            continue
        seen.add((hv.field, v))
        kept.append(HiddenValue(hv.field, v, hv.kind))
    return kept


def _shown_within(values: list[HiddenValue], shown: set[str]) -> set[str]:
    """Hidden note texts that some shown string contains as whole words.

    "Documented login rate limiting" hidden on an internal entry is shown by a visible
    note "Documented login rate limiting (ticket 12)": equal words, nothing revealed.
    Only the shown strings that hold a note's longest word are searched.
    """
    notes = {hv.value.strip() for hv in values if hv.kind == "text" and hv.field.startswith(_NOTE_FIELDS)}
    if not notes or not shown:
        return set()
    keys = {n: _key_word(n).casefold() for n in notes}
    wanted = set(keys.values())
    by_word: dict[str, list[str]] = {}
    for t in shown:
        for w in set(_WORD.findall(t)) & wanted:
            by_word.setdefault(w, []).append(t)
    out = set()
    for n, key in keys.items():
        pat = re.compile(rf"(?<!\w){re.escape(_SPACE.sub(' ', n).casefold())}(?!\w)")
        if any(pat.search(t) for t in by_word.get(key, ())):
            out.add(n)
    return out


@lru_cache(maxsize=None)
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _counts(obj: Any) -> Iterator[int]:
    """The size of every collection in the view (rows, people, invoices)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for name in _field_names(type(obj)):
            yield from _counts(getattr(obj, name))
    elif isinstance(obj, (list, tuple)):
        yield len(obj)
        for x in obj:
            yield from _counts(x)


def _strings(obj: Any) -> Iterator[str]:
    """Every string the view shows."""
    if isinstance(obj, str):
        yield obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for name in _field_names(type(obj)):
            if name != "snapshot":
                yield from _strings(getattr(obj, name))
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _strings(x)


def _decimals(obj: Any, field_name: str = "") -> Iterator[Decimal]:
    """Every Decimal the view shows as a quantity (rates themselves excluded)."""
    if field_name == "rate":
        return
    if isinstance(obj, Decimal):
        yield obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for name in _field_names(type(obj)):
            yield from _decimals(getattr(obj, name), name)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _decimals(x, field_name)


# --- scanning ------------------------------------------------------------------------

_CELL = re.compile(r"<(?:v|t)(?:\s[^>]*)?>([^<]*)</(?:v|t)>")
_DATA_URL = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]+")
_SPACE = re.compile(r"\s+")


def _texts(f: "RenderedFile") -> Iterator[tuple[str, bool]]:
    """The readable text of a rendered file, in every form a value could hide in.

    Each text comes with whether numbers are matched in it: a PDF's raw bytes and a
    workbook's style parts are full of coordinates, sizes and widths that would read as
    rates, while its extracted text and cell values are what a person sees.
    """
    data = f.data
    if f.content_encoding == "gzip":
        try:
            data = gzip.decompress(data)
        except OSError:
            pass
    name = f.path.lower()
    if name.endswith(".xlsx") or data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for member in z.namelist():
                    xml = z.read(member).decode("utf-8", "replace")
                    yield xml, False
                    if member.startswith("xl/worksheets/") or member.endswith("sharedStrings.xml"):
                        # what a person sees: cell values and strings, one per line
                        yield "\n".join(html.unescape(v) for v in _CELL.findall(xml)), True
            return
        except zipfile.BadZipFile:
            pass
    if name.endswith(".pdf") or data[:5] == b"%PDF-":
        for text in _pdf_texts(data):
            yield text, True
        yield data.decode("latin-1"), False
        return
    text = data.decode("utf-8-sig", "replace")
    is_html = name.endswith((".html", ".htm")) or f.content_type.startswith("text/html")
    yield text, not is_html
    if is_html:
        yield _readable_html(text), True
    if name.endswith(".csv") or f.content_type.startswith("text/csv"):
        # one cell per line, so "…,150.00" reads as a number and not as "1,150.00"
        try:
            yield "\n".join(cell for row in csv.reader(io.StringIO(text)) for cell in row), True
        except csv.Error:
            pass


class _Readable(HTMLParser):
    """What a person (or a screen reader) can read on a page, and the page's data island."""

    LABELS = frozenset({"aria-label", "title", "alt", "value", "placeholder", "content", "download", "href"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "style" or (tag == "script" and dict(attrs).get("type") != "application/json"):
            self._skip += 1
        self.out += [v for k, v in attrs if k in self.LABELS and v]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(data)


def _readable_html(text: str) -> str:
    """Text nodes, labelling attributes and JSON islands - not CSS, SVG geometry or code,
    whose numbers (widths, percentages, timeouts) would read as rates."""
    parser = _Readable()
    try:
        parser.feed(text)
        parser.close()
    except Exception:  # a page the parser chokes on is still scanned whole for text  # noqa: BLE001
        return ""
    return "\n".join(parser.out)


def _pdf_texts(data: bytes) -> Iterator[str]:
    from pypdf import PdfReader  # a dependency: the export's text streams are compressed

    try:
        reader = PdfReader(io.BytesIO(data))
        text = "\n".join(page.extract_text() or "" for page in reader.pages)
        meta = "\n".join(str(v) for v in (reader.metadata or {}).values())
    except Exception as exc:  # noqa: BLE001 - any failure to read means "not checked"
        # its text streams are compressed: a PDF we cannot read is a PDF we cannot check
        raise LeakError(f"a PDF export could not be read to check it for hidden values ({type(exc).__name__}); "
                        "publish stopped") from None
    yield text
    # shaped right-to-left text (Arabic presentation forms) reads back as its letters only
    # after NFKC; check both, so a hidden Arabic value cannot pass as glyph forms
    folded = unicodedata.normalize("NFKC", text)
    if folded != text:
        yield folded
    yield meta


def _variants(text: str) -> list[str]:
    text = _DATA_URL.sub(" ", text)
    plain = html.unescape(text)
    out = {_SPACE.sub(" ", text), _SPACE.sub(" ", plain), _SPACE.sub(" ", plain.replace('""', '"'))}
    return list(out)


# Money context for a whole number: a currency before or after it, or a rate's wording.
# Without one, "125" is a page number, a count, a day or an hour total, not a rate.
_CURRENCY = r"(?:[$€£¥₹]|(?:EUR|USD|GBP|CHF|CAD|AUD|NZD|JPY|SEK|NOK|DKK|PLN|CZK|HUF|INR|BRL|MXN|ZAR|SGD|HKD|CNY|AED)\b)"
_MONEY_BEFORE = rf"(?:{_CURRENCY}|@|\b[Rr]ates?\b:?)\s?"
_MONEY_AFTER = rf"\s?(?:{_CURRENCY}|/\s?(?:h|hr|hour)\b|per\s+hour\b|an\s+hour\b|hourly\b)"


@lru_cache(maxsize=8192)
def _compiled(kind: str, value: str) -> re.Pattern[str]:
    v = re.escape(_SPACE.sub(" ", value.strip())).replace(r"\ ", " ")
    if kind == "number":
        # a rate leaks as money: printed with cents ("150.00") it reads as money by itself;
        # the same digits followed by an hours or percent unit are a quantity the page
        # shows (a chart's "100 h" tick, "100%" of a budget)
        not_after = r"(?![\w]|[.,]\d|\s?(?:h|hrs|hours|%)(?!\w))"
        if "." in value:
            return re.compile(rf"(?<![\w.,]){v}{not_after}")
        return re.compile(rf"{_MONEY_BEFORE}{v}(?![\w]|[.,]\d)|(?<![\w.,]){v}{_MONEY_AFTER}")
    return re.compile(rf"(?<!\w){v}(?!\w)" if re.match(r"\w", value[0]) and re.match(r"\w", value[-1]) else v)


def _pattern(hv: HiddenValue) -> re.Pattern[str]:
    return _compiled(hv.kind, hv.value)


_WORD = re.compile(r"\w+")


def _key_word(value: str) -> str:
    """The longest word of a value: if a text lacks it, the value cannot be in the text."""
    words = _WORD.findall(value)
    return max(words, key=len) if words else ""


def find_leaks(files: Sequence["RenderedFile"], hidden: Sequence[HiddenValue]) -> list[tuple[str, HiddenValue]]:
    """(file path, value) for every hidden value found in a file or its name.

    Values are grouped (one rate repeats on thousands of entries) and first looked up in
    a set of the words each text contains; only the few that pass are confirmed with a
    bounded regex. That keeps a portal with tens of thousands of hidden values fast.
    """
    groups: dict[tuple[str, str], HiddenValue] = {}
    for hv in hidden:
        groups.setdefault((hv.kind, _SPACE.sub(" ", hv.value.strip())), hv)
    found: list[tuple[str, HiddenValue]] = []
    for f in files:
        hay: list[tuple[str, bool]] = [(_SPACE.sub(" ", f.path), True), (_SPACE.sub(" ", f.download_name or ""), True)]
        for text, numbers_ok in _texts(f):
            hay += [(v, numbers_ok) for v in _variants(text)]
        words = [(set(_WORD.findall(h.casefold())), h, ok) for h, ok in hay]
        for (kind, needle), hv in groups.items():
            key = _key_word(needle).casefold()
            candidates = [h for ws, h, ok in words if (ok or kind != "number") and (not key or key in ws) and needle in h]
            if candidates and any(_pattern(hv).search(h) for h in candidates):
                found.append((f.path, hv))
    return found


def scan(files: Sequence["RenderedFile"], hidden: Sequence[HiddenValue]) -> None:
    """Raise LeakError if any hidden value occurs in any rendered file or file name."""
    found = find_leaks(files, hidden)
    if not found:
        return
    first_path, first = found[0]
    more = f" and {len(found) - 1} more" if len(found) > 1 else ""
    raise LeakError(f"{first_path}: contains a hidden value: {first.field}{first.shown}{more}; publish stopped")


# --- withholding one description ---------------------------------------------------------


def _groups(hidden: Sequence[HiddenValue]) -> dict[tuple[str, str], HiddenValue]:
    groups: dict[tuple[str, str], HiddenValue] = {}
    for hv in hidden:
        groups.setdefault((hv.kind, _SPACE.sub(" ", hv.value.strip())), hv)
    return groups


def _why(hv: HiddenValue) -> str:
    """A hit's reason for the review. One rate is shared by many records, so a number
    names the kind of rate, not whichever record happened to be listed first."""
    if hv.kind == "number":
        return f"a hidden rate ({hv.field.split(' (')[0]})"
    return hv.field


def description_hits(descriptions: Sequence[str], hidden: Sequence[HiddenValue]) -> dict[int, list[str]]:
    """{index: [field, …]} for each description holding a hidden value, matched exactly
    as the file scan matches it; the fields name what was found, never the value."""
    texts = [_SPACE.sub(" ", html.unescape(d)) for d in descriptions]
    by_word: dict[str, list[int]] = {}
    for i, t in enumerate(texts):
        for w in set(_WORD.findall(t.casefold())):
            by_word.setdefault(w, []).append(i)
    hits: dict[int, list[str]] = {}
    for (_kind, needle), hv in _groups(hidden).items():
        key = _key_word(needle).casefold()
        candidates = by_word.get(key, ()) if key else range(len(texts))
        for i in candidates:
            if needle in texts[i] and _pattern(hv).search(texts[i]):
                hits.setdefault(i, []).append(_why(hv))
    return hits


def withhold_descriptions(view: "PortalView", hidden: Sequence[HiddenValue], review: ReviewLog | None = None) -> "PortalView":
    """The view with every description that holds a hidden value replaced by "details withheld".

    Redaction in the view should have removed everything the guard knows; what it missed
    costs one description, not the client's portal. The row keeps its date, person, task
    and hours. `review` (rows aligned with the timesheet) gets a finding for each.
    """
    rows = view.timesheet
    distinct: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if r.description and r.description != WITHHELD:
            distinct.setdefault(r.description, []).append(i)
    if not distinct:
        return view
    texts = list(distinct)
    hits = description_hits(texts, hidden)
    if not hits:
        return view
    changed = list(rows)
    for d, fields in sorted(hits.items()):
        for i in distinct[texts[d]]:
            changed[i] = dataclasses.replace(rows[i], description=WITHHELD)
            if review is not None and i < len(review.rows):
                review.findings.append(Finding(review.rows[i], "withheld", tuple(dict.fromkeys(fields))))
    return dataclasses.replace(view, timesheet=tuple(changed))
