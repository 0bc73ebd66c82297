"""Logging: JSON lines parse, text lines read, ids/tokens/phones/e-mails never reach the output."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.logs import configure_logging, redact

TOKEN = "1234567890:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_-x"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger back as pytest had it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("user 123456789 sent", "user [id] sent"),
        ("chat_id=-1001234567890 joined", "chat_id=[id] joined"),
        ("group -100987654321", "group [id]"),
        ("resident_id_7654321", "resident_id_[id]"),
        (
            f"POST https://api.telegram.org/bot{TOKEN}/getMe",
            "POST https://api.telegram.org/bot[token]/getMe",
        ),
        ("bel 06-12345678 of 0612345678", "bel [phone] of [phone]"),
        ("call +31 6 1234 5678 now", "call [phone] now"),
        ("fax 0031 20 123 4567", "fax [phone]"),
        ("mail jan.de.vries@example.nl please", "mail [email] please"),
        # Things that are no personal data stay readable.
        (
            "update 42 in 0.1234567 s, postcode 3561, port 8443",
            "update 42 in 0.1234567 s, postcode 3561, port 8443",
        ),
        ("round 2026-11-02 09:00 opened", "round 2026-11-02 09:00 opened"),
    ],
)
def test_redact(raw: str, expected: str) -> None:
    assert redact(raw) == expected


def test_json_lines_parse_and_are_redacted(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("json", "DEBUG", stream=stream)
    log = logging.getLogger("buurtstem.test")
    log.info("answer stored for %s in area %s", 123456789, "GM0344")
    log.warning("sending failed", extra={"chat_id": -1001234567890, "attempt": 2, "note": "x@y.nl"})
    try:
        raise ConnectionError(f"https://api.telegram.org/bot{TOKEN}/sendMessage failed")
    except ConnectionError:
        log.exception("Bot API error")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    entries = [json.loads(line) for line in lines]
    first, second, third = entries
    assert first["message"] == "answer stored for [id] in area GM0344"
    assert first["level"] == "INFO" and first["logger"] == "buurtstem.test"
    assert first["ts"].endswith("+00:00")
    assert second["chat_id"] == "[id]" and second["attempt"] == 2 and second["note"] == "[email]"
    assert "ConnectionError" in third["exc"] and "[token]" in third["exc"]
    output = stream.getvalue()
    assert "123456789" not in output and TOKEN not in output and "x@y.nl" not in output


def test_text_format_and_reconfiguring(restore_logging: None) -> None:
    first = io.StringIO()
    configure_logging("json", "INFO", stream=first)
    stream = io.StringIO()
    configure_logging("text", "INFO", stream=stream)  # replaces the JSON handler
    log = logging.getLogger("buurtstem.text")
    log.debug("hidden at INFO")
    log.info("resident %d stopped", 987654321)
    assert first.getvalue() == ""
    (line,) = stream.getvalue().splitlines()
    assert line.endswith("INFO buurtstem.text: resident [id] stopped")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_buurtstem_handler", False)]
    assert len(ours) == 1


def test_httpx_request_logging_is_silenced(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("text", "DEBUG", stream=stream)
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    logging.getLogger("httpx").info('HTTP Request: POST https://api.telegram.org/botX/getMe "200"')
    assert stream.getvalue() == ""


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError):
        configure_logging("yaml", "INFO")  # type: ignore[arg-type]


# ---- the library's own lines, with debug logging on ---------------------------------------------

USER_ID = 48151  # Telegram ids can be short: the digit-run rule alone would keep this one
PRIVATE = ("48151", "Jantje", "Verbeek", "jantje_v", "mijn naam is", "Dorpsstraat")


def malformed_update(update_id: int) -> dict[str, object]:
    """A whole update that python-telegram-bot cannot parse (an entity without offset)."""
    person = {"id": USER_ID, "first_name": "Jantje", "last_name": "Verbeek", "is_bot": False}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 9,
            "date": 1_790_000_000,
            "chat": {**person, "type": "private", "username": "jantje_v"},
            "from": {**person, "username": "jantje_v"},
            "text": "mijn naam is Jantje Verbeek, Dorpsstraat",
            "entities": [{"type": "bold"}],
        },
    }


@pytest.mark.parametrize(
    ("logger", "message", "args"),
    [
        ("telegram.ext.Application", "Processing update %s", "UPDATE"),
        (
            "telegram.Bot",
            "Calling Bot API endpoint `%s` with parameters `%s`",
            ("sendMessage", {"chat_id": USER_ID, "text": "mijn naam is Jantje Verbeek"}),
        ),
        (
            "telegram.ext.Updater",
            "Webhook received data: %s",
            ('{"message": {"from": {"first_name": "Jantje", "username": "jantje_v"}}}',),
        ),
        ("telegram.Bot", "Error while parsing updates! Received data was %r", "RAW"),
        ("some.library", "user %s said %r", ("Jantje Verbeek", {"text": "Dorpsstraat"})),
        ("telegram.ext", "%s Failed run number %s", ("Network Retry Loop (Polling Updates)", 2)),
    ],
)
def test_library_lines_lose_names_ids_and_texts(
    restore_logging: None, logger: str, message: str, args: object
) -> None:
    from telegram import Update

    stream = io.StringIO()
    configure_logging("text", "DEBUG", stream=stream)
    logging.getLogger(logger).setLevel(logging.DEBUG)
    raw = malformed_update(1)
    if args == "RAW":
        args = ([raw],)
    elif args == "UPDATE":
        good = dict(raw)
        good["message"] = {**raw["message"], "entities": []}  # type: ignore[dict-item]
        args = (Update.de_json(good, None),)
    assert isinstance(args, tuple)
    logging.getLogger(logger).critical(message, *args)
    output = stream.getvalue()
    assert message.split("%")[0].strip() in output  # the line is kept, without the data
    if logger == "telegram.ext":
        assert "Network Retry Loop (Polling Updates) Failed run number 2" in output
    for value in PRIVATE:
        assert value not in output, f"{value!r} in {output!r}"


def test_repr_and_json_fields_are_redacted_in_any_line() -> None:
    text = (
        "User(first_name='Jantje', id=48151, username='jantje_v') "
        '{"chat_id": 48151, "text": "mijn naam is Jantje", "caption": "x"}'
    )
    redacted = redact(text)
    for value in ("Jantje", "48151", "jantje_v", "mijn naam"):
        assert value not in redacted
    assert "first_name=" in redacted and '"text": ' in redacted


def test_configured_secrets_never_appear(restore_logging: None) -> None:
    stream = io.StringIO()
    secrets = ["123456789:EMULATOR-short-token", "webhook-secret-value_1", "k" * 40]
    configure_logging("json", "DEBUG", stream=stream, secrets=secrets)
    log = logging.getLogger("telegram.Bot")
    log.debug("Set Bot API URL: %s", "http://127.0.0.1:1/bot123456789:EMULATOR-short-token")
    log.debug("Request had the wrong secret token: %s", "webhook-secret-value_1")
    logging.getLogger("bot.x").warning("key %s", "k" * 40, extra={"k": "k" * 40})
    output = stream.getvalue()
    assert len(output.splitlines()) == 3
    for secret in secrets:
        assert secret not in output


async def test_debug_run_through_the_emulator_logs_no_personal_data(
    restore_logging: None,
    make_services: object,
    make_app: object,
    emulator: object,
    sqlite_url: str,
) -> None:
    from typing import Any

    from telegram import Bot
    from telegram.error import TelegramError

    from sandbox.harness import BotHarness
    from sandbox.transport import emulator_request
    from tests.test_resident_flow import onboard

    emu: Any = emulator
    stream = io.StringIO()
    configure_logging("text", "DEBUG", stream=stream, secrets=[emu.token])
    # The worst case: every library logs at DEBUG (buurtstem run keeps telegram at INFO).
    for name in ("telegram", "httpx", "httpcore", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    services: Any = make_services(sqlite_url)  # type: ignore[operator]
    app: Any = make_app(services)  # type: ignore[operator]
    async with BotHarness(emu, app, mode="polling") as h:
        jan = h.user("Jantje", last_name="Verbeek", username="jantje_v", user_id=USER_ID)
        await onboard(h, jan)
        await jan.send("mijn naam is Jantje Verbeek, Dorpsstraat 4")
        await jan.send("/help")
    # An update the library cannot parse: its CRITICAL line quotes the whole update.
    emu.push_raw_update(malformed_update(emu.last_update_id + 1))
    request = emulator_request(emu)
    async with Bot(emu.token, request=request, get_updates_request=request) as bot:
        with pytest.raises((TelegramError, TypeError)):
            await bot.get_updates(timeout=0)
    output = stream.getvalue()
    assert "Processing update" in output and "Received data was" in output
    assert "Calling Bot API endpoint `sendMessage`" in output
    for value in (*PRIVATE, emu.token, emu.token.split(":")[1]):
        assert value not in output, f"{value!r} is in the log"
