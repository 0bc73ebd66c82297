"""`buurtstem export responses`: one row per answer, pseudonymous, as CSV and xlsx."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from bot.cli import cli
from bot.clock import FakeClock
from storage import responses as response_store
from storage.db import Database
from storage.export import COLUMNS, export_rows, safe_cell
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
    assert first.value == "8" and first.item_code == "VM.leefbaarheid_cijfer"
    assert first.focus_area == "utrecht-overvecht"
    assert first.neighbourhood == "utrecht-overvecht-noord"
    assert first.response_status == "completed" and partial.response_status == "partial"
    assert partial.language == "en" and partial.neighbourhood == ""
    assert issues.value == "rommel;lawaai"
    # 2 November 2026, 09:xx UTC is 10:xx in Amsterdam (winter time).
    assert first.answered_at.startswith("2026-11-02T10:") and first.answered_at.endswith("+01:00")
    assert str(TELEGRAM_ID) not in repr(rows)
    with pytest.raises(LookupError):
        export_rows(session, 999, TZ)


def test_cli_writes_csv_and_refuses_to_overwrite(
    sqlite_db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    round_id = fill(sqlite_db, clock)
    out = tmp_path / "ronde.csv"
    args = ["export", "responses", "--round", str(round_id), "--out", str(out)]
    args += ["--database-url", sqlite_db.url]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Wrote 7 answer(s) of 2 response(s)" in result.output
    with out.open(encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))
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
    assert len(table) == 8
    remark = next(row for row in table if row[4] == "remark")
    # Free text is scrubbed (phone numbers, names it recognises) unless --raw-text is given.
    assert "06-12345678" not in remark[6] and remark[6].startswith("Bel ")

    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "exists; add --force" in again.output
    raw = CliRunner().invoke(cli, [*args, "--force", "--raw-text"])
    assert raw.exit_code == 0, raw.output
    assert "Bel Jan de Vries op 06-12345678" in out.read_text(encoding="utf-8")


def test_cli_writes_xlsx(sqlite_db: Database, clock: FakeClock, tmp_path: Path) -> None:
    round_id = fill(sqlite_db, clock)
    out = tmp_path / "ronde.xlsx"
    result = CliRunner().invoke(
        cli,
        [
            "export",
            "responses",
            "--round",
            str(round_id),
            "--out",
            str(out),
            "--format",
            "xlsx",
            "--database-url",
            sqlite_db.url,
        ],
    )
    assert result.exit_code == 0, result.output
    sheet = load_workbook(out).active
    assert sheet is not None
    values = [tuple(c or "" for c in row) for row in sheet.iter_rows(values_only=True)]
    assert list(values[0]) == COLUMNS
    assert values[1][:2] == ("rk0abcdef", "utrecht-overvecht")
    assert values[4][4:7] == ("issues", "", "rommel;lawaai")
    assert values[-1][-1] == "partial"
    assert len(values) == 8


def test_cli_unknown_round_is_one_clear_line(sqlite_url: str, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    result = CliRunner().invoke(
        cli,
        ["export", "responses", "--round", "42", "--out", str(out), "--database-url", sqlite_url],
    )
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no round 42 (see buurtstem round list)"
    assert not out.exists()


def test_spreadsheet_formulas_are_neutralised() -> None:
    assert safe_cell("=HYPERLINK('x')") == "'=HYPERLINK('x')"
    assert safe_cell("-1") == "'-1"
    assert safe_cell("rommel;lawaai") == "rommel;lawaai"
