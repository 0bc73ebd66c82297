"""Handlers for residents in a private chat: consent, language, area, the survey, commands.

Every handler follows one pattern: inside one transaction, claim the update id (a repeat changes
nothing), apply the change and decide the replies; commit; only then talk to Telegram.
"""

from __future__ import annotations

import html
import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from handlers import callbacks as cb
from handlers.flow import (
    Edit,
    Plan,
    apply_step,
    area_confirmation,
    area_prompt,
    areas_of_municipality,
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
from handlers.services import Services, services
from locales.detection import Detection, decide_language, should_offer_switch
from storage import residents as resident_store
from storage import responses as response_store
from storage.models import Resident, Round
from surveys.areas import Ambiguous, Found, InFocusMunicipality, NotInFocusArea
from surveys.engine import Ask, Engine, Invalid, Step, answer_label

log = logging.getLogger(__name__)


def telegram_language(svc: Services, update: Update) -> str | None:
    """Telegram's language_code reduced to an offered language, if it names one."""
    user = update.effective_user
    code = (user.language_code or "").split("-")[0].lower() if user else ""
    return code if code in svc.offered_languages else None


async def perform(update: Update, context: ContextTypes.DEFAULT_TYPE, plan: Plan) -> None:
    """Carry out a plan after commit: answer the callback, edit, then send."""
    svc = services(context)
    query = update.callback_query
    if query is not None:
        await query.answer(plan.notice, show_alert=plan.alert)
    chat = update.effective_chat
    if chat is None:
        return
    for edit in plan.edits:
        try:
            await context.bot.edit_message_text(
                chat_id=chat.id,
                message_id=edit.message_id,
                text=edit.text,
                parse_mode=ParseMode.HTML,
                reply_markup=InlineKeyboardMarkup(edit.keyboard) if edit.keyboard else None,
            )
        except BadRequest as exc:
            # "message is not modified" or a message the resident deleted: the record is cosmetic.
            log.debug("edit skipped: %s", exc.message)
    for outgoing in plan.messages:
        sent: Message = await context.bot.send_message(
            chat_id=chat.id,
            text=outgoing.text,
            parse_mode=ParseMode.HTML,
            reply_markup=outgoing.markup,
        )
        if outgoing.question_of is not None:
            with svc.db.session() as session:
                response_store.set_question_message(session, outgoing.question_of, sent.message_id)


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
    plan = Plan()
    with svc.db.session() as session:
        if not _claim(svc, session, update):
            return
        resident = _resident(svc, session, update)
        if resident is None:
            # Nothing is stored before consent: the deep link rides along in the button.
            _intro(svc, plan, telegram_language(svc, update) or "nl", payload)
        else:
            resident.stopped_at = None
            if payload:
                _apply_deeplink(svc, resident, payload, plan)
            current_or_start(svc, session, resident, now, plan, welcome_back=True)
    await perform(update, context, plan)


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
    await update.effective_message.reply_html(  # type: ignore[union-attr]
        svc.text(lang, "help") + "\n\n" + svc.text(lang, "safety")
    )


async def privacy_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The privacy notice in full, and where to go in an emergency."""
    svc = services(context)
    lang = await _language_of(update, context)
    await update.effective_message.reply_html(  # type: ignore[union-attr]
        svc.text(lang, "privacy") + "\n\n" + svc.text(lang, "safety")
    )


async def _language_of(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    """The resident's language, or Telegram's, or Dutch (read only: nothing is stored)."""
    svc = services(context)
    user = update.effective_user
    if user is not None:
        with svc.db.session() as session:
            resident = resident_store.find_resident(session, svc.resident_key(user.id))
            if resident is not None and resident.language:
                return resident.language
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
    plan = Plan()
    with svc.db.session() as session:
        if not _claim(svc, session, update):
            return
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
    await perform(update, context, plan)


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any other command: say so kindly."""
    svc = services(context)
    lang = await _language_of(update, context)
    await update.effective_message.reply_text(svc.text(lang, "notice.unknown_command"))  # type: ignore[union-attr]


async def group_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start in a group: the resident flow only runs in private chats."""
    svc = services(context)
    await update.effective_message.reply_text(  # type: ignore[union-attr]
        svc.text(telegram_language(svc, update) or "nl", "notice.private_only")
    )


# ---- free text and other messages ------------------------------------------------------------


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A typed message: a postcode, or an answer to the current question."""
    svc = services(context)
    message = update.effective_message
    assert message is not None and message.text is not None
    text = message.text
    now = svc.clock.now()
    plan = Plan()
    with svc.db.session() as session:
        if not _claim(svc, session, update):
            return
        resident = _resident(svc, session, update)
        if resident is None:
            # Nothing is stored before consent; answer in the language the person wrote in.
            detected = svc.detector.detect(text).language
            lang = telegram_language(svc, update) or detected or "nl"
            if detected in svc.offered_languages and not telegram_language(svc, update):
                lang = detected
            _intro(svc, plan, lang, payload="", source="detected" if lang == detected else "")
        else:
            lang = resident.language or "nl"
            # Once per message: for the switch offer and the language stored with free text.
            detection = svc.detector.detect(text)
            step_name = (resident.flow or {}).get("step")
            if resident.area_code is None or step_name == "area":
                _postcode(svc, session, resident, text, now, plan)
            elif step_name == "language":
                plan.messages.append(language_prompt(svc, resident))
            else:
                response = response_store.response_in_progress(session, resident.id)
                if response is None:
                    current_or_start(svc, session, resident, now, plan)
                else:
                    engine = engine_for(svc, session, response.survey_version_id)
                    before = engine.current(response.state)
                    round_ = session.get(Round, response.round_id)
                    if round_ is not None and not round_is_open(round_, now):
                        response.status = "closed"
                        plan.send(svc.text(lang, "survey.round_closed"))
                    elif isinstance(before, Ask):
                        text_lang = None
                        if before.question.type == "text":
                            text_lang = str(detection.stored)
                        step = engine.answer(response.state, text)
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
                            question_message_id=response.question_message_id,
                            text_language=text_lang,
                        )
                        if plan.notice and not plan.messages:
                            plan.send(plan.notice)
                        plan.notice = None
            # After the answer: a resident who clearly writes another language may switch.
            _offer_switch(svc, resident, detection, plan)
    await perform(update, context, plan)


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
    """Stickers, photos, voice, locations...: a polite prompt; nothing changes."""
    svc = services(context)
    lang = await _language_of(update, context)
    await update.effective_message.reply_text(svc.text(lang, "notice.media"))  # type: ignore[union-attr]


# ---- buttons --------------------------------------------------------------------------------


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every inline button of the resident flow."""
    svc = services(context)
    query = update.callback_query
    assert query is not None
    data = cb.decode(query.data)
    if data is None:
        lang = await _language_of(update, context)
        await query.answer(svc.text(lang, "notice.old_version"), show_alert=True)
        return
    now = svc.clock.now()
    plan = Plan()
    with svc.db.session() as session:
        if not _claim(svc, session, update):
            await query.answer()
            return
        resident = _resident(svc, session, update)
        if data.kind == "c":
            _consent(svc, session, update, resident, data, now, plan)
        elif resident is None:
            plan.notice = svc.text(telegram_language(svc, update) or "nl", "notice.need_start")
            plan.alert = True
        else:
            message_id = query.message.message_id if query.message else None
            _button(svc, session, resident, data, message_id, now, plan)
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
        _question_button(svc, session, resident, data, message_id, now, plan)
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
) -> None:
    """A tap on a question's button: answer, tick, back, skip or done."""
    lang = resident.language or "nl"
    try:
        round_id = int(data.arg(0))
    except ValueError:
        plan.notice = svc.text(lang, "notice.old_version")
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
            shown = engine.current(response.state)
            if isinstance(shown, Ask):
                plan.edits.append(
                    Edit(message_id, _strip(svc, engine, shown, response.language, marker="—"))
                )
        return
    if response is None or response.status != "started":
        plan.notice = svc.text(lang, "notice.stale_button")
        return
    engine = engine_for(svc, session, response.survey_version_id)
    before = engine.current(response.state)
    if not isinstance(before, Ask) or before.question.id != question_id:
        plan.notice = svc.text(lang, "notice.stale_button")
        return
    if message_id is not None and response.question_message_id not in (None, message_id):
        # A button on an older copy of this question (e.g. before a restart re-sent it).
        plan.notice = svc.text(lang, "notice.stale_button")
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


def _strip(
    svc: Services, engine: Engine, step: Ask, lang: str, full: bool = False, marker: str = "↩"
) -> str:
    """The question text without buttons (after going back), or in full for a re-render."""
    text = question_text(svc, engine, step, lang)
    return text if full else "\n".join(text.split("\n")[:2]) + "\n" + marker
