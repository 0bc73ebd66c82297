"""The `buurtstem` command: one group, subcommands registered from their own modules."""

from __future__ import annotations

import importlib
import sys

import click
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from bot.options import driver_message, setting_option, settings_from

__all__ = ["cli", "main", "setting_option", "settings_from"]

# Subcommand modules: each defines a click command or group called `command`.
# A module that is not there yet (or fails to import) must not break the other commands.
COMMAND_MODULES = [
    "bot.commands.start",
    "bot.commands.run",
    "bot.commands.sandbox",
    "bot.commands.survey",
    "bot.commands.areas",
    "bot.commands.db",
    "bot.commands.round",
    "bot.commands.outbox",
    "bot.commands.export",
    "bot.commands.alliance",
    "bot.commands.digest",
    "bot.commands.settings",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="buurtstem")
def cli() -> None:
    """buurtstem: liveability and safety surveys for the NPLV focus areas, in Telegram."""


def _register() -> None:
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        cli.add_command(module.command)


_register()


def main() -> None:
    """Console entry point: bad settings or an unusable database give one line, not a traceback."""
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
    except ValidationError as exc:
        for line in settings_problems(exc):
            click.echo(f"Error: {line}", err=True)
        sys.exit(2)
    except SQLAlchemyError as exc:
        click.echo(f"Error: database: {driver_message(exc)}", err=True)
        sys.exit(1)


def settings_problems(exc: ValidationError) -> list[str]:
    """One line per bad setting, named by its environment variable."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error.get("loc") else "?"
        value = error.get("input")
        shown = f" (got {value!r})" if isinstance(value, str | int | float) else ""
        lines.append(f"BUURTSTEM_{field.upper()}: {error['msg']}{shown}")
    return lines


if __name__ == "__main__":
    main()
