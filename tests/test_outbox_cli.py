"""`buurtstem outbox status / retry-failed / purge` against a real SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from bot.commands.outbox import chat_ref, command
from storage import outbox as store
from storage.db import Database
from storage.migrate import upgrade

CHAT = 5_123_456_789
GROUP = -1_009_876_543_210


@pytest.fixture
def seeded(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An outbox with sent, pending, failed and unknown rows, created an hour ago."""
    monkeypatch.setenv("BUURTSTEM_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("BUURTSTEM_PSEUDONYM_KEY", "cli-test-key")
    upgrade(sqlite_url)
    db = Database(sqlite_url)
    then = datetime.now(UTC) - timedelta(hours=1)
    with db.session() as session:
        for n, (kind, chat) in enumerate(
            [
                ("invitation", CHAT),
                ("invitation", CHAT + 1),
                ("invitation", CHAT + 2),
                ("digest", GROUP),
            ]
        ):
            store.enqueue(
                session,
                kind=kind,
                dedupe_key=f"k{n}",
                chat_id=chat,
                method="sendMessage",
                payload={"text": "Beste bewoner, doet u mee?"},
                now=then,
                is_group=chat < 0,
            )
        store.claim(session, 1, then)
        store.mark_failed(session, 1, "Forbidden: bot was blocked by the user", then)
        store.claim(session, 2, then)
        store.mark_sent(session, 2, 77, then)
        store.claim(session, 4, then)
        store.recover_interrupted(session, then, then + timedelta(seconds=1))
    db.dispose()
    return sqlite_url


def test_status_shows_counts_age_and_failures_without_chat_ids(seeded: str) -> None:
    result = CliRunner().invoke(command, ["status"])
    assert result.exit_code == 0, result.output
    # The first line (stderr) names the database; stdout starts with the table.
    assert result.stderr.splitlines()[0] == f"Database: {seeded} (BUURTSTEM_DATABASE_URL)"
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["kind", "pending", "sending", "sent", "failed", "unknown"]
    assert set(lines[1]) == {"-"}
    assert lines[2].split() == ["digest", "0", "0", "0", "0", "1"]
    assert lines[3].split() == ["invitation", "1", "0", "1", "1", "0"]
    assert lines[4].split() == ["total", "1", "0", "1", "1", "1"]
    assert "Oldest waiting message: queued 60 min ago" in result.output
    assert "may or may not have arrived" in result.output
    assert "bot was blocked by the user" in result.output
    assert f"[chat {chat_ref('cli-test-key', CHAT)}]" in result.output
    # Never the chat ids themselves (they identify people), nor message text.
    for secret in (str(CHAT), str(GROUP), str(CHAT)[-6:], "Beste bewoner"):
        assert secret not in result.output


def test_retry_failed_then_purge(seeded: str) -> None:
    runner = CliRunner()
    result = runner.invoke(command, ["retry-failed"])
    assert result.exit_code == 0 and "1 message(s) queued again." in result.output
    result = runner.invoke(command, ["retry-failed", "--include-unknown", "--kind", "digest"])
    assert "1 message(s) queued again." in result.output
    status = runner.invoke(command, ["status"]).stdout
    assert status.splitlines()[4].split() == ["total", "3", "0", "1", "0", "0"]
    # Purge asks first; "no" deletes nothing.
    refused = runner.invoke(command, ["purge", "--older-than-days", "1"], input="n\n")
    assert refused.exit_code == 1 and "Nothing deleted." in refused.output
    assert "Delete sent messages last touched more than 1 day(s) ago? [y/N]" in refused.output
    # The sent row is an hour old: kept with the default 30 days.
    assert "0 message(s) deleted." in runner.invoke(command, ["purge", "--yes"]).output
    answered = runner.invoke(command, ["purge"], input="y\n")
    assert answered.exit_code == 0 and "0 message(s) deleted." in answered.output


def test_empty_outbox(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUURTSTEM_DATABASE_URL", sqlite_url)
    upgrade(sqlite_url)
    result = CliRunner().invoke(command, ["status"])
    assert result.exit_code == 0 and result.stdout.strip() == "The outbox is empty."


def test_status_of_a_database_that_does_not_exist(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUURTSTEM_DATABASE_URL", sqlite_url)
    result = CliRunner().invoke(command, ["status"])
    assert result.exit_code == 1 and "no database there" in result.output
    assert "The outbox is empty" not in result.output
