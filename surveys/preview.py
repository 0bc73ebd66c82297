"""Run a survey in the terminal as a resident would see it (for `buurtstem survey preview`)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from locales.catalogue import Catalogue, default_catalogue
from surveys.engine import Ask, Done, Engine, Invalid, State, Step, answer_label
from surveys.schema import Question, Survey

BACK_TOKENS = frozenset({"<", "terug", "back"})
_TAG = re.compile(r"</?[a-z]+[^>]*>")
SKIP_TOKENS = frozenset({"", "-"})


class Preview:
    """A terminal session on one survey: reads answer lines, writes what the resident sees."""

    def __init__(self, survey: Survey, lang: str | None = None, catalogue: Catalogue | None = None):
        self.survey = survey
        self.lang = lang or survey.default_language
        self.catalogue = catalogue or default_catalogue()
        self.engine = Engine(survey)
        words = self.t("engine.preview.back_words")
        self.back_words = BACK_TOKENS | {
            w.strip().casefold() for w in words.split(",") if w.strip()
        }

    def t(self, key: str, **params: object) -> str:
        """A preview text in the preview language."""
        return self.catalogue.get(self.lang, key, **params)

    def render(self, step: Ask) -> list[str]:
        """The lines that show a question, its options and how to answer."""
        question = step.question
        heading = self.progress(step)
        if question.optional:
            heading += " " + self.t("engine.preview.optional")
        lines = [heading, self.survey.text(question.text, self.lang)]
        for number, option in enumerate(question.options, start=1):
            lines.append(f"  {number}. {self.survey.text(option.label, self.lang)}")
        hints = [self.hint(question)]
        if question.optional:
            hints.append(self.t("engine.preview.hint_skip"))
        if step.number > 1:
            hints.append(self.t("engine.preview.hint_back"))
        lines.append(" ".join(hints))
        return lines

    def progress(self, step: Ask) -> str:
        """'Vraag 3 van 14', or 'Vraag 3' while the total depends on answers to come."""
        if step.total is None:
            return self.t("engine.preview.progress_open", number=step.number)
        return self.t("engine.preview.progress", number=step.number, total=step.total)

    def closing(self) -> list[str]:
        """What the bot says after the last question: the survey's thanks (or the bot's own),
        then where to go in an emergency, as in Telegram but without the HTML."""
        if self.survey.thanks:
            thanks = self.survey.text(self.survey.thanks, self.lang)
        else:
            thanks = plain(self.t("survey.thanks"))
        return [thanks, plain(self.t("safety"))]

    def hint(self, question: Question) -> str:
        """How to type an answer to this question."""
        if question.type == "grade":
            return self.t("engine.preview.hint_grade")
        if question.type == "text":
            return self.t("engine.preview.hint_text", max=question.max_length)
        if question.type == "multi":
            for number, option in enumerate(question.options, start=1):
                if option.none:
                    label = self.survey.text(option.label, self.lang)
                    return self.t("engine.preview.hint_multi_none", number=number, label=label)
            return self.t("engine.preview.hint_multi")
        return self.t("engine.preview.hint_choice")

    def respond(self, step: Ask, line: str) -> Step:
        """The engine's next step for one typed line."""
        text = line.strip()
        if text.casefold() in self.back_words:
            return self.engine.back(step.state)
        if text in SKIP_TOKENS and step.question.optional:
            return self.engine.skip(step.state)
        return self.engine.answer(step.state, line)

    def summary(self, done: Done) -> list[str]:
        """Question: answer label, for every question that was shown."""
        lines = [self.t("engine.preview.summary")]
        for question_id in done.state["path"]:
            question = self.survey.question(question_id)
            if question_id in done.answers:
                label = answer_label(
                    question, done.answers[question_id], self.lang, self.survey.default_language
                )
            else:
                label = self.t("engine.preview.skipped")
            lines.append(f"- {self.survey.text(question.text, self.lang)}: {label}")
        return lines

    def run(
        self, read_line: Callable[[], str | None], write: Callable[[str], None], echo: bool = False
    ) -> int:
        """Ask every question until done (0) or until input ends (1)."""
        write(self.survey.text(self.survey.title, self.lang))
        write(self.survey.text(self.survey.intro, self.lang))
        state: State = self.engine.start()
        step: Step = self.engine.current(state)
        while True:
            if isinstance(step, Done):
                write("")
                for text in self.summary(step):
                    write(text)
                for text in self.closing():
                    write("")
                    write(text)
                return 0
            if isinstance(step, Invalid):
                write(f"! {step.message(self.lang, self.catalogue)}")
                step = self.engine.current(step.state)
                continue
            write("")
            for text in self.render(step):
                write(text)
            line = read_line()
            if line is None:
                write("")
                write(self.t("engine.preview.eof", number=step.number))
                return 1
            if echo:
                write(f"> {line.rstrip(chr(10))}")
            step = self.respond(step, line.rstrip("\r\n"))


def plain(text: str) -> str:
    """A catalogue text (Telegram HTML) as plain text for the terminal."""
    return html.unescape(_TAG.sub("", text))
