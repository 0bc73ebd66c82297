"""The bot's own membership of a chat changed (Telegram's my_chat_member update).

In a group: removed (kicked, or the group was left) pauses a linked alliance's digests, added
back resumes them. In a private chat: a resident who blocks the bot is unreachable at once (no
invitations are queued for them), one who unblocks is reachable again; the same fields the
outbox sets on a 403 and any message from the resident clears.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage import alliances as store
from storage.db import Database
from storage.outbox import mark_resident_unreachable
from storage.residents import claim_update, find_resident

log = logging.getLogger(__name__)

# Telegram's statuses for "the bot is in the chat" and "it is not".
IN_CHAT = frozenset({"member", "administrator", "creator"})
OUT_OF_CHAT = frozenset({"left", "kicked"})
# The reason stored when a resident blocks the bot: Telegram's own words for the 403 it gives.
BLOCKED_REASON = "Forbidden: bot was blocked by the user"


@dataclass(frozen=True)
class GroupChange:
    """What a change of the bot's membership of a group did."""

    repeated: bool = False  # the update was handled before
    resumed: Resumed | None = None  # the bot is back in a linked group: say so there


@dataclass(frozen=True)
class Resumed:
    """A linked group has the bot back: its area, digest language and schedule."""

    area_code: str
    language: str
    schedule: dict[str, Any]


def group_membership(
    db: Database,
    *,
    bot_id: int,
    update_id: int,
    chat_id: int,
    in_chat: bool,
    now: datetime,
) -> GroupChange:
    """Pause or resume a linked group's digests, in one transaction (an unlinked group: nothing)."""
    with db.session() as session:
        if not claim_update(session, bot_id, update_id, now):
            return GroupChange(repeated=True)
        if not in_chat:
            paused = store.bot_removed(session, chat_id, now)
            if paused is not None:
                log.info("alliance %d: bot removed from its group, digests paused", paused.id)
            return GroupChange()
        alliance = store.bot_back(session, chat_id)
        if alliance is None:
            return GroupChange()
        log.info("alliance %d: bot back in its group, digests resume", alliance.id)
        return GroupChange(
            resumed=Resumed(alliance.area_code, alliance.language, dict(alliance.schedule))
        )


def private_membership(
    db: Database,
    *,
    bot_id: int,
    update_id: int,
    resident_pseudonym: str,
    in_chat: bool,
    now: datetime,
) -> bool:
    """A resident blocked (not `in_chat`) or unblocked the bot: unreachable or reachable.
    False for a repeated update. Nothing is stored about someone who is not a resident.
    """
    with db.session() as session:
        if not claim_update(session, bot_id, update_id, now):
            return False
        # Looking the resident up clears unreachable_at: they unblocked (or restarted) the bot.
        resident = find_resident(session, resident_pseudonym, lock=True)
        if resident is not None and not in_chat:
            session.flush()
            mark_resident_unreachable(session, resident.id, BLOCKED_REASON, now)
        return True
