"""A read-only database while a resident answers: one clear error, nothing half-written,
and the resident goes on once the fault is lifted.

How the fault is made (the database itself refuses; nothing is mocked):

- **read-only**: SQLite `PRAGMA query_only=ON`, PostgreSQL `default_transaction_read_only=on`
  (a hot standby or a database set read only behaves so), set on every connection the bot takes
  from its pool while the fault lasts. (chmod does not work here: the tests may run as root.)

A full disk: tests/adversarial/test_full_disk.py (the real bot on a small file system).

/health failing on a read-only database is tests/test_health.py's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import event, select

from sandbox.harness import BotHarness, UserHandle
from storage.db import Database
from storage.models import Answer, Response
from tests.test_resident_flow import onboard

QUESTION = "v1|q|"
LEAKY = ("Traceback", "SQL", "readonly", "read-only", "Error", "disk is full", "sqlite")


class DatabaseFault:
    """Makes the bot's own database refuse writes while `mode` is set."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.mode: str | None = None
        event.listen(db.engine, "checkout", self._checkout)

    def set(self, mode: str | None) -> None:
        self.mode = mode

    def remove(self) -> None:
        event.remove(self.db.engine, "checkout", self._checkout)

    def _checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        cursor = dbapi_connection.cursor()
        if self.db.is_postgres:
            value = "on" if self.mode == "read-only" else "off"
            cursor.execute(f"SET default_transaction_read_only = {value}")
            dbapi_connection.commit()  # applies from the next transaction on
        else:
            cursor.execute(f"PRAGMA query_only = {1 if self.mode == 'read-only' else 0}")
        cursor.close()


def stored(services: Any) -> tuple[dict[str, Any], list[Any]]:
    """Every answer, and every response's status and state: what a half write would change.
    Read on a connection of its own (the bot's refuse even to begin while the fault lasts)."""
    reader = Database(services.db.url)
    try:
        with reader.session() as session:
            answers = {a.question_id: a.value for a in session.scalars(select(Answer))}
            responses = [
                (r.status, dict(r.state or {}), r.question_message_id)
                for r in session.scalars(select(Response))
            ]
    finally:
        reader.dispose()
    return answers, responses


def options(user: UserHandle) -> list[str]:
    """Callback data of the answer options on the newest question (not back/skip/done)."""
    for message in reversed(user.messages()):
        datas = [b.callback_data or "" for row in message.buttons for b in row]
        questions = [d for d in datas if d.startswith(QUESTION)]
        if questions:
            return [d for d in questions if not d.rsplit("|", 1)[1].startswith("~")]
    return []


def current_question_id(user: UserHandle) -> str | None:
    for message in reversed(user.messages()):
        for row in message.buttons:
            for button in row:
                data = button.callback_data or ""
                if data.startswith(QUESTION):
                    return data.split("|")[3]
    return None


async def answer_until(user: UserHandle, question_id: str | None) -> None:
    """Tap the first option of each question until `question_id` is asked (None: the end)."""
    for _ in range(60):
        current = current_question_id(user)
        if current == question_id:
            return
        choices = options(user)
        if not choices:  # the free-text question
            await user.send("Meer bankjes in het park")
            continue
        await user.tap(data=choices[0])
        if current_question_id(user) == "more_topics":
            await user.tap(data=next(d for d in options(user) if d.endswith("|geen")))
            await user.tap(data=f"v1|q|{choices[0].split('|')[2]}|more_topics|~d")
    raise AssertionError(f"never asked {question_id}")


def clear_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_a_read_only_database_refuses_an_answer_whole_and_the_resident_goes_on(
    services: Any, make_app: Any, emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fault = DatabaseFault(services.db)
    try:
        async with BotHarness(emulator, make_app(services)) as h:
            ada = h.user("Ada")
            await onboard(h, ada)
            await ada.tap(data=next(d for d in options(ada) if d.endswith("|7")))
            question = ada.last_message()
            before = stored(services)
            sent = len(ada.messages())
            fault.set("read-only")
            caplog.clear()
            with caplog.at_level(logging.INFO):
                await ada.tap_on(question, data=next(d for d in options(ada) if d.endswith("|6")))
            errors = clear_errors(caplog)
            # Nothing half-written: no answer, no change of the response's state.
            assert stored(services) == before
            # One clear error for the one update, naming neither the resident nor the answer.
            assert len([e for e in errors if "error handling" in e]) == 1, errors
            assert all(str(ada.id) not in e for e in errors)
            # No reply with internal details; the button stopped spinning.
            for message in ada.messages()[sent:]:
                assert not any(word in message.visible_text for word in LEAKY)
            assert ada.last_callback_answer is not None
            # The fault is lifted: the same tap again is taken, and the resident finishes.
            fault.set(None)
            await ada.tap_on(question, data=next(d for d in options(ada) if d.endswith("|6")))
            assert current_question_id(ada) == "trend"
            await answer_until(ada, None)
            assert "dank" in ada.last_message().visible_text.lower()
    finally:
        fault.remove()
    answers, responses = stored(services)
    assert answers["grade_liveability"] == 7 and answers["grade_safety"] == 6
    assert [status for status, _state, _id in responses] == ["completed"]


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_polling_goes_on_after_the_database_refused_to_store_an_update(
    services: Any, make_app: Any, emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """In polling mode each fetched update is stored (the inbox) before it is confirmed. While
    the database refuses, storing fails: the update must stay unconfirmed, and polling must go
    on, so that once the fault is lifted the update is handled."""
    fault = DatabaseFault(services.db)
    try:
        async with BotHarness(emulator, make_app(services), mode="polling", poll_timeout=1) as h:
            cas = h.user("Cas")
            await onboard(h, cas)
            question = cas.last_message()
            data = next(d for d in options(cas) if d.endswith("|7"))
            before = stored(services)
            fault.set("read-only")
            with caplog.at_level(logging.INFO):
                update = emulator.user_taps(cas.user, question, data=data)
                # The bot fetches it and cannot store it: not confirmed, nothing written.
                await asyncio.sleep(1.5)
            assert not emulator.is_confirmed(update["update_id"])
            assert stored(services) == before
            errors = clear_errors(caplog)
            assert errors, "the refused write was not reported"
            assert all(str(cas.id) not in e for e in errors)
            fault.set(None)
            # Polling goes on: the same update is fetched again, stored and handled.
            assert await emulator.wait_until(
                lambda: current_question_id(cas) == "grade_safety", 15
            ), "the update was never handled after the fault was lifted"
    finally:
        fault.remove()
    answers, _responses = stored(services)
    assert answers["grade_liveability"] == 7
