"""Outbox benchmark: N invitations through the Bot API emulator with Telegram's limits enforced.

Two modes:
- controlled clock (default): the emulator and the sender share one FakeClock; the sender's
  sleeps move it. The achieved rate is in simulated seconds, so it measures how well the
  sender uses the limit, independent of this machine's speed; wall time is printed too.
- real time (`--real-time`): both on the real clock, emulator and sender at `--rate`.

Run: .venv/bin/python -m benchmarks.outbox [--messages 10000] [--real-time --rate 100]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from telegram import Bot

from bot.clock import Clock, FakeClock, SystemClock
from bot.outbox import OutboxSender
from sandbox import BotAPIEmulator, RateLimits, emulator_request
from storage import outbox as store
from storage.db import Database
from storage.migrate import upgrade
from storage.models import OutboxMessage


async def run(messages: int, rate: float, real_time: bool, database_url: str | None) -> None:
    """Queue, send, check the emulator's record, print the figures."""
    url = database_url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'outbox-bench.db'}"
    upgrade(url)
    db = Database(url)
    clock: Clock = SystemClock() if real_time else FakeClock()
    limits = RateLimits(enabled=True, global_per_second=int(rate))
    emulator = BotAPIEmulator(clock=None if real_time else clock, limits=limits)
    users = [emulator.add_user(f"Bewoner {n}", started=True) for n in range(messages)]
    with db.session() as session:
        for user in users:
            store.enqueue(
                session,
                kind="invitation",
                dedupe_key=f"bench:{user.id}",
                chat_id=user.id,
                method="sendMessage",
                payload={"text": "Doet u mee met de Buurtpeiling?", "parse_mode": "HTML"},
                now=clock.now(),
            )

    async def fake_sleep(seconds: float) -> None:
        assert isinstance(clock, FakeClock)
        clock.advance(timedelta(seconds=max(0.0, seconds)))
        await asyncio.sleep(0)

    bot = Bot(emulator.token, request=emulator_request(emulator, connection_pool_size=16))
    sender = OutboxSender(
        db,
        bot,
        clock,
        rate=rate,
        sleep=None if real_time else fake_sleep,
        # Requests take no simulated time: one in flight keeps arrival == start.
        max_in_flight=8 if real_time else 1,
        batch_size=500,
    )
    async with bot:
        started_clock = clock.now()
        started_wall = time.perf_counter()
        report = await sender.run_once()
        wall = time.perf_counter() - started_wall
        elapsed = (clock.now() - started_clock).total_seconds()

    sends = [r.time for r in emulator.requests if r.method == "sendMessage" and r.status == 200]
    span = (max(sends) - min(sends)) if len(sends) > 1 else 0.0
    delivered = Counter(len(emulator.sent_to(user.id)) for user in users)
    lost = delivered.get(0, 0)
    doubled = sum(count for n, count in delivered.items() if n > 1)
    with db.session() as session:
        statuses = Counter(row.status for row in session.query(OutboxMessage))
    db.dispose()
    achieved = (len(sends) - 1) / span if span else float("nan")
    mode = "real time" if real_time else "controlled clock"
    print(f"outbox benchmark ({mode}): {messages} invitations, limit {rate:g} msg/s")
    print(f"  delivered:          {len(sends)} in {span:.2f} s ({elapsed:.2f} s run) on the {mode}")
    print(f"  achieved rate:      {achieved:.2f} msg/s = {100 * achieved / rate:.1f}% of the limit")
    print(f"  429 responses:      {emulator.rate_limited_count} (sender saw {report.rate_limited})")
    print(f"  lost / duplicated:  {lost} / {doubled}")
    print(f"  outbox rows:        {dict(statuses)}")
    print(
        f"  wall time:          {wall:.1f} s ({len(sends) / wall:.0f} msg/s of CPU on this machine)"
    )


def main() -> None:
    """Parse options and run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.outbox", description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=30.0, help="limit in emulator and sender")
    parser.add_argument("--real-time", action="store_true")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.rate, args.real_time, args.database_url))


if __name__ == "__main__":
    main()
