"""Intervals and tests for the fairness statistics, from the (group x y x y_hat) count table.

Per-group rates get Wilson intervals; every between-groups disparity is a `Statistic` built from
pairwise comparisons (`audit.metrics.inference`); group-vs-reference comparisons are simultaneous
over the groups compared; BiasAmp-> gets a Wald interval with its analytic standard error (the
direction y_at is fixed, so it is a weighted sum of within-group means).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from . import inference as inf
from .fairness import PARITY

CI_METHODS = {
    "rate": "Wilson score interval per group",
    "difference": "max over group pairs of Newcombe hybrid-score intervals (Bonferroni over pairs)",
    "ratio": "min over group pairs of MOVER log-ratio intervals with Wilson limits (Bonferroni over pairs)",
    "reference": "Newcombe (difference) and MOVER log-ratio (ratio) intervals, simultaneous over the groups "
                 "compared with the reference (Bonferroni)",
    "biasamp": "Wald interval with the analytic standard error (direction from training labels held fixed)",
    "df_amplification": "difference of the simultaneous intervals of both epsilons (max over group pairs and "
                        "outcomes of MOVER log-ratio intervals on the smoothed rates)",
    "mean_difference": "max over group pairs of Welch normal intervals (Bonferroni over pairs)",
    "mean_ratio": "min over group pairs of delta-method log-ratio intervals of the means (Bonferroni over pairs)",
}


def rate_fractions(C: np.ndarray, pos: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(numerator, denominator) per group of every one-vs-rest rate for class index `pos`; C is (G, K, K)."""
    n = C.sum(axis=(-2, -1))
    tp = C[..., pos, pos]
    p = C[..., pos, :].sum(axis=-1)
    pp = C[..., :, pos].sum(axis=-1)
    fp = pp - tp
    tn = n - p - fp
    return {"selection_rate": (pp, n), "tpr": (tp, p), "fpr": (fp, n - p), "fnr": (p - tp, p),
            "precision": (tp, pp), "accuracy": (tp + tn, n), "base_rate": (p, n)}


def rate_intervals(C: np.ndarray, pos: int, confidence: float,
                   rates: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    z = inf.z_for(1 - confidence)
    fr = rate_fractions(C, pos)
    return {r: inf.wilson(*fr[r], z) for r in rates}


def _usable(x: np.ndarray, n: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.asarray(eligible, bool) & (n > 0))


def pair_comparisons(x: np.ndarray, n: np.ndarray, eligible: np.ndarray
                     ) -> tuple[inf.RateDifferences, inf.RateLogRatios]:
    """Every pair of eligible groups with a defined rate, as differences and log-ratios."""
    g = _usable(x, n, eligible)
    i, j = inf.pairs(g.size)
    a, b = g[i], g[j]
    return (inf.RateDifferences(x[a], n[a], x[b], n[b]), inf.RateLogRatios(x[a], n[a], x[b], n[b]))


def parity_statistics(C: np.ndarray, positions: Sequence[int], eligible: np.ndarray,
                      labelled: bool) -> dict[tuple[int | None, str], inf.Statistic]:
    """`<criterion>_difference` / `_ratio` per class position, and over all positions (key None)."""
    out: dict[tuple[int | None, str], inf.Statistic] = {}
    for crit, names in PARITY.items():
        if crit != "demographic_parity" and not labelled:
            continue
        per_pos = {}
        for pos in positions:
            fr = rate_fractions(C, pos)
            per_pos[pos] = [pair_comparisons(*fr[r], eligible) for r in names]
        for key, groups in [(p, per_pos[p]) for p in positions] + [(None, [c for p in positions for c in per_pos[p]])]:
            diffs, ratios = [d for d, _ in groups], [q for _, q in groups]
            out[(key, f"{crit}_difference")] = inf.max_abs_statistic(diffs, CI_METHODS["difference"])
            out[(key, f"{crit}_ratio")] = inf.ratio_statistic(ratios, CI_METHODS["ratio"])
    return out


def reference_intervals(C: np.ndarray, pos: int, eligible: np.ndarray, ref: int, confidence: float,
                        rates: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Signed group-minus-reference difference and group/reference ratio intervals per group,
    simultaneous over the groups compared (NaN for the reference and ineligible groups)."""
    fr = rate_fractions(C, pos)
    out = {}
    for r in rates:
        x, n = (np.asarray(v, dtype=float) for v in fr[r])
        others = np.array([g for g in _usable(x, n, eligible) if g != ref], dtype=int)
        z = inf.z_for(1 - confidence, max(1, others.size))
        lo_d, hi_d, lo_q, hi_q = (np.full(x.shape, np.nan) for _ in range(4))
        if others.size and n[ref] > 0:
            rx, rn = np.full(others.size, x[ref]), np.full(others.size, n[ref])
            lo_d[others], hi_d[others] = inf.RateDifferences(x[others], n[others], rx, rn).interval(z)
            lq, hq = inf.RateLogRatios(x[others], n[others], rx, rn).interval(z)
            lo_q[others], hi_q[others] = np.exp(lq), np.exp(hq)
        out[f"ref_difference.{r}"], out[f"ref_ratio.{r}"] = (lo_d, hi_d), (lo_q, hi_q)
    return out


def df_statistics(C: np.ndarray, eligible: np.ndarray, concentration: float) -> dict[str, inf.Statistic]:
    """Differential-fairness epsilons of predictions and labels and their difference (amplification)."""
    k = C.shape[-1]

    def eps(class_counts: np.ndarray) -> inf.Statistic:
        n = class_counts.sum(axis=-1).astype(float)
        parts = []
        for y in range(k):
            g = _usable(class_counts[:, y], n, eligible)
            i, j = inf.pairs(g.size)
            a, b = g[i], g[j]
            parts.append(inf.RateLogRatios(class_counts[a, y], n[a], class_counts[b, y], n[b],
                                           add=concentration / k, add_n=concentration))
        return inf.max_abs_statistic(parts, CI_METHODS["df_amplification"])

    pred, true = eps(C.sum(axis=-2)), eps(C.sum(axis=-1))
    return {"df_epsilon_predictions": pred, "df_epsilon_labels": true,
            "df_amplification": inf.difference_of(pred, true, CI_METHODS["df_amplification"])}


def biasamp_statistic(C: np.ndarray, direction: np.ndarray, eligible: np.ndarray, estimate: float) -> inf.Statistic:
    """Wald statistic for BiasAmp-> = mean over eligible groups a and classes t of y_at * Delta_at.

    Per row, sum_t y_at (1[y_hat = t] - 1[y = t]) = y_{a, y_hat} - y_{a, y}; BiasAmp-> is the mean over
    groups of that row value's group mean divided by K, so its variance is a sum of group variances."""
    el = np.flatnonzero(np.asarray(eligible, bool))
    Ce = C[el].astype(float)
    d = np.nan_to_num(np.asarray(direction, dtype=float)[el])
    v = d[:, None, :] - d[:, :, None]  # (G, y, y_hat): y_{a, y_hat} - y_{a, y}
    n = Ce.sum(axis=(-2, -1))
    mean = (Ce * v).sum(axis=(-2, -1)) / n
    var = (Ce * (v - mean[:, None, None]) ** 2).sum(axis=(-2, -1)) / np.maximum(n - 1, 1)
    scale = 1.0 / (el.size * C.shape[-1])
    se = scale * np.sqrt((var / n).sum())
    return inf.signed_statistic(inf.NormalDifferences(np.array([estimate]), np.array([se])), CI_METHODS["biasamp"])


def mean_statistics(S: np.ndarray, eligible: np.ndarray, column: int) -> dict[str, inf.Statistic]:
    """Between-groups difference and ratio of a per-group mean from sums S (G, 5) =
    [n, sum pred, sum |err|, sum pred^2, sum err^2]; `column` 1 (prediction) or 2 (|error|)."""
    n = S[:, 0]
    g = np.flatnonzero(np.asarray(eligible, bool) & (n > 1))
    m = S[g, column] / n[g]
    var = np.maximum((S[g, column + 2] - n[g] * m ** 2) / (n[g] - 1), 0.0)
    i, j = inf.pairs(g.size)
    se2 = var / n[g]
    diff = inf.NormalDifferences(m[i] - m[j], np.sqrt(se2[i] + se2[j]))
    out = {"difference": inf.max_abs_statistic([diff], CI_METHODS["mean_difference"])}
    if (m > 0).all():
        log_se2 = se2 / m ** 2
        out["ratio"] = inf.ratio_statistic([inf.NormalDifferences(np.log(m[i]) - np.log(m[j]),
                                                                  np.sqrt(log_se2[i] + log_se2[j]))],
                                           CI_METHODS["mean_ratio"])
    return out


def mean_intervals(S: np.ndarray, column: int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Normal interval per group for the mean in `column` (see `mean_statistics`)."""
    n = S[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        m = S[:, column] / n
        se = np.sqrt(np.maximum((S[:, column + 2] - n * m ** 2) / (n - 1), 0.0) / n)
    z = inf.z_for(1 - confidence)
    return m - z * se, m + z * se
