"""Soak: residents answer through the HTTP emulator while the bot is SIGKILLed and restarted.

The real bot (`buurtstem run`, polling, DEBUG logging) answers residents who go through consent,
language, postcode and the whole default survey by tapping and typing in the emulator
(`benchmarks.instances.SurveyResident`). Meanwhile:

- the bot is killed with SIGKILL at random moments and started again (its stored updates are
  handled again from the inbox; the emulator hands out again what was never confirmed);
- Telegram delivers earlier updates a second time (`emulator.redeliver`), at random;
- residents now and then send something else: /help, a sticker-like word, a tap on an older
  question's button;
- the emulated Bot API has latency and refuses a share of calls with 429 and 502.

At the end, what each resident was shown is compared with what is stored:

- **lost**: a question shown with the record of its answer ("→ ...") whose answer is not stored,
  or stored with another value;
- **doubled**: the tallies kept with every write differ from tallies rebuilt from the answers
  (an update counted twice), or a resident has more than one response in the round;
- **unfinished**: a resident whose response is not completed;
- **crashes**: tracebacks in the bot's logs;
- **leaks**: a Telegram id, a first or last name, a username, a typed text or the token in the
  logs (DEBUG level, the library's own lines included).

    .venv/bin/python benchmarks/soak.py --minutes 5            # SQLite in a temporary folder
    .venv/bin/python benchmarks/soak.py --minutes 5 --postgres  # BUURTSTEM_TEST_POSTGRES_URL

tests/adversarial/test_kills.py runs the same scenario briefly (a few kills, SQLite and
PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from benchmarks.instances import (  # noqa: E402
    PSEUDONYM_KEY,
    BotProcess,
    Stuck,
    SurveyResident,
    make_database,
)
from sandbox.emulator import BotAPIEmulator, StoredMessage  # noqa: E402
from sandbox.network import Network  # noqa: E402
from sandbox.server import EmulatorServer  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Answer, AnswerTally, Resident, Response, ResponseTally  # noqa: E402
from storage.pseudonyms import pseudonym  # noqa: E402
from storage.tallies import rebuild_tallies  # noqa: E402
from surveys.engine import answer_label  # noqa: E402
from surveys.loader import load_default_survey  # noqa: E402
from surveys.schema import Survey  # noqa: E402

QUESTION = "v1|q|"
RECORD = "→ "
THANKS = "Hartelijk dank voor uw antwoorden"  # the default survey's thanks, in Dutch
FIRST_ID = 6_100_000_000  # Telegram-like user ids, long enough to find in a log without doubt


@dataclass
class SoakSettings:
    """One soak run; the defaults are the short version the tests run."""

    database_url: str
    residents: int = 4  # answering at once
    seconds: float = 0.0  # keep new residents coming for this long (0: one wave)
    kills: int | None = 3  # SIGKILLs; None: keep killing until the residents are done
    kill_after: tuple[float, float] = (0.5, 3.0)  # seconds the bot runs before each kill
    redeliver: float = 0.1  # chance, after each resident action, of a repeat delivery
    noise: float = 0.05  # chance, before each resident action, of something else
    latency: float = 0.0
    jitter: float = 0.0
    refuse_429: float = 0.0
    refuse_5xx: float = 0.0
    seed: int = 1
    log_dir: Path | None = None
    log_level: str = "DEBUG"
    timeout: float = 4.0  # a resident waits this long for a reaction before repeating
    tries: int = 3


@dataclass
class SoakReport:
    """What a soak run counted; everything but `updates`, `kills`, `residents` should be 0."""

    updates: int = 0
    kills: int = 0
    residents: int = 0
    answers: int = 0
    nudges: int = 0  # times a resident got no reaction and typed something to get going
    crashes: int = 0
    lost: int = 0
    doubled: int = 0
    unfinished: int = 0
    leaks: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why residents needed a nudge
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        """No crash, nothing lost or doubled, everyone finished, nothing leaked."""
        return not (self.crashes or self.lost or self.doubled or self.unfinished or self.leaks)

    def lines(self) -> list[str]:
        """The figures, one per line."""
        return [
            f"updates tried     {self.updates}",
            f"SIGKILLs          {self.kills}",
            f"residents         {self.residents} ({self.answers} answers stored)",
            f"nudges            {self.nudges}",
            f"crashes           {self.crashes}",
            f"answers lost      {self.lost}",
            f"answers doubled   {self.doubled}",
            f"unfinished        {self.unfinished}",
            f"leaks             {self.leaks}",
            f"seconds           {self.seconds:.0f}",
        ]


class SoakResident(SurveyResident):
    """A resident who sometimes does something else, and whose updates Telegram may repeat."""

    soak: Soak

    async def _act(self, action: Callable[[], object], done: Callable[[], bool]) -> None:
        soak = self.soak
        if soak.rng.random() < soak.settings.noise:
            latest = max((m.message_id for m in self.bot_messages()), default=0)
            if self._noise():
                await self.emulator.wait_until(
                    lambda: any(m.message_id > latest for m in self.bot_messages()),
                    self.timeout,
                    chat_id=self.chat_id,
                )
            else:
                await asyncio.sleep(0.3)

        def attempt() -> None:
            # LookupError: the button is gone (the first try worked after all): nothing to tap.
            with contextlib.suppress(LookupError):
                action()

        await super()._act(attempt, done)
        if soak.rng.random() < soak.settings.redeliver:
            mine = [
                u["update_id"]
                for u in self.emulator.updates_log[-50:]
                if _sender(u) == self.user.id
            ]
            if mine:
                self.emulator.redeliver(soak.rng.choice(mine))

    def current_question(self) -> StoredMessage | None:
        """The newest message asking a question with buttons (None once none is left)."""
        for message in reversed(self.bot_messages()):
            for row in message.buttons:
                for button in row:
                    if (button.callback_data or "").startswith(QUESTION):
                        return message
        return None

    async def onboard(self, postcode: str = "3563") -> None:
        """Consent, language, postcode: whichever the bot asks for now (resumable after a lost
        reply; /start when nothing is asked brings the current step back)."""
        for _ in range(12):
            if self.current_question() is not None:
                return
            messages = self.bot_messages()
            newest = messages[-1] if messages else None
            latest = newest.message_id if newest is not None else 0
            datas = [
                str(b.callback_data or "")
                for row in (newest.buttons if newest is not None else [])
                for b in row
            ]
            consent = [d for d in datas if d.startswith("v1|c|")]

            def answered(latest: int = latest) -> bool:
                return self.current_question() is not None or any(
                    m.message_id > latest for m in self.bot_messages()
                )

            if consent and newest is not None:
                await self._tap(newest, consent[0], answered)
            elif "v1|lc" in datas and newest is not None:
                await self._tap(newest, "v1|lc", answered)
            elif any(d.startswith("v1|m|") for d in datas):
                await self._act(lambda: self.emulator.user_sends(self.user, postcode), answered)
            else:
                await self._act(lambda: self.emulator.user_sends(self.user, "/start"), answered)
        raise Stuck(f"not through onboarding in chat {self.chat_id}")

    def _noise(self) -> bool:
        """Something besides answering; True when a new message is expected back."""
        soak = self.soak
        choice = soak.rng.randrange(3)
        if choice == 0:
            self.emulator.user_sends(self.user, "/help")
            return True
        if choice == 1:
            self.emulator.user_sends(self.user, soak.text(self, "Zegeltje"))
            return True
        else:
            # A tap on an option of an older question: a double tap, changes nothing.
            current = self.current_question()
            older = [
                (m, b.callback_data)
                for m in self.bot_messages()
                if current is None or m.message_id != current.message_id
                for row in m.buttons
                for b in row
                if (b.callback_data or "").startswith(QUESTION)
                and not (b.callback_data or "").rsplit("|", 1)[1].startswith("~")
            ]
            if older:
                message, data = soak.rng.choice(older)
                self.emulator.user_taps(self.user, message, data=data)
        return False


def _sender(update: dict[str, Any]) -> int | None:
    for kind in ("message", "callback_query", "edited_message"):
        part = update.get(kind)
        if isinstance(part, dict):
            return int(part.get("from", {}).get("id", 0)) or None
    return None


class Soak:
    """The emulator, the bot process that gets killed, and the residents."""

    def __init__(self, settings: SoakSettings) -> None:
        self.settings = settings
        self.rng = random.Random(settings.seed)
        network = Network(
            latency=settings.latency,
            jitter=settings.jitter,
            refuse_429=settings.refuse_429,
            refuse_5xx=settings.refuse_5xx,
            seed=settings.seed,
        )
        self.emulator = BotAPIEmulator(network=network)
        self.log_dir = settings.log_dir or Path(tempfile.mkdtemp(prefix="buurtstem-soak-"))
        self.bots: list[BotProcess] = []
        self.residents: list[SoakResident] = []
        self.texts: list[str] = []  # everything residents typed (must not reach the logs)
        self.report = SoakReport()
        self._done = asyncio.Event()
        self._server: EmulatorServer | None = None

    # -- people ------------------------------------------------------------------------------

    def text(self, resident: SurveyResident, word: str) -> str:
        """A distinctive text typed by a resident (remembered for the leak check)."""
        typed = f"{word}{resident.user.id % 10_000}x{self.rng.randrange(10**6)}"
        self.texts.append(typed)
        return typed

    def new_resident(self) -> SoakResident:
        n = len(self.residents)
        user = self.emulator.add_user(
            f"Zwaantje{n}q",
            last_name=f"Verhoeven{n}q",
            username=f"zw_user_{n}q",
            user_id=FIRST_ID + self.rng.randrange(10**8),
        )
        resident = SoakResident(
            self.emulator,
            user,
            random.Random(self.rng.random()),
            timeout=self.settings.timeout,
            tries=self.settings.tries,
        )
        resident.soak = self
        self.residents.append(resident)
        return resident

    async def nudge(self, resident: SoakResident) -> None:
        """No reaction: the resident types something, which brings the current question back."""
        self.report.nudges += 1
        messages = resident.bot_messages()
        newest = messages[-1] if messages else None
        if newest is None:
            seen = "nothing"
        elif newest.buttons:
            seen = "a message with buttons"
        elif newest.visible_text.rsplit("\n", 1)[-1].startswith(RECORD):
            seen = "the record of an answer, no next question"
        else:
            seen = "a message without buttons"
        self.report.notes.append(f"nudge: {resident.user.first_name} saw {seen}")
        latest = max((m.message_id for m in resident.bot_messages()), default=0)
        self.emulator.user_sends(resident.user, self.text(resident, "Hallo"))
        await self.emulator.wait_until(
            lambda: any(m.message_id > latest for m in resident.bot_messages()),
            self.settings.timeout * 3,
            chat_id=resident.chat_id,
        )

    async def live(self, resident: SoakResident) -> None:
        """Onboard and answer the whole survey; nudge when stuck (a few times at most)."""
        original = resident.answer_one

        async def typed_answer() -> bool:
            # Free-text answers typed by this soak are distinctive (for the leak check).
            message = resident.current_question()
            if message is not None and not any(
                not (b.callback_data or "").rsplit("|", 1)[1].startswith("~")
                for row in message.buttons
                for b in row
                if (b.callback_data or "").startswith(QUESTION)
            ):
                text = self.text(resident, "Bankjes")
                newer = resident._newer_than(message.message_id)
                await resident._act(lambda: self.emulator.user_sends(resident.user, text), newer)
                return True
            return await original()

        def thanked() -> bool:
            return any(THANKS in m.visible_text for m in resident.bot_messages())

        async def asked() -> bool:
            """True when a question waits; False when the survey is done; Stuck otherwise."""
            if resident.current_question() is None and not thanked():
                # Between the record of one answer and the next question, or a lost reply.
                await self.emulator.wait_until(
                    lambda: resident.current_question() is not None or thanked(),
                    self.settings.timeout,
                    chat_id=resident.chat_id,
                )
            if resident.current_question() is not None:
                return True
            if thanked():
                return False
            raise Stuck("no question and no thanks")

        for attempt in range(6):
            try:
                if resident._find(QUESTION) is None:
                    await resident.onboard()
                for _ in range(80):
                    if not await asked():
                        return
                    await typed_answer()
                return
            except Stuck:
                if attempt == 5:
                    return
                await self.nudge(resident)

    async def wave(self) -> None:
        """Residents answering, `residents` at a time, until the time is up (or one wave)."""
        deadline = time.monotonic() + self.settings.seconds
        running: set[asyncio.Task[None]] = set()
        while True:
            while len(running) < self.settings.residents:
                running.add(asyncio.create_task(self.live(self.new_resident())))
            if not self.settings.seconds:
                await asyncio.gather(*running)
                return
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
            if time.monotonic() >= deadline:
                await asyncio.gather(*running)
                return

    # -- the bot -----------------------------------------------------------------------------

    def start_bot(self) -> BotProcess:
        assert self._server is not None
        bot = BotProcess(
            self.settings.database_url,
            self._server.url,
            self.emulator.token,
            webhook=False,
            log_dir=self.log_dir,
            extra_env={"BUURTSTEM_LOG_LEVEL": self.settings.log_level},
        )
        bot.start()
        self.bots.append(bot)
        return bot

    async def killer(self) -> None:
        """Kill the bot at random moments and start it again."""
        low, high = self.settings.kill_after
        while not self._done.is_set():
            if self.settings.kills is not None and self.report.kills >= self.settings.kills:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), self.rng.uniform(low, high))
            if self._done.is_set():
                return
            bot = self.bots[-1]
            bot.signal(signal.SIGKILL)
            await bot.wait_exit()
            self.report.kills += 1
            await self.start_bot().wait_ready()

    async def run(self) -> SoakReport:
        """The whole run; the report."""
        started = time.monotonic()
        await asyncio.to_thread(upgrade, self.settings.database_url)
        async with EmulatorServer(self.emulator, webhook_retry_delay=0.1) as server:
            self._server = server
            try:
                await self.start_bot().wait_ready()
                killing = asyncio.create_task(self.killer())
                try:
                    await self.wave()
                finally:
                    self._done.set()
                    await killing
                bot = self.bots[-1]
                bot.signal(signal.SIGTERM)
                await bot.wait_exit()
            finally:
                for bot in self.bots:
                    bot.kill()
        self.report.seconds = time.monotonic() - started
        self.report.updates = len(self.emulator.updates_log)
        self.report.residents = len(self.residents)
        await asyncio.to_thread(self.compare)
        self.check_logs()
        return self.report

    # -- the comparison ----------------------------------------------------------------------

    def compare(self) -> None:
        """What residents were shown against what is stored (see the module's doc)."""
        survey = load_default_survey()
        db = Database(self.settings.database_url)
        try:
            with db.session() as session:
                for resident in self.residents:
                    self._compare_one(session, survey, resident)
                self.report.answers = session.scalar(select(func.count(Answer.id))) or 0
                before = _tallies(session)
                rebuild_tallies(session)
                after = _tallies(session)
                session.rollback()
        finally:
            db.dispose()
        for key in before.keys() | after.keys():
            if before.get(key, 0) != after.get(key, 0):
                self.report.doubled += abs(before.get(key, 0) - after.get(key, 0))
                self.report.problems.append(
                    f"tally {key}: kept {before.get(key)}, {after.get(key)}"
                )

    def _compare_one(self, session: Any, survey: Survey, resident: SoakResident) -> None:
        problems = self.report.problems
        found = session.scalars(
            select(Resident).where(Resident.pseudonym == pseudonym(PSEUDONYM_KEY, resident.user.id))
        ).one_or_none()
        responses = (
            list(session.scalars(select(Response).where(Response.resident_id == found.id)))
            if found is not None
            else []
        )
        if len(responses) != 1:
            self.report.unfinished += len(responses) == 0
            self.report.doubled += max(0, len(responses) - 1)
            problems.append(f"resident {resident.user.first_name}: {len(responses)} responses")
            if not responses:
                return
        response = responses[0]
        if response.status != "completed":
            self.report.unfinished += 1
            problems.append(f"resident {resident.user.first_name}: response {response.status}")
        stored = {
            a.question_id: a.value
            for a in session.scalars(select(Answer).where(Answer.response_id == response.id))
        }
        for question_id, shown in shown_records(resident.bot_messages()).items():
            if question_id not in stored:
                self.report.lost += 1
                problems.append(f"{resident.user.first_name} {question_id}: shown {shown!r}, none")
                continue
            label = answer_label(survey.question(question_id), stored[question_id], "nl")
            if label != shown:
                self.report.lost += 1
                problems.append(
                    f"{resident.user.first_name} {question_id}: shown {shown!r}, stored {label!r}"
                )

    def check_logs(self) -> None:
        """Tracebacks and personal data in the logs of every bot process."""
        log = "\n".join(bot.log() for bot in self.bots)
        self.report.crashes = log.count("Traceback")
        if self.report.crashes:
            self.report.problems.append("traceback in the logs")
        token = self.emulator.token
        needles = [token, token.split(":", 1)[-1], *self.texts]
        for resident in self.residents:
            user = resident.user
            needles += [str(user.first_name), str(user.last_name), str(user.username)]
        for needle in needles:
            if needle and needle in log:
                self.report.leaks += 1
                self.report.problems.append(f"leak: {needle[:4]}... in the logs")
        for resident in self.residents:
            if re.search(rf"(?<!\d){resident.user.id}(?!\d)", log):
                self.report.leaks += 1
                self.report.problems.append("leak: a Telegram id in the logs")


def shown_records(messages: list[StoredMessage]) -> dict[str, str]:
    """Question id -> the answer the chat shows for it ("→ ..."), newest message last."""
    records: dict[str, str] = {}
    for message in messages:
        markups = [edit.reply_markup for edit in message.edits] + [message.reply_markup]
        question_id = None
        for markup in markups:
            for row in (markup or {}).get("inline_keyboard", []):
                for button in row:
                    data = str(button.get("callback_data") or "")
                    if data.startswith(QUESTION):
                        question_id = data.split("|")[3]
        last = message.visible_text.rsplit("\n", 1)[-1]
        if question_id is not None and last.startswith(RECORD):
            records[question_id] = last[len(RECORD) :]
    return records


def _tallies(session: Any) -> dict[tuple[Any, ...], int]:
    counts: dict[tuple[Any, ...], int] = {}
    for row in session.scalars(select(AnswerTally)):
        key = ("answer", row.round_id, row.day, row.area_code, row.question_id, row.value_key)
        counts[key] = counts.get(key, 0) + row.count
    for row in session.scalars(select(ResponseTally)):
        key = ("response", row.round_id, row.day, row.area_code, row.event)
        counts[key] = counts.get(key, 0) + row.count
    return counts


async def soak(settings: SoakSettings) -> SoakReport:
    """Run one soak; its report."""
    return await Soak(settings).run()


def main() -> None:
    """Command line: print the figures; exit 1 when anything is not 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long residents keep coming")
    parser.add_argument("--residents", type=int, default=8, help="answering at once")
    parser.add_argument("--kill-after", type=float, nargs=2, default=(1.0, 6.0), metavar="S")
    parser.add_argument("--redeliver", type=float, default=0.1)
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--jitter-ms", type=float, default=30.0)
    parser.add_argument("--refuse-429", type=float, default=0.05)
    parser.add_argument("--refuse-5xx", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", action="store_true", help="BUURTSTEM_TEST_POSTGRES_URL")
    parser.add_argument("--keep-logs", action="store_true", help="say where the logs are")
    parser.add_argument("--verbose", action="store_true", help="list each problem found")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="buurtstem-soak-"))
    drop: Callable[[], None] = lambda: None  # noqa: E731
    if args.postgres:
        server_url = os.environ.get("BUURTSTEM_TEST_POSTGRES_URL")
        if not server_url:
            raise SystemExit("set BUURTSTEM_TEST_POSTGRES_URL (a PostgreSQL server URL)")
        url, drop = make_database(server_url)
    else:
        url = f"sqlite:///{folder / 'soak.db'}"
    settings = SoakSettings(
        database_url=url,
        residents=args.residents,
        seconds=args.minutes * 60,
        kills=None,
        kill_after=tuple(args.kill_after),  # type: ignore[arg-type]
        redeliver=args.redeliver,
        noise=args.noise,
        latency=args.latency_ms / 1000,
        jitter=args.jitter_ms / 1000,
        refuse_429=args.refuse_429,
        refuse_5xx=args.refuse_5xx,
        seed=args.seed,
        log_dir=folder,
        timeout=8.0,
    )
    try:
        report = asyncio.run(soak(settings))
    finally:
        drop()
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"soak: {args.minutes:g} min, {args.residents} residents at once, {backend}, "
        f"latency {args.latency_ms:g}±{args.jitter_ms:g} ms, 429 {args.refuse_429:g}, "
        f"5xx {args.refuse_5xx:g}, seed {args.seed}"
    )
    for line in report.lines():
        print(line)
    if args.verbose or not report.clean:
        for problem in report.problems[:50]:
            print("  " + problem)
    if args.verbose:
        for note, count in Counter(n.split(" saw ", 1)[-1] for n in report.notes).items():
            print(f"  nudged after seeing {note}: {count}")
    if args.keep_logs:
        print(f"logs: {folder}")
    raise SystemExit(0 if report.clean else 1)


if __name__ == "__main__":
    main()
