"""What a digest is computed from: one area's DigestInput, read through a CountsCache.

Shared by the digest use cases (usecases.queue_digests), residents' /results
(usecases.resident_results) and `buurtstem digest preview`.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from digests import Comment, DigestInput, Sample
from digests.questions import period_label
from storage import aggregates
from storage.digest_counts import CountsCache
from storage.models import Round
from surveys.areas import Area


def digest_input(
    cache: CountsCache,
    *,
    area: Area,
    round_: Round,
    period_start: datetime,
    period_end: datetime,
    previous_end: datetime | None,
    tz: ZoneInfo,
    all_areas: bool = True,
    with_comments: bool = True,
) -> DigestInput:
    """Everything build_digest needs for one area, from the cache's GROUP BY queries."""
    questions = cache.questions(round_)
    scope = None if all_areas else area.code
    current = cache.counts(round_, period_end, scope)
    previous: Sample | None = None
    if previous_end is not None:
        previous = cache.total(round_, previous_end, area.code, scope)
    earlier = []
    for old in aggregates.earlier_rounds(cache.session, area.code, round_, rounds=cache.rounds()):
        sample = cache.total(old, None, area.code, scope)
        if sample.started:
            earlier.append((old.name, sample))
    found: list[Comment] = []
    languages: dict[str, int] = {}
    if with_comments:
        found, languages = cache.comments(round_, area.code, period_start, period_end)
    return DigestInput(
        area_code=area.code,
        area_name=area.name,
        round_name=round_.name,
        period=period_label(period_start, period_end, tz),
        questions=questions,
        current=current.area(area.code),
        neighbourhood_names={h.code: h.name for h in area.neighbourhoods},
        previous=previous,
        earlier_rounds=earlier,
        all_areas=current.all_areas() if all_areas else None,
        comments=found,
        comment_languages=languages,
    )
