"""`buurtstem round`: exit codes and messages through click's CliRunner (real clock: far dates)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli import cli
from bot.clock import SystemClock
from bot.rounds import run_round_tick
from storage import responses as response_store
from storage.db import Database
from storage.residents import create_resident
from surveys.areas import default_areas

DATA = Path(__file__).parent / "data" / "surveys"
ALL_TYPES = DATA / "all_types.yaml"


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite file database (the commands migrate it themselves)."""
    return f"sqlite:///{tmp_path / 'cli.db'}"


def run(url: str, *args: str) -> Result:
    """Invoke `buurtstem round ...` against the test database."""
    return CliRunner().invoke(cli, ["round", *args, "--database-url", url])


def round_file(tmp_path: Path, **changes: str) -> Path:
    """A round file next to a copy of the test survey (a relative survey path)."""
    (tmp_path / "survey.yaml").write_text(ALL_TYPES.read_text(encoding="utf-8"), encoding="utf-8")
    values = {
        "survey": "survey.yaml",
        "name": "Najaarspeiling 2099",
        "areas": "[utrecht-overvecht, delft-west]",
        "opens": "2099-11-09 09:00",
        "closes": "2099-11-30 17:00",
        "reminder": "{after_days: 3, max: 2}",
        **changes,
    }
    path = tmp_path / "round.yaml"
    path.write_text("".join(f"{key}: {value}\n" for key, value in values.items()))
    return path


def one_error_line(result: Result) -> str:
    """The single error line of a failed command (no traceback)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_publish_a_round_file_then_list_show_and_publish_again(url: str, tmp_path: Path) -> None:
    path = round_file(tmp_path)
    result = run(url, "publish", str(path))
    assert result.exit_code == 0, result.output
    assert "Round 1 'Najaarspeiling 2099' published: survey testpeiling 1" in result.output
    assert "areas: delft-west, utrecht-overvecht" in result.output
    assert "opens 2099-11-09 09:00, closes 2099-11-30 17:00 (Europe/Amsterdam)" in result.output
    assert "every 3 day(s) after opening, at most 2" in result.output

    again = run(url, "publish", str(path))
    assert again.exit_code == 0 and "already published, unchanged" in again.output

    listed = run(url, "list")
    assert listed.exit_code == 0
    assert "Najaarspeiling 2099  [testpeiling 1]  scheduled" in listed.output
    assert "2099-11-09 09:00 to 2099-11-30 17:00" in listed.output
    assert "no responses" in listed.output

    shown = run(url, "show", "1")
    assert shown.exit_code == 0
    for expected in ("status: scheduled", "closes: 2099-11-30 17:00", "0 decided"):
        assert expected in shown.output


def test_publish_a_survey_file_with_options(url: str) -> None:
    result = run(
        url,
        "publish",
        str(ALL_TYPES),
        "--name",
        "Delft",
        "--areas",
        "delft-west",
        "--opens",
        "2099-01-10 09:00",
        "--closes",
        "2099-01-31",
        "--remind-after-days",
        "5",
        "--remind-whom",
        "not-started",
    )
    assert result.exit_code == 0, result.output
    # A bare closing date runs through that day.
    assert "closes 2099-02-01 00:00" in result.output
    assert "to not-started residents" in result.output


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"opens": "'9 november'"}, "opens: '9 november' is not a date and time"),
        ({"closes": "2099-11-01 09:00"}, "must be after opens"),
        ({"areas": "[utrecht-overvecht, delft-oost]"}, "unknown focus area 'delft-oost'"),
        ({"survey": "elsewhere.yaml"}, "survey file not found"),
        ({"closes": "2001-01-01", "opens": "2000-12-01"}, "already in the past"),
        ({"reminder": "{after_days: soon}"}, "'soon' is not a whole number"),
    ],
)
def test_bad_round_settings_give_one_clear_line(
    url: str, tmp_path: Path, changes: dict[str, str], message: str
) -> None:
    result = run(url, "publish", str(round_file(tmp_path, **changes)))
    assert message in one_error_line(result)


def test_missing_file_and_unknown_round(url: str) -> None:
    assert "file not found: nowhere.yaml" in one_error_line(run(url, "publish", "nowhere.yaml"))
    assert "no round 7" in one_error_line(run(url, "show", "7"))
    assert "no round 7" in one_error_line(run(url, "close", "7"))


def test_survey_problems_are_printed_like_survey_validate(url: str) -> None:
    result = run(
        url,
        "publish",
        str(DATA / "broken.yaml"),
        "--name",
        "x",
        "--areas",
        "all",
        "--opens",
        "2099-01-01",
        "--closes",
        "2099-01-02",
    )
    assert result.exit_code == 1
    assert "broken.yaml:13: question 'unsafe_freq'" in result.output
    assert "Not published" in result.output and "Traceback" not in result.output
    assert "No rounds yet" in run(url, "list").output


def test_changed_survey_with_the_same_version_is_refused(url: str, tmp_path: Path) -> None:
    path = round_file(tmp_path)
    assert run(url, "publish", str(path)).exit_code == 0
    survey = tmp_path / "survey.yaml"
    survey.write_text(survey.read_text().replace("Welk cijfer?", "Welk rapportcijfer?"))
    line = one_error_line(run(url, "publish", str(path), "--name", "Tweede"))
    assert "version '1' is already stored with other content" in line
    assert "needs a new version" in line


def test_close_cancels_a_scheduled_round_and_closes_an_open_one(url: str, tmp_path: Path) -> None:
    assert run(url, "publish", str(round_file(tmp_path))).exit_code == 0
    result = run(url, "close", "1")
    assert result.exit_code == 0 and "Round 1 cancelled" in result.output
    assert "already closed" in one_error_line(run(url, "close", "1"))

    opened = round_file(tmp_path, name="Nu open", opens="2020-01-01 09:00")
    assert run(url, "publish", str(opened)).exit_code == 0
    db = Database(url)
    try:
        now = SystemClock().now()
        assert run_round_tick(db, default_areas(), now).opened == [2]
        with db.session() as session:
            for n, status in enumerate(["started", "completed", "started"]):
                person = create_resident(
                    session,
                    pseudonym=f"p{n}",
                    chat_id=900 + n,
                    language="nl",
                    language_source="chosen",
                    now=now,
                )
                response = response_store.start_response(
                    session,
                    round_id=2,
                    survey_version_id=1,
                    resident_id=person.id,
                    response_key=f"key{n}",
                    area_code="delft-west" if n == 2 else "utrecht-overvecht",
                    neighbourhood_code=None,
                    language="nl",
                    state={},
                    now=now,
                )
                if status == "completed":
                    response_store.complete(response, now)
    finally:
        db.dispose()
    listed = run(url, "list").output
    assert "utrecht-overvecht: started 2, completed 1" in listed
    assert "delft-west: started 1, completed 0" in listed
    assert "total: started 3, completed 1" in listed
    result = run(url, "close", "2")
    assert result.exit_code == 0
    assert "2 unfinished response(s) kept as partial, 2 resident(s) told" in result.output
    assert "round_closed pending: 2" in run(url, "show", "2").output
