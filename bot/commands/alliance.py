"""`buurtstem alliance`: one-time link codes, linked chats, unlinking, digest schedules."""

from __future__ import annotations

from datetime import timedelta

import click

from bot.clock import SystemClock
from bot.database import open_database
from bot.options import setting_option, settings_from
from bot.terminal import YES_OPTION, confirm, print_table
from digests.schedule import Schedule, ScheduleError
from storage import alliances as store
from surveys.areas import AreasFileError, load_areas


@click.group("alliance")
def command() -> None:
    """Link alliance group chats to their focus area and set their digest schedules."""


@command.command("invite")
@click.argument("area")
@click.option("--expires-days", default=7, show_default=True, type=click.IntRange(1, 30))
@setting_option("database_url")
@setting_option("areas_file", type=click.Path(dir_okay=False))
def invite(area: str, expires_days: int, database_url: str | None, areas_file: str | None) -> None:
    """Print a one-time code that links an alliance's group to AREA (stored only as a hash)."""
    settings = settings_from(database_url=database_url, areas_file=areas_file)
    try:
        areas = load_areas(settings.areas_file)
    except (AreasFileError, OSError) as exc:
        raise click.ClickException(f"areas file: {exc}") from exc
    found = areas.get(area)
    if found is None:
        hood = areas.neighbourhood(area)
        if hood is not None:
            raise click.ClickException(
                f"'{area}' is a neighbourhood of {hood[0].code} ({hood[0].name}); alliances "
                f"are linked to whole focus areas: use {hood[0].code}"
            )
        raise click.ClickException(
            f"unknown area {area!r}; known: {', '.join(a.code for a in areas.all())}"
        )
    now = SystemClock().now()
    # Creating the database is allowed here (a first set-up); it is named on the first line.
    db = open_database(database_url, settings, create=True)
    try:
        with db.session() as session:
            code = store.create_code(
                session, found.code, settings.pseudonym_key, now, timedelta(days=expires_days)
            )
    finally:
        db.dispose()
    expires = (now + timedelta(days=expires_days)).astimezone(settings.tz)
    click.echo(f"Code for {found.name}: {code}")
    click.echo(f"Valid once, until {expires:%Y-%m-%d %H:%M} ({settings.timezone}).")
    click.echo("Add the bot to the alliance's Telegram group and send there:")
    click.echo(f"  /koppel {code}")


@command.command("list")
@setting_option("database_url")
def list_command(database_url: str | None) -> None:
    """Linked chats: id, area, chat title, linked since, schedule, language, last digest."""
    settings = settings_from(database_url=database_url)
    tz = settings.tz
    db = open_database(database_url, settings)
    try:
        with db.session() as session:
            alliances = store.all_alliances(session)
            last = store.last_digest_times(session)
    finally:
        db.dispose()
    if not alliances:
        click.echo("No linked chats. Link one with: buurtstem alliance invite AREA")
        return
    rows = []
    paused = 0
    for a in alliances:
        try:
            schedule = Schedule.from_json(a.schedule).describe()
        except ScheduleError:
            schedule = "invalid (default used)"
        sent = last.get(a.id)
        rows.append(
            (
                str(a.id),
                a.area_code,
                a.title or "-",
                f"{a.linked_at.astimezone(tz):%Y-%m-%d %H:%M}",
                schedule,
                a.language,
                f"{sent.astimezone(tz):%Y-%m-%d %H:%M}" if sent else "-",
                (
                    f"paused: removed from the group on {a.removed_at.astimezone(tz):%Y-%m-%d %H:%M}"
                    if a.removed_at is not None
                    else "active"
                ),
            )
        )
        paused += a.removed_at is not None
    print_table(
        ("id", "area", "chat", "linked since", "schedule", "language", "last digest", "digests"),
        rows,
        right=("id",),
    )
    click.echo(f"Times in {settings.timezone}.")
    if paused:
        click.echo(
            "Paused: the bot is not in that group, so no digests are queued or sent there. "
            "They resume when someone adds the bot back to the group."
        )


# Group chat ids are negative: let "-4001" through as the argument, not as an option.
@command.command("unlink", context_settings={"ignore_unknown_options": True})
@click.argument("chat_or_id", type=int)
@YES_OPTION
@setting_option("database_url")
def unlink(chat_or_id: int, yes: bool, database_url: str | None) -> None:
    """Unlink a chat, by alliance id (from `list`) or by chat id; queued digests are dropped.

    Asks first (--yes skips the question); the group can link again with a new code.
    """
    settings = settings_from(database_url=database_url)
    db = open_database(database_url, settings)
    try:
        with db.session() as session:
            alliance = store.find_alliance(session, chat_or_id)
            if alliance is None:
                raise click.ClickException(
                    f"no linked chat {chat_or_id} (see buurtstem alliance list)"
                )
            title = f"'{alliance.title}'" if alliance.title else f"alliance {alliance.id}"
        confirm(
            f"Unlink {title} ({alliance.area_code})? It gets no more digests; queued ones are "
            "dropped.",
            yes,
            "Not unlinked.",
        )
        with db.session() as session:
            alliance = store.find_alliance(session, chat_or_id)
            if alliance is None:
                raise click.ClickException(f"no linked chat {chat_or_id}")
            area, alliance_id = alliance.area_code, alliance.id
            dropped = store.unlink(session, alliance)
    finally:
        db.dispose()
    click.echo(f"Unlinked alliance {alliance_id} ({area}); {dropped} queued message(s) dropped.")


# Group chat ids are negative: let "--chat -4001" through.
@command.command("unblock", context_settings={"ignore_unknown_options": True})
@click.option(
    "--chat",
    "chat_id",
    type=int,
    default=None,
    help="Clear this chat's own back-off (its chat id) instead of the limit for every chat.",
)
@YES_OPTION
@setting_option("database_url")
def unblock(chat_id: int | None, yes: bool, database_url: str | None) -> None:
    """Let groups try /koppel codes again after too many wrong ones.

    Without --chat: clears the limit for every chat together (BUURTSTEM_LINK_FAILURES_PER_HOUR
    failures of all chats within an hour block linking everywhere until the hour ends). With
    --chat ID: clears that chat's own back-off. Asks first (--yes skips the question).
    """
    settings = settings_from(database_url=database_url)
    now = SystemClock().now()
    tz = settings.tz
    target = store.ALL_CHATS if chat_id is None else chat_id
    if chat_id == store.ALL_CHATS:
        raise click.ClickException(
            "0 is not a chat id; leave out --chat to clear the overall limit"
        )
    db = open_database(database_url, settings)
    try:
        with db.session() as session:
            row = store.link_attempts(session, target)
            failures = row.failures if row is not None else 0
            until = row.blocked_until if row is not None else None
            backed_off = len(store.backed_off_chats(session, now)) if chat_id is None else 0
        blocked = until is not None and until > now
        what = "every chat" if chat_id is None else f"chat {chat_id}"
        if row is None or (failures <= 0 and not blocked):
            click.echo(f"Nothing to clear: no failed codes counted for {what}.")
            return
        if chat_id is None:
            state = (
                f"Linking is blocked for every chat until {until.astimezone(tz):%Y-%m-%d %H:%M}"
                if blocked and until is not None
                else "Linking is not blocked"
            )
            click.echo(
                f"{state} ({failures} failed code(s) of all chats counted this hour, limit "
                f"{settings.link_failures_per_hour}). {backed_off} chat(s) wait because of "
                "their own failures (not changed; clear one with --chat ID)."
            )
        else:
            state = (
                f"blocked until {until.astimezone(tz):%Y-%m-%d %H:%M}"
                if blocked and until is not None
                else "not blocked"
            )
            click.echo(f"Chat {chat_id}: {failures} failed code(s), {state}.")
        confirm(f"Clear the failed codes of {what}?", yes, "Nothing cleared.")
        with db.session() as session:
            store.clear_link_attempts(session, target)
    finally:
        db.dispose()
    if chat_id is None:
        click.echo(
            "Cleared: every chat can try a code again. Wrong codes are counted anew; if someone "
            "keeps guessing, the limit blocks linking again."
        )
    else:
        tries = store.FREE_FAILURES
        click.echo(f"Cleared: chat {chat_id} can try a code again ({tries} tries before it waits).")


@command.command("schedule")
@click.argument("alliance_id", type=int)
@click.option(
    "--every",
    default="weekly",
    show_default=True,
    help="weekly, biweekly or monthly (also: wekelijks, tweewekelijks, maandelijks).",
)
@click.option(
    "--day",
    default="mon",
    show_default=True,
    help="Day of the week, Dutch or English: maandag, ma, monday, mon, ... zondag, sunday.",
)
@click.option("--time", "at", default="09:00", show_default=True, help="Local time, HH:MM.")
@click.option("--language", default=None, help="Language of the digest texts (nl, en, ...).")
@setting_option("database_url")
def schedule(
    alliance_id: int,
    every: str,
    day: str,
    at: str,
    language: str | None,
    database_url: str | None,
) -> None:
    """Set when an alliance gets its digest (local time; 02:00-02:59 is refused)."""
    settings = settings_from(database_url=database_url)
    try:
        rule = Schedule.parse(every, day, at)
    except ScheduleError as exc:
        raise click.ClickException(str(exc)) from exc
    db = open_database(database_url, settings)
    try:
        with db.session() as session:
            alliance = store.find_alliance(session, alliance_id)
            if alliance is None:
                raise click.ClickException(
                    f"no linked chat {alliance_id} (see buurtstem alliance list)"
                )
            store.set_schedule(session, alliance, rule.to_json(), language)
            lang = alliance.language
    finally:
        db.dispose()
    upcoming = rule.next_run(SystemClock().now(), settings.timezone)
    tz = settings.tz
    click.echo(
        f"Alliance {alliance_id}: {rule.describe()} ({settings.timezone}), language {lang}; "
        f"next digest {upcoming.astimezone(tz):%Y-%m-%d %H:%M}."
    )
