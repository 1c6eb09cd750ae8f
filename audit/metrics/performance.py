"""Predictive-performance metrics (classification and regression)."""
from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def expected_calibration_error(y_true: np.ndarray, score: np.ndarray, n_bins: int = 10) -> float:
    """Binary ECE with equal-width bins: sum_b (n_b / n) |mean(y)_b - mean(score)_b|."""
    bins = np.minimum((score * n_bins).astype(int), n_bins - 1)
    sum_y = np.bincount(bins, weights=y_true, minlength=n_bins)
    sum_p = np.bincount(bins, weights=score, minlength=n_bins)
    return float(np.abs(sum_y - sum_p).sum() / len(score))


def top_label_ece(y_true_idx: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> float:
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true_idx).astype(float)
    return expected_calibration_error(correct, conf, n_bins)


def binary_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula (ties count one half), NaN with one class."""
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_metrics(y: np.ndarray, score: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    eps = 1e-15
    p = np.clip(score, eps, 1 - eps)
    both = len(np.unique(y)) == 2
    return {
        "accuracy": float((y == y_pred).mean()),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y, y_pred)) if both else float("nan"),
        "roc_auc": binary_auc(y, score),
        "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
        "brier": float(np.mean((score - y) ** 2)),
        "ece": expected_calibration_error(y, score),
    }


def multiclass_metrics(y_idx: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    y_pred = proba.argmax(axis=1)
    k = proba.shape[1]
    present = np.unique(y_idx)
    p = np.clip(proba[np.arange(len(y_idx)), y_idx], 1e-15, 1)
    try:
        auc = float(skm.roc_auc_score(y_idx, proba, multi_class="ovr", labels=list(range(k)))) if len(present) == k else float("nan")
    except ValueError:
        auc = float("nan")
    return {
        "accuracy": float((y_idx == y_pred).mean()),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_idx, y_pred)),
        "roc_auc": auc,
        "log_loss": float(-np.mean(np.log(p))),
        "ece": top_label_ece(y_idx, proba),
    }


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    err = pred - y
    var = np.var(y)
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err ** 2))),
        "r2": float(1 - np.mean(err ** 2) / var) if var > 0 else float("nan"),
    }


def calibration_cells(score: np.ndarray, bins: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """Row counts and score sums on a fine equal-width score grid (the score histogram's grid)."""
    score = np.asarray(score, dtype=float)
    cell = np.minimum((score * bins).astype(np.int64), bins - 1)
    return np.bincount(cell, minlength=bins).astype(float), np.bincount(cell, weights=score, minlength=bins)


def ece_if_calibrated(counts: np.ndarray, score_sum: np.ndarray, rng: np.random.Generator, n_draws: int,
                      n_bins: int = 10) -> np.ndarray:
    """Binned ECE of `n_draws` label sets drawn from the scores themselves (consistency resampling,
    Broecker & Smith 2007): its distribution when the model is perfectly calibrated.

    Each grid cell's labels are Binomial(count, mean score of the cell), which has at least the variance of
    the rows' own Bernoulli sum, so the test it gives errs towards "consistent with calibration"."""
    counts, score_sum = np.asarray(counts, dtype=float), np.asarray(score_sum, dtype=float)
    grid = len(counts)
    cells = np.flatnonzero(counts > 0)
    c, p = counts[cells], np.clip(score_sum[cells] / counts[cells], 0.0, 1.0)
    onehot = np.eye(n_bins)[cells * n_bins // grid]
    labels = rng.binomial(c.astype(np.int64), p, size=(n_draws, len(cells)))
    return np.abs((labels - c * p) @ onehot).sum(1) / c.sum()


BIASED_UPWARDS = frozenset({"ece"})  # binned calibration error: sampling noise only adds to it
HIGHER_IS_BETTER = {"accuracy": True, "balanced_accuracy": True, "roc_auc": True, "r2": True,
                    "log_loss": False, "brier": False, "ece": False, "mae": False, "rmse": False}


def resample_counts(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """Row-bootstrap replicates as counts: row i drawn c[b, i] times in replicate b, (n_boot, n)."""
    idx = rng.integers(0, n, size=(n_boot, n)) + (np.arange(n_boot, dtype=np.int64) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def _weighted_auc(w: np.ndarray, y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC AUC per row of weights `w`: P(score+ > score-) + P(tie) / 2, ties grouped exactly.

    The weights of positives and negatives are summed per distinct score with one sparse product
    (exact: sums of integer counts in float64), then the AUC is a running sum over the scores."""
    from scipy import sparse
    _, cell = np.unique(score, return_inverse=True)
    k, n = int(cell.max(initial=-1)) + 1, len(score)
    to_cells = sparse.csr_matrix((np.ones(n), (np.arange(n), cell + np.where(y != 1, k, 0))), shape=(n, 2 * k))
    per_cell = np.asarray((to_cells.T @ w.T).T)
    wp, wn = per_cell[:, :k], per_cell[:, k:]
    below = np.cumsum(wn, axis=1) - wn
    n_pos, n_neg = wp.sum(1), wn.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (wp * (below + 0.5 * wn)).sum(1) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def binary_replicates(w: np.ndarray, y: np.ndarray, score: np.ndarray, y_pred: np.ndarray,
                      n_bins: int = 10) -> dict[str, np.ndarray]:
    """`binary_metrics` of every bootstrap replicate at once, from resample counts `w` (n_boot, n).

    Equal, replicate by replicate, to `binary_metrics(y[idx], score[idx], y_pred[idx])` on the
    drawn rows, without materialising them: each metric is a weighted sum over the original rows,
    and all the sums come from one matrix product."""
    y, y_pred, score = np.asarray(y), np.asarray(y_pred), np.asarray(score, dtype=float)
    p = np.clip(score, 1e-15, 1 - 1e-15)
    pos, pred = y == 1, y_pred == 1
    onehot = np.eye(n_bins)[np.minimum((score * n_bins).astype(int), n_bins - 1)]
    cols = np.column_stack([np.ones(len(y)), y == y_pred, pos, pos & pred, ~pos & ~pred,
                            y * np.log(p) + (1 - y) * np.log(1 - p), (score - y) ** 2,
                            onehot * (y - score)[:, None]]).astype(float)
    n, correct, n_pos, tp, tn, ll, brier = (w @ cols[:, :7]).T
    gap = w @ cols[:, 7:]   # per replicate and bin: sum of (y - score)
    n_neg = n - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        balanced = 0.5 * (tp / n_pos + tn / n_neg)
    return {
        "accuracy": correct / n,
        "balanced_accuracy": np.where((n_pos > 0) & (n_neg > 0), balanced, np.nan),
        "roc_auc": _weighted_auc(w, y, score),
        "log_loss": -ll / n,
        "brier": brier / n,
        "ece": np.abs(gap).sum(1) / n,
    }
