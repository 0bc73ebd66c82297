"""`buurtstem start`: the README's first command: the real bot with a token, else the sandbox."""

from __future__ import annotations

import click

from bot.settings import get_settings


@click.command("start")
@click.pass_context
def command(ctx: click.Context) -> None:
    """Start the bot when BUURTSTEM_TOKEN is set; otherwise the local sandbox (no token needed)."""
    root = ctx.find_root().command
    assert isinstance(root, click.Group)
    if get_settings().token:
        ctx.invoke(root.commands["run"])
        return
    sandbox = root.commands.get("sandbox")
    if sandbox is not None:
        ctx.invoke(sandbox)
        return
    # Until the sandbox exists: preview the default survey in the terminal.
    survey = root.commands["survey"]
    assert isinstance(survey, click.Group)
    click.echo("No BUURTSTEM_TOKEN set: previewing the default survey in the terminal.\n")
    ctx.invoke(survey.commands["preview"])
