"""Residents' /results: their area's latest published release, the one its alliances see too.

Nothing is cut for /results: it shows the area's latest release (usecases/releases.py), the same
figures every alliance output for the area shows, so /results can never be subtracted from a
digest (or from itself a day later) to reveal fewer than min_n residents. It says when the
figures are from, why there are no newer ones (fewer than min_n new answers since), the round's
dates, how many neighbours answered, and the alliance's latest response to the area's residents
("Jullie zeiden, wij doen", usecases/alliance_responses.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from digests import release_table
from digests.model import PublishedTable
from locales.catalogue import Catalogue, default_catalogue
from storage import alliance_responses as response_store
from storage import releases as release_store
from storage.db import Database
from storage.digest_counts import CountsCache
from storage.models import Round
from storage.residents import find_resident
from storage.rounds import get_round, round_for_area
from surveys.areas import Area, Areas


@dataclass(frozen=True)
class AllianceMessage:
    """The alliance's latest response to the area's residents ("Jullie zeiden, wij doen")."""

    text: str
    sent_at: datetime
    # False: the alliance wrote no translation for the resident's language (the Dutch text).
    translated: bool = True


@dataclass
class Results:
    """An area's latest published release, as residents see it."""

    area_name: str
    table: PublishedTable | None  # None: no release yet
    round_: Round  # the round residents of the area answer now
    shown_round: Round | None  # the round of the release shown (an earlier one: no figures yet)
    as_of: datetime | None  # when the release's figures were cut
    # The resident answered after the figures were cut: their answers are in the next release.
    answered_since: datetime | None = None
    response: AllianceMessage | None = None


@dataclass(frozen=True)
class ResidentResults:
    """What /results shows a resident: `results`, or why not (`need_area`, `no_round`).

    `language` is the resident's chosen language (None: not chosen, or not a resident yet).
    """

    outcome: str
    language: str | None = None
    area: Area | None = None
    results: Results | None = None


def latest_alliance_response(
    session: Session, area_code: str, language: str | None
) -> AllianceMessage | None:
    """The latest response the area's alliance sent its residents (docs/responses.md), in the
    resident's language where the alliance translated it, else in Dutch."""
    found = response_store.latest_sent(session, area_code)
    if found is None or found.reviewed_at is None:
        return None
    translations = found.translations or {}
    if language and language in translations:
        return AllianceMessage(str(translations[language]), found.reviewed_at)
    return AllianceMessage(found.text, found.reviewed_at, translated=language in (None, "nl"))


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
    """The latest release of the resident's area (one read transaction; nothing is stored)."""
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
            resident_id=resident.id,
            language=resident.language,
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
    resident_id: int | None = None,
    language: str | None = None,
) -> Results | None:
    """The area's latest release of the round open now; before that round has one, the latest
    release of an earlier round. None when no round is open in the area."""
    round_ = round_for_area(session, area.code, now)
    if round_ is None:
        return None
    row = release_store.latest_release(session, area.code, round_.id)
    if row is None:
        row = release_store.latest_release(session, area.code)
    shown_round = round_ if row is None or row.round_id == round_.id else None
    table = None
    if row is not None:
        if shown_round is None:
            shown_round = get_round(session, row.round_id)
        assert shown_round is not None
        release = release_store.to_release(row)
        table = release_table(
            release,
            None,
            questions=cache.questions(shown_round),
            area_name=area.name,
            round_name=shown_round.name,
            period="",
            as_of=f"{release.cut_at.astimezone(tz):%d-%m-%Y %H:%M}",
            neighbourhood_names={h.code: h.name for h in area.neighbourhoods},
            min_n=min_n,
        )
    answered = None
    if resident_id is not None:
        last = release_store.resident_started(session, resident_id, round_.id)
        cut = row.cut_at if row is not None and row.round_id == round_.id else None
        if last is not None and (cut is None or last >= cut):
            answered = last
    return Results(
        area_name=area.name,
        table=table,
        round_=round_,
        shown_round=shown_round,
        as_of=row.cut_at if row is not None else None,
        answered_since=answered,
        response=latest_alliance_response(session, area.code, language),
    )
