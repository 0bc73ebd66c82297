"""`buurtstem run`: what it refuses before starting, and how it reads its settings."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.commands.run import webhook_path

BASE_ENV = {
    "BUURTSTEM_TOKEN": "123456:TEST-TOKEN",
    "BUURTSTEM_PSEUDONYM_KEY": "run-cli-test-key-long-enough-for-run",
    "BUURTSTEM_WEBHOOK_URL": "",
    "BUURTSTEM_WEBHOOK_SECRET": "",
}


def run(*args: str, **env: str) -> tuple[int, str]:
    """Invoke `buurtstem run ...` in-process; (exit code, stderr)."""
    result = CliRunner().invoke(cli, ["run", *args], env={**BASE_ENV, **env})
    return result.exit_code, result.stderr


def test_without_token_points_to_botfather() -> None:
    code, err = run(BUURTSTEM_TOKEN="")
    assert code == 2
    assert "@BotFather" in err
    assert len(err.strip().splitlines()) == 1


def test_webhook_mode_needs_a_url() -> None:
    code, err = run("--webhook", "--webhook-secret", "abc")
    assert code == 2
    assert "BUURTSTEM_WEBHOOK_URL" in err


@pytest.mark.parametrize("secret", [None, "has space", "x" * 257, "ünïcode"])
def test_webhook_mode_needs_a_valid_secret(secret: str | None) -> None:
    args = ["--webhook", "--webhook-url", "https://bot.example.nl/tg"]
    if secret is not None:
        args += ["--webhook-secret", secret]
    code, err = run(*args)
    assert code == 2
    assert "BUURTSTEM_WEBHOOK_SECRET" in err


def test_polling_refuses_when_a_webhook_url_is_configured() -> None:
    # Polling would delete the webhook at Telegram and starve the other instances.
    code, err = run(BUURTSTEM_WEBHOOK_URL="https://bot.example.nl/tg")
    assert code == 2
    assert "--webhook" in err


def test_options_come_from_the_environment_too() -> None:
    code, err = run("--webhook", BUURTSTEM_WEBHOOK_URL="https://bot.example.nl/tg")
    assert code == 2
    assert "BUURTSTEM_WEBHOOK_SECRET" in err  # the URL was taken from the environment


def test_webhook_path_is_the_public_path() -> None:
    assert webhook_path("https://bot.example.nl/telegram/5f0c") == "telegram/5f0c"
    assert webhook_path("https://bot.example.nl") == ""
    assert webhook_path("https://bot.example.nl:8443/hook/") == "hook"
