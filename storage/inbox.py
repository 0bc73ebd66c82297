"""The update inbox: every SQL statement about updates stored before they are confirmed."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.models import InboxUpdate


def store(session: Session, bot_id: int, updates: Iterable[tuple[int, str]], now: datetime) -> None:
    """Keep updates (update id, JSON) until handled; a repeat of a stored one changes nothing."""
    rows = [
        {"bot_id": bot_id, "update_id": update_id, "payload": payload, "received_at": now}
        for update_id, payload in updates
    ]
    if rows:
        session.execute(_store_statement(session.get_bind().dialect.name), rows)


@cache
def _store_statement(dialect: str) -> Any:
    # Built once: it runs for every update.
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(InboxUpdate).on_conflict_do_nothing()


def waiting(session: Session, bot_id: int, received_before: datetime) -> list[tuple[int, str]]:
    """Updates of this bot stored by `received_before` and not yet handled, oldest first."""
    rows = session.execute(
        select(InboxUpdate.update_id, InboxUpdate.payload)
        .where(InboxUpdate.bot_id == bot_id, InboxUpdate.received_at <= received_before)
        .order_by(InboxUpdate.update_id)
    )
    return [(update_id, payload) for update_id, payload in rows]


def handled(session: Session, bot_id: int, update_ids: Iterable[int]) -> int:
    """Forget updates that have been handled."""
    ids = list(update_ids)
    if not ids:
        return 0
    result = session.execute(
        delete(InboxUpdate).where(InboxUpdate.bot_id == bot_id, InboxUpdate.update_id.in_(ids))
    )
    return int(getattr(result, "rowcount", 0) or 0)


def purge(session: Session, before: datetime) -> int:
    """Drop updates stored before `before` that were never handled (their chance is past)."""
    result = session.execute(delete(InboxUpdate).where(InboxUpdate.received_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
