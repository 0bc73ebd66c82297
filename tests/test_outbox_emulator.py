"""The outbox sender end to end against the Bot API emulator (in-process transport)."""

from __future__ import annotations

import asyncio
import random
import struct
import zlib
from collections.abc import AsyncIterator
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from telegram import Bot

from bot.clock import FakeClock
from bot.outbox import OutboxSender
from sandbox import BotAPIEmulator, RateLimits, SimUser, emulator_request
from storage import outbox as store
from storage.db import Database
from storage.models import OutboxMessage, Resident


def tiny_png() -> bytes:
    """A valid 2x1 PNG (the emulator reads real image dimensions)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + b"\xff\x00\x00" * 2)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


class World:
    """Emulator and sender sharing one fake clock; the sender's sleep moves that clock."""

    def __init__(self, db: Database, clock: FakeClock, limits: RateLimits | None = None) -> None:
        self.db = db
        self.clock = clock
        self.emulator = BotAPIEmulator(clock=clock, limits=limits)
        self.bot = Bot(self.emulator.token, request=emulator_request(self.emulator))

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)
        self.clock.advance(timedelta(seconds=max(0.0, seconds)))
        await asyncio.sleep(0)

    def sender(self, **kwargs: Any) -> OutboxSender:
        kwargs.setdefault("rng", random.Random(3))
        return OutboxSender(self.db, self.bot, self.clock, sleep=self.sleep, **kwargs)

    def users(self, count: int) -> list[SimUser]:
        return [
            self.emulator.add_user(f"Bewoner {n}", started=True, language_code="nl")
            for n in range(count)
        ]

    def enqueue(self, key: str, chat_id: int, **kwargs: Any) -> None:
        kwargs.setdefault("method", "sendMessage")
        kwargs.setdefault("payload", {"text": f"Uitnodiging {key}"})
        kwargs.setdefault("kind", "invitation")
        with self.db.session() as session:
            store.enqueue(session, dedupe_key=key, chat_id=chat_id, now=self.clock.now(), **kwargs)

    def rows(self) -> dict[str, OutboxMessage]:
        with self.db.session() as session:
            rows = list(session.query(OutboxMessage))
            for row in rows:
                session.expunge(row)
        return {row.dedupe_key: row for row in rows}


@pytest.fixture
async def world(sqlite_db: Database, clock: FakeClock) -> AsyncIterator[World]:
    world = World(sqlite_db, clock)
    async with world.bot:
        yield world


async def test_each_invitation_arrives_exactly_once(world: World) -> None:
    users = world.users(40)
    for user in users:
        world.enqueue(f"round-1:{user.id}", user.id)
    report = await world.sender().run_once()
    assert report.sent == 40
    rows = world.rows()
    for user in users:
        delivered = world.emulator.sent_to(user.id)
        assert [m.text for m in delivered] == [f"Uitnodiging round-1:{user.id}"]
        assert rows[f"round-1:{user.id}"].telegram_message_id == delivered[0].message_id
    # Running again (a restart, a second tick) sends nothing more.
    await world.sender().run_once()
    assert len(world.emulator.calls("sendMessage")) == 40


async def test_digest_text_chart_and_csv_arrive_in_order(world: World) -> None:
    group = world.emulator.add_group("Alliantie Overvecht")
    keyboard = {"inline_keyboard": [[{"text": "Meer", "callback_data": "digest:more"}]]}
    world.enqueue(
        "digest-1:text",
        group.id,
        is_group=True,
        kind="digest",
        payload={
            "text": "<b>Buurtpeiling</b> week 45",
            "parse_mode": "HTML",
            "reply_markup": keyboard,
        },
    )
    world.enqueue(
        "digest-1:chart",
        group.id,
        is_group=True,
        kind="digest",
        method="sendPhoto",
        payload={"caption": "Rapportcijfers"},
        file_name="chart.png",
        file_data=tiny_png(),
    )
    world.enqueue(
        "digest-1:csv",
        group.id,
        is_group=True,
        kind="digest",
        method="sendDocument",
        payload={"caption": "Cijfers (CSV)"},
        file_name="digest.csv",
        file_data=b"vraag,n\nleefbaarheid,42\n",
    )
    report = await world.sender().run_once()
    assert report.sent == 3
    text, chart, csv = world.emulator.sent_to(group.id)
    assert text.text == "Buurtpeiling week 45" and text.html == "<b>Buurtpeiling</b> week 45"
    assert text.button_labels == ["Meer"]
    assert chart.caption == "Rapportcijfers" and chart.content.get("photo")
    assert csv.caption == "Cijfers (CSV)"
    document = csv.content["document"]
    assert document["file_name"] == "digest.csv"
    assert world.emulator.file_bytes(document["file_id"]) == b"vraag,n\nleefbaarheid,42\n"
    # One per second per chat: the three parts are at least a second apart.
    times = [r.time for r in world.emulator.requests if r.method.startswith("send")]
    assert all(b - a >= 1.0 - 1e-6 for a, b in pairwise(times))


async def test_no_429_when_limits_match(sqlite_db: Database, clock: FakeClock) -> None:
    world = World(sqlite_db, clock, RateLimits(enabled=True))
    async with world.bot:
        users = world.users(90)
        for user in users:
            world.enqueue(f"inv:{user.id}", user.id)
        group = world.emulator.add_group("Alliantie")
        for n in range(25):
            world.enqueue(f"group:{n}", group.id, is_group=True, kind="digest")
        report = await world.sender().run_once()
    assert report.sent == 115 and report.rate_limited == 0
    assert world.emulator.rate_limited_count == 0
    assert len(world.emulator.sent_to(group.id)) == 25


async def test_flood_wait_from_telegram_is_waited_out(
    sqlite_db: Database, clock: FakeClock
) -> None:
    # Telegram is stricter than the sender thinks: 5/s against 30/s.
    world = World(sqlite_db, clock, RateLimits(enabled=True, global_per_second=5))
    async with world.bot:
        users = world.users(30)
        for user in users:
            world.enqueue(f"inv:{user.id}", user.id)
        report = await world.sender().run_once()
    assert world.emulator.rate_limited_count > 0
    assert report.rate_limited == world.emulator.rate_limited_count
    assert report.sent == 30 and report.failed == 0
    for user in users:
        assert len(world.emulator.sent_to(user.id)) == 1
    # A flood wait costs no attempt.
    assert max(row.attempts for row in world.rows().values()) == 1
    # After each 429 nothing was sent before retry_after had passed.
    for hit in world.emulator.rate_limited:
        resume = hit["time"] + hit["retry_after"]
        later = [r.time for r in world.emulator.requests if r.time > hit["time"]]
        assert all(t >= resume - 1e-6 for t in later)


async def test_blocked_user_becomes_unreachable(world: World) -> None:
    alice, bob = world.users(2)
    with world.db.session() as session:
        resident = Resident(
            pseudonym="a" * 64,
            consented_at=world.clock.now(),
            created_at=world.clock.now(),
            last_seen_at=world.clock.now(),
        )
        session.add(resident)
        session.flush()
        resident_id = resident.id
    world.emulator.block(alice)
    world.enqueue("inv:alice", alice.id, resident_id=resident_id)
    world.enqueue("inv:bob", bob.id)
    report = await world.sender().run_once()
    assert (report.sent, report.failed) == (1, 1)
    rows = world.rows()
    assert rows["inv:alice"].status == "failed"
    assert "blocked" in (rows["inv:alice"].last_error or "")
    with world.db.session() as session:
        stored = session.get(Resident, resident_id)
        assert stored is not None and stored.unreachable_at is not None
    assert world.emulator.sent_to(alice.id) == [] and len(world.emulator.sent_to(bob.id)) == 1


async def test_unknown_chat_and_bad_html_fail_with_reason(world: World) -> None:
    (user,) = world.users(1)
    world.enqueue("nowhere", 987654321)
    world.enqueue("bad-html", user.id, payload={"text": "a<br>b", "parse_mode": "HTML"})
    report = await world.sender().run_once()
    assert report.failed == 2
    rows = world.rows()
    assert "chat not found" in (rows["nowhere"].last_error or "").lower()
    assert "parse entities" in (rows["bad-html"].last_error or "").lower()
