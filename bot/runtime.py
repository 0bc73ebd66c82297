"""The background work of one bot instance: leadership, outbox sender, jobs, health and metrics.

`Runtime(application, services).install()` hooks into the Application's post_init/post_stop, so
`run_polling` and `run_webhook` start and stop it with the bot. On every instance it runs the
leader election loop, counts updates, answers and errors, and serves /health and /metrics when
`metrics_port` is set. Only on the leader (PostgreSQL advisory lock; always on SQLite) does it
run the outbox sender, and JobQueue jobs act only there: `start()` wraps every job registered
by then with `leader_only`; later jobs call `is_leader(application)` or use `leader_only`. Updates are handled by every instance: all resident state lives
in the database, so any instance can take any update.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Coroutine, Iterator
from datetime import time, timedelta
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from telegram import Update
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.health import HealthServer, bot_api_check, database_check
from bot.inbox import DurableUpdateQueue
from bot.leader import Leadership
from bot.metrics import Metrics, outbox_stats_from
from bot.outbox import OutboxSender, SendReport
from bot.retrying import RetryingRequest
from handlers.context import METRICS_KEY
from storage.db import normalise_url
from storage.models import Answer
from storage.retention import run_retention
from usecases.services import Services

log = logging.getLogger(__name__)

RUNTIME_KEY = "buurtstem.runtime"
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
RETENTION_TIME = time(3, 30)  # local time: a quiet hour
_ANSWERS_INFO = "buurtstem.new_answers"
_GUARDED = "_buurtstem_leader_only"
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

JobCallback = Callable[[ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, Any]]


def is_leader(application: Application) -> bool:
    """True when this instance runs scheduled work (also when no runtime is attached: one process)."""
    runtime = application.bot_data.get(RUNTIME_KEY)
    if not isinstance(runtime, Runtime):
        return True
    return runtime.leadership.is_leader


def leader_only(callback: JobCallback) -> JobCallback:
    """Wrap a JobQueue callback so it does nothing on instances that do not lead."""

    if getattr(callback, _GUARDED, False):
        return callback

    @wraps(callback)
    async def guarded(context: ContextTypes.DEFAULT_TYPE) -> Any:
        if not is_leader(context.application):
            return None
        return await callback(context)

    setattr(guarded, _GUARDED, True)
    return guarded


def guard_jobs(application: Application) -> list[str]:
    """Make every job now in the JobQueue leader-only; returns the names of those it wrapped.

    The runtime calls this after post_init, when the other modules (rounds, digests,
    housekeeping) have registered their jobs and before the JobQueue starts. Jobs added later
    must use `leader_only` or `is_leader` themselves.
    """
    if application.job_queue is None:
        return []
    wrapped = []
    for job in application.job_queue.jobs():
        if not getattr(job.callback, _GUARDED, False):
            job.callback = leader_only(job.callback)
            wrapped.append(job.name or "?")
    return wrapped


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


@contextlib.contextmanager
def startup_lock(database_url: str, name: str = "buurtstem-startup") -> Iterator[None]:
    """Serialise start-up work (migrations, default survey, standing round) across instances.

    Several instances starting at once on one PostgreSQL would otherwise race to create the
    schema and the standing round. A session advisory lock on a private connection; a no-op on
    SQLite (one process).
    """
    url = normalise_url(database_url)
    if not url.startswith("postgresql"):
        yield
        return
    key = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        engine.dispose()


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
        retention_at: time = RETENTION_TIME,
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
        self.retention_at = retention_at
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
        """Register the counters, the retention job and other modules' jobs (once)."""
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
        event.listen(self.services.db.sessionmaker, "after_flush", self._after_flush)
        event.listen(self.services.db.sessionmaker, "after_commit", self._after_commit)
        event.listen(self.services.db.sessionmaker, "after_rollback", self._after_rollback)
        if app.job_queue is not None:
            at = self.retention_at.replace(tzinfo=ZoneInfo(self.services.settings.timezone))
            app.job_queue.run_daily(leader_only(self.retention_job), time=at, name="retention")
            if isinstance(app.update_queue, DurableUpdateQueue):
                # Updates an instance stored and never handled (it died): the leader takes them.
                app.job_queue.run_repeating(
                    leader_only(self.inbox_job), interval=60, first=60, name="inbox"
                )

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
        guarded = guard_jobs(self.application)
        if guarded:
            log.info("leader-only jobs: %s", ", ".join(sorted(guarded)))
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

    async def inbox_job(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Queue again updates no instance handled within the grace time (leader only)."""
        queue = self.application.update_queue
        if isinstance(queue, DurableUpdateQueue):
            await queue.recover(self.application.bot)

    async def retention_job(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Daily retention (JobQueue callback, wrapped with `leader_only`)."""
        await self.run_retention()

    async def run_retention(self) -> dict[str, int]:
        """Apply retention now (in a worker thread) and log the counts."""
        svc = self.services
        try:
            result = await asyncio.to_thread(
                run_retention, svc.db, svc.clock.now(), svc.settings.retention_days
            )
        except Exception:
            self.metrics.error("job")
            log.exception("retention failed")
            raise
        counts = result.as_dict()
        log.info("retention: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
        return counts

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
