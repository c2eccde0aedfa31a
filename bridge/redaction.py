"""Redaction of what leaves the bridge: entry descriptions for portals, secrets for logs.

Descriptions (DESIGN.md invariant 8: redact, then guard). A tracker note is free text
written for colleagues: it names other clients, colleagues, e-mail addresses, links and
internal asides. `NoteRedactor.redact` rewrites one note for one client's portal:

* inline internal segments ("… [internal] estimate too low") are cut, to the end of the
  line or to a closing "[/internal]";
* e-mail addresses, web addresses and phone numbers are removed (or reduced to their
  domain, as `[redact]` says; an allow-list of domains stays whole);
* the agency's own `[redact]` patterns and terms are removed;
* other clients' names, their projects' names and codes are removed;
* people's names in their common forms - "First Last", "Last, First", "F. Last", the last
  name alone, the first name alone where the policy hides it - become the policy's display
  name for that person ("Anna", "Designer", "Team member B").

Names are matched on words, not characters: the note is folded (accents stripped, case
folded) with a map back to the original positions, split into words, and looked up in a
dictionary keyed by a phrase's first word, so the cost does not grow with the number of
names. A name of one word only matches a capitalised word, so a colleague called Rose does
not rewrite "rose garden". Possessives ("Schmidt's") keep their "'s".

Every removal leaves a visible, neutral MARKER so the client is not misled by a sentence
with a hole in it; every rewrite is reported (why, never the text) for `bridge review`.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MARKER = "[removed]"
WITHHELD = "details withheld"

# --- logs ------------------------------------------------------------------------------

_SECRET_PARAMS = re.compile(
    r"(token|secret|key|password|signature|credential|code|auth|x-amz-|policy)", re.I
)


def sanitize_url(url: str) -> str:
    """Replace the values of secret-looking query parameters with ***."""
    parts = urlsplit(str(url))
    if not parts.query:
        return str(url)
    query = [(k, "***" if _SECRET_PARAMS.search(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="[]*:,")))


def scrub(text: str, secrets: list[str] | tuple[str, ...]) -> str:
    """Remove any known secret value from a message before it is logged or raised."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


# --- folding and words ---------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    decomposed = unicodedata.normalize("NFKD", ch)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class _FoldTable(dict):  # type: ignore[type-arg]
    """str.translate table that folds each character on first sight."""

    def __missing__(self, code: int) -> str:
        folded = self[code] = _fold_char(chr(code))
        return folded


_TABLE = _FoldTable()


def fold(text: str) -> str:
    """Accents stripped and case folded: "Núñez" -> "nunez", "Straße" -> "strasse"."""
    return text.lower() if text.isascii() else text.translate(_TABLE)


def _fold_map(text: str) -> tuple[str, list[int] | None]:
    """`fold(text)` and, for each folded character, its index in `text` (None: the same)."""
    if text.isascii():
        return text.lower(), None
    folded = text.translate(_TABLE)
    if len(folded) == len(text) and all(len(_TABLE[ord(c)]) == 1 for c in set(text) if ord(c) > 127):
        return folded, None  # one character for one: positions are unchanged
    where: list[int] = []
    for i, ch in enumerate(text):  # "ß" -> "ss", a combining accent -> ""
        where.extend([i] * len(_TABLE[ord(ch)]))
    return folded, where


# An ideograph, kana or hangul syllable is a word of its own: those scripts do not put
# spaces between words, and a Latin name written against them ("与Anna讨论") must still
# read as a word.
_CJK = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
_WORDS = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
# what may stand between two words of one name or phrase: "Anna  Schmidt", "Smith & Co",
# "Schmidt, Anna", "A. Schmidt"; never a line break
_GAP = re.compile(r"[^\w\n]{0,3}")


def words(text: str) -> list[str]:
    """The folded words of a text, as the redactor and its callers split it."""
    return _WORDS.findall(fold(text))


# --- rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A phrase to find (folded words) and what it becomes; `replacement` None keeps it."""

    words: tuple[str, ...]
    replacement: str | None
    reason: str
    capitalised: bool = False  # one-word names: only a word that starts with a capital


@dataclass(frozen=True)
class PersonName:
    """A person the notes may name, and what the client's policy calls them."""

    first: str
    last: str
    display: str
    reason: str  # "a person's name (harvest:42)"
    first_hidden: bool  # the policy shows neither this first name nor the full name


@dataclass(frozen=True)
class ContactPolicy:
    """What happens to e-mail and web addresses in notes (from the `[redact]` table)."""

    emails: str = "removed"  # removed | domain
    urls: str = "removed"  # removed | domain
    allow_domains: tuple[str, ...] = ()


@dataclass
class NoteRedactor:
    """Rewrites descriptions for one client's portal; build it with `note_redactor`."""

    rules: dict[str, Any] = field(default_factory=dict)  # a trie of words; "" holds a phrase's Rule
    patterns: Sequence[tuple[re.Pattern[str], str]] = ()
    internal: re.Pattern[str] | None = None
    contacts: ContactPolicy = field(default_factory=ContactPolicy)
    _memo: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict, repr=False)

    def redact(self, text: str) -> tuple[str, tuple[str, ...]]:
        """The note as the client may read it, and why it changed (no reasons: unchanged)."""
        hit = self._memo.get(text)
        if hit is None:
            hit = self._memo[text] = self._redact(text)
        return hit

    def _redact(self, text: str) -> tuple[str, tuple[str, ...]]:
        reasons: list[str] = []
        text = _cut_internal(text, self.internal, reasons)
        text = _EMAIL.sub(lambda m: self._email(m, reasons), text)
        text = _URL.sub(lambda m: self._url(m, reasons), text)
        text = _PHONE.sub(lambda m: _phone(m, reasons), text)
        for pattern, reason in self.patterns:
            text, n = pattern.subn(MARKER, text)
            if n:
                reasons.append(reason)
        text = self._names(text, reasons)
        text = _tidy(text) if reasons else text
        return text, tuple(dict.fromkeys(reasons))

    # -- contacts ---------------------------------------------------------------------
    def _allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == d or host.endswith("." + d) for d in self.contacts.allow_domains)

    def _email(self, m: re.Match[str], reasons: list[str]) -> str:
        domain = m.group("domain")
        if self._allowed(domain):
            return m.group()
        reasons.append("an e-mail address")
        return f"{MARKER}@{domain}" if self.contacts.emails == "domain" else MARKER

    def _url(self, m: re.Match[str], reasons: list[str]) -> str:
        url = m.group()
        host = urlsplit(url if "://" in url else "http://" + url).hostname or ""
        if host and self._allowed(host):
            return url
        reasons.append("a web address")
        return f"{host}/{MARKER}" if self.contacts.urls == "domain" and host else MARKER

    # -- names --------------------------------------------------------------------------
    def _names(self, text: str, reasons: list[str]) -> str:
        if not self.rules:
            return text
        folded, where = _fold_map(text)
        rules = self.rules
        if not any(w in rules for w in _WORDS.findall(folded)):
            return text  # most notes name nobody: one pass in C decides
        found = [(m.start(), m.end(), m.group()) for m in _WORDS.finditer(folded)]
        out: list[str] = []
        last = 0  # in the original text
        i = 0
        while i < len(found):
            match = self._match_at(found, i, folded, text, where)
            if match is None:
                i += 1
                continue
            rule, n = match
            start = found[i][0] if where is None else where[found[i][0]]
            end_f = found[i + n - 1][1]
            end = end_f if where is None else where[end_f - 1] + 1
            if rule.replacement is not None:
                out.append(text[last:start])
                out.append(rule.replacement)
                last = end
                reasons.append(rule.reason)
            i += n
        out.append(text[last:])
        return "".join(out)

    def _match_at(self, found: list[tuple[int, int, str]], i: int, folded: str, text: str,
                  where: list[int] | None) -> tuple[Rule, int] | None:
        """The longest phrase starting at word i, walking the trie one word at a time."""
        best = None
        node = self.rules.get(found[i][2])
        k = i
        while node is not None:
            rule = node.get("")
            if rule is not None and (not rule.capitalised or text[found[i][0] if where is None else where[found[i][0]]].isupper()):
                best = (rule, k - i + 1)
            k += 1
            if k >= len(found):
                break
            node = node.get(found[k][2])
            if node is not None and not _GAP.fullmatch(folded, found[k - 1][1], found[k][0]):
                break
        return best


# --- contacts and internal segments -------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@(?P<domain>[\w-]+(?:\.[\w-]+)+)")
_URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"'()\[\]]+[^\s<>\"'()\[\].,;:!?]")
# A phone number: an international "+" form, an area code in brackets, or three or more
# groups of digits (555-123-4567). Two groups are not enough: "2024-0012" is an invoice
# number and "10-12" a range. Dates are left alone below.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?(?:\(\d{1,5}\)[\s.-]?)?\d{1,8}(?:[\s.-]\d{1,8}){0,4}"
    r"|\(\d{2,5}\)[\s.-]?\d{2,8}(?:[\s.-]\d{2,8}){0,3}"
    r"|\d{2,5}(?:[\s.-]\d{2,5}){2,4})(?![\w])"
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")


def _phone(m: re.Match[str], reasons: list[str]) -> str:
    digits = sum(c.isdigit() for c in m.group())
    # "1 234 567" is a French number, not a phone: without a "+", eight digits at least
    if digits < (7 if m.group().startswith("+") else 8) or digits > 15 or _DATE.fullmatch(m.group()):
        return m.group()
    reasons.append("a phone number")
    return MARKER


def internal_pattern(prefixes: Sequence[str]) -> re.Pattern[str] | None:
    """Where an inline internal remark starts and ends.

    "[internal]" runs to a closing "[/internal]" or to the end of the line; any other
    prefix ("INTERNAL:") to the end of the line. Whole lines that start with a prefix are
    dropped by the policy before a note gets here.
    """
    alts = []
    for p in prefixes:
        p = p.strip()
        if not p:
            continue
        alt = re.escape(p)
        if p.startswith("[") and p.endswith("]"):
            alts.append(rf"{alt}(?:[^\n]*?{re.escape('[/' + p[1:])}|[^\n]*)")
        else:
            alts.append(rf"(?<!\w){alt}[^\n]*")
    return re.compile("(?i)" + "|".join(alts)) if alts else None


def _cut_internal(text: str, pattern: re.Pattern[str] | None, reasons: list[str]) -> str:
    if pattern is None:
        return text
    text, n = pattern.subn(MARKER, text)
    if n:
        reasons.append("an internal remark")
    return text


_DOUBLE = re.compile(re.escape(MARKER) + r"(?:[\s,;/&+-]*" + re.escape(MARKER) + ")+")


def _tidy(text: str) -> str:
    """One marker for a run of removals ("[removed], [removed]" -> "[removed]")."""
    return _DOUBLE.sub(MARKER, text)


# --- building a redactor ------------------------------------------------------------------


def _add(rules: dict[str, Any], phrase: str, replacement: str | None, reason: str,
         capitalised: bool = False) -> None:
    """Put a phrase in the trie; where one is there already, the first added stays."""
    ws = words(phrase)
    if not ws or (len(ws) == 1 and len(ws[0]) < 2):
        return  # a one-letter "name" would rewrite every "a"
    node = rules
    for w in ws:
        node = node.setdefault(w, {})
    node.setdefault("", Rule(tuple(ws), replacement, reason, capitalised and len(ws) == 1))


def note_redactor(
    *,
    own_names: Iterable[str] = (),
    other_names: Iterable[tuple[str, str]] = (),
    people: Iterable[PersonName] = (),
    terms: Iterable[str] = (),
    patterns: Iterable[str] = (),
    internal_prefixes: Sequence[str] = (),
    contacts: ContactPolicy | None = None,
) -> NoteRedactor:
    """A redactor for one client's portal.

    Args:
        own_names: this client's names, its projects and codes, the agency's name: kept
            even where a shorter name of another client or person is part of them
            ("Acme Labs" stays on Acme Labs' portal when "Acme" is another client).
        other_names: (name, reason) of other clients, their projects and codes.
        people: everyone a note may name, with their display name under the policy.
        terms, patterns: the agency's `[redact]` terms (whole words or phrases, case and
            accents ignored) and regular expressions.
    """
    rules: dict[str, Any] = {}
    for name in own_names:
        _add(rules, name, None, "")
    for i, term in enumerate(terms, start=1):
        _add(rules, term, MARKER, f"the agency's redact term {i}")
    for name, reason in other_names:
        _add(rules, name, MARKER, reason)
    for p in people:
        first, last = p.first.strip(), p.last.strip()
        if p.display == f"{first} {last}".strip():
            continue  # the policy shows the full name: nothing to rewrite
        if first and last:
            for form in (f"{first} {last}", f"{last} {first}", f"{last}, {first}", f"{first[0]}. {last}"):
                _add(rules, form, p.display, p.reason)
        if last:
            _add(rules, last, p.display, p.reason, capitalised=True)
        if first and p.first_hidden:
            _add(rules, first, p.display, p.reason, capitalised=True)
    compiled = [(re.compile(p), f"the agency's redact pattern {i}") for i, p in enumerate(patterns, start=1)]
    return NoteRedactor(rules=rules, patterns=compiled, internal=internal_pattern(internal_prefixes),
                        contacts=contacts or ContactPolicy())


# --- what was changed, for `bridge review` -------------------------------------------------


@dataclass(frozen=True)
class EntryRef:
    """Where a published description came from: enough for the agency to find it."""

    source: str
    source_id: str
    spent_date: dt.date
    project: str
    person: str  # as displayed on the portal


@dataclass(frozen=True)
class Finding:
    """One description the client sees changed: redacted in part, or withheld whole."""

    entry: EntryRef
    action: str  # "redacted" | "withheld"
    reasons: tuple[str, ...]  # why, never the removed text


@dataclass
class ReviewLog:
    """Filled while a view is built and guarded: `rows[i]` is the entry of timesheet row i."""

    rows: list[EntryRef] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for f in self.findings if f.action == action)
