"""`buurtstem round`: publish survey rounds, list and show them, close one early."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from bot.clock import SystemClock
from bot.database import open_database
from bot.options import setting_option, settings_from
from bot.settings import Settings
from bot.terminal import YES_OPTION, confirm, print_table
from storage import rounds as store
from storage.models import Round
from storage.survey_versions import get_survey_version
from surveys.areas import Areas, AreasFileError, load_areas
from surveys.loader import SurveyError, load_survey
from surveys.round_file import (
    RoundError,
    RoundFileError,
    RoundSpec,
    build_spec,
    read_round_file,
    shown,
)
from surveys.times import local, local_end
from surveys.yamlfile import Problem
from usecases.publish_round import publish_round
from usecases.round_tick import close_now


@click.group("round")
def command() -> None:
    """Publish survey rounds for focus areas, list them, show one, close one early."""


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def _areas(settings: Settings) -> Areas:
    try:
        return load_areas(settings.areas_file)
    except (AreasFileError, OSError) as exc:
        raise click.ClickException(f"areas file: {exc}") from exc


def _reminded(started: bool, not_started: bool) -> str:
    """Who gets reminders, in words."""
    labels = [("started-not-finished", started), ("not-started", not_started)]
    return " and ".join(label for label, on in labels if on)


def _describe(spec: RoundSpec, settings: Settings) -> list[str]:
    tz, tz_name = settings.tz, settings.timezone
    areas = "all focus areas" if spec.area_codes is None else ", ".join(spec.area_codes)
    opens = shown(spec.opens_written, spec.opens_at, tz)
    closes = shown(spec.closes_written, spec.closes_at, tz, closes=True)
    lines = [f"  areas: {areas}", f"  opens {opens}, closes {closes} ({tz_name})"]
    if spec.reminder_after_days is None:
        lines.append("  reminders: none")
    else:
        whom = _reminded(spec.remind_started, spec.remind_not_started)
        lines.append(
            f"  reminders: every {spec.reminder_after_days} day(s) after opening, "
            f"at most {spec.max_reminders}, to {whom} residents"
        )
    return lines


# Round settings that options can give, and the option that gives each.
OPTION_OF = {
    "name": "--name",
    "areas": "--areas",
    "opens": "--opens",
    "closes": "--closes",
    "reminder.after_days": "--remind-after-days",
    "reminder.max": "--max-reminders",
    "reminder.whom": "--remind-whom",
}


def _line_of(problem: Problem) -> tuple[int, int]:
    """Sort key: problems of the round file by line, then those of options (no line)."""
    return (0, problem.line) if problem.line else (1, 0)


def _not_published(problems: list[str]) -> NoReturn:
    """Every problem on its own line (file:line first), then one closing line; exit 1."""
    for line in problems:
        click.echo(line)
    click.echo(f"Not published: fix {len(problems)} problem(s) first.")
    sys.exit(1)


def _survey_path(values: dict[str, Any], base_dir: Path) -> Path | None:
    survey = values.get("survey")
    if not isinstance(survey, str) or not survey.strip():
        return None
    path = Path(survey.strip())
    return path if path.is_absolute() else base_dir / path


@command.command("publish")
@click.argument("file")
@click.option("--name", default=None, help="Round name (overrides the round file).")
@click.option(
    "--areas",
    "area_list",
    default=None,
    help="'all' or comma-separated focus area codes (see buurtstem areas list).",
)
@click.option("--opens", default=None, help="Local opening time, e.g. '2026-11-09 09:00'.")
@click.option(
    "--closes",
    default=None,
    help="Local closing time, e.g. '2026-11-30 17:00' (a bare date: the end of that day).",
)
@click.option("--remind-after-days", type=int, default=None, help="Remind after N days.")
@click.option("--max-reminders", type=int, default=None, help="At most this many reminders.")
@click.option(
    "--remind-whom",
    type=click.Choice(["both", "started", "not-started"]),
    default=None,
    help="Remind residents who started and did not finish, who did not start, or both.",
)
@setting_option("database_url")
@setting_option("areas_file")
@setting_option("timezone")
def publish_command(
    file: str,
    name: str | None,
    area_list: str | None,
    opens: str | None,
    closes: str | None,
    remind_after_days: int | None,
    max_reminders: int | None,
    remind_whom: str | None,
    database_url: str | None,
    areas_file: str | None,
    timezone: str | None,
) -> None:
    """Publish a round: FILE is a round file (YAML with survey, name, areas, opens, closes,
    reminder) or a survey file with the round given as options.

    The survey is validated first; a survey version already stored with other content is
    refused (give the changed survey a new version). The round opens and closes by itself
    while the bot runs.
    """
    settings = settings_from(database_url=database_url, areas_file=areas_file, timezone=timezone)
    path = Path(file)
    try:
        read = read_round_file(path)
    except RoundFileError as exc:
        _not_published([str(problem) for problem in exc.problems])
    # A round file names its survey; a survey file gets its round settings from the options.
    values: dict[str, Any] = (
        dict(read.values) if read.is_round_file else {"survey": str(path.resolve())}
    )
    overrides = {"name": name, "areas": area_list, "opens": opens, "closes": closes}
    values.update({key: value for key, value in overrides.items() if value is not None})
    reminder_options = {"after_days": remind_after_days, "max": max_reminders, "whom": remind_whom}
    if any(value is not None for value in reminder_options.values()):
        reminder = dict(values.get("reminder") or {})
        reminder.update({k: v for k, v in reminder_options.items() if v is not None})
        values["reminder"] = reminder
    given = {
        key
        for key, value in {
            **overrides,
            **{f"reminder.{k}": v for k, v in reminder_options.items()},
        }.items()
        if value is not None
    }

    def locate(key: str) -> tuple[str, int | None] | None:
        if key in given:
            return OPTION_OF[key], None
        return read.locate(key) if read.is_round_file else None

    areas = _areas(settings)
    tz = settings.tz
    problems: list[str] = []
    spec: RoundSpec | None = None
    try:
        spec = build_spec(
            values, path.resolve().parent, tz, areas, locate=locate, now=SystemClock().now()
        )
    except RoundFileError as exc:
        problems += [str(problem) for problem in sorted(exc.problems, key=_line_of)]
    # The survey is checked in the same run, so one run shows every problem of both files.
    survey_path = _survey_path(values, path.resolve().parent)
    survey = None
    if survey_path is not None and survey_path.is_file():
        try:
            survey = load_survey(survey_path if read.is_round_file else path)
        except SurveyError as exc:
            problems += [str(problem) for problem in exc.problems]
    if problems or spec is None or survey is None:
        _not_published(problems or ["the round could not be read"])
    db = open_database(database_url, settings, create=True)
    try:
        published = publish_round(
            db,
            spec,
            survey,
            spec.survey_path.read_text(encoding="utf-8"),
            SystemClock().now(),
            tz,
        )
    except RoundError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.dispose()
    verb = {
        "created": "published",
        "updated": "updated (not opened yet)",
        "unchanged": "already published, unchanged",
    }[published.outcome]
    click.echo(
        f"Round {published.round_id} '{spec.name}' {verb}: survey {survey.id} {survey.version}"
    )
    for line in _describe(spec, settings):
        click.echo(line)
    if published.outcome != "unchanged":
        click.echo(
            "It opens and closes by itself while the bot runs; invitations go out at opening."
        )


def _version_label(db_round: Round) -> str:
    version = db_round.survey_version
    return f"{version.survey_id} {version.version}"


@command.command("list")
@setting_option("database_url")
@setting_option("timezone")
def list_command(database_url: str | None, timezone: str | None) -> None:
    """Every round: id, name, survey version, status, period, responses per area."""
    settings = settings_from(database_url=database_url, timezone=timezone)
    tz = settings.tz
    db = open_database(database_url, settings)
    try:
        with db.session() as session:
            rounds = store.list_rounds(session)
            counts = store.response_counts(session, [r.id for r in rounds])
            if not rounds:
                click.echo("No rounds yet. Publish one with: buurtstem round publish FILE")
                return
            rows = [
                (
                    str(round_.id),
                    f"{round_.name} (standing)" if round_.standing else round_.name,
                    _version_label(round_),
                    round_.status,
                    local(round_.opens_at, tz),
                    "-" if round_.standing else local_end(round_.closes_at, tz),
                    "\n".join(_count_lines(counts[round_.id])),
                )
                for round_ in rounds
            ]
    finally:
        db.dispose()
    print_table(
        ("id", "name", "survey", "status", "opens", "closes", "responses"), rows, right=("id",)
    )
    click.echo(f"Times in {settings.timezone}; started counts every response begun.")


def _count_lines(counts: list[store.AreaCount]) -> list[str]:
    if not counts:
        return ["no responses"]
    lines = [f"{c.area_code}: started {c.started}, completed {c.completed}" for c in counts]
    if len(counts) > 1:
        lines.append(
            f"total: started {sum(c.started for c in counts)}, "
            f"completed {sum(c.completed for c in counts)}"
        )
    return lines


@command.command("show")
@click.argument("round_id", type=int)
@setting_option("database_url")
@setting_option("timezone")
def show_command(round_id: int, database_url: str | None, timezone: str | None) -> None:
    """One round in full: settings, responses per area, messages queued and sent."""
    settings = settings_from(database_url=database_url, timezone=timezone)
    tz = settings.tz
    db = open_database(database_url, settings)
    try:
        with db.session() as session:
            round_ = store.get_round(session, round_id)
            if round_ is None:
                _fail(f"no round {round_id} (see buurtstem round list)")
            version = get_survey_version(session, round_.survey_version_id)
            assert version is not None
            click.echo(
                f"Round {round_.id}: {round_.name}" + (" (standing)" if round_.standing else "")
            )
            click.echo(f"  survey: {version.survey_id} {version.version} ({version.title})")
            never = round_.status == store.CLOSED and round_.opened_at is None
            click.echo(f"  status: {round_.status}" + (" (it never opened)" if never else ""))
            areas = "all focus areas" if round_.area_codes is None else ", ".join(round_.area_codes)
            click.echo(f"  areas: {areas}")
            click.echo(f"  opens: {local(round_.opens_at, tz)}")
            if not round_.standing:
                click.echo(f"  closes: {local_end(round_.closes_at, tz)}")
            if round_.opened_at is not None:
                click.echo(f"  opened at: {local(round_.opened_at, tz)}")
            if round_.closed_at is not None:
                click.echo(f"  closed at: {local(round_.closed_at, tz)}")
            if round_.reminder_after_days is None:
                click.echo("  reminders: none")
            else:
                whom = _reminded(round_.remind_started, round_.remind_not_started)
                click.echo(
                    f"  reminders: every {round_.reminder_after_days} day(s), at most "
                    f"{round_.max_reminders}, to {whom}; "
                    f"{round_.reminders_done} decided"
                )
            click.echo("  responses:")
            for line in _count_lines(store.response_counts(session, [round_id])[round_id]):
                click.echo("    " + line)
            messages = store.message_counts(session, round_id)
            if messages:
                click.echo("  messages (outbox, while kept):")
                for (kind, status), count in sorted(messages.items()):
                    click.echo(f"    {kind} {status}: {count}")
    finally:
        db.dispose()


@command.command("close")
@click.argument("round_id", type=int)
@YES_OPTION
@setting_option("database_url")
@setting_option("areas_file")
@setting_option("timezone")
def close_command(
    round_id: int,
    yes: bool,
    database_url: str | None,
    areas_file: str | None,
    timezone: str | None,
) -> None:
    """Close a round now (after asking; --yes skips the question); unfinished answers are kept.

    A round that has not opened yet is closed before it opens: nobody is invited.
    """
    settings = settings_from(database_url=database_url, areas_file=areas_file, timezone=timezone)
    tz = settings.tz
    areas = _areas(settings)
    db = open_database(database_url, settings)
    try:
        with db.session() as session:
            round_ = store.get_round(session, round_id)
            if round_ is None:
                _fail(f"no round {round_id} (see buurtstem round list)")
            if round_.standing:
                _fail(
                    f"round {round_id} is the standing round of the default survey; "
                    "it ends when the default survey gets a new version"
                )
            if round_.status == store.CLOSED:
                _fail(f"round {round_id} is already closed")
            counts = store.response_counts(session, [round_id])[round_id]
            title = f"round {round_id} '{round_.name}'"
            if round_.status == store.SCHEDULED:
                question = (
                    f"Close {title} now? It has not opened yet (it would open "
                    f"{local(round_.opens_at, tz)}): it will never open and nobody is invited."
                )
            else:
                unfinished = sum(c.started - c.completed for c in counts)
                question = (
                    f"Close {title} now instead of {local_end(round_.closes_at, tz)}? "
                    f"{unfinished} unfinished response(s) are kept as partial and those "
                    "residents are told."
                )
        confirm(question, yes, f"Round {round_id} not closed.")
        report = close_now(db, round_id, SystemClock().now(), areas, tz=tz)
    finally:
        db.dispose()
    if report is None:
        _fail(f"round {round_id} is already closed")
    if report.missed:
        click.echo(f"Round {round_id} closed before it opened: nobody was invited.")
    else:
        click.echo(
            f"Round {round_id} closed: {report.closed_responses} unfinished response(s) kept as "
            f"partial, {report.closed_notices} resident(s) told."
        )
