"""`buurtstem run`: the bot itself, by long polling (or webhook)."""

from __future__ import annotations

import logging
import sys

import click

from bot.cli import setting_option, settings_from


@click.command("run")
@setting_option("token")
@setting_option("api_base_url")
@setting_option("database_url")
@setting_option("log_level")
def command(
    token: str | None, api_base_url: str | None, database_url: str | None, log_level: str | None
) -> None:
    """Run the Telegram bot (long polling)."""
    settings = settings_from(
        token=token, api_base_url=api_base_url, database_url=database_url, log_level=log_level
    )
    if not settings.token:
        click.echo(
            "No bot token: ask @BotFather in Telegram for one (/newbot) and set BUURTSTEM_TOKEN "
            "(or run ./start without a token for the local sandbox).",
            err=True,
        )
        sys.exit(2)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request URL, and URLs carry the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from bot.app import build_application, build_services
    from storage.db import Database
    from storage.migrate import upgrade

    upgrade(settings.database_url)
    db = Database(settings.database_url)
    services = build_services(settings, db)
    application = build_application(services)
    application.run_polling(allowed_updates=["message", "callback_query", "my_chat_member"])
