"""Shared fixtures: databases (SQLite and a real PostgreSQL), a test clock, settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot.clock import FakeClock
from storage.db import Database, normalise_url
from storage.migrate import upgrade

POSTGRES_URL = os.environ.get("BUURTSTEM_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("BUURTSTEM_REQUIRE_POSTGRES") == "1"
TEST_KEY = "test-pseudonym-key-not-for-production"


def _postgres_or_skip() -> str:
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("BUURTSTEM_REQUIRE_POSTGRES=1 but BUURTSTEM_TEST_POSTGRES_URL is not set")
        pytest.skip(
            "no PostgreSQL (run ./test through .ci/run, or set BUURTSTEM_TEST_POSTGRES_URL)"
        )
    return POSTGRES_URL


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the test server; dropped afterwards."""
    server = normalise_url(_postgres_or_skip())
    name = "bt_" + uuid.uuid4().hex[:12]
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An empty SQLite file database."""
    return f"sqlite:///{tmp_path / 'buurtstem.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated database (SQLite and PostgreSQL)."""
    upgrade(database_url)
    database = Database(database_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    """A migrated SQLite database only (for tests where the backend does not matter)."""
    upgrade(sqlite_url)
    database = Database(sqlite_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test controls, starting Monday 2 November 2026 09:00 UTC."""
    return FakeClock()


@pytest.fixture
def emulator() -> Any:
    """A fresh in-process Bot API emulator."""
    from sandbox.emulator import BotAPIEmulator

    return BotAPIEmulator()


@pytest.fixture
def make_services(clock: FakeClock) -> Iterator[Callable[..., Any]]:
    """Build buurtstem's services on a database (migrated here), with the test clock."""
    from bot.app import build_services
    from bot.settings import Settings

    made: list[Database] = []

    def make(database_url: str, **settings: Any) -> Any:
        upgrade(database_url)
        database = Database(database_url)
        made.append(database)
        settings.setdefault("pseudonym_key", TEST_KEY)
        settings.setdefault("token", "123456:TEST-TOKEN")
        return build_services(Settings(database_url=database_url, **settings), database, clock)

    yield make
    for database in made:
        database.dispose()


@pytest.fixture
def service_settings() -> dict[str, Any]:
    """Settings for the `services` fixture; a test module overrides this to change them."""
    return {}


@pytest.fixture
def services(
    make_services: Callable[..., Any], database_url: str, service_settings: dict[str, Any]
) -> Any:
    """buurtstem's services on SQLite and on PostgreSQL (settings from `service_settings`)."""
    return make_services(database_url, **service_settings)


@pytest.fixture
def make_app(emulator: Any) -> Callable[..., Any]:
    """A real PTB Application of buurtstem talking to the in-process emulator."""
    from bot.app import build_application
    from sandbox.transport import emulator_request

    def make(services: Any) -> Any:
        services.settings.token = emulator.token
        return build_application(
            services,
            request=emulator_request(emulator),
            get_updates_request=emulator_request(emulator),
        )

    return make
