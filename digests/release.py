"""Published releases: one series of figures per area, from which every output for it is made.

An alliance digest, a second group's digest and a resident's /results for one area all show a
release of that area's series, never figures cut for themselves. A release is cut when at least
min_n new respondents have come in since the previous one (at most daily; the use case decides
when), and it is immutable: it keeps its counts, which cells it hides and why, and the series'
history (the n of every figure when it was last shown). So no two outputs for an area differ by
fewer than min_n respondents in any figure: subtracting them gives nothing away.

All focus areas together is a series of its own (area code ALL_AREAS), cut by the same rule: an
area's release shows the latest all-areas release's figures, hidden where that release hides them
or where the other areas together are fewer than min_n.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from digests.model import (
    TOTAL,
    AreaCounts,
    CommentSummary,
    DigestInput,
    PublishedTable,
    QuestionCounts,
    QuestionInfo,
    Sample,
    stamp,
)
from digests.suppression import RESPONDENTS, _primary, check_min_n, publish, question_n

ALL_AREAS = "*"
ALL_KEY = "all_areas"


def sample_to_json(sample: Sample) -> dict[str, Any]:
    """A sample as plain JSON data."""
    return {
        "s": sample.started,
        "c": sample.completed,
        "q": {qid: [qc.counts, qc.answered] for qid, qc in sample.questions.items()},
    }


def sample_from_json(data: Mapping[str, Any]) -> Sample:
    """Read sample_to_json's data back."""
    return Sample(
        int(data.get("s", 0)),
        int(data.get("c", 0)),
        {
            qid: QuestionCounts(
                {str(k): int(v) for k, v in counts.items()},
                None if answered is None else int(answered),
            )
            for qid, (counts, answered) in data.get("q", {}).items()
        },
    )


@dataclass
class Release:
    """One published cut of an area's (or all areas') figures: immutable once stored."""

    area_code: str
    round_id: int
    seq: int
    cut_at: datetime
    # The round so far at cut_at, per neighbourhood (empty for the all-areas series).
    current: AreaCounts = field(default_factory=AreaCounts)
    # Area totals of earlier rounds, oldest first, as (round name, sample).
    earlier_rounds: list[tuple[str, Sample]] = field(default_factory=list)
    # All focus areas together (the all-areas series' latest release), if there is one.
    all_areas: Sample | None = None
    # Hidden cells and why: `neighbourhood|question` (question may be "respondents") and
    # `all_areas|question`. A cell not listed is shown.
    hidden: dict[str, str] = field(default_factory=dict)
    # The series so far: for every figure ever shown, its n when it was last shown.
    history: dict[str, int] = field(default_factory=dict)
    # Comments of the round so far (cumulative), by neighbourhood and theme.
    comments: CommentSummary = field(default_factory=CommentSummary)
    # The last release of a closed round.
    final: bool = False

    @property
    def started(self) -> int:
        """Respondents at cut_at (of the area, or of all areas for the all-areas series)."""
        if self.area_code == ALL_AREAS:
            return self.all_areas.started if self.all_areas is not None else 0
        return sum(s.started for s in self.current.neighbourhoods.values())

    @property
    def shown(self) -> bool:
        """Whether the release shows any figure (its area total of respondents)."""
        if self.area_code == ALL_AREAS:
            return self.all_areas is not None
        return f"{TOTAL}|{RESPONDENTS}" not in self.hidden

    def data_json(self) -> dict[str, Any]:
        """What is stored of the release besides its keys (see storage.releases)."""
        return {
            "current": {k: sample_to_json(s) for k, s in self.current.neighbourhoods.items()},
            "earlier": [[label, sample_to_json(s)] for label, s in self.earlier_rounds],
            "all_areas": None if self.all_areas is None else sample_to_json(self.all_areas),
            "hidden": self.hidden,
            "history": self.history,
            "comments": self.comments.to_json(),
        }

    @classmethod
    def from_data(
        cls,
        *,
        area_code: str,
        round_id: int,
        seq: int,
        cut_at: datetime,
        final: bool,
        data: Mapping[str, Any],
    ) -> Release:
        """A release from its stored row."""
        all_areas = data.get("all_areas")
        return cls(
            area_code=area_code,
            round_id=round_id,
            seq=seq,
            cut_at=cut_at,
            current=AreaCounts(
                {k: sample_from_json(v) for k, v in (data.get("current") or {}).items()}
            ),
            earlier_rounds=[(str(lb), sample_from_json(s)) for lb, s in data.get("earlier") or []],
            all_areas=None if all_areas is None else sample_from_json(all_areas),
            hidden={str(k): str(v) for k, v in (data.get("hidden") or {}).items()},
            history={str(k): int(v) for k, v in (data.get("history") or {}).items()},
            comments=CommentSummary.from_json(data.get("comments")),
            final=final,
        )


def is_due(started_now: int, previous: Release | None, min_n: int) -> bool:
    """Whether a new release may be cut: at least min_n respondents since the previous one."""
    check_min_n(min_n)
    before = previous.started if previous is not None else 0
    return started_now - before >= min_n


def cut_release(
    *,
    area_code: str,
    round_id: int,
    cut_at: datetime,
    questions: list[QuestionInfo],
    current: AreaCounts,
    neighbourhood_names: Mapping[str, str],
    earlier_rounds: list[tuple[str, Sample]],
    all_areas: Release | None,
    previous: Release | None,
    comments: CommentSummary,
    min_n: int,
    final: bool = False,
) -> Release:
    """The next release of an area's series: suppression against the series' history."""
    data = DigestInput(
        area_code=area_code,
        area_name=area_code,
        round_name="",
        period="",
        questions=questions,
        current=current,
        neighbourhood_names=dict(neighbourhood_names),
        earlier_rounds=earlier_rounds,
        all_areas=all_areas.all_areas if all_areas is not None else None,
    )
    table = publish(
        data,
        min_n=min_n,
        last_published=previous.history if previous is not None else None,
        all_areas_hidden=all_areas.hidden if all_areas is not None else None,
        max_quotes=0,
        figures=False,
    )
    hidden: dict[str, str] = {}
    for c in table.cells:
        if c.suppressed is None:
            continue
        if c.scope == "current":
            hidden[f"{c.neighbourhood}|{c.question}"] = c.suppressed
        elif c.scope == ALL_KEY:
            hidden[f"{ALL_KEY}|{c.question}"] = c.suppressed
    history = dict(previous.history) if previous is not None else {}
    history.update(table.published_n())
    return Release(
        area_code=area_code,
        round_id=round_id,
        seq=(previous.seq + 1) if previous is not None else 1,
        cut_at=cut_at,
        current=current,
        earlier_rounds=earlier_rounds,
        all_areas=data.all_areas,
        hidden=hidden,
        history=history,
        comments=comments,
        final=final,
    )


def cut_all_areas(
    *,
    round_id: int,
    cut_at: datetime,
    questions: list[QuestionInfo],
    total: Sample,
    previous: Release | None,
    min_n: int,
) -> Release:
    """The next release of the all-areas series: each question's figure hidden below min_n or
    when it moved by fewer than min_n since it was last shown."""
    check_min_n(min_n)
    last = previous.history if previous is not None else {}
    hidden: dict[str, str] = {}
    history = dict(last)
    for q in questions:
        if q.type == "text":
            continue
        key = f"{ALL_KEY}|{q.id}"
        n = question_n(q, total.questions.get(q.id))
        why = _primary(n, last.get(key), min_n)
        if why is None:
            history[key] = n
        else:
            hidden[key] = why
    return Release(
        area_code=ALL_AREAS,
        round_id=round_id,
        seq=(previous.seq + 1) if previous is not None else 1,
        cut_at=cut_at,
        all_areas=total,
        hidden=hidden,
        history=history,
    )


def release_table(
    release: Release,
    previous: Release | None,
    *,
    questions: list[QuestionInfo],
    area_name: str,
    round_name: str,
    period: str,
    as_of: str,
    neighbourhood_names: Mapping[str, str],
    min_n: int,
    quote_texts: Mapping[int, tuple[str, str]] | None = None,
    references: Any = None,
) -> PublishedTable:
    """The published table of a release, for one output: the release's own suppression, with
    the figures of `previous` (the release this output's reader saw last) to compare with."""
    after = stamp(previous.cut_at) if previous is not None else None
    comments = release.comments.since(previous.comments if previous is not None else None, after)
    data = DigestInput(
        area_code=release.area_code,
        area_name=area_name,
        round_name=round_name,
        period=period,
        questions=questions,
        current=release.current,
        neighbourhood_names=dict(neighbourhood_names),
        previous=previous.current.total() if previous is not None else None,
        earlier_rounds=release.earlier_rounds,
        all_areas=release.all_areas,
        comment_summary=comments,
        quote_texts=dict(quote_texts or {}),
        as_of=as_of,
        references=references,
    )
    return publish(
        data,
        min_n=min_n,
        hidden=release.hidden,
        previous_hidden=previous.hidden if previous is not None else None,
    )


def quote_ids(release: Release, previous: Release | None) -> set[int]:
    """The answers a digest of `release` since `previous` may quote (read their texts)."""
    after = stamp(previous.cut_at) if previous is not None else None
    comments = release.comments.since(previous.comments if previous is not None else None, after)
    return {i for per in comments.quotes.values() for refs in per.values() for i, _ in refs}
