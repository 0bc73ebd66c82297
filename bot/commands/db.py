"""`buurtstem db`: database schema management."""

from __future__ import annotations

import click

from bot.database import driver_message, safe_url
from bot.options import setting_option, settings_from
from storage.migrate import upgrade


@click.group("db")
def command() -> None:
    """Manage the database schema."""


@command.command("upgrade")
@setting_option("database_url")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade_command(database_url: str | None, revision: str) -> None:
    """Create or migrate the database to the newest schema."""
    settings = settings_from(database_url=database_url)
    try:
        upgrade(settings.database_url, revision)
    except Exception as exc:  # a bad URL or unreachable server: one clear line, no traceback
        raise click.ClickException(
            f"could not upgrade {safe_url(settings.database_url)}: {driver_message(exc)}"
        ) from exc
    click.echo(f"Database {safe_url(settings.database_url)} is at revision {revision}.")
