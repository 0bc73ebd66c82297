"""Stored survey versions: a published version is immutable."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import SurveyVersion


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
    existing = session.scalars(
        select(SurveyVersion).where(
            SurveyVersion.survey_id == survey_id, SurveyVersion.version == version
        )
    ).first()
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


def get_survey_version(session: Session, version_id: int) -> SurveyVersion | None:
    """A stored survey version by its row id."""
    return session.get(SurveyVersion, version_id)
