"""Random and malformed messages, commands and edits, from residents, groups and channels.

A real PTB Application of buurtstem, driven through the emulated Bot API (tests/adversarial/
fuzzing.py). After every example: no crash, no ERROR line, no reply showing internals, nothing
stored that consent did not allow, no stored answer changed by anything but a new answer, and
the resident still finishes the survey.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.emulator import JSON, SimChat, detect_entities
from sandbox.harness import UserHandle
from tests.adversarial.fuzzing import (
    EXAMPLES,
    STAGES,
    Session,
    bring_to,
    datas,
    finish,
    onboard,
    placeholder,
    question_buttons,
    session,
)

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Pieces that break parsers, renderers and databases.
NASTY = [
    "\x00",
    "\x07\x08\x1b[31m",
    "\r\n",
    "\u202e",  # right-to-left override
    "\u2066\u2069",  # isolates
    "\u200b\u200c\u200d\u2060",  # zero-width
    "\ufeff",
    "\ud800",  # a lone surrogate: JSON's \ud800 escape decodes to it
    "\udfff",
    "<b>",
    "</code>",
    "<i>niet dicht",
    '<a href="tg://user?id=1">klik</a>',
    "&lt;&amp;&#0;&#x110000;",
    "*_[`~>#+-=|{}.!",
    "[link](tg://user?id=42)",
    "%s %d {0} {name} {{",
    "'; DROP TABLE answers; --",
    "3563",
    "7",
    "/start",
    "🏳️‍🌈",
    "ﷺ",
    "مرحبا",
    "Z̸̢̛a̵l̶g̷o̴",
]
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
ODD_CHARACTERS = st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Mn", "So", "Lo"])


@st.composite
def texts(draw: st.DrawFn) -> str:
    """A text of nasty pieces and odd characters; sometimes over Telegram's 4,096."""
    pieces = draw(
        st.lists(
            st.one_of(
                st.sampled_from(NASTY),
                st.text(ODD_CHARACTERS, max_size=20),
                st.text(max_size=20),
                SURROGATES,
            ),
            min_size=1,
            max_size=6,
        )
    )
    text = "".join(pieces)
    if draw(st.integers(0, 5)) == 0:
        # Longer than a message can be (a forged webhook call): 4,097 to ~9,000 characters.
        text = (text or "x") * (4097 // max(1, len(text)) + 1)
        text += draw(st.sampled_from(["", "🏳️‍🌈" * 1000, "a" * 4000]))
    return text or "\u200b"


def check_stored(
    s: Session,
    user: UserHandle,
    before: dict[Any, Any],
    totals: tuple[int, int, int, int],
    *,
    consented: bool,
    may_answer: set[str],
) -> None:
    """Nothing stored before consent; no stored answer changed; new ones only for
    `may_answer` (the question shown)."""
    if not consented:
        assert s.resident_id(user) is None, "a resident stored without consent"
        assert s.totals() == totals, "rows stored without consent"
        return
    after = s.answers(user)
    for key, value in before.items():
        assert after.get(key) == value, (
            f"stored answer {key} changed: {value!r} -> {after.get(key)!r}"
        )
    new = {key[1] for key in after.keys() - before.keys()}
    assert new <= may_answer, f"answers stored for {new - may_answer}"


def current_question(user: UserHandle) -> set[str]:
    messages = user.messages()
    buttons = question_buttons(messages[-1]) if messages else []
    return {buttons[0].split("|")[3]} if buttons else set()


# ---------------------------------------------------------------------- tests


def test_texts_at_every_step(
    sqlite_url: str, make_services: Any, make_app: Any, emulator: Any
) -> None:
    services = make_services(sqlite_url)
    with session(services, make_app, emulator) as s:

        @FUZZ
        @given(stage=st.sampled_from(STAGES), text=texts())
        def example(stage: str, text: str) -> None:
            user = s.user()
            s.run(bring_to(s, user, stage))
            before, totals = s.answers(user), s.totals()
            may = current_question(user)
            s.run(s.send(user, text))
            s.check([user.chat_id], [text])
            check_stored(
                s, user, before, totals, consented=stage not in ("new", "declined"), may_answer=may
            )
            s.run(finish(s, user))

        example()


def test_media_mid_survey(
    sqlite_url: str, make_services: Any, make_app: Any, emulator: Any
) -> None:
    services = make_services(sqlite_url)
    with session(services, make_app, emulator) as s:
        e = s.emulator
        contents = {
            "sticker": lambda: e.sticker_content("🤡"),
            "photo": lambda: e.photo_content(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
            "voice": lambda: e.voice_content(2),
            "location": lambda: e.location_content(52.1, 5.1),
            "document": lambda: e.document_content(b"%PDF-1.4 junk", "../../etc/passwd.pdf"),
            "contact": lambda: {
                "contact": {"phone_number": "+31612345678", "first_name": "Jan", "user_id": 1}
            },
            "dice": lambda: {"dice": {"emoji": "🎲", "value": 6}},
            "venue": lambda: {
                "venue": {
                    "location": {"latitude": 52.1, "longitude": 5.1},
                    "title": "<b>Plein</b>",
                    "address": "Straat 1",
                }
            },
            "video_note": lambda: {
                "video_note": {
                    "file_id": "vn1",
                    "file_unique_id": "vn1u",
                    "length": 240,
                    "duration": 2,
                }
            },
        }

        @FUZZ
        @given(
            stage=st.sampled_from(STAGES),
            kind=st.sampled_from(sorted(contents)),
            caption=st.one_of(st.none(), texts()),
        )
        def example(stage: str, kind: str, caption: str | None) -> None:
            user = s.user()
            s.run(bring_to(s, user, stage))
            before, totals = s.answers(user), s.totals()
            if caption is None:
                s.run(user.send_content(contents[kind]()))
            else:
                s.run(s.send(user, caption, contents[kind]()))
            s.check([user.chat_id], [caption or ""])
            # A caption is not an answer: media never answer a question.
            check_stored(
                s,
                user,
                before,
                totals,
                consented=stage not in ("new", "declined"),
                may_answer=set(),
            )
            s.run(finish(s, user))

        example()


def test_edited_messages_are_not_answers(
    sqlite_url: str, make_services: Any, make_app: Any, emulator: Any
) -> None:
    services = make_services(sqlite_url)
    with session(services, make_app, emulator) as s:

        @FUZZ
        @given(
            stage=st.sampled_from(["new", "area", "question", "text question"]),
            first=st.sampled_from(["/start", "7", "3563", "Meer groen", "/forget", "/stop"]),
            edited=st.one_of(st.sampled_from(["3", "3584", "/start", "/forget", "/stop"]), texts()),
        )
        def example(stage: str, first: str, edited: str) -> None:
            user = s.user()
            s.run(bring_to(s, user, stage))
            mine = s.run(user.send(first))
            before, totals = s.answers(user), s.totals()
            shown = len(user.messages())
            resident = s.resident_id(user)
            s.run(s.edit(user, mine, edited))
            s.check([user.chat_id], [first, edited])
            # An edit changes nothing: no answer, no new message, no stored state.
            assert s.answers(user) == before
            assert s.totals() == totals
            assert s.resident_id(user) == resident
            assert len(user.messages()) == shown, user.messages()[-1].visible_text
            s.run(finish(s, user))

        example()


def test_an_edited_answer_does_not_answer_the_next_question(
    sqlite_url: str, make_services: Any, make_app: Any, emulator: Any
) -> None:
    """Regression: an edit of a typed answer was taken as the answer to the next question."""
    services = make_services(sqlite_url)
    with session(services, make_app, emulator) as s:
        user = s.user()
        s.run(onboard(user))
        typed = s.run(user.send("7"))
        before = s.answers(user)
        assert sorted(v for v in before.values()) == [7]
        s.run(user.edit(typed, "3"))
        assert s.answers(user) == before
        s.check([user.chat_id], [])
        s.run(finish(s, user))


COMMANDS = [
    "start",
    "help",
    "privacy",
    "language",
    "area",
    "stop",
    "forget",
    "results",
    "rounds",
    "koppel",
    "link",
    "digest",
    "reactie",
    "vertaling",
    "reacties",
    "onbekend",
]
ARGUMENTS = st.one_of(
    st.just(""),
    st.sampled_from(
        [
            "utrecht-overvecht",
            "UTRECHT_OVERVECHT",
            "overvecht-noord",
            "x" * 56,
            "x" * 64,
            "y" * 65,
            "a" * 300,
            "utrecht-overvecht" + "-" * 40,
            "ABCD-EFGH-JKLM",
            "0000",
            "-1",
            str(10**40),
            "<b>x</b>",
            "🏳️‍🌈",
            "1 2 3 4 5 6 7 8",
        ]
    ),
    st.text(st.characters(codec="ascii", categories=["L", "N", "Pd", "Pc"]), max_size=80),
    texts(),
)


class Places:
    """A group and a channel the bot is in, made once per test."""

    def __init__(self, s: Session) -> None:
        self.group = s.h.group("Buurtgroep", type="supergroup", admin=True)
        channel_id = -1_009_999_000_001
        self.channel = SimChat(
            id=channel_id, type="channel", title="Kanaal", bot_status="administrator"
        )
        s.emulator.chats[channel_id] = self.channel
        s.emulator.messages_by_chat[channel_id] = {}
        self._ids = itertools.count(1)


async def channel_post(s: Session, places: Places, text: str, *, edited: bool = False) -> None:
    """A post in a channel the bot administers."""
    chat = places.channel.to_api()
    post = {
        "message_id": next(places._ids),
        "sender_chat": chat,
        "chat": chat,
        "date": s.emulator.now(),
        "text": text,
        "entities": detect_entities(placeholder(text)),
    }
    if edited:
        post["edit_date"] = s.emulator.now()
    await s.deliver_raw({"edited_channel_post" if edited else "channel_post": post})


def test_commands_with_odd_arguments(
    sqlite_url: str, make_services: Any, make_app: Any, emulator: Any
) -> None:
    services = make_services(sqlite_url)
    with session(services, make_app, emulator) as s:
        places = Places(s)
        bot = s.emulator.bot.username

        @FUZZ
        @given(
            where=st.sampled_from(["private", "private", "group", "channel"]),
            command=st.sampled_from(COMMANDS),
            suffix=st.sampled_from(["", "", f"@{bot}", "@otherbot", "@"]),
            argument=ARGUMENTS,
        )
        def example(where: str, command: str, suffix: str, argument: str) -> None:
            user = s.user()
            text = f"/{command}{suffix} {argument}".rstrip(" ")
            totals = s.totals()
            if where == "private":
                s.run(s.send(user, text))
            elif where == "group":
                s.run(s.send(user, text, chat=places.group.chat))
            else:
                s.run(channel_post(s, places, text))
            s.check([user.chat_id, places.group.chat_id, places.channel.id], [text])
            # Nobody consented, nobody linked: nothing stored (no resident, no alliance).
            assert s.resident_id(user) is None
            assert s.totals() == totals
            if where == "private" and command == "start":
                # Whatever the payload, the consent button works.
                s.run(finish(s, user))

        example()


def test_a_long_start_payload_still_gets_a_consent_button(
    sqlite_url: str, make_services: Any, make_app: Any, emulator: Any
) -> None:
    """Regression: /start with a payload of 56+ characters put it in the consent button's
    callback data, over Telegram's 64 bytes: the intro came without its consent message."""
    services = make_services(sqlite_url)
    with session(services, make_app, emulator) as s:
        for payload in ("x" * 56, "utrecht-overvecht" + "-" * 47, "a" * 64):
            user = s.user()
            s.run(user.send(f"/start {payload}"))
            s.check([user.chat_id], [])
            consent_data = [d for d in datas(user.last_message()) if d.startswith("v1|c|")]
            assert consent_data == ["v1|c||nl|"]
            s.run(finish(s, user))
        # A link that names a place still places the resident, whatever its spelling.
        user = s.user()
        s.run(user.send("/start UTRECHT_OVERVECHT"))
        assert "v1|c|utrecht-overvecht|nl|" in datas(user.last_message())
        s.run(user.tap(data="v1|c|utrecht-overvecht|nl|"))
        s.run(user.tap(data="v1|lc"))
        s.check([user.chat_id], [])
        s.run(finish(s, user))


def test_commands_mid_survey_keep_the_answers(
    sqlite_url: str, make_services: Any, make_app: Any, emulator: Any
) -> None:
    services = make_services(sqlite_url)
    with session(services, make_app, emulator) as s:

        @FUZZ
        @given(
            stage=st.sampled_from(["language", "area", "question", "text question", "done"]),
            commands=st.lists(
                st.tuples(st.sampled_from(COMMANDS), ARGUMENTS), min_size=1, max_size=3
            ),
        )
        def example(stage: str, commands: list[tuple[str, str]]) -> None:
            user = s.user()
            s.run(bring_to(s, user, stage))
            before = s.answers(user)
            sent = []
            for command, argument in commands:
                text = f"/{command} {argument}".rstrip(" ")
                sent.append(text)
                s.run(s.send(user, text))
                if command == "forget" and "v1|f|y" in datas(user.last_message()):
                    # Changing one's mind about erasing.
                    s.run(user.tap(data="v1|f|n"))
            s.check([user.chat_id], sent)
            after = s.answers(user)
            assert {k: after.get(k) for k in before} == before
            s.run(finish(s, user))

        example()


@pytest.mark.parametrize("edited", [False, True])
def test_channel_posts_and_edits_store_nothing(
    sqlite_url: str, make_services: Any, make_app: Any, emulator: Any, edited: bool
) -> None:
    services = make_services(sqlite_url)
    with session(services, make_app, emulator) as s:
        places = Places(s)
        totals = s.totals()
        for text in ("/start", "/start utrecht-overvecht", "/koppel ABCD-EFGH", "3563", "/digest"):
            s.run(channel_post(s, places, text, edited=edited))
        s.check([places.channel.id], [])
        assert s.totals() == totals


def test_a_lone_surrogate_in_a_free_text_answer(
    sqlite_url: str, make_services: Any, make_app: Any, emulator: Any
) -> None:
    """Regression: a text with a lone surrogate (JSON's "\\ud800", only in a forged update) was
    stored as given, and the edit that turns the question into its record could not be sent."""
    services = make_services(sqlite_url)
    with session(services, make_app, emulator) as s:
        user = s.user()
        s.run(bring_to(s, user, "text question"))
        question = user.last_message()
        s.run(s.send(user, "Meer \ud800groen\udfff"))
        s.check([user.chat_id], [])
        stored = [v for (_, q, _), v in s.answers(user).items() if q == "improve"]
        assert stored == ["Meer \ufffdgroen\ufffd"]
        record = s.emulator.message(user.chat_id, question.message_id)
        assert "Meer \ufffdgroen\ufffd" in record.visible_text and not record.buttons
        s.run(finish(s, user))


def test_smoke_on_each_database(
    database_url: str, make_services: Any, make_app: Any, emulator: Any
) -> None:
    """A fixed handful of the above on SQLite and PostgreSQL: nasty texts at each step, media,
    an edit, forged and oversized taps, then the resident finishes."""
    services = make_services(database_url)
    with session(services, make_app, emulator) as s:
        user = s.user()
        nasty = "\x00\u202e<b>\ud800 </code> *_[ '; DROP TABLE answers; --"
        totals = s.totals()
        s.run(s.send(user, nasty + "\u200b" * 4100))
        s.run(s.send(user, "/start " + "x" * 80))
        s.run(s.tap_data(user, "v1|q|" + str(10**40) + "|grade_liveability|7"))
        assert s.totals() == totals
        s.run(bring_to(s, user, "text question"))
        before = s.answers(user)
        s.run(user.send_sticker())
        s.run(s.tap_data(user, "v1|lc|" + "x" * 70))
        s.run(s.send(user, nasty))
        typed = [m for m in s.emulator.messages(user.chat_id) if not m.from_bot][-1]
        s.run(s.edit(user, typed, "bewerkt \udfff"))
        after = s.answers(user)
        assert {k: after[k] for k in before} == before
        [improve] = [v for (_, q, _), v in after.items() if q == "improve"]
        assert "\ud800" not in improve and "DROP TABLE" in improve
        s.check([user.chat_id], [nasty])
        s.run(finish(s, user))


def other_updates(s: Session, user: UserHandle, group: SimChat) -> dict[str, JSON]:
    """One update of each other kind PTB reads, about `user` and their chat where it can be."""
    me = user.user.to_api()
    bot = s.emulator.bot.to_api()
    private = s.emulator.private_chat(user.user).to_api()
    chat = group.to_api()
    now = s.emulator.now()
    message = {"message_id": 10**6, "date": now, "chat": private, "from": me, "text": "7"}
    address = {"country_code": "NL", "state": "", "city": "Utrecht", "street_line1": "<b>"}
    address |= {"street_line2": "", "post_code": "3563"}
    return {
        "message_reaction": {
            "chat": private,
            "message_id": 1,
            "user": me,
            "date": now,
            "old_reaction": [],
            "new_reaction": [{"type": "emoji", "emoji": "👍"}],
        },
        "message_reaction_count": {
            "chat": chat,
            "message_id": 1,
            "date": now,
            "reactions": [{"type": {"type": "emoji", "emoji": "👍"}, "total_count": 3}],
        },
        "poll_answer": {
            "poll_id": "1",
            "user": me,
            "option_ids": [0],
            "option_persistent_ids": ["a"],
        },
        "chat_join_request": {"chat": chat, "from": me, "user_chat_id": user.id, "date": now},
        "chat_member": {
            "chat": chat,
            "from": me,
            "date": now,
            "old_chat_member": {"status": "left", "user": me},
            "new_chat_member": {"status": "member", "user": me},
        },
        "my_chat_member": {
            "chat": chat,
            "from": me,
            "date": now,
            "old_chat_member": {"status": "member", "user": bot},
            "new_chat_member": {"status": "member", "user": bot},
        },
        "inline_query": {"id": "1", "from": me, "query": "<b>/start x", "offset": ""},
        "chosen_inline_result": {"result_id": "1", "from": me, "query": "/start"},
        "shipping_query": {
            "id": "1",
            "from": me,
            "invoice_payload": "v1|c||nl|",
            "shipping_address": address,
        },
        "pre_checkout_query": {
            "id": "1",
            "from": me,
            "currency": "EUR",
            "total_amount": 1,
            "invoice_payload": "v1|lc",
        },
        "chat_boost": {
            "chat": chat,
            "boost": {
                "boost_id": "1",
                "add_date": now,
                "expiration_date": now + 1,
                "source": {"source": "premium", "user": me},
            },
        },
        "removed_chat_boost": {
            "chat": chat,
            "boost_id": "1",
            "remove_date": now,
            "source": {"source": "premium", "user": me},
        },
        "business_connection": {
            "id": "bc1",
            "user": me,
            "user_chat_id": user.id,
            "date": now,
            "is_enabled": True,
            "rights": {},
        },
        # A customer writing to a business account the bot serves: not a resident's message.
        "business_message": message | {"business_connection_id": "bc1"},
        "edited_business_message": message | {"business_connection_id": "bc1", "edit_date": now},
        "deleted_business_messages": {
            "business_connection_id": "bc1",
            "chat": private,
            "message_ids": [1],
        },
        "purchased_paid_media": {"from": me, "paid_media_payload": "v1|f|y"},
        # A private chat's message without a sender: only a forged update has one.
        "message": {key: value for key, value in message.items() if key != "from"},
    }


def test_every_other_kind_of_update(
    sqlite_url: str, make_services: Any, make_app: Any, emulator: Any
) -> None:
    services = make_services(sqlite_url)
    with session(services, make_app, emulator) as s:
        group = s.h.group("Buurtgroep", type="supergroup", admin=True).chat

        @FUZZ
        @given(stage=st.sampled_from(STAGES), kinds=st.lists(st.integers(0, 100), max_size=4))
        def example(stage: str, kinds: list[int]) -> None:
            user = s.user()
            s.run(bring_to(s, user, stage))
            updates = other_updates(s, user, group)
            names = sorted(updates)
            before, totals = s.answers(user), s.totals()
            resident = s.resident_id(user)
            for kind in [names[i % len(names)] for i in kinds] or names:
                s.run(s.deliver_raw({kind: updates[kind]}))
                s.check([user.chat_id, group.id], [])
                assert s.answers(user) == before, kind
                assert s.totals() == totals, kind
                assert s.resident_id(user) == resident, kind
            s.run(finish(s, user))

        example()
