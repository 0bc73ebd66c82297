"""Shared tools of the fuzz tests: one real Application across hypothesis examples, forged
updates, the four checks every example ends with, and a resident who finishes from anywhere.

Hypothesis cannot drive an async test, so a test is synchronous: `Session` runs its own event
loop, enters the BotHarness once and runs each example's coroutine on that loop. Every example
uses fresh users, so the examples share the Application and the database without meeting.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select

from sandbox.emulator import JSON, CallbackQueryRecord, SimChat, StoredMessage
from sandbox.harness import BotHarness, UserHandle
from storage.models import Alliance, Answer, Resident, Response
from storage.pseudonyms import pseudonym
from tests.conftest import TEST_KEY

# Examples per test: few in ./test; BUURTSTEM_FUZZ_EXAMPLES=500 for a longer search.
EXAMPLES = int(os.environ.get("BUURTSTEM_FUZZ_EXAMPLES", "12"))

# What a reply must never show: a traceback, an exception's name, SQL, a file path.
LEAK = re.compile(
    r"Traceback|[A-Za-z]+(?:Error|Exception)\b|\bError\b|sqlalchemy|psycopg|sqlite3?\b"
    r"|\bSELECT\b|\bINSERT\b|\bUPDATE \w+ SET\b|File \"|\w+\.py\b|/(?:work|home|usr|tmp)/"
)
SUSPICIOUS_LOGGERS = ("handlers", "usecases", "bot", "storage", "telegram")


class LogWatch(logging.Handler):
    """Records ERROR lines, and WARNING lines of replies that did not arrive (a malformed one)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.ERROR or "not delivered" in message:
            self.lines.append(f"{record.levelname} {record.name}: {message}")


class Session:
    """A BotHarness on its own event loop, shared by the examples of one test."""

    def __init__(self, harness: BotHarness, loop: asyncio.AbstractEventLoop, services: Any):
        self.h = harness
        self.loop = loop
        self.services = services
        self.logs = LogWatch()
        self._names = itertools.count(1)
        self._queries = itertools.count(1)

    @property
    def emulator(self) -> Any:
        return self.h.emulator

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run one example's coroutine on the session's loop."""
        return self.loop.run_until_complete(coroutine)

    def user(self, language_code: str | None = "nl") -> UserHandle:
        """A fresh resident (never seen by the bot)."""
        return self.h.user(f"Fuzz{next(self._names)}", language_code=language_code)

    # ------------------------------------------------------------------ forged updates

    async def send(
        self,
        user: UserHandle,
        text: str,
        content: JSON | None = None,
        *,
        chat: SimChat | None = None,
    ) -> JSON | None:
        """`user` writes `text` (a caption with `content`) in their private chat or `chat`;
        unlike UserHandle.send, the text may hold what only a forged update can: lone
        surrogates (JSON's "\\ud800"), which the emulator's own bookkeeping cannot encode.
        None when the bot does not see the message (privacy mode in a group)."""
        update = self.emulator.user_sends(user.user, placeholder(text), chat=chat, content=content)
        if update is None:
            return None
        return await self._deliver_as(user, update, "message", text, caption=content is not None)

    async def edit(self, user: UserHandle, message: StoredMessage, text: str) -> JSON:
        """`user` edits `message` to `text` (may hold lone surrogates, as in `send`)."""
        update = self.emulator.user_edits(user.user, message, placeholder(text))
        return await self._deliver_as(user, update, "edited_message", text)

    async def _deliver_as(
        self, user: UserHandle, update: JSON | None, kind: str, text: str, caption: bool = False
    ) -> JSON:
        assert update is not None
        update[kind]["caption" if caption else "text"] = text
        user.last_update = update
        await self.h.deliver(update)
        return update

    async def deliver_raw(self, body: JSON) -> JSON:
        """Queue and deliver an update as given (an update_id is added)."""
        update_id = self.emulator.push_raw_update(body)
        update = next(u for u in reversed(self.emulator.updates_log) if u["update_id"] == update_id)
        await self.h.deliver(update)
        return dict(update)

    async def tap_data(
        self,
        user: UserHandle,
        data: str,
        message: StoredMessage | None = None,
        *,
        chat: SimChat | None = None,
    ) -> CallbackQueryRecord:
        """`user` sends a callback query with any data, on `message` (default: the newest bot
        message in their chat), as a forged webhook call or an old client might."""
        if message is None:
            messages = self.emulator.sent_to(chat.id if chat else user.chat_id)
            message = messages[-1]
        target = self.emulator.chats[message.chat_id]
        query_id = str(9_000_000_000_000_000_000 + next(self._queries))
        self.emulator.callback_queries[query_id] = CallbackQueryRecord(
            id=query_id,
            user_id=user.id,
            chat_id=target.id,
            message_id=message.message_id,
            data=data,
            created=self.emulator.clock(),
        )
        query = {
            "id": query_id,
            "from": user.user.to_api(),
            "message": self.emulator.message_json(message),
            "chat_instance": target.chat_instance,
            "data": data,
        }
        update = await self.deliver_raw({"callback_query": query})
        user.last_update = update
        return self.emulator.callback_queries[query_id]

    async def inline_tap(self, user: UserHandle, data: str) -> None:
        """A callback query from an inline message (no chat at all)."""
        query_id = str(8_000_000_000_000_000_000 + next(self._queries))
        self.emulator.callback_queries[query_id] = CallbackQueryRecord(
            id=query_id,
            user_id=user.id,
            chat_id=0,
            message_id=0,
            data=data,
            created=self.emulator.clock(),
        )
        query = {
            "id": query_id,
            "from": user.user.to_api(),
            "inline_message_id": "AAAAAFuzzInline",
            "chat_instance": "-1",
            "data": data,
        }
        await self.deliver_raw({"callback_query": query})

    # ------------------------------------------------------------------ checks

    def check(self, chats: list[int], inputs: list[str]) -> None:
        """No crash, no ERROR line, no reply showing internals in `chats` (or in any toast)."""
        assert not self.h.errors, f"handler errors: {self.h.errors!r}"
        assert not self.logs.lines, f"log lines: {self.logs.lines}"
        shown = [m.visible_text for chat in chats for m in self.emulator.sent_to(chat)]
        shown += [
            q.answer_text or "" for q in self.emulator.callback_queries.values() if q.answered
        ]
        for text in shown:
            for match in LEAK.finditer(text):
                if not any(match.group(0) in given for given in inputs):
                    raise AssertionError(f"a reply shows {match.group(0)!r}: {text[:300]!r}")

    # ------------------------------------------------------------------ stored state

    def count(self, model: Any, *where: Any) -> int:
        with self.services.db.session() as session:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    def resident_id(self, user: UserHandle) -> int | None:
        with self.services.db.session() as session:
            key = pseudonym(TEST_KEY, user.id)
            return session.scalar(select(Resident.id).where(Resident.pseudonym == key))

    def answers(self, user: UserHandle) -> dict[tuple[int, str, str | None], Any]:
        """The user's stored answers: (response, question, item) -> value."""
        resident = self.resident_id(user)
        if resident is None:
            return {}
        with self.services.db.session() as session:
            rows = session.execute(
                select(Answer.response_id, Answer.question_id, Answer.item_code, Answer.value)
                .join(Response, Response.id == Answer.response_id)
                .where(Response.resident_id == resident)
            ).all()
        return {(r, q, i): v for r, q, i, v in rows}

    def completed(self, user: UserHandle) -> bool:
        resident = self.resident_id(user)
        if resident is None:
            return False
        return (
            self.count(Response, Response.resident_id == resident, Response.status == "completed")
            > 0
        )

    def totals(self) -> tuple[int, int, int, int]:
        """Residents, responses, answers and alliances in the whole database."""
        return (
            self.count(Resident),
            self.count(Response),
            self.count(Answer),
            self.count(Alliance),
        )


@contextmanager
def session(services: Any, make_app: Any, emulator: Any) -> Iterator[Session]:
    """One Application on the emulator for a whole test; its harness on a loop of its own."""
    loop = asyncio.new_event_loop()
    harness = BotHarness(emulator, make_app(services))
    loop.run_until_complete(harness.__aenter__())
    s = Session(harness, loop, services)
    root = logging.getLogger()
    root.addHandler(s.logs)
    try:
        yield s
    finally:
        root.removeHandler(s.logs)
        try:
            loop.run_until_complete(harness.__aexit__(None, None, None))
        finally:
            loop.close()


# ---------------------------------------------------------------------- journey helpers


def placeholder(text: str) -> str:
    """`text` with each lone surrogate as "?" (one UTF-16 unit each: entities stay right)."""
    return "".join("?" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def datas(message: StoredMessage) -> list[str]:
    """The callback data of a message's buttons, in order."""
    return [b.callback_data for row in message.buttons for b in row if b.callback_data]


def question_buttons(message: StoredMessage) -> list[str]:
    return [d for d in datas(message) if d.startswith("v1|q|")]


async def consent(user: UserHandle) -> None:
    """/start and yes."""
    await user.send("/start")
    consent_data = next(d for d in datas(user.last_message()) if d.startswith("v1|c|"))
    await user.tap(data=consent_data)


async def onboard(user: UserHandle, postcode: str = "3563") -> None:
    """Consent, keep the language, give a postcode: the first question is shown."""
    await consent(user)
    await user.tap(data="v1|lc")
    await user.send(postcode)


async def answer_current(user: UserHandle) -> None:
    """Answer the question shown last with its first option (a text for a text question)."""
    message = user.last_message()
    buttons = question_buttons(message)
    options = [d for d in buttons if not d.rsplit("|", 1)[1].startswith("~")]
    if any(d.endswith("|~s") for d in buttons) and not options:
        await user.send("Meer groen en bankjes in het park")
    elif any(d.endswith("|~d") for d in buttons):
        await user.tap(data=options[0])
        await user.tap(data=next(d for d in buttons if d.endswith("|~d")))
    elif options:
        await user.tap(data=options[0])
    else:
        await user.send("Meer groen en bankjes in het park")


async def finish(s: Session, user: UserHandle, limit: int = 80) -> None:
    """From wherever the user is (no consent, declined, mid-onboarding, mid-survey, stopped),
    go on until their response is completed; fails with the chat's transcript otherwise."""
    for _ in range(limit):
        if s.completed(user):
            return
        messages = user.messages()
        if not messages:
            await user.send("/start")
            continue
        last = messages[-1]
        kinds = datas(last)
        if any(d.startswith("v1|c|") for d in kinds):
            await user.tap_on(last, data=next(d for d in kinds if d.startswith("v1|c|")))
        elif "v1|lx" in kinds:
            await user.tap_on(last, data="v1|lx")
        elif "v1|lc" in kinds:
            await user.tap_on(last, data="v1|lc")
        elif "v1|ak" in kinds:
            await user.tap_on(last, data="v1|ak")
        elif "v1|f|n" in kinds:
            await user.tap_on(last, data="v1|f|n")
        elif any(d.startswith("v1|s|") for d in kinds):
            await user.tap_on(last, data=next(d for d in kinds if d.startswith("v1|s|")))
        elif any(d.startswith("v1|n|") for d in kinds):
            await user.tap_on(last, data=next(d for d in kinds if d.startswith("v1|n|")))
        elif any(d.startswith("v1|m|") for d in kinds):
            await user.send("3563")
        elif question_buttons(last):
            await answer_current(user)
        else:
            await user.send("/start")
    transcript = "\n---\n".join(m.visible_text[:200] for m in user.messages()[-8:])
    raise AssertionError(f"{user.user.first_name} could not finish the survey:\n{transcript}")


# Where a fresh user can be brought before an example: not yet started, said no, at the
# language, at the postcode, at the first or fourth question, at the free text, done.
STAGES = [
    "new",
    "declined",
    "language",
    "area",
    "question",
    "later question",
    "text question",
    "done",
]


async def bring_to(s: Session, user: UserHandle, stage: str) -> None:
    """A fresh user at a stage of the journey (one of STAGES)."""
    if stage == "new":
        return
    if stage == "declined":
        await user.send("/start")
        await user.tap(data=next(d for d in datas(user.last_message()) if d.startswith("v1|cn")))
        return
    await consent(user)
    if stage == "language":
        return
    await user.tap(data="v1|lc")
    if stage == "area":
        return
    await user.send("3563")
    if stage == "question":
        return
    if stage == "later question":
        for _ in range(3):
            await answer_current(user)
        return
    for _ in range(40):
        buttons = question_buttons(user.last_message())
        options = [d for d in buttons if not d.rsplit("|", 1)[1].startswith("~")]
        if stage == "text question" and not options and any(d.endswith("|~s") for d in buttons):
            return
        if stage == "done" and s.completed(user):
            return
        await answer_current(user)
    raise AssertionError(f"{user.user.first_name} never reached {stage!r}")
