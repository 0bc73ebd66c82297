"""The survey engine: definition + state + input -> next step. Pure Python, no I/O."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from locales.catalogue import Catalogue, default_catalogue
from surveys.conditions import AllOf, AnyOf, Condition, Not, evaluate
from surveys.schema import (
    DEFAULT_TEXT_MAX_LENGTH,
    GRADE_MAX,
    GRADE_MIN,
    Question,
    Survey,
)

STATE_FORMAT = 1
# A session state: plain JSON (stored as is in responses.state).
State = dict[str, Any]


class StateError(ValueError):
    """A state that does not belong to this survey or is malformed."""


@dataclass(frozen=True)
class Ask:
    """Show `question`, question `number` of `total`.

    `total` is the number of questions this resident will be asked in all, counted only once it
    is certain: None while a later question may or may not be shown depending on answers still to
    come. A total once shown therefore never changes as the resident answers or skips (going back
    and answering differently can change it: that is a different run).
    """

    question: Question
    number: int
    total: int | None
    state: State


@dataclass(frozen=True)
class Invalid:
    """The input was not accepted; `code` is a catalogue key, the state is unchanged."""

    code: str
    params: dict[str, Any]
    state: State
    question: Question | None = None

    def message(self, lang: str | None, catalogue: Catalogue | None = None) -> str:
        """The message for the resident, in `lang`."""
        return (catalogue or default_catalogue()).get(lang, self.code, **self.params)


@dataclass(frozen=True)
class Done:
    """Every shown question was answered or skipped; `answers` in survey order."""

    answers: dict[str, Any]
    state: State = field(repr=False)


Step = Ask | Invalid | Done


class _Rejected(Exception):
    """An input that does not fit the question (internal)."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


_SKIP = object()
_WS = re.compile(r"\s+")
_NUMBER_LIST = re.compile(r"^[\d\s,;]+$")


def _fold(text: str) -> str:
    """Text for loose matching: case, spacing and trailing dots do not matter."""
    return _WS.sub(" ", text).strip().rstrip(".!").strip().casefold()


class Engine:
    """Runs one survey definition; every method returns a new state, never mutates its input."""

    def __init__(self, survey: Survey) -> None:
        self.survey = survey
        self._index = {question.id: i for i, question in enumerate(survey.questions)}

    # -- public API ----------------------------------------------------------------------------

    def start(self) -> State:
        """A fresh state at the first shown question."""
        state: State = {
            "format": STATE_FORMAT,
            "survey": self.survey.id,
            "version": self.survey.version,
            "answers": {},
            "path": [],
            "current": None,
            "done": False,
        }
        return self._advance(state, -1)

    def current(self, state: Mapping[str, Any]) -> Step:
        """What to show now."""
        new = self._read(state)
        return self._step(new)

    def answer(self, state: Mapping[str, Any], value: Any) -> Step:
        """Take the resident's answer to the current question."""
        new = self._read(state)
        if new["done"]:
            return self._step(new)
        question = self.survey.questions[self._index[new["current"]]]
        try:
            parsed = self.parse(question, value)
        except _Rejected as exc:
            return Invalid(exc.code, exc.params, copy.deepcopy(dict(state)), question)
        if parsed is _SKIP:
            return self._skip(new, question, copy.deepcopy(dict(state)))
        new["answers"][question.id] = parsed
        new["path"].append(question.id)
        return self._step(self._advance(new, self._index[question.id]))

    def skip(self, state: Mapping[str, Any]) -> Step:
        """Skip the current question (only when it is optional)."""
        new = self._read(state)
        if new["done"]:
            return self._step(new)
        question = self.survey.questions[self._index[new["current"]]]
        return self._skip(new, question, copy.deepcopy(dict(state)))

    def back(self, state: Mapping[str, Any]) -> Step:
        """Go back to the previous shown question; its answer is removed and it is asked again."""
        new = self._read(state)
        if new["done"]:
            return self._step(new)
        if not new["path"]:
            return Invalid("engine.invalid.no_back", {}, copy.deepcopy(dict(state)), None)
        previous = new["path"].pop()
        new["answers"].pop(previous, None)
        new["current"] = previous
        return self._step(new)

    def progress(self, state: Mapping[str, Any]) -> tuple[int, int | None]:
        """(number, total) of the current question; total is None until it is certain."""
        new = self._read(state)
        return self._progress(new)

    def is_shown(self, question: Question, answers: Mapping[str, Any]) -> bool:
        """Whether the question is shown given these answers."""
        return question.show_if is None or evaluate(question.show_if, answers)

    def parse(self, question: Question, value: Any) -> Any:
        """The stored form of an answer (int, option id, list of ids, text); internal rejects."""
        if question.type == "grade":
            return self._grade(question, value)
        if question.type == "multi":
            return self._multi(question, value)
        if question.type == "text":
            return self._text(question, value)
        option_id = self._option(question, value)
        if option_id is None:
            if question.optional and isinstance(value, str) and not value.strip():
                return _SKIP
            raise _Rejected("engine.invalid.choice", count=len(question.options))
        return option_id

    def validate(self, question: Question, value: Any) -> tuple[Any, Invalid | None]:
        """(stored value, None) when `value` answers `question`, else (None, Invalid)."""
        try:
            parsed = self.parse(question, value)
        except _Rejected as exc:
            return None, Invalid(exc.code, exc.params, {}, question)
        return (None if parsed is _SKIP else parsed), None

    # -- input parsing -------------------------------------------------------------------------

    def _grade(self, question: Question, value: Any) -> Any:
        grade: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            grade = value
        elif isinstance(value, str):
            text = value.strip()
            if not text and question.optional:
                return _SKIP
            if re.fullmatch(r"\d{1,2}", text):
                grade = int(text)
        if grade is None or not GRADE_MIN <= grade <= GRADE_MAX:
            raise _Rejected("engine.invalid.grade", min=GRADE_MIN, max=GRADE_MAX)
        return grade

    def _option(self, question: Question, value: Any) -> str | None:
        """The option id meant by an id, a 1-based number or a label (any language)."""
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return question.options[value - 1].id if 1 <= value <= len(question.options) else None
        if not isinstance(value, str):
            return None
        text = value.strip()
        if question.option(text) is not None:
            return text
        if text.isdecimal() and len(text) < 4:
            return self._option(question, int(text))
        folded = _fold(text)
        if not folded:
            return None
        for option in question.options:
            if folded == _fold(option.id) or any(
                folded == _fold(label) for label in option.label.values()
            ):
                return option.id
        return None

    def _multi(self, question: Question, value: Any) -> Any:
        count = len(question.options)
        if isinstance(value, str):
            parts: Sequence[Any] = [
                part
                for part in re.split(
                    r"[,;\s]+" if _NUMBER_LIST.match(value) else r"[,;]", value.strip()
                )
                if part.strip()
            ]
        elif isinstance(value, list | tuple):
            parts = value
        else:
            raise _Rejected("engine.invalid.multi", count=count)
        chosen: set[str] = set()
        for part in parts:
            option_id = self._option(question, part)
            if option_id is None:
                raise _Rejected("engine.invalid.multi", count=count)
            chosen.add(option_id)
        if not chosen:
            if question.optional:
                return _SKIP
            raise _Rejected("engine.invalid.multi_empty")
        nones = {option.id for option in question.options if option.none}
        if chosen & nones and len(chosen) > 1:
            raise _Rejected("engine.invalid.multi_none")
        # Stored in the order of the options, so equal choices are equal values.
        return [option_id for option_id in question.option_ids if option_id in chosen]

    def _text(self, question: Question, value: Any) -> Any:
        if not isinstance(value, str):
            raise _Rejected("engine.invalid.text")
        text = value.strip()
        if not text:
            if question.optional:
                return _SKIP
            raise _Rejected("engine.invalid.text_empty")
        limit = question.max_length or DEFAULT_TEXT_MAX_LENGTH
        if len(text) > limit:
            raise _Rejected("engine.invalid.text_too_long", max=limit, length=len(text))
        return text

    # -- state handling ------------------------------------------------------------------------

    def _read(self, state: Mapping[str, Any]) -> State:
        """A checked deep copy of `state`."""
        if not isinstance(state, Mapping):
            raise StateError("state must be a mapping")
        if state.get("survey") != self.survey.id or state.get("version") != self.survey.version:
            raise StateError("state belongs to another survey or version")
        answers, path, current = state.get("answers"), state.get("path"), state.get("current")
        if not isinstance(answers, Mapping) or not isinstance(path, list):
            raise StateError("state has no answers or path")
        if any(qid not in self._index for qid in [*answers, *path]):
            raise StateError("state refers to questions this survey does not have")
        done = state.get("done")
        if not isinstance(done, bool) or (not done and current not in self._index):
            raise StateError("state has no current question")
        return {
            "format": STATE_FORMAT,
            "survey": self.survey.id,
            "version": self.survey.version,
            "answers": copy.deepcopy(dict(answers)),
            "path": list(path),
            "current": current if not done else None,
            "done": done,
        }

    def _skip(self, new: State, question: Question, original: State) -> Step:
        if not question.optional:
            return Invalid("engine.invalid.not_optional", {}, original, question)
        new["answers"].pop(question.id, None)
        new["path"].append(question.id)
        return self._step(self._advance(new, self._index[question.id]))

    def _advance(self, state: State, after: int) -> State:
        """Move to the first shown question after position `after`, or finish."""
        self._prune(state)
        for question in self.survey.questions[after + 1 :]:
            if self.is_shown(question, state["answers"]):
                state["current"] = question.id
                state["done"] = False
                return state
        state["current"] = None
        state["done"] = True
        return state

    def _prune(self, state: State) -> None:
        """Drop answers (and path entries) of questions that are no longer shown."""
        kept: dict[str, Any] = {}
        shown: set[str] = set()
        for question in self.survey.questions:
            # Conditions only look at earlier questions, so one pass in order is enough.
            if self.is_shown(question, kept):
                shown.add(question.id)
                if question.id in state["answers"]:
                    kept[question.id] = state["answers"][question.id]
        state["answers"] = kept
        state["path"] = [qid for qid in state["path"] if qid in shown]

    def _progress(self, state: State) -> tuple[int, int | None]:
        answered = len(state["path"])
        if state["done"]:
            return answered, answered
        return answered + 1, self._certain_total(state)

    def _certain_total(self, state: State) -> int | None:
        """How many questions this run asks in all, or None when that depends on answers to come.

        Questions before the current one are settled: answered, skipped or never shown. Every
        later question's condition is evaluated in three-valued logic, where an answer still to
        come is unknown; the total is certain when each later question is certainly shown or
        certainly not. Answering only adds knowledge, so a certain total stays the same.
        """
        start = self._index[state["current"]]
        answers = state["answers"]
        unknown = {self.survey.questions[start].id}
        shown = 1
        for question in self.survey.questions[start + 1 :]:
            verdict = (
                True if question.show_if is None else _maybe(question.show_if, answers, unknown)
            )
            if verdict is None:
                return None
            if verdict:
                unknown.add(question.id)
                shown += 1
        return len(state["path"]) + shown

    def _step(self, state: State) -> Step:
        if state["done"]:
            ordered = {
                question.id: state["answers"][question.id]
                for question in self.survey.questions
                if question.id in state["answers"]
            }
            return Done(ordered, state)
        number, total = self._progress(state)
        question = self.survey.questions[self._index[state["current"]]]
        return Ask(question, number, total, state)


def _maybe(condition: Condition, answers: Mapping[str, Any], unknown: set[str]) -> bool | None:
    """A condition in three-valued (Kleene) logic: None when it depends on an unknown answer."""
    if isinstance(condition, AllOf | AnyOf):
        results = [_maybe(item, answers, unknown) for item in condition.items]
        decisive = isinstance(condition, AnyOf)  # any: one True decides; all: one False
        if decisive in results:
            return decisive
        return None if None in results else not decisive
    if isinstance(condition, Not):
        inner = _maybe(condition.item, answers, unknown)
        return None if inner is None else not inner
    if condition.question in unknown:
        return None
    return evaluate(condition, answers)


def answer_label(question: Question, value: Any, lang: str | None, default_lang: str = "nl") -> str:
    """How an answer reads in the chat record and the summary."""
    if value is None:
        return ""
    if question.type == "multi" and isinstance(value, list):
        return ", ".join(_label(question, item, lang, default_lang) for item in value)
    if question.is_choice:
        return _label(question, value, lang, default_lang)
    return str(value)


def _label(question: Question, option_id: Any, lang: str | None, default_lang: str) -> str:
    option = question.option(option_id) if isinstance(option_id, str) else None
    if option is None:
        return str(option_id)
    if lang is not None and lang in option.label:
        return option.label[lang]
    return option.label.get(default_lang) or next(iter(option.label.values()), option.id)
