"""`buurtstem outbox`: what waits to be sent, what was sent, what failed and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import click

from bot.clock import SystemClock
from bot.database import open_database
from bot.options import setting_option, settings_from
from bot.settings import Settings
from bot.terminal import YES_OPTION, confirm, print_table
from storage import outbox as store
from storage.db import Database
from storage.pseudonyms import short_pseudonym


def _database(database_url: str | None, settings: Settings) -> Database:
    """The existing database (named on stderr), migrated to the newest schema."""
    return open_database(database_url, settings)


def chat_ref(key: str, chat_id: int) -> str:
    """A short keyed hash of a chat id: lets staff see "same chat" without the id itself."""
    return short_pseudonym(key, str(chat_id), "outbox-chat", length=8)


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass
class Status:
    """The outbox report: counts by kind and status, then lines of notes (no chat ids)."""

    columns: list[str]
    rows: list[list[str]]
    notes: list[str]


def status_report(db: Database, key: str, now: datetime, failures: int) -> Status | None:
    """Counts, the oldest waiting message and recent failures; None when the outbox is empty.

    Chats are shown as a short keyed hash at most, never their ids.
    """
    with db.session() as session:
        counts = store.status_counts(session)
        oldest = store.oldest_waiting(session)
        recent = store.recent_failures(session, failures)
    if not counts:
        return None
    statuses = list(store.STATUSES)
    kinds = sorted({c.kind for c in counts})
    table = {(c.kind, c.status): c.count for c in counts}
    rows = []
    for kind in [*kinds, "total"]:
        if kind == "total":
            values = [sum(table.get((k, s), 0) for k in kinds) for s in statuses]
        else:
            values = [table.get((kind, s), 0) for s in statuses]
        rows.append([kind, *(str(v) for v in values)])
    notes: list[str] = []
    if oldest is None:
        notes.append("Nothing is waiting.")
    else:
        notes.append(f"Oldest waiting message: queued {_age(now - oldest)} ago ({_when(oldest)}).")
    unknown = sum(table.get((k, store.UNKNOWN), 0) for k in kinds)
    if unknown:
        notes.append(
            f"{unknown} message(s) were being sent when the sender stopped abruptly: they may "
            "or may not have arrived. `buurtstem outbox retry-failed --include-unknown` resends them."
        )
    if recent:
        notes.append("")
        notes.append(f"Last {len(recent)} failed or unknown:")
        for item in recent:
            target = (
                f"resident {item.resident_id}"
                if item.resident_id is not None
                else f"alliance {item.alliance_id}"
                if item.alliance_id is not None
                else "chat"
            )
            notes.append(
                f"  #{item.id} {item.kind} {item.status} {_when(item.last_attempt_at)} "
                f"{target} [chat {chat_ref(key, item.chat_id)}] attempts {item.attempts}: "
                f"{item.last_error or '-'}"
            )
    return Status(["kind", *statuses], rows, notes)


@click.group("outbox")
def command() -> None:
    """Messages the bot sends on its own: invitations, reminders, digests."""


@command.command("status")
@setting_option("database_url")
@click.option("--failures", default=10, show_default=True, help="How many recent failures to list.")
def status_command(database_url: str | None, failures: int) -> None:
    """Counts by kind and status, the oldest waiting message, the latest failures and why."""
    settings = settings_from(database_url=database_url)
    db = _database(database_url, settings)
    try:
        report = status_report(db, settings.pseudonym_key, SystemClock().now(), failures)
    finally:
        db.dispose()
    if report is None:
        click.echo("The outbox is empty.")
        return
    print_table(report.columns, report.rows, right=report.columns[1:])
    click.echo("")
    for line in report.notes:
        click.echo(line)


@command.command("retry-failed")
@setting_option("database_url")
@click.option("--kind", "kinds", multiple=True, help="Only this kind (repeatable).")
@click.option("--id", "ids", multiple=True, type=int, help="Only this outbox id (repeatable).")
@click.option(
    "--include-unknown",
    is_flag=True,
    help="Also resend messages whose delivery is unknown after a crash (may arrive twice).",
)
def retry_command(
    database_url: str | None, kinds: tuple[str, ...], ids: tuple[int, ...], include_unknown: bool
) -> None:
    """Queue failed messages again, with fresh attempts (the running bot sends them)."""
    settings = settings_from(database_url=database_url)
    db = _database(database_url, settings)
    try:
        with db.session() as session:
            count = store.retry_failed(
                session,
                SystemClock().now(),
                kinds=kinds,
                ids=ids,
                include_unknown=include_unknown,
            )
    finally:
        db.dispose()
    click.echo(f"{count} message(s) queued again.")


@command.command("purge")
@setting_option("database_url")
@click.option(
    "--older-than-days",
    default=30,
    show_default=True,
    type=click.IntRange(min=1),
    help="Delete sent messages last touched longer ago than this.",
)
@click.option("--include-failed", is_flag=True, help="Also delete old failed and unknown rows.")
@YES_OPTION
def purge_command(
    database_url: str | None, older_than_days: int, include_failed: bool, yes: bool
) -> None:
    """Delete old sent messages (their text and files are no longer needed); asks first."""
    settings = settings_from(database_url=database_url)
    db = _database(database_url, settings)
    statuses = (store.SENT, store.FAILED, store.UNKNOWN) if include_failed else (store.SENT,)
    which = "sent, failed and unknown" if include_failed else "sent"
    try:
        confirm(
            f"Delete {which} messages last touched more than {older_than_days} day(s) ago?",
            yes,
            "Nothing deleted.",
        )
        with db.session() as session:
            count = store.purge(
                session, SystemClock().now() - timedelta(days=older_than_days), statuses
            )
    finally:
        db.dispose()
    click.echo(f"{count} message(s) deleted.")
