"""Deciding and queueing alliance digests: due schedules, final digests, on demand.

A tick reads what is due, computes each digest outside any write transaction, then in one short
transaction records the DigestSent row and queues text, chart and CSV in the outbox. The unique
(alliance, kind, period_end) row makes every digest happen once, whoever decides it; the latest
missed run is caught up after downtime, earlier missed ones are not.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session
from telegram.ext import Application, ContextTypes

from bot.schedules import DEFAULT_SCHEDULE, Schedule, ScheduleError
from digests import Comment, Digest, DigestInput, QuestionInfo, Sample, build_digest, publish
from digests.model import PublishedTable
from locales.catalogue import Catalogue, default_catalogue
from storage import aggregates
from storage import alliances as store
from storage.db import Database
from storage.models import Alliance, DigestSent, Round, SurveyVersion
from storage.outbox import NewMessage, enqueue_many
from storage.rounds import pick_round, round_for_area
from surveys.areas import Area, Areas
from surveys.schema import Survey

log = logging.getLogger(__name__)

SCHEDULED, FINAL, ON_DEMAND = "scheduled", "final", "on_demand"
ON_DEMAND_INTERVAL = timedelta(minutes=10)
TICK_INTERVAL = timedelta(minutes=1)
MAX_COMMENTS = 20
# matplotlib's font and text caches are shared by all figures: one chart at a time, whichever
# thread draws it (the chart no longer uses pyplot's global state, but stays on the safe side).
_CHART_LOCK = threading.Lock()


# ---- what a digest is computed from ------------------------------------------------------


def question_infos(definition: Mapping[str, Any], catalogue: Catalogue) -> list[QuestionInfo]:
    """The digest's view of a stored survey definition (short labels from the catalogue)."""
    survey = Survey.from_json(definition)
    infos = []
    for q in survey.questions:
        if not q.digest:
            continue  # e.g. the profile: never a digest cell, however many answered
        key = f"alliance.labels.{q.id}"
        labels = {
            lang: catalogue.get(lang, key)
            for lang in catalogue.languages
            if catalogue.has(lang, key)
        }
        infos.append(
            QuestionInfo(
                id=q.id,
                type=q.type,
                text=dict(q.text),
                options=[(o.id, dict(o.label)) for o in q.options],
                reverse=q.reverse,
                item=q.item,
                label=labels,
            )
        )
    return infos


class CountsCache:
    """Round counts per (round, moment), shared by every digest of one tick.

    Moments announced with `want` are computed together, in one pass over the round's answers.
    """

    def __init__(self, session: Session, catalogue: Catalogue) -> None:
        self.session = session
        self.catalogue = catalogue
        self._counts: dict[tuple[int, datetime | None, str | None], aggregates.RoundCounts] = {}
        self._questions: dict[int, list[QuestionInfo]] = {}
        self._wanted: dict[int, set[datetime | None]] = {}
        self._comments: dict[
            tuple[int, datetime | None, datetime],
            dict[str, tuple[list[Comment], dict[str, int]]],
        ] = {}
        self._totals: dict[tuple[int, datetime | None, str | None], dict[str, Sample]] = {}
        self._wanted_totals: dict[int, set[datetime | None]] = {}
        self._rounds: list[Round] | None = None

    def rounds(self) -> list[Round]:
        """Every round, oldest first (loaded once)."""
        if self._rounds is None:
            self._rounds = aggregates.all_rounds(self.session)
        return self._rounds

    def questions(self, round_: Round) -> list[QuestionInfo]:
        """The questions of the round's survey version."""
        if round_.survey_version_id not in self._questions:
            version = self.session.get(SurveyVersion, round_.survey_version_id)
            assert version is not None
            self._questions[round_.survey_version_id] = question_infos(
                version.definition, self.catalogue
            )
        return self._questions[round_.survey_version_id]

    def comments(
        self, round_: Round, area_code: str, since: datetime | None, until: datetime
    ) -> tuple[list[Comment], dict[str, int]]:
        """The period's comments of one area; all areas' are fetched together and kept."""
        key = (round_.id, since, until)
        if key not in self._comments:
            self._comments[key] = aggregates.comments_by_area(
                self.session,
                round_.id,
                questions=[q.id for q in self.questions(round_) if q.type == "text"],
                since=since,
                until=until,
                limit=MAX_COMMENTS,
            )
        return self._comments[key].get(area_code, ([], {}))

    def want(self, round_id: int, moment: datetime | None) -> None:
        """Announce a moment that will be asked for, so it joins the round's one pass."""
        self._wanted.setdefault(round_id, set()).add(moment)

    def want_totals(self, round_id: int, moment: datetime | None) -> None:
        """Announce a moment whose area totals will be asked for (previous digest)."""
        self._wanted_totals.setdefault(round_id, set()).add(moment)

    def total(
        self, round_: Round, until: datetime | None, area_code: str, scope: str | None
    ) -> Sample:
        """One area's total up to `until`: from counts already made, else grouped per area in
        SQL (all areas at once, with the other announced moments, unless `scope` is given)."""
        for key in ((round_.id, until, None), (round_.id, until, scope)):
            counts = self._counts.get(key)
            if counts is not None:
                return counts.area(area_code).total()
        key_t = (round_.id, until, scope)
        if key_t not in self._totals:
            questions = self.questions(round_)
            moments = {until}
            if scope is None:
                done = {m for (r, m, a) in self._totals if r == round_.id and a is None}
                moments |= self._wanted_totals.get(round_.id, set()) - done
            found = aggregates.area_totals_at(
                self.session,
                round_.id,
                _in_order(moments),
                area_codes=None if scope is None else [scope],
                multi=[q.id for q in questions if q.type == "multi"],
                skip=[q.id for q in questions if q.type == "text"],
            )
            for moment, result in found.items():
                self._totals[(round_.id, moment, scope)] = result
        return self._totals[key_t].get(area_code) or Sample()

    def counts(
        self, round_: Round, until: datetime | None, area_code: str | None = None
    ) -> aggregates.RoundCounts:
        """All areas' counts (or one area's, when given and not cached for all) up to `until`."""
        everything = self._counts.get((round_.id, until, None))
        if everything is not None:
            return everything
        key = (round_.id, until, area_code)
        if key not in self._counts:
            questions = self.questions(round_)
            moments = {until}
            if area_code is None:
                done = {m for (r, m, a) in self._counts if r == round_.id and a is None}
                moments |= self._wanted.get(round_.id, set()) - done
            multi = [q.id for q in questions if q.type == "multi"]
            skip = [q.id for q in questions if q.type == "text"]
            if area_code is None:
                # The announced previous-digest totals come from the same read of the tallies.
                done = {m for (r, m, a) in self._totals if r == round_.id and a is None}
                totals_at = self._wanted_totals.get(round_.id, set()) - done
                found, totals = aggregates.counts_with_totals(
                    self.session,
                    round_.id,
                    _in_order(moments),
                    _in_order(totals_at),
                    multi=multi,
                    skip=skip,
                )
                for moment, by_area in totals.items():
                    self._totals[(round_.id, moment, None)] = by_area
            else:
                found = aggregates.round_counts_at(
                    self.session,
                    round_.id,
                    _in_order(moments),
                    area_codes=[area_code],
                    multi=multi,
                    skip=skip,
                )
            for moment, result in found.items():
                self._counts[(round_.id, moment, area_code)] = result
        return self._counts[key]


def _in_order(moments: set[datetime | None]) -> list[datetime | None]:
    """Moments oldest first, None (the whole round) last."""
    return sorted(moments, key=lambda m: (m is None, m or datetime.min.replace(tzinfo=UTC)))


def period_label(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """`02-11-2026 – 09-11-2026` in local dates (language neutral)."""
    return f"{start.astimezone(tz):%d-%m-%Y} – {end.astimezone(tz):%d-%m-%Y}"


def digest_input(
    cache: CountsCache,
    *,
    area: Area,
    round_: Round,
    period_start: datetime,
    period_end: datetime,
    previous_end: datetime | None,
    tz: ZoneInfo,
    all_areas: bool = True,
    with_comments: bool = True,
) -> DigestInput:
    """Everything build_digest needs for one area, from the cache's GROUP BY queries."""
    questions = cache.questions(round_)
    scope = None if all_areas else area.code
    current = cache.counts(round_, period_end, scope)
    previous: Sample | None = None
    if previous_end is not None:
        previous = cache.total(round_, previous_end, area.code, scope)
    earlier = []
    for old in aggregates.earlier_rounds(cache.session, area.code, round_, rounds=cache.rounds()):
        sample = cache.total(old, None, area.code, scope)
        if sample.started:
            earlier.append((old.name, sample))
    found: list[Comment] = []
    languages: dict[str, int] = {}
    if with_comments:
        found, languages = cache.comments(round_, area.code, period_start, period_end)
    return DigestInput(
        area_code=area.code,
        area_name=area.name,
        round_name=round_.name,
        period=period_label(period_start, period_end, tz),
        questions=questions,
        current=current.area(area.code),
        neighbourhood_names={h.code: h.name for h in area.neighbourhoods},
        previous=previous,
        earlier_rounds=earlier,
        all_areas=current.all_areas() if all_areas else None,
        comments=found,
        comment_languages=languages,
    )


def render(
    data: DigestInput,
    *,
    lang: str,
    min_n: int,
    last_published: Mapping[str, int] | None,
    chart: bool = True,
) -> Digest:
    """build_digest, one chart at a time."""
    with _CHART_LOCK:
        return build_digest(
            data, lang=lang, min_n=min_n, last_published=last_published, chart=chart
        )


# ---- deciding ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """A digest that should be queued for an alliance."""

    alliance_id: int
    kind: str
    period_end: datetime
    round_id: int | None = None


@dataclass
class TickReport:
    """What one tick did."""

    due: list[Due] = field(default_factory=list)
    queued: list[Due] = field(default_factory=list)
    skipped: list[Due] = field(default_factory=list)
    failed: list[Due] = field(default_factory=list)


def _schedule(alliance: Alliance) -> Schedule:
    try:
        return Schedule.from_json(alliance.schedule)
    except ScheduleError:
        log.warning("alliance %d has an unusable schedule; using the default", alliance.id)
        return DEFAULT_SCHEDULE


def due_digests(
    session: Session,
    now: datetime,
    tz: ZoneInfo,
    latest: Mapping[int, DigestSent] | None = None,
) -> list[Due]:
    """Scheduled digests whose latest run has passed unsent, and final digests of closed rounds.

    `latest`: store.last_digests, when the caller has read it already.
    """
    found: list[Due] = []
    closed = session.scalars(
        select(Round).where(Round.status == "closed", Round.standing.is_(False))
    ).all()
    # Three queries for all alliances: each one's latest digest covers its latest run or not.
    latest = store.last_digests(session) if latest is None else latest
    finals = store.final_digests_sent(session)
    for alliance in store.all_alliances(session):
        run = _schedule(alliance).previous_run(now, tz)
        last = latest.get(alliance.id)
        if run > alliance.linked_at and (last is None or last.period_end < run):
            found.append(Due(alliance.id, SCHEDULED, run))
        for round_ in closed:
            if round_.area_codes is not None and alliance.area_code not in round_.area_codes:
                continue
            end = round_.closed_at or round_.closes_at
            if end <= alliance.linked_at or end > now:
                continue
            if (alliance.id, round_.id) not in finals:
                found.append(Due(alliance.id, FINAL, end, round_.id))
    return found


@dataclass
class Prepared:
    """A computed digest waiting to be recorded and queued."""

    due: Due
    alliance_id: int
    chat_id: int
    area_code: str
    round_id: int
    period_start: datetime
    previous_id: int | None
    digest: Digest


_NO_LAST: Any = object()


def _round_and_last(
    cache: CountsCache, alliance_id: int, area_code: str, due: Due, last: Any = _NO_LAST
) -> tuple[Round, Any, bool] | None:
    """The digest's round, the alliance's latest digest, and whether that was of this round.

    `last`: the alliance's latest digest when the caller has it already (None: none yet).
    """
    session = cache.session
    if due.round_id is not None:
        round_ = session.get(Round, due.round_id)
    else:
        round_ = pick_round(cache.rounds(), area_code, due.period_end)
    if round_ is None:
        return None
    if last is _NO_LAST:
        last = store.last_digest(session, alliance_id)
    same_round = (
        last is not None and last.round_id == round_.id and last.period_end < due.period_end
    )
    return round_, last, same_round


def _announce(cache: CountsCache, due: Due, alliance: Alliance, last: Any = _NO_LAST) -> None:
    """Tell the cache which moments this digest will ask for (one pass per round)."""
    found = _round_and_last(cache, alliance.id, alliance.area_code, due, last)
    if found is None:
        return
    round_, last, same_round = found
    cache.want(round_.id, due.period_end)
    if same_round:
        cache.want_totals(round_.id, last.period_end)


def _prepare(
    cache: CountsCache,
    alliance: Alliance,
    due: Due,
    *,
    areas: Areas,
    tz: ZoneInfo,
    last: Any = _NO_LAST,
) -> tuple[DigestInput, dict[str, Any]] | None:
    area = areas.get(alliance.area_code)
    if area is None:
        log.warning(
            "alliance %d: area %s is not in the areas file", alliance.id, alliance.area_code
        )
        return None
    found = _round_and_last(cache, alliance.id, area.code, due, last)
    if found is None:
        return None
    round_, last, same_round = found
    period_start = last.period_end if last is not None and same_round else round_.opens_at
    data = digest_input(
        cache,
        area=area,
        round_=round_,
        period_start=period_start,
        period_end=due.period_end,
        previous_end=last.period_end if last is not None and same_round else None,
        tz=tz,
    )
    meta = {
        "round_id": round_.id,
        "period_start": period_start,
        "previous_id": last.id if last is not None else None,
        "last_published": dict(last.published_n or {}) if last is not None and same_round else None,
    }
    return data, meta


def queue_digest(session: Session, prepared: Prepared, now: datetime) -> bool:
    """Record the digest and queue its messages in this transaction; False if not queued."""
    return _queue(session, [prepared], now)[0]


def _queue(session: Session, prepared: list[Prepared], now: datetime) -> list[bool]:
    """Record and queue digests in the caller's transaction, in three statements.

    Per digest: the alliance is still linked, no other digest was recorded since it was
    computed (else it is recomputed at the next tick), and its (alliance, kind, period_end) row
    is new (else it was decided elsewhere).
    """
    ids = {p.alliance_id for p in prepared}
    linked = set(session.scalars(select(Alliance.id).where(Alliance.id.in_(ids))))
    latest = store.last_digests(session)
    ready = []
    for p in prepared:
        last = latest.get(p.alliance_id)
        if p.alliance_id in linked and (last.id if last else None) == p.previous_id:
            ready.append(p)
    records = [
        store.DigestRecord(
            alliance_id=p.alliance_id,
            round_id=p.round_id,
            kind=p.due.kind,
            period_start=p.period_start,
            period_end=p.due.period_end,
            published_n=p.digest.published_n,
        )
        for p in ready
    ]
    inserted = {
        (r.alliance_id, r.kind, r.period_end) for r in store.record_digests(session, records, now)
    }
    done = [p for p in ready if (p.alliance_id, p.due.kind, p.due.period_end) in inserted]
    enqueue_many(session, [m for p in done for m in _messages(p)], now)
    queued = {id(p) for p in done}
    return [id(p) in queued for p in prepared]


def _messages(prepared: Prepared) -> list[NewMessage]:
    """The digest's outbox rows in sending order: text parts, chart, CSV."""
    due = prepared.due
    base = f"digest:{prepared.alliance_id}:{due.kind}:{due.period_end:%Y%m%dT%H%M%S}"
    common: dict[str, Any] = {
        "kind": "digest",
        "chat_id": prepared.chat_id,
        "is_group": True,
        "alliance_id": prepared.alliance_id,
    }
    out = [
        NewMessage(
            dedupe_key=f"{base}:text:{i}",
            method="sendMessage",
            payload={"text": text, "parse_mode": "HTML"},
            **common,
        )
        for i, text in enumerate(prepared.digest.messages)
    ]
    if prepared.digest.chart_png is not None:
        out.append(
            NewMessage(
                dedupe_key=f"{base}:chart",
                method="sendPhoto",
                payload={},
                file_name="buurtstem-digest.png",
                file_data=prepared.digest.chart_png,
                **common,
            )
        )
    day = due.period_end.strftime("%Y-%m-%d")
    out.append(
        NewMessage(
            dedupe_key=f"{base}:csv",
            method="sendDocument",
            payload={},
            file_name=f"buurtstem-{prepared.area_code}-{day}.csv",
            file_data=prepared.digest.csv,
            **common,
        )
    )
    return out


def queue_digests(db: Database, prepared: list[Prepared], now: datetime) -> list[bool]:
    """queue_digest for several digests in one transaction.

    Should the batch fail, each digest is queued in its own transaction, so one bad digest
    cannot stop the others.
    """
    if not prepared:
        return []
    try:
        with db.session() as session:
            return _queue(session, prepared, now)
    except Exception:
        log.exception("queueing %d digests together failed; one at a time", len(prepared))
    out = []
    for p in prepared:
        try:
            with db.session() as session:
                out.append(queue_digest(session, p, now))
        except Exception:
            log.exception("digest %s for alliance %d failed", p.due.kind, p.alliance_id)
            out.append(False)
    return out


def _make(
    db: Database,
    due: Due,
    *,
    areas: Areas,
    catalogue: Catalogue,
    tz: ZoneInfo,
    min_n: int,
    chart: bool,
    now: datetime,
) -> bool:
    """Compute (read transaction), render (no transaction), record and queue (short write)."""
    with db.session() as session:
        alliance = session.get(Alliance, due.alliance_id)
        if alliance is None:
            return False
        made = _prepare(CountsCache(session, catalogue), alliance, due, areas=areas, tz=tz)
        chat_id, area_code, lang = alliance.chat_id, alliance.area_code, alliance.language
    if made is None:
        return False
    data, meta = made
    digest = render(
        data, lang=lang, min_n=min_n, last_published=meta["last_published"], chart=chart
    )
    prepared = Prepared(
        due=due,
        alliance_id=due.alliance_id,
        chat_id=chat_id,
        area_code=area_code,
        round_id=meta["round_id"],
        period_start=meta["period_start"],
        previous_id=meta["previous_id"],
        digest=digest,
    )
    with db.session() as session:
        return queue_digest(session, prepared, now)


def run_digest_tick(
    db: Database,
    areas: Areas,
    now: datetime,
    *,
    min_n: int = 10,
    timezone: str = "Europe/Amsterdam",
    catalogue: Catalogue | None = None,
    chart: bool = True,
) -> TickReport:
    """Queue every digest that is due at `now`; safe to run any number of times.

    All due digests are computed in one read transaction from shared counts, rendered, then
    recorded and queued in one write transaction (queue_digests). An alliance's second digest
    in the same tick (a final digest next to a scheduled one), and any digest whose batched
    computation failed, goes one at a time afterwards, as _make does it.
    """
    tz = ZoneInfo(timezone)
    catalogue = catalogue or default_catalogue()
    report = TickReport()
    one_by_one: list[Due] = []
    computed: list[tuple[Due, Alliance, DigestInput, dict[str, Any]]] = []
    with db.session() as session:
        latest = store.last_digests(session)
        report.due = due_digests(session, now, tz, latest)
        cache = CountsCache(session, catalogue)
        first: list[Due] = []
        seen: set[int] = set()
        for due in report.due:
            (one_by_one if due.alliance_id in seen else first).append(due)
            seen.add(due.alliance_id)
        alliances = {
            a.id: a
            for a in session.scalars(
                select(Alliance).where(Alliance.id.in_([d.alliance_id for d in first]))
            )
        }
        for due in first:
            alliance = alliances.get(due.alliance_id)
            if alliance is not None:
                _announce(cache, due, alliance, latest.get(alliance.id))
        for due in first:
            alliance = alliances.get(due.alliance_id)
            if alliance is None:
                report.skipped.append(due)
                continue
            try:
                made = _prepare(
                    cache, alliance, due, areas=areas, tz=tz, last=latest.get(alliance.id)
                )
            except Exception:
                # Retried on its own below, with its own sessions.
                log.exception("digest %s for alliance %d: batch failed", due.kind, due.alliance_id)
                one_by_one.append(due)
                continue
            if made is None:
                report.skipped.append(due)
            else:
                computed.append((due, alliance, *made))
    prepared: list[Prepared] = []
    for due, alliance, data, meta in computed:
        try:
            digest = render(
                data,
                lang=alliance.language,
                min_n=min_n,
                last_published=meta["last_published"],
                chart=chart,
            )
        except Exception:
            # One broken digest must not stop the others; the next tick tries again.
            log.exception("digest %s for alliance %d failed", due.kind, due.alliance_id)
            report.failed.append(due)
            continue
        prepared.append(
            Prepared(
                due=due,
                alliance_id=alliance.id,
                chat_id=alliance.chat_id,
                area_code=alliance.area_code,
                round_id=meta["round_id"],
                period_start=meta["period_start"],
                previous_id=meta["previous_id"],
                digest=digest,
            )
        )
    for p, queued in zip(prepared, queue_digests(db, prepared, now), strict=True):
        (report.queued if queued else report.skipped).append(p.due)
    for due in one_by_one:
        try:
            made_one = _make(
                db,
                due,
                areas=areas,
                catalogue=catalogue,
                tz=tz,
                min_n=min_n,
                chart=chart,
                now=now,
            )
        except Exception:
            log.exception("digest %s for alliance %d failed", due.kind, due.alliance_id)
            report.failed.append(due)
            continue
        (report.queued if made_one else report.skipped).append(due)
    if report.queued:
        log.info("digests queued: %d", len(report.queued))
    return report


@dataclass(frozen=True)
class OnDemand:
    """Outcome of /digest: queued, too_soon (with retry_at), not_linked, or no_round."""

    outcome: str
    retry_at: datetime | None = None


def queue_on_demand(
    db: Database,
    chat_id: int,
    areas: Areas,
    now: datetime,
    *,
    min_n: int = 10,
    timezone: str = "Europe/Amsterdam",
    catalogue: Catalogue | None = None,
    chart: bool = True,
) -> OnDemand:
    """A digest now for a linked chat, at most once per ON_DEMAND_INTERVAL."""
    with db.session() as session:
        alliance = store.alliance_of_chat(session, chat_id)
        if alliance is None:
            return OnDemand("not_linked")
        last = store.last_digest(session, alliance.id, (ON_DEMAND,))
        if last is not None and last.created_at > now - ON_DEMAND_INTERVAL:
            return OnDemand("too_soon", last.created_at + ON_DEMAND_INTERVAL)
        alliance_id = alliance.id
    due = Due(alliance_id, ON_DEMAND, now)
    made = _make(
        db,
        due,
        areas=areas,
        catalogue=catalogue or default_catalogue(),
        tz=ZoneInfo(timezone),
        min_n=min_n,
        chart=chart,
        now=now,
    )
    return OnDemand("queued" if made else "no_round")


# ---- residents' short version ------------------------------------------------------------


@dataclass
class Results:
    """An area's published figures for residents, as of the latest weekly cut-off."""

    table: PublishedTable
    as_of: datetime


def resident_results(
    session: Session,
    area: Area,
    now: datetime,
    *,
    min_n: int = 10,
    timezone: str = "Europe/Amsterdam",
    catalogue: Catalogue | None = None,
) -> Results | None:
    """The figures as of last Monday 09:00, with the week before as `last_published`.

    A fixed weekly cut-off means asking twice shows the same figures, and the across-digest
    rule (cells must grow by min_n) holds between consecutive weeks: no differencing by /results.
    """
    tz = ZoneInfo(timezone)
    cutoff = DEFAULT_SCHEDULE.previous_run(now, tz)
    before = DEFAULT_SCHEDULE.previous_run(cutoff - timedelta(seconds=1), tz)
    round_ = round_for_area(session, area.code, now)
    if round_ is None:
        return None
    cache = CountsCache(session, catalogue or default_catalogue())
    earlier = digest_input(
        cache,
        area=area,
        round_=round_,
        period_start=round_.opens_at,
        period_end=before,
        previous_end=None,
        tz=tz,
        all_areas=False,
        with_comments=False,
    )
    data = digest_input(
        cache,
        area=area,
        round_=round_,
        period_start=before,
        period_end=cutoff,
        previous_end=before,
        tz=tz,
        all_areas=False,
        with_comments=False,
    )
    last = publish(earlier, min_n=min_n).published_n()
    return Results(publish(data, min_n=min_n, last_published=last, max_quotes=0), cutoff)


# ---- JobQueue ----------------------------------------------------------------------------


def register_digest_jobs(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """One repeating tick on PTB's JobQueue; schedules live in the alliances' rows."""
    if application.job_queue is None:
        log.warning("no JobQueue: digests are not scheduled")
        return
    application.job_queue.run_repeating(
        _digest_job, interval=TICK_INTERVAL, first=timedelta(seconds=15), name="digests"
    )


async def _digest_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    from handlers.context import SERVICES_KEY
    from usecases.services import Services

    svc: Services = context.application.bot_data[SERVICES_KEY]
    await asyncio.to_thread(
        run_digest_tick,
        svc.db,
        svc.areas,
        svc.clock.now(),
        min_n=svc.settings.min_cell_size,
        timezone=svc.settings.timezone,
        catalogue=svc.catalogue,
    )
