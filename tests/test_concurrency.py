"""Many residents at once: concurrency with per-chat order, replies that survive 429s and faults.

The app gets its updates through its update queue (as in webhook mode), so PTB's update
processor decides what runs at once (bot/ordering.py). The emulator adds latency and refuses
calls (sandbox/network.py); the app retries through bot/retrying.py. SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.retrying import RetryingRequest
from sandbox.emulator import JSON, BotAPIEmulator, StoredMessage
from sandbox.harness import BotHarness, UserHandle
from storage.models import Answer, Resident, Response

SHORT = str(Path(__file__).parent / "data" / "surveys" / "short.yaml")


@pytest.fixture
def service_settings() -> dict[str, Any]:
    """Settings of this module's services."""
    return {"survey_file": SHORT}


async def no_wait(_seconds: float) -> None:
    """Instead of waiting out retry_after and backoffs: the emulator's faults are scripted."""


def fast_retries(app: Any) -> RetryingRequest:
    request = app.bot.request
    assert isinstance(request, RetryingRequest)
    request.sleep = no_wait
    return request


async def onboard(user: UserHandle) -> StoredMessage:
    """Consent, keep the language, give a postcode; returns the first question's message."""
    await user.send("/start")
    await user.tap(data=user.last_message().buttons[0][0].callback_data)
    await user.tap(data="v1|lc")
    await user.send("3563")
    question = user.last_message()
    assert "Vraag 1 van" in question.visible_text
    return question


def answers(services: Any) -> dict[int, dict[str, Any]]:
    """Stored answers per response id."""
    found: dict[int, dict[str, Any]] = {}
    with services.db.session() as session:
        for answer in session.scalars(select(Answer)):
            found.setdefault(answer.response_id, {})[answer.question_id] = answer.value
    return found


def chat_of(emulator: BotAPIEmulator, params: JSON) -> int | None:
    if "chat_id" in params:
        return int(params["chat_id"])
    query = emulator.callback_queries.get(str(params.get("callback_query_id")))
    return query.chat_id if query is not None else None


def chats_overlapped(emulator: BotAPIEmulator, since: int) -> bool:
    """Whether calls for two different chats were in flight at the same moment."""
    records = [
        (r.started, r.finished, chat_of(emulator, r.params)) for r in emulator.requests[since:]
    ]
    for start, end, chat in records:
        for other_start, other_end, other_chat in records:
            if chat != other_chat and start < other_end and other_start < end:
                return True
    return False


def burst(emulator: BotAPIEmulator, user: UserHandle, question: StoredMessage) -> list[JSON]:
    """What an impatient resident sends before the bot answers: whose outcome needs order.

    A double tap on question 1 (7, then 8), then "6" typed (question 2) and "3" typed (the
    third option of question 3). In order: q1=7, q2=6, q3=slechter. Any other order gives
    other answers (e.g. "6" first would answer question 1).
    """
    return [
        emulator.user_taps(user.user, question, label="7"),
        emulator.user_taps(user.user, question, label="8"),
        emulator.user_sends(user.user, "6"),
        emulator.user_sends(user.user, "3"),
    ]


async def test_chats_run_at_once_and_each_chat_keeps_its_order(
    services: Any, make_app: Any, emulator: BotAPIEmulator
) -> None:
    emulator.network.configure(latency=0.04, jitter=0.03, seed=7)
    async with BotHarness(emulator, make_app(services), mode="queue") as h:
        users = [h.user(f"Bewoner {i}") for i in range(6)]
        questions = [await onboard(user) for user in users]
        since = len(emulator.requests)
        bursts = [burst(emulator, u, q) for u, q in zip(users, questions, strict=True)]
        # Telegram's order: the residents' updates interleaved, each resident's in sequence.
        await h.deliver_burst([update for step in zip(*bursts, strict=True) for update in step])
        assert chats_overlapped(emulator, since)
        for user in users:
            assert "Vraag 4 van" in user.last_message().visible_text
    stored = answers(services)
    assert len(stored) == 6
    for values in stored.values():
        assert values == {"q1": 7, "q2": 6, "q3": "slechter"}


async def test_redelivered_bursts_lose_and_double_nothing(
    services: Any, make_app: Any, emulator: BotAPIEmulator
) -> None:
    emulator.network.configure(latency=0.02, jitter=0.02, seed=3)
    async with BotHarness(emulator, make_app(services), mode="queue") as h:
        users = [h.user(f"Bewoner {i}") for i in range(5)]
        questions = [await onboard(user) for user in users]
        bursts = [burst(emulator, u, q) for u, q in zip(users, questions, strict=True)]
        # Every update twice (Telegram delivers at least once), the copy right behind it.
        updates: list[JSON | None] = []
        for step in zip(*bursts, strict=True):
            for update in step:
                emulator.redeliver(update)
                updates += [update, update]
        await h.deliver_burst(updates)
        for user in users:
            texts = [m.visible_text for m in user.messages()]
            # Each question asked exactly once: nothing was handled twice.
            assert sum("Vraag 4 van" in t for t in texts) == 1
    stored = answers(services)
    assert [values for values in stored.values()] == [{"q1": 7, "q2": 6, "q3": "slechter"}] * 5
    with services.db.session() as session:
        assert len(session.scalars(select(Answer)).all()) == 15


@pytest.mark.parametrize("fault", ["429", "5xx", "connect"])
async def test_refused_replies_are_sent_again_and_the_resident_finishes(
    services: Any, make_app: Any, emulator: BotAPIEmulator, fault: str
) -> None:
    emulator.network.configure(latency=0.01, jitter=0.01, seed=1)
    app = make_app(services)
    request = fast_retries(app)
    retried: Counter[str] = Counter()
    request.on_retry = lambda method, reason: retried.update([method])
    async with BotHarness(emulator, app, mode="queue") as h:
        rosa = h.user("Rosa")
        await onboard(rosa)
        # Each kind of reply of a tap is refused once, twice in a row for the next question.
        for method in ("answerCallbackQuery", "editMessageText"):
            emulator.network.fail_next(method, fault)  # type: ignore[arg-type]
        emulator.network.fail_next("sendMessage", fault, fault)  # type: ignore[arg-type]
        await rosa.tap("7")
        assert rosa.last_callback_answer is not None
        assert "Vraag 2 van" in rosa.last_message().visible_text
        emulator.network.fail_next("sendMessage", fault)  # type: ignore[arg-type]
        await rosa.send("6")  # a typed answer's reply too
        await rosa.tap("Beter")
        await rosa.send("Meer bankjes")
        assert "dank" in rosa.last_message().visible_text.lower()
    assert retried["answerCallbackQuery"] == 1
    assert retried["editMessageText"] == 1
    assert retried["sendMessage"] == 3
    texts = [m.visible_text for m in rosa.messages()]
    for number in (1, 2, 3, 4):
        assert sum(f"Vraag {number} van" in t for t in texts) == 1, texts
    assert list(answers(services).values()) == [
        {"q1": 7, "q2": 6, "q3": "beter", "q4": "Meer bankjes"}
    ]


async def test_a_send_whose_answer_is_lost_is_not_sent_twice(
    services: Any, make_app: Any, emulator: BotAPIEmulator
) -> None:
    app = make_app(services)
    fast_retries(app)
    async with BotHarness(emulator, app, mode="queue") as h:
        sam = h.user("Sam")
        await onboard(sam)
        # Telegram sends question 2 but the answer never reaches the bot: it may not resend.
        emulator.network.fail_next("sendMessage", "lose")
        await sam.tap("7")
        texts = [m.visible_text for m in sam.messages()]
        assert sum("Vraag 2 van" in t for t in texts) == 1
        # The resident sees question 2 and answers it as usual.
        await sam.tap("6")
        assert "Vraag 3 van" in sam.last_message().visible_text


async def test_a_question_that_never_arrives_comes_back(
    services: Any, make_app: Any, emulator: BotAPIEmulator
) -> None:
    app = make_app(services)
    request = fast_retries(app)
    async with BotHarness(emulator, app, mode="queue") as h:
        tom = h.user("Tom")
        first = await onboard(tom)
        # Flood control longer than the bot waits: question 2 is not delivered.
        emulator.network.configure(retry_after=int(request.max_wait) + 5)
        double = emulator.user_taps(tom.user, first, label="9")
        emulator.network.fail_next("sendMessage", "429")
        await tom.tap("7")
        assert "Vraag 2 van" not in tom.last_message().visible_text
        # The resident taps the old question again: the bot asks question 2 again.
        await h.deliver(double)
        assert "Vraag 2 van" in tom.last_message().visible_text
        assert tom.last_message().buttons
        # Lost again; this time the resident writes something that is not an answer.
        emulator.network.fail_next("sendMessage", "429")
        await tom.tap("6")
        assert "Vraag 3 van" not in tom.last_message().visible_text
        await tom.send("hallo?")
        reprompt = tom.last_message()
        assert "Vraag 3 van" in reprompt.visible_text and "Beter" in reprompt.button_labels
        # A sticker brings the question back too.
        await tom.send_sticker()
        assert "Vraag 3 van" in tom.last_message().visible_text
        await tom.tap("Gelijk")
        await tom.tap("Overslaan")
        assert "dank" in tom.last_message().visible_text.lower()
    assert list(answers(services).values()) == [{"q1": 7, "q2": 6, "q3": "gelijk"}]
    with services.db.session() as session:
        assert session.scalars(select(Response.status)).all() == ["completed"]
        assert len(session.scalars(select(Resident)).all()) == 1
