"""One reader for the files people write: the same file checks, YAML rules and words, one Problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from surveys.areas import check_areas_file
from surveys.loader import SurveyError, load_survey
from surveys.round_file import RoundFileError, read_round_file
from surveys.yamlfile import LineMap, Problem, ProblemsError, read_yaml, with_lines


def test_problem_says_where_and_what() -> None:
    assert str(Problem("round.yaml", 4, "bad")) == "round.yaml:4: bad"
    assert str(Problem("round.yaml", None, "bad")) == "round.yaml: bad"
    assert str(Problem("--opens", None, "bad")) == "--opens: bad"
    assert str(Problem("", None, "bad")) == "bad"
    assert str(Problem("s.yaml", 3, "bad", question="q1")) == "s.yaml:3: question 'q1': bad"
    assert str(Problem("a.yaml", 2, "odd", level="warning")) == "a.yaml:2: warning: odd"
    assert Problem("a.yaml", 2, "odd", level="warning").is_error is False
    assert Problem("a.yaml", 2, "bad").is_error is True


def problems_of_every_reader(path: Path) -> list[list[Problem]]:
    """The problems the survey, areas and round-file readers find in one file."""
    found = []
    for read in (load_survey, read_round_file):
        with pytest.raises(ProblemsError) as caught:
            read(path)
        found.append(caught.value.problems)
    found.append(check_areas_file(path)[1])
    return found


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("name: [open\nareas: all\n", 2, "YAML syntax error"),
        ("name: x\n\tareas: all\n", 2, "use spaces, not tabs"),
    ],
)
def test_every_reader_says_a_broken_file_the_same_way(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    survey, round_file, areas = problems_of_every_reader(path)
    assert [p.message for p in survey] == [p.message for p in round_file]
    assert [p.message for p in areas] == [p.message for p in survey]
    assert words in survey[0].message and survey[0].line == line
    assert areas[0].level == "error"  # areas files also warn, so their lines name the level


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "file not found"), (b"a: \xe9\n", "not UTF-8"), (b"\x89PNG\x00", "binary")],
)
def test_every_reader_refuses_what_is_not_text_the_same_way(
    tmp_path: Path, content: bytes | None, words: str
) -> None:
    path = tmp_path / "file.yaml"
    if content is not None:
        path.write_bytes(content)
    for problems in problems_of_every_reader(path):
        assert len(problems) == 1 and words in problems[0].message, problems


def test_the_error_classes_are_problem_errors() -> None:
    assert issubclass(SurveyError, ProblemsError)
    assert issubclass(RoundFileError, ProblemsError)


def test_values_with_lines_and_repeated_keys(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: no\nb:\n  - 007\n  - on\na: 2\n", encoding="utf-8")
    name, node = read_yaml(path)
    data, problems = with_lines(name, node)
    assert isinstance(data, LineMap)
    assert data["a"] == 2 and data.key_lines["a"] == 5
    assert data["b"] == [7, "on"] and data["b"].item_lines == [3, 4]
    assert data["b"].raw == ["007", "on"]  # as typed
    assert [str(p) for p in problems] == [f"{path}:5: 'a' is given twice (also on line 1)"]


def test_only_true_and_false_are_booleans(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: no\nb: yes\nc: true\nd: False\n", encoding="utf-8")
    data, _ = with_lines(*read_yaml(path))
    assert data == {"a": "no", "b": "yes", "c": True, "d": False}
