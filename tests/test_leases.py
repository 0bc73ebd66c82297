"""The one advisory-lock helper (storage/leases.py): start-up and migrations take turns."""

from __future__ import annotations

import threading
import time

import pytest

from storage.leases import held, lock_engine, lock_key, serialised, try_lock, unlock


def test_serialised_does_nothing_on_sqlite(sqlite_url: str) -> None:
    with serialised(sqlite_url, "buurtstem-startup"), serialised(sqlite_url, "buurtstem-startup"):
        pass  # one process: nothing to wait for, not even for itself


@pytest.mark.postgres
def test_serialised_blocks_take_turns_and_free_the_lock(postgres_url: str) -> None:
    inside: list[str] = []
    overlaps: list[str] = []

    def work(name: str) -> None:
        with serialised(postgres_url, "buurtstem-test"):
            if inside:
                overlaps.append(name)
            inside.append(name)
            time.sleep(0.3)
            inside.remove(name)

    threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert overlaps == []
    # Released: another session takes it at once.
    engine = lock_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert try_lock(conn, lock_key("buurtstem-test"))
            assert unlock(conn, lock_key("buurtstem-test"))
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_held_keeps_the_lock_across_the_blocks_commits(postgres_url: str) -> None:
    engine, other = lock_engine(postgres_url), lock_engine(postgres_url)
    key = lock_key("buurtstem-held")
    try:
        with engine.connect() as conn, other.connect() as probe:
            with held(conn, "buurtstem-held"):
                conn.commit()
                assert not try_lock(probe, key)
            assert try_lock(probe, key)
            unlock(probe, key)
    finally:
        engine.dispose()
        other.dispose()
