"""Distribution shift between a baseline sample and a monitoring window: pure functions.

Effect sizes (PSI, Jensen-Shannon distance) are computed on bins fixed by the baseline (deciles of a
numeric feature; the union of categories otherwise; missing values are a bin of their own). Tests:
two-sample Kolmogorov-Smirnov for numeric values, the chi-square test of homogeneity (its permutation
version when an expected count is below 5) for binned or categorical counts. PSI is biased upwards
(sampling noise alone makes it positive), so its bootstrap interval uses the bias-corrected lower
limit, which drops to 0 when the test does not reject (`intervals.bootstrap_interval`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
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


def _numeric_bins(base: pd.Series, window: pd.Series, bins: int) -> BinnedCounts:
    b, w = pd.to_numeric(base, errors="coerce"), pd.to_numeric(window, errors="coerce")
    edges = np.unique(np.nanquantile(b.to_numpy(dtype=float), np.linspace(0, 1, bins + 1)[1:-1])) if b.notna().any() else np.array([])
    def count(x: pd.Series) -> np.ndarray:
        v = x.to_numpy(dtype=float)
        idx = np.searchsorted(edges, v[~np.isnan(v)], side="right")
        return np.append(np.bincount(idx, minlength=len(edges) + 1), np.isnan(v).sum())
    labels = [f"<= {edges[0]:.4g}"] if len(edges) else ["all"]
    labels += [f"({lo:.4g}, {hi:.4g}]" for lo, hi in zip(edges[:-1], edges[1:])]
    labels += [f"> {edges[-1]:.4g}"] if len(edges) else []
    return BinnedCounts(labels + [MISSING], count(b), count(w))


def _categorical_bins(base: pd.Series, window: pd.Series) -> BinnedCounts:
    b, w = base.astype(object).where(base.notna(), MISSING).astype(str), window.astype(object).where(window.notna(), MISSING).astype(str)
    labels = sorted(set(b) | set(w))
    cb, cw = b.value_counts(), w.value_counts()
    return BinnedCounts(labels, cb.reindex(labels, fill_value=0).to_numpy(), cw.reindex(labels, fill_value=0).to_numpy())


def binned(base: pd.Series, window: pd.Series, numeric: bool, bins: int = 10) -> BinnedCounts:
    """Counts per bin, dropping bins empty in both samples."""
    c = _numeric_bins(base, window, bins) if numeric else _categorical_bins(base, window)
    keep = (c.baseline + c.window) > 0
    return BinnedCounts([lab for lab, k in zip(c.labels, keep) if k], c.baseline[keep], c.window[keep])


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


def ks_p(base: pd.Series, window: pd.Series) -> tuple[float, float]:
    """Two-sample KS statistic and p-value on the non-missing values (conservative with ties)."""
    b = pd.to_numeric(base, errors="coerce").dropna().to_numpy(dtype=float)
    w = pd.to_numeric(window, errors="coerce").dropna().to_numpy(dtype=float)
    if len(b) == 0 or len(w) == 0:
        return 0.0, 1.0
    r = stats.ks_2samp(b, w)
    return float(r.statistic), float(r.pvalue)


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
    """One feature's shift: PSI with its interval and Jensen-Shannon distance on the baseline's bins, and the test
    (KS with the missing share for numeric values, chi-square of homogeneity for categories)."""
    counts = binned(base, window, numeric, bins)
    if numeric:
        _, p = ks_p(base, window)
        missing_p = two_rate_p(int(base.isna().sum()), len(base), int(window.isna().sum()), len(window))
        p, test = min(1.0, 2 * min(p, missing_p)), NUMERIC_TEST
    else:
        p, test = homogeneity_p(counts.baseline, counts.window), CATEGORICAL_TEST
    return FeatureDrift(counts, float(psi(counts.baseline, counts.window)[0]),
                        psi_interval(counts, rng, n_boot, confidence, p), js_distance(counts.baseline, counts.window),
                        p, test)
