"""The client's language: gettext catalogs for every page, export and mail string, and
Babel for numbers, money, dates and week names.

A locale is a Babel locale name (`de`, `de_CH`, `fr`, `en_GB`): its language picks the
catalog (English text when the language has none shipped), its region the formats
(`de_CH` writes 1'275.80, `de` 1.275,80). Catalogs are the `.po` files under
`bridge/locale/<lang>/LC_MESSAGES/messages.po`, compiled in memory when first used, so the
repository holds no binary `.mo` files.

English keeps the formats the portal always had ("4 Dec 2026", "$1,275.80", "1,275.80 h").
"""

from __future__ import annotations

import datetime as dt
import functools
import gettext as _gettext
import io
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as _babel_date
from babel.dates import format_skeleton
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import (
    format_currency,
    format_decimal,
    format_percent,
    get_decimal_symbol,
    get_group_symbol,
)

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "messages"
DEFAULT = "en"
MINUS = "\u2212"  # a real minus sign reads better than a hyphen
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "AUD": "A$", "CAD": "C$", "NZD": "NZ$", "JPY": "¥", "INR": "₹"}


def shipped_languages() -> tuple[str, ...]:
    """English plus every language with a catalog in bridge/locale."""
    found = sorted(p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    return (DEFAULT, *[code for code in found if code != DEFAULT])


def check_locale(value: str) -> str:
    """The normalized locale name, or ValueError saying what is shipped (for config errors)."""
    try:
        loc = Locale.parse(value.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        raise ValueError(f"{value!r} is not a locale name; use one like en, de, de_CH, fr") from None
    if loc.language not in shipped_languages():
        raise ValueError(f"no translation ships for {loc.language!r}; shipped: {', '.join(shipped_languages())}")
    return str(loc)


@functools.lru_cache(maxsize=None)
def translations(language: str) -> _gettext.NullTranslations:
    """The compiled catalog for a language; English (or a missing catalog) translates to itself."""
    po = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == DEFAULT or not po.exists():
        return _gettext.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=language, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return _gettext.GNUTranslations(buf)


def N_(message: str) -> str:
    """Marks a msgid that is translated later, where it is shown (extracted like gettext)."""
    return message


@dataclass(frozen=True)
class Lang:
    """One locale's strings and formats: what templates, exports and mails are given."""

    locale: str

    @property
    def _loc(self) -> Locale:
        return _parse(self.locale)

    @property
    def language(self) -> str:
        return self._loc.language

    @property
    def is_english(self) -> bool:
        return self.language == DEFAULT

    # --- strings -------------------------------------------------------------------------

    def gettext(self, message: str, **values: object) -> str:
        text = translations(self.language).gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        text = translations(self.language).ngettext(singular, plural, n)
        return text % {"num": n, **values}

    # --- numbers -------------------------------------------------------------------------

    def number(self, value: Decimal | float | int | None, places: int = 2) -> str:
        if value is None:
            return ""
        return self._number(Decimal(value), places)

    @functools.lru_cache(maxsize=8192)  # noqa: B019 - few Langs live, and a timesheet repeats its figures
    def _number(self, value: Decimal, places: int) -> str:
        pattern = "#,##0" + ("." + "0" * places if places else "")
        return format_decimal(value, format=pattern, locale=self._loc).replace("-", MINUS)

    def hours(self, value: Decimal | float | int | None, places: int = 2) -> str:
        """A number of hours with its unit: "12.50 h", "12,50 Std."."""
        if value is None:
            return ""
        return self.hours_text(self.number(value, places))

    def hours_text(self, figure: str) -> str:
        """Any text as an hours figure, with the unit in this language: "12.50 h", "12,50 Std."."""
        return self.gettext("%(hours)s h", hours=figure)

    def money(self, amount: Decimal | float | int | None, currency: str | None) -> str:
        if amount is None:
            return ""
        a = Decimal(amount)
        if not currency:
            return self.number(a, 2)
        if self.is_english:
            # the portal's English money: a symbol where one is unambiguous to the agencies'
            # clients, else the code after the figure; yen have no minor unit
            sign = MINUS if a < 0 else ""
            body = f"{abs(a):,.0f}" if currency == "JPY" else f"{abs(a):,.2f}"
            sym = _SYMBOLS.get(currency)
            return f"{sign}{sym}{body}" if sym else f"{sign}{body} {currency}"
        return format_currency(a, currency, locale=self._loc).replace("-", MINUS)

    def percent(self, value: Decimal | float | int | None, places: int = 1) -> str:
        """A share given in per cent, one decimal as the view gives it (87.5 -> "87.5%", "87,5 %");
        `places=0` for thresholds ("75%")."""
        if value is None:
            return ""
        # the locale's own pattern ("#,##0%", "#,##0\u00a0%"), with the wanted decimals
        pattern = self._loc.percent_formats[None].pattern.replace("#,##0", "#,##0" + ("." + "0" * places if places else ""), 1)
        return format_percent(Decimal(value) / 100, format=pattern, locale=self._loc).replace("-", MINUS)

    def count(self, n: int) -> str:
        return format_decimal(n, format="#,##0", locale=self._loc)

    @property
    def number_symbols(self) -> dict[str, str]:
        """What the portal's script needs to print numbers as this page does."""
        return {"group": get_group_symbol(self._loc), "decimal": get_decimal_symbol(self._loc), "minus": MINUS}

    # --- dates ---------------------------------------------------------------------------

    def date(self, d: dt.date | None) -> str:
        if d is None:
            return ""
        if self.is_english:
            return f"{d.day} {_babel_date(d, 'MMM y', locale='en')}"
        return format_skeleton("yMMMd", d, locale=self._loc)

    def short_date(self, d: dt.date | None) -> str:
        if d is None:
            return ""
        if self.is_english:
            return f"{d.day} {_babel_date(d, 'MMM', locale='en')}"
        return format_skeleton("MMMd", d, locale=self._loc)

    def month(self, d: dt.date) -> str:
        """A month and year: "Nov 2026", "Nov. 2026"."""
        return format_skeleton("yMMM", d, locale=self._loc) if not self.is_english else _babel_date(d, "MMM y", locale="en")

    def long_date(self, d: dt.date) -> str:
        """With the weekday, for mail: "Thursday 27 March 2025", "Donnerstag, 27. März 2025"."""
        if self.is_english:
            return f"{_babel_date(d, 'EEEE', locale='en')} {d:%d} {_babel_date(d, 'MMMM y', locale='en')}"
        return _babel_date(d, "full", locale=self._loc)

    def weekday(self, d: dt.date) -> str:
        return _babel_date(d, "EEEE", locale=self._loc)

    def datetime(self, t: dt.datetime | None) -> str:
        """A moment in the zone the view gives it, with the zone's abbreviation."""
        if t is None:
            return self.gettext("not yet synced")
        zone = t.tzname() or ""
        return f"{self.date(t.date())}, {t:%H:%M} {zone}".strip()


@functools.lru_cache(maxsize=64)
def _parse(locale: str) -> Locale:
    return Locale.parse(locale.replace("-", "_"))


@functools.lru_cache(maxsize=64)
def lang(locale: str | None) -> Lang:
    """The Lang for a locale name (None or "" means English)."""
    return Lang(str(_parse(locale or DEFAULT)))
