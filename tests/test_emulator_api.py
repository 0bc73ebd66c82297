"""A real PTB Bot against the emulator in-process: every method, Telegram's errors, rate limits."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import AsyncIterator

import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    MessageEntity,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter

from sandbox import BotAPIEmulator, ManualClock, RateLimits, emulator_request
from sandbox.emulator import image_size, parse_formatted


def png(width: int, height: int) -> bytes:
    """A valid minimal PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def seconds(value: object) -> float:
    """RetryAfter.retry_after: int today, timedelta with PTB_TIMEDELTA."""
    total = getattr(value, "total_seconds", None)
    return float(total() if total else value)  # type: ignore[arg-type]


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data)] for label, data in pairs]
    )


@pytest.fixture
def emulator() -> BotAPIEmulator:
    return BotAPIEmulator()


@pytest.fixture
async def bot(emulator: BotAPIEmulator) -> AsyncIterator[Bot]:
    async with Bot(
        emulator.token,
        request=emulator_request(emulator),
        get_updates_request=emulator_request(emulator),
    ) as bot:
        yield bot


async def test_get_me_describes_the_bot(bot: Bot, emulator: BotAPIEmulator) -> None:
    me = await bot.get_me()
    assert me.is_bot and me.username == "buurtstem_bot" and me.id == emulator.bot.id
    assert me.can_read_all_group_messages is False  # privacy mode on, as for new bots


async def test_send_message_html_markup_and_options(bot: Bot, emulator: BotAPIEmulator) -> None:
    alice = emulator.add_user("Alice", started=True)
    sent = await bot.send_message(
        alice.id,
        "<b>Welkom</b> bij <i>buurtstem</i> &amp; meer",
        parse_mode="HTML",
        reply_markup=keyboard(("Ja", "consent:yes"), ("Nee", "consent:no")),
        link_preview_options=LinkPreviewOptions(is_disabled=True),
        disable_notification=True,
    )
    assert sent.text == "Welkom bij buurtstem & meer"
    assert sent.entities == (
        MessageEntity(MessageEntity.BOLD, 0, 6),
        MessageEntity(MessageEntity.ITALIC, 11, 9),
    )
    assert sent.chat.id == alice.id and sent.chat.type == "private"
    assert sent.from_user is not None and sent.from_user.is_bot
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[1][0].callback_data == "consent:no"
    stored = emulator.sent_to(alice.id)[0]
    assert stored.html == "<b>Welkom</b> bij <i>buurtstem</i> &amp; meer"
    assert stored.button_labels == ["Ja", "Nee"]
    assert stored.disable_notification
    assert stored.link_preview_options == {"is_disabled": True}


async def test_reply_keyboards_are_stored_but_not_echoed(
    bot: Bot, emulator: BotAPIEmulator
) -> None:
    alice = emulator.add_user("Alice", started=True)
    sent = await bot.send_message(alice.id, "Kies", reply_markup=ReplyKeyboardMarkup([["1", "2"]]))
    assert sent.reply_markup is None  # Telegram only echoes inline keyboards
    assert emulator.sent_to(alice.id)[-1].reply_keyboard == [["1", "2"]]
    await bot.send_message(alice.id, "Weg", reply_markup=ReplyKeyboardRemove())
    await bot.send_message(alice.id, "Antwoord?", reply_markup=ForceReply())
    assert emulator.sent_to(alice.id)[-1].keyboard == {"force_reply": True}


async def test_edits_record_history_and_drop_keyboard(bot: Bot, emulator: BotAPIEmulator) -> None:
    alice = emulator.add_user("Alice", started=True)
    sent = await bot.send_message(alice.id, "Vraag 1", reply_markup=keyboard(("A", "a")))
    edited = await bot.edit_message_text("Vraag 1: A", chat_id=alice.id, message_id=sent.message_id)
    assert isinstance(edited, type(sent))
    assert edited.edit_date is not None
    assert edited.reply_markup is None  # editMessageText without reply_markup removes it
    again = await bot.edit_message_reply_markup(
        alice.id, sent.message_id, reply_markup=keyboard(("B", "b"))
    )
    assert not isinstance(again, bool) and again.reply_markup is not None
    stored = emulator.message(alice.id, sent.message_id)
    assert stored.text == "Vraag 1: A"
    assert [e.text for e in stored.edits] == ["Vraag 1", "Vraag 1: A"]
    assert stored.button_labels == ["B"]


async def test_message_not_modified(bot: Bot, emulator: BotAPIEmulator) -> None:
    alice = emulator.add_user("Alice", started=True)
    sent = await bot.send_message(alice.id, "Zelfde", reply_markup=keyboard(("A", "a")))
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text(
            "Zelfde",
            chat_id=alice.id,
            message_id=sent.message_id,
            reply_markup=keyboard(("A", "a")),
        )
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(
            alice.id, sent.message_id, reply_markup=keyboard(("A", "a"))
        )


async def test_bad_requests(bot: Bot, emulator: BotAPIEmulator) -> None:
    alice = emulator.add_user("Alice", started=True)
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(alice.id, "x", reply_markup=keyboard(("Lang", "x" * 65)))
    await bot.send_message(alice.id, "x", reply_markup=keyboard(("Precies", "x" * 64)))
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(alice.id, "   ")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(alice.id, "a" * 4097)
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(-999, "x")
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("y", chat_id=alice.id, message_id=999)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(alice.id, 999)
    with pytest.raises(BadRequest, match="Can't parse entities: unsupported start tag"):
        await bot.send_message(alice.id, "<div>x</div>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="reserved and must be escaped"):
        await bot.send_message(alice.id, "Dank je.", parse_mode="MarkdownV2")
    assert emulator.stats["error_400"] == 8


async def test_unknown_token_is_unauthorized(emulator: BotAPIEmulator) -> None:
    with pytest.raises(InvalidToken):
        await Bot("1:WRONG", request=emulator_request(emulator)).initialize()
    status, body = await emulator.call("getMe", token="1:WRONG")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})


async def test_forbidden_when_blocked_or_never_started(bot: Bot, emulator: BotAPIEmulator) -> None:
    alice = emulator.add_user("Alice", started=True)
    bob = emulator.add_user("Bob")
    emulator.block(alice)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(alice.id, "Hallo")
    with pytest.raises(Forbidden, match="can't initiate conversation"):
        await bot.send_message(bob.id, "Hallo")
    emulator.unblock(alice)
    await bot.send_message(alice.id, "Hallo weer")
    assert [m.text for m in emulator.sent_to(alice.id)] == ["Hallo weer"]


async def test_callback_answer_once_then_too_old(bot: Bot, emulator: BotAPIEmulator) -> None:
    alice = emulator.add_user("Alice", started=True)
    sent = await bot.send_message(alice.id, "Doe je mee?", reply_markup=keyboard(("Ja", "yes")))
    update = emulator.user_taps(alice, emulator.message(alice.id, sent.message_id), label="Ja")
    query = update["callback_query"]
    assert query["data"] == "yes" and query["message"]["message_id"] == sent.message_id
    assert await bot.answer_callback_query(query["id"], text="Bedankt", show_alert=True)
    record = emulator.callback_queries[query["id"]]
    assert (record.answered, record.answer_text, record.show_alert) == (True, "Bedankt", True)
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query["id"])


async def test_callback_query_expires_on_the_emulator_clock() -> None:
    clock = ManualClock()
    emulator = BotAPIEmulator(clock=clock)
    alice = emulator.add_user("Alice", started=True)
    async with Bot(emulator.token, request=emulator_request(emulator)) as bot:
        sent = await bot.send_message(alice.id, "?", reply_markup=keyboard(("Ja", "yes")))
        update = emulator.user_taps(alice, emulator.message(alice.id, sent.message_id), data="yes")
        clock.advance(16)
        with pytest.raises(BadRequest, match="Query is too old"):
            await bot.answer_callback_query(update["callback_query"]["id"])


async def test_photo_and_document_uploads_round_trip(bot: Bot, emulator: BotAPIEmulator) -> None:
    alice = emulator.add_user("Alice", started=True)
    image = png(1600, 900)
    photo = await bot.send_photo(alice.id, image, caption="<b>Grafiek</b>", parse_mode="HTML")
    assert photo.caption == "Grafiek"
    assert [(p.width, p.height) for p in photo.photo] == [
        (90, 51),
        (320, 180),
        (800, 450),
        (1280, 720),
        (1600, 900),
    ]
    assert emulator.file_bytes(photo.photo[-1].file_id) == image
    csv = b"buurt;n\nOvervecht;12\n"
    doc = await bot.send_document(alice.id, io.BytesIO(csv), filename="digest.csv", caption="CSV")
    assert doc.document is not None
    assert (doc.document.file_name, doc.document.mime_type, doc.document.file_size) == (
        "digest.csv",
        "text/csv",
        len(csv),
    )
    file = await bot.get_file(doc.document.file_id)
    assert bytes(await file.download_as_bytearray()) == csv
    again = await bot.send_document(alice.id, doc.document.file_id)  # resend by file_id
    assert again.document is not None and again.document.file_id == doc.document.file_id
    with pytest.raises(BadRequest, match="Image_process_failed"):
        await bot.send_photo(alice.id, b"not an image")
    with pytest.raises(BadRequest, match="Wrong file identifier"):
        await bot.send_document(alice.id, "no-such-file-id")


async def test_commands_chat_action_get_chat_delete_close(
    bot: Bot, emulator: BotAPIEmulator
) -> None:
    alice = emulator.add_user("Alice", started=True)
    scope = BotCommandScopeAllPrivateChats()
    assert await bot.set_my_commands(
        [BotCommand("start", "Begin")], scope=scope, language_code="tr"
    )
    assert await bot.set_my_commands([BotCommand("start", "Beginnen")])
    assert [c.description for c in await bot.get_my_commands(scope=scope, language_code="tr")] == [
        "Begin"
    ]
    assert [c.description for c in await bot.get_my_commands()] == ["Beginnen"]
    assert await bot.get_my_commands(scope=scope) == ()
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Start!", "x")])
    assert await bot.send_chat_action(alice.id, "typing")
    assert emulator.chat_actions[-1]["action"] == "typing"
    chat = await bot.get_chat(alice.id)
    assert chat.first_name == "Alice" and chat.type == "private"
    group = emulator.add_group("Alliantie Overvecht", type="supergroup")
    info = await bot.get_chat(group.id)
    assert info.title == "Alliantie Overvecht" and info.type == "supergroup"
    sent = await bot.send_message(alice.id, "weg ermee")
    assert await bot.delete_message(alice.id, sent.message_id)
    assert emulator.sent_to(alice.id) == []
    assert emulator.sent_to(alice.id, include_deleted=True)[0].deleted
    assert await bot.log_out() and await bot.close()


async def test_get_updates_offsets_entities_and_update_kinds(
    bot: Bot, emulator: BotAPIEmulator
) -> None:
    alice = emulator.add_user("Alice", language_code="tr")
    emulator.user_sends(alice, "/start overvecht-3561")
    emulator.user_sends(alice, content=emulator.sticker_content())
    emulator.user_sends(alice, content=emulator.photo_content(png(40, 30)), text="kijk")
    emulator.user_sends(alice, content=emulator.voice_content(4))
    emulator.user_sends(alice, content=emulator.location_content(52.1, 5.1))
    updates = await bot.get_updates()
    assert [u.update_id for u in updates] == [1, 2, 3, 4, 5]
    first = updates[0].message
    assert first is not None and first.text == "/start overvecht-3561"
    assert first.entities == (MessageEntity(MessageEntity.BOT_COMMAND, 0, 6),)
    assert first.from_user is not None and first.from_user.language_code == "tr"
    kinds = [u.message for u in updates[1:]]
    assert kinds[0] is not None and kinds[0].sticker is not None
    assert kinds[1] is not None and kinds[1].photo and kinds[1].caption == "kijk"
    assert kinds[2] is not None and kinds[2].voice is not None and kinds[2].voice.duration == 4
    assert kinds[3] is not None and kinds[3].location is not None
    # Unconfirmed updates come again; an offset confirms and drops them.
    assert len(await bot.get_updates()) == 5
    assert [u.update_id for u in await bot.get_updates(offset=4)] == [4, 5]
    assert await bot.get_updates(offset=6) == ()
    assert emulator.pending_update_count == 0


async def test_redelivery_keeps_the_update_id(bot: Bot, emulator: BotAPIEmulator) -> None:
    alice = emulator.add_user("Alice")
    update = emulator.user_sends(alice, "hallo")
    assert update is not None
    assert [u.update_id for u in await bot.get_updates()] == [1]
    emulator.redeliver(update)
    assert [u.update_id for u in await bot.get_updates(offset=2)] == [1]
    assert await bot.get_updates(offset=2) == ()


async def test_allowed_updates_filters_and_persists(bot: Bot, emulator: BotAPIEmulator) -> None:
    alice = emulator.add_user("Alice")
    emulator.user_sends(alice, "hallo")
    emulator.block(alice)  # my_chat_member
    updates = await bot.get_updates(allowed_updates=["my_chat_member"])
    assert [u.my_chat_member is not None for u in updates] == [True]
    assert updates[0].my_chat_member is not None
    assert updates[0].my_chat_member.new_chat_member.status == "kicked"


async def test_long_polling_waits_for_an_update(bot: Bot, emulator: BotAPIEmulator) -> None:
    import asyncio

    alice = emulator.add_user("Alice")
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await emulator.wait_until(lambda: len(emulator.calls("getUpdates")) == 1)
    assert not poll.done()
    emulator.user_sends(alice, "ben je daar?")
    updates = await asyncio.wait_for(poll, 5)
    assert updates[0].message is not None and updates[0].message.text == "ben je daar?"


async def test_second_poller_terminates_the_first(bot: Bot, emulator: BotAPIEmulator) -> None:
    import asyncio

    first = asyncio.create_task(bot.get_updates(timeout=5))
    await emulator.wait_until(lambda: len(emulator.calls("getUpdates")) == 1)
    second = asyncio.create_task(bot.get_updates(timeout=0))
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 5)
    assert await second == ()


async def test_webhook_state_and_conflict(bot: Bot, emulator: BotAPIEmulator) -> None:
    alice = emulator.add_user("Alice")
    emulator.user_sends(alice, "hallo")
    assert await bot.set_webhook("https://example.org/hook", secret_token="s3cret")
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count) == ("https://example.org/hook", 1)
    assert emulator.webhook_secret == "s3cret"
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates()
    with pytest.raises(BadRequest, match="unallowed characters"):
        await bot.set_webhook("https://example.org/hook", secret_token="not allowed!")
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert (await bot.get_webhook_info()).url == ""
    assert await bot.get_updates() == ()


async def test_rate_limits_give_429_with_retry_after() -> None:
    clock = ManualClock()
    emulator = BotAPIEmulator(clock=clock, limits=RateLimits(enabled=True, private_burst=2))
    alice = emulator.add_user("Alice", started=True)
    async with Bot(emulator.token, request=emulator_request(emulator)) as bot:
        first = await bot.send_message(alice.id, "1")
        await bot.send_message(alice.id, "2")
        # Edits and callback answers don't count: a tap answered with edit + message is fine.
        await bot.edit_message_text("1b", chat_id=alice.id, message_id=first.message_id)
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(alice.id, "3")
        assert seconds(caught.value.retry_after) == 1
        clock.advance(1)
        await bot.send_message(alice.id, "3")
    assert [m.text for m in emulator.sent_to(alice.id)] == ["1b", "2", "3"]
    assert emulator.rate_limited_count == 1 and emulator.stats["error_429"] == 1


async def test_global_and_group_limits() -> None:
    clock = ManualClock()
    emulator = BotAPIEmulator(clock=clock, limits=RateLimits(enabled=True))
    users = [emulator.add_user(f"U{i}", started=True) for i in range(31)]
    group = emulator.add_group("Alliantie")
    async with Bot(emulator.token, request=emulator_request(emulator)) as bot:
        for user in users[:30]:
            await bot.send_message(user.id, "ronde open")
        with pytest.raises(RetryAfter):
            await bot.send_message(users[30].id, "ronde open")
        clock.advance(1)
        for i in range(20):
            await bot.send_message(group.id, f"digest {i}")
            clock.advance(0.1)
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(group.id, "te veel")
        assert 55 <= seconds(caught.value.retry_after) <= 60
    assert emulator.rate_limited_count == 2


async def test_status_codes_in_raw_json(emulator: BotAPIEmulator) -> None:
    status, body = await emulator.call("sendMessage", {"chat_id": 1, "text": "x"})
    assert (status, body) == (
        400,
        {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
    )
    status, body = await emulator.call("noSuchMethod", {})
    assert (status, body["description"]) == (404, "Not Found")
    emulator.limits.enabled = True
    emulator.limits.private_burst = 1
    alice = emulator.add_user("Alice", started=True)
    assert (await emulator.call("sendMessage", {"chat_id": alice.id, "text": "a"}))[0] == 200
    status, body = await emulator.call("sendMessage", {"chat_id": str(alice.id), "text": "b"})
    assert status == 429 and body["parameters"]["retry_after"] >= 1
    assert (
        body["description"] == f"Too Many Requests: retry after {body['parameters']['retry_after']}"
    )


def test_html_parsing_offsets_in_utf16() -> None:
    text, entities = parse_formatted("😀 <b>vet</b> <a href='https://x.nl'>link</a>", "HTML")
    assert text == "😀 vet link"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 3},
        {"type": "text_link", "offset": 7, "length": 4, "url": "https://x.nl"},
    ]
    with pytest.raises(Exception, match="Can't find end tag"):
        parse_formatted("<b>open", "HTML")


def test_markdown_v2_parsing() -> None:
    text, entities = parse_formatted(r"*Vet* en _schuin_ 1\.0", "MarkdownV2")
    assert text == "Vet en schuin 1.0"
    assert [e["type"] for e in entities] == ["bold", "italic"]


def test_image_size() -> None:
    assert image_size(png(3, 2)) == (3, 2)
    assert image_size(b"GIF89a\x05\x00\x04\x00") == (5, 4)
    assert image_size(b"plain text") is None
