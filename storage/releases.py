"""Published releases of each area's figures (digests/release.py): their rows, series and charts.

Every statement about releases is here; the use cases (usecases/releases.py for cutting,
usecases/queue_digests.py and usecases/resident_results.py for showing) call these.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session

from digests.model import CommentSummary
from digests.release import Release
from storage.aggregates import UNKNOWN_LANGUAGE
from storage.models import Answer, AreaRelease, ReleaseChart, ReleaseSeries, Response

SeriesKey = tuple[str, int]  # (area code, round id)


def to_release(row: AreaRelease) -> Release:
    """The pure release of a stored row."""
    return Release.from_data(
        area_code=row.area_code,
        round_id=row.round_id,
        seq=row.seq,
        cut_at=row.cut_at,
        final=row.final,
        data=row.data,
    )


def latest_releases(session: Session) -> dict[SeriesKey, AreaRelease]:
    """The newest release of every series, in one query."""
    newest = (
        select(
            AreaRelease.area_code,
            AreaRelease.round_id,
            func.max(AreaRelease.seq).label("seq"),
        )
        .group_by(AreaRelease.area_code, AreaRelease.round_id)
        .subquery()
    )
    rows = session.scalars(
        select(AreaRelease).join(
            newest,
            and_(
                AreaRelease.area_code == newest.c.area_code,
                AreaRelease.round_id == newest.c.round_id,
                AreaRelease.seq == newest.c.seq,
            ),
        )
    )
    return {(row.area_code, row.round_id): row for row in rows}


def latest_release(
    session: Session, area_code: str, round_id: int | None = None
) -> AreaRelease | None:
    """The newest release of an area: of one round, or of any round (the latest cut)."""
    stmt = select(AreaRelease).where(AreaRelease.area_code == area_code)
    if round_id is not None:
        stmt = stmt.where(AreaRelease.round_id == round_id).order_by(AreaRelease.seq.desc())
    else:
        stmt = stmt.order_by(AreaRelease.cut_at.desc(), AreaRelease.id.desc())
    return session.scalars(stmt.limit(1)).first()


def releases_by_id(session: Session, ids: Iterable[int]) -> dict[int, AreaRelease]:
    """Releases by id."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.scalars(select(AreaRelease).where(AreaRelease.id.in_(wanted)))
    return {row.id: row for row in rows}


def series_states(session: Session) -> dict[SeriesKey, ReleaseSeries]:
    """Where every series stands."""
    return {(s.area_code, s.round_id): s for s in session.scalars(select(ReleaseSeries))}


def save_series(
    session: Session,
    key: SeriesKey,
    *,
    checked_at: datetime,
    comments: CommentSummary,
    closed: bool,
) -> None:
    """Record how far a series has been checked (insert or update)."""
    row = session.get(ReleaseSeries, key)
    if row is None:
        row = ReleaseSeries(area_code=key[0], round_id=key[1])
        session.add(row)
    row.checked_at = checked_at
    row.comments = comments.to_json()
    row.closed = closed


def add_release(session: Session, release: Release, now: datetime) -> AreaRelease:
    """Store a new release (its (area, round, seq) must be new)."""
    row = AreaRelease(
        area_code=release.area_code,
        round_id=release.round_id,
        seq=release.seq,
        cut_at=release.cut_at,
        started=release.started,
        final=release.final,
        data=release.data_json(),
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def charts(
    session: Session, wanted: Iterable[tuple[int, str]]
) -> dict[tuple[int, str], bytes | None]:
    """Stored charts by (release id, language); a missing pair was never drawn."""
    pairs = set(wanted)
    ids = sorted({release_id for release_id, _ in pairs})
    if not ids:
        return {}
    rows = session.execute(
        select(ReleaseChart.release_id, ReleaseChart.language, ReleaseChart.png).where(
            ReleaseChart.release_id.in_(ids)
        )
    )
    return {(r, lang): png for r, lang, png in rows if (r, lang) in pairs}


def store_charts(
    session: Session, drawn: dict[tuple[int, str], bytes | None], now: datetime
) -> None:
    """Keep drawn charts (a pair drawn meanwhile by another tick is left as it is)."""
    if not drawn:
        return
    have = charts(session, drawn)
    for (release_id, language), png in drawn.items():
        if (release_id, language) not in have:
            session.add(
                ReleaseChart(release_id=release_id, language=language, png=png, created_at=now)
            )
    session.flush()


def purge_charts(session: Session, before: datetime) -> int:
    """Drop charts drawn before `before` (a digest that needs one again draws it again)."""
    result: Any = session.execute(
        delete(ReleaseChart)
        .where(ReleaseChart.created_at < before)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def new_comments(
    session: Session,
    round_id: int,
    *,
    since: datetime | None,
    until: datetime | None,
    area_codes: Iterable[str],
    questions: Iterable[str],
) -> list[tuple[int, str, str | None, str, str, datetime]]:
    """Free-text answers given in (since, until], oldest first:
    (answer id, area, neighbourhood, text, language, answered at).

    Free text is what carries a language; the partial index on answers(answered_at) for those
    rows keeps this a read of the period's comments only.
    """
    qids = list(questions)
    codes = sorted(set(area_codes))
    if not qids or not codes:
        return []
    conditions: list[Any] = [
        Answer.text_language.is_not(None),
        Answer.question_id.in_(qids),
        Response.round_id == round_id,
        Response.area_code.in_(codes),
    ]
    if since is not None:
        conditions.append(Answer.answered_at > since)
    if until is not None:
        conditions.append(Answer.answered_at <= until)
    rows = session.execute(
        select(
            Answer.id,
            Response.area_code,
            Response.neighbourhood_code,
            Answer.value,
            Answer.text_language,
            Answer.answered_at,
        )
        .join(Response, Response.id == Answer.response_id)
        .where(*conditions)
        .order_by(Answer.answered_at, Answer.id)
    )
    return [
        (answer_id, area, hood, value, language or UNKNOWN_LANGUAGE, at)
        for answer_id, area, hood, value, language, at in rows
        if isinstance(value, str) and value.strip()
    ]


def answer_texts(session: Session, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """Free-text answers by id: (text, language). Erased ones are simply missing."""
    wanted = sorted(set(ids))
    out: dict[int, tuple[str, str]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.execute(
            select(Answer.id, Answer.value, Answer.text_language).where(
                Answer.id.in_(chunk), Answer.text_language.is_not(None)
            )
        )
        for answer_id, value, language in rows:
            if isinstance(value, str):
                out[answer_id] = (value, language or UNKNOWN_LANGUAGE)
    return out


def resident_started(session: Session, resident_id: int, round_id: int) -> datetime | None:
    """When the resident last answered in this round (their response's latest answer)."""
    return session.scalar(
        select(func.max(Answer.answered_at))
        .join(Response, Response.id == Answer.response_id)
        .where(Response.resident_id == resident_id, Response.round_id == round_id)
    )
