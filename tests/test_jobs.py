"""The jobs' one policy (bot/jobs.py): leader only, off the event loop, one run at a time, errors
logged and counted; and that the bot registers every job, once."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from telegram.ext import CallbackContext

from bot.jobs import JOBS, RETENTION, Job, register_jobs
from bot.leader import Leadership
from bot.runtime import Runtime
from storage.models import ProcessedUpdate
from storage.residents import claim_update


def callback_of(app: Any, name: str) -> Any:
    """The JobQueue callback of the job called `name`."""
    return next(job.callback for job in app.job_queue.jobs() if job.name == name)


def follower(app: Any, services: Any) -> Runtime:
    """A runtime whose leadership is not decided yet: the instance does not lead."""
    runtime = Runtime(app, services, leadership=Leadership(services.db))
    runtime.attach()
    return runtime


def unschedule(app: Any) -> None:
    for job in app.job_queue.jobs():
        job.schedule_removal()


async def test_every_job_is_registered_once(
    make_services: Any, make_app: Any, sqlite_url: str
) -> None:
    app = make_app(make_services(sqlite_url))
    register_jobs(app)
    names = sorted(job.name for job in app.job_queue.jobs())
    assert names == sorted([*(job.name for job in JOBS), "round-tick-catch-up"]), (
        "one registration: round tick (and its catch-up), digests, housekeeping, retention"
    )
    unschedule(app)


async def test_jobs_act_only_on_the_leader(
    make_services: Any, make_app: Any, sqlite_url: str
) -> None:
    services = make_services(sqlite_url)
    app = make_app(services)
    runtime = follower(app, services)
    ran: list[datetime] = []
    register_jobs(app, [Job("probe", lambda svc, now: ran.append(now), every=timedelta(hours=1))])
    await callback_of(app, "probe")(CallbackContext(app))
    assert ran == []
    await runtime.leadership.step()  # SQLite: one process, always leads
    await callback_of(app, "probe")(CallbackContext(app))
    assert ran == [services.clock.now()]
    unschedule(app)
    runtime.detach()


async def test_retention_runs_only_on_the_leader(
    make_services: Any, make_app: Any, sqlite_url: str, clock: Any
) -> None:
    services = make_services(sqlite_url)
    app = make_app(services)
    runtime = follower(app, services)
    with services.db.session() as session:
        claim_update(session, 1, 41, clock.now() - timedelta(days=5))
    register_jobs(app, [RETENTION])
    await callback_of(app, "retention")(CallbackContext(app))
    with services.db.session() as session:
        assert session.get(ProcessedUpdate, (1, 41)) is not None  # a follower changes nothing
    await runtime.leadership.step()
    await callback_of(app, "retention")(CallbackContext(app))
    with services.db.session() as session:
        assert session.get(ProcessedUpdate, (1, 41)) is None
    unschedule(app)
    runtime.detach()


async def test_work_runs_off_the_event_loop(
    make_services: Any, make_app: Any, sqlite_url: str
) -> None:
    app = make_app(make_services(sqlite_url))
    threads: list[threading.Thread] = []
    record = Job(
        "probe",
        lambda svc, now: threads.append(threading.current_thread()),
        every=timedelta(hours=1),
    )
    register_jobs(app, [record])
    await callback_of(app, "probe")(CallbackContext(app))
    assert threads and threads[0] is not threading.main_thread()
    unschedule(app)


async def test_a_failing_job_is_logged_counted_and_runs_again(
    make_services: Any, make_app: Any, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    services = make_services(sqlite_url)
    app = make_app(services)
    runtime = Runtime(app, services)
    runtime.attach()
    await runtime.leadership.step()
    calls: list[int] = []

    def broken(svc: Any, now: datetime) -> None:
        calls.append(1)
        raise RuntimeError("database down")

    register_jobs(app, [Job("broken", broken, every=timedelta(hours=1))])
    with caplog.at_level(logging.ERROR, logger="bot.jobs"):
        await callback_of(app, "broken")(CallbackContext(app))
        await callback_of(app, "broken")(CallbackContext(app))
    assert calls == [1, 1]
    assert [r.getMessage() for r in caplog.records].count(
        "job broken failed; its next run tries again"
    ) == 2
    errors = runtime.metrics.registry.get_sample_value("buurtstem_errors_total", {"kind": "job"})
    assert errors == 2
    assert "broken" in {job.name for job in app.job_queue.jobs()}
    unschedule(app)
    runtime.detach()


async def test_a_run_due_while_the_last_is_busy_is_skipped(
    make_services: Any, make_app: Any, sqlite_url: str
) -> None:
    app = make_app(make_services(sqlite_url))
    started, release = threading.Event(), threading.Event()
    runs: list[int] = []

    def slow(svc: Any, now: datetime) -> None:
        runs.append(1)
        started.set()
        release.wait(10)

    register_jobs(app, [Job("slow", slow, every=timedelta(hours=1))])
    callback = callback_of(app, "slow")
    first = asyncio.create_task(callback(CallbackContext(app)))
    await asyncio.to_thread(started.wait, 10)
    await callback(CallbackContext(app))  # returns at once: the first run is still busy
    release.set()
    await first
    assert runs == [1]
    await callback(CallbackContext(app))
    assert runs == [1, 1]
    unschedule(app)
