"""The published table: statistics per cell with primary, secondary and cross-digest suppression."""

from __future__ import annotations

from collections.abc import Mapping

from bot.settings import MIN_CELL_SIZE, MIN_CELL_SIZE_FLOOR
from digests.model import (
    OTHER_HOODS,
    QUOTES_SHOWN,
    TOTAL,
    UNKNOWN,
    Cell,
    CommentSummary,
    DigestInput,
    PublishedTable,
    QuestionCounts,
    QuestionInfo,
    QuoteRef,
    Sample,
    ThemeGroup,
)
from digests.scrub import scrub
from digests.stats import Change, Moments, mean_ci, two_proportions, welch, wilson
from digests.themes import THEME_IDS

# The settings' min_cell_size rule (bot/settings.py is its one home).
MIN_N_FLOOR = MIN_CELL_SIZE_FLOOR
DEFAULT_MIN_N = MIN_CELL_SIZE
DEFAULT_INDICATIVE_BELOW = 50
QUOTE_MAX_CHARS = 280
# Comments by theme: quotes for a group's most talked-about themes, shorter than lone quotes.
THEMES_QUOTED = 2
THEME_QUOTE_CHARS = 200
OTHER_LANGUAGE = "other"
RESPONDENTS = "respondents"


def check_min_n(min_n: int) -> int:
    """Return min_n, or raise ValueError when it is below the floor (MIN_N_FLOOR)."""
    if min_n < MIN_N_FLOOR:
        raise ValueError(f"min_n must be at least {MIN_N_FLOOR}, got {min_n}")
    return min_n


def _primary(n: int, last_n: int | None, min_n: int) -> str | None:
    if n < min_n:
        return "min_n"
    # Since the last digest that showed this cell, the difference of the two published figures
    # is the aggregate of the new responses: it must itself cover min_n of them.
    if last_n is not None and n != last_n and n - last_n < min_n:
        return "few_new"
    return None


def suppress_column(
    ns: Mapping[str, int], min_n: int, last: Mapping[str, int] | None = None
) -> dict[str, str | None]:
    """Suppression reasons for one column: neighbourhood cells plus TOTAL, given their n.

    Primary: n < min_n, or too few new responses since the cell was last published. Secondary:
    while the total is shown, the hidden cells (total minus the visible ones) must be at least
    two, hold at least min_n responses together, and have grown by 0 or at least min_n since
    the last digest; otherwise the smallest visible cell is hidden as well.
    """
    check_min_n(min_n)
    last = last or {}
    reasons = {key: _primary(n, last.get(key), min_n) for key, n in ns.items()}
    if TOTAL not in ns or reasons[TOTAL] is not None:
        return reasons
    parts = [key for key in ns if key != TOTAL]
    while True:
        hidden = [k for k in parts if reasons[k] is not None and ns[k] > 0]
        if not hidden:
            break
        together = sum(ns[k] for k in hidden)
        grown = together - sum(last.get(k, 0) for k in hidden)
        if len(hidden) >= 2 and together >= min_n and (grown == 0 or grown >= min_n):
            break
        visible = [k for k in parts if reasons[k] is None and ns[k] > 0]
        if not visible:
            reasons[TOTAL] = "secondary"
            break
        reasons[min(visible, key=lambda k: (ns[k], k))] = "secondary"
    return reasons


def question_n(q: QuestionInfo, qc: QuestionCounts | None) -> int:
    """The n a question's cell is judged on: graded answers for grades, else who answered."""
    if qc is None:
        return 0
    if q.type == "grade":
        return moments(qc).n
    return qc.n


def agree_options(q: QuestionInfo) -> list[str]:
    """Options of an agree5 item that count as (helemaal) mee eens: the first two of the scale."""
    return q.option_ids[:2]


def yes_option(q: QuestionInfo) -> str:
    """The option that means "yes" in a yesno question."""
    for oid in q.option_ids:
        if oid.lower() in ("ja", "yes"):
            return oid
    return q.option_ids[0] if q.options else "ja"


# The Veiligheidsmonitor's frequency scale of a nuisance problem ("komt vaak / soms / (bijna)
# nooit voor"): a single question with these options is a problem in the neighbourhood.
PROBLEM_SCALE = frozenset({"vaak", "soms", "nooit"})
OFTEN = "vaak"


def is_problem(q: QuestionInfo) -> bool:
    """A nuisance problem rated on the frequency scale vaak / soms / (bijna) nooit."""
    return q.type == "single" and PROBLEM_SCALE.issubset(q.option_ids)


def headline_measure(q: QuestionInfo) -> str | None:
    """The one measure a question is summed up with in the text, if it has one."""
    if q.type == "grade":
        return "mean"
    if q.type == "agree5":
        return "share:agree"
    if q.type == "yesno":
        return "share:" + yes_option(q)
    if is_problem(q):
        return "share:" + OFTEN
    return None


def _option_keys(q: QuestionInfo, qc: QuestionCounts | None) -> list[str]:
    keys = q.option_ids
    extra = sorted(k for k in (qc.counts if qc else {}) if k not in keys)
    return keys + extra


def measure_names(q: QuestionInfo, qc: QuestionCounts | None = None) -> list[str]:
    """Every measure the table holds for a question (a list the caller must not change)."""
    if q.type == "grade":
        return ["mean"]
    known = q.memo.get("measures")
    if known is None:
        known = q.memo["measures"] = (set(q.option_ids), _names(q, None))
    options, names = known
    if qc is not None and not options.issuperset(qc.counts):
        return _names(q, qc)  # values outside the survey's options: listed after them
    return names  # type: ignore[no-any-return]


def _names(q: QuestionInfo, qc: QuestionCounts | None) -> list[str]:
    names = ["share:" + k for k in _option_keys(q, qc)]
    if q.type == "agree5":
        names.insert(0, "share:agree")
    return names


def _k(q: QuestionInfo, qc: QuestionCounts, measure: str) -> int:
    if measure == "share:agree":
        return sum(qc.counts.get(o, 0) for o in agree_options(q))
    return qc.counts.get(measure.removeprefix("share:"), 0)


def moments(qc: QuestionCounts) -> Moments:
    """Moments.from_counts of a grade question's counts, computed once per QuestionCounts."""
    found = qc.memo.get("moments")
    if found is None:
        found = qc.memo["moments"] = Moments.from_counts(qc.counts)
    return found  # type: ignore[no-any-return]


def _estimates(
    q: QuestionInfo, qc: QuestionCounts | None, names: list[str] | None = None
) -> dict[str, tuple[int, float, float, float]]:
    """measure -> (n, value, ci_low, ci_high) for one group's answers to one question."""
    if qc is None:
        return {}
    names = measure_names(q, qc) if names is None else names
    key = ("estimates", q.type, tuple(names))
    found = qc.memo.get(key)
    if found is not None:
        return found  # type: ignore[no-any-return]
    out: dict[str, tuple[int, float, float, float]] = {}
    if q.type == "grade":
        m = moments(qc)
        if m.n:
            e = mean_ci(m)
            out["mean"] = (e.n, e.value, e.low, e.high)
    elif qc.n > 0:
        n = qc.n
        counts = qc.counts
        for measure in names:
            if measure == "share:agree":
                k = sum(counts.get(o, 0) for o in agree_options(q))
            else:
                k = counts.get(measure[6:], 0)  # "share:" + option
            value, low, high = wilson(k, n)
            out[measure] = (n, value, low, high)
    qc.memo[key] = out
    return out


def _change(
    q: QuestionInfo, measure: str, a: QuestionCounts, b: QuestionCounts
) -> tuple[Change, int] | None:
    """Test of sample a against sample b for one measure; (change, n of b)."""
    if q.type == "grade":
        ma, mb = moments(a), moments(b)
        if ma.n < 2 or mb.n < 2:
            return None
        return welch(ma, mb), mb.n
    if a.n <= 0 or b.n <= 0:
        return None
    return two_proportions(_k(q, a, measure), a.n, _k(q, b, measure), b.n), b.n


class _Builder:
    """Collects the cells of one published table."""

    def __init__(
        self, data: DigestInput, min_n: int, indicative_below: int, figures: bool = True
    ) -> None:
        self.data = data
        self.min_n = min_n
        self.indicative_below = indicative_below
        self.figures = figures
        self.cells: list[Cell] = []

    def add_group(
        self,
        scope: str,
        nbh: str,
        q: QuestionInfo,
        qc: QuestionCounts | None,
        reason: str | None,
    ) -> None:
        names = measure_names(q, qc)
        cells = self.cells
        if reason is not None:
            # Hidden: no figures to compute.
            cells.extend(Cell(scope, nbh, q.id, m, suppressed=reason) for m in names)
            return
        if not self.figures:
            # Only which cells are shown, on how many (a release's cut keeps no figures).
            n = question_n(q, qc)
            cells.extend(Cell(scope, nbh, q.id, m, n=n) for m in names)
            return
        estimates = _estimates(q, qc, names)
        below = self.indicative_below
        for measure in names:
            est = estimates.get(measure)
            if est is None:
                cells.append(Cell(scope, nbh, q.id, measure, suppressed="min_n"))
                continue
            n, value, low, high = est
            cells.append(Cell(scope, nbh, q.id, measure, n, value, low, high, n < below))


def _area_reason(n: int, min_n: int) -> str | None:
    return "min_n" if n < min_n else None


def publish(
    data: DigestInput,
    *,
    min_n: int = DEFAULT_MIN_N,
    indicative_below: int = DEFAULT_INDICATIVE_BELOW,
    last_published: Mapping[str, int] | None = None,
    max_quotes: int = 3,
    hidden: Mapping[str, str] | None = None,
    all_areas_hidden: Mapping[str, str] | None = None,
    previous_hidden: Mapping[str, str] | None = None,
    figures: bool = True,
) -> PublishedTable:
    """Compute the published table of one digest: every figure that may be shown, and the holes.

    `last_published` maps `neighbourhood|question` to the n of the last figure shown of that cell
    in this area's series (a release's `history`); with it, no two outputs can be subtracted to
    reveal fewer than min_n new responses.

    A release's table is computed once, when it is cut; every output rendered from it later
    passes the release's `hidden` reasons (`neighbourhood|question` and `all_areas|question` ->
    reason), so text, chart, CSV and /results of one release always hide the same cells.
    `all_areas_hidden`: the all-areas series' own reasons (`all_areas|question`), used when a
    release is cut. `previous_hidden`: the reasons of the release the previous digest showed;
    its figures are repeated only where it showed them. `figures=False`: which cells are shown
    and their n only, no estimates or changes (what a release's cut needs).
    """
    check_min_n(min_n)
    last = dict(last_published or {})
    b = _Builder(data, min_n, indicative_below, figures)
    names = dict(data.neighbourhood_names)
    order = list(names)
    order += sorted(k for k in data.current.neighbourhoods if k not in names and k != UNKNOWN)
    if UNKNOWN in data.current.neighbourhoods:
        order.append(UNKNOWN)
    samples = {k: data.current.neighbourhoods.get(k, Sample()) for k in order}
    total = data.current.total()
    groups: dict[str, Sample] = {**samples, TOTAL: total}

    # Respondents: one column, judged on the number of responses started.
    started = {k: s.started for k, s in groups.items()}
    last_resp = {k: last[f"{k}|{RESPONDENTS}"] for k in groups if f"{k}|{RESPONDENTS}" in last}
    if hidden is not None:
        reasons = {k: hidden.get(f"{k}|{RESPONDENTS}") for k in groups}
    else:
        reasons = suppress_column(started, min_n, last_resp)
    for key, s in groups.items():
        why = reasons[key]
        for measure, value in (("started", s.started), ("completed", s.completed)):
            if why:
                b.cells.append(Cell("current", key, RESPONDENTS, measure, suppressed=why))
            else:
                b.cells.append(Cell("current", key, RESPONDENTS, measure, s.started, value))

    answerable = [q for q in data.questions if q.type != "text"]
    total_shown: dict[str, bool] = {}
    for q in answerable:
        ns = {k: question_n(q, g.questions.get(q.id)) for k, g in groups.items()}
        if hidden is not None:
            reasons = {k: hidden.get(f"{k}|{q.id}") for k in groups}
        else:
            last_q = {k: last[f"{k}|{q.id}"] for k in groups if f"{k}|{q.id}" in last}
            reasons = suppress_column(ns, min_n, last_q)
            # The respondents column and this one must not disagree about the area as a whole.
            if started[TOTAL] < min_n:
                reasons = dict.fromkeys(reasons, "min_n")
        for key, g in groups.items():
            b.add_group("current", key, q, g.questions.get(q.id), reasons[key])
        total_shown[q.id] = reasons[TOTAL] is None

    _area_scopes(
        b,
        data,
        answerable,
        total,
        total_shown,
        last,
        fixed=hidden,
        all_areas_hidden=all_areas_hidden,
        previous_hidden=previous_hidden,
    )

    table = PublishedTable(
        area_code=data.area_code,
        area_name=data.area_name,
        round_name=data.round_name,
        period=data.period,
        questions=list(data.questions),
        neighbourhoods=[(k, names.get(k, k if k != UNKNOWN else "")) for k in order],
        cells=b.cells,
        min_n=min_n,
        indicative_below=indicative_below,
        earlier_round_labels=[label for label, _ in data.earlier_rounds],
        as_of=data.as_of,
        references=data.references,
    )
    if data.previous is not None:
        new_started = total.started - data.previous.started
        if 0 <= new_started < min_n:
            table.period_few = True
        elif new_started >= min_n:
            table.period_started = new_started
            table.period_completed = max(0, total.completed - data.previous.completed)
    area = table.cell("current", TOTAL, RESPONDENTS, "started")
    if area is not None and area.shown:
        _add_comments(table, data, min_n, max_quotes)
    return table


def _area_scopes(
    b: _Builder,
    data: DigestInput,
    questions: list[QuestionInfo],
    total: Sample,
    total_shown: dict[str, bool],
    last: Mapping[str, int],
    *,
    fixed: Mapping[str, str] | None = None,
    all_areas_hidden: Mapping[str, str] | None = None,
    previous_hidden: Mapping[str, str] | None = None,
) -> None:
    """Area-level figures: previous digest, earlier rounds, all areas, and the changes."""
    min_n = b.min_n
    prev = data.previous
    new = total.minus(prev) if prev is not None else None
    for q in questions:
        cur = total.questions.get(q.id)
        if prev is not None:
            pq = prev.questions.get(q.id)
            pn = question_n(q, pq)
            if previous_hidden is not None:
                # The release the previous digest showed: its figure, where it showed it.
                why = previous_hidden.get(f"{TOTAL}|{q.id}") or _area_reason(pn, min_n)
            else:
                # Only a figure the previous digest could have shown may be repeated.
                was = last.get(f"{TOTAL}|{q.id}")
                why = _area_reason(pn, min_n) or (
                    "few_new" if was is not None and was != pn else None
                )
            b.add_group("previous_digest", TOTAL, q, pq, why)
            nq = new.questions.get(q.id) if new is not None else None
            new_n = question_n(q, nq)
            ok = total_shown[q.id] and why is None and nq is not None and new_n >= min_n
            _add_changes(b, "change_previous_digest", q, cur, nq, pq, ok, scale_by=cur)
        for label, sample in data.earlier_rounds:
            rq = sample.questions.get(q.id)
            b.add_group(f"round:{label}", TOTAL, q, rq, _area_reason(question_n(q, rq), min_n))
        if data.earlier_rounds:
            rq = data.earlier_rounds[-1][1].questions.get(q.id)
            ok = total_shown[q.id] and question_n(q, rq) >= min_n
            _add_changes(b, "change_previous_round", q, cur, cur, rq, ok)
        if data.all_areas is not None:
            aq = data.all_areas.questions.get(q.id)
            an = question_n(q, aq)
            key = f"all_areas|{q.id}"
            if fixed is not None:
                why = fixed.get(key)
            else:
                # All areas minus this one is the other areas: a large enough group too.
                others = an - question_n(q, cur)
                own = (
                    all_areas_hidden.get(key)
                    if all_areas_hidden is not None
                    else _area_reason(an, min_n)
                )
                why = own or ("secondary" if 0 < others < min_n else None)
            b.add_group("all_areas", TOTAL, q, aq, why)


def _add_changes(
    b: _Builder,
    scope: str,
    q: QuestionInfo,
    cur: QuestionCounts | None,
    a: QuestionCounts | None,
    ref: QuestionCounts | None,
    ok: bool,
    scale_by: QuestionCounts | None = None,
) -> None:
    """Change rows: cur minus ref, tested as sample a against ref.

    For the previous digest, a is the new responses only (disjoint from ref) and the change of the
    cumulative figure is (n_new / n_now) times the difference between new and earlier responses.
    """
    if not b.figures:
        return
    for measure in measure_names(q, cur):
        result = _change(q, measure, a, ref) if ok and a is not None and ref is not None else None
        if result is None:
            b.cells.append(Cell(scope, TOTAL, q.id, measure, suppressed="min_n"))
            continue
        change, ref_n = result
        factor = 1.0
        if scale_by is not None and a is not None:
            factor = question_n(q, a) / max(1, question_n(q, scale_by))
        b.cells.append(
            Cell(
                scope,
                TOTAL,
                q.id,
                measure,
                n=ref_n,
                value=factor * change.diff,
                ci_low=factor * change.low,
                ci_high=factor * change.high,
                indicative=min(ref_n, question_n(q, a)) < b.indicative_below,
                beyond_chance=change.beyond_chance,
            )
        )


def _add_comments(table: PublishedTable, data: DigestInput, min_n: int, max_quotes: int) -> None:
    """Comment counts per language (small languages pooled) and the comments by theme, or, without
    a comment summary, a few scrubbed quotes."""
    summary = data.comment_summary
    languages = summary.languages if summary is not None else data.comment_languages
    langs: dict[str, int] = {}
    for lang, count in sorted(languages.items(), key=lambda kv: (-kv[1], kv[0])):
        if count <= 0:
            continue
        key = lang if count >= min_n else OTHER_LANGUAGE
        langs[key] = langs.get(key, 0) + count
    table.comment_languages = langs
    table.comment_total = sum(langs.values())
    if summary is not None:
        table.themes = _theme_groups(table, summary, data.quote_texts, min_n)
        return
    for comment in data.comments:
        if len(table.quotes) >= max_quotes:
            break
        text = _quote(comment.text)
        if text is not None:
            table.quotes.append((text, comment.language))


def _quote(raw: str, limit: int = QUOTE_MAX_CHARS) -> str | None:
    """A comment as it may be quoted: scrubbed, on one line, at most `limit` characters."""
    text = " ".join(scrub(raw).split())
    if len(text) < 3:
        return None
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _theme_order(theme: str) -> int:
    return THEME_IDS.index(theme) if theme in THEME_IDS else len(THEME_IDS)


def _theme_groups(
    table: PublishedTable,
    summary: CommentSummary,
    texts: Mapping[int, tuple[str, str]],
    min_n: int,
) -> list[ThemeGroup]:
    """Comments by theme for each neighbourhood whose respondents are shown; the rest of the
    area (small and unknown neighbourhoods) together, only when it holds min_n comments."""
    shown = {
        c.neighbourhood
        for c in table.cells
        if c.scope == "current" and c.question == RESPONDENTS and c.shown
    }
    shown.discard(TOTAL)
    shown.discard(UNKNOWN)
    order = [code for code, _ in table.neighbourhoods if code in shown]
    groups: dict[str, tuple[dict[str, int], dict[str, list[QuoteRef]]]] = {}
    totals: dict[str, int] = {}
    for nbh, counts in summary.themes.items():
        key = nbh if nbh in shown else OTHER_HOODS
        totals[key] = totals.get(key, 0) + summary.hoods.get(nbh, 0)
        merged, refs_by_theme = groups.setdefault(key, ({}, {}))
        for theme, n in counts.items():
            merged[theme] = merged.get(theme, 0) + n
        for theme, refs in summary.quotes.get(nbh, {}).items():
            refs_by_theme.setdefault(theme, []).extend(refs)
    out = []
    for key in [*order, OTHER_HOODS]:
        if key not in groups:
            continue
        counts, refs_by_theme = groups[key]
        total = totals.get(key, 0)
        if key == OTHER_HOODS and total < min_n:
            continue  # a small neighbourhood's few comments: only in the area's total
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], _theme_order(kv[0])))
        quotes: dict[str, list[tuple[str, str]]] = {}
        used: set[int] = set()  # a comment about two themes is quoted once
        for theme, _n in ranked[:THEMES_QUOTED]:
            chosen = sorted(refs_by_theme.get(theme, []), key=lambda r: r[1], reverse=True)
            for answer_id, _at in chosen:
                if answer_id in used:
                    continue
                used.add(answer_id)
                found = texts.get(answer_id)
                text = _quote(found[0], THEME_QUOTE_CHARS) if found is not None else None
                if found is not None and text is not None:
                    quotes.setdefault(theme, []).append((text, found[1]))
                if len(quotes.get(theme, [])) >= QUOTES_SHOWN:
                    break
        out.append(ThemeGroup(key, total, ranked, quotes))
    return out
