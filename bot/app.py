"""Wiring: build the PTB Application with buurtstem's handlers and services."""

from __future__ import annotations

import logging
from pathlib import Path

from telegram import BotCommand, BotCommandScopeAllPrivateChats, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import BaseRequest, HTTPXRequest

from bot.clock import Clock, SystemClock
from bot.http_client import AiohttpRequest
from bot.inbox import DurableUpdateQueue, ReadableUpdatesRequest
from bot.jobs import register_jobs
from bot.ordering import ChatOrderedProcessor
from bot.retrying import retrying
from bot.settings import Settings
from digests.references import load_references
from handlers import alliance, membership, resident, responses, results
from handlers.admin import rounds_command
from handlers.context import METRICS_KEY, SERVICES_KEY
from journey import wire
from locales.catalogue import Catalogue, default_catalogue
from locales.detection import LanguageDetector
from storage.db import Database
from storage.residents import adopt_update_claims
from storage.rounds import ensure_standing_round
from storage.survey_versions import store_survey
from surveys.areas import load_areas
from surveys.loader import DEFAULT_SURVEY_PATH, load_survey
from usecases.services import Services

log = logging.getLogger(__name__)

SKIPPED_KEY = "buurtstem.skipped"  # the SkipCounter, for the webhook server
HANDLED_GROUP = 1_000_000  # the last handler group: runs when every other one is done
RESIDENT_COMMANDS = ("start", "help", "results", "privacy", "language", "area", "stop", "forget")


def build_services(
    settings: Settings, db: Database, clock: Clock | None = None, catalogue: Catalogue | None = None
) -> Services:
    """Load the areas, texts and default survey, and make sure its standing round exists."""
    clock = clock or SystemClock()
    survey_path = Path(settings.survey_file) if settings.survey_file else DEFAULT_SURVEY_PATH
    survey = load_survey(survey_path)
    with db.session() as session:
        stored = store_survey(session, survey, survey_path.read_text(encoding="utf-8"), clock.now())
        ensure_standing_round(session, stored.id, clock.now())
        if settings.bot_id:
            # Update claims from before they were keyed by bot are this bot's.
            adopt_update_claims(session, settings.bot_id)
    areas = load_areas(settings.areas_file)
    # Place names must never tip a message towards another language.
    place_names = [
        name
        for area in areas.all()
        for name in (
            area.name,
            area.municipality,
            area.municipality_cbs_name,
            *(hood.name for hood in area.neighbourhoods),
        )
        if name
    ]
    detector = LanguageDetector(offered=survey.languages, place_names=place_names)
    # Reference figures are checked like the areas file: a wrong file stops the start, with
    # every problem and its line (`buurtstem digest references` checks them beforehand).
    references = load_references(settings.references_dir, {area.code for area in areas.all()})
    return Services(
        settings=settings,
        db=db,
        clock=clock,
        catalogue=catalogue or default_catalogue(),
        areas=areas,
        default_survey=survey,
        detector=detector,
        references=references,
    )


def build_application(
    services: Services,
    *,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
) -> Application:
    """The PTB Application: handlers registered, services in bot_data, commands on start."""
    settings = services.settings
    builder = ApplicationBuilder().token(settings.token or "0:sandbox")
    builder = builder.base_url(settings.api_base_url.rstrip("/") + "/bot")
    builder = builder.base_file_url(settings.api_base_url.rstrip("/") + "/file/bot")
    # Replies wait out 429s and retry what cannot be sent twice (bot/retrying.py).
    builder = builder.request(retrying(request or bot_api_request(settings)))
    # Different chats at once, each chat's updates in order (bot/ordering.py).
    builder = builder.concurrent_updates(ChatOrderedProcessor(settings.concurrent_updates))
    # Polling: an update the library cannot read is skipped, not asked for forever.
    skipped = SkipCounter()
    builder = builder.get_updates_request(
        ReadableUpdatesRequest(get_updates_request or HTTPXRequest(), on_skip=skipped)
    )
    # Every update is stored before Telegram hears it arrived, until handled (bot/inbox.py).
    builder = builder.update_queue(DurableUpdateQueue(services.db, settings.bot_id, services.clock))
    builder = builder.post_init(_post_init)
    application = builder.build()
    application.bot_data[SERVICES_KEY] = services
    skipped.application = application
    application.bot_data[SKIPPED_KEY] = skipped
    register_handlers(application)
    return application


def bot_api_request(settings: Settings) -> BaseRequest:
    """The HTTP client for Bot API calls: aiohttp, a small pool, waited for rather than refused.

    httpx's pool (httpcore) walks all its connections and waiting requests on every call, which
    under latency cost more CPU than the replies (benchmarks/README.md, "Many residents at
    once"); aiohttp's connector does not (bot/http_client.py).
    """
    return AiohttpRequest(connections=settings.bot_api_connections)


def register_handlers(application: Application) -> None:
    """All handlers, private-chat resident flow first."""
    # New messages only: an edited message is not a new answer, command or postcode (and
    # PTB's command and message handlers would otherwise take edits, and business messages,
    # too). And from a user: only a forged update has a private message without a sender.
    private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE & filters.USER
    application.add_handler(CommandHandler("start", resident.start, filters=private))
    application.add_handler(
        CommandHandler(["start", "help"], alliance.group_help, filters=filters.ChatType.GROUPS)
    )
    application.add_handler(CommandHandler("help", resident.help_command, filters=private))
    application.add_handler(CommandHandler("privacy", resident.privacy_command, filters=private))
    application.add_handler(CommandHandler("language", resident.language_command, filters=private))
    application.add_handler(CommandHandler("area", resident.area_command, filters=private))
    application.add_handler(CommandHandler("stop", resident.stop_command, filters=private))
    application.add_handler(CommandHandler("forget", resident.forget_command, filters=private))
    # Alliance groups (/koppel, /link, /digest) and residents' /results: handlers/alliance.py,
    # handlers/results.py. Before the private catch-all for unknown commands.
    application.add_handler(CommandHandler(["koppel", "link"], alliance.link_command))
    application.add_handler(
        CommandHandler("digest", alliance.digest_command, filters=filters.ChatType.GROUPS)
    )
    application.add_handler(CommandHandler("results", results.results_command, filters=private))
    application.add_handler(
        CommandHandler("results", alliance.results_in_group, filters=filters.ChatType.GROUPS)
    )
    # The bot added to, removed from, blocked or unblocked in a chat (handlers/membership.py).
    application.add_handler(
        ChatMemberHandler(membership.on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER)
    )
    application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, alliance.on_migrate))
    # End of alliance handlers.
    # Alliance responses to residents (handlers/responses.py, handlers/review.py): the group
    # drafts (/reactie, a reply to a digest), translates and puts forward; staff approve.
    application.add_handler(CommandHandler(["reactie", "response"], responses.response_command))
    application.add_handler(
        CommandHandler(["vertaling", "translation"], responses.translation_command)
    )
    application.add_handler(CommandHandler(["reacties", "responses"], responses.responses_command))
    application.add_handler(
        MessageHandler(
            filters.ChatType.GROUPS & filters.REPLY & filters.TEXT & ~filters.COMMAND,
            responses.on_group_reply,
        )
    )
    application.add_handler(
        CallbackQueryHandler(responses.on_response_button, pattern=wire.is_response_button)
    )
    # End of alliance response handlers.
    # Programme staff: /rounds (handlers/admin.py); others get the unknown-command answer.
    application.add_handler(CommandHandler("rounds", rounds_command, filters=private))
    application.add_handler(CallbackQueryHandler(resident.on_button))
    application.add_handler(
        MessageHandler(private & filters.TEXT & ~filters.COMMAND, resident.on_text)
    )
    application.add_handler(MessageHandler(private & filters.COMMAND, resident.unknown_command))
    application.add_handler(
        MessageHandler(
            private & ~filters.TEXT & ~filters.StatusUpdate.ALL, resident.on_other_message
        )
    )
    application.add_error_handler(_on_error)
    # After every other group: the update has been handled, its stored copy can go.
    application.add_handler(TypeHandler(object, _handled), group=HANDLED_GROUP)


async def _post_init(application: Application) -> None:
    """Register the command list in each offered language; schedule the jobs (bot/jobs.py)."""
    services: Services = application.bot_data[SERVICES_KEY]
    await register_commands(application, services)
    # Rounds open/close/remind, digests, housekeeping and retention fall due by themselves.
    register_jobs(application)


async def register_commands(application: Application, services: Services) -> None:
    """setMyCommands for private chats, once per offered language (Dutch also as default)."""
    scope = BotCommandScopeAllPrivateChats()
    for lang in services.offered_languages:
        commands = [
            BotCommand(name, services.text(lang, f"commands.{name}")) for name in RESIDENT_COMMANDS
        ]
        await application.bot.set_my_commands(commands, scope=scope, language_code=lang)
        if lang == "nl":
            await application.bot.set_my_commands(commands, scope=scope)


async def _handled(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The update's handlers are done (see HANDLED_GROUP)."""
    queue = context.application.update_queue
    if isinstance(queue, DurableUpdateQueue):
        queue.mark_handled(update)


class SkipCounter:
    """Counts updates skipped as unreadable, in the application's metrics once it has some."""

    def __init__(self) -> None:
        self.application: Application | None = None  # type: ignore[type-arg]

    def __call__(self) -> None:
        metrics = self.application.bot_data.get(METRICS_KEY) if self.application else None
        if metrics is not None:
            metrics.update_skipped()


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log errors without personal data (no update contents: they hold ids and texts)."""
    kind = type(update).__name__ if update is not None else "no update"
    update_id = update.update_id if isinstance(update, Update) else None
    log.error("error handling %s %s: %r", kind, update_id, context.error, exc_info=context.error)
