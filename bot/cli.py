"""The `buurtstem` command: one group, subcommands registered from their own modules."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from bot.settings import Settings

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
    """Console entry point."""
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
