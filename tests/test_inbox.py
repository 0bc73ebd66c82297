"""Nothing Telegram delivered is lost: updates are stored before they are confirmed, until handled."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from telegram import Update

from bot.inbox import DurableUpdateQueue
from bot.leader import Leadership
from bot.runtime import Runtime
from sandbox.harness import BotHarness
from storage.models import InboxUpdate


def stored(services: Any) -> list[int]:
    with services.db.session() as session:
        return list(session.scalars(select(InboxUpdate.update_id).order_by(InboxUpdate.update_id)))


async def test_updates_queued_but_not_handled_before_a_crash_are_handled_after_it(
    make_services: Any, make_app: Any, database_url: str, emulator: Any
) -> None:
    services = make_services(database_url)
    rosa = emulator.add_user("Rosa", language_code="nl")
    # Instance A takes /start from Telegram (stored, then confirmed) and dies before handling.
    crashed = make_app(services)
    update = emulator.user_sends(rosa, "/start")
    assert isinstance(crashed.update_queue, DurableUpdateQueue)
    await crashed.update_queue.put(Update.de_json(update, crashed.bot))
    emulator.confirm(update["update_id"])
    assert stored(services) == [update["update_id"]]
    assert emulator.sent_to(rosa.id) == []

    # Instance B starts on the same database: the stored update is handled, once.
    app = make_app(services)
    assert isinstance(app.update_queue, DurableUpdateQueue)
    runtime = Runtime(app, services, leadership=Leadership(services.db))
    app.update_queue.grace = timedelta(0)  # nobody else is alive here
    await app.initialize()
    await runtime.start()
    await app.start()
    try:
        assert await emulator.wait_until(lambda: len(emulator.sent_to(rosa.id)) >= 2, 10)
        assert "buurtstem" in emulator.sent_to(rosa.id)[0].visible_text
        await asyncio.wait_for(app.update_queue.join(), 10)  # handled to the last group
        await app.update_queue.flush()
        assert stored(services) == []
    finally:
        await app.stop()
        await runtime.stop()
        await app.shutdown()
    assert len(emulator.sent_to(rosa.id)) == 2  # intro and consent: not twice


async def test_an_update_is_forgotten_once_handled(
    make_services: Any, make_app: Any, sqlite_url: str, emulator: Any
) -> None:
    services = make_services(sqlite_url)
    app = make_app(services)
    async with BotHarness(emulator, app, mode="queue") as h:
        ada = h.user("Ada")
        await ada.send("/start")
        await ada.send("/help")  # not claimed by its handler, still forgotten when handled
        assert len(stored(services)) == 2
        await app.update_queue.flush()
        assert stored(services) == []


async def test_polling_skips_an_update_the_library_cannot_read(
    make_services: Any, make_app: Any, sqlite_url: str, emulator: Any
) -> None:
    services = make_services(sqlite_url)
    async with BotHarness(emulator, make_app(services), mode="polling", poll_timeout=1) as h:
        emulator.push_raw_update(
            {"message": {"message_id": 1, "date": 0, "chat": "not a chat", "text": "x"}}
        )
        ben = h.user("Ben")
        before = len(emulator.calls("getUpdates"))
        await ben.send("/start")
        assert "buurtstem" in ben.messages()[0].visible_text
        await asyncio.sleep(0.5)
        # No loop: a handful of getUpdates calls, not thousands asking for the same update.
        assert len(emulator.calls("getUpdates")) - before < 10
