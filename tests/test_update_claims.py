"""Repeats recognised by what Telegram promises: ids unique per bot, and only while they increase."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.settings import Settings
from sandbox.harness import BotHarness
from sandbox.runner import Sandbox
from storage.db import Database
from storage.models import ProcessedUpdate
from storage.residents import REDELIVERY_WINDOW, adopt_update_claims, claim_update
from tests.conftest import TEST_KEY


def test_a_repeat_within_the_window_is_refused_per_bot(db: Database, clock: Any) -> None:
    now = clock.now()
    with db.session() as session:
        assert claim_update(session, 111, 5, now)
    with db.session() as session:
        assert not claim_update(session, 111, 5, now + timedelta(hours=20))
        # Another bot (the bot moved to a new token) has its own ids.
        assert claim_update(session, 222, 5, now)


def test_an_id_claimed_before_the_window_starts_a_new_sequence(db: Database, clock: Any) -> None:
    # Telegram numbers updates anew, from a random id, after a week without updates.
    now = clock.now()
    with db.session() as session:
        assert claim_update(session, 111, 9, now)
    later = now + REDELIVERY_WINDOW + timedelta(minutes=1)
    with db.session() as session:
        assert claim_update(session, 111, 9, later)
    with db.session() as session:
        assert not claim_update(session, 111, 9, later)


def test_claims_from_before_bot_ids_are_adopted(db: Database, clock: Any) -> None:
    with db.session() as session:
        session.add(ProcessedUpdate(bot_id=0, update_id=7, processed_at=clock.now()))
    with db.session() as session:
        assert adopt_update_claims(session, 111) == 1
    with db.session() as session:
        assert not claim_update(session, 111, 7, clock.now())


async def test_a_repeat_is_logged_as_a_count_without_ids(
    make_services: Any, make_app: Any, sqlite_url: str, emulator: Any, caplog: Any
) -> None:
    services = make_services(sqlite_url)
    async with BotHarness(emulator, make_app(services)) as h:
        ada = h.user("Ada")
        await ada.send("/start")
        sent = len(ada.messages())
        caplog.clear()
        with caplog.at_level(logging.INFO):
            await ada.resend_last_update()
        assert len(ada.messages()) == sent
    lines = [r.getMessage() for r in caplog.records if "handled before" in r.getMessage()]
    assert len(lines) == 1
    update_id = str(ada.last_update["update_id"]) if ada.last_update else "?"
    assert str(ada.id) not in lines[0] and update_id not in lines[0]


async def test_the_sandbox_goes_on_numbering_updates_after_a_restart(tmp_path: Any) -> None:
    settings = Settings(sandbox_dir=str(tmp_path), pseudonym_key=TEST_KEY, _env_file=None)  # type: ignore[call-arg]

    async def start_and_wait(run: int) -> int:
        async with Sandbox(settings, port=0) as sandbox:
            emulator = sandbox.emulator
            user = next((u for u in emulator.users.values() if u.first_name == "Rita"), None)
            user = user or emulator.add_user("Rita", language_code="nl")
            before = len(emulator.sent_to(user.id))
            update = emulator.user_sends(user, "/start")
            assert update is not None
            answered = await emulator.wait_until(
                lambda: len(emulator.sent_to(user.id)) > before, 20, chat_id=user.id
            )
            assert answered, f"run {run}: the bot ignored /start"
            return int(update["update_id"])

    first = await start_and_wait(1)
    second = await start_and_wait(2)
    assert second > first
    # And after a crash, when the ids were not saved: the bot's own claims say how far they got.
    (tmp_path / "buurtpeiling.people.json").unlink(missing_ok=True)
    for path in tmp_path.glob("*.people.json"):
        path.unlink()
    third = await start_and_wait(3)
    assert third > second
    async with Sandbox(settings, port=0) as sandbox:
        assert sandbox.db is not None
        with sandbox.db.session() as session:
            ids = list(session.scalars(select(ProcessedUpdate.update_id)))
    assert len(ids) == len(set(ids))
