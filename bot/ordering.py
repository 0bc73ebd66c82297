"""Updates of different chats at the same time, each chat's updates strictly in order.

PTB handles one update at a time by default. With Telegram about 100 ms away every update waits
for its Bot API calls, so one slow chat would hold up every other resident. This processor lets
up to `limit` updates run at once, but never two of one chat: a double tap, or an answer and
/back sent in one burst, are handled one after the other in the order Telegram sent them.

Ordering rests on asyncio's fairness: PTB starts one task per update in arrival order, and
asyncio's locks and semaphores hand themselves out first come, first served.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

# Updates admitted at once (running or waiting for their chat) per update allowed to run; beyond
# that PTB's own semaphore holds them, still in arrival order.
BACKLOG_FACTOR = 8


def chat_key(update: object) -> tuple[str, int] | None:
    """What orders an update: its chat, else its user; None for updates of neither."""
    if not isinstance(update, Update):
        return None
    chat = update.effective_chat
    if chat is not None:
        return ("chat", chat.id)
    user = update.effective_user
    if user is not None:
        return ("user", user.id)
    return None


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Runs up to `limit` updates concurrently; one chat's updates one at a time, in order."""

    def __init__(self, limit: int) -> None:
        super().__init__(max_concurrent_updates=max(2, limit * BACKLOG_FACTOR))
        self.limit = limit
        self._running = asyncio.BoundedSemaphore(limit)
        self._chats: dict[tuple[str, int], asyncio.Lock] = {}
        self._queued: dict[tuple[str, int], int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Wait for the chat's earlier updates, then for a free slot, then handle the update."""
        key = chat_key(update)
        if key is None:
            async with self._running:
                await coroutine
            return
        lock = self._chats.get(key)
        if lock is None:
            lock = self._chats[key] = asyncio.Lock()
        self._queued[key] = self._queued.get(key, 0) + 1
        try:
            async with lock, self._running:
                await coroutine
        finally:
            self._queued[key] -= 1
            if not self._queued[key]:
                # Nobody else waits for this chat: forget it, memory stays bounded.
                del self._queued[key]
                del self._chats[key]

    @property
    def chats_waiting(self) -> int:
        """Chats with an update running or waiting (for metrics and tests)."""
        return len(self._chats)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to free: PTB waits for running updates before it shuts down."""
