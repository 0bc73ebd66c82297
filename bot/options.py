"""Click options backed by the settings object, for every subcommand module.

Kept apart from bot/cli.py so that a command module can be imported on its own (tests do)
without importing the CLI group, which imports every command module in turn.
"""

from __future__ import annotations

from typing import Any

import click

from bot.settings import Settings
from storage.db import Database, normalise_url


def setting_option(name: str, *param_decls: str, **kwargs: Any) -> Any:
    """A click option backed by a settings field: same env var, same default, same help."""
    field = Settings.model_fields[name]
    decls = param_decls or ("--" + name.replace("_", "-"),)
    kwargs.setdefault("help", field.description)
    kwargs.setdefault("show_envvar", True)
    return click.option(*decls, name, envvar="BUURTSTEM_" + name.upper(), default=None, **kwargs)


def settings_from(**overrides: Any) -> Settings:
    """Settings from env/.env with the CLI options that were given laid on top."""
    given = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**given)


def open_database(url: str) -> Database:
    """The database, migrated to the newest schema (as `buurtstem run` does); one clear line
    naming the database (password hidden) when it cannot be opened."""
    from storage.migrate import upgrade

    try:
        upgrade(url)
    except Exception as exc:  # a bad URL, a missing folder, an unreachable server
        raise click.ClickException(
            f"could not open the database {safe_url(url)}: {driver_message(exc)}"
        ) from exc
    return Database(url)


def safe_url(url: str) -> str:
    """A database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(normalise_url(url)).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable URL)"


def driver_message(exc: BaseException) -> str:
    """The driver's own message, first line only, without SQLAlchemy's background link."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip()
    return text.splitlines()[0] if text else type(exc).__name__
