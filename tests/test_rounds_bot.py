"""Rounds end to end: a real PTB Application, the real outbox sender and the emulated Bot API."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.clock import FakeClock
from bot.jobs import ROUND_TICK, register_jobs
from bot.outbox import OutboxSender
from sandbox.harness import BotHarness
from storage.models import Answer, OutboxMessage, Resident, Response, Round
from surveys.loader import load_survey
from surveys.round_file import RoundSpec
from tests.test_resident_flow import onboard
from usecases.publish_round import publish_round
from usecases.round_tick import TickReport, run_round_tick

ALL_TYPES = Path(__file__).parent / "data" / "surveys" / "all_types.yaml"
TZ = ZoneInfo("Europe/Amsterdam")
STAFF_ID = 424242


@pytest.fixture
def service_settings() -> dict[str, Any]:
    """Settings of this module's services."""
    return {"admin_ids": [STAFF_ID]}


def publish(services: Any, clock: FakeClock, *, lasts: timedelta = timedelta(days=7)) -> int:
    """A round of the test survey for Utrecht Overvecht, opening now; its id."""
    spec = RoundSpec(
        name="Najaarspeiling Overvecht",
        survey_path=ALL_TYPES,
        area_codes=["utrecht-overvecht"],
        opens_at=clock.now(),
        closes_at=clock.now() + lasts,
        reminder_after_days=2,
    )
    survey = load_survey(ALL_TYPES)
    source = ALL_TYPES.read_text(encoding="utf-8")
    return publish_round(services.db, spec, survey, source, clock.now(), TZ).round_id


def tick(services: Any, clock: FakeClock) -> TickReport:
    """The round tick as the bot's job runs it."""
    return run_round_tick(
        services.db,
        services.areas,
        clock.now(),
        tz=services.settings.tz,
        catalogue=services.catalogue,
    )


async def deliver_outbox(services: Any, app: Any, clock: FakeClock) -> Any:
    """Send what the outbox holds through the app's bot to the emulator."""

    async def sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=max(0.0, seconds)))
        await asyncio.sleep(0)

    sender = OutboxSender(services.db, app.bot, clock, sleep=sleep)
    return await sender.run_once()


def rows(services: Any, model: Any, *where: Any) -> list[Any]:
    """Rows of `model` matching `where`."""
    with services.db.session() as session:
        return list(session.scalars(select(model).where(*where)))


async def test_invitation_is_delivered_and_its_button_starts_the_round(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    app = make_app(services)
    async with BotHarness(emulator, app) as h:
        alice = h.user("Alice", language_code="nl")
        carol = h.user("Carol", language_code="en")
        await onboard(h, alice)
        await onboard(h, carol)
        # Both are midway through the standing survey when the round opens.
        assert alice.last_message().visible_text.startswith("Vraag 1\n")
        # Carol blocks the bot and its my_chat_member update is lost (one the bot hears marks her
        # unreachable at once: tests/test_bot_membership.py): the sender's 403 finds out.
        emulator.block(carol.user)

        round_id = publish(services, clock)
        report = tick(services, clock)
        assert report.opened == [round_id] and report.invitations == 2
        assert report.superseded == 2
        sent = await deliver_outbox(services, app, clock)
        assert (sent.sent, sent.failed) == (1, 1)

        invitation = alice.last_message()
        assert "Testpeiling" in invitation.visible_text
        assert "Overvecht" in invitation.visible_text
        [[button]] = invitation.buttons
        assert (button.text, button.callback_data) == ("Doe mee", f"v1|s|{round_id}")

        await alice.tap(data=f"v1|s|{round_id}")
        assert "Welk cijfer?" in alice.last_message().visible_text
        await alice.tap("7")
        assert "Weleens onveilig?" in alice.last_message().visible_text

        # Carol blocked the bot: marked unreachable by the sender, never reminded.
        clock.advance(timedelta(days=2))
        assert tick(services, clock).reminders == 1  # Alice only (started, not finished)
        [carol_row] = rows(services, Resident, Resident.language == "en")
        assert carol_row.unreachable_at is not None
        await deliver_outbox(services, app, clock)
        assert "nog niet klaar" in alice.last_message().visible_text

    with services.db.session() as session:
        response = session.scalars(select(Response).where(Response.round_id == round_id)).one()
        assert response.status == "started" and response.reminders_sent == 1
        answers = session.scalars(select(Answer).where(Answer.response_id == response.id)).all()
        assert [(a.question_id, a.value) for a in answers] == [("grade", 7)]
        standing = session.scalars(
            select(Response).join(Round).where(Round.standing.is_(True))
        ).all()
    # The standing survey was ended (kept as partial) when the published round opened.
    assert {r.status for r in standing} == {"closed"}


async def test_resident_arriving_during_a_round_answers_it_at_once(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    round_id = publish(services, clock)
    tick(services, clock)
    async with BotHarness(emulator, make_app(services)) as h:
        dave = h.user("Dave", language_code="en")
        await onboard(h, dave)
        assert "Which grade?" in dave.last_message().visible_text
    [response] = rows(services, Response)
    assert response.round_id == round_id
    # Arrived after the invitations went out: not invited afterwards either.
    assert rows(services, OutboxMessage) == []


async def test_round_closing_midway_keeps_answers_and_says_so(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    round_id = publish(services, clock, lasts=timedelta(hours=1))
    tick(services, clock)
    app = make_app(services)
    async with BotHarness(emulator, app) as h:
        erin = h.user("Erin")
        frank = h.user("Frank")
        for user in (erin, frank):
            await onboard(h, user)
            await user.tap("6")

        # Past closing time, before the tick: the resident flow itself refuses the answer.
        clock.advance(timedelta(hours=1))
        await erin.tap(data=f"v1|q|{round_id}|ever|ja")
        assert "gesloten" in erin.last_message().visible_text
        assert "bewaard" in erin.last_message().visible_text

        # The tick closes the round and tells residents who were still answering.
        report = tick(services, clock)
        assert report.closed == [round_id] and report.closed_responses == 1
        assert report.closed_notices == 1
        await deliver_outbox(services, app, clock)
        assert "is gesloten" in frank.last_message().visible_text
        before = len(frank.messages())
        await frank.tap(data=f"v1|q|{round_id}|ever|ja")
        assert len(frank.messages()) == before
        assert frank.last_callback_answer is not None

    with services.db.session() as session:
        statuses = set(session.scalars(select(Response.status)))
        values = session.scalars(select(Answer.value)).all()
    assert statuses == {"closed"}
    assert values == [6, 6]


async def test_rounds_command_for_staff_only(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    publish(services, clock)
    tick(services, clock)
    async with BotHarness(emulator, make_app(services)) as h:
        resident = h.user("Gerda")
        await onboard(h, resident)
        await resident.tap("8")
        staff = h.user("Programmateam", user_id=STAFF_ID)
        await staff.send("/rounds")
        status = staff.last_message().visible_text
        assert "Open rondes" in status
        assert "Najaarspeiling Overvecht" in status and "testpeiling 1" in status
        assert "Utrecht Overvecht: 1 begonnen, 0 afgerond" in status
        assert "Doorlopende buurtpeiling" in status

        await resident.send("/rounds")
        answer = resident.last_message().visible_text
        assert answer == services.text("nl", "notice.unknown_command")
        assert "Najaarspeiling" not in answer

        group = h.group("Alliantie", members=(staff,))
        before = len(group.messages())
        await group.send(staff, "/rounds")
        assert len(group.messages()) == before  # never in a group, not even for staff


async def test_round_job_runs_the_tick_at_start_up(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    round_id = publish(services, clock)
    app = make_app(services)
    # As in production: registered in post_init, before the JobQueue starts.
    register_jobs(app, [replace(ROUND_TICK, every=timedelta(hours=1))])
    assert {job.name for job in app.job_queue.jobs()} == {"round-tick", "round-tick-catch-up"}
    # A start-up slower than APScheduler's default 1 s misfire grace must not drop the catch-up.
    await asyncio.sleep(1.2)

    def status() -> str:
        with services.db.session() as session:
            found = session.get(Round, round_id)
            assert found is not None
            return str(found.status)

    async with BotHarness(emulator, app):
        # The first run is at start-up (catch-up): wait for it, no timing asserted.
        for _ in range(400):
            if status() == "open":
                break
            await asyncio.sleep(0.025)
    assert status() == "open"
