"""`buurtstem digest preview`: an area's digest as the alliance would get it, to check;
`buurtstem digest references`: check the reference figures."""

from __future__ import annotations

from pathlib import Path

import click

from bot.clock import SystemClock
from bot.database import open_database
from bot.options import setting_option, settings_from
from bot.terminal import print_telegram_html
from digests.references import describe, load_references
from surveys.areas import load_areas
from surveys.yamlfile import ProblemsError
from usecases.queue_digests import preview_digest


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
    """Print AREA's digest as a newly linked group would get it now (the area's latest
    release) and write its chart PNG and CSV; sends nothing.

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
        references = load_references(settings.references_dir, {a.code for a in areas.all()})
        found_digest = preview_digest(
            db,
            areas,
            found.code,
            now,
            language=language,
            min_n=settings.min_cell_size,
            tz=tz,
            round_id=round_id,
            references=references,
        )
    except ProblemsError as exc:
        raise click.ClickException(f"the reference figures cannot be used:\n{exc}") from None
    finally:
        db.dispose()
    if found_digest is None:
        raise click.ClickException(
            f"no round {round_id} (see buurtstem round list)"
            if round_id
            else f"no round is open in {found.code} now: name one with --round ID "
            "(see buurtstem round list)"
        )
    digest, _round = found_digest
    for i, text in enumerate(digest.messages, 1):
        click.echo(f"--- message {i} of {len(digest.messages)} ---")
        print_telegram_html(text)
    stem = f"digest-{found.code}-{now.astimezone(tz):%Y-%m-%d}"
    if digest.csv is None:
        click.echo("No chart and no CSV: too few responses for figures.")
        return
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"{stem}.csv"
    csv_path.write_bytes(digest.csv)
    click.echo(f"CSV: {csv_path}")
    if digest.chart_png is not None:
        png_path = out / f"{stem}.png"
        png_path.write_bytes(digest.chart_png)
        click.echo(f"Chart: {png_path}")


@command.command("references")
@setting_option("references_dir", type=click.Path(file_okay=False))
@setting_option("areas_file", type=click.Path(dir_okay=False))
def references_command(references_dir: str | None, areas_file: str | None) -> None:
    """Check the reference figures (city and country) and list what each area will show."""
    settings = settings_from(references_dir=references_dir, areas_file=areas_file)
    if not settings.references_dir:
        raise click.ClickException(
            "no references folder: set BUURTSTEM_REFERENCES_DIR or give --references-dir "
            "(a template: docs/reference-template.yaml)"
        )
    areas = load_areas(settings.areas_file)
    try:
        found = load_references(settings.references_dir, {a.code for a in areas.all()})
    except ProblemsError as exc:
        raise click.ClickException(str(exc)) from None
    if not found:
        click.echo(f"No reference files (*.yaml) in {settings.references_dir}.")
        return
    for line in describe(found[code] for code in sorted(found)):
        click.echo(line)
