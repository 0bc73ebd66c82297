"""Click options backed by the settings object, for every subcommand module.

Kept apart from bot/cli.py so that a command module can be imported on its own (tests do)
without importing the CLI group, which imports every command module in turn.
"""

from __future__ import annotations

from typing import Any

import click

from bot.settings import Settings


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
