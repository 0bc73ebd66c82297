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
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, case, cast, func, null, select, true
from sqlalchemy.orm import Session

from digests.model import UNKNOWN, AreaCounts, Comment, QuestionCounts, Sample
from storage.models import Answer, Response, Round

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


def _upto(column: Any, moment: datetime | None, extra: Any = None) -> Any:
    """SUM of rows with `column` <= moment (all rows when moment is None)."""
    condition = column <= moment if moment is not None else true()
    if extra is not None:
        condition = and_(condition, extra)
    return func.sum(case((condition, 1), else_=0))


def _elements(session: Session) -> Any:
    """A table-valued function that explodes a JSON list into its elements (as text)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.json_array_elements_text(Answer.value).table_valued("value").alias("element")
    return func.json_each(Answer.value).table_valued("value").alias("element")


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
) -> dict[datetime | None, RoundCounts]:
    """round_counts at several moments from one pass: one conditional SUM per moment."""
    moments = list(dict.fromkeys(moments))
    multi_ids = list(multi)
    conditions: list[Any] = [Response.round_id == round_id]
    if area_codes is not None:
        conditions.append(Response.area_code.in_(list(area_codes)))
    if None not in moments:
        latest = max(m for m in moments if m is not None)
        conditions.append(Response.started_at <= latest)
    respondent_rows = session.execute(
        select(
            Response.area_code,
            Response.neighbourhood_code,
            *[_upto(Response.started_at, m) for m in moments],
            *[_upto(Response.completed_at, m, Response.completed_at.is_not(None)) for m in moments],
        )
        .where(*conditions)
        .group_by(Response.area_code, Response.neighbourhood_code)
    ).all()

    answer_conditions = list(conditions)
    if None not in moments:
        answer_conditions.append(Answer.answered_at <= latest)
    if skip:
        answer_conditions.append(Answer.question_id.not_in(list(skip)))
    # Multi answers group under NULL here (giving "answered"); their options come below.
    value_key: Any = cast(Answer.value, String)
    if multi_ids:
        value_key = case((Answer.question_id.in_(multi_ids), null()), else_=value_key)
    groups = (Response.area_code, Response.neighbourhood_code, Answer.question_id, value_key)
    answer_rows = session.execute(
        select(*groups, *[_upto(Answer.answered_at, m) for m in moments])
        .join(Response, Response.id == Answer.response_id)
        .where(*answer_conditions)
        .group_by(*groups)
    ).all()
    option_rows: list[Any] = []
    if multi_ids:
        element = _elements(session)
        option_groups = (
            Response.area_code,
            Response.neighbourhood_code,
            Answer.question_id,
            element.c.value,
        )
        option_rows = list(
            session.execute(
                select(*option_groups, *[_upto(Answer.answered_at, m) for m in moments])
                .select_from(Answer)
                .join(Response, Response.id == Answer.response_id)
                .join(element, true())
                .where(*answer_conditions, Answer.question_id.in_(multi_ids))
                .group_by(*option_groups)
            ).all()
        )
    out = {}
    k = len(moments)
    for i, moment in enumerate(moments):
        out[moment] = _assemble(
            round_id,
            moment,
            [(a, n, row[2 + i], row[2 + k + i]) for row in respondent_rows for a, n in [row[:2]]],
            [(*row[:4], row[4 + i]) for row in answer_rows],
            [(*row[:4], row[4 + i]) for row in option_rows],
        )
    return out


def _assemble(
    round_id: int,
    until: datetime | None,
    respondent_rows: Iterable[Any],
    answer_rows: Iterable[Any],
    option_rows: Iterable[Any],
) -> RoundCounts:
    respondents: dict[str, list[tuple[str | None, int, int]]] = {}
    for area, nbh, started, done in respondent_rows:
        if started:
            respondents.setdefault(area, []).append((nbh, int(started), int(done or 0)))
    values: dict[str, list[tuple[str | None, str, str, int]]] = {}
    answered: dict[str, dict[tuple[str | None, str], int]] = {}
    for area, nbh, qid, raw, count in answer_rows:
        if not count:
            continue
        n = int(count)
        per_q = answered.setdefault(area, {})
        per_q[(nbh, qid)] = per_q.get((nbh, qid), 0) + n
        if raw is None:
            continue  # a multi question: options come from the exploded rows
        value = _decode(raw)
        if value is None:
            continue
        values.setdefault(area, []).append((nbh, qid, str(value), n))
    for area, nbh, qid, option, count in option_rows:
        if count:
            values.setdefault(area, []).append((nbh, qid, str(option), int(count)))
    out = RoundCounts(round_id, until)
    for area in dict.fromkeys([*respondents, *values, *answered]):
        counts = AreaCounts.from_rows(
            respondents.get(area, []),
            values.get(area, []),
            [(nbh, qid, n) for (nbh, qid), n in answered.get(area, {}).items()],
        )
        # A multi answer with nothing ticked counts as answered without any option.
        for (nbh, qid), n in answered.get(area, {}).items():
            sample = counts.neighbourhoods.setdefault(nbh or UNKNOWN, Sample())
            sample.questions.setdefault(qid, QuestionCounts({}, n))
        out.areas[area] = counts
    return out


def comments(
    session: Session,
    round_id: int,
    area_code: str,
    *,
    questions: Collection[str],
    since: datetime | None,
    until: datetime,
    limit: int = 20,
) -> tuple[list[Comment], dict[str, int]]:
    """The most recent free-text answers of a period (raw: scrub before use) and counts per language."""
    if not questions:
        return [], {}
    conditions: list[Any] = [
        Response.round_id == round_id,
        Response.area_code == area_code,
        Answer.question_id.in_(list(questions)),
        Answer.answered_at <= until,
    ]
    if since is not None:
        conditions.append(Answer.answered_at > since)
    rows = session.execute(
        select(Answer.value, Answer.text_language, Answer.question_id)
        .join(Response, Response.id == Answer.response_id)
        .where(*conditions)
        .order_by(Answer.answered_at.desc(), Answer.id.desc())
        .limit(limit)
    ).all()
    found = [
        Comment(value, language or UNKNOWN_LANGUAGE, qid)
        for value, language, qid in rows
        if isinstance(value, str) and value.strip()
    ]
    language_rows = session.execute(
        select(Answer.text_language, func.count())
        .join(Response, Response.id == Answer.response_id)
        .where(*conditions)
        .group_by(Answer.text_language)
    ).all()
    languages: dict[str, int] = {}
    for language, count in language_rows:
        key = language or UNKNOWN_LANGUAGE
        languages[key] = languages.get(key, 0) + int(count)
    return found, languages


def comments_by_area(
    session: Session,
    round_id: int,
    *,
    questions: Collection[str],
    since: datetime | None,
    until: datetime,
    limit: int = 20,
) -> dict[str, tuple[list[Comment], dict[str, int]]]:
    """comments() for every area at once: one query over the period's free text (a week's
    comments are few), instead of one scan per area."""
    if not questions:
        return {}
    conditions: list[Any] = [
        Response.round_id == round_id,
        Answer.question_id.in_(list(questions)),
        Answer.answered_at <= until,
    ]
    if since is not None:
        conditions.append(Answer.answered_at > since)
    rows = session.execute(
        select(Response.area_code, Answer.value, Answer.text_language, Answer.question_id)
        .join(Response, Response.id == Answer.response_id)
        .where(*conditions)
        .order_by(Answer.answered_at.desc(), Answer.id.desc())
    ).all()
    out: dict[str, tuple[list[Comment], dict[str, int]]] = {}
    for area, value, language, qid in rows:
        found, languages = out.setdefault(area, ([], {}))
        key = language or UNKNOWN_LANGUAGE
        languages[key] = languages.get(key, 0) + 1
        if len(found) < limit and isinstance(value, str) and value.strip():
            found.append(Comment(value, key, qid))
    return out


def rounds_covering(session: Session, area_code: str) -> list[Round]:
    """Every round offered in this area (published or standing), oldest first."""
    rounds = session.scalars(select(Round).order_by(Round.opens_at, Round.id)).all()
    return [r for r in rounds if r.area_codes is None or area_code in r.area_codes]


def earlier_rounds(session: Session, area_code: str, current: Round, limit: int = 3) -> list[Round]:
    """Closed rounds of this area that opened before `current`, oldest first (at most `limit`)."""
    found = [
        r
        for r in rounds_covering(session, area_code)
        if r.id != current.id and r.status == "closed" and r.opens_at <= current.opens_at
    ]
    return found[-limit:]
