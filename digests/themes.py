"""Themes of residents' comments: keyword rules per language, so staff see what comments are about.

A comment belongs to every theme one of whose words it contains (a word counts when it starts a
word of the comment: "parkeer" finds "parkeerplaatsen"; Arabic words anywhere, since Arabic glues
"the", "and" and prepositions to the word). A comment that matches no theme is "other". The rules
of all five languages are applied to every comment: language detection is unreliable on short
texts, and where two languages share a word (park, sport) it means the same.

The rules are deliberately plain word lists: a programme team can read and extend them. They miss
what they do not list and sometimes catch a word in another sense; counts are a guide to what is
talked about, not a measurement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

OTHER = "other"


@dataclass(frozen=True)
class Theme:
    """One theme and the words that point to it, per language."""

    id: str
    words: dict[str, tuple[str, ...]]


# Words are lower case; a word ending in a space must be followed by a space or the end
# ("ev " for Turkish "ev", not "evet"). Latin-script words match at the start of a word.
THEMES: tuple[Theme, ...] = (
    Theme(
        "litter",
        {
            "nl": (
                "afval",
                "vuil",
                "rommel",
                "zwerfvuil",
                "troep",
                "container",
                "grofvuil",
                "schoon",
                "smerig",
                "vies",
                "vieze",
            ),
            "en": ("litter", "rubbish", "trash", "garbage", "dirty", "clean", "waste", "bins"),
            "tr": ("çöp", "kirli", "temiz", "atık", "pislik"),
            "ar": ("قمامة", "القمامة", "نفايات", "زبالة", "أوساخ", "وسخ", "نظيف", "نظافة"),
            "pl": ("śmie", "brud", "czyst", "odpad"),
        },
    ),
    Theme(
        "traffic",
        {
            "nl": (
                "verkeer",
                "parkeer",
                "parkeren",
                "auto",
                "hard rijden",
                "te hard",
                "drempel",
                "snelheid",
                "oversteek",
                "scooter",
                "brommer",
                "fietspad",
            ),
            "en": ("traffic", "parking", "car ", "cars", "speed", "road", "crossing"),
            "tr": ("trafik", "otopark", "park yeri", "araba", "araç", "hız", "yol "),
            "ar": ("مرور", "سيارات", "السيارات", "سرعة", "موقف", "ركن"),
            "pl": ("ruch ", "parking", "parkow", "samoch", "prędko", "jezdni", "przejści"),
        },
    ),
    Theme(
        "green",
        {
            "nl": (
                "groen",
                "park ",
                "parken",
                "parkje",
                "boom",
                "bomen",
                "speeltuin",
                "speelplek",
                "speelplaats",
                "plantsoen",
                "bloem",
                "gras",
            ),
            "en": (
                "green",
                "park ",
                "parks",
                "tree",
                "playground",
                "play area",
                "garden",
                "grass",
                "flowers",
            ),
            "tr": (
                "yeşil",
                "park ",
                "parkta",
                "parkı",
                "parklar",
                "ağaç",
                "oyun alan",
                "bahçe",
                "çim",
            ),
            "ar": ("حديقة", "حدائق", "أشجار", "شجر", "خضراء", "ملعب", "ملاعب"),
            "pl": ("zieleń", "zielon", "park ", "parki ", "drzew", "plac zabaw", "trawn"),
        },
    ),
    Theme(
        "safety",
        {
            "nl": (
                "veilig",
                "onveilig",
                "politie",
                "crimin",
                "inbra",
                "diefstal",
                "gestolen",
                "drugs",
                "dealer",
                "verlichting",
                "donker",
                "camera",
                "handhav",
                "boa",
            ),
            "en": (
                "safe",
                "unsafe",
                "police",
                "crime",
                "criminal",
                "theft",
                "stolen",
                "burglar",
                "drug",
                "dealer",
                "lighting",
                "dark",
                "camera",
            ),
            "tr": (
                "güven",
                "polis",
                "suç",
                "hırsız",
                "çalın",
                "uyuşturucu",
                "aydınlat",
                "karanlık",
                "kamera",
            ),
            "ar": (
                "أمان",
                "آمن",
                "الأمن",
                "شرطة",
                "الشرطة",
                "جريمة",
                "سرقة",
                "مخدرات",
                "إضاءة",
                "مظلم",
                "كاميرا",
            ),
            "pl": (
                "bezpiecz",
                "policj",
                "przestęp",
                "kradzie",
                "kradn",
                "narkoty",
                "oświetl",
                "ciemn",
                "kamer",
            ),
        },
    ),
    Theme(
        "nuisance",
        {
            "nl": (
                "overlast",
                "lawaai",
                "geluid",
                "herrie",
                "hangjongeren",
                "hangplek",
                "dronken",
                "ruzie",
                "hondenpoep",
                "honden",
                "poep",
            ),
            "en": ("noise", "noisy", "loud", "nuisance", "drunk", "dog ", "dogs", "fight"),
            "tr": ("gürültü", "rahatsız", "sarhoş", "köpek", "kavga"),
            "ar": ("ضوضاء", "إزعاج", "ضجيج", "كلاب", "الكلاب", "سكارى", "شجار"),
            "pl": ("hałas", "głośn", "uciążl", "pijan", "psy ", "psów", "psie", "awantur"),
        },
    ),
    Theme(
        "youth",
        {
            "nl": (
                "jongeren",
                "jeugd",
                "kinderen",
                "kids",
                "activiteit",
                "buurthuis",
                "jongerenwerk",
                "sport",
                "voetbal",
            ),
            "en": (
                "young",
                "youth",
                "kids",
                "children",
                "activit",
                "community centre",
                "sport",
                "football",
            ),
            "tr": ("genç", "çocuk", "etkinlik", "faaliyet", "spor", "futbol"),
            "ar": ("شباب", "الشباب", "أطفال", "الأطفال", "نشاط", "أنشطة", "رياضة"),
            "pl": ("młodzie", "dzieci", "zajęci", "sport", "świetlic", "piłk"),
        },
    ),
    Theme(
        "housing",
        {
            "nl": (
                "woning",
                "huis ",
                "huizen",
                "huur",
                "flat",
                "onderhoud",
                "schimmel",
                "vocht",
                "corporatie",
                "lift",
                "portiek",
                "renovat",
            ),
            "en": (
                "housing",
                "house",
                "home ",
                "rent",
                "flat",
                "maintenance",
                "mould",
                "mold",
                "damp",
                "landlord",
                "repair",
            ),
            "tr": ("ev ", "evler", "konut", "kira", "bakım", "küf", "nem ", "tamir", "asansör"),
            "ar": ("سكن", "مسكن", "مساكن", "بيت", "إيجار", "صيانة", "رطوبة", "عفن"),
            "pl": ("mieszkan", "czynsz", "remont", "wilgo", "grzyb", "blok", "winda"),
        },
    ),
    Theme(
        "community",
        {
            "nl": (
                "contact",
                "samen",
                "elkaar",
                "buurtfeest",
                "ontmoet",
                "gezellig",
                "eenzaam",
                "buren",
                "buurtbewoners",
            ),
            "en": ("together", "community", "meet", "lonely", "neighbours", "neighbors", "social"),
            "tr": ("birlikte", "komşu", "tanış", "yalnız", "buluş", "dayanışma"),
            "ar": ("جيران", "الجيران", "تواصل", "معا", "معًا", "وحدة", "لقاء"),
            "pl": ("razem", "sąsiad", "spotka", "samotn", "integrac"),
        },
    ),
    Theme(
        "services",
        {
            "nl": (
                "winkel",
                "supermarkt",
                "school",
                "huisarts",
                "dokter",
                "bus",
                "tram",
                "bibliotheek",
                "zorg",
                "bankje",
            ),
            "en": ("shop", "supermarket", "school", "doctor", "bus ", "buses", "library", "bench"),
            "tr": ("market", "dükkan", "okul", "doktor", "otobüs", "kütüphane", "bank "),
            "ar": ("متجر", "محل", "محلات", "سوق", "مدرسة", "طبيب", "حافلة"),
            "pl": ("sklep", "szkoł", "lekarz", "autobus", "bibliotek", "ławk"),
        },
    ),
)
THEME_IDS: tuple[str, ...] = (*(t.id for t in THEMES), OTHER)
LANGUAGES = ("nl", "en", "tr", "ar", "pl")
_ARABIC = re.compile(r"[\u0600-\u06ff]")


def _alternative(word: str) -> str:
    core = re.escape(word.rstrip(" "))
    return core + (r"(?!\w)" if word.endswith(" ") else "")


@cache
def _compiled() -> tuple[re.Pattern[str], re.Pattern[str], dict[str, frozenset[str]]]:
    """One pattern for the Latin-script words (at the start of a word), one for the Arabic ones
    (anywhere), and the themes of each word: a comment is read once, not once per theme."""
    owners: dict[str, set[str]] = {}
    latin: set[str] = set()
    arabic: set[str] = set()
    for theme in THEMES:
        for lang in LANGUAGES:
            for word in theme.words.get(lang, ()):
                owners.setdefault(word.rstrip(" "), set()).add(theme.id)
                (arabic if _ARABIC.search(word) else latin).add(word)
    # Longest first, so "parkeer" is tried before "park".
    ordered = sorted(latin, key=lambda w: (-len(w.rstrip(" ")), w))
    latin_re = re.compile(r"(?<!\w)(?:" + "|".join(_alternative(w) for w in ordered) + ")")
    arabic_re = re.compile(
        "|".join(re.escape(w) for w in sorted(arabic, key=lambda w: (-len(w), w)))
    )
    return latin_re, arabic_re, {word: frozenset(ids) for word, ids in owners.items()}


_ORDER = {theme.id: i for i, theme in enumerate(THEMES)}


def classify(text: str) -> list[str]:
    """The themes a comment is about, in THEMES order; [OTHER] when none matches."""
    latin_re, arabic_re, owners = _compiled()
    lowered = " ".join(text.casefold().split())
    found: set[str] = set()
    for match in latin_re.finditer(lowered):
        found |= owners[match.group(0)]
    if _ARABIC.search(lowered):
        for match in arabic_re.finditer(lowered):
            found |= owners[match.group(0)]
    return sorted(found, key=_ORDER.__getitem__) or [OTHER]


def count_themes(texts: Iterable[str]) -> dict[str, int]:
    """Comments per theme (a comment may count in several)."""
    out: dict[str, int] = {}
    for text in texts:
        for theme in classify(text):
            out[theme] = out.get(theme, 0) + 1
    return out
