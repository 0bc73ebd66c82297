"""Property tests: random inputs never crash the engine, on the default and generated surveys."""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surveys.engine import Ask, Done, Engine, Invalid
from surveys.loader import load_default_survey, load_survey_text
from surveys.schema import QUESTION_TYPES, Survey

DEFAULT = load_default_survey()
LANGS = ["nl", "en"]

# Anything a resident (or a buggy handler) could send.
values = st.one_of(
    st.text(max_size=30),
    st.integers(-3, 20),
    st.sampled_from(["1", "2", " 3 ", "10", "ja", "nee", "eens", "geen", "o1", "1,2", "", "-"]),
    st.lists(
        st.one_of(st.text(max_size=5), st.integers(0, 17), st.sampled_from(["o0", "geen"])),
        max_size=4,
    ),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("answer"), values), st.sampled_from([("back", None), ("skip", None)])
    ),
    max_size=40,
)


def check_run(survey: Survey, script: list[tuple[str, Any]]) -> None:
    engine = Engine(survey)
    state = engine.start()
    for action, value in script:
        before = copy.deepcopy(state)
        if action == "back":
            step = engine.back(state)
        elif action == "skip":
            step = engine.skip(state)
        else:
            step = engine.answer(state, value)
        assert state == before  # never mutated
        assert isinstance(step, Ask | Invalid | Done)
        # Plain JSON, and the engine reads its own JSON back.
        stored = json.loads(json.dumps(step.state))
        assert stored == step.state
        if isinstance(step, Invalid):
            assert step.state == before
            assert step.code.startswith("engine.invalid.")
            assert step.message("nl") and step.message("ar")
            json.dumps(step.params)
        elif isinstance(step, Ask):
            assert 1 <= step.number <= (step.total or step.number) <= len(survey.questions)
            assert engine.is_shown(step.question, step.state["answers"])
            again = engine.current(stored)
            assert isinstance(again, Ask) and again.question == step.question
        else:
            for question_id, answer in step.answers.items():
                question = survey.question(question_id)
                assert engine.is_shown(question, step.answers)
                assert engine.validate(question, answer) == (answer, None)
        state = step.state


@settings(max_examples=150, deadline=None)
@given(actions)
def test_random_inputs_on_the_default_survey(script: list[tuple[str, Any]]) -> None:
    check_run(DEFAULT, script)


def text(name: str) -> dict[str, str]:
    return {"nl": f"{name} nl", "en": f"{name} en"}


@st.composite
def condition(draw: st.DrawFn, earlier: list[dict[str, Any]], depth: int = 0) -> dict[str, Any]:
    if depth < 2 and draw(st.integers(0, 4)) == 0:
        key = draw(st.sampled_from(["all", "any", "not"]))
        if key == "not":
            return {"not": draw(condition(earlier, depth + 1))}
        return {key: draw(st.lists(condition(earlier, depth + 1), min_size=1, max_size=3))}
    target = draw(st.sampled_from(earlier))
    qid, qtype = target["id"], target["type"]
    if qtype == "text" or draw(st.integers(0, 5)) == 0:
        return {"question": qid, "answered": draw(st.booleans())}
    if qtype == "grade":
        op = draw(st.sampled_from(["equals", "not_equals", "at_least", "at_most", "in"]))
        grade = st.integers(1, 10)
        return {
            "question": qid,
            op: draw(st.lists(grade, min_size=1, max_size=3) if op == "in" else grade),
        }
    ids = {
        "yesno": ["ja", "nee", "weet_niet"],
        "agree5": ["helemaal_eens", "eens", "neutraal", "oneens", "helemaal_oneens"],
    }.get(qtype) or [option["id"] for option in target["options"]]
    if qtype == "multi":
        return {"question": qid, "includes": draw(st.sampled_from(ids))}
    op = draw(st.sampled_from(["equals", "not_equals", "in"]))
    option = st.sampled_from(ids)
    return {
        "question": qid,
        op: draw(st.lists(option, min_size=1, max_size=3) if op == "in" else option),
    }


@st.composite
def survey_files(draw: st.DrawFn) -> str:
    questions: list[dict[str, Any]] = []
    for number in range(draw(st.integers(1, 7))):
        qtype = draw(st.sampled_from(QUESTION_TYPES))
        question: dict[str, Any] = {
            "id": f"q{number}",
            "type": qtype,
            "text": text(f"Vraag {number}"),
        }
        if qtype in ("single", "multi"):
            count = draw(st.integers(2, 5))
            question["options"] = [{"id": f"o{i}", "label": text(f"O{i}")} for i in range(count)]
            if qtype == "multi" and draw(st.booleans()):
                question["options"].append({"id": "geen", "none": True})
        if qtype == "text":
            question["max_length"] = draw(st.integers(1, 1000))
        if qtype in ("grade", "agree5") and draw(st.booleans()):
            question["reverse"] = True
        if draw(st.booleans()):
            question["optional"] = True
        conditional = draw(st.booleans())
        if questions and conditional:
            question["show_if"] = draw(condition(questions))
        questions.append(question)
    data = {
        "id": "generated",
        "version": "1",
        "languages": LANGS,
        "title": text("Titel"),
        "intro": text("Intro"),
        "questions": questions,
    }
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(survey_files(), actions)
def test_generated_surveys_validate_round_trip_and_never_crash(
    source: str, script: list[tuple[str, Any]]
) -> None:
    survey = load_survey_text(source, "generated.yaml")  # every generated file is valid
    assert Survey.from_json(json.loads(json.dumps(survey.to_json()))) == survey
    check_run(survey, script)


@settings(max_examples=100, deadline=None)
@given(survey_files())
def test_answering_the_first_option_always_finishes(source: str) -> None:
    survey = load_survey_text(source, "generated.yaml")
    engine = Engine(survey)
    step = engine.current(engine.start())
    for _ in range(len(survey.questions) + 1):
        if isinstance(step, Done):
            break
        assert isinstance(step, Ask)
        question = step.question
        value: Any = {"grade": 5, "text": "x", "multi": ["o0"]}.get(question.type, 1)
        if question.type == "multi" and question.options[0].id != "o0":
            value = [question.options[0].id]
        step = engine.answer(step.state, value)
    assert isinstance(step, Done)
    assert len(step.answers) == len(step.state["path"])


def valid_answer(draw: st.DrawFn, question: Any) -> Any:
    """Any answer the question accepts (options, grades, ticks, text), or None for a skip."""
    if question.optional and draw(st.integers(0, 3)) == 0:
        return None
    if question.type == "grade":
        return draw(st.integers(1, 10))
    if question.type == "text":
        return draw(st.sampled_from(["x", "y", "z"]))
    ids = question.option_ids
    if question.type == "multi":
        nones = [option.id for option in question.options if option.none]
        if nones and draw(st.booleans()):
            return [nones[0]]
        plain = [oid for oid in ids if oid not in nones]
        return draw(st.lists(st.sampled_from(plain), min_size=1, max_size=len(plain), unique=True))
    return draw(st.sampled_from(ids))


def check_progress(survey: Survey, data: st.DataObject) -> None:
    """Answer, skip and go back at random; every total shown holds until the run is done."""
    engine = Engine(survey)
    step = engine.current(engine.start())
    promised: int | None = None  # the total shown since the last back
    number, backs = 1, 3
    for _ in range(len(survey.questions) + 2 * backs + 1):
        if isinstance(step, Done):
            if promised is not None:
                assert len(step.state["path"]) == promised
            return
        assert isinstance(step, Ask)
        assert step.number == number
        if all(question.show_if is None for question in survey.questions):
            assert step.total == len(survey.questions)  # nothing to wait for
        if promised is not None:
            assert step.total == promised, "a total once shown changed"
        elif step.total is not None:
            promised = step.total
        if step.total is not None:
            assert step.number <= step.total <= len(survey.questions)
        if backs and step.number > 1 and data.draw(st.integers(0, 9), label="back?") == 0:
            backs -= 1
            step = engine.back(step.state)
            assert isinstance(step, Ask)
            promised, number = None, step.number
            continue
        answer = valid_answer(data.draw, step.question)
        step = engine.skip(step.state) if answer is None else engine.answer(step.state, answer)
        assert not isinstance(step, Invalid), step
        number += 1
    raise AssertionError("the run did not finish")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(survey_files(), st.data())
def test_a_total_once_shown_never_changes_and_is_the_number_asked(
    source: str, data: st.DataObject
) -> None:
    check_progress(load_survey_text(source, "generated.yaml"), data)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_the_default_survey_keeps_its_total(data: st.DataObject) -> None:
    check_progress(DEFAULT, data)
