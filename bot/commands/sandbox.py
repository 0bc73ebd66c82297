"""`buurtstem sandbox`: try buurtstem in a browser, without Telegram and without a token."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

import click

from bot.options import settings_from
from sandbox.runner import Sandbox
from surveys.loader import DEFAULT_SURVEY_PATH, SurveyError, load_survey


@click.command("sandbox")
@click.option("--port", type=int, default=None, help="Port of the page (0 picks a free one).")
@click.option(
    "--survey",
    "survey_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="A survey file being designed: checked first, then offered as the default survey.",
)
@click.option("--fresh", is_flag=True, help="Start with an empty sandbox database.")
def command(port: int | None, survey_file: str | None, fresh: bool) -> None:
    """Run the bot against a local Telegram emulator with a chat page in your browser."""
    settings = settings_from()
    chosen = survey_file or settings.survey_file
    try:
        load_survey(chosen or DEFAULT_SURVEY_PATH)
    except SurveyError as exc:
        # The same lines as `buurtstem survey validate`, so editors can jump to them.
        for problem in exc.problems:
            click.echo(str(problem))
        click.echo(
            f"The sandbox did not start: fix {chosen or DEFAULT_SURVEY_PATH} first.", err=True
        )
        sys.exit(1)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request URL, and URLs carry the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        asyncio.run(_serve(port, chosen, fresh))
    except OSError as exc:
        click.echo(f"The sandbox could not start: {exc.strerror or exc}", err=True)
        if port != 0:
            click.echo("Is another sandbox running? Try --port 0 for a free port.", err=True)
        sys.exit(1)
    click.echo("Sandbox stopped.")


async def _serve(port: int | None, survey_file: str | None, fresh: bool) -> None:
    sandbox = Sandbox(settings_from(), port=port, survey_file=survey_file, fresh=fresh)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await sandbox.start()
        for note in sandbox.notes:
            click.echo(note)
        click.echo(f"Survey: {sandbox.survey_path}")
        # The one rule for databases: the sandbox has its own, so say how to reach it.
        click.echo(sandbox.database.describe())
        click.echo(
            "Other commands read it with --database-url, e.g.: buurtstem round list "
            f"--database-url {sandbox.database.cli_url}"
        )
        click.echo(f"Sandbox ready: {sandbox.url}")
        click.echo("Open it in your browser; press Ctrl-C to stop.", err=True)
        await stop.wait()
    finally:
        await sandbox.stop()
