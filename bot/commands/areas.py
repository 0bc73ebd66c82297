"""`buurtstem areas`: show the focus areas, check an edited areas file, try a postcode."""

from __future__ import annotations

from pathlib import Path

import click

from bot.options import setting_option
from bot.settings import get_settings
from surveys.areas import (
    DEFAULT_PATH,
    Ambiguous,
    Area,
    Areas,
    AreasFileError,
    Found,
    InFocusMunicipality,
    Invalid,
    NotInFocusArea,
    check_areas_and_municipalities,
    format_pc4s,
    load_areas,
)

# --file, backed by the `areas_file` setting (BUURTSTEM_AREAS_FILE).
FILE_OPTION = setting_option("areas_file", "--file", type=click.Path(dir_okay=False))


def _areas_path(given: str | None) -> Path:
    if given:
        return Path(given)
    configured = getattr(get_settings(), "areas_file", None)
    return Path(configured) if configured else DEFAULT_PATH


def _load(given: str | None) -> Areas:
    try:
        return load_areas(_areas_path(given))
    except AreasFileError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException(
            f"{len(exc.problems)} error(s) in the areas file; "
            "fix them (see `buurtstem areas validate`)"
        ) from exc


@click.group("areas")
def command() -> None:
    """The focus areas, their neighbourhoods and postcodes."""


@command.command("list")
@FILE_OPTION
@click.option("--area", "area_code", metavar="CODE", help="Show one area (or a neighbourhood's).")
def list_command(areas_file: str | None, area_code: str | None) -> None:
    """Print the focus areas as a table, or one area with its neighbourhoods."""
    areas = _load(areas_file)
    if area_code is None:
        click.echo(_table(areas))
        return
    area = areas.get(area_code)
    if area is None:
        found = areas.neighbourhood(area_code)
        if found is None:
            raise click.ClickException(f"no area or neighbourhood with code '{area_code}'")
        area = found[0]
    click.echo(_detail(area))


@command.command("validate")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
def validate_command(file: str | None, strict: bool) -> None:
    """Check an areas file: one line per problem; exit 1 when there are errors."""
    path = _areas_path(file)
    areas, municipalities, problems = check_areas_and_municipalities(path)
    for problem in problems:
        click.echo(str(problem))
    errors = sum(problem.level == "error" for problem in problems)
    warnings = len(problems) - errors
    if errors or (strict and warnings):
        raise SystemExit(1)
    hoods = sum(len(area.neighbourhoods) for area in areas)
    pc4s = len({pc4 for area in areas for pc4 in area.all_postcodes})
    in_municipalities = len({pc4 for m in municipalities for pc4 in m.all_postcodes})
    click.echo(
        f"{path}: OK: {len(areas)} areas, {hoods} neighbourhoods, {pc4s} PC4s; "
        f"{len(municipalities)} municipalities, {in_municipalities} PC4s"
        + (f", {warnings} warning(s)" if warnings else "")
    )


@command.command("lookup")
@FILE_OPTION
@click.argument("postcode")
def lookup_command(areas_file: str | None, postcode: str) -> None:
    """Show what the bot would make of a postcode a resident types.

    One of three cases: in a focus area's data (the bot places the resident or asks which
    neighbourhood), in a municipality with a focus area but not in the area data (the bot asks,
    with "none of these"), or outside every such municipality (the survey is not for them).
    """
    areas = _load(areas_file)
    result = areas.lookup_postcode(postcode)
    match result:
        case Found(area, hood, pc4):
            click.echo(f"{pc4}: in focus area {area.name} ({area.code}): {hood.name} ({hood.code})")
        case Ambiguous(areas_, hoods, pc4, partly):
            where = ", ".join(f"{a.name} ({a.code})" for a in areas_)
            names = ", ".join(f"{hood.name} ({hood.code})" for hood in hoods)
            extra = ' or "none of these"' if partly else ""
            click.echo(f"{pc4}: in focus area {where}: the bot asks: {names}{extra}")
        case InFocusMunicipality(municipality, areas_, pc4):
            where = ", ".join(f"{a.name} ({a.code})" for a in areas_)
            click.echo(
                f"{pc4}: in focus municipality {municipality.name} ({municipality.code}), "
                f'not in the area data: the bot asks about {where}, with "none of these"'
            )
        case NotInFocusArea(pc4):
            click.echo(
                f"{pc4}: not in a focus municipality: the bot says the survey is not for "
                "this neighbourhood"
            )
        case Invalid(reason):
            click.echo(f"not a Dutch postcode ({reason})")
            raise SystemExit(1)


def _table(areas: Areas) -> str:
    header = ("code", "name", "municipality", "nbh", "PC4s", "verified")
    rows = [
        (
            area.code,
            area.name,
            f"{area.municipality} ({area.municipality_code})",
            str(len(area.neighbourhoods)),
            format_pc4s(area.all_postcodes) or "-",
            area.verification,
        )
        for area in areas
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    hoods = sum(len(area.neighbourhoods) for area in areas)
    lines.append(f"\n{len(areas)} areas, {hoods} neighbourhoods ({areas.source})")
    return "\n".join(line.rstrip() for line in lines)


def _pc4_text(whole: tuple[int, ...], partly: tuple[int, ...]) -> str:
    parts = []
    if whole:
        parts.append(format_pc4s(whole))
    if partly:
        parts.append(f"partly {format_pc4s(partly)}")
    return "; ".join(parts) or "-"


def _detail(area: Area) -> str:
    official = (
        f", CBS name {area.municipality_cbs_name}"
        if area.municipality_cbs_name and area.municipality_cbs_name != area.municipality
        else ""
    )
    lines = [
        f"{area.name} ({area.code})",
        f"municipality: {area.municipality} ({area.municipality_code}{official})",
    ]
    if area.source:
        lines.append(f"source: {area.source}")
    if area.postcodes or area.postcodes_partly:
        verified = "" if area.verified else " (unverified)"
        lines.append(
            f"area-wide PC4s: {_pc4_text(area.postcodes, area.postcodes_partly)}{verified}"
        )
    if area.note:
        lines.append(f"note: {area.note}")
    lines.append(f"neighbourhoods ({len(area.neighbourhoods)}):")
    code_width = max(len(hood.code) for hood in area.neighbourhoods)
    name_width = max(len(hood.name) for hood in area.neighbourhoods)
    for hood in area.neighbourhoods:
        verified = "" if hood.verified else "  (unverified)"
        pc4s = _pc4_text(hood.postcodes, hood.postcodes_partly)
        lines.append(
            f"  {hood.code.ljust(code_width)}  {hood.name.ljust(name_width)}  {pc4s}{verified}"
        )
    return "\n".join(lines)
