"""The survey definition objects: Survey, Question, Option, and their JSON form."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from surveys.conditions import Condition, from_data, to_data

FORMAT = 1
QUESTION_TYPES = ("grade", "agree5", "single", "multi", "yesno", "text")
# Types answered by choosing option ids (shown as buttons).
CHOICE_TYPES = frozenset({"agree5", "single", "multi", "yesno"})
# Types whose options are built in (labels from the engine catalogue, overridable).
BUILTIN_TYPES = frozenset({"agree5", "yesno"})
GRADE_MIN, GRADE_MAX = 1, 10
YESNO_IDS = ("ja", "nee", "weet_niet")
AGREE5_IDS = ("helemaal_eens", "eens", "neutraal", "oneens", "helemaal_oneens")
# Agreement as a score: 5 = helemaal mee eens ... 1 = helemaal mee oneens (reverse flips it).
AGREE5_SCORES = dict(zip(AGREE5_IDS, (5, 4, 3, 2, 1), strict=True))

# Ids: short slugs, safe in callback data, file names and CSV headers.
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# A question's button data carries its question id and option id (journey/wire.py has the
# format and checks at import that this budget fits Telegram's 64 bytes with any round id).
BUTTON_KEY_BUDGET = 47
# The bot's own buttons (e.g. "_done", "_skip") travel in the option place too.
BOT_CONTROL_ID_BYTES = 5
MAX_BUTTON_LABEL = 30
TEXT_MAX_LENGTH_MIN, TEXT_MAX_LENGTH_MAX = 1, 1000
DEFAULT_TEXT_MAX_LENGTH = 500

Text = dict[str, str]

# ISO 639-1 codes, plus ISO 639-3 codes for languages spoken in the focus areas that have no
# two-letter code (Papiamento, Sranantongo, Tamazight varieties).
LANGUAGE_CODES = frozenset(
    """aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy
    da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu
    hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb
    lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om
    or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw
    ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
    pap srn zgh tzm rif shi""".split()  # noqa: SIM905 (a list literal of 190 codes reads worse)
)


def pick(text: Mapping[str, str], lang: str | None, fallback: str) -> str:
    """The text in `lang`, else in the fallback (default) language."""
    if lang is not None and lang in text:
        return text[lang]
    if fallback in text:
        return text[fallback]
    return next(iter(text.values()), "")


@dataclass(frozen=True)
class Option:
    """One answer option of a choice question."""

    id: str
    label: Text
    # The exclusive "none of these" option of a multi question.
    none: bool = False
    line: int | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data."""
        data: dict[str, Any] = {"id": self.id, "label": dict(self.label)}
        if self.none:
            data["none"] = True
        return data


@dataclass(frozen=True)
class Question:
    """One question of a survey."""

    id: str
    type: str
    text: Text
    options: tuple[Option, ...] = ()
    optional: bool = False
    show_if: Condition | None = None
    item: str | None = None
    reverse: bool = False
    max_length: int | None = None
    # False: counted for the export only, never shown in a digest or /results (e.g. a profile).
    digest: bool = True
    line: int | None = field(default=None, compare=False, repr=False)

    @property
    def is_choice(self) -> bool:
        """Whether the question is answered with option buttons."""
        return self.type in CHOICE_TYPES

    @property
    def option_ids(self) -> list[str]:
        """Option ids in the order shown."""
        return [option.id for option in self.options]

    def option(self, option_id: str) -> Option | None:
        """The option with this id, if any."""
        return next((option for option in self.options if option.id == option_id), None)

    def score(self, value: Any) -> int | None:
        """A numeric score for grade and agree5 answers (reverse-scored where marked), else None."""
        if self.type == "grade" and isinstance(value, int) and not isinstance(value, bool):
            return GRADE_MAX + GRADE_MIN - value if self.reverse else value
        if self.type == "agree5" and isinstance(value, str) and value in AGREE5_SCORES:
            score = AGREE5_SCORES[value]
            return 6 - score if self.reverse else score
        return None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data."""
        data: dict[str, Any] = {"id": self.id, "type": self.type, "text": dict(self.text)}
        if self.options:
            data["options"] = [option.to_json() for option in self.options]
        if self.optional:
            data["optional"] = True
        if self.show_if is not None:
            data["show_if"] = to_data(self.show_if)
        if self.item is not None:
            data["item"] = self.item
        if self.reverse:
            data["reverse"] = True
        if self.max_length is not None:
            data["max_length"] = self.max_length
        if not self.digest:
            data["digest"] = False
        return data


@dataclass(frozen=True)
class Survey:
    """A validated survey definition."""

    id: str
    version: str
    title: Text
    intro: Text
    languages: tuple[str, ...]
    questions: tuple[Question, ...]
    thanks: Text | None = None
    source_file: str | None = field(default=None, compare=False, repr=False)

    @property
    def default_language(self) -> str:
        """The first language listed: the master wording."""
        return self.languages[0]

    def text(self, text: Mapping[str, str], lang: str | None) -> str:
        """A text of this survey in `lang`, falling back to the default language."""
        return pick(text, lang, self.default_language)

    def question(self, question_id: str) -> Question:
        """The question with this id (KeyError when there is none)."""
        for question in self.questions:
            if question.id == question_id:
                return question
        raise KeyError(question_id)

    def index(self, question_id: str) -> int:
        """Position of a question in the survey (KeyError when there is none)."""
        for position, question in enumerate(self.questions):
            if question.id == question_id:
                return position
        raise KeyError(question_id)

    def to_json(self) -> dict[str, Any]:
        """The definition as plain JSON data (what the database stores)."""
        data: dict[str, Any] = {
            "format": FORMAT,
            "id": self.id,
            "version": self.version,
            "title": dict(self.title),
            "intro": dict(self.intro),
            "languages": list(self.languages),
            "questions": [question.to_json() for question in self.questions],
        }
        if self.thanks is not None:
            data["thanks"] = dict(self.thanks)
        return data

    @cached_property
    def content_hash(self) -> str:
        """sha256 (hex) of the canonical JSON: equal content, equal hash."""
        canonical = json.dumps(
            self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Survey:
        """A survey from `to_json` data; ValueError when the data is not such a definition."""
        try:
            if data.get("format") != FORMAT:
                raise ValueError(f"unknown survey format {data.get('format')!r}")
            return cls(
                id=str(data["id"]),
                version=str(data["version"]),
                title=_text(data["title"]),
                intro=_text(data["intro"]),
                languages=tuple(str(lang) for lang in data["languages"]),
                questions=tuple(_question(item) for item in data["questions"]),
                thanks=_text(data["thanks"]) if "thanks" in data else None,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a survey definition: {exc!r}") from exc


def _text(data: Any) -> Text:
    if not isinstance(data, Mapping):
        raise TypeError("a text must be a mapping of language to text")
    return {str(lang): str(value) for lang, value in data.items()}


def _question(data: Mapping[str, Any]) -> Question:
    return Question(
        id=str(data["id"]),
        type=str(data["type"]),
        text=_text(data["text"]),
        options=tuple(
            Option(id=str(item["id"]), label=_text(item["label"]), none=bool(item.get("none")))
            for item in data.get("options", ())
        ),
        optional=bool(data.get("optional", False)),
        show_if=from_data(data["show_if"]) if "show_if" in data else None,
        item=data.get("item"),
        reverse=bool(data.get("reverse", False)),
        max_length=data.get("max_length"),
        digest=bool(data.get("digest", True)),
    )
