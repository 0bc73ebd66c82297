"""Retention on SQLite and PostgreSQL: what goes, and what must stay."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.clock import FakeClock
from storage.db import Database
from storage.models import (
    Answer,
    OutboxMessage,
    ProcessedUpdate,
    Resident,
    ResidentChat,
    Response,
    SurveyVersion,
)
from storage.retention import RetentionResult, apply_retention, run_retention

DAYS = 730


def add_resident(session: Session, name: str, chat_id: int, last_seen: datetime) -> Resident:
    resident = Resident(
        pseudonym=name,
        language="nl",
        consented_at=last_seen,
        created_at=last_seen,
        last_seen_at=last_seen,
        flow={},
    )
    resident.chat = ResidentChat(chat_id=chat_id)
    session.add(resident)
    session.flush()
    return resident


def add_response(
    session: Session, version: SurveyVersion, resident: Resident, at: datetime, text: str
) -> Response:
    """A completed response with a grade and a free-text answer, both at `at`."""
    response = Response(
        survey_version_id=version.id,
        resident_id=resident.id,
        response_key=f"key-{resident.pseudonym}",
        area_code="utrecht-overvecht",
        language="nl",
        status="completed",
        state={
            "survey": "buurtpeiling",
            "version": "1",
            "answers": {"grade": 7, "open": text},
            "path": ["grade", "open"],
            "current": None,
            "done": True,
        },
        started_at=at,
        completed_at=at,
        updated_at=at,
    )
    response.answers = [
        Answer(question_id="grade", item_code="Q1", value=7, answered_at=at),
        Answer(question_id="open", value=text, text_language="nl", answered_at=at),
    ]
    session.add(response)
    session.flush()
    return response


def add_outbox(
    session: Session,
    key: str,
    status: str,
    at: datetime,
    resident: Resident | None = None,
    file_data: bytes | None = None,
) -> None:
    session.add(
        OutboxMessage(
            kind="digest",
            dedupe_key=key,
            chat_id=-1001234567890,
            is_group=True,
            resident_id=resident.id if resident else None,
            method="sendDocument" if file_data else "sendMessage",
            payload={},
            file_name="digest.csv" if file_data else None,
            file_data=file_data,
            status=status,
            attempts=1,
            next_attempt_at=at,
            created_at=at,
            sent_at=at if status == "sent" else None,
        )
    )


def count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_retention_erases_old_data_and_keeps_aggregates(db: Database) -> None:
    clock = FakeClock()
    now = clock.now()
    old = now - timedelta(days=DAYS + 1)
    recent = now - timedelta(days=DAYS - 1)
    with db.session() as session:
        version = SurveyVersion(
            survey_id="buurtpeiling",
            version="1",
            title="Buurtpeiling",
            content_hash="x",
            definition={},
            source="",
            created_at=old,
        )
        session.add(version)
        session.flush()
        gone = add_resident(session, "gone", 111111111, old)
        active = add_resident(session, "active", 222222222, now)
        # Answered long ago but still around: keeps the link, loses the old free text.
        add_response(session, version, gone, old, "Bel mij op 0612345678")
        add_response(session, version, active, old, "Meer groen")
        add_outbox(session, "invite-gone", "pending", now, resident=gone)
        add_outbox(session, "sent-old", "sent", now - timedelta(days=31))
        add_outbox(session, "sent-csv", "sent", now - timedelta(days=2), file_data=b"a,b\n")
        add_outbox(session, "sent-new", "sent", now - timedelta(hours=1), file_data=b"chart")
        add_outbox(session, "failed-old", "failed", now - timedelta(days=31))
        add_outbox(session, "waiting", "pending", now - timedelta(days=40))
        session.add(ProcessedUpdate(bot_id=1, update_id=1, processed_at=now - timedelta(days=3)))
        session.add(ProcessedUpdate(bot_id=1, update_id=2, processed_at=now - timedelta(hours=1)))
        recent_one = add_resident(session, "recent", 333333333, recent)
        add_response(session, version, recent_one, recent, "Prima buurt")

    with db.session() as session:
        result = apply_retention(session, now, DAYS)
    assert result == RetentionResult(
        free_text_answers=2,
        residents_erased=1,
        responses_unlinked=1,
        processed_updates=1,
        outbox_purged=2,
        outbox_files_dropped=1,
    )

    with db.session() as session:
        assert sorted(session.scalars(select(Resident.pseudonym))) == ["active", "recent"]
        assert count(session, ResidentChat) == 2
        responses = session.scalars(select(Response).order_by(Response.id)).all()
        assert len(responses) == 3  # every response stays
        unlinked, kept, fresh = responses
        assert unlinked.resident_id is None
        assert kept.resident_id is not None and fresh.resident_id is not None
        # Old free text is gone from the answers table and from the engine state.
        assert unlinked.state["answers"] == {"grade": 7}
        assert kept.state["answers"] == {"grade": 7}
        assert fresh.state["answers"] == {"grade": 7, "open": "Prima buurt"}
        answers = session.execute(select(Answer.response_id, Answer.question_id)).all()
        assert sorted(answers) == sorted(
            [(unlinked.id, "grade"), (kept.id, "grade"), (fresh.id, "grade"), (fresh.id, "open")]
        )
        outbox = {row.dedupe_key: row.file_data for row in session.scalars(select(OutboxMessage))}
        # The erased resident's invitation went with them; pending rows are never purged.
        assert outbox == {"sent-csv": None, "sent-new": b"chart", "waiting": None}
        assert list(session.scalars(select(ProcessedUpdate.update_id))) == [2]

    # Running it again finds nothing more to do.
    assert run_retention(db, now, DAYS) == RetentionResult()


def test_retention_days_must_be_positive(sqlite_db: Database) -> None:
    with sqlite_db.session() as session, pytest.raises(ValueError):
        apply_retention(session, FakeClock().now(), 0)
