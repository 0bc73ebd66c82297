"""RetryingRequest: what is called again, what never twice; the per-chat update processor."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import httpx
import pytest
from telegram import Update
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest

from bot.ordering import ChatOrderedProcessor, chat_key
from bot.retrying import RetryingRequest, is_idempotent, may_have_been_sent, without_retries

URL = "https://api.telegram.org/bot1:X/"


class Scripted(BaseRequest):
    """Answers each call with the next scripted outcome: (status, body) or an exception."""

    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[str] = []

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(self, url: str, method: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(url.rsplit("/", 1)[-1])
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def ok() -> tuple[int, bytes]:
    return 200, json.dumps({"ok": True, "result": True}).encode()


def flood(seconds: int) -> tuple[int, bytes]:
    body = {
        "ok": False,
        "error_code": 429,
        "description": f"Too Many Requests: retry after {seconds}",
        "parameters": {"retry_after": seconds},
    }
    return 429, json.dumps(body).encode()


def network(cause: Exception) -> NetworkError:
    try:
        raise cause
    except Exception as exc:
        error = TimedOut() if isinstance(exc, httpx.TimeoutException) else NetworkError(str(exc))
        error.__cause__ = exc
        return error


class Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def make(outcomes: list[Any], **kwargs: Any) -> tuple[RetryingRequest, Scripted, Waits]:
    inner, waits = Scripted(outcomes), Waits()
    return RetryingRequest(inner, sleep=waits, **kwargs), inner, waits


async def test_a_429_is_waited_out_then_sent_again() -> None:
    request, inner, waits = make([flood(2), ok()])
    assert await request.do_request(URL + "sendMessage", "POST") == ok()
    assert inner.calls == ["sendMessage", "sendMessage"]
    assert 2.0 <= waits.seconds[0] <= 2.2


async def test_a_flood_wait_longer_than_max_wait_is_returned_not_waited() -> None:
    request, inner, waits = make([flood(60), ok()], max_wait=30)
    status, _ = await request.do_request(URL + "sendMessage", "POST")
    assert status == 429 and inner.calls == ["sendMessage"] and waits.seconds == []


async def test_gateway_errors_and_unsent_calls_are_retried_for_every_method() -> None:
    request, inner, _ = make(
        [
            (502, b'{"ok":false,"error_code":502,"description":"Bad Gateway"}'),
            network(httpx.ConnectError("refused")),
            network(httpx.PoolTimeout("pool")),
            ok(),
        ]
    )
    assert await request.do_request(URL + "sendMessage", "POST") == ok()
    assert len(inner.calls) == 4


@pytest.mark.parametrize(
    "cause", [httpx.ReadError("reset"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")]
)
async def test_a_send_that_may_have_arrived_is_never_sent_again(cause: Exception) -> None:
    request, inner, _ = make([network(cause), ok()])
    with pytest.raises(NetworkError):
        await request.do_request(URL + "sendMessage", "POST")
    assert inner.calls == ["sendMessage"]


@pytest.mark.parametrize("method", ["editMessageText", "answerCallbackQuery", "getMe"])
async def test_a_repeatable_call_that_may_have_arrived_is_made_again(method: str) -> None:
    request, inner, _ = make([network(httpx.ReadError("reset")), ok()])
    assert await request.do_request(URL + method, "POST") == ok()
    assert inner.calls == [method, method]


async def test_final_refusals_go_straight_back() -> None:
    for status in (400, 403):
        request, inner, _ = make([(status, b'{"ok":false}'), ok()])
        assert (await request.do_request(URL + "sendMessage", "POST"))[0] == status
        assert inner.calls == ["sendMessage"]


async def test_attempts_are_bounded() -> None:
    request, inner, _ = make([flood(1)] * 10, max_attempts=3)
    assert (await request.do_request(URL + "sendMessage", "POST"))[0] == 429
    assert len(inner.calls) == 3


async def test_without_retries_calls_once() -> None:
    request, inner, _ = make([flood(1), ok()])
    with without_retries():
        assert (await request.do_request(URL + "sendMessage", "POST"))[0] == 429
    assert inner.calls == ["sendMessage"]


def test_idempotent_methods() -> None:
    assert is_idempotent("editMessageText") and is_idempotent("answerCallbackQuery")
    assert not is_idempotent("sendMessage") and not is_idempotent("sendPhoto")


def update(update_id: int, chat_id: int) -> Update:
    return Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 0,
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": chat_id, "is_bot": False, "first_name": "X"},
                "text": "x",
            },
        },
        None,
    )


async def test_processor_runs_chats_at_once_and_one_chat_in_order() -> None:
    processor = ChatOrderedProcessor(limit=4)
    log: list[tuple[str, int, int]] = []
    running = 0
    most = 0

    async def handle(u: Update) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        log.append(("start", u.effective_chat.id, u.update_id))  # type: ignore[union-attr]
        await asyncio.sleep(0.01 * (u.update_id % 3))
        log.append(("end", u.effective_chat.id, u.update_id))  # type: ignore[union-attr]
        running -= 1

    updates = [update(i, chat_id=1 + i % 3) for i in range(1, 19)]
    await asyncio.gather(*(processor.process_update(u, handle(u)) for u in updates))
    assert most > 1  # chats ran at the same time
    assert most <= 4  # never more than the limit
    for chat in (1, 2, 3):
        events = [(kind, uid) for kind, c, uid in log if c == chat]
        # Strictly one after the other, in arrival order.
        expected = [
            (kind, u.update_id)
            for u in updates
            if chat_key(u) == ("chat", chat)
            for kind in ("start", "end")
        ]
        assert events == expected
    assert processor.chats_waiting == 0


def _raised(exc: BaseException, cause: BaseException | None) -> BaseException:
    try:
        raise exc from cause
    except BaseException as raised:
        return raised


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_raised(TimedOut(), httpx.ReadTimeout("read")), True),
        (_raised(NetworkError("x"), httpx.RemoteProtocolError("closed")), True),
        (_raised(NetworkError("x"), aiohttp.ServerDisconnectedError()), True),
        (_raised(TimedOut(), TimeoutError()), True),
        (_raised(TimedOut(), httpx.ConnectTimeout("connect")), False),
        (_raised(NetworkError("x"), httpx.ConnectError("refused")), False),
        (_raised(NetworkError("Bad Gateway"), None), False),  # an answer from the front end
        (_raised(NetworkError("Bad Gateway"), ValueError("not JSON")), False),
    ],
)
def test_may_have_been_sent_only_when_the_request_went_out_unanswered(
    error: BaseException, expected: bool
) -> None:
    """The outbox leaves such calls `unknown` (at most once) and retries the others."""
    assert may_have_been_sent(error) is expected
