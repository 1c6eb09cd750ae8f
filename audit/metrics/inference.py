"""Simultaneous intervals and their dual tests for group disparities.

Every disparity the fairness check reports is a maximum over comparisons of two groups:
Fairlearn's `between_groups` difference is max over pairs |p_i - p_j|, its ratio is
exp(-max over pairs |log p_i - log p_j|), differential fairness is the same max on smoothed
rates. A percentile bootstrap of such a max is biased upwards and cannot contain 0 (or 1), worst
for small groups. Here each comparison c gets a score-based interval I_c(z) -- Newcombe's hybrid
Wilson interval for a difference of rates, the MOVER construction on the log scale for a ratio,
mean +- z*se for means -- all at one Bonferroni level, so that with probability >= 1 - a every
I_c covers its truth, and then

    max_c |delta_c|  lies in  [max_c dist(0, I_c), max_c max(|lo_c|, |hi_c|)].

The interval always contains the point estimate (each I_c contains its own). The dual p-value
of a statistic is the smallest Bonferroni level at which its interval excludes the null value,
found by bisection over z, so that "significant at level a" and "the level-a interval excludes
the null" are the same statement.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Literal, Sequence

import numpy as np
from scipy.special import ndtri
from scipy.stats import norm

Correction = Literal["holm", "bonferroni", "none"]
Z_MAX = 38.0  # norm.sf(38) ~ 3e-316: beyond it a p-value is 0 in double precision


def z_for(level: float, comparisons: int = 1) -> float:
    """Normal quantile for a two-sided `level` (1 - confidence) spread over `comparisons` (Bonferroni)."""
    return float(-ndtri(level / (2 * max(1, comparisons))))


def wilson(x: np.ndarray, n: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for x successes in n trials (NaN where n = 0)."""
    x, n = np.asarray(x, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        z2n = z * z / n
        centre = (p + z2n / 2) / (1 + z2n)
        half = z / (1 + z2n) * np.sqrt(np.maximum(p * (1 - p) / n + z2n / (4 * n), 0.0))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


@dataclass(frozen=True)
class RateDifferences:
    """p1 - p2 for comparisons of two binomial rates x1/n1 and x2/n2 (Newcombe 1998, method 10)."""

    x1: np.ndarray
    n1: np.ndarray
    x2: np.ndarray
    n2: np.ndarray

    @property
    def size(self) -> int:
        return int(np.size(self.x1))

    def interval(self, z: float) -> tuple[np.ndarray, np.ndarray]:
        p1, p2 = np.asarray(self.x1) / self.n1, np.asarray(self.x2) / self.n2
        l1, u1 = wilson(self.x1, self.n1, z)
        l2, u2 = wilson(self.x2, self.n2, z)
        d = p1 - p2
        return d - np.hypot(p1 - l1, u2 - p2), d + np.hypot(u1 - p1, p2 - l2)


@dataclass(frozen=True)
class RateLogRatios:
    """log(p1 / p2) by MOVER on the log scale with Wilson limits (Zou & Donner 2008).

    Point rates are (x + add) / (n + add_n): plain rates by default, the Dirichlet-smoothed rates of
    differential fairness otherwise (the limits are widened to contain such a point, which matters only
    at the small z of a p-value search). A zero rate falls back to the Wilson limits themselves: log(u1 / l2)."""

    x1: np.ndarray
    n1: np.ndarray
    x2: np.ndarray
    n2: np.ndarray
    add: float = 0.0
    add_n: float = 0.0

    @property
    def size(self) -> int:
        return int(np.size(self.x1))

    def interval(self, z: float) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            q1 = np.log((np.asarray(self.x1, dtype=float) + self.add) / (np.asarray(self.n1) + self.add_n))
            q2 = np.log((np.asarray(self.x2, dtype=float) + self.add) / (np.asarray(self.n2) + self.add_n))
            l1, u1 = (np.log(v) for v in wilson(self.x1, self.n1, z))
            l2, u2 = (np.log(v) for v in wilson(self.x2, self.n2, z))
            if self.add or self.add_n:  # at small z a smoothed point can lie outside the Wilson limits
                l1, u1, l2, u2 = np.fmin(l1, q1), np.fmax(u1, q1), np.fmin(l2, q2), np.fmax(u2, q2)
            d = q1 - q2
            lo = d - np.hypot(q1 - l1, u2 - q2)
            hi = d + np.hypot(u1 - q1, q2 - l2)
            zero = ~np.isfinite(d)
            return np.where(zero, l1 - u2, lo), np.where(zero, u1 - l2, hi)


@dataclass(frozen=True)
class NormalDifferences:
    """Signed estimates with standard errors: estimate +- z * se (means of >= 30 rows, BiasAmp)."""

    estimate: np.ndarray
    se: np.ndarray

    @property
    def size(self) -> int:
        return int(np.size(self.estimate))

    def interval(self, z: float) -> tuple[np.ndarray, np.ndarray]:
        e, s = np.asarray(self.estimate, dtype=float), np.asarray(self.se, dtype=float)
        return e - z * s, e + z * s


Comparisons = RateDifferences | RateLogRatios | NormalDifferences


def max_abs_interval(parts: Sequence[Comparisons], z: float) -> tuple[float, float]:
    """Interval for max_c |delta_c| over every comparison of `parts` at one z (NaN comparisons skipped)."""
    los, his = zip(*(p.interval(z) for p in parts)) if parts else ((), ())
    lo = np.concatenate([np.ravel(v) for v in los]) if los else np.zeros(0)
    hi = np.concatenate([np.ravel(v) for v in his]) if his else np.zeros(0)
    ok = ~(np.isnan(lo) | np.isnan(hi))
    if not ok.any():
        return float("nan"), float("nan")
    lo, hi = lo[ok], hi[ok]
    distance = np.where(lo > 0, lo, np.where(hi < 0, -hi, 0.0))
    return float(distance.max()), float(np.maximum(np.abs(lo), np.abs(hi)).max())


def _bisect(excludes: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...], iterations: int = 32) -> np.ndarray:
    """Per element, the largest z at which `excludes(z)` still holds (0 where it never does)."""
    lo, hi = np.full(shape, 1e-9), np.full(shape, Z_MAX)
    never, always = ~excludes(lo), excludes(hi)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        ok = excludes(mid)
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    return np.where(never, 0.0, np.where(always, Z_MAX, lo))


def _comparison_z(parts: Sequence[Comparisons]) -> float:
    """max over comparisons of the largest z at which that comparison's interval excludes 0."""
    best = 0.0
    for part in parts:
        if part.size:
            def excludes(z: np.ndarray, part: Comparisons = part) -> np.ndarray:
                lo, hi = part.interval(z)
                return (lo > 0) | (hi < 0)
            best = max(best, float(np.max(_bisect(excludes, (part.size,)))))
    return best


@dataclass(frozen=True)
class Statistic:
    """A reported statistic whose interval is built from `comparisons` comparisons at a common z.

    `interval_at(z)` is the interval on the reported scale when every comparison is taken at z;
    `null` is the value of no disparity (0 for differences, 1 for ratios). When the statistic
    excludes its null exactly when one of `parts`' comparisons excludes 0 (a max over comparisons),
    the dual p-value is found for all comparisons at once."""

    interval_at: Callable[[float], tuple[float, float]]
    comparisons: int
    null: float
    method: str
    parts: tuple[Comparisons, ...] | None = None

    def interval(self, level: float) -> tuple[float, float]:
        """The interval with coverage >= 1 - level for this statistic (Bonferroni over its comparisons)."""
        return self.interval_at(z_for(level, self.comparisons))

    @cached_property
    def p_value(self) -> float:
        """Smallest level (Bonferroni over the comparisons) at which the interval excludes the null
        (z to within 1e-8, so the p-value to a relative 1e-6)."""
        if self.comparisons < 1 or np.isnan(self.interval_at(0.0)).any():
            return 1.0
        if self.parts is not None:
            z = _comparison_z(self.parts)
        else:
            def excludes(z: np.ndarray) -> np.ndarray:
                lo, hi = self.interval_at(float(z[0]))
                return np.array([lo > self.null or hi < self.null])
            z = float(_bisect(excludes, (1,))[0])
        return 1.0 if z == 0.0 else float(min(1.0, self.comparisons * 2 * norm.sf(z)))


def max_abs_statistic(parts: Sequence[Comparisons], method: str) -> Statistic:
    """max_c |delta_c|, e.g. max |p_i - p_j| (Fairlearn between_groups difference); null 0."""
    return Statistic(lambda z: max_abs_interval(parts, z), sum(p.size for p in parts), 0.0, method, tuple(parts))


def ratio_statistic(parts: Sequence[RateLogRatios | NormalDifferences], method: str) -> Statistic:
    """min p_i / p_j = exp(-max |log p_i - log p_j|) from log-ratio comparisons (Fairlearn between_groups
    ratio); null 1."""
    def at(z: float) -> tuple[float, float]:
        lo, hi = max_abs_interval(parts, z)
        return float(np.exp(-hi)), float(np.exp(-lo))
    return Statistic(at, sum(p.size for p in parts), 1.0, method, tuple(parts))


def signed_statistic(part: NormalDifferences, method: str) -> Statistic:
    """A single signed estimate +- z se; null 0."""
    return Statistic(lambda z: tuple(float(v[0]) for v in part.interval(z)), part.size, 0.0, method)


def difference_of(a: Statistic, b: Statistic, method: str) -> Statistic:
    """a - b with both intervals at the same z (Bonferroni over the comparisons of both); null 0."""
    def at(z: float) -> tuple[float, float]:
        (alo, ahi), (blo, bhi) = a.interval_at(z), b.interval_at(z)
        return alo - bhi, ahi - blo
    return Statistic(at, a.comparisons + b.comparisons, 0.0, method)


def adjust(p_values: Sequence[float], correction: Correction) -> np.ndarray:
    """Family-wise adjusted p-values: Holm's step-down, Bonferroni, or none."""
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if correction == "none" or m == 0:
        return p.copy()
    if correction == "bonferroni":
        return np.minimum(1.0, p * m)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(np.minimum(1.0, p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = stepped
    return out


def pairs(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (i, j), i < j, of every pair among k items."""
    i, j = np.triu_indices(k, 1)
    return i, j
