"""Who may do what (issue 13, item 3): people who are not programme staff, not in the right group,
or not in a group at all try every staff and alliance path; groups try to read other areas.

The paths: /rounds (staff, private chat); /reactie, /vertaling, /reacties and the buttons under a
draft (the linked group: submit, cancel); approve and reject (staff, private chat), also forged;
/digest (a linked group: its own area only, whatever the argument), /results (a resident's own
area, private chat). Each refusal must crash nothing, show nothing internal or of another area,
and change no stored state beyond the update's own bookkeeping.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import cli
from bot.clock import FakeClock
from sandbox.emulator import CallbackQueryRecord, StoredMessage
from sandbox.harness import BotHarness, GroupHandle, UserHandle
from storage import alliance_responses as responses_store
from storage import alliances as alliance_store
from storage.models import Alliance, AllianceResponse, DigestSent, OutboxMessage
from tests.adversarial.authz import assert_clean, bot_texts, changed, plain, snapshot
from tests.conftest import TEST_KEY
from tests.test_alliance_data import seed
from tests.test_alliance_responses import answer, link, publish, response_id_of
from tests.test_digest_delivery import deliver
from tests.test_release_outputs import midnight_after
from tests.test_release_outputs import tick as digest_tick
from tests.test_resident_flow import onboard
from tests.test_rounds_bot import tick

STAFF_ID = 616161
OVERVECHT, LEEUWARDEN = "utrecht-overvecht", "leeuwarden-oost"

_queries = itertools.count(1)


@pytest.fixture
def service_settings() -> dict[str, Any]:
    """Programme staff of this module's services."""
    return {"admin_ids": [STAFF_ID]}


def forged_tap(
    h: BotHarness, user: UserHandle, message: StoredMessage, data: str
) -> dict[str, Any]:
    """A callback query from `user` on any bot message (buttons or not) with any data, as
    someone writing updates by hand would make it."""
    emulator = h.emulator
    query_id = str(5_000_000_000_000_000_000 + next(_queries))
    chat = emulator.chat(message.chat_id)
    emulator.callback_queries[query_id] = CallbackQueryRecord(
        id=query_id,
        user_id=user.id,
        chat_id=chat.id,
        message_id=message.message_id,
        data=data,
        created=emulator.clock(),
    )
    query = {
        "id": query_id,
        "from": user.user.to_api(),
        "message": emulator.message_json(message),
        "chat_instance": chat.chat_instance,
        "data": data,
    }
    emulator.push_raw_update({"callback_query": query})
    return dict(emulator.updates_log[-1])


def notice_of(h: BotHarness, update: dict[str, Any]) -> str:
    """The answer to a forged tap (what the tapper saw)."""
    record = h.emulator.callback_queries[update["callback_query"]["id"]]
    assert record.answered, "every tap is answered"
    return record.answer_text or ""


@dataclass
class World:
    """An open round; Overvecht's group (with a draft), Leeuwarden's group, a group not linked,
    residents who answered, and programme staff."""

    h: BotHarness
    services: Any
    group_a: GroupHandle
    member_a: UserHandle
    group_b: GroupHandle
    member_b: UserHandle
    stray: GroupHandle
    stranger: UserHandle
    resident: UserHandle
    staff: UserHandle
    draft_id: int

    def state(self) -> dict[str, list[str]]:
        return snapshot(self.services.db)

    def status(self) -> str:
        with self.services.db.session() as session:
            found = responses_store.get_response(session, self.draft_id)
            assert found is not None
            return found.status

    def anywhere(self) -> list[StoredMessage]:
        """Every bot message with buttons in any chat (targets for forged taps)."""
        return [
            m
            for chat in (self.group_a, self.group_b, self.stray)
            for m in chat.messages()
            if m.from_bot
        ]


async def build_world(h: BotHarness, services: Any, clock: FakeClock) -> World:
    publish(services, clock)
    tick(services, clock)
    resident = h.user("Ria")
    await answer(h, resident)
    for n in range(2):
        await answer(h, h.user(f"Buur {n}"))
    await answer(h, h.user("Lieke"), "8924")
    staff = h.user("Programmateam", user_id=STAFF_ID)
    await staff.send("/start")
    group_a, member_a = await link(h, services, "Alliantie Overvecht", OVERVECHT)
    group_b, member_b = await link(h, services, "Alliantie Leeuwarden", LEEUWARDEN)
    stranger = h.user("Onbekende")
    stray = h.group("Buurtapp", members=(stranger,))
    await stray.send(stranger, "/help")
    await group_a.send(member_a, "/reactie Wij hoorden: meer licht bij de brug.")
    draft_id = response_id_of(group_a.messages()[-1])
    return World(
        h,
        services,
        group_a,
        member_a,
        group_b,
        member_b,
        stray,
        stranger,
        resident,
        staff,
        draft_id,
    )


async def test_responses_of_one_group_are_out_of_reach_of_everyone_else(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        w = await build_world(h, services, clock)
        x = w.draft_id
        draft_message = w.group_a.messages()[-1]

        async def refused(update: dict[str, Any], expected: str) -> None:
            before = w.state()
            await h.deliver(update)
            notice = notice_of(h, update)
            assert_clean(notice)
            assert notice == expected, notice
            assert changed(before, w.state()) == {}

        def nl(lang: str, key: str, **params: Any) -> str:
            return plain(services.text(lang, key, **params))

        unknown = nl("nl", "responses.group.unknown", id=x)
        not_staff = nl("nl", "responses.review.not_staff")
        old = nl("nl", "notice.old_version")
        b_message = w.group_b.messages()[-1]
        stray_message = w.stray.messages()[-1]
        private_message = w.resident.last_message()
        for verb in ("rs", "rx"):
            data = f"v1|{verb}|{x}"
            # Another area's group, and a group not linked: the response is not theirs.
            await refused(forged_tap(h, w.member_b, b_message, data), unknown)
            await refused(forged_tap(h, w.stranger, stray_message, data), unknown)
            # A member of group B tapping group A's own buttons (forwarded or forged chat).
            await refused(forged_tap(h, w.member_b, b_message, data), unknown)
            # A resident, and staff, in a private chat: group buttons mean nothing there.
            await refused(forged_tap(h, w.resident, private_message, data), old)
            await refused(forged_tap(h, w.staff, w.staff.last_message(), data), old)
        for verb in ("ra", "rj"):
            data = f"v1|{verb}|{x}"
            # Approving needs programme staff in their private chat: not a resident, not the
            # group that wrote it (on its own draft), not staff tapping in a group.
            await refused(forged_tap(h, w.resident, private_message, data), not_staff)
            await refused(forged_tap(h, w.member_a, draft_message, data), not_staff)
            await refused(forged_tap(h, w.staff, draft_message, data), not_staff)
            await refused(forged_tap(h, w.member_b, b_message, data), not_staff)
        assert w.status() == responses_store.DRAFT

        # Commands: another group's draft cannot be translated; nobody outside a linked group
        # drafts or reads responses; /reacties in a private chat is staff's only.
        before = w.state()
        await w.group_b.send(w.member_b, f"/vertaling {x} en We heard nothing.")
        assert w.group_b.last_message().visible_text == nl("nl", "responses.group.unknown", id=x)
        await w.stray.send(w.stranger, "/reactie Een nepbericht aan bewoners")
        await w.stray.send(w.stranger, f"/vertaling {x} en Fake")
        await w.stray.send(w.stranger, "/reacties")
        for text in bot_texts(emulator, w.stray.chat_id)[-3:]:
            assert text == nl("nl", "responses.group.not_linked")
        for command in ("/reactie Nep", f"/vertaling {x} en Fake"):
            await w.resident.send(command)
            assert w.resident.last_message().visible_text == nl(
                "nl", "responses.group.private_only"
            )
        await w.resident.send("/reacties")
        assert w.resident.last_message().visible_text == nl("nl", "notice.unknown_command")
        await w.group_b.send(w.member_b, "/reacties")
        overview_b = w.group_b.last_message().visible_text
        assert "licht bij de brug" not in overview_b and f"#{x}" not in overview_b
        assert changed(before, w.state()) == {}
        for chat in (w.group_b.chat_id, w.stray.chat_id, w.resident.chat_id):
            for text in bot_texts(emulator, chat):
                assert_clean(text)
                assert "licht bij de brug" not in text  # group A's draft never shows elsewhere

        # The group submits; now staff alone decide, and only once.
        await w.group_a.tap(w.member_a, data=f"v1|rs|{x}")
        assert w.status() == responses_store.PENDING
        await refused(forged_tap(h, w.member_b, b_message, f"v1|rx|{x}"), unknown)
        await refused(forged_tap(h, w.resident, private_message, f"v1|ra|{x}"), not_staff)
        await refused(forged_tap(h, w.member_a, draft_message, f"v1|ra|{x}"), not_staff)
        assert w.status() == responses_store.PENDING
        await h.deliver(forged_tap(h, w.staff, w.staff.last_message(), f"v1|ra|{x}"))
        assert w.status() == responses_store.APPROVED
        before = w.state()
        for data in (f"v1|rj|{x}", f"v1|rx|{x}"):
            message = w.staff.last_message() if data.startswith("v1|rj") else draft_message
            who = w.staff if data.startswith("v1|rj") else w.member_a
            update = forged_tap(h, who, message, data)
            await h.deliver(update)
            assert_clean(notice_of(h, update))
        assert w.status() == responses_store.APPROVED
        assert changed(before, w.state()) == {}


ODD_DATA = [
    "v1|ra|0",
    "v1|ra|2147483647",
    "v1|ra|2147483648",
    "v1|ra|99999999999999999999",
    "v1|rs|-1",
    "v1|rx|١٢",
    "v1|rj|²",
    "v1|ra|1|2|3|4|5",
    "v1|ra|",
    "v1|rs|1 ",
]


async def test_forged_response_buttons_with_odd_ids(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        staff = h.user("Programmateam", user_id=STAFF_ID)
        await staff.send("/start")
        group, member = await link(h, services, "Alliantie Overvecht", OVERVECHT)
        before = snapshot(services.db)
        for data in ODD_DATA:
            for who, message in ((staff, staff.last_message()), (member, group.last_message())):
                update = forged_tap(h, who, message, data)
                await h.deliver(update)
                assert_clean(notice_of(h, update))
        assert changed(before, snapshot(services.db)) == {}


async def test_a_response_number_beyond_any_id(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    """/vertaling (and the CLI) with a number beyond any id: "no such response", not a crash
    (the database driver refused the number: OverflowError on SQLite, out of range on
    PostgreSQL)."""
    numbers = ["99999999999999999999", "2147483648", "0", "007"]
    async with BotHarness(emulator, make_app(services)) as h:
        group, member = await link(h, services, "Alliantie Overvecht", OVERVECHT)
        before = snapshot(services.db)
        for number in numbers:
            await group.send(member, f"/vertaling {number} en We heard you.")
            text = group.last_message().visible_text
            assert_clean(text)
            assert text == plain(services.text("nl", "responses.group.unknown", id=int(number)))
        assert changed(before, snapshot(services.db)) == {}
    env = {
        "BUURTSTEM_DATABASE_URL": services.settings.database_url,
        "BUURTSTEM_PSEUDONYM_KEY": TEST_KEY,
    }
    for command in ("show", "approve", "reject"):
        args = ["response", command, numbers[0], *([] if command == "show" else ["--yes"])]
        result = CliRunner().invoke(cli, args, env=env)
        assert result.exit_code == 1, result.output
        assert "no response 99999999999999999999" in result.output
        assert isinstance(result.exception, SystemExit)  # a clean exit, not a traceback
    assert changed(before, snapshot(services.db)) == {}


async def test_rounds_is_for_staff_in_their_private_chat_only(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    publish(services, clock)
    tick(services, clock)
    async with BotHarness(emulator, make_app(services)) as h:
        resident = h.user("Ria", language_code="en")
        staff = h.user("Programmateam", user_id=STAFF_ID)
        group, member = await link(h, services, "Alliantie Overvecht", OVERVECHT)
        before = snapshot(services.db)
        for command in ("/rounds", "/rounds all", f"/rounds {STAFF_ID}", "/rounds@buurtstem_bot"):
            await resident.send(command)
            text = resident.last_message().visible_text
            assert text == plain(services.text("en", "notice.unknown_command"))
            count = len(group.messages())
            for who in (member, staff):
                await group.send(who, command)
            assert len(group.messages()) == count  # no answer in the group
        assert changed(before, snapshot(services.db)) == {}
        for text in bot_texts(emulator, resident.chat_id) + bot_texts(emulator, group.chat_id):
            assert "Najaarspeiling" not in text
        await staff.send("/rounds")
        assert "Najaarspeiling 2026" in staff.last_message().visible_text


async def test_a_group_reads_its_own_area_only(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    """A group linked to Overvecht asks for Leeuwarden's (or any other) figures by every
    argument it can think of, and in every chat; it only ever gets Overvecht's. A group not
    linked gets nothing. /results is for residents in their private chat."""
    db = services.db
    seed(db, area=OVERVECHT, neighbourhood="overvecht-zuid", n=12, at=clock.now(), grade=7)
    seed(db, area=LEEUWARDEN, neighbourhood=None, n=15, at=clock.now(), grade=3)
    clock.set(midnight_after(clock.now()))
    digest_tick(services, clock.now())
    async with BotHarness(emulator, make_app(services)) as h:
        group, member = await link(h, services, "Alliantie Overvecht", OVERVECHT)
        stranger = h.user("Onbekende")
        stray = h.group("Buurtapp", members=(stranger,))
        with db.session() as session:
            leeuwarden_id = session.scalars(select(Alliance.id)).first()
        arguments = [
            LEEUWARDEN,
            "8924",
            "Leeuwarden Oost",
            str(leeuwarden_id),
            str(stray.chat_id),
            "--area leeuwarden-oost",
            "all",
            "' OR 1=1 --",
        ]
        before = snapshot(db)
        for argument in arguments:
            await stray.send(stranger, f"/digest {argument}")
            assert stray.last_message().visible_text == plain(
                services.text("nl", "alliance.digest.not_linked")
            )
        assert changed(before, snapshot(db)) == {}

        for argument in arguments:
            await group.send(member, f"/digest {argument}")
            assert_clean(group.last_message().visible_text)
            clock.advance(timedelta(minutes=11))
        await deliver(h, services, clock)
        texts = bot_texts(emulator, group.chat_id)
        assert any("Utrecht Overvecht" in t for t in texts[1:])
        for text in texts:
            assert_clean(text)
            assert "Leeuwarden" not in text
        with db.session() as session:
            areas = {
                a.area_code
                for a in session.scalars(
                    select(Alliance).join(DigestSent, DigestSent.alliance_id == Alliance.id)
                )
            }
            chats = set(session.scalars(select(OutboxMessage.chat_id)))
        assert areas == {OVERVECHT}
        assert chats == {group.chat_id}

        # /results in a group (linked or not) only says it is for a private chat, no figures;
        # a resident sees their own area whatever they add to the command.
        count = len(group.messages()), len(stray.messages())
        await group.send(member, f"/results {LEEUWARDEN}")
        await stray.send(stranger, "/results 8924")
        assert (len(group.messages()), len(stray.messages())) == (count[0] + 1, count[1] + 1)
        hint = plain(services.text("nl", "alliance.results.group_only"))
        assert group.last_message().visible_text == stray.last_message().visible_text == hint
        resident = h.user("Ria")
        await onboard(h, resident, "3563")
        for argument in ("", LEEUWARDEN, "8924", "leeuwarden-oost 8924"):
            await resident.send(f"/results {argument}".strip())
            text = resident.last_message().visible_text
            assert_clean(text)
            assert "Utrecht Overvecht" in text and "Leeuwarden" not in text
            assert "3,0" not in text  # Leeuwarden's grade


async def test_a_stranger_cannot_unlink_or_move_a_group(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    """There is no unlinking in Telegram (only `buurtstem alliance unlink`): removing the bot,
    re-adding it, a new code of another area, /koppel with another group's id: the link stays."""
    async with BotHarness(emulator, make_app(services)) as h:
        group, _member = await link(h, services, "Alliantie Overvecht", OVERVECHT)
        mallory = h.user("Mallory")
        await group.send(mallory, "/koppel")
        with services.db.session() as session:
            other = alliance_store.create_code(
                session, LEEUWARDEN, services.settings.pseudonym_key, clock.now()
            )
        before = snapshot(services.db)
        for text in (
            f"/koppel {other}",
            "/unlink",
            "/ontkoppel",
            f"/koppel {group.chat_id}",
            "/link unlink",
        ):
            await group.send(mallory, text)
            assert_clean(group.last_message().visible_text)
        assert set(changed(before, snapshot(services.db))) <= {"link_attempts"}
        await group.remove_bot(mallory)
        await group.add_bot(mallory)
        with services.db.session() as session:
            linked = [(a.area_code, a.chat_id) for a in alliance_store.all_alliances(session)]
            unused = session.scalars(
                select(AllianceResponse).where(AllianceResponse.alliance_id.is_not(None))
            ).all()
        assert linked == [(OVERVECHT, group.chat_id)]
        assert unused == []
