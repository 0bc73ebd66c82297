"""The resident's path outside single updates: what to show next, decided inside a transaction.

Handlers call these functions inside one database transaction and get back `Outgoing` messages,
which they send only after the transaction committed (an answer is stored before the bot replies).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from handlers.services import Services
from journey import wire as cb
from storage import responses as response_store
from storage.models import Resident, Response, Round
from storage.rounds import round_for_area
from storage.survey_versions import get_survey_version
from surveys.engine import Ask, Done, Engine, Invalid, Step
from surveys.schema import Survey

Keyboard = list[list[InlineKeyboardButton]]


@dataclass
class Outgoing:
    """A message to send after commit.

    `asks` is the response whose current question this message asks: if it never arrives, the
    response is marked so that the resident's next tap or message brings it back.
    `remember_id` stores the message's id with the response (a typed answer edits it).
    """

    text: str
    keyboard: Keyboard | None = None
    asks: int | None = None
    remember_id: bool = False

    @property
    def markup(self) -> InlineKeyboardMarkup | None:
        """The inline keyboard, if any."""
        return InlineKeyboardMarkup(self.keyboard) if self.keyboard else None


@dataclass
class Edit:
    """An edit of an earlier message (e.g. a question turned into a record), after commit."""

    message_id: int
    text: str
    keyboard: Keyboard | None = None


@dataclass
class Plan:
    """What a handler does after commit: edits, messages, and a short callback notice."""

    edits: list[Edit] = field(default_factory=list)
    messages: list[Outgoing] = field(default_factory=list)
    notice: str | None = None
    alert: bool = False

    def send(self, text: str, keyboard: Keyboard | None = None) -> None:
        """Queue a message."""
        self.messages.append(Outgoing(text, keyboard))


def engine_for(svc: Services, session: Session, survey_version_id: int) -> Engine:
    """The engine of a stored survey version (cached: versions are immutable)."""
    engine = svc.engines.get(survey_version_id)
    if engine is None:
        stored = get_survey_version(session, survey_version_id)
        if stored is None:
            raise LookupError(f"survey version {survey_version_id} is not stored")
        engine = Engine(Survey.from_json(stored.definition))
        svc.engines[survey_version_id] = engine
    return engine


def survey_language(survey: Survey, lang: str | None) -> str:
    """The resident's language if the survey offers it, else the survey's first language."""
    return lang if lang in survey.languages else survey.languages[0]


# ---- language -----------------------------------------------------------------------------


def language_prompt(svc: Services, resident: Resident) -> Outgoing:
    """The language step: each offered language one tap away, current one marked."""
    lang = resident.language or "nl"
    rows: Keyboard = []
    row: list[InlineKeyboardButton] = []
    for code in svc.offered_languages:
        name = svc.text(code, "language.name")
        label = f"✓ {name}" if code == lang else name
        row.append(InlineKeyboardButton(label, callback_data=cb.encode("l", code)))
        if len(row) == 2:
            rows.append(row)
            row = []
    if row:
        rows.append(row)
    rows.append(
        [InlineKeyboardButton(svc.text(lang, "language.continue"), callback_data=cb.encode("lc"))]
    )
    current = svc.text(lang, "language.name")
    return Outgoing(svc.text(lang, "language.prompt", current=current), rows)


# ---- area -----------------------------------------------------------------------------------


def municipality_keyboard(svc: Services, lang: str) -> Keyboard:
    """Buttons for the municipalities that have a focus area, two per row."""
    rows: Keyboard = []
    row: list[InlineKeyboardButton] = []
    for name, areas in svc.areas.municipalities().items():
        row.append(
            InlineKeyboardButton(name, callback_data=cb.encode("m", areas[0].municipality_code))
        )
        if len(row) == 2:
            rows.append(row)
            row = []
    if row:
        rows.append(row)
    return rows


def area_prompt(svc: Services, lang: str, key: str = "area.prompt", **params: Any) -> Outgoing:
    """Ask where the resident lives: a postcode, or municipality buttons."""
    return Outgoing(svc.text(lang, key, **params), municipality_keyboard(svc, lang))


def areas_of_municipality(svc: Services, municipality_code: str) -> list[Any]:
    """The focus areas in one municipality (Amsterdam has two)."""
    return [area for area in svc.areas.all() if area.municipality_code == municipality_code]


def neighbourhood_prompt(
    svc: Services,
    lang: str,
    area: Any,
    neighbourhoods: list[Any] | None = None,
    key: str = "area.pick_neighbourhood",
    outside: bool = False,
    **params: Any,
) -> Outgoing:
    """Buttons for the neighbourhoods of an area (or a subset), plus "don't know" and back.

    `outside`: the resident may live outside the focus area (the PC4 reaches beyond it, or the
    data cannot tell), so "none of these" is offered: it explains the survey is for the focus
    area only and shows the municipality buttons again.
    """
    hoods = list(neighbourhoods if neighbourhoods is not None else area.neighbourhoods)
    rows: Keyboard = []
    row: list[InlineKeyboardButton] = []
    for hood in hoods:
        row.append(InlineKeyboardButton(hood.name, callback_data=cb.encode("n", hood.code)))
        if len(row) == 2:
            rows.append(row)
            row = []
    if row:
        rows.append(row)
    # "Don't know" places the resident in `area`: not when the choice spans two areas.
    if not outside or all(hood.area_code == area.code for hood in hoods):
        rows.append(
            [
                InlineKeyboardButton(
                    svc.text(lang, "area.other_neighbourhood"),
                    callback_data=cb.encode("n0", area.code),
                )
            ]
        )
    if outside:
        rows.append(
            [
                InlineKeyboardButton(
                    svc.text(lang, "area.none_of_these"), callback_data=cb.encode("ab", "x")
                )
            ]
        )
    rows.append([InlineKeyboardButton(svc.text(lang, "area.back"), callback_data=cb.encode("ab"))])
    params.setdefault("area", area.name)
    return Outgoing(svc.text(lang, key, **params), rows)


def set_area(resident: Resident, area_code: str, neighbourhood_code: str | None) -> None:
    """Move the resident; responses keep the neighbourhood they were started in."""
    resident.area_code = area_code
    resident.neighbourhood_code = neighbourhood_code


def area_confirmation(svc: Services, resident: Resident, changed: bool = False) -> str:
    """The line that confirms where the resident lives."""
    lang = resident.language or "nl"
    area = svc.areas.get(resident.area_code or "")
    area_name = area.name if area else resident.area_code or ""
    found = svc.areas.neighbourhood(resident.neighbourhood_code or "")
    if found is not None:
        hood = found[1]
        key = "area.changed" if changed else "area.set"
        return svc.text(
            lang, key, neighbourhood=html.escape(hood.name), area=html.escape(area_name)
        )
    return svc.text(lang, "area.set_area_only", area=html.escape(area_name))


# ---- survey ---------------------------------------------------------------------------------


def question_text(svc: Services, engine: Engine, step: Ask, lang: str) -> str:
    """Progress, the question, and a hint for how to answer."""
    question = step.question
    lang = survey_language(engine.survey, lang)
    ui = lang if svc.catalogue.has(lang, "survey.progress") else "nl"
    parts = [
        f"<i>{svc.text(ui, 'survey.progress', number=step.number, total=step.total)}</i>",
        f"<b>{html.escape(question.text[lang])}</b>",
    ]
    if question.type == "text":
        parts.append(svc.text(ui, "survey.type_answer", max_length=question.max_length))
    elif question.type == "multi":
        parts.append(svc.text(ui, "survey.multi_hint"))
    if question.optional:
        parts.append(f"<i>{svc.text(ui, 'survey.optional')}</i>")
    return "\n".join(parts)


def question_keyboard(
    svc: Services, engine: Engine, step: Ask, lang: str, round_id: int, ticked: list[str]
) -> Keyboard:
    """Inline buttons for a question: grades in two rows, options one per row, navigation last."""
    question = step.question
    lang = survey_language(engine.survey, lang)
    ui = lang if svc.catalogue.has(lang, "survey.back") else "nl"
    rows: Keyboard = []

    def button(label: str, option: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            label, callback_data=cb.encode("q", round_id, question.id, option)
        )

    if question.type == "grade":
        rows.append([button(str(n), str(n)) for n in range(1, 6)])
        rows.append([button(str(n), str(n)) for n in range(6, 11)])
    elif question.type != "text":
        for option in question.options:
            label = option.label[lang]
            if question.type == "multi":
                label = ("☑ " if option.id in ticked else "☐ ") + label
            rows.append([button(label, option.id)])
        if question.type == "multi":
            rows.append([button(svc.text(ui, "survey.done_button"), cb.DONE)])
    nav: list[InlineKeyboardButton] = []
    if step.number > 1:
        nav.append(button(svc.text(ui, "survey.back"), cb.BACK))
    if question.optional:
        nav.append(button(svc.text(ui, "survey.skip"), cb.SKIP))
    if nav:
        rows.append(nav)
    return rows


def ask(
    svc: Services,
    engine: Engine,
    response: Response,
    step: Ask,
    ticked: list[str] | None = None,
    *,
    lead: str | None = None,
) -> Outgoing:
    """The message that asks the current question of a response (after `lead`, if given).

    Only a free-text question needs its message id remembered (to edit it when the answer is
    typed); button questions get theirs from the tap, which spares a write per question.
    """
    is_text = step.question.type == "text"
    if not is_text:
        response.question_message_id = None  # also clears a "question lost" mark
    text = question_text(svc, engine, step, response.language)
    return Outgoing(
        f"{lead}\n\n{text}" if lead else text,
        question_keyboard(
            svc, engine, step, response.language, response.round_id or 0, ticked or []
        ),
        asks=response.id,
        remember_id=is_text,
    )


def record_text(svc: Services, engine: Engine, step: Ask, lang: str, answer: str) -> str:
    """A question turned into a record of its answer, buttons gone."""
    base = question_text(svc, engine, step, lang).split("\n")[:2]
    ui = survey_language(engine.survey, lang)
    ui = ui if svc.catalogue.has(ui, "survey.answer_record") else "nl"
    return "\n".join([*base, svc.text(ui, "survey.answer_record", answer=html.escape(answer))])


def round_is_open(round_: Round, now: datetime) -> bool:
    """Whether answers are still taken in this round."""
    return round_.status == "open" and round_.opens_at <= now < round_.closes_at


def current_or_start(
    svc: Services,
    session: Session,
    resident: Resident,
    now: datetime,
    plan: Plan,
    *,
    welcome_back: bool = False,
) -> None:
    """Show the resident what comes next: language, area, the current question, or a closing word."""
    lang = resident.language or "nl"
    step_name = (resident.flow or {}).get("step")
    if step_name == "language":
        plan.messages.append(language_prompt(svc, resident))
        return
    if resident.area_code is None or step_name == "area":
        plan.messages.append(area_prompt(svc, lang))
        return
    response = response_store.response_in_progress(session, resident.id)
    if response is not None:
        engine = engine_for(svc, session, response.survey_version_id)
        step = engine.current(response.state)
        if isinstance(step, Ask):
            if welcome_back:
                plan.send(svc.text(lang, "survey.welcome_back"))
            plan.messages.append(ask(svc, engine, response, step, ticks_for(resident, step)))
            return
    round_ = round_for_area(session, resident.area_code, now)
    if round_ is None:
        plan.send(svc.text(lang, "survey.no_round"))
        return
    existing = response_store.get_response(session, round_.id, resident.id)
    if existing is not None and existing.status != "started":
        plan.send(svc.text(lang, "survey.already_done"))
        return
    engine = engine_for(svc, session, round_.survey_version_id)
    if existing is None:
        state = engine.start()
        existing = response_store.start_response(
            session,
            round_id=round_.id,
            survey_version_id=round_.survey_version_id,
            resident_id=resident.id,
            response_key=svc.response_key(resident.pseudonym, round_.id),
            area_code=resident.area_code,
            neighbourhood_code=resident.neighbourhood_code,
            language=survey_language(engine.survey, lang),
            state=state,
            now=now,
        )
    step = engine.current(existing.state)
    if isinstance(step, Ask):
        plan.messages.append(ask(svc, engine, existing, step, ticks_for(resident, step)))
    else:
        response_store.complete(existing, now)
        plan.send(thanks(svc, lang))


def thanks(svc: Services, lang: str) -> str:
    """The closing word: thanks, how results are shared, and where to go in an emergency."""
    return svc.text(lang, "survey.thanks") + "\n\n" + svc.text(lang, "safety")


def ticks_for(resident: Resident, step: Ask) -> list[str]:
    """The options ticked so far on a multiple-choice question (kept in the resident's flow)."""
    ticks = (resident.flow or {}).get("ticks") or {}
    if ticks.get("question") == step.question.id:
        return list(ticks.get("selected") or [])
    return []


def apply_step(
    svc: Services,
    session: Session,
    resident: Resident,
    response: Response,
    engine: Engine,
    before: Ask,
    step: Step,
    now: datetime,
    plan: Plan,
    *,
    answered_label: str | None,
    question_message_id: int | None,
    text_language: str | None = None,
    typed: bool = False,
) -> None:
    """Store what an engine step changed (answers and state) and plan the replies.

    An answer that is not accepted is explained: after a typed message together with the
    question and its buttons again (an earlier copy may never have arrived), after a tap in a
    message of its own.
    """
    lang = response.language
    if isinstance(step, Invalid):
        message = svc.text(survey_language(engine.survey, lang), step.code, **step.params)
        if typed:
            plan.messages.append(
                ask(svc, engine, response, before, ticks_for(resident, before), lead=message)
            )
        else:
            plan.notice, plan.alert = message, True
        return
    old_answers = dict(response.state.get("answers") or {})
    new_answers = dict(step.state.get("answers") or {})
    for question_id, value in new_answers.items():
        if question_id not in old_answers or old_answers[question_id] != value:
            question = engine.survey.question(question_id)
            response_store.save_answer(
                session,
                response,
                question_id=question_id,
                item_code=question.item,
                value=value,
                text_language=text_language if question.type == "text" else None,
                now=now,
                replaces=question_id in old_answers,
            )
    response_store.delete_answers(
        session, response, [qid for qid in old_answers if qid not in new_answers]
    )
    response_store.set_state(response, step.state, now)
    if "ticks" in (resident.flow or {}):
        flow = dict(resident.flow)
        flow.pop("ticks")
        resident.flow = flow
    if question_message_id is not None and answered_label is not None:
        plan.edits.append(
            Edit(question_message_id, record_text(svc, engine, before, lang, answered_label))
        )
    if isinstance(step, Done):
        response_store.complete(response, now)
        plan.send(thanks(svc, lang))
    elif isinstance(step, Ask):
        plan.messages.append(ask(svc, engine, response, step))
