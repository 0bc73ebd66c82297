"""Input and output shapes of the digest computation: aggregated counts in, a published table out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Neighbourhood key of the whole area in the published table.
TOTAL = "totaal"
# Neighbourhood key for responses without a neighbourhood; a cell like any other, so that the
# area total minus the named neighbourhoods never isolates it.
UNKNOWN = "onbekend"

QUESTION_TYPES = frozenset({"grade", "agree5", "single", "multi", "yesno", "text"})
# Option ids that mean "none of these" in a multi question: never ranked as a nuisance.
NONE_OPTIONS = frozenset({"none", "geen", "geen_van_deze"})


@dataclass(frozen=True)
class QuestionInfo:
    """What the digest needs to know of one survey question (filled from the survey definition)."""

    id: str
    type: str
    text: dict[str, str]
    options: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    reverse: bool = False
    item: str | None = None
    # Short label for lists and the chart ("leefbaarheid"); falls back to `text`.
    label: dict[str, str] = field(default_factory=dict)
    # Derived lists (measure names), computed once: a question serves every digest of a tick.
    memo: dict[Any, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if self.type not in QUESTION_TYPES:
            raise ValueError(f"unknown question type {self.type!r} for question {self.id!r}")

    def text_in(self, lang: str) -> str:
        """The question text in `lang`, else Dutch, else the id."""
        return self.text.get(lang) or self.text.get("nl") or self.id

    def label_in(self, lang: str) -> str:
        """The short label in `lang`, else the question text."""
        return self.label.get(lang) or self.label.get("nl") or self.text_in(lang)

    def option_label(self, option_id: str, lang: str) -> str:
        """An option's label in `lang`, else Dutch, else its id."""
        for oid, labels in self.options:
            if oid == option_id:
                return labels.get(lang) or labels.get("nl") or oid
        return option_id

    @property
    def option_ids(self) -> list[str]:
        """Option ids in survey order (a new list)."""
        found = self.memo.get("option_ids")
        if found is None:
            found = self.memo["option_ids"] = tuple(oid for oid, _ in self.options)
        return list(found)


@dataclass(frozen=True)
class QuestionCounts:
    """Answers to one question in one group: responses per value, and how many answered."""

    # Grade value ("1".."10"), option id, or for multi: responses that ticked the option.
    counts: dict[str, int]
    # Responses that answered the question; needed for multi, else the sum of `counts`.
    answered: int | None = None
    # Figures computed from these counts (publish fills it): a sample shared by several
    # digests of one tick, such as all areas together, is then computed once. Counts must not
    # change once published.
    memo: dict[Any, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    @property
    def n(self) -> int:
        """Number of responses that answered."""
        return self.answered if self.answered is not None else sum(self.counts.values())


def _counts(values: Mapping[Any, int]) -> dict[str, int]:
    return {str(key): int(value) for key, value in values.items()}


@dataclass
class Sample:
    """Aggregated answers of one group of responses (a neighbourhood, an area, all areas)."""

    started: int = 0
    completed: int = 0
    questions: dict[str, QuestionCounts] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        started: int,
        completed: int,
        counts: Mapping[str, Mapping[Any, int]],
        answered: Mapping[str, int] | None = None,
    ) -> Sample:
        """Build a sample from plain dicts (question id -> value -> responses)."""
        answered = answered or {}
        return cls(
            started,
            completed,
            {qid: QuestionCounts(_counts(c), answered.get(qid)) for qid, c in counts.items()},
        )

    @staticmethod
    def merge(samples: Iterable[Sample]) -> Sample:
        """The sum of several disjoint samples."""
        out = Sample()
        counts: dict[str, dict[str, int]] = {}
        answered: dict[str, int] = {}
        for sample in samples:
            out.started += sample.started
            out.completed += sample.completed
            for qid, qc in sample.questions.items():
                target = counts.setdefault(qid, {})
                for key, value in qc.counts.items():
                    target[key] = target.get(key, 0) + value
                answered[qid] = answered.get(qid, 0) + qc.n
        out.questions = {qid: QuestionCounts(c, answered[qid]) for qid, c in counts.items()}
        return out

    def minus(self, earlier: Sample) -> Sample | None:
        """The responses in self but not in `earlier` (cumulative counts); None if inconsistent."""
        counts: dict[str, dict[str, int]] = {}
        answered: dict[str, int] = {}
        for qid, qc in self.questions.items():
            before = earlier.questions.get(qid, QuestionCounts({}, 0))
            diff = {k: v - before.counts.get(k, 0) for k, v in qc.counts.items()}
            # Erased responses make the difference negative: no honest "new responses" then.
            if any(v < 0 for v in diff.values()) or set(before.counts) - set(qc.counts):
                return None
            counts[qid] = diff
            answered[qid] = qc.n - before.n
            if answered[qid] < 0:
                return None
        started = self.started - earlier.started
        completed = self.completed - earlier.completed
        if started < 0 or completed < 0:
            return None
        return Sample(
            started, completed, {q: QuestionCounts(c, answered[q]) for q, c in counts.items()}
        )


@dataclass
class AreaCounts:
    """One area's aggregated answers, split by neighbourhood (UNKNOWN for none)."""

    neighbourhoods: dict[str, Sample] = field(default_factory=dict)

    def total(self) -> Sample:
        """The whole area: the sum of its neighbourhoods."""
        return Sample.merge(self.neighbourhoods.values())

    @classmethod
    def from_rows(
        cls,
        respondents: Iterable[tuple[str | None, int, int]],
        answers: Iterable[tuple[str | None, str, str | int, int]],
        answered: Iterable[tuple[str | None, str, int]] = (),
    ) -> AreaCounts:
        """Build from GROUP BY rows.

        respondents: (neighbourhood, started, completed);
        answers: (neighbourhood, question id, value or option id, responses);
        answered: (neighbourhood, question id, responses that answered) - needed for multi.
        """
        started: dict[str, tuple[int, int]] = {}
        for nbh, s, c in respondents:
            key = nbh or UNKNOWN
            old = started.get(key, (0, 0))
            started[key] = (old[0] + s, old[1] + c)
        counts: dict[str, dict[str, dict[str, int]]] = {}
        for nbh, qid, value, n in answers:
            per_q = counts.setdefault(nbh or UNKNOWN, {}).setdefault(qid, {})
            per_q[str(value)] = per_q.get(str(value), 0) + int(n)
        ans: dict[str, dict[str, int]] = {}
        for nbh, qid, n in answered:
            per_nbh = ans.setdefault(nbh or UNKNOWN, {})
            per_nbh[qid] = per_nbh.get(qid, 0) + int(n)
        keys = list(dict.fromkeys([*started, *counts, *ans]))
        out = cls()
        for key in keys:
            s, c = started.get(key, (0, 0))
            out.neighbourhoods[key] = Sample.of(s, c, counts.get(key, {}), ans.get(key))
        return out


@dataclass(frozen=True)
class Comment:
    """One free-text answer (raw: it is scrubbed before anything is published)."""

    text: str
    language: str
    question: str | None = None


def stamp(moment: datetime) -> str:
    """A moment as fixed-width UTC text, so that texts compare as the moments do."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


# A quote kept by reference: (answer id, answered at as stamp() text). Its text is read when a digest
# is rendered, so an answer erased since (/forget, retention) is never quoted.
QuoteRef = tuple[int, str]
# Quotes remembered per neighbourhood and theme (the newest), and how many a digest shows: a
# comment about two themes is quoted once, so each theme keeps a few to choose from.
QUOTES_KEPT = 4
QUOTES_SHOWN = 2


@dataclass
class CommentSummary:
    """Comments counted per neighbourhood and theme, and per language; the newest as quotes.

    A release keeps the summary of its round so far (cumulative); `since` gives one period's.
    """

    themes: dict[str, dict[str, int]] = field(default_factory=dict)  # nbh -> theme -> comments
    languages: dict[str, int] = field(default_factory=dict)
    quotes: dict[str, dict[str, list[QuoteRef]]] = field(default_factory=dict)  # newest first
    hoods: dict[str, int] = field(default_factory=dict)  # nbh -> comments

    @property
    def total(self) -> int:
        """Comments in all (one per comment, whatever its themes)."""
        return sum(self.languages.values())

    def plus(self, comments: Iterable[tuple[int, str, str, str, str, list[str]]]) -> CommentSummary:
        """This summary with comments added: (answer id, nbh, text, language, at ISO, themes).

        Comments are added oldest first; a comment with text too short to quote still counts.
        """
        out = CommentSummary(
            {k: dict(v) for k, v in self.themes.items()},
            dict(self.languages),
            {k: {t: list(q) for t, q in v.items()} for k, v in self.quotes.items()},
            dict(self.hoods),
        )
        for answer_id, nbh, text, language, at, themes in comments:
            nbh = nbh or UNKNOWN
            out.languages[language] = out.languages.get(language, 0) + 1
            out.hoods[nbh] = out.hoods.get(nbh, 0) + 1
            per_theme = out.themes.setdefault(nbh, {})
            quotable = len(" ".join(text.split())) >= MIN_QUOTE_CHARS
            for theme in themes:
                per_theme[theme] = per_theme.get(theme, 0) + 1
                if quotable:
                    kept = out.quotes.setdefault(nbh, {}).setdefault(theme, [])
                    kept.insert(0, (answer_id, at))
                    del kept[QUOTES_KEPT:]
        return out

    def since(self, earlier: CommentSummary | None, after: str | None) -> CommentSummary:
        """The comments of the period since `earlier` (quotes answered after `after`, ISO)."""
        if earlier is None:
            return self
        themes: dict[str, dict[str, int]] = {}
        for nbh, counts in self.themes.items():
            before = earlier.themes.get(nbh, {})
            diff = {t: n - before.get(t, 0) for t, n in counts.items()}
            diff = {t: n for t, n in diff.items() if n > 0}
            if diff:
                themes[nbh] = diff
        languages = {
            lang: n - earlier.languages.get(lang, 0)
            for lang, n in self.languages.items()
            if n - earlier.languages.get(lang, 0) > 0
        }
        quotes: dict[str, dict[str, list[QuoteRef]]] = {}
        for nbh, per_theme in self.quotes.items():
            for theme, refs in per_theme.items():
                fresh = [r for r in refs if after is None or r[1] > after]
                if fresh:
                    quotes.setdefault(nbh, {})[theme] = fresh
        hoods = {
            nbh: n - earlier.hoods.get(nbh, 0)
            for nbh, n in self.hoods.items()
            if n - earlier.hoods.get(nbh, 0) > 0
        }
        return CommentSummary(themes, languages, quotes, hoods)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "themes": self.themes,
            "languages": self.languages,
            "hoods": self.hoods,
            "quotes": {
                nbh: {t: [[i, at] for i, at in refs] for t, refs in per.items()}
                for nbh, per in self.quotes.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> CommentSummary:
        """Read to_json's data back."""
        data = data or {}
        return cls(
            {k: {t: int(n) for t, n in v.items()} for k, v in data.get("themes", {}).items()},
            {k: int(n) for k, n in data.get("languages", {}).items()},
            {
                nbh: {t: [(int(i), str(at)) for i, at in refs] for t, refs in per.items()}
                for nbh, per in data.get("quotes", {}).items()
            },
            {k: int(n) for k, n in data.get("hoods", {}).items()},
        )


MIN_QUOTE_CHARS = 12


@dataclass(frozen=True)
class ThemeGroup:
    """A neighbourhood's comments by theme (or the rest of the area's, under OTHER_HOODS)."""

    neighbourhood: str
    total: int
    counts: list[tuple[str, int]]  # (theme, comments), most first
    quotes: dict[str, list[tuple[str, str]]]  # theme -> [(scrubbed text, language)]


# Key of the comment group for neighbourhoods too small to be shown apart, and unknown ones.
OTHER_HOODS = "overige"


@dataclass
class DigestInput:
    """Everything one digest for one area is computed from."""

    area_code: str
    area_name: str
    round_name: str
    period: str
    questions: list[QuestionInfo]
    # The round so far at the end of this period, per neighbourhood.
    current: AreaCounts
    # Display names per neighbourhood code, in the order the digest lists them.
    neighbourhood_names: dict[str, str] = field(default_factory=dict)
    # The area total of the round so far at the previous digest (cumulative), if any.
    previous: Sample | None = None
    # Area totals of earlier rounds, oldest first, as (label, sample); the last is "previous round".
    earlier_rounds: list[tuple[str, Sample]] = field(default_factory=list)
    # All focus areas together, same round so far (this area included).
    all_areas: Sample | None = None
    # Free text of this period (the integrator limits how many) and comments per language.
    comments: list[Comment] = field(default_factory=list)
    comment_languages: dict[str, int] = field(default_factory=dict)
    # Comments of the period by neighbourhood and theme (a release's), with the quotes' texts
    # by answer id: (raw text, language). When given, the digest groups comments by theme.
    comment_summary: CommentSummary | None = None
    quote_texts: dict[int, tuple[str, str]] = field(default_factory=dict)
    # When the figures were cut (a release's moment, as shown: "16-11-2026 01:00"), if known.
    as_of: str = ""
    # Reference figures (city, country) for this area, if the programme team provides them.
    references: Any = None


@dataclass(frozen=True)
class Cell:
    """One published figure, or the hole where a suppressed one would be."""

    scope: str  # current | previous_digest | round:<label> | all_areas | change_* (see docs)
    neighbourhood: str  # code, TOTAL, or UNKNOWN
    question: str  # question id, or "respondents"
    measure: str  # mean | share:<option> | share:agree | started | completed
    n: int | None = None
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    indicative: bool = False
    beyond_chance: bool | None = None
    suppressed: str | None = None  # min_n | secondary | few_new

    @property
    def shown(self) -> bool:
        """Whether the figure is published."""
        return self.suppressed is None


@dataclass
class PublishedTable:
    """The suppressed, scrubbed table: the only thing text, chart and CSV are rendered from."""

    area_code: str
    area_name: str
    round_name: str
    period: str
    questions: list[QuestionInfo]
    neighbourhoods: list[tuple[str, str]]  # (code, display name), in digest order
    cells: list[Cell]
    min_n: int
    indicative_below: int
    earlier_round_labels: list[str] = field(default_factory=list)
    # Area-level respondents of this period; None when below min_n (shown as "fewer than").
    period_started: int | None = None
    period_completed: int | None = None
    period_few: bool = False
    quotes: list[tuple[str, str]] = field(default_factory=list)  # (scrubbed text, language)
    comment_languages: dict[str, int] = field(default_factory=dict)  # small ones under "other"
    comment_total: int = 0
    themes: list[ThemeGroup] = field(default_factory=list)
    as_of: str = ""
    references: Any = None  # digests.references.References | None
    _index: dict[tuple[str, str, str, str], Cell] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {(c.scope, c.neighbourhood, c.question, c.measure): c for c in self.cells}

    def cell(self, scope: str, neighbourhood: str, question: str, measure: str) -> Cell | None:
        """The cell at these coordinates, if there is one."""
        return self._index.get((scope, neighbourhood, question, measure))

    def get(self, scope: str, neighbourhood: str, question: str, measure: str) -> Cell:
        """The cell at these coordinates; KeyError when the table has no such cell."""
        return self._index[(scope, neighbourhood, question, measure)]

    def published_n(self) -> dict[str, int]:
        """n of every shown current cell, keyed `neighbourhood|question`: store it, pass it back."""
        out: dict[str, int] = {}
        for c in self.cells:
            if c.scope == "current" and c.shown and c.n is not None:
                out[f"{c.neighbourhood}|{c.question}"] = c.n
        return out
