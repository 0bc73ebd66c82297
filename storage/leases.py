"""PostgreSQL advisory locks for leader election: the SQL, on a connection the caller owns."""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, text


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for `name` (same in every process)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


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
