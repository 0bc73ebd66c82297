"""Programme staff approve or reject alliance responses in their private chat with the bot.

A request to approve arrives by itself when a group puts a response forward (through the
outbox); /reacties shows every response still waiting. Only staff (BUURTSTEM_ADMIN_IDS) decide:
anyone else who taps such a button is told so, and /reacties answers them as any unknown command.
"""

from __future__ import annotations

from functools import partial

from telegram import Update
from telegram.ext import ContextTypes

from handlers.admin import is_staff
from handlers.context import services
from handlers.resident import telegram_language, unknown_command
from journey import actions
from usecases import alliance_responses as uc
from usecases.response_texts import Reply


async def waiting(
    update: Update, context: ContextTypes.DEFAULT_TYPE, response_env: uc.ResponseEnv
) -> list[Reply]:
    """/reacties in a private chat: for staff the responses waiting for approval."""
    svc = services(context)
    if not is_staff(svc, update):
        # No hint that the command exists: the same answer as any unknown command.
        await unknown_command(update, context)
        return []
    lang = telegram_language(svc, update)
    return await svc.db.run(partial(uc.waiting, env=response_env, lang=lang))


async def review_tap(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    button: actions.ResponseButton,
    response_env: uc.ResponseEnv,
) -> uc.Result:
    """Approve or reject: only programme staff, only in their private chat."""
    svc = services(context)
    lang = telegram_language(svc, update)
    user = update.effective_user
    if user is None or not is_staff(svc, update):
        return uc.Result(notice=svc.text(lang, "responses.review.not_staff"), alert=True)
    return await svc.db.run(
        partial(
            uc.staff_tap,
            env=response_env,
            update_id=update.update_id,
            staff_id=user.id,
            response_id=button.response_id,
            verb=button.verb,
            now=svc.clock.now(),
            lang=lang,
        )
    )
