"""Revisions in order, schema drift against the models, and new sequential migrations."""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from storage.db import make_engine
from storage.migrate import MIGRATIONS, alembic_config
from storage.models import Base

VERSIONS = MIGRATIONS / "versions"

# Alembic renders our TypeDecorator by its import path; a released migration must not depend on
# application code that may change later, so it gets the plain type the decorator stores.
_UTC_DATETIME = re.compile(r"storage\.models\.UTCDateTime\([^)]*\)")


def versions_config(version_path: Path | None = None) -> Config:
    """Alembic config for our revisions (plus those in `version_path`), with no database yet."""
    config = alembic_config("sqlite://")
    if version_path is not None:
        # Both directories, so a revision written elsewhere still chains onto ours.
        config.set_main_option("version_locations", f"{VERSIONS} {version_path}")
        config.set_main_option("path_separator", "space")
    return config


def script_directory(version_path: Path | None = None) -> ScriptDirectory:
    """Alembic's view of storage/migrations (plus `version_path` when given)."""
    return ScriptDirectory.from_config(versions_config(version_path))


def revisions(version_path: Path | None = None) -> list[str]:
    """Every revision id from the oldest to the newest; refuses branches and several heads."""
    scripts = script_directory(version_path)
    heads = scripts.get_heads()
    if len(heads) > 1:
        raise RuntimeError(f"migrations have several heads: {sorted(heads)}; merge them")
    ordered = [script.revision for script in scripts.walk_revisions("base", "heads")]
    ordered.reverse()
    for script in scripts.walk_revisions("base", "heads"):
        if script.is_branch_point or script.is_merge_point:
            raise RuntimeError(f"revision {script.revision} branches or merges; keep one line")
    return ordered


def next_revision_id(version_path: Path | None = None) -> str:
    """The next sequential id: 0002 after 0001, and so on."""
    numbers = []
    for revision in revisions(version_path):
        if not revision.isdigit():
            raise RuntimeError(f"revision id {revision!r} is not sequential digits")
        numbers.append(int(revision))
    return f"{max(numbers, default=0) + 1:04d}"


def schema_differences(url: str) -> list[Any]:
    """What alembic autogenerate would still change to make `url` match the models (empty: none)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def new_migration(message: str, version_path: Path | None = None) -> Path:
    """Autogenerate the next revision from the models' difference to head; returns its file.

    Compares against a scratch SQLite database upgraded to head, so no server is needed.
    `version_path` writes the file elsewhere (tests); by default it goes to migrations/versions.
    """
    if not message.strip():
        raise ValueError("a migration needs a message")
    rev_id = next_revision_id(version_path)
    with tempfile.TemporaryDirectory() as scratch:
        config = versions_config(version_path)
        config.set_main_option("sqlalchemy.url", f"sqlite:///{scratch}/head.db")
        command.upgrade(config, "head")
        script = command.revision(
            config,
            message=message,
            autogenerate=True,
            rev_id=rev_id,
            version_path=str(version_path) if version_path is not None else None,
        )
    if script is None or isinstance(script, list):
        raise RuntimeError("alembic did not write exactly one revision")
    path = Path(script.path)
    path.write_text(_UTC_DATETIME.sub("sa.DateTime(timezone=True)", path.read_text()))
    return path


def is_empty_migration(path: Path) -> bool:
    """True when autogenerate found nothing to change (upgrade() is only `pass`)."""
    body = path.read_text().split("def upgrade() -> None:", 1)[-1].split("def downgrade", 1)[0]
    lines = [line.strip() for line in body.splitlines()]
    return [line for line in lines if line and not line.startswith("#")] == ["pass"]


def main(argv: list[str]) -> int:
    """`python -m storage.migration_check "message"`: what scripts/new-migration runs."""
    if len(argv) != 1 or not argv[0].strip():
        print('usage: scripts/new-migration "what changes"', file=sys.stderr)
        return 2
    path = new_migration(argv[0])
    print(f"wrote {path}")
    if is_empty_migration(path):
        print(
            "note: no schema changes found in storage/models.py; the revision is empty "
            "(fill it in for a data migration, or delete it)",
            file=sys.stderr,
        )
    print("review it, then run: .venv/bin/pytest tests/test_migrations.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
