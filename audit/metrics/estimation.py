"""Performance of a binary classifier on unlabelled rows, from its own calibrated scores.

Confidence-based performance estimation (CBPE, as NannyML): if the scores are calibrated on the window,
row i is positive with probability p_i, so the expected ROC curve has TPR(t) = sum_{p_j >= t} p_j / sum p
and FPR(t) = sum_{p_j >= t} (1 - p_j) / sum (1 - p), and the expected accuracy at the model's decision is
mean(max(p, 1 - p)). What is reported with it is a *prediction interval for the realised value*: labels are
drawn from the scores (y_i ~ Bernoulli(p_i)) and the metric recomputed, so the interval says where the
window's performance would lie once its labels arrive, under the one assumption the method makes:
calibration holds on the window (no concept shift). The assumption is checked where it can be: on the
labelled baseline, the estimate must agree with the realised value.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

SIM_CELLS = 8_000_000  # simulated labels held at once


def expected_auc(p: np.ndarray) -> float:
    """Area under the expected ROC curve (ties in p are one step, as in a realised ROC curve)."""
    ps = np.sort(np.asarray(p, dtype=float))[::-1]
    last = np.r_[ps[1:] != ps[:-1], True]  # end of each run of tied scores
    tp, fp = np.cumsum(ps)[last], np.cumsum(1 - ps)[last]
    if tp[-1] <= 0 or fp[-1] <= 0:
        return float("nan")
    tpr, fpr = np.r_[0.0, tp / tp[-1]], np.r_[0.0, fp / fp[-1]]
    return float(np.trapezoid(tpr, fpr))


def expected_accuracy(p: np.ndarray, threshold: float = 0.5) -> float:
    p = np.asarray(p, dtype=float)
    return float(np.where(p >= threshold, p, 1 - p).mean())


def realised_draws(p: np.ndarray, rng: np.random.Generator, n_sim: int,
                   threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """AUC and accuracy of `n_sim` label sets drawn from the scores (AUC from fixed score ranks).

    One pass over each block of drawn labels: their product with (score rank, predicted positive) gives each
    set's rank sum of positives (Mann-Whitney) and its true positives; single-precision uniforms are exact
    enough for a Bernoulli draw and half the cost of double ones."""
    p = np.asarray(p, dtype=float)
    weights = np.column_stack([rankdata(p), p >= threshold]).astype(float)
    p32, n, n_pred = p.astype(np.float32), len(p), float(weights[:, 1].sum())
    aucs, accs = [], []
    block = max(1, SIM_CELLS // max(n, 1))
    for start in range(0, n_sim, block):
        y = rng.random((min(block, n_sim - start), n), dtype=np.float32) < p32
        n1 = y.sum(1)
        n0 = n - n1
        rank_sum, hits = (y.view(np.uint8) @ weights).T
        with np.errstate(divide="ignore", invalid="ignore"):
            aucs.append((rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0))
        accs.append((hits + n0 - (n_pred - hits)) / n)
    return np.concatenate(aucs), np.concatenate(accs)
