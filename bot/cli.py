"""The `buurtstem` command: one group, subcommands registered from their own modules."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any

import click
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from bot.database import driver_message

# Subcommands by name, each defined as `command` (a click command or group) in its own module.
# A command's module is imported when the command runs (or is listed, for --help), so `buurtstem
# round list` loads what rounds need and not the bot or the sandbox. Every module must be there:
# a missing one is a broken install or a renamed file, and the CLI says so instead of skipping.
COMMANDS = {
    "start": "bot.commands.start",
    "run": "bot.commands.run",
    "sandbox": "bot.commands.sandbox",
    "survey": "bot.commands.survey",
    "areas": "bot.commands.areas",
    "db": "bot.commands.db",
    "round": "bot.commands.round",
    "outbox": "bot.commands.outbox",
    "export": "bot.commands.export",
    "alliance": "bot.commands.alliance",
    "digest": "bot.commands.digest",
    "response": "bot.commands.response",
    "settings": "bot.commands.settings",
}


class MissingCommand(click.ClickException):
    """A command whose module is not there, or does not define it: `Error: ...`, exit 1."""


def load_command(name: str, module_name: str) -> click.Command:
    """The click command `name` from its module; MissingCommand says what is missing."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise MissingCommand(
            f"the module {module_name} of the command '{name}' is missing (a broken install or "
            "a renamed file): reinstall buurtstem, or correct bot/cli.py COMMANDS"
        ) from exc
    command = getattr(module, "command", None)
    if not isinstance(command, click.Command) or command.name != name:
        raise MissingCommand(f"{module_name} defines no click command '{name}' called `command`")
    return command


class Commands(click.Group):
    """A group whose subcommands are imported from their modules when asked for."""

    def __init__(self, *args: Any, modules: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.modules = dict(modules)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.modules)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = self.modules.get(cmd_name)
        return None if module_name is None else load_command(cmd_name, module_name)


@click.group(
    cls=Commands, modules=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(package_name="buurtstem")
def cli() -> None:
    """buurtstem: liveability and safety surveys for the NPLV focus areas, in Telegram."""


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
