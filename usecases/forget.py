"""Forget a resident: erase everything stored about them, in one transaction (/forget)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from storage import residents as store
from storage.db import Database

Forgotten = Literal["forgotten", "nothing", "repeat"]


def forget_resident(
    db: Database, *, resident_key: str, now: datetime, update_id: int | None = None
) -> Forgotten:
    """Erase the resident's answers, responses, chat and queued messages.

    `nothing` when nothing is stored under this pseudonym; `repeat` when `update_id` was
    handled before (then nothing changes).
    """
    with db.session() as session:
        if update_id is not None and not store.claim_update(session, update_id, now):
            return "repeat"
        resident = store.find_resident(session, resident_key, lock=True)
        if resident is None:
            return "nothing"
        store.forget_resident(session, resident)
    return "forgotten"
