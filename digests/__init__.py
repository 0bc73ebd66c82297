"""Alliance digests, pure: from aggregated counts to a suppressed table, text, chart and CSV."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from digests.chart import render_chart
from digests.model import (
    TOTAL,
    UNKNOWN,
    AreaCounts,
    Cell,
    Comment,
    DigestInput,
    PublishedTable,
    QuestionCounts,
    QuestionInfo,
    Sample,
)
from digests.release import Release, release_table
from digests.render import is_below_threshold, render_text
from digests.scrub import scrub
from digests.suppression import DEFAULT_INDICATIVE_BELOW, DEFAULT_MIN_N, check_min_n, publish
from digests.table import render_csv

__all__ = [
    "TOTAL",
    "UNKNOWN",
    "AreaCounts",
    "Cell",
    "Comment",
    "Digest",
    "DigestInput",
    "PublishedTable",
    "QuestionCounts",
    "QuestionInfo",
    "Release",
    "Sample",
    "build_digest",
    "check_min_n",
    "publish",
    "release_table",
    "render_chart",
    "render_csv",
    "render_digest",
    "render_text",
    "scrub",
]


@dataclass
class Digest:
    """One digest, ready to send: messages (HTML), chart PNG, CSV, and the n's it showed.

    Below the threshold a digest is its short message only: no chart and no CSV.
    """

    table: PublishedTable | None  # None: a message without figures ("no new figures")
    messages: list[str]
    chart_png: bytes | None
    csv: bytes | None
    published_n: dict[str, int] = field(default_factory=dict)


def render_digest(
    table: PublishedTable,
    *,
    lang: str = "nl",
    chart: bool = True,
    excel_nl: bool = True,
    chart_png: bytes | None = None,
) -> Digest:
    """Text, chart and CSV of one published table (`chart_png`: a chart drawn already)."""
    if is_below_threshold(table):
        return Digest(table, render_text(table, lang), None, None, {})
    if chart and chart_png is None:
        chart_png = render_chart(table, lang)
    return Digest(
        table=table,
        messages=render_text(table, lang),
        chart_png=chart_png if chart else None,
        csv=render_csv(table, excel_nl=excel_nl),
        published_n=table.published_n(),
    )


def build_digest(
    data: DigestInput,
    *,
    lang: str = "nl",
    min_n: int = DEFAULT_MIN_N,
    indicative_below: int = DEFAULT_INDICATIVE_BELOW,
    last_published: Mapping[str, int] | None = None,
    max_quotes: int = 3,
    chart: bool = True,
    excel_nl: bool = True,
) -> Digest:
    """Compute the published table once and render text, chart and CSV from it only."""
    table = publish(
        data,
        min_n=min_n,
        indicative_below=indicative_below,
        last_published=last_published,
        max_quotes=max_quotes,
    )
    return render_digest(table, lang=lang, chart=chart, excel_nl=excel_nl)
