"""Residents' /results: their area's published figures, as of the latest weekly cut-off."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from digests import publish
from digests.model import PublishedTable
from digests.schedule import DEFAULT_SCHEDULE
from locales.catalogue import Catalogue, default_catalogue
from storage.db import Database
from storage.digest_counts import CountsCache
from storage.residents import find_resident
from storage.rounds import round_for_area
from surveys.areas import Area, Areas
from usecases.digest_data import digest_input


@dataclass
class Results:
    """An area's published figures for residents, as of the latest weekly cut-off."""

    table: PublishedTable
    as_of: datetime


@dataclass(frozen=True)
class ResidentResults:
    """What /results shows a resident: `results`, or why not (`need_area`, `no_round`).

    `language` is the resident's chosen language (None: not chosen, or not a resident yet).
    """

    outcome: str
    language: str | None = None
    area: Area | None = None
    results: Results | None = None


def results_for_resident(
    db: Database,
    resident_key: str,
    now: datetime,
    *,
    areas: Areas,
    min_n: int,
    tz: ZoneInfo,
    catalogue: Catalogue | None = None,
) -> ResidentResults:
    """The figures of the resident's area (one read transaction; nothing is stored)."""
    with db.session() as session:
        resident = find_resident(session, resident_key)
        if resident is None:
            return ResidentResults("need_area")
        area = areas.get(resident.area_code or "")
        if area is None:
            return ResidentResults("need_area", resident.language)
        results = area_results(
            session,
            CountsCache(session, catalogue or default_catalogue(), db.surveys),
            area,
            now,
            min_n=min_n,
            tz=tz,
        )
    if results is None:
        return ResidentResults("no_round", resident.language, area)
    return ResidentResults("results", resident.language, area, results)


def area_results(
    session: Session,
    cache: CountsCache,
    area: Area,
    now: datetime,
    *,
    min_n: int,
    tz: ZoneInfo,
) -> Results | None:
    """The figures as of last Monday 09:00, with the week before as `last_published`.

    A fixed weekly cut-off means asking twice shows the same figures, and the across-digest
    rule (cells must grow by min_n) holds between consecutive weeks: no differencing by /results.
    """
    cutoff = DEFAULT_SCHEDULE.previous_run(now, tz)
    before = DEFAULT_SCHEDULE.previous_run(cutoff - timedelta(seconds=1), tz)
    round_ = round_for_area(session, area.code, now)
    if round_ is None:
        return None
    earlier, data = (
        digest_input(
            cache,
            area=area,
            round_=round_,
            period_start=start,
            period_end=end,
            previous_end=previous,
            tz=tz,
            all_areas=False,
            with_comments=False,
        )
        for start, end, previous in (
            (round_.opens_at, before, None),
            (before, cutoff, before),
        )
    )
    last = publish(earlier, min_n=min_n).published_n()
    return Results(publish(data, min_n=min_n, last_published=last, max_quotes=0), cutoff)
