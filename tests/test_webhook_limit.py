"""The webhook server refuses bodies no Telegram update comes near (in-process, real PTB server)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from bot.webhook import DRAIN_BYTES, MAX_BODY_BYTES, limit_webhook_bodies, unlimit_webhook_bodies

SECRET = "webhook-limit-secret"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}


@pytest.fixture
def limited() -> Iterator[None]:
    """Bodies limited as `buurtstem run --webhook` limits them; undone afterwards."""
    limit_webhook_bodies()
    yield
    unlimit_webhook_bodies()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def hook(
    limited: None, make_services: Any, make_app: Any, sqlite_url: str
) -> AsyncIterator[Any]:
    """buurtstem's Application with PTB's webhook server on 127.0.0.1 (updates only queued)."""
    app = make_app(make_services(sqlite_url))
    port = free_port()
    await app.initialize()
    assert app.updater is not None
    await app.updater.start_webhook(
        listen="127.0.0.1",
        port=port,
        url_path="hook",
        webhook_url=f"http://127.0.0.1:{port}/hook",
        secret_token=SECRET,
    )
    app.url = f"http://127.0.0.1:{port}/hook"  # type: ignore[attr-defined]
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.shutdown()


def update(update_id: int, pad: int = 0) -> bytes:
    body: dict[str, Any] = {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1_790_000_000,
            "chat": {"id": 4242, "type": "private", "first_name": "Sem"},
            "from": {"id": 4242, "is_bot": False, "first_name": "Sem"},
            "text": "hallo",
        },
    }
    if pad:
        body["pad"] = "x" * pad
    return json.dumps(body).encode()


async def test_bodies_over_the_limit_get_413_and_never_reach_the_bot(hook: Any) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        ok = await client.post(hook.url, content=update(1), headers=HEADERS)
        assert ok.status_code == 200
        near = update(2, pad=MAX_BODY_BYTES - len(update(2)) - 20)
        assert len(near) <= MAX_BODY_BYTES
        assert (await client.post(hook.url, content=near, headers=HEADERS)).status_code == 200
        for size in (MAX_BODY_BYTES + 1, 20 * 1024 * 1024):
            body = update(3, pad=size)
            refused = await client.post(hook.url, content=body, headers=HEADERS)
            assert refused.status_code == 413, size
        # The same connection keeps working after a refusal (the body was read, not kept).
        assert (await client.post(hook.url, content=update(4), headers=HEADERS)).status_code == 200

        async def chunks(n: int) -> AsyncIterator[bytes]:
            for _ in range(n):
                yield b" " * (256 * 1024)

        chunked = await client.post(hook.url, content=chunks(8), headers=HEADERS)
        assert chunked.status_code == 413
    queued = [hook.update_queue.get_nowait().update_id for _ in range(hook.update_queue.qsize())]
    assert queued == [1, 2, 4]


async def test_beyond_the_drain_limit_the_server_stops_reading(hook: Any) -> None:
    body = b"x" * (DRAIN_BYTES + 1)
    async with httpx.AsyncClient(timeout=30) as client:
        try:
            answer = await client.post(hook.url, content=body, headers=HEADERS)
        except httpx.TransportError:
            return  # the connection was closed before the whole body was sent: refused as well
    assert answer.status_code in (400, 413)
    assert hook.update_queue.qsize() == 0
