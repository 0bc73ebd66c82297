"""GROUP BY queries that fill a digest's input: respondents, answer counts, comments.

One pass over a round's answers serves every area (and all areas together): the tick computes
all alliances' digests from the same result. Values are grouped by their JSON text, so a multi
question's answers group by the ticked combination; these groups (far fewer than answers) are
exploded into per-option counts in Python. That works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, case, cast, func, select
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

    def area(self, area_code: str) -> AreaCounts:
        """One area's counts (empty when nobody there answered)."""
        return self.areas.get(area_code) or AreaCounts()

    def all_areas(self) -> Sample:
        """Every area together."""
        return Sample.merge(counts.total() for counts in self.areas.values())


def _decode(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # a plain string stored by something other than the JSON type


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
    conditions: list[Any] = [Response.round_id == round_id]
    if area_codes is not None:
        conditions.append(Response.area_code.in_(list(area_codes)))
    completed: Any = Response.completed_at.is_not(None)
    if until is not None:
        conditions.append(Response.started_at <= until)
        completed = and_(completed, Response.completed_at <= until)
    respondent_rows = session.execute(
        select(
            Response.area_code,
            Response.neighbourhood_code,
            func.count(),
            func.sum(case((completed, 1), else_=0)),
        )
        .where(*conditions)
        .group_by(Response.area_code, Response.neighbourhood_code)
    ).all()

    answer_conditions = list(conditions)
    if until is not None:
        answer_conditions.append(Answer.answered_at <= until)
    if skip:
        answer_conditions.append(Answer.question_id.not_in(list(skip)))
    value_text = cast(Answer.value, String)
    answer_rows = session.execute(
        select(
            Response.area_code,
            Response.neighbourhood_code,
            Answer.question_id,
            value_text,
            func.count(),
        )
        .join(Response, Response.id == Answer.response_id)
        .where(*answer_conditions)
        .group_by(Response.area_code, Response.neighbourhood_code, Answer.question_id, value_text)
    ).all()
    return _assemble(round_id, until, respondent_rows, answer_rows, set(multi))


def _assemble(
    round_id: int,
    until: datetime | None,
    respondent_rows: Iterable[Any],
    answer_rows: Iterable[Any],
    multi: set[str],
) -> RoundCounts:
    respondents: dict[str, list[tuple[str | None, int, int]]] = {}
    for area, nbh, started, done in respondent_rows:
        respondents.setdefault(area, []).append((nbh, int(started), int(done or 0)))
    values: dict[str, dict[tuple[str | None, str, str], int]] = {}
    answered: dict[str, dict[tuple[str | None, str], int]] = {}
    for area, nbh, qid, raw, count in answer_rows:
        value = _decode(raw)
        if value is None:
            continue
        per_area = values.setdefault(area, {})
        n = int(count)
        if qid in multi:
            options = value if isinstance(value, list) else [value]
            for option in dict.fromkeys(str(o) for o in options):
                key = (nbh, qid, option)
                per_area[key] = per_area.get(key, 0) + n
        else:
            key = (nbh, qid, str(value))
            per_area[key] = per_area.get(key, 0) + n
        per_q = answered.setdefault(area, {})
        per_q[(nbh, qid)] = per_q.get((nbh, qid), 0) + n
    out = RoundCounts(round_id, until)
    for area in dict.fromkeys([*respondents, *values, *answered]):
        counts = AreaCounts.from_rows(
            respondents.get(area, []),
            [(nbh, qid, value, n) for (nbh, qid, value), n in values.get(area, {}).items()],
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
