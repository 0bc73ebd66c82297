"""The texts of alliance responses: what residents receive, the group's preview, staff's review.

Rendered from the message catalogue (locales/<lang>/responses.yaml) and plain data, so the use
cases can put them in the outbox and the Telegram adapters can send them alike. The alliance's
own text is plain text: it is escaped here, never read as HTML.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from digests.suppression import suppress_column
from journey import actions, wire
from locales import numbers
from locales.catalogue import MASTER, Catalogue

# The longest text (and translation) an alliance may write, in UTF-16 units as Telegram counts:
# with the header, the note and the reaction question the message stays under Telegram's 4096
# in every language (tests/test_alliance_responses.py checks the longest case).
TEXT_LIMIT = 3500
TELEGRAM_LIMIT = 4096

Buttons = list[list[tuple[str, str]]]  # rows of (label, callback data)


def utf16_length(text: str) -> int:
    """The length Telegram counts: UTF-16 code units (an emoji counts two)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Reply:
    """A message to send (HTML) with its buttons."""

    text: str
    buttons: Buttons = field(default_factory=list)

    def markup(self) -> dict[str, Any] | None:
        """The Bot API reply_markup of the buttons, if any."""
        if not self.buttons:
            return None
        return {
            "inline_keyboard": [
                [{"text": label, "callback_data": data} for label, data in row]
                for row in self.buttons
            ]
        }

    def payload(self) -> dict[str, Any]:
        """A sendMessage payload for the outbox."""
        payload: dict[str, Any] = {"text": self.text, "parse_mode": "HTML"}
        markup = self.markup()
        if markup is not None:
            payload["reply_markup"] = markup
        return payload


@dataclass(frozen=True)
class About:
    """What the texts say about one response."""

    id: int
    status: str
    area_name: str
    round_name: str
    titles: dict[str, str]  # the round's survey title per language
    title_default: str
    text: str
    translations: dict[str, str]
    reviewed_at: datetime | None = None
    review_note: str | None = None

    def title(self, lang: str) -> str:
        """The survey's title in `lang`, else in its default language."""
        return self.titles.get(lang) or self.titles.get(self.title_default) or self.round_name


class ResponseTexts:
    """Renders every text of alliance responses in a given language."""

    def __init__(self, catalogue: Catalogue, min_n: int, timezone: str) -> None:
        self.catalogue = catalogue
        self.min_n = min_n
        self.tz = ZoneInfo(timezone)

    def t(self, lang: str | None, key: str, **params: Any) -> str:
        """A catalogue text."""
        return self.catalogue.get(lang, key, **params)

    def time(self, moment: datetime) -> str:
        """`09-11-2026 10:02` in the configured time zone."""
        return f"{moment.astimezone(self.tz):%d-%m-%Y %H:%M}"

    # ---- residents -----------------------------------------------------------------------

    def for_resident(
        self, about: About, lang: str, *, buttons: bool = True
    ) -> tuple[Reply, str, bool]:
        """The message a resident reading `lang` gets: (message, language of the text, whether
        it is in their language). Without a translation: Dutch, with a note in theirs."""
        if lang in about.translations:
            body, sent_in, translated = about.translations[lang], lang, True
        else:
            body, sent_in, translated = about.text, MASTER, lang == MASTER
        parts = [
            self.t(lang, "responses.resident.header"),
            self.t(
                lang,
                "responses.resident.intro",
                area=html.escape(about.area_name),
                title=html.escape(about.title(lang)),
            ),
            "",
            html.escape(body, quote=False),
        ]
        if not translated:
            parts += ["", self.t(lang, "responses.resident.untranslated")]
        parts += ["", self.t(lang, "responses.resident.question")]
        reply = Reply("\n".join(parts))
        if buttons:
            reply.buttons = [
                [
                    (
                        self.t(lang, "responses.resident.helpful"),
                        wire.encode_action(actions.React(about.id, helpful=True)),
                    ),
                    (
                        self.t(lang, "responses.resident.not_helpful"),
                        wire.encode_action(actions.React(about.id, helpful=False)),
                    ),
                ]
            ]
        return reply, sent_in, translated

    # ---- counts an alliance sees ---------------------------------------------------------

    def count(self, lang: str, n: int) -> str:
        """A count for an alliance: the number, or "fewer than N" under the min cell size."""
        reasons = suppress_column({"n": n}, self.min_n)
        if reasons["n"] is not None:
            return self.t(lang, "responses.fewer", n=self.number(lang, self.min_n))
        return self.number(lang, n)

    def number(self, lang: str, n: int) -> str:
        """A whole number as the language writes it: 1.045 / 1,045 / 1 045."""
        return numbers.count(n, lang)

    def status(self, lang: str, about: About) -> str:
        """The status in words, with the moment of the decision when there was one."""
        name = self.t(lang, f"responses.status.{about.status}")
        if about.reviewed_at is not None:
            return f"{name} ({self.time(about.reviewed_at)})"
        return name

    def languages(self, lang: str, codes: list[str]) -> str:
        """`en (Engels), tr (Turks)` in the reader's language."""
        named = []
        for code in codes:
            key = f"digest.languages.{code}"
            name = self.t(lang, key) if self.catalogue.has(MASTER, key) else code
            named.append(f"{code} ({name})")
        return ", ".join(named)

    # ---- the alliance group --------------------------------------------------------------

    def details(
        self,
        lang: str,
        about: About,
        recipients: int,
        translatable: list[str],
        *,
        buttons: bool = True,
    ) -> Reply:
        """The draft's details under its preview, with submit and cancel."""
        translations = sorted(about.translations)
        text = "\n".join(
            [
                self.t(
                    lang,
                    "responses.group.details",
                    id=about.id,
                    status=self.t(lang, f"responses.status.{about.status}"),
                    round=html.escape(about.round_name),
                    area=html.escape(about.area_name),
                    recipients=self.count(lang, recipients),
                    translations=self.languages(lang, translations)
                    if translations
                    else self.t(lang, "responses.group.no_translations"),
                ),
                "",
                self.t(
                    lang,
                    "responses.group.how",
                    id=about.id,
                    languages=", ".join(translatable),
                ),
            ]
        )
        reply = Reply(text)
        if buttons:
            reply.buttons = [
                [
                    (
                        self.t(lang, "responses.group.submit"),
                        wire.encode_response_button(
                            actions.ResponseButton(about.id, actions.SUBMIT)
                        ),
                    ),
                    (
                        self.t(lang, "responses.group.cancel"),
                        wire.encode_response_button(
                            actions.ResponseButton(about.id, actions.CANCEL)
                        ),
                    ),
                ]
            ]
        return reply

    def preview(
        self, lang: str, about: About, recipients: int, translatable: list[str]
    ) -> list[Reply]:
        """What the group sees of a draft: the Dutch resident message, then the details."""
        resident, _, _ = self.for_resident(about, MASTER, buttons=False)
        return [resident, self.details(lang, about, recipients, translatable)]

    # ---- programme staff -----------------------------------------------------------------

    def review(self, lang: str, about: About, recipients: int, chat: str) -> list[Reply]:
        """A request to approve: the text as residents get it (Dutch and every translation),
        then the details with approve and reject."""
        replies = [self.for_resident(about, MASTER, buttons=False)[0]]
        for code in sorted(about.translations):
            replies.append(self.for_resident(about, code, buttons=False)[0])
        languages = [MASTER, *sorted(about.translations)]
        details = Reply(
            self.t(
                lang,
                "responses.review.request",
                id=about.id,
                area=html.escape(about.area_name),
                chat=html.escape(chat),
                round=html.escape(about.round_name),
                recipients=self.number(lang, recipients),
                languages=", ".join(languages),
            ),
            [
                [
                    (
                        self.t(lang, "responses.review.approve"),
                        wire.encode_response_button(
                            actions.ResponseButton(about.id, actions.APPROVE)
                        ),
                    ),
                    (
                        self.t(lang, "responses.review.reject"),
                        wire.encode_response_button(
                            actions.ResponseButton(about.id, actions.REJECT)
                        ),
                    ),
                ]
            ],
        )
        return [*replies, details]
