"""The CLI on bad configuration: one clear line and an exit code, never a traceback or a token."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from sandbox.emulator import BotAPIEmulator
from sandbox.server import ThreadedEmulatorServer

ROOT = Path(__file__).resolve().parent.parent
BUURTSTEM = [sys.executable, "-m", "bot.cli"]


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`buurtstem ARGS` in a clean environment (no BUURTSTEM_* from the caller)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BUURTSTEM_")}
    clean.update(env)
    return subprocess.run(
        [*BUURTSTEM, *args], cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def emulator_url() -> Iterator[str]:
    """A Bot API emulator over HTTP on 127.0.0.1."""
    server = ThreadedEmulatorServer(BotAPIEmulator())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def test_bad_settings_name_the_variable(tmp_path: Path) -> None:
    result = run(["round", "list"], tmp_path, BUURTSTEM_MIN_CELL_SIZE="3", BUURTSTEM_ADMIN_IDS="x")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "BUURTSTEM_MIN_CELL_SIZE" in result.stderr and "BUURTSTEM_ADMIN_IDS" in result.stderr


def test_unsupported_database_and_missing_folder(tmp_path: Path) -> None:
    other = run(["round", "list", "--database-url", "mysql://u@h/db"], tmp_path)
    assert other.returncode == 2 and "sqlite:///FILE or postgresql" in other.stderr
    missing = run(["round", "list", "--database-url", "sqlite:////nonexistent/dir/x.db"], tmp_path)
    assert missing.returncode == 1
    assert "/nonexistent/dir/x.db" in missing.stderr and "sqlalche.me" not in missing.stderr
    assert "no database there" in missing.stderr
    # A command that may create the database says why it cannot.
    create = run(["db", "upgrade", "--database-url", "sqlite:////nonexistent/dir/x.db"], tmp_path)
    assert create.returncode == 1 and "could not upgrade" in create.stderr
    assert "Traceback" not in other.stderr + missing.stderr


def test_a_refused_token_is_one_line_without_the_token(tmp_path: Path, emulator_url: str) -> None:
    token = "7123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"
    result = run(
        ["run"],
        tmp_path,
        BUURTSTEM_TOKEN=token,
        BUURTSTEM_PSEUDONYM_KEY=KEY,
        BUURTSTEM_API_BASE_URL=emulator_url,
        BUURTSTEM_DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
    )
    assert result.returncode == 1
    # Like every command that reads data, it names its database first.
    assert result.stderr.splitlines()[0] == (
        f"Database: sqlite:///{(tmp_path / 'bot.db').resolve()} (BUURTSTEM_DATABASE_URL; "
        "a new, empty database was created)"
    )
    assert "Telegram refused the bot token" in result.stderr
    assert "Traceback" not in result.stderr
    assert token not in result.stdout + result.stderr
    assert "AAHdqTcv" not in result.stdout + result.stderr


KEY = "cli-errors-key-0f3c9a7e5b1d2468ace013579bdf"  # long enough for the real bot
OTHER_KEY = "cli-errors-key-another-one-77a1c4e9f0b2d35"


def test_real_bot_without_a_key_refuses_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    for command in (["run"], ["start"]):  # ./start with a token runs `buurtstem start`
        result = run(
            command,
            tmp_path,
            BUURTSTEM_TOKEN="7123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ",
            BUURTSTEM_DATABASE_URL=f"sqlite:///{db}",
        )
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "BUURTSTEM_PSEUDONYM_KEY" in lines[0] and "secrets.token_urlsafe" in lines[0]
        assert "Traceback" not in result.stderr
    assert not db.exists()  # refused before anything was stored


@pytest.mark.parametrize(
    ("key", "says"),
    [("buurtstem-development-key-change-me", "public"), ("geheim-wachtwoord", "too short")],
)
def test_real_bot_refuses_the_development_key_and_short_keys(
    tmp_path: Path, key: str, says: str
) -> None:
    result = run(
        ["run"],
        tmp_path,
        BUURTSTEM_TOKEN="7123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ",
        BUURTSTEM_PSEUDONYM_KEY=key,
        BUURTSTEM_DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert says in result.stderr and key not in result.stderr


def test_a_database_refuses_another_key(tmp_path: Path, emulator_url: str) -> None:
    # The emulator refuses this token, so each start that passes the key check ends there (1).
    env = {
        "BUURTSTEM_TOKEN": "7123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ",
        "BUURTSTEM_API_BASE_URL": emulator_url,
        "BUURTSTEM_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
    }
    first = run(["run"], tmp_path, BUURTSTEM_PSEUDONYM_KEY=KEY, **env)
    assert first.returncode == 1 and "Telegram refused the bot token" in first.stderr
    other = run(["run"], tmp_path, BUURTSTEM_PSEUDONYM_KEY=OTHER_KEY, **env)
    assert other.returncode == 2, other.stderr
    # One line, the last one (after the migration's log lines), and no traceback.
    lines = other.stderr.strip().splitlines()
    assert [line for line in lines if "BUURTSTEM_PSEUDONYM_KEY" in line] == lines[-1:]
    assert "not the key" in lines[-1] and "Traceback" not in other.stderr
    assert KEY not in other.stderr and OTHER_KEY not in other.stderr
    again = run(["run"], tmp_path, BUURTSTEM_PSEUDONYM_KEY=KEY, **env)
    assert again.returncode == 1 and "Telegram refused the bot token" in again.stderr


def test_an_unknown_time_zone_is_one_line(tmp_path: Path) -> None:
    result = run(["round", "list"], tmp_path, BUURTSTEM_TIMEZONE="Europe/Amsterdm")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "BUURTSTEM_TIMEZONE" in result.stderr and "unknown time zone" in result.stderr


def test_every_command_is_there_under_its_name() -> None:
    from bot.cli import COMMANDS, cli, load_command

    for name, module_name in COMMANDS.items():
        assert load_command(name, module_name).name == name
    assert CliRunner().invoke(cli, ["--help"]).exit_code == 0


def test_a_missing_command_module_fails_loudly_and_says_which() -> None:
    from bot.cli import Commands, MissingCommand, load_command

    with pytest.raises(MissingCommand, match=r"bot\.commands\.gone of the command 'gone'"):
        load_command("gone", "bot.commands.gone")
    with pytest.raises(MissingCommand, match=r"bot\.options defines no click command 'options'"):
        load_command("options", "bot.options")
    broken = Commands("probe", modules={"start": "bot.commands.start", "gone": "bot.commands.gone"})
    for args in (["--help"], ["gone"]):
        result = CliRunner().invoke(broken, args)
        assert result.exit_code == 1, result.output
        assert "Error: the module bot.commands.gone of the command 'gone' is missing" in (
            result.output
        )
    assert CliRunner().invoke(broken, ["start", "--help"]).exit_code == 0
