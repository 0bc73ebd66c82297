"""Alliance responses and their recipients: every SQL statement about them.

An alliance response is what an alliance tells the residents of its area after (or during) a
round; its life cycle and the rules around it live in usecases/alliance_responses.py. Here:
creating and moving responses, who may receive one, recording who it was queued for, and the
reactions residents give.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import (
    AllianceResponse,
    AllianceResponseRecipient,
    Answer,
    DigestSent,
    OutboxMessage,
    Resident,
    ResidentChat,
    Response,
    Round,
)

DRAFT = "draft"
PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"
CANCELLED = "cancelled"
STATUSES = (DRAFT, PENDING, APPROVED, REJECTED, CANCELLED)
MAX_ID = 2**31 - 1  # ids are 32-bit integer columns

HELPFUL = "helpful"
NOT_HELPFUL = "not_helpful"

# The outbox kind of the message to a resident, and its dedupe key: one per response and resident.
RESIDENT_KIND = "alliance_response"


def resident_dedupe_key(response_id: int, resident_id: int) -> str:
    """The outbox dedupe key of a response's message to one resident."""
    return f"response:{response_id}:{resident_id}"


@dataclass(frozen=True, slots=True)
class Recipient:
    """A resident an approved response goes to (the chat id stays inside the process)."""

    resident_id: int
    chat_id: int
    language: str | None


@dataclass(frozen=True, slots=True)
class NewRecipient:
    """A recipient row to record: the resident and the language the text goes out in."""

    resident_id: int
    language: str
    translated: bool


@dataclass(frozen=True, slots=True)
class Tally:
    """Recipients of a response and their reactions (exact: suppress before an alliance sees it)."""

    recipients: int = 0
    helpful: int = 0
    not_helpful: int = 0


# ---- responses -----------------------------------------------------------------------------


def create_draft(
    session: Session,
    *,
    alliance_id: int,
    area_code: str,
    round_id: int,
    text: str,
    now: datetime,
) -> tuple[AllianceResponse, list[int]]:
    """A new draft; the group's earlier drafts are cancelled. Returns it and the cancelled ids."""
    earlier = list(
        session.scalars(
            select(AllianceResponse.id).where(
                AllianceResponse.alliance_id == alliance_id, AllianceResponse.status == DRAFT
            )
        )
    )
    if earlier:
        session.execute(
            update(AllianceResponse)
            .where(AllianceResponse.id.in_(earlier), AllianceResponse.status == DRAFT)
            .values(status=CANCELLED)
            .execution_options(synchronize_session=False)
        )
    response = AllianceResponse(
        alliance_id=alliance_id,
        area_code=area_code,
        round_id=round_id,
        text=text,
        translations={},
        status=DRAFT,
        created_at=now,
    )
    session.add(response)
    session.flush()
    return response, earlier


def get_response(
    session: Session, response_id: int, *, lock: bool = False
) -> AllianceResponse | None:
    """A response by id (locked for update when asked); None for a number no id can be (ids
    are 32-bit integer columns: a larger one typed in /vertaling or on the command line would
    make the database driver raise instead of finding nothing)."""
    if not 0 < response_id <= MAX_ID:
        return None
    stmt = select(AllianceResponse).where(AllianceResponse.id == response_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def set_translation(response: AllianceResponse, language: str, text: str) -> None:
    """Add or replace one translation (a new dict, so SQLAlchemy writes the JSON)."""
    translations = dict(response.translations or {})
    translations[language] = text
    response.translations = translations


def move(
    session: Session,
    response_id: int,
    before: Sequence[str],
    after: str,
    **values: Any,
) -> bool:
    """Change the status if it is one of `before` now; False when it was not (one statement).

    The condition in the UPDATE makes a decision once: two approvals at the same moment, on
    one instance or two, cannot both pass.
    """
    result = session.execute(
        update(AllianceResponse)
        .where(AllianceResponse.id == response_id, AllianceResponse.status.in_(list(before)))
        .values(status=after, **values)
        .execution_options(synchronize_session=False)
    )
    moved = bool(result.rowcount)  # type: ignore[attr-defined]
    if moved:
        found = session.get(AllianceResponse, response_id)
        if found is not None:
            session.refresh(found)
    return moved


def responses_of_alliance(
    session: Session, alliance_id: int, limit: int = 10
) -> list[AllianceResponse]:
    """The group's latest responses, newest first (cancelled drafts left out)."""
    return list(
        session.scalars(
            select(AllianceResponse)
            .where(
                AllianceResponse.alliance_id == alliance_id, AllianceResponse.status != CANCELLED
            )
            .order_by(AllianceResponse.id.desc())
            .limit(limit)
        )
    )


def list_responses(
    session: Session, *, statuses: Sequence[str] = (), round_id: int | None = None
) -> list[AllianceResponse]:
    """Responses, newest first, optionally only in some statuses or about one round."""
    stmt = select(AllianceResponse)
    if statuses:
        stmt = stmt.where(AllianceResponse.status.in_(list(statuses)))
    if round_id is not None:
        stmt = stmt.where(AllianceResponse.round_id == round_id)
    return list(session.scalars(stmt.order_by(AllianceResponse.id.desc())))


def latest_sent(session: Session, area_code: str) -> AllianceResponse | None:
    """The area's latest response approved and so sent to its residents (for /results)."""
    return session.scalars(
        select(AllianceResponse)
        .where(
            AllianceResponse.area_code == area_code,
            AllianceResponse.status == APPROVED,
            AllianceResponse.reviewed_at.is_not(None),
        )
        .order_by(AllianceResponse.reviewed_at.desc(), AllianceResponse.id.desc())
        .limit(1)
    ).first()


# ---- which round ---------------------------------------------------------------------------


def latest_round(session: Session, area_code: str) -> Round | None:
    """The round a response in this area is about by default.

    The published round for the area that opened last (open now or closed), else the standing
    round that is open now.
    """
    published = session.scalars(
        select(Round)
        .where(
            Round.standing.is_(False),
            Round.opened_at.is_not(None),
            Round.status.in_(("open", "closed")),
        )
        .order_by(Round.opened_at.desc(), Round.id.desc())
    )
    for round_ in published:
        if round_.area_codes is None or area_code in round_.area_codes:
            return round_
    return session.scalars(
        select(Round)
        .where(Round.standing.is_(True), Round.status == "open")
        .order_by(Round.id.desc())
    ).first()


def digest_round(session: Session, chat_id: int, message_id: int) -> tuple[bool, int | None]:
    """Whether a message in this chat is one of the bot's digests, and the round it was about.

    The digest's outbox row (kept 30 days after sending) has Telegram's message id; the digest
    record written in the same transaction, with the same time, names the round.
    """
    row = session.execute(
        select(OutboxMessage.alliance_id, OutboxMessage.created_at).where(
            OutboxMessage.chat_id == chat_id,
            OutboxMessage.telegram_message_id == message_id,
            OutboxMessage.kind == "digest",
        )
    ).first()
    if row is None or row.alliance_id is None:
        return False, None
    round_id = session.scalar(
        select(DigestSent.round_id)
        .where(DigestSent.alliance_id == row.alliance_id, DigestSent.created_at <= row.created_at)
        .order_by(DigestSent.created_at.desc(), DigestSent.id.desc())
        .limit(1)
    )
    return True, round_id


# ---- recipients ----------------------------------------------------------------------------


def _answered() -> Any:
    """Responses with something in them: completed, or at least one answer kept."""
    return or_(Response.status == "completed", exists().where(Answer.response_id == Response.id))


def _recipients_query(round_id: int, area_code: str) -> Any:
    return (
        select(Resident.id, ResidentChat.chat_id, Resident.language)
        .join(ResidentChat, ResidentChat.resident_id == Resident.id)
        .join(Response, Response.resident_id == Resident.id)
        .where(
            Response.round_id == round_id,
            Response.area_code == area_code,
            _answered(),
            Resident.consented_at.is_not(None),
            Resident.stopped_at.is_(None),
            Resident.unreachable_at.is_(None),
        )
    )


def recipients(
    session: Session, round_id: int, area_code: str, response_id: int
) -> list[Recipient]:
    """Residents who answered the round in this area, did not /stop, can be written to, and
    have not been sent this response yet."""
    sent = exists().where(
        and_(
            AllianceResponseRecipient.response_id == response_id,
            AllianceResponseRecipient.resident_id == Resident.id,
        )
    )
    rows = session.execute(
        _recipients_query(round_id, area_code).where(~sent).order_by(Resident.id)
    ).all()
    return [Recipient(r.id, r.chat_id, r.language) for r in rows]


def count_recipients(session: Session, round_id: int, area_code: str) -> int:
    """How many residents a response about this round and area would reach now."""
    query = _recipients_query(round_id, area_code).subquery()
    return int(session.scalar(select(func.count()).select_from(query)) or 0)


def record_recipients(
    session: Session, response_id: int, rows: Sequence[NewRecipient], now: datetime
) -> set[int]:
    """Record whom the response is queued for; returns the residents new here (never twice)."""
    if not rows:
        return set()
    values = [
        {
            "response_id": response_id,
            "resident_id": row.resident_id,
            "language": row.language,
            "translated": row.translated,
            "queued_at": now,
        }
        for row in rows
    ]
    statement = _record_statement(session.get_bind().dialect.name)
    return {int(r.resident_id) for r in session.execute(statement, values).all()}


@cache
def _record_statement(dialect: str) -> Any:
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table: Any = AllianceResponseRecipient.__table__
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["response_id", "resident_id"])
        .returning(table.c.resident_id)
    )


def forget_unsent(session: Session, pairs: Iterable[tuple[int, int]]) -> int:
    """Recipient rows whose message was dropped before sending (the resident sent /stop)."""
    count = 0
    for response_id, resident_id in pairs:
        result = session.execute(
            delete(AllianceResponseRecipient)
            .where(
                AllianceResponseRecipient.response_id == response_id,
                AllianceResponseRecipient.resident_id == resident_id,
            )
            .execution_options(synchronize_session=False)
        )
        count += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return count


def recipients_by_language(session: Session, response_id: int) -> list[tuple[str, bool, int]]:
    """(language, translated, recipients) of a response."""
    rows = session.execute(
        select(
            AllianceResponseRecipient.language,
            AllianceResponseRecipient.translated,
            func.count(),
        )
        .where(AllianceResponseRecipient.response_id == response_id)
        .group_by(AllianceResponseRecipient.language, AllianceResponseRecipient.translated)
        .order_by(AllianceResponseRecipient.language, AllianceResponseRecipient.translated)
    ).all()
    return [(language, bool(translated), int(n)) for language, translated, n in rows]


def delivery_counts(session: Session, response_id: int) -> dict[str, int]:
    """The response's messages to residents by outbox status, while the outbox keeps them."""
    rows = session.execute(
        select(OutboxMessage.status, func.count())
        .where(
            OutboxMessage.kind == RESIDENT_KIND,
            OutboxMessage.dedupe_key.startswith(f"response:{response_id}:", autoescape=True),
        )
        .group_by(OutboxMessage.status)
    ).all()
    return {status: int(n) for status, n in rows}


# ---- reactions -----------------------------------------------------------------------------


def received(session: Session, response_id: int, resident_id: int) -> bool:
    """Whether this response was queued for this resident (only they can react to it)."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    AllianceResponseRecipient.response_id == response_id,
                    AllianceResponseRecipient.resident_id == resident_id,
                )
            )
        )
    )


def set_reaction(
    session: Session, response_id: int, resident_id: int, reaction: str, now: datetime
) -> bool:
    """A resident's reaction (the latest counts); False when they did not receive the response."""
    if reaction not in (HELPFUL, NOT_HELPFUL):
        raise ValueError(f"unknown reaction {reaction!r}")
    result = session.execute(
        update(AllianceResponseRecipient)
        .where(
            AllianceResponseRecipient.response_id == response_id,
            AllianceResponseRecipient.resident_id == resident_id,
        )
        .values(reaction=reaction, reacted_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def tallies(session: Session, response_ids: Iterable[int]) -> dict[int, Tally]:
    """Recipients and reactions per response (exact counts)."""
    ids = list(response_ids)
    result = {response_id: Tally() for response_id in ids}
    if not ids:
        return result
    r = AllianceResponseRecipient
    rows = session.execute(
        select(
            r.response_id,
            func.count(),
            func.sum(case((r.reaction == HELPFUL, 1), else_=0)),
            func.sum(case((r.reaction == NOT_HELPFUL, 1), else_=0)),
        )
        .where(r.response_id.in_(ids))
        .group_by(r.response_id)
    ).all()
    for response_id, total, helpful, not_helpful in rows:
        result[int(response_id)] = Tally(int(total), int(helpful or 0), int(not_helpful or 0))
    return result
