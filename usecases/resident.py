"""A resident's update in one transaction: claim it, load, step the journey, store what changed.

The journey (journey/) decides; this module owns the transaction around it: it claims the
update id (a repeat changes nothing), loads the resident and, as the journey asks, their
responses and rounds (`DbWorld`), then stores the resident, new and changed responses and their
answers. The Telegram adapter (handlers/resident.py) runs it on a worker thread and renders the
outcome after commit, so an answer is stored before the bot replies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from journey.model import (
    QUESTION_LOST,
    Input,
    Outcome,
    ResidentState,
    ResponseState,
    RoundInfo,
)
from journey.steps import step
from storage import alliance_responses as alliance_response_store
from storage import residents as resident_store
from storage import responses as response_store
from storage.models import Resident, Response, Round
from storage.rounds import round_for_area
from surveys.engine import Engine
from usecases.alliance_responses import stop_messages
from usecases.services import Services


@dataclass(frozen=True)
class Who:
    """Who sent an update: their Telegram user id (pseudonymised here), chat, language code."""

    user_id: int
    chat_id: int
    language_code: str | None = None


@dataclass
class Handled:
    """The outcome to render, and the resident it belongs to (None: nobody stored)."""

    outcome: Outcome | None  # None: the update was handled before
    resident_id: int | None = None


def round_is_open(round_: Round, now: datetime) -> bool:
    """Whether answers are still taken in this round."""
    return round_.status == "open" and round_.opens_at <= now < round_.closes_at


def _round_info(round_: Round, now: datetime) -> RoundInfo:
    return RoundInfo(
        round_.id, round_.survey_version_id, round_is_open(round_, now), round_.standing
    )


def _snapshot(row: Response, round_: Round | None, now: datetime) -> ResponseState:
    return ResponseState(
        id=row.id,
        round_id=row.round_id or 0,
        survey_version_id=row.survey_version_id,
        status=row.status,
        language=row.language,
        state=dict(row.state or {}),
        round_open=round_ is None or round_is_open(round_, now),
        question_message_id=row.question_message_id,
        area_code=row.area_code,
        neighbourhood_code=row.neighbourhood_code,
    )


class DbWorld:
    """The journey's look-ups, answered from the database in the update's transaction.

    Every response handed out is remembered with its row and its answers as loaded, so that
    `store` writes exactly what the journey changed.
    """

    def __init__(self, svc: Services, session: Session, row: Resident | None, now: datetime):
        self.svc, self.session, self.row, self.now = svc, session, row, now
        self.loaded: dict[int, tuple[ResponseState, Response | None, dict[str, Any]]] = {}

    def engine(self, survey_version_id: int) -> Engine:
        return self.svc.engine(self.session, survey_version_id)

    def round_for_area(self, area_code: str) -> RoundInfo | None:
        found = round_for_area(self.session, area_code, self.now)
        return _round_info(found, self.now) if found is not None else None

    def round(self, round_id: int) -> RoundInfo | None:
        found = self.session.get(Round, round_id)
        return _round_info(found, self.now) if found is not None else None

    def _remember(self, row: Response, round_: Round | None) -> ResponseState:
        known = self.loaded.get(row.round_id or 0)
        if known is not None:
            return known[0]
        state = _snapshot(row, round_, self.now)
        self.loaded[state.round_id] = (state, row, state.answers)
        return state

    def response_in_progress(self) -> ResponseState | None:
        if self.row is None or self.row.id is None:
            return None
        for state, _row, _answers in self.loaded.values():
            if state.status == "started" and state.id is None:
                return state  # started in this update
        row = response_store.response_in_progress(self.session, self.row.id)
        if row is None:
            return None
        return self._remember(row, self.session.get(Round, row.round_id))

    def response_for(self, round_id: int) -> ResponseState | None:
        if round_id in self.loaded:
            return self.loaded[round_id][0]
        if self.row is None or self.row.id is None:
            return None
        found = response_store.response_with_round(self.session, round_id, self.row.id, lock=True)
        return None if found is None else self._remember(*found)

    def start_response(self, round_: RoundInfo, response: ResponseState) -> ResponseState:
        self.loaded[round_.id] = (response, None, {})
        return response

    def received_response(self, response_id: int) -> bool:
        if self.row is None or self.row.id is None:
            return False
        return alliance_response_store.received(self.session, response_id, self.row.id)

    # -- storing -------------------------------------------------------------------------------

    def store(self, resident: Resident) -> None:
        """Write new and changed responses and their answers."""
        for state, row, before in self.loaded.values():
            if row is None:
                assert state.area_code is not None
                row = response_store.start_response(
                    self.session,
                    round_id=state.round_id,
                    survey_version_id=state.survey_version_id,
                    resident_id=resident.id,
                    response_key=self.svc.response_key(resident.pseudonym, state.round_id),
                    area_code=state.area_code,
                    neighbourhood_code=state.neighbourhood_code,
                    language=state.language,
                    state=state.state,
                    now=self.now,
                )
            self._store_response(state, row, before)

    def _store_response(self, state: ResponseState, row: Response, before: dict[str, Any]) -> None:
        after = state.answers
        engine = self.engine(state.survey_version_id)
        for question_id, value in after.items():
            if before.get(question_id, _MISSING) != value:
                question = engine.survey.question(question_id)
                response_store.save_answer(
                    self.session,
                    row,
                    question_id=question_id,
                    item_code=question.item,
                    value=value,
                    text_language=state.text_language if question.type == "text" else None,
                    now=self.now,
                    replaces=question_id in before,
                )
        response_store.delete_answers(self.session, row, [q for q in before if q not in after])
        if row.state != state.state:
            response_store.set_state(row, state.state, self.now)
        if row.language != state.language:
            row.language = state.language
        if row.question_message_id != state.question_message_id:
            row.question_message_id = state.question_message_id
        if row.status != state.status:
            if state.status == "completed":
                response_store.complete(row, self.now)
            else:
                row.status = state.status
                row.updated_at = self.now


_MISSING = object()


def snapshot(row: Resident) -> ResidentState:
    """What the journey knows of a stored resident."""
    flow = row.flow or {}
    return ResidentState(
        language=row.language or "nl",
        language_source=row.language_source or "default",
        area_code=row.area_code,
        neighbourhood_code=row.neighbourhood_code,
        step=flow.get("step"),
        ticks=flow.get("ticks"),
        switch_offered=bool(row.language_switch_offered),
        confirm_area=bool(flow.get("confirm_area")),
        stopped=row.stopped_at is not None,
    )


def _store_resident(
    svc: Services,
    session: Session,
    row: Resident | None,
    state: ResidentState,
    who: Who,
    now: datetime,
) -> Resident:
    if row is None:
        row = resident_store.create_resident(
            session,
            pseudonym=svc.resident_key(who.user_id),
            chat_id=who.chat_id,
            language=state.language,
            language_source=state.language_source,
            now=now,
        )
    row.language = state.language
    row.language_source = state.language_source
    row.language_switch_offered = state.switch_offered
    row.area_code = state.area_code
    row.neighbourhood_code = state.neighbourhood_code
    if state.stopped and row.stopped_at is None:
        row.stopped_at = now
    elif not state.stopped and row.stopped_at is not None:
        row.stopped_at = None
    flow = {"step": state.step, "ticks": state.ticks, "confirm_area": state.confirm_area or None}
    flow = {key: value for key, value in flow.items() if value}
    if (row.flow or {}) != flow:
        row.flow = flow
    return row


def find(
    svc: Services, session: Session, who: Who, now: datetime, *, lock: bool
) -> Resident | None:
    """The resident who sent an update; marks them seen (hourly: spares a write per tap)."""
    row = resident_store.find_resident(session, svc.resident_key(who.user_id), lock=lock)
    if row is not None and lock and now - row.last_seen_at > timedelta(hours=1):
        row.last_seen_at = now
    return row


def handle(svc: Services, session: Session, update_id: int, who: Who, given: Input) -> Handled:
    """One update of a resident's private chat, in the caller's transaction."""
    now = svc.clock.now()
    if not resident_store.claim_update(session, svc.bot_id, update_id, now):
        return Handled(None)
    row = find(svc, session, who, now, lock=True)
    world = DbWorld(svc, session, row, now)
    ctx = svc.journey_context(now, who.language_code)
    outcome = step(snapshot(row) if row is not None else None, given, ctx, world)
    state = outcome.resident
    if state is None:
        return Handled(outcome)
    if state.forget:
        if row is not None:
            resident_store.forget_resident(session, row)
        return Handled(outcome)
    stopping = state.stopped and (row is None or row.stopped_at is None)
    row = _store_resident(svc, session, row, state, who, now)
    world.row = row
    world.store(row)
    if stopping:
        stop_messages(session, row.id)
    if outcome.reaction is not None:
        reaction = outcome.reaction
        alliance_response_store.set_reaction(
            session,
            reaction.response_id,
            row.id,
            alliance_response_store.HELPFUL
            if reaction.helpful
            else alliance_response_store.NOT_HELPFUL,
            now,
        )
    return Handled(outcome, row.id)


def replies_may_be_lost(svc: Services, session: Session, user_ids: Iterable[int]) -> int:
    """These residents' updates were taken by an instance that stopped before handling them to
    the end (a crash): the answer may be committed while the record and the next question never
    went out. Mark each one's current question as lost, as a failed send does, so their next tap
    on an older question (or any message) asks it again. Returns how many were marked."""
    marked = 0
    for user_id in set(user_ids):
        resident_id = resident_store.resident_id_of(session, svc.resident_key(user_id))
        if resident_id is None:
            continue
        response = response_store.response_in_progress(session, resident_id)
        if response is not None and response.question_message_id != QUESTION_LOST:
            response.question_message_id = QUESTION_LOST
            marked += 1
    return marked


def language_of(svc: Services, session: Session, who: Who) -> str:
    """The resident's language, or their Telegram language if offered, or Dutch (read only)."""
    row = resident_store.find_resident(session, svc.resident_key(who.user_id))
    if row is not None and row.language:
        return row.language
    return svc.journey_context(svc.clock.now(), who.language_code).telegram_language or "nl"


def question_sent(session: Session, resident_id: int, round_id: int, message_id: int) -> None:
    """The message asking a free-text question arrived: a typed answer will edit it."""
    response_store.set_question_message_of(session, resident_id, round_id, message_id)


def question_lost(session: Session, resident_id: int, round_id: int) -> None:
    """The message asking the current question never arrived: ask it again at the next chance."""
    response_store.set_question_message_of(session, resident_id, round_id, QUESTION_LOST)
