"""Alliance responses to residents ("jullie zeiden, wij doen") end to end: a real PTB Application,
the emulated Bot API, the real outbox sender; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import cli
from bot.clock import FakeClock
from handlers.responses import env
from sandbox.harness import BotHarness, GroupHandle, UserHandle
from storage import alliance_responses as store
from storage import alliances as alliance_store
from storage.models import (
    Alliance,
    AllianceResponse,
    AllianceResponseRecipient,
    DigestSent,
    OutboxMessage,
    Resident,
)
from storage.residents import create_resident, forget_resident
from storage.retention import apply_retention
from surveys.loader import load_survey
from surveys.round_file import RoundSpec
from tests.conftest import TEST_KEY
from tests.test_resident_flow import onboard
from tests.test_rounds_bot import deliver_outbox, tick
from tests.test_wire import forged_tap
from usecases import alliance_responses as uc
from usecases.publish_round import publish_round
from usecases.queue_digests import queue_on_demand
from usecases.response_texts import (
    TELEGRAM_LIMIT,
    TEXT_LIMIT,
    About,
    ResponseTexts,
    utf16_length,
)

ALL_TYPES = Path(__file__).parent / "data" / "surveys" / "all_types.yaml"
TZ = ZoneInfo("Europe/Amsterdam")
STAFF_ID = 515151
TEXT_NL = (
    "Wij hoorden: zwerfafval bij het winkelcentrum.\nVanaf 1 december vegen we ook op zaterdag."
)
TEXT_EN = "We heard: litter near the shopping centre.\nFrom 1 December we also sweep on Saturdays."


@pytest.fixture
def service_settings() -> dict[str, Any]:
    """Settings of this module's services."""
    return {"admin_ids": [STAFF_ID]}


def publish(services: Any, clock: FakeClock) -> int:
    """A round for Utrecht Overvecht and Leeuwarden-Oost, opening now; its id."""
    spec = RoundSpec(
        name="Najaarspeiling 2026",
        survey_path=ALL_TYPES,
        area_codes=["utrecht-overvecht", "leeuwarden-oost"],
        opens_at=clock.now(),
        closes_at=clock.now() + timedelta(days=7),
    )
    source = ALL_TYPES.read_text(encoding="utf-8")
    return publish_round(
        services.db, spec, load_survey(ALL_TYPES), source, clock.now(), TZ
    ).round_id


async def link(
    h: BotHarness, services: Any, title: str, area: str
) -> tuple[GroupHandle, UserHandle]:
    """A group linked to `area`, and the member who linked it."""
    member = h.user(f"Lid {title}")
    group = h.group(title)
    await group.add_bot(member)
    with services.db.session() as session:
        code = alliance_store.create_code(session, area, TEST_KEY, services.clock.now())
    await group.send(member, f"/koppel {code}")
    assert "gekoppeld" in group.last_message().visible_text
    return group, member


async def answer(h: BotHarness, user: UserHandle, postcode: str = "3563") -> None:
    """Onboard and answer the round's first question."""
    await onboard(h, user, postcode)
    await user.tap("7")


def response_id_of(message: Any) -> int:
    """The id in a draft's submit button."""
    data = message.buttons[0][0].callback_data
    assert data.startswith("v1|rs|"), data
    return int(data.split("|")[2])


def the_response(services: Any, response_id: int) -> AllianceResponse:
    with services.db.session() as session:
        found = store.get_response(session, response_id)
        assert found is not None
        session.expunge(found)
        return found


def responses_to(user: UserHandle) -> list[Any]:
    """The alliance responses a resident received."""
    return [
        m
        for m in user.messages()
        if "Jullie zeiden" in m.visible_text
        or "You said, we do" in m.visible_text
        or "Siz söylediniz" in m.visible_text
    ]


async def test_a_response_reaches_those_who_answered_once_in_their_language(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    round_id = publish(services, clock)
    tick(services, clock)
    app = make_app(services)
    async with BotHarness(emulator, app) as h:
        alice = h.user("Alice", language_code="nl")
        ben = h.user("Ben", language_code="en")
        cem = h.user("Cem", language_code="tr")
        dana = h.user("Dana", language_code="nl")  # answers, then /stop
        eva = h.user("Eva", language_code="nl")  # answers the same round in another area
        fay = h.user("Fay", language_code="nl")  # onboarded, answered nothing
        for user in (alice, ben, cem, dana):
            await answer(h, user)
        await answer(h, eva, "8924")
        await onboard(h, fay)
        await dana.send("/stop")
        staff = h.user("Programmateam", user_id=STAFF_ID)
        await staff.send("/start")
        group, member = await link(h, services, "Alliantie Overvecht", "utrecht-overvecht")
        other, _ = await link(h, services, "Alliantie Leeuwarden", "leeuwarden-oost")

        # Staff write their response: a preview as residents see it, and the details.
        await group.send(member, f"/reactie {TEXT_NL}")
        preview, details = group.messages()[-2:]
        assert "Jullie zeiden, wij doen" in preview.visible_text
        assert "Utrecht Overvecht" in preview.visible_text and "Testpeiling" in preview.visible_text
        assert TEXT_NL in preview.visible_text  # line breaks kept
        assert preview.buttons == []  # the reaction buttons are for residents only
        assert "Najaarspeiling 2026" in details.visible_text
        assert "minder dan 10 bewoners" in details.visible_text  # 3 recipients: suppressed
        response_id = response_id_of(details)
        assert the_response(services, response_id).round_id == round_id

        # An English translation; its preview is the English residents' view.
        await group.send(member, f"/vertaling {response_id} en {TEXT_EN}")
        english, details = group.messages()[-2:]
        assert "You said, we do" in english.visible_text and TEXT_EN in english.visible_text
        assert "en (Engels)" in details.visible_text
        assert the_response(services, response_id).translations == {"en": TEXT_EN}

        # Put forward: the preview's buttons go, programme staff get the request.
        await group.tap(member, data=f"v1|rs|{response_id}")
        submitted = next(m for m in group.messages() if m.message_id == details.message_id)
        assert "Voorgelegd aan het programmateam" in submitted.visible_text
        assert submitted.buttons == []
        assert the_response(services, response_id).status == store.PENDING
        await deliver_outbox(services, app, clock)
        request = staff.last_message()
        assert f"Reactie #{response_id} ter goedkeuring" in request.visible_text
        assert (
            "Alliantie Overvecht" in request.visible_text and "3 bewoners" in request.visible_text
        )
        shown_to_staff = "\n".join(m.visible_text for m in staff.messages())
        assert TEXT_NL in shown_to_staff and TEXT_EN in shown_to_staff
        assert responses_to(alice) == []  # nothing before approval

        # A resident forging the approval gets told; nothing changes.
        await h.deliver(forged_tap(alice, f"v1|ra|{response_id}"))
        assert alice.last_callback_answer is not None
        assert alice.last_callback_answer.text == services.text("nl", "responses.review.not_staff")
        assert the_response(services, response_id).status == store.PENDING

        # Staff approve: queued once for the residents of the area who answered.
        await staff.tap_on(request, data=f"v1|ra|{response_id}")
        approved = next(m for m in staff.messages() if m.message_id == request.message_id)
        assert "Goedgekeurd" in approved.visible_text and approved.buttons == []
        await deliver_outbox(services, app, clock)

        [to_alice] = responses_to(alice)
        assert TEXT_NL in to_alice.visible_text and "Nederlands" not in to_alice.visible_text
        assert [b.text for b in to_alice.buttons[0]] == ["👍 Nuttig", "👎 Niet nuttig"]
        [to_ben] = responses_to(ben)
        assert TEXT_EN in to_ben.visible_text and TEXT_NL not in to_ben.visible_text
        assert [b.text for b in to_ben.buttons[0]] == ["👍 Useful", "👎 Not useful"]
        [to_cem] = responses_to(cem)  # no Turkish translation: Dutch, with a Turkish note
        assert TEXT_NL in to_cem.visible_text
        assert "Felemenkçe" in to_cem.visible_text
        assert [b.text for b in to_cem.buttons[0]] == ["👍 Yararlı", "👎 Yararlı değil"]
        for nobody in (dana, eva, fay):
            assert responses_to(nobody) == []
        assert "goedgekeurd" in group.last_message().visible_text
        assert "minder dan 10 bewoners" in group.last_message().visible_text
        assert all("Reactie" not in m.visible_text for m in other.messages()[1:])

        # Approving twice (another staff copy, or a double tap) changes nothing, sends nothing.
        await h.deliver(forged_tap(staff, f"v1|ra|{response_id}"))
        assert staff.last_callback_answer is not None
        assert "goedgekeurd en verstuurd" in staff.last_callback_answer.text
        await deliver_outbox(services, app, clock)
        assert len(responses_to(alice)) == len(responses_to(ben)) == 1

        # Reactions: counted once per resident (the latest), the buttons go.
        await alice.tap_on(to_alice, data=f"v1|rh|{response_id}|y")
        reacted = next(m for m in alice.messages() if m.message_id == to_alice.message_id)
        assert "U vond dit nuttig" in reacted.visible_text and reacted.buttons == []
        await alice.resend_last_update()  # Telegram delivers the tap again
        await ben.tap_on(to_ben, data=f"v1|rh|{response_id}|n")
        await cem.tap_on(to_cem, data=f"v1|rh|{response_id}|y")
        # A resident who did not receive it cannot count.
        await h.deliver(forged_tap(fay, f"v1|rh|{response_id}|y"))
        assert fay.last_message().visible_text == services.text("nl", "notice.old_version")
        with services.db.session() as session:
            tally = store.tallies(session, [response_id])[response_id]
        assert (tally.recipients, tally.helpful, tally.not_helpful) == (3, 2, 1)

        # The group sees counts, small ones as "fewer than 10".
        await group.send(member, "/reacties")
        overview = group.last_message().visible_text
        assert f"#{response_id}" in overview and "goedgekeurd en verstuurd" in overview
        assert "nuttig: minder dan 10" in overview and "2" not in overview.split("·")[-1]

    with services.db.session() as session:
        recipients = session.scalars(select(AllianceResponseRecipient)).all()
        kinds = {row.kind for row in session.scalars(select(OutboxMessage))}
    assert sorted(r.language for r in recipients) == ["en", "nl", "nl"]
    assert {"alliance_response", "response_review", "response_status"} <= kinds


async def test_bad_input_gets_a_clear_message_and_stores_nothing(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    publish(services, clock)
    tick(services, clock)
    async with BotHarness(emulator, make_app(services)) as h:
        alice = h.user("Alice")
        await answer(h, alice)
        group, member = await link(h, services, "Alliantie Overvecht", "utrecht-overvecht")
        unlinked = h.group("Buurtapp")
        await unlinked.add_bot(member)

        async def says(where: GroupHandle, text: str) -> str:
            await where.send(member, text)
            return str(where.last_message().visible_text)

        assert "Schrijf /reactie met de tekst erachter" in await says(group, "/reactie")
        assert "Schrijf /reactie met de tekst erachter" in await says(group, "/reactie   \n ")
        long = "a" * (TEXT_LIMIT + 1)
        too_long = await says(group, f"/reactie {long}")
        assert "3.501 tekens" in too_long and "hoogstens 3.500" in too_long
        assert "niet gekoppeld" in await says(unlinked, "/reactie Wij hoorden u")
        assert "niet gekoppeld" in await says(unlinked, "/reacties")
        await member.send("/reactie Wij hoorden u")
        assert "groep van een alliantie" in member.last_message().visible_text
        assert "/vertaling NUMMER TAAL" in await says(group, "/vertaling")
        assert "geen reactie #999" in await says(group, "/vertaling 999 en We heard you")
        # A group with no respondents in its area: nobody to send to.
        empty, empty_member = await link(h, services, "Alliantie Delft", "delft-west")
        await empty.send(empty_member, "/reactie Wij hoorden u")
        assert "er is niemand om deze reactie naar te sturen" in empty.last_message().visible_text
        assert "nog geen reactie" in await says(group, "/reacties")

        await group.send(member, "/reactie Wij hoorden u")
        details = group.last_message()
        response_id = response_id_of(details)
        assert "‘xx’" in await says(group, f"/vertaling {response_id} xx Hallo")
        assert "/vertaling NUMMER TAAL" in await says(group, f"/vertaling {response_id} en")
        too_long = await says(group, f"/vertaling {response_id} en {long}")
        assert "3.501" in too_long
        assert the_response(services, response_id).translations == {}
        # Another group cannot touch it.
        other, other_member = await link(h, services, "Alliantie Leeuwarden", "leeuwarden-oost")
        await other.send(other_member, f"/vertaling {response_id} en Hello")
        assert f"geen reactie #{response_id}" in other.last_message().visible_text
        # Cancelled: no more changes, no approval.
        await group.tap(member, data=f"v1|rx|{response_id}")
        cancelled = next(m for m in group.messages() if m.message_id == details.message_id)
        assert "Geannuleerd" in cancelled.visible_text and cancelled.buttons == []
        assert f"#{response_id}: geannuleerd" in await says(
            group, f"/vertaling {response_id} en Hello"
        )
        staff = h.user("Programmateam", user_id=STAFF_ID)
        await staff.send("/start")
        await staff.send("/reacties")
        assert "Er wachten geen reacties" in staff.last_message().visible_text
        await h.deliver(forged_tap(staff, f"v1|ra|{response_id}"))
        assert staff.last_callback_answer is not None
        assert "wacht niet op goedkeuring: geannuleerd" in staff.last_callback_answer.text
        await staff.send("/start")  # the forged tap turned its message into the answer
        await h.deliver(forged_tap(staff, "v1|ra|4242"))
        assert staff.last_callback_answer is not None
        assert staff.last_callback_answer.text == "Er is geen reactie #4242."
        # Not staff: /reacties is an unknown command in private.
        await alice.send("/reacties")
        assert alice.last_message().visible_text == services.text("nl", "notice.unknown_command")

    with services.db.session() as session:
        statuses = [r.status for r in session.scalars(select(AllianceResponse))]
        queued = session.scalars(select(OutboxMessage.kind)).all()
    assert statuses == [store.CANCELLED]
    assert "alliance_response" not in queued and "response_review" not in queued


async def test_a_new_draft_replaces_the_old_and_stop_withdraws_a_queued_message(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    publish(services, clock)
    tick(services, clock)
    app = make_app(services)
    async with BotHarness(emulator, app) as h:
        alice, bob = h.user("Alice"), h.user("Bob")
        for user in (alice, bob):
            await answer(h, user)
        group, member = await link(h, services, "Alliantie Overvecht", "utrecht-overvecht")
        await group.send(member, "/reactie Eerste versie")
        mine = [m for m in emulator.messages(group.chat_id) if m.sender_id == member.id]
        command = mine[-1]
        assert command.text == "/reactie Eerste versie"
        zeroth = response_id_of(group.last_message())
        # A typo fixed by editing the command: a new preview, and the new draft replaces the old.
        await h.deliver(emulator.user_edits(member.user, command, "/reactie Eerste versie!"))
        first = response_id_of(group.last_message())
        assert first != zeroth and the_response(services, zeroth).status == store.CANCELLED
        assert the_response(services, first).text == "Eerste versie!"
        # Written at leisure, then sent with /reactie as a reply: the text of that message.
        draft = await group.send(member, "Wij hoorden u.\nWe gaan aan de slag.")
        await group.send(member, "/reactie", reply_to=draft)
        second = response_id_of(group.last_message())
        assert f"(#{first})" in group.last_message().visible_text
        assert the_response(services, first).status == store.CANCELLED
        assert the_response(services, second).text == "Wij hoorden u.\nWe gaan aan de slag."
        # The old draft's buttons do nothing any more.
        await group.tap(member, data=f"v1|rs|{first}")
        assert the_response(services, first).status == store.CANCELLED
        await group.tap(member, data=f"v1|rs|{second}")

        # No staff in Telegram: the CLI approves; Bob stops before the sender runs.
        result = CliRunner().invoke(
            cli,
            [
                "response",
                "approve",
                str(second),
                "--yes",
                "--database-url",
                services.settings.database_url,
            ],
        )
        assert result.exit_code == 0, result.output
        assert "2 message(s) queued" in result.output
        await bob.send("/stop")
        clock.set(datetime.now(UTC) + timedelta(minutes=1))  # the CLI queued them at real time
        await deliver_outbox(services, app, clock)
        assert len(responses_to(alice)) == 1
        assert responses_to(bob) == []
    with services.db.session() as session:
        tally = store.tallies(session, [second])[second]
    assert tally.recipients == 1  # Bob's withdrawn message is not counted as sent


async def test_a_reply_to_a_digest_drafts_a_response_about_its_round(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    round_id = publish(services, clock)
    tick(services, clock)
    app = make_app(services)
    async with BotHarness(emulator, app) as h:
        await answer(h, h.user("Alice"))
        group, member = await link(h, services, "Alliantie Overvecht", "utrecht-overvecht")
        confirmation = group.last_message()
        result = queue_on_demand(
            services.db,
            group.chat_id,
            services.areas,
            clock.now(),
            min_n=services.settings.min_cell_size,
            tz=services.settings.tz,
            chart=False,
        )
        assert result.outcome == "queued"
        await deliver_outbox(services, app, clock)
        digest = group.last_message()
        before = len(group.messages())
        # A reply to another bot message is conversation, not a response.
        await group.send(member, "Dank je, bot", reply_to=confirmation)
        assert len(group.messages()) == before
        await group.send(member, "Wij gaan het park opknappen.", reply_to=digest)
        preview, details = group.messages()[-2:]
        assert "Wij gaan het park opknappen." in preview.visible_text
        response_id = response_id_of(details)
    with services.db.session() as session:
        digest_round = session.scalars(select(DigestSent.round_id)).one()
    assert digest_round == round_id
    assert the_response(services, response_id).round_id == round_id


def test_the_longest_message_fits_telegram_in_every_language(services: Any) -> None:
    texts = ResponseTexts(services.catalogue, 10, "Europe/Amsterdam")
    longest_area = max((a.name for a in services.areas.all()), key=len)
    about = About(
        id=2_147_483_647,
        status=store.APPROVED,
        area_name=longest_area,
        round_name="r" * 200,
        titles={"nl": "T" * 200},
        title_default="nl",
        text="😀" * (TEXT_LIMIT // 2),  # emoji count twice, as in Telegram
        translations={},
    )
    for lang in services.catalogue.languages:
        reply, _, _ = texts.for_resident(about, lang)
        assert utf16_length(reply.text) <= TELEGRAM_LIMIT, lang
        for row in reply.buttons:
            for _, data in row:
                assert len(data.encode()) <= 64


def test_cli_refuses_unknown_and_not_waiting_responses(services: Any, clock: FakeClock) -> None:
    url = services.settings.database_url
    runner = CliRunner()
    result = runner.invoke(cli, ["response", "approve", "999", "--yes", "--database-url", url])
    assert result.exit_code == 1 and "no response 999" in result.output
    round_id = publish(services, clock)
    with services.db.session() as session:
        alliance = Alliance(
            area_code="utrecht-overvecht",
            chat_id=-4001,
            title="Alliantie",
            language="nl",
            schedule={},
            linked_at=clock.now(),
        )
        session.add(alliance)
        session.flush()
        draft, _ = store.create_draft(
            session,
            alliance_id=alliance.id,
            area_code="utrecht-overvecht",
            round_id=round_id,
            text="Wij hoorden u",
            now=clock.now(),
        )
        draft_id = draft.id
    result = runner.invoke(
        cli, ["response", "approve", str(draft_id), "--yes", "--database-url", url]
    )
    assert result.exit_code == 1 and "a draft" in result.output
    with services.db.session() as session:
        store.move(session, draft_id, [store.DRAFT], store.PENDING, submitted_at=clock.now())
    result = runner.invoke(
        cli,
        [
            "response",
            "reject",
            str(draft_id),
            "--reason",
            "Te vaag",
            "--yes",
            "--database-url",
            url,
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        cli, ["response", "reject", str(draft_id), "--yes", "--database-url", url]
    )
    assert result.exit_code == 1 and "rejected" in result.output
    result = runner.invoke(cli, ["response", "show", str(draft_id), "--database-url", url])
    assert "Reason: Te vaag" in result.output and "Wij hoorden u" in result.output
    result = runner.invoke(cli, ["response", "list", "--database-url", url])
    assert result.exit_code == 0 and "rejected" in result.output
    with services.db.session() as session:
        news = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "response_status")
        ).one()
    assert "Reden: Te vaag" in news.payload["text"]


def approved_with_reactions(
    services: Any, clock: FakeClock, helpful: int, not_helpful: int, silent: int
) -> tuple[int, int]:
    """An approved response of a linked group, sent to residents who reacted so; (alliance chat
    id, response id)."""
    round_id = publish(services, clock)
    now = clock.now()
    with services.db.session() as session:
        alliance = Alliance(
            area_code="utrecht-overvecht",
            chat_id=-4002,
            title="Alliantie",
            language="nl",
            schedule={},
            linked_at=now,
        )
        session.add(alliance)
        session.flush()
        response, _ = store.create_draft(
            session,
            alliance_id=alliance.id,
            area_code="utrecht-overvecht",
            round_id=round_id,
            text="Wij hoorden u",
            now=now,
        )
        store.move(
            session, response.id, [store.DRAFT, store.PENDING], store.APPROVED, reviewed_at=now
        )
        reactions = [store.HELPFUL] * helpful + [store.NOT_HELPFUL] * not_helpful + [None] * silent
        for n, reaction in enumerate(reactions):
            resident = create_resident(
                session,
                pseudonym=f"p{n}",
                chat_id=900 + n,
                language="nl",
                language_source="chosen",
                now=now,
            )
            store.record_recipients(
                session, response.id, [store.NewRecipient(resident.id, "nl", True)], now
            )
            if reaction is not None:
                assert store.set_reaction(session, response.id, resident.id, reaction, now)
        return alliance.chat_id, response.id


@pytest.mark.parametrize(
    ("helpful", "not_helpful", "shown"),
    [
        (12, 3, ("Gestuurd aan 20 bewoners", "nuttig: 12", "niet nuttig: minder dan 10")),
        (10, 10, ("Gestuurd aan 25 bewoners", "nuttig: 10", "niet nuttig: 10")),
        (2, 1, ("Gestuurd aan minder dan 10 bewoners", "nuttig: minder dan 10")),
    ],
)
def test_the_group_sees_reaction_counts_with_small_numbers_suppressed(
    services: Any, clock: FakeClock, helpful: int, not_helpful: int, shown: tuple[str, ...]
) -> None:
    silent = {(12, 3): 5, (10, 10): 5, (2, 1): 0}[(helpful, not_helpful)]
    chat_id, _ = approved_with_reactions(services, clock, helpful, not_helpful, silent)
    with services.db.session() as session:
        result = uc.overview(session, env(services), chat_id=chat_id, update_id=1, now=clock.now())
    assert result is not None
    [reply] = result.replies
    for part in shown:
        assert part in reply.text, reply.text
    for hidden in {helpful, not_helpful} - {n for n in (helpful, not_helpful) if n >= 10}:
        assert f": {hidden}" not in reply.text
    assert "onder de 10" in reply.text


def test_retention_keeps_the_counts_and_forget_erases_the_resident(
    services: Any, clock: FakeClock
) -> None:
    _, response_id = approved_with_reactions(services, clock, 2, 1, 1)
    with services.db.session() as session:
        first = session.scalars(select(Resident).order_by(Resident.id)).first()
        assert first is not None
        forget_resident(session, first)  # /forget: their recipient row and reaction go too
    with services.db.session() as session:
        assert store.tallies(session, [response_id])[response_id] == store.Tally(3, 1, 1)
        apply_retention(session, clock.now() + timedelta(days=400), days=365)
    with services.db.session() as session:
        assert session.scalars(select(Resident)).all() == []
        rows = session.scalars(select(AllianceResponseRecipient)).all()
        assert [r.resident_id for r in rows] == [None, None, None]
        assert store.tallies(session, [response_id])[response_id] == store.Tally(3, 1, 1)
