"""`buurtstem survey validate` and `buurtstem survey preview`, run as the real command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.commands.survey import command
from surveys.engine import Engine
from surveys.loader import load_default_survey

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data" / "surveys"
BUURTSTEM = str(Path(sys.executable).parent / "buurtstem")
# One full run of the default survey: ever = ja, so the follow-up is asked; improve skipped;
# of the optional modules only the profile (3 questions, the last one skipped).
FULL_RUN = "7\n8\n1\nja\n2\n3\n1\n2\n3\n4\n1\n2\n3\n1\n2\n3\n1\n6\n3\n\n4\n2\n3\n-\n"


def buurtstem(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [BUURTSTEM, *args], input=stdin, capture_output=True, text=True, cwd=ROOT, env=env
    )


def preview(*args: str, stdin: str = "") -> tuple[int, str, str]:
    """Run `survey preview` in-process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(command, ["preview", *args], input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.slow
def test_validate_the_default_survey_passes() -> None:
    result = buurtstem("survey", "validate", "surveys/buurtpeiling.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        result.stdout.strip() == "OK: surveys/buurtpeiling.yaml (41 questions, nl, en, tr, ar, pl)"
    )


@pytest.mark.slow
def test_validate_bad_good_missing_and_garbage_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.yaml"
    garbage.write_bytes(b"\xff\xfe\x00\x01 not yaml at all")
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    result = buurtstem(
        "survey",
        "validate",
        str(DATA / "broken.yaml"),
        "surveys/buurtpeiling.yaml",
        str(tmp_path / "missing.yaml"),
        str(tmp_path),
        str(garbage),
        str(listing),
        str(empty),
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "OK: surveys/buurtpeiling.yaml (41 questions, nl, en, tr, ar, pl)" in lines
    assert any("broken.yaml:13: question 'unsafe_freq': show_if refers" in line for line in lines)
    assert f"{tmp_path / 'missing.yaml'}: file not found" in lines
    for name in ("garbage.yaml", "list.yaml", "empty.yaml"):
        assert any(line.startswith(str(tmp_path / name)) for line in lines), name


def test_validate_exit_codes_in_process() -> None:
    runner = CliRunner()
    good = runner.invoke(command, ["validate", str(DATA / "all_types.yaml")])
    assert good.exit_code == 0 and good.output.startswith("OK: ")
    bad = runner.invoke(command, ["validate", str(DATA / "broken.yaml")])
    assert bad.exit_code == 1 and "did you mean 'options'?" in bad.output
    assert runner.invoke(command, ["validate"]).exit_code == 2  # usage: no file given


@pytest.mark.slow
def test_preview_runs_to_the_summary() -> None:
    result = buurtstem("survey", "preview", "surveys/buurtpeiling.yaml", stdin=FULL_RUN)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Het duurt ongeveer 3 minuten." in out  # the survey's own intro
    assert "\nVraag 1\n" in out  # no total while later questions depend on answers to come
    assert "Vraag 22 van 24" in out and "Vraag 24 van 24" in out  # then a total that holds
    assert " van 2" not in out.split("Vraag 22 van 24")[0]
    assert "Samenvatting" in out
    assert "- Is uw buurt het afgelopen jaar vooruit of achteruit gegaan?: Vooruitgegaan" in out
    assert "onveilig in uw buurt?: Soms" in out
    assert "- Rommel op straat. Hoe vaak komt dat voor in uw buurt?: Vaak" in out
    assert "’.: Iets over uzelf" in out
    assert "(overgeslagen)" in out
    assert "Lege regel of - = overslaan." in out
    assert out.rstrip().endswith("Anoniem een misdaad melden: Meld Misdaad Anoniem 0800-7000.")
    assert "Hartelijk dank voor uw antwoorden!" in out


def test_preview_shows_the_bots_message_on_bad_input_and_goes_back() -> None:
    code, out, _ = preview(stdin="11\n7\n<\n6\n8\n" + FULL_RUN[4:])
    assert code == 0, out
    engine = Engine(load_default_survey())
    message = engine.answer(engine.start(), "11")
    assert f"! {message.message('nl')}" in out  # type: ignore[union-attr]
    assert "10 is heel goed.: 6" in out


def test_preview_in_english_and_unknown_language() -> None:
    code, out, _ = preview("--lang", "en", stdin=FULL_RUN)
    assert code == 0
    assert "\nQuestion 1\n" in out and "Question 24 of 24" in out and "Summary" in out
    code, _, err = preview("--lang", "de")
    assert code == 1
    assert "unknown language 'de'" in err
    assert "nl, en, tr, ar, pl" in err


def test_preview_eof_and_bad_file_exit_1() -> None:
    code, out, _ = preview(stdin="7\n8\n")
    assert code == 1
    assert "De invoer hield op voor het einde van de vragenlijst (bij vraag 3)." in out
    code, _, err = preview(str(DATA / "broken.yaml"))
    assert code == 1
    assert "did you mean 'unsafe_ever'?" in err
    code, _, err = preview("no/such/file.yaml")
    assert (code, err.strip()) == (1, "no/such/file.yaml: file not found")


def test_preview_skips_only_optional_questions_and_back_words() -> None:
    # An empty line on a required question is the bot's refusal, not a skip.
    code, out, _ = preview(stdin="\n7\nterug\n5\n8\n" + FULL_RUN[4:])
    assert code == 0
    assert "! Kies een cijfer van 1 tot en met 10." in out
    assert "10 is heel goed.: 5" in out


def test_preview_in_arabic() -> None:
    code, out, _ = preview("--lang", "ar", stdin=FULL_RUN)
    assert code == 0, out
    assert "\nالسؤال 1\n" in out and "السؤال 24 من 24" in out and "الملخص" in out


SURVEY_HEAD = 'id: t\nversion: "1"\ntitle: T\nintro: Hallo\nlanguages: [nl]\nquestions:\n'


def validate(tmp_path: Path, questions: str) -> list[str]:
    """`survey validate` on a one-language survey with these questions: its output lines."""
    path = tmp_path / "s.yaml"
    path.write_text(SURVEY_HEAD + questions, encoding="utf-8")
    result = CliRunner().invoke(command, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    return [line.replace(str(path), "s.yaml") for line in result.output.splitlines()]


def test_a_misspelt_type_does_not_hide_the_other_problems_of_its_question(
    tmp_path: Path,
) -> None:
    lines = validate(
        tmp_path,
        "  - id: a\n"
        "    type: singel\n"
        "    text: Vraag a\n"
        "    options:\n"
        "      - {id: x, label: X}\n"
        "      - {id: y}\n"
        "  - id: b\n"
        "    type: single\n"
        "    text: Vraag b\n"
        "    show_if: {question: a, equals: x}\n"
        "    options: [{id: p, label: P}, {id: q, label: Q}]\n",
    )
    # Both problems of question a, and no wrong "comes later" for b's condition on it.
    assert lines == [
        "s.yaml:8: question 'a': unknown question type 'singel' (did you mean 'single'?)",
        "s.yaml:12: question 'a': option 'y' has no 'label'",
    ]


def test_an_unknown_type_with_options_checks_them_too(tmp_path: Path) -> None:
    lines = validate(
        tmp_path, "  - id: a\n    type: keuze\n    text: A\n    options:\n      - {id: '1'}\n"
    )
    assert lines[0].startswith("s.yaml:8: question 'a': unknown question type 'keuze'")
    assert any("only digits" in line for line in lines[1:])


def test_tabs_say_use_spaces_for_every_line(tmp_path: Path) -> None:
    lines = validate(
        tmp_path, "  - id: a\n\ttype: grade\n    text: A\n  - id: b\n\t  type: grade\n"
    )
    assert lines == [
        "s.yaml:8: use spaces, not tabs (YAML does not allow tabs for indentation)",
        "s.yaml:11: use spaces, not tabs (YAML does not allow tabs for indentation)",
    ]
    assert not any("quotes" in line for line in lines)


def test_a_tab_after_a_key_says_use_spaces(tmp_path: Path) -> None:
    lines = validate(tmp_path, "  - id: a\n    type:\tgrade\n    text: A\n")
    assert len(lines) == 1 and "use spaces, not tabs" in lines[0], lines
