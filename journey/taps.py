"""Taps on the journey's buttons: consent, language, where you live, questions, invitations,
reactions to an alliance's response."""

from __future__ import annotations

from journey import actions as act
from journey.model import (
    AREA_CONFIRM_STEP,
    AREA_STEP,
    LANGUAGE_STEP,
    Context,
    Edit,
    Outcome,
    Reaction,
    ResidentState,
    Send,
    Tap,
    World,
)
from journey.prompts import (
    area_choice,
    area_confirmation,
    area_prompt,
    areas_of_municipality,
    language_changed,
    language_prompt,
    neighbourhood_prompt,
)
from journey.questions import survey_language
from journey.survey import current_or_start, question_button
from locales.detection import decide_language


def move(resident: ResidentState, area_code: str, neighbourhood_code: str | None) -> None:
    """Where the resident lives now; responses keep the neighbourhood they were started in."""
    resident.area_code = area_code
    resident.neighbourhood_code = neighbourhood_code
    resident.step = None


def tap(
    ctx: Context, world: World, resident: ResidentState | None, given: Tap, out: Outcome
) -> None:
    """Do what the tapped button means."""
    action, message_id = given.action, given.message_id
    lang = resident.language if resident is not None else ctx.telegram_language or "nl"
    if action is None:
        out.say(ctx.text(lang, "notice.old_version"))
    elif isinstance(action, act.Consent):
        _consent(ctx, resident, action, message_id, out)
    elif isinstance(action, act.Decline):
        _decline(ctx, resident, action, message_id, out)
    elif resident is None:
        out.say(ctx.text(lang, "notice.need_start"))
    else:
        _resident_tap(ctx, world, resident, action, given, out)


def _already(ctx: Context, resident: ResidentState | None, out: Outcome) -> bool:
    """A consent button tapped again after the resident was stored: nothing to do."""
    if resident is not None:
        out.notice = ctx.text(resident.language, "notice.processed")
    return resident is not None


def _consent(
    ctx: Context,
    resident: ResidentState | None,
    given: act.Consent,
    message_id: int | None,
    out: Outcome,
) -> None:
    """Consent given: only now is the resident stored."""
    if _already(ctx, resident, out):
        return
    shown = given.language if given.language in ctx.offered_languages else None
    language, source = decide_language(
        chosen=None,
        telegram_code=ctx.telegram_language,
        detected=None,
        offered=ctx.offered_languages,
    )
    if shown and shown != language:
        # The intro was shown in the language the person wrote in: keep that.
        language, source = shown, given.source or "detected"
    resident = ResidentState(
        language=language, language_source=source, step=LANGUAGE_STEP, new=True
    )
    out.resident = resident
    if message_id is not None:
        done = (
            ctx.privacy_text(language, "consent.notice")
            + "\n\n✓ "
            + ctx.text(language, "consent.button")
        )
        out.edits.append(Edit(message_id, done))
    if given.payload:
        resolved = ctx.areas.resolve_deeplink(given.payload)
        if resolved is not None:
            area, hood = resolved
            resident.area_code = area.code
            resident.neighbourhood_code = hood.code if hood else None
            resident.confirm_area = True
    out.notice = ctx.text(language, "consent.thanks")
    out.sends.append(language_prompt(ctx, resident))


def _decline(
    ctx: Context,
    resident: ResidentState | None,
    given: act.Decline,
    message_id: int | None,
    out: Outcome,
) -> None:
    """ "No, thank you": nothing is stored; say how to come back."""
    if _already(ctx, resident, out):
        return
    lang = (
        given.language if given.language in ctx.offered_languages else ctx.telegram_language or "nl"
    )
    text = ctx.text(lang, "consent.declined")
    if message_id is not None:
        out.edits.append(Edit(message_id, text))
    else:
        out.send(text)


def _resident_tap(
    ctx: Context,
    world: World,
    resident: ResidentState,
    action: act.Action,
    given: Tap,
    out: Outcome,
) -> None:
    lang = resident.language
    message_id = given.message_id
    match action:
        case act.ChooseLanguage(code):
            if code in ctx.offered_languages:
                _set_language(world, resident, code)
            _leave_language_step(ctx, world, resident, message_id, out)
        case act.KeepLanguage():
            _leave_language_step(ctx, world, resident, message_id, out)
        case act.SwitchLanguage(code):
            if code in ctx.offered_languages:
                _set_language(world, resident, code)
                _edit_or_send(out, message_id, Send(language_changed(ctx, code)))
                current_or_start(ctx, world, resident, out)
        case act.DeclineSwitch():
            _edit_or_send(out, message_id, Send(language_changed(ctx, lang)), only_edit=True)
        case act.ChooseMunicipality(code):
            areas = areas_of_municipality(ctx, code)
            if len(areas) == 1:
                menu = neighbourhood_prompt(ctx, lang, areas[0])
            elif areas:
                menu = area_choice(ctx, lang, areas)
            else:
                menu = area_prompt(ctx, lang)
            _edit_or_send(out, message_id, menu)
        case act.ChooseArea(code):
            area = ctx.areas.get(code)
            if area is not None:
                _edit_or_send(
                    out, message_id, neighbourhood_prompt(ctx, lang, area), only_edit=True
                )
        case act.AreaMenu(outside):
            # "Another neighbourhood" under a poster link's check: the resident picks anew.
            if resident.step == AREA_CONFIRM_STEP:
                resident.step = AREA_STEP
            key = "area.outside_focus" if outside else "area.prompt"
            _edit_or_send(out, message_id, area_prompt(ctx, lang, key), only_edit=True)
        case act.ChooseNeighbourhood(code):
            found = ctx.areas.neighbourhood(code)
            if found is not None:
                _settle(ctx, world, resident, found[0].code, found[1].code, message_id, out)
        case act.AreaOnly(area_code):
            area = ctx.areas.get(area_code)
            if area is not None:
                _settle(ctx, world, resident, area.code, None, message_id, out)
        case act.KeepArea():
            resident.step = None
            resident.confirm_area = False
            if resident.area_code is None:
                out.sends.append(area_prompt(ctx, lang))
                return
            _edit_or_send(out, message_id, Send(area_confirmation(ctx, resident)))
            current_or_start(ctx, world, resident, out)
        case act.AnswerButton():
            question_button(ctx, world, resident, action, message_id, given.shown, out)
        case act.StartSurvey(round_id):
            # An invitation's button: a round that has closed since says so instead of starting.
            invited = world.round(round_id) if round_id else None
            if invited is not None and not invited.standing and not invited.open:
                out.send(ctx.text(lang, "rounds.invitation.closed"))
            else:
                current_or_start(ctx, world, resident, out)
        case act.Forget(confirm):
            if confirm:
                resident.forget = True
            key = "forget.done" if confirm else "forget.cancelled"
            _edit_or_send(out, message_id, Send(ctx.text(lang, key)), only_edit=True)
        case act.React(response_id, helpful):
            _react(ctx, world, lang, response_id, helpful, given, out)
        case _:
            out.say(ctx.text(lang, "notice.old_version"))


def _react(
    ctx: Context,
    world: World,
    lang: str,
    response_id: int,
    helpful: bool,
    given: Tap,
    out: Outcome,
) -> None:
    """A reaction to an alliance's response: stored (the latest counts), the buttons go."""
    if not world.received_response(response_id):
        # Not sent to this resident (an old button after /forget, or a forged one).
        out.say(ctx.text(lang, "notice.old_version"))
        return
    out.reaction = Reaction(response_id, helpful)
    key = (
        "responses.resident.thanks_helpful" if helpful else "responses.resident.thanks_not_helpful"
    )
    thanks = ctx.text(lang, key)
    if given.message_id is not None and given.shown:
        out.edits.append(Edit(given.message_id, given.shown + "\n\n" + thanks))
    else:
        out.send(thanks)
    out.notice = ctx.text(lang, "responses.resident.thanks")


def _edit_or_send(
    out: Outcome, message_id: int | None, message: Send, only_edit: bool = False
) -> None:
    """Show `message` in place of the tapped one (or as a new message when there is none)."""
    if message_id is not None:
        out.edits.append(Edit(message_id, message.text, message.keyboard))
    elif not only_edit:
        out.sends.append(message)


def _set_language(world: World, resident: ResidentState, code: str) -> None:
    """The resident's language; an unfinished survey goes on in it when the survey has it."""
    resident.language = code
    resident.language_source = "chosen"
    response = world.response_in_progress()
    if response is not None:
        engine = world.engine(response.survey_version_id)
        response.language = survey_language(engine.survey, code)


def _leave_language_step(
    ctx: Context, world: World, resident: ResidentState, message_id: int | None, out: Outcome
) -> None:
    """Language settled: confirm it, then on to where the resident lives (or the survey)."""
    if resident.step == LANGUAGE_STEP:
        # A poster link set the area at consent: ask to confirm it first.
        resident.step = AREA_CONFIRM_STEP if resident.confirm_area else None
    if message_id is not None:
        out.edits.append(Edit(message_id, language_changed(ctx, resident.language)))
    current_or_start(ctx, world, resident, out)


def _settle(
    ctx: Context,
    world: World,
    resident: ResidentState,
    area_code: str,
    neighbourhood_code: str | None,
    message_id: int | None,
    out: Outcome,
) -> None:
    """A neighbourhood (or only an area) chosen: confirm it and go on."""
    changed = resident.area_code is not None and not resident.confirm_area
    move(resident, area_code, neighbourhood_code)
    resident.confirm_area = False
    _edit_or_send(out, message_id, Send(area_confirmation(ctx, resident, changed=changed)))
    current_or_start(ctx, world, resident, out)
