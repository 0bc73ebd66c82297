"""Programme staff in Telegram: /rounds shows the open rounds with responses per area."""

from __future__ import annotations

import asyncio
import html

from telegram import Update
from telegram.ext import ContextTypes

from handlers.context import services
from handlers.replies import reply
from handlers.resident import telegram_language, unknown_command
from storage import rounds as store
from storage.survey_versions import get_survey_version
from surveys.times import local
from usecases.services import Services

# Telegram refuses messages over 4096 characters; stay clear of it.
MAX_MESSAGE = 3900


def is_staff(svc: Services, update: Update) -> bool:
    """Whether the sender is programme staff (settings.admin_ids), in a private chat."""
    user, chat = update.effective_user, update.effective_chat
    return (
        user is not None
        and chat is not None
        and chat.type == "private"
        and user.id in svc.settings.admin_ids
    )


async def rounds_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/rounds: staff get the status of open rounds; anyone else the unknown-command answer."""
    svc = services(context)
    if not is_staff(svc, update):
        # No hint that the command exists: the same answer as any unknown command.
        await unknown_command(update, context)
        return
    lang = telegram_language(svc, update) or "nl"
    # Off the event loop: other residents' updates go on while the counts are read.
    status = await asyncio.to_thread(rounds_status, svc, lang)
    for chunk in split_message(status):
        await reply(update, context, chunk)


def rounds_status(svc: Services, lang: str) -> str:
    """The /rounds text: each open round, its period and responses per area (counts only)."""
    tz = svc.settings.tz
    now = svc.clock.now()
    text = svc.text
    lines = [text(lang, "rounds.admin.header", now=local(now, tz))]
    with svc.db.session() as session:
        rounds = store.open_rounds(session)
        counts = store.response_counts(session, [r.id for r in rounds])
        scheduled = store.count_scheduled(session)
        if not rounds:
            lines.append(text(lang, "rounds.admin.none"))
        for round_ in rounds:
            version = get_survey_version(session, round_.survey_version_id)
            survey = f"{version.survey_id} {version.version}" if version else "?"
            lines.append("")
            if round_.standing:
                lines.append(
                    text(
                        lang,
                        "rounds.admin.standing",
                        name=html.escape(round_.name),
                        survey=html.escape(survey),
                    )
                )
            else:
                period = f"{local(round_.opens_at, tz)} – {local(round_.closes_at, tz)}"
                lines.append(
                    text(
                        lang,
                        "rounds.admin.round",
                        name=html.escape(round_.name),
                        id=round_.id,
                        survey=html.escape(survey),
                        period=period,
                    )
                )
            per_area = counts[round_.id]
            if not per_area:
                lines.append(text(lang, "rounds.admin.no_responses"))
            for count in per_area:
                area = svc.areas.get(count.area_code)
                lines.append(
                    text(
                        lang,
                        "rounds.admin.area",
                        area=html.escape(area.name if area else count.area_code),
                        started=count.started,
                        completed=count.completed,
                    )
                )
            if len(per_area) > 1:
                lines.append(
                    text(
                        lang,
                        "rounds.admin.total",
                        started=sum(c.started for c in per_area),
                        completed=sum(c.completed for c in per_area),
                    )
                )
    if scheduled:
        lines.append("")
        lines.append(text(lang, "rounds.admin.scheduled", count=scheduled))
    return "\n".join(lines)


def split_message(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split a long text at line ends into messages Telegram accepts."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        if current and size + len(line) + 1 > limit:
            chunks.append("\n".join(current))
            current, size = [], 0
        current.append(line[:limit])
        size += len(line) + 1
    if current:
        chunks.append("\n".join(current))
    return chunks
