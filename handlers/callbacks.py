"""Compact, versioned callback data: `v1|kind|arg|...`, always within Telegram's 64 bytes.

A button from an older release carries another version prefix (or none) and is refused
politely instead of being misread.
"""

from __future__ import annotations

from dataclasses import dataclass

VERSION = "v1"
MAX_BYTES = 64

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
    """Parse callback data of this version; None for another version or garbage."""
    if not data:
        return None
    parts = data.split("|")
    if len(parts) < 2 or parts[0] != VERSION or not parts[1]:
        return None
    return Callback(parts[1], tuple(parts[2:]))
