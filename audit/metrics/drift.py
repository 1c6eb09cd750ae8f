"""Distribution shift between a baseline sample and a monitoring window: pure functions.

Effect sizes (PSI, Jensen-Shannon distance) are computed on bins fixed by the baseline (deciles of a
numeric feature; the union of categories otherwise; missing values are a bin of their own). Tests:
two-sample Kolmogorov-Smirnov for numeric values, the chi-square test of homogeneity (its permutation
version when an expected count is below 5) for binned or categorical counts. PSI is biased upwards
(sampling noise alone makes it positive), so its bootstrap interval uses the bias-corrected lower
limit, which drops to 0 when the test does not reject (`intervals.bootstrap_interval`). Everything is computed
from counts that add up over chunks (`numeric_counts`, `category_counts`, `ks_cells`), so a window streamed in
pieces gives the numbers it would give in one piece; the KS statistic from counts is exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon

from .data_quality import independence_p
from .intervals import bootstrap_interval

EPS = 1e-4  # floor on a bin's share in PSI: an empty bin would make it infinite
MISSING = "(missing)"


@dataclass(frozen=True)
class BinnedCounts:
    labels: list[str]
    baseline: np.ndarray
    window: np.ndarray


def numeric_edges(base: pd.Series, bins: int) -> np.ndarray:
    """Inner edges of the baseline's quantile bins (ties merged)."""
    b = pd.to_numeric(base, errors="coerce").to_numpy(dtype=float)
    return np.unique(np.nanquantile(b, np.linspace(0, 1, bins + 1)[1:-1])) if (~np.isnan(b)).any() else np.array([])


def numeric_counts(values: pd.Series, edges: np.ndarray) -> np.ndarray:
    """Rows per bin (right-closed, as the labels say), then the missing values: additive over chunks."""
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    idx = np.searchsorted(edges, v[~np.isnan(v)], side="right")
    return np.append(np.bincount(idx, minlength=len(edges) + 1), np.isnan(v).sum())


def numeric_labels(edges: np.ndarray) -> list[str]:
    labels = [f"<= {edges[0]:.4g}"] if len(edges) else ["all"]
    labels += [f"({lo:.4g}, {hi:.4g}]" for lo, hi in zip(edges[:-1], edges[1:])]
    labels += [f"> {edges[-1]:.4g}"] if len(edges) else []
    return labels + [MISSING]


def _numeric_bins(base: pd.Series, window: pd.Series, bins: int) -> BinnedCounts:
    edges = numeric_edges(base, bins)
    return BinnedCounts(numeric_labels(edges), numeric_counts(base, edges), numeric_counts(window, edges))


def category_counts(values: pd.Series) -> pd.Series:
    """Rows per category as text, missing values as a category of their own: additive over chunks."""
    counts = values.value_counts(dropna=False)
    labels = [MISSING if pd.isna(v) else str(v) for v in counts.index]
    return counts.groupby(labels, sort=False).sum()


def counts_of(base: pd.Series, window: pd.Series) -> BinnedCounts:
    """Both samples' category counts on the union of their categories."""
    labels = sorted(set(base.index) | set(window.index))
    return BinnedCounts(labels, base.reindex(labels, fill_value=0).to_numpy(), window.reindex(labels, fill_value=0).to_numpy())


def _categorical_bins(base: pd.Series, window: pd.Series) -> BinnedCounts:
    return counts_of(category_counts(base), category_counts(window))


def drop_empty(c: BinnedCounts) -> BinnedCounts:
    keep = (c.baseline + c.window) > 0
    return BinnedCounts([lab for lab, k in zip(c.labels, keep) if k], c.baseline[keep], c.window[keep])


def binned(base: pd.Series, window: pd.Series, numeric: bool, bins: int = 10) -> BinnedCounts:
    """Counts per bin, dropping bins empty in both samples."""
    return drop_empty(_numeric_bins(base, window, bins) if numeric else _categorical_bins(base, window))


def psi(base_counts: np.ndarray, window_counts: np.ndarray) -> np.ndarray:
    """Population stability index, sum (q - p) ln(q / p) over bins, shares floored at EPS; rows are replicates."""
    p = np.maximum(np.atleast_2d(base_counts) / np.atleast_2d(base_counts).sum(-1, keepdims=True), EPS)
    q = np.maximum(np.atleast_2d(window_counts) / np.atleast_2d(window_counts).sum(-1, keepdims=True), EPS)
    return ((q - p) * np.log(q / p)).sum(-1)


def js_distance(base_counts: np.ndarray, window_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2: 0 identical, 1 disjoint)."""
    return float(jensenshannon(base_counts / base_counts.sum(), window_counts / window_counts.sum(), base=2))


def homogeneity_p(base_counts: np.ndarray, window_counts: np.ndarray) -> float:
    return independence_p(np.column_stack([base_counts, window_counts]).T)


@dataclass(frozen=True)
class KsGrid:
    """The baseline's sorted distinct values and its ECDF at them: against it, a window's two cell counts give the
    exact two-sample KS statistic (between two baseline values the baseline ECDF is flat, so the supremum sits at
    a baseline value or just below the next one)."""

    values: np.ndarray
    cdf: np.ndarray
    n: int


def ks_grid(base: pd.Series) -> KsGrid:
    b = pd.to_numeric(base, errors="coerce").dropna().to_numpy(dtype=float)
    values, counts = np.unique(b, return_counts=True)
    return KsGrid(values, np.cumsum(counts) / max(len(b), 1), len(b))


def ks_cells(grid: KsGrid, window: pd.Series) -> np.ndarray:
    """(2, K+1): how many window values lie below each baseline value, and at or below it, then the count of
    non-missing values: additive over chunks."""
    w = np.sort(pd.to_numeric(window, errors="coerce").dropna().to_numpy(dtype=float))
    return np.stack([np.append(np.searchsorted(w, grid.values, side="left"), len(w)),
                     np.append(np.searchsorted(w, grid.values, side="right"), len(w))])


def ks_from_cells(grid: KsGrid, cells: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic and p-value on the non-missing values, equal to scipy's `ks_2samp` on the rows the
    cells count (conservative with ties, as scipy)."""
    n = int(cells[0, -1])
    if grid.n == 0 or n == 0:
        return 0.0, 1.0
    below, at_or_below = cells[0, :-1] / n, cells[1, :-1] / n
    d = float(max(np.abs(grid.cdf - at_or_below).max(), np.abs(np.r_[0.0, grid.cdf[:-1]] - below).max()))
    return d, ks_p_value(d, grid.n, n)


def ks_p_value(d: float, n1: int, n2: int) -> float:
    """scipy's two-sided p-value for a two-sample KS statistic: exact up to 10,000 rows, Smirnov's beyond."""
    from scipy.stats import kstwo
    if max(n1, n2) <= 10_000:
        from math import gcd
        from scipy.stats._stats_py import _attempt_exact_2kssamp  # the exact path of ks_2samp itself
        ok, _, p = _attempt_exact_2kssamp(n1, n2, gcd(n1, n2), d, "two-sided")
        if ok:
            return float(np.clip(p, 0, 1))
    m, k = sorted([float(n1), float(n2)], reverse=True)
    return float(np.clip(kstwo.sf(d, np.round(m * k / (m + k))), 0, 1))


def psi_interval(c: BinnedCounts, rng: np.random.Generator, n_boot: int, confidence: float,
                 zero_p: float) -> tuple[float, float]:
    """Multinomial bootstrap of both samples' bin counts; bias-corrected (see the module docstring)."""
    nb, nw = int(c.baseline.sum()), int(c.window.sum())
    rb = rng.multinomial(nb, c.baseline / nb, size=n_boot)
    rw = rng.multinomial(nw, c.window / nw, size=n_boot)
    point = float(psi(c.baseline, c.window)[0])
    return bootstrap_interval(point, psi(rb, rw), confidence, biased_upwards=True, zero_p_value=zero_p)


def two_rate_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Fisher's exact test of two binomial rates."""
    return independence_p(np.array([[n1 - x1, x1], [n2 - x2, x2]]))


NUMERIC_TEST = "two-sample Kolmogorov-Smirnov, and Fisher's test of the missing share (Bonferroni)"
CATEGORICAL_TEST = "chi-square test of homogeneity"


@dataclass(frozen=True)
class FeatureDrift:
    counts: BinnedCounts
    psi: float
    ci: tuple[float, float]
    js: float
    p: float
    test: str


def feature_drift(base: pd.Series, window: pd.Series, numeric: bool, rng: np.random.Generator, *, bins: int = 10,
                  n_boot: int = 500, confidence: float = 0.95) -> FeatureDrift:
    """One feature's shift from counts (what the monitoring check computes per input, chunk by chunk): PSI with its
    interval and Jensen-Shannon distance on the baseline's bins, and the test (KS with the missing share for
    numeric values, chi-square of homogeneity for categories)."""
    if numeric:
        edges, grid = numeric_edges(base, bins), ks_grid(base)
        counts = drop_empty(BinnedCounts(numeric_labels(edges), numeric_counts(base, edges), numeric_counts(window, edges)))
        _, p = ks_from_cells(grid, ks_cells(grid, window))
        missing_p = two_rate_p(int(base.isna().sum()), len(base), int(window.isna().sum()), len(window))
        p, test = min(1.0, 2 * min(p, missing_p)), NUMERIC_TEST
    else:
        counts = drop_empty(counts_of(category_counts(base), category_counts(window)))
        p, test = homogeneity_p(counts.baseline, counts.window), CATEGORICAL_TEST
    return FeatureDrift(counts, float(psi(counts.baseline, counts.window)[0]),
                        psi_interval(counts, rng, n_boot, confidence, p), js_distance(counts.baseline, counts.window),
                        p, test)
