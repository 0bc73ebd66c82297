"""The journey's data: what it knows of a resident and their responses, what comes in, what it asks.

Plain dataclasses, no database rows: the use case (usecases/resident.py) loads them, the journey
changes them, the use case stores what changed. `World` is how the journey looks things up that
an update may need (a round, another response, a survey's engine) within the same transaction.
"""

from __future__ import annotations

import copy
import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from journey.actions import Action
from locales import numbers
from locales.catalogue import Catalogue
from locales.detection import Detection, LanguageDetector
from surveys.areas import Areas
from surveys.engine import Engine

# Steps outside the survey where typed text means something else than an answer.
LANGUAGE_STEP = "language"
AREA_STEP = "area"
AREA_CONFIRM_STEP = "area_confirm"


@dataclass
class ResidentState:
    """A resident who gave consent (or is giving it in this update: `new`)."""

    language: str
    language_source: str
    area_code: str | None = None
    neighbourhood_code: str | None = None
    step: str | None = None  # LANGUAGE_STEP, AREA_STEP, AREA_CONFIRM_STEP or None
    ticks: dict[str, Any] | None = None  # {"question": id, "selected": [...], "page": n}
    switch_offered: bool = False
    confirm_area: bool = False  # a poster link placed the resident at consent: ask to confirm
    stopped: bool = False
    new: bool = False  # consent given in this update: store it
    forget: bool = False  # erase everything in this update

    def copy(self) -> ResidentState:
        """An independent copy (the use case compares before and after)."""
        return copy.deepcopy(self)


@dataclass
class RoundInfo:
    """What the journey needs of a round."""

    id: int
    survey_version_id: int
    open: bool
    standing: bool = False


@dataclass
class ResponseState:
    """A resident's response to one round; `id` None until stored."""

    round_id: int
    survey_version_id: int
    status: str  # started, completed, closed
    language: str
    state: dict[str, Any]  # the engine's state, answers included
    round_open: bool = True
    question_message_id: int | None = None  # QUESTION_LOST: its message never arrived
    id: int | None = None
    area_code: str | None = None
    neighbourhood_code: str | None = None
    text_language: str | None = None  # language of a free-text answer given in this update

    @property
    def answers(self) -> dict[str, Any]:
        """The answers given so far."""
        return dict(self.state.get("answers") or {})


# question_message_id when the message asking the current question never arrived (Telegram's
# message ids start at 1): the resident's next tap or message asks it again.
QUESTION_LOST = 0


class World(Protocol):
    """Look-ups the journey may need while it decides (answered within the update's transaction)."""

    def engine(self, survey_version_id: int) -> Engine:
        """The engine of a stored survey version."""
        ...

    def round_for_area(self, area_code: str) -> RoundInfo | None:
        """The round residents of this area answer now, if any."""
        ...

    def round(self, round_id: int) -> RoundInfo | None:
        """A round by id."""
        ...

    def response_in_progress(self) -> ResponseState | None:
        """The resident's unfinished response, if any (the same object on every call)."""
        ...

    def response_for(self, round_id: int) -> ResponseState | None:
        """The resident's response to a round, if any (the same object on every call)."""
        ...

    def start_response(self, round_: RoundInfo, response: ResponseState) -> ResponseState:
        """Register a new response (stored with the resident's other changes)."""
        ...

    def received_response(self, response_id: int) -> bool:
        """Whether the alliance response `response_id` was sent to this resident."""
        ...


@dataclass
class Context:
    """What stays the same between updates: texts, areas, languages; plus this update's moment."""

    catalogue: Catalogue
    areas: Areas
    offered_languages: list[str]
    detector: LanguageDetector
    now: datetime
    telegram_language: str | None = None  # the resident's Telegram language, if one offered
    # What the privacy notice says, from the settings (never typed into a text): who answers for
    # the data (None: not set yet), how long data are kept, the smallest number of answers shown.
    controller: str | None = None
    retention_days: int | None = None
    min_cell_size: int | None = None

    def text(self, lang: str | None, key: str, **params: Any) -> str:
        """A catalogue text."""
        return self.catalogue.get(lang, key, **params)

    def privacy_text(self, lang: str | None, key: str) -> str:
        """A privacy text (consent.notice, privacy) with the controller and retention filled in."""
        if self.retention_days is None or self.min_cell_size is None:
            raise ValueError("the journey context has no retention or cell size for the notice")
        controller = self.controller or self.text(lang, "controller_unset")
        return self.text(
            lang,
            key,
            controller=html.escape(controller),
            days=numbers.count(self.retention_days, lang),
            min_n=numbers.count(self.min_cell_size, lang),
        )


# ---- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """/start, with a deep link's payload."""

    payload: str = ""


@dataclass(frozen=True)
class Text:
    """A typed message."""

    text: str


@dataclass(frozen=True)
class Media:
    """A sticker, photo, voice message, location...: not something the journey can read."""


@dataclass(frozen=True)
class Command:
    """/language, /area, /stop or /forget."""

    name: str


@dataclass(frozen=True)
class Tap:
    """A button: its action (None for another release's button), on which message, as shown."""

    action: Action | None
    message_id: int | None = None
    shown: str | None = None  # the tapped message's HTML as the resident sees it


Input = Start | Text | Media | Command | Tap


# ---- effects --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Button:
    """A button as the journey means it: a label and what tapping it does."""

    label: str
    action: Action


Keyboard = list[list[Button]]


@dataclass
class Send:
    """A message to send after commit (HTML).

    `asks`: the round whose current question this message asks; when it never arrives, the
    response is marked so that the resident's next tap or message brings it back.
    `remember_id`: store the message's id with that response (a typed answer edits it).
    """

    text: str
    keyboard: Keyboard | None = None
    asks: int | None = None
    remember_id: bool = False


@dataclass
class Edit:
    """An edit of an earlier message (a question turned into a record, a menu into another)."""

    message_id: int
    text: str
    keyboard: Keyboard | None = None


@dataclass(frozen=True)
class Reaction:
    """A resident's reaction to an alliance's response, to store."""

    response_id: int
    helpful: bool


@dataclass
class Outcome:
    """What an update leads to: replies in order, edits, and a notice for a tap."""

    resident: ResidentState | None
    sends: list[Send] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    notice: str | None = None  # a short word on the tapped button (may not be shown)
    alert: bool = False  # the notice matters: show it even when the tap was answered already
    detection: Detection | None = None
    reaction: Reaction | None = None  # store this reaction to an alliance's response

    def send(self, text: str, keyboard: Keyboard | None = None) -> None:
        """Queue a message."""
        self.sends.append(Send(text, keyboard))

    def say(self, text: str) -> None:
        """A notice the resident must see."""
        self.notice, self.alert = text, True
