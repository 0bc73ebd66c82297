"""The Bot API emulator's core: simulated Telegram state and method handlers, no I/O."""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import itertools
import json
import math
import mimetypes
import re
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Protocol, cast
from urllib.parse import parse_qsl

from sandbox.network import Network, NetworkFault

JSON = dict[str, Any]

DEFAULT_TOKEN = "123456789:EMULATOR-buurtstem-test-token"
BOT_ID = 123456789

# Telegram's own limits (https://core.telegram.org/bots/api and the bots FAQ).
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_CALLBACK_ANSWER = 200
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
_DEFAULT_ALLOWED = (
    "message edited_message channel_post edited_channel_post business_connection "
    "business_message edited_business_message deleted_business_messages inline_query "
    "chosen_inline_result callback_query shipping_query pre_checkout_query "
    "purchased_paid_media poll poll_answer my_chat_member chat_join_request "
    "chat_boost removed_chat_boost "
)
DEFAULT_ALLOWED_UPDATES = frozenset(_DEFAULT_ALLOWED.split())
_CHAT_ACTIONS = (
    "typing upload_photo record_video upload_video record_voice upload_voice "
    "upload_document choose_sticker find_location record_video_note upload_video_note "
)
CHAT_ACTIONS = frozenset(_CHAT_ACTIONS.split())
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
GETUPDATES_WITH_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to "
    "delete the webhook first"
)
GETUPDATES_TERMINATED = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
    "is running"
)


class ApiError(Exception):
    """A Bot API error answer: error_code, description and optional parameters."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSON:
        """The JSON body Telegram answers with."""
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(what: str) -> ApiError:
    """A 400 answer."""
    return ApiError(400, "Bad Request: " + what)


def forbidden(what: str) -> ApiError:
    """A 403 answer."""
    return ApiError(403, "Forbidden: " + what)


class _HasNow(Protocol):
    def now(self) -> Any: ...


class ManualClock:
    """A clock in epoch seconds that moves only when told (rate-limit and date tests)."""

    def __init__(self, start: float = 1_793_610_000.0) -> None:
        self.value = float(start)

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> float:
        """Move forward and return the new time."""
        self.value += seconds
        return self.value

    def set(self, value: float) -> None:
        """Jump to `value` (epoch seconds)."""
        self.value = float(value)


def as_time_function(clock: Callable[[], float] | _HasNow | None) -> Callable[[], float]:
    """Accept a float-returning callable or a bot.clock.Clock (with .now() -> datetime)."""
    if clock is None:
        return time.time
    now = getattr(clock, "now", None)
    if now is not None and not isinstance(clock, ManualClock):
        return lambda: float(now().timestamp())
    return cast(Callable[[], float], clock)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------- signal


class _Signal:
    """Wakes every waiter on any state change; safe to notify from another thread's loop."""

    def __init__(self) -> None:
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.version = 0

    def notify(self) -> None:
        self.version += 1
        waiters, self._waiters = self._waiters, []
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, fut in waiters:
            if loop is running:
                if not fut.done():
                    fut.set_result(None)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, fut)

    def waiter(self) -> asyncio.Future[None]:
        """A future, registered at once, that the next notify() resolves (no lost wake-up)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        entry = (loop, fut)
        self._waiters.append(entry)

        def forget(_: asyncio.Future[None]) -> None:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)

        fut.add_done_callback(forget)
        return fut

    async def wait(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        entry = (loop, fut)
        self._waiters.append(entry)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, timeout)
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


# --------------------------------------------------------------------------- model


@dataclass
class SimUser:
    """A simulated Telegram user (a resident, a staff member, ...)."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False
    blocked: bool = False  # the user blocked the bot
    started: bool = False  # the user has a private chat with the bot (bot may write)

    def to_api(self) -> JSON:
        """Telegram User object."""
        data: JSON = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data


@dataclass
class SimChat:
    """A simulated chat: a user's private chat with the bot, a group or a supergroup."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    user: SimUser | None = None
    members: set[int] = field(default_factory=set)
    bot_status: str = "member"  # member / administrator / left / kicked
    chat_instance: str = ""
    next_message_id: int = 1

    def to_api(self) -> JSON:
        """Telegram Chat object."""
        data: JSON = {"id": self.id, "type": self.type}
        if self.user is not None:
            data["first_name"] = self.user.first_name
            if self.user.last_name:
                data["last_name"] = self.user.last_name
            if self.user.username:
                data["username"] = self.user.username
        else:
            data["title"] = self.title or ""
            if self.username:
                data["username"] = self.username
            if self.type == "group":
                data["all_members_are_administrators"] = False
        return data

    def full_info(self) -> JSON:
        """Telegram ChatFullInfo object (getChat)."""
        data = self.to_api()
        data.pop("all_members_are_administrators", None)
        data.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        if self.type != "private":
            data["permissions"] = {"can_send_messages": True}
        return data


@dataclass
class Button:
    """One inline keyboard button as the user sees it."""

    text: str
    callback_data: str | None = None
    url: str | None = None
    row: int = 0
    column: int = 0


@dataclass
class Edit:
    """One state of a message before an edit replaced it."""

    date: int
    text: str | None
    caption: str | None
    reply_markup: JSON | None


@dataclass
class StoredFile:
    """An uploaded file (or a URL given instead of bytes)."""

    file_id: str
    file_unique_id: str
    kind: str
    data: bytes | None
    filename: str | None = None
    mime_type: str | None = None
    url: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def file_path(self) -> str:
        """Path under /file/bot<token>/ where the bytes are served."""
        suffix = ""
        if self.filename and "." in self.filename:
            suffix = "." + self.filename.rsplit(".", 1)[1]
        elif self.kind == "photo":
            suffix = ".jpg"
        folder = "photos" if self.kind == "photo" else self.kind + "s"
        return f"{folder}/file_{self.file_unique_id}{suffix}"


@dataclass
class StoredMessage:
    """A message in a simulated chat, with its current state and its edit history."""

    chat_id: int
    message_id: int
    date: int
    from_bot: bool
    sender_id: int
    method: str = ""
    text: str | None = None
    entities: list[JSON] = field(default_factory=list)
    raw_text: str | None = None  # as sent, before parse_mode was applied
    parse_mode: str | None = None
    caption: str | None = None
    caption_entities: list[JSON] = field(default_factory=list)
    raw_caption: str | None = None
    reply_markup: JSON | None = None  # inline keyboard currently attached
    keyboard: JSON | None = None  # reply keyboard / remove / force reply as sent
    reply_to_message_id: int | None = None
    link_preview_options: JSON | None = None
    disable_notification: bool = False
    protect_content: bool = False
    content: JSON = field(default_factory=dict)  # photo / document / sticker / voice / ...
    files: list[str] = field(default_factory=list)
    edit_date: int | None = None
    edits: list[Edit] = field(default_factory=list)
    deleted: bool = False

    @property
    def html(self) -> str | None:
        """The text or caption exactly as the bot sent it (with HTML tags, if any)."""
        return self.raw_text if self.raw_text is not None else self.raw_caption

    @property
    def visible_text(self) -> str:
        """What the user reads: the text, or else the caption."""
        return self.text if self.text is not None else (self.caption or "")

    @property
    def buttons(self) -> list[list[Button]]:
        """The inline keyboard, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [
            [
                Button(
                    text=b.get("text", ""),
                    callback_data=b.get("callback_data"),
                    url=b.get("url"),
                    row=r,
                    column=c,
                )
                for c, b in enumerate(row)
            ]
            for r, row in enumerate(rows)
        ]

    @property
    def button_labels(self) -> list[str]:
        """All inline button labels, flattened."""
        return [b.text for row in self.buttons for b in row]

    def find_button(self, label: str | None = None, data: str | None = None) -> Button | None:
        """The first inline button with this label (or this callback data)."""
        for row in self.buttons:
            for button in row:
                if label is not None and button.text == label:
                    return button
                if data is not None and button.callback_data == data:
                    return button
        return None

    @property
    def reply_keyboard(self) -> list[list[str]]:
        """Labels of the reply keyboard the bot sent with this message, if any."""
        rows = (self.keyboard or {}).get("keyboard", [])
        return [[b if isinstance(b, str) else b.get("text", "") for b in row] for row in rows]


@dataclass
class CallbackQueryRecord:
    """A button tap and the bot's answer to it."""

    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str | None
    created: float
    answered: bool = False
    answer_text: str | None = None
    show_alert: bool = False
    url: str | None = None


@dataclass
class RequestRecord:
    """One Bot API call as the emulator saw it."""

    method: str
    params: JSON
    time: float
    status: int = 200
    error: str | None = None
    started: float = 0.0  # time.monotonic() when the call began, latency included
    finished: float = 0.0  # and when its answer left (0 while in flight)


@dataclass
class RateLimits:
    """Telegram's flood limits; off by default so functional tests never see a 429."""

    enabled: bool = False
    global_per_second: int = 30
    private_per_second: float = 1.0
    private_burst: int = 3  # Telegram tolerates short bursts in a conversation
    group_per_minute: int = 20
    count_edits: bool = False  # count edits against the per-chat limits too


@dataclass
class _Pending:
    update_id: int
    data: JSON
    forced: bool = False  # a redelivery: hand out once even though its id is below the offset


# --------------------------------------------------------------------------- text parsing

_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "a": "text_link",
    "span": "spoiler",
    "tg-emoji": "custom_emoji",
}


class _TelegramHTML(HTMLParser):
    """Telegram's HTML subset: text without tags plus entities (offsets in UTF-16 units)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.stack: list[tuple[str, JSON]] = []
        self.entities: list[JSON] = []

    def _error(self, message: str) -> ApiError:
        return bad_request("can't parse entities: " + message)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag not in _HTML_TAGS or (tag == "span" and attributes.get("class") != "tg-spoiler"):
            raise self._error(f'Unsupported start tag "{tag}" at byte offset {self._offset()}')
        entity: JSON = {"type": _HTML_TAGS[tag], "offset": self.length}
        if tag == "a":
            href = attributes.get("href") or ""
            if href.startswith("tg://user?id="):
                entity = {"type": "text_mention", "offset": self.length}
                entity["user"] = {
                    "id": int(href.split("=", 1)[1]),
                    "is_bot": False,
                    "first_name": "",
                }
            else:
                entity["url"] = href
        elif tag == "blockquote" and "expandable" in attributes:
            entity["type"] = "expandable_blockquote"
        elif tag == "tg-emoji":
            entity["custom_emoji_id"] = attributes.get("emoji-id") or ""
        elif tag == "code" and self.stack and self.stack[-1][0] == "pre":
            language = (attributes.get("class") or "").removeprefix("language-")
            if language:
                self.stack[-1][1]["language"] = language
            entity["type"] = "_inner_code"
        self.stack.append((tag, entity))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack:
            raise self._error(f"Unexpected end tag at byte offset {self._offset()}")
        open_tag, entity = self.stack.pop()
        if open_tag != tag:
            raise self._error(
                f'Unmatched end tag at byte offset {self._offset()}, expected "</{open_tag}>", '
                f'found "</{tag}>"'
            )
        entity["length"] = self.length - entity["offset"]
        if entity["length"] > 0 and entity["type"] != "_inner_code":
            self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        self.length += utf16_len(data)

    def _offset(self) -> int:
        line, column = self.getpos()
        lines = self.rawdata.split("\n")
        return len("\n".join(lines[: line - 1]).encode()) + (1 if line > 1 else 0) + column

    def result(self) -> tuple[str, list[JSON]]:
        if self.stack:
            tag = self.stack[-1][0]
            raise self._error(f'Can\'t find end tag corresponding to start tag "{tag}"')
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), self.entities


_MD2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MD2_MARKERS = [
    ("||", "spoiler"),
    ("__", "underline"),
    ("*", "bold"),
    ("_", "italic"),
    ("~", "strikethrough"),
]


def _parse_markdown_v2(text: str) -> tuple[str, list[JSON]]:
    """Telegram's MarkdownV2, enough to catch unescaped reserved characters like '.' or '!'."""
    out: list[str] = []
    length = 0
    entities: list[JSON] = []
    open_marks: list[tuple[str, JSON]] = []
    link_start: int | None = None
    i = 0

    def emit(chunk: str) -> None:
        nonlocal length
        out.append(chunk)
        length += utf16_len(chunk)

    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            emit(text[i + 1])
            i += 2
            continue
        if text.startswith("```", i):
            end = text.find("```", i + 3)
            if end < 0:
                raise bad_request(
                    "can't parse entities: Can't find end of Pre entity at byte offset "
                    f"{len(text[:i].encode())}"
                )
            body = text[i + 3 : end]
            language = ""
            if "\n" in body:
                first, rest = body.split("\n", 1)
                if first and " " not in first:
                    language, body = first, rest
            entity: JSON = {"type": "pre", "offset": length, "length": utf16_len(body)}
            if language:
                entity["language"] = language
            emit(body)
            entities.append(entity)
            i = end + 3
            continue
        if ch == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise bad_request(
                    "can't parse entities: Can't find end of Code entity at byte "
                    f"offset {len(text[:i].encode())}"
                )
            body = text[i + 1 : end].replace("\\`", "`").replace("\\\\", "\\")
            entities.append({"type": "code", "offset": length, "length": utf16_len(body)})
            emit(body)
            i = end + 1
            continue
        if ch == "[":
            link_start = length
            i += 1
            continue
        if ch == "]" and link_start is not None and text.startswith("(", i + 1):
            end = text.find(")", i + 2)
            if end < 0:
                raise bad_request(
                    "can't parse entities: Can't find end of a URL at byte offset "
                    f"{len(text[:i].encode())}"
                )
            url = text[i + 2 : end]
            entities.append(
                {
                    "type": "text_link",
                    "offset": link_start,
                    "length": length - link_start,
                    "url": url,
                }
            )
            link_start = None
            i = end + 1
            continue
        for marker, kind in _MD2_MARKERS:
            if text.startswith(marker, i):
                if open_marks and open_marks[-1][0] == marker:
                    _, ent = open_marks.pop()
                    ent["length"] = length - ent["offset"]
                    if ent["length"]:
                        entities.append(ent)
                else:
                    open_marks.append((marker, {"type": kind, "offset": length}))
                i += len(marker)
                break
        else:
            if ch in _MD2_RESERVED:
                raise bad_request(
                    f"can't parse entities: Character '{ch}' is reserved and must be escaped "
                    "with the preceding '\\'"
                )
            emit(ch)
            i += 1
    if open_marks:
        raise bad_request(
            "can't parse entities: Can't find end of "
            f"{open_marks[-1][1]['type'].capitalize()} entity at byte offset {len(text.encode())}"
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def parse_formatted(text: str, parse_mode: str | None) -> tuple[str, list[JSON]]:
    """Apply parse_mode like Telegram: visible text plus entities; 400 on malformed markup."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        parser = _TelegramHTML()
        parser.feed(text)
        parser.close()
        plain, entities = parser.result()
    elif mode == "markdownv2":
        plain, entities = _parse_markdown_v2(text)
    elif mode in ("", "markdown"):
        # Legacy Markdown is deprecated; kept as plain text here.
        plain, entities = text, []
    else:
        raise bad_request(f"unsupported parse_mode {parse_mode!r}")
    return _strip(plain, entities)


def _strip(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Telegram trims leading and trailing whitespace; entities move along."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    size = utf16_len(stripped)
    kept: list[JSON] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, size)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


_AUTO_ENTITIES = re.compile(
    r"(?P<bot_command>(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?)"
    r"|(?P<email>\b[\w.+-]+@[\w-]+\.[\w.-]+\b)"
    r"|(?P<mention>(?<!\w)@[A-Za-z0-9_]{4,32})"
    r"|(?P<url>\bhttps?://[^\s]+|\b(?:www\.)[^\s]+)"
    r"|(?P<hashtag>(?<!\w)#\w+)"
)


def detect_entities(text: str) -> list[JSON]:
    """Entities Telegram adds to incoming messages: /commands (bot_command), @mentions, URLs."""
    entities: list[JSON] = []
    for match in _AUTO_ENTITIES.finditer(text):
        kind = match.lastgroup or ""
        entities.append(
            {
                "type": kind,
                "offset": utf16_len(text[: match.start()]),
                "length": utf16_len(match.group()),
            }
        )
    return entities


# --------------------------------------------------------------------------- bodies


@dataclass
class UploadedFile:
    """A file part of a multipart request."""

    filename: str | None
    content_type: str | None
    data: bytes


def decode_body(
    content_type: str | None, body: bytes, query: str = ""
) -> tuple[JSON, dict[str, UploadedFile]]:
    """Parameters and files of a Bot API request: query string, JSON, form or multipart."""
    params: JSON = dict(parse_qsl(query, keep_blank_values=True))
    files: dict[str, UploadedFile] = {}
    kind = (content_type or "").split(";")[0].strip().lower()
    if not body:
        return params, files
    if kind == "application/json":
        try:
            loaded = json.loads(body)
        except ValueError as exc:
            raise bad_request("can't parse JSON object") from exc
        if isinstance(loaded, dict):
            params.update(loaded)
    elif kind == "application/x-www-form-urlencoded":
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    elif kind == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        parser = email.parser.BytesParser(policy=email.policy.HTTP)
        message = parser.parsebytes(head + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            if filename is not None:
                files[name] = UploadedFile(filename, part.get_content_type(), data)
            else:
                params[name] = data.decode("utf-8")
    return params, files


class _Params:
    """Typed access to request parameters that come as JSON values or form strings."""

    def __init__(self, raw: JSON, files: dict[str, UploadedFile]) -> None:
        self.raw = raw
        self.files = files

    def has(self, name: str) -> bool:
        return self.raw.get(name) not in (None, "")

    def string(self, name: str, default: str | None = None) -> str | None:
        value = self.raw.get(name)
        if value is None:
            return default
        return value if isinstance(value, str) else json.dumps(value)

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise bad_request(f"invalid {name} specified") from exc

    def number(self, name: str, default: float = 0.0) -> float:
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise bad_request(f"invalid {name} specified") from exc

    def flag(self, name: str) -> bool:
        value = self.raw.get(name)
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)

    def decoded(self, name: str) -> Any:
        value = self.raw.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError as exc:
                if name == "reply_markup":
                    raise bad_request("can't parse reply keyboard markup JSON object") from exc
                raise bad_request(f"can't parse {name} JSON object") from exc
        return value


# --------------------------------------------------------------------------- the emulator


class BotAPIEmulator:
    """One simulated bot on a simulated Telegram: users, chats, messages, updates, limits."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "buurtstem_bot",
        bot_first_name: str = "Buurtstem",
        clock: Callable[[], float] | _HasNow | None = None,
        limits: RateLimits | None = None,
        privacy_mode: bool = True,
        callback_timeout: float = 15.0,
        first_update_id: int = 1,
        network: Network | None = None,
    ) -> None:
        self.token = token
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else BOT_ID
        self.bot = SimUser(id=bot_id, first_name=bot_first_name, username=bot_username, is_bot=True)
        self.clock: Callable[[], float] = as_time_function(clock)
        self.limits = limits or RateLimits()
        self.network = network or Network()
        self.privacy_mode = privacy_mode
        self.callback_timeout = callback_timeout
        self.users: dict[int, SimUser] = {}
        self.chats: dict[int, SimChat] = {}
        self.messages_by_chat: dict[int, dict[int, StoredMessage]] = {}
        self.files: dict[str, StoredFile] = {}
        self.callback_queries: dict[str, CallbackQueryRecord] = {}
        self.requests: list[RequestRecord] = []
        self.updates_log: list[JSON] = []
        self.rate_limited: list[JSON] = []
        self.events: list[JSON] = []
        self.stats: Counter[str] = Counter()
        self.commands: dict[tuple[str, str], list[JSON]] = {}
        self.chat_actions: list[JSON] = []
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.webhook_max_connections = 40
        self.webhook_last_error: tuple[int, str] | None = None
        self.webhook_deliveries: list[JSON] = []
        self.allowed_updates: list[str] | None = None
        self.closed = False
        self._queue: deque[_Pending] = deque()
        self._next_update_id = first_update_id
        self._confirmed_below = 0  # every update_id below this has been confirmed
        self._skipped: set[int] = set()  # dropped unseen: not in allowed_updates
        self._delivered_up_to = 0  # highest update_id handed out by getUpdates or webhook
        self._ids = itertools.count(1)
        self._user_ids = itertools.count(100_001)
        self._group_ids = itertools.count(1)
        self._file_seq = itertools.count(1)
        self._query_seq = itertools.count(1)
        self._poll_generation = 0
        self._global_sends: deque[float] = deque()
        self._chat_sends: dict[int, deque[float]] = {}
        self._buckets: dict[int, tuple[float, float]] = {}
        self.signal = _Signal()
        self._chat_signals: dict[int, _Signal] = {}
        self._handlers: dict[str, Callable[[_Params], Any]] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagecaption": self._edit_message_caption,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "sendphoto": self._send_photo,
            "senddocument": self._send_document,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "deletemessage": self._delete_message,
            "sendchataction": self._send_chat_action,
            "getchat": self._get_chat,
            "getfile": self._get_file,
            "close": self._close,
            "logout": self._close,
        }

    # ------------------------------------------------------------------ entry point

    async def call(
        self,
        method: str,
        params: JSON | None = None,
        files: dict[str, UploadedFile] | None = None,
        *,
        token: str | None = None,
    ) -> tuple[int, JSON]:
        """Run one Bot API method; returns (HTTP status, JSON body) exactly like Telegram.

        The `network` settings add latency and faults: a refused call returns 429 or 502
        without acting; a broken connection raises `NetworkFault` (before acting, or after
        acting when the answer is lost), which the transports turn into connection errors.
        """
        network = self.network
        raw = dict(params or {})
        record = RequestRecord(method=method, params=_loggable(raw, files), time=self.clock())
        record.started = time.monotonic()
        self.requests.append(record)
        self.stats["requests"] += 1
        try:
            before, after = network.delays()
            if before:
                await asyncio.sleep(before)
            fault = network.fault_for(method) if network.faulty else None
            if fault is None or fault == "lose":
                status, payload = await self._call(method, raw, files, record, token=token)
            else:
                status, payload = self._refuse(record, fault)
            if after:
                await asyncio.sleep(after)
            if fault == "lose":
                self.stats["fault_lose"] += 1
                raise NetworkFault("lose", performed=True)
            return status, payload
        finally:
            record.finished = time.monotonic()

    def _refuse(self, record: RequestRecord, fault: str) -> tuple[int, JSON]:
        """An injected fault that stops a call before Telegram acts on it."""
        self.stats[f"fault_{fault}"] += 1
        if fault == "connect":
            record.status, record.error = 0, "connection failed (emulated)"
            raise NetworkFault("connect", performed=False)
        if fault == "429":
            retry_after = self.network.retry_after
            error = ApiError(
                429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
            )
        else:
            error = ApiError(502, "Bad Gateway")
        record.status, record.error = error.code, error.description
        self.stats[f"error_{error.code}"] += 1
        return error.code, error.payload()

    async def _call(
        self,
        method: str,
        raw: JSON,
        files: dict[str, UploadedFile] | None,
        record: RequestRecord,
        *,
        token: str | None,
    ) -> tuple[int, JSON]:
        try:
            if token is not None and token != self.token:
                raise ApiError(401, "Unauthorized")
            handler = self._handlers.get(method.lower())
            if handler is None:
                raise ApiError(404, "Not Found")
            result = handler(_Params(raw, files or {}))
            if asyncio.iscoroutine(result):
                result = await result
            return 200, {"ok": True, "result": result}
        except ApiError as error:
            record.status = error.code
            record.error = error.description
            self.stats[f"error_{error.code}"] += 1
            return error.code, error.payload()

    def calls(self, method: str) -> list[RequestRecord]:
        """Every recorded request of one method (case-insensitive)."""
        return [r for r in self.requests if r.method.lower() == method.lower()]

    # ------------------------------------------------------------------ simulated world

    def add_user(
        self,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "nl",
        user_id: int | None = None,
        started: bool = False,
    ) -> SimUser:
        """A new simulated user (no chat with the bot until they write, unless `started`)."""
        uid = user_id if user_id is not None else next(self._user_ids)
        user = SimUser(uid, first_name, last_name, username, language_code)
        self.users[uid] = user
        if started:
            self.private_chat(user)
        return user

    def private_chat(self, user: SimUser) -> SimChat:
        """The user's private chat with the bot (opened now if needed)."""
        user.started = True
        chat = self.chats.get(user.id)
        if chat is None:
            chat = SimChat(id=user.id, type="private", user=user, members={user.id})
            chat.chat_instance = str(abs(hash(("ci", user.id))) % 10**18)
            self.chats[user.id] = chat
            self.messages_by_chat[user.id] = {}
        return chat

    def add_group(
        self,
        title: str,
        *,
        type: str = "group",
        username: str | None = None,
        members: Iterable[SimUser] = (),
        bot_status: str = "member",
        chat_id: int | None = None,
    ) -> SimChat:
        """A group or supergroup with the bot already in it (no update; see add_bot_to_group)."""
        if type not in ("group", "supergroup"):
            raise ValueError("type must be 'group' or 'supergroup'")
        n = next(self._group_ids)
        if chat_id is None:
            chat_id = (
                -(1_000_000_000_000 + 4_000_000 + n) if type == "supergroup" else -(4_000_000 + n)
            )
        chat = SimChat(
            id=chat_id,
            type=type,
            title=title,
            username=username,
            members={u.id for u in members},
            bot_status=bot_status,
        )
        chat.chat_instance = str(abs(hash(("ci", chat_id))) % 10**18)
        self.chats[chat_id] = chat
        self.messages_by_chat[chat_id] = {}
        return chat

    def chat(self, chat_id: int) -> SimChat:
        """A known chat (KeyError otherwise)."""
        return self.chats[chat_id]

    def messages(self, chat_id: int, *, include_deleted: bool = False) -> list[StoredMessage]:
        """Every message in a chat (user and bot), oldest first."""
        found = self.messages_by_chat.get(chat_id, {}).values()
        return [m for m in found if include_deleted or not m.deleted]

    def sent_to(self, chat_id: int, *, include_deleted: bool = False) -> list[StoredMessage]:
        """Messages the bot sent to a chat, with edits applied."""
        return [m for m in self.messages(chat_id, include_deleted=include_deleted) if m.from_bot]

    def message(self, chat_id: int, message_id: int) -> StoredMessage:
        """One message (KeyError if unknown)."""
        return self.messages_by_chat[chat_id][message_id]

    def file_bytes(self, file_id: str) -> bytes | None:
        """Bytes of an uploaded file (by file_id)."""
        stored = self.files.get(file_id)
        return stored.data if stored else None

    def file_by_path(self, path: str) -> StoredFile | None:
        """The file served at /file/bot<token>/<path>."""
        for stored in self.files.values():
            if stored.file_path == path:
                return stored
        return None

    @property
    def rate_limited_count(self) -> int:
        """How many requests got 429 Too Many Requests."""
        return len(self.rate_limited)

    # ------------------------------------------------------------------ user actions

    def user_sends(
        self,
        user: SimUser,
        text: str | None = None,
        *,
        chat: SimChat | None = None,
        reply_to: StoredMessage | None = None,
        content: JSON | None = None,
    ) -> JSON | None:
        """The user writes in a chat (private by default); returns the queued update or None.

        None means Telegram would not tell the bot (privacy mode in groups, blocked bot).
        `content` carries non-text payloads (photo, sticker, voice, location, ...).
        """
        chat = chat or self.private_chat(user)
        if chat.type == "private":
            user.started = True
        else:
            chat.members.add(user.id)
        message = self._store(chat, from_bot=False, sender_id=user.id, method="user")
        if text is not None:
            if content:
                message.caption = text
                message.caption_entities = detect_entities(text)
            else:
                message.text = text
                message.entities = detect_entities(text)
        message.content = dict(content or {})
        if reply_to is not None:
            message.reply_to_message_id = reply_to.message_id
        self._event("message", message)
        if chat.type == "private" and user.blocked:
            return None
        if chat.type != "private" and not self._bot_sees(chat, message, reply_to):
            return None
        return self._enqueue({"message": self.message_json(message)})

    def user_edits(self, user: SimUser, message: StoredMessage, text: str) -> JSON | None:
        """The user edits one of their own messages (edited_message update)."""
        if message.from_bot or message.sender_id != user.id:
            raise ValueError("a user can only edit their own messages")
        message.edits.append(Edit(message.edit_date or message.date, message.text, None, None))
        message.text = text
        message.entities = detect_entities(text)
        message.edit_date = self.now()
        self._event("edit", message)
        chat = self.chats[message.chat_id]
        if chat.type != "private" and not self._bot_sees(chat, message, None):
            return None
        return self._enqueue({"edited_message": self.message_json(message)})

    def user_taps(
        self,
        user: SimUser,
        message: StoredMessage,
        *,
        label: str | None = None,
        data: str | None = None,
    ) -> JSON:
        """The user taps an inline button of a bot message (callback_query update)."""
        if message.deleted:
            raise LookupError(f"message {message.message_id} was deleted")
        button = message.find_button(label, data)
        if button is None:
            raise LookupError(
                f"no button {label or data!r} on message {message.message_id}; "
                f"buttons: {message.button_labels}"
            )
        if button.callback_data is None:
            raise LookupError(f"button {button.text!r} has no callback_data (url={button.url})")
        query_id = str(4_000_000_000_000_000_000 + next(self._query_seq) * 7919)
        chat = self.chats[message.chat_id]
        self.callback_queries[query_id] = CallbackQueryRecord(
            id=query_id,
            user_id=user.id,
            chat_id=chat.id,
            message_id=message.message_id,
            data=button.callback_data,
            created=self.clock(),
        )
        query = {
            "id": query_id,
            "from": user.to_api(),
            "message": self.message_json(message),
            "chat_instance": chat.chat_instance,
            "data": button.callback_data,
        }
        return self._enqueue({"callback_query": query})

    def block(self, user: SimUser) -> JSON:
        """The user blocks the bot: sends fail with 403, the bot gets my_chat_member."""
        chat = self.private_chat(user)
        user.blocked = True
        return self._chat_member_update(chat, user, "member", "kicked")

    def unblock(self, user: SimUser) -> JSON:
        """The user unblocks (restarts) the bot."""
        chat = self.private_chat(user)
        user.blocked = False
        return self._chat_member_update(chat, user, "kicked", "member")

    def add_bot_to_group(
        self, group: SimChat, by: SimUser, *, as_admin: bool = False
    ) -> list[JSON]:
        """Someone adds the bot to a group: a new_chat_members message and my_chat_member."""
        old = group.bot_status if group.bot_status in ("left", "kicked") else "left"
        group.bot_status = "administrator" if as_admin else "member"
        group.members.add(by.id)
        service = self._store(group, from_bot=False, sender_id=by.id, method="user")
        service.content = {"new_chat_members": [self.bot.to_api()]}
        updates = [self._chat_member_update(group, by, old, group.bot_status)]
        updates.append(self._enqueue({"message": self.message_json(service)}))
        return updates

    def remove_bot_from_group(self, group: SimChat, by: SimUser) -> JSON:
        """Someone removes the bot from a group (my_chat_member with status kicked)."""
        old = group.bot_status
        group.bot_status = "kicked"
        return self._chat_member_update(group, by, old, "kicked")

    def push_raw_update(self, data: JSON) -> int:
        """Queue an update as given; one with an already used update_id is a redelivery."""
        update = dict(data)
        if "update_id" not in update:
            update["update_id"] = self._take_update_id()
        update_id = int(update["update_id"])
        forced = update_id < self._next_update_id
        self._next_update_id = max(self._next_update_id, update_id + 1)
        self._queue.append(_Pending(update_id, update, forced=forced))
        self.updates_log.append(update)
        self.signal.notify()
        return update_id

    def redeliver(self, update: JSON | int) -> int:
        """Deliver an earlier update again with the same update_id (at-least-once delivery)."""
        if isinstance(update, int):
            found = [u for u in self.updates_log if u["update_id"] == update]
            if not found:
                raise LookupError(f"no update {update}")
            update = found[-1]
        return self.push_raw_update(update)

    # ------------------------------------------------------------------ update queue

    @property
    def pending_update_count(self) -> int:
        """Updates not yet confirmed."""
        return len(self._queue)

    def continue_update_ids(self, next_id: int) -> None:
        """Go on numbering updates from `next_id` (after a restart: ids must keep increasing)."""
        self._next_update_id = max(self._next_update_id, next_id)

    @property
    def last_update_id(self) -> int:
        """The newest update_id handed out (0 before the first)."""
        return self._next_update_id - 1

    def is_confirmed(self, update_id: int) -> bool:
        """True once the bot confirmed this update (offset above it, or webhook 2xx)."""
        if update_id in self._skipped:
            return True
        return update_id < self._confirmed_below and not any(
            p.update_id == update_id for p in self._queue
        )

    def confirm(self, update_id: int) -> None:
        """Mark one update as handled without getUpdates (the harness's process_update mode)."""
        self._queue = deque(p for p in self._queue if p.update_id != update_id)
        self._delivered_up_to = max(self._delivered_up_to, update_id)
        self.signal.notify()

    async def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 10.0, *, chat_id: int | None = None
    ) -> bool:
        """Wait (really, on the event loop) until predicate() holds; False on timeout.

        With `chat_id`, the predicate is checked again only when something happens in that
        chat (a message, an edit, a deletion): many waiting users then cost no more than one.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        signal = self.signal if chat_id is None else self._chat_signal(chat_id)
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await signal.wait(remaining)
        return True

    def _chat_signal(self, chat_id: int) -> _Signal:
        found = self._chat_signals.get(chat_id)
        if found is None:
            found = self._chat_signals[chat_id] = _Signal()
        return found

    def take_for_webhook(self) -> _Pending | None:
        """The next update to POST to the webhook (oldest first)."""
        if not self.webhook_url or not self._queue:
            return None
        return self._queue[0]

    def webhook_batch(self, busy: set[object], room: int) -> list[_Pending]:
        """Updates to POST now, oldest first: at most `room`, and one per chat at a time.

        Like Telegram, several connections deliver at once (up to max_connections), but a
        chat's next update waits until its earlier one was answered (`busy` holds the chats
        with a POST in flight), so each chat's updates arrive in order.
        """
        if not self.webhook_url or room <= 0:
            return []
        blocked = set(busy)
        chosen: list[_Pending] = []
        for pending in self._queue:
            key = update_chat(pending.data)
            if key in blocked:
                continue
            blocked.add(key)
            chosen.append(pending)
            if len(chosen) >= room:
                break
        return chosen

    def webhook_result(self, pending: _Pending, status: int | None, error: str | None) -> None:
        """Record a webhook POST; a 2xx confirms the update, anything else keeps it queued."""
        self.webhook_deliveries.append(
            {"update_id": pending.update_id, "status": status, "error": error, "time": self.clock()}
        )
        self._delivered_up_to = max(self._delivered_up_to, pending.update_id)
        if status is not None and 200 <= status < 300:
            with contextlib.suppress(ValueError):
                self._queue.remove(pending)
            self._confirmed_below = max(self._confirmed_below, pending.update_id + 1)
            self.webhook_last_error = None
        else:
            self.webhook_last_error = (
                self.now(),
                error or f"Wrong response from the webhook: {status}",
            )
        self.signal.notify()

    # ------------------------------------------------------------------ internals

    def now(self) -> int:
        """Current emulator time as a Telegram date."""
        return int(self.clock())

    def _take_update_id(self) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        return update_id

    def _enqueue(self, body: JSON) -> JSON:
        update = {"update_id": self._take_update_id(), **body}
        self._queue.append(_Pending(update["update_id"], update))
        self.updates_log.append(update)
        self.stats["updates"] += 1
        self.signal.notify()
        return update

    def _event(self, kind: str, message: StoredMessage | None = None, **extra: Any) -> None:
        event: JSON = {"seq": len(self.events) + 1, "type": kind, "time": self.clock(), **extra}
        if message is not None:
            event["chat_id"] = message.chat_id
            event["message"] = self.message_json(message)
        self.events.append(event)
        self.signal.notify()
        chat_id = event.get("chat_id")
        if chat_id is not None and chat_id in self._chat_signals:
            self._chat_signals[chat_id].notify()

    def _bot_sees(
        self, chat: SimChat, message: StoredMessage, reply_to: StoredMessage | None
    ) -> bool:
        """Privacy mode: in groups the bot gets commands, replies to it and mentions only."""
        if chat.bot_status not in ("member", "administrator"):
            return False
        if not self.privacy_mode or chat.bot_status == "administrator":
            return True
        text = message.text or message.caption or ""
        if reply_to is not None and reply_to.from_bot:
            return True
        if f"@{self.bot.username}".lower() in text.lower():
            return True
        for entity in message.entities or message.caption_entities:
            if entity["type"] == "bot_command":
                command = text.encode("utf-16-le")[
                    entity["offset"] * 2 : (entity["offset"] + entity["length"]) * 2
                ].decode("utf-16-le")
                target = command.split("@", 1)[1] if "@" in command else self.bot.username
                if (target or "").lower() == (self.bot.username or "").lower():
                    return True
        return False

    def _chat_member_update(self, chat: SimChat, by: SimUser, old: str, new: str) -> JSON:
        return self._enqueue(
            {
                "my_chat_member": {
                    "chat": chat.to_api(),
                    "from": by.to_api(),
                    "date": self.now(),
                    "old_chat_member": self._member(old),
                    "new_chat_member": self._member(new),
                }
            }
        )

    def _member(self, status: str) -> JSON:
        member: JSON = {"status": status, "user": self.bot.to_api()}
        if status == "kicked":
            member["until_date"] = 0
        if status == "administrator":
            member.update(
                {
                    key: key != "is_anonymous" and key != "can_be_edited"
                    for key in (
                        "can_be_edited",
                        "is_anonymous",
                        "can_manage_chat",
                        "can_delete_messages",
                        "can_manage_video_chats",
                        "can_restrict_members",
                        "can_promote_members",
                        "can_change_info",
                        "can_invite_users",
                        "can_post_stories",
                        "can_edit_stories",
                        "can_delete_stories",
                    )
                }
            )
        return member

    def _store(
        self, chat: SimChat, *, from_bot: bool, sender_id: int, method: str
    ) -> StoredMessage:
        message = StoredMessage(
            chat_id=chat.id,
            message_id=chat.next_message_id,
            date=self.now(),
            from_bot=from_bot,
            sender_id=sender_id,
            method=method,
        )
        chat.next_message_id += 1
        self.messages_by_chat.setdefault(chat.id, {})[message.message_id] = message
        return message

    def message_json(self, message: StoredMessage, *, nested: bool = False) -> JSON:
        """Telegram Message object for a stored message."""
        chat = self.chats[message.chat_id]
        sender = self.bot if message.from_bot else self.users[message.sender_id]
        data: JSON = {
            "message_id": message.message_id,
            "from": sender.to_api(),
            "chat": chat.to_api(),
            "date": message.date,
        }
        if message.text is not None:
            data["text"] = message.text
            if message.entities:
                data["entities"] = message.entities
        if message.caption is not None:
            data["caption"] = message.caption
            if message.caption_entities:
                data["caption_entities"] = message.caption_entities
        data.update(message.content)
        if message.edit_date is not None:
            data["edit_date"] = message.edit_date
        if message.reply_markup and "inline_keyboard" in message.reply_markup:
            data["reply_markup"] = message.reply_markup
        if message.link_preview_options:
            data["link_preview_options"] = message.link_preview_options
        if message.protect_content:
            data["has_protected_content"] = True
        if message.reply_to_message_id is not None and not nested:
            replied = self.messages_by_chat[chat.id].get(message.reply_to_message_id)
            if replied is not None:
                data["reply_to_message"] = self.message_json(replied, nested=True)
        return data

    # ------------------------------------------------------------------ checks

    def _target_chat(self, params: _Params) -> SimChat:
        raw = params.raw.get("chat_id")
        if raw is None or raw == "":
            raise bad_request("chat_id is empty")
        if isinstance(raw, str) and raw.startswith("@"):
            for candidate in self.chats.values():
                if candidate.username and candidate.username.lower() == raw[1:].lower():
                    return candidate
            raise bad_request("chat not found")
        try:
            chat_id = int(raw)
        except (TypeError, ValueError) as exc:
            raise bad_request("chat not found") from exc
        chat = self.chats.get(chat_id)
        if chat is None:
            if chat_id in self.users:
                raise forbidden("bot can't initiate conversation with a user")
            raise bad_request("chat not found")
        return chat

    def _writable_chat(self, params: _Params) -> SimChat:
        chat = self._target_chat(params)
        if chat.user is not None:
            if chat.user.blocked:
                raise forbidden("bot was blocked by the user")
            if not chat.user.started:
                raise forbidden("bot can't initiate conversation with a user")
        elif chat.bot_status == "kicked":
            kind = "supergroup chat" if chat.type == "supergroup" else "group chat"
            raise forbidden(f"bot was kicked from the {kind}")
        elif chat.bot_status == "left":
            kind = "supergroup chat" if chat.type == "supergroup" else "group chat"
            raise forbidden(f"bot is not a member of the {kind}")
        return chat

    def _check_rate(self, chat: SimChat, *, is_send: bool) -> None:
        """Enforce the flood limits on the emulator's clock; raise 429 with retry_after."""
        limits = self.limits
        if not limits.enabled or not (is_send or limits.count_edits):
            return
        now = self.clock()
        waits: list[float] = []
        if is_send:
            window = self._global_sends
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limits.global_per_second:
                waits.append(window[0] + 1.0 - now)
        if chat.type == "private":
            tokens, last = self._buckets.get(chat.id, (float(limits.private_burst), now))
            tokens = min(
                float(limits.private_burst), tokens + (now - last) * limits.private_per_second
            )
            if tokens < 1.0:
                waits.append((1.0 - tokens) / limits.private_per_second)
        else:
            sends = self._chat_sends.setdefault(chat.id, deque())
            while sends and sends[0] <= now - 60.0:
                sends.popleft()
            if len(sends) >= limits.group_per_minute:
                waits.append(sends[0] + 60.0 - now)
        if waits:
            retry_after = max(1, math.ceil(max(waits)))
            self.rate_limited.append(
                {"chat_id": chat.id, "retry_after": retry_after, "time": now, "send": is_send}
            )
            self.stats["error_429"] += 0  # counted by call(); kept for a stable key
            raise ApiError(
                429,
                f"Too Many Requests: retry after {retry_after}",
                {"retry_after": retry_after},
            )
        if is_send:
            self._global_sends.append(now)
        if chat.type == "private":
            self._buckets[chat.id] = (tokens - 1.0, now)
        else:
            self._chat_sends[chat.id].append(now)

    def _markup(self, params: _Params) -> JSON | None:
        markup = params.decoded("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad_request(
                    'can\'t parse inline keyboard button: field "inline_keyboard" '
                    "of the InlineKeyboardMarkup must be an Array of Arrays"
                )
            for row in rows:
                for button in row:
                    self._check_button(button)
        elif "keyboard" in markup:
            if not markup["keyboard"]:
                raise bad_request("keyboard must be non-empty")
        elif not (markup.get("remove_keyboard") or markup.get("force_reply")):
            raise bad_request("can't parse reply keyboard markup JSON object")
        return markup

    @staticmethod
    def _check_button(button: Any) -> None:
        if not isinstance(button, dict) or not button.get("text"):
            raise bad_request(
                "can't parse inline keyboard button: Text buttons are unallowed in "
                "the inline keyboard"
            )
        data = button.get("callback_data")
        if data is not None and not (1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA):
            raise bad_request("BUTTON_DATA_INVALID")
        url = button.get("url")
        if url is not None and not re.match(r"^(https?|tg)://\S+$", str(url)):
            raise bad_request("BUTTON_URL_INVALID")
        kinds = {
            "callback_data",
            "url",
            "login_url",
            "switch_inline_query",
            "web_app",
            "pay",
            "switch_inline_query_current_chat",
            "switch_inline_query_chosen_chat",
            "callback_game",
            "copy_text",
        }
        if not kinds & set(button):
            raise bad_request(
                "can't parse inline keyboard button: Text buttons are unallowed in "
                "the inline keyboard"
            )

    def _reply_to(self, chat: SimChat, params: _Params) -> int | None:
        reply = params.decoded("reply_parameters")
        reply_id = params.integer("reply_to_message_id")
        allow = params.flag("allow_sending_without_reply")
        if isinstance(reply, dict):
            reply_id = int(reply.get("message_id", 0))
            allow = allow or bool(reply.get("allow_sending_without_reply"))
        if reply_id is None:
            return None
        existing = self.messages_by_chat.get(chat.id, {}).get(reply_id)
        if existing is None or existing.deleted:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return reply_id

    def _text(
        self, params: _Params, name: str, limit: int, *, required: bool
    ) -> tuple[str | None, list[JSON], str | None]:
        raw = params.string(name)
        if raw is None or (raw == "" and required):
            if required:
                raise bad_request("message text is empty")
            return None, [], None
        mode = params.string("parse_mode")
        if params.has(name + "_entities" if name == "caption" else "entities"):
            plain, entities = (
                raw,
                params.decoded("caption_entities" if name == "caption" else "entities") or [],
            )
        else:
            plain, entities = parse_formatted(raw, mode)
        if required and not plain:
            raise bad_request("message text is empty")
        if len(plain) > limit:
            raise bad_request(
                "message caption is too long" if name == "caption" else "message is too long"
            )
        return plain, entities, raw

    def _finish_send(self, chat: SimChat, message: StoredMessage, params: _Params) -> JSON:
        message.disable_notification = params.flag("disable_notification")
        message.protect_content = params.flag("protect_content")
        self.stats["messages_sent"] += 1
        self._event("message", message)
        return self.message_json(message)

    # ------------------------------------------------------------------ methods

    def _get_me(self, params: _Params) -> JSON:
        return {
            **self.bot.to_api(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: _Params) -> list[JSON]:
        if self.webhook_url:
            raise ApiError(409, GETUPDATES_WITH_WEBHOOK)
        offset = params.integer("offset", 0) or 0
        limit = max(1, min(100, params.integer("limit", 100) or 100))
        timeout = max(0.0, params.number("timeout", 0.0))
        allowed = params.decoded("allowed_updates")
        if isinstance(allowed, list):
            self.allowed_updates = [str(a) for a in allowed] or None
        # A newer getUpdates call ends a waiting one, like Telegram's 409.
        self._poll_generation += 1
        generation = self._poll_generation
        self.signal.notify()
        self._apply_offset(offset)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(409, GETUPDATES_TERMINATED)
            ready = self._ready_updates(offset, limit)
            if ready or loop.time() >= deadline or self.webhook_url:
                break
            await self.signal.wait(deadline - loop.time())
        for pending in ready:
            pending.forced = False
            self._delivered_up_to = max(self._delivered_up_to, pending.update_id)
        self.stats["updates_delivered"] += len(ready)
        return [p.data for p in ready]

    def _apply_offset(self, offset: int) -> None:
        if offset < 0:
            # A negative offset keeps only the last -offset updates.
            while len(self._queue) > -offset:
                self._queue.popleft()
            return
        if offset == 0:
            return
        kept = deque(p for p in self._queue if p.update_id >= offset or p.forced)
        if len(kept) != len(self._queue):
            self._queue = kept
            self.signal.notify()
        self._confirmed_below = max(self._confirmed_below, offset)

    def _ready_updates(self, offset: int, limit: int) -> list[_Pending]:
        allowed = set(self.allowed_updates) if self.allowed_updates else DEFAULT_ALLOWED_UPDATES
        ready: list[_Pending] = []
        for pending in list(self._queue):
            kind = next((k for k in pending.data if k != "update_id"), "")
            if kind not in allowed:
                # Telegram never delivers update types the bot did not ask for.
                self._queue.remove(pending)
                self._skipped.add(pending.update_id)
                continue
            ready.append(pending)
            if len(ready) >= limit:
                break
        return ready

    def _set_webhook(self, params: _Params) -> bool:
        url = params.string("url", "") or ""
        secret = params.string("secret_token")
        if url and not re.match(r"^https?://", url):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if secret and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise bad_request("secret token contains unallowed characters")
        if params.flag("drop_pending_updates"):
            self._drop_pending()
        allowed = params.decoded("allowed_updates")
        if isinstance(allowed, list):
            self.allowed_updates = [str(a) for a in allowed] or None
        self.webhook_url = url
        self.webhook_secret = secret or None if url else None
        self.webhook_max_connections = params.integer("max_connections", 40) or 40
        self.webhook_last_error = None
        self.signal.notify()
        return True

    def _delete_webhook(self, params: _Params) -> bool:
        if params.flag("drop_pending_updates"):
            self._drop_pending()
        self.webhook_url = ""
        self.webhook_secret = None
        self.signal.notify()
        return True

    def _drop_pending(self) -> None:
        if self._queue:
            self._confirmed_below = max(self._confirmed_below, self._queue[-1].update_id + 1)
        self._queue.clear()
        self.signal.notify()

    def _get_webhook_info(self, params: _Params) -> JSON:
        info: JSON = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._queue),
        }
        if self.webhook_url:
            info["max_connections"] = self.webhook_max_connections
            if self.allowed_updates:
                info["allowed_updates"] = self.allowed_updates
        if self.webhook_last_error:
            info["last_error_date"], info["last_error_message"] = self.webhook_last_error
        return info

    def _send_message(self, params: _Params) -> JSON:
        chat = self._writable_chat(params)
        text, entities, raw = self._text(params, "text", MAX_TEXT, required=True)
        markup = self._markup(params)
        reply_to = self._reply_to(chat, params)
        self._check_rate(chat, is_send=True)
        message = self._store(chat, from_bot=True, sender_id=self.bot.id, method="sendMessage")
        message.text, message.entities, message.raw_text = text, entities, raw
        message.parse_mode = params.string("parse_mode")
        message.reply_to_message_id = reply_to
        if markup is not None:
            if "inline_keyboard" in markup:
                message.reply_markup = markup
            else:
                message.keyboard = markup
        preview = params.decoded("link_preview_options")
        if params.flag("disable_web_page_preview"):
            preview = {"is_disabled": True}
        message.link_preview_options = preview if isinstance(preview, dict) else None
        return self._finish_send(chat, message, params)

    def _message_to_edit(self, params: _Params) -> tuple[SimChat, StoredMessage]:
        if params.has("inline_message_id") and not params.has("chat_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._target_chat(params)
        message_id = params.integer("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        message = self.messages_by_chat.get(chat.id, {}).get(message_id)
        if message is None or message.deleted:
            raise bad_request("message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        if chat.user is not None and chat.user.blocked:
            raise forbidden("bot was blocked by the user")
        return chat, message

    def _apply_edit(
        self,
        chat: SimChat,
        message: StoredMessage,
        *,
        text: tuple[str | None, list[JSON], str | None] | None,
        caption: tuple[str | None, list[JSON], str | None] | None,
        markup: JSON | None,
    ) -> JSON:
        same_text = text is None or (text[0], text[1]) == (message.text, message.entities)
        same_caption = caption is None or (caption[0], caption[1]) == (
            message.caption,
            message.caption_entities,
        )
        if same_text and same_caption and markup == message.reply_markup:
            raise bad_request(NOT_MODIFIED)
        self._check_rate(chat, is_send=False)
        message.edits.append(
            Edit(
                message.edit_date or message.date,
                message.text,
                message.caption,
                message.reply_markup,
            )
        )
        if text is not None:
            message.text, message.entities, message.raw_text = text
        if caption is not None:
            message.caption, message.caption_entities, message.raw_caption = caption
        message.reply_markup = markup
        message.edit_date = self.now()
        self.stats["edits"] += 1
        self._event("edit", message)
        return self.message_json(message)

    def _edit_message_text(self, params: _Params) -> JSON:
        chat, message = self._message_to_edit(params)
        if message.text is None:
            raise bad_request("there is no text in the message to edit")
        text = self._text(params, "text", MAX_TEXT, required=True)
        markup = self._inline_markup(params)
        if params.has("parse_mode"):
            message.parse_mode = params.string("parse_mode")
        preview = params.decoded("link_preview_options")
        if isinstance(preview, dict):
            message.link_preview_options = preview
        return self._apply_edit(chat, message, text=text, caption=None, markup=markup)

    def _edit_message_caption(self, params: _Params) -> JSON:
        chat, message = self._message_to_edit(params)
        if message.text is not None:
            raise bad_request("there is no caption in the message to edit")
        caption = self._text(params, "caption", MAX_CAPTION, required=False)
        if caption[0] is None:
            caption = (None, [], None)
        markup = self._inline_markup(params)
        return self._apply_edit(chat, message, text=None, caption=caption, markup=markup)

    def _edit_message_reply_markup(self, params: _Params) -> JSON:
        chat, message = self._message_to_edit(params)
        markup = self._inline_markup(params)
        return self._apply_edit(chat, message, text=None, caption=None, markup=markup)

    def _inline_markup(self, params: _Params) -> JSON | None:
        """Edits take inline keyboards only; leaving reply_markup out removes the keyboard."""
        markup = self._markup(params)
        if markup is not None and "inline_keyboard" not in markup:
            raise bad_request("inline keyboard expected")
        if markup is not None and not markup["inline_keyboard"]:
            return None
        return markup

    def _answer_callback_query(self, params: _Params) -> bool:
        query_id = params.string("callback_query_id") or ""
        query = self.callback_queries.get(query_id)
        if query is None or query.answered or self.clock() - query.created > self.callback_timeout:
            raise bad_request(QUERY_TOO_OLD)
        text = params.string("text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER:
            raise bad_request("MESSAGE_TOO_LONG")
        query.answered = True
        query.answer_text = text
        query.show_alert = params.flag("show_alert")
        query.url = params.string("url")
        self._event(
            "callback_answer",
            None,
            chat_id=query.chat_id,
            callback_query_id=query.id,
            text=text,
            show_alert=query.show_alert,
        )
        return True

    def _upload(self, params: _Params, name: str, kind: str) -> StoredFile:
        value = params.raw.get(name)
        upload = params.files.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = params.files.get(value[len("attach://") :])
        if upload is None and isinstance(value, str) and value:
            if re.match(r"^https?://", value):
                return self._new_file(kind, None, url=value)
            existing = self.files.get(value)
            if existing is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
            return existing
        if upload is None:
            raise bad_request(f"there is no {name} in the request")
        if not upload.data:
            raise bad_request("file must be non-empty")
        if kind == "photo" and len(upload.data) > MAX_PHOTO_BYTES:
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
        if len(upload.data) > MAX_DOCUMENT_BYTES:
            raise ApiError(413, "Request Entity Too Large")
        mime = upload.content_type
        if not mime or mime == "application/octet-stream":
            mime = mimetypes.guess_type(upload.filename or "")[0] or "application/octet-stream"
        return self._new_file(kind, upload.data, filename=upload.filename, mime_type=mime)

    def _new_file(
        self,
        kind: str,
        data: bytes | None,
        *,
        filename: str | None = None,
        mime_type: str | None = None,
        url: str | None = None,
    ) -> StoredFile:
        seq = next(self._file_seq)
        prefix = {"photo": "AgAC", "document": "BQAC", "voice": "AwAC", "sticker": "CAAC"}.get(
            kind, "BAAC"
        )
        stored = StoredFile(
            file_id=f"{prefix}emu{seq:06d}{secrets.token_hex(4)}",
            file_unique_id=f"AQAD{seq:06d}",
            kind=kind,
            data=data,
            filename=filename,
            mime_type=mime_type,
            url=url,
        )
        if kind == "photo":
            size = image_size(data) if data is not None else (800, 600)
            if size is None:
                raise bad_request("IMAGE_PROCESS_FAILED")
            stored.width, stored.height = size
        self.files[stored.file_id] = stored
        return stored

    def _photo_sizes(self, stored: StoredFile) -> list[JSON]:
        width, height = stored.width or 1, stored.height or 1
        longest = max(width, height)
        sizes: list[JSON] = []
        total = len(stored.data or b"")
        for bound in (90, 320, 800, 1280, 2560):
            scale = min(1.0, bound / longest)
            w, h = max(1, round(width * scale)), max(1, round(height * scale))
            size_id = (
                stored.file_id if scale == 1.0 or bound == 2560 else f"{stored.file_id}_{bound}"
            )
            if size_id != stored.file_id:
                self.files.setdefault(size_id, stored)
            sizes.append(
                {
                    "file_id": size_id,
                    "file_unique_id": f"{stored.file_unique_id}{bound}",
                    "width": w,
                    "height": h,
                    "file_size": max(1, int(total * scale * scale)),
                }
            )
            if scale == 1.0:
                break
        return sizes

    def _send_media(self, params: _Params, name: str, kind: str, method: str) -> JSON:
        chat = self._writable_chat(params)
        stored = self._upload(params, name, kind)
        caption = self._text(params, "caption", MAX_CAPTION, required=False)
        markup = self._markup(params)
        reply_to = self._reply_to(chat, params)
        self._check_rate(chat, is_send=True)
        message = self._store(chat, from_bot=True, sender_id=self.bot.id, method=method)
        message.caption, message.caption_entities, message.raw_caption = caption
        message.parse_mode = params.string("parse_mode")
        message.reply_to_message_id = reply_to
        message.files.append(stored.file_id)
        if markup is not None:
            if "inline_keyboard" in markup:
                message.reply_markup = markup
            else:
                message.keyboard = markup
        if kind == "photo":
            message.content = {"photo": self._photo_sizes(stored)}
        else:
            document: JSON = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
            if stored.filename:
                document["file_name"] = stored.filename
            if stored.mime_type:
                document["mime_type"] = stored.mime_type
            if stored.data is not None:
                document["file_size"] = len(stored.data)
            message.content = {"document": document}
        return self._finish_send(chat, message, params)

    def _send_photo(self, params: _Params) -> JSON:
        return self._send_media(params, "photo", "photo", "sendPhoto")

    def _send_document(self, params: _Params) -> JSON:
        return self._send_media(params, "document", "document", "sendDocument")

    def _commands_key(self, params: _Params) -> tuple[str, str]:
        scope = params.decoded("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise bad_request("can't parse BotCommandScope JSON object")
        language = params.string("language_code", "") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise bad_request("invalid language code specified")
        return json.dumps(scope, sort_keys=True), language

    def _set_my_commands(self, params: _Params) -> bool:
        commands = params.decoded("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        for command in commands:
            name = str(command.get("command", "")) if isinstance(command, dict) else ""
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise bad_request("BOT_COMMAND_INVALID")
            description = str(command.get("description", ""))
            if not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(params)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    def _get_my_commands(self, params: _Params) -> list[JSON]:
        return list(self.commands.get(self._commands_key(params), []))

    def _delete_my_commands(self, params: _Params) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    def _delete_message(self, params: _Params) -> bool:
        chat = self._target_chat(params)
        message_id = params.integer("message_id")
        message = self.messages_by_chat.get(chat.id, {}).get(message_id or 0)
        if message is None or message.deleted:
            raise bad_request("message to delete not found")
        if not message.from_bot and chat.type != "private" and chat.bot_status != "administrator":
            # Bots delete others' group messages only as admins; private chats always.
            raise bad_request("message can't be deleted")
        message.deleted = True
        self._event("delete", message)
        return True

    def _send_chat_action(self, params: _Params) -> bool:
        chat = self._writable_chat(params)
        action = params.string("action") or ""
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self.chat_actions.append({"chat_id": chat.id, "action": action, "time": self.clock()})
        return True

    def _get_chat(self, params: _Params) -> JSON:
        return self._target_chat(params).full_info()

    def _get_file(self, params: _Params) -> JSON:
        file_id = params.string("file_id") or ""
        stored = self.files.get(file_id)
        if stored is None:
            raise bad_request("invalid file_id")
        data: JSON = {
            "file_id": file_id,
            "file_unique_id": stored.file_unique_id,
            "file_path": stored.file_path,
        }
        if stored.data is not None:
            data["file_size"] = len(stored.data)
        return data

    def _close(self, params: _Params) -> bool:
        self.closed = True
        return True

    # ------------------------------------------------------------------ content helpers

    def sticker_content(self, emoji: str = "👍") -> JSON:
        """A sticker as it arrives in an incoming message."""
        stored = self._new_file("sticker", b"RIFF-sticker", filename="sticker.webp")
        return {
            "sticker": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": emoji,
                "file_size": 12,
            }
        }

    def photo_content(self, data: bytes) -> JSON:
        """A photo as it arrives in an incoming message (data must be PNG/JPEG/GIF)."""
        stored = self._new_file("photo", data, filename="photo.jpg", mime_type="image/jpeg")
        return {"photo": self._photo_sizes(stored)}

    def voice_content(self, duration: int = 3, data: bytes = b"OggS-voice") -> JSON:
        """A voice note as it arrives in an incoming message."""
        stored = self._new_file("voice", data, filename="voice.ogg", mime_type="audio/ogg")
        return {
            "voice": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "duration": duration,
                "mime_type": "audio/ogg",
                "file_size": len(data),
            }
        }

    @staticmethod
    def location_content(latitude: float, longitude: float) -> JSON:
        """A shared location."""
        return {"location": {"latitude": latitude, "longitude": longitude}}

    def document_content(self, data: bytes, filename: str, mime_type: str | None = None) -> JSON:
        """A document as it arrives in an incoming message."""
        mime = mime_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        stored = self._new_file("document", data, filename=filename, mime_type=mime)
        return {
            "document": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": filename,
                "mime_type": mime,
                "file_size": len(data),
            }
        }

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> JSON:
        """The whole simulated world as JSON (control API, sandbox page)."""
        return {
            "bot": self._get_me(_Params({}, {})),
            "time": self.clock(),
            "users": [vars(u) | {} for u in self.users.values()],
            "chats": [
                {**c.to_api(), "bot_status": c.bot_status, "members": sorted(c.members)}
                for c in self.chats.values()
            ],
            "limits": vars(self.limits) | {},
            "webhook": self._get_webhook_info(_Params({}, {})),
            "pending_updates": len(self._queue),
            "last_update_id": self.last_update_id,
            "rate_limited": self.rate_limited_count,
            "stats": dict(self.stats),
        }

    def message_record(self, message: StoredMessage) -> JSON:
        """A message with its emulator-side state (edits, deletion, raw text) as JSON."""
        return {
            **self.message_json(message),
            "from_bot": message.from_bot,
            "deleted": message.deleted,
            "html": message.html,
            "parse_mode": message.parse_mode,
            "keyboard": message.keyboard,
            "edits": [vars(e) | {} for e in message.edits],
            "disable_notification": message.disable_notification,
            "files": message.files,
        }


def update_chat(update: JSON) -> object:
    """The chat an update belongs to (its user for updates without a chat; else its id)."""
    for kind in ("message", "edited_message", "channel_post", "edited_channel_post"):
        if kind in update:
            return ("chat", update[kind].get("chat", {}).get("id"))
    if "callback_query" in update:
        query = update["callback_query"]
        message = query.get("message") or {}
        if message.get("chat"):
            return ("chat", message["chat"].get("id"))
        return ("user", query.get("from", {}).get("id"))
    for kind in ("my_chat_member", "chat_member", "chat_join_request"):
        if kind in update:
            return ("chat", update[kind].get("chat", {}).get("id"))
    return ("update", update.get("update_id"))


def _loggable(raw: JSON, files: dict[str, UploadedFile] | None) -> JSON:
    """Request parameters as recorded: files reduced to name and size."""
    params = dict(raw)
    for name, upload in (files or {}).items():
        params[name] = {"filename": upload.filename, "size": len(upload.data)}
    return params


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, JPEG, GIF or WebP image; None when it is not one."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return 512, 512
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height = int.from_bytes(data[i + 5 : i + 7], "big")
                width = int.from_bytes(data[i + 7 : i + 9], "big")
                return width, height
            i += 2 + length
        return None
    return None
