"""The sandbox: emulator, the real bot polling it over HTTP, and the browser chat page, together."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from telegram.ext import Application

from bot.app import build_application, build_services
from bot.clock import Clock, SystemClock
from bot.database import DatabaseChoice, sandbox_choice
from bot.outbox import OutboxSender
from bot.settings import Settings
from digests.schedule import DEFAULT_SCHEDULE
from sandbox.emulator import BotAPIEmulator, SimUser
from sandbox.network import Network
from sandbox.server import EmulatorServer
from sandbox.web import Control, SandboxInfo, build_web_app
from storage import alliances as alliance_store
from storage import rounds as round_store
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Alliance
from storage.residents import last_claimed_update
from surveys.loader import DEFAULT_SURVEY_PATH, load_survey
from surveys.round_file import RoundSpec
from surveys.schema import Survey
from surveys.times import resident_time
from usecases.publish_round import publish_round
from usecases.queue_digests import OnDemand, queue_on_demand
from usecases.releases import CutReport, cut_releases
from usecases.round_tick import TickReport, run_round_tick
from usecases.services import Services

log = logging.getLogger(__name__)

# Pre-linked alliance groups: (area code, group title, fixed chat id so a restart finds them again).
SANDBOX_ALLIANCES = (
    ("utrecht-overvecht", "Alliantie Overvecht", -4_100_001),
    ("rotterdam-zuid", "Alliantie Rotterdam-Zuid", -4_100_002),
    ("leeuwarden-oost", "Alliantie Leeuwarden-Oost", -4_100_003),
)
STAFF_USER_ID = 900_001  # "Programmateam": member of every alliance group, writes there
FIRST_RESIDENT_ID = 100_001
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]


@dataclass
class SandboxDatabase:
    """Where this survey's sandbox data lives, and what happened to it (told to the user)."""

    path: Path
    people_path: Path
    notes: list[str] = field(default_factory=list)
    # Dutch, for the page (which is Dutch); `notes` are for the terminal.
    page_notes: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the SQLite file (absolute: it works from any folder)."""
        return sandbox_choice(self.path).cli_url

    def note(self, terminal: str, page: str) -> None:
        self.notes.append(terminal)
        self.page_notes.append(page)


def survey_database(sandbox_dir: Path, survey: Survey, *, fresh: bool = False) -> SandboxDatabase:
    """One SQLite file per survey content: a changed file never meets its older self in storage.

    survey_versions refuses the same id+version with other content, so a designer who edits a
    survey without bumping its version gets a database of its own instead of a conflict.
    """
    sandbox_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{_safe(survey.id)}-v{_safe(survey.version)}-{survey.content_hash[:12]}"
    chosen = SandboxDatabase(sandbox_dir / f"{stem}.sqlite", sandbox_dir / f"{stem}.people.json")
    if fresh:
        removed = False
        for suffix in ("", "-wal", "-shm"):
            old = chosen.path.with_name(chosen.path.name + suffix)
            if old.exists():
                old.unlink()
                removed = True
        if chosen.people_path.exists():
            chosen.people_path.unlink()
            removed = True
        if removed:
            chosen.note(
                "--fresh: emptied the sandbox database for this survey.",
                "Opnieuw begonnen (--fresh): de sandbox-database van deze vragenlijst is leeg.",
            )
        else:
            chosen.note(
                "--fresh: nothing to empty, starting with a new sandbox database.",
                "Opnieuw begonnen (--fresh) met een nieuwe sandbox-database.",
            )
        return chosen
    if chosen.path.exists():
        chosen.note(
            f"Continuing the sandbox database {chosen.path.name}.",
            f"Verder met de sandbox-database {chosen.path.name}.",
        )
        return chosen
    others = sorted(sandbox_dir.glob(f"{_safe(survey.id)}-v{_safe(survey.version)}-*.sqlite"))
    if others:
        chosen.note(
            f"The survey {survey.id} version {survey.version} changed since an earlier sandbox "
            f"run: it gets its own new database ({chosen.path.name}); the older one stays in "
            f"{sandbox_dir}. Bump the version when you publish the change.",
            f"De vragenlijst {survey.id} versie {survey.version} is veranderd sinds een eerdere "
            f"keer: ze krijgt een eigen nieuwe database ({chosen.path.name}); de oude blijft "
            "bewaard. Verhoog de versie als u de wijziging publiceert.",
        )
    else:
        chosen.note(
            f"New sandbox database {chosen.path.name}.",
            f"Nieuwe sandbox-database {chosen.path.name}.",
        )
    return chosen


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._" else "_" for c in text)[:40]


def seed_alliances(db: Database, now: datetime) -> list[Alliance]:
    """Pre-linked alliance rows for the sandbox groups (the /koppel flow is not needed here)."""
    with db.session() as session:
        existing = {a.chat_id: a for a in alliance_store.all_alliances(session)}
        for area_code, title, chat_id in SANDBOX_ALLIANCES:
            if chat_id in existing:
                continue
            existing[chat_id] = alliance_store.add_alliance(
                session,
                area_code=area_code,
                chat_id=chat_id,
                title=title,
                language="nl",
                schedule=DEFAULT_SCHEDULE.to_json(),  # Mondays 09:00, as a /koppel sets
                now=now,
            )
        return [existing[chat_id] for _, _, chat_id in SANDBOX_ALLIANCES]


def load_people(path: Path) -> list[dict[str, Any]]:
    """Residents created in an earlier sandbox run (simulated users only, never real ones)."""
    data = _load_state(path)
    people = data.get("people", [])
    return [p for p in people if isinstance(p, dict) and isinstance(p.get("id"), int)]


def next_update_id(path: Path) -> int:
    """Where the emulator's update ids go on: the bot remembers ids it handled (two days), so
    ids starting again at 1 after a restart would be ignored as repeats."""
    value = _load_state(path).get("next_update_id")
    return value if isinstance(value, int) and value > 0 else 1


def _load_state(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if isinstance(data, list):  # the first format: only the people
        return {"people": data}
    return data if isinstance(data, dict) else {}


def save_people(path: Path, users: list[SimUser], next_update: int = 1) -> None:
    """Keep the simulated residents and the update ids used, so the next run continues."""
    people = [
        {"id": u.id, "first_name": u.first_name, "language_code": u.language_code}
        for u in users
        if u.id != STAFF_USER_ID and not u.is_bot
    ]
    state = {"next_update_id": next_update, "people": people}
    path.write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")


class Sandbox:
    """Everything `buurtstem sandbox` runs, in one event loop; `start()`, then `stop()`."""

    def __init__(
        self,
        settings: Settings,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        survey_file: str | Path | None = None,
        fresh: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.host = host
        self.port = settings.sandbox_port if port is None else port
        self.survey_path = Path(survey_file or settings.survey_file or DEFAULT_SURVEY_PATH)
        self.fresh = fresh
        self.clock = clock or SystemClock()
        # As far away and as flaky as the settings say (docs/emulator.md, "Network").
        self.emulator = BotAPIEmulator(
            network=Network(
                latency=settings.sandbox_latency_ms / 1000,
                jitter=settings.sandbox_jitter_ms / 1000,
                refuse_429=settings.sandbox_refuse_429,
                refuse_5xx=settings.sandbox_refuse_5xx,
            )
        )
        self.emulator_server = EmulatorServer(self.emulator, host=host, port=0)
        self.storage: SandboxDatabase | None = None
        self.db: Database | None = None
        self.services: Services | None = None
        self.application: Application | None = None
        self._web_runner: web.AppRunner | None = None
        self._stop_outbox = asyncio.Event()
        self._outbox_task: asyncio.Task[Any] | None = None
        self._outbox_sender: OutboxSender | None = None
        self.notes: list[str] = []

    @property
    def url(self) -> str:
        """The page's address, e.g. http://127.0.0.1:8080/."""
        return f"http://{self.host}:{self.port}/"

    @property
    def database(self) -> DatabaseChoice:
        """The sandbox's database, as the --database-url other commands take (after start)."""
        assert self.storage is not None, "start() chooses the database"
        return sandbox_choice(self.storage.path)

    async def start(self) -> None:
        """Emulator, database, bot (polling the emulator over HTTP), outbox sender, web page."""
        survey = load_survey(self.survey_path)  # SurveyError: the command prints the problems
        self.storage = survey_database(Path(self.settings.sandbox_dir), survey, fresh=self.fresh)
        self.notes.extend(self.storage.notes)
        await self.emulator_server.start()
        settings = self.settings.model_copy(
            update={
                "database_url": self.storage.url,
                "token": self.emulator.token,
                "api_base_url": self.emulator_server.url,
                "survey_file": str(self.survey_path),
            }
        )
        await asyncio.to_thread(upgrade, settings.database_url)
        self.db = Database(settings.database_url, workers=settings.db_pool_size)
        self.services = build_services(settings, self.db, self.clock)
        # Update ids go on from the last run (also after a crash: the bot's own claims say how
        # far they got), or the bot would ignore the new ones as repeats of the old.
        with self.db.session() as session:
            handled = last_claimed_update(session, settings.bot_id)
        self.emulator.continue_update_ids(
            max(next_update_id(self.storage.people_path), handled + 1)
        )
        self._populate(seed_alliances(self.db, self.clock.now()))
        # The real bot: PTB's default HTTPXRequest talks to the emulator over HTTP, as to Telegram.
        self.application = build_application(self.services)
        await self.application.initialize()
        assert self.application.updater is not None
        await self.application.updater.start_polling(
            poll_interval=0.0, timeout=10, allowed_updates=ALLOWED_UPDATES
        )
        await self.application.start()
        self._start_outbox()
        web_app = build_web_app(
            self.emulator_server.url,
            self.emulator.token,
            info=self._info,
            controls=self._controls(),
        )
        self._web_runner = web.AppRunner(web_app, access_log=None, handler_cancellation=True)
        await self._web_runner.setup()
        site = web.TCPSite(self._web_runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop in reverse order; keep the simulated residents for the next run."""
        if self._web_runner is not None:
            await self._web_runner.cleanup()
            self._web_runner = None
        self._stop_outbox.set()
        if self._outbox_task is not None:
            # Let sends in flight finish and be recorded (a cancelled one would become
            # "unknown"); cancel only if the sender does not stop by itself in time.
            try:
                await asyncio.wait_for(asyncio.shield(self._outbox_task), timeout=10)
            except (TimeoutError, Exception):
                self._outbox_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._outbox_task
        if self.application is not None:
            app, self.application = self.application, None
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
            await app.shutdown()
        if self.storage is not None:
            with contextlib.suppress(OSError):
                save_people(
                    self.storage.people_path,
                    list(self.emulator.users.values()),
                    self.emulator.last_update_id + 1,
                )
        await self.emulator_server.stop()
        if self.db is not None:
            self.db.dispose()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ simulated world

    def _populate(self, alliances: list[Alliance]) -> None:
        """The staff member, earlier residents and the alliance groups in the emulator."""
        staff = self.emulator.add_user("Programmateam", language_code="nl", user_id=STAFF_USER_ID)
        assert self.storage is not None
        for person in load_people(self.storage.people_path):
            if person["id"] in self.emulator.users:
                continue
            self.emulator.add_user(
                str(person.get("first_name") or "Bewoner"),
                language_code=person.get("language_code"),
                user_id=person["id"],
            )
        for alliance in alliances:
            self.emulator.add_group(
                alliance.title or alliance.area_code,
                members=[staff],
                chat_id=alliance.chat_id,
            )

    def _info(self) -> SandboxInfo:
        assert self.services is not None and self.storage is not None
        survey = self.services.default_survey
        alliances = {chat_id: area for area, _, chat_id in SANDBOX_ALLIANCES}
        area_names = {a.code: a.name for a in self.services.areas}
        database = self.database.cli_url
        return SandboxInfo(
            survey_title=survey.title.get(survey.languages[0], survey.id),
            survey_version=survey.version,
            languages=list(self.services.offered_languages),
            staff_user_id=STAFF_USER_ID,
            first_resident_id=FIRST_RESIDENT_ID,
            alliance_areas={
                chat_id: area_names.get(code, code) for chat_id, code in alliances.items()
            },
            notes=[
                *self.storage.page_notes,
                f"In de terminal kijkt u in deze gegevens met: buurtstem round list "
                f"--database-url {database}",
            ],
            database_url=database,
            deep_links=deep_links(self.services.areas),
        )

    # ------------------------------------------------------------------ background work

    def _start_outbox(self) -> None:
        """Send what rounds and digests queue, as the real bot's sender does."""
        assert self.application is not None and self.db is not None
        self._outbox_sender = OutboxSender(self.db, self.application.bot, self.clock)
        self._outbox_task = asyncio.create_task(
            self._outbox_sender.run_forever(self._stop_outbox), name="sandbox-outbox"
        )

    def _controls(self) -> dict[str, Control]:
        return {
            "round_tick": Control(
                label="Ronde openen",
                run=self._open_round,
                help=(
                    "Publiceert een sandbox-ronde van deze vragenlijst voor alle focusgebieden "
                    "die nu opent (als er nog geen ronde open of gepland is) en laat de bot "
                    "rondes openen: bewoners met toestemming krijgen hun uitnodiging."
                ),
            ),
            "digest_now": Control(
                label="Digest nu versturen",
                run=self._digest_now,
                help=(
                    "Geeft nu nieuwe cijfers vrij (de bot doet dat zelf eens per dag, zodra er "
                    "genoeg nieuwe antwoorden zijn) en elke alliantiegroep krijgt haar digest, "
                    "zoals met /digest in de groep (cijfers alleen waar genoeg bewoners "
                    "antwoordden)."
                ),
            ),
        }

    async def _open_round(self) -> str:
        """Publish a round that opens now (when none is open or planned), then tick."""
        assert self.services is not None
        services = self.services
        published = await asyncio.to_thread(self._publish_sandbox_round)
        result = await asyncio.to_thread(
            run_round_tick,
            services.db,
            services.areas,
            services.clock.now(),
            tz=services.settings.tz,
            catalogue=services.catalogue,
        )
        if self._outbox_sender is not None:
            self._outbox_sender.wake()
        return " ".join([published, round_sentence(result)])

    def _publish_sandbox_round(self) -> str:
        """Publish "Sandbox-ronde <now>" for all areas; one Dutch sentence on what happened."""
        assert self.services is not None
        services = self.services
        tz = services.settings.tz
        with services.db.session() as session:
            planned = round_store.planned_round(session)
            if planned is not None:
                if planned.status == round_store.OPEN:
                    return (
                        f"Ronde '{planned.name}' is al open (tot "
                        f"{resident_time(planned.closes_at, tz)}); er is geen nieuwe gepubliceerd."
                    )
                return (
                    f"Ronde '{planned.name}' is al gepland (opent "
                    f"{resident_time(planned.opens_at, tz)}); er is geen nieuwe gepubliceerd."
                )
        now = services.clock.now()
        name = f"Sandbox-ronde {now.astimezone(tz):%Y-%m-%d %H:%M}"
        spec = RoundSpec(
            name=name,
            survey_path=self.survey_path,
            area_codes=None,
            opens_at=now,
            closes_at=now + timedelta(days=14),
        )
        source = self.survey_path.read_text(encoding="utf-8")
        publish_round(services.db, spec, services.default_survey, source, now, tz)
        return (
            f"Ronde '{name}' gepubliceerd voor alle focusgebieden, open tot "
            f"{resident_time(spec.closes_at, tz)}."
        )

    async def _digest_now(self) -> str:
        """New figures now (as at the end of a day), then each sandbox alliance asks for its
        digest (as /digest in the group does)."""
        assert self.services is not None
        services = self.services
        now = services.clock.now()
        cut = await asyncio.to_thread(
            cut_releases,
            services.db,
            services.areas,
            now,
            min_n=services.settings.min_cell_size,
            catalogue=services.catalogue,
            charts=services.charts,
            at=now,
        )
        sentences = [release_sentence(cut)]
        for _, title, chat_id in SANDBOX_ALLIANCES:
            result = await asyncio.to_thread(
                queue_on_demand,
                services.db,
                chat_id,
                services.areas,
                services.clock.now(),
                min_n=services.settings.min_cell_size,
                tz=services.settings.tz,
                catalogue=services.catalogue,
                charts=services.charts,
                references=services.references,
            )
            sentences.append(digest_sentence(title, result, services.settings.tz))
        if self._outbox_sender is not None:
            self._outbox_sender.wake()
        return "\n".join(sentences)


def deep_links(areas: Any) -> list[dict[str, str]]:
    """Every code a poster's link can carry (t.me/<bot>?start=<code>): areas, neighbourhoods."""
    links = []
    for area in areas:
        links.append({"code": area.code, "name": area.name, "area": area.name})
        for hood in area.neighbourhoods:
            links.append({"code": hood.code, "name": hood.name, "area": area.name})
    return links


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def round_sentence(result: TickReport) -> str:
    """What a round tick did, in plain Dutch for the programme team (counts only, no ids)."""
    sentences = []
    if result.opened:
        if result.invitations:
            who = _count(result.invitations, "bewoner", "bewoners")
            sentences.append(f"De ronde is open: {who} met toestemming uitgenodigd.")
        else:
            sentences.append(
                "De ronde is open, maar er is nog niemand om uit te nodigen: maak een bewoner "
                "aan en geef toestemming, dan doet die meteen mee."
            )
    if result.superseded:
        sentences.append(
            f"{_count(result.superseded, 'onafgemaakte lijst', 'onafgemaakte lijsten')} van de "
            "doorlopende vragenlijst afgesloten (de antwoorden blijven bewaard)."
        )
    if result.reminders:
        sentences.append(f"{_count(result.reminders, 'herinnering', 'herinneringen')} verstuurd.")
    closed = len(result.closed) + len(result.missed)
    if closed:
        sentences.append(f"{_count(closed, 'ronde', 'rondes')} gesloten.")
    if result.closed_notices:
        told = _count(result.closed_notices, "bewoner", "bewoners")
        sentences.append(f"{told} gehoord dat de ronde dicht is.")
    if not sentences:
        return "Er was niets te openen, te sluiten of te herinneren."
    return " ".join(sentences)


def release_sentence(cut: CutReport) -> str:
    """What cutting releases now did, in plain Dutch (the bot does it once a day by itself)."""
    if cut.cut:
        areas = _count(len({area for area, _, _ in cut.cut if area != "*"}), "gebied", "gebieden")
        return f"Nieuwe cijfers vrijgegeven voor {areas} (de bot doet dat zelf eens per dag)."
    return (
        "Geen nieuwe cijfers: in geen enkel gebied zijn er genoeg nieuwe antwoorden sinds de "
        "vorige cijfers (de bot kijkt zelf eens per dag)."
    )


def digest_sentence(title: str, result: OnDemand, tz: ZoneInfo) -> str:
    """What "digest now" did for one alliance group, in plain Dutch."""
    if result.outcome == "queued":
        return f"{title}: digest verstuurd (met grafiek en CSV zodra er genoeg antwoorden zijn)."
    if result.outcome == "too_soon":
        when = (
            f" Weer mogelijk om {result.retry_at.astimezone(tz):%H:%M}."
            if result.retry_at is not None
            else ""
        )
        return f"{title}: kreeg net al een digest.{when}"
    if result.outcome == "no_round":
        return f"{title}: geen digest, want er is geen ronde in dit gebied."
    if result.outcome == "not_linked":
        return f"{title}: deze groep is niet gekoppeld."
    return f"{title}: gedaan."
