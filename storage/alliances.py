"""Alliance chats: one-time link codes, linking, failed attempts, schedules, digests sent."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import Alliance, AllianceCode, DigestSent, LinkAttempt, OutboxMessage
from storage.outbox import FAILED, PENDING

# No 0/O, 1/I/L, 8/B, S or Z (5 and 2 stay): codes are read aloud and typed from a phone screen.
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY2345679"
CODE_LENGTH = 10
CODE_GROUP = 5
CODE_VALID = timedelta(days=7)
# Failures allowed before a chat has to wait; each further failure doubles the wait.
FREE_FAILURES = 5
FIRST_BLOCK = timedelta(minutes=1)
MAX_BLOCK = timedelta(hours=24)
# Failures of all chats together: someone with many groups gets 5 free tries in each, so the
# failures are also counted across chats, per window of an hour; at the limit every chat is
# refused until the window ends. The count lives in the link_attempts row of chat id 0, which
# no Telegram chat has (users are positive, groups negative).
ALL_CHATS = 0
FAILURE_WINDOW = timedelta(hours=1)
FAILURES_PER_HOUR = 50


def new_code() -> str:
    """A random code, grouped for reading: `ACDEF-GHJKM` (about 47 bits)."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + CODE_GROUP] for i in range(0, CODE_LENGTH, CODE_GROUP))


def normalise_code(text: str) -> str | None:
    """What was typed, without spaces and dashes, upper case; None if it cannot be a code."""
    raw = "".join(ch for ch in text.upper() if ch.isalnum())
    if len(raw) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in raw):
        return None
    return raw


def code_hash(key: str, code: str) -> str:
    """Keyed hash of a normalised code: a leaked table does not let anyone test codes offline."""
    return hmac.new(key.encode(), b"alliance-code:" + code.encode(), hashlib.sha256).hexdigest()


def create_code(
    session: Session, area_code: str, key: str, now: datetime, valid: timedelta = CODE_VALID
) -> str:
    """Store a new one-time code for an area (hashed only) and return it for the operator."""
    code = new_code()
    session.add(
        AllianceCode(
            code_hash=code_hash(key, normalise_code(code) or code),
            area_code=area_code,
            created_at=now,
            expires_at=now + valid,
        )
    )
    session.flush()
    return code


@dataclass(frozen=True)
class LinkResult:
    """What a /koppel attempt did.

    outcome: linked | already_linked | other_area | blocked (this chat) | busy (every chat: too
    many failures across chats this hour) | invalid | expired | used | usage.
    """

    outcome: str
    alliance: Alliance | None = None
    blocked_until: datetime | None = None


def blocked_until(session: Session, chat_id: int, now: datetime) -> datetime | None:
    """Until when this chat may not try a code, if it is blocked now."""
    attempt = session.get(LinkAttempt, chat_id)
    if attempt is not None and attempt.blocked_until is not None and attempt.blocked_until > now:
        return attempt.blocked_until
    return None


def _fail(session: Session, chat_id: int, now: datetime, failures_per_hour: int) -> datetime | None:
    _count_overall(session, now, failures_per_hour)
    attempt = session.get(LinkAttempt, chat_id, with_for_update=True)
    if attempt is None:
        attempt = LinkAttempt(chat_id=chat_id, failures=0, last_failure_at=now)
        session.add(attempt)
    attempt.failures += 1
    attempt.last_failure_at = now
    over = attempt.failures - FREE_FAILURES
    if over >= 0:
        wait = min(FIRST_BLOCK * (2 ** min(over, 20)), MAX_BLOCK)
        attempt.blocked_until = now + wait
    session.flush()
    return attempt.blocked_until if over >= 0 else None


def _count_overall(session: Session, now: datetime, limit: int) -> None:
    """One more failure in this hour's window of all chats; at `limit`, block every chat until
    the window ends. The row is made with ON CONFLICT DO NOTHING, then locked: two chats failing
    at the same moment on two instances count twice and never collide."""
    statement = _insert(session)(LinkAttempt.__table__).values(
        chat_id=ALL_CHATS, failures=0, last_failure_at=now
    )
    session.execute(statement.on_conflict_do_nothing(index_elements=["chat_id"]))
    overall = session.get(LinkAttempt, ALL_CHATS, with_for_update=True, populate_existing=True)
    assert overall is not None
    # last_failure_at is when the current window started.
    if overall.last_failure_at + FAILURE_WINDOW <= now or overall.failures <= 0:
        overall.last_failure_at = now
        overall.failures = 0
        overall.blocked_until = None
    overall.failures += 1
    if overall.failures >= limit:
        overall.blocked_until = overall.last_failure_at + FAILURE_WINDOW
    session.flush()


def link_attempts(session: Session, chat_id: int) -> LinkAttempt | None:
    """The failed-attempt row of a chat, or of all chats together (ALL_CHATS), if any."""
    return session.get(LinkAttempt, chat_id)


def backed_off_chats(session: Session, now: datetime) -> list[LinkAttempt]:
    """Chats that may not try a code now because of their own failures, longest wait first."""
    return list(
        session.scalars(
            select(LinkAttempt)
            .where(LinkAttempt.chat_id != ALL_CHATS, LinkAttempt.blocked_until > now)
            .order_by(LinkAttempt.blocked_until.desc())
        )
    )


def clear_link_attempts(session: Session, chat_id: int) -> bool:
    """Forget the failures of a chat (its back-off), or of all chats together (ALL_CHATS: the
    overall limit, for every chat at once). True if there was something to forget."""
    result = session.execute(delete(LinkAttempt).where(LinkAttempt.chat_id == chat_id))
    return bool(getattr(result, "rowcount", 0))


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def alliance_of_chat(session: Session, chat_id: int) -> Alliance | None:
    """The alliance linked to a chat, if any."""
    return session.scalars(select(Alliance).where(Alliance.chat_id == chat_id)).first()


def redeem_code(
    session: Session,
    *,
    chat_id: int,
    title: str | None,
    text: str,
    key: str,
    now: datetime,
    schedule: dict[str, Any],
    language: str = "nl",
    failures_per_hour: int = FAILURES_PER_HOUR,
) -> LinkResult:
    """Link a group chat with a code: once per code, nothing changes on a wrong or old one.

    While this chat is blocked (too many failures of its own), or every chat is (at least
    `failures_per_hour` failures of all chats together this hour), no code is looked at.
    """
    until = blocked_until(session, chat_id, now)
    if until is not None:
        return LinkResult("blocked", blocked_until=until)
    until = blocked_until(session, ALL_CHATS, now)
    if until is not None:
        return LinkResult("busy", blocked_until=until)
    existing = alliance_of_chat(session, chat_id)
    code = normalise_code(text)
    row = None
    if code is not None:
        row = session.scalars(
            select(AllianceCode)
            .where(AllianceCode.code_hash == code_hash(key, code))
            .with_for_update()
        ).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        outcome = "invalid" if row is None else ("used" if row.used_at is not None else "expired")
        until = _fail(session, chat_id, now, failures_per_hour)
        return LinkResult(outcome, blocked_until=until)
    if existing is not None:
        # The code stays valid: linking a chat to a second area would mix areas' data.
        outcome = "already_linked" if existing.area_code == row.area_code else "other_area"
        return LinkResult(outcome, alliance=existing)
    row.used_at = now
    row.used_by_chat_id = chat_id
    alliance = add_alliance(
        session,
        area_code=row.area_code,
        chat_id=chat_id,
        title=title,
        language=language,
        schedule=schedule,
        now=now,
    )
    session.execute(delete(LinkAttempt).where(LinkAttempt.chat_id == chat_id))
    session.flush()
    return LinkResult("linked", alliance=alliance)


def add_alliance(
    session: Session,
    *,
    area_code: str,
    chat_id: int,
    title: str | None,
    language: str,
    schedule: dict[str, Any],
    now: datetime,
) -> Alliance:
    """A linked chat (redeem_code links with a code; the sandbox links its groups directly)."""
    alliance = Alliance(
        area_code=area_code,
        chat_id=chat_id,
        title=(title or "")[:200] or None,
        language=language,
        schedule=schedule,
        linked_at=now,
    )
    session.add(alliance)
    session.flush()
    return alliance


def find_alliance(session: Session, chat_or_id: int) -> Alliance | None:
    """By alliance id (positive, small) or by chat id (group ids are negative)."""
    if chat_or_id < 0:
        return alliance_of_chat(session, chat_or_id)
    return session.get(Alliance, chat_or_id) or alliance_of_chat(session, chat_or_id)


def unlink(session: Session, alliance: Alliance) -> int:
    """Remove the link; digests still waiting in the outbox for this chat are dropped.

    Returns how many queued messages were dropped.
    """
    dropped = session.execute(
        delete(OutboxMessage)
        .where(OutboxMessage.alliance_id == alliance.id, OutboxMessage.status == "pending")
        .execution_options(synchronize_session=False)
    )
    session.delete(alliance)
    session.flush()
    return int(dropped.rowcount)  # type: ignore[attr-defined]


# Why a digest queued before the bot was removed from its group was not sent.
NOT_IN_GROUP = "not sent: the bot was removed from the group"


def bot_removed(session: Session, chat_id: int, now: datetime) -> Alliance | None:
    """The bot is no longer in this chat (removed, or the group was left or deleted): the
    alliance's digests pause. Messages still waiting for the chat are not sent (failed, with
    NOT_IN_GROUP; `outbox retry-failed` can send them once the bot is back). The alliance, if
    the chat is linked; its first removal time is kept."""
    alliance = alliance_of_chat(session, chat_id)
    if alliance is None:
        return None
    if alliance.removed_at is None:
        alliance.removed_at = now
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.chat_id == chat_id, OutboxMessage.status == PENDING)
        .values(status=FAILED, last_error=NOT_IN_GROUP, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return alliance


def bot_back(session: Session, chat_id: int) -> Alliance | None:
    """The bot is in this chat again: a paused alliance's digests resume. The alliance, if the
    chat is linked."""
    alliance = alliance_of_chat(session, chat_id)
    if alliance is not None and alliance.removed_at is not None:
        alliance.removed_at = None
        session.flush()
    return alliance


def migrate_chat(session: Session, old_chat_id: int, new_chat_id: int) -> bool:
    """A group became a supergroup: the link moves with it."""
    alliance = alliance_of_chat(session, old_chat_id)
    if alliance is None or alliance_of_chat(session, new_chat_id) is not None:
        return False
    alliance.chat_id = new_chat_id
    session.flush()
    return True


def alliances_by_id(session: Session, ids: Iterable[int]) -> dict[int, Alliance]:
    """The linked alliances among these ids."""
    return {a.id: a for a in session.scalars(select(Alliance).where(Alliance.id.in_(list(ids))))}


def reachable_alliances_by_id(session: Session, ids: Iterable[int]) -> dict[int, Alliance]:
    """The linked alliances among these ids whose group the bot is in (digests not paused)."""
    return {
        a.id: a
        for a in session.scalars(
            select(Alliance).where(Alliance.id.in_(list(ids)), Alliance.removed_at.is_(None))
        )
    }


def get_alliance(session: Session, alliance_id: int) -> Alliance | None:
    """An alliance by its id."""
    return session.get(Alliance, alliance_id)


def all_alliances(session: Session) -> list[Alliance]:
    """Every linked chat, by area and link time."""
    return list(session.scalars(select(Alliance).order_by(Alliance.area_code, Alliance.linked_at)))


def set_schedule(
    session: Session, alliance: Alliance, schedule: dict[str, Any], language: str | None = None
) -> None:
    """Store a new schedule (and digest language)."""
    alliance.schedule = dict(schedule)
    if language:
        alliance.language = language
    session.flush()


# ---- digests sent ------------------------------------------------------------------------


def last_digest(
    session: Session, alliance_id: int, kinds: tuple[str, ...] | None = None
) -> DigestSent | None:
    """The digest with the latest period end for this alliance (of these kinds)."""
    stmt = select(DigestSent).where(DigestSent.alliance_id == alliance_id)
    if kinds:
        stmt = stmt.where(DigestSent.kind.in_(kinds))
    return session.scalars(
        stmt.order_by(DigestSent.period_end.desc(), DigestSent.id.desc()).limit(1)
    ).first()


def last_digests(session: Session) -> dict[int, DigestSent]:
    """last_digest of every alliance that has one, in one query (alliance id -> row)."""
    latest = (
        select(DigestSent.alliance_id, func.max(DigestSent.period_end).label("period_end"))
        .group_by(DigestSent.alliance_id)
        .subquery()
    )
    rows = session.scalars(
        select(DigestSent).join(
            latest,
            and_(
                DigestSent.alliance_id == latest.c.alliance_id,
                DigestSent.period_end == latest.c.period_end,
            ),
        )
    )
    out: dict[int, DigestSent] = {}
    for row in rows:
        # Same order as last_digest: latest period end, then the highest id.
        if row.alliance_id not in out or row.id > out[row.alliance_id].id:
            out[row.alliance_id] = row
    return out


def digest_releases(
    session: Session, alliance_ids: Iterable[int]
) -> dict[int, list[tuple[int | None, int]]]:
    """Per alliance, the (round id, release id) its digests showed, newest first."""
    ids = sorted(set(alliance_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(DigestSent.alliance_id, DigestSent.round_id, DigestSent.release_id)
        .where(DigestSent.alliance_id.in_(ids), DigestSent.release_id.is_not(None))
        .order_by(DigestSent.period_end.desc(), DigestSent.id.desc())
    )
    out: dict[int, list[tuple[int | None, int]]] = {}
    for alliance_id, round_id, release_id in rows:
        if release_id is not None:
            out.setdefault(alliance_id, []).append((round_id, release_id))
    return out


def alliance_languages(session: Session) -> dict[str, set[str]]:
    """The languages of the alliances linked to each area (their digests' charts)."""
    out: dict[str, set[str]] = {}
    for area, language in session.execute(select(Alliance.area_code, Alliance.language)):
        out.setdefault(area, set()).add(language)
    return out


def final_digests_sent(session: Session) -> set[tuple[int, int]]:
    """(alliance id, round id) of every final digest recorded."""
    rows = session.execute(
        select(DigestSent.alliance_id, DigestSent.round_id).where(DigestSent.kind == "final")
    )
    return {(alliance_id, round_id) for alliance_id, round_id in rows if round_id is not None}


def last_digest_times(session: Session) -> dict[int, datetime]:
    """Latest digest time per alliance id (for listings)."""
    rows = session.execute(
        select(DigestSent.alliance_id, func.max(DigestSent.created_at)).group_by(
            DigestSent.alliance_id
        )
    ).all()
    return {alliance_id: moment for alliance_id, moment in rows}


@dataclass(frozen=True)
class DigestRecord:
    """A digest to record with record_digests."""

    alliance_id: int
    round_id: int | None
    kind: str
    period_start: datetime
    period_end: datetime
    published_n: dict[str, int]
    release_id: int | None = None


def record_digests(
    session: Session, records: list[DigestRecord], now: datetime
) -> list[DigestRecord]:
    """Insert several records in one statement; returns those inserted (an existing
    (alliance, kind, period_end) row wins: that digest was decided elsewhere)."""
    if not records:
        return []
    rows = [
        {
            "alliance_id": r.alliance_id,
            "round_id": r.round_id,
            "kind": r.kind,
            "period_start": r.period_start,
            "period_end": r.period_end,
            "published_n": dict(r.published_n),
            "created_at": now,
            "release_id": r.release_id,
        }
        for r in records
    ]
    statement = _record_digests_statement(session.get_bind().dialect.name)
    inserted = {
        (alliance_id, kind, _utc(end))
        for alliance_id, kind, end in session.execute(statement, rows).all()
    }
    return [r for r in records if (r.alliance_id, r.kind, _utc(r.period_end)) in inserted]


@cache
def _record_digests_statement(dialect: str) -> Any:
    # Built once and run with a parameter list: compiling a multi-VALUES per tick cost more.
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table: Any = DigestSent.__table__
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["alliance_id", "kind", "period_end"])
        .returning(table.c.alliance_id, table.c.kind, table.c.period_end)
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
