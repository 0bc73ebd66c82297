"""Several instances on one PostgreSQL: concurrent updates of one resident, leader failover."""

from __future__ import annotations

import asyncio
import random
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from telegram import Update
from telegram.ext import Application

from benchmarks.instances import PSEUDONYM_KEY, Cluster, SurveyResident
from bot.app import build_application, build_services
from bot.settings import Settings
from sandbox.emulator import BotAPIEmulator, StoredMessage
from sandbox.server import ThreadedEmulatorServer
from storage import outbox as outbox_store
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Answer, OutboxMessage, ProcessedUpdate, Resident, Response
from storage.pseudonyms import pseudonym
from tests.conftest import TEST_KEY

pytestmark = pytest.mark.postgres
T = TypeVar("T")
BENCH_KEY = PSEUDONYM_KEY  # the pseudonym key of BotProcess instances


# ---- two Applications in two threads, each with its own event loop ------------------------


class AppThread:
    """A buurtstem Application on its own event loop in its own thread (a second process, nearly)."""

    def __init__(self, url: str, server: ThreadedEmulatorServer, emulator: BotAPIEmulator) -> None:
        settings = Settings(
            database_url=url,
            token=emulator.token,
            api_base_url=server.url,
            pseudonym_key=TEST_KEY,
        )
        self.db = Database(url)
        self.app: Application = build_application(build_services(settings, self.db))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.run(self.app.initialize())

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Start a coroutine on this app's loop."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on this app's loop and wait for it."""
        return self.submit(coro).result(60)

    def process(self, data: dict[str, Any]) -> Future[None]:
        """Hand an update (as Telegram sends it) to this app."""
        return self.submit(self.app.process_update(Update.de_json(data, self.app.bot)))

    def close(self) -> None:
        """Shut the app down and end the thread."""
        self.run(self.app.shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.db.dispose()


@pytest.fixture
def two_apps(
    postgres_url: str,
) -> Iterator[tuple[ThreadedEmulatorServer, BotAPIEmulator, AppThread, AppThread]]:
    """The emulator over HTTP and two Applications on one PostgreSQL database."""
    upgrade(postgres_url)
    emulator = BotAPIEmulator()
    with ThreadedEmulatorServer(emulator) as server:
        first = AppThread(postgres_url, server, emulator)
        second = AppThread(postgres_url, server, emulator)
        try:
            yield server, emulator, first, second
        finally:
            first.close()
            second.close()


def question_buttons(message: StoredMessage) -> list[str]:
    """Callback data of a question message's buttons."""
    return [b.callback_data or "" for row in message.buttons for b in row]


def test_one_residents_concurrent_updates_on_two_instances_stay_consistent(
    two_apps: tuple[ThreadedEmulatorServer, BotAPIEmulator, AppThread, AppThread],
    postgres_url: str,
) -> None:
    server, emulator, first, second = two_apps
    rng = random.Random(3)

    async def on_emulator(action: Any) -> Any:
        return action()

    def emu(action: Any) -> Any:
        """Run a call on the emulator's own loop (its state belongs to that thread)."""
        return server.run(on_emulator(action))

    user = emu(lambda: emulator.add_user("Yusuf"))

    def send(text: str) -> dict[str, Any]:
        return dict(emu(lambda: emulator.user_sends(user, text)))

    def tap(message: StoredMessage, data: str) -> dict[str, Any]:
        return dict(emu(lambda: emulator.user_taps(user, message, data=data)))

    def last_with(prefix: str) -> StoredMessage | None:
        def find() -> StoredMessage | None:
            for message in reversed(emulator.sent_to(user.id)):
                if any(d.startswith(prefix) for d in question_buttons(message)):
                    return message
            return None

        return emu(find)  # type: ignore[no-any-return]

    # Onboarding on the first instance only.
    first.process(send("/start")).result(30)
    consent = last_with("v1|c")
    assert consent is not None
    first.process(tap(consent, question_buttons(consent)[0])).result(30)
    language = last_with("v1|lc")
    assert language is not None
    first.process(tap(language, "v1|lc")).result(30)
    first.process(send("3563")).result(30)

    fired: list[int] = []
    allowed: dict[str, set[Any]] = {}
    rounds = 0
    while (message := last_with("v1|q|")) is not None:
        rounds += 1
        datas = [d for d in question_buttons(message) if d.startswith("v1|q|")]
        question_id = datas[0].split("|")[3]
        options = [d for d in datas if not d.rsplit("|", 1)[1].startswith("~")]
        done = next((d for d in datas if d.endswith("|~d")), None)
        if done is not None:  # multi: two different ticks at once, then two "done" at once
            # Not "none of these" (it refuses company, and the refused ticks would add up).
            options = [d for d in options if not d.endswith("|geen")]
            a, b = rng.sample(options, 2)
            ticks = [tap(message, a), tap(message, b)]
            futures = [first.process(ticks[0]), second.process(ticks[1])]
            for future in futures:
                future.result(30)
            updates = [tap(message, done), tap(message, done)]
            allowed[question_id] = {frozenset(x.rsplit("|", 1)[1] for x in (a, b))}
        else:
            a, b = rng.sample(options, 2) if len(options) >= 2 else ("", "")
            a = a or next(d for d in datas if d.endswith("|~s"))
            b = b or a
            updates = [tap(message, a), tap(message, b)]
            values = {x.rsplit("|", 1)[1] for x in (a, b)}
            allowed[question_id] = {int(v) if v.isdigit() else v for v in values} | {None}
        # The same resident's updates at the same moment on two instances, plus a repeat of
        # the first one on the second instance (Telegram delivers at least once).
        futures = [
            first.process(updates[0]),
            second.process(updates[1]),
            second.process(updates[0]),
        ]
        for future in futures:
            future.result(30)
        fired += [u["update_id"] for u in updates]
        assert rounds < 60, "the survey does not end"

    database = Database(postgres_url)
    try:
        with database.session() as session:
            resident = session.scalars(
                select(Resident).where(Resident.pseudonym == pseudonym(TEST_KEY, user.id))
            ).one()
            responses = session.scalars(
                select(Response).where(Response.resident_id == resident.id)
            ).all()
            assert len(responses) == 1
            response = responses[0]
            rows = session.scalars(select(Answer).where(Answer.response_id == response.id)).all()
            claimed = session.scalars(
                select(ProcessedUpdate.update_id).where(ProcessedUpdate.update_id.in_(fired))
            ).all()
    finally:
        database.dispose()
    assert response.status == "completed"
    stored = {row.question_id: row.value for row in rows}
    # One answer per question (never doubled), each one of the values tapped for it.
    assert len(rows) == len(stored)
    for question_id, value in stored.items():
        key = frozenset(value) if isinstance(value, list) else value
        assert key in allowed[question_id], (question_id, value, allowed[question_id])
    # The session state agrees with the answer rows: nothing half-applied.
    state_answers = dict((response.state or {}).get("answers") or {})
    assert state_answers == stored
    assert sorted(claimed) == sorted(set(fired))
    # Every question was asked once: no question message twice, no step skipped or repeated.
    numbers = Counter(
        int(m.group(1))
        for message in emu(lambda: emulator.sent_to(user.id))
        if (m := re.match(r"Vraag (\d+)(?: van \d+)?\n", message.visible_text))
    )
    assert set(numbers.values()) == {1}
    assert sorted(numbers) == list(range(1, len(numbers) + 1))


# ---- the big one: three webhook instances, the leader killed during an outbox run -------------


def outbox_rows(url: str) -> list[OutboxMessage]:
    """Every outbox row."""
    database = Database(url)
    try:
        with database.session() as session:
            return list(session.scalars(select(OutboxMessage)).all())
    finally:
        database.dispose()


def answers_of(url: str, telegram_id: int) -> tuple[str, dict[str, Any]]:
    """(response status, answers) of a resident of the webhook instances."""
    database = Database(url)
    try:
        with database.session() as session:
            resident = session.scalars(
                select(Resident).where(Resident.pseudonym == pseudonym(BENCH_KEY, telegram_id))
            ).one()
            response = session.scalars(
                select(Response).where(Response.resident_id == resident.id)
            ).one()
            rows = session.scalars(select(Answer).where(Answer.response_id == response.id))
            return response.status, {a.question_id: a.value for a in rows}
    finally:
        database.dispose()


@pytest.mark.slow
@pytest.mark.timeout(900)  # three bot processes start on a shared machine: give them time
async def test_three_instances_survive_the_leader_being_killed(postgres_url: str) -> None:
    emulator = BotAPIEmulator()
    messages = 300
    async with Cluster(emulator, postgres_url, 3) as cluster:
        leader = await cluster.leader()
        # A few hundred invitations, to people who started the bot.
        chats = [emulator.add_user(f"Genodigde {i}", started=True).id for i in range(messages)]
        database = Database(postgres_url)
        try:
            with database.session() as session:
                now = datetime.now(UTC)
                for i, chat in enumerate(chats):
                    outbox_store.enqueue(
                        session,
                        kind="invitation",
                        dedupe_key=f"invitation-{i}",
                        chat_id=chat,
                        method="sendMessage",
                        payload={"text": f"Doe mee met de buurtpeiling ({i})"},
                        now=now,
                    )
        finally:
            database.dispose()

        def outbox_delivered() -> int:
            return sum(1 for chat in chats if emulator.sent_to(chat))

        # Residents answer through the proxy (every instance) while the outbox is sent.
        rng = random.Random(11)
        people = [
            SurveyResident(emulator, emulator.add_user(f"Bewoner {i}"), random.Random(rng.random()))
            for i in range(6)
        ]
        surveys = asyncio.gather(*(p.onboard() for p in people))
        assert await emulator.wait_until(lambda: outbox_delivered() >= messages // 5, 60)
        killed_at = time.monotonic()
        leader.signal(signal.SIGKILL)
        assert await leader.wait_exit() == -signal.SIGKILL
        successor = await cluster.leader(timeout=30)
        takeover = time.monotonic() - killed_at
        assert successor is not leader
        await surveys
        await asyncio.gather(*(p.answer_survey() for p in people))

        async def outbox_final() -> bool:
            rows = await asyncio.to_thread(outbox_rows, postgres_url)
            return all(r.status in ("sent", "unknown", "failed") for r in rows)

        for _ in range(600):
            if await outbox_final():
                break
            await asyncio.sleep(0.1)
        rows = await asyncio.to_thread(outbox_rows, postgres_url)
        survivors = [bot for bot in cluster.bots if bot is not leader]
        for bot in survivors:
            bot.signal(signal.SIGTERM)
        codes = [await bot.wait_exit() for bot in survivors]

    got = {chat: len(emulator.sent_to(chat)) for chat in chats}
    status = Counter(r.status for r in rows)
    sent_chats = [r.chat_id for r in rows if r.status == "sent"]
    unknown_chats = [r.chat_id for r in rows if r.status == "unknown"]
    print(
        f"\ntakeover {takeover:.1f} s; outbox {dict(status)}; delivered {sum(got.values())} "
        f"of {messages}; repeated taps {sum(p.repeats for p in people)}; "
        f"spread {cluster.proxy.forwarded}"
    )
    assert codes == [0, 0]
    assert len(rows) == messages and status["failed"] == 0
    assert max(got.values()) == 1  # no message ever went out twice
    assert all(got[chat] == 1 for chat in sent_chats)  # every `sent` row arrived exactly once
    # Rows the killed leader had in flight are `unknown` (at most once: 0 or 1 arrived).
    assert len(unknown_chats) <= 8
    assert status["sent"] + len(unknown_chats) == messages
    assert takeover < 30
    # The residents lost nothing: what is stored is what they tapped.
    for person in people:
        status_, stored = await asyncio.to_thread(answers_of, postgres_url, person.user.id)
        assert status_ == "completed"
        assert stored == person.tapped
