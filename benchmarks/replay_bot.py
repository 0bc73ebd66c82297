"""The ceiling of benchmarks/concurrency.py: a webhook bot that makes recorded calls, nothing else.

It receives the same updates as buurtstem did in the recorded run and, for the k-th update of a
chat, makes the Bot API calls buurtstem made for the k-th update of that chat: the same texts and
keyboards, answerCallbackQuery at once and the edits alongside the messages, as buurtstem does.
No database, no engine, no handler logic: its rate is what buurtstem would reach if all its own
work cost nothing. It runs under the same update processor (per-chat order, the same limit) and
the same HTTP client settings.

    python benchmarks/replay_bot.py RECORDING.json   (settings from BUURTSTEM_* variables)
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from telegram import InlineKeyboardMarkup, Update  # noqa: E402
from telegram.ext import Application, ContextTypes, TypeHandler  # noqa: E402

from bot.app import bot_api_request  # noqa: E402
from bot.commands.run import webhook_path  # noqa: E402
from bot.ordering import ChatOrderedProcessor  # noqa: E402
from bot.settings import Settings  # noqa: E402

# chat id -> per update of that chat: [(method, params)]; a message id in params is given as
# {"nth": n}: the n-th message the bot sent to that chat (ids differ between runs).
Recording = dict[int, list[list[tuple[str, dict[str, Any]]]]]


def load(path: str) -> Recording:
    raw = json.loads(Path(path).read_text())
    return {int(chat): [[(m, p) for m, p in calls] for calls in ups] for chat, ups in raw.items()}


class Replayer:
    """Per chat: which update comes next, and the ids of the messages sent so far."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.position: dict[int, int] = defaultdict(int)
        self.sent: dict[int, list[int]] = defaultdict(list)

    def _message_id(self, chat: int, value: Any) -> int:
        if isinstance(value, dict) and "nth" in value:
            return self.sent[chat][int(value["nth"])]
        return int(value)

    async def handle(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Make this update's recorded calls: the answer at once, then edits beside sends."""
        chat = update.effective_chat
        if chat is None:
            return
        index = self.position[chat.id]
        self.position[chat.id] += 1
        calls = self.recording.get(chat.id, [])
        if index >= len(calls):
            return
        bot = context.bot
        answers = [p for m, p in calls[index] if m == "answerCallbackQuery"]
        answering = None
        if answers and update.callback_query is not None:
            answering = asyncio.ensure_future(update.callback_query.answer(answers[0].get("text")))
        edits = [
            bot.edit_message_text(
                chat_id=chat.id,
                message_id=self._message_id(chat.id, p["message_id"]),
                text=p["text"],
                parse_mode=p.get("parse_mode"),
                reply_markup=_markup(p),
            )
            for m, p in calls[index]
            if m == "editMessageText"
        ]
        sends = [p for m, p in calls[index] if m == "sendMessage"]

        async def send_all() -> None:
            for p in sends:
                sent = await bot.send_message(
                    chat_id=chat.id,
                    text=p["text"],
                    parse_mode=p.get("parse_mode"),
                    reply_markup=_markup(p),
                )
                self.sent[chat.id].append(sent.message_id)

        if answering is not None:
            await answering
        await asyncio.gather(*edits, send_all(), return_exceptions=True)


def _markup(params: dict[str, Any]) -> InlineKeyboardMarkup | None:
    raw = params.get("reply_markup")
    if not raw:
        return None
    return InlineKeyboardMarkup.de_json(json.loads(raw) if isinstance(raw, str) else raw, None)


def main() -> None:
    """Serve the webhook until stopped."""
    settings = Settings()
    replayer = Replayer(load(sys.argv[1]))
    assert settings.token and settings.webhook_url
    base = settings.api_base_url.rstrip("/")
    application = (
        Application.builder()
        .token(settings.token)
        .base_url(base + "/bot")
        .base_file_url(base + "/file/bot")
        .concurrent_updates(ChatOrderedProcessor(settings.concurrent_updates))
        .request(bot_api_request(settings))
        .build()
    )
    application.add_handler(TypeHandler(Update, replayer.handle))
    application.run_webhook(
        listen=settings.webhook_listen,
        port=settings.webhook_port,
        url_path=webhook_path(settings.webhook_url),
        webhook_url=settings.webhook_url,
        secret_token=settings.webhook_secret,
        allowed_updates=["message", "callback_query"],
    )


if __name__ == "__main__":
    main()
