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


_FLAGS: dict[bool | None, str] = {None: "", True: "1", False: "0"}


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


def _quoted(field: str, delimiter: str) -> str:
    # csv.QUOTE_MINIMAL as csv.writer applies it with lineterminator "\r\n" (tested equal).
    if delimiter in field or '"' in field or "\r" in field or "\n" in field:
        return '"' + field.replace('"', '""') + '"'
    return field


def _lines(table: PublishedTable, delimiter: str, decimal: str) -> list[str]:
    """The CSV lines, as csv.writer would write rows(table): one join per cell, no writer."""
    out = [delimiter.join(COLUMNS)]
    head = delimiter.join(
        _quoted(v, delimiter) for v in (table.area_code, table.round_name, table.period)
    )
    # A table has a few dozen distinct scope/neighbourhood/question/measure strings.
    quoted: dict[str, str] = {}
    hidden = delimiter * 6
    for c in table.cells:
        keys = []
        for key in (c.scope, c.neighbourhood, c.question, c.measure):
            q = quoted.get(key)
            if q is None:
                q = quoted[key] = _quoted(key, delimiter)
            keys.append(q)
        front = delimiter.join((head, *keys))
        if c.suppressed is not None:
            out.append(f"{front}{delimiter}{hidden}{_quoted(c.suppressed, delimiter)}")
            continue
        v, lo, hi = c.value, c.ci_low, c.ci_high
        if v is not None and lo is not None and hi is not None:
            # One format and one replace for the three figures (the hot part of a digest).
            nums = f"{v:.4f}{delimiter}{lo:.4f}{delimiter}{hi:.4f}"
            if decimal != ".":
                nums = nums.replace(".", decimal)
        else:
            nums = delimiter.join(_number(x, decimal) for x in (v, lo, hi))
        n = "" if c.n is None else str(c.n)
        flags = f"{_FLAGS[c.indicative]}{delimiter}{_FLAGS[c.beyond_chance]}{delimiter}"
        out.append(f"{front}{delimiter}{n}{delimiter}{nums}{delimiter}{flags}")
    return out


def render_csv(table: PublishedTable, *, excel_nl: bool = True) -> bytes:
    """CSV bytes. excel_nl (default): UTF-8 with BOM, ';' and decimal comma, as Dutch Excel
    opens it with a double click; otherwise plain UTF-8, ',' and decimal point for scripts."""
    lines = _lines(table, ";" if excel_nl else ",", "," if excel_nl else ".")
    data = ("\r\n".join(lines) + "\r\n").encode("utf-8")
    return b"\xef\xbb\xbf" + data if excel_nl else data


def render_csv_with_writer(table: PublishedTable, *, excel_nl: bool = True) -> bytes:
    """render_csv through csv.writer (the reference the fast path is tested against)."""
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
