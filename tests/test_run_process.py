"""`buurtstem run` as a subprocess against the emulator over HTTP: webhook mode and SIGTERM."""

from __future__ import annotations

import asyncio
import json
import random
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from benchmarks.instances import HOOK_PATH, PSEUDONYM_KEY, SECRET, BotProcess, SurveyResident
from sandbox.emulator import BotAPIEmulator
from sandbox.server import EmulatorServer
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Answer, Resident, Response
from storage.pseudonyms import pseudonym

pytestmark = pytest.mark.slow
KEY = PSEUDONYM_KEY  # the pseudonym key BotProcess gives its bots


@pytest.fixture
async def server(emulator: BotAPIEmulator) -> AsyncIterator[EmulatorServer]:
    """The emulator over HTTP on 127.0.0.1, delivering webhooks."""
    async with EmulatorServer(emulator, webhook_retry_delay=0.1) as running:
        yield running


@pytest.fixture
def migrated_url(sqlite_url: str) -> str:
    """A migrated SQLite database (the bot would migrate too; this saves it the time)."""
    upgrade(sqlite_url)
    return sqlite_url


async def start_bot(
    server: EmulatorServer, emulator: BotAPIEmulator, url: str, tmp_path: Path, *, webhook: bool
) -> BotProcess:
    """A `buurtstem run` subprocess, ready (health answers, webhook set or polling)."""
    bot = BotProcess(url, server.url, emulator.token, webhook=webhook, log_dir=tmp_path)
    bot.start()
    try:
        await bot.wait_ready()
        if webhook:
            assert await emulator.wait_until(lambda: bool(emulator.webhook_url), 10)
    except BaseException:
        bot.kill()
        raise
    return bot


def stored_answers(url: str, telegram_id: int) -> dict[str, Any]:
    """The answers stored for a resident's only response."""
    database = Database(url)
    try:
        with database.session() as session:
            resident = session.scalars(
                select(Resident).where(Resident.pseudonym == pseudonym(KEY, telegram_id))
            ).one()
            response = session.scalars(
                select(Response).where(Response.resident_id == resident.id)
            ).one()
            assert response.status == "completed"
            return {
                a.question_id: a.value
                for a in session.scalars(select(Answer).where(Answer.response_id == response.id))
            }
    finally:
        database.dispose()


async def test_webhook_mode_completes_a_survey(
    server: EmulatorServer, emulator: BotAPIEmulator, migrated_url: str, tmp_path: Path
) -> None:
    bot = await start_bot(server, emulator, migrated_url, tmp_path, webhook=True)
    try:
        assert emulator.webhook_url == bot.backend + HOOK_PATH
        assert emulator.webhook_secret == SECRET
        assert emulator.allowed_updates == ["message", "callback_query", "my_chat_member"]
        resident = SurveyResident(emulator, emulator.add_user("Fatima"), random.Random(7))
        await resident.onboard()
        await resident.answer_survey()
        assert "dank" in resident.bot_messages()[-1].visible_text.lower()
        health = await bot.health()
        assert health is not None and health["status"] == "ok" and health["leader"] is True
        metrics = await bot.metrics()
        assert 'buurtstem_updates_handled_total{kind="callback_query"}' in metrics
        assert f"buurtstem_answers_stored_total {float(len(resident.tapped))}" in metrics
    finally:
        bot.signal(signal.SIGTERM)
        assert await bot.wait_exit() == 0
    assert stored_answers(migrated_url, resident.user.id) == resident.tapped
    assert "Traceback" not in bot.log()
    # Every update went through the webhook, none by polling.
    assert not emulator.calls("getUpdates")
    assert all(d["status"] == 200 for d in emulator.webhook_deliveries)


async def test_webhook_refuses_a_wrong_or_missing_secret(
    server: EmulatorServer, emulator: BotAPIEmulator, migrated_url: str, tmp_path: Path
) -> None:
    bot = await start_bot(server, emulator, migrated_url, tmp_path, webhook=True)
    user = emulator.add_user("Mallory")
    try:
        # A real update (delivered by the emulator with the secret) and a forged twin of it.
        real = emulator.user_sends(user, "/start")
        assert real is not None
        forged = {**real, "update_id": real["update_id"] + 1000}
        async with httpx.AsyncClient(timeout=5) as client:
            url = bot.backend + HOOK_PATH
            wrong = await client.post(
                url, json=forged, headers={"X-Telegram-Bot-Api-Secret-Token": "not-it"}
            )
            missing = await client.post(url, json=forged)
        assert wrong.status_code == 403
        assert missing.status_code == 403
        assert await emulator.wait_until(lambda: len(emulator.sent_to(user.id)) >= 2, 15)
        # Once more with the right secret: now the forged update is taken (two more replies).
        async with httpx.AsyncClient(timeout=5) as client:
            right = await client.post(
                url, json=forged, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
            )
        assert right.status_code == 200
        assert await emulator.wait_until(lambda: len(emulator.sent_to(user.id)) >= 4, 15)
    finally:
        bot.signal(signal.SIGTERM)
        assert await bot.wait_exit() == 0
    refused = [d for d in emulator.webhook_deliveries if d["status"] != 200]
    assert refused == []  # the emulator itself always sent the right secret


async def test_webhook_refuses_bodies_over_the_limit(
    server: EmulatorServer, emulator: BotAPIEmulator, migrated_url: str, tmp_path: Path
) -> None:
    from bot.webhook import MAX_BODY_BYTES

    bot = await start_bot(server, emulator, migrated_url, tmp_path, webhook=True)
    user = emulator.add_user("Sem")
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    try:
        real = emulator.user_sends(user, "/start")
        assert real is not None
        assert await emulator.wait_until(lambda: len(emulator.sent_to(user.id)) >= 2, 15)
        url = bot.backend + HOOK_PATH
        async with httpx.AsyncClient(timeout=30) as client:
            for size in (20 * 1024 * 1024, MAX_BODY_BYTES + 1):
                padded = {**real, "update_id": real["update_id"] + size, "pad": "x" * size}
                answer = await client.post(url, content=json.dumps(padded), headers=headers)
                assert answer.status_code == 413, size

            async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as read
                for _ in range(3):
                    yield b" " * MAX_BODY_BYTES

            chunked = await client.post(url, content=chunks(), headers=headers)
            assert chunked.status_code in (400, 413)
            # The instance still takes ordinary updates.
            again = {**real, "update_id": real["update_id"] + 1}
            answer = await client.post(url, content=json.dumps(again), headers=headers)
            assert answer.status_code == 200
        assert await emulator.wait_until(lambda: len(emulator.sent_to(user.id)) >= 4, 15)
    finally:
        bot.signal(signal.SIGTERM)
        assert await bot.wait_exit() == 0
    assert "Traceback" not in bot.log()


@pytest.mark.parametrize("webhook", [True, False], ids=["webhook", "polling"])
async def test_sigterm_finishes_the_update_in_hand_and_exits_cleanly(
    server: EmulatorServer,
    emulator: BotAPIEmulator,
    migrated_url: str,
    tmp_path: Path,
    webhook: bool,
) -> None:
    bot = await start_bot(server, emulator, migrated_url, tmp_path, webhook=webhook)
    # Hold the bot's first reply inside the emulator, so the update is in hand at SIGTERM.
    held, release = asyncio.Event(), asyncio.Event()
    original = emulator.call

    async def call(method: str, params: Any = None, files: Any = None, **kw: Any) -> Any:
        if method.lower() == "sendmessage" and not release.is_set():
            held.set()
            await release.wait()
        return await original(method, params, files, **kw)

    emulator.call = call  # type: ignore[method-assign]
    try:
        user = emulator.add_user("Sanne")
        emulator.user_sends(user, "/start")
        await asyncio.wait_for(held.wait(), 15)
        bot.signal(signal.SIGTERM)
        # Let go only once the bot is shutting down (it says so in its log).
        for _ in range(300):
            if "Application is stopping" in bot.log():
                break
            await asyncio.sleep(0.05)
        assert "Application is stopping" in bot.log()
        assert bot.process is not None and bot.process.poll() is None
        release.set()
        assert await bot.wait_exit() == 0
    finally:
        release.set()
        bot.kill()
    # The update in hand was finished: intro and consent notice both sent.
    texts = [m.visible_text for m in emulator.sent_to(user.id)]
    assert len(texts) == 2, bot.log()
    log = bot.log()
    assert "Traceback" not in log
    assert "no longer leads" in log  # the lead was handed over on the way out
