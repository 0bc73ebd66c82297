"""Alliance group chats: /koppel CODE (alias /link) links a group to its area; /digest on demand."""

from __future__ import annotations

import asyncio
import html
import logging
from datetime import datetime

from sqlalchemy.orm import Session
from telegram import Update
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from digests.schedule import WEEKDAYS, Schedule
from handlers.context import services
from handlers.replies import repeated, reply
from storage import alliances as store
from storage.residents import claim_update
from usecases.link_alliance import link_alliance
from usecases.queue_digests import queue_on_demand
from usecases.services import Services

log = logging.getLogger(__name__)


def _lang(svc: Services, update: Update) -> str:
    user = update.effective_user
    code = (user.language_code or "").split("-")[0].lower() if user else ""
    return code if code in svc.catalogue.languages else "nl"


def local_time(svc: Services, moment: datetime) -> str:
    """`09-11-2026 09:00` in the configured time zone."""
    return f"{moment.astimezone(svc.settings.tz):%d-%m-%Y %H:%M}"


def describe_schedule(svc: Services, lang: str, schedule: Schedule) -> str:
    """`elke maandag om 09:00`."""
    day = svc.text(lang, f"alliance.days.{WEEKDAYS[schedule.weekday]}")
    return svc.text(
        lang, f"alliance.schedule.{schedule.every}", day=day, time=schedule.at.strftime("%H:%M")
    )


def area_name(svc: Services, code: str) -> str:
    area = svc.areas.get(code)
    return html.escape(area.name if area else code, quote=False)


async def link_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/koppel CODE in a group: link it to the code's area; elsewhere: explain."""
    svc = services(context)
    chat, message = update.effective_chat, update.effective_message
    if chat is None or message is None:
        return
    lang = _lang(svc, update)
    if chat.type == ChatType.PRIVATE:
        await reply(update, context, svc.text(lang, "alliance.link.private_only"))
        return
    now = svc.clock.now()
    result = await svc.db.call(
        link_alliance,
        svc.db,
        bot_id=svc.bot_id,
        update_id=update.update_id,
        chat_id=chat.id,
        title=chat.title,
        text=" ".join(context.args or []),
        key=svc.settings.pseudonym_key,
        now=now,
        failures_per_hour=svc.settings.link_failures_per_hour,
    )
    if result is None:
        repeated(context)
    else:
        await reply(update, context, _link_reply(svc, lang, result, now))


def _link_reply(svc: Services, lang: str, result: store.LinkResult, now: datetime) -> str:
    if result.outcome == "linked" and result.alliance is not None:
        schedule = Schedule.from_json(result.alliance.schedule)
        return svc.text(
            lang,
            "alliance.link.linked",
            area=area_name(svc, result.alliance.area_code),
            schedule=describe_schedule(svc, lang, schedule),
            next=local_time(svc, schedule.next_run(now, svc.settings.timezone)),
        )
    if result.outcome in ("already_linked", "other_area") and result.alliance is not None:
        return svc.text(
            lang, f"alliance.link.{result.outcome}", area=area_name(svc, result.alliance.area_code)
        )
    if result.outcome in ("blocked", "busy") and result.blocked_until is not None:
        return svc.text(
            lang, f"alliance.link.{result.outcome}", time=local_time(svc, result.blocked_until)
        )
    reply = svc.text(lang, f"alliance.link.{result.outcome}")
    if result.blocked_until is not None:
        # This failure used up the free tries: say when the next one is possible.
        reply += "\n" + svc.text(
            lang, "alliance.link.blocked", time=local_time(svc, result.blocked_until)
        )
    return reply


async def digest_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/digest in a linked group: this area's digest now, through the outbox (rate limited)."""
    svc = services(context)
    chat, message = update.effective_chat, update.effective_message
    if chat is None or message is None:
        return
    lang = _lang(svc, update)
    now = svc.clock.now()

    def claim(session: Session) -> str | None:
        if not claim_update(session, svc.bot_id, update.update_id, now):
            return None
        # The group wrote to the bot, so the bot is in it: paused digests resume, also when
        # the update saying it was added back never came.
        alliance = store.bot_back(session, chat.id)
        return alliance.language if alliance is not None else lang

    claimed = await svc.db.run(claim)
    if claimed is None:
        repeated(context)
        return
    lang = claimed
    result = await asyncio.to_thread(
        queue_on_demand,
        svc.db,
        chat.id,
        svc.areas,
        now,
        min_n=svc.settings.min_cell_size,
        tz=svc.settings.tz,
        catalogue=svc.catalogue,
        charts=svc.charts,
        references=svc.references,
    )
    if result.outcome == "too_soon" and result.retry_at is not None:
        answer = svc.text(lang, "alliance.digest.too_soon", time=local_time(svc, result.retry_at))
    else:
        answer = svc.text(lang, f"alliance.digest.{result.outcome}")
    await reply(update, context, answer)


async def group_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/help or /start in a group: what buurtstem does here, linked or not."""
    svc = services(context)
    chat = update.effective_chat
    if chat is None:
        return
    lang = _lang(svc, update)

    def read(session: Session) -> tuple[str, str, Schedule] | None:
        alliance = store.alliance_of_chat(session, chat.id)
        if alliance is None:
            return None
        return alliance.area_code, alliance.language, Schedule.from_json(alliance.schedule)

    found = await svc.db.run(read)
    if found is None:
        text = svc.text(lang, "alliance.help.not_linked")
    else:
        area, lang, schedule = found
        text = svc.text(
            lang,
            "alliance.help.linked",
            area=area_name(svc, area),
            schedule=describe_schedule(svc, lang, schedule),
        )
    await reply(update, context, text)


async def results_in_group(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/results in a group: it is the residents' command, for a private chat with the bot."""
    svc = services(context)
    chat = update.effective_chat
    if chat is None:
        return
    lang = _lang(svc, update)

    def read(session: Session) -> str | None:
        alliance = store.alliance_of_chat(session, chat.id)
        return alliance.language if alliance is not None else None

    linked_language: str | None = await svc.db.run(read)
    await reply(update, context, svc.text(linked_language or lang, "alliance.results.group_only"))


async def on_migrate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A linked group became a supergroup (new chat id): the link moves along."""
    svc = services(context)
    message = update.effective_message
    if message is None or message.migrate_to_chat_id is None:
        return
    old_id, new_id = message.chat_id, message.migrate_to_chat_id
    if await svc.db.run(lambda session: store.migrate_chat(session, old_id, new_id)):
        log.info("alliance chat migrated to a supergroup")
