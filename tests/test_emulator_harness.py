"""A tiny real PTB Application driven through the harness, by process_update and by polling."""

from __future__ import annotations

import time
from typing import Any

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import Forbidden
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from sandbox import BotAPIEmulator, RateLimits
from sandbox.harness import BotHarness, HarnessError
from sandbox.transport import emulator_application_builder

App = Application[Any, Any, Any, Any, Any, Any]


def build_echo_app(
    emulator: BotAPIEmulator,
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] | None = None,
) -> tuple[App, dict[str, list[Any]]]:
    """An echo bot with a command, buttons, group membership and dedup by update_id."""
    seen: dict[str, list[Any]] = {"update_ids": [], "joined": [], "blocked": [], "kinds": []}

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        payload = " ".join(context.args or [])
        markup = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton("Ja", callback_data="yes"),
                    InlineKeyboardButton("Nee", callback_data="no"),
                ]
            ]
        )
        await update.effective_message.reply_text(f"Welkom ({payload or '-'})", reply_markup=markup)

    async def koppel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Gekoppeld: " + " ".join(context.args or []))

    async def tapped(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Opgeslagen")
        await query.edit_message_text(f"Antwoord: {query.data}")
        assert query.message is not None
        await context.bot.send_message(query.message.chat.id, "Volgende vraag")

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        # Telegram may deliver an update twice; a bot drops repeats by update_id.
        if update.update_id in seen["update_ids"]:
            return
        seen["update_ids"].append(update.update_id)
        if message.text:
            await message.reply_text(message.text)
        else:
            kind = "sticker" if message.sticker else "photo" if message.photo else "other"
            seen["kinds"].append(kind)
            await message.reply_text(f"Ik kan geen {kind} lezen")

    async def membership(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.my_chat_member
        assert change is not None
        if change.chat.type == "private":
            seen["blocked"].append(change.new_chat_member.status)
        else:
            seen["joined"].append(change.new_chat_member.status)

    app = (builder or emulator_application_builder(emulator)).build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("koppel", koppel))
    app.add_handler(CallbackQueryHandler(tapped))
    app.add_handler(ChatMemberHandler(membership, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(MessageHandler(~filters.COMMAND & ~filters.StatusUpdate.ALL, echo))
    return app, seen


@pytest.fixture(params=["process", "polling"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_resident_flow(mode: str) -> None:
    emulator = BotAPIEmulator()
    app, _ = build_echo_app(emulator)
    async with BotHarness(emulator, app, mode=mode) as h:
        alice = h.user("Alice", language_code="tr")
        await alice.send("/start overvecht")
        question = alice.last_message()
        assert question.text == "Welkom (overvecht)"
        assert question.button_labels == ["Ja", "Nee"]
        await alice.tap("Ja")
        assert alice.last_callback_answer is not None
        assert alice.last_callback_answer.text == "Opgeslagen"
        assert [m.text for m in alice.messages()] == ["Antwoord: yes", "Volgende vraag"]
        assert question.edits[0].text == "Welkom (overvecht)" and question.buttons == []
        await alice.send("hallo")
        assert alice.last_message().text == "hallo"
        assert emulator.pending_update_count == 0


async def test_tap_on_an_old_message_and_missing_buttons() -> None:
    emulator = BotAPIEmulator()
    app, _ = build_echo_app(emulator)
    async with BotHarness(emulator, app) as h:
        alice = h.user("Alice")
        await alice.send("/start")
        first = alice.last_message()
        await alice.send("/start")
        await alice.tap_on(first, data="no")
        assert first.text == "Antwoord: no"
        with pytest.raises(LookupError):
            await alice.tap("Misschien")


async def test_duplicate_delivery_is_visible_to_the_bot(mode: str) -> None:
    emulator = BotAPIEmulator()
    app, seen = build_echo_app(emulator)
    async with BotHarness(emulator, app, mode=mode) as h:
        alice = h.user("Alice")
        await alice.send("eenmaal")
        await alice.resend_last_update()
        assert [m.text for m in alice.messages()] == ["eenmaal"]  # delivered exactly once
        assert seen["update_ids"] == [1]
        assert sum(1 for u in emulator.updates_log if u["update_id"] == 1) == 2


async def test_groups_privacy_mode_and_membership(mode: str) -> None:
    emulator = BotAPIEmulator()
    app, seen = build_echo_app(emulator)
    async with BotHarness(emulator, app, mode=mode) as h:
        alice = h.user("Alice")
        bob = h.user("Bob")
        group = await h.add_group("Alliantie Overvecht", by=alice)
        assert seen["joined"] == ["member"]
        await group.send(alice, "/koppel ABC")
        await group.send(bob, "/koppel@buurtstem_bot XYZ")
        await group.send(bob, "/koppel@other_bot NOPE")
        await group.send(bob, "gewoon kletsen")  # privacy mode: the bot never sees this
        assert [m.text for m in group.messages()] == ["Gekoppeld: ABC", "Gekoppeld: XYZ"]
        await group.remove_bot(alice)
        assert seen["joined"] == ["member", "kicked"]


async def test_non_text_messages_and_blocking() -> None:
    emulator = BotAPIEmulator()
    app, seen = build_echo_app(emulator)
    async with BotHarness(emulator, app) as h:
        alice = h.user("Alice")
        await alice.send_sticker()
        assert alice.last_message().text == "Ik kan geen sticker lezen"
        await alice.send_voice()
        await alice.send_location(52.09, 5.12)
        assert seen["kinds"] == ["sticker", "other", "other"]
        await alice.block()
        assert seen["blocked"] == ["kicked"]
        with pytest.raises(Forbidden):
            await app.bot.send_message(alice.chat_id, "ronde open")
        await alice.unblock()
        assert seen["blocked"] == ["kicked", "member"]


async def test_handler_errors_fail_the_test() -> None:
    emulator = BotAPIEmulator(limits=RateLimits(enabled=True, private_burst=1))
    app, _ = build_echo_app(emulator)
    async with BotHarness(emulator, app) as h:
        alice = h.user("Alice")
        await alice.send("/start")
        # Tap answers with an edit plus a new message: with a burst of 1 that is a 429.
        with pytest.raises(HarnessError, match="RetryAfter"):
            await alice.tap("Ja")
        assert emulator.rate_limited_count == 1


async def test_default_burst_allows_edit_and_message_after_a_tap() -> None:
    emulator = BotAPIEmulator(limits=RateLimits(enabled=True))
    app, _ = build_echo_app(emulator)
    async with BotHarness(emulator, app) as h:
        alice = h.user("Alice")
        await alice.send("/start")
        await alice.tap("Nee")
        assert emulator.rate_limited_count == 0


async def test_measure_echo_throughput(mode: str) -> None:
    """Baseline for the benchmark: updates per second through the in-process harness."""
    emulator = BotAPIEmulator()
    app, _ = build_echo_app(emulator)
    count = 300
    async with BotHarness(emulator, app, mode=mode) as h:
        alice = h.user("Alice")
        started = time.perf_counter()
        for i in range(count):
            await alice.send(f"bericht {i}")
        elapsed = time.perf_counter() - started
    assert len(alice.messages()) == count
    print(f"\necho bot, {mode}: {count / elapsed:.0f} updates/s ({count} updates)")


async def test_polling_skips_update_kinds_the_app_did_not_ask_for() -> None:
    emulator = BotAPIEmulator()
    app, seen = build_echo_app(emulator)
    async with BotHarness(emulator, app, mode="polling") as h:
        emulator.allowed_updates = ["message"]  # as if set by an earlier getUpdates call
        alice = h.user("Alice")
        await alice.send("hallo")
        await alice.block()  # my_chat_member is filtered out: returns instead of timing out
        assert seen["blocked"] == []
        assert alice.last_message().text == "hallo"
