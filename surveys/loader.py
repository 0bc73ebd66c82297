"""Read survey YAML files and check them, collecting every problem with its line."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from locales.catalogue import Catalogue, default_catalogue
from surveys.conditions import COMBINATORS, OPERATORS, AllOf, AnyOf, Condition, Not, Test
from surveys.schema import (
    AGREE5_IDS,
    BOT_CONTROL_ID_BYTES,
    BUILTIN_TYPES,
    BUTTON_KEY_BUDGET,
    DEFAULT_TEXT_MAX_LENGTH,
    GRADE_MAX,
    GRADE_MIN,
    ID_RE,
    LANGUAGE_CODES,
    MAX_BUTTON_LABEL,
    QUESTION_TYPES,
    TEXT_MAX_LENGTH_MAX,
    TEXT_MAX_LENGTH_MIN,
    YESNO_IDS,
    Option,
    Question,
    Survey,
    Text,
)
from surveys.yamlfile import (
    NULL_TAG,
    Loader,
    Problem,
    ProblemsError,
    compose,
    given_twice,
    kind_of,
    line_of,
    read_text,
)

DEFAULT_SURVEY_PATH = Path(__file__).parent / "buurtpeiling.yaml"

SURVEY_KEYS = ("id", "version", "title", "intro", "languages", "questions", "thanks")
QUESTION_KEYS = (
    "id",
    "type",
    "text",
    "options",
    "labels",
    "optional",
    "show_if",
    "item",
    "reverse",
    "max_length",
    "dont_know",
    "digest",
)
OPTION_KEYS = ("id", "label", "none")
CONDITION_KEYS = ("question", *OPERATORS, *COMBINATORS)
ITEM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_QUESTION_TEXT = 1000
MAX_SURVEY_ID = 64
MAX_VERSION = 32
MAX_TITLE = 200


class SurveyError(ProblemsError):
    """A survey file that cannot be used; `problems` lists everything found."""


def suggest(word: str, candidates: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest candidate, or ''."""
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


# A mapping as read: key -> (key node, value node), in file order.
Fields = dict[str, tuple[Node, Node]]


class _Reader:
    """Turns the YAML node tree into a Survey, noting every problem on the way."""

    def __init__(self, filename: str, catalogue: Catalogue) -> None:
        self.file = filename
        self.catalogue = catalogue
        self.problems: list[Problem] = []
        self.languages: list[str] = []
        self._constructor = Loader("")

    def problem(self, node: Node | int | None, message: str, question: str | None = None) -> None:
        line = line_of(node) if isinstance(node, Node) else node
        self.problems.append(Problem(self.file, line, message, question))

    # -- basic shapes -------------------------------------------------------------------------

    def pairs(self, node: Node, what: str, qid: str | None) -> Fields:
        """The keys of a mapping node in file order; a repeated key is a problem."""
        if not isinstance(node, MappingNode):
            self.problem(
                node, f"{what} must be a list of 'key: value' lines, not {kind_of(node)}", qid
            )
            return {}
        result: Fields = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.problem(key_node, f"{what} has a key that is not a plain word", qid)
                continue
            key = str(key_node.value)
            if key in result:
                first = line_of(result[key][0])
                self.problem(key_node, given_twice(key, first, what), qid)
                continue
            result[key] = (key_node, value_node)
        return result

    def fields(self, node: Node, what: str, allowed: tuple[str, ...], qid: str | None) -> Fields:
        """The known keys of a mapping node; unknown keys are problems (with a suggestion)."""
        result: Fields = {}
        # Keys that were probably meant (misspelt): their absence is not reported again.
        self.misspelt: set[str] = set()
        for key, (key_node, value_node) in self.pairs(node, what, qid).items():
            if key not in allowed:
                hint = suggest(key, allowed) or f" (known keys: {', '.join(allowed)})"
                self.misspelt.update(difflib.get_close_matches(key, allowed, n=1, cutoff=0.6))
                self.problem(key_node, f"unknown key '{key}' in {what}{hint}", qid)
                continue
            result[key] = (key_node, value_node)
        return result

    def scalar(self, node: Node) -> Any:
        """The typed value of a scalar node (only true/false are booleans); None when refused."""
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError:
            # e.g. `!!int abc` or a `!!python/...` tag: the caller reports the wrong type.
            return None

    def raw(self, node: Node, what: str, qid: str | None) -> str | None:
        """A scalar exactly as written (so 'no', '1.0' and '007' stay text)."""
        if isinstance(node, ScalarNode) and node.tag != NULL_TAG:
            return str(node.value)
        self.problem(node, f"{what} must be a single value, not {kind_of(node)}", qid)
        return None

    def flag(self, node: Node, what: str, qid: str | None) -> bool:
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        if isinstance(value, bool):
            return value
        self.problem(node, f"'{what}' must be true or false, not {kind_of(node)}", qid)
        return False

    def ident(self, node: Node, what: str, qid: str | None) -> str | None:
        """A short id: lowercase letters, digits, '_' and '-'."""
        value = self.raw(node, what, qid)
        if value is None:
            return None
        if not ID_RE.match(value):
            slug = re.sub(r"[^a-z0-9_-]+", "_", value.lower()).strip("_-")
            hint = f" (e.g. '{slug}')" if slug and ID_RE.match(slug) else ""
            self.problem(
                node,
                f"{what} '{value}' may only use lowercase letters a-z, digits, '_' and '-', "
                f"and must start with a letter or digit{hint}",
                qid,
            )
            return None
        return value

    def text(self, node: Node, what: str, qid: str | None, *, partial: bool = False) -> Text:
        """A text per offered language (a plain string is fine for a one-language survey)."""
        if isinstance(node, ScalarNode) and node.tag != NULL_TAG:
            if len(self.languages) == 1 and not partial:
                value = str(node.value).strip()
                if not value:
                    self.problem(node, f"{what} is empty", qid)
                return {self.languages[0]: value}
            langs = ", ".join(self.languages)
            self.problem(
                node, f"{what} must give a text for each language ({langs}) as 'nl: ...' lines", qid
            )
            return {}
        fields = self.pairs(node, what, qid)
        result: Text = {}
        for lang, (key_node, value_node) in fields.items():
            if lang not in LANGUAGE_CODES:
                self.problem(
                    key_node,
                    f"{what} has '{lang}' where a language code belongs; a text with a comma or "
                    "colon in it must be put between double quotes",
                    qid,
                )
                continue
            if self.languages and lang not in self.languages:
                hint = suggest(lang, self.languages)
                self.problem(
                    key_node,
                    f"{what} has a text in '{lang}', but the survey is not offered in '{lang}'{hint}",
                    qid,
                )
                continue
            written = self.raw(value_node, f"the '{lang}' text of {what}", qid)
            if written is None:
                continue
            if not written.strip():
                self.problem(value_node, f"the '{lang}' text of {what} is empty", qid)
                continue
            result[lang] = written.strip()
        missing = [lang for lang in self.languages if lang not in fields]
        if missing and not partial and isinstance(node, MappingNode):
            self.problem(node, f"{what} has no translation in {', '.join(missing)}", qid)
        return result

    # -- the survey ----------------------------------------------------------------------------

    def survey(self, root: Node) -> Survey | None:
        if not isinstance(root, MappingNode):
            self.problem(
                root,
                "a survey file must be a list of 'key: value' lines (id, version, title, intro, "
                f"languages, questions), not {kind_of(root)}",
            )
            return None
        top = self.fields(root, "the survey", SURVEY_KEYS, None)
        for key in ("id", "version", "title", "intro", "languages", "questions"):
            if key not in top:
                self.problem(root, f"the survey has no '{key}'")
        self.languages = self.read_languages(top["languages"][1]) if "languages" in top else []
        survey_id = self.ident(top["id"][1], "the survey id", None) if "id" in top else None
        if survey_id is not None and len(survey_id) > MAX_SURVEY_ID:
            self.problem(top["id"][1], f"the survey id is longer than {MAX_SURVEY_ID} characters")
        version = self.raw(top["version"][1], "'version'", None) if "version" in top else None
        if version is not None and not 0 < len(version.strip()) <= MAX_VERSION:
            self.problem(top["version"][1], f"'version' must be 1 to {MAX_VERSION} characters")
        title = self.text(top["title"][1], "'title'", None) if "title" in top else {}
        for lang, value in title.items():
            if len(value) > MAX_TITLE:
                self.problem(
                    top["title"][1], f"the '{lang}' title is longer than {MAX_TITLE} characters"
                )
        intro = self.text(top["intro"][1], "'intro'", None) if "intro" in top else {}
        thanks = self.text(top["thanks"][1], "'thanks'", None) if "thanks" in top else None
        questions = self.read_questions(top["questions"][1]) if "questions" in top else []
        if self.problems or survey_id is None or version is None:
            return None
        return Survey(
            id=survey_id,
            version=version.strip(),
            title=title,
            intro=intro,
            languages=tuple(self.languages),
            questions=tuple(questions),
            thanks=thanks,
            source_file=self.file,
        )

    def read_languages(self, node: Node) -> list[str]:
        if not isinstance(node, SequenceNode) or not node.value:
            self.problem(node, "'languages' must be a list of language codes, e.g. [nl, en]")
            return []
        langs: list[str] = []
        for item in node.value:
            code = self.raw(item, "a language code", None)
            if code is None:
                continue
            if code not in LANGUAGE_CODES:
                hint = (
                    suggest(code.lower(), LANGUAGE_CODES)
                    or " (use ISO 639 codes such as nl, en, tr)"
                )
                self.problem(item, f"unknown language code '{code}'{hint}")
            elif code in langs:
                self.problem(item, f"language '{code}' is listed twice")
            else:
                langs.append(code)
        return langs

    def read_questions(self, node: Node) -> list[Question]:
        if not isinstance(node, SequenceNode):
            self.problem(
                node, f"'questions' must be a list ('- id: ...' items), not {kind_of(node)}"
            )
            return []
        if not node.value:
            self.problem(node, "'questions' is empty: a survey needs at least one question")
            return []
        questions: list[Question] = []
        seen: dict[str, int] = {}
        items: dict[str, int] = {}
        all_ids = self._all_question_ids(node)
        self.read_ids: list[str] = []
        for item in node.value:
            question = self.read_question(item, questions, all_ids)
            self.read_ids.extend(self._all_question_ids(SequenceNode("", [item])))
            if question is None:
                continue
            if question.id in seen:
                self.problem(
                    item,
                    f"question id '{question.id}' is used twice (also on line {seen[question.id]})",
                    question.id,
                )
                continue
            seen[question.id] = line_of(item)
            if question.item is not None:
                if question.item in items:
                    self.problem(
                        item,
                        f"item '{question.item}' is used twice (also on line {items[question.item]})",
                        question.id,
                    )
                items[question.item] = line_of(item)
            questions.append(question)
        return questions

    def _all_question_ids(self, node: SequenceNode) -> list[str]:
        ids = []
        for item in node.value:
            if isinstance(item, MappingNode):
                for key_node, value_node in item.value:
                    if getattr(key_node, "value", None) == "id" and isinstance(
                        value_node, ScalarNode
                    ):
                        ids.append(str(value_node.value))
        return ids

    def read_question(
        self, node: Node, before: list[Question], all_ids: list[str]
    ) -> Question | None:
        qid_hint = None
        checked_as: str | None = None  # the type the rest is checked as
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if getattr(key_node, "value", None) == "id" and isinstance(value_node, ScalarNode):
                    qid_hint = str(value_node.value)
        fields = self.fields(node, "a question", QUESTION_KEYS, qid_hint)
        if not isinstance(node, MappingNode):
            return None
        misspelt = set(self.misspelt)
        count = len(self.problems)
        if "id" not in fields and "id" not in misspelt:
            self.problem(node, "a question has no 'id'")
        qid = self.ident(fields["id"][1], "question id", None) if "id" in fields else None
        if "type" not in fields:
            if "type" not in misspelt:
                self.problem(node, f"no 'type' (one of {', '.join(QUESTION_TYPES)})", qid)
            qtype = None
        else:
            qtype = self.raw(fields["type"][1], "'type'", qid)
            if qtype is not None and qtype not in QUESTION_TYPES:
                hint = suggest(qtype, QUESTION_TYPES) or f" (one of {', '.join(QUESTION_TYPES)})"
                self.problem(fields["type"][1], f"unknown question type '{qtype}'{hint}", qid)
                # Check the rest as the type that was probably meant, so that one run shows
                # every problem of the question, not only the misspelt type.
                meant = difflib.get_close_matches(qtype, QUESTION_TYPES, n=1)
                checked_as = meant[0] if meant else ("single" if "options" in fields else None)
                qtype = None
        if "text" not in fields and "text" not in misspelt:
            self.problem(node, "no 'text'", qid)
        text = self.text(fields["text"][1], "'text'", qid) if "text" in fields else {}
        for lang, value in text.items():
            if len(value) > MAX_QUESTION_TEXT:
                self.problem(
                    fields["text"][1],
                    f"the '{lang}' text is longer than {MAX_QUESTION_TEXT} characters",
                    qid,
                )
        optional = (
            self.flag(fields["optional"][1], "optional", qid) if "optional" in fields else False
        )
        reverse = self.flag(fields["reverse"][1], "reverse", qid) if "reverse" in fields else False
        checked_as = qtype or checked_as
        if reverse and checked_as not in (None, "grade", "agree5"):
            self.problem(
                fields["reverse"][1], "'reverse' only applies to grade and agree5 questions", qid
            )
        digest = self.flag(fields["digest"][1], "digest", qid) if "digest" in fields else True
        if not digest and qtype == "text":
            self.problem(
                fields["digest"][1],
                "text answers never reach a digest as figures; 'digest' only applies to "
                "questions with answers to count",
                qid,
            )
        item = None
        if "item" in fields:
            item = self.raw(fields["item"][1], "'item'", qid)
            if item is not None and (not ITEM_RE.match(item) or len(item) > 64):
                self.problem(
                    fields["item"][1],
                    f"item '{item}' must be a code of letters, digits, '.', '_' and '-' "
                    "(at most 64), e.g. VM.leefbaarheid_cijfer",
                    qid,
                )
                item = None
        options = (
            self.read_options(fields, checked_as, qid, misspelt) if checked_as is not None else ()
        )
        max_length = self.read_max_length(fields, checked_as, qid)
        show_if = None
        if "show_if" in fields:
            show_if = self.condition(fields["show_if"][1], qid, before, all_ids)
        if qid is not None and qtype is not None:
            self.check_callback_size(node, qid, qtype, options)
        if len(self.problems) > count or qid is None or qtype is None:
            return None
        return Question(
            id=qid,
            type=qtype,
            text=text,
            options=options,
            optional=optional,
            show_if=show_if,
            item=item,
            reverse=reverse,
            max_length=max_length,
            digest=digest,
            line=line_of(node),
        )

    def read_max_length(self, fields: Fields, qtype: str | None, qid: str | None) -> int | None:
        if "max_length" not in fields:
            return DEFAULT_TEXT_MAX_LENGTH if qtype == "text" else None
        node = fields["max_length"][1]
        if qtype not in (None, "text"):
            self.problem(node, "'max_length' only applies to text questions", qid)
            return None
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not TEXT_MAX_LENGTH_MIN <= value <= TEXT_MAX_LENGTH_MAX
        ):
            self.problem(
                node,
                f"'max_length' must be a whole number from {TEXT_MAX_LENGTH_MIN} to "
                f"{TEXT_MAX_LENGTH_MAX}, not {kind_of(node)}",
                qid,
            )
            return None
        return value

    def read_options(
        self, fields: Fields, qtype: str, qid: str | None, misspelt: set[str]
    ) -> tuple[Option, ...]:
        if "dont_know" in fields and qtype != "yesno":
            self.problem(fields["dont_know"][1], "'dont_know' only applies to yesno questions", qid)
        if "labels" in fields and qtype not in BUILTIN_TYPES:
            self.problem(
                fields["labels"][1], "'labels' only applies to agree5 and yesno questions", qid
            )
        if qtype in BUILTIN_TYPES:
            if "options" in fields:
                self.problem(
                    fields["options"][0],
                    f"{qtype} questions have built-in options; use 'labels' to change their texts",
                    qid,
                )
            ids: tuple[str, ...] = AGREE5_IDS if qtype == "agree5" else YESNO_IDS
            keep_dont_know = (
                self.flag(fields["dont_know"][1], "dont_know", qid)
                if qtype == "yesno" and "dont_know" in fields
                else True
            )
            if not keep_dont_know:
                ids = ids[:2]
            overrides = (
                self.read_labels(fields["labels"][1], ids, qid) if "labels" in fields else {}
            )
            options = []
            for option_id in ids:
                label = self.builtin_labels(
                    f"engine.builtin.{qtype}.{option_id}", overrides.get(option_id, {})
                )
                missing = [lang for lang in self.languages if lang not in label]
                if missing:
                    node = fields["labels"][1] if "labels" in fields else fields["type"][1]
                    self.problem(
                        node,
                        f"option '{option_id}' has no built-in label in {', '.join(missing)}; "
                        f"give it under 'labels'",
                        qid,
                    )
                options.append(Option(option_id, label))
            for option in options:
                self.check_label(
                    option.id, option.label, fields.get("labels", fields["type"])[1], qid
                )
            return tuple(options)
        if qtype not in ("single", "multi"):
            if "options" in fields:
                self.problem(fields["options"][0], f"{qtype} questions have no 'options'", qid)
            return ()
        if "options" not in fields:
            if "options" not in misspelt:
                self.problem(fields["type"][1], f"a {qtype} question needs 'options'", qid)
            return ()
        node = fields["options"][1]
        if not isinstance(node, SequenceNode) or not node.value:
            what = (
                "empty"
                if isinstance(node, SequenceNode) or kind_of(node) == "empty"
                else kind_of(node)
            )
            self.problem(
                node, f"'options' must be a list of options ('- id: ...'), not {what}", qid
            )
            return ()
        options = []
        seen: dict[str, int] = {}
        for item in node.value:
            read = self.read_option(item, qtype, qid)
            if read is None:
                continue
            option = read
            if option.id in seen:
                self.problem(
                    item,
                    f"option id '{option.id}' is used twice (also on line {seen[option.id]})",
                    qid,
                )
                continue
            seen[option.id] = line_of(item)
            options.append(option)
        if qtype == "single" and len(node.value) < 2:
            self.problem(node, "a single question needs at least 2 options", qid)
        nones = [option for option in options if option.none]
        if len(nones) > 1:
            self.problem(nones[1].line, "only one option can be 'none: true'", qid)
        return tuple(options)

    def read_option(self, node: Node, qtype: str, qid: str | None) -> Option | None:
        fields = self.fields(node, "an option", OPTION_KEYS, qid)
        if not isinstance(node, MappingNode):
            return None
        if "id" not in fields:
            self.problem(node, "an option has no 'id'", qid)
            return None
        option_id = self.ident(fields["id"][1], "option id", qid)
        if option_id is not None and option_id.isdigit():
            self.problem(
                fields["id"][1],
                f"option id '{option_id}' is only digits; residents may type option numbers, "
                "so use a word",
                qid,
            )
            option_id = None
        none = self.flag(fields["none"][1], "none", qid) if "none" in fields else False
        if none and qtype != "multi":
            self.problem(
                fields["none"][1], "'none' only applies to options of multi questions", qid
            )
        if "label" in fields:
            label = self.text(fields["label"][1], f"the label of option '{option_id}'", qid)
            self.check_label(option_id, label, fields["label"][1], qid)
        elif none:
            label = self.builtin_labels("engine.builtin.none", {})
            missing = [lang for lang in self.languages if lang not in label]
            if missing:
                self.problem(
                    node,
                    f"no built-in 'none of these' label in {', '.join(missing)}; give a 'label'",
                    qid,
                )
        else:
            self.problem(node, f"option '{option_id}' has no 'label'", qid)
            return None
        if option_id is None:
            return None
        return Option(option_id, label, none=none, line=line_of(node))

    def read_labels(self, node: Node, ids: tuple[str, ...], qid: str | None) -> dict[str, Text]:
        fields = self.fields(node, "'labels'", ids, qid)
        return {
            option_id: self.text(value_node, f"the label of '{option_id}'", qid, partial=True)
            for option_id, (_key, value_node) in fields.items()
        }

    def builtin_labels(self, key: str, overrides: Text) -> Text:
        labels = {
            lang: self.catalogue.get(lang, key)
            for lang in self.languages
            if self.catalogue.has(lang, key)
        }
        labels.update(overrides)
        return labels

    def check_label(self, option_id: str | None, label: Text, node: Node, qid: str | None) -> None:
        """Button labels must fit a phone screen."""
        for lang, text in label.items():
            if len(text) > MAX_BUTTON_LABEL:
                self.problem(
                    node,
                    f"the '{lang}' label of option '{option_id}' is {len(text)} characters; "
                    f"buttons fit at most {MAX_BUTTON_LABEL} on a phone screen",
                    qid,
                )

    def check_callback_size(
        self, node: Node, qid: str, qtype: str, options: tuple[Option, ...]
    ) -> None:
        longest = max(
            [BOT_CONTROL_ID_BYTES, len(str(GRADE_MAX))]
            + [len(option.id.encode()) for option in options]
        )
        if len(qid.encode()) + longest > BUTTON_KEY_BUDGET:
            self.problem(
                node,
                f"question id and option id together must fit in {BUTTON_KEY_BUDGET} bytes for "
                f"Telegram's 64-byte button data; '{qid}' ({len(qid.encode())}) plus the longest "
                f"option id ({longest}) is {len(qid.encode()) + longest}: use shorter ids",
                qid,
            )

    # -- show_if -------------------------------------------------------------------------------

    def condition(
        self, node: Node, qid: str | None, before: list[Question], all_ids: list[str]
    ) -> Condition | None:
        fields = self.fields(node, "show_if", CONDITION_KEYS, qid)
        if not isinstance(node, MappingNode) or len(fields) != len(node.value):
            return None
        combinators = [key for key in COMBINATORS if key in fields]
        if combinators:
            if len(fields) != 1:
                self.problem(
                    node,
                    f"'{combinators[0]}' must stand alone in its condition; nest the others under it",
                    qid,
                )
                return None
            key = combinators[0]
            value_node = fields[key][1]
            if key == "not":
                inner = self.condition(value_node, qid, before, all_ids)
                return Not(inner) if inner is not None else None
            if not isinstance(value_node, SequenceNode) or not value_node.value:
                self.problem(
                    value_node, f"'{key}' needs a list of conditions ('- question: ...')", qid
                )
                return None
            parts = [self.condition(item, qid, before, all_ids) for item in value_node.value]
            if any(part is None for part in parts):
                return None
            items = tuple(part for part in parts if part is not None)
            return AllOf(items) if key == "all" else AnyOf(items)
        ops = [key for key in OPERATORS if key in fields]
        if "question" not in fields:
            self.problem(node, "a show_if condition needs 'question' (or 'all', 'any', 'not')", qid)
            return None
        if len(ops) != 1:
            self.problem(
                node,
                f"a show_if condition needs exactly one of {', '.join(OPERATORS)}"
                + (f"; found {', '.join(ops)} (combine them with 'all')" if ops else ""),
                qid,
            )
            return None
        ref_node = fields["question"][1]
        ref = self.raw(ref_node, "'question'", qid)
        if ref is None:
            return None
        earlier = {question.id: question for question in before}
        target = earlier.get(ref)
        if target is None:
            if ref != qid and ref in getattr(self, "read_ids", ()):
                # An earlier question with problems of its own (reported there): checking
                # this condition against it would only add a wrong "comes later".
                return None
            if ref == qid:
                self.problem(ref_node, "show_if refers to the question itself", qid)
            elif ref in all_ids:
                self.problem(
                    ref_node,
                    f"show_if refers to '{ref}', which comes later; a question can only depend "
                    "on questions before it",
                    qid,
                )
            else:
                self.problem(
                    ref_node,
                    f"show_if refers to '{ref}', which is not a question{suggest(ref, all_ids)}",
                    qid,
                )
            return None
        op = ops[0]
        value = self.condition_value(op, fields[op][1], target, qid)
        return None if value is None else Test(ref, op, value)

    def condition_value(self, op: str, node: Node, target: Question, qid: str | None) -> Any:
        if op == "answered":
            return self.flag(node, "answered", qid) if isinstance(node, ScalarNode) else None
        if target.type == "text":
            self.problem(
                node, f"'{target.id}' is a text question: only 'answered' works on it", qid
            )
            return None
        if op in ("at_least", "at_most"):
            if target.type != "grade":
                self.problem(
                    node,
                    f"'{op}' only works on grade questions; '{target.id}' is {target.type}",
                    qid,
                )
                return None
            return self.grade_value(node, qid)
        if op == "includes":
            if target.type != "multi":
                self.problem(
                    node,
                    f"'includes' only works on multi questions; use 'equals' or 'in' for '{target.id}'",
                    qid,
                )
                return None
        elif target.type == "multi":
            self.problem(node, f"'{target.id}' is a multi question: use 'includes' for it", qid)
            return None
        if op in ("in", "includes"):
            items = node.value if isinstance(node, SequenceNode) else [node]
            if (op == "in" and not isinstance(node, SequenceNode)) or not items:
                self.problem(node, f"'{op}' needs a list of answers, e.g. [ja, nee]", qid)
                return None
            values = [self.answer_value(item, target, qid) for item in items]
            if any(value is None for value in values):
                return None
            return tuple(values)
        return self.answer_value(node, target, qid)

    def grade_value(self, node: Node, qid: str | None) -> int | None:
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and GRADE_MIN <= value <= GRADE_MAX
        ):
            return value
        self.problem(node, f"a grade must be a whole number from {GRADE_MIN} to {GRADE_MAX}", qid)
        return None

    def answer_value(self, node: Node, target: Question, qid: str | None) -> Any:
        if target.type == "grade":
            return self.grade_value(node, qid)
        value = self.raw(node, "an answer in show_if", qid)
        if value is None:
            return None
        if value not in target.option_ids:
            hint = (
                suggest(value, target.option_ids)
                or f" (its options: {', '.join(target.option_ids)})"
            )
            self.problem(node, f"show_if: '{target.id}' has no option '{value}'{hint}", qid)
            return None
        return value


def load_survey_text(
    text: str, filename: str = "<survey>", catalogue: Catalogue | None = None
) -> Survey:
    """Parse and check a survey definition; SurveyError lists every problem."""
    reader = _Reader(filename, catalogue or default_catalogue())
    if not text.strip():
        raise SurveyError([Problem(filename, None, "the file is empty")])
    try:
        root = compose(filename, text)
    except ProblemsError as exc:
        raise SurveyError(exc.problems) from None
    if root is None:
        raise SurveyError([Problem(filename, None, "the file is empty")])
    survey = reader.survey(root)
    if reader.problems or survey is None:
        problems = sorted(reader.problems, key=lambda problem: problem.line or 0)
        raise SurveyError(problems or [Problem(filename, None, "not a survey")])
    return survey


def read_survey_file(path: str | Path) -> tuple[str, str]:
    """The display name and UTF-8 text of a survey file; SurveyError when it cannot be read."""
    try:
        return read_text(path)
    except ProblemsError as exc:
        raise SurveyError(exc.problems) from None


def load_survey(path: str | Path, catalogue: Catalogue | None = None) -> Survey:
    """Load and check a survey file; SurveyError lists every problem."""
    name, text = read_survey_file(path)
    return load_survey_text(text, name, catalogue)


def load_default_survey() -> Survey:
    """The shipped Buurtpeiling."""
    return load_survey(DEFAULT_SURVEY_PATH)
