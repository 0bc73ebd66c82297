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
# Telegram links name a person or a group even without a scheme (t.me/jan, tg://user?id=...),
# and so does a profile path on a bare domain (instagram.com/jan). A bare domain alone stays.
_TELEGRAM_LINK = re.compile(
    r"(?<![\w.@/])(?:(?:t|telegram)\.(?:me|dog)/[^\s<>\"']+|tg://[^\s<>\"']+)", re.IGNORECASE
)
_PROFILE_LINK = re.compile(
    r"(?<![\w.@/-])(?:[a-z0-9-]{1,63}\.){1,4}(?:com|nl|net|org|me|be|eu|tr|pl|ma|io|tv|app|info)"
    r"/[^\s<>\"']*[\w/]",
    re.IGNORECASE,
)
# BSN (burgerservicenummer): nine digits, separators allowed, checked with the eleven-test below.
_BSN = re.compile(r"(?<!\d)(?<!\d[ .-])\d(?:[ .-]?\d){8}(?![ .-]?\d)")
# Bounded repeats (RFC 5321's 64-character local part, 63-character labels) keep every pattern
# here linear on odd input such as "a-a-a-...", which unbounded ones scanned from every position.
_EMAIL = re.compile(r"\b[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}\b")
# IBAN: two letters, two check digits, then 11-30 letters/digits in groups (NL: 4 letters + 10).
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
# Phone numbers: international (+ or 00), Dutch 10-digit national numbers, 0800/0900-type lines.
_PHONE = re.compile(
    r"(?<![\w+(])(?:"
    r"(?:\+|00)\d{2,3}" + _SEP + r"(?:\(0\)" + _SEP + r")?\d(?:" + _SEP + r"\d){6,10}"
    r"|0[1-9](?:" + _SEP + r"\d){8}"
    # An area code in brackets: (06) 12345678, (010) 123 45 67.
    r"|\(0[1-9]\d{0,2}\)[ ]?\d(?:" + _SEP + r"\d){5,7}"
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
    r"\b(?:[A-Za-zÀ-ÿ'-]{2,60}(?i:" + _STREET_CLEAR + r")"
    r"|[A-ZÀ-Þ][A-Za-zÀ-ÿ'-]{1,60}(?:" + _STREET_NAMED + r"))" + _HOUSE_NUMBER
)
_PLATE = re.compile(r"\b(?:[A-Z]{1,3}|\d{1,3})-(?:[A-Z]{1,3}|\d{1,3})-(?:[A-Z]{1,3}|\d{1,3})\b")
_HANDLE = re.compile(r"(?<![\w@.])@[A-Za-z][A-Za-z0-9_]{3,31}\b")

_NAME_WORD = r"[^\W\d_][\w'’-]*"
_CAP_WORD = r"[A-ZÀ-ÖØ-ÞĀ-ſ][\w'’-]*"
_PARTICLE = r"(?:van|de|der|den|ten|ter|el|al|bin|ben|da|di|le)"
# More parts of a name: a capitalised word, or any word after a tussenvoegsel ("Jan de vries").
_MORE_NAMES = r"(?:(?:\s+" + _PARTICLE + r")+\s+" + _NAME_WORD + r"|\s+" + _CAP_WORD + r"){0,2}"
# Words that end a name typed in lower case ("mijn naam is jan en ik ..."): frequent function
# words and verbs of the offered languages. Not the tussenvoegsels, which belong to the name.
_NOT_NAME_WORDS = (
    "en|and|ve|i|oraz|maar|but|ama|ale|of|or|ik|i|je|jij|we|wij|ze|zij|hij|het|een|is|was|ben"
    "|am|are|heb|have|woon|woont|wonen|live|living|lives|uit|from|in|op|on|at|aan|bij|met|with"
    "|voor|for|naar|to|om|dat|die|dit|that|this|the|a|an|niet|not|wel|ook|also|too|sinds|since"
    "|hier|here|nu|now|want|omdat|because|dus|so|mijn|my|me|mij|en|bir|w|z|na|jestem|mieszkam"
)
_NEXT_NAME = r"(?!(?i:" + _NOT_NAME_WORDS + r")\b)" + _NAME_WORD
# After these phrases the name follows whatever its case ("mijn naam is jan de vries"): the first
# word, then up to three more that are no function words, tussenvoegsels included.
_NAME_ANY_CASE = re.compile(
    r"(?i:\b(mijn naam is|ik heet|my name is|benim adım|benim adim|nazywam się|nazywam sie))"
    r"\s+" + _NAME_WORD + r"(?:\s+" + _NEXT_NAME + r"){0,3}"
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


def _eleven_test(digits: str) -> bool:
    """The BSN check: weights 9..2 and -1, the sum a multiple of 11 (and not all zeros)."""
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    total = sum(int(d) * w for d, w in zip(digits, weights, strict=True))
    return total % 11 == 0 and digits.strip("0") != ""


def _bsn(match: re.Match[str]) -> str:
    return "[bsn]" if _eleven_test(_digits(match.group(0))) else match.group(0)


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
    (_TELEGRAM_LINK, "[link]"),
    (_PROFILE_LINK, "[link]"),
    (_EMAIL, "[e-mail]"),
    (_IBAN, "[iban]"),
    (_BSN, _bsn),
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
    """Replace phone numbers, e-mail, BSNs, addresses, plates, IBANs, handles, links, names."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text
