"""Residents, their chats, processed updates and erasure: every SQL statement about them."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.models import OutboxMessage, ProcessedUpdate, Resident, ResidentChat, Response

# Telegram delivers an update again for up to a day; an id claimed longer ago than this belongs
# to an earlier sequence (Telegram starts a new one, at a random id, after a week without
# updates) and is claimed anew.
REDELIVERY_WINDOW = timedelta(days=2)


def claim_update(session: Session, bot_id: int, update_id: int, now: datetime) -> bool:
    """Record that `update_id` of bot `bot_id` is being handled; False when it was handled before.

    Called in the same transaction as the change the update causes, so a repeat of the update
    (Telegram delivers at least once) changes nothing, and a crash before commit loses nothing.
    """
    dialect = session.get_bind().dialect.name
    result = session.execute(
        _claim_statement(dialect),
        {
            "bot_id": bot_id,
            "update_id": update_id,
            "processed_at": now,
            "stale": now - REDELIVERY_WINDOW,
        },
    )
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT .. ON CONFLICT DO NOTHING.
    return result.first() is not None


@cache
def _claim_statement(dialect: str) -> Any:
    # Built once: runs on every update, and building the construct costs more than the INSERT.
    table = ProcessedUpdate.__table__
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(table).values(  # type: ignore[arg-type]
        bot_id=bindparam("bot_id"),
        update_id=bindparam("update_id"),
        processed_at=bindparam("processed_at"),
    )
    return stmt.on_conflict_do_update(
        index_elements=["bot_id", "update_id"],
        set_={"processed_at": stmt.excluded.processed_at},
        where=table.c.processed_at < bindparam("stale"),  # type: ignore[attr-defined]
    ).returning(table.c.update_id)  # type: ignore[attr-defined]


def last_claimed_update(session: Session, bot_id: int) -> int:
    """The highest update id of this bot handled in the redelivery window (0 when none)."""
    return int(
        session.scalar(
            select(func.max(ProcessedUpdate.update_id)).where(ProcessedUpdate.bot_id == bot_id)
        )
        or 0
    )


def adopt_update_claims(session: Session, bot_id: int) -> int:
    """Claims stored before they were keyed by bot (bot 0) belong to this bot."""
    result = session.execute(
        update(ProcessedUpdate).where(ProcessedUpdate.bot_id == 0).values(bot_id=bot_id)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def purge_processed_updates(session: Session, before: datetime) -> int:
    """Forget update ids older than `before` (Telegram does not redeliver after a day)."""
    result = session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.processed_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


def find_resident(session: Session, pseudonym: str, *, lock: bool = False) -> Resident | None:
    """The resident with this pseudonym; `lock` takes a row lock (PostgreSQL) for updating.

    Called for an update from the resident (a message or a tap), so the resident is reachable
    again: someone who blocked the bot can only write to it after unblocking, and the 403 that
    marked them unreachable is history. Cleared in the caller's transaction, the one that
    handles the update; no write at all in the usual case.
    """
    stmt = _FIND_LOCKED if lock else _FIND
    resident = session.scalars(stmt, {"pseudonym": pseudonym}).first()
    if resident is not None and resident.unreachable_at is not None:
        resident.unreachable_at = None
        resident.unreachable_reason = None
    return resident


# Built once: every update looks its resident up, and building a select costs more than running it.
_FIND = select(Resident).where(Resident.pseudonym == bindparam("pseudonym"))
_FIND_LOCKED = _FIND.with_for_update()


def resident_id_of(session: Session, pseudonym: str) -> int | None:
    """The id of the resident with this pseudonym (a look-up only: unlike `find_resident` it
    does not make them reachable again)."""
    found = session.scalar(select(Resident.id).where(Resident.pseudonym == pseudonym))
    return int(found) if found is not None else None


def create_resident(
    session: Session,
    *,
    pseudonym: str,
    chat_id: int,
    language: str,
    language_source: str,
    now: datetime,
) -> Resident:
    """Store a resident at the moment of consent, with the chat to write back to."""
    resident = Resident(
        pseudonym=pseudonym,
        language=language,
        language_source=language_source,
        language_switch_offered=False,
        consented_at=now,
        created_at=now,
        last_seen_at=now,
        flow={},
    )
    resident.chat = ResidentChat(chat_id=chat_id)
    session.add(resident)
    session.flush()
    return resident


def set_flow(resident: Resident, **changes: Any) -> None:
    """Update the resident's flow state (a new dict, so SQLAlchemy sees the change)."""
    flow = dict(resident.flow or {})
    for key, value in changes.items():
        if value is None:
            flow.pop(key, None)
        else:
            flow[key] = value
    resident.flow = flow


def chat_id_of(session: Session, resident_id: int) -> int | None:
    """Where to write to this resident, if anywhere."""
    return session.scalar(
        select(ResidentChat.chat_id).where(ResidentChat.resident_id == resident_id)
    )


def forget_resident(session: Session, resident: Resident) -> None:
    """Erase everything stored about a resident: answers, responses, chat, queued messages."""
    session.execute(delete(OutboxMessage).where(OutboxMessage.resident_id == resident.id))
    # Answers go with their responses (ON DELETE CASCADE, and the ORM cascade below).
    for response in session.scalars(select(Response).where(Response.resident_id == resident.id)):
        session.delete(response)
    session.delete(resident)
    session.flush()
