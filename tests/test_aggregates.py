"""The GROUP BY queries behind digests, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from digests import UNKNOWN
from storage import aggregates
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


def test_comments_most_recent_first_with_language_counts(services: Any) -> None:
    db = services.db
    for i in range(5):
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
        area="utrecht-overvecht",
        neighbourhood="overvecht-zuid",
        n=2,
        at=T0 + timedelta(hours=6),
        text="more trees",
        text_language="en",
    )
    seed(db, area="rotterdam-zuid", neighbourhood=None, n=2, at=T0, text="elders")
    round_id = _round(db)
    with db.session() as session:
        found, languages = aggregates.comments(
            session,
            round_id,
            "utrecht-overvecht",
            questions=TEXT,
            since=T0,
            until=T0 + timedelta(days=1),
            limit=3,
        )
    # The first comment (at T0 exactly) is outside a period that starts at T0.
    assert [c.text for c in found] == ["more trees", "more trees", "opmerking 4"]
    assert languages == {"nl": 4, "en": 2}


def _round(db: Database) -> int:
    from tests.test_alliance_data import standing_round

    return standing_round(db).id


def test_comments_of_all_areas_in_one_query(services: Any) -> None:
    db = services.db
    seed(
        db,
        area="utrecht-overvecht",
        neighbourhood=None,
        n=3,
        at=T0 + timedelta(hours=1),
        text="meer groen",
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
    with db.session() as session:
        found = aggregates.comments_by_area(
            session, _round(db), questions=TEXT, since=T0, until=T0 + timedelta(days=1), limit=2
        )
    assert set(found) == {"utrecht-overvecht", "delft-west"}
    overvecht, languages = found["utrecht-overvecht"]
    assert [c.text for c in overvecht] == ["meer groen", "meer groen"] and languages == {"nl": 3}
    assert found["delft-west"][1] == {"en": 2}
