"""Stored survey versions: a published version is immutable, so each is parsed once.

`SurveyVersions` is the one cache of stored versions as `Survey` and `Engine` objects. Row ids
belong to one database, so each `Database` holds its own (`db.surveys`); everything that turns a
stored version into a survey (round messages, digests, exports, the resident's path) asks it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import SurveyVersion
from surveys.engine import Engine
from surveys.schema import Survey


class VersionConflict(Exception):
    """The same survey id and version exist with different content."""


def store_survey_version(
    session: Session,
    *,
    survey_id: str,
    version: str,
    title: str,
    definition: dict[str, Any],
    content_hash: str,
    source: str,
    now: datetime,
) -> SurveyVersion:
    """Return the stored version, storing it first if new; refuse changed content."""
    existing = find_survey_version(session, survey_id, version)
    if existing is not None:
        if existing.content_hash != content_hash:
            raise VersionConflict(
                f"survey '{survey_id}' version '{version}' is already stored with other content; "
                "give the changed survey a new version"
            )
        return existing
    stored = SurveyVersion(
        survey_id=survey_id,
        version=version,
        title=title,
        definition=definition,
        content_hash=content_hash,
        source=source,
        created_at=now,
    )
    session.add(stored)
    session.flush()
    return stored


def store_survey(session: Session, survey: Survey, source: str, now: datetime) -> SurveyVersion:
    """store_survey_version for a loaded survey (its file's text as `source`)."""
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


def find_survey_version(session: Session, survey_id: str, version: str) -> SurveyVersion | None:
    """The stored version of a survey id and version, if any."""
    return session.scalars(
        select(SurveyVersion).where(
            SurveyVersion.survey_id == survey_id, SurveyVersion.version == version
        )
    ).first()


def get_survey_version(session: Session, version_id: int) -> SurveyVersion | None:
    """A stored survey version by its row id."""
    return session.get(SurveyVersion, version_id)


class SurveyVersions:
    """Stored survey versions of one database as Surveys and Engines, each parsed once.

    Versions never change once stored, so nothing is ever invalidated; a version id that is
    not stored is a LookupError. Safe across threads: a race parses a version twice, both
    results are equal.
    """

    def __init__(self) -> None:
        self._surveys: dict[int, Survey] = {}
        self._engines: dict[int, Engine] = {}

    def survey(self, session: Session, version_id: int) -> Survey:
        """The survey of a stored version."""
        found = self._surveys.get(version_id)
        if found is None:
            stored = get_survey_version(session, version_id)
            if stored is None:
                raise LookupError(f"survey version {version_id} is not stored")
            found = self._surveys[version_id] = Survey.from_json(stored.definition)
        return found

    def engine(self, session: Session, version_id: int) -> Engine:
        """The engine that runs a stored version."""
        found = self._engines.get(version_id)
        if found is None:
            found = self._engines[version_id] = Engine(self.survey(session, version_id))
        return found
