"""Round settings as a programme team writes them: a round file, options, or both (pure).

`read_round_file` reads a round file with its lines (surveys.yamlfile, as every file people
write), `build_spec` checks the settings and collects every problem with where it was written
(`round.yaml:4`, `--opens`), and makes the RoundSpec that usecases.publish_round stores.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from yaml.nodes import MappingNode

from surveys.areas import Areas
from surveys.times import local, local_end
from surveys.yamlfile import Problem, ProblemsError, as_written, given_twice, line_of, read_yaml

ROUND_FILE_KEYS = ("survey", "name", "areas", "opens", "closes", "reminder")
REMINDER_KEYS = ("after_days", "max", "whom")
WHOM = {
    "both": (True, True),
    "started": (True, False),
    "not_started": (False, True),
    "not-started": (False, True),
}
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class RoundError(ValueError):
    """Round settings or a round action that cannot be used; the message is one clear line."""


def parse_moment(value: object, tz: ZoneInfo, *, what: str, end_of_day: bool = False) -> datetime:
    """A local time from a file or option as aware UTC; a bare date means the start of that day.

    With `end_of_day` (for `closes`) a bare date means the end of that day, so
    `closes: 2026-11-30` keeps the round open through 30 November.
    """
    day: date | None = None
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        day = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            if _DATE_ONLY.match(text):
                day = date.fromisoformat(text)
            else:
                moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
            day = None
        if moment is None and day is None:
            raise RoundError(
                f"{what}: '{text}' is not a date and time; write it like 2026-11-09 09:00"
            )
    else:
        raise RoundError(f"{what}: give a date and time, like 2026-11-09 09:00")
    if day is not None:
        moment = datetime.combine(day + timedelta(days=1) if end_of_day else day, time(0), tz)
    assert moment is not None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


# ---- round settings --------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundSpec:
    """What a programme team publishes: a survey file, areas, a period and a reminder policy."""

    name: str
    survey_path: Path
    area_codes: list[str] | None
    opens_at: datetime
    closes_at: datetime
    reminder_after_days: int | None = None
    max_reminders: int = 1
    remind_started: bool = True
    remind_not_started: bool = True
    # The times as the team wrote them, echoed back as written ("closes 2026-12-09").
    opens_written: str | None = field(default=None, compare=False)
    closes_written: str | None = field(default=None, compare=False)


def is_round_file(data: object) -> bool:
    """A round file names its survey file; a survey file has questions."""
    return isinstance(data, Mapping) and "survey" in data and "questions" not in data


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RoundError(f"{what}: give a whole number of 1 or more")
    try:
        number = int(value)
    except ValueError:
        raise RoundError(f"{what}: '{value}' is not a whole number") from None
    if number < 1:
        raise RoundError(f"{what}: give a whole number of 1 or more, not {number}")
    return number


def _area_hint(code: str, areas: Areas) -> str:
    """Why an areas entry is not a focus area code, and what to write instead."""
    found = areas.neighbourhood(code) or areas.resolve_deeplink(code)
    if found is not None:
        area, hood = found
        if hood is None:  # the code with other capitals or '_' for '-'
            return f"unknown focus area '{code}'; did you mean '{area.code}'?"
        return (
            f"'{code}' is a neighbourhood of {area.code} ({area.name}); rounds are published "
            f"for whole focus areas: use '{area.code}'"
        )
    for area in areas.all():
        if code.strip().lower() == area.name.lower():
            return f"'{code}' is the name of focus area '{area.code}': use the code"
    # A word of an area's code or name ("overvecht", "Nieuw-West") names that area.
    word = code.strip().lower()
    named = [
        area.code
        for area in areas.all()
        if word in area.code.split("-")
        or word in area.name.lower().replace("-", " ").split()
        or word == area.name.lower().split(" ", 1)[-1]
    ]
    if len(named) == 1:
        return f"unknown focus area '{code}'; did you mean '{named[0]}'?"
    # Close matches among areas and neighbourhoods: a misspelt neighbourhood names its area.
    candidates = {area.code: area.code for area in areas.all()}
    for area in areas.all():
        for hood in area.neighbourhoods:
            candidates.setdefault(hood.code, area.code)
    close = difflib.get_close_matches(code, list(candidates), n=1)
    if not close:
        return f"unknown focus area '{code}'; see buurtstem areas list"
    if close[0] == candidates[close[0]]:
        return f"unknown focus area '{code}'; did you mean '{close[0]}'?"
    area_code = candidates[close[0]]
    return (
        f"unknown focus area '{code}'; did you mean '{area_code}'? (close to its "
        f"neighbourhood '{close[0]}'; rounds are published for whole focus areas)"
    )


def check_areas(value: object, areas: Areas) -> tuple[list[str] | None, list[str]]:
    """`all` (None) or the known focus area codes, and one message per entry that is not."""
    if value is None:
        return None, ["areas: give 'all' or a list of focus area codes"]
    if isinstance(value, str):
        if value.strip().lower() == "all":
            return None, []
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not value:
        return None, ["areas: give 'all' or a list of focus area codes"]
    codes: list[str] = []
    problems: list[str] = []
    for item in value:
        code = str(item).strip()
        if code.lower() == "all":
            if len(value) == 1:
                return None, []
            problems.append("areas: 'all' cannot be combined with area codes")
            continue
        if code not in areas:
            problems.append(f"areas: {_area_hint(code, areas)}")
            continue
        if code not in codes:
            codes.append(code)
    return sorted(codes), problems


def parse_areas(value: object, areas: Areas) -> list[str] | None:
    """`all` (None) or a list of known focus area codes; unknown codes are refused with a hint."""
    codes, problems = check_areas(value, areas)
    if problems:
        raise RoundError("\n".join(problems))
    return codes


def parse_whom(value: object) -> tuple[bool, bool]:
    """Reminder audience: both (default), started, not_started; also a list of the last two."""
    if value is None:
        return True, True
    if isinstance(value, list):
        chosen = {str(item).strip().replace("-", "_") for item in value}
        unknown = chosen - {"started", "not_started"}
        if unknown or not chosen:
            raise RoundError("reminder whom: use started and/or not_started")
        return "started" in chosen, "not_started" in chosen
    key = str(value).strip().lower()
    if key not in WHOM:
        raise RoundError(f"reminder whom: '{value}' is not one of both, started, not_started")
    return WHOM[key]


_LABELS = {*ROUND_FILE_KEYS, *(f"reminder {key}" for key in REMINDER_KEYS)}


class RoundFileError(ProblemsError, RoundError):
    """Round settings with problems; `problems` lists every one found, in file order."""


# Where a round setting was written: a file and line ("round.yaml", 4) or an option ("--opens",
# None), by key ("reminder.max"); None when unknown.
Locate = Callable[[str], tuple[str, int | None] | None]


def build_spec(
    values: Mapping[str, Any],
    base_dir: Path,
    tz: ZoneInfo,
    areas: Areas,
    *,
    locate: Locate | None = None,
    now: datetime | None = None,
) -> RoundSpec:
    """Check round settings (from a round file, options, or both) and make a RoundSpec.

    Every problem is collected (RoundFileError lists them all), each with where it was
    written when `locate` says so; with `now`, a closing time in the past is one of them.
    """
    problems: list[Problem] = []

    def bad(key: str, message: str) -> None:
        file, line = (locate(key) if locate else None) or ("", None)
        if file.startswith("--"):
            # "--opens: 'x' is not a date", not "--opens: opens: 'x' is not a date".
            label, _, rest = message.partition(": ")
            if rest and label in _LABELS:
                message = rest
        problems.append(Problem(file, line, message))

    for key in values:
        if key not in ROUND_FILE_KEYS:
            hint = difflib.get_close_matches(str(key), ROUND_FILE_KEYS, n=1)
            known = f"did you mean '{hint[0]}'?" if hint else f"known: {', '.join(ROUND_FILE_KEYS)}"
            bad(str(key), f"unknown round setting '{key}' ({known})")
    survey = values.get("survey")
    survey_path = Path()
    if not isinstance(survey, str) or not survey.strip():
        bad("survey", "survey: give the path of the survey file")
    else:
        survey_path = Path(survey.strip())
        if not survey_path.is_absolute():
            survey_path = base_dir / survey_path
        if not survey_path.is_file():
            bad("survey", f"survey file not found: {survey_path}")
    name = values.get("name")
    if not isinstance(name, str) or not name.strip():
        bad("name", "name: give the round a name (e.g. --name 'Buurtpeiling najaar 2026')")
        name = ""
    name = name.strip()
    if len(name) > 200:
        bad("name", "name: at most 200 characters")
    area_codes, area_problems = check_areas(values.get("areas"), areas)
    for message in area_problems:
        bad("areas", message)
    written: dict[str, str | None] = {}
    moments: dict[str, datetime] = {}
    for key, example in (("opens", "2026-11-09 09:00"), ("closes", "2026-11-30 17:00")):
        if values.get(key) is None:
            verb = "opens" if key == "opens" else "closes"
            bad(key, f"{key}: give the moment the round {verb}, like {example}")
            continue
        try:
            moments[key] = parse_moment(values[key], tz, what=key, end_of_day=key == "closes")
        except RoundError as exc:
            bad(key, str(exc))
            continue
        written[key] = _written(values[key])
    opens_at, closes_at = moments.get("opens"), moments.get("closes")
    if opens_at is not None and closes_at is not None and closes_at <= opens_at:
        bad(
            "closes",
            f"closes {shown(written['closes'], closes_at, tz, closes=True)} must be after "
            f"opens {shown(written['opens'], opens_at, tz)}",
        )
    elif closes_at is not None and now is not None and closes_at <= now:
        bad(
            "closes",
            f"closes {shown(written['closes'], closes_at, tz, closes=True)} is already in the past",
        )
    reminder = values.get("reminder")
    after_days: int | None = None
    max_reminders = 1
    remind_started = remind_not_started = True
    if reminder is not None:
        if not isinstance(reminder, Mapping):
            bad("reminder", "reminder: give after_days (and optionally max and whom)")
            reminder = {}
        for key in reminder:
            if key not in REMINDER_KEYS:
                bad(
                    f"reminder.{key}",
                    f"reminder: unknown setting '{key}' (known: {', '.join(REMINDER_KEYS)})",
                )
        try:
            if reminder.get("after_days") is not None:
                after_days = _positive_int(reminder["after_days"], "reminder after_days")
        except RoundError as exc:
            bad("reminder.after_days", str(exc))
        try:
            if reminder.get("max") is not None:
                max_reminders = _positive_int(reminder["max"], "reminder max")
        except RoundError as exc:
            bad("reminder.max", str(exc))
        try:
            remind_started, remind_not_started = parse_whom(reminder.get("whom"))
        except RoundError as exc:
            bad("reminder.whom", str(exc))
    if problems or opens_at is None or closes_at is None:
        raise RoundFileError(problems)
    return RoundSpec(
        name=name,
        survey_path=survey_path,
        area_codes=area_codes,
        opens_at=opens_at,
        closes_at=closes_at,
        reminder_after_days=after_days,
        max_reminders=max_reminders,
        remind_started=remind_started,
        remind_not_started=remind_not_started,
        opens_written=written.get("opens"),
        closes_written=written.get("closes"),
    )


def _written(value: object) -> str:
    """A time as the team wrote it (text from a file or option; a date or datetime object)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value).strip()


def shown(written: str | None, moment: datetime, tz: ZoneInfo, *, closes: bool = False) -> str:
    """A round's time for staff as they wrote it: a bare closing date stays that date."""
    if written is None:
        return local_end(moment, tz) if closes else local(moment, tz)
    if _DATE_ONLY.match(written):
        return f"{written} (end of that day)" if closes else f"{written} (00:00)"
    return written


# ---- round files -----------------------------------------------------------------------------


@dataclass
class RoundFile:
    """A round file (or a survey file) as read: values as written, and the line of each key."""

    path: str
    values: dict[str, Any]
    lines: dict[str, int]
    is_round_file: bool

    def locate(self, key: str) -> tuple[str, int | None]:
        """The file and line of a key (`reminder.max` falls back to `reminder`'s line)."""
        return self.path, self.lines.get(key) or self.lines.get(key.split(".", 1)[0])


def read_round_file(path: str | Path) -> RoundFile:
    """Read a round file (or tell that it is a survey file); RoundFileError lists what is wrong."""
    try:
        name, root = read_yaml(path)
    except ProblemsError as exc:
        raise RoundFileError(exc.problems) from None
    if not isinstance(root, MappingNode):
        raise RoundFileError(
            [Problem(name, None, "a round file is 'key: value' lines (survey, name, areas, ...)")]
        )
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    problems: list[Problem] = []
    for key_node, value_node in root.value:
        key = str(as_written(key_node))
        line = line_of(key_node)
        if key in values:
            problems.append(Problem(name, line, given_twice(key, lines[key])))
            continue
        values[key] = as_written(value_node)
        lines[key] = line
        if isinstance(value_node, MappingNode):
            for sub_key, _sub_value in value_node.value:
                lines[f"{key}.{as_written(sub_key)}"] = line_of(sub_key)
    round_file = "questions" not in values and any(key in values for key in ROUND_FILE_KEYS)
    if problems and round_file:
        raise RoundFileError(problems)
    return RoundFile(name, values, lines, round_file)
