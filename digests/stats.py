"""Statistics from value counts: means with 95% CI, shares, Welch and two-proportion tests."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Z_975 = 1.959963984540054
# Two-sided 95% critical values of Student's t for df = 1..30 (standard tables).
_T_975 = (
    12.706204736,
    4.302652730,
    3.182446305,
    2.776445105,
    2.570581836,
    2.446911851,
    2.364624252,
    2.306004135,
    2.262157163,
    2.228138852,
    2.200985160,
    2.178812830,
    2.160368656,
    2.144786688,
    2.131449546,
    2.119905299,
    2.109815578,
    2.100922040,
    2.093024054,
    2.085963447,
    2.079613845,
    2.073873068,
    2.068657610,
    2.063898562,
    2.059538553,
    2.055529439,
    2.051830516,
    2.048407142,
    2.045229642,
    2.042272456,
)


def _t_expansion(df: float) -> float:
    # Cornish-Fisher expansion of t around the normal quantile (Abramowitz & Stegun 26.7.5);
    # better than 1e-5 from df 30 on, so no scipy is needed.
    z = Z_975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def t_critical(df: float) -> float:
    """The 97.5% quantile of Student's t with `df` degrees of freedom (df >= 1, may be fractional)."""
    if df < 1:
        raise ValueError("degrees of freedom must be at least 1")
    if df >= 30:
        return _t_expansion(df)
    low = math.floor(df)
    if low == df:
        return _T_975[low - 1]
    # Interpolate linearly in 1/df, which is nearly linear for the t quantile.
    a, b = _T_975[low - 1], _T_975[low]
    w = (1 / low - 1 / df) / (1 / low - 1 / (low + 1))
    return a + w * (b - a)


@dataclass(frozen=True)
class Moments:
    """n, sum and sum of squares of numeric answers: all a mean, variance and CI need."""

    n: int
    total: float
    total_sq: float

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], low: int = 1, high: int = 10) -> Moments:
        """From value -> responses; keys outside low..high (e.g. "weet niet") are left out."""
        n, s, sq = 0, 0.0, 0.0
        for key, count in counts.items():
            try:
                value = int(key)
            except ValueError:
                continue
            if low <= value <= high and count > 0:
                n += count
                s += value * count
                sq += value * value * count
        return cls(n, s, sq)

    @classmethod
    def from_values(cls, values: Iterable[float]) -> Moments:
        """From raw values (tests and small inputs)."""
        vals = list(values)
        return cls(len(vals), float(sum(vals)), float(sum(v * v for v in vals)))

    def minus(self, other: Moments) -> Moments:
        """The moments of the values in self but not in other."""
        return Moments(self.n - other.n, self.total - other.total, self.total_sq - other.total_sq)

    @property
    def mean(self) -> float:
        """Arithmetic mean (nan when empty)."""
        return self.total / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """Sample variance (n - 1 in the denominator); nan below 2 values."""
        if self.n < 2:
            return math.nan
        # Clamp: floating-point cancellation can give a tiny negative value.
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% confidence interval."""

    value: float
    low: float
    high: float
    n: int


def mean_ci(m: Moments) -> Estimate:
    """Mean with a t-based 95% CI (the interval collapses to the mean when n < 2)."""
    if m.n == 0:
        raise ValueError("no values")
    if m.n < 2:
        return Estimate(m.mean, m.mean, m.mean, m.n)
    half = t_critical(m.n - 1) * math.sqrt(m.variance / m.n)
    return Estimate(m.mean, m.mean - half, m.mean + half, m.n)


def share_ci(k: int, n: int) -> Estimate:
    """Share k/n with a Wilson score 95% CI (behaves well near 0% and 100% and for small n)."""
    p, low, high = wilson(k, n)
    return Estimate(p, low, high, n)


def wilson(k: int, n: int) -> tuple[float, float, float]:
    """share_ci as a plain (share, low, high): the form the digest's hot loop uses."""
    if n <= 0:
        raise ValueError("no responses")
    p = k / n
    z2 = Z_975 * Z_975
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_975 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Change:
    """A difference (a minus b) with its 95% CI and whether it is beyond chance at 5%."""

    diff: float
    low: float
    high: float
    beyond_chance: bool
    statistic: float


def welch(a: Moments, b: Moments) -> Change:
    """Welch's two-sample t-test for means a - b (unequal variances)."""
    if a.n < 2 or b.n < 2:
        raise ValueError("Welch's test needs at least 2 values per sample")
    diff = a.mean - b.mean
    va, vb = a.variance / a.n, b.variance / b.n
    se = math.sqrt(va + vb)
    if se == 0:
        # Both samples without spread: any difference is real, none is chance.
        return Change(diff, diff, diff, diff != 0, math.inf if diff else 0.0)
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    half = t_critical(max(1.0, df)) * se
    t = diff / se
    return Change(diff, diff - half, diff + half, abs(diff) > half, t)


def two_proportions(k1: int, n1: int, k2: int, n2: int) -> Change:
    """Two-proportion z-test (pooled) for shares k1/n1 - k2/n2; CI is the unpooled Wald one."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both samples need responses")
    p1, p2 = k1 / n1, k2 / n2
    diff = p1 - p2
    pooled = (k1 + k2) / (n1 + n2)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = diff / se0 if se0 else 0.0
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return Change(diff, diff - Z_975 * se, diff + Z_975 * se, abs(z) > Z_975, z)
