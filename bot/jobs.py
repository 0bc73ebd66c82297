"""The bot's scheduled work: every JobQueue job, registered in one place under one policy.

The policy, the same for every job:
- leader only: on an instance that does not lead (bot/runtime.py, PostgreSQL advisory lock)
  a job does nothing; with one process (no runtime attached, or SQLite) the instance leads;
- off the event loop: blocking work runs in a worker thread; async work does its database work
  through `Database.run`, on the database's worker threads; updates keep flowing meanwhile;
- one run at a time: a run that falls due while the previous one is still busy is skipped
  (the next one sees what is left);
- errors are logged with the job's name and counted (`buurtstem_errors_total{kind="job"}`);
  the job stays scheduled and its next run tries again (a database outage stops nothing).

Times come from the services' clock and the settings' time zone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from telegram.ext import Application, ContextTypes

from bot.inbox import DurableUpdateQueue
from bot.runtime import is_leader, metrics_of
from handlers.context import SERVICES_KEY
from storage.residents import REDELIVERY_WINDOW, purge_processed_updates
from storage.retention import run_retention
from usecases.queue_digests import run_digest_tick
from usecases.round_tick import run_round_tick
from usecases.services import Services

log = logging.getLogger(__name__)

JobCallback = Callable[[ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Job:
    """One piece of scheduled work: what it does, and when.

    Either `work(services, now)`, blocking (it runs in a worker thread), or
    `async_work(application)`, for work on the application itself (its update queue) whose
    database calls go through `Database.run`. A job runs `every` so often (the first time after
    `first`), or daily at `daily_at` local time; `at_start` adds one run as soon as the bot has
    started, to catch up what fell due while it was down.
    """

    name: str
    work: Callable[[Services, datetime], object] | None = None
    async_work: Callable[[Application], Awaitable[object]] | None = None
    every: timedelta | None = None
    first: timedelta = timedelta(0)
    daily_at: time | None = None
    at_start: bool = False

    def __post_init__(self) -> None:
        if (self.work is None) == (self.async_work is None):
            raise ValueError(f"job {self.name}: give work or async_work, not both or neither")


# ---- the work ------------------------------------------------------------------------------


def round_tick(svc: Services, now: datetime) -> object:
    """Open, close and remind rounds that are due (usecases.round_tick)."""
    report = run_round_tick(svc.db, svc.areas, now, tz=svc.settings.tz, catalogue=svc.catalogue)
    if report.changed:
        log.info(
            "round tick: opened %s, closed %s, closed unopened %s, %d invitation(s), %d reminder(s)",
            report.opened,
            report.closed,
            report.missed,
            report.invitations,
            report.reminders,
        )
    return report


def digest_tick(svc: Services, now: datetime) -> object:
    """Cut the areas' releases that are due, queue the alliance digests that are due
    (usecases.queue_digests); charts in the chart workers."""
    return run_digest_tick(
        svc.db,
        svc.areas,
        now,
        min_n=svc.settings.min_cell_size,
        tz=svc.settings.tz,
        catalogue=svc.catalogue,
        charts=svc.charts,
        references=svc.references,
    )


async def housekeeping(application: Application) -> object:
    """Forget update ids past the redelivery window, and stored updates never handled in a week."""
    svc: Services = application.bot_data[SERVICES_KEY]
    before = svc.clock.now() - REDELIVERY_WINDOW
    purged = await svc.db.run(lambda session: purge_processed_updates(session, before))
    queue = application.update_queue
    if isinstance(queue, DurableUpdateQueue):
        await queue.purge()
    return purged


async def inbox(application: Application) -> object:
    """Queue again updates an instance stored and never handled (it died): the leader takes them."""
    queue = application.update_queue
    if isinstance(queue, DurableUpdateQueue):
        return await queue.recover(application.bot)
    return 0


def retention(svc: Services, now: datetime) -> object:
    """Erase what is past the retention period (storage.retention), and log the counts."""
    counts = run_retention(svc.db, now, svc.settings.retention_days).as_dict()
    log.info("retention: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


ROUND_TICK = Job("round-tick", round_tick, every=timedelta(seconds=30), at_start=True)
DIGEST_TICK = Job("digests", digest_tick, every=timedelta(minutes=1), first=timedelta(seconds=15))
HOUSEKEEPING = Job(
    "housekeeping", async_work=housekeeping, every=timedelta(hours=1), first=timedelta(seconds=5)
)
INBOX = Job("inbox", async_work=inbox, every=timedelta(minutes=1), first=timedelta(minutes=1))
RETENTION = Job("retention", retention, daily_at=time(3, 30))  # local time: a quiet hour
JOBS = (ROUND_TICK, DIGEST_TICK, HOUSEKEEPING, INBOX, RETENTION)


# ---- the policy ----------------------------------------------------------------------------


def job_callback(job: Job) -> JobCallback:
    """The JobQueue callback that runs `job` under the policy (see the module docstring)."""
    busy = asyncio.Lock()

    async def callback(context: ContextTypes.DEFAULT_TYPE) -> None:
        application = context.application
        if not is_leader(application) or busy.locked():
            return
        svc: Services = application.bot_data[SERVICES_KEY]
        async with busy:
            try:
                if job.work is not None:
                    await asyncio.to_thread(job.work, svc, svc.clock.now())
                elif job.async_work is not None:
                    await job.async_work(application)
            except Exception:
                log.exception("job %s failed; its next run tries again", job.name)
                metrics = metrics_of(application)
                if metrics is not None:
                    metrics.error("job")

    callback.__name__ = callback.__qualname__ = f"job_{job.name.replace('-', '_')}"
    return callback


def register_jobs(application: Application, jobs: Iterable[Job] = JOBS) -> None:
    """Schedule `jobs` on the application's JobQueue (in post_init, before it starts)."""
    queue = application.job_queue
    if queue is None:
        log.warning("no JobQueue: rounds, digests and retention will not run by themselves")
        return
    services: Services = application.bot_data[SERVICES_KEY]
    for job in jobs:
        callback = job_callback(job)
        if job.at_start:
            # A job added before the JobQueue starts with first=0 would be moved to the next
            # interval, and a start-up slower than the 1 s misfire grace would drop it: so the
            # catch-up is a one-off job of its own that never counts as missed.
            queue.run_once(
                callback,
                when=0,
                name=f"{job.name}-catch-up",
                job_kwargs={"misfire_grace_time": None},
            )
        if job.every is not None:
            queue.run_repeating(
                callback,
                interval=job.every,
                # The catch-up is the first run of an at_start job.
                first=job.every if job.at_start else job.first,
                name=job.name,
                # A run delayed (a busy machine) still runs, once.
                job_kwargs={"misfire_grace_time": int(job.every.total_seconds())},
            )
        if job.daily_at is not None:
            at = job.daily_at.replace(tzinfo=services.settings.tz)
            queue.run_daily(callback, time=at, name=job.name)
