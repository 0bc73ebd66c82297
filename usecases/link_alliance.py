"""Link an alliance's group chat to its focus area with a one-time code (/koppel CODE)."""

from __future__ import annotations

import logging
from datetime import datetime

from digests.schedule import DEFAULT_SCHEDULE
from storage import alliances as store
from storage.db import Database
from storage.residents import claim_update

log = logging.getLogger(__name__)


def link_alliance(
    db: Database,
    *,
    bot_id: int,
    update_id: int,
    chat_id: int,
    title: str | None,
    text: str,
    key: str,
    now: datetime,
    failures_per_hour: int = store.FAILURES_PER_HOUR,
) -> store.LinkResult | None:
    """Redeem the code in `text` for this chat, in one transaction; None for a repeated update.

    Outcomes: linked (digests on the default schedule, Mondays 09:00), usage (no code given),
    invalid, used, expired, blocked (too many failures of this chat: `blocked_until`), busy
    (`failures_per_hour` failures of all chats together: every chat waits until
    `blocked_until`), already_linked, other_area.
    """
    with db.session() as session:
        if not claim_update(session, bot_id, update_id, now):
            return None
        if not text.strip():
            return store.LinkResult("usage")
        result = store.redeem_code(
            session,
            chat_id=chat_id,
            title=title,
            text=text,
            key=key,
            now=now,
            schedule=DEFAULT_SCHEDULE.to_json(),
            failures_per_hour=failures_per_hour,
        )
    # Outcome only: the chat id and the code stay out of the logs.
    log.info("alliance link attempt: %s", result.outcome)
    return result
