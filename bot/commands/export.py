"""`buurtstem export`: a round's answers as CSV or xlsx for the programme team."""

from __future__ import annotations

from pathlib import Path

import click

from bot.database import open_database
from bot.options import setting_option, settings_from
from digests.scrub import scrub
from storage.export import export_rows, write_csv, write_xlsx

# File name endings each format may have; a name without one needs --format.
EXTENSIONS = {"csv": (".csv", ".txt"), "xlsx": (".xlsx",)}


def choose_format(out: str, fmt: str | None) -> str:
    """The format from --format or the file name's extension; a mismatch is an error."""
    suffix = Path(out).suffix.lower()
    by_name = next((name for name, ends in EXTENSIONS.items() if suffix in ends), None)
    if fmt is None:
        if by_name is None:
            raise click.ClickException(
                f"cannot tell the format from the name '{out}': end it in .csv or .xlsx, "
                "or give --format csv|xlsx"
            )
        return by_name
    if suffix and suffix not in EXTENSIONS[fmt]:
        fitting = Path(out).with_suffix(EXTENSIONS[fmt][0]).name
        other = f" or use --format {by_name}" if by_name else ""
        raise click.ClickException(
            f"--format {fmt} does not fit the file name '{out}' ({suffix}): "
            f"name the file {fitting}{other}"
        )
    return fmt


@click.group("export")
def command() -> None:
    """Export survey data (pseudonymous: response keys, never Telegram ids)."""


@command.command("responses")
@click.option(
    "--round", "round_id", type=int, required=True, help="Round id (buurtstem round list)."
)
@click.option(
    "--out", "out", required=True, help="File to write, e.g. round-3.csv or round-3.xlsx."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "xlsx"]),
    default=None,
    help="File format (default: from the file name's extension; they must agree).",
)
@click.option(
    "--plain-csv",
    is_flag=True,
    help="CSV for scripts: ',' separated, no BOM, decimal point, ISO 8601 times with offset "
    "(default: for Dutch Excel: ';', BOM, decimal comma, local times).",
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
    plain_csv: bool,
    force: bool,
    raw_text: bool,
    database_url: str | None,
    timezone: str | None,
) -> None:
    """One row per answer: response key, area, neighbourhood, language, question, item code,
    value (grades as numbers, multiple choice ';'-joined), answered time (local) and
    completed/partial.

    CSV opens with a double click in Dutch Excel (';', BOM, decimal comma) and in LibreOffice;
    xlsx has typed cells (numbers, dates) and a frozen header row.
    """
    settings = settings_from(database_url=database_url, timezone=timezone)
    path = Path(out)
    fmt = choose_format(out, fmt)
    if plain_csv and fmt != "csv":
        raise click.ClickException("--plain-csv is for CSV files only")
    if path.exists() and not force:
        raise click.ClickException(f"{out} exists; add --force to overwrite it")
    if not path.parent.exists():
        raise click.ClickException(f"folder {path.parent} does not exist")
    tz = settings.tz
    text_filter = None if raw_text else scrub
    db = open_database(database_url, settings)
    try:
        with db.session() as session:
            rows = export_rows(session, round_id, tz, text_filter=text_filter, surveys=db.surveys)
    except LookupError as exc:
        raise click.ClickException(f"no round {round_id} (see buurtstem round list)") from exc
    finally:
        db.dispose()
    responses = len({row.response_key for row in rows})
    count = (
        write_xlsx(rows, path) if fmt == "xlsx" else write_csv(rows, path, excel_nl=not plain_csv)
    )
    style = {"xlsx": "xlsx", "csv": "plain CSV" if plain_csv else "CSV for Excel (';', BOM)"}[fmt]
    click.echo(
        f"Wrote {count} answer(s) of {responses} response(s) in round {round_id} to {out} "
        f"({style}, times in {settings.timezone})."
    )
