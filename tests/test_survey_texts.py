"""A survey file's own intro and thanks reach the resident in Telegram, as in `survey preview`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.clock import FakeClock
from sandbox.harness import BotHarness
from surveys.loader import load_survey
from surveys.preview import Preview
from surveys.round_file import RoundSpec
from tests.test_resident_flow import button_data, onboard
from usecases.publish_round import publish_round
from usecases.round_tick import run_round_tick

TZ = ZoneInfo("Europe/Amsterdam")

CUSTOM = """\
id: eigen-peiling
version: "1"
languages: [nl, en]
title: {nl: Eigen peiling, en: Own survey}
intro:
  nl: "Welkom bij de peiling van Team Overvecht & co. Drie vragen, <1 minuut."
  en: "Welcome to the survey of Team Overvecht & co. Three questions, <1 minute."
thanks:
  nl: Dank u! Op 12 december hoort u wat we ermee doen.
  en: Thank you! On 12 December you will hear what we do with it.
questions:
  - id: grade
    type: grade
    text: {nl: "Welk cijfer geeft u uw straat?", en: "Which grade do you give your street?"}
  - id: ever
    type: yesno
    dont_know: false
    text: {nl: "Voelt u zich weleens onveilig?", en: "Do you ever feel unsafe?"}
  - id: where
    type: text
    optional: true
    show_if: {question: ever, equals: ja}
    text: {nl: "Waar?", en: "Where?"}
  - id: remark
    type: text
    optional: true
    text: {nl: "Nog iets?", en: "Anything else?"}
"""


def publish(services: Any, clock: FakeClock, path: Path) -> int:
    """A round of the survey file for Utrecht Overvecht, opening now."""
    spec = RoundSpec(
        name="Eigen ronde",
        survey_path=path,
        area_codes=["utrecht-overvecht"],
        opens_at=clock.now(),
        closes_at=clock.now() + timedelta(days=7),
    )
    source = path.read_text(encoding="utf-8")
    round_id = publish_round(services.db, spec, load_survey(path), source, clock.now(), TZ).round_id
    run_round_tick(
        services.db,
        services.areas,
        clock.now(),
        tz=services.settings.tz,
        catalogue=services.catalogue,
    )
    return round_id


def custom_survey(tmp_path: Path, text: str = CUSTOM) -> Path:
    path = tmp_path / "eigen.yaml"
    path.write_text(text, encoding="utf-8")
    return path


async def test_the_surveys_intro_and_thanks_reach_the_resident(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock, tmp_path: Path
) -> None:
    publish(services, clock, custom_survey(tmp_path))
    async with BotHarness(emulator, make_app(services)) as h:
        ann = h.user("Ann", language_code="en")
        await onboard(h, ann)
        texts = [message.visible_text for message in ann.messages()]
        intro = "Welcome to the survey of Team Overvecht & co. Three questions, <1 minute."
        assert intro in texts, texts
        # Right before the first question, which counts no total: 'where' depends on 'ever'.
        assert texts[texts.index(intro) + 1].startswith("Question 1\n")
        assert "about a minute" not in "\n".join(texts)
        await ann.tap("8")
        await ann.tap(data=button_data(ann, "ja"))
        assert ann.last_message().visible_text.startswith("Question 3 of 4\n")
        await ann.send("Near the railway station, at night")
        assert ann.last_message().visible_text.startswith("Question 4 of 4\n")
        await ann.tap(data=button_data(ann, "~s"))
        closing = ann.last_message().visible_text
    assert closing.startswith("Thank you! On 12 December you will hear what we do with it.")
    assert "112" in closing and "0900-8844" in closing  # the bot's duty of care stays
    assert "Your answers have been saved" not in closing  # the survey's own word replaces it


async def test_a_survey_without_thanks_gets_the_bots_closing_word(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock, tmp_path: Path
) -> None:
    text = CUSTOM.split("thanks:")[0] + "questions:" + CUSTOM.split("questions:")[1]
    publish(services, clock, custom_survey(tmp_path, text))
    async with BotHarness(emulator, make_app(services)) as h:
        bea = h.user("Bea", language_code="nl")
        await onboard(h, bea)
        assert any(
            m.visible_text.startswith("Welkom bij de peiling van Team Overvecht")
            for m in bea.messages()
        )
        await bea.tap("6")
        await bea.tap(data=button_data(bea, "nee"))
        assert bea.last_message().visible_text.startswith("Vraag 3 van 3\n")
        await bea.tap(data=button_data(bea, "~s"))
        closing = bea.last_message().visible_text
    assert closing.startswith("Hartelijk dank!")
    assert "112" in closing


def test_preview_shows_the_same_intro_and_thanks(tmp_path: Path) -> None:
    survey = load_survey(custom_survey(tmp_path))
    lines: list[str] = []
    answers = iter(["8", "nee", ""])
    code = Preview(survey, "en").run(lambda: next(answers, None), lines.append)
    assert code == 0
    out = "\n".join(lines)
    assert "Welcome to the survey of Team Overvecht & co. Three questions, <1 minute." in out
    assert "Question 1\n" in out and "Question 3 of 3" in out
    assert out.index("Summary") < out.index("Thank you! On 12 December")
    assert "Police, non-emergency: 0900-8844." in out and "<b>" not in out
