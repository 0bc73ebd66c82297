"""Tallies stay equal to a recount from the raw answers, whatever residents do, on both backends."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from storage import aggregates
from storage import responses as store
from storage.db import Database
from storage.models import AnswerTally, Resident, Response, ResponseTally
from storage.residents import create_resident, forget_resident
from storage.retention import delete_free_text_answers, erase_inactive_residents
from storage.tallies import ANSWERED, rebuild_tallies, value_keys
from tests.test_alliance_data import seed, standing_round

T0 = datetime(2026, 11, 2, 21, 30, tzinfo=UTC)  # late evening: days change during the run
MULTI = ["nuisance"]
TEXT = ["improve"]
AREAS = {
    "utrecht-overvecht": ["overvecht-zuid", "overvecht-noord", None],
    "delft-west": ["delft-voorhof", None],
}
NUISANCE = ["rommel", "hondenpoep", "graffiti", "geen"]


def test_value_keys() -> None:
    assert value_keys(7, None) == ["7"]
    assert value_keys("ja", None) == ["ja"]
    assert value_keys(None, None) == [ANSWERED]
    assert value_keys(["rommel", "geen"], None) == [ANSWERED, "rommel", "geen"]
    assert value_keys([], None) == [ANSWERED]
    assert value_keys("meer groen", "nl") == []  # free text is never tallied


def _value(rng: random.Random, qid: str) -> tuple[Any, str | None]:
    if qid == "grade_liveability":
        return rng.randint(1, 10), None
    if qid == "unsafe_ever":
        return rng.choice(["ja", "nee", None]), None
    if qid == "nuisance":
        return sorted(set(rng.choices(NUISANCE, k=rng.randint(0, 3)))), None
    return rng.choice(["meer groen", "minder rommel"]), rng.choice(["nl", "unknown"])


QUESTIONS = ["grade_liveability", "unsafe_ever", "nuisance", "improve"]


def _play(db: Database, rng: random.Random, steps: int) -> list[datetime | None]:
    """Residents start, answer, go back, re-answer, complete and forget; retention runs."""
    round_ = standing_round(db)
    now = T0
    moments: list[datetime | None] = [now - timedelta(hours=1)]
    open_ids: list[int] = []
    for step in range(steps):
        now += timedelta(minutes=rng.choice([1, 7, 45, 180, 600]))
        if step % 9 == 0:
            moments.append(now)
        with db.session() as session:
            action = rng.random()
            if action < 0.2 or not open_ids:
                resident = create_resident(
                    session,
                    pseudonym=f"p{step}",
                    chat_id=10_000 + step,
                    language="nl",
                    language_source="chosen",
                    now=now,
                )
                area = rng.choice(sorted(AREAS))
                store.start_response(
                    session,
                    round_id=round_.id,
                    survey_version_id=round_.survey_version_id,
                    resident_id=resident.id,
                    response_key=f"k{step}",
                    area_code=area,
                    neighbourhood_code=rng.choice(AREAS[area]),
                    language="nl",
                    state={},
                    now=now,
                )
                open_ids.append(resident.id)
                continue
            resident_id = rng.choice(open_ids)
            found = session.get(Resident, resident_id)
            response = store.get_response(session, round_.id, resident_id)
            assert found is not None and response is not None
            found.last_seen_at = now
            if action < 0.6:
                qid = rng.choice(QUESTIONS)
                value, language = _value(rng, qid)
                store.save_answer(
                    session,
                    response,
                    question_id=qid,
                    item_code=None,
                    value=value,
                    text_language=language,
                    now=now,
                )
            elif action < 0.7:
                store.delete_answers(session, response, rng.sample(QUESTIONS, 2))
            elif action < 0.85:
                store.complete(response, now)
            elif action < 0.92:
                forget_resident(session, found)
                open_ids.remove(resident_id)
            else:
                delete_free_text_answers(session, now - timedelta(hours=5))
                erase_inactive_residents(session, now - timedelta(days=2))
                open_ids = list(session.scalars(select(Resident.id)))
    moments += [now, now + timedelta(days=1), None]
    return moments


def _tally_rows(db: Database) -> set[tuple[Any, ...]]:
    out: set[tuple[Any, ...]]
    with db.session() as session:
        answers = session.execute(select(AnswerTally).where(AnswerTally.count != 0)).scalars()
        out = {
            (
                t.round_id,
                t.day,
                t.area_code,
                t.neighbourhood_code,
                t.question_id,
                t.value_key,
                t.count,
            )
            for t in answers
        }
        for r in session.execute(select(ResponseTally).where(ResponseTally.count != 0)).scalars():
            out.add((r.round_id, r.day, r.area_code, r.neighbourhood_code, r.event, r.count))
    return out


@pytest.mark.parametrize("seed_", [1, 2])
def test_tallies_equal_a_recount_after_random_activity(services: Any, seed_: int) -> None:
    db = services.db
    rng = random.Random(seed_)
    moments = _play(db, rng, 160)
    # Straight ORM inserts (as the digest tests seed) are tallied too.
    seed(db, area="delft-west", neighbourhood=None, n=3, at=T0 + timedelta(hours=5), grade=4)
    round_id = standing_round(db).id
    with db.session() as session:
        assert session.scalar(select(Response.id).limit(1)) is not None
        tallied = aggregates.round_counts_at(session, round_id, moments, multi=MULTI, skip=TEXT)
        counted = aggregates.recount_at(session, round_id, moments, multi=MULTI, skip=TEXT)
    assert counted[None].all_areas().started > 10  # the run did something
    assert counted[None].all_areas().questions["nuisance"].n > 0
    for moment in moments:
        assert tallied[moment].areas == counted[moment].areas, moment
    # Tallies written step by step equal tallies rebuilt from the stored rows.
    kept = _tally_rows(db)
    with db.session() as session:
        rebuild_tallies(session)
    assert _tally_rows(db) == kept


def test_area_filter_and_moment_inside_a_day(services: Any) -> None:
    db = services.db
    seed(db, area="utrecht-overvecht", neighbourhood="overvecht-zuid", n=2, at=T0, grade=8)
    seed(db, area="delft-west", neighbourhood=None, n=4, at=T0 + timedelta(minutes=20), grade=5)
    round_id = standing_round(db).id
    between = T0 + timedelta(minutes=10)
    with db.session() as session:
        found = aggregates.round_counts_at(
            session, round_id, [between], area_codes=["delft-west"], multi=MULTI, skip=TEXT
        )[between]
        everything = aggregates.round_counts(session, round_id, multi=MULTI, skip=TEXT)
    assert set(found.areas) == set()  # delft's answers come 10 minutes later
    assert everything.area("delft-west").total().questions["grade_liveability"].counts == {"5": 4}
    zuid = everything.area("utrecht-overvecht").neighbourhoods["overvecht-zuid"]
    assert zuid.questions["nuisance"].n == 2 and zuid.questions["nuisance"].counts["rommel"] == 2


@pytest.mark.postgres
def test_concurrent_writers_lose_no_increment(make_services: Any, postgres_url: str) -> None:
    services = make_services(postgres_url)
    db = services.db
    round_ = standing_round(db)
    writers, each = 6, 8
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            barrier.wait()
            for i in range(each):
                with db.session() as session:
                    resident = create_resident(
                        session,
                        pseudonym=f"w{w}-{i}",
                        chat_id=w * 1000 + i,
                        language="nl",
                        language_source="chosen",
                        now=T0,
                    )
                    response = store.start_response(
                        session,
                        round_id=round_.id,
                        survey_version_id=round_.survey_version_id,
                        resident_id=resident.id,
                        response_key=f"w{w}-{i}",
                        area_code="delft-west",
                        neighbourhood_code="delft-voorhof",
                        language="nl",
                        state={},
                        now=T0,
                    )
                    for qid, value in (("grade_liveability", 6), ("nuisance", ["rommel"])):
                        store.save_answer(
                            session,
                            response,
                            question_id=qid,
                            item_code=None,
                            value=value,
                            text_language=None,
                            now=T0,
                        )
                    store.complete(response, T0)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.session() as session:
        counts = aggregates.round_counts(session, round_.id, multi=MULTI, skip=TEXT)
    hood = counts.area("delft-west").neighbourhoods["delft-voorhof"]
    assert (hood.started, hood.completed) == (writers * each, writers * each)
    assert hood.questions["grade_liveability"].counts == {"6": writers * each}
    assert hood.questions["nuisance"].counts == {"rommel": writers * each}
