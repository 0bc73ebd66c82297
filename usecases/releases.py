"""Cut releases: each area's published figures, at most once a day, when enough is new.

At the first tick after midnight (UTC) every area's series is checked: the counts at midnight
(read from the tallies' total and day rows only, so the cost does not grow with the number of
answers), the day's new comments (by theme), and, when at least min_cell_size respondents came
in since the series' last release, a new release is cut and stored (digests/release.py). A round
that closed is checked once more for its last release. The all-areas series is checked with
them. Charts of a new release are drawn (in the chart pool) in the languages of the area's
alliances and kept with it, so every digest that shows the release sends the same picture and
a digest tick does not draw them again.

Every output for an area (usecases/queue_digests.py, usecases/resident_results.py) shows the
area's latest release: nothing cuts figures of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy.orm import Session

from digests import Release, release_table
from digests.chart import chart_job
from digests.chart_pool import ChartJob, ChartPool
from digests.model import CommentSummary, stamp
from digests.release import ALL_AREAS, cut_all_areas, cut_release, is_due
from digests.themes import classify
from locales.catalogue import Catalogue, default_catalogue
from storage import aggregates
from storage import alliances as alliance_store
from storage import releases as store
from storage.db import Database
from storage.digest_counts import CountsCache
from storage.models import Round
from storage.rounds import CLOSED, pick_round
from surveys.areas import Areas

log = logging.getLogger(__name__)

# A closed round gets its last release when it closed within this window (older rounds closed
# before releases existed, or were checked already).
FINAL_WINDOW = timedelta(days=14)


def release_moment(now: datetime) -> datetime:
    """The moment a tick at `now` cuts at: the latest midnight UTC (tallies are per UTC day)."""
    day = now.astimezone(UTC).date()
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass(frozen=True)
class _Check:
    """One series to look at: counts up to `until` (None: the closed round's all)."""

    area: str
    round_: Round
    until: datetime | None
    cut_at: datetime
    since: datetime | None  # comments after this (None: since the round opened)
    final: bool


@dataclass
class CutReport:
    """What a cut did: series checked, releases cut (area, round id, seq), charts drawn."""

    moment: datetime
    checked: list[tuple[str, int]] = field(default_factory=list)
    cut: list[tuple[str, int, int]] = field(default_factory=list)
    charts: int = 0


def _checks(
    session: Session, areas: Areas, now: datetime, moment: datetime, rounds: list[Round]
) -> list[_Check]:
    states = store.series_states(session)
    out: list[_Check] = []
    closed = [
        r
        for r in rounds
        if r.status == CLOSED
        and r.opened_at is not None
        and r.closed_at is not None
        and now - FINAL_WINDOW <= r.closed_at <= now
    ]
    seen: set[tuple[str, int]] = set()

    def add(area: str, round_: Round, final: bool) -> None:
        state = states.get((area, round_.id))
        if (area, round_.id) in seen or (state is not None and state.closed):
            return
        if not final and state is not None and state.checked_at >= moment:
            return
        seen.add((area, round_.id))
        since = state.checked_at if state is not None else None
        if final:
            assert round_.closed_at is not None
            out.append(_Check(area, round_, None, round_.closed_at, since, True))
        else:
            out.append(_Check(area, round_, moment, moment, since, False))

    for area in areas.all():
        current = pick_round(rounds, area.code, moment)
        if current is not None:
            add(area.code, current, False)
        for round_ in closed:
            if round_.area_codes is None or area.code in round_.area_codes:
                add(area.code, round_, True)
    # The all-areas series of every round an area is checked in, at the same moment.
    for check in list(out):
        add(ALL_AREAS, check.round_, check.final)
    return out


def _comments(
    session: Session,
    cache: CountsCache,
    checks: list[_Check],
    states: dict[tuple[str, int], CommentSummary],
) -> dict[tuple[str, int], CommentSummary]:
    """Each checked series' comments up to its moment (running summary plus the new ones)."""
    out: dict[tuple[str, int], CommentSummary] = {}
    groups: dict[tuple[int, datetime | None, datetime | None], list[_Check]] = {}
    for check in checks:
        if check.area == ALL_AREAS:
            continue
        groups.setdefault((check.round_.id, check.since, check.until), []).append(check)
    for (_round_id, since, until), group in groups.items():
        round_ = group[0].round_
        texts = [q.id for q in cache.questions(round_) if q.type == "text"]
        rows = store.new_comments(
            session,
            round_.id,
            since=since,
            until=until,
            area_codes=[c.area for c in group],
            questions=texts,
        )
        by_area: dict[str, list[tuple[int, str, str, str, str, list[str]]]] = {}
        for answer_id, area, hood, text, language, at in rows:
            by_area.setdefault(area, []).append(
                (answer_id, hood or "", text, language, stamp(at), classify(text))
            )
        for check in group:
            key = (check.area, round_.id)
            before = states.get(key, CommentSummary())
            out[key] = before.plus(by_area.get(check.area, []))
    return out


def cut_releases(
    db: Database,
    areas: Areas,
    now: datetime,
    *,
    min_n: int,
    catalogue: Catalogue | None = None,
    charts: ChartPool | None = None,
    at: datetime | None = None,
) -> CutReport:
    """Check every series due at `at` (default: the latest midnight UTC) and cut what is due.

    Reads in one transaction, draws charts outside any, writes in one. Safe to run any number
    of times: a series checked at this moment is not looked at again.
    """
    catalogue = catalogue or default_catalogue()
    moment = at or release_moment(now)
    report = CutReport(moment)
    new: list[tuple[Release, _Check]] = []
    saves: list[tuple[tuple[str, int], datetime, CommentSummary, bool]] = []
    jobs: list[tuple[int, str, ChartJob]] = []  # (index in new, language, job)
    with db.session() as session:
        rounds = aggregates.all_rounds(session)
        checks = _checks(session, areas, now, moment, rounds)
        if not checks:
            return report
        cache = CountsCache(session, catalogue, db.surveys)
        for check in checks:
            cache.want(check.round_.id, check.until)
        states = {
            key: CommentSummary.from_json(state.comments)
            for key, state in store.series_states(session).items()
        }
        comments = _comments(session, cache, checks, states)
        latest = {key: store.to_release(row) for key, row in store.latest_releases(session).items()}
        languages = alliance_store.alliance_languages(session) if charts is not None else {}
        # The all-areas series first: an area's release shows the newest all-areas release.
        ordered = sorted(checks, key=lambda c: c.area != ALL_AREAS)
        for check in ordered:
            key = (check.area, check.round_.id)
            counts = cache.counts(check.round_, check.until)
            questions = cache.questions(check.round_)
            previous = latest.get(key)
            release: Release | None = None
            if check.area == ALL_AREAS:
                total = counts.all_areas()
                if is_due(total.started, previous, min_n):
                    release = cut_all_areas(
                        round_id=check.round_.id,
                        cut_at=check.cut_at,
                        questions=questions,
                        total=total,
                        previous=previous,
                        min_n=min_n,
                    )
                summary = CommentSummary()
            else:
                area = areas.get(check.area)
                assert area is not None
                current = counts.area(check.area)
                summary = comments.get(key, CommentSummary())
                if is_due(current.total().started, previous, min_n):
                    earlier = []
                    for old in aggregates.earlier_rounds(
                        session, check.area, check.round_, rounds=rounds
                    ):
                        sample = cache.total(old, None, check.area, None)
                        if sample.started:
                            earlier.append((old.name, sample))
                    release = cut_release(
                        area_code=check.area,
                        round_id=check.round_.id,
                        cut_at=check.cut_at,
                        questions=questions,
                        current=current,
                        neighbourhood_names={h.code: h.name for h in area.neighbourhoods},
                        earlier_rounds=earlier,
                        all_areas=latest.get((ALL_AREAS, check.round_.id)),
                        previous=previous,
                        comments=summary,
                        min_n=min_n,
                        final=check.final,
                    )
                    wanted = sorted(languages.get(check.area, ()))
                    if wanted and release.shown:
                        table = release_table(
                            release,
                            None,
                            questions=questions,
                            area_name=area.name,
                            round_name=check.round_.name,
                            period="",
                            as_of="",
                            neighbourhood_names={h.code: h.name for h in area.neighbourhoods},
                            min_n=min_n,
                        )
                        for language in wanted:
                            job = chart_job(table, language, catalogue=catalogue)
                            if job is not None:
                                jobs.append((len(new), language, job))
            if release is not None:
                latest[key] = release
                new.append((release, check))
            saves.append((key, check.cut_at, summary, check.final))
            report.checked.append(key)
    drawn = charts.draw([job for _, _, job in jobs]) if charts is not None and jobs else []
    with db.session() as session:
        ids = []
        for release, _check in new:
            ids.append(store.add_release(session, release, now).id)
            report.cut.append((release.area_code, release.round_id, release.seq))
        pngs = zip(jobs, drawn, strict=True)
        store.store_charts(
            session, {(ids[index], language): png for (index, language, _), png in pngs}, now
        )
        report.charts = len(drawn)
        for key, checked_at, summary, closed in saves:
            store.save_series(session, key, checked_at=checked_at, comments=summary, closed=closed)
    if report.cut:
        log.info("releases cut: %d (%d chart(s))", len(report.cut), report.charts)
    return report


def series_closed(session: Session, keys: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
    """Of these (area, round) series, those whose closed round has had its last check."""
    states = store.series_states(session)
    return {key for key in keys if key in states and states[key].closed}
