"""Keyed pseudonyms: a Telegram id never reaches the database or a log line as itself."""

from __future__ import annotations

import hashlib
import hmac


def pseudonym(key: str, telegram_id: int, purpose: str = "resident") -> str:
    """HMAC-SHA256 of the id under the secret key, hex; `purpose` keeps uses unlinkable."""
    message = f"{purpose}:{telegram_id}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def short_pseudonym(key: str, value: str, purpose: str, length: int = 16) -> str:
    """A shorter keyed hash, e.g. a per-round response key for exports."""
    message = f"{purpose}:{value}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()[:length]


def key_fingerprint(key: str) -> str:
    """Names a key without revealing it (HMAC of a fixed label), to store beside the data.

    It tells whether two keys are the same and nothing more: anyone able to test guesses of the
    key against it could test them against the pseudonyms as well.
    """
    return hmac.new(
        key.encode(), b"buurtstem:pseudonym-key-fingerprint:v1", hashlib.sha256
    ).hexdigest()
