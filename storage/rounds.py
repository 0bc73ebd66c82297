"""Rounds: which survey version a resident of an area answers now."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Round

STANDING_ROUND_NAME = "Doorlopende buurtpeiling"


def ensure_standing_round(session: Session, survey_version_id: int, now: datetime) -> Round:
    """The always-open round of the default survey, offered while no published round is open."""
    current = session.scalars(
        select(Round).where(Round.standing.is_(True), Round.status == "open")
    ).first()
    if current is not None and current.survey_version_id == survey_version_id:
        return current
    if current is not None:
        # The default survey changed version: the old standing round ends here.
        current.status = "closed"
        current.closed_at = now
    standing = Round(
        name=STANDING_ROUND_NAME,
        survey_version_id=survey_version_id,
        area_codes=None,
        opens_at=now,
        closes_at=now + timedelta(days=365 * 100),
        reminder_after_days=None,
        max_reminders=0,
        status="open",
        standing=True,
        opened_at=now,
        created_at=now,
    )
    session.add(standing)
    session.flush()
    return standing


def round_for_area(session: Session, area_code: str, now: datetime) -> Round | None:
    """The round a resident of `area_code` answers now: a published open round, else the standing one."""
    candidates = session.scalars(
        select(Round)
        .where(Round.status == "open", Round.opens_at <= now)
        .order_by(Round.standing.asc(), Round.opens_at.desc(), Round.id.desc())
    ).all()
    for candidate in candidates:
        if candidate.closes_at <= now:
            continue
        if candidate.area_codes is None or area_code in candidate.area_codes:
            return candidate
    return None
