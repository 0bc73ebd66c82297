"""Digest statistics against values computed by hand (no scipy)."""

from __future__ import annotations

import math

import pytest

from digests.stats import (
    Moments,
    mean_ci,
    share_ci,
    t_critical,
    two_proportions,
    welch,
)

# 10 grades: sum 70, sum of squares 502, so mean 7 and variance (502 - 490) / 9 = 4/3.
GRADES = [6, 7, 8, 7, 6, 8, 9, 5, 7, 7]


def test_moments_from_counts_equal_moments_from_values() -> None:
    counts = {"5": 1, "6": 2, "7": 4, "8": 2, "9": 1, "weet_niet": 3}
    m = Moments.from_counts(counts)
    assert m == Moments.from_values(GRADES)
    assert (m.n, m.total, m.total_sq) == (10, 70.0, 502.0)
    assert m.mean == 7.0
    assert m.variance == pytest.approx(4 / 3)


def test_mean_ci_uses_t_with_n_minus_1_degrees() -> None:
    e = mean_ci(Moments.from_values(GRADES))
    # se = sqrt(4/3 / 10) = 0.3651484; t(9) = 2.262157; half width 0.8260224.
    assert e.value == 7.0
    assert e.low == pytest.approx(7 - 0.8260224, abs=1e-6)
    assert e.high == pytest.approx(7 + 0.8260224, abs=1e-6)
    assert e.n == 10


def test_mean_ci_single_value_and_empty() -> None:
    e = mean_ci(Moments.from_values([8]))
    assert (e.low, e.value, e.high) == (8, 8, 8)
    with pytest.raises(ValueError):
        mean_ci(Moments(0, 0, 0))


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.706204736), (9, 2.262157163), (30, 2.042272456), (40, 2.021075383), (120, 1.979930405)],
)
def test_t_critical_matches_tables(df: float, expected: float) -> None:
    assert t_critical(df) == pytest.approx(expected, abs=1e-6)


def test_t_critical_fractional_df_lies_between_neighbours_and_tends_to_z() -> None:
    assert t_critical(12) > t_critical(12.5) > t_critical(13)
    assert t_critical(1e7) == pytest.approx(1.959964, abs=1e-5)
    with pytest.raises(ValueError):
        t_critical(0.5)


def test_welch_beyond_chance_by_hand() -> None:
    a = Moments.from_values(GRADES)  # mean 7, var 4/3, n 10
    b = Moments.from_values([4, 5, 6, 5, 5])  # mean 5, var 0.5, n 5
    c = welch(a, b)
    # se = sqrt(0.133333 + 0.1) = 0.4830459; t = 2 / se = 4.140393
    # df = 0.233333^2 / (0.133333^2/9 + 0.1^2/4) = 12.1655; t crit (interpolated) = 2.17555
    assert c.diff == 2.0
    assert c.statistic == pytest.approx(4.140393, abs=1e-5)
    assert c.high - c.diff == pytest.approx(2.17555 * 0.4830459, rel=1e-4)
    assert c.beyond_chance


def test_welch_within_chance() -> None:
    a = Moments.from_values(GRADES)
    b = Moments.from_values([6, 7, 8, 7, 6, 8, 9, 5, 6, 7])  # mean 6.9
    c = welch(a, b)
    assert c.diff == pytest.approx(0.1)
    assert not c.beyond_chance
    assert c.low < 0 < c.high


def test_welch_without_spread() -> None:
    assert welch(Moments.from_values([7, 7]), Moments.from_values([6, 6])).beyond_chance
    assert not welch(Moments.from_values([7, 7]), Moments.from_values([7, 7])).beyond_chance
    with pytest.raises(ValueError):
        welch(Moments.from_values([7]), Moments.from_values([6, 6]))


def test_two_proportions_by_hand() -> None:
    # pooled p = 0.525; se0 = sqrt(0.525 * 0.475 * 0.02) = 0.0706222; z = 0.15 / se0 = 2.12398
    c = two_proportions(60, 100, 45, 100)
    assert c.statistic == pytest.approx(2.12398, abs=1e-5)
    assert c.beyond_chance
    # z = 0.10 / 0.0707107 = 1.41421: within the margin of chance
    c2 = two_proportions(55, 100, 45, 100)
    assert c2.statistic == pytest.approx(math.sqrt(2), abs=1e-5)
    assert not c2.beyond_chance
    assert not two_proportions(0, 10, 0, 20).beyond_chance


def test_share_ci_wilson() -> None:
    e = share_ci(0, 10)
    # Wilson upper bound at k = 0: z^2 / (n + z^2) = 3.841459 / 13.841459
    assert e.low == 0.0
    assert e.high == pytest.approx(3.841459 / 13.841459, abs=1e-6)
    half = share_ci(50, 100)
    assert half.value == 0.5
    assert half.low == pytest.approx(1 - half.high)
    with pytest.raises(ValueError):
        share_ci(1, 0)
