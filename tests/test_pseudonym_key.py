"""The pseudonym key: never the public development key in production, never changed silently."""

from __future__ import annotations

from sqlalchemy import select

from bot.clock import FakeClock
from bot.settings import DEFAULT_PSEUDONYM_KEY, MIN_KEY_LENGTH, key_problem
from storage.db import Database
from storage.meta import KEY_FINGERPRINT, check_key_fingerprint
from storage.models import Meta, Resident
from storage.pseudonyms import key_fingerprint
from tests.conftest import TEST_KEY

KEY = "b" * MIN_KEY_LENGTH


def test_key_problem_names_the_public_and_short_keys() -> None:
    assert key_problem(DEFAULT_PSEUDONYM_KEY) is not None
    assert "public" in (key_problem(DEFAULT_PSEUDONYM_KEY) or "")
    assert "too short" in (key_problem("x" * (MIN_KEY_LENGTH - 1)) or "")
    assert key_problem("   ") is not None
    assert key_problem(KEY) is None
    # The test key is long enough for `buurtstem run` in subprocess tests.
    assert key_problem(TEST_KEY) is None


def test_fingerprint_names_the_key_without_revealing_it() -> None:
    fingerprint = key_fingerprint(KEY)
    assert fingerprint == key_fingerprint(KEY)
    assert fingerprint != key_fingerprint(KEY + "c")
    assert KEY not in fingerprint and len(fingerprint) == 64


def test_first_start_stores_the_fingerprint_and_another_key_is_refused(
    db: Database, clock: FakeClock
) -> None:
    now = clock.now()
    with db.session() as session:
        assert check_key_fingerprint(session, key_fingerprint(KEY), now).outcome == "stored"
    with db.session() as session:
        assert check_key_fingerprint(session, key_fingerprint(KEY), now).outcome == "same"
    with db.session() as session:
        check = check_key_fingerprint(session, key_fingerprint("c" * 40), now)
        assert check.outcome == "different"
        assert check.stored == key_fingerprint(KEY)
    with db.session() as session:
        [row] = session.scalars(select(Meta)).all()
    assert row.key == KEY_FINGERPRINT and row.value == key_fingerprint(KEY)
    assert KEY not in row.value


def test_existing_residents_without_a_fingerprint_are_adopted_with_a_warning(
    db: Database, clock: FakeClock
) -> None:
    now = clock.now()
    with db.session() as session:
        session.add(
            Resident(pseudonym="a" * 64, consented_at=now, created_at=now, last_seen_at=now)
        )
    with db.session() as session:
        check = check_key_fingerprint(session, key_fingerprint(KEY), now)
    assert check.outcome == "adopted"
    with db.session() as session:
        assert check_key_fingerprint(session, key_fingerprint(KEY), now).outcome == "same"
