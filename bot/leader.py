"""Leader election: one instance at a time runs scheduled work, chosen by a PostgreSQL advisory lock.

Every instance runs a `Leadership` loop. On PostgreSQL it holds one dedicated connection (outside
the pool, in autocommit) and tries `pg_try_advisory_lock(key)` every `interval` seconds. The lock
belongs to that connection's server session, so when the process dies (SIGKILL, OOM, power) the
server drops the session and the lock, and another instance takes it on its next try. While
leading, the loop checks every `interval` that the connection is alive and still holds the lock;
any doubt (error, timeout) means stepping down at once. On SQLite (one process) the instance
always leads.

Leadership is a performance guard, not a correctness guarantee: during a network partition the old
leader may still run a job for up to one check interval after the server released its lock, so
scheduled work must stay idempotent (outbox dedupe keys, exclusive claims).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Connection, Engine

from storage.db import Database
from storage.leases import holds_lock, lock_engine, lock_key, try_lock, unlock

logger = logging.getLogger(__name__)

Callback = Callable[[], Awaitable[None] | None]

# Server-side TCP keepalives for the lock session: if the leader's host vanishes from the
# network, PostgreSQL notices within about 5 + 3 * 2 = 11 s and frees the lock.
_PG_OPTIONS = "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3"
_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "options": _PG_OPTIONS,
    "application_name": "buurtstem-leader",
}


class Leadership:
    """Decides whether this instance leads; `run()` keeps the decision current."""

    def __init__(
        self,
        db: Database,
        name: str = "buurtstem",
        interval: float = 2.0,
        *,
        check_timeout: float | None = None,
        on_elected: Callback | None = None,
        on_deposed: Callback | None = None,
    ) -> None:
        self.db = db
        self.name = name
        self.key = lock_key(name)
        self.interval = interval
        # A check that takes longer than this counts as a lost connection.
        self.check_timeout = check_timeout if check_timeout is not None else max(5.0, interval)
        self.on_elected = on_elected
        self.on_deposed = on_deposed
        self.is_leader = False
        # Set while this instance leads / while it does not: wait on either.
        self.became_leader = asyncio.Event()
        self.lost_leadership = asyncio.Event()
        self.lost_leadership.set()
        self._engine: Engine | None = None
        self._conn: Connection | None = None

    # -- the loop ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Try to lead (and check the lead) every `interval` seconds until `stop` is set."""
        try:
            while not stop.is_set():
                await self.step()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.interval)
        finally:
            await self.release()

    async def step(self) -> bool:
        """One round: acquire when following, verify when leading; returns `is_leader`."""
        if not self.db.is_postgres:
            if not self.is_leader:
                await self._set_leader(True)
            return True
        try:
            if self.is_leader:
                holds = await asyncio.wait_for(
                    asyncio.to_thread(self._still_holds), timeout=self.check_timeout
                )
            else:
                holds = await asyncio.wait_for(
                    asyncio.to_thread(self._try_acquire), timeout=self.check_timeout
                )
        except Exception as exc:  # connection lost, server down, timeout: never lead in doubt
            logger.warning("leader lock check failed (%s)", type(exc).__name__)
            holds = False
            await self._drop_connection()
        if holds != self.is_leader:
            await self._set_leader(holds)
        return self.is_leader

    async def release(self) -> None:
        """Give up the lead (graceful shutdown): unlock and close, so another leads at once."""
        if self._conn is not None:
            conn = self._conn
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.to_thread(self._unlock, conn), timeout=self.check_timeout
                )
        await self._drop_connection()
        if self.is_leader:
            await self._set_leader(False, graceful=True)

    # -- blocking database calls (run in a worker thread) ----------------------------------------

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            if self._engine is None:
                self._engine = lock_engine(self.db.url, **_CONNECT_ARGS)
            self._conn = self._engine.connect()
        return self._conn

    def _try_acquire(self) -> bool:
        return try_lock(self._connection(), self.key)

    def _still_holds(self) -> bool:
        return holds_lock(self._connection(), self.key)

    def _unlock(self, conn: Connection) -> None:
        unlock(conn, self.key)

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Closing a dead socket can hang; never let it hold up the loop.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.to_thread(conn.close), timeout=self.check_timeout)
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()

    # -- state changes ---------------------------------------------------------------------------

    async def _set_leader(self, leading: bool, *, graceful: bool = False) -> None:
        self.is_leader = leading
        if leading:
            self.lost_leadership.clear()
            self.became_leader.set()
            logger.info("this instance now leads %r", self.name)
        else:
            self.became_leader.clear()
            self.lost_leadership.set()
            # Losing the lead unasked is worth a warning; handing it over on shutdown is not.
            log = logger.info if graceful else logger.warning
            log("this instance no longer leads %r", self.name)
        callback = self.on_elected if leading else self.on_deposed
        if callback is not None:
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("leadership callback failed")
