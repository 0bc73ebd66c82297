"""The sandbox: emulator, the real bot polling it over HTTP, and the browser chat page, together."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select
from telegram.ext import Application

from bot.clock import Clock, SystemClock
from bot.database import DatabaseChoice, sandbox_choice
from bot.schedules import Schedule
from bot.settings import Settings
from sandbox.emulator import BotAPIEmulator, SimUser
from sandbox.network import Network
from sandbox.server import EmulatorServer
from sandbox.web import Control, SandboxInfo, build_web_app
from storage.db import Database
from storage.models import Alliance
from storage.residents import last_claimed_update
from surveys.loader import DEFAULT_SURVEY_PATH, load_survey
from surveys.schema import Survey
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
NOT_AVAILABLE = "nog niet beschikbaar"


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
        existing = {a.chat_id: a for a in session.scalars(select(Alliance))}
        for area_code, title, chat_id in SANDBOX_ALLIANCES:
            if chat_id in existing:
                continue
            alliance = Alliance(
                area_code=area_code,
                chat_id=chat_id,
                title=title,
                language="nl",
                schedule=Schedule().to_json(),  # Mondays 09:00, as a /koppel would set
                linked_at=now,
            )
            session.add(alliance)
            existing[chat_id] = alliance
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


def _call_with_known(func: Callable[..., Any], known: dict[str, Any]) -> Any:
    """Call `func` with the arguments it names that we can supply; TypeError if one is missing."""
    kwargs: dict[str, Any] = {}
    for name, param in inspect.signature(func).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if name in known:
            kwargs[name] = known[name]
        elif param.default is param.empty:
            raise TypeError(f"needs {name!r}, which the sandbox cannot supply")
    return func(**kwargs)


def _find(candidates: tuple[tuple[str, str], ...]) -> Callable[..., Any] | None:
    """The first (module, function) that exists: other engineers' code arrives over time."""
    for module_name, name in candidates:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        func = getattr(module, name, None)
        if callable(func):
            return func
    return None


ROUND_TICK = (("bot.rounds", "run_round_tick"),)
DIGEST_NOW = (("bot.digests", "queue_on_demand"),)


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
        self._outbox_sender: Any = None
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
        from bot.app import build_application, build_services
        from storage.migrate import upgrade

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
        try:
            from bot.outbox import OutboxSender
        except ImportError:
            log.warning("sandbox: no outbox sender yet; queued messages stay queued")
            return
        assert self.application is not None and self.db is not None
        self._outbox_sender = OutboxSender(self.db, self.application.bot, self.clock)
        self._outbox_task = asyncio.create_task(
            self._outbox_sender.run_forever(self._stop_outbox), name="sandbox-outbox"
        )

    def _known_arguments(self) -> dict[str, Any]:
        assert self.services is not None
        services = self.services
        return {
            "db": services.db,
            "database": services.db,
            "areas": services.areas,
            "now": services.clock.now(),
            "clock": services.clock,
            "services": services,
            "settings": services.settings,
            "catalogue": services.catalogue,
            "application": self.application,
            "bot": self.application.bot if self.application else None,
            "timezone": services.settings.timezone,
            "min_n": services.settings.min_cell_size,
            "on_demand": True,
        }

    def _controls(self) -> dict[str, Control]:
        tick = _find(ROUND_TICK)
        return {
            "round_tick": Control(
                label="Ronde openen",
                run=self._open_round if tick is not None else None,
                help=(
                    "Publiceert een sandbox-ronde van deze vragenlijst voor alle focusgebieden "
                    "die nu opent (als er nog geen ronde open of gepland is) en laat de bot "
                    "rondes openen: bewoners met toestemming krijgen hun uitnodiging."
                    if tick is not None
                    else NOT_AVAILABLE
                ),
            ),
            "digest_now": Control(
                label="Digest nu versturen",
                run=self._digest_now if _find(DIGEST_NOW) is not None else None,
                help=(
                    "Elke alliantiegroep krijgt nu haar digest, zoals met /digest in de groep "
                    "(cijfers alleen waar genoeg bewoners antwoordden)."
                    if _find(DIGEST_NOW) is not None
                    else NOT_AVAILABLE
                ),
            ),
        }

    async def _open_round(self) -> str:
        """Publish a round that opens now (when none is open or planned), then tick."""
        assert self.services is not None
        published = await asyncio.to_thread(self._publish_sandbox_round)
        tick = _find(ROUND_TICK)
        assert tick is not None
        result = await asyncio.to_thread(_call_with_known, tick, self._known_arguments())
        if self._outbox_sender is not None:
            self._outbox_sender.wake()
        return " ".join([published, round_sentence(result)])

    def _publish_sandbox_round(self) -> str:
        """Publish "Sandbox-ronde <now>" for all areas; one Dutch sentence on what happened."""
        from zoneinfo import ZoneInfo

        from bot.rounds import RoundSpec, publish_round, resident_time
        from storage.models import Round

        assert self.services is not None
        services = self.services
        tz = ZoneInfo(services.settings.timezone)
        with services.db.session() as session:
            planned = session.scalars(
                select(Round).where(
                    Round.standing.is_(False), Round.status.in_(("scheduled", "open"))
                )
            ).first()
            if planned is not None:
                if planned.status == "open":
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
        """Each sandbox alliance asks for its digest now (as /digest in the group does)."""
        queue = _find(DIGEST_NOW)
        assert queue is not None
        assert self.services is not None
        tz = self.services.settings.timezone
        sentences = []
        for _, title, chat_id in SANDBOX_ALLIANCES:
            known = self._known_arguments() | {"chat_id": chat_id}
            result = await asyncio.to_thread(_call_with_known, queue, known)
            sentences.append(digest_sentence(title, result, tz))
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


def round_sentence(result: Any) -> str:
    """What a round tick did, in plain Dutch for the programme team (counts only, no ids)."""
    if result is None:
        return "De bot heeft de rondes bijgewerkt."
    if getattr(result, "skipped", False):
        return "Overgeslagen: deze bot is nu niet degene die rondes bijhoudt."
    sentences = []
    opened = len(getattr(result, "opened", []) or [])
    invitations = int(getattr(result, "invitations", 0) or 0)
    if opened:
        if invitations:
            who = _count(invitations, "bewoner", "bewoners")
            sentences.append(f"De ronde is open: {who} met toestemming uitgenodigd.")
        else:
            sentences.append(
                "De ronde is open, maar er is nog niemand om uit te nodigen: maak een bewoner "
                "aan en geef toestemming, dan doet die meteen mee."
            )
    superseded = int(getattr(result, "superseded", 0) or 0)
    if superseded:
        sentences.append(
            f"{_count(superseded, 'onafgemaakte lijst', 'onafgemaakte lijsten')} van de "
            "doorlopende vragenlijst afgesloten (de antwoorden blijven bewaard)."
        )
    reminders = int(getattr(result, "reminders", 0) or 0)
    if reminders:
        sentences.append(f"{_count(reminders, 'herinnering', 'herinneringen')} verstuurd.")
    closed = len(getattr(result, "closed", []) or []) + len(getattr(result, "missed", []) or [])
    if closed:
        sentences.append(f"{_count(closed, 'ronde', 'rondes')} gesloten.")
    notices = int(getattr(result, "closed_notices", 0) or 0)
    if notices:
        sentences.append(f"{_count(notices, 'bewoner', 'bewoners')} gehoord dat de ronde dicht is.")
    if not sentences:
        return "Er was niets te openen, te sluiten of te herinneren."
    return " ".join(sentences)


def digest_sentence(title: str, result: Any, timezone: str = "Europe/Amsterdam") -> str:
    """What "digest now" did for one alliance group, in plain Dutch."""
    from zoneinfo import ZoneInfo

    outcome = getattr(result, "outcome", None)
    if outcome == "queued":
        return f"{title}: digest verstuurd (tekst, grafiek en CSV)."
    if outcome == "too_soon":
        retry = getattr(result, "retry_at", None)
        when = (
            f" Weer mogelijk om {retry.astimezone(ZoneInfo(timezone)):%H:%M}."
            if retry is not None
            else ""
        )
        return f"{title}: kreeg net al een digest.{when}"
    if outcome == "no_round":
        return f"{title}: geen digest, want er is geen ronde in dit gebied."
    if outcome == "not_linked":
        return f"{title}: deze groep is niet gekoppeld."
    return f"{title}: gedaan."
