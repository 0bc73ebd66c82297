"""Suppression: min_n bounds, secondary suppression, and attacks on what is published."""

from __future__ import annotations

import random

import pytest

from digests import build_digest
from digests.chart import chart_data
from digests.model import TOTAL, UNKNOWN, AreaCounts, DigestInput, PublishedTable, Sample
from digests.stats import Moments
from digests.suppression import check_min_n, publish, suppress_column
from digests.table import parse_csv, render_csv
from tests.test_digest_data import QUESTIONS, make_input, make_sample


def test_min_n_floor_is_5() -> None:
    assert check_min_n(5) == 5
    with pytest.raises(ValueError):
        check_min_n(4)
    with pytest.raises(ValueError):
        publish(make_input(), min_n=4)
    with pytest.raises(ValueError):
        suppress_column({"a": 10, TOTAL: 10}, 3)


def test_primary_threshold_and_indicative_flag() -> None:
    sizes = {"a": 9, "b": 4, "c": 10, "d": 60}
    table = publish(make_input(sizes, previous=False), min_n=10)
    assert table.get("current", "a", "leefbaarheid", "mean").suppressed == "min_n"
    assert table.get("current", "b", "leefbaarheid", "mean").suppressed == "min_n"
    c = table.get("current", "c", "leefbaarheid", "mean")
    d = table.get("current", "d", "leefbaarheid", "mean")
    assert c.shown and c.indicative and c.n == 10
    assert d.shown and not d.indicative
    # A larger min_n hides more.
    assert (
        not publish(make_input(sizes, previous=False), min_n=20)
        .get("current", "c", "leefbaarheid", "mean")
        .shown
    )


def test_secondary_hides_the_smallest_visible_when_one_is_hidden() -> None:
    reasons = suppress_column({"a": 40, "b": 30, "c": 6, TOTAL: 76}, 10)
    assert reasons == {"a": None, "b": "secondary", "c": "min_n", TOTAL: None}


def test_secondary_until_the_hidden_group_is_large_enough() -> None:
    reasons = suppress_column({"a": 50, "b": 30, "c": 3, "d": 4, TOTAL: 87}, 10)
    # c and d together are 7 people: b must go too.
    assert reasons["b"] == "secondary" and reasons["a"] is None


def test_zero_cells_do_not_count_as_cover() -> None:
    reasons = suppress_column({"a": 50, "z": 0, "c": 4, TOTAL: 54}, 10)
    # Only one non-empty part besides c: hiding a leaves nothing to show but the total,
    # which then equals a + c; hidden together they are 54 >= 10 so the total stays.
    assert reasons["a"] == "secondary"
    assert reasons[TOTAL] is None


def test_single_part_area_hides_total_rather_than_expose_it() -> None:
    reasons = suppress_column({"a": 12, TOTAL: 12}, 10, last={"a": 10, TOTAL: 10})
    assert reasons == {"a": "few_new", TOTAL: "few_new"}


def test_unknown_neighbourhood_is_a_cell_like_any_other() -> None:
    table = publish(make_input({"a": 40, "b": 30, UNKNOWN: 5}, previous=False))
    assert table.get("current", UNKNOWN, "leefbaarheid", "mean").suppressed == "min_n"
    assert table.get("current", "b", "leefbaarheid", "mean").suppressed == "secondary"


def test_area_below_min_n_shows_nothing_at_all() -> None:
    digest = build_digest(make_input({"a": 4, "b": 3}, previous=False))
    assert all(not c.shown for c in digest.table.cells if c.scope == "current")
    assert not digest.table.quotes and digest.table.comment_total == 0
    text = "\n".join(digest.messages)
    assert "te weinig antwoorden" in text.lower() and "opmerking" not in text.lower()


def _csv_cells(table: PublishedTable) -> dict[tuple[str, str, str, str], dict[str, str]]:
    rows = parse_csv(render_csv(table, excel_nl=False))
    return {(r["scope"], r["neighbourhood"], r["question"], r["measure"]): r for r in rows}


SIZES = {"vinkhuizen": 120, "paddepoel": 64, "selwerd": 35, "de_hoogte": 4, "beijum": 22}


def _attack(table: PublishedTable, question: str, measure: str) -> tuple[float, float] | None:
    """What an attacker gets from the CSV: n and value of (total minus visible neighbourhoods)."""
    cells = _csv_cells(table)
    total = cells[("current", TOTAL, question, measure)]
    if not total["n"]:
        return None
    n, s = int(total["n"]), int(total["n"]) * float(total["value"])
    for code, _ in table.neighbourhoods:
        row = cells[("current", code, question, measure)]
        if row["n"]:
            n -= int(row["n"])
            s -= int(row["n"]) * float(row["value"])
    return (n, s / n) if n else (0, 0.0)


@pytest.mark.parametrize(
    ("question", "measure"),
    [("respondents", "started"), ("leefbaarheid", "mean"), ("onveilig", "share:ja")],
)
def test_reconstructing_the_hidden_neighbourhood_fails(question: str, measure: str) -> None:
    data = make_input(SIZES, previous=False)
    table = publish(data)
    hidden = data.current.neighbourhoods["de_hoogte"]
    if question == "respondents":
        true_n, true_value = hidden.started, float(hidden.started)
    elif measure == "mean":
        m = Moments.from_counts(hidden.questions[question].counts)
        true_n, true_value = m.n, m.mean
    else:
        qc = hidden.questions[question]
        true_n, true_value = qc.n, qc.counts.get("ja", 0) / qc.n
    result = _attack(table, question, measure)
    assert result is not None
    residual_n, residual_value = result
    # The residual is a mix of at least two neighbourhoods and at least min_n people...
    assert residual_n >= table.min_n
    assert residual_n != true_n
    assert residual_value != pytest.approx(true_value, abs=1e-9)
    # ... and nothing published anywhere carries the hidden neighbourhood's own figure.
    for c in table.cells:
        if c.neighbourhood == "de_hoogte":
            assert not c.shown and c.value is None and c.n is None


def test_text_chart_and_csv_show_the_same_cells() -> None:
    data = make_input(SIZES, previous=False)
    digest = build_digest(data, chart=False)
    table = digest.table
    csv_cells = _csv_cells(table)
    chart = chart_data(table)
    text = "\n".join(digest.messages)
    for panel, q in zip(chart.panels, [q for q in QUESTIONS if q.type == "grade"], strict=False):
        for (code, name), point in zip(table.neighbourhoods, panel.points, strict=False):
            row = csv_cells[("current", code, q.id, "mean")]
            cell = table.get("current", code, q.id, "mean")
            assert cell is not None
            assert point.suppressed == (not cell.shown) == (row["value"] == "")
            line = next(li for li in text.splitlines() if li.startswith(name + ":"))
            # A hidden cell says why: too few answers, or hidden to protect a smaller one.
            why = {
                None: None,
                "min_n": "te weinig antwoorden",
                "secondary": "verborgen om een kleinere buurt te beschermen",
            }[cell.suppressed]
            assert (why is not None and why in line) == (not cell.shown), line
            assert why is None or why in point.label
    # Both hidden neighbourhoods, in all three renderings.
    hidden = {c.neighbourhood for c in table.cells if c.scope == "current" and not c.shown}
    assert hidden == {"de_hoogte", "beijum"}
    # The smaller one for too few answers, the other to protect it (not "too few answers").
    reasons = {
        c.neighbourhood: c.suppressed for c in table.cells if c.scope == "current" and not c.shown
    }
    assert reasons == {"de_hoogte": "min_n", "beijum": "secondary"}


def test_every_question_column_is_safe_with_random_sizes() -> None:
    rng = random.Random(3)
    for _ in range(25):
        sizes = {
            f"b{i}": rng.choice([0, 1, 3, 6, 9, 11, 14, 25, 60]) for i in range(rng.randint(2, 6))
        }
        table = publish(make_input(sizes, seed=rng.randint(0, 999), previous=False))
        for q in ["respondents", *[q.id for q in QUESTIONS if q.type != "text"]]:
            cells = [c for c in table.cells if c.scope == "current" and c.question == q]
            by_nbh = {c.neighbourhood: c for c in cells}
            if not by_nbh[TOTAL].shown:
                continue
            hidden_parts = [
                code
                for code, _ in table.neighbourhoods
                if not by_nbh[code].shown and sizes[code] > 0
            ]
            assert len(hidden_parts) != 1
            if hidden_parts:
                assert sum(sizes[c] for c in hidden_parts) >= table.min_n


def test_few_new_responses_since_last_digest_are_not_revealed() -> None:
    rng = random.Random(5)
    before = AreaCounts(
        {"a": make_sample(rng, 40), "b": make_sample(rng, 30), "c": make_sample(rng, 25)}
    )
    first = publish(_input(before))
    last = first.published_n()
    assert last["a|leefbaarheid"] == 40 and last[f"{TOTAL}|leefbaarheid"] == 95
    # Three new responses in a: the difference of the two digests would be those three.
    after = AreaCounts(
        {
            "a": Sample.merge([before.neighbourhoods["a"], make_sample(rng, 3)]),
            **{k: before.neighbourhoods[k] for k in ("b", "c")},
        }
    )
    second = publish(_input(after, previous=before.total()), last_published=last)
    assert second.get("current", "a", "leefbaarheid", "mean").suppressed == "few_new"
    assert second.get("current", TOTAL, "leefbaarheid", "mean").suppressed == "few_new"
    # And no change line can give it away either.
    change = second.get("change_previous_digest", TOTAL, "leefbaarheid", "mean")
    assert change is not None and not change.shown
    # Twelve more: now the new group is large enough and everything shows again.
    later = AreaCounts(
        {
            "a": Sample.merge([after.neighbourhoods["a"], make_sample(rng, 12)]),
            **{k: before.neighbourhoods[k] for k in ("b", "c")},
        }
    )
    third = publish(_input(later, previous=before.total()), last_published=last)
    assert third.get("current", "a", "leefbaarheid", "mean").shown
    change = third.get("change_previous_digest", TOTAL, "leefbaarheid", "mean")
    assert change is not None and change.shown and change.beyond_chance is not None


def test_hidden_group_that_grew_a_little_gets_more_cover() -> None:
    # a and c grew by 3 each (hidden), b by 12 (shown): total minus b would be 6 new people.
    reasons = suppress_column(
        {"a": 43, "b": 42, "c": 28, "d": 50, TOTAL: 163},
        10,
        last={"a": 40, "b": 30, "c": 25, "d": 50, TOTAL: 145},
    )
    assert reasons["a"] == reasons["c"] == "few_new"
    # Hiding b (the smallest visible) makes the hidden group grow by 18: enough.
    assert reasons["b"] == "secondary"
    assert reasons["d"] is None and reasons[TOTAL] is None


def test_comparison_with_all_areas_needs_enough_other_respondents() -> None:
    data = make_input({"a": 40, "b": 30}, previous=False)
    data.all_areas = Sample.merge([data.current.total(), make_sample(random.Random(1), 4)])
    table = publish(data)
    assert table.get("all_areas", TOTAL, "leefbaarheid", "mean").suppressed == "secondary"


def _input(area: AreaCounts, previous: Sample | None = None) -> DigestInput:
    return DigestInput(
        area_code="x",
        area_name="X",
        round_name="R",
        period="P",
        questions=QUESTIONS,
        current=area,
        neighbourhood_names={k: k.upper() for k in area.neighbourhoods},
        previous=previous,
    )
