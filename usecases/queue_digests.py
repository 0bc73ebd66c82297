"""Queue alliance digests: those due (the tick) and one on demand (/digest).

A digest shows its area's latest published release (usecases/releases.py), never figures cut
for itself: every group linked to an area, and /results, see the same series. A tick first cuts
the releases that are due, then reads what is due, the releases and what they need (one read
transaction), renders each digest (no transaction; charts stored with the release are reused,
missing ones drawn in the chart pool), then in one short transaction records the DigestSent
rows and queues text, chart and CSV in the outbox. The unique (alliance, kind, period_end) row
makes every digest happen once, whoever decides it; the latest missed run is caught up after
downtime, earlier missed ones are not. Nothing here reads answers: the work of a tick does not
grow with them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from digests import Digest, DigestInput, Release, publish, release_table, render_digest
from digests.chart import chart_job
from digests.chart_pool import ChartJob, ChartPool
from digests.model import AreaCounts
from digests.references import References
from digests.release import quote_ids
from digests.render import render_no_news
from digests.schedule import DEFAULT_SCHEDULE, Schedule, ScheduleError
from locales.catalogue import Catalogue, default_catalogue
from storage import alliances as store
from storage import releases as release_store
from storage import rounds as round_store
from storage.db import Database
from storage.digest_counts import CountsCache
from storage.models import Alliance, DigestSent, Round
from storage.outbox import NewMessage, enqueue_many
from storage.rounds import pick_round
from surveys.areas import Areas
from usecases.releases import FINAL_WINDOW, CutReport, cut_releases

log = logging.getLogger(__name__)

SCHEDULED, FINAL, ON_DEMAND = "scheduled", "final", "on_demand"
ON_DEMAND_INTERVAL = timedelta(minutes=10)


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
    releases: CutReport | None = None


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
    """Scheduled digests whose latest run has passed unsent, and final digests of closed rounds
    whose last release has been decided (the tick's cut does that as soon as a round closes).

    `latest`: store.last_digests, when the caller has read it already.
    """
    found: list[Due] = []
    closed = round_store.closed_published_rounds(session)
    latest = store.last_digests(session) if latest is None else latest
    finals = store.final_digests_sent(session)
    series = release_store.series_states(session)
    for alliance in store.all_alliances(session):
        if alliance.removed_at is not None:
            continue  # the bot is not in the group: paused until it is added back
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
            state = series.get((alliance.area_code, round_.id))
            decided = (state is not None and state.closed) or end < now - FINAL_WINDOW
            if decided and (alliance.id, round_.id) not in finals:
                found.append(Due(alliance.id, FINAL, end, round_.id))
    return found


@dataclass
class Prepared:
    """A rendered digest waiting to be recorded and queued."""

    due: Due
    alliance_id: int
    chat_id: int
    area_code: str
    round_id: int
    period_start: datetime
    previous_id: int | None
    digest: Digest
    release_id: int | None = None
    # A chart drawn for this digest, to keep with its release: (release id, language, png).
    new_chart: tuple[int, str, bytes | None] | None = None


@dataclass
class _Made:
    """What a digest is rendered from, read in the tick's transaction."""

    due: Due
    alliance: Alliance
    round_: Round
    questions: list[Any]
    release: Release | None
    release_id: int | None
    previous: Release | None
    period_start: datetime
    previous_id: int | None
    quote_texts: dict[int, tuple[str, str]]
    chart: bytes | None
    chart_stored: bool
    no_news: bool


def _local(moment: datetime, tz: ZoneInfo) -> str:
    return f"{moment.astimezone(tz):%d-%m-%Y %H:%M}"


def _read(
    session: Session,
    cache: CountsCache,
    dues: list[tuple[Due, Alliance]],
    latest_digest: Mapping[int, DigestSent],
    *,
    chart: bool,
) -> list[_Made | None]:
    """Everything the digests of `dues` are rendered from, in a few queries for all of them."""
    rounds = cache.rounds()
    releases = release_store.latest_releases(session)
    history = store.digest_releases(session, (a.id for _, a in dues if a.id is not None))
    picked: list[tuple[Due, Alliance, Round, Any, int | None] | None] = []
    previous_ids: set[int] = set()
    for due, alliance in dues:
        if due.round_id is not None:
            round_ = next((r for r in rounds if r.id == due.round_id), None)
        else:
            round_ = pick_round(rounds, alliance.area_code, due.period_end)
        if round_ is None:
            picked.append(None)
            continue
        row = releases.get((alliance.area_code, round_.id))
        previous_id = None
        for round_id, release_id in history.get(alliance.id, []):
            if round_id == round_.id and (row is None or release_id != row.id):
                previous_id = release_id
                break
        if previous_id is not None:
            previous_ids.add(previous_id)
        picked.append((due, alliance, round_, row, previous_id))
    previous_rows = release_store.releases_by_id(session, previous_ids)
    pure: dict[int, Release] = {}

    def release_of(row: Any) -> Release:
        if row.id not in pure:
            pure[row.id] = release_store.to_release(row)
        return pure[row.id]

    wanted_quotes: set[int] = set()
    wanted_charts: set[tuple[int, str]] = set()
    for found in picked:
        if found is None:
            continue
        _, alliance, _, row, previous_id = found
        if row is None:
            continue
        prev_row = previous_rows.get(previous_id) if previous_id is not None else None
        wanted_quotes |= quote_ids(
            release_of(row), release_of(prev_row) if prev_row is not None else None
        )
        if chart:
            wanted_charts.add((row.id, alliance.language))
    texts = release_store.answer_texts(session, wanted_quotes)
    stored = release_store.charts(session, wanted_charts)
    out: list[_Made | None] = []
    for found in picked:
        if found is None:
            out.append(None)
            continue
        due, alliance, round_, row, previous_id = found
        prev_row = previous_rows.get(previous_id) if previous_id is not None else None
        release = release_of(row) if row is not None else None
        previous = release_of(prev_row) if prev_row is not None else None
        last = latest_digest.get(alliance.id)
        key = (row.id, alliance.language) if row is not None else None
        out.append(
            _Made(
                due=due,
                alliance=alliance,
                round_=round_,
                questions=cache.questions(round_),
                release=release,
                release_id=row.id if row is not None else None,
                previous=previous,
                period_start=previous.cut_at if previous is not None else round_.opens_at,
                previous_id=last.id if last is not None else None,
                quote_texts=texts,
                chart=stored.get(key) if key is not None else None,
                chart_stored=key is not None and key in stored,
                # A scheduled digest of the very release the group got last: say only that.
                no_news=due.kind == SCHEDULED
                and row is not None
                and last is not None
                and last.release_id == row.id,
            )
        )
    return out


def _table(
    made: _Made,
    *,
    areas: Areas,
    tz: ZoneInfo,
    min_n: int,
    references: Mapping[str, References] | None,
) -> Any:
    """The published table of a digest (an empty one when the area has no release yet)."""
    area = areas.get(made.alliance.area_code)
    names = {h.code: h.name for h in area.neighbourhoods} if area is not None else {}
    area_name = area.name if area is not None else made.alliance.area_code
    refs = (references or {}).get(made.alliance.area_code)
    if made.release is None:
        data = DigestInput(
            area_code=made.alliance.area_code,
            area_name=area_name,
            round_name=made.round_.name,
            period="",
            questions=made.questions,
            current=AreaCounts(),
            neighbourhood_names=names,
        )
        return publish(data, min_n=min_n)
    release = made.release
    return release_table(
        release,
        made.previous,
        questions=made.questions,
        area_name=area_name,
        round_name=made.round_.name,
        period=f"{made.period_start.astimezone(tz):%d-%m-%Y} – {release.cut_at.astimezone(tz):%d-%m-%Y}",
        as_of=_local(release.cut_at, tz),
        neighbourhood_names=names,
        min_n=min_n,
        quote_texts=made.quote_texts,
        references=refs,
    )


def _render(
    made: list[_Made],
    *,
    areas: Areas,
    tz: ZoneInfo,
    min_n: int,
    chart: bool,
    charts: ChartPool | None,
    catalogue: Catalogue,
    references: Mapping[str, References] | None,
) -> list[Prepared | Exception]:
    """Render the digests (no transaction); charts not stored yet are drawn together."""
    tables: list[Any] = []
    for m in made:
        try:
            tables.append(
                None
                if m.no_news
                else _table(m, areas=areas, tz=tz, min_n=min_n, references=references)
            )
        except Exception as exc:  # one broken digest must not stop the others
            tables.append(exc)
    jobs: list[tuple[int, ChartJob]] = []
    for i, (m, table) in enumerate(zip(made, tables, strict=True)):
        if not chart or m.chart_stored or m.release is None or m.no_news:
            continue
        if table is None or isinstance(table, Exception) or not m.release.shown:
            continue
        job = chart_job(table, m.alliance.language, catalogue=catalogue)
        if job is not None:
            jobs.append((i, job))
    drawn: dict[int, bytes] = {}
    if jobs:
        pool = charts or ChartPool(0)
        drawn = dict(zip((i for i, _ in jobs), pool.draw([j for _, j in jobs]), strict=True))
    out: list[Prepared | Exception] = []
    for i, (m, table) in enumerate(zip(made, tables, strict=True)):
        if isinstance(table, Exception):
            out.append(table)
            continue
        try:
            area = areas.get(m.alliance.area_code)
            if table is None:
                assert m.release is not None
                digest = Digest(
                    table=None,
                    messages=render_no_news(
                        area_name=area.name if area is not None else m.alliance.area_code,
                        round_name=m.round_.name,
                        as_of=_local(m.release.cut_at, tz),
                        min_n=min_n,
                        lang=m.alliance.language,
                        catalogue=catalogue,
                    ),
                    chart_png=None,
                    csv=None,
                )
            else:
                png = drawn.get(i, m.chart)
                digest = render_digest(
                    table, lang=m.alliance.language, chart=chart and png is not None, chart_png=png
                )
            new_chart = None
            if i in drawn and m.release_id is not None:
                new_chart = (m.release_id, m.alliance.language, drawn[i])
            out.append(
                Prepared(
                    due=m.due,
                    alliance_id=m.alliance.id,
                    chat_id=m.alliance.chat_id,
                    area_code=m.alliance.area_code,
                    round_id=m.round_.id,
                    period_start=m.period_start,
                    previous_id=m.previous_id,
                    digest=digest,
                    release_id=m.release_id,
                    new_chart=new_chart,
                )
            )
        except Exception as exc:
            out.append(exc)
    return out


def queue_digest(session: Session, prepared: Prepared, now: datetime) -> bool:
    """Record the digest and queue its messages in this transaction; False if not queued."""
    return _queue(session, [prepared], now)[0]


def _queue(session: Session, prepared: list[Prepared], now: datetime) -> list[bool]:
    """Record and queue digests in the caller's transaction, in a few statements.

    Per digest: the alliance is still linked (and the bot in its group), no other digest was recorded since it was
    computed (else it is recomputed at the next tick), and its (alliance, kind, period_end) row
    is new (else it was decided elsewhere). Charts drawn for a release are kept with it.
    """
    ids = {p.alliance_id for p in prepared}
    # Linked, and the bot is in the group (it may have been removed since the digest was read).
    linked = set(store.reachable_alliances_by_id(session, ids))
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
            release_id=p.release_id,
        )
        for p in ready
    ]
    inserted = {
        (r.alliance_id, r.kind, r.period_end) for r in store.record_digests(session, records, now)
    }
    done = [p for p in ready if (p.alliance_id, p.due.kind, p.due.period_end) in inserted]
    enqueue_many(session, [m for p in done for m in _messages(p)], now)
    release_store.store_charts(
        session,
        {(c[0], c[1]): c[2] for p in prepared if (c := p.new_chart) is not None},
        now,
    )
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
    if prepared.digest.csv is not None:
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
    charts: ChartPool | None = None,
    references: Mapping[str, References] | None = None,
) -> bool:
    """One digest on its own: read (one transaction), render (none), record and queue."""
    with db.session() as session:
        alliance = store.get_alliance(session, due.alliance_id)
        if alliance is None:
            return False
        cache = CountsCache(session, catalogue, db.surveys)
        made = _read(session, cache, [(due, alliance)], store.last_digests(session), chart=chart)[0]
    if made is None:
        return False
    prepared = _render(
        [made],
        areas=areas,
        tz=tz,
        min_n=min_n,
        chart=chart,
        charts=charts,
        catalogue=catalogue,
        references=references,
    )[0]
    if isinstance(prepared, Exception):
        raise prepared
    with db.session() as session:
        return queue_digest(session, prepared, now)


def run_digest_tick(
    db: Database,
    areas: Areas,
    now: datetime,
    *,
    min_n: int,
    tz: ZoneInfo,
    catalogue: Catalogue | None = None,
    chart: bool = True,
    charts: ChartPool | None = None,
    references: Mapping[str, References] | None = None,
) -> TickReport:
    """Cut the releases that are due, then queue every digest that is due at `now`; safe to run
    any number of times.

    All due digests are read in one transaction, rendered, then recorded and queued in one
    write transaction (queue_digests). An alliance's second digest in the same tick (a final
    digest next to a scheduled one), and any digest whose batched reading failed, goes one at a
    time afterwards, as _make does it.
    """
    catalogue = catalogue or default_catalogue()
    report = TickReport()
    report.releases = cut_releases(
        db, areas, now, min_n=min_n, catalogue=catalogue, charts=charts if chart else None
    )
    one_by_one: list[Due] = []
    made: list[_Made] = []
    with db.session() as session:
        latest = store.last_digests(session)
        report.due = due_digests(session, now, tz, latest)
        first: list[Due] = []
        seen: set[int] = set()
        for due in report.due:
            (one_by_one if due.alliance_id in seen else first).append(due)
            seen.add(due.alliance_id)
        alliances = store.alliances_by_id(session, (d.alliance_id for d in first))
        dues = []
        for due in first:
            alliance = alliances.get(due.alliance_id)
            if alliance is None:
                report.skipped.append(due)
            else:
                dues.append((due, alliance))
        try:
            cache = CountsCache(session, catalogue, db.surveys)
            found = _read(session, cache, dues, latest, chart=chart)
        except Exception:
            # Retried one at a time below, with their own sessions.
            log.exception("reading %d digests together failed; one at a time", len(dues))
            one_by_one = [due for due, _ in dues] + one_by_one
            found = []
        for (due, _), m in zip(dues, found, strict=False):
            if m is None:
                report.skipped.append(due)
            else:
                made.append(m)
    rendered = _render(
        made,
        areas=areas,
        tz=tz,
        min_n=min_n,
        chart=chart,
        charts=charts,
        catalogue=catalogue,
        references=references,
    )
    prepared: list[Prepared] = []
    for m, result in zip(made, rendered, strict=True):
        if isinstance(result, Exception):
            # One broken digest must not stop the others; the next tick tries again.
            log.error(
                "digest %s for alliance %d failed",
                m.due.kind,
                m.due.alliance_id,
                exc_info=result,
            )
            report.failed.append(m.due)
        else:
            prepared.append(result)
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
                charts=charts,
                references=references,
            )
        except Exception:
            log.exception("digest %s for alliance %d failed", due.kind, due.alliance_id)
            report.failed.append(due)
            continue
        (report.queued if made_one else report.skipped).append(due)
    if report.queued:
        log.info("digests queued: %d", len(report.queued))
    return report


def preview_digest(
    db: Database,
    areas: Areas,
    area_code: str,
    now: datetime,
    *,
    language: str,
    min_n: int,
    tz: ZoneInfo,
    round_id: int | None = None,
    catalogue: Catalogue | None = None,
    chart: bool = True,
    references: Mapping[str, References] | None = None,
) -> tuple[Digest, Round] | None:
    """The digest a group newly linked to the area would get now (the latest release), to check;
    nothing is recorded or sent. None when there is no such round."""
    catalogue = catalogue or default_catalogue()
    alliance = Alliance(area_code=area_code, chat_id=0, language=language, schedule={})
    due = Due(0, ON_DEMAND, now, round_id)
    with db.session() as session:
        cache = CountsCache(session, catalogue, db.surveys)
        made = _read(session, cache, [(due, alliance)], {}, chart=chart)[0]
    if made is None:
        return None
    prepared = _render(
        [made],
        areas=areas,
        tz=tz,
        min_n=min_n,
        chart=chart,
        charts=None,
        catalogue=catalogue,
        references=references,
    )[0]
    if isinstance(prepared, Exception):
        raise prepared
    return prepared.digest, made.round_


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
    min_n: int,
    tz: ZoneInfo,
    catalogue: Catalogue | None = None,
    chart: bool = True,
    charts: ChartPool | None = None,
    references: Mapping[str, References] | None = None,
) -> OnDemand:
    """The area's latest release now for a linked chat, at most once per ON_DEMAND_INTERVAL.

    No figures are cut for it: a group linked today gets the release every other output of
    the area shows.
    """
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
        tz=tz,
        min_n=min_n,
        chart=chart,
        now=now,
        charts=charts,
        references=references,
    )
    return OnDemand("queued" if made else "no_round")
