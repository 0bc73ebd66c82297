"""The button wire format: compact, versioned callback data `v1|kind|arg|...` within 64 bytes.

Every button the bot makes carries data in this format, and every tap is read back with it: the
one place that knows the format and Telegram's 64-byte limit. A button from an older release
carries another version prefix (or none) and is refused politely instead of being misread.

A question's button is `v1|q|<round id>|<question id>|<option id>`. Round ids are 32-bit
database ids (at most 10 digits), which leaves QUESTION_KEY_BUDGET bytes for the question id
and option id together; survey validation holds every survey to that (surveys.schema
BUTTON_KEY_BUDGET, checked below to fit).
"""

from __future__ import annotations

from dataclasses import dataclass

from surveys.schema import BUTTON_KEY_BUDGET

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

QUESTION = "q"
# "v1|q|" + a 10-digit round id + the two "|" around the question id.
QUESTION_OVERHEAD = len(f"{VERSION}|{QUESTION}|") + len(str(MAX_INT)) + 2
QUESTION_KEY_BUDGET = MAX_BYTES - QUESTION_OVERHEAD
if BUTTON_KEY_BUDGET > QUESTION_KEY_BUDGET:  # a format change must not outgrow valid surveys
    raise AssertionError(
        f"surveys allow {BUTTON_KEY_BUDGET} bytes of question and option id; the button format "
        f"leaves {QUESTION_KEY_BUDGET}"
    )


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
