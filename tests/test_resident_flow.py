"""End to end: a real PTB Application of buurtstem, driven through the emulated Bot API."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import func, select

from sandbox.harness import BotHarness, UserHandle
from storage.models import Answer, OutboxMessage, ProcessedUpdate, Resident, ResidentChat, Response
from storage.pseudonyms import pseudonym
from tests.conftest import TEST_KEY

# The default survey answered by taps, in order; None means "type it".
GRADE_LIVEABILITY = "7"
GRADE_SAFETY = "6"
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


async def onboard(h: BotHarness, user: Any, postcode: str = "3563") -> None:
    """Consent, keep the language, give a postcode."""
    await user.send("/start")
    assert "buurtstem" in user.messages()[0].visible_text
    await user.tap(data=user.last_message().buttons[0][0].callback_data)
    await user.tap(data="v1|lc")
    await user.send(postcode)


# The six nuisance problems everyone rates, in survey order, and how often each happens.
NUISANCE = {
    "nuisance_litter": "vaak",
    "nuisance_dogs": "soms",
    "nuisance_speeding": "nooit",
    "nuisance_parking": "vaak",
    "nuisance_drugs": "soms",
    "nuisance_noise": "nooit",
}


async def answer_default_survey(
    user: Any, *, unsafe: bool = True, text: str | None = None, topics: tuple[str, ...] = ()
) -> None:
    """Answer the default survey's questions through buttons and typing (no optional module
    unless `topics` names some: then they are left open for the caller)."""
    await user.tap(GRADE_LIVEABILITY)
    await user.tap(GRADE_SAFETY)
    await user.tap(data=button_data(user, "vooruit"))
    await user.tap(data=button_data(user, "ja" if unsafe else "nee"))
    if unsafe:
        await user.tap(data=button_data(user, "soms"))
    await user.tap(data=button_data(user, "zelden_nooit"))
    for _ in range(4):
        await user.tap(data=button_data(user, "eens"))
    for how_often in NUISANCE.values():
        await user.tap(data=button_data(user, how_often))
    await user.tap(data=button_data(user, "tevreden"))
    await user.tap(data=button_data(user, "neutraal"))
    await user.tap(data=button_data(user, "schoon"))
    if text is None:
        await user.tap(data=button_data(user, "~s"))
    else:
        await user.send(text)
    for topic in topics or ("geen",):
        await user.tap(data=button_data(user, topic))
    await user.tap(data=button_data(user, "~d"))


def button_data(user: Any, option: str) -> str:
    """The callback data of the button for `option` on the newest question."""
    for row in user.last_message().buttons:
        for button in row:
            if button.callback_data and button.callback_data.endswith("|" + option):
                return str(button.callback_data)
    raise AssertionError(f"no button {option!r} in {user.last_message().visible_text!r}")


def count(services: Any, model: Any, *where: Any) -> int:
    """Rows of `model` matching `where`."""
    with services.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_resident_completes_survey_and_answers_are_stored(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        alice = h.user("Alice", username="alice_nl", language_code="nl")
        await onboard(h, alice, postcode="3563 AB 12")
        assert alice.last_message().visible_text.startswith("Vraag 1\n")  # no total yet
        await answer_default_survey(alice, text="Meer groen en minder rommel, bel me op 0612345678")
        assert "dank" in alice.last_message().visible_text.lower()

    key = pseudonym(TEST_KEY, alice.id)
    with services.db.session() as session:
        resident = session.scalars(select(Resident).where(Resident.pseudonym == key)).one()
        assert resident.area_code == "utrecht-overvecht"
        response = session.scalars(
            select(Response).where(Response.resident_id == resident.id)
        ).one()
        assert response.status == "completed"
        assert response.area_code == "utrecht-overvecht"
        assert response.neighbourhood_code == resident.neighbourhood_code is not None
        answers = {
            a.question_id: a.value
            for a in session.scalars(select(Answer).where(Answer.response_id == response.id))
        }
    assert answers["grade_liveability"] == 7
    assert answers["grade_safety"] == 6
    assert answers["unsafe_ever"] == "ja"
    assert answers["unsafe_freq"] == "soms"
    assert {qid: answers[qid] for qid in NUISANCE} == NUISANCE
    assert answers["priority"] == "schoon" and answers["more_topics"] == ["geen"]
    assert answers["improve"].startswith("Meer groen")
    # No raw Telegram id, name or username anywhere in the resident's rows.
    with services.db.session() as session:
        dumped = repr([(r.pseudonym, r.flow) for r in session.scalars(select(Resident))])
    assert str(alice.id) not in dumped and "Alice" not in dumped and "alice_nl" not in dumped


async def test_answered_question_becomes_a_record_without_buttons(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        bob = h.user("Bob", language_code="en")
        await onboard(h, bob)
        question = bob.last_message()
        assert question.visible_text.startswith("Question 1\n")
        await bob.tap("8")
        record = emulator.message(bob.chat_id, question.message_id)
        assert record.buttons == []
        assert "→ 8" in record.visible_text
        assert bob.last_message().visible_text.startswith("Question 2\n")


async def test_nothing_is_stored_before_consent(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        carol = h.user("Carol")
        await carol.send("/start")
        await carol.send("3563")
    assert count(services, Resident) == 0
    assert count(services, ResidentChat) == 0


async def test_restart_midway_resumes_where_the_resident_was(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        dave = h.user("Dave")
        await onboard(h, dave)
        await dave.tap("5")
        await dave.tap("6")
    # A new Application on the same database: the old one is gone with its memory.
    async with BotHarness(emulator, make_app(services)) as h2:
        dave = UserHandle(h2, dave.user)
        await dave.send("/start")
        assert "Vraag 3\nIs uw buurt" in dave.last_message().visible_text  # after "welkom terug"
        await dave.tap(data=button_data(dave, "achteruit"))
        assert dave.last_message().visible_text.startswith("Vraag 4\n")
    assert count(services, Answer) == 3


async def test_duplicate_update_and_double_tap_change_nothing(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        erin = h.user("Erin")
        await onboard(h, erin)
        question = erin.last_message()
        # A double tap: two taps on the question before the bot has answered the first.
        first = emulator.user_taps(erin.user, question, label="9")
        second = emulator.user_taps(erin.user, question, label="4")
        await h.deliver(first)
        sent_before = len(erin.messages())
        record = emulator.message(erin.chat_id, question.message_id).visible_text
        await h.deliver(second)
        # The spinner stops at once; the question stays the record of the first tap.
        assert erin.last_callback_answer is not None
        assert len(erin.messages()) == sent_before
        again = emulator.message(erin.chat_id, question.message_id)
        assert again.visible_text == record and "9" in record and not again.buttons
        # The same update delivered twice by Telegram.
        await erin.tap("5")
        sent_before = len(erin.messages())
        await erin.resend_last_update()
        assert len(erin.messages()) == sent_before
    with services.db.session() as session:
        values = session.scalars(select(Answer.value).order_by(Answer.question_id)).all()
    assert values == [9, 5]


async def test_stale_and_old_version_buttons_are_refused(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        frank = h.user("Frank")
        await onboard(h, frank)
        await frank.tap("7")
        question = frank.last_message()
        sent_before = len(frank.messages())

        async def tap(message: Any, data: str) -> None:
            update = emulator.user_taps(frank.user, message, label=message.button_labels[0])
            update.pop("update_id")
            update["callback_query"] = {**update["callback_query"], "data": data}
            emulator.push_raw_update(update)
            await h.deliver(emulator.updates_log[-1])

        # Buttons of another release or garbage: refused with a notice, nothing else.
        for data in ("q|1|grade_safety|3", "v0|q|1|grade_safety|3", "garbage", "v1|zz|1"):
            await tap(question, data)
            answer = frank.last_callback_answer
            assert answer is not None and answer.show_alert and answer.text, data
            assert len(frank.messages()) == sent_before, data
        # Data that does not belong to the message tapped (another round, another question):
        # nothing happens, and the current question keeps its buttons.
        for data in ("v1|q|999|grade_safety|3", "v1|q|1|grade_liveability|2"):
            await tap(question, data)
            assert frank.last_callback_answer is not None
            assert len(frank.messages()) == sent_before
            assert emulator.message(frank.chat_id, question.message_id).buttons
    with services.db.session() as session:
        assert session.scalars(select(Answer.value)).all() == [7]


async def test_media_and_long_texts_mid_survey_get_a_prompt(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        gina = h.user("Gina")
        await onboard(h, gina)
        question = gina.last_message().visible_text
        await gina.send_sticker()
        assert "knoppen" in gina.last_message().visible_text
        await gina.send_photo(TINY_PNG)
        await gina.send_voice()
        await gina.send_location(52.1, 5.1)
        await gina.send("x" * 3000)
        assert "1 tot en met 10" in gina.last_message().visible_text
        await gina.send("/start")
        assert question in gina.last_message().visible_text
    assert count(services, Answer) == 0


async def test_group_chats_never_start_the_resident_flow(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        hans = h.user("Hans")
        group = h.group("Buurtgroep")
        await group.add_bot(hans)
        await group.send(hans, "/start")
        await group.send(hans, "3563")
    assert count(services, Resident) == 0


async def test_forget_erases_every_row_of_the_resident(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        ivy = h.user("Ivy")
        jan = h.user("Jan")
        for user in (ivy, jan):
            await onboard(h, user)
            await user.tap("8")
        await ivy.send("/forget")
        await ivy.tap(data="v1|f|y")
        assert "gewist" in ivy.last_message().visible_text
    key = pseudonym(TEST_KEY, ivy.id)
    assert count(services, Resident, Resident.pseudonym == key) == 0
    assert count(services, Resident) == 1
    assert count(services, ResidentChat, ResidentChat.chat_id == ivy.chat_id) == 0
    assert count(services, Response) == 1
    assert count(services, Answer) == 1
    assert count(services, OutboxMessage) == 0
    assert count(services, ProcessedUpdate) > 0


async def test_deep_link_preselects_neighbourhood(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        kim = h.user("Kim", language_code="en")
        hood = services.areas.get("utrecht-overvecht").neighbourhoods[0]
        await kim.send(f"/start {hood.code}")
        await kim.tap(data=kim.last_message().buttons[0][0].callback_data)
        await kim.tap(data="v1|lc")
        # The poster placed her: she is told where, and confirms before the survey starts.
        check = kim.last_message()
        assert hood.name in check.visible_text and "Is that right?" in check.visible_text
        await kim.tap("Yes, that's right")
        assert hood.name in emulator.message(kim.chat_id, check.message_id).visible_text
        assert kim.last_message().visible_text.startswith("Question 1\n")
    with services.db.session() as session:
        resident = session.scalars(select(Resident)).one()
        assert resident.neighbourhood_code == hood.code
        assert resident.language == "en"
        assert not (resident.flow or {}).get("step")


async def test_deep_link_to_the_wrong_neighbourhood_can_be_corrected(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        noa = h.user("Noa")
        hood = services.areas.get("utrecht-overvecht").neighbourhoods[0]
        await noa.send(f"/start {hood.code}")
        await noa.tap(data=noa.last_message().buttons[0][0].callback_data)
        await noa.tap(data="v1|lc")
        await noa.tap("Nee, andere buurt")
        assert "postcode" in noa.last_message().visible_text
        await noa.send("8923")  # Leeuwarden, Vrijheidswijk
        assert noa.last_message().visible_text.startswith("Vraag 1\n")
    with services.db.session() as session:
        resident = session.scalars(select(Resident)).one()
        assert resident.area_code == "leeuwarden-oost"
        assert session.scalars(select(Response.area_code)).all() == ["leeuwarden-oost"]


async def test_back_and_skip(services: Any, make_app: Any, emulator: Any) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        lea = h.user("Lea")
        await onboard(h, lea)
        await lea.tap("3")
        await lea.tap(data=button_data(lea, "~b"))
        assert lea.last_message().visible_text.startswith("Vraag 1\n")
        await lea.tap("4")
        assert lea.last_message().visible_text.startswith("Vraag 2\n")
        await lea.tap(data=button_data(lea, "~b"))
        await lea.tap("5")
    with services.db.session() as session:
        assert session.scalars(select(Answer.value)).all() == [5]


async def test_turkish_resident_completes_survey_in_turkish(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        ayse = h.user("Ayşe", language_code="tr")
        await onboard(h, ayse)
        assert "1" in ayse.last_message().visible_text
        texts = [m.visible_text for m in ayse.messages()]
        await answer_default_survey(
            ayse, text="Mahallede daha fazla aydınlatma ve temizlik istiyoruz"
        )
    turkish_survey = services.default_survey
    first_question_tr = turkish_survey.questions[0].text["tr"]
    assert any(first_question_tr in t for t in [m.visible_text for m in ayse.messages()])
    assert texts[0] != services.text("nl", "intro")
    with services.db.session() as session:
        response = session.scalars(select(Response)).one()
        assert response.language == "tr" and response.status == "completed"
        improve = session.scalars(select(Answer).where(Answer.question_id == "improve")).one()
        assert improve.text_language == "tr"


async def test_arabic_writer_without_language_code_is_offered_arabic(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        omar = h.user("Omar", language_code=None)
        await onboard(h, omar)
        assert omar.last_message().visible_text.startswith("Vraag 1\n")
        await omar.send("أنا لا أفهم الهولندية جيدا من فضلك")
        offer = omar.messages()[-1]
        assert "العربية" in offer.visible_text
        await omar.tap(data="v1|ls|ar")
        assert services.default_survey.questions[0].text["ar"] in omar.last_message().visible_text
        # Offered once only.
        await omar.send("أنا لا أفهم الهولندية جيدا من فضلك")
        offers = [c for c in emulator.calls("sendMessage") if "v1|ls|ar" in str(c.params)]
        assert len(offers) == 1
    with services.db.session() as session:
        resident = session.scalars(select(Resident)).one()
        assert resident.language == "ar" and resident.language_source == "chosen"
        assert resident.language_switch_offered


async def test_free_text_answers_store_their_language(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        piet = h.user("Piet", language_code="nl")
        await onboard(h, piet)
        await answer_default_survey(piet, text="ok")
    with services.db.session() as session:
        improve = session.scalars(select(Answer).where(Answer.question_id == "improve")).one()
        assert improve.text_language == "unknown"


async def test_round_closing_mid_survey_keeps_answers_and_says_so(
    services: Any, make_app: Any, emulator: Any, clock: Any
) -> None:
    from datetime import timedelta

    from storage.models import Round

    async with BotHarness(emulator, make_app(services)) as h:
        mia = h.user("Mia")
        await onboard(h, mia)
        await mia.tap("8")
        question = mia.last_message()
        with services.db.session() as session:
            for round_ in session.scalars(select(Round)):
                round_.closes_at = clock.now() + timedelta(minutes=1)
        clock.advance(timedelta(minutes=2))
        await mia.tap("6")
        assert mia.last_callback_answer is not None
        assert "gesloten" in mia.last_message().visible_text
        assert emulator.message(mia.chat_id, question.message_id).buttons == []
    with services.db.session() as session:
        response = session.scalars(select(Response)).one()
        assert response.status == "closed"
        assert session.scalars(select(Answer.value)).all() == [8]


def button_labels(message: Any) -> dict[str, str]:
    """Button label -> callback data of one message."""
    return {b.text: str(b.callback_data) for row in message.buttons for b in row}


async def test_postcode_of_a_focus_municipality_outside_the_area_data_asks(
    services: Any, make_app: Any, emulator: Any
) -> None:
    """A resident of Tilburg whose PC4 the area data does not list is asked, not refused."""
    tilburg = services.areas.get("tilburg-noordwest")
    claimed = {pc4 for area in services.areas for pc4 in area.all_postcodes}
    municipality = services.areas.municipality("GM0855")
    pc4 = next(pc4 for pc4 in municipality.all_postcodes if pc4 not in claimed)
    async with BotHarness(emulator, make_app(services)) as h:
        # 1. She picks a neighbourhood of the focus area from the question: she is placed there.
        tess = h.user("Tess", language_code="nl")
        await onboard(h, tess, postcode=f"{pc4} AB")
        question = tess.last_message()
        assert f"Postcode {pc4} ligt in Tilburg" in question.visible_text
        assert "Tilburg Noordwest" in question.visible_text
        labels = button_labels(question)
        assert {hood.name for hood in tilburg.neighbourhoods} <= set(labels)
        assert labels["Geen van deze buurten"] == "v1|ab|x"
        assert all(len(data.encode()) <= 64 for data in labels.values())
        await tess.tap(data=labels["Heikant"])
        assert any("Heikant" in m.visible_text for m in tess.messages())

        # 2. He lives elsewhere in Tilburg: "none of these" says whom the survey is for and
        #    offers the municipality buttons again, with the names residents know.
        tom = h.user("Tom", language_code="nl")
        await onboard(h, tom, postcode=str(pc4))
        await tom.tap(data="v1|ab|x")
        answer = tom.last_message()
        assert "alleen voor bewoners van de 20 focusgebieden" in answer.visible_text
        municipalities = button_labels(answer)
        assert "Tilburg" in municipalities and "Den Haag" in municipalities
        assert "'s-Gravenhage" not in municipalities

        # 3. A postcode outside all 19 municipalities is still told the survey is not for it.
        olga = h.user("Olga", language_code="nl")
        await onboard(h, olga, postcode="5050")
        assert "niet in een van de 20 focusgebieden" in olga.last_message().visible_text

    with services.db.session() as session:
        residents = {r.pseudonym: r for r in session.scalars(select(Resident))}
        placed = residents[pseudonym(TEST_KEY, tess.id)]
        assert (placed.area_code, placed.neighbourhood_code) == (
            "tilburg-noordwest",
            "tilburg-heikant",
        )
        assert residents[pseudonym(TEST_KEY, tom.id)].area_code is None
        assert residents[pseudonym(TEST_KEY, olga.id)].area_code is None


async def test_postcode_in_a_focus_area_places_or_asks_within_it(
    services: Any, make_app: Any, emulator: Any
) -> None:
    """One PC4 of each of the 20 areas, typed by a resident: placed in, or asked about, it."""
    async with BotHarness(emulator, make_app(services)) as h:
        for number, area in enumerate(services.areas):
            pc4 = area.all_postcodes[0]
            user = h.user(f"Resident {number}", language_code="nl")
            await onboard(h, user, postcode=str(pc4))
            reply = user.last_message()
            hood_codes = {hood.code for hood in area.neighbourhoods}
            offered = {
                data.split("|")[2]
                for data in button_labels(reply).values()
                if data.startswith("v1|n|")
            }
            if offered:
                assert offered <= hood_codes | {
                    h.code for a in services.areas for h in a.neighbourhoods
                }, area.code
                assert offered & hood_codes, area.code
            else:
                texts = " ".join(m.visible_text for m in user.messages())
                assert area.name in texts, (area.code, texts)


async def test_the_total_appears_once_the_modules_are_chosen_and_stays(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        nora = h.user("Nora", language_code="en")
        await onboard(h, nora)
        intro = [m.visible_text for m in nora.messages() if "about 3 minutes" in m.visible_text]
        assert intro, "the survey's own intro comes before the first question"
        await answer_default_survey(nora, topics=("over_u",))
        # 21 questions so far (the follow-up on 'ja' included), then the 3 of the profile.
        headings = []
        for option in ("van_25_44", "koop", "ja"):
            headings.append(nora.last_message().visible_text.split("\n")[0])
            await nora.tap(data=button_data(nora, option))
        closing = nora.last_message().visible_text
    assert headings == ["Question 22 of 24", "Question 23 of 24", "Question 24 of 24"]
    assert closing.startswith("Thank you very much for your answers!")
    with services.db.session() as session:
        answers = dict(session.execute(select(Answer.question_id, Answer.value)).all())
    assert answers["age_band"] == "van_25_44" and answers["children"] == "ja"
