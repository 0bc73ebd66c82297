"""The batched digest tick: same digests as one at a time, once only, and nothing lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from storage.models import Alliance, DigestSent, OutboxMessage, Round
from tests.test_alliance_data import seed, standing_round
from usecases.queue_digests import FINAL, SCHEDULED, _make, run_digest_tick

RUN = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 09:00 Amsterdam; standing round opens 2 Nov
WEEK = timedelta(days=7)
AREAS = ("utrecht-overvecht", "delft-west", "rotterdam-zuid")


def link(db: Any, area: str, chat_id: int) -> int:
    with db.session() as session:
        alliance = Alliance(
            area_code=area,
            chat_id=chat_id,
            title=area,
            language="nl",
            schedule={},
            linked_at=RUN - 3 * WEEK,
        )
        session.add(alliance)
        session.flush()
        return alliance.id


def data(db: Any) -> None:
    """Answers before the previous run and in the week after it, in three areas."""
    for i, area in enumerate(AREAS):
        hoods = {"utrecht-overvecht": "overvecht-zuid", "delft-west": "delft-voorhof"}
        seed(db, area=area, neighbourhood=hoods.get(area), n=12 + i, at=RUN - 2 * WEEK, grade=6)
        seed(db, area=area, neighbourhood=None, n=11, at=RUN - WEEK + timedelta(days=2), grade=8)
        seed(db, area=area, neighbourhood=hoods.get(area), n=10, at=RUN - timedelta(hours=3))


def tick(services: Any, now: datetime) -> Any:
    return run_digest_tick(
        services.db, services.areas, now, min_n=10, tz=services.settings.tz, chart=False
    )


def queued(db: Any) -> list[tuple[Any, ...]]:
    with db.session() as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        return [(m.chat_id, m.dedupe_key, m.method, m.payload, m.file_data) for m in rows]


def sent(db: Any, after: datetime) -> list[tuple[Any, ...]]:
    with db.session() as session:
        rows = session.scalars(
            select(DigestSent).where(DigestSent.period_end > after).order_by(DigestSent.alliance_id)
        ).all()
        return [
            (r.alliance_id, r.round_id, r.kind, r.period_start, r.period_end, r.published_n)
            for r in rows
        ]


def test_batched_tick_queues_what_one_at_a_time_queues(services: Any) -> None:
    db = services.db
    data(db)
    for i, area in enumerate(AREAS):
        link(db, area, -100 - i)
    # Last week's digests, so this week's have a previous digest to compare with.
    assert len(tick(services, RUN - WEEK + timedelta(seconds=30)).queued) == 3
    with db.session() as session:
        session.execute(delete(OutboxMessage))
    report = tick(services, RUN + timedelta(seconds=30))
    assert len(report.queued) == 3 and not report.failed
    batched, batched_sent = queued(db), sent(db, RUN - WEEK)
    texts = " ".join(p["text"] for *_, p, _ in batched if "text" in p)
    assert "Sinds de vorige digest" in texts or "Deze periode" in texts
    with db.session() as session:
        session.execute(delete(OutboxMessage))
        session.execute(delete(DigestSent).where(DigestSent.period_end > RUN - WEEK))
    tz = ZoneInfo("Europe/Amsterdam")
    for due in report.queued:
        assert _make(
            db,
            due,
            areas=services.areas,
            catalogue=services.catalogue,
            tz=tz,
            min_n=10,
            chart=False,
            now=RUN + timedelta(seconds=30),
        )
    again = queued(db)
    assert [row[1] for row in again] == [row[1] for row in batched]
    for one, other in zip(again, batched, strict=True):
        assert one == other, one[1]
    assert sent(db, RUN - WEEK) == batched_sent


def test_a_digest_recorded_elsewhere_is_not_queued_again(services: Any) -> None:
    db = services.db
    data(db)
    ids = [link(db, area, -200 - i) for i, area in enumerate(AREAS)]
    with db.session() as session:
        # Another instance decided this alliance's digest already.
        session.add(
            DigestSent(
                alliance_id=ids[1],
                round_id=standing_round(db).id,
                kind=SCHEDULED,
                period_start=RUN - WEEK,
                period_end=RUN,
                published_n={},
                created_at=RUN,
            )
        )
    report = tick(services, RUN + timedelta(seconds=30))
    assert sorted(d.alliance_id for d in report.queued) == [ids[0], ids[2]]
    chats = {chat for chat, *_ in queued(db)}
    assert chats == {-200, -202}
    # Each chat's messages: text parts first, the CSV last.
    for chat in chats:
        methods = [method for c, _, method, *_ in queued(db) if c == chat]
        assert methods[-1] == "sendDocument" and set(methods[:-1]) == {"sendMessage"}
    assert tick(services, RUN + timedelta(minutes=5)).queued == []


def test_scheduled_and_final_digest_of_one_alliance_in_one_tick(services: Any) -> None:
    db = services.db
    standing = standing_round(db)
    with db.session() as session:
        published = Round(
            name="Najaarspeiling 2026",
            survey_version_id=standing.survey_version_id,
            area_codes=["delft-west"],
            opens_at=RUN - 2 * WEEK,
            closes_at=RUN - timedelta(days=1),
            max_reminders=0,
            status="closed",
            standing=False,
            opened_at=RUN - 2 * WEEK,
            closed_at=RUN - timedelta(days=1),
            created_at=RUN - 2 * WEEK,
        )
        session.add(published)
        session.flush()
        round_id = published.id
    with db.session() as session:
        closed = session.get(Round, round_id)
    seed(db, area="delft-west", neighbourhood="delft-voorhof", n=12, at=RUN - WEEK, round_=closed)
    seed(db, area="delft-west", neighbourhood="delft-voorhof", n=12, at=RUN - WEEK)
    alliance = link(db, "delft-west", -300)
    report = tick(services, RUN + timedelta(seconds=30))
    assert sorted((d.kind, d.round_id) for d in report.queued) == [
        (FINAL, round_id),
        (SCHEDULED, None),
    ]
    kinds = {(kind, round_) for _, round_, kind, *_ in sent(db, RUN - 2 * WEEK)}
    assert kinds == {(SCHEDULED, standing.id), (FINAL, round_id)}
    assert tick(services, RUN + timedelta(minutes=1)).queued == []
    assert all(chat == -300 for chat, *_ in queued(db)) and alliance


def test_enqueue_many_keeps_order_and_skips_known_keys(services: Any) -> None:
    from storage.outbox import NewMessage, enqueue, enqueue_many

    db = services.db
    now = RUN
    with db.session() as session:
        assert enqueue(
            session,
            kind="digest",
            dedupe_key="k1",
            chat_id=-1,
            method="sendMessage",
            payload={"text": "a"},
            now=now,
        )
    messages = [
        NewMessage(kind="digest", dedupe_key=key, chat_id=-1, method="sendMessage", payload={})
        for key in ("k0", "k1", "k2", "k3")
    ]
    with db.session() as session:
        assert enqueue_many(session, messages, now) == 3
        assert enqueue_many(session, messages, now) == 0
        assert enqueue_many(session, [], now) == 0
    keys = [key for _, key, *_ in queued(db)]
    assert keys == ["k1", "k0", "k2", "k3"]


def test_record_digests_reports_only_new_rows(services: Any) -> None:
    from storage.alliances import DigestRecord, record_digests

    db = services.db
    a, b = link(db, "delft-west", -400), link(db, "rotterdam-zuid", -401)
    round_id = standing_round(db).id

    def record(alliance: int) -> DigestRecord:
        return DigestRecord(alliance, round_id, SCHEDULED, RUN - WEEK, RUN, {"totaal|x": 12})

    with db.session() as session:
        assert record_digests(session, [record(a)], RUN) == [record(a)]
    with db.session() as session:
        assert record_digests(session, [record(a), record(b)], RUN) == [record(b)]
    assert {row[0] for row in sent(db, RUN - timedelta(days=1))} == {a, b}
