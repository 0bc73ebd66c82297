"""`buurtstem digest preview`: an area's digest as the alliance would get it, to check."""

from __future__ import annotations

from pathlib import Path

import click

from bot.clock import SystemClock
from bot.database import open_database
from bot.options import setting_option, settings_from
from bot.terminal import print_telegram_html
from digests import build_digest
from locales.catalogue import default_catalogue
from storage.digest_counts import CountsCache
from storage.rounds import get_round, round_for_area
from surveys.areas import load_areas
from usecases.digest_data import digest_input


@click.group("digest")
def command() -> None:
    """Alliance digests."""


@command.command("preview")
@click.argument("area")
@click.option("--round", "round_id", type=int, default=None, help="Round id (default: current).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder for the PNG and CSV.",
)
@click.option("--language", default="nl", show_default=True)
@setting_option("database_url")
@setting_option("areas_file", type=click.Path(dir_okay=False))
def preview(
    area: str,
    round_id: int | None,
    out: Path,
    language: str,
    database_url: str | None,
    areas_file: str | None,
) -> None:
    """Print AREA's digest text (round so far) and write its chart PNG and CSV; sends nothing.

    On a terminal, bold and italic show as such; piped, the text is plain (no HTML tags).
    """
    settings = settings_from(database_url=database_url, areas_file=areas_file)
    areas = load_areas(settings.areas_file)
    found = areas.get(area)
    if found is None:
        hood = areas.neighbourhood(area)
        if hood is not None:
            raise click.ClickException(
                f"'{area}' is a neighbourhood of {hood[0].code}; digests are per focus area: "
                f"use {hood[0].code}"
            )
        raise click.ClickException(f"unknown area {area!r} (see buurtstem areas list)")
    tz = settings.tz
    now = SystemClock().now()
    db = open_database(database_url, settings)
    try:
        with db.session() as session:
            round_ = (
                get_round(session, round_id)
                if round_id is not None
                else round_for_area(session, found.code, now)
            )
            if round_ is None:
                raise click.ClickException(
                    f"no round {round_id} (see buurtstem round list)"
                    if round_id
                    else f"no round is open in {found.code} now: name one with --round ID "
                    "(see buurtstem round list)"
                )
            end = min(now, round_.closed_at or now)
            data = digest_input(
                CountsCache(session, default_catalogue(), db.surveys),
                area=found,
                round_=round_,
                period_start=round_.opens_at,
                period_end=end,
                previous_end=None,
                tz=tz,
            )
    finally:
        db.dispose()
    digest = build_digest(data, lang=language, min_n=settings.min_cell_size, last_published=None)
    for i, text in enumerate(digest.messages, 1):
        click.echo(f"--- message {i} of {len(digest.messages)} ---")
        print_telegram_html(text)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"digest-{found.code}-{end.astimezone(tz):%Y-%m-%d}"
    csv_path = out / f"{stem}.csv"
    csv_path.write_bytes(digest.csv)
    click.echo(f"CSV: {csv_path}")
    if digest.chart_png is not None:
        png_path = out / f"{stem}.png"
        png_path.write_bytes(digest.chart_png)
        click.echo(f"Chart: {png_path}")
