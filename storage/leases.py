"""PostgreSQL advisory locks: the one helper for leader election, start-up and migrations.

A lock is named ("buurtstem", "buurtstem-startup", "buurtstem-migrate") and held by one
database session (connection): when the process dies, the server ends the session and frees
the lock. `try_lock`/`holds_lock`/`unlock` serve the leader election (bot/leader.py), `held`
waits for a lock around a block on a connection the caller owns (migrations), and `serialised`
does the same on a private connection of its own (start-up of several instances at once).
On SQLite (one process) `serialised` does nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from storage.db import normalise_url


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for `name` (same in every process)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_engine(url: str, **connect_args: Any) -> Engine:
    """An engine for lock sessions: no pool, autocommit.

    Without a pool, closing the connection really ends the server session (a pooled one would
    keep the lock alive after "close"); autocommit, so a lock never waits in a transaction.
    """
    return create_engine(
        normalise_url(url),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args=connect_args,
    )


def try_lock(conn: Connection, key: int) -> bool:
    """Take the session-level lock `key` if free; True when this session holds it now."""
    return bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())


def holds_lock(conn: Connection, key: int) -> bool:
    """True when this connection's session holds the lock `key` (and is alive to say so)."""
    # A bigint advisory lock shows in pg_locks as classid = high and objid = low 32 bits.
    held = conn.execute(
        text(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
            "AND pid = pg_backend_pid() AND granted AND objsubid = 1 "
            "AND classid::bigint = :high AND objid::bigint = :low)"
        ),
        {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
    ).scalar()
    return bool(held)


def unlock(conn: Connection, key: int) -> bool:
    """Release the lock `key` held by this session; False when it did not hold it."""
    return bool(conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key}).scalar())


@contextlib.contextmanager
def held(conn: Connection, name: str) -> Iterator[None]:
    """Wait for the lock `name` on this connection's session and hold it for the block.

    The statements are committed at once, so the block starts outside any transaction (and
    the lock, a session lock, outlives the block's own commits and rollbacks).
    """
    key = lock_key(name)
    conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
    conn.commit()
    try:
        yield
    finally:
        unlock(conn, key)
        conn.commit()


@contextlib.contextmanager
def serialised(url: str, name: str) -> Iterator[None]:
    """Run the block while holding the lock `name` on a private connection (PostgreSQL only).

    Instances starting together on one database take turns; on SQLite (one process) this does
    nothing.
    """
    if not normalise_url(url).startswith("postgresql"):
        yield
        return
    engine = lock_engine(url)
    try:
        with engine.connect() as conn, held(conn, name):
            yield
    finally:
        engine.dispose()
