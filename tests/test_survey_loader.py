"""The survey file validator: one clear line per problem, naming file, line and question."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digests.questions import question_infos
from locales.catalogue import default_catalogue
from surveys.loader import (
    DEFAULT_SURVEY_PATH,
    SurveyError,
    load_default_survey,
    load_survey,
    load_survey_text,
)
from surveys.schema import Survey
from surveys.yamlfile import Problem

DATA = Path(__file__).parent / "data" / "surveys"

GOOD = """\
id: proef
version: "1"
languages: [nl, en]
title: {nl: Proef, en: Trial}
intro: {nl: Welkom, en: Welcome}
questions:
  - id: unsafe_ever
    type: yesno
    text:
      nl: Voelt u zich weleens onveilig?
      en: Do you ever feel unsafe?
  - id: unsafe_freq
    type: single
    show_if: {question: unsafe_ever, equals: ja}
    text:
      nl: Hoe vaak?
      en: How often?
    options:
      - id: vaak
        label: {nl: Vaak, en: Often}
      - id: soms
        label: {nl: Soms, en: Sometimes}
  - id: remark
    type: text
    max_length: 300
    optional: true
    text:
      nl: Nog iets?
      en: Anything else?
"""


def line_of(text: str, needle: str) -> int:
    """1-based line of the last line containing `needle`."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert found, f"{needle!r} not in text"
    return found[-1]


def problems(text: str, filename: str = "surveys/x.yaml") -> list[Problem]:
    with pytest.raises(SurveyError) as caught:
        load_survey_text(text, filename)
    return caught.value.problems


def only_problem(text: str) -> Problem:
    found = problems(text)
    assert len(found) == 1, [str(problem) for problem in found]
    return found[0]


def test_the_good_example_loads() -> None:
    survey = load_survey_text(GOOD, "x.yaml")
    assert [q.id for q in survey.questions] == ["unsafe_ever", "unsafe_freq", "remark"]
    assert survey.languages == ("nl", "en")
    assert survey.question("remark").max_length == 300


def test_show_if_typo_reads_like_the_issue_example() -> None:
    text = GOOD.replace("{question: unsafe_ever, equals: ja}", "{question: unsafe_evr, equals: ja}")
    problem = only_problem(text)
    line = line_of(text, "unsafe_evr")
    assert str(problem) == (
        f"surveys/x.yaml:{line}: question 'unsafe_freq': show_if refers to 'unsafe_evr', "
        "which is not a question (did you mean 'unsafe_ever'?)"
    )


@pytest.mark.parametrize(
    ("old", "new", "marker", "question", "expected"),
    [
        ("    options:", "    opions:", "opions", "unsafe_freq", "did you mean 'options'?"),
        ("    optional: true", "    optional: ja", "optional: ja", "remark", "true or false"),
        ("    max_length: 300", "    max_length: 0", "max_length", "remark", "from 1 to 1000"),
        ("    max_length: 300", "    max_length: 5000", "max_length", "remark", "from 1 to 1000"),
        ("    max_length: 300", "    max_length: veel", "max_length", "remark", "from 1 to 1000"),
        (
            "      - id: soms",
            "      - id: vaak",
            "- id: vaak",
            "unsafe_freq",
            "'vaak' is used twice",
        ),
        ("  - id: remark", "  - id: unsafe_ever", "- id: unsafe_ever", "unsafe_ever", "used twice"),
        ("      en: How often?\n", "", "nl: Hoe vaak?", "unsafe_freq", "no translation in en"),
        ("equals: ja}", "equals: yes}", "equals: yes", "unsafe_freq", "has no option 'yes'"),
        ("    type: text", "    type: txt", "type: txt", "remark", "did you mean 'text'?"),
        ("  - id: remark", "  - id: Nog Iets", "Nog Iets", None, "lowercase letters"),
        (
            "label: {nl: Soms, en: Sometimes}",
            "label: {nl: Soms, en: Sometimes but only on long dark winter evenings}",
            "Sometimes but",
            "unsafe_freq",
            "'en' label of option 'soms' is 47 characters",
        ),
        (
            "      nl: Nog iets?",
            "      nl: Nog iets?\n      de: Sonst noch?",
            "de: Sonst",
            "remark",
            "not offered in 'de'",
        ),
        ("equals: ja}", "includes: ja}", "includes: ja", "unsafe_freq", "only works on multi"),
    ],
)
def test_each_kind_of_error_is_one_line_with_file_line_and_question(
    old: str, new: str, marker: str, question: str | None, expected: str
) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    problem = only_problem(text)
    assert problem.file == "surveys/x.yaml"
    assert problem.line == line_of(text, marker), str(problem)
    assert problem.question == question
    assert expected in problem.message
    assert "\n" not in str(problem)
    assert str(problem).startswith(f"surveys/x.yaml:{problem.line}: ")


def test_a_comma_in_an_unquoted_label_is_explained() -> None:
    text = GOOD.replace("label: {nl: Vaak, en: Often}", "label: {nl: Vaak, maar kort, en: Often}")
    problem = only_problem(text)
    assert "double quotes" in problem.message and "'maar kort'" in problem.message


def test_show_if_on_a_later_question() -> None:
    text = GOOD.replace("{question: unsafe_ever, equals: ja}", "{question: remark, answered: true}")
    problem = only_problem(text)
    assert "comes later" in problem.message
    assert problem.question == "unsafe_freq"


def test_show_if_on_itself_and_two_tests_in_one_condition() -> None:
    text = GOOD.replace(
        "{question: unsafe_ever, equals: ja}", "{question: unsafe_freq, equals: vaak}"
    )
    assert "itself" in only_problem(text).message
    text = GOOD.replace("equals: ja}", "equals: ja, in: [ja]}")
    assert "exactly one of" in only_problem(text).message


def test_unknown_and_doubled_language_codes() -> None:
    text = GOOD.replace("languages: [nl, en]", "languages: [nl, en, xx]")
    problem = only_problem(text)
    assert (problem.line, problem.question) == (3, None)
    assert "unknown language code 'xx'" in problem.message
    assert "listed twice" in only_problem(GOOD.replace("[nl, en]", "[nl, en, nl]")).message


def test_option_ids_too_long_for_callback_data() -> None:
    long_id = "v" * 40
    text = GOOD.replace("      - id: vaak", f"      - id: {long_id}")
    problem = only_problem(text)
    assert "64-byte" in problem.message and problem.question == "unsafe_freq"
    # The limit really is what Telegram allows: the longest accepted id fits the button format
    # with the largest round id, and one byte more is refused.
    from journey import wire
    from surveys.schema import BUTTON_KEY_BUDGET

    fits = "v" * (BUTTON_KEY_BUDGET - len("unsafe_freq"))
    survey = load_survey_text(GOOD.replace("      - id: vaak", f"      - id: {fits}"), "x.yaml")
    option = survey.question("unsafe_freq").options[0].id
    data = wire.encode(wire.QUESTION, wire.MAX_INT, "unsafe_freq", option)
    assert len(data.encode()) <= 64
    assert (
        "64-byte" in only_problem(GOOD.replace("      - id: vaak", f"      - id: {fits}v")).message
    )


def test_empty_option_list_and_digits_only_ids() -> None:
    text = GOOD.replace(
        """    options:
      - id: vaak
        label: {nl: Vaak, en: Often}
      - id: soms
        label: {nl: Soms, en: Sometimes}
""",
        "    options: []\n",
    )
    assert "not empty" in only_problem(text).message
    assert "only digits" in only_problem(GOOD.replace("- id: soms", "- id: '2'")).message


def test_all_problems_are_collected_not_just_the_first() -> None:
    found = problems((DATA / "broken.yaml").read_text(), "broken.yaml")
    messages = " | ".join(str(problem) for problem in found)
    assert len(found) >= 3, messages
    assert "no translation in en" in messages
    assert "did you mean 'options'?" in messages
    assert "did you mean 'unsafe_ever'?" in messages
    assert [p.line or 0 for p in found] == sorted(p.line or 0 for p in found)


def test_yaml_syntax_error_names_the_line() -> None:
    text = GOOD.replace("      nl: Hoe vaak?", "      nl: [Hoe vaak?")
    problem = only_problem(text)
    assert problem.message.startswith("YAML syntax error")
    assert problem.line is not None and abs(problem.line - line_of(text, "[Hoe vaak")) <= 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("   \n# only a comment\n", "empty"),
        ("- a\n- b\n", "not a list"),
        ("just words", "not 'just words'"),
        ("id: x\n", "has no 'version'"),
        ("a: \x00b", "binary"),
        ("{[", "YAML syntax error"),
        ("x: !!python/object:os.system ls", "unknown key 'x'"),
        ("&a [*a, *a]", "not a list"),
    ],
)
def test_garbage_gives_problems_not_tracebacks(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in str(problem) for problem in found), [str(p) for p in found]


def test_unreadable_files(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"id: x\ntitle: caf\xe9\n")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    cases = {
        tmp_path / "missing.yaml": "file not found",
        tmp_path: "folder",
        latin1: "not UTF-8",
        binary: "binary",
    }
    for path, expected in cases.items():
        with pytest.raises(SurveyError) as caught:
            load_survey(path)
        assert expected in str(caught.value)
    with pytest.raises(SurveyError) as caught:
        load_survey(latin1)
    assert caught.value.problems[0].line == 2


def test_no_and_yes_stay_text_in_labels_and_ids() -> None:
    text = GOOD.replace("label: {nl: Vaak, en: Often}", "label: {nl: Nee, en: No}")
    survey = load_survey_text(text, "x.yaml")
    assert survey.question("unsafe_freq").options[0].label == {"nl": "Nee", "en": "No"}


def test_one_language_survey_may_use_plain_texts() -> None:
    text = """\
id: kort
version: 1.0
languages: [nl]
title: Kort
intro: Even kort.
questions:
  - id: cijfer
    type: grade
    text: Welk cijfer?
"""
    survey = load_survey_text(text, "kort.yaml")
    assert survey.version == "1.0"  # as written, not the float 1.0
    assert survey.question("cijfer").text == {"nl": "Welk cijfer?"}


def test_json_round_trip_and_content_hash() -> None:
    survey = load_default_survey()
    data = json.loads(json.dumps(survey.to_json()))
    again = Survey.from_json(data)
    assert again == survey
    assert again.to_json() == survey.to_json()
    assert again.content_hash == survey.content_hash
    assert len(survey.content_hash) == 64
    # Layout and comments do not change the hash; content does.
    source = DEFAULT_SURVEY_PATH.read_text(encoding="utf-8")
    relaid = load_survey_text("# a comment\n" + source.replace("\n\n", "\n"), "copy.yaml")
    assert relaid.content_hash == survey.content_hash
    changed = load_survey_text(source.replace("Vaak", "Heel vaak", 1), "copy.yaml")
    assert changed.content_hash != survey.content_hash
    with pytest.raises(ValueError):
        Survey.from_json({"format": 1, "id": "x"})


def test_digest_false_keeps_a_question_out_of_digests() -> None:
    text = GOOD.replace("    type: single\n", "    type: single\n    digest: false\n")
    survey = load_survey_text(text, "x.yaml")
    assert not survey.question("unsafe_freq").digest and survey.question("unsafe_ever").digest
    data = json.loads(json.dumps(survey.to_json()))
    assert data["questions"][1]["digest"] is False and "digest" not in data["questions"][0]
    assert Survey.from_json(data) == survey
    # The digest's view of the stored definition leaves it out; the export keeps every question.
    infos = question_infos(Survey.from_json(data), default_catalogue())
    assert [info.id for info in infos] == ["unsafe_ever", "remark"]
    refused = only_problem(
        GOOD.replace("    max_length: 300\n", "    max_length: 300\n    digest: false\n")
    )
    assert refused.question == "remark" and "'digest' only applies" in refused.message
    wrong = only_problem(GOOD.replace("    type: single\n", "    type: single\n    digest: nee\n"))
    assert "'digest' must be true or false" in wrong.message


def test_default_survey_follows_the_vm_and_speaks_plainly() -> None:
    survey = load_default_survey()
    assert survey.languages == ("nl", "en", "tr", "ar", "pl")
    assert survey.title["nl"] == "Buurtpeiling leefbaarheid en veiligheid"
    q = {question.id: question for question in survey.questions}
    # VM wording where the item carries a VM code (a hard word explained after it).
    assert (
        q["grade_liveability"]
        .text["nl"]
        .startswith(
            "Welk cijfer van 1 tot en met 10 geeft u voor de leefbaarheid in uw buurt? Leefbaarheid is:"
        )
    )
    assert q["trend"].text["nl"] == "Is uw buurt het afgelopen jaar vooruit of achteruit gegaan?"
    assert q["unsafe_ever"].text["nl"] == "Voelt u zich weleens onveilig in uw eigen buurt?"
    assert q["unsafe_freq"].text["nl"] == "Voelt u zich vaak, soms of zelden onveilig in uw buurt?"
    assert q["unsafe_freq"].show_if is not None
    # A frequency question offers frequencies.
    assert q["unsafe_night"].text["nl"].startswith("Hoe vaak voelt u zich onveilig")
    assert q["cohesion_know"].reverse and q["cohesion_know"].type == "agree5"
    # Every nuisance problem rated on the VM's frequency scale; six asked of everyone.
    nuisance = [question for question in survey.questions if question.id.startswith("nuisance_")]
    assert len(nuisance) == 14
    assert all(question.option_ids == ["vaak", "soms", "nooit"] for question in nuisance)
    assert [question.show_if is None for question in nuisance] == [True] * 6 + [False] * 8
    # Neutral stems: both directions named.
    for question in survey.questions:
        if question.type == "agree5":
            assert "eens of oneens" in question.text["nl"], question.id
        if question.option_ids[:1] == ["zeer_tevreden"]:
            assert "tevreden of ontevreden" in question.text["nl"], question.id
    # No stigmatising label, no word above B1 left unexplained.
    dutch = " ".join(text["nl"] for text in _texts(survey))
    for word in ("rondhangende", "jongeren die", "straatmeubilair", "Bekladding van muren"):
        assert word not in dutch, word
    # One form of address per language.
    assert not re.search(r"\bPan(a|u)?/Pani\b|\bPan\b|\bPani\b", _all(survey, "pl"))
    assert "geçen yıl" not in _all(survey, "tr") and "تحالف" not in _all(survey, "ar")
    assert "confused people" not in _all(survey, "en")
    # The profile and the choice of modules never reach a digest.
    assert {question.id for question in survey.questions if not question.digest} == {
        "more_topics",
        "age_band",
        "tenure",
        "children",
    }
    in_digest = {info.id for info in question_infos(survey, default_catalogue())}
    assert in_digest == {question.id for question in survey.questions} - {
        "more_topics",
        "age_band",
        "tenure",
        "children",
    }
    # Every question a digest shows has a short label in every language.
    catalogue = default_catalogue()
    for qid in in_digest:
        for lang in survey.languages:
            assert catalogue.has(lang, f"alliance.labels.{qid}"), (lang, qid)
    assert q["improve"].optional and q["improve"].max_length == 500
    assert all(
        question.item
        for question in survey.questions
        if question.id not in ("improve", "more_topics")
    )


def _texts(survey: Survey) -> list[dict[str, str]]:
    texts = [dict(survey.intro), dict(survey.thanks or {})]
    for question in survey.questions:
        texts.append(dict(question.text))
        texts.extend(dict(option.label) for option in question.options)
    return texts


def _all(survey: Survey, lang: str) -> str:
    return " ".join(text.get(lang, "") for text in _texts(survey))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_loads_or_gives_problems(text: str) -> None:
    try:
        load_survey_text(text, "random.yaml")
    except SurveyError as exc:
        assert exc.problems
        assert all(isinstance(str(problem), str) for problem in exc.problems)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_good_file_loads_or_gives_problems(data: st.DataObject) -> None:
    lines = GOOD.splitlines()
    index = data.draw(st.integers(0, len(lines) - 1))
    lines[index] = data.draw(st.sampled_from(["", "  - ", "x: [", "    show_if: {all: []}", "  ?"]))
    try:
        load_survey_text("\n".join(lines), "mutated.yaml")
    except SurveyError as exc:
        assert exc.problems


def test_the_example_in_the_docs_is_valid() -> None:
    docs = (Path(__file__).parent.parent / "docs" / "surveys.md").read_text(encoding="utf-8")
    example = docs.split("```yaml\n", 1)[1].split("```", 1)[0]
    survey = load_survey_text(example, "docs/surveys.md")
    assert [q.id for q in survey.questions] == [
        "grade_safety",
        "unsafe_ever",
        "unsafe_freq",
        "improve",
    ]
