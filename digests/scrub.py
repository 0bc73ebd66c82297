"""Remove personal data from free text before an alliance sees it: numbers, addresses, names."""

from __future__ import annotations

import re
from collections.abc import Callable

# Public service numbers residents are told about: keeping them helps, they name no one.
PUBLIC_NUMBERS = frozenset(
    {
        "112",
        "113",
        "09008844",  # politie, geen spoed
        "08007000",  # Meld Misdaad Anoniem
        "08000113",  # 113 Zelfmoordpreventie
        "08002000",  # Veilig Thuis
        "14010",  # gemeente Utrecht and others use 14 + area code
        "140010",
        "140070",
    }
)

_SEP = r"[ \-.]?"

_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# IBAN: two letters, two check digits, then 11-30 letters/digits in groups (NL: 4 letters + 10).
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
# Phone numbers: international (+ or 00), Dutch 10-digit national numbers, 0800/0900-type lines.
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"(?:\+|00)\d{2,3}" + _SEP + r"(?:\(0\)" + _SEP + r")?\d(?:" + _SEP + r"\d){6,10}"
    r"|0[1-9](?:" + _SEP + r"\d){8}"
    r"|0[89]0\d" + _SEP + r"\d{2}" + _SEP + r"\d{2}(?:" + _SEP + r"\d{3})?"
    r")(?!\w)"
)
_PC6 = re.compile(
    r"\b[1-9]\d{3}(?:[ ]?(?!SA|SD|SS)[A-Z]{2}|(?!sa|sd|ss)[a-z]{2})\b(?:,?[ ]?\d{1,4}[a-zA-Z]?\b)?"
)
# Unambiguous street words match in any case; words like "park" or "hof" only as a capitalised
# name, so that "in het park 3 jongeren" stays. A lone "weg 12" has no name and stays too.
_STREET_CLEAR = "straat|laan|weg|plein|singel|kade|gracht|dijk|dreef|steeg|straatweg"
_STREET_NAMED = (
    "pad|hof|park|baan|ring|wal|markt|dam|erf|veld|allee|plantsoen|boulevard|hoven|oord|werf"
    "|haven|akker|brink|rade|zoom|stede"
)
_HOUSE_NUMBER = r"\s+\d{1,4}(?:[ -]?[a-zA-Z]\b|-\d{1,3}\b|\b)(?![.,]\d)"
_STREET = re.compile(
    r"\b(?:[A-Za-zÀ-ÿ'-]{2,}(?i:" + _STREET_CLEAR + r")"
    r"|[A-ZÀ-Þ][A-Za-zÀ-ÿ'-]+(?:" + _STREET_NAMED + r"))" + _HOUSE_NUMBER
)
_PLATE = re.compile(r"\b(?:[A-Z]{1,3}|\d{1,3})-(?:[A-Z]{1,3}|\d{1,3})-(?:[A-Z]{1,3}|\d{1,3})\b")
_HANDLE = re.compile(r"(?<![\w@.])@[A-Za-z][A-Za-z0-9_]{3,31}\b")

_NAME_WORD = r"[^\W\d_][\w'’-]*"
_CAP_WORD = r"[A-ZÀ-ÖØ-ÞĀ-ſ][\w'’-]*"
_PARTICLE = r"(?:van|de|der|den|ten|ter|el|al|bin|ben|da|di|le)"
_MORE_NAMES = r"(?:(?:\s+" + _PARTICLE + r")*\s+" + _CAP_WORD + r"){0,2}"
# After these phrases the next word is the name whatever its case ("mijn naam is jan").
_NAME_ANY_CASE = re.compile(
    r"(?i:\b(mijn naam is|ik heet|my name is|benim adım|benim adim|nazywam się|nazywam sie))"
    r"\s+" + _NAME_WORD + _MORE_NAMES
)
# "ik ben" and "I am" are followed by a name only when a capital follows ("ik ben bang" stays).
_NAME_CAPITAL = re.compile(r"(?i:\b(ik ben|i am|i'm|i’m))\s+(" + _CAP_WORD + r")" + _MORE_NAMES)
# Arabic has no capitals: take the word after "اسمي" and a second one unless it starts with "و".
_ARABIC_NAME = re.compile(r"(?<!\w)(اسمي)\s+[\u0600-\u06FF]+(?:\s+(?!و)[\u0600-\u06FF]+)?")
# Words a capital after "ik ben"/"I am" can be without being a name.
_NOT_NAMES = frozenset(
    {"nederlander", "nederlands", "dutch", "turks", "marokkaans", "pools", "moslim", "christen"}
)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if _digits(text) in PUBLIC_NUMBERS:
        return text
    return "[telefoon]"


def _url(match: re.Match[str]) -> str:
    text = match.group(0).rstrip(".,;:!?)")
    tail = match.group(0)[len(text) :]
    # A bare domain ("www.politie.nl", "https://gemeente.nl/") points to no one; any path may.
    rest = re.sub(r"^(?:https?://)?[^/]+", "", text, flags=re.IGNORECASE)
    if rest in ("", "/"):
        return match.group(0)
    return "[link]" + tail


def _plate(match: re.Match[str]) -> str:
    text = match.group(0)
    groups = text.split("-")
    has_letters = any(g.isalpha() for g in groups)
    has_digits = any(g.isdigit() for g in groups)
    # Dutch plates are 6 characters in 3 groups, letters and digits mixed.
    if len(text) == 8 and has_letters and has_digits:
        return "[kenteken]"
    return text


def _name_capital(match: re.Match[str]) -> str:
    if match.group(2).lower() in _NOT_NAMES:
        return match.group(0)
    return match.group(1) + " [naam]"


def _name_any(match: re.Match[str]) -> str:
    return match.group(1) + " [naam]"


_RULES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (_URL, _url),
    (_EMAIL, "[e-mail]"),
    (_IBAN, "[iban]"),
    (_PHONE, _phone),
    (_PC6, "[adres]"),
    (_STREET, "[adres]"),
    (_PLATE, _plate),
    (_HANDLE, "[naam]"),
    (_ARABIC_NAME, _name_any),
    (_NAME_ANY_CASE, _name_any),
    (_NAME_CAPITAL, _name_capital),
]


def scrub(text: str) -> str:
    """Replace phone numbers, e-mail, addresses, plates, IBANs, handles, links and names."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text
