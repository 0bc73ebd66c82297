"""The one cache of stored survey versions: one per database, each version parsed once."""

from __future__ import annotations

import pytest

from bot.clock import FakeClock
from storage.db import Database
from storage.survey_versions import SurveyVersions, store_survey
from surveys.loader import DEFAULT_SURVEY_PATH, load_survey


def test_each_version_is_parsed_once_and_unknown_ones_are_refused(
    sqlite_db: Database, clock: FakeClock
) -> None:
    survey = load_survey(DEFAULT_SURVEY_PATH)
    with sqlite_db.session() as session:
        stored = store_survey(session, survey, "source", clock.now())
    surveys = sqlite_db.surveys
    assert isinstance(surveys, SurveyVersions)
    with sqlite_db.session() as session:
        first = surveys.survey(session, stored.id)
        assert first == survey
        assert surveys.survey(session, stored.id) is first
        engine = surveys.engine(session, stored.id)
        assert surveys.engine(session, stored.id) is engine and engine.survey is first
        with pytest.raises(LookupError, match="not stored"):
            surveys.survey(session, stored.id + 1)


def test_every_database_has_its_own(sqlite_url: str) -> None:
    one, two = Database(sqlite_url), Database(sqlite_url)
    try:
        assert one.surveys is not two.surveys  # ids belong to one database
    finally:
        one.dispose()
        two.dispose()
