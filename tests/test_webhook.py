"""buurtstem's webhook server: secret, body limit, unreadable updates, stored before the 200."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.inbox import DurableUpdateQueue
from bot.webhook import MAX_BODY_BYTES, SECRET_HEADER, WebhookServer
from storage.models import InboxUpdate

SECRET = "webhook-test-secret"
HEADERS = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}


@pytest.fixture
async def hook(make_services: Any, make_app: Any, sqlite_url: str) -> AsyncIterator[Any]:
    """buurtstem's Application behind its webhook server on 127.0.0.1 (updates only queued)."""
    services = make_services(sqlite_url)
    app = make_app(services)
    skips: list[int] = []
    server = WebhookServer(
        app.update_queue, app.bot, path="hook", secret=SECRET, on_skip=lambda: skips.append(1)
    )
    await server.start("127.0.0.1", 0)
    app.url = f"http://127.0.0.1:{server.port}/hook"  # type: ignore[attr-defined]
    app.skips = skips  # type: ignore[attr-defined]
    app.services = services  # type: ignore[attr-defined]
    try:
        yield app
    finally:
        await server.stop()


def update(update_id: int, pad: int = 0, **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1_790_000_000,
            "chat": {"id": 4242, "type": "private", "first_name": "Sem"},
            "from": {"id": 4242, "is_bot": False, "first_name": "Sem"},
            "text": "hallo",
        },
        **extra,
    }
    if pad:
        body["pad"] = "x" * pad
    return json.dumps(body).encode()


def queued(app: Any) -> list[int]:
    return [app.update_queue.get_nowait().update_id for _ in range(app.update_queue.qsize())]


async def test_bodies_over_the_limit_get_413_and_never_reach_the_bot(hook: Any) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await client.post(hook.url, content=update(1), headers=HEADERS)).status_code == 200
        near = update(2, pad=MAX_BODY_BYTES - len(update(2)) - 20)
        assert len(near) <= MAX_BODY_BYTES
        assert (await client.post(hook.url, content=near, headers=HEADERS)).status_code == 200
        for size in (MAX_BODY_BYTES + 1, 20 * 1024 * 1024):
            try:
                refused = await client.post(hook.url, content=update(3, pad=size), headers=HEADERS)
            except httpx.TransportError:
                continue  # the server stopped reading and closed: refused as well
            assert refused.status_code == 413, size
        # The next request still works (on a new connection if the old one was closed).
        assert (await client.post(hook.url, content=update(4), headers=HEADERS)).status_code == 200

        async def chunks(n: int) -> AsyncIterator[bytes]:
            for _ in range(n):
                yield b" " * (256 * 1024)

        try:
            chunked = await client.post(hook.url, content=chunks(8), headers=HEADERS)
            assert chunked.status_code == 413
        except httpx.TransportError:
            pass
    assert queued(hook) == [1, 2, 4]


async def test_requests_without_the_secret_are_refused(hook: Any) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        for headers in ({}, {SECRET_HEADER: "wrong"}):
            answer = await client.post(hook.url, content=update(5), headers=headers)
            assert answer.status_code == 403
        assert (
            await client.post(hook.url, content=b"{no json", headers=HEADERS)
        ).status_code == 400
        not_an_update = json.dumps({"hello": 1}).encode()
        assert (
            await client.post(hook.url, content=not_an_update, headers=HEADERS)
        ).status_code == 400
    assert queued(hook) == []


async def test_an_unreadable_update_is_skipped_and_delivery_goes_on(hook: Any) -> None:
    # A field the library cannot read (a chat that is not an object): Telegram must get 200, or
    # it sends this update again and again and nothing after it.
    bad = json.dumps(
        {"update_id": 6, "message": {"message_id": 1, "date": 0, "chat": "oops", "text": "x"}}
    ).encode()
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await client.post(hook.url, content=bad, headers=HEADERS)).status_code == 200
        assert (await client.post(hook.url, content=update(7), headers=HEADERS)).status_code == 200
    first, second = hook.update_queue.get_nowait(), hook.update_queue.get_nowait()
    assert first.update_id == 6 and first.message is None  # bare: skipped by every handler
    assert second.update_id == 7 and second.message is not None
    assert hook.skips == [1]


async def test_an_update_is_stored_before_the_200(hook: Any) -> None:
    assert isinstance(hook.update_queue, DurableUpdateQueue)
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await client.post(hook.url, content=update(8), headers=HEADERS)).status_code == 200
    with hook.services.db.session() as session:
        stored = session.scalars(select(InboxUpdate)).all()
    assert [row.update_id for row in stored] == [8]
    assert json.loads(stored[0].payload)["message"]["text"] == "hallo"
    await asyncio.sleep(0)
