"""Rounds: which survey version a resident of an area answers now, and every query about rounds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.orm import Session

from storage.models import Answer, OutboxMessage, Resident, ResidentChat, Response, Round

STANDING_ROUND_NAME = "Doorlopende buurtpeiling"

SCHEDULED = "scheduled"
OPEN = "open"
CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Recipient:
    """A resident the bot may write to about a round (the chat id stays inside the process)."""

    resident_id: int
    chat_id: int
    language: str | None
    area_code: str | None
    # True when this resident has an unfinished response in the round.
    started: bool = False


@dataclass(frozen=True, slots=True)
class AreaCount:
    """Responses of one round in one focus area: begun (any status) and completed."""

    area_code: str
    started: int
    completed: int


def ensure_standing_round(session: Session, survey_version_id: int, now: datetime) -> Round:
    """The always-open round of the default survey, offered while no published round is open."""
    current = session.scalars(
        select(Round).where(Round.standing.is_(True), Round.status == OPEN)
    ).first()
    if current is not None and current.survey_version_id == survey_version_id:
        return current
    if current is not None:
        # The default survey changed version: the old standing round ends here.
        current.status = CLOSED
        current.closed_at = now
    standing = Round(
        name=STANDING_ROUND_NAME,
        survey_version_id=survey_version_id,
        area_codes=None,
        opens_at=now,
        closes_at=now + timedelta(days=365 * 100),
        reminder_after_days=None,
        max_reminders=0,
        status=OPEN,
        standing=True,
        opened_at=now,
        created_at=now,
    )
    session.add(standing)
    session.flush()
    return standing


def round_for_area(session: Session, area_code: str, now: datetime) -> Round | None:
    """The round a resident of `area_code` answers now: a published open round, else the standing one."""
    return pick_round(
        session.scalars(select(Round).where(Round.status == OPEN, Round.opens_at <= now)),
        area_code,
        now,
    )


def pick_round(rounds: Iterable[Round], area_code: str, now: datetime) -> Round | None:
    """round_for_area among rounds already loaded (the digest tick loads them all once)."""
    current = [
        r
        for r in rounds
        if r.status == OPEN
        and r.opens_at <= now < r.closes_at
        and (r.area_codes is None or area_code in r.area_codes)
    ]
    # Published rounds before the standing one; among them the latest opened, then the newest.
    current.sort(key=lambda r: (r.opens_at, r.id), reverse=True)
    current.sort(key=lambda r: r.standing)
    return current[0] if current else None


# ---- publishing --------------------------------------------------------------------------------


def create_round(
    session: Session,
    *,
    name: str,
    survey_version_id: int,
    area_codes: list[str] | None,
    opens_at: datetime,
    closes_at: datetime,
    reminder_after_days: int | None,
    max_reminders: int,
    remind_started: bool,
    remind_not_started: bool,
    now: datetime,
) -> Round:
    """Store a published round, scheduled: the round tick opens it at `opens_at`."""
    round_ = Round(
        name=name,
        survey_version_id=survey_version_id,
        area_codes=sorted(area_codes) if area_codes is not None else None,
        opens_at=opens_at,
        closes_at=closes_at,
        reminder_after_days=reminder_after_days,
        max_reminders=max_reminders,
        remind_started=remind_started,
        remind_not_started=remind_not_started,
        reminders_done=0,
        status=SCHEDULED,
        standing=False,
        created_at=now,
    )
    session.add(round_)
    session.flush()
    return round_


def get_round(session: Session, round_id: int, *, lock: bool = False) -> Round | None:
    """A round by id (locked for update when asked: one decision per round at a time)."""
    stmt = select(Round).where(Round.id == round_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def rounds_named(session: Session, name: str) -> list[Round]:
    """Published rounds with this name, newest first."""
    return list(
        session.scalars(
            select(Round)
            .where(Round.name == name, Round.standing.is_(False))
            .order_by(Round.id.desc())
        )
    )


def overlapping(
    session: Session,
    area_codes: list[str] | None,
    opens_at: datetime,
    closes_at: datetime,
    *,
    exclude_id: int | None = None,
) -> list[Round]:
    """Published rounds, not closed, whose period and areas overlap the given ones."""
    stmt = select(Round).where(
        Round.standing.is_(False),
        Round.status != CLOSED,
        Round.opens_at < closes_at,
        Round.closes_at > opens_at,
    )
    if exclude_id is not None:
        stmt = stmt.where(Round.id != exclude_id)
    return [
        other
        for other in session.scalars(stmt.order_by(Round.opens_at))
        if area_codes is None or other.area_codes is None or set(area_codes) & set(other.area_codes)
    ]


def survey_version_in_use(session: Session, survey_version_id: int) -> bool:
    """Whether any answer was given to this survey version (then it must never change)."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    Answer.response_id == Response.id,
                    Response.survey_version_id == survey_version_id,
                )
            )
        )
    )


def list_rounds(session: Session, *, include_standing: bool = True) -> list[Round]:
    """All rounds, newest period first."""
    stmt = select(Round)
    if not include_standing:
        stmt = stmt.where(Round.standing.is_(False))
    return list(session.scalars(stmt.order_by(Round.opens_at.desc(), Round.id.desc())))


def open_rounds(session: Session) -> list[Round]:
    """Rounds open now, published ones first."""
    return list(
        session.scalars(
            select(Round)
            .where(Round.status == OPEN)
            .order_by(Round.standing.asc(), Round.opens_at, Round.id)
        )
    )


def count_scheduled(session: Session) -> int:
    """How many published rounds wait to open."""
    return int(
        session.scalar(select(func.count()).select_from(Round).where(Round.status == SCHEDULED))
        or 0
    )


def planned_round(session: Session) -> Round | None:
    """A published round that is open or scheduled, if any (open ones first)."""
    return session.scalars(
        select(Round)
        .where(Round.standing.is_(False), Round.status.in_((OPEN, SCHEDULED)))
        .order_by(Round.status.asc(), Round.opens_at, Round.id)  # "open" before "scheduled"
    ).first()


def closed_published_rounds(session: Session) -> list[Round]:
    """Published rounds that have closed (each owes its alliances a final digest)."""
    return list(
        session.scalars(select(Round).where(Round.status == CLOSED, Round.standing.is_(False)))
    )


# ---- the tick's decisions ------------------------------------------------------------------------


def due_to_open(session: Session, now: datetime) -> list[int]:
    """Scheduled published rounds whose opening moment has come."""
    return list(
        session.scalars(
            select(Round.id)
            .where(Round.status == SCHEDULED, Round.standing.is_(False), Round.opens_at <= now)
            .order_by(Round.opens_at, Round.id)
        )
    )


def due_to_close(session: Session, now: datetime) -> list[int]:
    """Open published rounds whose closing moment has come."""
    return list(
        session.scalars(
            select(Round.id)
            .where(Round.status == OPEN, Round.standing.is_(False), Round.closes_at <= now)
            .order_by(Round.closes_at, Round.id)
        )
    )


def with_reminders_left(session: Session, now: datetime) -> list[int]:
    """Open published rounds that still have reminder waves to decide."""
    return list(
        session.scalars(
            select(Round.id)
            .where(
                Round.status == OPEN,
                Round.standing.is_(False),
                Round.reminder_after_days.is_not(None),
                Round.reminders_done < Round.max_reminders,
                Round.closes_at > now,
            )
            .order_by(Round.id)
        )
    )


def _reachable() -> list[object]:
    """Conditions for residents the bot may write to on its own initiative."""
    return [
        Resident.consented_at.is_not(None),
        Resident.stopped_at.is_(None),
        Resident.unreachable_at.is_(None),
    ]


def _in_areas(round_: Round) -> object:
    if round_.area_codes is None:
        return Resident.area_code.is_not(None)
    return Resident.area_code.in_(list(round_.area_codes))


def not_started(session: Session, round_: Round) -> list[Recipient]:
    """Reachable residents of the round's areas without a response in it."""
    has_response = exists().where(
        and_(Response.round_id == round_.id, Response.resident_id == Resident.id)
    )
    rows = session.execute(
        select(Resident.id, ResidentChat.chat_id, Resident.language, Resident.area_code)
        .join(ResidentChat, ResidentChat.resident_id == Resident.id)
        .where(*_reachable(), _in_areas(round_), ~has_response)  # type: ignore[arg-type]
        .order_by(Resident.id)
    ).all()
    return [Recipient(r.id, r.chat_id, r.language, r.area_code) for r in rows]


def started_not_finished(session: Session, round_id: int) -> list[Recipient]:
    """Reachable residents with an unfinished response in the round (any area they moved to)."""
    rows = session.execute(
        select(Resident.id, ResidentChat.chat_id, Resident.language, Response.area_code)
        .join(ResidentChat, ResidentChat.resident_id == Resident.id)
        .join(Response, Response.resident_id == Resident.id)
        .where(*_reachable(), Response.round_id == round_id, Response.status == "started")  # type: ignore[arg-type]
        .order_by(Resident.id)
    ).all()
    return [Recipient(r.id, r.chat_id, r.language, r.area_code, started=True) for r in rows]


def count_reminder(session: Session, round_id: int, resident_ids: Iterable[int]) -> None:
    """Note one more reminder on these residents' unfinished responses."""
    ids = list(resident_ids)
    if ids:
        session.execute(
            update(Response)
            .where(Response.round_id == round_id, Response.resident_id.in_(ids))
            .values(reminders_sent=Response.reminders_sent + 1)
            .execution_options(synchronize_session=False)
        )


def close_started_responses(session: Session, round_id: int, now: datetime) -> list[int]:
    """Unfinished responses become `closed` (answers kept); the residents they belong to."""
    residents = list(
        session.scalars(
            select(Response.resident_id).where(
                Response.round_id == round_id, Response.status == "started"
            )
        )
    )
    session.execute(
        update(Response)
        .where(Response.round_id == round_id, Response.status == "started")
        .values(status=CLOSED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return [resident_id for resident_id in residents if resident_id is not None]


def reachable_among(session: Session, resident_ids: Iterable[int]) -> list[Recipient]:
    """Those of these residents the bot may still write to."""
    ids = list(resident_ids)
    if not ids:
        return []
    rows = session.execute(
        select(Resident.id, ResidentChat.chat_id, Resident.language, Resident.area_code)
        .join(ResidentChat, ResidentChat.resident_id == Resident.id)
        .where(*_reachable(), Resident.id.in_(ids))  # type: ignore[arg-type]
        .order_by(Resident.id)
    ).all()
    return [Recipient(r.id, r.chat_id, r.language, r.area_code, started=True) for r in rows]


# ---- counts ----------------------------------------------------------------------------------------


def response_counts(session: Session, round_ids: Iterable[int]) -> dict[int, list[AreaCount]]:
    """Per round and focus area: responses begun (any status) and completed."""
    ids = list(round_ids)
    result: dict[int, list[AreaCount]] = {round_id: [] for round_id in ids}
    if not ids:
        return result
    completed = func.sum(case((Response.status == "completed", 1), else_=0))
    rows = session.execute(
        select(Response.round_id, Response.area_code, func.count(), completed)
        .where(Response.round_id.in_(ids))
        .group_by(Response.round_id, Response.area_code)
        .order_by(Response.round_id, Response.area_code)
    ).all()
    for round_id, area_code, begun, done in rows:
        result[int(round_id)].append(AreaCount(area_code, int(begun), int(done or 0)))
    return result


def message_counts(session: Session, round_id: int) -> dict[tuple[str, str], int]:
    """Outbox rows about this round by (kind, status) while they are kept (sent rows are purged)."""
    prefixes = [f"{prefix}:{round_id}:" for prefix in ("invite", "remind", "closed")]
    rows = session.execute(
        select(OutboxMessage.kind, OutboxMessage.status, func.count())
        .where(or_(*(OutboxMessage.dedupe_key.startswith(p, autoescape=True) for p in prefixes)))
        .group_by(OutboxMessage.kind, OutboxMessage.status)
    ).all()
    return {(kind, status): int(count) for kind, status, count in rows}


def supersede_standing(session: Session, round_: Round, now: datetime) -> int:
    """Unfinished standing-round responses of the round's residents end as `closed` (answers kept).

    While a published round is open for an area its residents answer that one; without this,
    a resident midway through the standing survey would be led back to it by the invitation.
    """
    in_area = select(Resident.id).where(_in_areas(round_))  # type: ignore[arg-type]
    standing = select(Round.id).where(Round.standing.is_(True))
    result = session.execute(
        update(Response)
        .where(
            Response.round_id.in_(standing),
            Response.status == "started",
            Response.resident_id.in_(in_area),
        )
        .values(status=CLOSED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
