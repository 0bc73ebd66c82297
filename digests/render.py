"""The digest text: Telegram HTML messages of at most 4096 characters, from the published table."""

from __future__ import annotations

import html
from typing import Any

from digests.model import NONE_OPTIONS, TOTAL, UNKNOWN, Cell, PublishedTable, QuestionInfo
from digests.suppression import headline_measure, measure_names
from locales import numbers
from locales.catalogue import Catalogue, default_catalogue

TELEGRAM_LIMIT = 4096
TOP_NUISANCES = 5


def telegram_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def esc(text: str) -> str:
    """Escape text for Telegram's HTML parse mode."""
    return html.escape(text, quote=False)


class Safe(str):
    """Text that is already Telegram HTML (escaped), so it is not escaped twice."""


class _Fmt:
    """Numbers (as the language writes them) and catalogue texts in one language."""

    def __init__(self, lang: str, catalogue: Catalogue) -> None:
        self.lang = lang
        self.cat = catalogue

    def t(self, key: str, **params: Any) -> Safe:
        """A catalogue text as HTML; parameters are escaped unless they are Safe already."""
        template = esc(self.cat.get(self.lang, "digest." + key))
        safe = {k: v if isinstance(v, Safe) else esc(str(v)) for k, v in params.items()}
        return Safe(template.format_map(safe) if safe else template)

    def number(self, value: float, decimals: int = 1) -> str:
        return numbers.number(value, self.lang, decimals)

    def count(self, value: int) -> str:
        return numbers.count(value, self.lang)

    def percent(self, share: float) -> str:
        return numbers.percent(share, self.lang)

    def signed(self, value: float, share: bool) -> str:
        if share:
            points = round(100 * value)
            return f"{points:+d} {self.t('points')}" if points else f"0 {self.t('points')}"
        text = self.number(value, 1)
        if text.strip("-0,.") == "":
            return self.number(0.0, 1)
        return text if text.startswith("-") else "+" + text

    def n(self, cell: Cell) -> Safe:
        text = self.t("n", n=self.count(cell.n or 0))
        if cell.indicative:
            return Safe(text + ", " + self.t("indicative"))
        return text

    def language(self, code: str) -> str:
        key = "languages." + code
        return self.t(key) if self.cat.has("nl", "digest." + key) else esc(code)


def _value(fmt: _Fmt, measure: str, value: float) -> str:
    return fmt.number(value, 1) if measure == "mean" else fmt.percent(value)


def _question_block(table: PublishedTable, q: QuestionInfo, fmt: _Fmt) -> list[str]:
    lines = [f"<b>{esc(q.label_in(fmt.lang))}</b>"]
    if q.label:
        lines.append(f"<i>{esc(q.text_in(fmt.lang))}</i>")
    head = headline_measure(q)
    measures = measure_names(q)
    first = table.cell("current", TOTAL, q.id, head or measures[0]) if measures else None
    if first is None or not first.shown:
        lines.append(fmt.t("too_few"))
        return lines
    if q.type == "grade":
        c: Cell | None = first
        assert (
            c is not None and c.value is not None and c.ci_low is not None and c.ci_high is not None
        )
        lines.append(
            fmt.t(
                "mean",
                value=fmt.number(c.value),
                low=fmt.number(c.ci_low),
                high=fmt.number(c.ci_high),
                n=fmt.n(c),
            )
        )
    elif q.type == "agree5":
        assert first.value is not None
        lines.append(fmt.t("agree", value=fmt.percent(first.value), n=fmt.n(first)))
        if q.reverse:
            lines.append(fmt.t("reverse"))
    elif q.type == "multi":
        lines.extend(_top_lines(table, q, fmt))
    else:
        parts: list[str] = []
        for measure in measures:
            c = table.cell("current", TOTAL, q.id, measure)
            if c is not None and c.shown and c.value is not None:
                label = q.option_label(measure.removeprefix("share:"), fmt.lang)
                parts.append(fmt.t("share", label=label, value=fmt.percent(c.value)))
        lines.append(" · ".join(parts) + " " + fmt.t("shares_n", n=fmt.n(first)))
    if head is not None:
        lines.extend(_change_lines(table, q, head, fmt))
    return lines


def _top_lines(table: PublishedTable, q: QuestionInfo, fmt: _Fmt) -> list[str]:
    cells = []
    none_cell = None
    for measure in measure_names(q):
        c = table.cell("current", TOTAL, q.id, measure)
        if c is None or not c.shown or c.value is None:
            continue
        if measure.removeprefix("share:") in NONE_OPTIONS:
            none_cell = c
        else:
            cells.append(c)
    # Ties are broken by survey order, so the list is stable from digest to digest.
    cells.sort(key=lambda c: -(c.value or 0.0))
    lines = [f"{fmt.t('top')} ({fmt.n(cells[0] if cells else none_cell or Cell('', '', '', ''))})"]
    for rank, c in enumerate(cells[:TOP_NUISANCES], start=1):
        label = q.option_label(c.measure.removeprefix("share:"), fmt.lang)
        lines.append(f"{rank}. {esc(label)} {fmt.percent(c.value or 0.0)}")
    if none_cell is not None and none_cell.value is not None:
        lines.append(fmt.t("none_option", value=fmt.percent(none_cell.value)))
    return lines


def _change_lines(table: PublishedTable, q: QuestionInfo, measure: str, fmt: _Fmt) -> list[str]:
    lines: list[str] = []
    share = measure != "mean"
    hint = {True: fmt.t("beyond_chance"), False: fmt.t("within_chance")}
    c = table.cell("change_previous_digest", TOTAL, q.id, measure)
    before = table.cell("previous_digest", TOTAL, q.id, measure)
    if c and c.shown and before and before.shown and c.value is not None:
        assert before.value is not None
        new = table.cell("current", TOTAL, q.id, measure)
        n_new = (new.n or 0) - (before.n or 0) if new and new.n is not None else 0
        lines.append(
            fmt.t(
                "change_digest",
                diff=fmt.signed(c.value, share),
                before=_value(fmt, measure, before.value),
                n_new=fmt.count(n_new),
                hint=hint[bool(c.beyond_chance)],
            )
        )
    if table.earlier_round_labels:
        label = table.earlier_round_labels[-1]
        c = table.cell("change_previous_round", TOTAL, q.id, measure)
        then = table.cell(f"round:{label}", TOTAL, q.id, measure)
        if c and c.shown and then and then.shown and c.value is not None:
            assert then.value is not None
            lines.append(
                fmt.t(
                    "change_round",
                    label=label,
                    diff=fmt.signed(c.value, share),
                    before=_value(fmt, measure, then.value),
                    n=fmt.count(then.n or 0),
                    hint=hint[bool(c.beyond_chance)],
                )
            )
    a = table.cell("all_areas", TOTAL, q.id, measure)
    if a and a.shown and a.value is not None:
        lines.append(fmt.t("all_areas", value=_value(fmt, measure, a.value), n=fmt.count(a.n or 0)))
    return lines


def neighbourhood_name(table: PublishedTable, code: str, fmt: _Fmt) -> str:
    """Display name of a neighbourhood (escaped)."""
    if code == UNKNOWN:
        return fmt.t("unknown_neighbourhood")
    if code == TOTAL:
        return fmt.t("total")
    return esc(dict(table.neighbourhoods).get(code) or code)


def _neighbourhood_block(table: PublishedTable, fmt: _Fmt) -> list[str]:
    lines = [f"<b>{fmt.t('per_neighbourhood')}</b>"]
    grades = [q for q in table.questions if q.type == "grade"]
    for code, _name in table.neighbourhoods:
        name = neighbourhood_name(table, code, fmt)
        resp = table.cell("current", code, "respondents", "started")
        if resp is None or not resp.shown:
            lines.append(f"{name}: {fmt.t('too_few')}")
            continue
        parts: list[str] = [fmt.t("respondents", n=fmt.count(resp.n or 0))]
        for q in grades:
            c = table.cell("current", code, q.id, "mean")
            label = esc(q.label_in(fmt.lang))
            if c is None or not c.shown or c.value is None:
                parts.append(f"{label} {fmt.t('too_few')}")
            else:
                parts.append(f"{label} {fmt.number(c.value)} ({fmt.n(c)})")
        lines.append(f"{name}: " + " · ".join(parts))
    return lines


def _comment_block(table: PublishedTable, fmt: _Fmt) -> list[str]:
    lines = [f"<b>{fmt.t('comments')}</b>"]
    if not table.comment_total:
        lines.append(fmt.t("comments_none"))
        return lines
    langs = ", ".join(
        f"{fmt.language(code)} {fmt.count(n)}" for code, n in table.comment_languages.items()
    )
    lines.append(
        fmt.t("comments_count", total=fmt.count(table.comment_total), languages=Safe(langs))
    )
    if table.quotes:
        lines.append(fmt.t("quotes_note"))
        for text, lang in table.quotes:
            lines.append(f"«{esc(text)}» ({esc(lang)})")
    return lines


def blocks(
    table: PublishedTable, lang: str = "nl", catalogue: Catalogue | None = None
) -> list[str]:
    """The digest as paragraphs (Telegram HTML), before splitting into messages."""
    fmt = _Fmt(lang, catalogue or default_catalogue())
    total = table.cell("current", TOTAL, "respondents", "started")
    completed = table.cell("current", TOTAL, "respondents", "completed")
    head = [
        f"<b>{fmt.t('title', area=table.area_name)}</b>",
        fmt.t("round", round=table.round_name, period=table.period),
    ]
    if total is None or not total.shown or completed is None:
        head.append(fmt.t("too_few_area", min_n=table.min_n))
        head.append(f"<i>{fmt.t('not_random')}</i>")
        return ["\n".join(head)]
    head.append(
        fmt.t(
            "responses_total",
            started=fmt.count(total.n or 0),
            completed=fmt.count(int(completed.value or 0)),
        )
    )
    if table.period_started is not None:
        head.append(
            fmt.t(
                "responses_period",
                started=fmt.count(table.period_started),
                completed=fmt.count(table.period_completed or 0),
            )
        )
    elif table.period_few:
        head.append(fmt.t("responses_period_few", min_n=table.min_n))
    head.append(f"<i>{fmt.t('not_random')}</i>")
    head.append(f"<i>{fmt.t('indicative_note', n=table.indicative_below)}</i>")
    out = ["\n".join(head)]
    for q in table.questions:
        if q.type != "text":
            out.append("\n".join(_question_block(table, q, fmt)))
    out.append("\n".join(_comment_block(table, fmt)))
    out.append("\n".join(_neighbourhood_block(table, fmt)))
    return out


def _split_long(block: str, limit: int) -> list[str]:
    # Lines never hold an open tag across a newline, so a split at a newline stays valid HTML.
    pieces: list[str] = []
    current = ""
    for line in block.split("\n"):
        while telegram_length(line) > limit:
            cut = limit
            while telegram_length(line[:cut]) > limit:
                cut -= 1
            pieces.append(line[:cut])
            line = line[cut:]
        candidate = f"{current}\n{line}" if current else line
        if telegram_length(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces


def pack(parts: list[str], limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Join paragraphs into as few messages as fit `limit`, never splitting inside a line."""
    reserve = 12  # room for a "(2/3)" marker
    messages: list[str] = []
    current = ""
    for block in parts:
        for piece in _split_long(block, limit - reserve):
            candidate = f"{current}\n\n{piece}" if current else piece
            if telegram_length(candidate) > limit - reserve:
                messages.append(current)
                current = piece
            else:
                current = candidate
    if current:
        messages.append(current)
    if len(messages) > 1:
        messages = [f"{m}\n({i}/{len(messages)})" for i, m in enumerate(messages, start=1)]
    return messages


def render_text(
    table: PublishedTable,
    lang: str = "nl",
    *,
    limit: int = TELEGRAM_LIMIT,
    catalogue: Catalogue | None = None,
) -> list[str]:
    """The digest as Telegram messages (parse_mode HTML), each at most `limit` characters."""
    return pack(blocks(table, lang, catalogue), limit)
