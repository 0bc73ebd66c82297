"""Bot API calls over aiohttp (bot/http_client.py) against the emulator over HTTP."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, NetworkError

from bot.http_client import AiohttpRequest
from bot.retrying import surely_not_sent
from sandbox.emulator import BotAPIEmulator
from sandbox.server import EmulatorServer

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc000000301010018dd8db40000000049454e44ae426082"
)


@pytest.fixture
async def served() -> AsyncIterator[tuple[BotAPIEmulator, Bot]]:
    emulator = BotAPIEmulator()
    async with EmulatorServer(emulator, port=0) as server:
        bot = Bot(
            emulator.token,
            base_url=server.base_url,
            base_file_url=server.base_file_url,
            request=AiohttpRequest(connections=4),
        )
        async with bot:
            yield emulator, bot


async def test_messages_keyboards_edits_and_uploads(served: tuple[BotAPIEmulator, Bot]) -> None:
    emulator, bot = served
    alice = emulator.add_user("Alice", started=True)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Ja", callback_data="v1|lc")]])
    sent = await bot.send_message(
        alice.id, "<b>Hallo</b> & welkom", parse_mode="HTML", reply_markup=keyboard
    )
    stored = emulator.message(alice.id, sent.message_id)
    assert stored.visible_text == "Hallo & welkom" and stored.button_labels == ["Ja"]
    await bot.edit_message_text("Klaar", chat_id=alice.id, message_id=sent.message_id)
    assert emulator.message(alice.id, sent.message_id).visible_text == "Klaar"
    photo = await bot.send_photo(alice.id, PNG, caption="grafiek")
    assert photo.photo and emulator.message(alice.id, photo.message_id).caption == "grafiek"
    document = await bot.send_document(alice.id, b"a;b\n1;2\n", filename="digest.csv")
    assert document.document is not None and document.document.file_name == "digest.csv"
    with pytest.raises(BadRequest):
        await bot.send_message(alice.id, "")


async def test_many_calls_share_a_small_pool(served: tuple[BotAPIEmulator, Bot]) -> None:
    import asyncio

    emulator, bot = served
    emulator.network.configure(latency=0.02)
    users = [emulator.add_user(f"U{i}", started=True) for i in range(12)]
    await asyncio.gather(*(bot.send_message(u.id, "hoi") for u in users))
    assert all(len(emulator.sent_to(u.id)) == 1 for u in users)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_refused_connection_surely_was_not_sent() -> None:
    bot = Bot("1:X", base_url=f"http://127.0.0.1:{_closed_port()}/bot", request=AiohttpRequest())
    await bot.request.initialize()
    try:
        with pytest.raises(NetworkError) as raised:
            await bot.send_message(1, "hoi")
        assert surely_not_sent(raised.value)
    finally:
        await bot.request.shutdown()


async def test_a_cut_connection_may_have_been_sent(served: tuple[BotAPIEmulator, Bot]) -> None:
    emulator, bot = served
    alice = emulator.add_user("Alice", started=True)
    emulator.network.fail_next("sendMessage", "lose")  # Telegram acts, the answer never comes
    with pytest.raises(NetworkError) as raised:
        await bot.send_message(alice.id, "hoi")
    assert not surely_not_sent(raised.value)
    assert len(emulator.sent_to(alice.id)) == 1
