"""Residents in a private chat: decode the update, run its use case off the event loop, render.

The journey itself (consent, language, area, the survey) is journey/; its transaction is
usecases/resident.py. These callbacks only turn Telegram updates into the journey's inputs and
the outcome into Telegram calls, after the transaction committed.
"""

from __future__ import annotations

import asyncio
from functools import partial

from sqlalchemy.orm import Session
from telegram import Message, Update
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from handlers.context import services
from handlers.replies import answer_query, perform, repeated, reply
from journey import wire
from journey.model import Command, Input, Media, Start, Tap, Text
from usecases.resident import Handled, Who, handle, language_of
from usecases.services import Services


def telegram_language(svc: Services, update: Update) -> str:
    """The sender's Telegram language if buurtstem offers it, else Dutch."""
    user = update.effective_user
    code = user.language_code if user is not None else None
    return svc.journey_context(svc.clock.now(), code).telegram_language or "nl"


def who(update: Update) -> Who:
    """The sender of an update (a private chat's user)."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    return Who(user.id, chat.id, user.language_code)


def readable(text: str) -> str:
    """A text as Telegram can carry it: a lone surrogate (only a forged update has one, as JSON's
    "\\ud800") becomes U+FFFD, so the text can be stored, shown back and exported."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


async def _run(update: Update, context: ContextTypes.DEFAULT_TYPE, given: Input) -> None:
    """The update's use case on a worker thread, then its replies."""
    svc = services(context)
    handled = await svc.db.run(partial(_handle, update=update, given=given, svc=svc))
    if handled.outcome is None:
        repeated(context)
    else:
        await perform(update, context, handled.outcome, handled.resident_id)


def _handle(session: Session, *, update: Update, given: Input, svc: Services) -> Handled:
    return handle(svc, session, update.update_id, who(update), given)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Begin (intro, privacy notice, consent) or continue where the resident was."""
    await _run(update, context, Start(readable(context.args[0]) if context.args else ""))


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A typed message: a postcode, or an answer to the current question."""
    message = update.effective_message
    assert message is not None and message.text is not None
    await _run(update, context, Text(readable(message.text)))


async def on_other_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, photos, voice, locations...: a polite prompt with the current question again."""
    await _run(update, context, Media())


async def language_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Offer the languages again."""
    await _run(update, context, Command("language"))


async def area_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show where the resident lives and let them change it (or keep it)."""
    await _run(update, context, Command("area"))


async def stop_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """No more invitations; answers are kept."""
    await _run(update, context, Command("stop"))


async def forget_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Ask for confirmation before erasing everything about the resident."""
    await _run(update, context, Command("forget"))


async def _language_of(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    """The resident's language, or Telegram's, or Dutch (read only: nothing is stored)."""
    svc = services(context)
    sender = who(update)
    return await svc.db.run(lambda session: language_of(svc, session, sender))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """What the bot does, its commands, and where to go in an emergency."""
    svc = services(context)
    lang = await _language_of(update, context)
    await reply(update, context, svc.text(lang, "help") + "\n\n" + svc.text(lang, "safety"))


async def privacy_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The privacy notice in full, and where to go in an emergency."""
    svc = services(context)
    lang = await _language_of(update, context)
    notice = svc.journey_context(svc.clock.now()).privacy_text(lang, "privacy")
    await reply(update, context, notice + "\n\n" + svc.text(lang, "safety"))


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any other command: say so kindly."""
    svc = services(context)
    lang = await _language_of(update, context)
    await reply(update, context, svc.text(lang, "notice.unknown_command"))


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every inline button of the resident flow."""
    svc = services(context)
    query = update.callback_query
    assert query is not None
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE:
        # Resident buttons live in private chats: a tap anywhere else (a forged one, an inline
        # message) must not consent, answer or erase for anyone.
        text = svc.text(telegram_language(svc, update), "notice.private_only")
        await answer_query(update, text, alert=True)
        return
    action = wire.decode_action(query.data)
    if action is None:
        await answer_query(
            update, svc.text(await _language_of(update, context), "notice.old_version"), alert=True
        )
        return
    # The spinner stops at once, while the answer is stored: notices that matter come as a
    # message after the work (a callback can be answered only once).
    answered = asyncio.ensure_future(answer_query(update))
    message = query.message if isinstance(query.message, Message) else None
    # The tapped message as the resident sees it: a stale question is turned into its record.
    shown = message.text_html if message is not None and message.text else None
    given = Tap(action, message.message_id if message is not None else None, shown)
    try:
        handled = await svc.db.run(partial(_handle, update=update, given=given, svc=svc))
    finally:
        await answered
    outcome = handled.outcome
    if outcome is None:
        repeated(context)
        return
    if outcome.alert and outcome.notice:
        outcome.send(outcome.notice)
    await perform(update, context, outcome, handled.resident_id)
