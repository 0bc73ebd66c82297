"""The GROUP BY queries behind digests, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from digests import UNKNOWN
from storage import aggregates, releases
from storage.db import Database
from tests.test_alliance_data import seed

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
MULTI = ["nuisance"]
TEXT = ["improve"]


def counts(db: Database, round_id: int, **kwargs: Any) -> aggregates.RoundCounts:
    with db.session() as session:
        return aggregates.round_counts(session, round_id, multi=MULTI, skip=TEXT, **kwargs)


def test_counts_per_area_and_neighbourhood(services: Any) -> None:
    db = services.db
    seed(db, area="utrecht-overvecht", neighbourhood="overvecht-zuid", n=4, at=T0, grade=8)
    seed(
        db,
        area="utrecht-overvecht",
        neighbourhood="overvecht-zuid",
        n=2,
        at=T0,
        grade=5,
        nuisance=["geen"],
        completed=False,
    )
    seed(db, area="utrecht-overvecht", neighbourhood=None, n=3, at=T0, grade=6, nuisance=[])
    seed(
        db,
        area="rotterdam-zuid",
        neighbourhood="rotterdam-bloemhof",
        n=5,
        at=T0,
        grade=4,
        nuisance=["drugshandel"],
    )
    round_id = _round(db)
    result = counts(db, round_id)
    zuid = result.area("utrecht-overvecht").neighbourhoods["overvecht-zuid"]
    assert (zuid.started, zuid.completed) == (6, 4)
    assert zuid.questions["grade_liveability"].counts == {"8": 4, "5": 2}
    assert zuid.questions["unsafe_ever"].counts == {"ja": 6}
    # multi: per option the responses that ticked it; answered counts each response once.
    nuisance = zuid.questions["nuisance"]
    assert nuisance.counts == {"rommel": 4, "hondenpoep": 4, "geen": 2}
    assert nuisance.n == 6
    unknown = result.area("utrecht-overvecht").neighbourhoods[UNKNOWN]
    assert unknown.started == 3
    # An empty list is an answer ("nothing ticked") without any option.
    assert unknown.questions["nuisance"].n == 3 and unknown.questions["nuisance"].counts == {}
    assert "improve" not in zuid.questions
    everything = result.all_areas()
    assert everything.started == 14
    assert everything.questions["grade_liveability"].counts == {"8": 4, "5": 2, "6": 3, "4": 5}
    assert everything.questions["nuisance"].counts["drugshandel"] == 5


def test_until_and_area_filter(services: Any) -> None:
    db = services.db
    seed(db, area="utrecht-overvecht", neighbourhood="overvecht-noord", n=3, at=T0)
    seed(
        db,
        area="utrecht-overvecht",
        neighbourhood="overvecht-noord",
        n=2,
        at=T0 + timedelta(days=2),
    )
    seed(db, area="delft-west", neighbourhood="delft-voorhof", n=7, at=T0)
    round_id = _round(db)
    before = counts(db, round_id, until=T0 + timedelta(days=1))
    noord = before.area("utrecht-overvecht").neighbourhoods["overvecht-noord"]
    assert noord.started == 3 and noord.questions["grade_liveability"].n == 3
    after = counts(db, round_id, area_codes=["utrecht-overvecht"])
    assert set(after.areas) == {"utrecht-overvecht"}
    assert after.area("utrecht-overvecht").total().started == 5
    assert after.area("delft-west").total().started == 0


def test_new_comments_of_a_period_oldest_first_with_their_neighbourhood(services: Any) -> None:
    db = services.db
    for i in range(3):
        seed(
            db,
            area="utrecht-overvecht",
            neighbourhood="overvecht-zuid",
            n=1,
            at=T0 + timedelta(hours=i),
            text=f"opmerking {i}",
            text_language="nl",
        )
    seed(
        db,
        area="delft-west",
        neighbourhood=None,
        n=2,
        at=T0 + timedelta(hours=2),
        text="cleaner streets",
        text_language="en",
    )
    seed(db, area="rotterdam-zuid", neighbourhood=None, n=2, at=T0 + timedelta(hours=1), text="x")
    with db.session() as session:
        found = releases.new_comments(
            session,
            _round(db),
            since=T0,
            until=T0 + timedelta(days=1),
            area_codes=["utrecht-overvecht", "delft-west"],
            questions=TEXT,
        )
    # The first comment (at T0 exactly) is outside a period that starts after T0.
    assert [(area, hood, text, lang) for _, area, hood, text, lang, _ in found] == [
        ("utrecht-overvecht", "overvecht-zuid", "opmerking 1", "nl"),
        ("utrecht-overvecht", "overvecht-zuid", "opmerking 2", "nl"),
        ("delft-west", None, "cleaner streets", "en"),
        ("delft-west", None, "cleaner streets", "en"),
    ]
    with db.session() as session:
        texts = releases.answer_texts(session, [found[0][0], found[2][0], 10**9])
    assert texts == {found[0][0]: ("opmerking 1", "nl"), found[2][0]: ("cleaner streets", "en")}


def _round(db: Database) -> int:
    from tests.test_alliance_data import standing_round

    return standing_round(db).id
