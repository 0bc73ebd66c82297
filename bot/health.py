"""The operations HTTP server: /health (JSON, 200 or 503) and /metrics (Prometheus text).

It runs on its own port (settings.metrics_port), apart from the webhook, so a load balancer or
Prometheus can reach it without reaching the bot. A check is an async callable that returns
(anything but False) when healthy and raises or returns False when not; only the exception's
class name reaches the response, because messages of Bot API errors can carry the token in a URL.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from aiohttp import web

from bot.metrics import CONTENT_TYPE, Metrics
from storage.db import Database
from storage.meta import probe_write

Check = Callable[[], Awaitable[object]]


def database_check(db: Database) -> Check:
    """A check that the database can be written (in a worker thread, the driver blocks).

    Every update is a write, so `SELECT 1` is not enough: a read-only SQLite file, a
    PostgreSQL hot standby or a transaction set read only answer it and refuse every update.
    The probe inserts a row into `meta`, deletes it and commits, so it leaves nothing behind;
    the commit is what finds a full disk (a rolled-back write never reaches it).
    """
    tag = uuid.uuid4().hex[:12]  # per check: probes of several instances never wait on each other

    def ping() -> bool:
        with db.sessionmaker() as session:
            try:
                probe_write(session, datetime.now(UTC), tag)
                session.commit()
            finally:
                session.rollback()
        return True

    async def check() -> bool:
        return await asyncio.to_thread(ping)

    return check


class CachedCheck:
    """Remembers a check's result for a while, so frequent probes don't hammer the Bot API."""

    def __init__(self, check: Check, ttl: float = 60.0, failure_ttl: float = 5.0) -> None:
        self._check = check
        self._ttl = ttl
        self._failure_ttl = failure_ttl
        self._result: tuple[float, BaseException | None] | None = None
        self._lock = asyncio.Lock()

    async def __call__(self) -> bool:
        async with self._lock:  # one probe at a time; the others reuse its answer
            now = asyncio.get_running_loop().time()
            if self._result is None or now >= self._result[0]:
                error: BaseException | None = None
                try:
                    if await self._check() is False:
                        error = RuntimeError("check returned False")
                except Exception as exc:
                    error = exc
                expires = now + (self._ttl if error is None else self._failure_ttl)
                self._result = (expires, error)
            error = self._result[1]
        if error is not None:
            raise error
        return True


def bot_api_check(get_me: Check, ttl: float = 60.0) -> CachedCheck:
    """A cached Bot API check, e.g. `bot_api_check(application.bot.get_me)`."""
    return CachedCheck(get_me, ttl=ttl)


class HealthServer:
    """aiohttp server with /health and /metrics; use as `async with HealthServer(...) as s:`."""

    def __init__(
        self,
        metrics: Metrics | None = None,
        checks: Mapping[str, Check] | None = None,
        *,
        leader: Callable[[], bool] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout: float = 5.0,
    ) -> None:
        self.metrics = metrics
        self.checks = dict(checks or {})
        self.leader = leader
        self.host = host
        self.port = port
        self.timeout = timeout
        self._runner: web.AppRunner | None = None

    async def report(self) -> tuple[bool, dict[str, Any]]:
        """Run every check at once (each with a timeout): (healthy, JSON-ready report)."""
        names = list(self.checks)
        outcomes = await asyncio.gather(*(self._run_check(self.checks[n]) for n in names))
        results = dict(zip(names, outcomes, strict=True))
        healthy = all(result["ok"] for result in results.values())
        body: dict[str, Any] = {"status": "ok" if healthy else "unhealthy", "checks": results}
        if self.leader is not None:
            body["leader"] = bool(self.leader())
        return healthy, body

    async def _run_check(self, check: Check) -> dict[str, Any]:
        try:
            outcome = await asyncio.wait_for(check(), timeout=self.timeout)
        except Exception as exc:
            return {"ok": False, "error": type(exc).__name__}
        if outcome is False:
            return {"ok": False, "error": "failed"}
        return {"ok": True}

    async def _health(self, _request: web.Request) -> web.Response:
        healthy, body = await self.report()
        return web.Response(
            text=json.dumps(body, sort_keys=True),
            status=200 if healthy else 503,
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    async def _metrics(self, _request: web.Request) -> web.Response:
        if self.metrics is None:
            raise web.HTTPNotFound()
        # Scrape-time gauges query the database: keep that off the event loop.
        payload = await asyncio.to_thread(self.metrics.render)
        return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE})

    def make_app(self) -> web.Application:
        """The aiohttp application (for embedding in another server or testing)."""
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> None:
        """Bind and serve; `self.port` is the real port afterwards (useful with port 0)."""
        runner = web.AppRunner(self.make_app(), access_log=None)
        await runner.setup()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            await runner.cleanup()
            raise
        self.port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> HealthServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
