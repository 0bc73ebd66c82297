"""GROUP BY queries that fill a digest's input: respondents, answer counts, comments.

One pass over a round's answers serves every area (and all areas together) at several moments
(one conditional SUM per moment: this digest's end, the previous digest's): the tick computes all
alliances' digests from the same result. Values are grouped by their JSON text (grades, option
ids); multi questions' lists are exploded in SQL (json_each on SQLite,
json_array_elements_text on PostgreSQL), reaching only their rows through the
(response_id, question_id) index.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, and_, case, cast, func, null, or_, select, true
from sqlalchemy.orm import Session

from digests.model import UNKNOWN, AreaCounts, QuestionCounts, Sample
from storage import tallies
from storage.models import Answer, AnswerTally, Response, ResponseTally, Round

UNKNOWN_LANGUAGE = "unknown"


@dataclass
class RoundCounts:
    """One round's counts up to a moment, per area and neighbourhood."""

    round_id: int
    until: datetime | None
    areas: dict[str, AreaCounts] = field(default_factory=dict)
    _all: Sample | None = field(default=None, repr=False)

    def area(self, area_code: str) -> AreaCounts:
        """One area's counts (empty when nobody there answered)."""
        return self.areas.get(area_code) or AreaCounts()

    def all_areas(self) -> Sample:
        """Every area together (computed once)."""
        if self._all is None:
            self._all = Sample.merge(counts.total() for counts in self.areas.values())
        return self._all


def _decode(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # a plain string stored by something other than the JSON type


class _Counts:
    """Counts of one moment in a flat form: (area, nbh, event) and (area, nbh, question, key)."""

    def __init__(self) -> None:
        self.respondents: Counter[tuple[str, str | None, str]] = Counter()
        self.answers: Counter[tuple[str, str | None, str, str]] = Counter()

    def minus_days(self, other: _Counts) -> _Counts:
        """A new _Counts: self - other."""
        out = _Counts()
        out.respondents = self.respondents.copy()
        out.answers = self.answers.copy()
        out.respondents.subtract(other.respondents)
        out.answers.subtract(other.answers)
        return out

    def plus(self, other: _Counts) -> _Counts:
        """A new _Counts: self + other."""
        out = _Counts()
        out.respondents = self.respondents.copy()
        out.answers = self.answers.copy()
        for rkey, n in other.respondents.items():
            out.respondents[rkey] += n
        for akey, n in other.answers.items():
            out.answers[akey] += n
        return out


def _nbh(code: str | None) -> str | None:
    return code or None  # tallies keep "" for "no neighbourhood"


def _window(column: Any, lo: datetime | None, hi: datetime | None, extra: Any = None) -> Any:
    """SUM of rows with lo <= column <= hi (open ends when None)."""
    parts = [extra] if extra is not None else []
    if lo is not None:
        parts.append(column >= lo)
    if hi is not None:
        parts.append(column <= hi)
    return func.sum(case((and_(true(), *parts), 1), else_=0))


def _elements(session: Session) -> Any:
    """A table-valued function that explodes a JSON list into its elements (as text)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.json_array_elements_text(Answer.value).table_valued("value").alias("element")
    return func.json_each(Answer.value).table_valued("value").alias("element")


def _raw(
    session: Session,
    round_id: int,
    windows: Sequence[tuple[datetime | None, datetime | None]],
    *,
    area_codes: Collection[str] | None,
    multi: Collection[str],
    skip: Collection[str],
    neighbourhoods: bool = True,
    answers: bool = True,
) -> list[_Counts]:
    """Counts from the raw answers and responses, one per (from, until) window: GROUP BY passes.

    Without `neighbourhoods`, grouped per area only (neighbourhood None); without `answers`,
    respondents only.
    """
    out = [_Counts() for _ in windows]
    nbh_column: Any = Response.neighbourhood_code if neighbourhoods else null()
    by_nbh = [Response.neighbourhood_code] if neighbourhoods else []
    if not windows:
        return out
    connection = session.connection()
    multi_ids = list(multi)
    los = [lo for lo, _ in windows]
    his = [hi for _, hi in windows]
    lowest = None if None in los else min(lo for lo in los if lo is not None)
    highest = None if None in his else max(hi for hi in his if hi is not None)
    k = len(windows)
    for event, column in (
        (tallies.STARTED, Response.started_at),
        (tallies.COMPLETED, Response.completed_at),
    ):
        # One query per event, each on its (round_id, time) index when the windows start late.
        conditions: list[Any] = [Response.round_id == round_id, column.is_not(None)]
        if area_codes is not None:
            conditions.append(Response.area_code.in_(list(area_codes)))
        if lowest is not None:
            conditions.append(column >= lowest)
        if highest is not None:
            conditions.append(column <= highest)
        rows = connection.execute(
            select(
                Response.area_code,
                nbh_column,
                *[_window(column, lo, hi) for lo, hi in windows],
            )
            .where(*conditions)
            .group_by(Response.area_code, *by_nbh)
        ).all()
        for row in rows:
            area, nbh = row[0], _nbh(row[1])
            for i in range(k):
                out[i].respondents[(area, nbh, event)] += int(row[2 + i] or 0)

    if not answers:
        return out
    # From the answers' time index when the windows start late (not the round's responses).
    # (SQLite: "+ 0" keeps the planner off the round index; PostgreSQL estimates better without.)
    late = lowest is not None and session.get_bind().dialect.name == "sqlite"
    in_round = (Response.round_id + 0 if late else Response.round_id) == round_id
    conditions = [in_round]
    if area_codes is not None:
        conditions.append(Response.area_code.in_(list(area_codes)))
    answer_conditions = list(conditions)
    if lowest is not None:
        answer_conditions.append(Answer.answered_at >= lowest)
    if highest is not None:
        answer_conditions.append(Answer.answered_at <= highest)
    if skip:
        answer_conditions.append(Answer.question_id.not_in(list(skip)))
    # Multi answers group under NULL here (giving "answered"); their options come below.
    value_key: Any = cast(Answer.value, String)
    if multi_ids:
        value_key = case((Answer.question_id.in_(multi_ids), null()), else_=value_key)
    groups = (Response.area_code, nbh_column, Answer.question_id, value_key)
    sums = [_window(Answer.answered_at, lo, hi) for lo, hi in windows]
    answer_rows = connection.execute(
        select(*groups, *sums)
        .join(Response, Response.id == Answer.response_id)
        .where(*answer_conditions)
        .group_by(Response.area_code, *by_nbh, Answer.question_id, value_key)
    ).all()
    for row in answer_rows:
        area, nbh, qid, raw = row[0], _nbh(row[1]), row[2], row[3]
        value = None if raw is None else _decode(raw)
        key = tallies.ANSWERED if value is None else str(value)
        for i in range(k):
            out[i].answers[(area, nbh, qid, key)] += int(row[4 + i] or 0)
    if multi_ids:
        element = _elements(session)
        option_rows = connection.execute(
            select(Response.area_code, nbh_column, Answer.question_id, element.c.value, *sums)
            .select_from(Answer)
            .join(Response, Response.id == Answer.response_id)
            .join(element, true())
            .where(*answer_conditions, Answer.question_id.in_(multi_ids))
            .group_by(Response.area_code, *by_nbh, Answer.question_id, element.c.value)
        ).all()
        for row in option_rows:
            area, nbh, qid, option = row[0], _nbh(row[1]), row[2], row[3]
            for i in range(k):
                out[i].answers[(area, nbh, qid, str(option))] += int(row[4 + i] or 0)
    return out


def _remainder(
    session: Session,
    round_id: int,
    lo: datetime,
    hi: datetime,
    *,
    area_codes: Collection[str] | None,
    multi: Collection[str],
    skip: Collection[str],
    neighbourhoods: bool = True,
) -> _Counts:
    """_raw for one short window (the rest of a day): the same counts, read in two indexed steps.

    The window's answers by their time index, then their responses by primary key, grouped
    here: joining in SQL made PostgreSQL hash all of the round's responses for a few thousand
    answers. Respondents come from _raw's own queries (index range scans).
    """
    out = _raw(
        session,
        round_id,
        [(lo, hi)],
        area_codes=area_codes,
        multi=multi,
        skip=skip,
        neighbourhoods=neighbourhoods,
        answers=False,
    )[0]
    connection = session.connection()
    conditions: list[Any] = [Answer.answered_at >= lo, Answer.answered_at <= hi]
    if skip:
        conditions.append(Answer.question_id.not_in(list(skip)))
    grouped: Counter[tuple[int, str, str | None]] = Counter()
    grouped.update(
        connection.execute(
            select(Answer.response_id, Answer.question_id, cast(Answer.value, String)).where(
                *conditions
            )
        ).all()
    )
    ids = sorted({response_id for response_id, _, _ in grouped})
    where: dict[int, tuple[str, str | None]] = {}
    for start in range(0, len(ids), _ID_CHUNK):
        response_conditions: list[Any] = [
            Response.id.in_(ids[start : start + _ID_CHUNK]),
            Response.round_id == round_id,
        ]
        if area_codes is not None:
            response_conditions.append(Response.area_code.in_(list(area_codes)))
        for rid, area_code, hood in connection.execute(
            select(Response.id, Response.area_code, Response.neighbourhood_code).where(
                *response_conditions
            )
        ).all():
            where[rid] = (area_code, _nbh(hood) if neighbourhoods else None)
    multi_set = set(multi)
    answers = out.answers
    decoded: dict[str, Any] = {}  # a day's answers hold few distinct values
    for (response_id, qid, text), n in grouped.items():
        found = where.get(response_id)
        if found is None:
            continue  # another round or area
        area, nbh = found
        if text is None:
            value = None
        elif text in decoded:
            value = decoded[text]
        else:
            value = decoded[text] = _decode(text)
        if qid in multi_set:
            # As _raw: "answered" once, plus each element (json_each also yields a scalar).
            answers[(area, nbh, qid, tallies.ANSWERED)] += n
            elements = value if isinstance(value, list) else [] if value is None else [value]
            for option in elements:
                answers[(area, nbh, qid, str(option))] += n
        else:
            key = tallies.ANSWERED if value is None else str(value)
            answers[(area, nbh, qid, key)] += n
    return out


# Response ids per IN (...) list: well inside SQLite's and PostgreSQL's parameter limits.
_ID_CHUNK = 5_000


def _tallied(
    session: Session,
    round_id: int,
    days: Sequence[date | None],
    *,
    area_codes: Collection[str] | None,
    skip: Collection[str],
    neighbourhoods: bool = True,
) -> list[_Counts]:
    """Per entry: the counts as of the start of that UTC day (None: all), from the tallies.

    The total rows minus the day rows from that day on: one small GROUP BY per table (per area
    only, neighbourhood None, without `neighbourhoods`).
    """
    out = [_Counts() for _ in days]
    wanted = [d for d in days if d is not None]
    connection = session.connection()
    for model in (ResponseTally, AnswerTally):
        answers = model is AnswerTally
        by_nbh: list[Any] = [model.neighbourhood_code] if neighbourhoods else []
        keys: list[Any] = (
            [AnswerTally.question_id, AnswerTally.value_key] if answers else [ResponseTally.event]
        )
        conditions: list[Any] = [model.round_id == round_id]
        if area_codes is not None:
            conditions.append(model.area_code.in_(list(area_codes)))
        if answers and skip:
            conditions.append(AnswerTally.question_id.not_in(list(skip)))
        is_total = model.day == tallies.TOTAL_DAY
        if wanted:
            conditions.append(or_(is_total, model.day >= min(wanted)))
        else:
            conditions.append(is_total)
        sums = [
            func.sum(
                case((is_total, model.count), else_=0)
                if day is None
                else case((is_total, model.count), (model.day >= day, -model.count), else_=0)
            )
            for day in days
        ]
        columns = [model.area_code, by_nbh[0] if by_nbh else null(), *keys]
        rows = connection.execute(
            select(*columns, *sums).where(*conditions).group_by(model.area_code, *by_nbh, *keys)
        )
        width = len(columns)
        for row in rows:
            nbh = row[1] or None  # tallies keep "" for "no neighbourhood"
            key: Any = (row[0], nbh, row[2], row[3]) if answers else (row[0], nbh, row[2])
            for i, target in enumerate(out):
                n = row[width + i]
                if n:
                    (target.answers if answers else target.respondents)[key] += int(n)
    return out


def round_counts(
    session: Session,
    round_id: int,
    *,
    until: datetime | None = None,
    area_codes: Collection[str] | None = None,
    multi: Collection[str] = (),
    skip: Collection[str] = (),
) -> RoundCounts:
    """Respondents and answer counts of a round, answers given up to `until` (None: all).

    `multi`: question ids whose values are lists of option ids; `skip`: question ids not to
    count (free text: every value would be its own group).
    """
    return round_counts_at(
        session, round_id, [until], area_codes=area_codes, multi=multi, skip=skip
    )[until]


def round_counts_at(
    session: Session,
    round_id: int,
    moments: Sequence[datetime | None],
    *,
    area_codes: Collection[str] | None = None,
    multi: Collection[str] = (),
    skip: Collection[str] = (),
    neighbourhoods: bool = True,
) -> dict[datetime | None, RoundCounts]:
    """round_counts at several moments, from the tallies (exact at any moment).

    As of moment m on UTC day D: the total, minus the tallies of days >= D, plus the raw
    answers and responses from the start of D up to m (at most one day's worth, by index).
    Without `neighbourhoods`, each area's counts are grouped per area only (all under
    UNKNOWN): fewer rows where only area totals are used.
    """
    moments = list(dict.fromkeys(moments))
    days = [None if m is None else tallies.day_of(m) for m in moments]
    distinct = list(dict.fromkeys(days))
    tallied = dict(
        zip(
            distinct,
            _tallied(
                session,
                round_id,
                distinct,
                area_codes=area_codes,
                skip=skip,
                neighbourhoods=neighbourhoods,
            ),
            strict=True,
        )
    )
    finite = [(m, d) for m, d in zip(moments, days, strict=True) if m is not None and d is not None]
    # One pass per moment: together they would read every answer between the two.
    partial = {
        m: _remainder(
            session,
            round_id,
            tallies.day_start(d),
            m,
            area_codes=area_codes,
            multi=multi,
            skip=skip,
            neighbourhoods=neighbourhoods,
        )
        for m, d in finite
    }
    out = {}
    multi_set = set(multi)
    for moment, day in zip(moments, days, strict=True):
        counts = tallied[day]
        if moment is not None:
            counts = counts.plus(partial[moment])
        out[moment] = _assemble(round_id, moment, counts, multi_set)
    return out


def area_totals_at(
    session: Session,
    round_id: int,
    moments: Sequence[datetime | None],
    *,
    area_codes: Collection[str] | None = None,
    multi: Collection[str] = (),
    skip: Collection[str] = (),
) -> dict[datetime | None, dict[str, Sample]]:
    """Per moment, each area's total (`round_counts_at(...).area(a).total()`), grouped per area
    in SQL: for the previous digest and earlier rounds, where a digest uses area totals only."""
    found = round_counts_at(
        session,
        round_id,
        moments,
        area_codes=area_codes,
        multi=multi,
        skip=skip,
        neighbourhoods=False,
    )
    return {
        moment: {area: counts.total() for area, counts in result.areas.items()}
        for moment, result in found.items()
    }


def counts_with_totals(
    session: Session,
    round_id: int,
    moments: Sequence[datetime | None],
    totals_at: Sequence[datetime | None],
    *,
    multi: Collection[str] = (),
    skip: Collection[str] = (),
) -> tuple[dict[datetime | None, RoundCounts], dict[datetime | None, dict[str, Sample]]]:
    """round_counts_at(moments) and area_totals_at(totals_at) (all areas) in fewer reads.

    A total at moment t on day T before a moment's day B is that moment's tallies read
    (everything before B) summed per area, minus the day rows of [T, B), plus t's day
    remainder: the total rows are read once, not once per moment.
    """
    moments = list(dict.fromkeys(moments))
    days = [None if m is None else tallies.day_of(m) for m in moments]
    distinct = list(dict.fromkeys(days))
    tallied = dict(
        zip(
            distinct, _tallied(session, round_id, distinct, area_codes=None, skip=skip), strict=True
        )
    )
    multi_set = set(multi)
    counts: dict[datetime | None, RoundCounts] = {}
    for moment, day in zip(moments, days, strict=True):
        found = tallied[day]
        if moment is not None and day is not None:
            found = found.plus(
                _remainder(
                    session,
                    round_id,
                    tallies.day_start(day),
                    moment,
                    area_codes=None,
                    multi=multi,
                    skip=skip,
                )
            )
        counts[moment] = _assemble(round_id, moment, found, multi_set)
    totals: dict[datetime | None, dict[str, Sample]] = {}
    rest: list[datetime | None] = []
    for moment in dict.fromkeys(totals_at):
        start = None if moment is None else tallies.day_of(moment)
        later = [d for d in distinct if d is not None and start is not None and d >= start]
        if moment is None or start is None or not later:
            rest.append(moment)
            continue
        base = min(later)
        found = _per_area(tallied[base]).minus_days(
            _between(session, round_id, start, base, skip=skip)
        )
        found = found.plus(
            _remainder(
                session,
                round_id,
                tallies.day_start(start),
                moment,
                area_codes=None,
                multi=multi,
                skip=skip,
                neighbourhoods=False,
            )
        )
        assembled = _assemble(round_id, moment, found, multi_set)
        totals[moment] = {area: c.total() for area, c in assembled.areas.items()}
    if rest:
        totals.update(area_totals_at(session, round_id, rest, multi=multi, skip=skip))
    return counts, totals


def _per_area(counts: _Counts) -> _Counts:
    """The same counts per area only (neighbourhood None)."""
    out = _Counts()
    for (area, _, event), n in counts.respondents.items():
        out.respondents[(area, None, event)] += n
    for (area, _, qid, key), n in counts.answers.items():
        out.answers[(area, None, qid, key)] += n
    return out


def _between(
    session: Session, round_id: int, start: date, end: date, *, skip: Collection[str]
) -> _Counts:
    """The day rows of days start <= day < end, summed per area (neighbourhood None)."""
    out = _Counts()
    if start >= end:
        return out
    connection = session.connection()
    for model in (ResponseTally, AnswerTally):
        answers = model is AnswerTally
        keys: list[Any] = (
            [AnswerTally.question_id, AnswerTally.value_key] if answers else [ResponseTally.event]
        )
        conditions: list[Any] = [model.round_id == round_id, model.day >= start, model.day < end]
        if answers and skip:
            conditions.append(AnswerTally.question_id.not_in(list(skip)))
        rows = connection.execute(
            select(model.area_code, *keys, func.sum(model.count))
            .where(*conditions)
            .group_by(model.area_code, *keys)
        ).all()
        for row in rows:
            if not row[-1]:
                continue
            if answers:
                out.answers[(row[0], None, row[1], row[2])] += int(row[3])
            else:
                out.respondents[(row[0], None, row[1])] += int(row[2])
    return out


def recount_at(
    session: Session,
    round_id: int,
    moments: Sequence[datetime | None],
    *,
    area_codes: Collection[str] | None = None,
    multi: Collection[str] = (),
    skip: Collection[str] = (),
) -> dict[datetime | None, RoundCounts]:
    """round_counts_at from the raw answers (slow: a consistency check for the tallies)."""
    moments = list(dict.fromkeys(moments))
    found = _raw(
        session,
        round_id,
        [(None, m) for m in moments],
        area_codes=area_codes,
        multi=multi,
        skip=skip,
    )
    multi_set = set(multi)
    return {
        m: _assemble(round_id, m, counts, multi_set)
        for m, counts in zip(moments, found, strict=True)
    }


def _assemble(
    round_id: int, until: datetime | None, counts: _Counts, multi: Collection[str]
) -> RoundCounts:
    respondents: dict[str, dict[str | None, list[int]]] = {}
    for (area, nbh, event), n in counts.respondents.items():
        if n:
            pair = respondents.setdefault(area, {}).setdefault(nbh, [0, 0])
            pair[0 if event == tallies.STARTED else 1] += n
    values: dict[str, list[tuple[str | None, str, str, int]]] = {}
    answered: dict[str, dict[tuple[str | None, str], int]] = {}
    for (area, nbh, qid, key), n in counts.answers.items():
        if not n:
            continue
        per_q = answered.setdefault(area, {})
        if qid in multi:
            if key == tallies.ANSWERED:
                per_q[(nbh, qid)] = per_q.get((nbh, qid), 0) + n
                continue
        else:
            per_q[(nbh, qid)] = per_q.get((nbh, qid), 0) + n
            if key == tallies.ANSWERED:
                continue  # a null answer: answered, without a value
        values.setdefault(area, []).append((nbh, qid, key, n))
    out = RoundCounts(round_id, until)
    for area in sorted(dict.fromkeys([*respondents, *values, *answered])):
        rows = [
            (nbh, started, done)
            for nbh, (started, done) in respondents.get(area, {}).items()
            if started
        ]
        area_counts = AreaCounts.from_rows(
            sorted(rows, key=lambda r: r[0] or ""),
            values.get(area, []),
            [(nbh, qid, n) for (nbh, qid), n in answered.get(area, {}).items()],
        )
        # A multi answer with nothing ticked counts as answered without any option.
        for (nbh, qid), n in answered.get(area, {}).items():
            sample = area_counts.neighbourhoods.setdefault(nbh or UNKNOWN, Sample())
            sample.questions.setdefault(qid, QuestionCounts({}, n))
        out.areas[area] = area_counts
    return out


def all_rounds(session: Session) -> list[Round]:
    """Every round, oldest first (load once, pass to rounds_covering / earlier_rounds)."""
    return list(session.scalars(select(Round).order_by(Round.opens_at, Round.id)).all())


def rounds_covering(
    session: Session, area_code: str, rounds: Sequence[Round] | None = None
) -> list[Round]:
    """Every round offered in this area (published or standing), oldest first."""
    found = all_rounds(session) if rounds is None else rounds
    return [r for r in found if r.area_codes is None or area_code in r.area_codes]


def earlier_rounds(
    session: Session,
    area_code: str,
    current: Round,
    limit: int = 3,
    rounds: Sequence[Round] | None = None,
) -> list[Round]:
    """Closed rounds of this area that opened before `current`, oldest first (at most `limit`).

    `rounds`: all_rounds(session), when the caller asks for several areas.
    """
    found = [
        r
        for r in rounds_covering(session, area_code, rounds)
        if r.id != current.id and r.status == "closed" and r.opens_at <= current.opens_at
    ]
    return found[-limit:]
