"""Carrying out an outcome after commit: edits, messages, and what to do when they fail.

Bot API calls already wait out 429s and retry what is safe to retry (bot/retrying.py). What
reaches this module is final: a resident who blocked the bot (403), a message Telegram refuses
(400), or a reply that could not be sent after the retries. Each is logged once, without ids or
texts, and counted; the update itself is done (its answer is committed). When the message that
asks the current question is lost, its response says so, and the resident's next tap or message
brings the question back (journey/survey.py).
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import ContextTypes

from handlers.context import METRICS_KEY, services
from journey import wire
from journey.model import Edit, Keyboard, Outcome, Send
from usecases.resident import question_lost, question_sent

log = logging.getLogger(__name__)


def markup(keyboard: Keyboard | None) -> InlineKeyboardMarkup | None:
    """The journey's abstract buttons as Telegram's inline keyboard."""
    if not keyboard:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(button.label, callback_data=wire.encode_action(button.action))
                for button in row
            ]
            for row in keyboard
        ]
    )


def _reason(exc: TelegramError) -> str:
    if isinstance(exc, Forbidden):
        return "blocked"
    if isinstance(exc, BadRequest):
        return "refused"
    if isinstance(exc, RetryAfter):
        return "flood"
    return "network"


def _lost(context: ContextTypes.DEFAULT_TYPE, what: str, exc: TelegramError) -> None:
    """Log and count a reply that did not arrive (Telegram's error texts name no chat or user)."""
    reason = _reason(exc)
    log.warning("%s not delivered (%s): %s", what, reason, type(exc).__name__)
    metrics: Any = context.application.bot_data.get(METRICS_KEY)
    if metrics is not None:
        metrics.reply_lost(reason)


def repeated(context: ContextTypes.DEFAULT_TYPE) -> None:
    """An update handled before (Telegram delivers at least once): ignored, logged as a count."""
    log.info("update ignored: handled before (a repeat delivery)")
    metrics: Any = context.application.bot_data.get(METRICS_KEY)
    if metrics is not None:
        metrics.update_repeated()


async def perform(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    outcome: Outcome,
    resident_id: int | None = None,
) -> None:
    """Edits and messages of an outcome: messages in order, edits alongside them."""
    chat = update.effective_chat
    if chat is None or (not outcome.edits and not outcome.sends):
        return
    await asyncio.gather(
        *(_edit(context, chat.id, edit) for edit in outcome.edits),
        _send_all(context, chat.id, outcome.sends, resident_id),
    )


async def _edit(context: ContextTypes.DEFAULT_TYPE, chat_id: int, edit: Edit) -> None:
    try:
        await context.bot.edit_message_text(
            chat_id=chat_id,
            message_id=edit.message_id,
            text=edit.text,
            parse_mode=ParseMode.HTML,
            reply_markup=markup(edit.keyboard),
        )
    except BadRequest as exc:
        # "message is not modified" or a message the resident deleted: the record is cosmetic.
        log.debug("edit skipped: %s", exc.message)
    except TelegramError as exc:
        _lost(context, "edit", exc)


async def _send_all(
    context: ContextTypes.DEFAULT_TYPE, chat_id: int, sends: list[Send], resident_id: int | None
) -> None:
    """Send in order; a lost message does not stop the next (it may be the question)."""
    svc = services(context)
    for message in sends:
        try:
            sent: Message = await context.bot.send_message(
                chat_id=chat_id,
                text=message.text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup(message.keyboard),
            )
        except Forbidden as exc:
            _lost(context, "message", exc)
            return  # blocked: the rest would fail alike
        except TelegramError as exc:
            _lost(context, "message", exc)
            if message.asks is not None and resident_id is not None:
                await svc.db.run(
                    partial(question_lost, resident_id=resident_id, round_id=message.asks)
                )
            continue
        if message.asks is not None and message.remember_id and resident_id is not None:
            await svc.db.run(
                partial(
                    question_sent,
                    resident_id=resident_id,
                    round_id=message.asks,
                    message_id=sent.message_id,
                )
            )


async def reply(
    update: Update, context: ContextTypes.DEFAULT_TYPE, text: str, *, keyboard: Any = None
) -> Message | None:
    """A plain HTML reply in the update's chat; a final failure is logged once, not raised."""
    chat = update.effective_chat
    if chat is None:
        return None
    try:
        return await context.bot.send_message(
            chat_id=chat.id, text=text, parse_mode=ParseMode.HTML, reply_markup=keyboard
        )
    except TelegramError as exc:
        _lost(context, "reply", exc)
        return None


async def answer_query(update: Update, text: str | None = None, *, alert: bool = False) -> None:
    """Answer a button tap (stops the spinner); a late or failed answer is not an error."""
    query = update.callback_query
    if query is None:
        return
    try:
        await query.answer(text, show_alert=alert)
    except TelegramError as exc:
        log.debug("callback answer skipped: %s", type(exc).__name__)
