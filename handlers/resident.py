"""Handlers for residents in a private chat: consent, language, area, the survey, commands.

Every handler follows one pattern: inside one transaction, claim the update id (a repeat changes
nothing), apply the change and decide the replies; commit; only then talk to Telegram.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from datetime import datetime, timedelta

from sqlalchemy.orm import Session
from telegram import InlineKeyboardButton, Message, Update
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from handlers.flow import (
    Edit,
    Plan,
    apply_step,
    area_confirmation,
    area_prompt,
    areas_of_municipality,
    ask,
    current_or_start,
    engine_for,
    language_prompt,
    neighbourhood_prompt,
    question_keyboard,
    question_text,
    round_is_open,
    set_area,
    survey_language,
    ticks_for,
)
from handlers.replies import answer_query, perform, reply
from handlers.services import Services, services
from journey import wire as cb
from locales.detection import Detection, decide_language, should_offer_switch
from storage import residents as resident_store
from storage import responses as response_store
from storage.models import Resident, Response, Round
from surveys.areas import Ambiguous, Found, InFocusMunicipality, NotInFocusArea
from surveys.engine import Ask, Engine, Invalid, Step, answer_label

log = logging.getLogger(__name__)


def telegram_language(svc: Services, update: Update) -> str | None:
    """Telegram's language_code reduced to an offered language, if it names one."""
    user = update.effective_user
    code = (user.language_code or "").split("-")[0].lower() if user else ""
    return code if code in svc.offered_languages else None


def _claim(svc: Services, session: Session, update: Update) -> bool:
    return resident_store.claim_update(session, update.update_id, svc.clock.now())


def _resident(svc: Services, session: Session, update: Update) -> Resident | None:
    user = update.effective_user
    if user is None:
        return None
    resident = resident_store.find_resident(session, svc.resident_key(user.id), lock=True)
    if resident is not None:
        now = svc.clock.now()
        # Hourly precision is enough for retention, and spares a write on every tap.
        if now - resident.last_seen_at > timedelta(hours=1):
            resident.last_seen_at = now
    return resident


# ---- commands -------------------------------------------------------------------------------


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Begin (intro, privacy notice, consent) or continue where the resident was."""
    svc = services(context)
    payload = context.args[0] if context.args else ""
    now = svc.clock.now()

    def work(session: Session) -> Plan:
        plan = Plan()
        if not _claim(svc, session, update):
            return plan
        resident = _resident(svc, session, update)
        if resident is None:
            # Nothing is stored before consent: the deep link rides along in the button.
            _intro(svc, plan, telegram_language(svc, update) or "nl", payload)
        else:
            resident.stopped_at = None
            if payload:
                _apply_deeplink(svc, resident, payload, plan)
            current_or_start(svc, session, resident, now, plan, welcome_back=True)
        return plan

    await perform(update, context, await svc.db.run(work))


def _intro(svc: Services, plan: Plan, lang: str, payload: str, source: str = "") -> None:
    """Who we are, the privacy notice and the consent button (the deep link and language ride along)."""
    try:
        data = cb.encode("c", payload, lang, source)
    except cb.CallbackTooLong:
        data = cb.encode("c", "", lang, source)
    plan.send(svc.text(lang, "intro"))
    plan.send(
        svc.text(lang, "consent.notice"),
        [[InlineKeyboardButton(svc.text(lang, "consent.button"), callback_data=data)]],
    )


def _offer_switch(svc: Services, resident: Resident, detection: Detection, plan: Plan) -> None:
    """Offer once, with one tap, the language a resident clearly writes in."""
    if resident.language_switch_offered:
        return
    offer = should_offer_switch(
        current=resident.language or "nl",
        source=resident.language_source or "default",
        detection=detection,
        already_offered=resident.language_switch_offered,
    )
    if offer is None or offer not in svc.offered_languages:
        return
    resident.language_switch_offered = True
    name = svc.text(offer, "language.name")
    plan.send(
        svc.text(offer, "language.switch_offer", language=name),
        [
            [
                InlineKeyboardButton(
                    svc.text(offer, "language.switch_yes", language=name),
                    callback_data=cb.encode("ls", offer),
                )
            ],
            [
                InlineKeyboardButton(
                    svc.text(resident.language, "language.switch_no"), callback_data=cb.encode("lx")
                )
            ],
        ],
    )


def _apply_deeplink(svc: Services, resident: Resident, payload: str, plan: Plan) -> None:
    """A poster's QR code names an area or neighbourhood: take it as where the resident lives."""
    resolved = svc.areas.resolve_deeplink(payload)
    if resolved is None:
        return
    area, hood = resolved
    if hood is None and resident.area_code == area.code and resident.neighbourhood_code:
        return
    set_area(resident, area.code, hood.code if hood else None)
    resident_store.set_flow(resident, step=None)
    plan.send(area_confirmation(svc, resident))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """What the bot does, its commands, and where to go in an emergency."""
    svc = services(context)
    lang = await _language_of(update, context)
    await reply(update, context, svc.text(lang, "help") + "\n\n" + svc.text(lang, "safety"))


async def privacy_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The privacy notice in full, and where to go in an emergency."""
    svc = services(context)
    lang = await _language_of(update, context)
    await reply(update, context, svc.text(lang, "privacy") + "\n\n" + svc.text(lang, "safety"))


async def _language_of(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    """The resident's language, or Telegram's, or Dutch (read only: nothing is stored)."""
    svc = services(context)
    user = update.effective_user
    if user is not None:
        key = svc.resident_key(user.id)

        def language(session: Session) -> str | None:
            resident = resident_store.find_resident(session, key)
            return resident.language if resident is not None else None

        stored = await svc.db.run(language)
        if stored:
            return stored
    return telegram_language(svc, update) or "nl"


async def language_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Offer the languages again."""
    await _resident_command(update, context, "language")


async def area_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Change neighbourhood; past answers keep the neighbourhood they were given in."""
    await _resident_command(update, context, "area")


async def stop_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """No more invitations; answers are kept."""
    await _resident_command(update, context, "stop")


async def forget_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Ask for confirmation before erasing everything about the resident."""
    await _resident_command(update, context, "forget")


async def _resident_command(update: Update, context: ContextTypes.DEFAULT_TYPE, name: str) -> None:
    svc = services(context)
    now = svc.clock.now()

    def work(session: Session) -> Plan:
        plan = Plan()
        if not _claim(svc, session, update):
            return plan
        resident = _resident(svc, session, update)
        lang = (
            resident.language
            if resident and resident.language
            else (telegram_language(svc, update) or "nl")
        )
        if resident is None:
            plan.send(svc.text(lang, "forget.nothing" if name == "forget" else "notice.need_start"))
        elif name == "language":
            plan.messages.append(language_prompt(svc, resident))
        elif name == "area":
            resident_store.set_flow(resident, step="area")
            plan.messages.append(area_prompt(svc, lang))
        elif name == "stop":
            resident.stopped_at = now
            plan.send(svc.text(lang, "stop.done"))
        elif name == "forget":
            plan.send(
                svc.text(lang, "forget.confirm"),
                [
                    [
                        InlineKeyboardButton(
                            svc.text(lang, "forget.erase"), callback_data=cb.encode("f", "y")
                        )
                    ],
                    [
                        InlineKeyboardButton(
                            svc.text(lang, "forget.keep"), callback_data=cb.encode("f", "n")
                        )
                    ],
                ],
            )
        return plan

    await perform(update, context, await svc.db.run(work))


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any other command: say so kindly."""
    svc = services(context)
    lang = await _language_of(update, context)
    await reply(update, context, svc.text(lang, "notice.unknown_command"))


async def group_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start in a group: the resident flow only runs in private chats."""
    svc = services(context)
    await reply(
        update, context, svc.text(telegram_language(svc, update) or "nl", "notice.private_only")
    )


# ---- free text and other messages ------------------------------------------------------------


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A typed message: a postcode, or an answer to the current question."""
    svc = services(context)
    message = update.effective_message
    assert message is not None and message.text is not None
    text = message.text
    now = svc.clock.now()

    def work(session: Session) -> Plan:
        plan = Plan()
        if not _claim(svc, session, update):
            return plan
        resident = _resident(svc, session, update)
        if resident is None:
            # Nothing is stored before consent; answer in the language the person wrote in.
            detected = svc.detector.detect(text).language
            lang = telegram_language(svc, update) or detected or "nl"
            if detected in svc.offered_languages and not telegram_language(svc, update):
                lang = detected
            _intro(svc, plan, lang, payload="", source="detected" if lang == detected else "")
            return plan
        # Once per message: for the switch offer and the language stored with free text.
        detection = svc.detector.detect(text)
        step_name = (resident.flow or {}).get("step")
        if resident.area_code is None or step_name == "area":
            _postcode(svc, session, resident, text, now, plan)
        elif step_name == "language":
            plan.messages.append(language_prompt(svc, resident))
        else:
            _typed_answer(svc, session, resident, text, str(detection.stored), now, plan)
        # After the answer: a resident who clearly writes another language may switch.
        _offer_switch(svc, resident, detection, plan)
        return plan

    await perform(update, context, await svc.db.run(work))


def _typed_answer(
    svc: Services,
    session: Session,
    resident: Resident,
    text: str,
    text_language: str,
    now: datetime,
    plan: Plan,
) -> None:
    """A typed message during the survey: the answer to the current question, or a reprompt."""
    lang = resident.language or "nl"
    response = response_store.response_in_progress(session, resident.id)
    if response is None:
        current_or_start(svc, session, resident, now, plan)
        return
    engine = engine_for(svc, session, response.survey_version_id)
    before = engine.current(response.state)
    round_ = session.get(Round, response.round_id)
    if round_ is not None and not round_is_open(round_, now):
        response.status = "closed"
        plan.send(svc.text(lang, "survey.round_closed"))
    elif isinstance(before, Ask):
        step = engine.answer(response.state, text)
        lost = response_store.question_lost(response)
        apply_step(
            svc,
            session,
            resident,
            response,
            engine,
            before,
            step,
            now,
            plan,
            answered_label=_label(engine, before, step, lang),
            question_message_id=None if lost else response.question_message_id,
            text_language=text_language if before.question.type == "text" else None,
            typed=True,
        )


def _label(engine: Engine, before: Ask, step: Step, lang: str) -> str | None:
    """How the answer just given reads in the chat record (None when it was not accepted)."""
    if isinstance(step, Invalid):
        return None
    answers = dict(step.state.get("answers") or {})
    value = answers.get(before.question.id)
    if value is None:
        return None
    return str(answer_label(before.question, value, survey_language(engine.survey, lang)))


def _postcode(
    svc: Services, session: Session, resident: Resident, text: str, now: datetime, plan: Plan
) -> None:
    """Look up a typed postcode and move on, or ask which neighbourhood, or explain."""
    lang = resident.language or "nl"
    result = svc.areas.lookup_postcode(text)
    if isinstance(result, Found):
        set_area(resident, result.area.code, result.neighbourhood.code)
        resident_store.set_flow(resident, step=None)
        plan.send(area_confirmation(svc, resident))
        current_or_start(svc, session, resident, now, plan)
    elif isinstance(result, Ambiguous):
        hoods = list(result.neighbourhoods)
        area = result.area or svc.areas.get(hoods[0].area_code)
        plan.messages.append(
            neighbourhood_prompt(
                svc,
                lang,
                area,
                hoods,
                key="area.ambiguous",
                outside=result.partly_outside,
                pc4=result.pc4,
            )
        )
    elif isinstance(result, InFocusMunicipality):
        # A PC4 of a focus municipality that the area data does not place: ask, don't refuse.
        names = ", ".join(area.name for area in result.areas)
        plan.messages.append(
            neighbourhood_prompt(
                svc,
                lang,
                result.areas[0],
                list(result.neighbourhoods),
                key="area.in_municipality",
                outside=True,
                pc4=result.pc4,
                municipality=html.escape(result.municipality.name),
                areas=html.escape(names),
            )
        )
    elif isinstance(result, NotInFocusArea):
        plan.messages.append(area_prompt(svc, lang, "area.not_in_focus", pc4=result.pc4))
    else:
        plan.messages.append(area_prompt(svc, lang, "area.invalid"))


async def on_other_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, photos, voice, locations...: a polite prompt with the current question again."""
    svc = services(context)

    def work(session: Session) -> Plan:
        plan = Plan()
        if not _claim(svc, session, update):
            return plan
        resident = _resident(svc, session, update)
        lang = (resident.language if resident else None) or telegram_language(svc, update) or "nl"
        notice = svc.text(lang, "notice.media")
        if resident is None or not _reprompt(svc, session, resident, notice, plan):
            plan.send(notice)
        return plan

    await perform(update, context, await svc.db.run(work))


def _reprompt(svc: Services, session: Session, resident: Resident, lead: str, plan: Plan) -> bool:
    """`lead`, then the current question with its buttons again; False when none is open."""
    if (resident.flow or {}).get("step") or resident.area_code is None:
        return False
    response = response_store.response_in_progress(session, resident.id)
    if response is None:
        return False
    engine = engine_for(svc, session, response.survey_version_id)
    current = engine.current(response.state)
    if not isinstance(current, Ask):
        return False
    plan.messages.append(
        ask(svc, engine, response, current, ticks_for(resident, current), lead=lead)
    )
    return True


# ---- buttons --------------------------------------------------------------------------------


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every inline button of the resident flow."""
    svc = services(context)
    query = update.callback_query
    assert query is not None
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE:
        # Resident buttons live in private chats: a tap anywhere else (a forged one, an inline
        # message) must not consent, answer or erase for anyone.
        lang = telegram_language(svc, update) or "nl"
        await answer_query(update, svc.text(lang, "notice.private_only"), alert=True)
        return
    data = cb.decode(query.data)
    if data is None:
        lang = await _language_of(update, context)
        await answer_query(update, svc.text(lang, "notice.old_version"), alert=True)
        return
    # The spinner stops at once, while the answer is stored: notices that matter come as a
    # message after the work (a callback can be answered only once).
    answered = asyncio.ensure_future(answer_query(update))
    now = svc.clock.now()
    message_id = query.message.message_id if query.message else None
    # The tapped message as the resident sees it: a stale question is turned into its record.
    shown = (
        query.message.text_html
        if isinstance(query.message, Message) and query.message.text
        else None
    )

    def work(session: Session) -> Plan:
        plan = Plan()
        if not _claim(svc, session, update):
            return plan
        resident = _resident(svc, session, update)
        if data.kind == "c":
            _consent(svc, session, update, resident, data, now, plan)
        elif resident is None:
            plan.notice = svc.text(telegram_language(svc, update) or "nl", "notice.need_start")
            plan.alert = True
        else:
            _button(svc, session, resident, data, message_id, now, plan, shown)
        return plan

    try:
        plan = await svc.db.run(work)
    finally:
        await answered
    if plan.alert and plan.notice:
        plan.send(plan.notice)
    await perform(update, context, plan)


def _consent(
    svc: Services,
    session: Session,
    update: Update,
    resident: Resident | None,
    data: cb.Callback,
    now: datetime,
    plan: Plan,
) -> None:
    """Consent given: only now is the resident stored."""
    payload, lang, source_hint = data.arg(0), data.arg(1), data.arg(2)
    query = update.callback_query
    assert query is not None and update.effective_user is not None and update.effective_chat
    if resident is not None:
        plan.notice = svc.text(resident.language, "notice.processed")
        return
    tg_lang = telegram_language(svc, update)
    shown_lang = lang if lang in svc.offered_languages else None
    language, source = decide_language(
        chosen=None,
        telegram_code=tg_lang,
        detected=None,
        offered=svc.offered_languages,
    )
    if shown_lang and shown_lang != language:
        # The intro was shown in the language the person wrote in: keep that.
        language, source = shown_lang, source_hint or "detected"
    resident = resident_store.create_resident(
        session,
        pseudonym=svc.resident_key(update.effective_user.id),
        chat_id=update.effective_chat.id,
        language=language,
        language_source=source,
        now=now,
    )
    resident_store.set_flow(resident, step="language")
    if query.message is not None:
        plan.edits.append(
            Edit(
                query.message.message_id,
                svc.text(resident.language, "consent.notice")
                + "\n\n✓ "
                + svc.text(resident.language, "consent.button"),
            )
        )
    if payload:
        resolved = svc.areas.resolve_deeplink(payload)
        if resolved is not None:
            area, hood = resolved
            set_area(resident, area.code, hood.code if hood else None)
    plan.notice = svc.text(resident.language, "consent.thanks")
    plan.messages.append(language_prompt(svc, resident))


def _button(
    svc: Services,
    session: Session,
    resident: Resident,
    data: cb.Callback,
    message_id: int | None,
    now: datetime,
    plan: Plan,
    shown: str | None = None,
) -> None:
    lang = resident.language or "nl"
    kind = data.kind
    if kind == "l":
        code = data.arg(0)
        if code in svc.offered_languages:
            resident.language = code
            resident.language_source = "chosen"
            _language_changed(svc, session, resident, now)
        _leave_language_step(svc, session, resident, message_id, now, plan)
    elif kind == "lc":
        _leave_language_step(svc, session, resident, message_id, now, plan)
    elif kind == "ls":
        code = data.arg(0)
        if code in svc.offered_languages:
            resident.language = code
            resident.language_source = "chosen"
            _language_changed(svc, session, resident, now)
            if message_id is not None:
                plan.edits.append(
                    Edit(
                        message_id,
                        svc.text(code, "language.changed", current=svc.text(code, "language.name")),
                    )
                )
            current_or_start(svc, session, resident, now, plan)
    elif kind == "lx":
        if message_id is not None:
            plan.edits.append(
                Edit(
                    message_id,
                    svc.text(lang, "language.changed", current=svc.text(lang, "language.name")),
                )
            )
    elif kind == "m":
        areas = areas_of_municipality(svc, data.arg(0))
        if len(areas) == 1:
            out = neighbourhood_prompt(svc, lang, areas[0])
        elif areas:
            rows = [
                [InlineKeyboardButton(a.name, callback_data=cb.encode("a", a.code))] for a in areas
            ]
            rows.append(
                [InlineKeyboardButton(svc.text(lang, "area.back"), callback_data=cb.encode("ab"))]
            )
            out = area_prompt(svc, lang, "area.pick_area", municipality=areas[0].municipality)
            out.keyboard = rows
        else:
            out = area_prompt(svc, lang)
        if message_id is not None:
            plan.edits.append(Edit(message_id, out.text, out.keyboard))
        else:
            plan.messages.append(out)
    elif kind == "a":
        area = svc.areas.get(data.arg(0))
        if area is not None and message_id is not None:
            out = neighbourhood_prompt(svc, lang, area)
            plan.edits.append(Edit(message_id, out.text, out.keyboard))
    elif kind == "ab":
        # "ab|x": "none of these" after a postcode question; say whom the survey is for.
        out = area_prompt(svc, lang, "area.outside_focus" if data.arg(0) == "x" else "area.prompt")
        if message_id is not None:
            plan.edits.append(Edit(message_id, out.text, out.keyboard))
    elif kind in ("n", "n0"):
        if kind == "n":
            found = svc.areas.neighbourhood(data.arg(0))
            if found is None:
                return
            area, hood = found
            area_code, hood_code = area.code, hood.code
        else:
            area_found = svc.areas.get(data.arg(0))
            if area_found is None:
                return
            area_code, hood_code = area_found.code, None
        changed = resident.area_code is not None
        set_area(resident, area_code, hood_code)
        resident_store.set_flow(resident, step=None)
        if message_id is not None:
            plan.edits.append(Edit(message_id, area_confirmation(svc, resident, changed=changed)))
        current_or_start(svc, session, resident, now, plan)
    elif kind == "q":
        _question_button(svc, session, resident, data, message_id, now, plan, shown)
    elif kind == "s":
        # An invitation's button: a round that has closed since says so instead of starting.
        invited = session.get(Round, int(data.arg(0))) if data.arg(0).isdigit() else None
        if invited is not None and not invited.standing and not round_is_open(invited, now):
            plan.send(svc.text(lang, "rounds.invitation.closed"))
        else:
            current_or_start(svc, session, resident, now, plan)
    elif kind == "f":
        if data.arg(0) == "y":
            resident_store.forget_resident(session, resident)
            if message_id is not None:
                plan.edits.append(Edit(message_id, svc.text(lang, "forget.done")))
        elif message_id is not None:
            plan.edits.append(Edit(message_id, svc.text(lang, "forget.cancelled")))
    else:
        plan.notice = svc.text(lang, "notice.old_version")
        plan.alert = True


def _language_changed(svc: Services, session: Session, resident: Resident, now: datetime) -> None:
    """An unfinished survey continues in the new language when the survey offers it."""
    response = response_store.response_in_progress(session, resident.id)
    if response is not None:
        engine = engine_for(svc, session, response.survey_version_id)
        response.language = survey_language(engine.survey, resident.language)


def _leave_language_step(
    svc: Services,
    session: Session,
    resident: Resident,
    message_id: int | None,
    now: datetime,
    plan: Plan,
) -> None:
    lang = resident.language or "nl"
    resident_store.set_flow(resident, step=None)
    if message_id is not None:
        plan.edits.append(
            Edit(
                message_id,
                svc.text(lang, "language.changed", current=svc.text(lang, "language.name")),
            )
        )
    current_or_start(svc, session, resident, now, plan)


def _question_button(
    svc: Services,
    session: Session,
    resident: Resident,
    data: cb.Callback,
    message_id: int | None,
    now: datetime,
    plan: Plan,
    shown: str | None = None,
) -> None:
    """A tap on a question's button: answer, tick, back, skip or done."""
    lang = resident.language or "nl"
    try:
        round_id = int(data.arg(0))
    except ValueError:
        plan.notice, plan.alert = svc.text(lang, "notice.old_version"), True
        return
    question_id, option = data.arg(1), data.arg(2)
    found = response_store.response_with_round(session, round_id, resident.id, lock=True)
    response, round_ = found if found is not None else (None, None)
    if (
        response is not None
        and response.status in ("started", "closed")
        and round_ is not None
        and not round_is_open(round_, now)
    ):
        # The round closed mid-survey: the answers given are kept, the buttons go.
        if response.status == "started":
            # The first the resident hears of it (the round tick may have told them already).
            plan.send(svc.text(lang, "survey.round_closed"))
        response.status = "closed"
        plan.notice = svc.text(lang, "survey.round_closed")
        if message_id is not None:
            engine = engine_for(svc, session, response.survey_version_id)
            current = engine.current(response.state)
            if isinstance(current, Ask):
                plan.edits.append(
                    Edit(message_id, _strip(svc, engine, current, response.language, marker="—"))
                )
        return
    if response is None:
        plan.notice = svc.text(lang, "notice.stale_button")
        return
    if response.status != "started":
        # A question of a survey already finished: its message shows the answer given.
        engine = engine_for(svc, session, response.survey_version_id)
        _stale(svc, plan, lang, message_id, shown, _answered(engine, response, question_id))
        return
    engine = engine_for(svc, session, response.survey_version_id)
    before = engine.current(response.state)
    lost = response_store.question_lost(response)
    if not isinstance(before, Ask) or before.question.id != question_id:
        # Never strip a copy of the current question (the data did not match the message).
        asked = _strip(svc, engine, before, response.language) if isinstance(before, Ask) else ""
        if not shown or _plain(_head(shown)) != _plain(_head(asked)):
            _stale(svc, plan, lang, message_id, shown, _answered(engine, response, question_id))
        if lost and isinstance(before, Ask):
            # The message with the current question never arrived: this tap on an older one
            # is how the resident says "what now?". Ask it again.
            plan.messages.append(ask(svc, engine, response, before, ticks_for(resident, before)))
        return
    if (
        message_id is not None
        and not lost
        and response.question_message_id not in (None, message_id)
    ):
        # A button on an older copy of this text question (e.g. before a restart re-sent it).
        _stale(svc, plan, lang, message_id, shown, None)
        return
    question = before.question
    if option == cb.BACK:
        step = engine.back(response.state)
        if message_id is not None:
            plan.edits.append(Edit(message_id, _strip(svc, engine, before, response.language)))
        apply_step(
            svc,
            session,
            resident,
            response,
            engine,
            before,
            step,
            now,
            plan,
            answered_label=None,
            question_message_id=None,
        )
        return
    if option == cb.SKIP:
        step = engine.skip(response.state)
        label = (
            svc.text(survey_language(engine.survey, response.language), "survey.skipped")
            if svc.catalogue.has(response.language, "survey.skipped")
            else svc.text("nl", "survey.skipped")
        )
        apply_step(
            svc,
            session,
            resident,
            response,
            engine,
            before,
            step,
            now,
            plan,
            answered_label=label,
            question_message_id=message_id,
        )
        return
    if question.type == "multi" and option != cb.DONE:
        ticked = ticks_for(resident, before)
        ticked = [o for o in ticked if o != option] if option in ticked else [*ticked, option]
        resident_store.set_flow(resident, ticks={"question": question.id, "selected": ticked})
        if message_id is not None:
            keyboard = question_keyboard(
                svc, engine, before, response.language, response.round_id or 0, ticked
            )
            plan.edits.append(
                Edit(
                    message_id, _strip(svc, engine, before, response.language, full=True), keyboard
                )
            )
        return
    value: object = ticks_for(resident, before) if question.type == "multi" else option
    step = engine.answer(response.state, value)
    apply_step(
        svc,
        session,
        resident,
        response,
        engine,
        before,
        step,
        now,
        plan,
        answered_label=_label(engine, before, step, lang),
        question_message_id=message_id,
    )


def _answered(engine: Engine, response: Response, question_id: str) -> str | None:
    """How the stored answer to `question_id` reads, if it was answered."""
    value = (response.state.get("answers") or {}).get(question_id)
    if value is None:
        return None
    try:
        question = engine.survey.question(question_id)
    except KeyError:
        return None
    return str(answer_label(question, value, survey_language(engine.survey, response.language)))


def _head(question_html: str) -> str:
    """The progress line and the question of a question message."""
    return "\n".join(question_html.split("\n")[:2])


def _plain(text_html: str) -> str:
    """What the resident reads of some HTML (tags gone, entities resolved)."""
    return html.unescape(re.sub(r"<[^>]+>", "", text_html))


def _stale(
    svc: Services,
    plan: Plan,
    lang: str,
    message_id: int | None,
    shown: str | None,
    answer: str | None,
) -> None:
    """A button of an earlier question: that message loses its buttons and shows its answer.

    A double tap edits the message to what the first tap made of it, which changes nothing.
    """
    plan.notice = svc.text(lang, "notice.stale_button")
    if message_id is None or not shown:
        return
    head = _head(shown)
    if answer is not None:
        tail = svc.text(lang, "survey.answer_record", answer=html.escape(answer))
    else:
        tail = "<i>" + svc.text(lang, "notice.stale_button") + "</i>"
    plan.edits.append(Edit(message_id, head + "\n" + tail))


def _strip(
    svc: Services, engine: Engine, step: Ask, lang: str, full: bool = False, marker: str = "↩"
) -> str:
    """The question text without buttons (after going back), or in full for a re-render."""
    text = question_text(svc, engine, step, lang)
    return text if full else "\n".join(text.split("\n")[:2]) + "\n" + marker
