"""Updates kept until handled: nothing Telegram delivered is lost when the bot stops or crashes.

Telegram forgets an update once it is confirmed: in polling mode by the next getUpdates call,
in webhook mode by the 200 answer. python-telegram-bot confirms when an update is *queued*, not
when it is handled, so a crash loses what was queued. `DurableUpdateQueue` is the application's
update queue: putting an update there first stores it (storage/inbox.py), and both the Updater
(polling) and buurtstem's webhook server (bot/webhook.py) put updates there before they
confirm them. When an update has been handled (a handler group that runs after all others), it
is forgotten, in batches. At start, and every minute on the leader, updates stored longer than
`grace` ago and never handled are queued again; handling them twice changes nothing (each
update's transaction claims its update id).

`parse_update` reads an update that python-telegram-bot cannot parse as a bare update with only
its id: it is skipped (counted, never logged with its content) instead of stopping delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Any

from telegram import Bot, Update
from telegram.error import TelegramError
from telegram.request import BaseRequest

from bot.clock import Clock
from bot.retrying import DelegatingRequest
from storage import inbox as store
from storage.db import Database

log = logging.getLogger(__name__)

# How long an instance may take to handle an update before another one may take it over.
DEFAULT_GRACE = timedelta(minutes=1)
FLUSH_EVERY = 2.0  # seconds between deletions of handled updates
KEEP_FOR = timedelta(days=7)  # never handled after a week: dropped


def parse_update(
    data: dict[str, Any], bot: Bot | None, on_skip: Callable[[], None] | None = None
) -> Update:
    """The update, or a bare one with only its id when the library cannot parse it."""
    try:
        return Update.de_json(data, bot)
    except Exception as exc:  # a new or malformed field: skip the update, not the delivery
        log.warning("skipped an update the library cannot read (%s)", type(exc).__name__)
        if on_skip is not None:
            on_skip()
        return Update(update_id=int(data.get("update_id") or 0))


def sanitise_updates(payload: bytes, on_skip: Callable[[], None] | None = None) -> bytes:
    """A getUpdates answer with every update the library cannot parse replaced by its bare id.

    Otherwise one unreadable update fails the whole getUpdates call, the offset never moves
    past it, and polling asks for it again forever.
    """
    try:
        body = json.loads(payload)
    except ValueError:
        return payload
    results = body.get("result") if isinstance(body, dict) else None
    if not isinstance(results, list):
        return payload
    changed = False
    for index, raw in enumerate(results):
        if not isinstance(raw, dict):
            continue
        try:
            Update.de_json(raw, None)
        except Exception as exc:
            log.warning("skipped an update the library cannot read (%s)", type(exc).__name__)
            if on_skip is not None:
                on_skip()
            results[index] = {"update_id": raw.get("update_id")}
            changed = True
    return json.dumps(body).encode() if changed else payload


class ReadableUpdatesRequest(DelegatingRequest):
    """The getUpdates request (polling) with unreadable updates turned bare (`sanitise_updates`)."""

    def __init__(self, inner: BaseRequest, on_skip: Callable[[], None] | None = None) -> None:
        super().__init__(inner)
        self.on_skip = on_skip

    async def do_request(
        self, url: str, method: str, *args: Any, **kwargs: Any
    ) -> tuple[int, bytes]:
        """Make the call; a successful getUpdates answer is made readable."""
        code, payload = await self.inner.do_request(url, method, *args, **kwargs)
        if code == 200 and url.rstrip("/").endswith("getUpdates"):
            payload = sanitise_updates(payload, self.on_skip)
        return code, payload


class UpdateNotStored(TelegramError):
    """A fetched update could not be stored (the database refuses writes or is away).

    A TelegramError, so that python-telegram-bot's polling loop treats it as it treats a failed
    getUpdates: it logs it, waits (1 s, growing to 30 s) and fetches the same updates again,
    unconfirmed. Any other exception would end the polling task for good, and the bot would
    never hear from anyone again, even once the database is back.
    """

    def __init__(self, cause: BaseException) -> None:
        super().__init__(
            f"could not store a fetched update ({type(cause).__name__}); it stays unconfirmed "
            "and is fetched again"
        )


class DurableUpdateQueue(asyncio.Queue[object]):
    """The application's update queue; an update put here is stored first (see module doc)."""

    def __init__(
        self, db: Database, bot_id: int, clock: Clock, *, grace: timedelta = DEFAULT_GRACE
    ) -> None:
        super().__init__()
        self.db, self.bot_id, self.clock, self.grace = db, bot_id, clock, grace
        self._handled: set[int] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._to_store: list[tuple[int, str, asyncio.Future[None]]] = []
        self._storing: asyncio.Future[None] | None = None
        # Called with the updates `recover` queues again, before they are queued (bot/runtime.py).
        self.on_recovered: Callable[[list[Update]], Awaitable[None]] | None = None

    async def put(self, item: object) -> None:
        """Store an update, then queue it (other items, e.g. PTB's stop signal, go as they are)."""
        if isinstance(item, Update):
            try:
                await self._store(item)
            except Exception as exc:
                raise UpdateNotStored(exc) from exc
        await super().put(item)

    async def _store(self, update: Update) -> None:
        """Wait until the update is stored. Updates arriving while a write is under way are
        stored together by the next one (group commit: one transaction for many under load)."""
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._to_store.append((update.update_id, update.to_json(), stored))
        if self._storing is None or self._storing.done():
            self._storing = asyncio.ensure_future(self._store_waiting())
        await stored

    async def _store_waiting(self) -> None:
        while self._to_store:
            batch, self._to_store = self._to_store, []
            rows = [(update_id, payload) for update_id, payload, _ in batch]
            try:
                await self.db.run(
                    partial(store.store, bot_id=self.bot_id, updates=rows, now=self.clock.now())
                )
            except Exception as exc:
                for _, _, stored in batch:
                    if not stored.done():
                        stored.set_exception(exc)
            else:
                for _, _, stored in batch:
                    if not stored.done():
                        stored.set_result(None)

    def mark_handled(self, update: object) -> None:
        """The update's handlers are done: forget it at the next flush."""
        if isinstance(update, Update):
            self._handled.add(update.update_id)

    async def flush(self) -> int:
        """Forget the updates handled since the last flush."""
        done, self._handled = self._handled, set()
        if not done:
            return 0
        try:
            return await self.db.run(lambda session: store.handled(session, self.bot_id, done))
        except Exception:
            self._handled |= done  # the database is away: try again at the next flush
            raise

    async def recover(self, bot: Bot, *, grace: timedelta | None = None) -> int:
        """Queue again the updates stored longer than `grace` ago and never handled."""
        before = self.clock.now() - (self.grace if grace is None else grace)
        rows = await self.db.run(lambda session: store.waiting(session, self.bot_id, before))
        updates = [parse_update(json.loads(payload), bot) for _update_id, payload in rows]
        if updates and self.on_recovered is not None:
            try:
                await self.on_recovered(updates)
            except Exception:
                log.exception("inbox: could not mark the replies of updates queued again")
        for update in updates:
            await super().put(update)  # stored already
        if rows:
            log.info("queued again %d update(s) stored before and not handled", len(rows))
        return len(rows)

    async def purge(self) -> int:
        """Drop updates never handled within KEEP_FOR (housekeeping)."""
        before = self.clock.now() - KEEP_FOR
        return await self.db.run(lambda session: store.purge(session, before))

    def start_flushing(self) -> None:
        """Flush every FLUSH_EVERY seconds until `stop_flushing`."""
        if self._flusher is None:
            self._stop.clear()
            self._flusher = asyncio.create_task(self._flush_loop(), name="buurtstem-inbox")

    async def stop_flushing(self) -> None:
        """Stop the flusher after a last flush."""
        self._stop.set()
        if self._flusher is not None:
            task, self._flusher = self._flusher, None
            with contextlib.suppress(Exception):
                await task

    async def _flush_loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=FLUSH_EVERY)
            try:
                await self.flush()
            except Exception:
                log.exception("inbox: could not forget handled updates; trying again")
