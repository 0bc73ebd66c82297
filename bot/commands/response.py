"""`buurtstem response`: alliances' responses to residents: list, show, approve, reject."""

from __future__ import annotations

import sys
from typing import NoReturn
from zoneinfo import ZoneInfo

import click

from bot.clock import SystemClock
from bot.database import open_database
from bot.options import setting_option, settings_from
from bot.settings import Settings
from bot.terminal import YES_OPTION, confirm, print_table
from locales.catalogue import default_catalogue
from storage import alliance_responses as store
from storage.db import Database
from storage.models import AllianceResponse, Round
from surveys.areas import AreasFileError, load_areas
from usecases import alliance_responses as uc

# What each status means, for the operator.
STATUS_WORDS = {
    store.DRAFT: "a draft: the alliance group has not put it forward yet",
    store.PENDING: "waiting for approval",
    store.APPROVED: "approved and queued for residents",
    store.REJECTED: "rejected",
    store.CANCELLED: "cancelled by the alliance group",
}


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def _env(settings: Settings, db: Database) -> uc.ResponseEnv:
    try:
        areas = load_areas(settings.areas_file)
    except (AreasFileError, OSError) as exc:
        _fail(f"areas file: {exc}")
    catalogue = default_catalogue()
    return uc.ResponseEnv.build(settings, catalogue, areas, catalogue.languages, db.surveys)


def _when(settings: Settings, moment: object) -> str:
    if moment is None:
        return "-"
    return f"{moment.astimezone(ZoneInfo(settings.timezone)):%Y-%m-%d %H:%M}"  # type: ignore[attr-defined]


def _found(db: Database, response_id: int) -> AllianceResponse:
    with db.session() as session:
        response = store.get_response(session, response_id)
        if response is None:
            _fail(f"no response {response_id} (see buurtstem response list)")
        session.expunge(response)
        return response


def _state(settings: Settings, response: AllianceResponse) -> str:
    words = STATUS_WORDS.get(response.status, response.status)
    if response.reviewed_at is not None:
        words += f" ({_when(settings, response.reviewed_at)}, by {response.reviewed_by or '?'})"
    return words


@click.group("response")
def command() -> None:
    """Alliances' responses to residents ("jullie zeiden, wij doen"): review and follow them."""


@command.command("list")
@click.option(
    "--status", type=click.Choice(store.STATUSES), default=None, help="Only responses in it."
)
@click.option("--round", "round_id", type=int, default=None, help="Only about this round.")
@setting_option("database_url")
def list_command(status: str | None, round_id: int | None, database_url: str | None) -> None:
    """Responses, newest first: status, recipients, delivery and reactions (exact counts)."""
    settings = settings_from(database_url=database_url)
    db = open_database(database_url, settings)
    try:
        with db.session() as session:
            found = store.list_responses(
                session, statuses=[status] if status else (), round_id=round_id
            )
            tallies = store.tallies(session, [r.id for r in found])
            rows = []
            for r in found:
                round_ = session.get(Round, r.round_id)
                sent = store.delivery_counts(session, r.id)
                tally = tallies[r.id]
                counts = ["-"] * 5  # nothing was sent before approval
                if r.status == store.APPROVED:
                    counts = [
                        str(tally.recipients),
                        str(sent.get("sent", 0)),
                        str(sent.get("failed", 0) + sent.get("unknown", 0)),
                        str(tally.helpful),
                        str(tally.not_helpful),
                    ]
                rows.append(
                    (
                        str(r.id),
                        f"{r.round_id} {round_.name if round_ else '?'}",
                        r.area_code,
                        r.status,
                        _when(settings, r.created_at),
                        *counts,
                    )
                )
    finally:
        db.dispose()
    if not rows:
        click.echo("No responses. Alliance groups write them with /reactie.")
        return
    columns = ("id", "round", "area", "status", "written", "recipients", "sent", "failed")
    print_table(
        (*columns, "helpful", "not helpful"),
        rows,
        right=("id", "recipients", "sent", "failed", "helpful", "not helpful"),
    )
    click.echo(f"Times in {settings.timezone}. 'sent' and 'failed' count outbox rows while kept.")


@command.command("show")
@click.argument("response_id", type=int)
@setting_option("database_url")
def show(response_id: int, database_url: str | None) -> None:
    """One response: its text and translations, state, recipients per language, reactions."""
    settings = settings_from(database_url=database_url)
    db = open_database(database_url, settings)
    try:
        response = _found(db, response_id)
        with db.session() as session:
            round_ = session.get(Round, response.round_id)
            languages = store.recipients_by_language(session, response_id)
            sent = store.delivery_counts(session, response_id)
            tally = store.tallies(session, [response_id])[response_id]
            now_reachable = store.count_recipients(session, response.round_id, response.area_code)
    finally:
        db.dispose()
    click.echo(
        f"Response {response.id} of alliance {response.alliance_id or '-'} ({response.area_code})"
    )
    click.echo(f"About round {response.round_id} '{round_.name if round_ else '?'}'")
    click.echo(f"Status: {_state(settings, response)}")
    click.echo(
        f"Written {_when(settings, response.created_at)}, put forward {_when(settings, response.submitted_at)}"
    )
    if response.review_note:
        click.echo(f"Reason: {response.review_note}")
    click.echo("")
    click.echo("Text (nl):")
    click.echo(response.text)
    for code, text in sorted((response.translations or {}).items()):
        click.echo("")
        click.echo(f"Translation ({code}):")
        click.echo(text)
    click.echo("")
    if response.status == store.APPROVED:
        per_language = ", ".join(
            f"{lang}{'' if translated or lang == 'nl' else ' (Dutch with a note)'}: {n}"
            for lang, translated, n in languages
        )
        click.echo(f"Queued for {tally.recipients} resident(s): {per_language or '-'}")
        delivered = ", ".join(f"{status} {n}" for status, n in sorted(sent.items()))
        click.echo(f"Outbox: {delivered or 'rows purged'}")
        click.echo(f"Reactions: helpful {tally.helpful}, not helpful {tally.not_helpful}")
    else:
        click.echo(f"Would go to {now_reachable} resident(s) now.")


@command.command("approve")
@click.argument("response_id", type=int)
@YES_OPTION
@setting_option("database_url")
@setting_option("areas_file", type=click.Path(dir_okay=False))
def approve(response_id: int, yes: bool, database_url: str | None, areas_file: str | None) -> None:
    """Approve a response that waits for approval and send it to the residents (after asking)."""
    settings = settings_from(database_url=database_url, areas_file=areas_file)
    db = open_database(database_url, settings)
    try:
        env = _env(settings, db)
        response = _found(db, response_id)
        if response.status != store.PENDING:
            _fail(
                f"response {response_id} is not waiting for approval: it is {_state(settings, response)}"
            )
        with db.session() as session:
            reach = store.count_recipients(session, response.round_id, response.area_code)
            round_ = session.get(Round, response.round_id)
            round_name = round_.name if round_ else "?"
        confirm(
            f"Approve response {response_id} ({response.area_code}, about '{round_name}') and "
            f"send it to {reach} resident(s) now?",
            yes,
            f"Response {response_id} not approved.",
        )
        with db.session() as session:
            review = uc.approve(session, env, response_id, reviewer="cli", now=SystemClock().now())
    finally:
        db.dispose()
    if review.outcome != "approved":
        assert review.response is not None
        _fail(
            f"response {response_id} is not waiting for approval: it is {_state(settings, review.response)}"
        )
    per_language = ", ".join(f"{lang} {n}" for lang, n in sorted(review.by_language.items()))
    click.echo(
        f"Approved response {response_id}: {review.recipients} message(s) queued"
        f"{f' ({per_language})' if per_language else ''}; the bot sends them through its outbox."
    )


@command.command("reject")
@click.argument("response_id", type=int)
@click.option("--reason", default=None, help="Why: the alliance group is told.")
@YES_OPTION
@setting_option("database_url")
def reject(response_id: int, reason: str | None, yes: bool, database_url: str | None) -> None:
    """Reject a response that waits for approval: nothing is sent; the group hears it."""
    settings = settings_from(database_url=database_url)
    db = open_database(database_url, settings)
    try:
        env = _env(settings, db)
        response = _found(db, response_id)
        if response.status != store.PENDING:
            _fail(
                f"response {response_id} is not waiting for approval: it is {_state(settings, response)}"
            )
        confirm(
            f"Reject response {response_id} ({response.area_code})?",
            yes,
            f"Response {response_id} not rejected.",
        )
        with db.session() as session:
            review = uc.reject(
                session, env, response_id, reviewer="cli", now=SystemClock().now(), reason=reason
            )
    finally:
        db.dispose()
    if review.outcome != "rejected":
        assert review.response is not None
        _fail(
            f"response {response_id} is not waiting for approval: it is {_state(settings, review.response)}"
        )
    click.echo(f"Rejected response {response_id}; the alliance group is told.")
