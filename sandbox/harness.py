"""Test helpers: simulated users and groups that talk to a real PTB Application via the emulator."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from telegram import Update
from telegram.ext import Application, ContextTypes

from sandbox.emulator import (
    JSON,
    BotAPIEmulator,
    CallbackQueryRecord,
    SimChat,
    SimUser,
    StoredMessage,
)


class HarnessError(AssertionError):
    """The bot did not finish handling an update in time, or a handler raised."""


@dataclass
class CallbackAnswer:
    """What the user saw after a tap: the toast or alert from answerCallbackQuery."""

    text: str | None
    show_alert: bool
    url: str | None


class BotHarness:
    """Runs a PTB Application against an emulator and feeds it simulated users' actions.

    mode="process": each update goes through `app.process_update` (PTB's real dispatch) and
    the call returns when the handlers, and tasks they started, are done.
    mode="queue": each update is put on `app.update_queue`, as PTB's webhook server does, so it
    goes through the app's update processor (concurrency, per-chat order); the call returns
    when the queue is drained. `deliver_burst` puts several at once.
    mode="polling": the app's own Updater long-polls getUpdates; a call returns once the
    emulator saw the update confirmed (offset moved past it), the update queue is drained
    and handler tasks are done.
    """

    def __init__(
        self,
        emulator: BotAPIEmulator,
        app: Application[Any, Any, Any, Any, Any, Any],
        *,
        mode: str = "process",
        timeout: float = 10.0,
        poll_timeout: int = 5,
        raise_errors: bool | None = None,
    ) -> None:
        if mode not in ("process", "polling", "queue"):
            raise ValueError("mode must be 'process', 'queue' or 'polling'")
        self.emulator = emulator
        self.app = app
        self.mode = mode
        self.timeout = timeout
        self.poll_timeout = poll_timeout
        # By default, handler exceptions fail the test unless the app has its own error handler.
        self.raise_errors = raise_errors
        self.errors: list[BaseException] = []
        self.delivered = 0
        self._last_update: dict[int, JSON] = {}

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> BotHarness:
        if self.raise_errors is None:
            self.raise_errors = not self.app.error_handlers
        self.app.add_error_handler(self._record_error)
        await self.app.initialize()
        if self.mode == "polling":
            assert self.app.updater is not None, "polling mode needs an Application with an Updater"
            await self.app.updater.start_polling(poll_interval=0, timeout=self.poll_timeout)
        await self.app.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()
        self.app.remove_error_handler(self._record_error)

    async def _record_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if context.error is not None:
            self.errors.append(context.error)

    # ------------------------------------------------------------------ world

    def user(
        self,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "nl",
        user_id: int | None = None,
    ) -> UserHandle:
        """A simulated user; their private chat opens when they first write."""
        sim = self.emulator.add_user(
            first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
            user_id=user_id,
        )
        return UserHandle(self, sim)

    def group(
        self,
        title: str,
        *,
        type: str = "group",
        members: tuple[UserHandle, ...] = (),
        admin: bool = False,
    ) -> GroupHandle:
        """A group with the bot already in it (no my_chat_member update; see add_group)."""
        chat = self.emulator.add_group(
            title,
            type=type,
            members=[m.user for m in members],
            bot_status="administrator" if admin else "member",
        )
        return GroupHandle(self, chat)

    async def add_group(
        self, title: str, *, by: UserHandle, type: str = "group", admin: bool = False
    ) -> GroupHandle:
        """A new group that `by` adds the bot to (my_chat_member + new_chat_members updates)."""
        chat = self.emulator.add_group(title, type=type, members=[by.user], bot_status="left")
        group = GroupHandle(self, chat)
        await group.add_bot(by, admin=admin)
        return group

    # ------------------------------------------------------------------ delivery

    async def deliver(self, update: JSON | None) -> None:
        """Hand one queued update to the bot and wait until it is fully handled."""
        if update is None:
            return
        update_id = int(update["update_id"])
        before = set(self._app_tasks())
        errors_before = len(self.errors)
        if self.mode == "process":
            self.emulator.confirm(update_id)
            await self.app.process_update(Update.de_json(update, self.app.bot))
        elif self.mode == "queue":
            self.emulator.confirm(update_id)
            await self.app.update_queue.put(Update.de_json(update, self.app.bot))
            await self._wait(self.app.update_queue.join(), "the update queue to drain")
        else:
            confirmed = await self.emulator.wait_until(
                lambda: self.emulator.is_confirmed(update_id), self.timeout
            )
            if not confirmed:
                raise HarnessError(f"the app did not fetch update {update_id} by polling")
            await self._wait(self.app.update_queue.join(), "the update queue to drain")
        await self._wait_tasks(before)
        self.delivered += 1
        if self.raise_errors and len(self.errors) > errors_before:
            error = self.errors[errors_before]
            raise HarnessError(f"a handler raised {error!r}") from error

    async def deliver_burst(self, updates: list[JSON | None]) -> None:
        """Hand several updates to the bot at once (mode="queue"), wait until all are handled.

        They arrive in the given order, as Telegram delivers them; the app's update processor
        decides what runs concurrently.
        """
        if self.mode != "queue":
            raise ValueError("deliver_burst needs mode='queue'")
        errors_before = len(self.errors)
        for update in updates:
            if update is None:
                continue
            self.emulator.confirm(int(update["update_id"]))
            await self.app.update_queue.put(Update.de_json(update, self.app.bot))
        await self._wait(self.app.update_queue.join(), "the update queue to drain")
        self.delivered += sum(1 for update in updates if update is not None)
        if self.raise_errors and len(self.errors) > errors_before:
            error = self.errors[errors_before]
            raise HarnessError(f"a handler raised {error!r}") from error

    async def deliver_all(self, updates: list[JSON]) -> None:
        """Deliver several updates in order."""
        for update in updates:
            await self.deliver(update)

    async def redeliver(self, update: JSON) -> None:
        """Deliver the same update (same update_id) once more, as Telegram may."""
        self.emulator.redeliver(update)
        await self.deliver(update)

    def _app_tasks(self) -> set[asyncio.Task[Any]]:
        # PTB keeps the tasks it starts for non-blocking handlers in a private set.
        tasks: set[asyncio.Task[Any]] = getattr(self.app, "_Application__create_task_tasks", set())
        return {t for t in tasks if not t.done()}

    async def _wait_tasks(self, before: set[asyncio.Task[Any]]) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            new = [t for t in self._app_tasks() if t not in before]
            if not new:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HarnessError(f"{len(new)} handler task(s) still running after timeout")
            await asyncio.wait(new, timeout=remaining)

    async def _wait(self, awaitable: Any, what: str) -> None:
        try:
            await asyncio.wait_for(awaitable, self.timeout)
        except TimeoutError as exc:
            raise HarnessError(f"timed out waiting for {what}") from exc


class UserHandle:
    """A simulated resident or staff member in a private chat with the bot."""

    def __init__(self, harness: BotHarness, user: SimUser) -> None:
        self.harness = harness
        self.user = user
        self.last_update: JSON | None = None

    @property
    def id(self) -> int:
        """Telegram user id."""
        return self.user.id

    @property
    def chat_id(self) -> int:
        """Id of the private chat with the bot (equal to the user id, as in Telegram)."""
        return self.user.id

    @property
    def emulator(self) -> BotAPIEmulator:
        return self.harness.emulator

    async def _deliver(self, update: JSON | None) -> None:
        if update is not None:
            self.last_update = update
        await self.harness.deliver(update)

    def _own_last(self, chat_id: int) -> StoredMessage:
        messages = self.emulator.messages_by_chat[chat_id].values()
        return next(m for m in reversed(messages) if m.sender_id == self.id and not m.from_bot)

    async def send(self, text: str, *, reply_to: StoredMessage | None = None) -> StoredMessage:
        """Write a text message to the bot; returns after the bot handled it."""
        update = self.emulator.user_sends(self.user, text, reply_to=reply_to)
        await self._deliver(update)
        return self._own_last(self.chat_id)

    async def send_content(self, content: JSON, caption: str | None = None) -> StoredMessage:
        """Send a non-text message built by the emulator's *_content helpers."""
        update = self.emulator.user_sends(self.user, caption, content=content)
        await self._deliver(update)
        return self._own_last(self.chat_id)

    async def send_sticker(self, emoji: str = "👍") -> StoredMessage:
        """Send a sticker."""
        return await self.send_content(self.emulator.sticker_content(emoji))

    async def send_photo(self, data: bytes, caption: str | None = None) -> StoredMessage:
        """Send a photo (PNG/JPEG/GIF bytes)."""
        return await self.send_content(self.emulator.photo_content(data), caption)

    async def send_voice(self, duration: int = 3) -> StoredMessage:
        """Send a voice note."""
        return await self.send_content(self.emulator.voice_content(duration))

    async def send_location(self, latitude: float, longitude: float) -> StoredMessage:
        """Share a location."""
        return await self.send_content(self.emulator.location_content(latitude, longitude))

    async def send_document(self, data: bytes, filename: str) -> StoredMessage:
        """Send a file."""
        return await self.send_content(self.emulator.document_content(data, filename))

    async def edit(self, message: StoredMessage, text: str) -> None:
        """Edit one of this user's messages (edited_message update)."""
        await self._deliver(self.emulator.user_edits(self.user, message, text))

    async def tap(
        self, label: str | None = None, *, data: str | None = None
    ) -> CallbackQueryRecord:
        """Tap a button (by label or callback data) on the newest bot message that has it."""
        for message in reversed(self.messages()):
            if message.find_button(label, data) is not None:
                return await self.tap_on(message, label, data=data)
        raise LookupError(f"no message in chat {self.chat_id} has a button {label or data!r}")

    async def tap_on(
        self, message: StoredMessage, label: str | None = None, *, data: str | None = None
    ) -> CallbackQueryRecord:
        """Tap a button on a given (possibly old) message."""
        update = self.emulator.user_taps(self.user, message, label=label, data=data)
        await self._deliver(update)
        return self.emulator.callback_queries[update["callback_query"]["id"]]

    @property
    def last_callback_answer(self) -> CallbackAnswer | None:
        """The bot's answer to this user's newest tap (None if it was not answered)."""
        mine = [q for q in self.emulator.callback_queries.values() if q.user_id == self.id]
        if not mine or not mine[-1].answered:
            return None
        query = mine[-1]
        return CallbackAnswer(query.answer_text, query.show_alert, query.url)

    def messages(self) -> list[StoredMessage]:
        """Everything the bot sent this user (edits applied, deleted ones left out)."""
        return self.emulator.sent_to(self.chat_id)

    def last_message(self) -> StoredMessage:
        """The newest bot message in the private chat (AssertionError if there is none)."""
        messages = self.emulator.messages_by_chat.get(self.chat_id, {}).values()
        for message in reversed(messages):
            if message.from_bot and not message.deleted:
                return message
        raise AssertionError(f"the bot sent nothing to {self.user.first_name}")

    async def block(self) -> None:
        """Block the bot (later sends get 403; the bot gets my_chat_member)."""
        await self._deliver(self.emulator.block(self.user))

    async def unblock(self) -> None:
        """Unblock the bot again."""
        await self._deliver(self.emulator.unblock(self.user))

    async def resend_last_update(self) -> None:
        """Telegram delivers this user's latest update a second time (same update_id)."""
        if self.last_update is None:
            raise LookupError("this user has not caused an update yet")
        await self.harness.redeliver(self.last_update)


class GroupHandle:
    """A simulated group or supergroup (an alliance chat)."""

    def __init__(self, harness: BotHarness, chat: SimChat) -> None:
        self.harness = harness
        self.chat = chat

    @property
    def chat_id(self) -> int:
        """Group chat id (negative, as in Telegram)."""
        return self.chat.id

    @property
    def title(self) -> str:
        return self.chat.title or ""

    async def send(
        self, user: UserHandle, text: str, *, reply_to: StoredMessage | None = None
    ) -> StoredMessage:
        """`user` writes in the group; the bot sees it only as Telegram's privacy mode allows."""
        emulator = self.harness.emulator
        update = emulator.user_sends(user.user, text, chat=self.chat, reply_to=reply_to)
        if update is not None:
            user.last_update = update
        await self.harness.deliver(update)
        return emulator.messages(self.chat_id)[-1]

    async def tap(
        self, user: UserHandle, label: str | None = None, *, data: str | None = None
    ) -> CallbackQueryRecord:
        """`user` taps a button on the newest bot message in the group that has it."""
        for message in reversed(self.messages()):
            if message.find_button(label, data) is not None:
                update = self.harness.emulator.user_taps(user.user, message, label=label, data=data)
                user.last_update = update
                await self.harness.deliver(update)
                return self.harness.emulator.callback_queries[update["callback_query"]["id"]]
        raise LookupError(f"no message in group {self.title!r} has a button {label or data!r}")

    async def add_bot(self, by: UserHandle, *, admin: bool = False) -> None:
        """`by` adds the bot to this group."""
        updates = self.harness.emulator.add_bot_to_group(self.chat, by.user, as_admin=admin)
        await self.harness.deliver_all(updates)

    async def remove_bot(self, by: UserHandle) -> None:
        """`by` removes the bot from this group."""
        await self.harness.deliver(self.harness.emulator.remove_bot_from_group(self.chat, by.user))

    def messages(self) -> list[StoredMessage]:
        """Everything the bot sent to this group."""
        return self.harness.emulator.sent_to(self.chat_id)

    def last_message(self) -> StoredMessage:
        """The newest bot message in the group."""
        messages = self.messages()
        if not messages:
            raise AssertionError(f"the bot sent nothing to {self.title!r}")
        return messages[-1]
