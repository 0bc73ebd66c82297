"""Leader election: one leader on PostgreSQL, takeover when it dies, always leader on SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.leader import Leadership
from storage.db import Database
from storage.leases import lock_key

ROOT = Path(__file__).resolve().parent.parent
# Generous upper bound for a takeover; the interval in these tests is 0.2 s.
DEADLINE = 15.0


async def wait_for(condition: Callable[[], bool], deadline: float = DEADLINE) -> bool:
    """Poll `condition` until true or the deadline passes (no timing is asserted)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while loop.time() < end:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


@contextlib.asynccontextmanager
async def running(leadership: Leadership) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(leadership.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=DEADLINE)


def test_lock_key_is_stable_and_signed_64_bit() -> None:
    assert lock_key("buurtstem") == lock_key("buurtstem")
    assert lock_key("buurtstem") != lock_key("buurtstem-test")
    assert -(2**63) <= lock_key("x") < 2**63


async def test_sqlite_always_leads(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    elected: list[bool] = []
    leadership = Leadership(db, interval=0.05, on_elected=lambda: elected.append(True))
    try:
        async with running(leadership):
            assert await wait_for(lambda: leadership.is_leader)
            assert leadership.became_leader.is_set()
            assert not leadership.lost_leadership.is_set()
        assert elected == [True]
    finally:
        db.dispose()


@pytest.mark.postgres
async def test_exactly_one_leads_and_other_takes_over(postgres_url: str) -> None:
    db_a, db_b = Database(postgres_url), Database(postgres_url)
    events: list[str] = []
    a = Leadership(db_a, name="t", interval=0.2, on_deposed=lambda: events.append("a deposed"))
    b = Leadership(db_b, name="t", interval=0.2, on_elected=lambda: events.append("b elected"))
    try:
        async with running(a) as stop_a:
            assert await wait_for(lambda: a.is_leader)
            async with running(b):
                # b keeps trying for a while and must not get in while a holds the lock.
                for _ in range(5):
                    assert await b.step() is False
                # The leader's own check sees its lock still held.
                assert await a.step() is True
                assert a.is_leader and not b.is_leader

                # The leader's session dies (as when its process is killed): b takes over.
                conn = a._conn
                assert conn is not None
                conn.connection.dbapi_connection.close()  # type: ignore[union-attr]
                assert await wait_for(lambda: b.is_leader)
                assert await wait_for(lambda: not a.is_leader)
                stop_a.set()
                assert "b elected" in events and "a deposed" in events
                # With a gone for good, b stays the only leader.
                assert await b.step() is True
    finally:
        db_a.dispose()
        db_b.dispose()


@pytest.mark.postgres
async def test_graceful_release_hands_over(postgres_url: str) -> None:
    db_a, db_b = Database(postgres_url), Database(postgres_url)
    a = Leadership(db_a, name="release", interval=0.2)
    b = Leadership(db_b, name="release", interval=0.2)
    try:
        assert await a.step() is True
        assert await b.step() is False
        await a.release()
        assert not a.is_leader and a.lost_leadership.is_set()
        assert await b.step() is True
        # The lock name separates applications sharing one database.
        other = Leadership(db_a, name="another-bot", interval=0.2)
        assert await other.step() is True
        await other.release()
        await b.release()
    finally:
        db_a.dispose()
        db_b.dispose()


@pytest.mark.postgres
async def test_sigkilled_leader_process_is_replaced(postgres_url: str) -> None:
    script = (
        "import asyncio, sys\n"
        "from bot.leader import Leadership\n"
        "from storage.db import Database\n"
        "async def main():\n"
        "    leadership = Leadership(Database(sys.argv[1]), name='kill', interval=0.2)\n"
        "    assert await leadership.step()\n"
        "    print('leading', flush=True)\n"
        "    await asyncio.sleep(3600)\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script, postgres_url],
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    db = Database(postgres_url)
    local = Leadership(db, name="kill", interval=0.2)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), DEADLINE)
        assert line.strip() == b"leading"
        assert await local.step() is False
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait)
        async with running(local):
            assert await wait_for(lambda: local.is_leader)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        db.dispose()
