"""Round lifecycle: publish rounds, open and close them on time, queue invitations and reminders.

Pure of Telegram except for building Bot API payload dicts for the outbox. Every decision and
the outbox rows it causes are written in one transaction, under a lock on the round's row, and
outbox dedupe keys make a repeated decision harmless (leader hand-over, a tick run twice).
"""

from __future__ import annotations

import asyncio
import difflib
import html
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from journey import wire as cb
from locales.catalogue import Catalogue, default_catalogue
from storage import outbox as outbox_store
from storage import rounds as store
from storage.db import Database
from storage.models import Round, SurveyVersion
from storage.survey_versions import VersionConflict, get_survey_version, store_survey_version
from surveys.areas import Areas
from surveys.loader import tab_problems
from surveys.schema import Survey, pick

if TYPE_CHECKING:
    from telegram.ext import Application, ContextTypes

log = logging.getLogger(__name__)

TICK_INTERVAL = 30.0
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


# ---- times -----------------------------------------------------------------------------------


def zone(name: str) -> ZoneInfo:
    """The time zone of the settings (Europe/Amsterdam by default)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RoundError(f"unknown time zone '{name}'") from exc


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


def local(moment: datetime, tz: ZoneInfo) -> str:
    """A moment as local time for staff: 2026-11-09 09:00."""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def local_end(moment: datetime, tz: ZoneInfo) -> str:
    """A closing moment for staff: local midnight is the end of the day before (24:00).

    `closes: 2026-12-09` closes at the start of 10 December; "2026-12-09 24:00" says the
    date the team wrote instead of one nobody wrote.
    """
    at = moment.astimezone(tz)
    if at.hour == 0 and at.minute == 0 and at.second == 0:
        return f"{(at - timedelta(days=1)):%Y-%m-%d} 24:00"
    return local(moment, tz)


def resident_time(moment: datetime, tz: ZoneInfo) -> str:
    """A moment as local time for residents: 9-11-2026 09:00."""
    at = moment.astimezone(tz)
    return f"{at.day}-{at.month}-{at.year} {at:%H:%M}"


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


@dataclass(frozen=True)
class RoundProblem:
    """One thing wrong in round settings, with where it was written: file:line or an option."""

    where: str | None
    message: str

    def __str__(self) -> str:
        if self.where is None:
            return self.message
        message = self.message
        if self.where.startswith("--"):
            # "--opens: 'x' is not a date", not "--opens: opens: 'x' is not a date".
            label, _, rest = message.partition(": ")
            if rest and label in _LABELS:
                message = rest
        return f"{self.where}: {message}"


_LABELS = {*ROUND_FILE_KEYS, *(f"reminder {key}" for key in REMINDER_KEYS)}


class RoundFileError(RoundError):
    """Round settings with problems; `problems` lists every one found, in file order."""

    def __init__(self, problems: list[RoundProblem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


# Where a round setting was written ("round.yaml:4", "--opens"), by key ("reminder.max").
Locate = Callable[[str], str | None]


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
    problems: list[RoundProblem] = []

    def bad(key: str, message: str) -> None:
        problems.append(RoundProblem(locate(key) if locate else None, message))

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

    def locate(self, key: str) -> str:
        """`round.yaml:4` for a key (`reminder.max` falls back to `reminder`'s line)."""
        line = self.lines.get(key) or self.lines.get(key.split(".", 1)[0])
        return f"{self.path}:{line}" if line else self.path


def _raw(node: yaml.Node) -> Any:
    """A value exactly as written: text for scalars (dates stay as typed), lists, mappings."""
    if isinstance(node, yaml.ScalarNode):
        return None if node.tag == "tag:yaml.org,2002:null" else str(node.value)
    if isinstance(node, yaml.SequenceNode):
        return [_raw(item) for item in node.value]
    if isinstance(node, yaml.MappingNode):
        return {str(_raw(key)): _raw(value) for key, value in node.value}
    return None  # pragma: no cover - composed YAML has only these three kinds


def read_round_file(path: str | Path) -> RoundFile:
    """Read a round file (or tell that it is a survey file); RoundFileError lists what is wrong."""
    name = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise RoundFileError([RoundProblem(name, "file not found")]) from None
    except IsADirectoryError:
        raise RoundFileError([RoundProblem(name, "this is a folder, not a file")]) from None
    except UnicodeDecodeError:
        raise RoundFileError([RoundProblem(name, "not UTF-8 text; save it as UTF-8")]) from None
    except OSError as exc:
        raise RoundFileError([RoundProblem(name, f"cannot read it: {exc.strerror}")]) from None
    tabs = tab_problems(name, text)  # the same rule and words as for survey files
    if tabs:
        raise RoundFileError([RoundProblem(f"{t.file}:{t.line}", t.message) for t in tabs])
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        detail = " ".join(part for part in (exc.context, exc.problem) if part) or "not valid YAML"
        raise RoundFileError(
            [
                RoundProblem(
                    where,
                    f"YAML syntax error: {detail} (tip: put values that contain : # [ ] or "
                    "quotes between double quotes)",
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise RoundFileError([RoundProblem(name, f"YAML syntax error: {exc}")]) from None
    if not isinstance(root, yaml.MappingNode):
        raise RoundFileError(
            [RoundProblem(name, "a round file is 'key: value' lines (survey, name, areas, ...)")]
        )
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    problems: list[RoundProblem] = []
    for key_node, value_node in root.value:
        key = str(_raw(key_node))
        line = key_node.start_mark.line + 1
        if key in values:
            problems.append(
                RoundProblem(
                    f"{name}:{line}", f"'{key}' is given twice (also on line {lines[key]})"
                )
            )
            continue
        values[key] = _raw(value_node)
        lines[key] = line
        if isinstance(value_node, yaml.MappingNode):
            for sub_key, _sub_value in value_node.value:
                lines[f"{key}.{_raw(sub_key)}"] = sub_key.start_mark.line + 1
    round_file = "questions" not in values and any(key in values for key in ROUND_FILE_KEYS)
    if problems and round_file:
        raise RoundFileError(problems)
    return RoundFile(name, values, lines, round_file)


# ---- publishing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """The outcome of `publish_round`: which round, and whether it is new, updated or unchanged."""

    round_id: int
    outcome: str  # created | updated | unchanged
    survey_version_id: int


def publish_round(
    db: Database, spec: RoundSpec, survey: Survey, source: str, now: datetime, tz: ZoneInfo
) -> Published:
    """Store the survey version and the round (scheduled); refuse what would change the past."""
    if spec.closes_at <= now:
        when = shown(spec.closes_written, spec.closes_at, tz, closes=True)
        raise RoundError(f"closes {when} is already in the past")
    with db.session() as session:
        version = _store_version(session, survey, source, now)
        same_name = store.rounds_named(session, spec.name)
        for existing in same_name:
            if _same(existing, spec, version.id):
                return Published(existing.id, "unchanged", version.id)
        editable = next((r for r in same_name if r.status == store.SCHEDULED), None)
        if same_name and editable is None:
            other = same_name[0]
            raise RoundError(
                f"round '{spec.name}' already exists (round {other.id}, {other.status}) and "
                "can no longer change; publish with another name"
            )
        clash = store.overlapping(
            session,
            spec.area_codes,
            spec.opens_at,
            spec.closes_at,
            exclude_id=editable.id if editable else None,
        )
        if clash:
            other = clash[0]
            shared = (
                "all areas"
                if spec.area_codes is None or other.area_codes is None
                else ", ".join(sorted(set(spec.area_codes) & set(other.area_codes)))
            )
            raise RoundError(
                f"overlaps round {other.id} '{other.name}' ({local(other.opens_at, tz)} to "
                f"{local_end(other.closes_at, tz)}) in {shared}: one published round per area at a time"
            )
        if editable is not None:
            # Not opened yet: a corrected publish replaces the plan (nobody was invited).
            editable.survey_version_id = version.id
            editable.area_codes = spec.area_codes
            editable.opens_at = spec.opens_at
            editable.closes_at = spec.closes_at
            editable.reminder_after_days = spec.reminder_after_days
            editable.max_reminders = spec.max_reminders
            editable.remind_started = spec.remind_started
            editable.remind_not_started = spec.remind_not_started
            return Published(editable.id, "updated", version.id)
        created = store.create_round(
            session,
            name=spec.name,
            survey_version_id=version.id,
            area_codes=spec.area_codes,
            opens_at=spec.opens_at,
            closes_at=spec.closes_at,
            reminder_after_days=spec.reminder_after_days,
            max_reminders=spec.max_reminders,
            remind_started=spec.remind_started,
            remind_not_started=spec.remind_not_started,
            now=now,
        )
        return Published(created.id, "created", version.id)


def _store_version(session: Session, survey: Survey, source: str, now: datetime) -> SurveyVersion:
    """The stored survey version; a changed survey under a used version number is refused."""
    try:
        return store_survey_version(
            session,
            survey_id=survey.id,
            version=survey.version,
            title=survey.title[survey.languages[0]],
            definition=survey.to_json(),
            content_hash=survey.content_hash,
            source=source,
            now=now,
        )
    except VersionConflict as exc:
        stored = session.scalars(
            select(SurveyVersion).where(
                SurveyVersion.survey_id == survey.id, SurveyVersion.version == survey.version
            )
        ).first()
        used = stored is not None and store.survey_version_in_use(session, stored.id)
        state = "already has answers and is stored" if used else "is already stored"
        raise RoundError(
            f"survey '{survey.id}' version '{survey.version}' {state} with other content: "
            "a changed survey needs a new version; raise 'version' in the survey file"
        ) from exc


def _same(existing: Round, spec: RoundSpec, version_id: int) -> bool:
    return (
        existing.survey_version_id == version_id
        and (existing.area_codes or None) == spec.area_codes
        and existing.opens_at == spec.opens_at
        and existing.closes_at == spec.closes_at
        and existing.reminder_after_days == spec.reminder_after_days
        and (existing.max_reminders == spec.max_reminders or spec.reminder_after_days is None)
        and existing.remind_started == spec.remind_started
        and existing.remind_not_started == spec.remind_not_started
    )


# ---- messages --------------------------------------------------------------------------------


class Texts:
    """Resident texts about rounds, in each resident's language (Dutch when untranslated)."""

    def __init__(self, catalogue: Catalogue, areas: Areas, tz: ZoneInfo) -> None:
        self.catalogue = catalogue
        self.areas = areas
        self.tz = tz
        self._surveys: dict[int, Survey] = {}

    def survey(self, session: Session, version_id: int) -> Survey:
        """A stored survey version (cached: versions never change)."""
        found = self._surveys.get(version_id)
        if found is None:
            stored = get_survey_version(session, version_id)
            if stored is None:
                raise LookupError(f"survey version {version_id} is not stored")
            found = Survey.from_json(stored.definition)
            self._surveys[version_id] = found
        return found

    def _common(
        self, session: Session, round_: Round, lang: str | None, area: str | None
    ) -> dict[str, str]:
        survey = self.survey(session, round_.survey_version_id)
        found = self.areas.get(area or "")
        return {
            "title": html.escape(pick(survey.title, lang, survey.default_language)),
            "area": html.escape(found.name if found else ""),
            "closes": resident_time(round_.closes_at, self.tz),
        }

    def invitation(self, session: Session, round_: Round, to: store.Recipient) -> dict[str, Any]:
        """The invitation with its start button."""
        params = self._common(session, round_, to.language, to.area_code)
        return payload(
            self.catalogue.get(to.language, "rounds.invitation.text", **params),
            self.catalogue.get(to.language, "rounds.invitation.button"),
            round_.id,
        )

    def reminder(self, session: Session, round_: Round, to: store.Recipient) -> dict[str, Any]:
        """A reminder: continue (started) or take part (not started)."""
        params = self._common(session, round_, to.language, to.area_code)
        key, button = (
            ("rounds.reminder.started", "rounds.reminder.continue_button")
            if to.started
            else ("rounds.reminder.not_started", "rounds.reminder.start_button")
        )
        return payload(
            self.catalogue.get(to.language, key, **params),
            self.catalogue.get(to.language, button),
            round_.id,
        )

    def closed(self, session: Session, round_: Round, to: store.Recipient) -> dict[str, Any]:
        """The round closed while this resident was answering; their answers are kept."""
        params = self._common(session, round_, to.language, to.area_code)
        return {
            "text": self.catalogue.get(to.language, "rounds.closed_midway", **params),
            "parse_mode": "HTML",
        }


def payload(text: str, button: str, round_id: int) -> dict[str, Any]:
    """A sendMessage payload with one inline button that starts or continues the round."""
    return {
        "text": text,
        "parse_mode": "HTML",
        "reply_markup": {
            "inline_keyboard": [[{"text": button, "callback_data": cb.encode("s", round_id)}]]
        },
    }


# ---- the tick --------------------------------------------------------------------------------


@dataclass
class TickReport:
    """What one round tick decided (ids of rounds, counts of queued messages)."""

    skipped: bool = False
    opened: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    invitations: int = 0
    reminders: int = 0
    closed_responses: int = 0
    closed_notices: int = 0
    # Unfinished standing-round responses ended because a published round opened.
    superseded: int = 0

    @property
    def changed(self) -> bool:
        """Whether anything was decided."""
        return bool(self.opened or self.closed or self.missed or self.reminders)


def run_round_tick(
    db: Database,
    areas: Areas,
    now: datetime,
    *,
    catalogue: Catalogue | None = None,
    timezone: str = "Europe/Amsterdam",
    should_run: Callable[[], bool] | None = None,
) -> TickReport:
    """Close due rounds, open due rounds (invitations), decide due reminders; idempotent.

    `should_run` is the hook for leader election: when it says no, nothing is done.
    """
    if should_run is not None and not should_run():
        return TickReport(skipped=True)
    texts = Texts(catalogue or default_catalogue(), areas, zone(timezone))
    report = TickReport()
    # Close first: a round that follows another in the same area then opens cleanly.
    with db.session() as session:
        to_close = store.due_to_close(session, now)
    for round_id in to_close:
        with db.session() as session:
            close_round(session, round_id, now, texts, report)
    with db.session() as session:
        to_open = store.due_to_open(session, now)
    for round_id in to_open:
        with db.session() as session:
            open_round(session, round_id, now, texts, report)
    with db.session() as session:
        to_remind = store.with_reminders_left(session, now)
    for round_id in to_remind:
        with db.session() as session:
            remind(session, round_id, now, texts, report)
    return report


def open_round(
    session: Session, round_id: int, now: datetime, texts: Texts, report: TickReport
) -> None:
    """Open a scheduled round and queue an invitation for every reachable resident of its areas."""
    round_ = store.get_round(session, round_id, lock=True)
    if round_ is None or round_.status != store.SCHEDULED or round_.opens_at > now:
        return
    if round_.closes_at <= now:
        # The bot was down for the whole period: nobody can answer any more; invite nobody.
        round_.status = store.CLOSED
        round_.closed_at = now
        report.missed.append(round_id)
        log.warning("round %d: its whole period passed while the bot was down", round_id)
        return
    round_.status = store.OPEN
    round_.opened_at = now
    report.superseded += store.supersede_standing(session, round_, now)
    invited = 0
    for to in store.not_started(session, round_):
        if outbox_store.enqueue(
            session,
            kind="invitation",
            dedupe_key=f"invite:{round_id}:{to.resident_id}",
            chat_id=to.chat_id,
            method="sendMessage",
            payload=texts.invitation(session, round_, to),
            now=now,
            resident_id=to.resident_id,
        ):
            invited += 1
    report.opened.append(round_id)
    report.invitations += invited
    log.info("round %d opened: %d invitation(s) queued", round_id, invited)


def close_round(
    session: Session, round_id: int, now: datetime, texts: Texts, report: TickReport
) -> bool:
    """Close a round: unfinished responses become `closed` (answers kept) and are told so.

    A scheduled round that never opened is closed too (it never opens). False if already closed.
    """
    round_ = store.get_round(session, round_id, lock=True)
    if round_ is None or round_.status == store.CLOSED or round_.standing:
        return False
    was_open = round_.status == store.OPEN
    round_.status = store.CLOSED
    round_.closed_at = now
    if not was_open:
        report.missed.append(round_id)
        return True
    residents = store.close_started_responses(session, round_id, now)
    notices = 0
    for to in store.reachable_among(session, residents):
        if outbox_store.enqueue(
            session,
            kind="round_closed",
            dedupe_key=f"closed:{round_id}:{to.resident_id}",
            chat_id=to.chat_id,
            method="sendMessage",
            payload=texts.closed(session, round_, to),
            now=now,
            resident_id=to.resident_id,
        ):
            notices += 1
    report.closed.append(round_id)
    report.closed_responses += len(residents)
    report.closed_notices += notices
    log.info(
        "round %d closed: %d unfinished response(s) closed, %d notice(s) queued",
        round_id,
        len(residents),
        notices,
    )
    return True


def reminder_due(round_: Round, now: datetime) -> int:
    """The number of the latest reminder wave due now (0: none), counted from the opening."""
    if round_.reminder_after_days is None or round_.opened_at is None:
        return 0
    elapsed = now - round_.opened_at
    waves = int(elapsed / timedelta(days=round_.reminder_after_days))
    return min(round_.max_reminders, waves)


def remind(
    session: Session, round_id: int, now: datetime, texts: Texts, report: TickReport
) -> None:
    """Queue the due reminder wave (only the latest one after a long downtime: no bursts)."""
    round_ = store.get_round(session, round_id, lock=True)
    if round_ is None or round_.status != store.OPEN or round_.closes_at <= now:
        return
    wave = reminder_due(round_, now)
    if wave <= round_.reminders_done:
        return
    recipients: list[store.Recipient] = []
    if round_.remind_started:
        recipients += store.started_not_finished(session, round_id)
    if round_.remind_not_started:
        recipients += store.not_started(session, round_)
    sent = 0
    for to in recipients:
        if outbox_store.enqueue(
            session,
            kind="reminder",
            dedupe_key=f"remind:{round_id}:{to.resident_id}:{wave}",
            chat_id=to.chat_id,
            method="sendMessage",
            payload=texts.reminder(session, round_, to),
            now=now,
            resident_id=to.resident_id,
        ):
            sent += 1
    store.count_reminder(session, round_id, (to.resident_id for to in recipients if to.started))
    round_.reminders_done = wave
    report.reminders += sent
    log.info("round %d: reminder %d queued for %d resident(s)", round_id, wave, sent)


def close_now(
    db: Database, round_id: int, now: datetime, areas: Areas, timezone: str
) -> TickReport | None:
    """Close one round at once (the CLI); None when there is no such round or it is closed."""
    texts = Texts(default_catalogue(), areas, zone(timezone))
    report = TickReport()
    with db.session() as session:
        if not close_round(session, round_id, now, texts, report):
            return None
    return report


# ---- PTB job ---------------------------------------------------------------------------------


def register_round_jobs(
    application: Application[Any, Any, Any, Any, Any, Any],
    *,
    interval: float = TICK_INTERVAL,
    should_run: Callable[[], bool] | None = None,
) -> None:
    """Run the round tick every `interval` seconds, the first time at once (catch-up at start)."""
    from handlers.context import SERVICES_KEY
    from usecases.services import Services

    if application.job_queue is None:
        log.warning("no JobQueue: rounds will not open or close by themselves")
        return

    busy = asyncio.Lock()

    async def tick(context: ContextTypes.DEFAULT_TYPE) -> None:
        if busy.locked():  # a long catch-up is still running: the next tick will see the rest
            return
        svc: Services = context.application.bot_data[SERVICES_KEY]
        async with busy:
            await _tick(svc)

    async def _tick(svc: Services) -> None:
        try:
            report = await asyncio.to_thread(
                run_round_tick,
                svc.db,
                svc.areas,
                svc.clock.now(),
                catalogue=svc.catalogue,
                timezone=svc.settings.timezone,
                should_run=should_run,
            )
        except Exception:  # a database outage must not stop the job; the next tick catches up
            log.exception("round tick failed")
            return
        if report.changed:
            log.info(
                "round tick: opened %s, closed %s, closed unopened %s, %d invitation(s), %d reminder(s)",
                report.opened,
                report.closed,
                report.missed,
                report.invitations,
                report.reminders,
            )

    # A job added before the JobQueue starts (post_init) with first=0 would be skipped to the
    # next interval, and a start-up slower than the default 1 s misfire grace would drop it:
    # so the catch-up is its own one-off job that never counts as missed.
    queue = application.job_queue
    queue.run_once(
        tick, when=0, name="round-tick-catch-up", job_kwargs={"misfire_grace_time": None}
    )
    queue.run_repeating(
        tick,
        interval=interval,
        first=interval,
        name="round-tick",
        job_kwargs={"misfire_grace_time": int(interval)},
    )
