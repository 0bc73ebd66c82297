"""Resident-flow benchmark: buurtstem's full stack against a bare PTB echo bot.

Both run as real PTB Applications on the same in-process emulated Bot API transport. The full
stack handles consent, language, postcode and the whole default survey per resident (handlers,
engine, one SQLite commit per answer, emulated replies and edits); the echo bot answers every
text with a message and every button tap with answerCallbackQuery plus an edit. The same
sequence of updates (texts and taps) goes to both.

A third run measures the ceiling: a bot that makes exactly the Bot API calls the full stack
made (recorded per update, same texts and keyboards) but does nothing else: no database, no engine,
no handler logic. Its rate is what the full stack would reach if all of that cost nothing.

Run: .venv/bin/python benchmarks/resident_flow.py [--residents 100] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from telegram import Update  # noqa: E402
from telegram.ext import (  # noqa: E402
    Application,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.app import build_application, build_services  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.settings import Settings  # noqa: E402
from sandbox.emulator import JSON, BotAPIEmulator  # noqa: E402
from sandbox.harness import BotHarness, UserHandle  # noqa: E402
from sandbox.transport import emulator_application_builder, emulator_request  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402


def option_data(user: UserHandle, option: str) -> str:
    """Callback data of the newest message's button for `option`."""
    for row in user.last_message().buttons:
        for button in row:
            if button.callback_data and button.callback_data.endswith("|" + option):
                return str(button.callback_data)
    raise LookupError(option)


async def resident_session(user: UserHandle) -> int:
    """One resident from /start to the thank-you; returns the number of updates sent."""
    steps: list[tuple[str, str]] = [
        ("send", "/start"),
        ("tap_first", ""),
        ("data", "v1|lc"),
        ("send", "3563"),
        ("label", "7"),
        ("label", "6"),
    ]
    steps += [("option", o) for o in ("vooruit", "ja", "soms", "zelden_nooit")]
    steps += [("option", "eens")] * 4
    steps += [("option", o) for o in ("vaak", "soms", "nooit", "vaak", "soms", "nooit")]
    steps += [("option", o) for o in ("tevreden", "neutraal", "schoon")]
    steps += [("send", "Meer groen en minder rommel op straat")]
    steps += [("option", o) for o in ("geen", "~d")]  # no optional modules
    for kind, value in steps:
        if kind == "send":
            await user.send(value)
        elif kind == "tap_first":
            await user.tap(data=user.last_message().buttons[0][0].callback_data)
        elif kind == "data":
            await user.tap(data=value)
        elif kind == "label":
            await user.tap(value)
        else:
            await user.tap(data=option_data(user, value))
    return len(steps)


class RecordingHarness(BotHarness):
    """A harness that notes which Bot API calls each update caused, in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.per_update: list[list[tuple[str, JSON]]] = []

    async def deliver(self, update: JSON | None) -> None:
        before = len(self.emulator.requests)
        await super().deliver(update)
        calls = self.emulator.requests[before:]
        self.per_update.append([(r.method, dict(r.params)) for r in calls])


async def full_stack(
    residents: int, database_url: str
) -> tuple[int, float, list[list[tuple[str, JSON]]]]:
    """Updates handled, seconds taken and the Bot API calls of each update (buurtstem's app)."""
    upgrade(database_url)
    db = Database(database_url)
    emulator = BotAPIEmulator()
    settings = Settings(
        database_url=database_url, token=emulator.token, pseudonym_key="benchmark-key"
    )
    services = build_services(settings, db, SystemClock())
    app = build_application(
        services, request=emulator_request(emulator), get_updates_request=emulator_request(emulator)
    )
    updates = 0
    recording = RecordingHarness(emulator, app)
    async with recording as harness:
        users = [harness.user(f"Bewoner {i}") for i in range(residents)]
        started = time.perf_counter()
        for user in users:
            updates += await resident_session(user)
        elapsed = time.perf_counter() - started
        last = users[-1].last_message().visible_text
        if "dank" not in last.lower():
            raise SystemExit(f"the survey did not complete: {last!r}")
        per_update = recording.per_update
    db.dispose()
    return updates, elapsed, per_update


def _markup(params: JSON) -> Any:
    from telegram import InlineKeyboardMarkup

    raw = params.get("reply_markup")
    if not raw:
        return None
    return InlineKeyboardMarkup.de_json(json.loads(raw) if isinstance(raw, str) else raw, None)


async def replay_bot(residents: int, recorded: list[list[tuple[str, JSON]]]) -> tuple[int, float]:
    """The full stack's Bot API calls, update by update, with no other work (the ceiling)."""
    from telegram.ext import TypeHandler

    emulator = BotAPIEmulator()
    app: Application[Any, Any, Any, Any, Any, Any] = emulator_application_builder(emulator).build()
    queue = iter(recorded)

    async def replay(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Make the calls the full stack made for this update."""
        bot = context.bot
        for method, params in next(queue):
            if method == "answerCallbackQuery":
                assert update.callback_query is not None
                await update.callback_query.answer(
                    params.get("text"), show_alert=params.get("show_alert") == "true"
                )
            elif method == "editMessageText":
                await bot.edit_message_text(
                    chat_id=int(params["chat_id"]),
                    message_id=int(params["message_id"]),
                    text=params["text"],
                    parse_mode=params.get("parse_mode"),
                    reply_markup=_markup(params),
                )
            elif method == "sendMessage":
                await bot.send_message(
                    chat_id=int(params["chat_id"]),
                    text=params["text"],
                    parse_mode=params.get("parse_mode"),
                    reply_markup=_markup(params),
                )
            else:
                raise SystemExit(f"the replay does not know {method}")

    app.add_handler(TypeHandler(Update, replay))
    updates = 0
    async with BotHarness(emulator, app) as harness:
        users = [harness.user(f"Bewoner {i}") for i in range(residents)]
        started = time.perf_counter()
        for user in users:
            updates += await resident_session(user)
        elapsed = time.perf_counter() - started
    if next(queue, None) is not None:
        raise SystemExit("the replay did not use every recorded update")
    return updates, elapsed


async def _echo_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Echo a text message, with one button to tap."""
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    assert update.effective_message is not None
    await update.effective_message.reply_text(
        update.effective_message.text or "?",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("tap", callback_data="t")]]),
    )


async def _echo_tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer a tap and edit the message, as a minimal bot does."""
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    query = update.callback_query
    assert query is not None
    await query.answer()
    count = (
        int((query.message.text or "0").split()[-1]) + 1
        if query.message and (query.message.text or "").split()[-1].isdigit()
        else 1
    )  # type: ignore[union-attr]
    await query.edit_message_text(
        f"tapped {count}",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("tap", callback_data="t")]]),
    )


async def echo_bot(residents: int, per_resident: int) -> tuple[int, float]:
    """The same number of updates (texts and taps in the same proportion) to a bare echo bot."""
    emulator = BotAPIEmulator()
    app: Application[Any, Any, Any, Any, Any, Any] = emulator_application_builder(emulator).build()
    app.add_handler(MessageHandler(filters.TEXT, _echo_text))
    app.add_handler(CallbackQueryHandler(_echo_tap))
    updates = 0
    async with BotHarness(emulator, app) as harness:
        users = [harness.user(f"Echo {i}") for i in range(residents)]
        started = time.perf_counter()
        for user in users:
            await user.send("/start")
            updates += 1
            for i in range(per_resident - 1):
                if i in (2, per_resident - 2):
                    await user.send("hallo daar")
                else:
                    await user.tap("tap")
                updates += 1
        elapsed = time.perf_counter() - started
    return updates, elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--residents", type=int, default=100)
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        full_updates, full_seconds, recorded = await full_stack(args.residents, url)
    per_resident = full_updates // args.residents
    echo_updates, echo_seconds = await echo_bot(args.residents, per_resident)
    replay_updates, replay_seconds = await replay_bot(args.residents, recorded)
    full_rate = full_updates / full_seconds
    echo_rate = echo_updates / echo_seconds
    replay_rate = replay_updates / replay_seconds
    calls = sum(len(group) for group in recorded) / len(recorded)
    backend = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(f"residents: {args.residents}, updates per resident: {per_resident}, database: {backend}")
    print(
        f"full stack   : {full_updates:6d} updates in {full_seconds:6.2f} s = {full_rate:7.1f} updates/s"
    )
    print(
        f"echo bot     : {echo_updates:6d} updates in {echo_seconds:6.2f} s = {echo_rate:7.1f} updates/s"
    )
    print(
        f"same calls   : {replay_updates:6d} updates in {replay_seconds:6.2f} s = "
        f"{replay_rate:7.1f} updates/s (the full stack's {calls:.2f} Bot API calls per update, "
        "nothing else)"
    )
    print(f"ratio full/echo: {full_rate / echo_rate:.2f} (goal: 0.50 or better)")
    print(
        f"ceiling (same calls/echo): {replay_rate / echo_rate:.2f}; "
        f"time per update: full {1000 / full_rate:.2f} ms, same calls {1000 / replay_rate:.2f} ms, "
        f"echo {1000 / echo_rate:.2f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
