"""Round counts for digests, read once per transaction and shared by every digest that needs them.

A tick computes many digests at once: the counts of a round at each moment asked for are read in
one pass over the round's tallies (moments announced with `want` join that pass), and area totals
per moment are grouped in SQL. Every statement is in storage.aggregates; this is their cache.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from digests import QuestionInfo, Sample
from digests.questions import question_infos
from locales.catalogue import Catalogue
from storage import aggregates
from storage.models import Round
from storage.survey_versions import SurveyVersions


class CountsCache:
    """Round counts per (round, moment), shared by every digest of one tick.

    Moments announced with `want` are computed together, in one pass over the round's answers.
    """

    def __init__(self, session: Session, catalogue: Catalogue, surveys: SurveyVersions) -> None:
        self.session = session
        self.catalogue = catalogue
        self.surveys = surveys
        self._counts: dict[tuple[int, datetime | None, str | None], aggregates.RoundCounts] = {}
        self._questions: dict[int, list[QuestionInfo]] = {}
        self._wanted: dict[int, set[datetime | None]] = {}
        self._totals: dict[tuple[int, datetime | None, str | None], dict[str, Sample]] = {}
        self._wanted_totals: dict[int, set[datetime | None]] = {}
        self._rounds: list[Round] | None = None

    def rounds(self) -> list[Round]:
        """Every round, oldest first (loaded once)."""
        if self._rounds is None:
            self._rounds = aggregates.all_rounds(self.session)
        return self._rounds

    def questions(self, round_: Round) -> list[QuestionInfo]:
        """The questions of the round's survey version."""
        if round_.survey_version_id not in self._questions:
            survey = self.surveys.survey(self.session, round_.survey_version_id)
            self._questions[round_.survey_version_id] = question_infos(survey, self.catalogue)
        return self._questions[round_.survey_version_id]

    def want(self, round_id: int, moment: datetime | None) -> None:
        """Announce a moment that will be asked for, so it joins the round's one pass."""
        self._wanted.setdefault(round_id, set()).add(moment)

    def want_totals(self, round_id: int, moment: datetime | None) -> None:
        """Announce a moment whose area totals will be asked for (previous digest)."""
        self._wanted_totals.setdefault(round_id, set()).add(moment)

    def total(
        self, round_: Round, until: datetime | None, area_code: str, scope: str | None
    ) -> Sample:
        """One area's total up to `until`: from counts already made, else grouped per area in
        SQL (all areas at once, with the other announced moments, unless `scope` is given)."""
        for key in ((round_.id, until, None), (round_.id, until, scope)):
            counts = self._counts.get(key)
            if counts is not None:
                return counts.area(area_code).total()
        key_t = (round_.id, until, scope)
        if key_t not in self._totals:
            questions = self.questions(round_)
            moments = {until}
            if scope is None:
                done = {m for (r, m, a) in self._totals if r == round_.id and a is None}
                moments |= self._wanted_totals.get(round_.id, set()) - done
            found = aggregates.area_totals_at(
                self.session,
                round_.id,
                _in_order(moments),
                area_codes=None if scope is None else [scope],
                multi=[q.id for q in questions if q.type == "multi"],
                skip=[q.id for q in questions if q.type == "text"],
            )
            for moment, result in found.items():
                self._totals[(round_.id, moment, scope)] = result
        return self._totals[key_t].get(area_code) or Sample()

    def counts(
        self, round_: Round, until: datetime | None, area_code: str | None = None
    ) -> aggregates.RoundCounts:
        """All areas' counts (or one area's, when given and not cached for all) up to `until`."""
        everything = self._counts.get((round_.id, until, None))
        if everything is not None:
            return everything
        key = (round_.id, until, area_code)
        if key not in self._counts:
            questions = self.questions(round_)
            moments = {until}
            if area_code is None:
                done = {m for (r, m, a) in self._counts if r == round_.id and a is None}
                moments |= self._wanted.get(round_.id, set()) - done
            multi = [q.id for q in questions if q.type == "multi"]
            skip = [q.id for q in questions if q.type == "text"]
            if area_code is None:
                # The announced previous-digest totals come from the same read of the tallies.
                done = {m for (r, m, a) in self._totals if r == round_.id and a is None}
                totals_at = self._wanted_totals.get(round_.id, set()) - done
                found, totals = aggregates.counts_with_totals(
                    self.session,
                    round_.id,
                    _in_order(moments),
                    _in_order(totals_at),
                    multi=multi,
                    skip=skip,
                )
                for moment, by_area in totals.items():
                    self._totals[(round_.id, moment, None)] = by_area
            else:
                found = aggregates.round_counts_at(
                    self.session,
                    round_.id,
                    _in_order(moments),
                    area_codes=[area_code],
                    multi=multi,
                    skip=skip,
                )
            for moment, result in found.items():
                self._counts[(round_.id, moment, area_code)] = result
        return self._counts[key]


def _in_order(moments: set[datetime | None]) -> list[datetime | None]:
    """Moments oldest first, None (the whole round) last."""
    return sorted(moments, key=lambda m: (m is None, m or datetime.min.replace(tzinfo=UTC)))
