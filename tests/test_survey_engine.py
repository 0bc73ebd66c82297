"""The survey engine: every question type, skip logic, progress, back, skip, invalid input, done."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from locales.catalogue import default_catalogue
from surveys.engine import Ask, Done, Engine, Invalid, StateError, Step, answer_label
from surveys.loader import load_default_survey, load_survey
from surveys.schema import Survey

DATA = Path(__file__).parent / "data" / "surveys"


@pytest.fixture(scope="module")
def survey() -> Survey:
    return load_survey(DATA / "all_types.yaml")


@pytest.fixture(scope="module")
def engine(survey: Survey) -> Engine:
    return Engine(survey)


def ask(step: Step) -> Ask:
    assert isinstance(step, Ask), step
    return step


def invalid(step: Step) -> Invalid:
    assert isinstance(step, Invalid), step
    return step


def run(engine: Engine, *inputs: Any) -> Step:
    """Answer from the start; 'BACK' and 'SKIP' are the buttons."""
    step: Step = engine.current(engine.start())
    for value in inputs:
        state = step.state
        if value == "BACK":
            step = engine.back(state)
        elif value == "SKIP":
            step = engine.skip(state)
        else:
            step = engine.answer(state, value)
        if isinstance(step, Invalid):
            raise AssertionError(f"{value!r} was refused: {step.code}")
    return step


def test_start_shows_no_total_while_it_depends_on_answers_to_come(engine: Engine) -> None:
    step = ask(engine.current(engine.start()))
    assert step.question.id == "grade"
    # freq, noise_follow and why_low may or may not be asked: no total yet.
    assert (step.number, step.total) == (1, None)
    assert engine.progress(step.state) == (1, None)


@pytest.mark.parametrize(
    ("value", "stored"), [("7", 7), (" 7 ", 7), (7, 7), ("10", 10), (1, 1), ("٧", 7)]
)
def test_grade_accepts_numbers_and_number_text(engine: Engine, value: Any, stored: int) -> None:
    step = ask(run(engine, value))
    assert step.state["answers"]["grade"] == stored
    assert step.question.id == "ever"


@pytest.mark.parametrize(
    "value", ["0", "11", "zeven", "7.5", "", True, 7.5, None, [], {}, -1, "²", "007"]
)
def test_grade_refuses_everything_else_and_keeps_the_state(engine: Engine, value: Any) -> None:
    state = engine.start()
    before = copy.deepcopy(state)
    step = invalid(engine.answer(state, value))
    assert step.code == "engine.invalid.grade"
    assert step.state == before
    assert state == before  # the input is never mutated
    assert step.message("nl") == "Kies een cijfer van 1 tot en met 10."


def test_the_total_appears_once_every_condition_is_settled(engine: Engine) -> None:
    # After ever: freq and why_low are settled, noise_follow still waits for issues.
    assert ask(run(engine, "8", "nee")).total is None
    # After issues every condition is settled: grade, ever, opinion, issues, remark.
    step = ask(run(engine, "8", "nee", "eens", ["rommel"]))
    assert (step.question.id, step.number, step.total) == ("remark", 5, 5)
    # A low grade, ja and noise: freq, noise_follow and why_low are all asked.
    step = ask(run(engine, "4", "ja", "vaak", "eens", ["lawaai"]))
    assert (step.question.id, step.number, step.total) == ("noise_follow", 6, 8)
    step = ask(engine.answer(step.state, "nee"))
    assert (step.question.id, step.number, step.total) == ("why_low", 7, 8)


@pytest.mark.parametrize("value", ["ja", "1", 1, "Ja", " yes ", "JA."])
def test_yesno_by_id_number_or_label_in_any_language(engine: Engine, value: Any) -> None:
    step = ask(run(engine, 8, value))
    assert step.state["answers"]["ever"] == "ja"
    assert step.question.id == "freq"  # skip logic: shown because ever == ja
    assert (step.number, step.total) == (3, None)


def test_skip_logic_hides_the_follow_up_on_nee(engine: Engine) -> None:
    step = ask(run(engine, 8, "nee"))
    assert step.question.id == "opinion"
    assert (step.number, step.total) == (3, None)


def test_choice_refuses_unknown_options_with_the_count(engine: Engine) -> None:
    state = ask(run(engine, 8)).state
    for value in ["4", "0", "misschien", 9, False, ["ja"]]:
        step = invalid(engine.answer(state, value))
        assert (step.code, step.params) == ("engine.invalid.choice", {"count": 3})
        assert step.state == state


def test_back_removes_the_answer_and_reasks(engine: Engine) -> None:
    at_freq = ask(run(engine, 8, "ja"))
    back = ask(engine.back(at_freq.state))
    assert back.question.id == "ever"
    assert "ever" not in back.state["answers"]
    assert (back.number, back.total) == (2, None)
    # Answering differently now takes the other branch.
    assert ask(engine.answer(back.state, "nee")).question.id == "opinion"


def test_back_on_the_first_question_is_refused(engine: Engine) -> None:
    state = engine.start()
    step = invalid(engine.back(state))
    assert step.code == "engine.invalid.no_back"
    assert step.state == state


def test_back_after_a_skip_returns_to_the_skipped_question(engine: Engine) -> None:
    step = ask(run(engine, 4, "ja", "vaak", "eens", ["rommel"], "SKIP"))
    assert step.question.id == "remark"
    back = ask(engine.back(step.state))
    assert back.question.id == "why_low"


def test_back_passes_over_hidden_questions(engine: Engine) -> None:
    step = ask(run(engine, 8, "nee", "eens", ["rommel"]))
    assert step.question.id == "remark"
    # noise_follow and why_low were never shown, so back goes to issues.
    assert ask(engine.back(step.state)).question.id == "issues"


def test_agree5_labels_override_and_reverse_score(survey: Survey, engine: Engine) -> None:
    step = ask(run(engine, 8, "nee", "3"))
    assert step.state["answers"]["opinion"] == "neutraal"
    opinion = survey.question("opinion")
    assert opinion.option("neutraal") is not None
    assert answer_label(opinion, "neutraal", "en") == "Neutral"  # overridden
    assert answer_label(opinion, "neutraal", "nl") == "Niet eens, niet oneens"  # built in
    assert opinion.score("helemaal_eens") == 1  # reverse-scored
    assert opinion.score("helemaal_oneens") == 5


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (["lawaai", "rommel"], ["rommel", "lawaai"]),
        ("1,2", ["rommel", "lawaai"]),
        ("2 1 2", ["rommel", "lawaai"]),
        ("Noise", ["lawaai"]),
        (["geen"], ["geen"]),
        ("3", ["geen"]),
    ],
)
def test_multi_takes_lists_numbers_and_labels(
    engine: Engine, value: Any, stored: list[str]
) -> None:
    step = run(engine, 8, "nee", "eens", value)
    assert step.state["answers"]["issues"] == stored


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (["rommel", "geen"], "engine.invalid.multi_none"),
        ("1,3", "engine.invalid.multi_none"),
        ([], "engine.invalid.multi_empty"),
        ("", "engine.invalid.multi_empty"),
        (["vuurwerk"], "engine.invalid.multi"),
        ("1,9", "engine.invalid.multi"),
        (5, "engine.invalid.multi"),
        ({"a": 1}, "engine.invalid.multi"),
    ],
)
def test_multi_refuses_bad_ticks(engine: Engine, value: Any, code: str) -> None:
    state = ask(run(engine, 8, "nee", "eens")).state
    step = invalid(engine.answer(state, value))
    assert step.code == code
    assert step.state == state


def test_includes_condition_shows_the_follow_up_with_two_options(engine: Engine) -> None:
    step = ask(run(engine, 8, "nee", "eens", ["lawaai"]))
    assert step.question.id == "noise_follow"
    assert step.question.option_ids == ["ja", "nee"]  # dont_know: false
    assert invalid(engine.answer(step.state, "3")).params == {"count": 2}


def test_combined_condition_all_and_not(engine: Engine) -> None:
    # grade 4 and ever not 'nee': why_low is shown.
    step = ask(run(engine, 4, "weet_niet", "eens", ["rommel"]))
    assert step.question.id == "why_low"
    # grade 4 and ever 'nee': hidden.
    assert ask(run(engine, 4, "nee", "eens", ["rommel"])).question.id == "remark"


def test_text_max_length_and_optional_skip(engine: Engine) -> None:
    at_why = ask(run(engine, 4, "ja", "vaak", "eens", ["rommel"]))
    too_long = invalid(engine.answer(at_why.state, "x" * 21))
    assert too_long.code == "engine.invalid.text_too_long"
    assert too_long.params == {"max": 20, "length": 21}
    assert "21" in too_long.message("nl") and "20" in too_long.message("nl")
    assert ask(engine.answer(at_why.state, "  te veel rommel  ")).state["answers"]["why_low"] == (
        "te veel rommel"
    )
    # An empty text on an optional question is a skip.
    skipped = ask(engine.answer(at_why.state, "   "))
    assert skipped.question.id == "remark"
    assert "why_low" not in skipped.state["answers"]
    assert "why_low" in skipped.state["path"]
    assert invalid(engine.answer(at_why.state, 42)).code == "engine.invalid.text"


def test_skip_only_for_optional_questions(engine: Engine) -> None:
    state = engine.start()
    step = invalid(engine.skip(state))
    assert step.code == "engine.invalid.not_optional"
    assert step.state == state
    at_remark = ask(run(engine, 8, "nee", "eens", ["rommel"]))
    assert at_remark.question.id == "remark"
    assert isinstance(engine.skip(at_remark.state), Done)


def test_done_gives_answers_in_survey_order_and_stays_done(engine: Engine) -> None:
    done = run(engine, 4, "ja", "soms", "oneens", ["lawaai"], "nee", "SKIP", "Goed zo")
    assert isinstance(done, Done)
    assert list(done.answers) == [
        "grade",
        "ever",
        "freq",
        "opinion",
        "issues",
        "noise_follow",
        "remark",
    ]
    assert done.answers["remark"] == "Goed zo"
    assert done.state["done"] is True
    again = engine.answer(done.state, "7")
    assert isinstance(again, Done) and again.answers == done.answers
    assert isinstance(engine.back(done.state), Done)
    assert isinstance(engine.current(done.state), Done)


def test_back_then_changed_branch_drops_hidden_answers(engine: Engine) -> None:
    # Answer ja + freq, go back twice to ever, answer nee: freq must not survive.
    step = run(engine, 8, "ja", "vaak", "BACK", "BACK", "nee", "eens", ["rommel"], "SKIP")
    assert isinstance(step, Done)
    assert "freq" not in step.answers
    assert step.answers["ever"] == "nee"


def test_state_is_json_and_survives_a_round_trip(engine: Engine) -> None:
    step = ask(run(engine, 4, "ja", "soms", "eens", ["rommel", "lawaai"]))
    stored = json.loads(json.dumps(step.state))
    again = ask(engine.current(stored))
    assert again.question.id == step.question.id
    assert (again.number, again.total) == (step.number, step.total)
    assert again.state == step.state


def test_foreign_or_broken_state_is_a_state_error(engine: Engine) -> None:
    other = Engine(load_default_survey()).start()
    with pytest.raises(StateError):
        engine.current(other)
    for broken in [{}, {"survey": "testpeiling", "version": "1"}, "nonsense"]:
        with pytest.raises(StateError):
            engine.answer(broken, "7")  # type: ignore[arg-type]


def test_answer_labels_per_type_and_language(survey: Survey) -> None:
    assert answer_label(survey.question("grade"), 7, "en") == "7"
    assert answer_label(survey.question("ever"), "weet_niet", "en") == "Don't know"
    assert answer_label(survey.question("ever"), "weet_niet", "nl") == "Weet niet"
    issues = survey.question("issues")
    assert answer_label(issues, ["rommel", "lawaai"], "en") == "Litter, Noise"
    assert answer_label(issues, ["geen"], "nl") == "Geen van deze"
    assert answer_label(survey.question("remark"), "Goed", "en") == "Goed"
    assert answer_label(survey.question("ever"), None, "nl") == ""
    # A language the survey lacks falls back to its default language.
    assert answer_label(survey.question("ever"), "ja", "tr") == "Ja"


def test_every_engine_message_exists_in_every_language() -> None:
    catalogue = default_catalogue()
    keys = [key for key in catalogue.texts["nl"] if key.startswith("engine.")]
    assert "engine.invalid.grade" in keys
    for lang in ("nl", "en", "tr", "ar", "pl"):
        assert [key for key in catalogue.missing(lang) if key.startswith("engine.")] == []
        for key in keys:
            # Every placeholder is one the engine fills in.
            catalogue.get(lang, key, count=3, length=5, max=4, min=1, number=2, total=9, label="x")


def test_default_survey_runs_to_done() -> None:
    survey = load_default_survey()
    engine = Engine(survey)
    core = [7, 6, "gelijk", "ja", "soms", "zelden_nooit", 1, 2, 3, 4]
    nuisance = ["1", "2", "3", "vaak", "soms", "nooit"]
    step = run(engine, *core, *nuisance, 2, 3, "schoon", "", "5")  # improve skipped, no modules
    assert isinstance(step, Done)
    assert step.answers["nuisance_litter"] == "vaak" and step.answers["nuisance_noise"] == "nooit"
    assert step.answers["more_topics"] == ["geen"]
    assert "improve" not in step.answers
    assert len(step.state["path"]) == 21  # the default path: about three minutes


def test_engine_imports_no_telegram_sqlalchemy_storage_handlers_or_bot() -> None:
    code = (
        "import sys, surveys.engine, surveys.loader, surveys.preview;"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('telegram', 'sqlalchemy', 'storage', 'handlers', 'bot')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
