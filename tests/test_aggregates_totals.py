"""Area totals grouped per area in SQL equal the neighbourhood counts summed in Python."""

from __future__ import annotations

import random
from typing import Any

from storage import aggregates
from tests.test_alliance_data import standing_round
from tests.test_tallies import MULTI, TEXT, _play


def test_area_totals_equal_summed_neighbourhoods_after_random_activity(services: Any) -> None:
    db = services.db
    moments = _play(db, random.Random(3), 120)
    round_id = standing_round(db).id
    with db.session() as session:
        full = aggregates.round_counts_at(session, round_id, moments, multi=MULTI, skip=TEXT)
        totals = aggregates.area_totals_at(session, round_id, moments, multi=MULTI, skip=TEXT)
        only = aggregates.area_totals_at(
            session, round_id, moments, area_codes=["delft-west"], multi=MULTI, skip=TEXT
        )
    assert any(full[m].areas for m in moments)  # the run did something
    for moment in moments:
        expected = {area: counts.total() for area, counts in full[moment].areas.items()}
        assert totals[moment] == expected, moment
        assert set(only[moment]) <= {"delft-west"}
        assert only[moment].get("delft-west") == expected.get("delft-west")


def test_counts_with_totals_equal_the_separate_reads(services: Any) -> None:
    db = services.db
    moments = _play(db, random.Random(4), 120)
    round_id = standing_round(db).id
    # _play ends with [last moment, a day later, None]: totals before (and at) the last moment.
    last = moments[-3]
    assert last is not None
    earlier = [*moments[:-3], last]
    with db.session() as session:
        counts, totals = aggregates.counts_with_totals(
            session, round_id, [last], [*earlier, None], multi=MULTI, skip=TEXT
        )
        expected_counts = aggregates.round_counts_at(
            session, round_id, [last], multi=MULTI, skip=TEXT
        )
        expected_totals = aggregates.area_totals_at(
            session, round_id, [*earlier, None], multi=MULTI, skip=TEXT
        )
    assert counts[last].areas == expected_counts[last].areas
    assert any(expected_totals[m] for m in earlier)  # the run did something
    for moment in [*earlier, None]:
        assert totals[moment] == expected_totals[moment], moment
