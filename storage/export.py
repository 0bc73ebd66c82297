"""Export a round's answers, one row per answer, as CSV or xlsx: pseudonymous, never Telegram ids."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Answer, Response, Round
from storage.survey_versions import SurveyVersions

# A cell starting with one of these is a formula to Excel and LibreOffice (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One answer with its response's pseudonymous context, typed as stored."""

    response_key: str
    focus_area: str
    neighbourhood: str
    language: str
    question_id: str
    item_code: str
    # A number (grades), text (option ids, free text, ';'-joined multiple choice), a boolean
    # or None (skipped); the writers turn it into a typed cell.
    value: Any
    answered_at: datetime  # aware, in the export's time zone
    response_status: str


COLUMNS = [f.name for f in fields(ExportRow)]
# Excel and LibreOffice read this as a date and time in any locale.
SPREADSHEET_TIME = "%Y-%m-%d %H:%M:%S"
XLSX_TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"


def export_value(value: Any) -> Any:
    """An answer for export: numbers and booleans stay typed, multiple choice ';'-joined."""
    if value is None:
        return None
    if isinstance(value, list):
        return ";".join(str(item) for item in value)
    if isinstance(value, bool | int | float):
        return value
    return str(value)


def export_rows(
    session: Session,
    round_id: int,
    tz: tzinfo,
    *,
    text_filter: Callable[[str], str] | None = None,
    surveys: SurveyVersions | None = None,
) -> list[ExportRow]:
    """Every answer of the round, by response, in the survey's question order.

    `text_filter` is applied to free-text answers (e.g. scrubbing names and numbers);
    `surveys` is the database's cache of stored versions (`db.surveys`), when at hand.
    """
    surveys = surveys or SurveyVersions()
    round_ = session.get(Round, round_id)
    if round_ is None:
        raise LookupError(f"no round {round_id}")
    rows = session.execute(
        select(Response, Answer)
        .join(Answer, Answer.response_id == Response.id)
        .where(Response.round_id == round_id)
        .order_by(Response.id, Answer.id)
    ).all()
    result: list[tuple[int, int, ExportRow]] = []
    for response, answer in rows:
        survey = surveys.survey(session, response.survey_version_id)
        try:
            order = survey.index(answer.question_id)
            is_text = survey.question(answer.question_id).type == "text"
        except KeyError:
            order, is_text = len(survey.questions), False
        value = export_value(answer.value)
        if is_text and text_filter is not None and isinstance(value, str) and value:
            value = text_filter(value)
        row = ExportRow(
            response_key=response.response_key,
            focus_area=response.area_code,
            neighbourhood=response.neighbourhood_code or "",
            language=response.language,
            question_id=answer.question_id,
            item_code=answer.item_code or "",
            value=value,
            answered_at=answer.answered_at.astimezone(tz),
            response_status="completed" if response.status == "completed" else "partial",
        )
        result.append((response.id, order, row))
    result.sort(key=lambda item: (item[0], item[1]))
    return [row for _, _, row in result]


def safe_cell(value: str) -> str:
    """Neutralise text that a spreadsheet would run as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_cells(row: ExportRow, *, excel_nl: bool = True) -> list[str]:
    """One row as CSV text: for Dutch Excel decimal commas and plain local times, else
    decimal points and ISO 8601 times with their offset (for scripts)."""
    cells = []
    for name in COLUMNS:
        value = getattr(row, name)
        if value is None:
            cells.append("")
        elif isinstance(value, datetime):
            cells.append(
                value.strftime(SPREADSHEET_TIME)
                if excel_nl
                else value.isoformat(timespec="seconds")
            )
        elif isinstance(value, bool):
            cells.append("true" if value else "false")
        elif isinstance(value, int | float):
            text = repr(value) if isinstance(value, float) else str(value)
            cells.append(text.replace(".", ",") if excel_nl else text)
        else:
            cells.append(safe_cell(str(value)))
    return cells


def write_csv(rows: Iterable[ExportRow], path: Path, *, excel_nl: bool = True) -> int:
    """Write rows as CSV with a header; returns the number of rows.

    excel_nl (default): UTF-8 with BOM, ';' and decimal comma, as Dutch Excel opens it with a
    double click (LibreOffice reads it too); otherwise plain UTF-8, ',' and decimal point.
    """
    count = 0
    with (
        _replacing(path) as temporary,
        temporary.open("w", encoding="utf-8-sig" if excel_nl else "utf-8", newline="") as handle,
    ):
        writer = csv.writer(handle, delimiter=";" if excel_nl else ",", lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(csv_cells(row, excel_nl=excel_nl))
            count += 1
    return count


def xlsx_cells(row: ExportRow) -> list[Any]:
    """One row as typed cells: numbers, booleans, a date and time (local, as Excel has no
    time zones), text made formula-safe."""
    cells: list[Any] = []
    for name in COLUMNS:
        value = getattr(row, name)
        if isinstance(value, datetime):
            cells.append(value.replace(tzinfo=None))
        elif value is None or isinstance(value, bool | int | float):
            cells.append(value)
        else:
            cells.append(safe_cell(str(value)))
    return cells


def write_xlsx(rows: Iterable[ExportRow], path: Path, sheet_title: str = "answers") -> int:
    """Write rows as an xlsx workbook: typed cells, bold frozen header, filter; returns rows."""
    # Imported here: openpyxl is heavy, and only `export --out x.xlsx` needs it.
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title[:31])
    sheet.freeze_panes = "A2"
    widths = {"response_key": 14, "answered_at": 20, "value": 24, "item_code": 26}
    for index, name in enumerate(COLUMNS, 1):
        sheet.column_dimensions[get_column_letter(index)].width = widths.get(
            name, max(12, len(name) + 2)
        )
    header = []
    for name in COLUMNS:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    time_column = COLUMNS.index("answered_at")
    count = 0
    for row in rows:
        cells: list[Any] = xlsx_cells(row)
        moment = WriteOnlyCell(sheet, value=cells[time_column])
        moment.number_format = XLSX_TIME_FORMAT
        cells[time_column] = moment
        sheet.append(cells)
        count += 1
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{count + 1}"
    with _replacing(path) as temporary:
        workbook.save(temporary)
    return count


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary file next to `path` that replaces it only when writing succeeded."""
    temporary = path.with_name(f".{path.name}.part")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
