"""`buurtstem export`: a round's answers as CSV or xlsx for the programme team."""

from __future__ import annotations

from pathlib import Path

import click

from bot.options import open_database, setting_option, settings_from
from bot.rounds import RoundError, zone
from storage.export import export_rows, write_csv, write_xlsx


@click.group("export")
def command() -> None:
    """Export survey data (pseudonymous: response keys, never Telegram ids)."""


@command.command("responses")
@click.option(
    "--round", "round_id", type=int, required=True, help="Round id (buurtstem round list)."
)
@click.option("--out", "out", required=True, help="File to write, e.g. round-3.csv.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "xlsx"]),
    default=None,
    help="File format (default: from the file name's extension, else csv).",
)
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
@click.option(
    "--raw-text",
    is_flag=True,
    help="Export free-text answers as typed (default: names, numbers and addresses scrubbed).",
)
@setting_option("database_url")
@setting_option("timezone")
def responses_command(
    round_id: int,
    out: str,
    fmt: str | None,
    force: bool,
    raw_text: bool,
    database_url: str | None,
    timezone: str | None,
) -> None:
    """One row per answer: response key, area, neighbourhood, language, question, item code,
    value (multiple choice ';'-joined), answered time (local ISO) and completed/partial."""
    settings = settings_from(database_url=database_url, timezone=timezone)
    path = Path(out)
    fmt = fmt or ("xlsx" if path.suffix.lower() == ".xlsx" else "csv")
    if path.exists() and not force:
        raise click.ClickException(f"{out} exists; add --force to overwrite it")
    if not path.parent.exists():
        raise click.ClickException(f"folder {path.parent} does not exist")
    try:
        tz = zone(settings.timezone)
    except RoundError as exc:
        raise click.ClickException(str(exc)) from exc
    text_filter = None
    if not raw_text:
        from digests.scrub import scrub

        text_filter = scrub
    db = open_database(settings.database_url)
    try:
        with db.session() as session:
            rows = export_rows(session, round_id, tz, text_filter=text_filter)
    except LookupError as exc:
        raise click.ClickException(f"no round {round_id} (see buurtstem round list)") from exc
    finally:
        db.dispose()
    responses = len({row.response_key for row in rows})
    count = write_xlsx(rows, path) if fmt == "xlsx" else write_csv(rows, path)
    click.echo(f"Wrote {count} answer(s) of {responses} response(s) in round {round_id} to {out}.")
