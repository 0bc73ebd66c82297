"""How long approving an alliance response takes for a large area (recipients chosen, recorded
and queued in one transaction), and how long the preview's recipient count takes.

    .venv/bin/python -m benchmarks.alliance_responses [--residents 5000] [--database-url URL]

Without --database-url: a SQLite file in a temporary folder. A PostgreSQL URL must name an empty
database (the script creates the schema and leaves the rows).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from bot.settings import Settings
from locales.catalogue import default_catalogue
from storage import alliance_responses as store
from storage.db import Database
from storage.migrate import upgrade
from storage.models import (
    Alliance,
    Answer,
    Resident,
    ResidentChat,
    Response,
    Round,
    SurveyVersion,
)
from surveys.areas import default_areas
from surveys.loader import load_default_survey
from usecases import alliance_responses as uc

NOW = datetime(2026, 11, 2, 9, tzinfo=UTC)
AREA = "utrecht-overvecht"
LANGUAGES = ["nl", "en", "tr", "ar", "pl"]


def seed(db: Database, residents: int) -> int:
    """Residents who answered one round in AREA, a group and a pending response; its id."""
    survey = load_default_survey()
    with db.session() as session:
        version = SurveyVersion(
            survey_id=survey.id,
            version=survey.version,
            title="t",
            content_hash="h",
            definition=survey.to_json(),
            source="",
            created_at=NOW,
        )
        session.add(version)
        session.flush()
        round_ = Round(
            name="Najaarspeiling",
            survey_version_id=version.id,
            area_codes=[AREA],
            opens_at=NOW,
            closes_at=NOW,
            max_reminders=0,
            status="closed",
            standing=False,
            opened_at=NOW,
            created_at=NOW,
        )
        session.add(round_)
        session.flush()
        session.execute(
            insert(Resident),
            [
                {
                    "pseudonym": f"p{n}",
                    "language": LANGUAGES[n % len(LANGUAGES)],
                    "language_source": "chosen",
                    "language_switch_offered": False,
                    "area_code": AREA,
                    "consented_at": NOW,
                    "created_at": NOW,
                    "last_seen_at": NOW,
                    "flow": {},
                }
                for n in range(residents)
            ],
        )
        ids = list(session.scalars(select(Resident.id).order_by(Resident.id)))
        session.execute(
            insert(ResidentChat), [{"resident_id": i, "chat_id": 10_000 + i} for i in ids]
        )
        session.execute(
            insert(Response),
            [
                {
                    "round_id": round_.id,
                    "survey_version_id": version.id,
                    "resident_id": i,
                    "response_key": f"k{i}",
                    "area_code": AREA,
                    "language": "nl",
                    "status": "started",
                    "state": {},
                    "reminders_sent": 0,
                    "started_at": NOW,
                    "updated_at": NOW,
                }
                for i in ids
            ],
        )
        response_ids = list(session.scalars(select(Response.id)))
        session.execute(
            insert(Answer),
            [
                {
                    "response_id": r,
                    "question_id": "grade_liveability",
                    "value": 7,
                    "answered_at": NOW,
                }
                for r in response_ids
            ],
        )
        alliance = Alliance(
            area_code=AREA,
            chat_id=-4001,
            title="Alliantie",
            language="nl",
            schedule={},
            linked_at=NOW,
        )
        session.add(alliance)
        session.flush()
        response, _ = store.create_draft(
            session,
            alliance_id=alliance.id,
            area_code=AREA,
            round_id=round_.id,
            text="Wij hoorden u. " * 100,
            now=NOW,
        )
        store.set_translation(response, "en", "We heard you. " * 100)
        session.flush()
        store.move(session, response.id, [store.DRAFT], store.PENDING, submitted_at=NOW)
        return response.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--residents", type=int, default=5000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        db = Database(url)
        try:
            response_id = seed(db, args.residents)
            catalogue = default_catalogue()
            env = uc.ResponseEnv.build(
                Settings(), catalogue, default_areas(), catalogue.languages, db.surveys
            )
            with db.session() as session:
                started = time.perf_counter()
                reach = store.count_recipients(session, 1, AREA)
                counted = time.perf_counter() - started
            started = time.perf_counter()
            with db.session() as session:
                review = uc.approve(session, env, response_id, reviewer="cli", now=NOW)
            approved = time.perf_counter() - started
        finally:
            db.dispose()
    backend = url.split(":", 1)[0]
    print(
        f"{backend}: {args.residents} residents; preview count {reach} in {counted * 1000:.0f} ms; "
        f"approve queued {review.recipients} ({review.by_language}) in {approved:.2f} s"
    )


if __name__ == "__main__":
    main()
