"""Seeding helpers for the alliance and digest tests (responses written straight to the database)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from storage.db import Database
from storage.models import Answer, Response, Round
from usecases.releases import cut_releases

_keys = itertools.count(1)


def standing_round(db: Database) -> Round:
    """The standing round that build_services created."""
    with db.session() as session:
        return session.scalars(select(Round).where(Round.standing.is_(True))).one()


def seed(
    db: Database,
    *,
    area: str,
    neighbourhood: str | None,
    n: int,
    at: datetime,
    round_: Round | None = None,
    grade: int = 7,
    unsafe: str = "ja",
    nuisance: Sequence[str] = ("rommel", "hondenpoep"),
    text: str | None = None,
    text_language: str = "nl",
    completed: bool = True,
    extra: dict[str, Any] | None = None,
) -> None:
    """n completed responses with the same answers, all at `at` (`extra`: more answers)."""
    round_ = round_ or standing_round(db)
    with db.session() as session:
        for _ in range(n):
            answers: dict[str, Any] = {
                "grade_liveability": grade,
                "grade_safety": max(1, grade - 1),
                "trend": "vooruit",
                "unsafe_ever": unsafe,
                "cohesion_home": "eens",
                "nuisance": list(nuisance),
            }
            if text is not None:
                answers["improve"] = text
            answers.update(extra or {})
            response = Response(
                round_id=round_.id,
                survey_version_id=round_.survey_version_id,
                resident_id=None,
                response_key=f"seed{next(_keys)}",
                area_code=area,
                neighbourhood_code=neighbourhood,
                language="nl",
                status="completed" if completed else "started",
                state={},
                reminders_sent=0,
                started_at=at,
                completed_at=at if completed else None,
                updated_at=at,
                answers=[
                    Answer(
                        question_id=qid,
                        value=value,
                        text_language=text_language if qid == "improve" else None,
                        answered_at=at,
                    )
                    for qid, value in answers.items()
                ],
            )
            session.add(response)


def release(services: Any, at: datetime | None = None) -> Any:
    """Cut the releases that are due, as the digest job does (at the latest midnight UTC before
    the services' clock, or at `at`)."""
    return cut_releases(
        services.db,
        services.areas,
        services.clock.now() if at is None else max(at, services.clock.now()),
        min_n=services.settings.min_cell_size,
        catalogue=services.catalogue,
        at=at,
    )
