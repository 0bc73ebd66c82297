"""Migrations: from an empty database and from every earlier revision with data in it, and back.

The data test fills every table that exists at a revision (realistic rows from DATA_AT_REVISION
where given, generated values for every other table and column), upgrades to head, and checks that
every row is still there, with the same values, and that the schema equals what the models say.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.migration import MigrationContext
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Time,
    inspect,
    select,
)

from storage.db import make_engine
from storage.migrate import downgrade, upgrade
from storage.migration_check import (
    VERSIONS,
    is_empty_migration,
    main,
    new_migration,
    next_revision_id,
    revisions,
    schema_differences,
    script_directory,
    versions_config,
)
from storage.models import Base, UTCDateTime

REVISIONS = revisions()
ROWS_PER_TABLE = 3
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


# --- Data at a revision ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Parent:
    """In a data fixture: the n-th row of the table a foreign key column points to."""

    index: int


Hints = dict[str, list[dict[str, Any]]]
Rows = dict[str, list[dict[str, Any]]]

_DEFINITION = {
    "id": "buurtpeiling",
    "version": "2026.1",
    "languages": ["nl", "en", "tr", "ar", "pl"],
    "title": {"nl": "Buurtpeiling leefbaarheid en veiligheid", "ar": "استطلاع الحي"},
    "questions": [
        {"id": "grade_liveability", "type": "grade", "min": 1, "max": 10},
        {"id": "trend", "type": "choice", "options": ["vooruit", "gelijk", "achteruit"]},
        {"id": "nuisance", "type": "multi", "options": ["litter", "graffiti", "speeding"]},
        {"id": "improve", "type": "text"},
    ],
}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def data_0001() -> Hints:
    """Rows as buurtstem writes them at revision 0001 (tables it does not name get generated rows)."""
    return {
        "residents": [
            {
                "pseudonym": _sha("resident-a"),
                "language": "nl",
                "language_source": "chosen",
                "language_switch_offered": False,
                "area_code": "utrecht-overvecht",
                "neighbourhood_code": "utrecht-overvecht",
                "flow": {},
            },
            {
                "pseudonym": _sha("resident-b"),
                "language": "tr",
                "language_source": "telegram",
                "language_switch_offered": True,
                "area_code": "rotterdam-zuid",
                "neighbourhood_code": None,
                "flow": {"awaiting": "postcode", "area": "rotterdam-zuid"},
                "stopped_at": T0 + timedelta(days=3),
            },
            {
                "pseudonym": _sha("resident-c"),
                "language": "ar",
                "language_source": "detected",
                "area_code": None,
                "flow": {"awaiting": "area", "offered": ["leeuwarden-oost", "delft-west"]},
                "unreachable_at": T0 + timedelta(days=5),
                "unreachable_reason": "Forbidden: bot was blocked by the user",
            },
        ],
        "resident_chats": [
            {"resident_id": Parent(0), "chat_id": 7_412_345_678},
            {"resident_id": Parent(1), "chat_id": 5_001_002_003},
        ],
        "survey_versions": [
            {
                "survey_id": "buurtpeiling",
                "version": "2026.1",
                "title": "Buurtpeiling leefbaarheid en veiligheid",
                "content_hash": _sha("2026.1"),
                "definition": _DEFINITION,
                "source": "id: buurtpeiling\nversion: '2026.1'\ntitle:\n  ar: استطلاع الحي\n",
            },
            {
                "survey_id": "buurtpeiling",
                "version": "2026.2",
                "title": "Buurtpeiling (voorjaar)",
                "content_hash": _sha("2026.2"),
                "definition": {**_DEFINITION, "version": "2026.2"},
                "source": "id: buurtpeiling\nversion: '2026.2'\n",
            },
        ],
        "rounds": [
            {
                "name": "Standaardpeiling",
                "survey_version_id": Parent(0),
                "area_codes": None,
                "status": "open",
                "standing": True,
            },
            {
                "name": "Najaar 2026 Overvecht en Rotterdam-Zuid",
                "survey_version_id": Parent(1),
                "area_codes": ["utrecht-overvecht", "rotterdam-zuid"],
                "reminder_after_days": 3,
                "max_reminders": 2,
                "reminders_done": 1,
                "status": "closed",
            },
        ],
        "responses": [
            {
                "round_id": Parent(0),
                "resident_id": Parent(0),
                "response_key": "r-7f3a9c",
                "area_code": "utrecht-overvecht",
                "language": "nl",
                "status": "completed",
                "state": {"position": 4, "answers": {"grade_liveability": 7}, "done": True},
            },
            {
                "round_id": Parent(1),
                "resident_id": Parent(1),
                "response_key": "r-11b2d0",
                "area_code": "rotterdam-zuid",
                "language": "tr",
                "status": "started",
                "state": {"position": 1, "answers": {}},
                "completed_at": None,
            },
            {
                # A resident who used /forget: the answers stay, without the person.
                "round_id": Parent(1),
                "resident_id": None,
                "response_key": "r-c0ffee",
                "area_code": "rotterdam-zuid",
                "language": "ar",
                "status": "closed",
                "state": {"position": 2, "answers": {"trend": "achteruit"}},
            },
        ],
        "answers": [
            {"response_id": Parent(0), "question_id": "grade_liveability", "value": 7},
            {"response_id": Parent(0), "question_id": "trend", "value": "vooruit"},
            {
                "response_id": Parent(0),
                "question_id": "nuisance",
                "value": ["litter", "graffiti"],
                "item_code": "VM-overlast",
            },
            {
                "response_id": Parent(1),
                "question_id": "improve",
                "value": "Meer licht bij het speelveld, en een bankje. Çok güzel olur.",
                "text_language": "nl",
            },
            {"response_id": Parent(2), "question_id": "trend", "value": "achteruit"},
        ],
        "alliances": [
            {
                "area_code": "utrecht-overvecht",
                "chat_id": -1_001_234_567_890,
                "title": "Alliantie Overvecht",
                "language": "nl",
                "schedule": {"every": "weekly", "weekday": 0, "time": "09:00"},
            },
            {
                "area_code": "rotterdam-zuid",
                "chat_id": -1_009_876_543_210,
                "title": "Zuid aan zet",
                "language": "nl",
                "schedule": {"every": "monthly", "weekday": 4, "time": "16:30"},
            },
        ],
        "outbox": [
            {
                "kind": "invitation",
                "dedupe_key": "invitation:round-2:resident-1",
                "chat_id": 7_412_345_678,
                "resident_id": Parent(0),
                "alliance_id": None,
                "method": "sendMessage",
                "payload": {"text": "Een nieuwe peiling staat klaar.", "reply_markup": None},
                "status": "sent",
            },
            {
                "kind": "digest",
                "dedupe_key": "digest:alliance-1:2026-11-09",
                "chat_id": -1_001_234_567_890,
                "is_group": True,
                "resident_id": None,
                "alliance_id": Parent(0),
                "method": "sendPhoto",
                "payload": {"caption": "Overzicht week 45 (n = 37, indicatief)"},
                "file_name": "overzicht.png",
                "file_data": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
                "status": "pending",
                "last_error": None,
            },
        ],
        "digests_sent": [
            {
                "alliance_id": Parent(0),
                "round_id": Parent(1),
                "kind": "scheduled",
                "published_n": {"grade_liveability": 37, "trend": 35},
            },
            {"alliance_id": Parent(1), "round_id": None, "kind": "final", "published_n": None},
        ],
    }


# Realistic rows per revision. A fixture applies from its revision until the next fixture, so a
# revision that drops or renames a column named here needs its own entry (the test says so).
DATA_AT_REVISION: dict[str, Callable[[], Hints]] = {"0001": data_0001}

# A revision that changes existing data (not only the schema) maps the rows before it to the rows
# it should leave behind: {"0003": expect_0003}. The test applies these in order up to head.
EXPECTED_CHANGES: dict[str, Callable[[Rows], Rows]] = {}


def hints_at(revision: str) -> Hints:
    """The realistic rows for a database at `revision`: its own fixture, else the latest earlier."""
    if revision == "base":
        return {}
    usable = [r for r in REVISIONS[: REVISIONS.index(revision) + 1] if r in DATA_AT_REVISION]
    return DATA_AT_REVISION[usable[-1]]() if usable else {}


def _string(name: str, n: int, length: int | None) -> str:
    value = f"{name}-{n}"
    if length is not None and len(value) > length:
        suffix = str(n)
        value = name[: max(0, length - len(suffix))] + suffix
    return value


def generated_value(column: Column[Any], n: int) -> Any:
    """A value of the column's type, different for every n (so unique constraints hold)."""
    kind = column.type
    if isinstance(kind, Boolean):
        return n % 2 == 0
    if isinstance(kind, Enum):
        return kind.enums[n % len(kind.enums)]
    if isinstance(kind, BigInteger):
        # Telegram group ids need more than 32 bits.
        return -1_001_000_000_000 - n
    if isinstance(kind, Integer):
        return 1000 + n
    if isinstance(kind, DateTime):
        return T0 + timedelta(hours=n, microseconds=123_456)
    if isinstance(kind, Date):
        # Tallies keep their round total under 0001-01-01.
        return date(1, 1, 1) + timedelta(days=n) if n % 2 else date(2026, 11, 2) + timedelta(n)
    if isinstance(kind, Time):
        return time(9, n % 60)
    if isinstance(kind, Float):
        return n + 0.5
    if isinstance(kind, Numeric):
        return Decimal(n) + Decimal("0.25")
    if isinstance(kind, JSON):
        return {"n": n, "items": ["litter", "graffiti"], "text": "één · ع", "nested": {"ok": True}}
    if isinstance(kind, Text):
        return f"Regel {n}: meer groen in de wijk. Şöyle güzel olur. مرحبا\nTweede regel."
    if isinstance(kind, String):
        return _string(column.name, n, kind.length)
    if isinstance(kind, LargeBinary):
        return bytes([0, 137, 80, 78, 71, n % 256]) * 3
    raise NotImplementedError(
        f"no generated value for {column.table.name}.{column.name} ({kind!r}): "
        "add rows for this table to DATA_AT_REVISION or teach generated_value the type"
    )


def _is_autoincrement(column: Column[Any]) -> bool:
    table = column.table
    return (
        column.primary_key
        and len(table.primary_key.columns) == 1
        and isinstance(column.type, Integer)
        # Telegram ids as keys (BigInteger) are given by the app, and SQLite only numbers INTEGER.
        and not isinstance(column.type, BigInteger)
        and not column.foreign_keys
    )


def _complete(column: Column[Any], hint: dict[str, Any], n: int, filled: Rows) -> Any:
    foreign = next(iter(column.foreign_keys), None)
    if column.name in hint:
        value = hint[column.name]
        if isinstance(value, Parent):
            assert foreign is not None, f"Parent() given for {column} without a foreign key"
            return filled[foreign.column.table.name][value.index][foreign.column.name]
        return value
    if foreign is not None:
        parents = filled.get(foreign.column.table.name, [])
        if parents:
            return parents[n % len(parents)][foreign.column.name]
        assert column.nullable, f"{column} needs a parent row that is not there"
        return None
    if column.nullable and n % ROWS_PER_TABLE == ROWS_PER_TABLE - 1:
        # Some nulls too: they must survive a migration as nulls.
        return None
    return generated_value(column, n)


def fill(conn: Connection, hints: Hints, per_table: int = ROWS_PER_TABLE, start: int = 0) -> Rows:
    """Insert rows into every table that exists now, parents first; returns them with their keys."""
    metadata = MetaData()
    metadata.reflect(conn)
    unknown = set(hints) - set(metadata.tables)
    assert not unknown, f"data fixture names tables that do not exist here: {sorted(unknown)}"
    filled: Rows = {}
    for table in metadata.sorted_tables:
        if table.name == "alembic_version":
            continue
        given = hints.get(table.name, [])
        for hint in given:
            extra = set(hint) - set(table.columns.keys())
            assert not extra, (
                f"data fixture gives {table.name}.{sorted(extra)}, which do not exist at this "
                "revision: add a DATA_AT_REVISION entry for it"
            )
        rows = []
        for offset in range(max(per_table, len(given))):
            hint = given[offset] if offset < len(given) else {}
            row = {
                column.name: _complete(column, hint, start + offset, filled)
                for column in table.columns
                if column.name in hint or not _is_autoincrement(column)
            }
            result = conn.execute(table.insert().values(**row))
            keys = dict(
                zip(
                    table.primary_key.columns.keys(), result.inserted_primary_key or (), strict=True
                )
            )
            rows.append({**row, **keys})
        filled[table.name] = rows
    return filled


# --- Reading back ---------------------------------------------------------------------------------


def _normal(value: Any) -> Any:
    # SQLite hands back naive datetimes (always UTC here), the models aware ones.
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def snapshot(conn: Connection, models: bool = False) -> Rows:
    """Every row of every table, keyed columns normalised; read through the models if asked."""
    metadata = MetaData()
    metadata.reflect(conn)
    rows: Rows = {}
    for name, reflected in metadata.tables.items():
        if name == "alembic_version":
            continue
        table = Base.metadata.tables[name] if models and name in Base.metadata.tables else reflected
        order = list(table.primary_key.columns)
        rows[name] = [
            {key: _normal(value) for key, value in row.items()}
            for row in conn.execute(select(table).order_by(*order)).mappings()
        ]
    return rows


def _keyed(rows: list[dict[str, Any]], pk: list[str]) -> dict[Any, Any]:
    return {tuple(row[column] for column in pk): row for row in rows}


def assert_rows_kept(before: Rows, after: Rows, pks: dict[str, list[str]]) -> None:
    """Every table and row of `before` is in `after`, with equal values in the columns both have."""
    missing = set(before) - set(after)
    assert not missing, f"tables lost in the upgrade: {sorted(missing)}"
    for name, old_rows in before.items():
        new_rows = after[name]
        assert len(new_rows) == len(old_rows), (
            f"{name}: {len(old_rows)} rows before, now {len(new_rows)}"
        )
        old = _keyed(old_rows, pks[name])
        new = _keyed(new_rows, pks[name])
        assert old.keys() == new.keys(), f"{name}: key values changed"
        for key, old_row in old.items():
            shared = old_row.keys() & new[key].keys()
            changed = {c: (old_row[c], new[key][c]) for c in shared if old_row[c] != new[key][c]}
            assert not changed, f"{name} row {key}: values changed {changed}"


def primary_keys(conn: Connection) -> dict[str, list[str]]:
    """The primary key columns of every table now."""
    inspector = inspect(conn)
    return {
        name: inspector.get_pk_constraint(name)["constrained_columns"]
        for name in inspector.get_table_names()
    }


@pytest.fixture
def engine_for() -> Iterator[Callable[[str], Any]]:
    """Engines made in a test, disposed at its end."""
    made: list[Any] = []

    def make(url: str) -> Any:
        engine = make_engine(url)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.dispose()


# --- Tests ----------------------------------------------------------------------------------------


def test_upgrade_empty_database_to_head(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_downgrade_to_base_and_up_again(database_url: str) -> None:
    upgrade(database_url)
    downgrade(database_url, "base")
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    upgrade(database_url)


def test_revisions_are_one_line_with_sequential_ids() -> None:
    scripts = script_directory()
    assert [f"{n:04d}" for n in range(1, len(REVISIONS) + 1)] == REVISIONS
    assert [scripts.get_revision(r).down_revision for r in REVISIONS] == [None, *REVISIONS[:-1]]
    assert next_revision_id() == f"{len(REVISIONS) + 1:04d}"


@pytest.mark.parametrize("start", ["base", *REVISIONS])
def test_upgrade_with_data_from_every_revision(
    database_url: str, start: str, engine_for: Callable[[str], Any]
) -> None:
    if start != "base":
        upgrade(database_url, start)
    engine = engine_for(database_url)
    with engine.begin() as conn:
        filled = fill(conn, hints_at(start))
    with engine.connect() as conn:
        before = snapshot(conn)
        pks = primary_keys(conn)
    assert {name for name, rows in filled.items() if not rows} == set()
    assert {name: len(rows) for name, rows in before.items()} == {
        name: len(rows) for name, rows in filled.items()
    }
    later = REVISIONS[REVISIONS.index(start) + 1 :] if start != "base" else []
    for revision in later:
        if revision in EXPECTED_CHANGES:
            before = EXPECTED_CHANGES[revision](before)
    engine.dispose()

    upgrade(database_url)

    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == REVISIONS[-1]
        after = snapshot(conn, models=True)
    assert_rows_kept(before, after, pks)
    assert schema_differences(database_url) == []
    # New rows still go in at head (keys, sequences and constraints survived the copying).
    with engine.begin() as conn:
        fill(conn, {}, per_table=1, start=100)


def test_every_data_fixture_is_stored_as_given(sqlite_url: str) -> None:
    # Guards the fixtures themselves: each realistic value goes in and comes back unchanged.
    for revision, fixture in DATA_AT_REVISION.items():
        url = sqlite_url.replace(".db", f"-{revision}.db")
        upgrade(url, revision)
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                filled = fill(conn, fixture())
            with engine.connect() as conn:
                stored, pks = snapshot(conn), primary_keys(conn)
        finally:
            engine.dispose()
        for table, hinted in fixture().items():
            by_key = _keyed(stored[table], pks[table])
            for row, hint in zip(filled[table], hinted, strict=False):
                back = by_key[tuple(row[c] for c in pks[table])]
                plain = {k: _normal(v) for k, v in hint.items() if not isinstance(v, Parent)}
                assert {k: back[k] for k in plain} == plain, f"{revision} {table}"


def schema_of(conn: Connection) -> dict[str, Any]:
    """Tables with their columns, keys, unique constraints and indexes, comparable across steps."""
    inspector = inspect(conn)
    schema: dict[str, Any] = {}
    for name in sorted(inspector.get_table_names()):
        if name == "alembic_version":
            continue
        schema[name] = {
            "columns": {
                c["name"]: (str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)
            },
            "pk": inspector.get_pk_constraint(name)["constrained_columns"],
            "fks": sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                )
                for fk in inspector.get_foreign_keys(name)
            ),
            "unique": sorted(
                tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(name)
            ),
        }
    return schema


def test_every_downgrade_one_step_at_a_time(
    database_url: str, engine_for: Callable[[str], Any]
) -> None:
    engine = engine_for(database_url)

    def look() -> tuple[str | None, dict[str, Any]]:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision(), schema_of(conn)

    going_up = {"base": look()[1]}
    for revision in REVISIONS:
        upgrade(database_url, revision)
        engine.dispose()
        current, schema = look()
        assert current == revision
        going_up[revision] = schema

    with engine.begin() as conn:
        fill(conn, hints_at(REVISIONS[-1]))
    engine.dispose()

    # Down one step at a time, with some fresh rows in every table before each step.
    for step, (revision, below) in enumerate(
        zip(reversed(REVISIONS), ["base", *REVISIONS[:-1]][::-1], strict=True)
    ):
        if step:
            with engine.begin() as conn:
                fill(conn, {}, per_table=1, start=200 + step)
        engine.dispose()
        assert look()[0] == revision
        downgrade(database_url, "-1")
        engine.dispose()
        current, schema = look()
        assert current == (None if below == "base" else below)
        assert schema == going_up[below], f"downgrade of {revision} left another schema"

    for revision in REVISIONS:
        upgrade(database_url, "+1")
        engine.dispose()
        current, schema = look()
        assert current == revision
        assert schema == going_up[revision]
    assert schema_differences(database_url) == []


def test_schema_differences_see_a_model_without_migration(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    probe = Table("migration_probe", Base.metadata, Column("id", Integer, primary_key=True))
    try:
        differences = schema_differences(sqlite_url)
    finally:
        Base.metadata.remove(probe)
    assert [d[0] for d in differences] == ["add_table"]
    assert schema_differences(sqlite_url) == []


def test_new_migration_writes_the_next_sequential_revision(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    head = REVISIONS[-1]

    empty = new_migration("nothing changed", versions)
    assert empty.parent == versions
    assert empty.name.startswith(f"{next_revision_id()}_nothing_changed")
    assert is_empty_migration(empty)
    empty.unlink()

    probe = Table(
        "migration_probe",
        Base.metadata,
        Column("id", Integer, primary_key=True),
        Column("seen_at", UTCDateTime(), nullable=False),
    )
    try:
        path = new_migration("add migration probe", versions)
    finally:
        Base.metadata.remove(probe)
    text = path.read_text()
    assert f"down_revision = '{head}'" in text
    assert "create_table('migration_probe'" in text
    assert "sa.DateTime(timezone=True)" in text
    assert "storage.models" not in text
    assert not is_empty_migration(path)
    assert list(VERSIONS.glob(path.name)) == []  # nothing written into the real versions

    # The generated revision runs: up creates the table, down removes it.
    config = versions_config(versions)
    config.set_main_option("sqlalchemy.url", f"sqlite:///{tmp_path / 'probe.db'}")
    command.upgrade(config, "head")
    engine = make_engine(f"sqlite:///{tmp_path / 'probe.db'}")
    try:
        assert "migration_probe" in inspect(engine).get_table_names()
        command.downgrade(config, head)
        assert "migration_probe" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_new_migration_command_needs_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["  "]) == 2
    assert "usage" in capsys.readouterr().err


def test_sql_errors_do_not_show_bound_parameters(sqlite_url: str) -> None:
    """An error's message (which may reach a log) leaves out the values, e.g. answer texts."""
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from storage.db import Database

    upgrade(sqlite_url)
    database = Database(sqlite_url)
    try:
        with pytest.raises(IntegrityError) as caught, database.session() as session:
            for _ in range(2):
                session.execute(
                    text("INSERT INTO processed_updates VALUES (:bot, :id, :at)"),
                    {"bot": 1, "id": 987654321, "at": "secret-answer-text"},
                )
        assert "secret-answer-text" not in str(caught.value)
        assert "987654321" not in str(caught.value)
    finally:
        database.dispose()
