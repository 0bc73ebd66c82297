"""The NPLV focus areas and their neighbourhoods (from editable YAML) and the postcode lookup.

Pure Python: no Telegram, no database. The shipped data is `surveys/areas.yaml`; a programme team
can point buurtstem at its own copy (`load_areas(path)`). See docs/areas.md for the file format.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import string
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal

from surveys.yamlfile import (
    LineMap,
    LineSeq,
    Problem,
    ProblemsError,
    read_yaml,
    with_lines,
)

DEFAULT_PATH = Path(__file__).with_name("areas.yaml")

AREA_CODE_MAX = 24
# Neighbourhood codes end up in callback_data (64 bytes) next to a prefix, so keep them short.
NEIGHBOURHOOD_CODE_MAX = 32
DEEPLINK_MAX = 64  # Telegram's limit for a /start parameter
INPUT_MAX = 64  # longer "postcode" answers are not postcodes; don't even parse them
RANGE_WARN = 100  # a range over more PC4s than this is probably a typo
NAME_WARN = 40  # names become button labels, which should stay short

PC4_MIN, PC4_MAX = 1000, 9999
EXCLUDED_LETTERS = frozenset({"SA", "SD", "SS"})  # never issued by PostNL

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_DEEPLINK = re.compile(r"[A-Za-z0-9_-]+")
_GM_CODE = re.compile(r"GM[0-9]{4}")
_PC4_ENTRY = re.compile(r"\s*([0-9]{4})\s*(?:[-–]\s*([0-9]{4})\s*)?")

_AREA_KEYS = (
    "code",
    "name",
    "municipality",
    "municipality_code",
    "neighbourhoods",
    "postcodes",
    "postcodes_partly",
    "verified",
    "source",
    "note",
)
# `municipality` may be left out when the municipalities list names the code.
_AREA_REQUIRED = ("code", "name", "municipality_code", "neighbourhoods")
_NEIGHBOURHOOD_KEYS = (
    "code",
    "name",
    "cbs_code",
    "postcodes",
    "postcodes_partly",
    "verified",
    "source",
    "note",
)
_NEIGHBOURHOOD_REQUIRED = ("code", "name")
_MUNICIPALITY_KEYS = (
    "code",
    "name",
    "cbs_name",
    "postcodes",
    "postcodes_partly",
    "verified",
    "source",
    "note",
)
_MUNICIPALITY_REQUIRED = ("code", "name", "postcodes")
_TOP_KEYS = ("version", "areas", "municipalities")
_MUNICIPALITIES_TOP_KEYS = ("version", "municipalities")
_CBS_AREA_CODE = re.compile(r"(WK|BU)[0-9]{4}[0-9A-Z]{2}([0-9A-Z]{2})?")


# --- the data -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Neighbourhood:
    """A neighbourhood (buurt or wijk) in a focus area, with the PC4s that lie in it."""

    code: str
    name: str
    area_code: str
    postcodes: tuple[int, ...] = ()
    # PC4s that also cover addresses outside the focus area: a resident there may live elsewhere.
    postcodes_partly: tuple[int, ...] = ()
    verified: bool = False
    note: str = ""
    cbs_code: str = ""  # the CBS wijk (WK...) or buurt (BU...) code, when known
    source: str = ""


@dataclass(frozen=True, slots=True)
class Municipality:
    """A municipality with a focus area, and every PC4 that has addresses in it."""

    code: str  # CBS code, GM + 4 digits
    name: str  # the name residents know and see ("Den Haag")
    cbs_name: str  # the official CBS name ("'s-Gravenhage")
    postcodes: tuple[int, ...] = ()
    # PC4s shared with a neighbouring municipality.
    postcodes_partly: tuple[int, ...] = ()
    verified: bool = False
    source: str = ""
    note: str = ""

    @property
    def all_postcodes(self) -> tuple[int, ...]:
        """Every PC4 with addresses in the municipality, sorted."""
        return tuple(sorted(set(self.postcodes) | set(self.postcodes_partly)))


@dataclass(frozen=True, slots=True)
class Area:
    """One of the 20 NPLV focus areas."""

    code: str
    name: str
    municipality: str
    municipality_code: str
    neighbourhoods: tuple[Neighbourhood, ...]
    # PC4s known to be in the area but not (yet) assigned to one neighbourhood.
    postcodes: tuple[int, ...] = ()
    postcodes_partly: tuple[int, ...] = ()
    verified: bool = False
    note: str = ""
    # The official CBS name of the municipality; `municipality` is the name residents know.
    municipality_cbs_name: str = ""
    source: str = ""

    @property
    def all_postcodes(self) -> tuple[int, ...]:
        """Every PC4 named anywhere in this area, whole or partly, sorted."""
        found = set(self.postcodes) | set(self.postcodes_partly)
        for hood in self.neighbourhoods:
            found.update(hood.postcodes, hood.postcodes_partly)
        return tuple(sorted(found))

    @property
    def verification(self) -> Literal["yes", "partly", "no"]:
        """Whether the area's and its neighbourhoods' data has been checked."""
        flags = [hood.verified for hood in self.neighbourhoods]
        if self.postcodes or self.postcodes_partly:
            flags.append(self.verified)
        if all(flags):
            return "yes"
        return "partly" if any(flags) else "no"


# --- postcode lookup results ----------------------------------------------------------------

InvalidReason = Literal["empty", "too_long", "format", "range", "letters"]


@dataclass(frozen=True, slots=True)
class Found:
    """The PC4 lies in exactly one neighbourhood of a focus area."""

    area: Area
    neighbourhood: Neighbourhood
    pc4: str


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """The PC4 is split: ask which neighbourhood (plus "elsewhere" when `partly_outside`)."""

    areas: tuple[Area, ...]
    neighbourhoods: tuple[Neighbourhood, ...]
    pc4: str
    partly_outside: bool = False

    @property
    def area(self) -> Area | None:
        """The one area all candidates are in, or None when they span areas."""
        return self.areas[0] if len(self.areas) == 1 else None


@dataclass(frozen=True, slots=True)
class InFocusMunicipality:
    """A PC4 of a municipality with a focus area that the area data does not place: ask.

    The data cannot tell whether the resident lives inside the focus area, so the bot offers
    the area's neighbourhoods and "none of these" instead of turning the resident away.
    """

    municipality: Municipality
    areas: tuple[Area, ...]
    pc4: str

    @property
    def neighbourhoods(self) -> tuple[Neighbourhood, ...]:
        """The neighbourhoods of every focus area in the municipality."""
        return tuple(hood for area in self.areas for hood in area.neighbourhoods)


@dataclass(frozen=True, slots=True)
class NotInFocusArea:
    """A valid Dutch PC4 outside every municipality with a focus area (as far as the data knows)."""

    pc4: str


@dataclass(frozen=True, slots=True)
class Invalid:
    """Not a Dutch postcode; `reason` is a stable code for choosing a message."""

    reason: InvalidReason


PostcodeResult = Found | Ambiguous | InFocusMunicipality | NotInFocusArea | Invalid


def _ascii_digits(text: str) -> str:
    """Full-width and other-script digits (e.g. Arabic-Indic) as ASCII, so ٣٥٦٣ reads as 3563."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(
        str(unicodedata.decimal(char)) if char.isdecimal() and not char.isascii() else char
        for char in text
    )


def parse_pc4(text: str) -> int | InvalidReason:
    """The PC4 of a typed postcode ("3563", "3563 AB", "3563ab 12"), or why it is not one.

    Only the four digits are returned: the letters and anything after them (a house number)
    are checked and dropped, never kept.
    """
    if len(text) > INPUT_MAX * 4:  # cheap guard before normalising a huge message
        return "too_long"
    value = _ascii_digits(text).strip()
    if not value:
        return "empty"
    if len(value) > INPUT_MAX:
        return "too_long"
    head = value[:4]
    if len(head) < 4 or not all(char in string.digits for char in head):
        return "format"
    rest = value[4:]
    stripped = rest.lstrip()
    pair = stripped[:2]
    if (
        len(pair) == 2
        and all(char in string.ascii_letters for char in pair)
        and stripped[2:3] not in set(string.ascii_letters)
    ):
        if pair.upper() in EXCLUDED_LETTERS:
            return "letters"
        tail = stripped[2:]
        if tail and not (tail[0].isspace() or tail[0] in ",." or tail[0] in string.digits):
            return "format"
    elif rest and not (rest[0].isspace() or rest[0] in ","):
        return "format"  # "35631", "3563abc", "3563-12"
    number = int(head)
    if number < PC4_MIN:
        return "range"  # Dutch postcodes never start with 0
    return number


# --- problems in a data file ----------------------------------------------------------------


class AreasFileError(ProblemsError):
    """An areas file with errors; `problems` lists them all."""


# --- reading and checking a file ------------------------------------------------------------


class _Checker:
    """Turns the parsed YAML into Areas, collecting every problem on the way."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.code_lines: dict[str, int] = {}
        # pc4 -> [(area code, line)] for the overlap warning between areas
        self.pc4_areas: dict[int, list[tuple[str, int]]] = {}
        self.area_lines: list[int] = []
        self.municipality_lines: dict[str, int] = {}
        self.pc4_municipalities: dict[int, list[tuple[str, int]]] = {}

    def error(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.file, line, message, level="error"))

    def warn(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.file, line, message, level="warning"))

    def check_keys(
        self, data: LineMap, allowed: tuple[str, ...], required: tuple[str, ...], what: str
    ) -> None:
        for key in data:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                extra = f" (did you mean '{hint[0]}'?)" if hint else ""
                self.error(data.key_lines[key], f"{what}: unknown field '{key}'{extra}")
        for key in required:
            if key not in data:
                self.error(data.line, f"{what}: missing field '{key}'")

    def text(self, data: LineMap, key: str, what: str) -> str:
        value = data.get(key)
        if key not in data:
            return ""
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = data.raw.get(key)  # `name: 2024` or `code: 0344` as typed, not as a number
        if not isinstance(value, str) or not value.strip():
            self.error(data.key_lines[key], f"{what}: '{key}' must be non-empty text")
            return ""
        return value.strip()

    def flag(self, data: LineMap, what: str) -> bool:
        value = data.get("verified", False)
        if not isinstance(value, bool):
            self.error(data.key_lines["verified"], f"{what}: 'verified' must be true or false")
            return False
        return value

    def code(self, data: LineMap, limit: int, what: str) -> str:
        code = self.text(data, "code", what)
        if not code:
            return ""
        line = data.key_lines["code"]
        if not _SLUG.fullmatch(code):
            self.error(
                line,
                f"{what}: code '{code}' is not a slug (lowercase a-z, 0-9 and single hyphens)",
            )
        elif len(code) > limit:
            self.error(line, f"{what}: code '{code}' is longer than {limit} characters")
        if code in self.code_lines:
            self.error(line, f"duplicate code '{code}' (first on line {self.code_lines[code]})")
        else:
            self.code_lines[code] = line
        return code

    def postcodes(self, data: LineMap, key: str, what: str) -> tuple[list[int], list[int]]:
        """The PC4s of one list and, parallel to them, the line each came from."""
        if key not in data or data[key] is None:
            return [], []
        value = data[key]
        line = data.key_lines[key]
        if isinstance(value, LineSeq):
            items = list(zip(value, value.raw, value.item_lines, strict=True))
        elif isinstance(value, str | int) and not isinstance(value, bool):
            items = [(value, data.raw.get(key), line)]
        else:
            self.error(line, f"{what}: '{key}' must be a list of PC4s or ranges like 3561-3566")
            return [], []
        pc4s: list[int] = []
        lines: list[int] = []
        for item, raw, item_line in items:
            text = (raw or "").strip() if isinstance(item, str | int) else ""
            match = _PC4_ENTRY.fullmatch(text)
            if match is None:
                self.error(
                    item_line, f"{what}: bad postcode {item!r} in '{key}' (use 3561 or 3561-3566)"
                )
                continue
            start = int(match.group(1))
            end = int(match.group(2) or start)
            if not (PC4_MIN <= start <= PC4_MAX and PC4_MIN <= end <= PC4_MAX):
                self.error(item_line, f"{what}: postcode {text} is not a PC4 (1000-9999)")
                continue
            if end < start:
                self.error(item_line, f"{what}: range {text} runs backwards")
                continue
            if end - start + 1 > RANGE_WARN:
                self.warn(
                    item_line,
                    f"{what}: range {text} covers {end - start + 1} PC4s; is that intended?",
                )
            for pc4 in range(start, end + 1):
                if pc4 in pc4s:
                    self.warn(item_line, f"{what}: PC4 {pc4} is listed twice in '{key}'")
                    continue
                pc4s.append(pc4)
                lines.append(item_line)
        return pc4s, lines

    def postcode_sets(
        self, data: LineMap, area_code: str, what: str
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        whole, whole_lines = self.postcodes(data, "postcodes", what)
        partly, partly_lines = self.postcodes(data, "postcodes_partly", what)
        both = set(whole) & set(partly)
        if both:
            self.warn(
                data.key_lines.get("postcodes_partly"),
                f"{what}: {format_pc4s(both)} in both 'postcodes' and 'postcodes_partly'",
            )
        for pc4, line in zip(whole + partly, whole_lines + partly_lines, strict=True):
            self.pc4_areas.setdefault(pc4, []).append((area_code, line))
        return tuple(sorted(whole)), tuple(sorted(partly))

    def neighbourhood(self, data: Any, area_code: str, line: int) -> Neighbourhood | None:
        if not isinstance(data, LineMap):
            self.error(line, f"area '{area_code}': each neighbourhood must be a mapping")
            return None
        label = data.get("code") if isinstance(data.get("code"), str) else f"line {data.line}"
        what = f"neighbourhood '{label}'"
        self.check_keys(data, _NEIGHBOURHOOD_KEYS, _NEIGHBOURHOOD_REQUIRED, what)
        code = self.code(data, NEIGHBOURHOOD_CODE_MAX, what)
        name = self.text(data, "name", what)
        if len(name) > NAME_WARN:
            self.warn(data.key_lines["name"], f"{what}: name is long for a button ({len(name)})")
        whole, partly = self.postcode_sets(data, area_code, what)
        cbs_code = self.text(data, "cbs_code", what)
        if cbs_code and not _CBS_AREA_CODE.fullmatch(cbs_code):
            self.error(
                data.key_lines["cbs_code"],
                f"{what}: cbs_code '{cbs_code}' is not a CBS wijk or buurt code "
                "like WK034403 or BU03440301",
            )
        return Neighbourhood(
            code=code,
            name=name,
            area_code=area_code,
            postcodes=whole,
            postcodes_partly=partly,
            verified=self.flag(data, what),
            note=self.text(data, "note", what),
            cbs_code=cbs_code,
            source=self.text(data, "source", what),
        )

    def area(self, data: Any, line: int) -> Area | None:
        if not isinstance(data, LineMap):
            self.error(line, "each area must be a mapping (code, name, municipality, ...)")
            return None
        label = data.get("code") if isinstance(data.get("code"), str) else f"line {data.line}"
        what = f"area '{label}'"
        self.check_keys(data, _AREA_KEYS, _AREA_REQUIRED, what)
        code = self.code(data, AREA_CODE_MAX, what)
        name = self.text(data, "name", what)
        municipality = self.text(data, "municipality", what)
        self.area_lines.append(data.line)
        gm_code = self.text(data, "municipality_code", what)
        if gm_code and not _GM_CODE.fullmatch(gm_code):
            self.error(
                data.key_lines["municipality_code"],
                f"{what}: municipality_code '{gm_code}' is not a CBS code like GM0344",
            )
        whole, partly = self.postcode_sets(data, code, what)
        hoods: list[Neighbourhood] = []
        raw_hoods = data.get("neighbourhoods")
        if "neighbourhoods" in data:
            if not isinstance(raw_hoods, LineSeq) or not raw_hoods:
                self.error(
                    data.key_lines["neighbourhoods"],
                    f"{what}: 'neighbourhoods' must be a list with at least one neighbourhood",
                )
            else:
                for item, item_line in zip(raw_hoods, raw_hoods.item_lines, strict=True):
                    hood = self.neighbourhood(item, code, item_line)
                    if hood is not None:
                        hoods.append(hood)
        own = set(whole) | set(partly)
        if code and hoods and not own and not any(h.postcodes or h.postcodes_partly for h in hoods):
            self.error(
                data.line,
                f"{what}: no postcodes; list the area's PC4s (postcodes or postcodes_partly, "
                "on the area or its neighbourhoods); mark estimates 'verified: false' with a note",
            )
        for hood in hoods:
            shared = own & (set(hood.postcodes) | set(hood.postcodes_partly))
            if shared:
                self.warn(
                    data.key_lines.get("postcodes") or data.key_lines.get("postcodes_partly"),
                    f"{what}: {format_pc4s(shared)} listed for the area and for neighbourhood "
                    f"'{hood.code}'; the area-wide entry makes it ask about every neighbourhood",
                )
        return Area(
            code=code,
            name=name,
            municipality=municipality,
            municipality_code=gm_code,
            neighbourhoods=tuple(hoods),
            postcodes=whole,
            postcodes_partly=partly,
            verified=self.flag(data, what),
            note=self.text(data, "note", what),
            municipality_cbs_name=municipality,
            source=self.text(data, "source", what),
        )

    def municipality(self, data: Any, line: int) -> Municipality | None:
        if not isinstance(data, LineMap):
            self.error(line, "each municipality must be a mapping (code, name, postcodes, ...)")
            return None
        label = data.get("code") if isinstance(data.get("code"), str) else f"line {data.line}"
        what = f"municipality '{label}'"
        self.check_keys(data, _MUNICIPALITY_KEYS, _MUNICIPALITY_REQUIRED, what)
        code = self.text(data, "code", what)
        if code and not _GM_CODE.fullmatch(code):
            self.error(data.key_lines["code"], f"{what}: code is not a CBS code like GM0344")
        elif code in self.municipality_lines:
            self.error(
                data.key_lines["code"],
                f"duplicate municipality '{code}' (first on line {self.municipality_lines[code]})",
            )
        elif code:
            self.municipality_lines[code] = data.key_lines["code"]
        name = self.text(data, "name", what)
        if len(name) > NAME_WARN:
            self.warn(data.key_lines["name"], f"{what}: name is long for a button ({len(name)})")
        whole, whole_lines = self.postcodes(data, "postcodes", what)
        partly, _ = self.postcodes(data, "postcodes_partly", what)
        both = set(whole) & set(partly)
        if both:
            self.warn(
                data.key_lines.get("postcodes_partly"),
                f"{what}: {format_pc4s(both)} in both 'postcodes' and 'postcodes_partly'",
            )
        if "postcodes" in data and not whole and not partly:
            self.error(data.key_lines["postcodes"], f"{what}: 'postcodes' is empty")
        for pc4, pc4_line in zip(whole, whole_lines, strict=True):
            self.pc4_municipalities.setdefault(pc4, []).append((code, pc4_line))
        return Municipality(
            code=code,
            name=name,
            cbs_name=self.text(data, "cbs_name", what) or name,
            postcodes=tuple(sorted(whole)),
            postcodes_partly=tuple(sorted(partly)),
            verified=self.flag(data, what),
            source=self.text(data, "source", what),
            note=self.text(data, "note", what),
        )

    def municipality_list(self, raw: Any, line: int) -> list[Municipality]:
        """The municipalities of a `municipalities:` list."""
        if not isinstance(raw, LineSeq) or not raw:
            self.error(line, "'municipalities' must be a non-empty list (or a file name)")
            return []
        found = []
        for item, item_line in zip(raw, raw.item_lines, strict=True):
            municipality = self.municipality(item, item_line)
            if municipality is not None:
                found.append(municipality)
        for pc4, owners in sorted(self.pc4_municipalities.items()):
            codes = sorted({code for code, _ in owners})
            if len(codes) > 1:
                self.warn(
                    max(owner_line for _, owner_line in owners),
                    f"PC4 {pc4} is listed as wholly inside {' and '.join(codes)}; "
                    "list it under 'postcodes_partly' where it is shared",
                )
        return found

    def resolve(self, areas: list[Area], municipalities: list[Municipality]) -> list[Area]:
        """Areas with the municipality's names, and checks of areas against municipalities."""
        by_code = {m.code: m for m in municipalities}
        resolved = []
        for area, line in zip(areas, self.area_lines, strict=True):
            municipality = by_code.get(area.municipality_code)
            if municipality is None:
                if not area.municipality:
                    self.error(
                        line,
                        f"area '{area.code}': missing field 'municipality' (or a municipalities "
                        f"entry for {area.municipality_code})",
                    )
                elif municipalities:
                    self.warn(
                        line,
                        f"area '{area.code}': no municipalities entry for "
                        f"{area.municipality_code}; residents there who type a PC4 the area "
                        "does not list are told the survey is not for them",
                    )
                resolved.append(area)
                continue
            if area.municipality and area.municipality not in (
                municipality.name,
                municipality.cbs_name,
            ):
                self.warn(
                    line,
                    f"area '{area.code}': municipality '{area.municipality}' differs from "
                    f"'{municipality.name}' ({municipality.cbs_name}) of {municipality.code}",
                )
            outside = set(area.all_postcodes) - set(municipality.all_postcodes)
            if outside:
                self.warn(
                    line,
                    f"area '{area.code}': {format_pc4s(outside)} not among the PC4s of "
                    f"{municipality.name} ({municipality.code})",
                )
            resolved.append(
                dataclasses.replace(
                    area,
                    municipality=municipality.name,
                    municipality_cbs_name=municipality.cbs_name,
                )
            )
        return resolved

    def overlaps(self) -> None:
        """Warn once per pair of areas that name the same PC4s."""
        pairs: dict[tuple[str, str], tuple[set[int], int]] = {}
        for pc4, owners in self.pc4_areas.items():
            codes = sorted({code for code, _ in owners})
            for i, first in enumerate(codes):
                for second in codes[i + 1 :]:
                    line = max(line for code, line in owners if code == second)
                    found, old_line = pairs.get((first, second), (set(), line))
                    found.add(pc4)
                    pairs[(first, second)] = (found, min(old_line, line))
        for (first, second), (pc4s, line) in sorted(pairs.items()):
            self.warn(
                line,
                f"areas '{first}' and '{second}' both list {format_pc4s(pc4s)}; "
                "residents there will be asked to choose",
            )

    def document(
        self, data: Any, municipalities: list[Municipality] | None = None
    ) -> tuple[list[Area], list[Municipality]]:
        """The areas of a parsed file and its municipalities (inline, or `municipalities`)."""
        if not isinstance(data, LineMap):
            self.error(1, "the file must be a mapping with a top-level 'areas:' list")
            return [], []
        self.check_keys(data, _TOP_KEYS, ("areas",), "file")
        if municipalities is None:
            municipalities = []
            if isinstance(data.get("municipalities"), LineSeq):
                municipalities = self.municipality_list(
                    data["municipalities"], data.key_lines["municipalities"]
                )
            elif "municipalities" in data:
                self.error(
                    data.key_lines["municipalities"],
                    "'municipalities' must be a list or the name of a municipalities file",
                )
        raw_areas = data.get("areas")
        if not isinstance(raw_areas, LineSeq) or not raw_areas:
            if "areas" in data:
                self.error(data.key_lines["areas"], "'areas' must be a non-empty list")
            return [], municipalities
        areas = []
        for item, line in zip(raw_areas, raw_areas.item_lines, strict=True):
            area = self.area(item, line)
            if area is not None:
                areas.append(area)
        self.overlaps()
        return self.resolve(areas, municipalities), municipalities


def _read_yaml(path: Path) -> tuple[bool, Any, list[Problem]]:
    """Whether a YAML file could be parsed, its data with line numbers, and its problems."""
    try:
        name, node = read_yaml(path)
    except ProblemsError as exc:
        return False, None, [replace(problem, level="error") for problem in exc.problems]
    data, problems = with_lines(name, node, level="error")
    return data is not None or node is None, data, problems


def _municipalities_file(path: Path) -> tuple[list[Municipality], list[Problem]]:
    """The municipalities of a separate municipalities file (see `municipalities:`)."""
    parsed, data, problems = _read_yaml(path)
    if not parsed:
        return [], problems
    checker = _Checker(str(path))
    checker.problems.extend(problems)
    if not isinstance(data, LineMap):
        checker.error(1, "the file must be a mapping with a top-level 'municipalities:' list")
        return [], checker.problems
    checker.check_keys(data, _MUNICIPALITIES_TOP_KEYS, ("municipalities",), "file")
    if "municipalities" not in data:
        return [], checker.problems
    found = checker.municipality_list(data["municipalities"], data.key_lines["municipalities"])
    return found, checker.problems


def check_areas_file(path: str | Path) -> tuple[list[Area], list[Problem]]:
    """Read and check an areas file: the areas it defines and every problem found."""
    areas, _, problems = check_areas_and_municipalities(path)
    return areas, problems


def check_areas_and_municipalities(
    path: str | Path,
) -> tuple[list[Area], list[Municipality], list[Problem]]:
    """Areas, municipalities and problems of an areas file (and its municipalities file)."""
    return _check(Path(path))


def _check(path: Path) -> tuple[list[Area], list[Municipality], list[Problem]]:
    """Areas, municipalities and problems of an areas file (and its municipalities file)."""
    parsed, data, problems = _read_yaml(path)
    if not parsed:
        return [], [], problems
    checker = _Checker(str(path))
    checker.problems.extend(problems)
    municipalities: list[Municipality] | None = None
    if isinstance(data, LineMap) and isinstance(data.get("municipalities"), str):
        # `municipalities: municipalities.yaml`: a file next to this one (generated from CBS data).
        other = path.parent / data["municipalities"]
        municipalities, other_problems = _municipalities_file(other)
        checker.problems.extend(other_problems)
    areas, municipalities = checker.document(data, municipalities)
    return areas, municipalities, checker.problems


# --- the loaded collection ------------------------------------------------------------------


def _sort_name(municipality: str) -> str:
    """Dutch sort order: 's-Gravenhage under G, 't Zandt under Z."""
    lowered = municipality.casefold()
    for prefix in ("'s-", "'s ", "'t ", "'t-"):
        if lowered.startswith(prefix):
            return lowered[len(prefix) :]
    return lowered


class Areas:
    """The focus areas of one data file, indexed for codes, deep links and postcodes."""

    def __init__(
        self,
        areas: Iterable[Area],
        source: str = "",
        warnings: Iterable[Problem] = (),
        municipalities: Iterable[Municipality] = (),
    ) -> None:
        self._areas = tuple(areas)
        self.source = source
        self.warnings = tuple(warnings)
        self._by_code = {area.code: area for area in self._areas}
        self._municipalities = {m.code: m for m in municipalities}
        # pc4 -> the municipalities with a focus area that have addresses with that PC4
        self._municipality_pc4s: dict[int, list[Municipality]] = {}
        for municipality in self._municipalities.values():
            for pc4 in municipality.all_postcodes:
                self._municipality_pc4s.setdefault(pc4, []).append(municipality)
        self._hoods: dict[str, tuple[Area, Neighbourhood]] = {}
        # pc4 -> [(area, neighbourhood or None for area-wide, partly)]
        self._claims: dict[int, list[tuple[Area, Neighbourhood | None, bool]]] = {}
        for area in self._areas:
            self._claim(area, None, area.postcodes, area.postcodes_partly)
            for hood in area.neighbourhoods:
                self._hoods[hood.code] = (area, hood)
                self._claim(area, hood, hood.postcodes, hood.postcodes_partly)

    def _claim(
        self,
        area: Area,
        hood: Neighbourhood | None,
        whole: tuple[int, ...],
        partly: tuple[int, ...],
    ) -> None:
        for pc4 in whole:
            self._claims.setdefault(pc4, []).append((area, hood, False))
        for pc4 in partly:
            self._claims.setdefault(pc4, []).append((area, hood, True))

    def __iter__(self) -> Iterator[Area]:
        return iter(self._areas)

    def __len__(self) -> int:
        return len(self._areas)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def all(self) -> tuple[Area, ...]:
        """Every area, in file order."""
        return self._areas

    def get(self, code: str) -> Area | None:
        """The area with this code, or None."""
        return self._by_code.get(code)

    def neighbourhood(self, code: str) -> tuple[Area, Neighbourhood] | None:
        """The neighbourhood with this code and its area, or None."""
        return self._hoods.get(code)

    def municipality(self, code: str) -> Municipality | None:
        """The municipality with this CBS code (GM0344), or None when the data has none."""
        return self._municipalities.get(code)

    def municipality_list(self) -> tuple[Municipality, ...]:
        """Every municipality of the data, in file order."""
        return tuple(self._municipalities.values())

    def municipalities(self) -> dict[str, tuple[Area, ...]]:
        """Municipality name -> its areas, in Dutch alphabetical order (for picker buttons)."""
        grouped: dict[str, list[Area]] = {}
        for area in self._areas:
            grouped.setdefault(area.municipality, []).append(area)
        return {name: tuple(grouped[name]) for name in sorted(grouped, key=_sort_name)}

    def resolve_deeplink(self, code: str) -> tuple[Area, Neighbourhood | None] | None:
        """What a `/start <code>` parameter names: an area, a neighbourhood, or nothing."""
        code = code.strip()
        if not code or len(code) > DEEPLINK_MAX or not _DEEPLINK.fullmatch(code):
            return None
        # Telegram allows _ and capitals; people retype links, so be lenient.
        key = code.lower().replace("_", "-")
        area = self._by_code.get(key)
        if area is not None:
            return area, None
        return self._hoods.get(key)

    def lookup_pc4(self, pc4: int) -> Found | Ambiguous | InFocusMunicipality | NotInFocusArea:
        """Which neighbourhood(s) a PC4 lies in, or which focus municipality, or neither."""
        label = f"{pc4:04d}"
        hoods: dict[str, Neighbourhood] = {}
        areas: dict[str, Area] = {}
        partly = False
        for area, hood, is_partly in self._claims.get(pc4, ()):
            areas.setdefault(area.code, area)
            partly = partly or is_partly
            # An area-wide PC4 could be in any of the area's neighbourhoods.
            for candidate in (hood,) if hood is not None else area.neighbourhoods:
                hoods.setdefault(candidate.code, candidate)
        if not hoods:
            for municipality in self._municipality_pc4s.get(pc4, ()):
                in_it = tuple(a for a in self._areas if a.municipality_code == municipality.code)
                if in_it:
                    return InFocusMunicipality(municipality, in_it, label)
            return NotInFocusArea(label)
        if len(hoods) == 1 and not partly:
            (hood,) = hoods.values()
            return Found(areas[hood.area_code], hood, label)
        return Ambiguous(tuple(areas.values()), tuple(hoods.values()), label, partly)

    def lookup_postcode(self, text: str) -> PostcodeResult:
        """Look up what a resident typed: "3563", "3563 AB", "3563ab 12"; only the PC4 is kept."""
        parsed = parse_pc4(text)
        if isinstance(parsed, str):
            return Invalid(parsed)
        return self.lookup_pc4(parsed)


def load_areas(path: str | Path | None = None) -> Areas:
    """Load and check an areas file (default: the shipped one); AreasFileError on any error."""
    file = Path(path) if path is not None else DEFAULT_PATH
    areas, municipalities, problems = check_areas_and_municipalities(file)
    errors = [problem for problem in problems if problem.level == "error"]
    if errors:
        raise AreasFileError(errors)
    warnings = [problem for problem in problems if problem.level == "warning"]
    return Areas(areas, str(file), warnings, municipalities)


@cache
def default_areas() -> Areas:
    """The shipped areas, loaded once per process."""
    return load_areas(DEFAULT_PATH)


def format_pc4s(pc4s: Iterable[int]) -> str:
    """PC4s as compact ranges: "3561-3566, 8923"."""
    ordered = sorted(set(pc4s))
    parts: list[str] = []
    index = 0
    while index < len(ordered):
        end = index
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        first, last = ordered[index], ordered[end]
        parts.append(f"{first}" if first == last else f"{first}-{last}")
        index = end + 1
    return ", ".join(parts)
