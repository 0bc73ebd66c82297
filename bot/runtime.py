"""The background work of one bot instance: leadership, outbox sender, jobs, health and metrics.

`Runtime(application, services).install()` hooks into the Application's post_init/post_stop, so
`run_polling` and `run_webhook` start and stop it with the bot. On every instance it runs the
leader election loop, counts updates, answers and errors, and serves /health and /metrics when
`metrics_port` is set. Only on the leader (PostgreSQL advisory lock; always on SQLite) does it
run the outbox sender; the scheduled jobs (bot/jobs.py) ask `is_leader(application)` and act
only there. Updates are handled by every instance: all resident state lives in the database,
so any instance can take any update.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session
from telegram import Update
from telegram.constants import ChatType
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.health import HealthServer, bot_api_check, database_check
from bot.inbox import DurableUpdateQueue
from bot.leader import Leadership
from bot.metrics import Metrics, outbox_stats_from
from bot.outbox import OutboxSender, SendReport
from bot.retrying import RetryingRequest
from handlers.context import METRICS_KEY
from storage.models import Answer
from usecases.resident import replies_may_be_lost
from usecases.services import Services

log = logging.getLogger(__name__)

RUNTIME_KEY = "buurtstem.runtime"
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
_ANSWERS_INFO = "buurtstem.new_answers"
# Update kinds counted by name; anything else is "other" (label values must stay few).
_UPDATE_KINDS = (
    "message",
    "edited_message",
    "callback_query",
    "my_chat_member",
    "chat_member",
    "channel_post",
    "inline_query",
)


def is_leader(application: Application) -> bool:
    """True when this instance runs scheduled work (also when no runtime is attached: one process)."""
    runtime = application.bot_data.get(RUNTIME_KEY)
    if not isinstance(runtime, Runtime):
        return True
    return runtime.leadership.is_leader


def metrics_of(application: Application) -> Metrics | None:
    """The instance's Metrics (None when no runtime is attached)."""
    found = application.bot_data.get(METRICS_KEY)
    return found if isinstance(found, Metrics) else None


def update_kind(update: object) -> str:
    """The kind of an update for metrics: message, callback_query, ... or other."""
    if isinstance(update, Update):
        for kind in _UPDATE_KINDS:
            if getattr(update, kind, None) is not None:
                return kind
    return "other"


class Runtime:
    """Everything one instance runs besides handling updates; start()/stop() or install()."""

    def __init__(
        self,
        application: Application,
        services: Services,
        *,
        leadership: Leadership | None = None,
        metrics: Metrics | None = None,
        leader_interval: float = 2.0,
        health_host: str | None = None,
        health_port: int | None = None,
        sender_factory: Callable[[], OutboxSender] | None = None,
        sender_poll_interval: float = 1.0,
    ) -> None:
        self.application = application
        self.services = services
        settings = services.settings
        self.leadership = leadership or Leadership(services.db, interval=leader_interval)
        self.metrics = metrics or Metrics(
            outbox=outbox_stats_from(services.db, services.clock),
            leader=lambda: self.leadership.is_leader,
        )
        self.health_host = health_host or settings.webhook_listen
        self.health_port = health_port if health_port is not None else settings.metrics_port
        self.health: HealthServer | None = None
        self._sender_factory = sender_factory or self._default_sender
        self.sender_poll_interval = sender_poll_interval
        self.sender: OutboxSender | None = None
        self.outbox_report = SendReport()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._attached = False

    # -- wiring ------------------------------------------------------------------------------

    def install(self) -> Runtime:
        """Attach to the application and start/stop with it (run_polling / run_webhook)."""
        self.attach()
        app = self.application
        previous_init, previous_stop = app.post_init, app.post_stop
        previous_shutdown = app.post_shutdown

        async def post_init(application: Application) -> None:
            if previous_init is not None:
                await previous_init(application)
            await self.start()

        async def post_stop(application: Application) -> None:
            # After Application.stop(): every update in hand is handled, the JobQueue stopped.
            await self.stop()
            if previous_stop is not None:
                await previous_stop(application)

        async def post_shutdown(application: Application) -> None:
            # Also reached when start-up was interrupted (then post_stop is not called).
            await self.stop()
            if previous_shutdown is not None:
                await previous_shutdown(application)

        app.post_init = post_init
        app.post_stop = post_stop
        app.post_shutdown = post_shutdown
        return self

    def attach(self) -> None:
        """Register the counters and the database listeners (once)."""
        if self._attached:
            return
        self._attached = True
        app = self.application
        app.bot_data[RUNTIME_KEY] = self
        app.bot_data[METRICS_KEY] = self.metrics
        # Group -1 runs before the handlers and never stops them: counting only.
        app.add_handler(TypeHandler(object, self._count_update), group=-1)
        app.add_error_handler(self._count_error)
        request = app.bot.request
        if isinstance(request, RetryingRequest) and request.on_retry is None:
            request.on_retry = self.metrics.bot_api_retry
        queue = app.update_queue
        if isinstance(queue, DurableUpdateQueue) and queue.on_recovered is None:
            queue.on_recovered = self._replies_may_be_lost
        event.listen(self.services.db.sessionmaker, "after_flush", self._after_flush)
        event.listen(self.services.db.sessionmaker, "after_commit", self._after_commit)
        event.listen(self.services.db.sessionmaker, "after_rollback", self._after_rollback)

    def detach(self) -> None:
        """Remove the database event listeners (tests that reuse a Database)."""
        sessionmaker = self.services.db.sessionmaker
        for name, listener in (
            ("after_flush", self._after_flush),
            ("after_commit", self._after_commit),
            ("after_rollback", self._after_rollback),
        ):
            if event.contains(sessionmaker, name, listener):
                event.remove(sessionmaker, name, listener)

    # -- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the health server, the leader election and the leader's work."""
        if self._started:
            return
        self.attach()
        self._started = True
        self._stop.clear()
        # Decide the lead once now, so jobs that run at once (first=0) see the answer.
        await self.leadership.step()
        queue = self.application.update_queue
        if isinstance(queue, DurableUpdateQueue):
            # Updates stored before a stop or crash and never handled go first. On SQLite this
            # is the only instance; with several, one still alive may be handling its own.
            grace = None if self.services.db.is_postgres else timedelta(0)
            try:
                await queue.recover(self.application.bot, grace=grace)
            except Exception:
                log.exception("inbox: could not queue stored updates again")
            queue.start_flushing()
        if self.health_port is not None:
            self.health = HealthServer(
                self.metrics,
                {
                    "database": database_check(self.services.db),
                    "bot_api": bot_api_check(self.application.bot.get_me),
                },
                leader=lambda: self.leadership.is_leader,
                host=self.health_host,
                port=self.health_port,
            )
            await self.health.start()
            log.info("health and metrics on port %d", self.health.port)
        self._tasks = [
            asyncio.create_task(self.leadership.run(self._stop), name="buurtstem-leadership"),
            asyncio.create_task(self._lead(), name="buurtstem-leader-work"),
        ]

    async def _replies_may_be_lost(self, updates: list[Update]) -> None:
        """Updates about to be queued again were taken by an instance that died before handling
        them to the end: their residents' next question may never have gone out
        (usecases/resident.py `replies_may_be_lost`)."""
        users = {
            update.effective_user.id
            for update in updates
            if update.effective_user is not None
            and update.effective_chat is not None
            and update.effective_chat.type == ChatType.PRIVATE
        }
        if users:
            services = self.services
            await services.db.run(lambda session: replies_may_be_lost(services, session, users))

    async def stop(self) -> None:
        """Stop the leader's work (in-flight sends are recorded), hand over the lead, stop serving."""
        if not self._started:
            return
        self._started = False
        self._stop.set()
        queue = self.application.update_queue
        if isinstance(queue, DurableUpdateQueue):
            await queue.stop_flushing()
        # The leader's work first: the lock is released only when no send is in flight.
        for task in reversed(self._tasks):
            with contextlib.suppress(Exception):
                await task
        self._tasks = []
        if self.health is not None:
            await self.health.stop()
            self.health = None
        self.detach()

    def wake_outbox(self) -> None:
        """New outbox rows were queued: the sender looks now instead of at its next poll."""
        self._wake.set()
        if self.sender is not None:
            self.sender.wake()

    # -- the leader's work -------------------------------------------------------------------

    async def _lead(self) -> None:
        """While leading, run the outbox sender; stop it as soon as the lead is lost."""
        while not self._stop.is_set():
            await _first_of(self.leadership.became_leader, self._stop)
            if self._stop.is_set():
                break
            sender_stop = asyncio.Event()
            sending = asyncio.create_task(self._send(sender_stop), name="buurtstem-outbox")
            await _first_of(self.leadership.lost_leadership, self._stop)
            sender_stop.set()
            await sending
        self.sender = None

    async def _send(self, stop: asyncio.Event) -> None:
        """The outbox sender loop of a leader: send what is due, wait, repeat until `stop`."""
        self.sender = sender = self._sender_factory()
        try:
            self.outbox_report.recovered_unknown += await sender.recover(all_sending=True)
        except Exception:
            log.exception("outbox: recovery failed")
        while not stop.is_set():
            try:
                report = await sender.run_once(stop_event=stop)
            except Exception:  # a database outage must not end the leader's work
                log.exception("outbox: sending round failed; retrying")
                self.metrics.error("outbox")
            else:
                self._count_report(report)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    _first_of(stop, self._wake), timeout=self.sender_poll_interval
                )

    def _default_sender(self) -> OutboxSender:
        settings = self.services.settings
        return OutboxSender(
            self.services.db,
            self.application.bot,
            self.services.clock,
            rate=settings.outbox_rate,
            poll_interval=self.sender_poll_interval,
        )

    def _count_report(self, report: SendReport) -> None:
        self.outbox_report.add(report)
        if report.sent:
            # The sender reports counts, not kinds: all sends count under one label.
            self.metrics.messages_sent.labels(kind="all").inc(report.sent)
        errors = sum(report.errors.values())
        if errors:
            self.metrics.errors.labels(kind="outbox").inc(errors)

    # -- counting ----------------------------------------------------------------------------

    async def _count_update(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        self.metrics.update_handled(update_kind(update))

    async def _count_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        self.metrics.error("handler")

    def _after_flush(self, session: Session, _flush_context: Any) -> None:
        # session.new still lists what this flush inserted.
        added = sum(1 for obj in session.new if isinstance(obj, Answer))
        if added:
            session.info[_ANSWERS_INFO] = session.info.get(_ANSWERS_INFO, 0) + added

    def _after_commit(self, session: Session) -> None:
        added = session.info.pop(_ANSWERS_INFO, 0)
        for _ in range(added):
            self.metrics.answer_stored()

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(_ANSWERS_INFO, None)


async def _first_of(*events: asyncio.Event) -> None:
    """Wait until any of `events` is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
