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
