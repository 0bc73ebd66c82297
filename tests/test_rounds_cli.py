"""`buurtstem round`: exit codes and messages through click's CliRunner (real clock: far dates)."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from bot.cli import cli
from bot.clock import SystemClock
from storage import responses as response_store
from storage.db import Database
from storage.residents import create_resident
from surveys.areas import default_areas
from usecases.round_tick import run_round_tick

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
    """The single error line of a failed command (no traceback; the Database line aside)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [
        line
        for line in result.output.splitlines()
        if line.strip() and not line.startswith("Database: ")
    ]
    assert len(lines) == 1, result.output
    return lines[0]


def not_published(result: Result) -> list[str]:
    """The problem lines of a refused publish (the closing line checked and left off)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1] == f"Not published: fix {len(lines) - 1} problem(s) first.", result.output
    return lines[:-1]


def table_row(output: str, first_cell: str) -> list[str]:
    """The cells of the table row whose first cell is `first_cell` (cells: 2+ spaces apart)."""
    for line in output.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{output}")


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
    # The first line names the database; the rounds are a table.
    assert listed.output.splitlines()[0] == f"Database: {url} (--database-url)"
    assert listed.stdout.splitlines()[0].split() == [
        "id",
        "name",
        "survey",
        "status",
        "opens",
        "closes",
        "responses",
    ]
    assert table_row(listed.stdout, "1") == [
        "1",
        "Najaarspeiling 2099",
        "testpeiling 1",
        "scheduled",
        "2099-11-09 09:00",
        "2099-11-30 17:00",
        "no responses",
    ]

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
    # A bare closing date runs through that day, and is echoed as written.
    assert "opens 2099-01-10 09:00, closes 2099-01-31 (end of that day)" in result.output
    assert "2099-02-01" not in result.output
    assert "to not-started residents" in result.output
    # Listed as the end of the date that was written, not as the next day.
    assert table_row(run(url, "list").stdout, "1")[5] == "2099-01-31 24:00"
    assert "closes: 2099-01-31 24:00" in run(url, "show", "1").output


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"opens": "'9 november'"}, ":4: opens: '9 november' is not a date and time"),
        (
            {"closes": "2099-11-01 09:00"},
            ":5: closes 2099-11-01 09:00 must be after opens 2099-11-09 09:00",
        ),
        (
            {"areas": "[utrecht-overvecht, delft-oost]"},
            ":3: areas: unknown focus area 'delft-oost'",
        ),
        ({"survey": "elsewhere.yaml"}, ":1: survey file not found"),
        (
            {"closes": "2001-01-01", "opens": "2000-12-01"},
            ":5: closes 2001-01-01 (end of that day) is already in the past",
        ),
        ({"reminder": "{after_days: soon}"}, ":6: reminder after_days: 'soon' is not a whole"),
    ],
)
def test_bad_round_settings_give_one_clear_line_with_file_and_line(
    url: str, tmp_path: Path, changes: dict[str, str], message: str
) -> None:
    path = round_file(tmp_path, **changes)
    (problem,) = not_published(run(url, "publish", str(path)))
    assert problem.startswith(str(path) + ":") and message in problem
    assert not (tmp_path / "cli.db").exists()  # nothing was published, nothing created


def test_every_problem_of_a_round_file_and_its_survey_in_one_run(url: str, tmp_path: Path) -> None:
    (tmp_path / "survey.yaml").write_text(
        (DATA / "broken.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    path = tmp_path / "round.yaml"
    path.write_text(
        "survey: survey.yaml\n"
        "name: Drie fouten\n"
        "areas: [overvecht-noord, delft-west]\n"
        "opens: 2099-12-10 09:00\n"
        "closes: 2099-12-09\n"
        "reminder: {after_days: 3, colour: red}\n"
        "kleur: rood\n"
    )
    problems = not_published(run(url, "publish", str(path)))
    round_lines = [line for line in problems if line.startswith(f"{path}:")]
    assert round_lines == [
        f"{path}:3: areas: 'overvecht-noord' is a neighbourhood of utrecht-overvecht "
        "(Utrecht Overvecht); rounds are published for whole focus areas: use "
        "'utrecht-overvecht'",
        f"{path}:5: closes 2099-12-09 (end of that day) must be after opens 2099-12-10 09:00",
        f"{path}:6: reminder: unknown setting 'colour' (known: after_days, max, whom)",
        f"{path}:7: unknown round setting 'kleur' (known: survey, name, areas, opens, closes, "
        "reminder)",
    ]
    # The survey's own problems follow in the same run, as `survey validate` prints them.
    survey_lines = [line for line in problems if "survey.yaml:" in line]
    assert survey_lines and any(":13: question 'unsafe_freq'" in line for line in survey_lines)
    assert len(problems) == len(round_lines) + len(survey_lines)


def test_problems_of_options_name_the_option(url: str) -> None:
    problems = not_published(
        run(
            url,
            "publish",
            str(ALL_TYPES),
            "--areas",
            "overvecht",
            "--opens",
            "morgen",
            "--closes",
            "2099-01-31",
            "--remind-after-days",
            "0",
        )
    )
    assert problems == [
        "name: give the round a name (e.g. --name 'Buurtpeiling najaar 2026')",
        "--areas: unknown focus area 'overvecht'; did you mean 'utrecht-overvecht'?",
        "--opens: 'morgen' is not a date and time; write it like 2026-11-09 09:00",
        "--remind-after-days: give a whole number of 1 or more, not 0",
    ]


def test_a_tab_in_a_round_file_says_use_spaces(url: str, tmp_path: Path) -> None:
    path = round_file(tmp_path, reminder="\n\tafter_days: 3\n\tmax: 2")
    assert not_published(run(url, "publish", str(path))) == [
        f"{path}:7: use spaces, not tabs (YAML does not allow tabs for indentation)",
        f"{path}:8: use spaces, not tabs (YAML does not allow tabs for indentation)",
    ]


def test_missing_file_and_unknown_round(url: str, tmp_path: Path) -> None:
    assert not_published(run(url, "publish", "nowhere.yaml")) == ["nowhere.yaml: file not found"]
    assert run(url, "publish", str(round_file(tmp_path))).exit_code == 0
    assert "no round 7" in one_error_line(run(url, "show", "7"))
    assert "no round 7" in one_error_line(run(url, "close", "7", "--yes"))


def test_read_only_commands_never_create_an_empty_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    sandbox_dir = tmp_path / "sandbox-data"
    sandbox_dir.mkdir()
    (sandbox_dir / "buurtpeiling-v1-abc.sqlite").write_bytes(b"")
    env = {"BUURTSTEM_DATABASE_URL": None, "BUURTSTEM_SANDBOX_DIR": str(sandbox_dir)}
    for args in (["round", "list"], ["round", "show", "1"], ["round", "close", "1"]):
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code == 1, result.output
        assert result.output.startswith(
            f"Error: no database there: sqlite:///{here.resolve()}/buurtstem.db "
            "(the default: no --database-url, no BUURTSTEM_DATABASE_URL); nothing to read, "
            "and nothing was created."
        ), result.output
        # Where the sandbox's data is, as the --database-url to add.
        sandbox_url = f"sqlite:///{(sandbox_dir / 'buurtpeiling-v1-abc.sqlite').resolve()}"
        assert f"--database-url {sandbox_url}" in result.output
        assert not (here / "buurtstem.db").exists()
    # A database named in the environment is named as such.
    url = f"sqlite:///{tmp_path / 'env.db'}"
    from storage.migrate import upgrade

    upgrade(url)
    listed = runner.invoke(cli, ["round", "list"], env={**env, "BUURTSTEM_DATABASE_URL": url})
    assert listed.exit_code == 0
    assert listed.stderr.splitlines()[0] == f"Database: {url} (BUURTSTEM_DATABASE_URL)"
    assert "No rounds yet" in listed.stdout


def test_publish_names_the_database_it_creates(url: str, tmp_path: Path) -> None:
    result = run(url, "publish", str(round_file(tmp_path)))
    assert result.exit_code == 0
    assert result.stderr.splitlines()[0] == (
        f"Database: {url} (--database-url; a new, empty database was created)"
    )


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
    assert "no database there" in run(url, "list").output  # nothing was created


def test_changed_survey_with_the_same_version_is_refused(url: str, tmp_path: Path) -> None:
    path = round_file(tmp_path)
    assert run(url, "publish", str(path)).exit_code == 0
    survey = tmp_path / "survey.yaml"
    survey.write_text(survey.read_text().replace("Welk cijfer?", "Welk rapportcijfer?"))
    line = one_error_line(run(url, "publish", str(path), "--name", "Tweede"))
    assert "version '1' is already stored with other content" in line
    assert "needs a new version" in line


def test_close_asks_first_and_says_closed_as_the_list_does(url: str, tmp_path: Path) -> None:
    assert run(url, "publish", str(round_file(tmp_path))).exit_code == 0
    runner = CliRunner()
    args = ["round", "close", "1", "--database-url", url]
    refused = runner.invoke(cli, args, input="n\n")
    assert refused.exit_code == 1
    assert "Close round 1 'Najaarspeiling 2099' now? It has not opened yet" in refused.output
    assert "Round 1 not closed. (add --yes to skip the question)" in refused.output
    assert table_row(run(url, "list").stdout, "1")[3] == "scheduled"
    # No answer at all (a script without --yes) changes nothing either.
    assert runner.invoke(cli, args, input="").exit_code == 1
    result = runner.invoke(cli, args, input="y\n")
    assert result.exit_code == 0
    assert "Round 1 closed before it opened: nobody was invited." in result.output
    assert "cancel" not in result.output
    assert table_row(run(url, "list").stdout, "1")[3] == "closed"
    assert "status: closed (it never opened)" in run(url, "show", "1").output
    assert "already closed" in one_error_line(run(url, "close", "1", "--yes"))

    opened = round_file(tmp_path, name="Nu open", opens="2020-01-01 09:00")
    assert run(url, "publish", str(opened)).exit_code == 0
    db = Database(url)
    try:
        now = SystemClock().now()
        assert run_round_tick(db, default_areas(), now, tz=ZoneInfo("Europe/Amsterdam")).opened == [
            2
        ]
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
    result = run(url, "close", "2", "--yes")
    assert result.exit_code == 0
    assert "2 unfinished response(s) kept as partial, 2 resident(s) told" in result.output
    assert "round_closed pending: 2" in run(url, "show", "2").output
