"""Carrying out a handler's plan after commit: edits, messages, and what to do when they fail.

Bot API calls already wait out 429s and retry what is safe to retry (bot/retrying.py). What
reaches this module is final: a resident who blocked the bot (403), a message Telegram refuses
(400), or a reply that could not be sent after the retries. Each is logged once, without ids or
texts, and counted; the update itself is done (its answer is committed). When the message that
asks the current question is lost, the response says so, and the resident's next tap or message
brings the question back (handlers/resident.py).
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import ContextTypes

from handlers.flow import Edit, Outgoing, Plan
from handlers.services import services
from storage import responses as response_store

log = logging.getLogger(__name__)


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
    metrics: Any = context.application.bot_data.get("buurtstem.metrics")
    if metrics is not None:
        metrics.reply_lost(reason)


async def perform(update: Update, context: ContextTypes.DEFAULT_TYPE, plan: Plan) -> None:
    """Edits and messages of a plan: messages in order, edits alongside them."""
    chat = update.effective_chat
    if chat is None or (not plan.edits and not plan.messages):
        return
    await asyncio.gather(
        *(_edit(context, chat.id, edit) for edit in plan.edits),
        _send_all(context, chat.id, plan.messages),
    )


async def _edit(context: ContextTypes.DEFAULT_TYPE, chat_id: int, edit: Edit) -> None:
    try:
        await context.bot.edit_message_text(
            chat_id=chat_id,
            message_id=edit.message_id,
            text=edit.text,
            parse_mode=ParseMode.HTML,
            reply_markup=InlineKeyboardMarkup(edit.keyboard) if edit.keyboard else None,
        )
    except BadRequest as exc:
        # "message is not modified" or a message the resident deleted: the record is cosmetic.
        log.debug("edit skipped: %s", exc.message)
    except TelegramError as exc:
        _lost(context, "edit", exc)


async def _send_all(
    context: ContextTypes.DEFAULT_TYPE, chat_id: int, messages: list[Outgoing]
) -> None:
    """Send in order; a lost message does not stop the next (it may be the question)."""
    svc = services(context)
    for outgoing in messages:
        response_id = outgoing.asks
        try:
            sent: Message = await context.bot.send_message(
                chat_id=chat_id,
                text=outgoing.text,
                parse_mode=ParseMode.HTML,
                reply_markup=outgoing.markup,
            )
        except Forbidden as exc:
            _lost(context, "message", exc)
            return  # blocked: the rest would fail alike
        except TelegramError as exc:
            _lost(context, "message", exc)
            if response_id is not None:
                # The next tap or message of the resident brings the question back.
                await svc.db.run(
                    partial(response_store.mark_question_lost, response_id=response_id)
                )
            continue
        if response_id is not None and outgoing.remember_id:
            await svc.db.run(
                partial(
                    response_store.set_question_message,
                    response_id=response_id,
                    message_id=sent.message_id,
                )
            )


async def reply(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    text: str,
    *,
    keyboard: Any = None,
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
