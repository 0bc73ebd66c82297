"""SQLAlchemy 2 typed ORM models: the whole schema of buurtstem.

Privacy by design: a resident is known only by a keyed pseudonym (HMAC of the Telegram id).
The chat id needed to write back lives apart in `resident_chats`, and is deleted on /forget.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with JSON as the type for dict/list columns."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: UTCDateTime,
    }


class Resident(Base):
    """A resident who consented, known only by a keyed pseudonym."""

    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), unique=True)
    language: Mapped[str | None] = mapped_column(String(8))
    # telegram | detected | chosen: the resident's own choice always wins.
    language_source: Mapped[str | None] = mapped_column(String(16))
    language_switch_offered: Mapped[bool] = mapped_column(Boolean, default=False)
    area_code: Mapped[str | None] = mapped_column(String(64), index=True)
    neighbourhood_code: Mapped[str | None] = mapped_column(String(64))
    consented_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]
    unreachable_at: Mapped[datetime | None]
    unreachable_reason: Mapped[str | None] = mapped_column(String(200))
    # Onboarding and command state outside a survey (e.g. waiting for a postcode), plain JSON.
    flow: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]

    chat: Mapped[ResidentChat | None] = relationship(
        back_populates="resident", cascade="all, delete-orphan", uselist=False
    )


class ResidentChat(Base):
    """Where the bot may write back to a resident: kept apart, deleted on /forget."""

    __tablename__ = "resident_chats"

    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), primary_key=True
    )
    chat_id: Mapped[int] = mapped_column(BigInteger, unique=True)

    resident: Mapped[Resident] = relationship(back_populates="chat")


class SurveyVersion(Base):
    """A published survey version: immutable once stored (same id+version, same content)."""

    __tablename__ = "survey_versions"
    __table_args__ = (UniqueConstraint("survey_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survey_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class Round(Base):
    """A survey version offered in some focus areas between two moments."""

    __tablename__ = "rounds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    survey_version_id: Mapped[int] = mapped_column(ForeignKey("survey_versions.id"))
    # None means all focus areas.
    area_codes: Mapped[list[Any] | None] = mapped_column(JSON)
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    reminder_after_days: Mapped[int | None] = mapped_column(Integer)
    max_reminders: Mapped[int] = mapped_column(Integer, default=1)
    # Whom reminders go to: residents who started and did not finish, who did not start.
    remind_started: Mapped[bool] = mapped_column(Boolean, default=True)
    remind_not_started: Mapped[bool] = mapped_column(Boolean, default=True)
    # Reminder waves already decided: durable, because sent outbox rows are purged later.
    reminders_done: Mapped[int] = mapped_column(Integer, default=0)
    # scheduled | open | closed
    status: Mapped[str] = mapped_column(String(16), default="scheduled", index=True)
    # The standing round of the default survey, offered while no published round is open.
    standing: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    survey_version: Mapped[SurveyVersion] = relationship()


class Response(Base):
    """One resident's answering of one round (or of the default survey when round_id is null)."""

    __tablename__ = "responses"
    __table_args__ = (
        UniqueConstraint("round_id", "resident_id"),
        Index("ix_responses_round_area", "round_id", "area_code"),
        Index("ix_responses_round_started", "round_id", "started_at"),
        Index("ix_responses_round_completed", "round_id", "completed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id"))
    survey_version_id: Mapped[int] = mapped_column(ForeignKey("survey_versions.id"))
    resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    # A per-round pseudonym for exports; never a Telegram id.
    response_key: Mapped[str] = mapped_column(String(32), unique=True)
    area_code: Mapped[str] = mapped_column(String(64))
    neighbourhood_code: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    # started | completed | closed (round closed before completion)
    status: Mapped[str] = mapped_column(String(16), default="started")
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Message that shows the current question, so it can be edited into a record.
    question_message_id: Mapped[int | None] = mapped_column(BigInteger)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    answers: Mapped[list[Answer]] = relationship(
        back_populates="response", cascade="all, delete-orphan", passive_deletes=True
    )


class Answer(Base):
    """One answer to one question, committed on its own."""

    __tablename__ = "answers"
    __table_args__ = (
        UniqueConstraint("response_id", "question_id"),
        # The tallies' exact remainder reads the answers of one day by time.
        Index("ix_answers_answered_at", "answered_at"),
        # Releases read a day's free text (only free text carries a language) by time.
        Index(
            "ix_answers_text_answered_at",
            "answered_at",
            sqlite_where=text("text_language IS NOT NULL"),
            postgresql_where=text("text_language IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"))
    question_id: Mapped[str] = mapped_column(String(64))
    item_code: Mapped[str | None] = mapped_column(String(64))
    # JSON: int for grades, str option id, list of option ids, str for free text.
    value: Mapped[Any] = mapped_column(JSON)
    # Detected language of a free-text answer ("unknown" when undecided), else null.
    text_language: Mapped[str | None] = mapped_column(String(8))
    answered_at: Mapped[datetime]

    response: Mapped[Response] = relationship(back_populates="answers")


class ProcessedUpdate(Base):
    """Telegram update ids already handled: updates arrive at least once, we act once.

    Update ids are unique per bot only, and only while they keep increasing: keyed by bot, and
    a claim older than Telegram's redelivery window does not count (storage.residents).
    """

    __tablename__ = "processed_updates"

    bot_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime] = mapped_column(index=True)


class InboxUpdate(Base):
    """An update stored before it is confirmed to Telegram, until it has been handled.

    Its content is the update as Telegram sent it (texts, names): kept only until handled,
    then deleted (bot/inbox.py).
    """

    __tablename__ = "update_inbox"

    bot_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(index=True)


class OutboxMessage(Base):
    """A message the bot sends on its own initiative, written in the deciding transaction."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # invitation | reminder | digest | round_closed | ...
    kind: Mapped[str] = mapped_column(String(32))
    # Makes the decision idempotent: the same invitation is never queued twice.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, index=True)
    is_group: Mapped[bool] = mapped_column(Boolean, default=False)
    resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    alliance_id: Mapped[int | None] = mapped_column(ForeignKey("alliances.id", ondelete="SET NULL"))
    # Bot API method (sendMessage, sendPhoto, sendDocument) and its parameters.
    method: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    file_name: Mapped[str | None] = mapped_column(String(200))
    file_data: Mapped[bytes | None] = mapped_column(LargeBinary)
    # pending | sending | sent | failed | unknown (interrupted mid-send: see docs/outbox.md)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(String(500))
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class Alliance(Base):
    """A focus area's alliance group chat, linked with a one-time code."""

    __tablename__ = "alliances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_code: Mapped[str] = mapped_column(String(64), index=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    title: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8), default="nl")
    # weekly | biweekly | monthly, with weekday and local time.
    schedule: Mapped[dict[str, Any]] = mapped_column(JSON)
    linked_at: Mapped[datetime]
    # When the bot was removed from the group (or the group left it): digests pause until the
    # bot is added back. None while the bot is in the group.
    removed_at: Mapped[datetime | None]


class AllianceCode(Base):
    """A one-time link code (stored hashed) for an area, valid for 7 days."""

    __tablename__ = "alliance_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    area_code: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_chat_id: Mapped[int | None] = mapped_column(BigInteger)


class LinkAttempt(Base):
    """Failed /koppel attempts per chat, to slow down guessing."""

    __tablename__ = "link_attempts"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime]
    blocked_until: Mapped[datetime | None]


class DigestSent(Base):
    """A digest decided for an alliance and the period it covers: never twice."""

    __tablename__ = "digests_sent"
    __table_args__ = (UniqueConstraint("alliance_id", "kind", "period_end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id", ondelete="CASCADE"))
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id"))
    # scheduled | final | on_demand
    kind: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    # The digest's published n per cell (digest.published_n).
    published_n: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    # The area's release it showed (null: none yet, "too few responses"); its previous digest's
    # release is what "since the previous digest" compares with.
    release_id: Mapped[int | None] = mapped_column(
        ForeignKey("area_releases.id", ondelete="SET NULL"), index=True
    )


class AreaRelease(Base):
    """A published cut of an area's figures (or of all areas, area_code '*'): immutable.

    Every output for the area (each linked group's digest, /results) shows one of these, so no
    two outputs differ by fewer than the minimum cell size (digests/release.py).
    """

    __tablename__ = "area_releases"
    __table_args__ = (UniqueConstraint("area_code", "round_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area_code: Mapped[str] = mapped_column(String(64))
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"))
    # 1, 2, ... within (area, round).
    seq: Mapped[int] = mapped_column(Integer)
    # The counts are those of answers given before this moment.
    cut_at: Mapped[datetime]
    # Respondents at cut_at: the next release needs min_cell_size more.
    started: Mapped[int] = mapped_column(Integer)
    # The last release of a closed round.
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    # Counts per neighbourhood, hidden cells and why, the series' history, comments by theme.
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class ReleaseSeries(Base):
    """Where an area's series of releases for a round stands: checked up to when, and the
    comments counted so far (the next release's)."""

    __tablename__ = "release_series"

    area_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    round_id: Mapped[int] = mapped_column(
        ForeignKey("rounds.id", ondelete="CASCADE"), primary_key=True
    )
    # The latest moment whose counts were looked at (a new release or too few new responses).
    checked_at: Mapped[datetime]
    # Comments up to checked_at, cumulative (digests.model.CommentSummary.to_json()).
    comments: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The round closed and its last release was decided: nothing more to check.
    closed: Mapped[bool] = mapped_column(Boolean, default=False)


class ReleaseChart(Base):
    """A release's chart in one language, drawn once for every digest that shows it."""

    __tablename__ = "release_charts"

    release_id: Mapped[int] = mapped_column(
        ForeignKey("area_releases.id", ondelete="CASCADE"), primary_key=True
    )
    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    # Null: the release has no chart (no grade question).
    png: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class AnswerTally(Base):
    """Answers per value, kept in step with every write (storage/tallies.py): digests read these.

    `day` is the UTC date of answered_at; the row with day TALLY_TOTAL_DAY (0001-01-01) holds the
    round's total. Multi answers count once under value_key "" plus once per ticked option.
    """

    __tablename__ = "answer_tallies"
    __table_args__ = ({"sqlite_with_rowid": False},)

    round_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    area_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    # "" for responses without a neighbourhood (a primary key column cannot be null).
    neighbourhood_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    question_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    value_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class ResponseTally(Base):
    """Responses started and completed per day (UTC), plus a total row: see AnswerTally."""

    __tablename__ = "response_tallies"
    __table_args__ = ({"sqlite_with_rowid": False},)

    round_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    area_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    neighbourhood_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    # started | completed
    event: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class Meta(Base):
    """Facts about the data itself, e.g. the fingerprint of the pseudonym key it was made with."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime]


class AllianceResponse(Base):
    """An alliance's answer to the residents of its area about a round: what it heard, what it does.

    Written in the alliance's group (draft), put forward by the group (pending), approved or
    rejected by the programme team; approval queues it for the residents who answered.
    """

    __tablename__ = "alliance_responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The group that wrote it; kept as null when the group is unlinked later (the log stays).
    alliance_id: Mapped[int | None] = mapped_column(
        ForeignKey("alliances.id", ondelete="SET NULL"), index=True
    )
    area_code: Mapped[str] = mapped_column(String(64))
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id"), index=True)
    # The Dutch text, as the alliance wrote it (plain text; escaped when sent).
    text: Mapped[str] = mapped_column(Text)
    # {language: text}: the alliance's own translations.
    translations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # draft | pending | approved | rejected | cancelled
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    # Who decided: "cli", or "telegram:" with a short pseudonym of the staff member.
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    # Why it was rejected, when the reviewer said so.
    review_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None]
    reviewed_at: Mapped[datetime | None]


class AllianceResponseRecipient(Base):
    """One resident an approved alliance response was queued for: never twice, with their reaction.

    Erasure (/forget) deletes the row; retention keeps it without the resident (the counts stay).
    """

    __tablename__ = "alliance_response_recipients"
    __table_args__ = (UniqueConstraint("response_id", "resident_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    response_id: Mapped[int] = mapped_column(
        ForeignKey("alliance_responses.id", ondelete="CASCADE")
    )
    resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    # The language of the text sent; `translated` False: Dutch with a note in their language.
    language: Mapped[str] = mapped_column(String(8))
    translated: Mapped[bool] = mapped_column(Boolean, default=False)
    queued_at: Mapped[datetime]
    # helpful | not_helpful (the reaction buttons under the message)
    reaction: Mapped[str | None] = mapped_column(String(16))
    reacted_at: Mapped[datetime | None]
