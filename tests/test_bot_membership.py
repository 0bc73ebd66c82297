"""The bot's own membership of a chat (my_chat_member), end to end through the emulator.

Groups: the bot removed from a linked group pauses its digests (nothing queued, nothing sent,
`alliance list` says so); added back, it says in the group that it is linked again and the
digests resume. Private chats: a resident who blocks the bot is unreachable at once, one who
unblocks reachable again. And what the outbox does with a 403 from a group whose removal the
bot never heard of.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from click.testing import CliRunner
from sqlalchemy import func, select

from bot.cli import cli
from bot.clock import FakeClock
from sandbox.harness import BotHarness, GroupHandle
from storage import alliances as store
from storage.models import Alliance, OutboxMessage, Resident
from tests.conftest import TEST_KEY
from tests.test_alliance_data import seed
from tests.test_digest_delivery import NEXT_MONDAY_RUN, deliver, linked_group, tick
from tests.test_reachable import publish, stored
from tests.test_resident_flow import onboard
from tests.test_rounds_bot import tick as round_tick

OUR_LOGGERS = ("bot", "handlers", "usecases", "storage")


def alliance_row(services: Any, group: GroupHandle) -> Alliance:
    with services.db.session() as session:
        row = store.alliance_of_chat(session, group.chat_id)
        assert row is not None
        return row


def outbox_rows(services: Any, group: GroupHandle) -> list[OutboxMessage]:
    with services.db.session() as session:
        return list(
            session.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == group.chat_id))
        )


def alliance_list(services: Any) -> str:
    env = {
        "BUURTSTEM_DATABASE_URL": services.settings.database_url,
        "BUURTSTEM_PSEUDONYM_KEY": TEST_KEY,
    }
    result = CliRunner().invoke(cli, ["alliance", "list"], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


async def test_removed_from_a_linked_group_digests_pause_and_resume_when_added_back(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    seed(
        services.db, area="utrecht-overvecht", neighbourhood="overvecht-zuid", n=12, at=clock.now()
    )
    async with BotHarness(emulator, make_app(services)) as h:
        group = await linked_group(h, services, "Alliantie Overvecht", "utrecht-overvecht")
        member = h.user("Lid Alliantie Overvecht")
        linked_messages = len(group.messages())
        assert "active" in alliance_list(services)

        clock.advance(timedelta(days=2))
        removed_on = clock.now()
        await group.remove_bot(member)
        assert alliance_row(services, group).removed_at == removed_on
        listing = alliance_list(services)
        assert "paused: removed from the group on 2026-11-04 10:00" in listing
        assert "adds the bot back" in listing

        # Monday's run passes: nothing is queued for the group, nothing is sent to it.
        clock.set(NEXT_MONDAY_RUN + timedelta(seconds=30))
        report = tick(services, clock.now())
        assert (report.due, report.queued) == ([], [])
        await deliver(h, services, clock)
        assert outbox_rows(services, group) == []
        assert len(group.messages()) == linked_messages

        # Added back: the group hears it is linked again, with its schedule; digests resume.
        await group.add_bot(member)
        resumed_at = len(group.messages())
        back = group.last_message().visible_text
        assert "weer gekoppeld aan Utrecht Overvecht" in back
        assert "elke maandag om 09:00" in back
        assert alliance_row(services, group).removed_at is None
        assert "paused" not in alliance_list(services)
        # The run missed while the bot was away comes now, once.
        assert [d.kind for d in tick(services, clock.now()).queued] == ["scheduled"]
        await deliver(h, services, clock)
        digest = group.messages()[resumed_at:]
        assert digest and "Utrecht Overvecht" in digest[0].visible_text
        assert [m.method for m in digest][-1] == "sendDocument"
        assert tick(services, clock.now()).queued == []


async def test_a_digest_waiting_when_the_bot_is_removed_is_not_sent(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    seed(
        services.db, area="utrecht-overvecht", neighbourhood="overvecht-zuid", n=12, at=clock.now()
    )
    async with BotHarness(emulator, make_app(services)) as h:
        group = await linked_group(h, services, "Alliantie Overvecht", "utrecht-overvecht")
        member = h.user("Lid Alliantie Overvecht")
        before = len(group.messages())
        clock.set(NEXT_MONDAY_RUN + timedelta(seconds=30))
        assert len(tick(services, clock.now()).queued) == 1
        await group.remove_bot(member)  # before the sender got to it
        await deliver(h, services, clock)
        rows = outbox_rows(services, group)
        assert rows and {(r.status, r.last_error, r.attempts) for r in rows} == {
            ("failed", store.NOT_IN_GROUP, 0)
        }
        assert len(group.messages()) == before


async def test_a_refused_digest_pauses_a_group_whose_removal_was_not_heard(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    seed(
        services.db, area="utrecht-overvecht", neighbourhood="overvecht-zuid", n=12, at=clock.now()
    )
    async with BotHarness(emulator, make_app(services)) as h:
        group = await linked_group(h, services, "Alliantie Overvecht", "utrecht-overvecht")
        member = h.user("Lid Alliantie Overvecht")
        # Removed, but the my_chat_member update never reaches the bot.
        emulator.remove_bot_from_group(group.chat, member.user)
        clock.set(NEXT_MONDAY_RUN + timedelta(seconds=30))
        assert len(tick(services, clock.now()).queued) == 1
        await deliver(h, services, clock)
        rows = outbox_rows(services, group)
        # The first part got the 403; the others are not tried.
        assert sorted(r.attempts for r in rows) == [0] * (len(rows) - 1) + [1]
        assert {r.status for r in rows} == {"failed"}
        assert alliance_row(services, group).removed_at is not None
        clock.advance(timedelta(days=7))
        assert tick(services, clock.now()).queued == []
        await group.add_bot(member)
        assert "weer gekoppeld" in group.last_message().visible_text


async def test_a_repeated_removal_keeps_its_first_date_and_an_unlinked_group_stays_unknown(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        group = await linked_group(h, services, "Alliantie Overvecht", "utrecht-overvecht")
        member = h.user("Lid Alliantie Overvecht")
        removal = emulator.remove_bot_from_group(group.chat, member.user)
        await h.deliver(removal)
        first = alliance_row(services, group).removed_at
        clock.advance(timedelta(hours=1))
        await h.redeliver(removal)  # Telegram delivers the removal again
        assert alliance_row(services, group).removed_at == first
        await h.deliver(emulator.remove_bot_from_group(group.chat, member.user))  # kicked again
        assert alliance_row(services, group).removed_at == first
        # An unlinked group: added and removed, the bot says nothing and stores nothing.
        other = h.group("Buurtapp")
        await other.add_bot(member)
        await other.remove_bot(member)
        await other.add_bot(member)
        assert other.messages() == []
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Alliance)) == 1


async def test_a_resident_who_blocks_is_unreachable_at_once_and_reachable_after_unblocking(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    async with BotHarness(emulator, make_app(services)) as h:
        anna, bob = h.user("Anna"), h.user("Bob")
        await onboard(h, anna)
        await onboard(h, bob)
        await bob.block()
        row = stored(services, bob)
        assert row.unreachable_at == clock.now()
        assert row.unreachable_reason == "Forbidden: bot was blocked by the user"
        # A round opens: no invitation is queued for Bob (none would fail in the outbox).
        publish(services, clock, "Najaar", timedelta(days=3))
        assert round_tick(services, clock).invitations == 1
        # Unblocking is enough to be reachable again, before Bob writes anything.
        await bob.unblock()
        assert (stored(services, bob).unreachable_at, stored(services, bob).unreachable_reason) == (
            None,
            None,
        )
        # Someone who never consented blocks and unblocks: nothing is stored about them.
        carol = h.user("Carol")
        await carol.send("/help")
        await carol.block()
        await carol.unblock()
        ids = (str(anna.id), str(bob.id), str(carol.id))
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Resident)) == 2
    ours = [r.getMessage() for r in caplog.records if r.name.split(".")[0] in OUR_LOGGERS]
    assert not [line for line in ours if any(i in line for i in ids)]


async def test_a_repeated_block_after_unblocking_changes_nothing(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        dirk = h.user("Dirk")
        await onboard(h, dirk)
        await dirk.block()
        blocked = dirk.last_update
        await dirk.unblock()
        assert blocked is not None
        await h.redeliver(blocked)  # the old block arrives again
    assert stored(services, dirk).unreachable_at is None


async def test_a_digest_request_from_the_group_resumes_when_the_re_adding_was_not_heard(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    seed(
        services.db, area="utrecht-overvecht", neighbourhood="overvecht-zuid", n=12, at=clock.now()
    )
    async with BotHarness(emulator, make_app(services)) as h:
        group = await linked_group(h, services, "Alliantie Overvecht", "utrecht-overvecht")
        member = h.user("Lid Alliantie Overvecht")
        await group.remove_bot(member)
        emulator.add_bot_to_group(group.chat, member.user)  # its updates never reach the bot
        await group.send(member, "/digest")
        assert "komt eraan" in group.last_message().visible_text
        assert alliance_row(services, group).removed_at is None
