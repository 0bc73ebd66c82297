"""Digests end to end: link groups, drive the tick with a test clock, send through the outbox
into the Bot API emulator, and check what each group received."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bot.clock import FakeClock
from bot.outbox import OutboxSender
from digests.table import parse_csv
from sandbox.harness import BotHarness, GroupHandle
from storage import alliances as store
from storage.models import DigestSent, OutboxMessage
from tests.conftest import TEST_KEY
from tests.test_alliance_data import seed
from usecases.queue_digests import run_digest_tick

NEXT_MONDAY_RUN = datetime(2026, 11, 9, 8, 0, tzinfo=UTC)  # Monday 09:00 Amsterdam (CET)


def invite(services: Any, area: str) -> str:
    with services.db.session() as session:
        return store.create_code(session, area, TEST_KEY, services.clock.now())


async def linked_group(h: BotHarness, services: Any, title: str, area: str) -> GroupHandle:
    member = h.user(f"Lid {title}")
    group = h.group(title)
    await group.add_bot(member)
    await group.send(member, f"/koppel {invite(services, area)}")
    assert "gekoppeld" in group.last_message().visible_text
    return group


async def deliver(h: BotHarness, services: Any, clock: FakeClock) -> None:
    """Send everything queued, sleeping on the test clock."""

    async def sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=max(0.0, seconds)))
        await asyncio.sleep(0)

    sender = OutboxSender(services.db, h.app.bot, clock, sleep=sleep, db_in_thread=False)
    await sender.run_once()


def tick(services: Any, now: datetime) -> Any:
    return run_digest_tick(
        services.db,
        services.areas,
        now,
        min_n=services.settings.min_cell_size,
        tz=services.settings.tz,
        chart=True,
    )


def digests_of(group: GroupHandle) -> list[Any]:
    """Bot messages after the link confirmation."""
    return group.messages()[1:]


async def test_linked_chats_get_their_own_area_on_schedule_once(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    db = services.db
    start = clock.now()
    seed(
        db,
        area="utrecht-overvecht",
        neighbourhood="overvecht-zuid",
        n=14,
        at=start,
        grade=8,
        text="Meer groen in het park, bel 0612345678",
    )
    seed(db, area="utrecht-overvecht", neighbourhood="overvecht-noord", n=12, at=start, grade=6)
    seed(db, area="utrecht-overvecht", neighbourhood="overvecht-vechtzoom", n=3, at=start, grade=2)
    seed(db, area="rotterdam-zuid", neighbourhood="rotterdam-feijenoord", n=15, at=start, grade=4)
    async with BotHarness(emulator, make_app(services)) as h:
        overvecht = await linked_group(h, services, "Alliantie Overvecht", "utrecht-overvecht")
        rotterdam = await linked_group(h, services, "Alliantie Rotterdam-Zuid", "rotterdam-zuid")
        bystander = h.user("Buurman")
        unlinked = h.group("Buurtapp")
        await unlinked.add_bot(bystander)
        assert "Utrecht Overvecht" in overvecht.last_message().visible_text

        # This Monday's 09:00 run was before the link: nothing is due yet.
        assert tick(services, clock.now()).queued == []

        clock.set(NEXT_MONDAY_RUN + timedelta(seconds=30))
        report = tick(services, clock.now())
        assert sorted(d.kind for d in report.queued) == ["scheduled", "scheduled"]
        await deliver(h, services, clock)

        got = digests_of(overvecht)
        texts = "\n".join(m.visible_text for m in got if m.text is not None)
        assert "Utrecht Overvecht" in texts
        assert "Rotterdam" not in texts and "Feijenoord" not in texts
        assert [m.method for m in got][-2:] == ["sendPhoto", "sendDocument"]
        assert "photo" in got[-2].content
        document = got[-1].content["document"]
        assert document["file_name"].startswith("buurtstem-utrecht-overvecht-2026-11-09")
        rows = parse_csv(emulator.file_bytes(got[-1].files[0]))
        assert {r["area"] for r in rows} == {"utrecht-overvecht"}
        # Vechtzoom has 3 respondents (< 10): never a figure, in text or CSV.
        vechtzoom = [r for r in rows if r["neighbourhood"] == "overvecht-vechtzoom"]
        assert vechtzoom and all(r["n"] == "" and r["value"] == "" for r in vechtzoom)
        assert all(r["suppressed"] for r in vechtzoom)
        for line in texts.splitlines():
            if "Vechtzoom" in line:
                assert "te weinig" in line, line
        assert "0612345678" not in texts

        rotterdam_texts = "\n".join(m.visible_text for m in digests_of(rotterdam))
        assert "Rotterdam-Zuid" in rotterdam_texts and "Overvecht" not in rotterdam_texts
        assert unlinked.messages() == []

        # The same tick again, and again later the same week: nothing new.
        sent_before = len(emulator.sent_to(overvecht.chat_id))
        assert tick(services, clock.now()).queued == []
        assert tick(services, clock.now() + timedelta(days=3)).queued == []
        await deliver(h, services, clock)
        assert len(emulator.sent_to(overvecht.chat_id)) == sent_before

    # The bot was down for two Mondays; a new application catches up the latest run only.
    restart = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    clock.set(restart)
    seed(
        db,
        area="utrecht-overvecht",
        neighbourhood="overvecht-zuid",
        n=10,
        at=datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
        grade=9,
    )
    async with BotHarness(emulator, make_app(services)) as h2:
        report = tick(services, clock.now())
        assert len(report.queued) == 2
        assert {d.period_end for d in report.queued} == {datetime(2026, 11, 23, 8, 0, tzinfo=UTC)}
        assert tick(services, clock.now()).queued == []
        await deliver(h2, services, clock)
    with db.session() as session:
        alliance = store.alliance_of_chat(session, overvecht.chat_id)
        assert alliance is not None
        ends = session.scalars(
            select(DigestSent.period_end)
            .where(DigestSent.alliance_id == alliance.id)
            .order_by(DigestSent.period_end)
        ).all()
        last = store.last_digest(session, alliance.id)
        assert last is not None and last.published_n
    assert ends == [NEXT_MONDAY_RUN, datetime(2026, 11, 23, 8, 0, tzinfo=UTC)]
    caught_up = "\n".join(m.visible_text for m in emulator.sent_to(overvecht.chat_id)[-5:])
    assert "Sinds de vorige digest" in caught_up or "Deze periode" in caught_up


async def test_final_digest_when_a_round_closes(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    from storage.models import Round

    db = services.db
    now = clock.now()
    with db.session() as session:
        standing = session.scalars(select(Round).where(Round.standing.is_(True))).one()
        published = Round(
            name="Najaarspeiling 2026",
            survey_version_id=standing.survey_version_id,
            area_codes=["delft-west"],
            opens_at=now,
            closes_at=now + timedelta(days=3),
            max_reminders=0,
            status="open",
            standing=False,
            opened_at=now,
            created_at=now,
        )
        session.add(published)
        session.flush()
        round_id = published.id
    async with BotHarness(emulator, make_app(services)) as h:
        delft = await linked_group(h, services, "Alliantie Delft", "delft-west")
        other = await linked_group(h, services, "Alliantie Overvecht", "utrecht-overvecht")
        with db.session() as session:
            published_round = session.get(Round, round_id)
        assert published_round is not None
        seed(
            db,
            area="delft-west",
            neighbourhood="delft-voorhof",
            n=12,
            at=now,
            round_=published_round,
        )
        closed_at = now + timedelta(days=3)
        with db.session() as session:
            row = session.get(Round, round_id)
            assert row is not None
            row.status, row.closed_at = "closed", closed_at
        clock.set(closed_at + timedelta(minutes=1))
        report = tick(services, clock.now())
        assert [(d.kind, d.round_id) for d in report.queued] == [("final", round_id)]
        assert tick(services, clock.now()).queued == []
        await deliver(h, services, clock)
        assert "Najaarspeiling 2026" in digests_of(delft)[0].visible_text
        assert digests_of(other) == []


async def test_on_demand_digest_is_rate_limited(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    seed(
        services.db, area="utrecht-overvecht", neighbourhood="overvecht-zuid", n=11, at=clock.now()
    )
    async with BotHarness(emulator, make_app(services)) as h:
        group = await linked_group(h, services, "Alliantie Overvecht", "utrecht-overvecht")
        member = h.user("Lid")
        await group.send(member, "/digest")
        assert "komt eraan" in group.last_message().visible_text
        await group.send(member, "/digest")
        assert "Probeer het opnieuw na" in group.last_message().visible_text
        clock.advance(timedelta(minutes=11))
        await group.send(member, "/digest")
        assert "komt eraan" in group.last_message().visible_text
        stranger = h.group("Ongekoppeld")
        await stranger.add_bot(member)
        await stranger.send(member, "/digest")
        assert "niet gekoppeld" in stranger.last_message().visible_text
    with services.db.session() as session:
        kinds = session.scalars(select(DigestSent.kind)).all()
        queued_to_stranger = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.chat_id == stranger.chat_id)
        )
    assert kinds == ["on_demand", "on_demand"]
    assert queued_to_stranger == 0
