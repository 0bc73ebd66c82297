"""The outbox sender: sends queued rows through a `telegram.Bot` within Telegram's limits.

One sender per database (a leader lock will guarantee that); claiming is exclusive anyway.
Crash safety, in order: the row is committed as `sending`, the Bot API is called, the result
is committed (`sent` with Telegram's message id, a retry, or `failed`). A crash between the
first commit and the last leaves the row `sending`; at the next start it becomes `unknown`
and is not resent (at most once). See docs/outbox.md for the trade-off.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import random
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from telegram import Bot, InlineKeyboardMarkup, InputFile, Message
from telegram.error import (
    BadRequest,
    ChatMigrated,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.clock import Clock, SystemClock
from bot.retrying import may_have_been_sent, without_retries
from storage import alliances as alliance_store
from storage import outbox as store
from storage.db import Database

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
# Called after a permanent 403 was recorded (resident or alliance chat), e.g. to update caches.
BlockedHook = Callable[["BlockedChat"], Awaitable[None]]

# Typed parameters of the send methods; every other payload key goes through as a raw
# Bot API parameter (api_kwargs), so a new Bot API option needs no code change here.
_COMMON_KEYS = ("parse_mode", "disable_notification", "protect_content", "message_thread_id")
_FILE_PARAM = {"sendPhoto": "photo", "sendDocument": "document"}
# Float noise only: waits are rounded up to whole microseconds (the clock's resolution).
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class BlockedChat:
    """A chat the bot may no longer write to (the user blocked it, or it left the group)."""

    outbox_id: int
    kind: str
    resident_id: int | None
    alliance_id: int | None
    reason: str


@dataclass(slots=True)
class SendReport:
    """What one `run_once` (or a whole `run_forever`) did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    rate_limited: int = 0
    recovered_unknown: int = 0
    unknown: int = 0  # calls that may have reached Telegram, not resent (at most once)
    paused_seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, other: SendReport) -> None:
        """Add another report's counts to this one."""
        self.claimed += other.claimed
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.rate_limited += other.rate_limited
        self.recovered_unknown += other.recovered_unknown
        self.unknown += other.unknown
        self.paused_seconds += other.paused_seconds
        for name, count in other.errors.items():
            self.errors[name] = self.errors.get(name, 0) + count


class RateLimiter:
    """Telegram's limits as earliest start times: overall rate, per chat, per group per minute.

    Pure bookkeeping in seconds on any monotone time line. The sender asks `ready_at`,
    `reserve`s a slot when it decides to send, and reports `started` when the request really
    goes out (after the claim commit), so windows count real start times, not decisions.
    """

    def __init__(
        self,
        rate: float = 30.0,
        per_chat_interval: float = 1.0,
        group_per_minute: int = 20,
        group_window: float = 60.0,
        margin: float = 0.02,
    ) -> None:
        if rate <= 0 or per_chat_interval < 0 or group_per_minute < 1:
            raise ValueError("rate and group_per_minute must be positive")
        self.rate = rate
        self.per_chat_interval = per_chat_interval
        self.group_per_minute = group_per_minute
        self.group_window = group_window
        # Extra seconds on every window: requests reach Telegram with some jitter after
        # they start here, and a window that is exactly full on arrival means a 429.
        self.margin = margin
        self._interval = 1.0 / rate
        # At most `_burst` starts in any `_window` seconds (exactly `rate` per second), and
        # starts spread on a cadence of 1/rate so the limit is never met in one burst.
        self._burst = max(1, math.floor(rate))
        self._window = self._burst / rate
        self._starts: deque[float] = deque(maxlen=self._burst)
        self._reserved = 0  # decided but not started yet: they will start within the window
        self._next_slot = -math.inf
        self._chat_next: dict[int, float] = {}
        self._group_starts: dict[int, deque[float]] = {}
        self._paused_until = -math.inf

    def pause_until(self, moment: float) -> None:
        """Hold every chat until `moment` (a flood wait is per bot)."""
        self._paused_until = max(self._paused_until, moment)

    @property
    def paused_until(self) -> float:
        """End of the current flood wait (-inf when none)."""
        return self._paused_until

    def global_ready_at(self) -> float:
        """Earliest start allowed by the overall rate and any flood wait."""
        ready = max(self._next_slot, self._paused_until)
        allowed = self._burst - self._reserved  # starts the window may still hold
        if allowed <= 0:
            return math.inf  # wait for reserved requests to start
        if len(self._starts) >= allowed:
            ready = max(ready, self._starts[-allowed] + self._window + self.margin)
        return ready

    def ready_at(self, chat_id: int, is_group: bool) -> float:
        """Earliest start for a message to this chat."""
        ready = max(self.global_ready_at(), self._chat_next.get(chat_id, -math.inf))
        if is_group:
            starts = self._group_starts.get(chat_id)
            if starts is not None and len(starts) >= self.group_per_minute:
                ready = max(ready, starts[0] + self.group_window + self.margin)
        return ready

    def reserve(self, chat_id: int, is_group: bool, at: float) -> None:
        """Take the slot for a request to `chat_id` decided at `at`."""
        # Keep the cadence when a start is a little late (event loop wake-up), so late
        # wake-ups do not add up to a lower rate; after an idle spell start a new cadence.
        if at - self._next_slot <= self._interval / 2:
            self._next_slot += self._interval
        else:
            self._next_slot = at + self._interval
        self._reserved += 1
        self._chat_next[chat_id] = at + self.per_chat_interval
        if is_group:
            starts = self._group_starts.setdefault(chat_id, deque(maxlen=self.group_per_minute))
            starts.append(at)
        if len(self._chat_next) > 10_000:
            self._forget_before(at)

    def started(self, chat_id: int, is_group: bool, at: float) -> None:
        """The reserved request really started at `at` (the limits count from here)."""
        self._reserved = max(0, self._reserved - 1)
        self._starts.append(at)
        self._chat_next[chat_id] = max(
            self._chat_next.get(chat_id, -math.inf), at + self.per_chat_interval
        )
        starts = self._group_starts.get(chat_id)
        if is_group and starts:
            # The chat has one request at a time, so its newest entry is this reservation.
            starts[-1] = max(starts[-1], at)

    def release(self) -> None:
        """A reserved request will not be made (the row was taken by someone else)."""
        self._reserved = max(0, self._reserved - 1)

    def record(self, chat_id: int, is_group: bool, at: float) -> None:
        """Reserve and start at once."""
        self.reserve(chat_id, is_group, at)
        self.started(chat_id, is_group, at)

    def _forget_before(self, now: float) -> None:
        """Drop chats whose limits no longer matter (memory stays bounded)."""
        self._chat_next = {c: t for c, t in self._chat_next.items() if t > now}
        self._group_starts = {
            c: s for c, s in self._group_starts.items() if s and s[-1] + self.group_window > now
        }


def retry_after_seconds(exc: RetryAfter) -> float:
    """The flood wait in seconds, without PTB's int/timedelta deprecation warning."""
    value: Any = getattr(exc, "_retry_after", None)
    if value is None:
        value = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def _reason(exc: BaseException) -> str:
    """Error class and message; Telegram's messages name no chat or user."""
    return f"{type(exc).__name__}: {exc}"


class OutboxSender:
    """Sends due outbox rows, keeping Telegram's limits, exactly once where it can be known."""

    def __init__(
        self,
        db: Database,
        bot: Bot,
        clock: Clock | None = None,
        rate: float = 30.0,
        per_chat_interval: float = 1.0,
        group_per_minute: int = 20,
        *,
        sleep: Sleep | None = None,
        timer: Callable[[], float] | None = None,
        limit_margin: float = 0.02,
        max_attempts: int = 5,
        backoff_base: float = 2.0,
        backoff_max: float = 300.0,
        max_in_flight: int = 8,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        stale_after: timedelta = timedelta(minutes=10),
        resend_interrupted: bool = False,
        on_blocked: BlockedHook | None = None,
        rng: random.Random | None = None,
        db_in_thread: bool = True,
    ) -> None:
        self.db = db
        self.bot = bot
        self.clock: Clock = clock or SystemClock()
        self.limiter = RateLimiter(rate, per_chat_interval, group_per_minute, margin=limit_margin)
        self._sleep: Sleep = sleep or asyncio.sleep
        # Rate limits are about real elapsed time: with the real sleep, measure them with a
        # monotonic timer (a sandbox clock may stand still); an injected sleep moves the
        # injected clock, so then the clock is the timer.
        self._timer = timer or (time.monotonic if sleep is None else self._clock_seconds)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_in_flight = max_in_flight
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.stale_after = stale_after
        self.resend_interrupted = resend_interrupted
        self.on_blocked = on_blocked
        self._rng = rng or random.Random()
        self._db_in_thread = db_in_thread
        self._wake = asyncio.Event()
        self._epoch = self.clock.now()

    # -- time and database -------------------------------------------------------------

    def _clock_seconds(self) -> float:
        """Clock seconds since this sender was made: small floats keep microsecond precision."""
        return (self.clock.now() - self._epoch).total_seconds()

    def _t(self) -> float:
        return self._timer()

    async def _db(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one committed transaction, off the event loop by default."""

        def run() -> T:
            with self.db.session() as session:
                return work(session)

        if self._db_in_thread:
            return await asyncio.to_thread(run)
        return run()

    def wake(self) -> None:
        """Tell a waiting `run_forever` that new rows were queued (saves a poll interval)."""
        self._wake.set()

    # -- the loop ----------------------------------------------------------------------

    async def recover(self, *, all_sending: bool = False) -> int:
        """Settle rows a crashed sender left `sending`: `unknown`, or pending if configured."""
        now = self.clock.now()
        before = now + timedelta(microseconds=1) if all_sending else now - self.stale_after

        def work(session: Session) -> int:
            if self.resend_interrupted:
                return store.requeue_interrupted(session, now, before)
            return store.recover_interrupted(session, now, before)

        count = await self._db(work)
        if count:
            log.warning("outbox: %d message(s) were interrupted while sending", count)
        return count

    async def run_once(
        self, max_messages: int | None = None, *, stop_event: asyncio.Event | None = None
    ) -> SendReport:
        """Send what is due now (and what becomes due while sending), then return the counts."""
        report = SendReport()
        report.recovered_unknown = await self.recover()
        in_flight: set[asyncio.Task[None]] = set()
        busy: set[int] = set()
        queue: list[store.DueMessage] = []
        try:
            while not (stop_event is not None and stop_event.is_set()):
                if max_messages is not None and report.claimed >= max_messages:
                    break
                if len(in_flight) >= self.max_in_flight:
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                if not queue:
                    had_in_flight = bool(in_flight)
                    queue = await self._db(
                        partial(store.load_due, now=self.clock.now(), limit=self.batch_size)
                    )
                    if not queue:
                        if in_flight:
                            # A row in flight may unblock its chat's next row: wait, reload.
                            await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                            continue
                        if had_in_flight:
                            # It finished while we were loading: look once more.
                            continue
                        pause = self.limiter.paused_until - self._t()
                        if pause > 0:
                            # Rows hit by a flood wait are due when it ends: wait it out.
                            report.paused_seconds += pause
                            await self._nap(math.ceil(pause * 1e6) / 1e6, stop_event)
                            continue
                        break
                now = self._t()
                pick, ready = self._pick(queue, busy, now)
                if pick is None:
                    if not in_flight:  # cannot happen: busy chats are the in-flight ones
                        queue = []
                        continue
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                if ready > now + _EPSILON:
                    wait = math.ceil((ready - now) * 1e6) / 1e6
                    if self.limiter.paused_until > now:
                        report.paused_seconds += min(wait, self.limiter.paused_until - now)
                    await self._nap(wait, stop_event)
                    continue
                queue.remove(pick)
                self.limiter.reserve(pick.chat_id, pick.is_group, now)
                try:
                    claimed = await self._db(
                        partial(store.claim, message_id=pick.id, now=self.clock.now())
                    )
                except BaseException:
                    self.limiter.release()  # a leaked reservation would slow every later round
                    raise
                if claimed is None:
                    self.limiter.release()
                    continue
                report.claimed += 1
                busy.add(claimed.chat_id)
                # The row is committed as `sending`: start the request at once (small window).
                task = asyncio.create_task(self._send(claimed, report, busy))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
        finally:
            if in_flight:
                # Never abandon a request mid-way: its result must be recorded.
                await asyncio.gather(*in_flight, return_exceptions=True)
        return report

    async def _nap(self, delay: float, stop_event: asyncio.Event | None) -> None:
        """Sleep for the limits; long naps end early when the sender is stopped."""
        if stop_event is None or delay < 0.5:
            await self._sleep(delay)
        else:
            await self._wait(stop_event, delay, wakeable=False)

    def _pick(
        self, queue: list[store.DueMessage], busy: set[int], now: float
    ) -> tuple[store.DueMessage | None, float]:
        """The first row (in queue order) that may start now, else the one that may soonest."""
        best: store.DueMessage | None = None
        best_ready = math.inf
        for due in queue:
            if due.chat_id in busy:
                continue
            ready = self.limiter.ready_at(due.chat_id, due.is_group)
            if ready <= now + _EPSILON:
                return due, ready
            if ready < best_ready:
                best, best_ready = due, ready
        return best, best_ready

    async def run_forever(self, stop_event: asyncio.Event) -> SendReport:
        """Send until `stop_event` is set; for the bot's background task."""
        total = SendReport()
        total.recovered_unknown = await self.recover(all_sending=True)
        while not stop_event.is_set():
            # Cleared before sending, not before sleeping: a wake() during a round still counts.
            self._wake.clear()
            try:
                total.add(await self.run_once(stop_event=stop_event))
                delay = await self._idle_delay()
            except Exception:  # a database outage must not end the sender; log, wait, retry
                log.exception("outbox: sending round failed; retrying")
                delay = self.poll_interval
            await self._wait(stop_event, delay)
        return total

    async def _idle_delay(self) -> float:
        """Seconds until the next row is due, at most one poll interval."""
        due = await self._db(store.next_due_at)
        if due is None:
            return self.poll_interval
        return min(self.poll_interval, max(0.0, (due - self.clock.now()).total_seconds()))

    async def _wait(
        self, stop_event: asyncio.Event, delay: float, *, wakeable: bool = True
    ) -> None:
        """Sleep `delay` (injected sleep), waking early on stop (and on `wake()` if wakeable)."""
        waiters = {
            asyncio.ensure_future(self._sleep(delay)),
            asyncio.ensure_future(stop_event.wait()),
        }
        if wakeable:
            waiters.add(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waiters:
                task.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    # -- one message -------------------------------------------------------------------

    async def _send(
        self, message: store.ClaimedMessage, report: SendReport, busy: set[int]
    ) -> None:
        try:
            await self._send_and_record(message, report)
        except Exception:
            # Recording failed (database down): the row stays `sending` and is settled by
            # recovery later; never resend blindly.
            log.exception("outbox: could not record the result of message %d", message.id)
        finally:
            busy.discard(message.chat_id)

    async def _send_and_record(self, message: store.ClaimedMessage, report: SendReport) -> None:
        self.limiter.started(message.chat_id, message.is_group, self._t())
        try:
            sent = await self._call(message)
        except RetryAfter as exc:
            seconds = retry_after_seconds(exc)
            self.limiter.pause_until(self._t() + seconds)
            report.rate_limited += 1
            self._count(report, exc)
            log.warning("outbox: flood wait of %.1f s (message %d)", seconds, message.id)
            at = self.clock.now() + timedelta(seconds=seconds)
            reason = _reason(exc)
            await self._db(
                lambda s: store.schedule_retry(s, message.id, at, reason, count_attempt=False)
            )
            report.retried += 1
        except Forbidden as exc:
            await self._fail(message, report, exc, blocked=True)
        except ChatMigrated as exc:
            self._count(report, exc)
            log.info("outbox: message %d: group moved to a supergroup; resending there", message.id)
            new_chat_id, now = exc.new_chat_id, self.clock.now()
            await self._db(lambda s: store.retarget(s, message.id, new_chat_id, now))
            report.retried += 1
        except (BadRequest, EndPointNotFound) as exc:
            await self._fail(message, report, exc)
        except (TimedOut, NetworkError, InvalidToken) as exc:
            if may_have_been_sent(exc) and not self.resend_interrupted:
                # The request went out and no answer came back: Telegram may have sent it.
                # At most once, as after a crash: not resent without an operator.
                await self._unknown(message, report, exc)
            else:
                await self._retry_or_fail(message, report, exc)
        except TelegramError as exc:
            await self._fail(message, report, exc)
        except Exception as exc:  # a bad payload (TypeError, ...) is permanent: record it
            await self._fail(message, report, exc)
        else:
            now = self.clock.now()
            await self._db(lambda s: store.mark_sent(s, message.id, sent.message_id, now))
            report.sent += 1

    async def _retry_or_fail(
        self, message: store.ClaimedMessage, report: SendReport, exc: TelegramError
    ) -> None:
        if message.attempts >= self.max_attempts:
            await self._fail(message, report, exc)
            return
        self._count(report, exc)
        delay = min(self.backoff_max, self.backoff_base * 2 ** (message.attempts - 1))
        delay *= 0.5 + self._rng.random() / 2  # jitter: senders recovering together spread out
        if may_have_been_sent(exc):
            # Only with resend_interrupted: at least once, this row may arrive twice.
            log.info("outbox: message %d: ambiguous network error, retrying", message.id)
        at = self.clock.now() + timedelta(seconds=delay)
        await self._db(lambda s: store.schedule_retry(s, message.id, at, _reason(exc)))
        report.retried += 1

    async def _unknown(
        self, message: store.ClaimedMessage, report: SendReport, exc: BaseException
    ) -> None:
        self._count(report, exc)
        reason = f"no answer from Telegram ({_reason(exc)}): delivery unknown, not resent"
        now = self.clock.now()
        await self._db(lambda s: store.mark_unknown(s, message.id, reason, now))
        report.unknown += 1
        log.warning(
            "outbox: message %d (%s): no answer from Telegram, delivery unknown, not resent",
            message.id,
            message.kind,
        )

    async def _fail(
        self,
        message: store.ClaimedMessage,
        report: SendReport,
        exc: BaseException,
        *,
        blocked: bool = False,
    ) -> None:
        reason = _reason(exc)
        self._count(report, exc)
        now = self.clock.now()

        def work(session: Session) -> None:
            store.mark_failed(session, message.id, reason, now)
            if blocked and message.resident_id is not None:
                store.mark_resident_unreachable(session, message.resident_id, reason, now)
            if blocked and message.is_group:
                # The bot is not in the group (a removal it did not hear of): the alliance's
                # digests pause, its other waiting messages are not tried.
                alliance_store.bot_removed(session, message.chat_id, now)

        await self._db(work)
        report.failed += 1
        log.warning(
            "outbox: message %d (%s) failed: %s", message.id, message.kind, type(exc).__name__
        )
        if blocked and self.on_blocked is not None:
            try:
                await self.on_blocked(
                    BlockedChat(
                        message.id, message.kind, message.resident_id, message.alliance_id, reason
                    )
                )
            except Exception:
                log.exception("outbox: on_blocked hook failed")

    @staticmethod
    def _count(report: SendReport, exc: BaseException) -> None:
        name = type(exc).__name__
        report.errors[name] = report.errors.get(name, 0) + 1

    async def _call(self, message: store.ClaimedMessage) -> Message:
        """Call the Bot API method the row names, once: this sender schedules its own retries."""
        with without_retries():
            return await self._call_once(message)

    async def _call_once(self, message: store.ClaimedMessage) -> Message:
        params = dict(message.payload)
        kwargs: dict[str, Any] = {}
        markup = params.pop("reply_markup", None)
        if markup is not None:
            kwargs["reply_markup"] = InlineKeyboardMarkup.de_json(markup, self.bot)
        for key in _COMMON_KEYS:
            if key in params:
                kwargs[key] = params.pop(key)
        method = message.method
        if method == "sendMessage":
            text = params.pop("text")
            return await self.bot.send_message(
                message.chat_id, text, api_kwargs=params or None, **kwargs
            )
        if method in _FILE_PARAM:
            param = _FILE_PARAM[method]
            if message.file_data is not None:
                file: Any = InputFile(message.file_data, filename=message.file_name)
            else:
                file = params.pop(param)  # a file_id or URL in the payload
            if "caption" in params:
                kwargs["caption"] = params.pop("caption")
            send = self.bot.send_photo if method == "sendPhoto" else self.bot.send_document
            return await send(message.chat_id, file, api_kwargs=params or None, **kwargs)
        raise ValueError(f"unsupported outbox method {method!r}")


# -- standalone process (tests, operations) ----------------------------------------------


async def _serve(args: argparse.Namespace) -> SendReport:
    """Send until the outbox is empty (--until-empty) or until SIGTERM/SIGINT."""
    database = Database(args.database_url)
    bot = Bot(
        args.token,
        base_url=args.api_base_url.rstrip("/") + "/bot",
        base_file_url=args.api_base_url.rstrip("/") + "/file/bot",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    sender = OutboxSender(
        database,
        bot,
        rate=args.rate,
        per_chat_interval=args.per_chat_interval,
        group_per_minute=args.group_per_minute,
        max_in_flight=args.max_in_flight,
    )
    try:
        async with bot:
            if args.until_empty:
                report = SendReport()
                report.recovered_unknown = await sender.recover(all_sending=True)
                while not stop.is_set():
                    report.add(await sender.run_once(stop_event=stop))
                    if await database_idle(database):
                        break
                    await asyncio.sleep(0.05)
                return report
            return await sender.run_forever(stop)
    finally:
        database.dispose()


async def database_idle(database: Database) -> bool:
    """True when no row is pending or sending."""

    def work() -> bool:
        with database.session() as session:
            return store.oldest_waiting(session) is None

    return await asyncio.to_thread(work)


def main(argv: list[str] | None = None) -> None:
    """`python -m bot.outbox`: run only the sender (tests, benchmarks, one-off draining)."""
    parser = argparse.ArgumentParser(prog="python -m bot.outbox", description=main.__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--api-base-url", required=True)
    parser.add_argument("--token", default="123456:outbox-sender")
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--per-chat-interval", type=float, default=1.0)
    parser.add_argument("--group-per-minute", type=int, default=20)
    parser.add_argument("--max-in-flight", type=int, default=8)
    parser.add_argument("--until-empty", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    report = asyncio.run(_serve(args))
    print(report)


if __name__ == "__main__":
    main()
