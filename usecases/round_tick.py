"""The round tick: open due rounds (invitations), close due rounds, queue due reminders.

Every decision and the outbox rows it causes are written in one transaction, under a lock on the
round's row, and outbox dedupe keys make a repeated decision harmless (leader hand-over, a tick
run twice). Messages are Bot API payloads as data (text, parse mode, the button that starts the
round in the journey's wire format), queued for the outbox sender; nothing here talks to Telegram.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from journey import wire
from locales.catalogue import Catalogue, default_catalogue
from storage import outbox as outbox_store
from storage import rounds as store
from storage.db import Database
from storage.models import Round
from storage.survey_versions import SurveyVersions
from surveys.areas import Areas
from surveys.schema import pick
from surveys.times import resident_time

log = logging.getLogger(__name__)


# ---- messages --------------------------------------------------------------------------------


class RoundMessages:
    """Resident messages about rounds, in each resident's language (Dutch when untranslated)."""

    def __init__(
        self, catalogue: Catalogue, areas: Areas, tz: ZoneInfo, surveys: SurveyVersions
    ) -> None:
        self.catalogue = catalogue
        self.areas = areas
        self.tz = tz
        self.surveys = surveys

    def _common(
        self, session: Session, round_: Round, lang: str | None, area: str | None
    ) -> dict[str, str]:
        survey = self.surveys.survey(session, round_.survey_version_id)
        found = self.areas.get(area or "")
        return {
            "title": html.escape(pick(survey.title, lang, survey.default_language)),
            "area": html.escape(found.name if found else ""),
            "closes": resident_time(round_.closes_at, self.tz),
        }

    def invitation(self, session: Session, round_: Round, to: store.Recipient) -> dict[str, Any]:
        """The invitation with its start button."""
        params = self._common(session, round_, to.language, to.area_code)
        return payload(
            self.catalogue.get(to.language, "rounds.invitation.text", **params),
            self.catalogue.get(to.language, "rounds.invitation.button"),
            round_.id,
        )

    def reminder(self, session: Session, round_: Round, to: store.Recipient) -> dict[str, Any]:
        """A reminder: continue (started) or take part (not started)."""
        params = self._common(session, round_, to.language, to.area_code)
        key, button = (
            ("rounds.reminder.started", "rounds.reminder.continue_button")
            if to.started
            else ("rounds.reminder.not_started", "rounds.reminder.start_button")
        )
        return payload(
            self.catalogue.get(to.language, key, **params),
            self.catalogue.get(to.language, button),
            round_.id,
        )

    def closed(self, session: Session, round_: Round, to: store.Recipient) -> dict[str, Any]:
        """The round closed while this resident was answering; their answers are kept."""
        params = self._common(session, round_, to.language, to.area_code)
        return {
            "text": self.catalogue.get(to.language, "rounds.closed_midway", **params),
            "parse_mode": "HTML",
        }


def payload(text: str, button: str, round_id: int) -> dict[str, Any]:
    """A sendMessage payload with one inline button that starts or continues the round."""
    return {
        "text": text,
        "parse_mode": "HTML",
        "reply_markup": {
            "inline_keyboard": [[{"text": button, "callback_data": wire.encode("s", round_id)}]]
        },
    }


# ---- the tick --------------------------------------------------------------------------------


@dataclass
class TickReport:
    """What one round tick decided (ids of rounds, counts of queued messages)."""

    opened: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    invitations: int = 0
    reminders: int = 0
    closed_responses: int = 0
    closed_notices: int = 0
    # Unfinished standing-round responses ended because a published round opened.
    superseded: int = 0

    @property
    def changed(self) -> bool:
        """Whether anything was decided."""
        return bool(self.opened or self.closed or self.missed or self.reminders)


def run_round_tick(
    db: Database,
    areas: Areas,
    now: datetime,
    *,
    tz: ZoneInfo,
    catalogue: Catalogue | None = None,
) -> TickReport:
    """Close due rounds, open due rounds (invitations), decide due reminders; idempotent.

    One transaction per round decided, so one round's trouble never undoes another's.
    """
    texts = RoundMessages(catalogue or default_catalogue(), areas, tz, db.surveys)
    report = TickReport()
    # Close first: a round that follows another in the same area then opens cleanly.
    with db.session() as session:
        to_close = store.due_to_close(session, now)
    for round_id in to_close:
        with db.session() as session:
            close_round(session, round_id, now, texts, report)
    with db.session() as session:
        to_open = store.due_to_open(session, now)
    for round_id in to_open:
        with db.session() as session:
            open_round(session, round_id, now, texts, report)
    with db.session() as session:
        to_remind = store.with_reminders_left(session, now)
    for round_id in to_remind:
        with db.session() as session:
            remind(session, round_id, now, texts, report)
    return report


def _queue(
    session: Session,
    recipients: Iterable[store.Recipient],
    *,
    kind: str,
    dedupe_key: Callable[[int], str],
    payload_for: Callable[[store.Recipient], dict[str, Any]],
    now: datetime,
) -> int:
    """Queue one message per recipient (dedupe key by resident id); how many were new."""
    queued = 0
    for to in recipients:
        if outbox_store.enqueue(
            session,
            kind=kind,
            dedupe_key=dedupe_key(to.resident_id),
            chat_id=to.chat_id,
            method="sendMessage",
            payload=payload_for(to),
            now=now,
            resident_id=to.resident_id,
        ):
            queued += 1
    return queued


def open_round(
    session: Session, round_id: int, now: datetime, texts: RoundMessages, report: TickReport
) -> None:
    """Open a scheduled round and queue an invitation for every reachable resident of its areas."""
    round_ = store.get_round(session, round_id, lock=True)
    if round_ is None or round_.status != store.SCHEDULED or round_.opens_at > now:
        return
    if round_.closes_at <= now:
        # The bot was down for the whole period: nobody can answer any more; invite nobody.
        round_.status = store.CLOSED
        round_.closed_at = now
        report.missed.append(round_id)
        log.warning("round %d: its whole period passed while the bot was down", round_id)
        return
    round_.status = store.OPEN
    round_.opened_at = now
    report.superseded += store.supersede_standing(session, round_, now)
    invited = _queue(
        session,
        store.not_started(session, round_),
        kind="invitation",
        dedupe_key=lambda resident: f"invite:{round_id}:{resident}",
        payload_for=lambda to: texts.invitation(session, round_, to),
        now=now,
    )
    report.opened.append(round_id)
    report.invitations += invited
    log.info("round %d opened: %d invitation(s) queued", round_id, invited)


def close_round(
    session: Session, round_id: int, now: datetime, texts: RoundMessages, report: TickReport
) -> bool:
    """Close a round: unfinished responses become `closed` (answers kept) and are told so.

    A scheduled round that never opened is closed too (it never opens). False if already closed.
    """
    round_ = store.get_round(session, round_id, lock=True)
    if round_ is None or round_.status == store.CLOSED or round_.standing:
        return False
    was_open = round_.status == store.OPEN
    round_.status = store.CLOSED
    round_.closed_at = now
    if not was_open:
        report.missed.append(round_id)
        return True
    residents = store.close_started_responses(session, round_id, now)
    notices = _queue(
        session,
        store.reachable_among(session, residents),
        kind="round_closed",
        dedupe_key=lambda resident: f"closed:{round_id}:{resident}",
        payload_for=lambda to: texts.closed(session, round_, to),
        now=now,
    )
    report.closed.append(round_id)
    report.closed_responses += len(residents)
    report.closed_notices += notices
    log.info(
        "round %d closed: %d unfinished response(s) closed, %d notice(s) queued",
        round_id,
        len(residents),
        notices,
    )
    return True


def reminder_due(round_: Round, now: datetime) -> int:
    """The number of the latest reminder wave due now (0: none), counted from the opening."""
    if round_.reminder_after_days is None or round_.opened_at is None:
        return 0
    elapsed = now - round_.opened_at
    waves = int(elapsed / timedelta(days=round_.reminder_after_days))
    return min(round_.max_reminders, waves)


def remind(
    session: Session, round_id: int, now: datetime, texts: RoundMessages, report: TickReport
) -> None:
    """Queue the due reminder wave (only the latest one after a long downtime: no bursts)."""
    round_ = store.get_round(session, round_id, lock=True)
    if round_ is None or round_.status != store.OPEN or round_.closes_at <= now:
        return
    wave = reminder_due(round_, now)
    if wave <= round_.reminders_done:
        return
    recipients: list[store.Recipient] = []
    if round_.remind_started:
        recipients += store.started_not_finished(session, round_id)
    if round_.remind_not_started:
        recipients += store.not_started(session, round_)
    sent = _queue(
        session,
        recipients,
        kind="reminder",
        dedupe_key=lambda resident: f"remind:{round_id}:{resident}:{wave}",
        payload_for=lambda to: texts.reminder(session, round_, to),
        now=now,
    )
    store.count_reminder(session, round_id, (to.resident_id for to in recipients if to.started))
    round_.reminders_done = wave
    report.reminders += sent
    log.info("round %d: reminder %d queued for %d resident(s)", round_id, wave, sent)


def close_now(
    db: Database,
    round_id: int,
    now: datetime,
    areas: Areas,
    *,
    tz: ZoneInfo,
    catalogue: Catalogue | None = None,
) -> TickReport | None:
    """Close one round at once (the CLI); None when there is no such round or it is closed."""
    texts = RoundMessages(catalogue or default_catalogue(), areas, tz, db.surveys)
    report = TickReport()
    with db.session() as session:
        if not close_round(session, round_id, now, texts, report):
            return None
    return report
