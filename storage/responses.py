"""Responses and answers: each answer is committed on its own, under its neighbourhood."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from storage.models import Answer, Response, Round


def get_response(
    session: Session, round_id: int, resident_id: int, *, lock: bool = False
) -> Response | None:
    """This resident's response to this round, if any."""
    stmt = select(Response).where(
        Response.round_id == round_id, Response.resident_id == resident_id
    )
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def response_with_round(
    session: Session, round_id: int, resident_id: int, *, lock: bool = False
) -> tuple[Response, Round] | None:
    """This resident's response to this round together with the round, in one query.

    `lock` locks the response row only (PostgreSQL), as `get_response` does.
    """
    stmt = _WITH_ROUND_LOCKED if lock else _WITH_ROUND
    row = session.execute(stmt, {"round_id": round_id, "resident_id": resident_id}).first()
    return None if row is None else (row[0], row[1])


# Built once: it runs on every tap, and building a select costs more than running it.
_WITH_ROUND = (
    select(Response, Round)
    .join(Round, Round.id == Response.round_id)
    .where(
        Response.round_id == bindparam("round_id"),
        Response.resident_id == bindparam("resident_id"),
    )
)
_WITH_ROUND_LOCKED = _WITH_ROUND.with_for_update(of=Response)


def response_in_progress(session: Session, resident_id: int) -> Response | None:
    """The resident's unfinished response in a round that is still open, newest first."""
    stmt = (
        select(Response)
        .join(Round, Round.id == Response.round_id)
        .where(
            Response.resident_id == resident_id,
            Response.status == "started",
            Round.status == "open",
        )
        .order_by(Response.started_at.desc())
    )
    return session.scalars(stmt).first()


def start_response(
    session: Session,
    *,
    round_id: int,
    survey_version_id: int,
    resident_id: int,
    response_key: str,
    area_code: str,
    neighbourhood_code: str | None,
    language: str,
    state: dict[str, Any],
    now: datetime,
) -> Response:
    """Begin a response; area and neighbourhood are fixed here, whatever the resident does later."""
    response = Response(
        round_id=round_id,
        survey_version_id=survey_version_id,
        resident_id=resident_id,
        response_key=response_key,
        area_code=area_code,
        neighbourhood_code=neighbourhood_code,
        language=language,
        status="started",
        state=state,
        reminders_sent=0,
        started_at=now,
        updated_at=now,
    )
    session.add(response)
    session.flush()
    return response


def save_answer(
    session: Session,
    response: Response,
    *,
    question_id: str,
    item_code: str | None,
    value: Any,
    text_language: str | None,
    now: datetime,
    replaces: bool = True,
) -> None:
    """Insert or replace the answer to one question (going back and answering again replaces).

    `replaces=False` says the response's state has no answer to this question, so no row can
    exist (state and rows change in the same transaction): the lookup is skipped.
    """
    existing = (
        session.scalars(
            select(Answer).where(
                Answer.response_id == response.id, Answer.question_id == question_id
            )
        ).first()
        if replaces
        else None
    )
    if existing is None:
        session.add(
            Answer(
                response_id=response.id,
                question_id=question_id,
                item_code=item_code,
                value=value,
                text_language=text_language,
                answered_at=now,
            )
        )
    else:
        existing.value = value
        existing.item_code = item_code
        existing.text_language = text_language
        existing.answered_at = now


def delete_answers(session: Session, response: Response, question_ids: list[str]) -> None:
    """Drop answers that no longer apply (skip logic changed after going back)."""
    if question_ids:
        # Through the ORM, so that the tallies hook sees what is taken away.
        for answer in session.scalars(
            select(Answer).where(
                Answer.response_id == response.id, Answer.question_id.in_(question_ids)
            )
        ):
            session.delete(answer)


def answers_of(session: Session, response_id: int) -> dict[str, Any]:
    """The stored answers of one response, by question id."""
    rows = session.execute(
        select(Answer.question_id, Answer.value).where(Answer.response_id == response_id)
    )
    return {question_id: value for question_id, value in rows}


def set_state(response: Response, state: dict[str, Any], now: datetime) -> None:
    """Store the engine state (a new dict, so the JSON column is written)."""
    response.state = dict(state)
    response.updated_at = now


def complete(response: Response, now: datetime) -> None:
    """Mark a response completed."""
    response.status = "completed"
    response.completed_at = now
    response.updated_at = now


def set_question_message_of(
    session: Session, resident_id: int, round_id: int, message_id: int
) -> None:
    """Remember which message shows a response's current question (one UPDATE, no load)."""
    session.execute(
        update(Response)
        .where(Response.resident_id == resident_id, Response.round_id == round_id)
        .values(question_message_id=message_id)
    )
