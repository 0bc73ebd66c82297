"""/health and /metrics over real HTTP on 127.0.0.1, with separate registries per app."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from bot.clock import FakeClock
from bot.health import CachedCheck, HealthServer, bot_api_check, database_check
from bot.metrics import Metrics, OutboxStats, outbox_stats_from
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Meta, OutboxMessage


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text -> {(sample name, sorted labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def ok() -> bool:
    return True


async def broken() -> bool:
    raise ConnectionError("https://api.telegram.org/bot123456:SECRET/getMe unreachable")


async def test_health_ok_and_unhealthy_over_http(sqlite_db: Database) -> None:
    leading = [True]
    server = HealthServer(
        checks={"database": database_check(sqlite_db), "bot_api": ok},
        leader=lambda: leading[0],
    )
    async with server, httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        assert server.port != 0
        response = await client.get("/health")
        assert response.status_code == 200
        assert response.json() == {
            "status": "ok",
            "checks": {"database": {"ok": True}, "bot_api": {"ok": True}},
            "leader": True,
        }
        # A follower is healthy too; leadership is only reported.
        leading[0] = False
        response = await client.get("/health")
        assert response.status_code == 200 and response.json()["leader"] is False

        server.checks["bot_api"] = broken
        response = await client.get("/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unhealthy"
        assert body["checks"]["bot_api"] == {"ok": False, "error": "ConnectionError"}
        assert "SECRET" not in response.text
        # /metrics without a Metrics object does not exist.
        assert (await client.get("/metrics")).status_code == 404


async def test_database_check_fails_when_database_is_unreachable() -> None:
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    server = HealthServer(checks={"database": database_check(db)})
    try:
        healthy, body = await server.report()
        assert not healthy
        assert body["checks"]["database"]["ok"] is False
    finally:
        db.dispose()


async def test_slow_check_times_out() -> None:
    import asyncio

    async def hangs() -> bool:
        await asyncio.sleep(3600)
        return True

    server = HealthServer(checks={"slow": hangs}, timeout=0.05)
    healthy, body = await server.report()
    assert not healthy and body["checks"]["slow"] == {"ok": False, "error": "TimeoutError"}


async def test_cached_check_probes_once_per_ttl() -> None:
    calls = 0

    async def get_me() -> object:
        nonlocal calls
        calls += 1
        return {"id": 1}

    check = bot_api_check(get_me, ttl=3600)
    assert await check() is True
    assert await check() is True
    assert calls == 1

    failures = 0

    async def failing() -> object:
        nonlocal failures
        failures += 1
        raise OSError("down")

    cached = CachedCheck(failing, ttl=3600, failure_ttl=0)
    for _ in range(2):
        with pytest.raises(OSError):
            await cached()
    # Failures are not kept for the long TTL: every probe retries (failure_ttl 0 here).
    assert failures == 2


async def test_metrics_counters_and_scrape_time_gauges() -> None:
    stats = OutboxStats(depth=3, oldest_age_seconds=42.5)
    metrics = Metrics(outbox=lambda: stats, leader=lambda: True)
    other = Metrics()  # a second app in the same process must not clash
    metrics.update_handled("message")
    metrics.update_handled("message")
    metrics.update_handled("callback_query")
    metrics.answer_stored()
    metrics.digest_sent()
    metrics.message_sent("invitation")
    metrics.error("handler")
    other.answer_stored()

    async with HealthServer(metrics) as server, httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{server.port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = samples(response.text)
    assert values[("buurtstem_updates_handled_total", (("kind", "message"),))] == 2
    assert values[("buurtstem_updates_handled_total", (("kind", "callback_query"),))] == 1
    assert values[("buurtstem_answers_stored_total", ())] == 1
    assert values[("buurtstem_digests_sent_total", ())] == 1
    assert values[("buurtstem_messages_sent_total", (("kind", "invitation"),))] == 1
    assert values[("buurtstem_errors_total", (("kind", "handler"),))] == 1
    assert values[("buurtstem_outbox_depth", ())] == 3
    assert values[("buurtstem_outbox_oldest_age_seconds", ())] == 42.5
    assert values[("buurtstem_leader", ())] == 1
    assert samples(other.render().decode())[("buurtstem_answers_stored_total", ())] == 1


def test_outbox_gauges_read_the_database(db: Database) -> None:
    clock = FakeClock()
    read = outbox_stats_from(db, clock)
    assert read() == OutboxStats(0, 0.0)
    start = clock.now()
    with db.session() as session:
        for n in range(3):
            at = start + timedelta(minutes=n)
            session.add(
                OutboxMessage(
                    kind="invitation",
                    dedupe_key=f"k{n}",
                    chat_id=1000 + n,
                    method="sendMessage",
                    payload={"text": "hallo"},
                    status="pending",
                    next_attempt_at=at,
                    created_at=at,
                )
            )
        # Sent rows are not waiting.
        session.add(
            OutboxMessage(
                kind="invitation",
                dedupe_key="sent",
                chat_id=2000,
                method="sendMessage",
                payload={"text": "hallo"},
                status="sent",
                next_attempt_at=start - timedelta(days=1),
                created_at=start - timedelta(days=1),
                sent_at=start - timedelta(days=1),
            )
        )
    clock.advance(timedelta(minutes=10))
    assert read() == OutboxStats(3, 600.0)
    metrics = Metrics(outbox=read)
    values = samples(metrics.render().decode())
    assert values[("buurtstem_outbox_depth", ())] == 3
    assert values[("buurtstem_outbox_stats_up", ())] == 1


def test_outbox_gauges_survive_a_database_error() -> None:
    def down() -> OutboxStats:
        raise ConnectionError("database down")

    values = samples(Metrics(outbox=down).render().decode())
    assert values[("buurtstem_outbox_stats_up", ())] == 0
    assert ("buurtstem_outbox_depth", ()) not in values


async def _database_report(db: Database) -> dict[str, object]:
    server = HealthServer(checks={"database": database_check(db)})
    healthy, body = await server.report()
    checks = body["checks"]
    assert isinstance(checks, dict)
    return {"healthy": healthy, **checks["database"]}


async def test_database_check_fails_when_the_database_cannot_be_written(tmp_path: Path) -> None:
    # Every update is a write: a database that only reads is not healthy.
    path = tmp_path / "buurtstem.db"
    upgrade(f"sqlite:///{path}")
    writable = Database(f"sqlite:///{path}")
    read_only = Database(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        assert await _database_report(writable) == {"healthy": True, "ok": True}
        assert await _database_report(read_only) == {
            "healthy": False,
            "ok": False,
            "error": "OperationalError",
        }
        with writable.session() as session:  # the probe leaves nothing behind
            assert session.scalars(select(Meta)).all() == []
    finally:
        writable.dispose()
        read_only.dispose()


@pytest.mark.postgres
async def test_database_check_fails_on_a_read_only_postgresql(postgres_url: str) -> None:
    # As on a hot standby, or a database set default_transaction_read_only.
    upgrade(postgres_url)
    read_only = Database(
        postgres_url, connect_args={"options": "-c default_transaction_read_only=on"}
    )
    writable = Database(postgres_url)
    try:
        assert await _database_report(writable) == {"healthy": True, "ok": True}
        report = await _database_report(read_only)
        assert report["healthy"] is False and report["ok"] is False
        assert report["error"] == "InternalError"  # psycopg's ReadOnlySqlTransaction class
    finally:
        writable.dispose()
        read_only.dispose()
