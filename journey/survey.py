"""The survey part of the journey: start or continue a response, answers typed or tapped."""

from __future__ import annotations

import html
import re

from journey import wire
from journey.actions import AnswerButton
from journey.model import (
    AREA_CONFIRM_STEP,
    AREA_STEP,
    LANGUAGE_STEP,
    QUESTION_LOST,
    Context,
    Edit,
    Outcome,
    ResidentState,
    ResponseState,
    World,
)
from journey.prompts import area_prompt, deeplink_check, language_prompt
from journey.questions import (
    ask,
    exclusive_ticks,
    head,
    pages,
    question_keyboard,
    question_text,
    record_text,
    stripped,
    survey_language,
    thanks,
)
from surveys.engine import Ask, Done, Engine, Invalid, Step, answer_label


def ticks_for(resident: ResidentState, step: Ask) -> tuple[list[str], int]:
    """The options ticked so far on a multiple-choice question, and the page shown."""
    ticks = resident.ticks or {}
    if ticks.get("question") == step.question.id:
        return list(ticks.get("selected") or []), int(ticks.get("page") or 0)
    return [], 0


def ask_current(
    ctx: Context,
    resident: ResidentState,
    engine: Engine,
    response: ResponseState,
    step: Ask,
    out: Outcome,
    lead: str | None = None,
) -> None:
    """Ask the current question (with the ticks and page so far)."""
    ticked, page = ticks_for(resident, step)
    out.sends.append(ask(ctx, engine, response, step, ticked, page=page, lead=lead))


def current_or_start(
    ctx: Context,
    world: World,
    resident: ResidentState,
    out: Outcome,
    *,
    welcome_back: bool = False,
) -> None:
    """Show the resident what comes next: language, area, the current question, or a last word."""
    lang = resident.language
    if resident.step == LANGUAGE_STEP:
        out.sends.append(language_prompt(ctx, resident))
        return
    if resident.step == AREA_CONFIRM_STEP:
        out.sends.append(deeplink_check(ctx, resident))
        return
    if resident.area_code is None or resident.step == AREA_STEP:
        out.sends.append(area_prompt(ctx, lang))
        return
    response = world.response_in_progress()
    if response is not None:
        engine = world.engine(response.survey_version_id)
        current = engine.current(response.state)
        if isinstance(current, Ask):
            ask_current(
                ctx,
                resident,
                engine,
                response,
                current,
                out,
                lead=ctx.text(lang, "survey.welcome_back") if welcome_back else None,
            )
            return
    round_ = world.round_for_area(resident.area_code)
    if round_ is None:
        out.send(ctx.text(lang, "survey.no_round"))
        return
    existing = world.response_for(round_.id)
    if existing is not None and existing.status != "started":
        out.send(ctx.text(lang, "survey.already_done"))
        return
    engine = world.engine(round_.survey_version_id)
    if existing is None:
        existing = world.start_response(
            round_,
            ResponseState(
                round_id=round_.id,
                survey_version_id=round_.survey_version_id,
                status="started",
                language=survey_language(engine.survey, lang),
                state=engine.start(),
                round_open=round_.open,
                area_code=resident.area_code,
                neighbourhood_code=resident.neighbourhood_code,
            ),
        )
        # The survey's own introduction, in the resident's language, before its first question.
        out.send(html.escape(engine.survey.text(engine.survey.intro, existing.language)))
    current = engine.current(existing.state)
    if isinstance(current, Ask):
        ask_current(ctx, resident, engine, existing, current, out)
    else:
        existing.status = "completed"
        out.send(thanks(ctx, engine, existing.language))


def label_of(engine: Engine, before: Ask, step: Step, lang: str) -> str | None:
    """How the answer just given reads in the chat record (None when it was not accepted)."""
    if isinstance(step, Invalid):
        return None
    value = step.state.get("answers", {}).get(before.question.id)
    if value is None:
        return None
    return str(answer_label(before.question, value, survey_language(engine.survey, lang)))


def apply_step(
    ctx: Context,
    resident: ResidentState,
    response: ResponseState,
    engine: Engine,
    before: Ask,
    step: Step,
    out: Outcome,
    *,
    answered_label: str | None,
    question_message_id: int | None,
    text_language: str | None = None,
    typed: bool = False,
) -> None:
    """Take an engine step into the response and plan the replies.

    An answer that is not accepted is explained: after a typed message together with the
    question and its buttons again (an earlier copy may never have arrived), after a tap in a
    message of its own.
    """
    lang = response.language
    if isinstance(step, Invalid):
        message = ctx.text(survey_language(engine.survey, lang), step.code, **step.params)
        if typed:
            ask_current(ctx, resident, engine, response, before, out, lead=message)
        else:
            out.say(message)
        return
    response.state = dict(step.state)
    if text_language is not None and before.question.type == "text":
        response.text_language = text_language
    resident.ticks = None
    if question_message_id is not None and answered_label is not None:
        out.edits.append(
            Edit(question_message_id, record_text(ctx, engine, before, lang, answered_label))
        )
    if isinstance(step, Done):
        response.status = "completed"
        out.send(thanks(ctx, engine, lang))
    elif isinstance(step, Ask):
        ask_current(ctx, resident, engine, response, step, out)


def typed_answer(
    ctx: Context,
    world: World,
    resident: ResidentState,
    text: str,
    text_language: str,
    out: Outcome,
) -> None:
    """A typed message during the survey: the answer to the current question, or a reprompt."""
    response = world.response_in_progress()
    if response is None:
        current_or_start(ctx, world, resident, out)
        return
    engine = world.engine(response.survey_version_id)
    before = engine.current(response.state)
    if not response.round_open:
        response.status = "closed"
        out.send(ctx.text(resident.language, "survey.round_closed"))
    elif isinstance(before, Ask):
        step = engine.answer(response.state, text)
        lost = response.question_message_id == QUESTION_LOST
        apply_step(
            ctx,
            resident,
            response,
            engine,
            before,
            step,
            out,
            answered_label=label_of(engine, before, step, resident.language),
            question_message_id=(
                response.question_message_id
                if before.question.type == "text" and not lost
                else None
            ),
            text_language=text_language,
            typed=True,
        )


def reprompt(ctx: Context, world: World, resident: ResidentState, lead: str, out: Outcome) -> bool:
    """`lead`, then the current question with its buttons again; False when none is open."""
    if resident.step or resident.area_code is None:
        return False
    response = world.response_in_progress()
    if response is None:
        return False
    engine = world.engine(response.survey_version_id)
    current = engine.current(response.state)
    if not isinstance(current, Ask):
        return False
    ask_current(ctx, resident, engine, response, current, out, lead=lead)
    return True


def plain(text_html: str) -> str:
    """What the resident reads of some HTML (tags gone, entities resolved)."""
    return html.unescape(re.sub(r"<[^>]+>", "", text_html))


def answered(engine: Engine, response: ResponseState, question_id: str) -> str | None:
    """How the stored answer to `question_id` reads, if it was answered."""
    value = response.answers.get(question_id)
    if value is None:
        return None
    try:
        question = engine.survey.question(question_id)
    except KeyError:
        return None
    return str(answer_label(question, value, survey_language(engine.survey, response.language)))


def stale(
    ctx: Context,
    out: Outcome,
    lang: str,
    message_id: int | None,
    shown: str | None,
    answer: str | None,
) -> None:
    """A button of an earlier question: that message loses its buttons and shows its answer.

    A double tap edits the message to what the first tap made of it, which changes nothing.
    """
    out.notice = ctx.text(lang, "notice.stale_button")
    if message_id is None or not shown:
        return
    if answer is not None:
        tail = ctx.text(lang, "survey.answer_record", answer=html.escape(answer))
    else:
        tail = "<i>" + ctx.text(lang, "notice.stale_button") + "</i>"
    out.edits.append(Edit(message_id, head(shown) + "\n" + tail))


def question_button(
    ctx: Context,
    world: World,
    resident: ResidentState,
    tap: AnswerButton,
    message_id: int | None,
    shown: str | None,
    out: Outcome,
) -> None:
    """A tap on a question's button: answer, tick, page, back, skip or done."""
    lang = resident.language
    response = world.response_for(tap.round_id)
    if (
        response is not None
        and response.status in ("started", "closed")
        and not response.round_open
    ):
        # The round closed mid-survey: the answers given are kept, the buttons go.
        if response.status == "started":
            # The first the resident hears of it (the round tick may have told them already).
            out.send(ctx.text(lang, "survey.round_closed"))
        response.status = "closed"
        out.notice = ctx.text(lang, "survey.round_closed")
        if message_id is not None:
            engine = world.engine(response.survey_version_id)
            current = engine.current(response.state)
            if isinstance(current, Ask):
                out.edits.append(
                    Edit(message_id, stripped(ctx, engine, current, response.language, "—"))
                )
        return
    if response is None:
        out.notice = ctx.text(lang, "notice.stale_button")
        return
    engine = world.engine(response.survey_version_id)
    if response.status != "started":
        # A question of a survey already finished: its message shows the answer given.
        stale(ctx, out, lang, message_id, shown, answered(engine, response, tap.question_id))
        return
    before = engine.current(response.state)
    lost = response.question_message_id == QUESTION_LOST
    if not isinstance(before, Ask) or before.question.id != tap.question_id:
        # Never strip a copy of the current question (the data did not match the message).
        asked = stripped(ctx, engine, before, response.language) if isinstance(before, Ask) else ""
        if not shown or plain(head(shown)) != plain(head(asked)):
            stale(ctx, out, lang, message_id, shown, answered(engine, response, tap.question_id))
        if lost and isinstance(before, Ask):
            # The message with the current question never arrived: this tap on an older one
            # is how the resident says "what now?". Ask it again.
            ask_current(ctx, resident, engine, response, before, out)
        return
    if (
        message_id is not None
        and not lost
        # Only a text question's message id is remembered; on another question a leftover id
        # (stored late by another instance, after the text was answered) means nothing.
        and before.question.type == "text"
        and response.question_message_id not in (None, message_id)
    ):
        # A button on an older copy of this text question (e.g. before a restart re-sent it).
        stale(ctx, out, lang, message_id, shown, None)
        return
    _answer_tap(ctx, resident, engine, response, before, tap.option, message_id, out)


def _answer_tap(
    ctx: Context,
    resident: ResidentState,
    engine: Engine,
    response: ResponseState,
    before: Ask,
    option: str,
    message_id: int | None,
    out: Outcome,
) -> None:
    """The tap is on the current question: do what its button says."""
    question = before.question
    if option == wire.BACK:
        if message_id is not None:
            out.edits.append(Edit(message_id, stripped(ctx, engine, before, response.language)))
        step = engine.back(response.state)
        apply_step(
            ctx,
            resident,
            response,
            engine,
            before,
            step,
            out,
            answered_label=None,
            question_message_id=None,
        )
        return
    if option == wire.SKIP:
        ui = survey_language(engine.survey, response.language)
        ui = ui if ctx.catalogue.has(ui, "survey.skipped") else "nl"
        step = engine.skip(response.state)
        apply_step(
            ctx,
            resident,
            response,
            engine,
            before,
            step,
            out,
            answered_label=ctx.text(ui, "survey.skipped"),
            question_message_id=message_id,
        )
        return
    ticked, page = ticks_for(resident, before)
    if option.startswith(wire.PAGE) or (question.type == "multi" and option != wire.DONE):
        if option.startswith(wire.PAGE):
            digits = option[len(wire.PAGE) :]
            page = min(int(digits), pages(question) - 1) if digits.isdigit() else 0
        else:
            ticked = exclusive_ticks(question, ticked, option)
        resident.ticks = {"question": question.id, "selected": ticked, "page": page}
        if message_id is not None:
            keyboard = question_keyboard(
                ctx, engine, before, response.language, response.round_id, ticked, page
            )
            out.edits.append(
                Edit(message_id, question_text(ctx, engine, before, response.language), keyboard)
            )
        return
    value: object = ticked if question.type == "multi" else option
    step = engine.answer(response.state, value)
    apply_step(
        ctx,
        resident,
        response,
        engine,
        before,
        step,
        out,
        answered_label=label_of(engine, before, step, resident.language),
        question_message_id=message_id,
    )
