"""A full disk while a resident answers: one clear error, nothing half-written, and the resident
goes on once there is room again.

The real bot (`buurtstem run`, polling, SQLite) runs as a subprocess against the HTTP emulator,
its database on a small file system of its own (a 16 MB tmpfs, mounted for the test; skipped
where mounting is not allowed). The disk fills up with a file of zeros written until ENOSPC, and
is made free again by deleting it: every commit in between fails with SQLITE_FULL ("database or
disk is full"). (A file size limit on the running bot, `prlimit`, would need no mount, but
changing another process's limits is not allowed in every container either; SQLite's
`PRAGMA max_page_count` does not stop writes that fit in pages the database already has.)

In polling mode the first write of an update is the inbox (bot/inbox.py): while the disk is full
the fetched update cannot be stored, stays unconfirmed and is fetched again, with a back-off,
until it can.
"""

from __future__ import annotations

import contextlib
import errno
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from benchmarks.instances import BotProcess, SurveyResident
from sandbox.emulator import BotAPIEmulator
from sandbox.server import EmulatorServer
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Answer, Response

pytestmark = pytest.mark.slow
NOT_STORED = "could not store a fetched update"


@contextlib.contextmanager
def small_disk(where: Path) -> Iterator[Path]:
    """A 16 MB tmpfs at `where` for the test's duration (skips the test where not allowed)."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs CAP_SYS_ADMIN)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def fill(disk: Path) -> Path:
    """Write zeros until the disk is full; the file to delete to make room again."""
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def stored(url: str) -> tuple[dict[str, Any], list[Any]]:
    database = Database(url)
    try:
        with database.session() as session:
            answers = {a.question_id: a.value for a in session.scalars(select(Answer))}
            responses = [(r.status, dict(r.state or {})) for r in session.scalars(select(Response))]
    finally:
        database.dispose()
    return answers, responses


async def test_a_full_disk_refuses_an_answer_whole_and_the_resident_goes_on(
    emulator: BotAPIEmulator, tmp_path: Path
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        await answering_on_a_disk_that_fills_up(emulator, disk, tmp_path)


async def answering_on_a_disk_that_fills_up(
    emulator: BotAPIEmulator, disk: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{disk / 'full.db'}"
    upgrade(url)
    async with EmulatorServer(emulator) as server:
        bot = BotProcess(url, server.url, emulator.token, webhook=False, log_dir=tmp_path)
        bot.start()
        try:
            await bot.wait_ready()
            assert bot.process is not None
            dana = SurveyResident(emulator, emulator.add_user("Dana"), random.Random(5))
            await dana.onboard()
            question = dana.current_question()
            assert question is not None
            data = next(
                str(b.callback_data)
                for row in question.buttons
                for b in row
                if str(b.callback_data).endswith("|7")
            )
            before = stored(url)
            sent = len(dana.bot_messages())
            filler = fill(disk)
            update = emulator.user_taps(dana.user, question, data=data)
            deadline = time.monotonic() + 20
            while NOT_STORED not in bot.log() and time.monotonic() < deadline:
                await emulator.wait_until(lambda: False, 0.2)
            log = bot.log()
            assert NOT_STORED in log, log[-3000:]
            # Nothing half-written, nothing confirmed, nothing said to the resident.
            assert stored(url) == before
            # /health says so (a probe that never reaches the disk would say "ok").
            health = await bot.health()
            assert health is not None and health["status"] == "unhealthy", health
            assert health["checks"]["database"]["ok"] is False
            assert not emulator.is_confirmed(update["update_id"])
            assert len(dana.bot_messages()) == sent
            # Room again: the same update is fetched again, stored and handled.
            filler.unlink()
            assert await emulator.wait_until(
                lambda: (
                    dana.current_question() is not None
                    and dana.current_question() is not question
                    and dana.current_question().message_id != question.message_id
                ),  # type: ignore[union-attr]
                45,
            ), bot.log()[-3000:]
            dana.tapped["grade_liveability"] = 7
            health = await bot.health()
            assert health is not None and health["status"] == "ok", health
            await dana.answer_survey()
        finally:
            if bot.process is not None and bot.process.poll() is None:
                bot.signal(signal.SIGTERM)
                await bot.wait_exit()
            bot.kill()
    answers, responses = stored(url)
    assert answers == dana.tapped
    assert [status for status, _state in responses] == ["completed"]
    log = bot.log()
    # One kind of error, saying what happened, naming no resident.
    assert str(dana.user.id) not in log and "Dana" not in log
