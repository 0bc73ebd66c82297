"""Releases (pure): one series per area, what a digest made from one says, and what it hides."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import combinations
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from digests import render_digest
from digests.chart import chart_data
from digests.model import TOTAL, AreaCounts, CommentSummary, QuestionInfo, Sample, stamp
from digests.references import Figure, References
from digests.release import (
    ALL_AREAS,
    Release,
    cut_all_areas,
    cut_release,
    is_due,
    quote_ids,
    release_table,
)
from digests.themes import OTHER, classify
from tests.test_digest_data import QUESTIONS, make_sample

T0 = datetime(2026, 11, 2, tzinfo=UTC)
HOODS = {"noord": "Noord", "zuid": "Zuid", "oost": "Oost"}
OFTEN_SCALE = [
    ("vaak", {"nl": "Vaak"}),
    ("soms", {"nl": "Soms"}),
    ("nooit", {"nl": "(Bijna) nooit"}),
]
PROBLEMS = [
    QuestionInfo(
        "nuisance_litter",
        "single",
        {"nl": "Rommel op straat?"},
        OFTEN_SCALE,
        item="VM.overlast_rommel",
        label={"nl": "Overlast: rommel op straat"},
    ),
    QuestionInfo(
        "nuisance_dogs",
        "single",
        {"nl": "Hondenpoep?"},
        OFTEN_SCALE,
        label={"nl": "Overlast: hondenpoep"},
    ),
]
ALL_QUESTIONS = QUESTIONS + PROBLEMS


def area(sizes: dict[str, int], seed: int = 1, often: dict[str, float] | None = None) -> AreaCounts:
    """An area with these respondents per neighbourhood; problems 'vaak' at the given share."""
    rng = random.Random(seed)
    out = AreaCounts()
    for hood, n in sizes.items():
        sample = make_sample(rng, n)
        share = (often or {}).get(hood, 0.3)
        vaak = round(n * share)
        sample.questions["nuisance_litter"] = Sample.of(
            0, 0, {"x": {"vaak": vaak, "soms": n - vaak}}
        ).questions["x"]
        sample.questions["nuisance_dogs"] = Sample.of(
            0, 0, {"x": {"vaak": n // 10, "nooit": n - n // 10}}
        ).questions["x"]
        out.neighbourhoods[hood] = sample
    return out


def cut(
    current: AreaCounts,
    previous: Release | None = None,
    *,
    at: datetime = T0,
    all_areas: Release | None = None,
    comments: CommentSummary | None = None,
    min_n: int = 10,
) -> Release:
    return cut_release(
        area_code="x",
        round_id=1,
        cut_at=at,
        questions=ALL_QUESTIONS,
        current=current,
        neighbourhood_names=HOODS,
        earlier_rounds=[],
        all_areas=all_areas,
        previous=previous,
        comments=comments or CommentSummary(),
        min_n=min_n,
    )


def table_of(release: Release, previous: Release | None = None, **kw: Any) -> Any:
    return release_table(
        release,
        previous,
        questions=ALL_QUESTIONS,
        area_name="Testwijk",
        round_name="Ronde",
        period="p",
        as_of="16-11-2026 01:00",
        neighbourhood_names=HOODS,
        min_n=10,
        **kw,
    )


def shown_n(release: Release) -> dict[tuple[str, str], int]:
    """n of every figure a release shows, as any output of it shows it."""
    table = table_of(release)
    return {
        (c.neighbourhood, c.question): c.n
        for c in table.cells
        if c.scope == "current" and c.shown and c.n is not None
    }


# ---- the series ---------------------------------------------------------------------------


def test_a_release_needs_min_n_new_respondents() -> None:
    first = cut(area({"noord": 12}))
    assert not is_due(9, None, 10) and is_due(12, None, 10)
    assert not is_due(first.started + 9, first, 10)
    assert is_due(first.started + 10, first, 10)
    second = cut(area({"noord": 22}), first)
    assert (first.seq, second.seq) == (1, 2)


def test_a_release_round_trips_through_json() -> None:
    comments = CommentSummary().plus(
        [(7, "noord", "meer groen hier graag", "nl", stamp(T0), ["green"])]
    )
    release = cut(area({"noord": 30, "zuid": 4}), comments=comments)
    again = Release.from_data(
        area_code=release.area_code,
        round_id=release.round_id,
        seq=release.seq,
        cut_at=release.cut_at,
        final=release.final,
        data=release.data_json(),
    )
    assert again.hidden == release.hidden and again.history == release.history
    assert again.comments == release.comments
    assert shown_n(again) == shown_n(release)
    assert table_of(again).cells == table_of(release).cells


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 14), st.integers(0, 14), st.integers(0, 6)),
        min_size=2,
        max_size=8,
    ),
    seed=st.integers(0, 1000),
)
def test_no_two_releases_of_a_series_differ_by_fewer_than_min_n(
    steps: list[tuple[int, int, int]], seed: int
) -> None:
    """Any two outputs of an area show releases of one series: every figure they both show
    rests on the same respondents or on at least min_n more."""
    sizes = {"noord": 0, "zuid": 0, "oost": 0}
    releases: list[Release] = []
    previous = None
    for day, (a, b, c) in enumerate(steps):
        sizes = {"noord": sizes["noord"] + a, "zuid": sizes["zuid"] + b, "oost": sizes["oost"] + c}
        current = area(sizes, seed)
        if not is_due(sum(sizes.values()), previous, 10):
            continue
        previous = cut(current, previous, at=T0 + timedelta(days=day))
        releases.append(previous)
    for one, other in combinations(releases, 2):
        a, b = shown_n(one), shown_n(other)
        for key in set(a) & set(b):
            assert a[key] == b[key] or abs(a[key] - b[key]) >= 10, (key, a[key], b[key])


def test_the_all_areas_series_hides_a_figure_that_moved_by_a_few() -> None:
    total = Sample.merge([area({"noord": 40}).total()])
    first = cut_all_areas(
        round_id=1, cut_at=T0, questions=ALL_QUESTIONS, total=total, previous=None, min_n=10
    )
    assert first.area_code == ALL_AREAS and "all_areas|leefbaarheid" not in first.hidden
    bigger = Sample.merge([area({"noord": 43}).total()])
    second = cut_all_areas(
        round_id=1, cut_at=T0, questions=ALL_QUESTIONS, total=bigger, previous=first, min_n=10
    )
    assert second.hidden["all_areas|leefbaarheid"] == "few_new"
    # An area's release shows the all-areas figure only where the all-areas release does.
    release = cut(area({"noord": 30}), all_areas=second)
    assert table_of(release).get("all_areas", TOTAL, "leefbaarheid", "mean").suppressed


# ---- what a digest of a release says --------------------------------------------------------


def text_of(release: Release, previous: Release | None = None, **kw: Any) -> str:
    digest = render_digest(table_of(release, previous, **kw), chart=False)
    return "\n".join(digest.messages)


def test_summary_at_the_top_names_the_change_the_lowest_grade_and_the_top_problem() -> None:
    first = cut(area({"noord": 40, "zuid": 30, "oost": 30}, seed=2))
    later = area({"noord": 90, "zuid": 60, "oost": 60}, seed=2)
    # Much worse grades among the new respondents: a change beyond chance.
    rng = random.Random(5)
    for hood, extra in (("noord", 50), ("zuid", 30), ("oost", 30)):
        worse = make_sample(rng, extra, shift=-3.0)
        later.neighbourhoods[hood] = Sample.merge([first.current.neighbourhoods[hood], worse])
        later.neighbourhoods[hood].questions.update(
            {
                q: area({hood: later.neighbourhoods[hood].started}, often={hood: 0.6})
                .neighbourhoods[hood]
                .questions[q]
                for q in ("nuisance_litter", "nuisance_dogs")
            }
        )
    second = cut(later, first)
    text = text_of(second, first)
    lines = text.splitlines()
    top = lines.index("<b>In het kort</b>")
    assert top == 4 and lines[3] == ""  # right after the title, round and "Cijfers tot"
    summary = lines[top + 1 : top + 4]
    assert (
        summary[0].startswith("• Grootste verandering: ") and "sinds de vorige digest" in summary[0]
    )
    assert summary[1].startswith("• Laagste rapportcijfer: ") and " in " in summary[1]
    assert summary[2].startswith("• Meest genoemd probleem: rommel op straat, 60%")
    # The first release of a series has nothing to compare with, and says so.
    assert "• Nog geen eerdere cijfers om mee te vergelijken." in text_of(first)


def test_problems_per_neighbourhood_only_where_the_threshold_allows() -> None:
    release = cut(area({"noord": 40, "zuid": 25, "oost": 4}, often={"noord": 0.5, "zuid": 0.2}))
    text = text_of(release)
    hoods = text.split("<b>Per buurt</b>")[1]
    lines = hoods.splitlines()
    noord = lines.index(next(li for li in lines if li.startswith("Noord:")))
    assert lines[noord + 1].strip() == "Problemen (vaak): rommel op straat 50% · hondenpoep 10%"
    assert any(li.startswith("Zuid:") for li in lines)
    # Oost (4) is too small, Zuid is hidden to protect it: no problems for either.
    assert "Oost: te weinig antwoorden" in lines
    assert "Zuid: verborgen om een kleinere buurt te beschermen" in lines
    assert hoods.count("Problemen (vaak)") == 1
    # The area's problems, most frequent first.
    block = text.split("<b>Problemen in de buurt</b>")[1].split("\n\n")[0]
    assert "1. Rommel op straat: vaak" in block and "2. Hondenpoep: vaak" in block


def test_hidden_labels_say_why() -> None:
    release = cut(area({"noord": 40, "zuid": 25, "oost": 4}))
    table = table_of(release)
    chart = chart_data(table)
    labels = [p.label for p in chart.panels[0].points]
    assert "Zuid:\nverborgen om een kleinere buurt te beschermen" in labels
    assert "Oost: te weinig antwoorden" in labels
    # A figure hidden because it moved by fewer than min_n since it was last shown.
    grown = cut(area({"noord": 45, "zuid": 35, "oost": 4}), release)
    text = text_of(grown, release)
    assert "Noord: te weinig nieuwe antwoorden sinds de vorige cijfers" in text


def test_below_the_threshold_one_short_message_and_nothing_else() -> None:
    release = cut(area({"noord": 6}))
    digest = render_digest(table_of(release), chart=True)
    assert digest.chart_png is None and digest.csv is None and len(digest.messages) == 1
    assert digest.messages[0].splitlines() == [
        "<b>Buurtstem-digest Testwijk</b>",
        "Ronde: Ronde · periode: p",
        "Cijfers tot 16-11-2026 01:00",
        "Nog te weinig antwoorden (minder dan 10) om cijfers te tonen.",
    ]


def test_reference_figures_beside_the_headline_with_their_source() -> None:
    refs = References(
        area="x",
        year=2023,
        source="CBS Veiligheidsmonitor 2023, tabel 1",
        city_name="Utrecht",
        figures=(
            Figure("VM.leefbaarheid_cijfer", "mean", 7.1, 7.6),
            Figure("VM.overlast_rommel", "share:vaak+soms", 0.71, None),
        ),
    )
    questions = [
        QuestionInfo(q.id, q.type, q.text, q.options, q.reverse, "VM.leefbaarheid_cijfer", q.label)
        if q.id == "leefbaarheid"
        else q
        for q in ALL_QUESTIONS
    ]
    release = cut(area({"noord": 40, "zuid": 30}))
    table = release_table(
        release,
        None,
        questions=questions,
        area_name="Testwijk",
        round_name="Ronde",
        period="p",
        as_of="",
        neighbourhood_names=HOODS,
        min_n=10,
        references=refs,
    )
    text = "\n".join(render_digest(table, chart=False).messages)
    grade = table.get("current", TOTAL, "leefbaarheid", "mean")
    assert grade.value is not None
    own = f"{grade.value:.1f}".replace(".", ",")
    assert f"Ter vergelijking (2023): hier {own} · Utrecht 7,1 · Nederland 7,6" in text
    assert "Ter vergelijking (2023): Vaak + Soms: hier 100% · Utrecht 71%" in text
    assert "Vergelijkingscijfers (2023): CBS Veiligheidsmonitor 2023, tabel 1" in text


# ---- comments by theme ------------------------------------------------------------------------


def test_keyword_themes_in_five_languages() -> None:
    assert classify("Er ligt overal afval en zwerfvuil") == ["litter"]
    assert classify("Too many cars parking on the pavement") == ["traffic"]
    assert classify("Parkta çok çöp var") == ["litter", "green"]
    assert classify("نريد حديقة للأطفال") == ["green", "youth"]
    assert classify("Za dużo hałasu w nocy") == ["nuisance"]
    assert classify("Evet, her şey yolunda") == [OTHER]  # 'ev' is a word, not a prefix
    assert classify("Meer parkeerplaatsen") == ["traffic"]  # not the park
    assert classify("Het park is mooi") == ["green"]
    assert classify("De huisarts is ver weg") == ["services"]


def test_comments_by_neighbourhood_and_theme_with_two_scrubbed_quotes_each() -> None:
    rows = []
    texts: dict[int, tuple[str, str]] = {}
    for i in range(12):
        text = f"Zoveel afval bij de flat, bel 0612345678 (melding {i})"
        rows.append((i, "noord", text, "nl", stamp(T0 + timedelta(hours=i)), classify(text)))
        texts[i] = (text, "nl")
    rows.append(
        (99, "oost", "Te veel hondenpoep op het gras", "nl", stamp(T0), ["nuisance", "green"])
    )
    texts[99] = ("Te veel hondenpoep op het gras", "nl")
    summary = CommentSummary().plus(rows)
    release = cut(area({"noord": 40, "zuid": 30, "oost": 4}), comments=summary)
    assert quote_ids(release, None) >= {11, 10}
    text = text_of(release, quote_texts=texts)
    block = text.split("<b>Opmerkingen</b>")[1]
    assert "13 opmerkingen: Nederlands 13." in block
    assert "<b>Noord</b>: afval en rommel 12 · wonen en onderhoud 12" in block
    # Two quotes per theme, the newest, scrubbed; a comment about both themes is quoted once.
    litter = next(li for li in block.splitlines() if li.strip().startswith("afval en rommel:"))
    housing = next(li for li in block.splitlines() if li.strip().startswith("wonen en onderhoud:"))
    assert "(melding 11)" in litter and "(melding 10)" in litter
    assert "(melding 9)" in housing and "(melding 8)" in housing
    assert block.count("[telefoon]") == 4 and "0612345678" not in block
    # Oost is too small to be shown apart, and the rest of the area has fewer than min_n
    # comments: its one comment is only counted in the total.
    assert "hondenpoep" not in block.lower()


def test_a_digest_quotes_only_comments_since_the_previous_release() -> None:
    old = CommentSummary().plus(
        [(1, "noord", "Meer bomen in de straat", "nl", stamp(T0), ["green"])]
    )
    first = cut(area({"noord": 40}), comments=old)
    new = old.plus(
        [
            (
                2,
                "noord",
                "Meer bankjes in het park",
                "nl",
                stamp(T0 + timedelta(days=2)),
                ["green", "services"],
            )
        ]
    )
    second = cut(area({"noord": 55}), first, at=T0 + timedelta(days=3), comments=new)
    assert quote_ids(second, first) == {2}
    period = second.comments.since(first.comments, stamp(first.cut_at))
    assert period.themes == {"noord": {"green": 1, "services": 1}} and period.total == 1
