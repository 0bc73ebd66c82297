"""One step of a resident's journey: (what is known of them, what came in) -> what happens.

`step(resident, input, ctx, world)` is pure: no Telegram, no SQL. It changes the `ResidentState`
and the `ResponseState`s it got from `world`, and returns an `Outcome` with the messages, edits
and notice to show. The use case (usecases/resident.py) loads, stores and renders around it.
"""

from __future__ import annotations

import html

from journey import actions as act
from journey.model import (
    AREA_CONFIRM_STEP,
    AREA_STEP,
    LANGUAGE_STEP,
    Button,
    Command,
    Context,
    Input,
    Media,
    Outcome,
    ResidentState,
    Start,
    Tap,
    Text,
    World,
)
from journey.prompts import (
    area_confirmation,
    area_prompt,
    current_area_prompt,
    deeplink_check,
    intro,
    language_prompt,
    neighbourhood_prompt,
    switch_offer,
)
from journey.survey import current_or_start, reprompt, typed_answer
from journey.taps import move, tap
from locales.detection import Detection, should_offer_switch
from surveys.areas import Ambiguous, Found, InFocusMunicipality, NotInFocusArea


def step(resident: ResidentState | None, given: Input, ctx: Context, world: World) -> Outcome:
    """What one input does to a resident's journey."""
    out = Outcome(resident)
    match given:
        case Start(payload):
            _start(ctx, world, resident, payload, out)
        case Text(text):
            _text(ctx, world, resident, text, out)
        case Media():
            _media(ctx, world, resident, out)
        case Command(name):
            _command(ctx, resident, name, out)
        case Tap():
            tap(ctx, world, resident, given, out)
    return out


def _language(ctx: Context, resident: ResidentState | None) -> str:
    return resident.language if resident is not None else ctx.telegram_language or "nl"


# ---- commands and messages ------------------------------------------------------------------


def _start(
    ctx: Context, world: World, resident: ResidentState | None, payload: str, out: Outcome
) -> None:
    """Begin (intro, privacy notice, consent) or continue where the resident was."""
    if resident is None:
        out.sends += intro(ctx, ctx.telegram_language or "nl", _deeplink_code(ctx, payload))
        return
    resident.stopped = False
    if payload and _deeplink(ctx, resident, payload):
        out.sends.append(deeplink_check(ctx, resident))
        return
    current_or_start(ctx, world, resident, out, welcome_back=True)


def _deeplink_code(ctx: Context, payload: str) -> str:
    """The area or neighbourhood code a poster's link names, or "" for anything else.

    Before consent the code rides in the consent button's callback data (64 bytes): anything a
    link can carry that names no place of ours (long, odd, forged) is dropped, not sent along.
    """
    resolved = ctx.areas.resolve_deeplink(payload)
    if resolved is None:
        return ""
    area, hood = resolved
    return hood.code if hood is not None else area.code


def _deeplink(ctx: Context, resident: ResidentState, payload: str) -> bool:
    """A poster's link names an area or neighbourhood; True when it moves the resident there.

    The resident is asked to confirm before the survey starts (AREA_CONFIRM_STEP).
    """
    resolved = ctx.areas.resolve_deeplink(payload)
    if resolved is None:
        return False
    area, hood = resolved
    if resident.area_code == area.code and (
        hood is None or hood.code == resident.neighbourhood_code
    ):
        return False
    resident.area_code = area.code
    resident.neighbourhood_code = hood.code if hood else None
    if resident.step != LANGUAGE_STEP:
        resident.step = AREA_CONFIRM_STEP
    return True


def _text(
    ctx: Context, world: World, resident: ResidentState | None, text: str, out: Outcome
) -> None:
    """A typed message: a postcode, or an answer to the current question."""
    detection = ctx.detector.detect(text)
    out.detection = detection
    if resident is None:
        # Nothing is stored before consent; answer in the language the person wrote in.
        detected = detection.language
        lang = ctx.telegram_language or detected or "nl"
        if detected in ctx.offered_languages and not ctx.telegram_language:
            lang = detected
        out.sends += intro(ctx, lang, source="detected" if lang == detected else "")
        return
    if resident.area_code is None or resident.step in (AREA_STEP, AREA_CONFIRM_STEP):
        _postcode(ctx, world, resident, text, out)
    elif resident.step == LANGUAGE_STEP:
        out.sends.append(language_prompt(ctx, resident))
    else:
        typed_answer(ctx, world, resident, text, str(detection.stored), out)
    # After the answer: a resident who clearly writes another language may switch.
    _offer_switch(ctx, resident, detection, out)


def _offer_switch(
    ctx: Context, resident: ResidentState, detection: Detection, out: Outcome
) -> None:
    """Offer once, with one tap, the language a resident clearly writes in."""
    if resident.switch_offered:
        return
    offer = should_offer_switch(
        current=resident.language,
        source=resident.language_source or "default",
        detection=detection,
        already_offered=resident.switch_offered,
    )
    if offer is None or offer not in ctx.offered_languages:
        return
    resident.switch_offered = True
    out.sends.append(switch_offer(ctx, offer, resident.language))


def _postcode(ctx: Context, world: World, resident: ResidentState, text: str, out: Outcome) -> None:
    """Look up a typed postcode and move on, or ask which neighbourhood, or explain."""
    lang = resident.language
    result = ctx.areas.lookup_postcode(text)
    if isinstance(result, Found):
        changed = resident.area_code is not None and resident.step == AREA_STEP
        move(resident, result.area.code, result.neighbourhood.code)
        out.send(area_confirmation(ctx, resident, changed=changed))
        current_or_start(ctx, world, resident, out)
    elif isinstance(result, Ambiguous):
        hoods = list(result.neighbourhoods)
        area = result.area or ctx.areas.get(hoods[0].area_code)
        assert area is not None
        out.sends.append(
            neighbourhood_prompt(
                ctx,
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
        out.sends.append(
            neighbourhood_prompt(
                ctx,
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
        out.sends.append(area_prompt(ctx, lang, "area.not_in_focus", pc4=result.pc4))
    else:
        out.sends.append(area_prompt(ctx, lang, "area.invalid"))


def _media(ctx: Context, world: World, resident: ResidentState | None, out: Outcome) -> None:
    """Stickers, photos, voice, locations...: a polite prompt with the current question again."""
    notice = ctx.text(_language(ctx, resident), "notice.media")
    if resident is None or not reprompt(ctx, world, resident, notice, out):
        out.send(notice)


def _command(ctx: Context, resident: ResidentState | None, name: str, out: Outcome) -> None:
    """/language, /area, /stop and /forget."""
    lang = _language(ctx, resident)
    if resident is None:
        out.send(ctx.text(lang, "forget.nothing" if name == "forget" else "notice.need_start"))
    elif name == "language":
        out.sends.append(language_prompt(ctx, resident))
    elif name == "area":
        if resident.area_code is None:
            resident.step = AREA_STEP
            out.sends.append(area_prompt(ctx, lang))
        else:
            resident.step = AREA_STEP
            out.sends.append(current_area_prompt(ctx, resident))
    elif name == "stop":
        resident.stopped = True
        out.send(ctx.text(lang, "stop.done"))
    elif name == "forget":
        out.send(
            ctx.text(lang, "forget.confirm"),
            [
                [_button(ctx, lang, "forget.erase", act.Forget(confirm=True))],
                [_button(ctx, lang, "forget.keep", act.Forget(confirm=False))],
            ],
        )


def _button(ctx: Context, lang: str, key: str, action: act.Action) -> Button:
    return Button(ctx.text(lang, key), action)
