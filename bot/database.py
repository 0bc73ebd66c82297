"""Which database a command uses: one rule for the CLI and the sandbox, and saying it out loud.

The rule: `--database-url`, else `BUURTSTEM_DATABASE_URL` (environment, then `.env`), else
`sqlite:///buurtstem.db` in the working directory. The sandbox keeps its own SQLite files in
`BUURTSTEM_SANDBOX_DIR` (one per survey content) and prints the `--database-url` that points
other commands at them. Every command that reads data names its database on stderr before its
output, and commands that only read refuse a database that does not exist (or has no buurtstem
tables) instead of creating an empty one and answering "nothing here".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from bot.settings import Settings
from storage.db import Database, normalise_url
from storage.migrate import current_tables, upgrade

ENV_VAR = "BUURTSTEM_DATABASE_URL"
DEFAULT_URL = str(Settings.model_fields["database_url"].default)
SANDBOX = "sandbox"
# Where the URL came from, in words for the "Database:" line.
SOURCE_WORDS = {
    "option": "--database-url",
    "env": ENV_VAR,
    "dotenv": f"{ENV_VAR} in .env",
    "default": f"the default: no --database-url, no {ENV_VAR}",
    SANDBOX: "the sandbox's own",
}


@dataclass(frozen=True)
class DatabaseChoice:
    """A database URL and where it came from (option, env, .env, default or the sandbox)."""

    url: str
    source: str

    @property
    def sqlite_path(self) -> Path | None:
        """The absolute path of a SQLite file database; None for PostgreSQL and in-memory."""
        try:
            parsed = make_url(normalise_url(self.url))
        except Exception:
            return None
        if not parsed.drivername.startswith("sqlite"):
            return None
        name = parsed.database or ""
        if not name or name == ":memory:" or "mode=memory" in self.url:
            return None
        return Path(name).expanduser().resolve()

    @property
    def cli_url(self) -> str:
        """The URL to give other commands as --database-url: absolute, password hidden."""
        path = self.sqlite_path
        if path is not None:
            return f"sqlite:///{path}"
        return safe_url(self.url)

    def describe(self, *, created: bool = False) -> str:
        """`Database: sqlite:////abs/buurtstem.db (the default: ...)` for the first line."""
        extra = "; a new, empty database was created" if created else ""
        return f"Database: {self.cli_url} ({SOURCE_WORDS.get(self.source, self.source)}{extra})"


def choose_database(given: str | None, settings: Settings) -> DatabaseChoice:
    """The database of this command by the rule above; `given` is the --database-url value.

    click fills `given` from the option or from the environment variable; which of the two it
    was is asked from the click context, so the first line can say it.
    """
    if given is not None:
        source = "option"
        ctx = click.get_current_context(silent=True)
        if ctx is not None:
            found = ctx.get_parameter_source("database_url")
            if found is not None and found.name == "ENVIRONMENT":
                source = "env"
        return DatabaseChoice(given, source)
    if os.environ.get(ENV_VAR):
        return DatabaseChoice(settings.database_url, "env")
    if settings.database_url != DEFAULT_URL:
        return DatabaseChoice(settings.database_url, "dotenv")
    return DatabaseChoice(settings.database_url, "default")


def sandbox_choice(path: Path) -> DatabaseChoice:
    """The sandbox's SQLite file as a choice (absolute, so the URL works from any folder)."""
    return DatabaseChoice(f"sqlite:///{path.resolve()}", SANDBOX)


def sandbox_databases(settings: Settings) -> list[Path]:
    """The sandbox's database files, newest first (for hints when a command finds nothing)."""
    folder = Path(settings.sandbox_dir)
    if not folder.is_dir():
        return []
    files = [p for p in folder.glob("*.sqlite") if p.is_file()]
    return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)


def safe_url(url: str) -> str:
    """A database URL without its password, for messages."""
    try:
        return make_url(normalise_url(url)).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable URL)"


def _missing_message(choice: DatabaseChoice, settings: Settings, problem: str) -> str:
    source = SOURCE_WORDS.get(choice.source, choice.source)
    lines = [f"{problem}: {choice.cli_url} ({source}); nothing to read, and nothing was created."]
    hints = [p for p in sandbox_databases(settings) if p.resolve() != choice.sqlite_path]
    if hints:
        lines.append("The sandbox keeps its data apart; to use its newest database, add:")
        lines.append(f"  --database-url {sandbox_choice(hints[0]).cli_url}")
    lines.append(
        f"Or give --database-url / set {ENV_VAR} to the bot's database "
        "(buurtstem db upgrade creates a new one)."
    )
    return "\n".join(lines)


def open_database(
    given: str | None, settings: Settings, *, create: bool = False, announce: bool = True
) -> Database:
    """The chosen database, migrated to the newest schema (as `buurtstem run` does).

    With `create=False` (commands that read data) a SQLite file that does not exist, or a
    database without buurtstem's tables, is an error that says where the sandbox's data is.
    The "Database:" line goes to stderr, so piped output stays clean.
    """
    choice = choose_database(given, settings)
    path = choice.sqlite_path
    is_new = path is not None and not path.exists()
    if not create:
        if is_new:
            raise click.ClickException(_missing_message(choice, settings, "no database there"))
        try:
            empty = "alembic_version" not in current_tables(choice.url)
        except Exception as exc:  # an unreachable server, a bad URL
            raise click.ClickException(
                f"could not open the database {choice.cli_url}: {driver_message(exc)}"
            ) from exc
        if empty:
            raise click.ClickException(
                _missing_message(choice, settings, "the database is empty (no buurtstem tables)")
            )
    if announce:
        click.echo(choice.describe(created=is_new), err=True)
    try:
        upgrade(choice.url)
    except Exception as exc:  # a bad URL, a missing folder, an unreachable server
        raise click.ClickException(
            f"could not open the database {choice.cli_url}: {driver_message(exc)}"
        ) from exc
    return Database(choice.url)


def driver_message(exc: BaseException) -> str:
    """The driver's own message, first line only, without SQLAlchemy's background link."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip()
    return text.splitlines()[0] if text else type(exc).__name__
