"""The journey's messages outside the survey: intro and consent, language, where you live."""

from __future__ import annotations

import html
from typing import Any

from journey import actions as act
from journey.model import Button, Context, Keyboard, ResidentState, Send
from surveys.areas import Area, Neighbourhood


def rows_of(buttons: list[Button], per_row: int = 2) -> Keyboard:
    """Buttons laid out `per_row` to a row."""
    return [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]


def intro(ctx: Context, lang: str, payload: str = "", source: str = "") -> list[Send]:
    """Who we are, the privacy notice, and the consent and no-thanks buttons.

    Nothing is stored before consent: the deep link and the language ride along in the button.
    """
    return [
        Send(ctx.text(lang, "intro")),
        Send(
            ctx.privacy_text(lang, "consent.notice"),
            [
                [Button(ctx.text(lang, "consent.button"), act.Consent(payload, lang, source))],
                [Button(ctx.text(lang, "consent.decline"), act.Decline(lang))],
            ],
        ),
    ]


def language_prompt(ctx: Context, resident: ResidentState) -> Send:
    """The language step: each offered language one tap away, the current one marked."""
    lang = resident.language
    buttons = []
    for code in ctx.offered_languages:
        name = ctx.text(code, "language.name")
        buttons.append(Button(f"✓ {name}" if code == lang else name, act.ChooseLanguage(code)))
    rows = rows_of(buttons)
    rows.append([Button(ctx.text(lang, "language.continue"), act.KeepLanguage())])
    current = ctx.text(lang, "language.name")
    return Send(ctx.text(lang, "language.prompt", current=current), rows)


def language_changed(ctx: Context, lang: str) -> str:
    """The line that confirms the language."""
    return ctx.text(lang, "language.changed", current=ctx.text(lang, "language.name"))


def switch_offer(ctx: Context, offer: str, current: str) -> Send:
    """Offer, with one tap, the language a resident clearly writes in."""
    name = ctx.text(offer, "language.name")
    return Send(
        ctx.text(offer, "language.switch_offer", language=name),
        [
            [
                Button(
                    ctx.text(offer, "language.switch_yes", language=name), act.SwitchLanguage(offer)
                )
            ],
            [Button(ctx.text(current, "language.switch_no"), act.DeclineSwitch())],
        ],
    )


def municipality_keyboard(ctx: Context) -> Keyboard:
    """Buttons for the municipalities that have a focus area, two per row."""
    return rows_of(
        [
            Button(name, act.ChooseMunicipality(areas[0].municipality_code))
            for name, areas in ctx.areas.municipalities().items()
        ]
    )


def area_prompt(
    ctx: Context, lang: str, key: str = "area.prompt", *, keep: bool = False, **params: Any
) -> Send:
    """Ask where the resident lives: a postcode, or municipality buttons (and "keep", under /area)."""
    rows = municipality_keyboard(ctx)
    if keep:
        rows.append([Button(ctx.text(lang, "area.keep"), act.KeepArea())])
    return Send(ctx.text(lang, key, **params), rows)


def areas_of_municipality(ctx: Context, municipality_code: str) -> list[Area]:
    """The focus areas in one municipality (Amsterdam has two)."""
    return [area for area in ctx.areas.all() if area.municipality_code == municipality_code]


def area_choice(ctx: Context, lang: str, areas: list[Area]) -> Send:
    """Which focus area, in a municipality with more than one."""
    rows: Keyboard = [[Button(area.name, act.ChooseArea(area.code))] for area in areas]
    rows.append([Button(ctx.text(lang, "area.back"), act.AreaMenu())])
    return Send(
        ctx.text(lang, "area.pick_area", municipality=html.escape(areas[0].municipality)), rows
    )


def neighbourhood_prompt(
    ctx: Context,
    lang: str,
    area: Area,
    neighbourhoods: list[Neighbourhood] | None = None,
    key: str = "area.pick_neighbourhood",
    outside: bool = False,
    **params: Any,
) -> Send:
    """Buttons for the neighbourhoods of an area (or a subset), plus "don't know" and back.

    `outside`: the resident may live outside the focus area (the PC4 reaches beyond it, or the
    data cannot tell), so "none of these" is offered: it explains the survey is for the focus
    area only and shows the municipality buttons again.
    """
    hoods = list(neighbourhoods if neighbourhoods is not None else area.neighbourhoods)
    rows = rows_of([Button(hood.name, act.ChooseNeighbourhood(hood.code)) for hood in hoods])
    # "Don't know" places the resident in `area`: not when the choice spans two areas.
    if not outside or all(hood.area_code == area.code for hood in hoods):
        rows.append([Button(ctx.text(lang, "area.other_neighbourhood"), act.AreaOnly(area.code))])
    if outside:
        rows.append([Button(ctx.text(lang, "area.none_of_these"), act.AreaMenu(outside=True))])
    rows.append([Button(ctx.text(lang, "area.back"), act.AreaMenu())])
    params.setdefault("area", html.escape(area.name))
    return Send(ctx.text(lang, key, **params), rows)


def where(ctx: Context, resident: ResidentState) -> tuple[str, str | None]:
    """The names of the resident's area and neighbourhood (HTML-escaped)."""
    area = ctx.areas.get(resident.area_code or "")
    area_name = html.escape(area.name if area else resident.area_code or "")
    found = ctx.areas.neighbourhood(resident.neighbourhood_code or "")
    return area_name, html.escape(found[1].name) if found is not None else None


def area_confirmation(ctx: Context, resident: ResidentState, changed: bool = False) -> str:
    """The line that confirms where the resident lives."""
    area_name, hood_name = where(ctx, resident)
    if hood_name is not None:
        key = "area.changed" if changed else "area.set"
        return ctx.text(resident.language, key, neighbourhood=hood_name, area=area_name)
    return ctx.text(resident.language, "area.set_area_only", area=area_name)


def deeplink_check(ctx: Context, resident: ResidentState) -> Send:
    """A poster's link placed the resident: say where, and let them correct it before the survey."""
    area_name, hood_name = where(ctx, resident)
    lang = resident.language
    text = (
        ctx.text(lang, "area.deeplink", neighbourhood=hood_name, area=area_name)
        if hood_name is not None
        else ctx.text(lang, "area.deeplink_area", area=area_name)
    )
    return Send(
        text,
        [
            [Button(ctx.text(lang, "area.deeplink_yes"), act.KeepArea())],
            [Button(ctx.text(lang, "area.deeplink_other"), act.AreaMenu())],
        ],
    )


def current_area_prompt(ctx: Context, resident: ResidentState) -> Send:
    """/area: where the resident lives now, how to change it, and "keep"."""
    area_name, hood_name = where(ctx, resident)
    place = f"{hood_name} ({area_name})" if hood_name else area_name
    return area_prompt(ctx, resident.language, "area.current", keep=True, current=place)
