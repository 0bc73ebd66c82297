"""The emulator over HTTP on 127.0.0.1: PTB against it, the control API, webhook delivery."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden
from telegram.ext import ApplicationBuilder

from sandbox import BotAPIEmulator
from sandbox.harness import BotHarness
from sandbox.server import SECRET_HEADER, EmulatorServer, ThreadedEmulatorServer, WebhookDeliverer
from tests.test_emulator_api import png
from tests.test_emulator_harness import build_echo_app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def served() -> AsyncIterator[tuple[BotAPIEmulator, EmulatorServer]]:
    emulator = BotAPIEmulator()
    async with EmulatorServer(emulator, port=0, webhook_retry_delay=0.05) as server:
        yield emulator, server


def http_bot(emulator: BotAPIEmulator, server: EmulatorServer) -> Bot:
    return Bot(emulator.token, base_url=server.base_url, base_file_url=server.base_file_url)


async def test_bot_methods_over_http(served: tuple[BotAPIEmulator, EmulatorServer]) -> None:
    emulator, server = served
    alice = emulator.add_user("Alice", started=True)
    emulator.user_sends(alice, "/start")
    async with http_bot(emulator, server) as bot:
        assert (await bot.get_me()).username == "buurtstem_bot"
        updates = await bot.get_updates()
        assert updates[0].message is not None and updates[0].message.text == "/start"
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("Ja", callback_data="yes")]])
        sent = await bot.send_message(
            alice.id, "<b>Hoi</b>", parse_mode="HTML", reply_markup=markup
        )
        assert sent.text == "Hoi" and sent.reply_markup == markup
        photo = await bot.send_photo(alice.id, png(64, 48), caption="grafiek")  # multipart
        file = await bot.get_file(photo.photo[-1].file_id)
        assert bytes(await file.download_as_bytearray()) == png(64, 48)
        with pytest.raises(BadRequest, match="Button_data_invalid"):
            await bot.send_message(
                alice.id,
                "x",
                reply_markup=InlineKeyboardMarkup(
                    [[InlineKeyboardButton("x", callback_data="d" * 65)]]
                ),
            )
        emulator.block(alice)
        with pytest.raises(Forbidden):
            await bot.send_message(alice.id, "x")
    assert [m.visible_text for m in emulator.sent_to(alice.id)] == ["Hoi", "grafiek"]


async def test_get_json_and_query_string_requests(
    served: tuple[BotAPIEmulator, EmulatorServer],
) -> None:
    emulator, server = served
    alice = emulator.add_user("Alice", started=True)
    async with httpx.AsyncClient(base_url=server.url) as client:
        got = await client.get(f"/bot{emulator.token}/getMe")
        assert got.json()["result"]["is_bot"] is True
        sent = await client.post(
            f"/bot{emulator.token}/sendMessage", json={"chat_id": alice.id, "text": "json"}
        )
        assert sent.json()["result"]["text"] == "json"
        query = await client.get(f"/bot{emulator.token}/sendMessage?chat_id={alice.id}&text=query")
        assert query.json()["result"]["text"] == "query"
        unauthorized = await client.get("/bot1:nope/getMe")
        assert (
            unauthorized.status_code == 401 and unauthorized.json()["description"] == "Unauthorized"
        )


async def test_polling_application_over_http(served: tuple[BotAPIEmulator, EmulatorServer]) -> None:
    emulator, server = served
    builder = ApplicationBuilder().token(emulator.token).base_url(server.base_url)
    app, seen = build_echo_app(emulator, builder)
    async with BotHarness(emulator, app, mode="polling", poll_timeout=1) as h:
        alice = h.user("Alice")
        await alice.send("/start http")
        assert alice.last_message().text == "Welkom (http)"
        await alice.tap("Ja")
        assert [m.text for m in alice.messages()] == ["Antwoord: yes", "Volgende vraag"]
    assert seen["update_ids"] == []  # only a command and a tap: the echo handler never ran


async def test_control_api(served: tuple[BotAPIEmulator, EmulatorServer]) -> None:
    emulator, server = served
    async with httpx.AsyncClient(base_url=server.url) as client:
        user = (
            await client.post(
                "/_emulator/users", json={"first_name": "Ayşe", "language_code": "tr"}
            )
        ).json()
        sent = (
            await client.post(f"/_emulator/users/{user['id']}/send", json={"text": "/start"})
        ).json()
        assert sent["update_id"] == 1
        bot_api = f"/bot{emulator.token}"
        markup = '{"inline_keyboard": [[{"text": "Ja", "callback_data": "yes"}]]}'
        await client.post(
            f"{bot_api}/sendMessage",
            data={"chat_id": user["id"], "text": "Doe je mee?", "reply_markup": markup},
        )
        tap = (await client.post(f"/_emulator/users/{user['id']}/tap", json={"label": "Ja"})).json()
        assert tap["update_id"] == 2
        messages = (await client.get(f"/_emulator/chats/{user['id']}/messages")).json()
        assert [(m["from_bot"], m.get("text")) for m in messages] == [
            (False, "/start"),
            (True, "Doe je mee?"),
        ]
        await client.post(f"/_emulator/users/{user['id']}/block")
        assert emulator.users[user["id"]].blocked
        group = (
            await client.post(
                "/_emulator/groups", json={"title": "Alliantie", "added_by": user["id"]}
            )
        ).json()
        assert group["type"] == "group" and group["id"] < 0
        limits = (
            await client.post("/_emulator/limits", json={"enabled": True, "private_burst": 2})
        ).json()
        assert limits["enabled"] is True and emulator.limits.private_burst == 2
        moved = (
            await client.post("/_emulator/time", json={"time": 1_800_000_000, "advance": 5})
        ).json()
        assert moved["time"] == 1_800_000_005 and emulator.now() == 1_800_000_005
        state = (await client.get("/_emulator/state")).json()
        assert state["pending_updates"] == 5 and len(state["users"]) == 1
        requests = (
            await client.get("/_emulator/requests", params={"method": "sendMessage"})
        ).json()
        assert len(requests) == 1
        events = (await client.get("/_emulator/events", params={"after": 0})).json()
        assert [e["type"] for e in events][:2] == ["message", "message"]


async def test_control_api_serves_uploaded_files(
    served: tuple[BotAPIEmulator, EmulatorServer],
) -> None:
    emulator, server = served
    alice = emulator.add_user("Alice", started=True)
    async with http_bot(emulator, server) as bot:
        doc = await bot.send_document(alice.id, b"a;b\n1;2\n", filename="export.csv")
    assert doc.document is not None
    async with httpx.AsyncClient(base_url=server.url) as client:
        got = await client.get(f"/_emulator/files/{doc.document.file_id}")
    assert got.content == b"a;b\n1;2\n" and got.headers["content-type"].startswith("text/csv")


async def test_webhook_delivery_with_secret_and_retry(
    served: tuple[BotAPIEmulator, EmulatorServer],
) -> None:
    emulator, server = served
    received: list[tuple[str | None, dict[str, Any]]] = []
    answers = [500]  # the first POST fails; Telegram (and the emulator) retry

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get(SECRET_HEADER), await request.json()))
        return web.Response(status=answers.pop() if answers else 200)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        alice = emulator.add_user("Alice")
        async with http_bot(emulator, server) as bot:
            await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="geheim-123")
            emulator.user_sends(alice, "via webhook")
            assert await emulator.wait_until(lambda: emulator.pending_update_count == 0, 10)
            info = await bot.get_webhook_info()
            assert info.pending_update_count == 0 and info.last_error_message is None
    finally:
        await runner.cleanup()
    assert [secret for secret, _ in received] == ["geheim-123", "geheim-123"]
    assert received[0][1] == received[1][1]
    assert received[0][1]["message"]["text"] == "via webhook"
    assert [d["status"] for d in emulator.webhook_deliveries] == [500, 200]


async def test_in_process_webhook_delivery_uses_an_httpx_client() -> None:
    emulator = BotAPIEmulator()
    posted: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posted.append(request)
        return httpx.Response(200)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with WebhookDeliverer(emulator, client=client):
        await emulator.call(
            "setWebhook", {"url": "https://bot.example/hook", "secret_token": "abc"}
        )
        emulator.user_sends(emulator.add_user("Alice"), "hallo")
        assert await emulator.wait_until(lambda: emulator.pending_update_count == 0, 5)
    await client.aclose()
    assert posted[0].headers[SECRET_HEADER] == "abc"


def test_threaded_server_for_sync_code() -> None:
    emulator = BotAPIEmulator()
    with ThreadedEmulatorServer(emulator) as server:
        got = httpx.get(f"{server.base_url}{emulator.token}/getMe")
        assert got.json()["ok"] is True
        user = httpx.post(f"{server.url}/_emulator/users", json={"first_name": "Bo"}).json()
        httpx.post(f"{server.url}/_emulator/users/{user['id']}/send", json={"text": "hoi"})
        updates = httpx.get(f"{server.base_url}{emulator.token}/getUpdates").json()["result"]
        assert updates[0]["message"]["text"] == "hoi"


async def test_standalone_command_prints_its_url() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.server",
        "--port",
        "0",
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        assert line.startswith("Bot API emulator at http://127.0.0.1:")
        url = line.split(" at ", 1)[1].strip()
        async with httpx.AsyncClient() as client:
            state = (await client.get(url + "/_emulator/state")).json()
        assert state["bot"]["username"] == "buurtstem_bot"
    finally:
        process.terminate()
        await process.wait()
