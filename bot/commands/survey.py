"""`buurtstem survey`: check survey files and try them out in the terminal."""

from __future__ import annotations

import io
import sys

import click

from surveys.loader import DEFAULT_SURVEY_PATH, SurveyError, load_survey
from surveys.preview import Preview


@click.group("survey")
def command() -> None:
    """Check survey definition files and preview them in the terminal."""


@command.command("validate")
@click.argument("files", nargs=-1, required=True)
def validate_command(files: tuple[str, ...]) -> None:
    """Check survey files: one line per problem; exit 1 when anything is wrong."""
    failed = False
    for file in files:
        try:
            survey = load_survey(file)
        except SurveyError as exc:
            failed = True
            for problem in exc.problems:
                click.echo(str(problem))
            continue
        click.echo(f"OK: {file} ({len(survey.questions)} questions, {', '.join(survey.languages)})")
    sys.exit(1 if failed else 0)


@command.command("preview")
@click.argument("file", required=False)
@click.option("--lang", default=None, help="Language to preview in (default: the survey's first).")
def preview_command(file: str | None, lang: str | None) -> None:
    """Answer a survey in the terminal as a resident would (FILE: default the Buurtpeiling).

    Answers are read from standard input, so a run can be scripted:
    printf '7\\n8\\n...' | buurtstem survey preview
    """
    path = file or str(DEFAULT_SURVEY_PATH)
    try:
        survey = load_survey(path)
    except SurveyError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(1)
    if lang is not None and lang not in survey.languages:
        raise click.ClickException(
            f"unknown language '{lang}': this survey is offered in {', '.join(survey.languages)}"
        )
    stdin = sys.stdin
    if isinstance(stdin, io.TextIOWrapper):
        # Scripted input: undecodable bytes become an invalid answer, not a traceback.
        stdin.reconfigure(encoding="utf-8", errors="replace")

    def read_line() -> str | None:
        line = stdin.readline()
        return line if line else None

    code = Preview(survey, lang).run(read_line, click.echo, echo=not stdin.isatty())
    sys.exit(code)
