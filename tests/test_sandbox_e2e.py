"""Over real HTTP: `buurtstem run` as a subprocess polling the emulator; `buurtstem sandbox` itself."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from sandbox.emulator import BotAPIEmulator, SimUser, StoredMessage
from sandbox.server import EmulatorServer
from storage.db import Database
from storage.models import Answer, Response
from tests.conftest import TEST_KEY
from tests.test_sandbox import SURVEY_TAPS

pytestmark = pytest.mark.slow
BUURTSTEM = str(Path(sys.executable).with_name("buurtstem"))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUURTSTEM_")}
    env.update(extra)
    return env


class Resident:
    """A user of the emulator whose every step waits for the bot subprocess to answer."""

    def __init__(self, emulator: BotAPIEmulator, user: SimUser) -> None:
        self.emulator = emulator
        self.user = user

    def bot_messages(self) -> list[StoredMessage]:
        return self.emulator.sent_to(self.user.id) if self.user.id in self.emulator.chats else []

    def _state(self) -> list[tuple[int, str | None, str]]:
        return [(m.message_id, m.text, repr(m.reply_markup)) for m in self.bot_messages()]

    async def _settle(self, before: list[tuple[int, str | None, str]], done: Any) -> None:
        ok = await self.emulator.wait_until(
            lambda: self._state() != before and done(self.bot_messages()[-1]), timeout=30
        )
        assert ok, f"the bot did not answer; last: {self.bot_messages()[-1:]}"

    async def send(self, text: str, done: Any = lambda m: bool(m.buttons)) -> StoredMessage:
        before = self._state()
        self.emulator.user_sends(self.user, text)
        await self._settle(before, done)
        return self.bot_messages()[-1]

    async def tap(self, suffix: str, done: Any = lambda m: bool(m.buttons)) -> StoredMessage:
        before = self._state()
        message = self.bot_messages()[-1]
        data = next(
            b.callback_data
            for row in message.buttons
            for b in row
            if b.callback_data and b.callback_data.endswith(suffix)
        )
        self.emulator.user_taps(self.user, message, data=data)
        await self._settle(before, done)
        return self.bot_messages()[-1]


async def test_bot_subprocess_completes_a_survey_by_polling_the_emulator(tmp_path: Path) -> None:
    emulator = BotAPIEmulator()
    database_url = f"sqlite:///{tmp_path / 'bot.db'}"
    async with EmulatorServer(emulator, port=0) as server:
        bot = await asyncio.create_subprocess_exec(
            BUURTSTEM,
            "run",
            env=_env(
                BUURTSTEM_TOKEN=emulator.token,
                BUURTSTEM_API_BASE_URL=server.url,
                BUURTSTEM_DATABASE_URL=database_url,
                BUURTSTEM_PSEUDONYM_KEY=TEST_KEY,
            ),
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            # The bot is up once it long-polls getUpdates over HTTP.
            polling = await emulator.wait_until(lambda: bool(emulator.calls("getUpdates")), 60)
            assert polling, "buurtstem run never polled the emulator"
            anna = Resident(emulator, emulator.add_user("Anna", language_code="nl"))
            await anna.send("/start")
            await anna.tap(anna.bot_messages()[-1].buttons[0][0].callback_data or "")
            await anna.tap("v1|lc", done=lambda m: "postcode" in (m.text or "").lower())
            first = await anna.send("3563", done=lambda m: "Vraag 1\n" in (m.text or ""))
            for suffix in SURVEY_TAPS[:-1]:
                await anna.tap(suffix)
            thanks = await anna.tap(SURVEY_TAPS[-1], done=lambda m: "dank" in (m.text or ""))
            assert "dank" in (thanks.text or "").lower()
            assert emulator.message(anna.user.id, first.message_id).edits  # edited in place
        finally:
            bot.send_signal(signal.SIGINT)
            output, _ = await asyncio.wait_for(bot.communicate(), 30)
    assert "Traceback" not in output.decode(), output.decode()[-2000:]
    assert str(anna.user.id) not in output.decode()  # no Telegram ids in the bot's log
    db = Database(database_url)
    try:
        with db.session() as session:
            response = session.scalars(select(Response)).one()
            answers = {
                a.question_id: a.value
                for a in session.scalars(select(Answer).where(Answer.response_id == response.id))
            }
            assert response.status == "completed"
            assert answers["grade_liveability"] == 7 and answers["grade_safety"] == 6
            assert answers["nuisance_litter"] == "vaak" and answers["nuisance_dogs"] == "soms"
            assert answers["priority"] == "schoon" and answers["more_topics"] == ["geen"]
            assert "improve" not in answers  # skipped
    finally:
        db.dispose()


def test_sandbox_command_prints_its_address_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [BUURTSTEM, "sandbox", "--port", "0"],
        env=_env(BUURTSTEM_SANDBOX_DIR=str(tmp_path / "data")),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Sandbox ready: "):
                url = line.split(": ", 1)[1].strip()
                break
        assert url and url.startswith("http://127.0.0.1:") and not url.endswith(":0/"), lines
        # It names its own database as the --database-url other commands take (absolute).
        (database,) = [line for line in lines if line.startswith("Database: ")]
        data = (tmp_path / "data").resolve()
        assert database.startswith(f"Database: sqlite:///{data}/buurtpeiling-v")
        assert database.rstrip().endswith(".sqlite (the sandbox's own)")
        sandbox_url = database.split()[1]
        assert any(f"buurtstem round list --database-url {sandbox_url}" in x for x in lines)
        page = httpx.get(url, timeout=10)
        assert "buurtstem sandbox" in page.text
        state = httpx.get(url + "api/state", timeout=10).json()
        assert len(state["groups"]) == 3
    finally:
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    assert "Sandbox stopped." in rest
    assert "Traceback" not in errors
    assert list((tmp_path / "data").glob("buurtpeiling-*.sqlite"))
