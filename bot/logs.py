"""Logging setup: plain text or JSON lines on the root logger, with personal data redacted.

The code should never log Telegram ids, names or answer texts in the first place; the redacting
filter is defence in depth for what slips through (a library's error message, an f-string).
Libraries do log them: python-telegram-bot logs whole updates (at DEBUG, and at CRITICAL when
it cannot parse one) and the Bot API calls with their parameters. So the arguments of other
packages' log calls are reduced before formatting: containers, objects and free text become
`[data]`, only numbers and identifier-like words (method names, URLs) stay; then every line is
redacted by pattern (ids, tokens, phones, e-mail, name and text fields of reprs and JSON) and
the configured secrets (token, webhook secret, pseudonym key) are removed literally.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import IO, Any, Literal

# Order matters: tokens and e-mail addresses contain digit runs the later patterns would split.
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Bot token, also inside Bot API URLs (".../bot123456:AA.../getMe").
    (re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}"), "[token]"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"), "[email]"),
    # International (+31 6 1234 5678, 0031...) and Dutch national (06-12345678, 010 123 4567).
    (
        re.compile(r"(?<![\w+])(?:\+|00)[1-9]\d{0,2}(?:[ .-]?\(0\))?(?:[ .-]?\d){7,12}(?!\d)"),
        "[phone]",
    ),
    (re.compile(r"(?<![\w.])0[1-9](?:[ .-]?\d){8}(?!\d)"), "[phone]"),
    # Telegram user ids, chat ids and group ids (-100...): any run of 6 or more digits that is
    # not the fraction of a decimal number.
    (re.compile(r"(?<![\d.])-?\d{6,}(?!\d)"), "[id]"),
]
# Personal fields in reprs of Telegram objects (first_name='Jan'), dicts and JSON ("text": "..."),
# in any line (a traceback may quote one): the value goes, the field name stays.
_FIELDS = (
    "first_name|last_name|full_name|username|text|caption|title|data|query|phone_number|email"
    "|bio|description|address|vcard|quote|latitude|longitude|invite_link"
)
_FIELD_VALUE = re.compile(
    r"""(['"]?\b(?:""" + _FIELDS + r""")['"]?\s*[:=]\s*)"""
    r"""(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|-?\d+(?:\.\d+)?)"""
)
# Ids in the same shapes, however few digits (Telegram's oldest ids are short).
_ID_FIELD = re.compile(
    r"""(['"]?\b(?:id|user_id|chat_id|from_id|sender_id|sender_chat_id)['"]?\s*[:=]\s*)"""
    r"""['"]?-?\d+['"]?"""
)
_ID_LIMIT = 100_000  # integers with 6+ digits are treated like ids
# Loggers of buurtstem itself: their arguments are ours, and only pattern-redacted.
_OWN_LOGGERS = (
    "bot",
    "handlers",
    "storage",
    "surveys",
    "digests",
    "locales",
    "sandbox",
    "benchmarks",
    "buurtstem",
)
# A library's string argument that may stay: a word, a method name, a URL; no spaces.
_PLAIN_ARG = re.compile(r"[\w./:@%?&=+,-]{1,200}")
# Labels python-telegram-bot passes as arguments: they say which loop failed at start-up.
_LIBRARY_LABEL = re.compile(r"Network Retry Loop \([A-Za-z ]{1,60}\)")

# Attributes every LogRecord has; anything else came in through `extra=`.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)
_MARK = "_buurtstem_handler"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Replace secrets, ids, tokens, phone numbers, e-mail addresses and personal fields."""
    for secret in secrets:
        text = text.replace(secret, "[secret]")
    text = _FIELD_VALUE.sub(r"\1'[redacted]'", text)
    text = _ID_FIELD.sub(r"\1[id]", text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: Any, secrets: Sequence[str] = ()) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return "[id]" if abs(value) >= _ID_LIMIT else value
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, (list, tuple)):
        return [_redact_value(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: _redact_value(item, secrets) for key, item in value.items()}
    return redact(str(value), secrets)


def _is_own(name: str) -> bool:
    return name.split(".", 1)[0] in _OWN_LOGGERS


def _library_arg(value: Any) -> Any:
    """What of a library's log argument may be formatted: numbers, words, exceptions."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        plain = _PLAIN_ARG.fullmatch(value) or _LIBRARY_LABEL.fullmatch(value)
        return value if plain else "[data]"
    if isinstance(value, BaseException):
        return value  # its message is pattern-redacted with the line
    return "[data]"  # an update, a dict of parameters, a list of updates, bytes...


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record got through `extra=`."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class RedactingFilter(logging.Filter):
    """Redacts the message, its arguments, extra fields and tracebacks of every record."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        # Longest first, so a secret containing another is removed whole; very short values
        # would blank out ordinary words.
        self.secrets = tuple(
            sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)
        )

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and not _is_own(record.name):
            if isinstance(record.args, dict):
                record.args = {k: _library_arg(v) for k, v in record.args.items()}
            else:
                record.args = tuple(_library_arg(arg) for arg in record.args)
        try:
            message = record.getMessage()
        except Exception:  # a broken format call: let logging report it as usual
            return True
        record.msg = redact(message, self.secrets)
        record.args = None
        for key, value in extra_fields(record).items():
            setattr(record, key, _redact_value(value, self.secrets))
        if record.exc_info and not record.exc_text:
            # Format now, so the traceback (which may quote a URL with the token) is redacted.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(
    fmt: Literal["text", "json"] = "text",
    level: str | int = "INFO",
    stream: IO[str] | None = None,
    secrets: Iterable[str | None] = (),
) -> logging.Handler:
    """Send all logging to `stream` (stderr) as text or JSON lines, redacted; returns the handler.

    `secrets` (the bot token, webhook secret, pseudonym key) never appear, whatever their form.
    Calling it again replaces the handler it installed before (not handlers others added).
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"unknown log format {fmt!r} (text or json)")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _MARK, True)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    # On the handler, not a logger: handler filters see records from every logger.
    handler.addFilter(RedactingFilter(secrets))
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # httpx logs every request at INFO with its URL, and Bot API URLs carry the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # APScheduler logs each job run at INFO ("Running job ..."): noise every few seconds.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return handler
