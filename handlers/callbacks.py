"""Compact, versioned callback data: `v1|kind|arg|...`, always within Telegram's 64 bytes.

A button from an older release carries another version prefix (or none) and is refused
politely instead of being misread.
"""

from __future__ import annotations

from dataclasses import dataclass

VERSION = "v1"
MAX_BYTES = 64
# Bounds for data that comes back: Telegram sends what the bot put on a button, but anyone can
# send an update to a webhook or tap an old button, so nothing is parsed before it fits these.
MAX_ARGS = 4  # the most any button of ours carries ("c": deep link, language, source)
MAX_INT = 2**31 - 1  # ids are 32-bit integer columns; larger numbers name nothing of ours

# Special "options" on question buttons; survey option ids are [a-z0-9_-], so `~` never clashes.
BACK = "~b"
SKIP = "~s"
DONE = "~d"


class CallbackTooLong(ValueError):
    """Callback data that Telegram would refuse (over 64 bytes)."""


@dataclass(frozen=True)
class Callback:
    """Parsed callback data: a kind and its arguments."""

    kind: str
    args: tuple[str, ...]

    def arg(self, index: int, default: str = "") -> str:
        """Argument `index`, or `default` when absent."""
        return self.args[index] if index < len(self.args) else default


def encode(kind: str, *args: object) -> str:
    """Build callback data; raises CallbackTooLong past 64 bytes."""
    data = "|".join([VERSION, kind, *(str(arg) for arg in args)])
    if len(data.encode()) > MAX_BYTES:
        raise CallbackTooLong(data)
    return data


def decode(data: str | None) -> Callback | None:
    """Parse callback data of this version; None for another version, garbage or data out of
    bounds (over 64 bytes, too many parts, a number beyond any id, digits int() refuses).

    A number that passes can be given to int() and to the database without error, so a forged
    huge round id is an "old button" notice, not an OverflowError.
    """
    if not data or len(data) > MAX_BYTES or len(data.encode()) > MAX_BYTES:
        return None
    parts = data.split("|", MAX_ARGS + 2)
    if len(parts) < 2 or len(parts) > MAX_ARGS + 2 or parts[0] != VERSION or not parts[1]:
        return None
    args = tuple(parts[2:])
    for arg in args:
        if arg.isdigit() and not (arg.isascii() and int(arg) <= MAX_INT):
            return None
    return Callback(parts[1], args)
