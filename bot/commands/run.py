"""`buurtstem run`: the bot itself, by long polling (default) or behind a proxy with a webhook."""

from __future__ import annotations

import logging
import re
import sys
from urllib.parse import urlsplit

import click
from telegram.error import InvalidToken, NetworkError

from bot.app import SKIPPED_KEY, build_application, build_services
from bot.clock import SystemClock
from bot.database import choose_database
from bot.logs import configure_logging
from bot.options import setting_option, settings_from
from bot.runtime import ALLOWED_UPDATES, Runtime
from bot.settings import NEW_KEY_COMMAND, Settings, key_problem
from bot.webhook import run_webhook
from storage.db import Database
from storage.leases import serialised
from storage.meta import check_key_fingerprint
from storage.migrate import upgrade
from storage.pseudonyms import key_fingerprint
from surveys.yamlfile import ProblemsError

# Telegram's rule for secret_token: 1-256 characters A-Z, a-z, 0-9, _ and -.
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_NO_TOKEN = (
    "No bot token: ask @BotFather in Telegram for one (/newbot) and set BUURTSTEM_TOKEN "
    "(or run ./start without a token for the local sandbox)."
)


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(2)


def check_settings(settings: Settings, webhook: bool) -> None:
    """Refuse (exit 2, one line) what cannot run: no token; no own pseudonym key; webhook mode
    without URL or secret."""
    if not settings.token:
        _fail(_NO_TOKEN)
    problem = key_problem(settings.pseudonym_key)
    if problem is not None:
        # Refused rather than generated: the key must live apart from the data (a database dump
        # plus the key links answers to Telegram accounts) and be the same on every instance.
        what = (
            problem
            if "pseudonym_key" in settings.model_fields_set
            else "No BUURTSTEM_PSEUDONYM_KEY"
        )
        _fail(
            f"{what}: the real bot needs a secret key of its own to pseudonymise Telegram ids. "
            f"Create one once with: {NEW_KEY_COMMAND} , keep a copy apart from the data, and "
            "never change it (docs/deploy.md)."
        )
    if not webhook:
        if settings.webhook_url:
            # Polling deletes the webhook at Telegram: the other instances would get nothing.
            _fail(
                "BUURTSTEM_WEBHOOK_URL is set: run `buurtstem run --webhook`, or unset it to use "
                "long polling (which removes the webhook at Telegram)."
            )
        return
    if not settings.webhook_url:
        _fail(
            "Webhook mode needs BUURTSTEM_WEBHOOK_URL (--webhook-url): the public HTTPS URL "
            "that the proxy passes on to this instance."
        )
    if not settings.webhook_secret or not _SECRET.fullmatch(settings.webhook_secret):
        _fail(
            "Webhook mode needs BUURTSTEM_WEBHOOK_SECRET (--webhook-secret): 1-256 characters "
            'A-Z a-z 0-9 _ -, e.g. python3 -c "import secrets; print(secrets.token_urlsafe(32))".'
        )


def webhook_path(webhook_url: str) -> str:
    """The path the webhook server answers on: the public URL's path (proxies pass it on)."""
    return urlsplit(webhook_url).path.strip("/")


@click.command("run")
@click.option(
    "--webhook",
    is_flag=True,
    help="Receive updates by webhook (behind a TLS proxy; needed for several instances) "
    "instead of long polling.",
)
@setting_option("token")
@setting_option("api_base_url")
@setting_option("database_url")
@setting_option("webhook_url")
@setting_option("webhook_listen")
@setting_option("webhook_port", type=int)
@setting_option("webhook_secret")
@setting_option("metrics_port", type=int)
@setting_option("log_format", type=click.Choice(["text", "json"]))
@setting_option("log_level")
def command(webhook: bool, **options: str | int | None) -> None:
    """Run the Telegram bot (long polling, or --webhook)."""
    settings = settings_from(**options)
    check_settings(settings, webhook)
    configure_logging(
        settings.log_format,
        settings.log_level,
        secrets=[settings.token, settings.webhook_secret, settings.pseudonym_key],
    )
    # At DEBUG, PTB logs whole updates (names, texts): never below INFO for those loggers.
    for name in ("telegram", "telegram.ext"):
        logger = logging.getLogger(name)
        logger.setLevel(max(logging.INFO, logging.getLogger().getEffectiveLevel()))

    # A refused token or an unreachable Bot API at start-up ends in one line below; PTB's
    # retry loop would log the same error with a full traceback first.
    for handler in logging.getLogger().handlers:
        handler.addFilter(_quiet_startup_errors)

    # The same rule and first line as every other command that reads data.
    given = options.get("database_url")
    choice = choose_database(given if isinstance(given, str) else None, settings)
    path = choice.sqlite_path
    click.echo(choice.describe(created=path is not None and not path.exists()), err=True)
    db = Database(settings.database_url, workers=settings.db_pool_size)
    # Instances starting together would race to migrate and to create the standing round.
    with serialised(settings.database_url, "buurtstem-startup"):
        upgrade(settings.database_url)
        check_key(db, settings.pseudonym_key)
        try:
            services = build_services(settings, db)
        except ProblemsError as exc:
            raise click.ClickException(f"the reference figures cannot be used:\n{exc}") from None
    application = build_application(services)
    Runtime(application, services).install()
    try:
        if webhook:
            assert settings.webhook_url is not None
            # buurtstem's own server: stores each update before its 200 (bot/webhook.py).
            run_webhook(
                application,
                listen=settings.webhook_listen,
                port=settings.webhook_port,
                path=webhook_path(settings.webhook_url),
                url=settings.webhook_url,
                secret=settings.webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
                on_skip=application.bot_data.get(SKIPPED_KEY),
            )
        else:
            application.run_polling(allowed_updates=ALLOWED_UPDATES)
    except InvalidToken:
        # PTB's message repeats the token: say it in our words instead.
        raise click.ClickException(
            "Telegram refused the bot token: check BUURTSTEM_TOKEN (from @BotFather)."
        ) from None
    except NetworkError as exc:
        raise click.ClickException(
            f"cannot reach the Bot API at {settings.api_base_url} ({type(exc).__name__}); "
            "check the network or BUURTSTEM_API_BASE_URL."
        ) from None
    finally:
        db.dispose()
    logging.getLogger(__name__).info("stopped")


def check_key(db: Database, key: str) -> None:
    """Refuse (exit 2) a key other than the one the data was made with; store it on first use."""
    log = logging.getLogger(__name__)
    with db.session() as session:
        check = check_key_fingerprint(session, key_fingerprint(key), SystemClock().now())
    short = key_fingerprint(key)[:12]
    if check.outcome == "different":
        db.dispose()
        _fail(
            f"BUURTSTEM_PSEUDONYM_KEY is not the key this database was started with (key "
            f"fingerprint {short}, the data's {(check.stored or '')[:12]}): with another key every "
            "resident would become a stranger. Set the original key (docs/deploy.md)."
        )
    elif check.outcome == "stored":
        log.info("pseudonym key fingerprint %s stored with the data (first start)", short)
    elif check.outcome == "adopted":
        log.warning(
            "this database has residents but no key fingerprint (made before fingerprints were "
            "kept): stored %s now; make sure BUURTSTEM_PSEUDONYM_KEY is the key they were made with",
            short,
        )


def _quiet_startup_errors(record: logging.LogRecord) -> bool:
    """Drop the traceback (not the line) of start-up errors that the command reports itself."""
    if record.exc_info and isinstance(record.exc_info[1], InvalidToken | NetworkError):
        record.exc_info = None
        record.exc_text = None
    return True
