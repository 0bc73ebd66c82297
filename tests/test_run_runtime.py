"""The runtime of one instance, in-process: leadership, counters, health, outbox hand-over."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from bot.runtime import Runtime, is_leader, metrics_of, update_kind
from sandbox.harness import BotHarness
from storage import outbox as outbox_store
from tests.test_resident_flow import button_data, onboard


def sample(runtime: Runtime, name: str, **labels: str) -> float:
    """The current value of a metric sample."""
    value = runtime.metrics.registry.get_sample_value(name, labels or None)
    return float(value or 0.0)


async def test_without_a_runtime_every_job_acts(
    make_services: Any, make_app: Any, sqlite_url: str
) -> None:
    app = make_app(make_services(sqlite_url))
    assert is_leader(app) is True
    assert metrics_of(app) is None


async def test_counters_for_updates_answers_and_errors(
    make_services: Any, make_app: Any, emulator: Any, sqlite_url: str
) -> None:
    services = make_services(sqlite_url)
    app = make_app(services)
    runtime = Runtime(app, services)
    runtime.attach()
    async with BotHarness(emulator, app) as h:
        anna = h.user("Anna")
        await onboard(h, anna)
        await anna.tap("7")
        await anna.tap("6")
        await anna.tap(data=button_data(anna, "vooruit"))
        await anna.resend_last_update()  # a repeat: counted as an update, stores nothing
    assert sample(runtime, "buurtstem_answers_stored_total") == 3
    assert sample(runtime, "buurtstem_updates_handled_total", kind="message") == 2
    assert sample(runtime, "buurtstem_updates_handled_total", kind="callback_query") == 6
    assert sample(runtime, "buurtstem_errors_total", kind="handler") == len(h.errors)
    runtime.detach()


def test_update_kind_names_only_known_kinds() -> None:
    assert update_kind(object()) == "other"


async def test_health_server_reports_the_lead(
    make_services: Any, make_app: Any, emulator: Any, sqlite_url: str
) -> None:
    services = make_services(sqlite_url)
    app = make_app(services)
    runtime = Runtime(app, services, health_port=0, health_host="127.0.0.1")
    async with app:
        await runtime.start()
        try:
            assert await runtime.leadership.became_leader.wait() is True
            assert runtime.health is not None
            base = f"http://127.0.0.1:{runtime.health.port}"
            async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport()) as client:
                health = (await client.get(base + "/health")).json()
                metrics = (await client.get(base + "/metrics")).text
        finally:
            await runtime.stop()
    assert health["status"] == "ok" and health["leader"] is True
    assert "buurtstem_leader 1.0" in metrics
    assert runtime.health is None  # stopped with the runtime


def queue_messages(services: Any, emulator: Any, count: int, tag: str) -> list[int]:
    """`count` invitations to fresh users who started the bot; their chat ids."""
    chats = []
    with services.db.session() as session:
        for i in range(count):
            user = emulator.add_user(f"{tag}{i}", started=True)
            chats.append(user.id)
            outbox_store.enqueue(
                session,
                kind="invitation",
                dedupe_key=f"{tag}-{i}",
                chat_id=user.id,
                method="sendMessage",
                payload={"text": f"Uitnodiging {tag} {i}"},
                now=services.clock.now(),
            )
    return chats


async def until(predicate: Any, timeout: float = 20.0) -> bool:
    """Poll `predicate` until it holds (False after `timeout`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def delivered(emulator: Any, chats: list[int]) -> dict[int, int]:
    """How many messages each chat got."""
    return {chat: len(emulator.sent_to(chat)) for chat in chats}


@pytest.mark.postgres
async def test_only_the_leader_sends_and_another_takes_over(
    make_services: Any, make_app: Any, emulator: Any, postgres_url: str
) -> None:
    one, two = make_services(postgres_url), make_services(postgres_url)
    app_one, app_two = make_app(one), make_app(two)
    first = Runtime(app_one, one, leader_interval=0.1, sender_poll_interval=0.1)
    second = Runtime(app_two, two, leader_interval=0.1, sender_poll_interval=0.1)
    chats = queue_messages(one, emulator, 12, "a")
    async with app_one, app_two:
        await first.start()
        await asyncio.wait_for(first.leadership.became_leader.wait(), 10)
        await second.start()
        try:
            assert await until(lambda: first.outbox_report.sent == 12)
            assert second.leadership.is_leader is False
            assert second.outbox_report.claimed == 0  # a follower never touches the outbox
            await first.stop()  # graceful: the lock is released at once
            await asyncio.wait_for(second.leadership.became_leader.wait(), 10)
            later = queue_messages(two, emulator, 5, "b")
            second.wake_outbox()
            assert await until(lambda: second.outbox_report.sent == 5)
        finally:
            await first.stop()
            await second.stop()
    assert second.outbox_report.sent == 5
    assert first.outbox_report.sent == 12  # nothing after it stopped
    assert set(delivered(emulator, chats + later).values()) == {1}
    assert sample(first, "buurtstem_messages_sent_total", kind="all") == 12
