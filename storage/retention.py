"""Retention: erase what buurtstem no longer needs, keep the aggregate survey results.

- Free-text answers older than `days` are deleted (also from the engine state of their response,
  which keeps a copy of every answer).
- Residents not seen for `days` are erased with their chat row and their queued messages; their
  responses and answers stay, unlinked (`responses.resident_id` set to NULL first, because that
  foreign key is ON DELETE CASCADE and would delete the answers with the resident); so do the
  records of alliance responses sent to them, with their reactions.
- Processed update ids older than 2 days are forgotten (Telegram redelivers for at most a day).
- Outbox rows that are final (sent, failed, unknown) are deleted after 30 days; the file bytes
  of sent rows (digest charts and CSVs) are dropped after 1 day.
- Charts kept with published releases are dropped after 30 days (drawn again when needed).
  Releases keep no free text: a digest quotes comments by answer id, read when it is made, so
  a comment deleted here (or erased by /forget) is never quoted again.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from storage.db import Database
from storage.models import (
    AllianceResponseRecipient,
    Answer,
    OutboxMessage,
    ProcessedUpdate,
    Resident,
    ResidentChat,
    Response,
)
from storage.releases import purge_charts

T = TypeVar("T")
_CHUNK = 500  # ids per IN (...) list: well below SQLite's and PostgreSQL's parameter limits
_NO_SYNC = {"synchronize_session": False}


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """How many rows each retention rule touched."""

    free_text_answers: int = 0
    residents_erased: int = 0
    responses_unlinked: int = 0
    processed_updates: int = 0
    outbox_purged: int = 0
    outbox_files_dropped: int = 0
    release_charts_dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts by name (for logs and the CLI)."""
        return asdict(self)


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _count(result: Any) -> int:
    return int(result.rowcount or 0) if isinstance(result, CursorResult) else 0


def delete_free_text_answers(session: Session, before: datetime) -> int:
    """Delete free-text answers given before `before`, also from their response's state."""
    pairs = session.execute(
        select(Answer.id, Answer.response_id, Answer.question_id).where(
            Answer.text_language.is_not(None), Answer.answered_at < before
        )
    ).all()
    if not pairs:
        return 0
    by_response: dict[int, set[str]] = {}
    for _id, response_id, question_id in pairs:
        by_response.setdefault(response_id, set()).add(question_id)
    for chunk in _chunks(sorted(by_response)):
        responses = session.scalars(
            select(Response).where(Response.id.in_(chunk)).with_for_update()
        ).all()
        for response in responses:
            state = copy.deepcopy(response.state or {})
            answers = state.get("answers")
            if isinstance(answers, dict):
                for question_id in by_response[response.id]:
                    answers.pop(question_id, None)
                response.state = state  # a new object, so SQLAlchemy writes the JSON
    session.flush()
    deleted = 0
    for chunk in _chunks([row.id for row in pairs]):
        deleted += _count(
            session.execute(
                delete(Answer).where(Answer.id.in_(chunk)).execution_options(**_NO_SYNC)
            )
        )
    return deleted


def erase_inactive_residents(session: Session, before: datetime) -> tuple[int, int]:
    """Erase residents last seen before `before`; returns (residents, responses unlinked)."""
    # Row locks (PostgreSQL) so a resident who writes right now is not erased mid-answer.
    ids = list(
        session.scalars(
            select(Resident.id).where(Resident.last_seen_at < before).with_for_update()
        ).all()
    )
    residents = unlinked = 0
    for chunk in _chunks(ids):
        unlinked += _count(
            session.execute(
                update(Response)
                .where(Response.resident_id.in_(chunk))
                .values(resident_id=None)
                .execution_options(**_NO_SYNC)
            )
        )
        # Alliance responses they were sent, and their reactions, stay counted without them.
        session.execute(
            update(AllianceResponseRecipient)
            .where(AllianceResponseRecipient.resident_id.in_(chunk))
            .values(resident_id=None)
            .execution_options(**_NO_SYNC)
        )
        session.execute(
            delete(ResidentChat)
            .where(ResidentChat.resident_id.in_(chunk))
            .execution_options(**_NO_SYNC)
        )
        # Their queued messages carry a chat id: gone too (the FK would cascade, be explicit).
        session.execute(
            delete(OutboxMessage)
            .where(OutboxMessage.resident_id.in_(chunk))
            .execution_options(**_NO_SYNC)
        )
        residents += _count(
            session.execute(
                delete(Resident).where(Resident.id.in_(chunk)).execution_options(**_NO_SYNC)
            )
        )
    return residents, unlinked


def purge_processed_updates(session: Session, before: datetime) -> int:
    """Forget update ids processed before `before`."""
    return _count(
        session.execute(
            delete(ProcessedUpdate)
            .where(ProcessedUpdate.processed_at < before)
            .execution_options(**_NO_SYNC)
        )
    )


def purge_outbox(session: Session, before: datetime, files_before: datetime) -> tuple[int, int]:
    """Delete final outbox rows older than `before`, drop sent files older than `files_before`."""
    purged = _count(
        session.execute(
            delete(OutboxMessage)
            .where(OutboxMessage.status == "sent", OutboxMessage.sent_at < before)
            .execution_options(**_NO_SYNC)
        )
    )
    # Failed and unknown rows have no sent_at; next_attempt_at holds their last attempt.
    purged += _count(
        session.execute(
            delete(OutboxMessage)
            .where(
                OutboxMessage.status.in_(("failed", "unknown")),
                OutboxMessage.next_attempt_at < before,
            )
            .execution_options(**_NO_SYNC)
        )
    )
    dropped = _count(
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.status == "sent",
                OutboxMessage.sent_at < files_before,
                OutboxMessage.file_data.is_not(None),
            )
            .values(file_data=None)
            .execution_options(**_NO_SYNC)
        )
    )
    return purged, dropped


def apply_retention(
    session: Session,
    now: datetime,
    days: int,
    *,
    processed_update_days: int = 2,
    outbox_days: int = 30,
    outbox_file_days: int = 1,
    chart_days: int = 30,
) -> RetentionResult:
    """Apply every retention rule in the caller's transaction and return the counts."""
    if days < 1:
        raise ValueError("retention days must be at least 1")
    cutoff = now - timedelta(days=days)
    answers = delete_free_text_answers(session, cutoff)
    residents, unlinked = erase_inactive_residents(session, cutoff)
    updates = purge_processed_updates(session, now - timedelta(days=processed_update_days))
    purged, dropped = purge_outbox(
        session, now - timedelta(days=outbox_days), now - timedelta(days=outbox_file_days)
    )
    # A release's chart is drawn again if a digest needs it after this.
    charts = purge_charts(session, now - timedelta(days=chart_days))
    return RetentionResult(answers, residents, unlinked, updates, purged, dropped, charts)


def run_retention(db: Database, now: datetime, days: int) -> RetentionResult:
    """Apply retention in one transaction of its own (blocking: call via asyncio.to_thread)."""
    with db.session() as session:
        return apply_retention(session, now, days)
