"""Export a round's answers, one row per answer, as CSV or xlsx: pseudonymous, never Telegram ids."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass, fields
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Answer, Response, Round
from storage.survey_versions import get_survey_version
from surveys.schema import Survey

# A cell starting with one of these is a formula to Excel and LibreOffice (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One answer with its response's pseudonymous context."""

    response_key: str
    focus_area: str
    neighbourhood: str
    language: str
    question_id: str
    item_code: str
    value: str
    answered_at: str
    response_status: str


COLUMNS = [f.name for f in fields(ExportRow)]


def export_value(value: Any) -> str:
    """An answer as text: multiple choice as ';'-joined option ids, grades as numbers."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def export_rows(
    session: Session,
    round_id: int,
    tz: tzinfo,
    *,
    text_filter: Callable[[str], str] | None = None,
) -> list[ExportRow]:
    """Every answer of the round, by response, in the survey's question order.

    `text_filter` is applied to free-text answers (e.g. scrubbing names and numbers).
    """
    round_ = session.get(Round, round_id)
    if round_ is None:
        raise LookupError(f"no round {round_id}")
    surveys: dict[int, Survey] = {}
    rows = session.execute(
        select(Response, Answer)
        .join(Answer, Answer.response_id == Response.id)
        .where(Response.round_id == round_id)
        .order_by(Response.id, Answer.id)
    ).all()
    result: list[tuple[int, int, ExportRow]] = []
    for response, answer in rows:
        survey = surveys.get(response.survey_version_id)
        if survey is None:
            stored = get_survey_version(session, response.survey_version_id)
            assert stored is not None
            survey = surveys[response.survey_version_id] = Survey.from_json(stored.definition)
        try:
            order = survey.index(answer.question_id)
            is_text = survey.question(answer.question_id).type == "text"
        except KeyError:
            order, is_text = len(survey.questions), False
        value = export_value(answer.value)
        if is_text and text_filter is not None and value:
            value = text_filter(value)
        row = ExportRow(
            response_key=response.response_key,
            focus_area=response.area_code,
            neighbourhood=response.neighbourhood_code or "",
            language=response.language,
            question_id=answer.question_id,
            item_code=answer.item_code or "",
            value=value,
            answered_at=_iso(answer.answered_at, tz),
            response_status="completed" if response.status == "completed" else "partial",
        )
        result.append((response.id, order, row))
    result.sort(key=lambda item: (item[0], item[1]))
    return [row for _, _, row in result]


def _iso(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).isoformat(timespec="seconds")


def safe_cell(value: str) -> str:
    """Neutralise text that a spreadsheet would run as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def write_csv(rows: Iterable[ExportRow], path: Path) -> int:
    """Write rows as UTF-8 CSV with a header; returns the number of rows."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([safe_cell(cell) for cell in astuple(row)])
            count += 1
    return count


def write_xlsx(rows: Iterable[ExportRow], path: Path, sheet_title: str = "answers") -> int:
    """Write rows as an xlsx workbook (one sheet, header frozen); returns the number of rows."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title[:31])
    sheet.freeze_panes = "A2"
    sheet.append(COLUMNS)
    count = 0
    for row in rows:
        # Strings only (a grade stays "7"): the value column mixes numbers, ids and text.
        sheet.append([safe_cell(cell) for cell in astuple(row)])
        count += 1
    workbook.save(path)
    return count
