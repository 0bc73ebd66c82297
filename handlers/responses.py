"""Alliance responses to residents in the alliance's group: /reactie, /vertaling, /reacties, a
reply to a digest, and the buttons under a draft (programme staff's side: handlers/review.py).

Each callback decodes the update, runs its use case (usecases/alliance_responses.py) in one
transaction off the event loop, and shows the result after commit.
"""

from __future__ import annotations

import contextlib
from functools import partial

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from handlers.context import services
from handlers.replies import answer_query, repeated, reply
from handlers.review import review_tap, waiting
from journey import actions, wire
from usecases import alliance_responses as uc
from usecases.response_texts import Reply
from usecases.services import Services

# Telegram shows at most 200 characters on a tapped button's notice.
NOTICE_LIMIT = 200


def env(svc: Services) -> uc.ResponseEnv:
    """The use cases' view of the services."""
    return uc.ResponseEnv.build(
        svc.settings, svc.catalogue, svc.areas, svc.offered_languages, svc.db.surveys
    )


def sender_language(svc: Services, update: Update) -> str:
    """The sender's Telegram language when the bot has texts in it, else Dutch."""
    user = update.effective_user
    code = (user.language_code or "").split("-")[0].lower() if user else ""
    return code if code in svc.catalogue.languages else "nl"


def markup(message: Reply | None) -> InlineKeyboardMarkup | None:
    """A Reply's buttons as Telegram's inline keyboard."""
    if message is None or not message.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(label, callback_data=data) for label, data in row]
            for row in message.buttons
        ]
    )


async def show(update: Update, context: ContextTypes.DEFAULT_TYPE, replies: list[Reply]) -> None:
    """Send replies in order in the update's chat."""
    for message in replies:
        await reply(update, context, message.text, keyboard=markup(message))


async def present(
    update: Update, context: ContextTypes.DEFAULT_TYPE, result: uc.Result | None
) -> None:
    """Show a use case's result (None: the update was not for us)."""
    if result is None:
        return
    if result.repeat:
        repeated(context)
        return
    await show(update, context, result.replies)


def _after_command(text: str | None) -> str:
    """What follows the command, line breaks kept (`/reactie@bot Wij hoorden...` -> text)."""
    parts = (text or "").split(None, 1)
    return parts[1] if len(parts) > 1 else ""


def _replied(context: ContextTypes.DEFAULT_TYPE, message: Message) -> uc.Replied | None:
    """The message this one replies to, if any."""
    replied = message.reply_to_message
    if replied is None:
        return None
    sender = replied.from_user
    return uc.Replied(
        message_id=replied.message_id,
        from_bot=sender is not None and sender.id == context.bot.id,
        text=replied.text or replied.caption or "",
    )


async def _in_group(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Message | None:
    """The update's message when it was written in a group; in a private chat: say where to go."""
    svc = services(context)
    chat, message = update.effective_chat, update.effective_message
    if chat is None or message is None:
        return None
    if chat.type == ChatType.PRIVATE:
        await reply(
            update, context, svc.text(sender_language(svc, update), "responses.group.private_only")
        )
        return None
    return message


async def response_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reactie TEXT in an alliance group: a draft response to residents, with its preview."""
    message = await _in_group(update, context)
    if message is None:
        return
    svc = services(context)
    result = await svc.db.run(
        partial(
            uc.draft,
            env=env(svc),
            chat_id=message.chat_id,
            update_id=update.update_id,
            text=_after_command(message.text),
            replied=_replied(context, message),
            now=svc.clock.now(),
            lang=sender_language(svc, update),
        )
    )
    await present(update, context, result)


async def on_group_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A message in a group replying to the bot: a draft when it replies to a digest."""
    svc = services(context)
    message = update.effective_message
    if message is None or message.text is None:
        return
    replied = _replied(context, message)
    if replied is None or not replied.from_bot:
        return
    result = await svc.db.run(
        partial(
            uc.draft,
            env=env(svc),
            chat_id=message.chat_id,
            update_id=update.update_id,
            text=message.text,
            replied=replied,
            now=svc.clock.now(),
            lang=sender_language(svc, update),
            only_digest_replies=True,
        )
    )
    await present(update, context, result)


async def translation_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/vertaling ID LANG TEXT in an alliance group: a translation of its draft."""
    message = await _in_group(update, context)
    if message is None:
        return
    svc = services(context)
    result = await svc.db.run(
        partial(
            uc.translate,
            env=env(svc),
            chat_id=message.chat_id,
            update_id=update.update_id,
            args=_after_command(message.text),
            replied=_replied(context, message),
            now=svc.clock.now(),
            lang=sender_language(svc, update),
        )
    )
    await present(update, context, result)


async def responses_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reacties: in a group its responses and reactions; for programme staff what waits."""
    svc = services(context)
    chat, message = update.effective_chat, update.effective_message
    if chat is None or message is None:
        return
    if chat.type == ChatType.PRIVATE:
        await show(update, context, await waiting(update, context, env(svc)))
        return
    result = await svc.db.run(
        partial(
            uc.overview,
            env=env(svc),
            chat_id=chat.id,
            update_id=update.update_id,
            now=svc.clock.now(),
            lang=sender_language(svc, update),
        )
    )
    await present(update, context, result)


async def on_response_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Submit or cancel under a draft (the group); approve or reject (programme staff)."""
    svc = services(context)
    query, chat = update.callback_query, update.effective_chat
    if query is None:
        return
    button = wire.decode_response_button(query.data)
    lang = sender_language(svc, update)
    if button is None or chat is None:
        await answer_query(update, svc.text(lang, "notice.old_version"), alert=True)
        return
    if button.verb in (actions.APPROVE, actions.REJECT):
        result = await review_tap(update, context, button, env(svc))
    elif chat.type == ChatType.PRIVATE:
        await answer_query(update, svc.text(lang, "notice.old_version"), alert=True)
        return
    else:
        result = await svc.db.run(
            partial(
                uc.group_tap,
                env=env(svc),
                chat_id=chat.id,
                update_id=update.update_id,
                response_id=button.response_id,
                verb=button.verb,
                now=svc.clock.now(),
                lang=lang,
            )
        )
    await finish_tap(update, context, result)


async def finish_tap(
    update: Update, context: ContextTypes.DEFAULT_TYPE, result: uc.Result | None
) -> None:
    """Answer the tap, edit the tapped message, send what follows."""
    if result is None or result.repeat:  # a repeat of a tap already handled
        if result is not None:
            repeated(context)
        await answer_query(update)
        return
    notice = result.notice[:NOTICE_LIMIT] if result.notice else None
    await answer_query(update, notice, alert=result.alert)
    query = update.callback_query
    tapped = query.message if query is not None and isinstance(query.message, Message) else None
    if result.edit is not None and tapped is not None:
        # Not modified, deleted or lost: cosmetic, the decision is committed.
        with contextlib.suppress(TelegramError):
            await context.bot.edit_message_text(
                chat_id=tapped.chat_id,
                message_id=tapped.message_id,
                text=result.edit.text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup(result.edit),
            )
    await show(update, context, result.replies)
