"""Many residents at once with Telegram far away: one instance, over HTTP, SQLite and PostgreSQL.

For each database, number of residents and Bot API latency it starts a fresh database, the Bot
API emulator over HTTP (with that latency, +/- a fifth as jitter) and one `buurtstem run
--webhook` subprocess. All residents then go through consent, language, postcode and the whole
default survey at the same time, each waiting for the bot's next message before the next tap,
as a person does (`--think` adds a reading pause before each tap). It prints updates per second
and the time from a tap to the bot's next message (p50, p99).

Each run is repeated with the ceiling: benchmarks/replay_bot.py, a webhook bot that receives the
same updates and makes exactly the Bot API calls buurtstem made for them (recorded from the
emulator), with nothing else to do. full/ceiling says how much of the possible rate buurtstem
reaches; the rate at 100 ms against 0 ms says how well it hides the network.

    . scripts/start-postgres
    .venv/bin/python benchmarks/concurrency.py                       # 50 and 200, 0 and 100 ms
    .venv/bin/python benchmarks/concurrency.py --residents 200 --latency 100 --think 3
    .venv/bin/python benchmarks/concurrency.py --residents 200 --latency 100 --refuse-429 0.05 --refuse-5xx 0.02

With --refuse-429/--refuse-5xx a share of buurtstem's replies is refused (429 with retry_after 1,
or 502): every resident must still finish; the retries show as a lower rate and a longer p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.instances import (  # noqa: E402
    HOOK_PATH,
    SECRET,
    BotProcess,
    SurveyResident,
    free_port,
    make_database,
)
from bot.settings import Settings  # noqa: E402
from sandbox.emulator import BotAPIEmulator  # noqa: E402
from sandbox.network import Network  # noqa: E402

REPLAYED = ("answerCallbackQuery", "editMessageText", "sendMessage")


@dataclass
class TimedResident(SurveyResident):
    """A SurveyResident who notes when each of its updates was made, and may pause to read."""

    think: float = 0.0
    made: list[float] = field(default_factory=list)

    async def _act(self, action: Callable[[], object], done: Callable[[], bool]) -> None:
        if self.think:
            await asyncio.sleep(self.rng.uniform(0.5, 1.5) * self.think)

        def timed() -> object:
            self.made.append(time.monotonic())
            return action()

        await super()._act(timed, done)


@dataclass
class Run:
    """What one run measured."""

    label: str
    updates: int
    seconds: float
    latencies: list[float]
    repeats: int
    bot_cpu: float = 0.0  # CPU seconds the bot process used during the run
    driver_cpu: float = 0.0  # and this process (emulator, residents)

    @property
    def rate(self) -> float:
        return self.updates / self.seconds

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def row(self) -> str:
        return (
            f"{self.label:<34} {self.updates:>7} {self.seconds:>7.1f} {self.rate:>9.1f} "
            f"{1000 * statistics.median(self.latencies):>7.0f} {1000 * self.quantile(0.99):>7.0f}"
            f" {self.repeats:>6} {1000 * self.bot_cpu / self.updates:>7.1f}"
            f" {1000 * self.driver_cpu / self.updates:>7.1f}"
        )


def recording_of(emulator: BotAPIEmulator, people: list[TimedResident]) -> dict[str, Any]:
    """Per chat and update, the calls the bot made for it (message ids as "n-th sent")."""
    recording: dict[str, Any] = {}
    by_chat: dict[int, list[Any]] = defaultdict(list)
    for record in emulator.requests:
        if record.method in REPLAYED and record.status == 200:
            chat = record.params.get("chat_id")
            if chat is None:
                query = emulator.callback_queries.get(str(record.params.get("callback_query_id")))
                chat = query.chat_id if query else None
            if chat is not None:
                by_chat[int(chat)].append(record)
    for person in people:
        chat = person.chat_id
        nth = {
            m.message_id: n
            for n, m in enumerate(
                m for m in emulator.messages(chat) if m.from_bot and m.method == "sendMessage"
            )
        }
        bounds = [*person.made, float("inf")]
        updates: list[list[tuple[str, dict[str, Any]]]] = [[] for _ in person.made]
        for record in by_chat[chat]:
            # The update being handled when the call began: the last one made before it.
            k = max(0, next(i for i, t in enumerate(bounds) if t > record.started) - 1)
            params = dict(record.params)
            if "message_id" in params:
                params["message_id"] = {"nth": nth[int(params["message_id"])]}
            updates[k].append((record.method, params))
        recording[str(chat)] = updates
    return recording


async def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the bot exited with {process.returncode}")
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise TimeoutError("the bot did not listen")


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of a process: this one, or `pid` (Linux /proc)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(
    emulator: BotAPIEmulator,
    residents: int,
    seed: int,
    think: float,
    label: str,
    bot_pid: int | None = None,
) -> tuple[Run, list[TimedResident]]:
    """All residents through the survey at once; the measured run."""
    rng = random.Random(seed)
    people = [
        TimedResident(
            emulator,
            emulator.add_user(f"Bewoner {i}"),
            random.Random(rng.random()),
            timeout=60.0,
            think=think,
        )
        for i in range(residents)
    ]
    first_update = emulator.last_update_id
    bot_before = cpu_seconds(bot_pid) if bot_pid else 0.0
    driver_before = cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(p.onboard() for p in people))
    await asyncio.gather(*(p.answer_survey() for p in people))
    elapsed = time.perf_counter() - started
    run = Run(
        label,
        emulator.last_update_id - first_update,
        elapsed,
        [x for p in people for x in p.latencies],
        sum(p.repeats for p in people),
        bot_cpu=(cpu_seconds(bot_pid) - bot_before) if bot_pid else 0.0,
        driver_cpu=cpu_seconds() - driver_before,
    )
    return run, people


def emulator_for(
    latency_ms: float, seed: int, refuse_429: float = 0.0, refuse_5xx: float = 0.0
) -> BotAPIEmulator:
    network = Network(
        latency=latency_ms / 1000,
        jitter=latency_ms / 5000,
        refuse_429=refuse_429,
        refuse_5xx=refuse_5xx,
        seed=seed,
    )
    return BotAPIEmulator(network=network)


async def full_stack(
    database_url: str, residents: int, latency_ms: float, args: argparse.Namespace
) -> tuple[Run, dict[str, Any]]:
    """buurtstem itself: one `buurtstem run --webhook` on `database_url`."""
    from sandbox.server import EmulatorServer
    from storage.migrate import upgrade

    emulator = emulator_for(latency_ms, args.seed, args.refuse_429, args.refuse_5xx)
    server = EmulatorServer(emulator, webhook_retry_delay=0.1)
    await server.start()
    await asyncio.to_thread(upgrade, database_url)
    env = {
        "BUURTSTEM_CONCURRENT_UPDATES": str(args.concurrency),
        "BUURTSTEM_BOT_API_CONNECTIONS": str(args.connections),
        "BUURTSTEM_DB_POOL_SIZE": str(args.db_workers),
        "BUURTSTEM_LOG_LEVEL": "WARNING",
    }
    bot = BotProcess(database_url, server.url, emulator.token, extra_env=env)
    bot.start()
    try:
        await bot.wait_ready()
        label = f"buurtstem, {latency_ms:.0f} ms"
        assert bot.process is not None
        run, people = await drive(
            emulator, residents, args.seed, args.think, label, bot.process.pid
        )
        return run, recording_of(emulator, people)
    finally:
        if bot.process is not None and bot.process.poll() is None:
            bot.signal(signal.SIGTERM)
            with contextlib.suppress(Exception):
                await bot.wait_exit(30)
        bot.kill()
        await server.stop()


async def ceiling(
    recording: dict[str, Any], residents: int, latency_ms: float, args: argparse.Namespace
) -> Run:
    """The same updates to benchmarks/replay_bot.py: the same calls, nothing else."""
    from sandbox.server import EmulatorServer

    emulator = emulator_for(latency_ms, args.seed)
    server = EmulatorServer(emulator, webhook_retry_delay=0.1)
    await server.start()
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(recording, file)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUURTSTEM_")}
    env.update(
        {
            "BUURTSTEM_TOKEN": emulator.token,
            "BUURTSTEM_API_BASE_URL": server.url,
            "BUURTSTEM_WEBHOOK_URL": f"http://127.0.0.1:{port}{HOOK_PATH}",
            "BUURTSTEM_WEBHOOK_SECRET": SECRET,
            "BUURTSTEM_WEBHOOK_PORT": str(port),
            "BUURTSTEM_CONCURRENT_UPDATES": str(args.concurrency),
            "BUURTSTEM_BOT_API_CONNECTIONS": str(args.connections),
        }
    )
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "replay_bot.py"), file.name],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_listening(port, process)
        while not emulator.webhook_url:
            await asyncio.sleep(0.05)
        label = f"same calls only, {latency_ms:.0f} ms"
        run, _ = await drive(emulator, residents, args.seed, args.think, label, process.pid)
        return run
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        await server.stop()
        os.unlink(file.name)


async def main_async(args: argparse.Namespace) -> None:
    server_url = os.environ.get("BUURTSTEM_TEST_POSTGRES_URL")
    backends = args.database
    if "postgres" in backends and not server_url:
        raise SystemExit(
            "PostgreSQL runs need BUURTSTEM_TEST_POSTGRES_URL (. scripts/start-postgres)"
        )
    print(
        f"one instance, webhook over HTTP, BUURTSTEM_CONCURRENT_UPDATES={args.concurrency}, "
        f"BUURTSTEM_BOT_API_CONNECTIONS={args.connections}, "
        f"BUURTSTEM_DB_POOL_SIZE={args.db_workers}, "
        f"think time {args.think} s, jitter = latency/5",
        flush=True,
    )
    if args.refuse_429 or args.refuse_5xx:
        print(
            f"buurtstem's runs: {args.refuse_429:.0%} of replies refused with 429 (retry after 1 s)"
            f" and {args.refuse_5xx:.0%} with 502; the ceiling's runs without faults",
            flush=True,
        )
    header = (
        f"{'run':<34} {'updates':>7} {'seconds':>7} {'updates/s':>9} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'repeat':>6} {'bot CPU':>7} {'driver':>7}"
    )
    print("(bot CPU, driver: CPU ms per update of the bot process and of this one)")
    for backend in backends:
        for residents in args.residents:
            print(f"\n{backend}, {residents} residents", flush=True)
            print(header, flush=True)
            rates: dict[float, float] = {}
            for latency in args.latency:
                if backend == "postgres":
                    assert server_url is not None
                    url, drop = make_database(server_url)
                else:
                    folder = tempfile.mkdtemp(prefix="bench-conc-")
                    url, drop = f"sqlite:///{folder}/bench.db", (lambda: None)
                try:
                    run, recording = await full_stack(url, residents, latency, args)
                finally:
                    drop()
                print(run.row(), flush=True)
                rates[latency] = run.rate
                if not args.no_ceiling:
                    top = await ceiling(recording, residents, latency, args)
                    print(top.row(), flush=True)
                    print(f"{'  full/ceiling':<34} {run.rate / top.rate:>33.2f}", flush=True)
            if 0 in rates:
                for latency, rate in rates.items():
                    if latency:
                        print(
                            f"{f'  rate at {latency:.0f} ms / at 0 ms':<34} "
                            f"{rate / rates[0]:>33.2f}",
                            flush=True,
                        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--latency", type=float, nargs="+", default=[0, 100], help="ms per call")
    parser.add_argument("--database", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--think", type=float, default=0.0, help="mean reading pause, seconds")
    parser.add_argument(
        "--refuse-429", type=float, default=0.0, help="share of replies refused with 429 (0-1)"
    )
    parser.add_argument(
        "--refuse-5xx", type=float, default=0.0, help="share of replies refused with 502 (0-1)"
    )
    parser.add_argument("--concurrency", type=int, default=Settings().concurrent_updates)
    parser.add_argument("--connections", type=int, default=Settings().bot_api_connections)
    parser.add_argument("--db-workers", type=int, default=Settings().db_pool_size)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-ceiling", action="store_true", help="skip the replay runs")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
