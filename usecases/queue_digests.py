"""Queue alliance digests: those due (the tick) and one on demand (/digest).

A tick reads what is due, computes each digest outside any write transaction, then in one short
transaction records the DigestSent row and queues text, chart and CSV in the outbox. The unique
(alliance, kind, period_end) row makes every digest happen once, whoever decides it; the latest
missed run is caught up after downtime, earlier missed ones are not. Each function owns its
transactions and returns what it did.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from digests import Digest, DigestInput, build_digest
from digests.schedule import DEFAULT_SCHEDULE, Schedule, ScheduleError
from locales.catalogue import Catalogue, default_catalogue
from storage import alliances as store
from storage import rounds as round_store
from storage.db import Database
from storage.digest_counts import CountsCache
from storage.models import Alliance, DigestSent, Round
from storage.outbox import NewMessage, enqueue_many
from storage.rounds import pick_round
from surveys.areas import Areas
from usecases.digest_data import digest_input

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
    closed = round_store.closed_published_rounds(session)
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
        round_ = round_store.get_round(session, due.round_id)
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
    linked = set(store.alliances_by_id(session, ids))
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


def _render(
    due: Due,
    alliance: Alliance,
    made: tuple[DigestInput, dict[str, Any]],
    *,
    min_n: int,
    chart: bool,
) -> Prepared:
    """Render a computed digest in the alliance's language (no transaction)."""
    data, meta = made
    digest = build_digest(
        data,
        lang=alliance.language,
        min_n=min_n,
        last_published=meta["last_published"],
        chart=chart,
    )
    return Prepared(
        due=due,
        alliance_id=alliance.id,
        chat_id=alliance.chat_id,
        area_code=alliance.area_code,
        round_id=meta["round_id"],
        period_start=meta["period_start"],
        previous_id=meta["previous_id"],
        digest=digest,
    )


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
        alliance = store.get_alliance(session, due.alliance_id)
        if alliance is None:
            return False
        cache = CountsCache(session, catalogue, db.surveys)
        made = _prepare(cache, alliance, due, areas=areas, tz=tz)
    if made is None:
        return False
    prepared = _render(due, alliance, made, min_n=min_n, chart=chart)
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
) -> TickReport:
    """Queue every digest that is due at `now`; safe to run any number of times.

    All due digests are computed in one read transaction from shared counts, rendered, then
    recorded and queued in one write transaction (queue_digests). An alliance's second digest
    in the same tick (a final digest next to a scheduled one), and any digest whose batched
    computation failed, goes one at a time afterwards, as _make does it.
    """
    catalogue = catalogue or default_catalogue()
    report = TickReport()
    one_by_one: list[Due] = []
    computed: list[tuple[Due, Alliance, tuple[DigestInput, dict[str, Any]]]] = []
    with db.session() as session:
        latest = store.last_digests(session)
        report.due = due_digests(session, now, tz, latest)
        cache = CountsCache(session, catalogue, db.surveys)
        first: list[Due] = []
        seen: set[int] = set()
        for due in report.due:
            (one_by_one if due.alliance_id in seen else first).append(due)
            seen.add(due.alliance_id)
        alliances = store.alliances_by_id(session, (d.alliance_id for d in first))
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
                computed.append((due, alliance, made))
    prepared: list[Prepared] = []
    for due, alliance, made in computed:
        try:
            prepared.append(_render(due, alliance, made, min_n=min_n, chart=chart))
        except Exception:
            # One broken digest must not stop the others; the next tick tries again.
            log.exception("digest %s for alliance %d failed", due.kind, due.alliance_id)
            report.failed.append(due)
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
    min_n: int,
    tz: ZoneInfo,
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
        tz=tz,
        min_n=min_n,
        chart=chart,
        now=now,
    )
    return OnDemand("queued" if made else "no_round")
