"""The outbox's SQL on SQLite and PostgreSQL: enqueue, due order, claims, results, status, purge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.clock import FakeClock
from storage import outbox as store
from storage.db import Database
from storage.models import OutboxMessage, Resident


def _enqueue(db: Database, clock: FakeClock, key: str, chat_id: int = 100, **extra: object) -> bool:
    with db.session() as session:
        return store.enqueue(
            session,
            kind=str(extra.pop("kind", "invitation")),
            dedupe_key=key,
            chat_id=chat_id,
            method="sendMessage",
            payload={"text": f"hello {key}"},
            now=clock.now(),
            **extra,  # type: ignore[arg-type]
        )


def _resident(db: Database, clock: FakeClock) -> int:
    with db.session() as session:
        resident = Resident(
            pseudonym="p" * 64,
            consented_at=clock.now(),
            created_at=clock.now(),
            last_seen_at=clock.now(),
        )
        session.add(resident)
        session.flush()
        return resident.id


def _row(db: Database, message_id: int) -> OutboxMessage:
    with db.session() as session:
        row = session.get(OutboxMessage, message_id)
        assert row is not None
        session.expunge(row)
        return row


def test_enqueue_is_idempotent_per_dedupe_key(db: Database, clock: FakeClock) -> None:
    assert _enqueue(db, clock, "round-1:resident-1") is True
    assert _enqueue(db, clock, "round-1:resident-1", chat_id=999) is False
    assert _enqueue(db, clock, "round-1:resident-2") is True
    with db.session() as session:
        rows = session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()
        assert [(r.dedupe_key, r.chat_id, r.status, r.attempts) for r in rows] == [
            ("round-1:resident-1", 100, "pending", 0),
            ("round-1:resident-2", 100, "pending", 0),
        ]
        assert rows[0].next_attempt_at == clock.now()


def test_enqueue_rolls_back_with_the_callers_decision(db: Database, clock: FakeClock) -> None:
    with pytest.raises(RuntimeError), db.session() as session:
        store.enqueue(
            session,
            kind="invitation",
            dedupe_key="k",
            chat_id=1,
            method="sendMessage",
            payload={"text": "x"},
            now=clock.now(),
        )
        raise RuntimeError("the decision failed")
    with db.session() as session:
        assert store.status_counts(session) == []


def test_enqueue_stores_files(db: Database, clock: FakeClock) -> None:
    with db.session() as session:
        store.enqueue(
            session,
            kind="digest",
            dedupe_key="digest-1-csv",
            chat_id=-1001,
            is_group=True,
            method="sendDocument",
            payload={"caption": "CSV"},
            file_name="digest.csv",
            file_data=b"a,b\n1,2\n",
            now=clock.now(),
        )
    with db.session() as session:
        claimed = store.claim(session, 1, clock.now())
    assert claimed is not None
    assert (claimed.file_name, claimed.file_data, claimed.is_group) == (
        "digest.csv",
        b"a,b\n1,2\n",
        True,
    )


def test_load_due_keeps_order_per_chat_and_skips_future_rows(
    db: Database, clock: FakeClock
) -> None:
    for key, chat in [("a1", 1), ("a2", 1), ("b1", 2), ("c1", 3)]:
        _enqueue(db, clock, key, chat_id=chat)
    with db.session() as session:
        # c1 is retried later: not due now.
        store.claim(session, 4, clock.now())
        store.schedule_retry(session, 4, clock.now() + timedelta(seconds=30), "TimedOut")
    with db.session() as session:
        due = store.load_due(session, clock.now(), 10)
    # a2 waits behind a1 (same chat); c1 is not due yet.
    assert [d.id for d in due] == [1, 3]
    with db.session() as session:
        assert store.claim(session, 1, clock.now()) is not None
        assert [d.id for d in store.load_due(session, clock.now(), 10)] == [3]
        store.mark_sent(session, 1, 555, clock.now())
        assert [d.id for d in store.load_due(session, clock.now(), 10)] == [2, 3]
    clock.advance(timedelta(seconds=31))
    with db.session() as session:
        assert [d.id for d in store.load_due(session, clock.now(), 2)] == [2, 3]
        assert [d.id for d in store.load_due(session, clock.now(), 10)] == [2, 3, 4]


def test_claim_is_exclusive_and_counts_the_attempt(db: Database, clock: FakeClock) -> None:
    _enqueue(db, clock, "k")
    with db.session() as session:
        first = store.claim(session, 1, clock.now())
    with db.session() as session:
        second = store.claim(session, 1, clock.now())
    assert first is not None and first.attempts == 1
    assert first.payload == {"text": "hello k"}
    assert second is None
    assert _row(db, 1).status == "sending"


def test_results_only_apply_to_rows_being_sent(db: Database, clock: FakeClock) -> None:
    _enqueue(db, clock, "k")
    with db.session() as session:
        assert store.mark_sent(session, 1, 7, clock.now()) is False  # not claimed
        store.claim(session, 1, clock.now())
        assert store.mark_sent(session, 1, 7, clock.now()) is True
        assert store.mark_failed(session, 1, "late", clock.now()) is False
    row = _row(db, 1)
    assert (row.status, row.telegram_message_id, row.sent_at) == ("sent", 7, clock.now())


def test_flood_wait_gives_the_attempt_back(db: Database, clock: FakeClock) -> None:
    _enqueue(db, clock, "k")
    later = clock.now() + timedelta(seconds=5)
    with db.session() as session:
        store.claim(session, 1, clock.now())
        store.schedule_retry(session, 1, later, "RetryAfter", count_attempt=False)
    row = _row(db, 1)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, later)
    with db.session() as session:
        store.claim(session, 1, later)  # not due yet at `now`... but due at `later`
        store.schedule_retry(session, 1, later, "TimedOut")
    assert _row(db, 1).attempts == 1


def test_claim_refuses_rows_not_yet_due(db: Database, clock: FakeClock) -> None:
    _enqueue(db, clock, "k")
    with db.session() as session:
        store.claim(session, 1, clock.now())
        store.schedule_retry(session, 1, clock.now() + timedelta(seconds=5), "TimedOut")
    with db.session() as session:
        assert store.claim(session, 1, clock.now()) is None


def test_failure_and_unreachable_resident(db: Database, clock: FakeClock) -> None:
    resident_id = _resident(db, clock)
    _enqueue(db, clock, "k", resident_id=resident_id)
    reason = "Forbidden: bot was blocked by the user"
    with db.session() as session:
        store.claim(session, 1, clock.now())
        store.mark_failed(session, 1, reason, clock.now())
        assert store.mark_resident_unreachable(session, resident_id, reason, clock.now())
    with db.session() as session:
        resident = session.get(Resident, resident_id)
        assert resident is not None
        assert (resident.unreachable_at, resident.unreachable_reason) == (clock.now(), reason)
        failures = store.recent_failures(session)
    assert [(f.id, f.status, f.last_error, f.resident_id) for f in failures] == [
        (1, "failed", reason, resident_id)
    ]


def test_long_reasons_are_clipped(db: Database, clock: FakeClock) -> None:
    _enqueue(db, clock, "k")
    with db.session() as session:
        store.claim(session, 1, clock.now())
        store.mark_failed(session, 1, "x" * 2000, clock.now())
    error = _row(db, 1).last_error
    assert error is not None and len(error) == 500 and error.endswith("...")


def test_interrupted_rows_become_unknown_not_resent(db: Database, clock: FakeClock) -> None:
    _enqueue(db, clock, "old")
    _enqueue(db, clock, "new", chat_id=200)
    with db.session() as session:
        store.claim(session, 1, clock.now())
    clock.advance(timedelta(minutes=20))
    with db.session() as session:
        store.claim(session, 2, clock.now())
    with db.session() as session:
        # Only rows claimed before the cut-off: a live sender's fresh claim is left alone.
        assert (
            store.recover_interrupted(session, clock.now(), clock.now() - timedelta(minutes=10))
            == 1
        )
        assert store.load_due(session, clock.now(), 10) == []
    assert _row(db, 1).status == "unknown"
    assert _row(db, 2).status == "sending"
    with db.session() as session:
        assert store.retry_failed(session, clock.now()) == 0
        assert store.retry_failed(session, clock.now(), include_unknown=True) == 1
    assert (_row(db, 1).status, _row(db, 1).attempts) == ("pending", 0)


def test_requeue_interrupted_is_the_at_least_once_choice(db: Database, clock: FakeClock) -> None:
    _enqueue(db, clock, "k")
    with db.session() as session:
        store.claim(session, 1, clock.now())
    with db.session() as session:
        assert (
            store.requeue_interrupted(session, clock.now(), clock.now() + timedelta(seconds=1)) == 1
        )
    assert _row(db, 1).status == "pending"


def test_status_counts_oldest_waiting_and_retry_filters(db: Database, clock: FakeClock) -> None:
    _enqueue(db, clock, "i1", chat_id=1)
    clock.advance(timedelta(minutes=5))
    _enqueue(db, clock, "i2", chat_id=2)
    _enqueue(db, clock, "d1", chat_id=-5, kind="digest", is_group=True)
    with db.session() as session:
        assert store.oldest_waiting(session) == clock.now() - timedelta(minutes=5)
        store.claim(session, 1, clock.now())
        store.mark_sent(session, 1, 1, clock.now())
        store.claim(session, 3, clock.now())
        store.mark_failed(session, 3, "BadRequest: Chat not found", clock.now())
        store.claim(session, 2, clock.now())
        store.mark_failed(session, 2, "Forbidden: bot was blocked by the user", clock.now())
    with db.session() as session:
        counts = store.status_counts(session)
        assert [(c.kind, c.status, c.count) for c in counts] == [
            ("digest", "failed", 1),
            ("invitation", "failed", 1),
            ("invitation", "sent", 1),
        ]
        assert store.oldest_waiting(session) is None
        assert store.retry_failed(session, clock.now(), kinds=["digest"]) == 1
        assert store.retry_failed(session, clock.now(), ids=[1]) == 0  # sent rows stay sent
    assert _row(db, 3).status == "pending"
    assert _row(db, 2).status == "failed"


def test_purge_deletes_only_old_final_rows(db: Database, clock: FakeClock) -> None:
    _enqueue(db, clock, "a", chat_id=1)
    _enqueue(db, clock, "b", chat_id=2)
    with db.session() as session:
        store.claim(session, 1, clock.now())
        store.mark_sent(session, 1, 1, clock.now())
    clock.advance(timedelta(days=31))
    with db.session() as session:
        assert store.purge(session, clock.now() - timedelta(days=30)) == 1
        assert [c.status for c in store.status_counts(session)] == ["pending"]
        with pytest.raises(ValueError):
            store.purge(session, clock.now(), statuses=("pending",))


def test_next_due_at(db: Database, clock: FakeClock) -> None:
    with db.session() as session:
        assert store.next_due_at(session) is None
    _enqueue(db, clock, "a")
    with db.session() as session:
        assert store.next_due_at(session) == clock.now()
