"""The bot's own membership of a chat changed (my_chat_member): usecases/chat_membership.py.

Groups: removed pauses a linked alliance's digests; added back resumes them and says so in the
group. Private chats: a resident who blocks the bot is unreachable, one who unblocks reachable.
"""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from digests.schedule import Schedule
from handlers.alliance import area_name, describe_schedule
from handlers.context import services
from handlers.replies import repeated, reply
from usecases.chat_membership import IN_CHAT, OUT_OF_CHAT, group_membership, private_membership


async def on_my_chat_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """my_chat_member: the bot was added to, removed from, blocked or unblocked in a chat."""
    svc = services(context)
    change = update.my_chat_member
    if change is None:
        return
    old, new = change.old_chat_member.status, change.new_chat_member.status
    if new in IN_CHAT and old in OUT_OF_CHAT:
        in_chat = True
    elif new in OUT_OF_CHAT and old not in OUT_OF_CHAT:
        in_chat = False
    else:
        return  # promoted, restricted, ...: still in the chat, nothing changes
    chat, now = change.chat, svc.clock.now()
    if chat.type == ChatType.PRIVATE:
        handled = await svc.db.call(
            private_membership,
            svc.db,
            bot_id=svc.bot_id,
            update_id=update.update_id,
            resident_pseudonym=svc.resident_key(change.from_user.id),
            in_chat=in_chat,
            now=now,
        )
        if not handled:
            repeated(context)
        return
    if chat.type not in (ChatType.GROUP, ChatType.SUPERGROUP):
        return
    change_done = await svc.db.call(
        group_membership,
        svc.db,
        bot_id=svc.bot_id,
        update_id=update.update_id,
        chat_id=chat.id,
        in_chat=in_chat,
        now=now,
    )
    if change_done.repeated:
        repeated(context)
    resumed = change_done.resumed
    if resumed is None:
        return
    lang = resumed.language
    text = svc.text(
        lang,
        "alliance.link.resumed",
        area=area_name(svc, resumed.area_code),
        schedule=describe_schedule(svc, lang, Schedule.from_json(resumed.schedule)),
    )
    await reply(update, context, text)
