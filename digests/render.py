"""The digest text: Telegram HTML messages of at most 4096 characters, from the published table.

Order: title, round, when the figures were cut; three lines on what stands out (the biggest
change, the lowest grade, the problem most often said to happen often); responses; a block per
question (problems together, most frequent first); per neighbourhood (grades and its top
problems); comments by neighbourhood and theme; the source of the reference figures. Below the
threshold the digest is its first lines and "too few responses", nothing else.
"""

from __future__ import annotations

import html
from typing import Any

from digests.model import (
    NONE_OPTIONS,
    OTHER_HOODS,
    TOTAL,
    UNKNOWN,
    Cell,
    PublishedTable,
    QuestionInfo,
)
from digests.references import Figure
from digests.suppression import OFTEN, headline_measure, is_problem, measure_names
from locales import numbers
from locales.catalogue import Catalogue, default_catalogue

TELEGRAM_LIMIT = 4096
TOP_NUISANCES = 5
# Problems named per neighbourhood.
TOP_PROBLEMS_PER_HOOD = 3
SOMETIMES = "soms"


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

    def hidden(self, reason: str | None) -> Safe:
        """Why a figure is not shown: too few responses, too few new ones, or a smaller
        neighbourhood protected."""
        if reason in ("secondary", "few_new"):
            return self.t("hidden." + reason)
        return self.t("too_few")

    def theme(self, theme: str) -> Safe:
        return self.t("themes." + theme)


def _value(fmt: _Fmt, measure: str, value: float) -> str:
    return fmt.number(value, 1) if measure == "mean" else fmt.percent(value)


def _label(q: QuestionInfo, fmt: _Fmt) -> str:
    return esc(q.label_in(fmt.lang))


def _problem_name(q: QuestionInfo, fmt: _Fmt, capital: bool = False) -> str:
    """A problem's short name: its label without a leading "Overlast: "-style prefix."""
    label = q.label_in(fmt.lang)
    name = label.split(": ", 1)[1] if ": " in label else label
    return esc(name[:1].upper() + name[1:] if capital else name)


def _question_block(table: PublishedTable, q: QuestionInfo, fmt: _Fmt) -> list[str]:
    lines = [f"<b>{esc(q.label_in(fmt.lang))}</b>"]
    if q.label:
        lines.append(f"<i>{esc(q.text_in(fmt.lang))}</i>")
    head = headline_measure(q)
    measures = measure_names(q)
    first = table.cell("current", TOTAL, q.id, head or measures[0]) if measures else None
    if first is None or not first.shown:
        lines.append(fmt.hidden(first.suppressed if first is not None else None))
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
    lines.extend(_reference_lines(table, q, fmt))
    return lines


def _own_value(table: PublishedTable, q: QuestionInfo, figure: Figure) -> float | None:
    """The area's own figure for a reference measure (a sum of shown shares for share:a+b)."""
    if figure.measure in ("mean", "share:agree"):
        c = table.cell("current", TOTAL, q.id, figure.measure)
        return c.value if c is not None and c.shown else None
    total = 0.0
    for option in figure.options:
        c = table.cell("current", TOTAL, q.id, "share:" + option)
        if c is None or not c.shown or c.value is None:
            return None
        total += c.value
    return total


def _reference_lines(table: PublishedTable, q: QuestionInfo, fmt: _Fmt) -> list[str]:
    """The city's and the country's figure beside the area's own, where the file gives them."""
    refs = table.references
    if refs is None:
        return []
    lines = []
    for figure in refs.for_question(q.id, q.item):
        parts = []
        own = _own_value(table, q, figure)
        if own is not None:
            parts.append(f"{fmt.t('reference_here')} {_value(fmt, figure.measure, own)}")
        if figure.city is not None:
            city = esc(refs.city_name) if refs.city_name else fmt.t("reference_city")
            parts.append(f"{city} {_value(fmt, figure.measure, figure.city)}")
        if figure.country is not None:
            country = fmt.t("reference_country")
            parts.append(f"{country} {_value(fmt, figure.measure, figure.country)}")
        what = ""
        if figure.options:
            what = " + ".join(esc(q.option_label(o, fmt.lang)) for o in figure.options) + ": "
        lines.append(f"{fmt.t('reference', year=refs.year)} {what}" + " · ".join(parts))
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


def _hood_problems(table: PublishedTable, code: str, fmt: _Fmt) -> str | None:
    """A neighbourhood's most frequent problems (share 'vaak'), where its cells are shown."""
    found = []
    for q in table.questions:
        if not is_problem(q):
            continue
        c = table.cell("current", code, q.id, "share:" + OFTEN)
        if c is not None and c.shown and c.value is not None:
            found.append((c.value, q))
    if not found:
        return None
    found.sort(key=lambda pair: -pair[0])
    items = " · ".join(
        f"{_problem_name(q, fmt)} {fmt.percent(value)}"
        for value, q in found[:TOP_PROBLEMS_PER_HOOD]
    )
    return fmt.t("problems_hood", items=Safe(items))


def _neighbourhood_block(table: PublishedTable, fmt: _Fmt) -> list[str]:
    lines = [f"<b>{fmt.t('per_neighbourhood')}</b>"]
    grades = [q for q in table.questions if q.type == "grade"]
    for code, _name in table.neighbourhoods:
        name = neighbourhood_name(table, code, fmt)
        resp = table.cell("current", code, "respondents", "started")
        if resp is None or not resp.shown:
            lines.append(f"{name}: {fmt.hidden(resp.suppressed if resp is not None else None)}")
            continue
        parts: list[str] = [fmt.t("respondents", n=fmt.count(resp.n or 0))]
        for q in grades:
            c = table.cell("current", code, q.id, "mean")
            label = _label(q, fmt)
            if c is None or not c.shown or c.value is None:
                parts.append(f"{label} {fmt.hidden(c.suppressed if c is not None else None)}")
            else:
                parts.append(f"{label} {fmt.number(c.value)} ({fmt.n(c)})")
        lines.append(f"{name}: " + " · ".join(parts))
        problems = _hood_problems(table, code, fmt)
        if problems:
            lines.append(f"   {problems}")
    return lines


def _change_marker(table: PublishedTable, q: QuestionInfo, measure: str, fmt: _Fmt) -> str:
    """A short note of a change beyond chance since the previous digest, else ''."""
    c = table.cell("change_previous_digest", TOTAL, q.id, measure)
    if c is None or not c.shown or c.value is None or not c.beyond_chance:
        return ""
    return f"({fmt.t('change_short', diff=fmt.signed(c.value, measure != 'mean'))})"


def _problem_block(table: PublishedTable, fmt: _Fmt) -> list[str]:
    """All nuisance problems of the area, most frequent ('vaak') first."""
    problems = [q for q in table.questions if is_problem(q)]
    if not problems:
        return []
    lines = [f"<b>{fmt.t('problems')}</b>", f"<i>{fmt.t('problems_note')}</i>"]
    shown: list[tuple[float, QuestionInfo, Cell]] = []
    hidden: list[tuple[QuestionInfo, Cell | None]] = []
    for q in problems:
        c = table.cell("current", TOTAL, q.id, "share:" + OFTEN)
        if c is None or not c.shown or c.value is None:
            hidden.append((q, c))
        else:
            shown.append((c.value, q, c))
    shown.sort(key=lambda item: -item[0])
    for rank, (value, q, c) in enumerate(shown, start=1):
        sometimes = table.cell("current", TOTAL, q.id, "share:" + SOMETIMES)
        line = fmt.t(
            "problem_line",
            rank=rank,
            label=Safe(_problem_name(q, fmt, capital=True)),
            often=fmt.percent(value),
            sometimes=fmt.percent(sometimes.value or 0.0)
            if sometimes is not None and sometimes.shown
            else "–",
            n=fmt.n(c),
        )
        change = _change_marker(table, q, "share:" + OFTEN, fmt)
        lines.append(line + (f" {change}" if change else ""))
        lines.extend(f"   {ref}" for ref in _reference_lines(table, q, fmt))
    for q, hole in hidden:
        reason = fmt.hidden(hole.suppressed if hole is not None else None)
        lines.append(f"{_problem_name(q, fmt, capital=True)}: {reason}")
    return lines


def _biggest_change(table: PublishedTable, fmt: _Fmt) -> str:
    """The change least likely to be chance (largest difference over its interval)."""
    best: tuple[float, QuestionInfo, str, Cell] | None = None
    compared = False
    for q in table.questions:
        head = headline_measure(q)
        if head is None:
            continue
        for scope in ("change_previous_digest", "change_previous_round"):
            c = table.cell(scope, TOTAL, q.id, head)
            if c is None or not c.shown or c.value is None:
                continue
            compared = True
            if not c.beyond_chance or c.ci_low is None or c.ci_high is None:
                continue
            strength = abs(c.value) / max(1e-9, (c.ci_high - c.ci_low) / 2)
            if best is None or strength > best[0]:
                best = (strength, q, scope, c)
    if best is None:
        return fmt.t("summary_no_change") if compared else fmt.t("summary_first")
    _, q, scope, c = best
    if scope == "change_previous_digest":
        since = fmt.t("since_digest")
    else:
        since = fmt.t("since_round", label=table.earlier_round_labels[-1])
    if is_problem(q):
        label = Safe(f"{_problem_name(q, fmt)} ({fmt.t('often')})")
    else:
        label = Safe(_label(q, fmt))
    diff = fmt.signed(c.value or 0.0, headline_measure(q) != "mean")
    return fmt.t("summary_change", label=label, diff=diff, since=since)


def _lowest_grade(table: PublishedTable, fmt: _Fmt) -> str | None:
    """The lowest grade of a neighbourhood where shown, else of the area."""
    grades = [q for q in table.questions if q.type == "grade"]
    low: tuple[float, QuestionInfo, str, Cell] | None = None
    for scope_codes in (
        [code for code, _ in table.neighbourhoods if code != UNKNOWN],
        [TOTAL],
    ):
        for q in grades:
            for code in scope_codes:
                c = table.cell("current", code, q.id, "mean")
                if c is None or not c.shown or c.value is None:
                    continue
                if low is None or c.value < low[0]:
                    low = (c.value, q, code, c)
        if low is not None:
            break
    if low is None:
        return None
    value, q, code, c = low
    if code == TOTAL:
        return fmt.t(
            "summary_lowest_area", label=Safe(_label(q, fmt)), value=fmt.number(value), n=fmt.n(c)
        )
    return fmt.t(
        "summary_lowest",
        label=Safe(_label(q, fmt)),
        place=Safe(neighbourhood_name(table, code, fmt)),
        value=fmt.number(value),
        n=fmt.n(c),
    )


def _top_problem(table: PublishedTable, fmt: _Fmt) -> str | None:
    """The problem most often said to happen often (in a list question: the most ticked);
    figures on enough answers not to be indicative come first."""
    top: tuple[tuple[bool, float], str, Cell, str] | None = None
    for q in table.questions:
        candidates: list[tuple[str, str, str]] = []  # (measure, name, text key)
        if is_problem(q):
            candidates.append(("share:" + OFTEN, _problem_name(q, fmt), "summary_problem"))
        elif q.type == "multi":
            for measure in measure_names(q):
                option = measure.removeprefix("share:")
                if option not in NONE_OPTIONS:
                    name = esc(q.option_label(option, fmt.lang))
                    candidates.append((measure, name, "summary_problem_list"))
        for measure, name, key in candidates:
            c = table.cell("current", TOTAL, q.id, measure)
            if c is None or not c.shown or c.value is None:
                continue
            rank = (not c.indicative, c.value)
            if top is None or rank > top[0]:
                top = (rank, name, c, key)
    if top is None:
        return None
    _, name, c, key = top
    return fmt.t(key, label=Safe(name), value=fmt.percent(c.value or 0.0), n=fmt.n(c))


def _summary(table: PublishedTable, fmt: _Fmt) -> list[str]:
    """What stands out, in three lines at the top."""
    lines = [f"<b>{fmt.t('summary')}</b>", "• " + _biggest_change(table, fmt)]
    for line in (_lowest_grade(table, fmt), _top_problem(table, fmt)):
        if line is not None:
            lines.append("• " + line)
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
    if table.themes:
        lines.append(f"<i>{fmt.t('themes_note')}</i>")
        for group in table.themes:
            if group.neighbourhood == OTHER_HOODS:
                name = fmt.t("other_hoods")
            else:
                name = Safe(neighbourhood_name(table, group.neighbourhood, fmt))
            counts = " · ".join(f"{fmt.theme(t)} {fmt.count(n)}" for t, n in group.counts)
            lines.append(f"<b>{name}</b>: {counts}")
            for theme, quotes in group.quotes.items():
                said = " ".join(f"«{esc(text)}» ({esc(lang)})" for text, lang in quotes)
                lines.append(f"   {fmt.theme(theme)}: {said}")
    elif table.quotes:
        lines.append(fmt.t("quotes_note"))
        for text, lang in table.quotes:
            lines.append(f"«{esc(text)}» ({esc(lang)})")
    return lines


def is_below_threshold(table: PublishedTable) -> bool:
    """Whether the digest can only say "too few responses" (no figure, chart or CSV)."""
    total = table.cell("current", TOTAL, "respondents", "started")
    return total is None or not total.shown


def blocks(
    table: PublishedTable, lang: str = "nl", catalogue: Catalogue | None = None
) -> list[str]:
    """The digest as paragraphs (Telegram HTML), before splitting into messages."""
    fmt = _Fmt(lang, catalogue or default_catalogue())
    total = table.cell("current", TOTAL, "respondents", "started")
    completed = table.cell("current", TOTAL, "respondents", "completed")
    head = [
        f"<b>{fmt.t('title', area=table.area_name)}</b>",
        fmt.t("round", round=table.round_name, period=table.period)
        if table.period
        else fmt.t("round_only", round=table.round_name),
    ]
    if table.as_of:
        head.append(fmt.t("as_of", as_of=table.as_of))
    if total is None or not total.shown or completed is None:
        # Below the threshold: this and nothing else (no chart, no CSV either).
        head.append(fmt.t("too_few_area", min_n=table.min_n))
        return ["\n".join(head)]
    out = ["\n".join(head), "\n".join(_summary(table, fmt))]
    counts: list[str] = [
        fmt.t(
            "responses_total",
            started=fmt.count(total.n or 0),
            completed=fmt.count(int(completed.value or 0)),
        )
    ]
    if table.period_started is not None:
        counts.append(
            fmt.t(
                "responses_period",
                started=fmt.count(table.period_started),
                completed=fmt.count(table.period_completed or 0),
            )
        )
    elif table.period_few:
        counts.append(fmt.t("responses_period_few", min_n=table.min_n))
    counts.append(f"<i>{fmt.t('not_random')}</i>")
    counts.append(f"<i>{fmt.t('indicative_note', n=table.indicative_below)}</i>")
    out.append("\n".join(counts))
    for q in table.questions:
        if q.type != "text" and not is_problem(q):
            out.append("\n".join(_question_block(table, q, fmt)))
    problems = _problem_block(table, fmt)
    if problems:
        out.append("\n".join(problems))
    out.append("\n".join(_neighbourhood_block(table, fmt)))
    out.append("\n".join(_comment_block(table, fmt)))
    refs = table.references
    if refs is not None:
        source = fmt.t("reference_source", source=refs.source, year=refs.year)
        out.append(f"<i>{source}</i>")
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


def render_no_news(
    *,
    area_name: str,
    round_name: str,
    as_of: str,
    min_n: int,
    lang: str = "nl",
    catalogue: Catalogue | None = None,
) -> list[str]:
    """A scheduled digest when the area has no new release since the group's last digest."""
    fmt = _Fmt(lang, catalogue or default_catalogue())
    lines = [
        f"<b>{fmt.t('title', area=area_name)}</b>",
        fmt.t("round_only", round=round_name),
        fmt.t("no_news", as_of=as_of, min_n=min_n),
    ]
    return ["\n".join(lines)]


def render_text(
    table: PublishedTable,
    lang: str = "nl",
    *,
    limit: int = TELEGRAM_LIMIT,
    catalogue: Catalogue | None = None,
) -> list[str]:
    """The digest as Telegram messages (parse_mode HTML), each at most `limit` characters."""
    return pack(blocks(table, lang, catalogue), limit)
