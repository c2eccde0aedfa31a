"""The client's language and formats: expected strings written by hand from CLDR's rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from bridge.config import ConfigError, load_config
from bridge.i18n import check_locale, lang, shipped_languages

DEC_4 = dt.date(2026, 12, 4)


def test_english_keeps_the_portal_formats() -> None:
    en = lang("en")
    assert en.date(DEC_4) == "4 Dec 2026"
    assert en.short_date(DEC_4) == "4 Dec"
    assert en.number(Decimal("1275.8")) == "1,275.80"
    assert en.hours(Decimal("1275.8")) == "1,275.80 h"
    assert en.hours(Decimal("561.95"), 1) == "562.0 h"
    assert en.money(Decimal("5730.48"), "GBP") == "£5,730.48"
    assert en.money(Decimal("-5"), "USD") == "\u2212$5.00"
    assert en.percent(Decimal("12.5")) == "12.5%" and en.percent(Decimal("90")) == "90.0%"
    assert en.money(Decimal("1234"), "CHF") == "1,234.00 CHF" and en.count(12000) == "12,000"


def test_german_reads_german() -> None:
    de = lang("de")
    assert de.date(DEC_4) == "4. Dez. 2026"
    assert de.number(Decimal("1275.8")) == "1.275,80"
    assert de.hours(Decimal("1275.8")) == "1.275,80 Std."
    assert de.money(Decimal("1275.8"), "EUR") == "1.275,80\xa0€"
    assert de.weekday(DEC_4) == "Freitag"


def test_swiss_german_formats_with_german_text() -> None:
    ch = lang("de_CH")
    assert ch.number(Decimal("1275.8")) == "1'275.80"
    assert ch.hours(Decimal("2")) == "2.00 Std."


def test_french() -> None:
    fr = lang("fr")
    assert fr.date(DEC_4) == "4 déc. 2026"
    assert fr.number(Decimal("1275.8")) == "1\u202f275,80"


def test_locale_names_are_checked() -> None:
    assert set(shipped_languages()) >= {"en", "de", "fr"}
    assert check_locale("de-CH") == "de_CH"
    with pytest.raises(ValueError, match="shipped: en, de, fr"):
        check_locale("ja")
    with pytest.raises(ValueError, match="not a locale name"):
        check_locale("klingon!")


def test_config_locale_default_and_error(tmp_path) -> None:
    cfg = tmp_path / "bridge.toml"
    cfg.write_text('[agency]\nlocale = "de"\n[[clients]]\nkey = "a"\nname = "A"\nsources = {}\n'
                   '[[clients]]\nkey = "b"\nname = "B"\nsources = {}\nlocale = "fr"\n', encoding="utf-8")
    config = load_config(cfg)
    assert [config.locale_of(c) for c in config.clients] == ["de", "fr"]
    cfg.write_text('[[clients]]\nkey = "a"\nname = "A"\nsources = {}\nlocale = "xx_YY"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert "locale" in str(err.value) and "bridge.toml" in str(err.value)
