"""The resident's journey as a pure state machine: (state, input) -> (state, effects).

No emulator, no database: a FakeWorld answers the journey's look-ups from memory.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from journey import actions as act
from journey import wire
from journey.model import (
    AREA_CONFIRM_STEP,
    AREA_STEP,
    LANGUAGE_STEP,
    QUESTION_LOST,
    Button,
    Command,
    Context,
    Input,
    Media,
    Outcome,
    Reaction,
    ResidentState,
    ResponseState,
    RoundInfo,
    Start,
    Tap,
    Text,
)
from journey.steps import step
from locales.catalogue import default_catalogue
from locales.detection import LanguageDetector
from surveys.areas import default_areas
from surveys.engine import Engine
from surveys.loader import load_survey

DATA = Path(__file__).parent / "data" / "surveys"


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(offered=["nl", "en", "tr", "ar", "pl"])


class FakeWorld:
    """One round (id 1) for every area, its survey, and the resident's responses in memory."""

    def __init__(self, survey_file: str = "short.yaml", *, open_: bool = True) -> None:
        self.engine_ = Engine(load_survey(DATA / survey_file))
        self.rounds = {1: RoundInfo(1, 1, open_, standing=True)}
        self.responses: dict[int, ResponseState] = {}
        self.received: set[int] = set()  # alliance responses sent to this resident

    def engine(self, survey_version_id: int) -> Engine:
        return self.engine_

    def round_for_area(self, area_code: str) -> RoundInfo | None:
        return self.rounds.get(1)

    def round(self, round_id: int) -> RoundInfo | None:
        return self.rounds.get(round_id)

    def response_in_progress(self) -> ResponseState | None:
        return next((r for r in self.responses.values() if r.status == "started"), None)

    def response_for(self, round_id: int) -> ResponseState | None:
        return self.responses.get(round_id)

    def start_response(self, round_: RoundInfo, response: ResponseState) -> ResponseState:
        self.responses[round_.id] = response
        return response

    def received_response(self, response_id: int) -> bool:
        return response_id in self.received


class Journey:
    """A resident stepping through the journey, with the last outcome at hand."""

    def __init__(self, detector: LanguageDetector, world: FakeWorld, tg: str | None = "nl"):
        self.world = world
        self.resident: ResidentState | None = None
        self.ctx = Context(
            catalogue=default_catalogue(),
            areas=default_areas(),
            offered_languages=["nl", "en", "tr", "ar", "pl"],
            detector=detector,
            now=datetime(2026, 11, 2, 9, tzinfo=UTC),
            telegram_language=tg,
            retention_days=730,
            min_cell_size=10,
        )
        self.out = Outcome(None)
        self.next_message = 100

    def do(self, given: Input) -> Outcome:
        self.out = step(self.resident, given, self.ctx, self.world)
        if self.out.resident is not None and self.out.resident.new:
            self.out.resident.new = False
        self.resident = (
            None if self.out.resident and self.out.resident.forget else self.out.resident
        )
        return self.out

    def buttons(self, index: int = -1) -> list[Button]:
        keyboard = self.out.sends[index].keyboard or []
        return [button for row in keyboard for button in row]

    def tap(self, label: str, *, index: int = -1, message_id: int | None = None) -> Outcome:
        found = [b for b in self.buttons(index) if b.label == label or label in b.label]
        assert found, (label, [b.label for b in self.buttons(index)])
        return self.do(Tap(found[0].action, message_id or self.next_message))

    def texts(self) -> list[str]:
        return [send.text for send in self.out.sends]

    @property
    def response(self) -> ResponseState:
        found = self.world.response_for(1)
        assert found is not None
        return found


@pytest.fixture
def j(detector: LanguageDetector) -> Journey:
    return Journey(detector, FakeWorld())


def onboard(j: Journey, postcode: str = "3563") -> None:
    j.do(Start())
    j.tap("Ja, ik doe mee")
    j.tap("Verder")
    j.do(Text(postcode))


def test_start_shows_intro_and_consent_and_stores_nothing(j: Journey) -> None:
    out = j.do(Start())
    assert out.resident is None
    assert "buurtstem" in out.sends[0].text
    labels = [b.label for b in j.buttons()]
    assert labels == ["Ja, ik doe mee", "Nee, liever niet"]


def test_no_to_consent_stores_nothing_and_says_how_to_come_back(j: Journey) -> None:
    j.do(Start())
    out = j.tap("Nee, liever niet", message_id=7)
    assert out.resident is None
    assert out.edits[0].message_id == 7 and "/start" in out.edits[0].text


def test_consent_then_language_then_postcode_starts_the_survey(j: Journey) -> None:
    j.do(Start())
    out = j.tap("Ja, ik doe mee", message_id=5)
    assert out.resident is not None and out.resident.step == LANGUAGE_STEP
    assert out.edits[0].message_id == 5 and "✓" in out.edits[0].text
    out = j.tap("English")
    assert j.resident is not None and j.resident.language == "en"
    assert j.resident.step is None and "postcode" in out.sends[-1].text
    out = j.do(Text("3563"))
    assert j.resident.area_code == "utrecht-overvecht"
    texts = j.texts()
    assert "Four short questions." in texts[-2]  # the survey's own intro, in English
    assert "Question 1 of 4" in texts[-1]
    assert j.response.status == "started" and j.response.language == "en"


def test_answers_by_tap_become_records_then_thanks(j: Journey) -> None:
    onboard(j)
    out = j.tap("7", message_id=11)
    assert j.response.answers == {"q1": 7}
    assert out.edits[0].message_id == 11 and "→ 7" in out.edits[0].text
    assert "Vraag 2 van 4" in out.sends[-1].text
    j.do(Text("6"))  # a grade may be typed
    j.tap("Slechter")
    out = j.tap("Overslaan")  # the last question is optional
    assert j.response.status == "completed"
    assert "dank" in out.sends[-1].text.lower() and "112" in out.sends[-1].text
    assert j.response.answers == {"q1": 7, "q2": 6, "q3": "slechter"}


def test_back_goes_to_the_previous_question(j: Journey) -> None:
    onboard(j)
    j.tap("7")
    out = j.tap("Vorige", message_id=12)
    assert "Vraag 1 van 4" in out.sends[-1].text
    assert out.edits[0].message_id == 12 and "↩" in out.edits[0].text
    j.tap("3")
    assert j.response.answers == {"q1": 3}


def test_a_typed_non_answer_asks_the_question_again_with_its_buttons(j: Journey) -> None:
    onboard(j)
    out = j.do(Text("geen idee"))
    assert len(out.sends) == 1
    send = out.sends[0]
    assert "1 tot en met 10" in send.text and "Vraag 1 van 4" in send.text
    assert send.keyboard and send.asks == 1
    assert j.response.answers == {}


def test_media_brings_the_current_question_back(j: Journey) -> None:
    onboard(j)
    out = j.do(Media())
    assert "Vraag 1 van 4" in out.sends[0].text and out.sends[0].keyboard


def test_a_stale_button_becomes_the_record_of_its_answer(j: Journey) -> None:
    onboard(j)
    first = j.buttons()
    shown = j.out.sends[-1].text
    j.tap("7")
    seven = next(b for b in first if b.label == "7")
    out = j.do(Tap(seven.action, 11, shown))
    assert out.sends == []  # nothing new: a double tap
    assert out.edits[0].message_id == 11 and "→ 7" in out.edits[0].text
    assert j.response.answers == {"q1": 7}


def test_a_stale_tap_brings_back_a_question_whose_message_was_lost(j: Journey) -> None:
    onboard(j)
    first = j.buttons()
    j.tap("7")
    j.response.question_message_id = QUESTION_LOST  # the bot could not send question 2
    eight = next(b for b in first if b.label == "8")
    out = j.do(Tap(eight.action, 11))
    assert "Vraag 2 van 4" in out.sends[-1].text
    assert j.response.question_message_id is None  # asked again: no longer lost


def test_a_button_from_another_release_is_refused(j: Journey) -> None:
    onboard(j)
    out = j.do(Tap(None, 11))
    assert out.alert and out.notice and "oudere versie" in out.notice


def test_language_switch_offer_and_the_survey_follows(j: Journey) -> None:
    onboard(j)
    out = j.do(Text("I do not understand this question at all, sorry about that"))
    offer = out.sends[-1]
    assert "English" in offer.text
    out = j.tap("English")
    assert j.resident is not None and j.resident.language == "en"
    assert j.response.language == "en"
    assert "Question 1 of 4" in out.sends[-1].text


def test_area_mid_survey_shows_the_current_one_and_keep_goes_on(j: Journey) -> None:
    onboard(j)
    j.tap("7")
    out = j.do(Command("area"))
    assert j.resident is not None and j.resident.step == AREA_STEP
    assert "Overvecht" in out.sends[0].text
    out = j.tap("Zo laten", message_id=20)
    assert j.resident.step is None
    assert out.edits[0].message_id == 20 and "Overvecht" in out.edits[0].text
    assert "Vraag 2 van 4" in out.sends[-1].text


def test_area_mid_survey_by_postcode_moves_the_resident_not_the_response(j: Journey) -> None:
    onboard(j)
    j.do(Command("area"))
    out = j.do(Text("8923"))
    assert j.resident is not None and j.resident.area_code == "leeuwarden-oost"
    assert "Eerdere antwoorden" in out.sends[0].text  # moved, says so
    assert j.response.area_code == "utrecht-overvecht"  # the response keeps its neighbourhood


def test_deep_link_at_consent_is_confirmed_before_the_survey(j: Journey) -> None:
    hood = j.ctx.areas.get("utrecht-overvecht").neighbourhoods[0]  # type: ignore[union-attr]
    j.do(Start(hood.code))
    consent = j.buttons(-1)[0].action
    assert isinstance(consent, act.Consent) and consent.payload == hood.code
    j.do(Tap(consent, 5))
    out = j.tap("Verder")
    assert j.resident is not None and j.resident.step == AREA_CONFIRM_STEP
    assert hood.name in out.sends[-1].text
    out = j.tap("Ja, klopt", message_id=9)
    assert j.resident.neighbourhood_code == hood.code and j.resident.step is None
    assert "Vraag 1 van 4" in out.sends[-1].text


def test_stop_and_forget(j: Journey) -> None:
    onboard(j)
    j.do(Command("stop"))
    assert j.resident is not None and j.resident.stopped
    j.do(Start())
    assert j.resident is not None and not j.resident.stopped
    out = j.do(Command("forget"))
    labels = [b.label for b in j.buttons()]
    assert len(labels) == 2
    out = j.tap(labels[0], message_id=30)
    assert out.resident is not None and out.resident.forget
    assert out.edits[0].message_id == 30


def test_a_closed_round_keeps_the_answers_and_says_so(detector: LanguageDetector) -> None:
    j = Journey(detector, FakeWorld())
    onboard(j)
    j.tap("7")
    j.response.round_open = False
    out = j.tap("6", message_id=40)
    assert j.response.status == "closed" and j.response.answers == {"q1": 7}
    assert "gesloten" in out.sends[-1].text
    assert out.edits[0].message_id == 40 and "—" in out.edits[0].text


@pytest.fixture
def long(detector: LanguageDetector) -> Journey:
    j = Journey(detector, FakeWorld("long_multi.yaml"))
    onboard(j)
    return j


def ticked(j: Journey) -> list[str]:
    assert j.resident is not None and j.resident.ticks is not None
    return list(j.resident.ticks["selected"])


def test_long_option_lists_are_paged_and_ticks_survive_paging(long: Journey) -> None:
    options = [b for b in long.buttons() if isinstance(b.action, act.AnswerButton)]
    labels = [b.label for b in options]
    assert "☐ Rommel" in labels and "☐ Lastigvallen" not in labels  # page 1 of 2
    assert any("Meer opties" in label for label in labels)
    out = long.tap("Rommel", message_id=50)
    assert ticked(long) == ["o1"]
    keyboard = [b for row in out.edits[0].keyboard or [] for b in row]
    more = next(b for b in keyboard if "Meer opties" in b.label)
    out = long.do(Tap(more.action, 50))
    labels = [b.label for row in out.edits[0].keyboard or [] for b in row]
    assert "☐ Lastigvallen" in labels and "☐ Rommel" not in labels
    assert ticked(long) == ["o1"]  # the tick on page 1 is kept


def test_none_of_these_is_exclusive_on_tap(long: Journey) -> None:
    def tap_option(option: str) -> None:
        long.do(Tap(act.AnswerButton(1, "issues", option), 50))

    tap_option("o1")
    tap_option("o2")
    assert ticked(long) == ["o1", "o2"]
    tap_option("geen")
    assert ticked(long) == ["geen"]
    tap_option("o3")
    assert ticked(long) == ["o3"]
    long.do(Tap(act.AnswerButton(1, "issues", wire.DONE), 50))
    assert long.response.answers == {"issues": ["o3"]}


def test_every_button_of_the_journey_fits_telegram(long: Journey) -> None:
    for send in long.out.sends:
        for row in send.keyboard or []:
            for button in row:
                data = wire.encode_action(button.action)
                assert len(data.encode()) <= 64 and wire.decode_action(data) == button.action


def test_actions_survive_the_wire() -> None:
    for action in (
        act.Consent("utrecht-overvecht", "nl", "detected"),
        act.Decline("tr"),
        act.ChooseLanguage("ar"),
        act.KeepLanguage(),
        act.SwitchLanguage("pl"),
        act.DeclineSwitch(),
        act.ChooseMunicipality("GM0344"),
        act.ChooseArea("amsterdam-zuidoost"),
        act.AreaMenu(outside=True),
        act.AreaMenu(),
        act.ChooseNeighbourhood("leeuwarden-bilgaard"),
        act.AreaOnly("utrecht-overvecht"),
        act.AnswerButton(2_147_483_647, "q1", wire.BACK),
        act.StartSurvey(12),
        act.Forget(confirm=True),
        act.KeepArea(),
        act.React(2_147_483_647, helpful=True),
        act.React(5, helpful=False),
    ):
        assert wire.decode_action(wire.encode_action(action)) == action


def test_alliance_response_buttons_survive_the_wire_and_stay_apart() -> None:
    for verb in (act.SUBMIT, act.CANCEL, act.APPROVE, act.REJECT):
        button = act.ResponseButton(2_147_483_647, verb)
        data = wire.encode_response_button(button)
        assert len(data.encode()) <= 64
        assert wire.decode_response_button(data) == button
        assert wire.is_response_button(data)
        assert wire.decode_action(data) is None  # never a resident's action
    for data in ("v1|rh|7|y", "v1|s|3", "v1|ra|", "v1|ra|x", "v0|ra|7", None, 7):
        assert not wire.is_response_button(data)
    for data in ("v1|rh|7|maybe", "v1|rh|x|y", "v1|rh|7"):
        assert wire.decode_action(data) is None


def test_a_reaction_to_an_alliance_response_is_stored_and_thanked(j: Journey) -> None:
    onboard(j)
    j.world.received.add(7)
    shown = "📣 <b>Jullie zeiden, wij doen</b>\n\nWij hoorden u."
    out = j.do(Tap(act.React(7, helpful=False), message_id=55, shown=shown))
    assert out.reaction == Reaction(7, helpful=False)
    [edit] = out.edits
    assert edit.message_id == 55 and edit.keyboard is None
    assert edit.text.startswith(shown) and "niet nuttig" in edit.text
    assert out.notice == "Bedankt voor uw reactie." and not out.alert
    assert out.sends == []


def test_a_reaction_to_a_response_not_received_stores_nothing(j: Journey) -> None:
    onboard(j)
    out = j.do(Tap(act.React(8, helpful=True), message_id=56, shown="x"))
    assert out.reaction is None and out.edits == []
    assert out.alert and out.notice == j.ctx.text("nl", "notice.old_version")
    # Before consent there is nobody to count.
    fresh = Journey(j.ctx.detector, FakeWorld())
    fresh.world.received.add(8)
    out = fresh.do(Tap(act.React(8, helpful=True)))
    assert out.reaction is None and out.resident is None
