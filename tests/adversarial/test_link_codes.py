"""Guessing /koppel codes (issue 13, item 3): how much there is to guess, how the guesses are
slowed down per chat and across chats, expiry, one use, and codes sent where they do not belong.

Each test drives a real PTB Application through the emulated Bot API on real databases, and
checks that the replies give nothing internal away and that nothing is linked or used up that
the code did not allow.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from sandbox.harness import BotHarness, GroupHandle
from storage import alliances as store
from storage.models import Alliance, AllianceCode, LinkAttempt
from tests.adversarial.authz import assert_clean, bot_texts, changed, snapshot
from tests.conftest import TEST_KEY

AREA = "delft-west"
# Small, so that an attacker with a handful of groups reaches it in a test.
PER_HOUR = 6


@pytest.fixture
def service_settings() -> dict[str, Any]:
    """The overall limit of this module's services."""
    return {"link_failures_per_hour": PER_HOUR}


def invite(services: Any, area: str = AREA, valid: timedelta = store.CODE_VALID) -> str:
    with services.db.session() as session:
        return store.create_code(session, area, TEST_KEY, services.clock.now(), valid)


def links(services: Any) -> list[tuple[str, int]]:
    with services.db.session() as session:
        return sorted((a.area_code, a.chat_id) for a in store.all_alliances(session))


def used_codes(services: Any) -> int:
    with services.db.session() as session:
        rows = session.scalars(select(AllianceCode).where(AllianceCode.used_at.is_not(None)))
        return len(list(rows))


def wrong_code(n: int) -> str:
    """A well-formed code that was never issued (codes are random: a collision is 2^-47)."""
    alphabet = store.CODE_ALPHABET
    raw = "".join(alphabet[(n * 7 + i * 3) % len(alphabet)] for i in range(store.CODE_LENGTH))
    return raw[:5] + "-" + raw[5:]


def last_text(group: GroupHandle) -> str:
    text = group.last_message().visible_text
    assert_clean(text)
    return text


# ---- what there is to guess -------------------------------------------------------------------


def test_codes_carry_47_bits_and_only_keyed_hashes_are_stored(
    make_services: Any, sqlite_url: str
) -> None:
    services = make_services(sqlite_url)
    alphabet = store.CODE_ALPHABET
    assert len(set(alphabet)) == len(alphabet)
    # Nothing to misread: of each look-alike group at most one character is used.
    for group in ("0O", "1IL", "5S", "8B"):
        assert len(set(group) & set(alphabet)) <= 1, group
    bits = store.CODE_LENGTH * math.log2(len(alphabet))
    assert bits >= 47, bits
    # Drawn from the whole alphabet, and never twice in 3,000.
    codes = [store.new_code() for _ in range(3000)]
    assert len(set(codes)) == len(codes)
    counts = Counter("".join(c.replace("-", "") for c in codes))
    assert set(counts) == set(alphabet)
    # Roughly uniform: each character about 30,000 / 27 = 1,111 times (very loose bounds).
    assert min(counts.values()) > 800 and max(counts.values()) < 1450

    issued = [invite(services) for _ in range(20)]
    everything = "\n".join(line for rows in snapshot(services.db).values() for line in rows)
    for code in issued:
        raw = code.replace("-", "")
        assert code not in everything and raw not in everything
        assert raw.lower() not in everything
    with services.db.session() as session:
        stored = set(session.scalars(select(AllianceCode.code_hash)))
    # Keyed: without the pseudonym key a leaked table cannot be tested against guesses.
    for code in issued:
        raw = code.replace("-", "")
        assert store.code_hash(TEST_KEY, raw) in stored
        assert store.code_hash("another-key", raw) not in stored


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_whatever_is_typed_normalises_to_a_code_or_to_nothing(text: str) -> None:
    raw = store.normalise_code(text)
    if raw is not None:
        assert len(raw) == store.CODE_LENGTH
        assert set(raw) <= set(store.CODE_ALPHABET)


# ---- slowed down: per chat, and across chats ---------------------------------------------------


def test_a_chats_wait_doubles_and_is_capped(make_services: Any, sqlite_url: str) -> None:
    services = make_services(sqlite_url)
    good = invite(services, valid=timedelta(days=60))
    clock = services.clock
    waits = []
    for n in range(30):
        with services.db.session() as session:
            result = store.redeem_code(
                session,
                chat_id=-5001,
                title="Gokkers",
                text=wrong_code(n),
                key=TEST_KEY,
                now=clock.now(),
                schedule={},
                failures_per_hour=10**6,
            )
        assert result.outcome == "invalid"
        if result.blocked_until is not None:
            waits.append(result.blocked_until - clock.now())
            # While blocked even the right code is not looked at, and stays unused.
            with services.db.session() as session:
                blocked = store.redeem_code(
                    session,
                    chat_id=-5001,
                    title="Gokkers",
                    text=good,
                    key=TEST_KEY,
                    now=clock.now(),
                    schedule={},
                    failures_per_hour=10**6,
                )
            assert blocked.outcome == "blocked" and blocked.alliance is None
            clock.set(result.blocked_until)
    assert len(waits) == 30 - store.FREE_FAILURES + 1
    assert waits[0] == store.FIRST_BLOCK
    assert all(b == min(2 * a, store.MAX_BLOCK) for a, b in itertools.pairwise(waits))
    assert max(waits) == store.MAX_BLOCK
    # 30 guesses took more than two weeks of waiting; 2^47 codes are out of reach.
    assert sum(waits, timedelta()) > timedelta(days=14)
    assert used_codes(services) == 0 and links(services) == []


async def test_many_groups_share_one_limit_an_hour(
    services: Any, make_app: Any, emulator: Any
) -> None:
    """An attacker with many groups: each guesses fewer times than its own back-off allows,
    yet after PER_HOUR failures of all chats together every chat is refused, a good code too."""
    async with BotHarness(emulator, make_app(services)) as h:
        mallory = h.user("Mallory")
        groups = [h.group(f"Gokgroep {n}", members=(mallory,)) for n in range(PER_HOUR + 2)]
        for n, group in enumerate(groups[:PER_HOUR]):
            await group.send(mallory, f"/koppel {wrong_code(n)}")
            assert "klopt niet" in last_text(group)
        # Every chat now waits, also one that never guessed; no code is even looked at.
        good = invite(services)
        anna = h.user("Anna")
        alliance = h.group("Alliantie Delft", members=(anna,))
        before = snapshot(services.db)
        for group, who in ((groups[PER_HOUR], mallory), (alliance, anna)):
            await group.send(who, f"/koppel {good}")
            text = last_text(group)
            assert "te veel onjuiste codes" in text and "andere groepen" in text
            assert "gekoppeld aan" not in text
        await groups[PER_HOUR + 1].send(mallory, f"/koppel {wrong_code(99)}")
        assert "te veel onjuiste codes" in last_text(groups[PER_HOUR + 1])
        # Refused attempts change nothing: no link, the code unused, no failure counted.
        assert changed(before, snapshot(services.db)) == {}

        # An hour after the first failure, the good code links its group.
        services.clock.advance(store.FAILURE_WINDOW)
        await alliance.send(anna, f"/koppel {good}")
        assert "gekoppeld aan Delft West" in last_text(alliance)
    assert links(services) == [(AREA, alliance.chat_id)]


async def test_the_limit_across_chats_in_english_and_every_language(
    services: Any, make_app: Any, emulator: Any
) -> None:
    for lang in services.catalogue.languages:
        assert services.text(lang, "alliance.link.busy", time="09:00") != "alliance.link.busy"
    async with BotHarness(emulator, make_app(services)) as h:
        eve = h.user("Eve", language_code="en")
        groups = [h.group(f"G{n}", members=(eve,)) for n in range(PER_HOUR + 1)]
        for n, group in enumerate(groups[:PER_HOUR]):
            await group.send(eve, f"/link {wrong_code(n)}")
        await groups[-1].send(eve, f"/link {wrong_code(50)}")
        text = last_text(groups[-1])
        assert text.startswith("Too many wrong codes are being tried right now")


async def test_a_repeated_update_counts_as_one_failure(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        mallory = h.user("Mallory")
        group = h.group("Gokkers", members=(mallory,))
        await group.send(mallory, f"/koppel {wrong_code(1)}")
        for _ in range(PER_HOUR + 3):
            await mallory.resend_last_update()
        with services.db.session() as session:
            mine = session.get(LinkAttempt, group.chat_id)
            overall = session.get(LinkAttempt, store.ALL_CHATS)
            assert mine is not None and mine.failures == 1
            assert overall is not None and overall.failures == 1
        assert len(bot_texts(emulator, group.chat_id)) == 1


async def test_an_edited_koppel_message_is_one_more_attempt(
    services: Any, make_app: Any, emulator: Any
) -> None:
    """Editing /koppel into another guess is no way around the count."""
    async with BotHarness(emulator, make_app(services)) as h:
        mallory = h.user("Mallory")
        group = h.group("Gokkers", members=(mallory,))
        await group.send(mallory, f"/koppel {wrong_code(1)}")
        sent = next(m for m in emulator.messages(group.chat_id) if m.sender_id == mallory.id)
        for n in range(2, 2 + store.FREE_FAILURES):
            await mallory.edit(sent, f"/koppel {wrong_code(n)}")
        with services.db.session() as session:
            assert store.blocked_until(session, group.chat_id, services.clock.now()) is not None
        good = invite(services)
        await mallory.edit(sent, f"/koppel {good}")
        assert "Te veel onjuiste codes" in last_text(group)
    assert links(services) == [] and used_codes(services) == 0


# ---- expiry and one use ------------------------------------------------------------------------


async def test_a_code_expires_to_the_second(services: Any, make_app: Any, emulator: Any) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        anna = h.user("Anna")
        early, late = h.group("Vroeg", members=(anna,)), h.group("Laat", members=(anna,))
        first, second = invite(services), invite(services)
        services.clock.advance(store.CODE_VALID - timedelta(seconds=1))
        await early.send(anna, f"/koppel {first}")
        assert "gekoppeld" in last_text(early)
        services.clock.advance(timedelta(seconds=1))
        await late.send(anna, f"/koppel {second}")
        assert "verlopen" in last_text(late)
    assert links(services) == [(AREA, early.chat_id)]


async def test_a_code_links_one_group_when_many_race_for_it(
    services: Any, make_app: Any, emulator: Any
) -> None:
    """Six groups send the same code at the same moment (handled concurrently): one link."""
    async with BotHarness(emulator, make_app(services), mode="queue") as h:
        anna = h.user("Anna")
        groups = [h.group(f"Groep {n}", members=(anna,)) for n in range(PER_HOUR)]
        code = invite(services)
        updates = [
            emulator.user_sends(anna.user, f"/koppel {code}", chat=group.chat) for group in groups
        ]
        await h.deliver_burst(updates)
        texts = [last_text(group) for group in groups]
    assert sum("gekoppeld aan" in t for t in texts) == 1
    assert sum("al gebruikt" in t for t in texts) == PER_HOUR - 1
    assert len(links(services)) == 1 and used_codes(services) == 1


# ---- codes where they do not belong ------------------------------------------------------------


async def test_a_code_in_a_private_chat_or_a_channel_is_not_looked_at(
    services: Any, make_app: Any, emulator: Any
) -> None:
    code = invite(services)
    async with BotHarness(emulator, make_app(services)) as h:
        anna = h.user("Anna")
        before = snapshot(services.db)
        for _ in range(store.FREE_FAILURES + PER_HOUR):
            await anna.send(f"/koppel {code}")
            assert "groep" in anna.last_message().visible_text
            assert_clean(anna.last_message().visible_text)
        # A channel post: commands in channels reach no handler; nothing is answered.
        channel = {"id": -1009990001, "type": "channel", "title": "Buurtkanaal"}
        for text in (f"/koppel {code}", "/digest", "/reactie Hallo", "/results"):
            await h.deliver(
                {
                    "channel_post": {
                        "message_id": 1,
                        "date": int(services.clock.now().timestamp()),
                        "chat": channel,
                        "sender_chat": channel,
                        "text": text,
                        "entities": [
                            {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}
                        ],
                    },
                    "update_id": emulator.push_raw_update({"channel_post": {}}) + 10_000,
                }
            )
        assert changed(before, snapshot(services.db)) == {}
        assert channel["id"] not in emulator.messages_by_chat
        # The code was never used up nor counted against anyone.
        group = h.group("Alliantie Delft", members=(anna,))
        await group.send(anna, f"/koppel {code}")
        assert "gekoppeld" in last_text(group)


async def test_any_member_with_the_code_links_and_without_it_nobody(
    services: Any, make_app: Any, emulator: Any
) -> None:
    """As docs/digests.md says: the code authorises, not the member's rank in the group. A
    member who has no code gets the usage text, and a linked group cannot be moved."""
    async with BotHarness(emulator, make_app(services)) as h:
        owner, member = h.user("Beheerder"), h.user("Gewoon lid")
        group = await h.add_group("Alliantie Delft", by=owner)
        await group.send(member, "/koppel")
        assert "Stuur /koppel met de code" in last_text(group)
        await group.send(member, f"/koppel {invite(services)}")
        assert "gekoppeld aan" in last_text(group)
        # Another area's code: refused, and that code stays usable for its own group.
        other = invite(services, "utrecht-overvecht")
        before = snapshot(services.db)
        await group.send(member, f"/koppel {other}")
        assert "al gekoppeld aan" in last_text(group)
        assert changed(before, snapshot(services.db)) == {}
    assert links(services) == [(AREA, group.chat_id)]


@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=60))
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_any_argument_to_koppel_links_nothing_and_leaks_nothing(
    make_services: Any, sqlite_url: str, make_app: Any, emulator: Any, text: str
) -> None:
    services = make_services(sqlite_url, link_failures_per_hour=10**6)
    issued = invite(services)

    async def attempt() -> str:
        async with BotHarness(emulator, make_app(services)) as h:
            mallory = h.user("Mallory")
            group = h.group("Gokkers", members=(mallory,))
            await group.send(mallory, f"/koppel {text}")
            return group.last_message().visible_text

    reply = asyncio.run(attempt())
    assert_clean(reply, issued)
    if store.normalise_code(text) == issued.replace("-", ""):
        return  # hypothesis found the code: not in 2^47
    with services.db.session() as session:
        assert session.scalars(select(Alliance)).first() is None
