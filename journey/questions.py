"""A survey's questions as messages: progress, question, hint, buttons; records of answers."""

from __future__ import annotations

import html

from journey import actions as act
from journey import wire
from journey.model import Button, Context, Keyboard, ResponseState, Send
from surveys.engine import Ask, Engine
from surveys.schema import Question, Survey

# Options of a multiple-choice question shown at once; more go on pages (a tall keyboard pushes
# the question off a phone's screen).
PAGE_SIZE = 8
# Options in two columns when every label is this short.
SHORT_LABEL = 16


def survey_language(survey: Survey, lang: str | None) -> str:
    """The resident's language if the survey offers it, else the survey's first language."""
    return lang if lang in survey.languages else survey.languages[0]


def _ui(ctx: Context, lang: str, key: str) -> str:
    """The language for the bot's own words around a question (Dutch if it has none)."""
    return lang if ctx.catalogue.has(lang, key) else "nl"


def question_text(ctx: Context, engine: Engine, step: Ask, lang: str) -> str:
    """Progress, the question, and a hint for how to answer."""
    question = step.question
    lang = survey_language(engine.survey, lang)
    ui = _ui(ctx, lang, "survey.progress")
    # No total while it depends on answers still to come (the engine says when it is certain).
    progress = (
        ctx.text(ui, "survey.progress_open", number=step.number)
        if step.total is None
        else ctx.text(ui, "survey.progress", number=step.number, total=step.total)
    )
    parts = [
        f"<i>{progress}</i>",
        f"<b>{html.escape(question.text[lang])}</b>",
    ]
    if question.type == "text":
        parts.append(ctx.text(ui, "survey.type_answer", max_length=question.max_length))
    elif question.type == "multi":
        parts.append(ctx.text(ui, "survey.multi_hint"))
    if question.optional:
        parts.append(f"<i>{ctx.text(ui, 'survey.optional')}</i>")
    return "\n".join(parts)


def exclusive_ticks(question: Question, ticked: list[str], option: str) -> list[str]:
    """Ticks after tapping `option`: "none of these" clears the others, and the others clear it."""
    if option in ticked:
        return [o for o in ticked if o != option]
    nones = {o.id for o in question.options if o.none}
    if option in nones:
        return [option]
    return [o for o in ticked if o not in nones] + [option]


def pages(question: Question) -> int:
    """How many pages a question's options take."""
    count = len(question.options)
    return 1 if count <= PAGE_SIZE + 2 else -(-count // PAGE_SIZE)


def question_keyboard(
    ctx: Context,
    engine: Engine,
    step: Ask,
    lang: str,
    round_id: int,
    ticked: list[str],
    page: int = 0,
) -> Keyboard:
    """Buttons for a question: grades in two rows, options (paged when many), navigation last."""
    question = step.question
    lang = survey_language(engine.survey, lang)
    ui = _ui(ctx, lang, "survey.back")

    def button(label: str, option: str) -> Button:
        return Button(label, act.AnswerButton(round_id, question.id, option))

    rows: Keyboard = []
    if question.type == "grade":
        rows.append([button(str(n), str(n)) for n in range(1, 6)])
        rows.append([button(str(n), str(n)) for n in range(6, 11)])
    elif question.type != "text":
        count = pages(question)
        page = min(max(page, 0), count - 1)
        shown = (
            question.options
            if count == 1
            else question.options[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
        )
        buttons = []
        for option in shown:
            label = option.label[lang]
            if question.type == "multi":
                label = ("☑ " if option.id in ticked else "☐ ") + label
            buttons.append(button(label, option.id))
        short = all(len(option.label[lang]) <= SHORT_LABEL for option in shown)
        per_row = 2 if short and len(shown) > 4 else 1
        rows += [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]
        if count > 1:
            turn = []
            if page > 0:
                turn.append(button(ctx.text(ui, "survey.page_back"), f"{wire.PAGE}{page - 1}"))
            if page < count - 1:
                turn.append(button(ctx.text(ui, "survey.page_more"), f"{wire.PAGE}{page + 1}"))
            rows.append(turn)
        if question.type == "multi":
            rows.append([button(ctx.text(ui, "survey.done_button"), wire.DONE)])
    nav = []
    if step.number > 1:
        nav.append(button(ctx.text(ui, "survey.back"), wire.BACK))
    if question.optional:
        nav.append(button(ctx.text(ui, "survey.skip"), wire.SKIP))
    if nav:
        rows.append(nav)
    return rows


def ask(
    ctx: Context,
    engine: Engine,
    response: ResponseState,
    step: Ask,
    ticked: list[str] | None = None,
    *,
    page: int = 0,
    lead: str | None = None,
) -> Send:
    """The message that asks the current question of a response (after `lead`, if given).

    Only a free-text question needs its message id remembered (to edit it when the answer is
    typed); button questions get theirs from the tap, which spares a write per question.
    """
    is_text = step.question.type == "text"
    if not is_text:
        response.question_message_id = None  # also clears a "question lost" mark
    text = question_text(ctx, engine, step, response.language)
    keyboard = question_keyboard(
        ctx, engine, step, response.language, response.round_id, ticked or [], page
    )
    return Send(
        f"{lead}\n\n{text}" if lead else text,
        keyboard,
        asks=response.round_id,
        remember_id=is_text,
    )


def head(question_html: str) -> str:
    """The progress line and the question of a question message."""
    return "\n".join(question_html.split("\n")[:2])


def record_text(ctx: Context, engine: Engine, step: Ask, lang: str, answer: str) -> str:
    """A question turned into a record of its answer, buttons gone."""
    base = head(question_text(ctx, engine, step, lang))
    ui = _ui(ctx, survey_language(engine.survey, lang), "survey.answer_record")
    return base + "\n" + ctx.text(ui, "survey.answer_record", answer=html.escape(answer))


def stripped(ctx: Context, engine: Engine, step: Ask, lang: str, marker: str = "↩") -> str:
    """The question without its buttons (after going back, or when its round closed)."""
    return head(question_text(ctx, engine, step, lang)) + "\n" + marker


def thanks(ctx: Context, engine: Engine | None, lang: str) -> str:
    """The closing word: the survey's own thanks (or the bot's), and where to go in an emergency."""
    own = None
    if engine is not None and engine.survey.thanks:
        own = html.escape(engine.survey.text(engine.survey.thanks, lang))
    return (own or ctx.text(lang, "survey.thanks")) + "\n\n" + ctx.text(lang, "safety")
