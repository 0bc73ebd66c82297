"""The tick's fast paths give the same bytes as the plain ones they replace."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from digests.model import Cell, PublishedTable, QuestionCounts, QuestionInfo
from digests.stats import share_ci, wilson
from digests.suppression import measure_names
from digests.table import render_csv, render_csv_with_writer

AWKWARD = st.text(alphabet=st.sampled_from(list('ab;,"\r\n .é€')), max_size=8)
FIGURE = st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False), st.integers(-99, 99))


@st.composite
def tables(draw: st.DrawFn) -> PublishedTable:
    cells = []
    for _ in range(draw(st.integers(0, 6))):
        hidden = draw(st.booleans())
        cells.append(
            Cell(
                draw(AWKWARD),
                draw(AWKWARD),
                draw(AWKWARD),
                draw(AWKWARD),
                n=draw(st.one_of(st.none(), st.integers(0, 10**6))),
                value=draw(FIGURE),
                ci_low=draw(FIGURE),
                ci_high=draw(FIGURE),
                indicative=draw(st.booleans()),
                beyond_chance=draw(st.one_of(st.none(), st.booleans())),
                suppressed=draw(AWKWARD.filter(bool)) if hidden else None,
            )
        )
    return PublishedTable(
        area_code=draw(AWKWARD),
        area_name="x",
        round_name=draw(AWKWARD),
        period=draw(AWKWARD),
        questions=[],
        neighbourhoods=[],
        cells=cells,
        min_n=10,
        indicative_below=50,
    )


@settings(max_examples=300, deadline=None)
@given(tables(), st.booleans())
def test_csv_without_the_writer_is_byte_for_byte_the_writers(
    table: PublishedTable, excel_nl: bool
) -> None:
    assert render_csv(table, excel_nl=excel_nl) == render_csv_with_writer(table, excel_nl=excel_nl)


@given(st.integers(0, 500), st.integers(1, 500))
def test_wilson_is_share_ci(k: int, n: int) -> None:
    e = share_ci(min(k, n), n)
    assert wilson(min(k, n), n) == (e.value, e.low, e.high)


def test_measure_names_list_values_outside_the_options_after_them() -> None:
    q = QuestionInfo("trend", "single", {"nl": "?"}, [("op", {}), ("af", {})])
    assert measure_names(q) == ["share:op", "share:af"]
    assert measure_names(q, QuestionCounts({"op": 1})) == ["share:op", "share:af"]
    assert measure_names(q, QuestionCounts({"zz": 1, "op": 1, "aa": 2})) == [
        "share:op",
        "share:af",
        "share:aa",
        "share:zz",
    ]
    agree = QuestionInfo("c", "agree5", {"nl": "?"}, [("a", {}), ("b", {})])
    assert measure_names(agree) == ["share:agree", "share:a", "share:b"]
