"""Schema migrations with Alembic, run from code (`buurtstem db upgrade`, tests, start-up)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlalchemy.pool import NullPool

from storage.db import make_engine, normalise_url
from storage.leases import held

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (default: the newest).

    On PostgreSQL, instances starting together take turns through an advisory lock, so two
    of them never run the same migration at once.
    """
    config = alembic_config(url)
    if not normalise_url(url).startswith("postgresql"):
        command.upgrade(config, revision)
        return
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn, held(conn, "buurtstem-migrate"):
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            conn.commit()
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    """Take the database at `url` down to `revision`."""
    command.downgrade(alembic_config(url), revision)


def current_tables(url: str) -> set[str]:
    """Names of the tables that exist now (`alembic_version` once buurtstem's schema is there)."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
