"""The outbox sender's decisions, with a scripted HTTP layer under a real `telegram.Bot`.

These tests script Bot API answers per call (success, 429, 403, 400, network errors) through
PTB's own request interface, so PTB's real error mapping runs. End-to-end tests against the
Bot API emulator live in test_outbox_emulator.py.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from telegram import Bot
from telegram.request import BaseRequest, RequestData

from bot.clock import FakeClock
from bot.outbox import BlockedChat, OutboxSender, RateLimiter
from storage import outbox as store
from storage.db import Database
from storage.models import OutboxMessage, Resident


@dataclass
class Call:
    """One request the sender made."""

    method: str
    params: dict[str, Any]
    at: float
    files: dict[str, Any]


class ScriptedRequest(BaseRequest):
    """Answers Bot API calls from a script; unscripted calls succeed."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.origin = clock.now()
        self.calls: list[Call] = []
        self.script: deque[tuple[int, dict[str, Any]] | Exception] = deque()
        self._next_id = 1000

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        endpoint = url.rsplit("/", 1)[-1]
        params = dict(request_data.parameters) if request_data else {}
        files = (
            dict(request_data.multipart_data)
            if request_data and request_data.contains_files
            else {}
        )
        # Seconds since the test started, exact to the microsecond (no float timestamp noise).
        at = (self.clock.now() - self.origin).total_seconds()
        self.calls.append(Call(endpoint, params, at, files))
        await asyncio.sleep(0)
        if self.script:
            step = self.script.popleft()
            if isinstance(step, Exception):
                raise step
            code, body = step
            return code, json.dumps(body).encode()
        self._next_id += 1
        chat_id = int(str(params.get("chat_id", 0)))
        message = {
            "message_id": self._next_id,
            "date": int(self.clock.now().timestamp()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
        }
        return 200, json.dumps({"ok": True, "result": message}).encode()

    def error(self, code: int, description: str, **parameters: Any) -> None:
        """Script the next call to fail like Telegram does."""
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        self.script.append((code, body))


class Harness:
    """A database, a fake clock, a scripted bot and a sender that sleeps on the fake clock."""

    def __init__(self, db: Database, clock: FakeClock, **sender_kwargs: Any) -> None:
        self.db = db
        self.clock = clock
        self.request = ScriptedRequest(clock)
        self.bot = Bot("123456:test", request=self.request, get_updates_request=self.request)
        self.sleeps: list[float] = []
        self.blocked: list[BlockedChat] = []
        sender_kwargs.setdefault("rng", random.Random(7))
        self.sender = OutboxSender(
            db, self.bot, clock, sleep=self.sleep, on_blocked=self.on_blocked, **sender_kwargs
        )

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        # Let started requests reach the wire first, as they would in real time.
        await asyncio.sleep(0)
        self.clock.advance(timedelta(seconds=max(0.0, seconds)))
        await asyncio.sleep(0)

    async def on_blocked(self, chat: BlockedChat) -> None:
        self.blocked.append(chat)

    def enqueue(self, key: str, chat_id: int, **kwargs: Any) -> None:
        kwargs.setdefault("method", "sendMessage")
        kwargs.setdefault("payload", {"text": f"text {key}"})
        kwargs.setdefault("kind", "invitation")
        with self.db.session() as session:
            assert store.enqueue(
                session, dedupe_key=key, chat_id=chat_id, now=self.clock.now(), **kwargs
            )

    def rows(self) -> list[OutboxMessage]:
        with self.db.session() as session:
            rows = list(session.query(OutboxMessage).order_by(OutboxMessage.id))
            for row in rows:
                session.expunge(row)
            return rows


@pytest.fixture
def harness(sqlite_db: Database, clock: FakeClock) -> Harness:
    return Harness(sqlite_db, clock)


async def test_sends_every_due_message_once_and_records_message_ids(harness: Harness) -> None:
    for n in range(5):
        harness.enqueue(f"k{n}", chat_id=100 + n)
    report = await harness.sender.run_once()
    assert (report.claimed, report.sent, report.failed, report.retried) == (5, 5, 0, 0)
    assert sorted(int(str(c.params["chat_id"])) for c in harness.request.calls) == list(
        range(100, 105)
    )
    rows = harness.rows()
    assert {r.status for r in rows} == {"sent"}
    assert sorted(r.telegram_message_id or 0 for r in rows) == list(range(1001, 1006))
    # A second run finds nothing to do.
    again = await harness.sender.run_once()
    assert again.claimed == 0 and len(harness.request.calls) == 5


async def test_payload_becomes_typed_parameters_keyboard_and_files(harness: Harness) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Start", "callback_data": "start:1"}]]}
    harness.enqueue(
        "m",
        chat_id=1,
        payload={"text": "<b>Hoi</b>", "parse_mode": "HTML", "reply_markup": keyboard},
    )
    harness.enqueue(
        "p",
        chat_id=-77,
        is_group=True,
        kind="digest",
        method="sendPhoto",
        payload={"caption": "chart"},
        file_name="chart.png",
        file_data=b"\x89PNG fake",
    )
    harness.enqueue(
        "d",
        chat_id=-78,
        is_group=True,
        kind="digest",
        method="sendDocument",
        payload={"caption": "csv", "disable_notification": True},
        file_name="digest.csv",
        file_data=b"a,b\n",
    )
    report = await harness.sender.run_once()
    assert report.sent == 3
    message, photo, document = harness.request.calls
    assert message.method == "sendMessage"
    assert message.params["text"] == "<b>Hoi</b>" and message.params["parse_mode"] == "HTML"
    assert message.params["reply_markup"] == keyboard
    assert photo.method == "sendPhoto" and photo.params["caption"] == "chart"
    assert photo.files["photo"][0] == "chart.png" and photo.files["photo"][1] == b"\x89PNG fake"
    assert document.method == "sendDocument"
    assert document.files["document"][0] == "digest.csv"
    assert document.params["disable_notification"] is True


async def test_unsupported_method_fails_without_a_call(harness: Harness) -> None:
    harness.enqueue("x", chat_id=1, method="sendSticker", payload={"sticker": "abc"})
    report = await harness.sender.run_once()
    assert report.failed == 1 and harness.request.calls == []
    (row,) = harness.rows()
    assert row.status == "failed" and "sendSticker" in (row.last_error or "")


async def test_overall_rate_is_kept(harness: Harness) -> None:
    for n in range(100):
        harness.enqueue(f"k{n}", chat_id=1000 + n)
    start = (harness.clock.now() - harness.request.origin).total_seconds()
    report = await harness.sender.run_once()
    assert report.sent == 100
    times = [c.at for c in harness.request.calls]
    # Never more than 30 starts in any one-second window ...
    assert max(sum(1 for t in times if s <= t < s + 1.0) for s in times) <= 30
    # ... and not much slower than that: 100 messages in about 100/30 seconds.
    assert times[-1] - start == pytest.approx(99 / 30, abs=0.1)


async def test_one_message_per_second_per_chat_in_queue_order(harness: Harness) -> None:
    for n in range(4):
        harness.enqueue(f"same{n}", chat_id=42, payload={"text": f"part {n}"})
    harness.enqueue("other", chat_id=43)
    await harness.sender.run_once()
    same = [c for c in harness.request.calls if c.params["chat_id"] == 42]
    assert [c.params["text"] for c in same] == ["part 0", "part 1", "part 2", "part 3"]
    gaps = [b.at - a.at for a, b in pairwise(same)]
    assert all(gap >= 1.0 - 1e-6 for gap in gaps)
    # The other chat did not wait behind chat 42.
    other = next(c for c in harness.request.calls if c.params["chat_id"] == 43)
    assert other.at - same[0].at < 0.1


async def test_twenty_per_minute_per_group(harness: Harness) -> None:
    for n in range(25):
        harness.enqueue(f"g{n}", chat_id=-500, is_group=True, kind="digest")
    await harness.sender.run_once()
    times = [c.at for c in harness.request.calls]
    assert len(times) == 25
    assert max(sum(1 for t in times if s <= t < s + 60.0) for s in times) <= 20
    assert times[20] - times[0] >= 60.02 - 1e-6  # the window plus its safety margin


async def test_flood_wait_pauses_everything_and_loses_no_attempt(
    db: Database, clock: FakeClock
) -> None:
    # One request at a time, so "b" surely starts after the 429 came back.
    harness = Harness(db, clock, max_in_flight=1)
    harness.enqueue("a", chat_id=1)
    harness.enqueue("b", chat_id=2)
    harness.request.error(429, "Too Many Requests: retry after 7", retry_after=7)
    report = await harness.sender.run_once()
    assert report.rate_limited == 1 and report.sent == 2
    first, *rest = harness.request.calls
    assert first.params["chat_id"] == 1
    # Everything after the 429 waited at least 7 seconds, including the retry of "a".
    assert all(c.at - first.at >= 7.0 - 1e-6 for c in rest)
    assert sorted(c.params["chat_id"] for c in rest) == [1, 2]
    rows = {r.dedupe_key: r for r in harness.rows()}
    assert rows["a"].attempts == 1 and rows["a"].status == "sent"
    assert report.paused_seconds >= 7.0 - 1e-6


async def test_blocked_user_marks_resident_unreachable(harness: Harness) -> None:
    with harness.db.session() as session:
        resident = Resident(
            pseudonym="r" * 64,
            consented_at=harness.clock.now(),
            created_at=harness.clock.now(),
            last_seen_at=harness.clock.now(),
        )
        session.add(resident)
        session.flush()
        resident_id = resident.id
    harness.enqueue("inv", chat_id=9, resident_id=resident_id)
    harness.request.error(403, "Forbidden: bot was blocked by the user")
    report = await harness.sender.run_once()
    assert report.failed == 1 and report.retried == 0 and len(harness.request.calls) == 1
    (row,) = harness.rows()
    assert row.status == "failed" and "bot was blocked by the user" in (row.last_error or "")
    with harness.db.session() as session:
        stored = session.get(Resident, resident_id)
        assert stored is not None and stored.unreachable_at == harness.clock.now()
        assert "blocked" in (stored.unreachable_reason or "")
    assert [(b.outbox_id, b.resident_id) for b in harness.blocked] == [(row.id, resident_id)]


async def test_chat_not_found_fails_without_retry(harness: Harness) -> None:
    harness.enqueue("x", chat_id=5)
    harness.request.error(400, "Bad Request: chat not found")
    report = await harness.sender.run_once()
    assert (report.failed, report.retried) == (1, 0)
    (row,) = harness.rows()
    assert row.status == "failed" and "chat not found" in (row.last_error or "").lower()
    assert harness.blocked == []


async def test_network_errors_back_off_then_give_up(db: Database, clock: FakeClock) -> None:
    harness = Harness(db, clock, max_attempts=3, backoff_base=2.0)
    harness.enqueue("x", chat_id=5)
    from telegram.error import NetworkError, TimedOut

    harness.request.script.extend([TimedOut(), NetworkError("Bad Gateway"), TimedOut()])
    report = await harness.sender.run_once()
    # The retry is not due yet: the run ends and the row waits.
    assert (report.claimed, report.retried, report.sent) == (1, 1, 0)
    (row,) = harness.rows()
    delay = (row.next_attempt_at - clock.now()).total_seconds()
    assert row.status == "pending" and row.attempts == 1
    assert 1.0 <= delay <= 2.0  # base 2 s, jitter between half and full
    clock.advance(timedelta(seconds=delay))
    await harness.sender.run_once()
    (row,) = harness.rows()
    second_delay = (row.next_attempt_at - clock.now()).total_seconds()
    assert row.attempts == 2 and 2.0 <= second_delay <= 4.0
    clock.advance(timedelta(seconds=second_delay))
    report = await harness.sender.run_once()
    (row,) = harness.rows()
    assert report.failed == 1 and row.status == "failed" and row.attempts == 3
    assert "TimedOut" in (row.last_error or "")
    assert len(harness.request.calls) == 3


async def test_network_error_then_success(harness: Harness) -> None:
    from telegram.error import NetworkError

    harness.enqueue("x", chat_id=5)
    harness.request.script.append(NetworkError("connection reset"))
    await harness.sender.run_once()
    harness.clock.advance(timedelta(seconds=5))
    report = await harness.sender.run_once()
    assert report.sent == 1
    (row,) = harness.rows()
    assert (row.status, row.attempts) == ("sent", 2)


async def test_group_migrated_to_supergroup_is_resent_there(harness: Harness) -> None:
    harness.enqueue("d", chat_id=-10, is_group=True, kind="digest")
    harness.request.error(400, "Bad Request: group chat was upgraded", migrate_to_chat_id=-10099)
    report = await harness.sender.run_once()
    assert report.sent == 1
    assert [c.params["chat_id"] for c in harness.request.calls] == [-10, -10099]
    (row,) = harness.rows()
    assert (row.chat_id, row.attempts) == (-10099, 1)


async def test_max_messages(harness: Harness) -> None:
    for n in range(5):
        harness.enqueue(f"k{n}", chat_id=n + 1)
    report = await harness.sender.run_once(max_messages=2)
    assert report.sent == 2
    assert [r.status for r in harness.rows()] == ["sent", "sent", "pending", "pending", "pending"]


async def test_interrupted_row_is_not_resent_after_restart(harness: Harness) -> None:
    harness.enqueue("lost-in-crash", chat_id=1)
    harness.enqueue("later", chat_id=2)
    with harness.db.session() as session:
        assert store.claim(session, 1, harness.clock.now()) is not None  # then the process died
    stop = asyncio.Event()

    async def stop_when_idle() -> None:
        while len(harness.request.calls) < 1:
            await asyncio.sleep(0.01)
        stop.set()

    stopper = asyncio.create_task(stop_when_idle())
    report = await asyncio.wait_for(harness.sender.run_forever(stop), timeout=10)
    await stopper
    assert report.recovered_unknown == 1
    assert [c.params["chat_id"] for c in harness.request.calls] == [2]
    statuses = {r.dedupe_key: r.status for r in harness.rows()}
    assert statuses == {"lost-in-crash": "unknown", "later": "sent"}


async def test_resend_interrupted_option_is_at_least_once(db: Database, clock: FakeClock) -> None:
    harness = Harness(db, clock, resend_interrupted=True)
    harness.enqueue("k", chat_id=1)
    with db.session() as session:
        store.claim(session, 1, clock.now())
    assert await harness.sender.recover(all_sending=True) == 1
    report = await harness.sender.run_once()
    assert report.sent == 1


async def test_run_forever_picks_up_new_rows_and_stops(harness: Harness) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(harness.sender.run_forever(stop))
    await asyncio.sleep(0.05)
    harness.enqueue("late", chat_id=3)
    harness.sender.wake()
    for _ in range(200):
        if harness.request.calls:
            break
        await asyncio.sleep(0.01)
    stop.set()
    report = await asyncio.wait_for(task, timeout=10)
    assert report.sent == 1 and [r.status for r in harness.rows()] == ["sent"]


def test_rate_limiter_alone() -> None:
    limiter = RateLimiter(rate=2.0, per_chat_interval=1.0, group_per_minute=2, margin=0.0)
    assert limiter.ready_at(1, False) == float("-inf")
    limiter.record(1, False, 10.0)
    assert limiter.ready_at(2, False) == 10.5  # overall cadence 1/rate
    assert limiter.ready_at(1, False) == 11.0  # per chat
    limiter.record(2, False, 10.6)
    # Two starts in the last second: the third waits for the window.
    assert limiter.ready_at(3, False) == pytest.approx(11.0)
    limiter.record(-5, True, 11.0)
    limiter.record(-5, True, 12.0)
    assert limiter.ready_at(-5, True) == 71.0  # third group message waits a minute
    limiter.pause_until(100.0)
    assert limiter.ready_at(3, False) == 100.0


def test_rate_limiter_keeps_cadence_after_a_late_wake_up() -> None:
    limiter = RateLimiter(rate=10.0)
    limiter.record(1, False, 0.0)
    limiter.record(2, False, 0.13)  # 30 ms late
    assert limiter.ready_at(3, False) == pytest.approx(0.2)  # not 0.23: the rate holds


def test_rate_limiter_margin_keeps_windows_from_filling_exactly() -> None:
    limiter = RateLimiter(rate=2.0, group_per_minute=1, margin=0.05)
    limiter.record(1, True, 0.0)
    limiter.record(2, False, 0.5)
    assert limiter.ready_at(3, False) == pytest.approx(1.05)
    assert limiter.ready_at(1, True) == pytest.approx(60.05)


def test_rate_limiter_counts_real_starts_and_reservations() -> None:
    limiter = RateLimiter(rate=3.0, margin=0.0)
    limiter.record(1, False, 0.0)
    limiter.record(2, False, 1 / 3)
    limiter.reserve(3, False, 2 / 3)  # decided, not started yet: it counts already
    assert limiter.ready_at(4, False) == pytest.approx(1.0)
    limiter.reserve(4, False, 1.0)
    limiter.reserve(5, False, 4 / 3)
    # Three reserved fill a window of three: nothing more until they start.
    assert limiter.ready_at(6, False) == float("inf")
    limiter.started(3, False, 0.9)  # started late (a slow claim commit)
    limiter.started(4, False, 1.0)
    limiter.started(5, False, 1.5)
    # The window counts real starts: the next one waits a second after the late 0.9 start.
    assert limiter.ready_at(6, False) == pytest.approx(1.9)
    limiter.reserve(7, False, 5.0)
    limiter.release()
    assert limiter.ready_at(8, False) == pytest.approx(5 + 1 / 3)
