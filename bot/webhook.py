"""buurtstem's own webhook server: an update is stored before Telegram gets its 200.

python-telegram-bot's webhook server answers 200 as soon as an update is queued, answers 400 to
an update it cannot parse (Telegram then sends that update again and again, and nothing after
it), and accepts bodies of up to 100 MB. This aiohttp server, which puts updates on the
application's queue as PTB documents for custom webhook servers:

- refuses requests without Telegram's secret token (403);
- refuses bodies over MAX_BODY_BYTES with 413, without reading them on (an update is one
  message: at most 4,096 characters of text with entities, a keyboard: tens of kilobytes; the
  nginx example of docs/deploy.md has the same `client_max_body_size 1m`);
- reads an update the library cannot parse as a bare update with its id (bot/inbox.py
  `parse_update`): skipped and counted, delivery goes on;
- answers 200 only after the update is stored (bot/inbox.py `DurableUpdateQueue`), so a crash
  after the 200 loses nothing; a database that cannot store it gets 503, and Telegram tries
  again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web
from telegram import Bot
from telegram.ext import Application

from bot.inbox import parse_update

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookServer:
    """POST `path`: check, read, store and queue one update."""

    def __init__(
        self,
        queue: asyncio.Queue[object],
        bot: Bot,
        *,
        path: str,
        secret: str | None,
        on_skip: Callable[[], None] | None = None,
    ) -> None:
        self.queue, self.bot, self.secret, self.on_skip = queue, bot, secret, on_skip
        self.path = "/" + path.lstrip("/")
        self.app = web.Application(client_max_size=MAX_BODY_BYTES)
        self.app.router.add_post(self.path, self._post)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (port 0: a free one, then in `self.port`)."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = getattr(getattr(site, "_server", None), "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def stop(self) -> None:
        """Stop listening; requests in hand are answered first."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _post(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if self.secret and not hmac.compare_digest(given.encode(), self.secret.encode()):
            log.warning("webhook: refused a request without the right secret token")
            return web.Response(status=403)
        declared = request.content_length
        if declared is not None and declared > MAX_BODY_BYTES:
            log.warning("webhook: refused a body of %d bytes (limit %d)", declared, MAX_BODY_BYTES)
            return web.Response(status=413)
        try:
            body = await request.read()  # aiohttp stops at MAX_BODY_BYTES with 413
            data: Any = json.loads(body)
        except web.HTTPRequestEntityTooLarge:
            log.warning("webhook: refused a body over %d bytes", MAX_BODY_BYTES)
            return web.Response(status=413)
        except ValueError:
            return web.Response(status=400, text="not JSON")
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return web.Response(status=400, text="not an update")
        update = parse_update(data, self.bot, self.on_skip)
        try:
            await self.queue.put(update)
        except Exception:
            log.exception("webhook: could not store an update; Telegram will send it again")
            return web.Response(status=503)
        return web.Response(status=200)


async def serve_webhook(
    application: Application,  # type: ignore[type-arg]
    *,
    listen: str,
    port: int,
    url: str,
    path: str,
    secret: str | None,
    allowed_updates: list[str],
    on_skip: Callable[[], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the application behind this webhook server until SIGTERM/SIGINT (or `stop`).

    The life cycle of PTB's run_webhook: initialize and post_init, listen, set the webhook at
    Telegram, start; on a signal stop listening, handle what was queued, post_stop, shutdown.
    The webhook stays set at Telegram: other instances go on receiving updates.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    server = WebhookServer(
        application.update_queue, application.bot, path=path, secret=secret, on_skip=on_skip
    )
    await application.initialize()
    try:
        if application.post_init is not None:
            await application.post_init(application)
        await server.start(listen, port)
        await application.bot.set_webhook(
            url=url, secret_token=secret, allowed_updates=allowed_updates
        )
        await application.start()
        log.info("webhook server listening on %s:%s", listen, server.port)
        await stop.wait()
        await server.stop()
        await application.stop()
        if application.post_stop is not None:
            await application.post_stop(application)
    finally:
        await server.stop()
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)


def run_webhook(application: Application, **options: Any) -> None:  # type: ignore[type-arg]
    """`serve_webhook` in its own event loop (what `buurtstem run --webhook` calls)."""
    asyncio.run(serve_webhook(application, **options))
