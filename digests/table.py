"""The published table as CSV: one row per (scope, neighbourhood, question, measure)."""

from __future__ import annotations

import csv
import io

from digests.model import Cell, PublishedTable

COLUMNS = [
    "area",
    "round",
    "period",
    "scope",
    "neighbourhood",
    "question",
    "measure",
    "n",
    "value",
    "ci_low",
    "ci_high",
    "indicative",
    "beyond_chance",
    "suppressed",
]


def _number(value: float | None, decimal: str) -> str:
    if value is None:
        return ""
    return f"{value:.4f}".replace(".", decimal)


def _flag(value: bool | None) -> str:
    return "" if value is None else ("1" if value else "0")


def rows(table: PublishedTable, decimal: str = ".") -> list[list[str]]:
    """The table as string rows (header first); suppressed cells have only their reason."""
    out = [list(COLUMNS)]
    for c in table.cells:
        out.append(_row(table, c, decimal))
    return out


def _row(table: PublishedTable, c: Cell, decimal: str) -> list[str]:
    head = [table.area_code, table.round_name, table.period, c.scope, c.neighbourhood]
    head += [c.question, c.measure]
    if not c.shown:
        return [*head, "", "", "", "", "", "", c.suppressed or ""]
    return [
        *head,
        "" if c.n is None else str(c.n),
        _number(c.value, decimal),
        _number(c.ci_low, decimal),
        _number(c.ci_high, decimal),
        _flag(c.indicative),
        _flag(c.beyond_chance),
        "",
    ]


def render_csv(table: PublishedTable, *, excel_nl: bool = True) -> bytes:
    """CSV bytes. excel_nl (default): UTF-8 with BOM, ';' and decimal comma, as Dutch Excel
    opens it with a double click; otherwise plain UTF-8, ',' and decimal point for scripts."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if excel_nl else ",", lineterminator="\r\n")
    writer.writerows(rows(table, "," if excel_nl else "."))
    data = buffer.getvalue().encode("utf-8")
    return b"\xef\xbb\xbf" + data if excel_nl else data


def parse_csv(data: bytes) -> list[dict[str, str]]:
    """Read a CSV written by render_csv back into dicts (for tests and re-imports)."""
    text = data.decode("utf-8-sig")
    delimiter = ";" if text.split("\n", 1)[0].count(";") else ","
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))
