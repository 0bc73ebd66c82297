"""`buurtstem db`: database schema management."""

from __future__ import annotations

import click

from bot.options import setting_option, settings_from
from storage.db import normalise_url
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
            f"could not upgrade {_safe(settings.database_url)}: {exc}"
        ) from exc
    click.echo(f"Database {_safe(settings.database_url)} is at revision {revision}.")


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(normalise_url(url)).render_as_string(hide_password=True)
