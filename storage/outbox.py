"""Every SQL statement about the outbox: enqueue, claim, sent, retry, failed, status, purge.

Row life cycle (column `status`):

    pending --claim--> sending --> sent
       ^                  |  \\--> failed   (permanent error or attempts used up)
       |                  |
       +--schedule_retry--+      sending --recover_interrupted--> unknown
                                 sending --mark_unknown (no answer)--> unknown

`sending` is committed right before the Bot API call and means "possibly on its way". A call
that went out but got no answer (a read timeout), and a row still `sending` after a crash, are
ambiguous (Telegram has no idempotency key): such a row becomes `unknown` and is not resent
automatically (at most once, see docs/outbox.md).
While a row is `sending`, `next_attempt_at` holds the claim time; on `sent`, `failed` and
`unknown` rows it holds the time of the last attempt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Table, and_, bindparam, delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from storage.models import OutboxMessage, Resident

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
UNKNOWN = "unknown"
STATUSES = (PENDING, SENDING, SENT, FAILED, UNKNOWN)
# Rows that still block later messages to the same chat (per-chat order).
_OPEN = (PENDING, SENDING)
_ERROR_LENGTH = 500


@dataclass(frozen=True, slots=True)
class DueMessage:
    """The light part of a due row: enough to plan sending under the rate limits."""

    id: int
    chat_id: int
    is_group: bool
    next_attempt_at: datetime


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A row this sender now owns (status `sending`), with everything needed to send it."""

    id: int
    kind: str
    chat_id: int
    is_group: bool
    resident_id: int | None
    alliance_id: int | None
    method: str
    payload: dict[str, Any]
    file_name: str | None
    file_data: bytes | None
    attempts: int


@dataclass(frozen=True, slots=True)
class StatusCount:
    """How many rows of one kind are in one status."""

    kind: str
    status: str
    count: int


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """A failed or unknown row, for the operator (the chat id stays inside the database)."""

    id: int
    kind: str
    status: str
    chat_id: int
    resident_id: int | None
    alliance_id: int | None
    attempts: int
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime


def _clip(reason: str) -> str:
    return reason if len(reason) <= _ERROR_LENGTH else reason[: _ERROR_LENGTH - 3] + "..."


def enqueue(
    session: Session,
    *,
    kind: str,
    dedupe_key: str,
    chat_id: int,
    method: str,
    payload: dict[str, Any],
    now: datetime,
    resident_id: int | None = None,
    alliance_id: int | None = None,
    is_group: bool = False,
    file_name: str | None = None,
    file_data: bytes | None = None,
) -> bool:
    """Queue a message in the caller's transaction; False when `dedupe_key` is already queued."""
    message = NewMessage(
        kind=kind,
        dedupe_key=dedupe_key,
        chat_id=chat_id,
        method=method,
        payload=payload,
        resident_id=resident_id,
        alliance_id=alliance_id,
        is_group=is_group,
        file_name=file_name,
        file_data=file_data,
    )
    return enqueue_many(session, [message], now) == 1


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One message for enqueue_many (the arguments of enqueue)."""

    kind: str
    dedupe_key: str
    chat_id: int
    method: str
    payload: dict[str, Any]
    resident_id: int | None = None
    alliance_id: int | None = None
    is_group: bool = False
    file_name: str | None = None
    file_data: bytes | None = None


def enqueue_many(session: Session, messages: Sequence[NewMessage], now: datetime) -> int:
    """enqueue for several messages in one statement; returns how many were new."""
    if not messages:
        return 0
    rows = [
        {
            "kind": m.kind,
            "dedupe_key": m.dedupe_key,
            "chat_id": m.chat_id,
            "is_group": m.is_group,
            "resident_id": m.resident_id,
            "alliance_id": m.alliance_id,
            "method": m.method,
            "payload": m.payload,
            "file_name": m.file_name,
            "file_data": m.file_data,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for m in messages
    ]
    statement = _enqueue_many_statement(session.get_bind().dialect.name)
    # A parameter list ("insertmanyvalues"): rows go in in this order, so per chat ids keep it.
    # RETURNING, not rowcount: the insert path does not report rowcount reliably.
    return len(session.execute(statement, rows).all())


@cache
def _enqueue_many_statement(dialect: str) -> Any:
    # Built once: a multi-VALUES statement built per call costs more to compile than to run.
    insert: Any
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    table: Any = OutboxMessage.__table__
    return insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(table.c.id)


def load_due(session: Session, now: datetime, limit: int) -> list[DueMessage]:
    """Pending rows due at `now`, oldest first, only the first open row of each chat.

    A chat's later messages wait until its earlier ones are final, so a digest's text, chart
    and CSV arrive in the order they were queued, even across retries.
    """
    earlier = aliased(OutboxMessage)
    blocked = exists().where(
        and_(
            earlier.chat_id == OutboxMessage.chat_id,
            earlier.id < OutboxMessage.id,
            earlier.status.in_(_OPEN),
        )
    )
    rows = session.execute(
        select(
            OutboxMessage.id,
            OutboxMessage.chat_id,
            OutboxMessage.is_group,
            OutboxMessage.next_attempt_at,
        )
        .where(OutboxMessage.status == PENDING, OutboxMessage.next_attempt_at <= now, ~blocked)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    ).all()
    return [DueMessage(r.id, r.chat_id, r.is_group, r.next_attempt_at) for r in rows]


# Built once: the sender claims and records every message, and building a statement costs
# more than running it on SQLite.
_T: Table = OutboxMessage.__table__  # type: ignore[assignment]
_CLAIM = (
    update(_T)
    .where(
        _T.c.id
        == select(_T.c.id)
        .where(
            _T.c.id == bindparam("message_id"),
            _T.c.status == PENDING,
            _T.c.next_attempt_at <= bindparam("now", type_=_T.c.next_attempt_at.type),
        )
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    .values(
        status=SENDING,
        attempts=_T.c.attempts + 1,
        next_attempt_at=bindparam("now", type_=_T.c.next_attempt_at.type),
    )
    .returning(
        _T.c.id,
        _T.c.kind,
        _T.c.chat_id,
        _T.c.is_group,
        _T.c.resident_id,
        _T.c.alliance_id,
        _T.c.method,
        _T.c.payload,
        _T.c.file_name,
        _T.c.file_data,
        _T.c.attempts,
    )
)
_SENT = (
    update(_T)
    .where(_T.c.id == bindparam("message_id"), _T.c.status == SENDING)
    .values(
        status=SENT,
        telegram_message_id=bindparam("telegram_message_id"),
        sent_at=bindparam("now", type_=_T.c.sent_at.type),
        last_error=None,
    )
)


def claim(session: Session, message_id: int, now: datetime) -> ClaimedMessage | None:
    """Take a pending row for sending (status `sending`, one attempt counted); None if taken.

    One statement: on PostgreSQL the row is locked with SKIP LOCKED, so a second sender
    passes it by instead of waiting; on both backends the status check makes the claim
    exclusive.
    """
    row = session.execute(_CLAIM, {"message_id": message_id, "now": now}).first()
    if row is None:
        return None
    return ClaimedMessage(
        id=row.id,
        kind=row.kind,
        chat_id=row.chat_id,
        is_group=row.is_group,
        resident_id=row.resident_id,
        alliance_id=row.alliance_id,
        method=row.method,
        payload=dict(row.payload),
        file_name=row.file_name,
        file_data=row.file_data,
        attempts=row.attempts,
    )


def _finish(session: Session, message_id: int, **values: Any) -> bool:
    """Move a `sending` row on; False when it was not ours (any more)."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == SENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_sent(session: Session, message_id: int, telegram_message_id: int, now: datetime) -> bool:
    """Record a delivered message with Telegram's message id."""
    result = session.execute(
        _SENT,
        {"message_id": message_id, "telegram_message_id": telegram_message_id, "now": now},
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def schedule_retry(
    session: Session,
    message_id: int,
    next_attempt_at: datetime,
    reason: str,
    *,
    count_attempt: bool = True,
) -> bool:
    """Put a `sending` row back to pending for a later try; a flood wait gives its attempt back."""
    values: dict[str, Any] = {
        "status": PENDING,
        "next_attempt_at": next_attempt_at,
        "last_error": _clip(reason),
    }
    if not count_attempt:
        values["attempts"] = OutboxMessage.attempts - 1
    return _finish(session, message_id, **values)


def mark_failed(session: Session, message_id: int, reason: str, now: datetime) -> bool:
    """Give up on a `sending` row for good, keeping the reason."""
    return _finish(
        session, message_id, status=FAILED, last_error=_clip(reason), next_attempt_at=now
    )


def mark_unknown(session: Session, message_id: int, reason: str, now: datetime) -> bool:
    """A `sending` row whose call may have reached Telegram without an answer: not resent."""
    return _finish(
        session, message_id, status=UNKNOWN, last_error=_clip(reason), next_attempt_at=now
    )


def retarget(session: Session, message_id: int, chat_id: int, now: datetime) -> bool:
    """A group became a supergroup: send this row to its new chat id, attempt not counted."""
    return _finish(
        session,
        message_id,
        status=PENDING,
        chat_id=chat_id,
        attempts=OutboxMessage.attempts - 1,
        next_attempt_at=now,
    )


def mark_resident_unreachable(
    session: Session, resident_id: int, reason: str, now: datetime
) -> bool:
    """Note that the bot can no longer write to this resident (e.g. they blocked it)."""
    result = session.execute(
        update(Resident)
        .where(Resident.id == resident_id)
        .values(unreachable_at=now, unreachable_reason=reason[:200])
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def recover_interrupted(session: Session, now: datetime, claimed_before: datetime) -> int:
    """Rows left `sending` by a crashed sender (claimed before `claimed_before`) become `unknown`.

    They may or may not have reached Telegram; resending could send them twice, so they wait
    for an operator (`buurtstem outbox retry-failed --include-unknown`).
    """
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == SENDING, OutboxMessage.next_attempt_at < claimed_before)
        .values(
            status=UNKNOWN,
            last_error="interrupted during sending: delivery unknown, not resent",
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def requeue_interrupted(session: Session, now: datetime, claimed_before: datetime) -> int:
    """Rows left `sending` go back to pending (at least once: they may arrive twice)."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == SENDING, OutboxMessage.next_attempt_at < claimed_before)
        .values(
            status=PENDING,
            next_attempt_at=now,
            last_error="interrupted during sending: resent, may arrive twice",
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def next_due_at(session: Session) -> datetime | None:
    """When the earliest pending row becomes due (None when nothing is pending)."""
    return session.execute(
        select(func.min(OutboxMessage.next_attempt_at)).where(OutboxMessage.status == PENDING)
    ).scalar_one_or_none()


def status_counts(session: Session) -> list[StatusCount]:
    """Row counts per kind and status."""
    rows = session.execute(
        select(OutboxMessage.kind, OutboxMessage.status, func.count())
        .group_by(OutboxMessage.kind, OutboxMessage.status)
        .order_by(OutboxMessage.kind, OutboxMessage.status)
    ).all()
    return [StatusCount(kind, status, int(count)) for kind, status, count in rows]


def oldest_waiting(session: Session) -> datetime | None:
    """Creation time of the oldest row not yet final (pending or sending)."""
    return session.execute(
        select(func.min(OutboxMessage.created_at)).where(OutboxMessage.status.in_(_OPEN))
    ).scalar_one_or_none()


def backlog(session: Session) -> tuple[int, datetime | None]:
    """How many rows are not yet final (pending or sending), and the oldest one's creation."""
    depth, oldest = session.execute(
        select(func.count(), func.min(OutboxMessage.created_at)).where(
            OutboxMessage.status.in_(_OPEN)
        )
    ).one()
    return int(depth or 0), oldest


def recent_failures(session: Session, limit: int = 10) -> list[FailureRecord]:
    """The latest failed and unknown rows, newest first."""
    rows = session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.status.in_((FAILED, UNKNOWN)))
        .order_by(OutboxMessage.next_attempt_at.desc(), OutboxMessage.id.desc())
        .limit(limit)
    ).scalars()
    return [
        FailureRecord(
            id=row.id,
            kind=row.kind,
            status=row.status,
            chat_id=row.chat_id,
            resident_id=row.resident_id,
            alliance_id=row.alliance_id,
            attempts=row.attempts,
            last_error=row.last_error,
            created_at=row.created_at,
            last_attempt_at=row.next_attempt_at,
        )
        for row in rows
    ]


def retry_failed(
    session: Session,
    now: datetime,
    *,
    kinds: Sequence[str] = (),
    ids: Iterable[int] = (),
    include_unknown: bool = False,
) -> int:
    """Put failed (and, if asked, unknown) rows back to pending with fresh attempts."""
    statuses = (FAILED, UNKNOWN) if include_unknown else (FAILED,)
    conditions = [OutboxMessage.status.in_(statuses)]
    if kinds:
        conditions.append(OutboxMessage.kind.in_(list(kinds)))
    id_list = list(ids)
    if id_list:
        conditions.append(OutboxMessage.id.in_(id_list))
    result = session.execute(
        update(OutboxMessage)
        .where(*conditions)
        .values(status=PENDING, attempts=0, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def purge(session: Session, before: datetime, statuses: Sequence[str] = (SENT,)) -> int:
    """Delete final rows last touched before `before` (sent ones by default)."""
    if not set(statuses) <= {SENT, FAILED, UNKNOWN}:
        raise ValueError("only final rows (sent, failed, unknown) can be purged")
    result = session.execute(
        delete(OutboxMessage)
        .where(OutboxMessage.status.in_(list(statuses)), OutboxMessage.next_attempt_at < before)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def drop_pending_for_resident(
    session: Session, resident_id: int, kinds: Sequence[str]
) -> list[str]:
    """Delete a resident's rows of these kinds not yet claimed; returns their dedupe keys.

    For /stop: invitations and the like queued before it must not go out after it.
    """
    condition = and_(
        OutboxMessage.resident_id == resident_id,
        OutboxMessage.status == PENDING,
        OutboxMessage.kind.in_(list(kinds)),
    )
    keys = list(session.scalars(select(OutboxMessage.dedupe_key).where(condition)))
    if keys:
        session.execute(
            delete(OutboxMessage).where(condition).execution_options(synchronize_session=False)
        )
    return keys
