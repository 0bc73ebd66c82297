"""`buurtstem start`: the README's first command: the real bot with a token, else the sandbox."""

from __future__ import annotations

import click

from bot.commands import run, sandbox
from bot.settings import get_settings


@click.command("start")
@click.pass_context
def command(ctx: click.Context) -> None:
    """Start the bot when BUURTSTEM_TOKEN is set; otherwise the local sandbox (no token needed)."""
    ctx.invoke(run.command if get_settings().token else sandbox.command)
