"""The `buurtstem` command: one group, subcommands registered from their own modules."""

from __future__ import annotations

import importlib
import sys

import click
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from bot.database import driver_message

# Subcommand modules: each defines a click command or group called `command`. Every one must be
# there: a missing module is a broken install or a renamed file, and says so at once.
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


class MissingCommand(ImportError):
    """A subcommand module of COMMAND_MODULES that is not there or defines no `command`."""


def register(group: click.Group, module_names: list[str]) -> None:
    """Add each module's `command` to `group`; MissingCommand names a module that is missing."""
    for module_name in module_names:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            raise MissingCommand(
                f"buurtstem: the command module {module_name} is missing (a broken install or a "
                "renamed file): reinstall, or fix bot/cli.py COMMAND_MODULES"
            ) from exc
        command = getattr(module, "command", None)
        if not isinstance(command, click.Command):
            raise MissingCommand(f"buurtstem: {module_name} defines no click `command`")
        group.add_command(command)


register(cli, COMMAND_MODULES)


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
