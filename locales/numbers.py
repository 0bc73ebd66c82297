"""Numbers, percentages and dates as each language writes them (Babel, from CLDR).

"6,6" and "1.045" in Dutch, "6.6" and "1,045" in English, "%33" in Turkish, "1 045" in Polish.
Arabic keeps Latin digits (Babel's default for `ar`), as the survey texts do and as most Arabic
speakers in the Netherlands, many from the Maghreb, are used to.
"""

from __future__ import annotations

import decimal
from datetime import date
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as _format_date
from babel.numbers import format_decimal, format_percent

# The locale a catalogue language stands for: the Dutch one where a country matters.
LOCALES = {"nl": "nl_NL", "en": "en_GB", "tr": "tr_TR", "pl": "pl_PL", "ar": "ar"}
FALLBACK = "nl_NL"


@lru_cache(maxsize=64)
def locale(lang: str | None) -> Locale:
    """The Babel locale of a language code; Dutch for an unknown one."""
    try:
        return Locale.parse(LOCALES.get(lang or "", lang or FALLBACK))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(FALLBACK)


def number(value: float, lang: str | None, decimals: int = 1) -> str:
    """A number with exactly `decimals` decimals: 6,6 / 6.6; 1.045,0 / 1,045.0."""
    pattern = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    with decimal.localcontext(rounding=decimal.ROUND_HALF_UP):  # 6,65 -> 6,7 as people round
        return str(format_decimal(value, pattern, locale=locale(lang)))


def count(value: int, lang: str | None) -> str:
    """A whole number: 1.045 / 1,045 / 1 045."""
    return number(value, lang, 0)


def percent(share: float, lang: str | None, decimals: int = 0) -> str:
    """A share (0..1) as a percentage: 33% / %33."""
    pattern = locale(lang).percent_formats[None].pattern  # "#,##0%", "%#,##0", "#,##0 %"
    if decimals > 0:
        pattern = pattern.replace("0", "0." + "0" * decimals, 1)
    with decimal.localcontext(rounding=decimal.ROUND_HALF_UP):
        return str(format_percent(share, pattern, locale=locale(lang)))


def day(value: date, lang: str | None) -> str:
    """A date written out: 3 mei 2026 / 3 May 2026 / 3 Mayıs 2026 / 3 maja 2026."""
    return str(_format_date(value, "long", locale=locale(lang)))
