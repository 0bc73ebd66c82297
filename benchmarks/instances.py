"""Several `buurtstem run --webhook` instances behind the emulator: helpers and the benchmark.

The helpers are shared with tests/test_instances.py and tests/test_run_*.py:

- `RoundRobinProxy`: what nginx does in production, spreading the emulator's webhook POSTs over
  the instances and passing a POST on to the next instance when one does not answer;
- `BotProcess`: one `buurtstem run` subprocess (webhook or polling), its /health, its log;
- `SurveyResident`: a simulated resident who goes through consent, language, postcode and the
  default survey by tapping in the emulator, remembering what was tapped.

Benchmark (PostgreSQL required):

    BUURTSTEM_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:54329/postgres \\
        .venv/bin/python benchmarks/instances.py --residents 30

For 1, 2 and 3 instances it starts a fresh database, the emulator, the proxy and the instances,
lets every resident answer the whole survey at once (each waits for the bot's reply before the
next tap, like a person) and prints updates per second and the p50/p99 time from tap to reply.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from aiohttp import ClientError, ClientSession, ClientTimeout, web

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sandbox.emulator import BotAPIEmulator, SimUser, StoredMessage  # noqa: E402

SECRET = "instances-test-secret_0123456789"
# The pseudonym key of every BotProcess (`buurtstem run` refuses short or public keys).
PSEUDONYM_KEY = "instances-test-key-not-for-production-use"
HOOK_PATH = "/telegram/hook"
QUESTION = "v1|q|"


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- the proxy ----------------------------------------------------------------------------


class RoundRobinProxy:
    """An HTTP proxy that spreads POSTs over backends in turn; a dead backend is passed over."""

    def __init__(self, backends: list[str], *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.backends = list(backends)
        self.host = host
        self.port = port
        self.forwarded: dict[str, int] = dict.fromkeys(self.backends, 0)
        self.failed_over = 0
        self._turn = itertools.count()
        self._runner: web.AppRunner | None = None
        self._client: ClientSession | None = None

    @property
    def url(self) -> str:
        """Root URL of the proxy."""
        return f"http://{self.host}:{self.port}"

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._client is not None
        body = await request.read()
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("content-type", "x-telegram-bot-api-secret-token")
        }
        start = next(self._turn)
        for step in range(len(self.backends)):
            backend = self.backends[(start + step) % len(self.backends)]
            try:
                async with self._client.post(
                    backend + request.path_qs, data=body, headers=headers
                ) as answer:
                    payload = await answer.read()
                    self.forwarded[backend] += 1
                    return web.Response(status=answer.status, body=payload)
            except (TimeoutError, ClientError, OSError):
                # Like nginx's proxy_next_upstream error: updates are idempotent, try the next.
                self.failed_over += 1
                continue
        return web.Response(status=502, text="no backend answered")

    async def start(self) -> None:
        """Bind and serve."""
        self._client = ClientSession(timeout=ClientTimeout(total=10, connect=2))
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(getattr(site, "_server", None), "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def __aenter__(self) -> RoundRobinProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# ---- bot processes ------------------------------------------------------------------------


def buurtstem_command() -> list[str]:
    """How to start the CLI with this interpreter (the console script may not be installed)."""
    return [sys.executable, "-c", "from bot.cli import main; main()"]


@dataclass
class BotProcess:
    """One `buurtstem run` subprocess with its own ports and log file."""

    database_url: str
    api_base_url: str
    token: str
    webhook: bool = True
    webhook_url: str | None = None
    webhook_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    _log: IO[bytes] | None = None

    @property
    def backend(self) -> str:
        """The instance's webhook server root (what the proxy forwards to)."""
        return f"http://127.0.0.1:{self.webhook_port}"

    def environment(self) -> dict[str, str]:
        """The environment of the subprocess: settings by BUURTSTEM_* variables only."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BUURTSTEM_")}
        env.update(
            {
                "BUURTSTEM_TOKEN": self.token,
                "BUURTSTEM_API_BASE_URL": self.api_base_url,
                "BUURTSTEM_DATABASE_URL": self.database_url,
                "BUURTSTEM_PSEUDONYM_KEY": PSEUDONYM_KEY,
                "BUURTSTEM_METRICS_PORT": str(self.metrics_port),
                "BUURTSTEM_LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.webhook:
            env.update(
                {
                    "BUURTSTEM_WEBHOOK_URL": self.webhook_url or self.backend + HOOK_PATH,
                    "BUURTSTEM_WEBHOOK_SECRET": SECRET,
                    "BUURTSTEM_WEBHOOK_LISTEN": "127.0.0.1",
                    "BUURTSTEM_WEBHOOK_PORT": str(self.webhook_port),
                }
            )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        """Start the subprocess (its stderr goes to a log file)."""
        log_dir = self.log_dir or Path(tempfile.mkdtemp(prefix="buurtstem-run-"))
        self.log_path = log_dir / f"bot-{self.metrics_port}.log"
        self._log = self.log_path.open("wb")
        args = [*buurtstem_command(), "run"] + (["--webhook"] if self.webhook else [])
        self.process = subprocess.Popen(
            args, cwd=ROOT, env=self.environment(), stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    async def health(self) -> dict[str, Any] | None:
        """The /health JSON, or None when the instance does not answer (yet)."""
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                answer = await client.get(f"http://127.0.0.1:{self.metrics_port}/health")
            return dict(answer.json())
        except (httpx.HTTPError, ValueError):
            return None

    async def metrics(self) -> str:
        """The /metrics text."""
        async with httpx.AsyncClient(timeout=2) as client:
            answer = await client.get(f"http://127.0.0.1:{self.metrics_port}/metrics")
        return answer.text

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until /health answers (the webhook is set and the server listens by then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"bot exited with {self.process.returncode}:\n{self.log()}")
            if await self.health() is not None and await self._webhook_listens():
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"bot not ready after {timeout} s:\n{self.log()}")

    async def _webhook_listens(self) -> bool:
        if not self.webhook:
            return True
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", self.webhook_port)
        except OSError:
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def is_leader(self) -> bool:
        """What the instance says on /health."""
        report = await self.health()
        return bool(report and report.get("leader"))

    def signal(self, sig: int) -> None:
        """Send a signal (SIGTERM, SIGKILL)."""
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for the process to end; its exit code."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"bot still running after {timeout} s:\n{self.log()}")
            await asyncio.sleep(0.05)
        if self._log is not None:
            self._log.close()
            self._log = None
        return int(self.process.returncode)

    def kill(self) -> None:
        """SIGKILL if still running (clean-up)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None


# ---- a simulated resident -----------------------------------------------------------------


class Stuck(AssertionError):
    """The bot did not react to a resident's action, even after repeating it."""


@dataclass
class SurveyResident:
    """A resident who answers the default survey by taps, keeping what was tapped."""

    emulator: BotAPIEmulator
    user: SimUser
    rng: random.Random
    timeout: float = 10.0
    tries: int = 4
    tapped: dict[str, Any] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    repeats: int = 0

    @property
    def chat_id(self) -> int:
        """The private chat with the bot."""
        return self.user.id

    def bot_messages(self) -> list[StoredMessage]:
        """Every bot message in the chat, edits applied."""
        return self.emulator.sent_to(self.chat_id)

    def _find(self, prefix: str) -> StoredMessage | None:
        for message in reversed(self.bot_messages()):
            for row in message.buttons:
                for button in row:
                    if (button.callback_data or "").startswith(prefix):
                        return message
        return None

    async def _act(self, action: Callable[[], object], done: Callable[[], bool]) -> None:
        """Do `action`, wait for `done`; repeat it when nothing happens (a lost update)."""
        for attempt in range(self.tries):
            if attempt:
                self.repeats += 1
            started = time.perf_counter()
            action()
            if await self.emulator.wait_until(done, self.timeout, chat_id=self.chat_id):
                self.latencies.append(time.perf_counter() - started)
                return
        raise Stuck(f"no reaction after {self.tries} tries in chat {self.chat_id}")

    def _newer_than(self, message_id: int) -> Callable[[], bool]:
        return lambda: any(m.message_id > message_id for m in self.bot_messages())

    async def onboard(self, postcode: str = "3563") -> None:
        """/start, consent, keep the language, give a postcode: up to question 1."""
        await self._act(
            lambda: self.emulator.user_sends(self.user, "/start"),
            lambda: self._find("v1|c") is not None,
        )
        consent = self._find("v1|c")
        assert consent is not None
        data = next(
            str(b.callback_data)
            for row in consent.buttons
            for b in row
            if (b.callback_data or "").startswith("v1|c")
        )
        await self._tap(consent, data, lambda: self._find("v1|lc") is not None)
        language = self._find("v1|lc")
        assert language is not None
        await self._tap(language, "v1|lc", self._newer_than(language.message_id))
        await self._act(
            lambda: self.emulator.user_sends(self.user, postcode),
            lambda: self._find(QUESTION) is not None,
        )

    async def _tap(self, message: StoredMessage, data: str, done: Callable[[], bool]) -> None:
        await self._act(lambda: self.emulator.user_taps(self.user, message, data=data), done)

    def current_question(self) -> StoredMessage | None:
        """The bot's newest message when it is a question with buttons (None after the thanks)."""
        messages = self.bot_messages()
        if not messages:
            return None
        newest = messages[-1]
        has_question = any(
            (button.callback_data or "").startswith(QUESTION)
            for row in newest.buttons
            for button in row
        )
        return newest if has_question else None

    async def answer_one(self) -> bool:
        """Answer the current question at random; False when the survey is over."""
        message = self.current_question()
        if message is None:
            return False
        datas = [b.callback_data or "" for row in message.buttons for b in row]
        questions = [d for d in datas if d.startswith(QUESTION)]
        _v, _q, _round, question_id, _option = questions[0].split("|", 4)
        options = [d for d in questions if not d.rsplit("|", 1)[1].startswith("~")]
        newer_message = self._newer_than(message.message_id)

        def newer() -> bool:
            # A newer message, and this question no longer the one with buttons.
            current = self.current_question()
            return newer_message() and (current is None or current.message_id != message.message_id)

        if not options:  # free text: type it
            text = f"Meer bankjes in het park {self.rng.randint(1, 999)}"
            self.tapped[question_id] = text
            # Only the bot's next message counts here: the instance that asked the question may
            # not yet have stored the question's message id when another instance takes the
            # typed answer, and then the question keeps its back/skip buttons (harmless: stale).
            await self._act(lambda: self.emulator.user_sends(self.user, text), newer_message)
            return True
        choice = self.rng.choice(options)
        option = choice.rsplit("|", 1)[1]
        done_data = next((d for d in questions if d.endswith("|~d")), None)
        if done_data is not None:  # multi: tick one, then done
            edits = len(message.edits)
            await self._tap(message, choice, lambda: len(message.edits) > edits)
            self.tapped[question_id] = [option]
            await self._tap(message, done_data, newer)
            return True
        self.tapped[question_id] = int(option) if option.isdigit() else option
        await self._tap(message, choice, newer)
        return True

    async def answer_survey(self, max_questions: int = 60) -> None:
        """Answer every question until the bot says thanks."""
        for _ in range(max_questions):
            if not await self.answer_one():
                return
        raise Stuck(f"more than {max_questions} questions in chat {self.chat_id}")


# ---- the benchmark ------------------------------------------------------------------------


def make_database(server_url: str) -> tuple[str, Callable[[], None]]:
    """A fresh PostgreSQL database on the server and a function that drops it."""
    from sqlalchemy import create_engine, text

    from storage.db import normalise_url

    server = normalise_url(server_url)
    name = "bench_" + uuid.uuid4().hex[:10]
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return server.rsplit("/", 1)[0] + "/" + name, drop


class Cluster:
    """Emulator server, round-robin proxy and `count` webhook instances on one database."""

    def __init__(
        self, emulator: BotAPIEmulator, database_url: str, count: int, **bot_options: Any
    ) -> None:
        self.emulator = emulator
        self.database_url = database_url
        self.proxy_port = free_port()
        hook = f"http://127.0.0.1:{self.proxy_port}{HOOK_PATH}"
        self.bots = [
            BotProcess(database_url, "", emulator.token, webhook_url=hook, **bot_options)
            for _ in range(count)
        ]
        self.proxy = RoundRobinProxy([b.backend for b in self.bots], port=self.proxy_port)
        self.server: Any = None

    async def __aenter__(self) -> Cluster:
        from sandbox.server import EmulatorServer
        from storage.migrate import upgrade

        self.server = EmulatorServer(self.emulator, webhook_retry_delay=0.1)
        try:
            await self.server.start()
            await self.proxy.start()
            await asyncio.to_thread(upgrade, self.database_url)
            for bot in self.bots:
                bot.api_base_url = self.server.url
                bot.start()
            await asyncio.gather(*(bot.wait_ready() for bot in self.bots))
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        for bot in self.bots:
            if bot.process is not None and bot.process.poll() is None:
                bot.signal(signal.SIGTERM)
        for bot in self.bots:
            if bot.process is not None:
                with contextlib.suppress(Exception):
                    await bot.wait_exit(30)
            bot.kill()
        await self.proxy.stop()
        if self.server is not None:
            await self.server.stop()

    async def leader(self, timeout: float = 30.0) -> BotProcess:
        """The instance that says it leads (waits for one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for bot in self.bots:
                if bot.process is not None and bot.process.poll() is None and await bot.is_leader():
                    return bot
            await asyncio.sleep(0.1)
        raise TimeoutError("no instance leads")


async def measure(server_url: str, count: int, residents: int, seed: int) -> dict[str, Any]:
    """One run: `count` instances, `residents` people answering the survey at once."""
    database_url, drop = make_database(server_url)
    emulator = BotAPIEmulator()
    try:
        async with Cluster(emulator, database_url, count) as cluster:
            rng = random.Random(seed)
            people = [
                SurveyResident(
                    emulator, emulator.add_user(f"Bewoner {i}"), random.Random(rng.random())
                )
                for i in range(residents)
            ]
            first_update = emulator.last_update_id
            started = time.perf_counter()
            await asyncio.gather(*(p.onboard() for p in people))
            await asyncio.gather(*(p.answer_survey() for p in people))
            elapsed = time.perf_counter() - started
            updates = emulator.last_update_id - first_update
            spread = list(cluster.proxy.forwarded.values())
    finally:
        drop()
    latencies = sorted(x for p in people for x in p.latencies)
    return {
        "instances": count,
        "residents": residents,
        "updates": updates,
        "seconds": elapsed,
        "updates_per_s": updates / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "repeats": sum(p.repeats for p in people),
        "spread": spread,
    }


async def main_async(args: argparse.Namespace) -> None:
    """Run the benchmark for each instance count and print a table."""
    server_url = args.database or os.environ.get("BUURTSTEM_TEST_POSTGRES_URL")
    if not server_url:
        raise SystemExit("set BUURTSTEM_TEST_POSTGRES_URL (a PostgreSQL server URL) or --database")
    results = []
    for count in args.instances:
        result = await measure(server_url, count, args.residents, args.seed)
        results.append(result)
        if args.json:
            print(json.dumps(result), flush=True)
    print(f"{args.residents} residents answering the default survey at once, webhook mode")
    print("instances  updates  seconds  updates/s  p50 ms  p99 ms  repeated  per instance")
    for r in results:
        print(
            f"{r['instances']:>9}  {r['updates']:>7}  {r['seconds']:>7.1f}  "
            f"{r['updates_per_s']:>9.1f}  {r['p50_ms']:>6.0f}  {r['p99_ms']:>6.0f}  "
            f"{r['repeats']:>8}  {r['spread']}"
        )


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=30)
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", help="PostgreSQL server URL (default: the test server)")
    parser.add_argument("--json", action="store_true", help="also print each result as JSON")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
