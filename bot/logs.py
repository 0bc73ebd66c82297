"""Logging setup: plain text or JSON lines on the root logger, with personal data redacted.

The code should never log Telegram ids, names or answer texts in the first place; the redacting
filter is defence in depth for what slips through (a library's error message, an f-string).
"""

from __future__ import annotations

import json
import logging
import re
import sys
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
_ID_LIMIT = 100_000  # integers with 6+ digits are treated like ids

# Attributes every LogRecord has; anything else came in through `extra=`.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)
_MARK = "_buurtstem_handler"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def redact(text: str) -> str:
    """Replace ids, tokens, phone numbers and e-mail addresses in `text`."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return "[id]" if abs(value) >= _ID_LIMIT else value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (list, tuple)):
        return [_redact_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    return redact(str(value))


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record got through `extra=`."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class RedactingFilter(logging.Filter):
    """Redacts the message, its arguments, extra fields and tracebacks of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format call: let logging report it as usual
            return True
        record.msg = redact(message)
        record.args = None
        for key, value in extra_fields(record).items():
            setattr(record, key, _redact_value(value))
        if record.exc_info and not record.exc_text:
            # Format now, so the traceback (which may quote a URL with the token) is redacted.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
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
) -> logging.Handler:
    """Send all logging to `stream` (stderr) as text or JSON lines, redacted; returns the handler.

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
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # httpx logs every request at INFO with its URL, and Bot API URLs carry the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # APScheduler logs each job run at INFO ("Running job ..."): noise every few seconds.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return handler
