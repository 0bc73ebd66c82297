"""The `meta` table: facts about the data itself, such as which pseudonym key made it."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from storage.models import Meta, Resident

KEY_FINGERPRINT = "pseudonym_key_fingerprint"
HEALTH_PROBE = "health-probe"

Outcome = Literal["stored", "adopted", "same", "different"]


@dataclass(frozen=True)
class KeyCheck:
    """What the database said about the key: first use, same key, or another key than before.

    stored: no fingerprint and no residents yet, this key's fingerprint is now stored;
    adopted: residents but no fingerprint (a database from before fingerprints): stored now,
    but whether their pseudonyms were made with this key cannot be told;
    same / different: compared with the stored fingerprint (`stored`).
    """

    outcome: Outcome
    stored: str | None = None


def check_key_fingerprint(session: Session, fingerprint: str, now: datetime) -> KeyCheck:
    """Compare the key's fingerprint with the one stored with the data; store it on first use.

    Run at start-up under the start-up lock, so two instances never both store one.
    """
    row = session.get(Meta, KEY_FINGERPRINT, with_for_update=True)
    if row is not None:
        same = hmac.compare_digest(row.value, fingerprint)
        return KeyCheck("same" if same else "different", row.value)
    had_residents = bool(session.scalar(select(exists().where(Resident.id.is_not(None)))))
    session.add(Meta(key=KEY_FINGERPRINT, value=fingerprint, updated_at=now))
    session.flush()
    return KeyCheck("adopted" if had_residents else "stored", fingerprint)


def probe_write(session: Session, now: datetime, tag: str) -> None:
    """Write one row and delete it again, for the caller to commit: fails when the database
    cannot be written. Only a commit reaches the disk (SQLite keeps an uncommitted write in
    memory), so a full disk fails it too; it leaves nothing behind."""
    row = Meta(key=f"{HEALTH_PROBE}:{tag}"[:64], value="", updated_at=now)
    session.add(row)
    session.flush()
    session.delete(row)
    session.flush()
