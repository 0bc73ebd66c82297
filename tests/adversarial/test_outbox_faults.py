"""The outbox under 429, 5xx, refused connections and lost answers at once, on a large batch:
each message arrives at most once and nothing Telegram refused is missing; every row ends sent,
or failed/unknown with a reason.

tests/test_outbox_emulator.py covers 429s alone (flood waits) and final refusals (403, 400);
tests/test_outbox_crash.py SIGKILLs. Here the emulated network refuses a share of calls with 429
and 502, fails connections before the request arrives, and loses answers after Telegram acted
(a timeout: the sender cannot know whether the message went out), all mixed.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sandbox.network import Network
from storage.models import OutboxMessage
from tests.test_outbox_emulator import World
from tests.test_outbox_emulator import world as world  # the fixture

MESSAGES = 200


async def test_mixed_faults_lose_and_double_nothing(world: World) -> None:
    world.emulator.network = Network(refuse_429=0.1, refuse_5xx=0.1, connect_error=0.05, seed=13)
    users = world.users(MESSAGES)
    for user in users:
        world.enqueue(f"round-1:{user.id}", user.id)
    sender = world.sender()
    for _ in range(30):  # rounds, as the runtime's loop runs them, until nothing is due
        await sender.run_once()
        world.clock.advance(timedelta(minutes=2))  # retries fall due
        if all(row.status != "pending" for row in world.rows().values()):
            break
    rows = world.rows()
    stats = world.emulator.stats
    assert stats["fault_429"] and stats["fault_5xx"] and stats["fault_connect"]
    # Every message arrived exactly once, and its row says so with Telegram's message id.
    for user in users:
        row: OutboxMessage = rows[f"round-1:{user.id}"]
        delivered = [m.message_id for m in world.emulator.sent_to(user.id)]
        assert row.status == "sent" and delivered == [row.telegram_message_id], row.last_error


async def test_lost_answers_are_not_resent_and_failures_keep_their_reason(world: World) -> None:
    """A call that went out without an answer may have been carried out: its row is `unknown`
    and is not resent (docs/outbox.md: at most once), so nothing arrives twice; what Telegram
    refused is retried, so nothing else is missing, and a row that fails says why."""
    world.emulator.network = Network(
        refuse_429=0.1, refuse_5xx=0.1, connect_error=0.05, lose_response=0.05, seed=13
    )
    users = world.users(MESSAGES)
    blocked = users[:5]
    for user in blocked:
        world.emulator.block(user)
    for user in users:
        world.enqueue(f"round-1:{user.id}", user.id)
    sender = world.sender()
    unknown = 0
    for _ in range(30):
        unknown += (await sender.run_once()).unknown
        world.clock.advance(timedelta(minutes=2))  # retries fall due
        if all(row.status != "pending" for row in world.rows().values()):
            break
    rows = world.rows()
    stats = world.emulator.stats
    assert stats["fault_lose"], "no answer was lost: the test would prove less"
    statuses = Counter(row.status for row in rows.values())
    assert set(statuses) <= {"sent", "failed", "unknown"}, statuses
    # Only a call whose answer was lost ends unknown (a blocked user's 403 may be lost too).
    assert statuses["unknown"] == unknown and 0 < unknown <= stats["fault_lose"]
    for user in users:
        row: OutboxMessage = rows[f"round-1:{user.id}"]
        delivered = [m.message_id for m in world.emulator.sent_to(user.id)]
        assert len(delivered) <= 1, "a message arrived twice"
        if row.status == "unknown":
            assert "delivery unknown, not resent" in (row.last_error or "")
            continue
        if user in blocked:
            assert row.status == "failed" and "blocked" in (row.last_error or "")
            assert delivered == []
            continue
        assert row.status == "sent" and delivered == [row.telegram_message_id], row.last_error


async def test_with_resend_interrupted_a_lost_answer_is_retried(world: World) -> None:
    """At least once, when chosen: no row is left unknown, and a message may arrive twice only
    where an answer was lost."""
    world.emulator.network = Network(lose_response=0.1, seed=5)
    users = world.users(50)
    for user in users:
        world.enqueue(f"round-1:{user.id}", user.id)
    sender = world.sender(resend_interrupted=True)
    for _ in range(30):
        await sender.run_once()
        world.clock.advance(timedelta(minutes=2))
        if all(row.status not in ("pending", "sending") for row in world.rows().values()):
            break
    rows = world.rows()
    assert {row.status for row in rows.values()} == {"sent"}
    doubled = sum(len(world.emulator.sent_to(user.id)) - 1 for user in users)
    assert 0 <= doubled <= world.emulator.stats["fault_lose"]
