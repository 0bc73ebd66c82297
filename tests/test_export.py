"""`buurtstem export responses`: one row per answer, pseudonymous, as CSV and xlsx."""

from __future__ import annotations

import csv
import re
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from openpyxl import load_workbook

from bot.cli import cli
from bot.clock import FakeClock
from storage import responses as response_store
from storage.db import Database
from storage.export import COLUMNS, ExportRow, csv_cells, export_rows, safe_cell
from storage.models import Round
from storage.residents import create_resident
from tests.test_rounds import publish, tick

TZ = ZoneInfo("Europe/Amsterdam")
TELEGRAM_ID = 987654321


def fill(db: Database, clock: FakeClock) -> int:
    """A round with one completed and one partial response; returns the round id."""
    round_id = publish(db, clock, opens_in=timedelta(0))
    tick(db, clock)
    answers: list[dict[str, Any]] = [
        {
            "grade": 8,
            "ever": "ja",
            "freq": "soms",
            "issues": ["rommel", "lawaai"],
            "remark": "Bel Jan de Vries op 06-12345678",
        },
        {"grade": 3, "ever": "nee"},
    ]
    with db.session() as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None
        for n, given in enumerate(answers):
            person = create_resident(
                session,
                pseudonym=f"pseudo{n}",
                chat_id=TELEGRAM_ID + n,
                language="nl",
                language_source="chosen",
                now=clock.now(),
            )
            response = response_store.start_response(
                session,
                round_id=round_id,
                survey_version_id=round_.survey_version_id,
                resident_id=person.id,
                response_key=f"rk{n}abcdef",
                area_code="utrecht-overvecht",
                neighbourhood_code="utrecht-overvecht-noord" if n == 0 else None,
                language="nl" if n == 0 else "en",
                state={},
                now=clock.now(),
            )
            # Answer in reverse order: the export follows the survey's order anyway.
            for question_id, value in reversed(list(given.items())):
                clock.advance(timedelta(minutes=1))
                response_store.save_answer(
                    session,
                    response,
                    question_id=question_id,
                    item_code="VM.leefbaarheid_cijfer" if question_id == "grade" else None,
                    value=value,
                    text_language=None,
                    now=clock.now(),
                )
            if n == 0:
                response_store.complete(response, clock.now())
    return round_id


def test_rows_follow_the_survey_and_carry_no_telegram_ids(db: Database, clock: FakeClock) -> None:
    round_id = fill(db, clock)
    with db.session() as session:
        rows = export_rows(session, round_id, TZ)
    assert [(r.response_key, r.question_id) for r in rows] == [
        ("rk0abcdef", "grade"),
        ("rk0abcdef", "ever"),
        ("rk0abcdef", "freq"),
        ("rk0abcdef", "issues"),
        ("rk0abcdef", "remark"),
        ("rk1abcdef", "grade"),
        ("rk1abcdef", "ever"),
    ]
    first, issues, partial = rows[0], rows[3], rows[5]
    assert first.value == 8 and first.item_code == "VM.leefbaarheid_cijfer"
    assert first.focus_area == "utrecht-overvecht"
    assert first.neighbourhood == "utrecht-overvecht-noord"
    assert first.response_status == "completed" and partial.response_status == "partial"
    assert partial.language == "en" and partial.neighbourhood == ""
    assert issues.value == "rommel;lawaai"
    # 2 November 2026, 09:xx UTC is 10:xx in Amsterdam (winter time).
    assert first.answered_at.isoformat().startswith("2026-11-02T10:")
    assert first.answered_at.isoformat().endswith("+01:00")
    assert str(TELEGRAM_ID) not in repr(rows)
    with pytest.raises(LookupError):
        export_rows(session, 999, TZ)


def export(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["export", "responses", *args, "--database-url", url])


def test_cli_writes_csv_for_dutch_excel_and_refuses_to_overwrite(
    sqlite_db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    round_id = fill(sqlite_db, clock)
    out = tmp_path / "ronde.csv"
    args = ["--round", str(round_id), "--out", str(out)]
    result = export(sqlite_db.url, *args)
    assert result.exit_code == 0, result.output
    assert "Wrote 7 answer(s) of 2 response(s)" in result.output
    assert result.stderr.startswith(f"Database: {sqlite_db.url} (--database-url)")
    data = out.read_bytes()
    # Dutch Excel: a BOM so it reads UTF-8, ';' between the cells, Windows line ends.
    assert data.startswith(b"\xef\xbb\xbfresponse_key;focus_area;")
    assert b"\r\n" in data
    with out.open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.reader(handle, delimiter=";"))
    assert table[0] == COLUMNS
    assert table[0] == [
        "response_key",
        "focus_area",
        "neighbourhood",
        "language",
        "question_id",
        "item_code",
        "value",
        "answered_at",
        "response_status",
    ]
    assert len(table) == 8 and all(len(row) == 9 for row in table)
    grade = table[1]
    assert grade[6] == "8"
    # Local time without "T" or offset: Excel and LibreOffice read it as a date and time.
    assert re.fullmatch(r"2026-11-02 10:\d\d:\d\d", grade[7])
    issues = next(row for row in table if row[4] == "issues")
    assert issues[6] == "rommel;lawaai"  # quoted in the file, one cell in Excel
    remark = next(row for row in table if row[4] == "remark")
    # Free text is scrubbed (phone numbers, names it recognises) unless --raw-text is given.
    assert "06-12345678" not in remark[6] and remark[6].startswith("Bel ")

    again = export(sqlite_db.url, *args)
    assert again.exit_code == 1 and "exists; add --force" in again.output
    raw = export(sqlite_db.url, *args, "--force", "--raw-text")
    assert raw.exit_code == 0, raw.output
    assert "Bel Jan de Vries op 06-12345678" in out.read_text(encoding="utf-8-sig")
    assert not list(tmp_path.glob(".*.part"))  # written through a temporary file


def test_cli_writes_plain_csv_for_scripts(
    sqlite_db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    round_id = fill(sqlite_db, clock)
    out = tmp_path / "ronde.csv"
    result = export(sqlite_db.url, "--round", str(round_id), "--out", str(out), "--plain-csv")
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(b"response_key,focus_area,")
    table = list(csv.reader(data.decode("utf-8").splitlines()))
    assert table[1][6] == "8" and table[1][7].endswith("+01:00") and "T" in table[1][7]


def test_csv_numbers_get_a_decimal_comma_for_excel() -> None:
    row = ExportRow(
        "rk",
        "delft-west",
        "",
        "nl",
        "score",
        "",
        7.5,
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=TZ),
        "partial",
    )
    assert csv_cells(row)[6:8] == ["7,5", "2026-01-02 03:04:05"]
    assert csv_cells(row, excel_nl=False)[6:8] == ["7.5", "2026-01-02T03:04:05+01:00"]
    assert csv_cells(replace(row, value=True))[6] == "true"
    assert csv_cells(replace(row, value=None))[6] == ""


def test_cli_writes_xlsx_with_typed_cells(
    sqlite_db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    round_id = fill(sqlite_db, clock)
    out = tmp_path / "ronde.xlsx"
    # The format follows the file name; --format agreeing with it is fine too.
    for extra in ([], ["--force", "--format", "xlsx"]):
        result = export(sqlite_db.url, "--round", str(round_id), "--out", str(out), *extra)
        assert result.exit_code == 0, result.output
    sheet = load_workbook(out).active
    assert sheet is not None
    assert sheet.freeze_panes == "A2"
    assert sheet["A1"].font.b
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == COLUMNS
    assert values[1][:2] == ("rk0abcdef", "utrecht-overvecht")
    # Grades are numbers and answer times dates, not text.
    assert values[1][6] == 8 and isinstance(values[1][6], int)
    assert isinstance(values[1][7], datetime) and values[1][7].hour == 10
    assert sheet["H2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert values[4][4:7] == ("issues", None, "rommel;lawaai")
    assert values[-1][-1] == "partial"
    assert len(values) == 8


@pytest.mark.parametrize(
    ("out", "extra", "message"),
    [
        ("y.csv", ["--format", "xlsx"], "--format xlsx does not fit the file name"),
        ("y.xlsx", ["--format", "csv"], "name the file y.csv or use --format xlsx"),
        ("y.xls", [], "cannot tell the format from the name"),
        ("answers", [], "end it in .csv or .xlsx, or give --format"),
        ("y.xlsx", ["--plain-csv"], "--plain-csv is for CSV files only"),
    ],
)
def test_cli_format_and_file_name_must_agree(
    sqlite_db: Database, clock: FakeClock, tmp_path: Path, out: str, extra: list[str], message: str
) -> None:
    round_id = fill(sqlite_db, clock)
    path = tmp_path / out
    result = export(sqlite_db.url, "--round", str(round_id), "--out", str(path), *extra)
    assert result.exit_code == 1 and message in result.output, result.output
    assert not path.exists()


def test_cli_format_from_option_when_the_name_has_no_extension(
    sqlite_db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    round_id = fill(sqlite_db, clock)
    path = tmp_path / "antwoorden"
    result = export(sqlite_db.url, "--round", str(round_id), "--out", str(path), "--format", "xlsx")
    assert result.exit_code == 0, result.output
    assert path.read_bytes().startswith(b"PK")  # a zip: xlsx


def test_cli_unknown_round_is_one_clear_line(sqlite_db: Database, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    result = export(sqlite_db.url, "--round", "42", "--out", str(out))
    assert result.exit_code == 1
    assert result.stdout == "" and result.stderr.splitlines()[-1] == (
        "Error: no round 42 (see buurtstem round list)"
    )
    assert not out.exists()


def test_cli_refuses_a_database_that_does_not_exist(sqlite_url: str, tmp_path: Path) -> None:
    result = export(sqlite_url, "--round", "1", "--out", str(tmp_path / "x.csv"))
    assert result.exit_code == 1 and "no database there" in result.output
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_spreadsheet_formulas_are_neutralised() -> None:
    assert safe_cell("=HYPERLINK('x')") == "'=HYPERLINK('x')"
    assert safe_cell("-1") == "'-1"
    assert safe_cell("rommel;lawaai") == "rommel;lawaai"
