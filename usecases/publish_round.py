"""Publish a round: store its survey version and the round (scheduled), in one transaction.

A corrected publish of a round that has not opened yet replaces its plan; a changed survey under
a version number already stored, a round that would overlap another in an area, or one whose
closing time has passed, is refused with a RoundError that says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from storage import rounds as store
from storage.db import Database
from storage.models import Round, SurveyVersion
from storage.survey_versions import VersionConflict, find_survey_version, store_survey
from surveys.round_file import RoundError, RoundSpec, shown
from surveys.schema import Survey
from surveys.times import local, local_end


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
        return store_survey(session, survey, source, now)
    except VersionConflict as exc:
        stored = find_survey_version(session, survey.id, survey.version)
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
