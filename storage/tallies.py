"""Pre-aggregated counts of answers and responses, kept in step with every write.

A before_flush hook turns every ORM insert, change and delete of an Answer or a Response into
+/- deltas on `answer_tallies` and `response_tallies`, upserted (count = count + delta) in the
same transaction. Rows are per UTC day of answered_at / started_at / completed_at, plus one total
row per key (day TOTAL_DAY), so that "as of a moment" reads only the days after that moment.
Free-text answers (text_language set) are not tallied. Writes that bypass the ORM (bulk SQL)
must call rebuild_tallies afterwards.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time
from functools import cache
from typing import Any

from sqlalchemy import Table, delete, event, insert, inspect, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from storage.models import Answer, AnswerTally, Response, ResponseTally

# The day of the total rows: before every real day, so "day >= D" never includes it.
TOTAL_DAY = date(1, 1, 1)
# Neighbourhood key of responses without one; value key of "answered" (multi) and null answers.
NO_NEIGHBOURHOOD = ""
ANSWERED = ""
STARTED, COMPLETED = "started", "completed"

AnswerKey = tuple[int, str, str, str, str, date]  # round, area, nbh, question, value key, day
ResponseKey = tuple[int, str, str, str, date]  # round, area, nbh, event, day
_ANSWER_PK = ("round_id", "day", "area_code", "neighbourhood_code", "question_id", "value_key")
_RESPONSE_PK = ("round_id", "day", "area_code", "neighbourhood_code", "event")
_CHUNK = 500


def day_of(moment: datetime) -> date:
    """The UTC date a moment is tallied under."""
    if moment.tzinfo is None:
        return moment.date()  # stored naive values are UTC
    return moment.astimezone(UTC).date()


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of a tally day."""
    return datetime.combine(day, time(), tzinfo=UTC)


def value_keys(value: Any, text_language: str | None) -> list[str]:
    """The value keys one answer adds 1 to: none for free text, "" plus options for a list."""
    if text_language is not None:
        return []  # free text: every value would be its own row
    if isinstance(value, list):
        return [ANSWERED, *(str(option) for option in value)]
    if value is None:
        return [ANSWERED]
    return [str(value)]


class Deltas:
    """Changes to tallies collected during one flush."""

    def __init__(self) -> None:
        self.answers: Counter[AnswerKey] = Counter()
        self.responses: Counter[ResponseKey] = Counter()

    def answer(
        self,
        where: tuple[int | None, str, str | None],
        question_id: str,
        value: Any,
        text_language: str | None,
        answered_at: datetime | None,
        sign: int,
    ) -> None:
        round_id, area, nbh = where
        if round_id is None or answered_at is None:
            return
        day = day_of(answered_at)
        for key in value_keys(value, text_language):
            self.answers[(round_id, area, nbh or NO_NEIGHBOURHOOD, question_id, key, day)] += sign

    def response(
        self,
        where: tuple[int | None, str, str | None],
        started_at: datetime | None,
        completed_at: datetime | None,
        sign: int,
    ) -> None:
        round_id, area, nbh = where
        if round_id is None:
            return
        hood = nbh or NO_NEIGHBOURHOOD
        if started_at is not None:
            self.responses[(round_id, area, hood, STARTED, day_of(started_at))] += sign
        if completed_at is not None:
            self.responses[(round_id, area, hood, COMPLETED, day_of(completed_at))] += sign

    def apply(self, session: Session) -> None:
        """Upsert the non-zero deltas, day rows and total rows, in key order (no deadlocks)."""
        answer_rows = _with_totals(self.answers, 5)
        response_rows = _with_totals(self.responses, 4)
        if answer_rows:
            _upsert(session, AnswerTally.__table__, _ANSWER_PK, answer_rows, _answer_row)  # type: ignore[arg-type]
        if response_rows:
            _upsert(session, ResponseTally.__table__, _RESPONSE_PK, response_rows, _response_row)  # type: ignore[arg-type]


def _with_totals(deltas: Counter[Any], day_index: int) -> list[tuple[Any, int]]:
    merged: Counter[Any] = Counter()
    for key, delta in deltas.items():
        if delta:
            merged[key] += delta
            merged[(*key[:day_index], TOTAL_DAY)] += delta
    return sorted((key, delta) for key, delta in merged.items() if delta)


def _answer_row(key: AnswerKey, count: int) -> dict[str, Any]:
    round_id, area, nbh, question_id, value_key, day = key
    return {
        "round_id": round_id,
        "day": day,
        "area_code": area,
        "neighbourhood_code": nbh,
        "question_id": question_id,
        "value_key": value_key,
        "count": count,
    }


def _response_row(key: ResponseKey, count: int) -> dict[str, Any]:
    round_id, area, nbh, event_, day = key
    return {
        "round_id": round_id,
        "day": day,
        "area_code": area,
        "neighbourhood_code": nbh,
        "event": event_,
        "count": count,
    }


def _upsert(
    session: Session,
    table: Table,
    pk: Sequence[str],
    rows: list[tuple[Any, int]],
    make: Any,
) -> None:
    # INSERT .. ON CONFLICT DO UPDATE per row, atomic: concurrent writers add, never overwrite.
    stmt = _upsert_statement(table, tuple(pk), session.get_bind().dialect.name)
    for start in range(0, len(rows), _CHUNK):
        session.execute(stmt, [make(key, count) for key, count in rows[start : start + _CHUNK]])


@cache
def _upsert_statement(table: Table, pk: tuple[str, ...], dialect: str) -> Any:
    # Built once per table: it runs in every answer's transaction, and building and caching a
    # multi-VALUES construct cost more than the statement itself. Executed with many rows.
    stmt: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    return stmt.on_conflict_do_update(
        index_elements=list(pk), set_={"count": table.c["count"] + stmt.excluded["count"]}
    )


# ---- following ORM writes ------------------------------------------------------------------


def _old(obj: Any, name: str) -> Any:
    """An attribute's value as stored (before this flush's change)."""
    history = inspect(obj).attrs[name].load_history()
    if history.deleted:
        return history.deleted[0]
    if history.unchanged:
        return history.unchanged[0]
    return getattr(obj, name) if not history.added else None


def _where(response: Response, *, old: bool = False) -> tuple[int | None, str, str | None]:
    if old:
        return (
            _old(response, "round_id"),
            _old(response, "area_code"),
            _old(response, "neighbourhood_code"),
        )
    return response.round_id, response.area_code, response.neighbourhood_code


def _response_of(session: Session, answer: Answer) -> Response | None:
    if "response" in inspect(answer).dict:
        return answer.response
    if answer.response_id is None:
        return None
    return session.get(Response, answer.response_id)


_ANSWER_FIELDS = ("response_id", "question_id", "value", "text_language", "answered_at")
_RESPONSE_FIELDS = ("round_id", "area_code", "neighbourhood_code", "started_at", "completed_at")


def _changed(obj: Any, fields: Iterable[str]) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in fields)


def collect(session: Session) -> Deltas:
    """The tally deltas of everything this session is about to flush."""
    deltas = Deltas()
    gone: set[int] = set()
    for obj in session.deleted:
        if isinstance(obj, Response) and obj.id is not None:
            gone.add(obj.id)
            where = _where(obj, old=True)
            deltas.response(where, _old(obj, "started_at"), _old(obj, "completed_at"), -1)
            # Its answers go by ON DELETE CASCADE: take back what the stored ones counted.
            stored = session.execute(
                select(
                    Answer.question_id, Answer.value, Answer.text_language, Answer.answered_at
                ).where(Answer.response_id == obj.id)
            )
            for question_id, value, language, answered_at in stored:
                deltas.answer(where, question_id, value, language, answered_at, -1)
    for obj in session.deleted:
        if isinstance(obj, Answer) and obj.id is not None and _old(obj, "response_id") not in gone:
            response = session.get(Response, _old(obj, "response_id"))
            if response is not None:
                deltas.answer(
                    _where(response, old=True),
                    _old(obj, "question_id"),
                    _old(obj, "value"),
                    _old(obj, "text_language"),
                    _old(obj, "answered_at"),
                    -1,
                )
    for obj in session.new:
        if isinstance(obj, Response):
            deltas.response(_where(obj), obj.started_at, obj.completed_at, 1)
        elif isinstance(obj, Answer):
            response = _response_of(session, obj)
            if response is not None and response.id not in gone:
                deltas.answer(
                    _where(response),
                    obj.question_id,
                    obj.value,
                    obj.text_language,
                    obj.answered_at,
                    1,
                )
    for obj in session.dirty:
        if isinstance(obj, Response) and obj.id not in gone and _changed(obj, _RESPONSE_FIELDS):
            deltas.response(
                _where(obj, old=True), _old(obj, "started_at"), _old(obj, "completed_at"), -1
            )
            deltas.response(_where(obj), obj.started_at, obj.completed_at, 1)
        elif isinstance(obj, Answer) and _changed(obj, _ANSWER_FIELDS):
            old_response = session.get(Response, _old(obj, "response_id"))
            if old_response is not None and old_response.id not in gone:
                deltas.answer(
                    _where(old_response, old=True),
                    _old(obj, "question_id"),
                    _old(obj, "value"),
                    _old(obj, "text_language"),
                    _old(obj, "answered_at"),
                    -1,
                )
            response = _response_of(session, obj)
            if response is not None and response.id not in gone:
                deltas.answer(
                    _where(response),
                    obj.question_id,
                    obj.value,
                    obj.text_language,
                    obj.answered_at,
                    1,
                )
    return deltas


def keep_tallies(sessions: sessionmaker[Session]) -> None:
    """Make every flush of these sessions bring the tallies in step (storage.db.Database does)."""
    if not event.contains(sessions, "before_flush", _before_flush):
        event.listen(sessions, "before_flush", _before_flush)


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    if not any(
        isinstance(o, (Answer, Response)) for o in (*session.new, *session.dirty, *session.deleted)
    ):
        return
    with session.no_autoflush:
        collect(session).apply(session)


# ---- repair ---------------------------------------------------------------------------------


def rebuild_tallies(session: Session, round_ids: Iterable[int] | None = None) -> None:
    """Recompute tallies from the stored answers and responses (after bulk SQL, or to repair)."""
    ids = None if round_ids is None else list(round_ids)
    for model in (AnswerTally, ResponseTally):
        stmt = delete(model)
        if ids is not None:
            stmt = stmt.where(model.round_id.in_(ids))
        session.execute(stmt)
    deltas = Deltas()
    where: dict[int, tuple[int | None, str, str | None]] = {}
    responses = select(
        Response.id,
        Response.round_id,
        Response.area_code,
        Response.neighbourhood_code,
        Response.started_at,
        Response.completed_at,
    ).where(Response.round_id.is_not(None))
    if ids is not None:
        responses = responses.where(Response.round_id.in_(ids))
    for rid, round_id, area, nbh, started_at, completed_at in session.execute(responses):
        where[rid] = (round_id, area, nbh)
        deltas.response(where[rid], started_at, completed_at, 1)
    answers = select(
        Answer.response_id,
        Answer.question_id,
        Answer.value,
        Answer.text_language,
        Answer.answered_at,
    ).where(Answer.text_language.is_(None))
    rows = session.execute(answers.execution_options(yield_per=20_000))
    for response_id, question_id, value, language, answered_at in rows:
        found = where.get(response_id)
        if found is not None:
            deltas.answer(found, question_id, value, language, answered_at, 1)
    # Plain inserts: the tables are empty for these rounds.
    for table, rows_, make in (
        (AnswerTally.__table__, _with_totals(deltas.answers, 5), _answer_row),
        (ResponseTally.__table__, _with_totals(deltas.responses, 4), _response_row),
    ):
        for start in range(0, len(rows_), 5_000):
            session.execute(
                insert(table),  # type: ignore[arg-type]
                [make(key, count) for key, count in rows_[start : start + 5_000]],
            )
