"""Every offered language has every text of the Dutch master, with the same placeholders and tags."""

from __future__ import annotations

import re
import shutil
import string
import unicodedata
from collections import Counter
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from bot.commands.survey import command as survey_command
from locales.catalogue import LOCALES_DIR, MASTER, RTL_LANGUAGES
from surveys.loader import DEFAULT_SURVEY_PATH, load_default_survey
from surveys.schema import Survey

# Every folder of locales/ is a language on offer; these five at least.
OFFERED = tuple(
    sorted(
        (p.name for p in LOCALES_DIR.iterdir() if p.is_dir() and any(p.glob("*.yaml"))),
        key=lambda lang: (lang != MASTER, lang),
    )
)
REQUIRED = ("nl", "en", "tr", "ar", "pl")
OWN_NAMES = {"nl": "Nederlands", "en": "English", "tr": "Türkçe", "ar": "العربية", "pl": "Polski"}

FSI, LRI, RLI, PDI, RLM = "\u2068", "\u2066", "\u2067", "\u2069", "\u200f"
ISOLATE_OPENERS = frozenset({FSI, LRI, RLI})
BIDI_MARKS = frozenset({FSI, LRI, RLI, PDI, RLM, "\u200e", "\u202a", "\u202b", "\u202c"})
TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)\b[^<>]*>")
# Outside an isolate, an Arabic text may hold no Latin letters, ASCII digits or placeholders.
LTR_RE = re.compile(r"[A-Za-z0-9{}]")
# Texts not shown in Telegram, where the isolates would do harm instead of good: the terminal
# preview (terminals do no bidi layout) and chart labels (matplotlib does none either).
RTL_EXEMPT = ("engine.preview.", "digest.chart_")


# -- reading catalogues file by file -----------------------------------------------------------


def _flatten(prefix: str, data: Mapping[str, Any], out: dict[str, Any]) -> None:
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            _flatten(full, value, out)
        else:
            out[full] = value


def read_files(folder: Path, lang: str) -> dict[str, dict[str, Any]]:
    """{file name: {dotted key: value}} for one language folder (values as YAML gives them)."""
    files: dict[str, dict[str, Any]] = {}
    for path in sorted((folder / lang).glob("*.yaml")):
        flat: dict[str, Any] = {}
        _flatten("", yaml.safe_load(path.read_text(encoding="utf-8")) or {}, flat)
        files[path.name] = flat
    return files


@cache
def shipped(lang: str) -> dict[str, dict[str, Any]]:
    """read_files for the shipped catalogues (read once per test run)."""
    return read_files(LOCALES_DIR, lang)


# -- the checks, as functions that list problems (so a test can show they find them) ----------


def placeholders(text: str) -> set[str]:
    """The `{name}` fields of a format string (ValueError on broken braces)."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def tag_problems(text: str) -> tuple[list[str], list[str]]:
    """(the tag names in order of opening, problems with their nesting)."""
    opened: list[str] = []
    stack: list[str] = []
    problems: list[str] = []
    for match in TAG_RE.finditer(text):
        closing, name = match.group(1) == "/", match.group(2).lower()
        if not closing:
            opened.append(name)
            stack.append(name)
        elif not stack or stack.pop() != name:
            problems.append(f"</{name}> closes nothing open")
    problems.extend(f"<{name}> is never closed" for name in stack)
    return opened, problems


def text_problems(lang: str, key: str, text: Any, master: Any) -> list[str]:
    """What is wrong with one translated text compared with the Dutch one."""
    where = f"{lang}:{key}"
    if not isinstance(text, str) or not text.strip():
        return [f"{where}: empty or not a text"]
    problems: list[str] = []
    try:
        own = placeholders(text)
    except ValueError as exc:
        return [f"{where}: broken placeholder braces ({exc})"]
    wanted = placeholders(str(master))
    if own != wanted:
        problems.append(f"{where}: placeholders {sorted(own)} differ from nl {sorted(wanted)}")
    tags, nesting = tag_problems(text)
    problems.extend(f"{where}: {problem}" for problem in nesting)
    nl_tags, _ = tag_problems(str(master))
    if Counter(tags) != Counter(nl_tags):
        problems.append(f"{where}: tags {sorted(tags)} differ from nl {sorted(nl_tags)}")
    if lang in RTL_LANGUAGES:
        if not key.startswith(RTL_EXEMPT):
            problems.extend(f"{where}: {problem}" for problem in rtl_problems(text))
    elif BIDI_MARKS & set(text):
        problems.append(f"{where}: direction marks belong in right-to-left languages only")
    return problems


def rtl_problems(text: str) -> list[str]:
    """Problems with a right-to-left text: unisolated LTR runs, lines with a weak start."""
    plain = TAG_RE.sub("", text)
    problems: list[str] = []
    depth = 0
    outside: list[str] = []
    for char in plain:
        if char in ISOLATE_OPENERS:
            depth += 1
        elif char == PDI:
            depth -= 1
            if depth < 0:
                problems.append("a U+2069 closes no isolate")
                depth = 0
        elif depth == 0:
            outside.append(char)
    if depth:
        problems.append("an isolate (U+2068) is never closed by U+2069")
    bare = "".join(outside)
    for match in LTR_RE.finditer(bare):
        snippet = bare[max(0, match.start() - 12) : match.end() + 12]
        problems.append(f"Latin, digit or placeholder outside an isolate near {snippet!r}")
        break
    for number, line in enumerate(plain.split("\n"), 1):
        first = line[:1]
        if first and first != RLM and unicodedata.bidirectional(first) not in ("AL", "R"):
            problems.append(
                f"line {number} starts with {first!r} (U+{ord(first):04X}), not an Arabic "
                "letter: start it with U+200F"
            )
    return problems


def catalogue_problems(folder: Path, languages: tuple[str, ...] = OFFERED) -> list[str]:
    """Everything missing or wrong in the translations under `folder`."""
    master = read_files(folder, MASTER)
    problems: list[str] = []
    for lang in languages:
        if lang == MASTER:
            continue
        files = read_files(folder, lang)
        for name, nl_texts in master.items():
            own = files.get(name)
            if own is None:
                problems.append(f"{lang}: file {lang}/{name} is missing")
                continue
            for key, nl_text in nl_texts.items():
                if key not in own:
                    problems.append(f"{lang}:{key}: missing (in {lang}/{name})")
                    continue
                problems.extend(text_problems(lang, key, own[key], nl_text))
            problems.extend(f"{lang}:{key}: not in nl/{name}" for key in own if key not in nl_texts)
        problems.extend(
            f"{lang}: {name} has no Dutch master" for name in files if name not in master
        )
    return problems


def survey_texts(survey: Survey) -> Iterator[tuple[str, dict[str, str]]]:
    """(where, {lang: text}) for every text of a survey."""
    yield "title", dict(survey.title)
    yield "intro", dict(survey.intro)
    if survey.thanks is not None:
        yield "thanks", dict(survey.thanks)
    for question in survey.questions:
        yield f"{question.id}.text", dict(question.text)
        for option in question.options:
            yield f"{question.id}.{option.id}", dict(option.label)


# -- the shipped catalogues --------------------------------------------------------------------


def test_every_offered_language_has_every_text_right() -> None:
    assert catalogue_problems(LOCALES_DIR) == []


def test_every_catalogue_language_is_offered_and_complete_in_the_default_survey() -> None:
    assert set(REQUIRED) <= set(OFFERED)
    survey = load_default_survey()  # raises SurveyError when a text is missing
    assert set(survey.languages) == set(OFFERED)
    assert survey.languages[0] == MASTER
    for where, texts in survey_texts(survey):
        assert set(texts) == set(OFFERED), where
        assert all(text.strip() for text in texts.values()), where


def test_language_names_are_their_own() -> None:
    names = {lang: shipped(lang)["bot.yaml"]["language.name"] for lang in OFFERED}
    for lang, name in OWN_NAMES.items():
        assert names[lang] == name
    # A new language names itself too, not by its Dutch or English name ("Somalisch", "Somali").
    exonyms = {
        shipped(ref)["digest.yaml"].get(f"digest.languages.{lang}")
        for ref in ("nl", "en")
        for lang in OFFERED
        if lang not in (ref, "en")
    }
    assert not exonyms & {name for lang, name in names.items() if lang not in ("nl", "en")}
    assert len(set(names.values())) == len(names)


def test_right_to_left_survey_texts_follow_the_rtl_rule() -> None:
    survey = load_default_survey()
    problems = [
        f"{lang}:{where}: {problem}"
        for lang in sorted(RTL_LANGUAGES & set(OFFERED))
        for where, texts in survey_texts(survey)
        for problem in rtl_problems(texts[lang])
    ]
    assert problems == []
    for where, texts in survey_texts(survey):
        for lang in set(OFFERED) - RTL_LANGUAGES:
            assert not BIDI_MARKS & set(texts[lang]), f"{lang}: {where}"


def test_translations_are_not_dutch_copies() -> None:
    # A text identical to the Dutch one is fine only when it holds no words ("n={n}", "→ {answer}").
    master = shipped(MASTER)
    for lang in set(OFFERED) - {MASTER, "en"}:
        files = shipped(lang)
        copied = [
            key
            for name, texts in master.items()
            for key, text in texts.items()
            if files[name].get(key) == text
            and re.search(r"[^\W\d_]{3,}", re.sub(r"\{\w+\}|<[^>]+>|/\w+", "", str(text)))
        ]
        assert copied == [], lang


def test_texts_fill_in_with_their_placeholders() -> None:
    for lang in OFFERED:
        for texts in shipped(lang).values():
            for key, text in texts.items():
                params = dict.fromkeys(placeholders(str(text)), "x")
                assert str(text).format_map(params), f"{lang}:{key}"


BUTTON_KEYS = frozenset(
    [
        "button",
        "start_button",
        "continue_button",
        "done_button",
        "continue",
        "switch_yes",
        "switch_no",
        "other_neighbourhood",
        "none_of_these",
        "back",
        "skip",
        "erase",
        "keep",
    ]
)


def is_button(key: str) -> bool:
    """Whether a catalogue key is the label of an inline button."""
    return key.startswith("engine.builtin.") or (
        key.rsplit(".", 1)[-1] in BUTTON_KEYS and not key.startswith("engine.preview.")
    )


def test_button_labels_fit_on_a_phone() -> None:
    # Answer buttons may share a row (the loader allows 30 characters); these get a row each.
    longest_name = max((shipped(lang)["bot.yaml"]["language.name"] for lang in OFFERED), key=len)
    too_long = [
        f"{lang}:{key}"
        for lang in OFFERED
        for texts in shipped(lang).values()
        for key, text in texts.items()
        if is_button(key)
        and len("".join(c for c in str(text) if c not in BIDI_MARKS).format(language=longest_name))
        > 40
    ]
    assert too_long == []


# -- the checks find what they should ----------------------------------------------------------


@pytest.fixture
def tmp_locales(tmp_path: Path) -> Path:
    """A copy of the shipped catalogue files."""
    target = tmp_path / "locales"
    for lang in OFFERED:
        shutil.copytree(LOCALES_DIR / lang, target / lang, ignore=shutil.ignore_patterns("*.py*"))
    return target


def _edit(folder: Path, lang: str, name: str, key: str, value: str | None) -> None:
    path = folder / lang / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    *parents, last = key.split(".")
    node = data
    for part in parents:
        node = node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def test_a_missing_text_fails(tmp_locales: Path) -> None:
    assert catalogue_problems(tmp_locales) == []
    _edit(tmp_locales, "ar", "bot.yaml", "consent.button", None)
    assert catalogue_problems(tmp_locales) == ["ar:consent.button: missing (in ar/bot.yaml)"]


def test_a_missing_file_and_an_extra_key_fail(tmp_locales: Path) -> None:
    (tmp_locales / "pl" / "digest.yaml").unlink()
    _edit(tmp_locales, "tr", "bot.yaml", "survey.typo", "Fazladan")
    assert sorted(catalogue_problems(tmp_locales)) == [
        "pl: file pl/digest.yaml is missing",
        "tr:survey.typo: not in nl/bot.yaml",
    ]


@pytest.mark.parametrize(
    ("lang", "text", "expected"),
    [
        ("tr", "", "empty"),
        ("tr", "Soru {number} / {toplam}", "placeholders ['number', 'toplam'] differ"),
        ("pl", "Pytanie {number} z {total", "broken placeholder braces"),
        ("pl", "<b>Pytanie {number} z {total}", "<b> is never closed"),
        ("tr", "<i>Soru {number} / {total}</i>", "tags ['i'] differ from nl []"),
        ("pl", "Pytanie \u2068{number}\u2069 z {total}", "direction marks"),
        ("ar", "السؤال {number} من \u2068{total}\u2069", "outside an isolate"),
        ("ar", "السؤال \u2068{number}\u2069 من \u2068{total}", "never closed"),
        ("ar", "\u2068{number}\u2069 من \u2068{total}\u2069", "line 1 starts with"),
    ],
)
def test_a_wrong_text_is_reported(lang: str, text: str, expected: str) -> None:
    problems = text_problems(lang, "survey.progress", text, "Vraag {number} van {total}")
    assert any(expected in problem for problem in problems), problems


def test_rtl_rule_accepts_isolated_runs_and_marked_lines() -> None:
    assert (
        rtl_problems("اتصل بالرقم <b>\u2068112\u2069</b>.\n\u200f\u2068/start\u2069 — البدء") == []
    )
    assert rtl_problems("اكتب \u2068/start\u2069\n• سطر") != []  # the bullet line needs U+200F
    assert rtl_problems("اتصل بالرقم 112") != []


# -- the survey validator catches a missing translation ----------------------------------------


def test_survey_validate_fails_on_a_missing_arabic_text(tmp_path: Path) -> None:
    # Drop the Arabic text of one question: the rest of the file stays valid.
    lines = DEFAULT_SURVEY_PATH.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if "للأمان في حيّك" in line)
    assert lines[index].startswith("      ar: ")
    del lines[index]
    broken = tmp_path / "missing_ar.yaml"
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")

    runner = CliRunner()
    good = runner.invoke(survey_command, ["validate", str(DEFAULT_SURVEY_PATH)])
    assert good.exit_code == 0, good.output
    bad = runner.invoke(survey_command, ["validate", str(broken)])
    assert bad.exit_code == 1
    assert "question 'grade_safety': 'text' has no translation in ar" in bad.output


def test_survey_validate_fails_on_a_missing_arabic_option_label(tmp_path: Path) -> None:
    text = DEFAULT_SURVEY_PATH.read_text(encoding="utf-8")
    broken = tmp_path / "missing_label.yaml"
    broken.write_text(text.replace(", ar: تحسّن, ", ", "), encoding="utf-8")
    bad = CliRunner().invoke(survey_command, ["validate", str(broken)])
    assert bad.exit_code == 1
    assert "has no translation in ar" in bad.output
