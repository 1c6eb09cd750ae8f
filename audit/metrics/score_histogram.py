"""Binary-classification performance from a mergeable (label x prediction x score-bin) table.

A row bootstrap resamples cells of this table multinomially; per-cell means of score, log
loss and Brier stand in for the rows of a cell, so point estimates of accuracy, balanced
accuracy and confusion rates are exact, and ROC AUC is exact up to ties inside one score bin:
its error is at most `roc_auc_error_bound` (half the share of positive-negative pairs that
fall in the same bin), reported with every figure.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-15


@dataclass(frozen=True)
class ScoreHistogram:
    counts: np.ndarray      # (2, 2, B): true label x predicted label x score bin
    score_sum: np.ndarray   # same shape: sum of positive-class scores
    logloss_sum: np.ndarray
    brier_sum: np.ndarray

    @property
    def bins(self) -> int:
        return self.counts.shape[-1]

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def __add__(self, other: "ScoreHistogram") -> "ScoreHistogram":
        return ScoreHistogram(self.counts + other.counts, self.score_sum + other.score_sum,
                              self.logloss_sum + other.logloss_sum, self.brier_sum + other.brier_sum)

    @classmethod
    def from_arrays(cls, y: np.ndarray, score: np.ndarray, y_pred: np.ndarray, bins: int = 10_000) -> "ScoreHistogram":
        y, y_pred = np.asarray(y, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
        score = np.asarray(score, dtype=float)
        b = np.minimum((score * bins).astype(np.int64), bins - 1)
        flat = (y * 2 + y_pred) * bins + b
        size = 4 * bins
        p = np.clip(score, EPS, 1 - EPS)
        ll = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        shape = (2, 2, bins)
        return cls(np.bincount(flat, minlength=size).reshape(shape),
                   np.bincount(flat, weights=score, minlength=size).reshape(shape),
                   np.bincount(flat, weights=ll, minlength=size).reshape(shape),
                   np.bincount(flat, weights=(score - y) ** 2, minlength=size).reshape(shape))

    def replicate(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Metrics for count arrays shaped (..., 2, 2, B), using this table's per-cell means."""
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = lambda s: np.where(self.counts > 0, s / np.maximum(self.counts, 1), 0.0)
            return _metrics(counts, counts * mean(self.score_sum), counts * mean(self.logloss_sum),
                            counts * mean(self.brier_sum))

    def metrics(self) -> dict[str, float]:
        m = _metrics(self.counts, self.score_sum, self.logloss_sum, self.brier_sum)
        return {k: float(v) for k, v in m.items()}


def _metrics(c: np.ndarray, s: np.ndarray, ll: np.ndarray, br: np.ndarray) -> dict[str, np.ndarray]:
    n = c.sum(axis=(-3, -2, -1)).astype(float)
    conf = c.sum(axis=-1)                      # (..., 2, 2)
    tp, fn = conf[..., 1, 1], conf[..., 1, 0]
    fp, tn = conf[..., 0, 1], conf[..., 0, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr, tnr = tp / (tp + fn), tn / (tn + fp)
        pos = c[..., 1, :, :].sum(axis=-2).astype(float)   # (..., B) positives per score bin
        neg = c[..., 0, :, :].sum(axis=-2).astype(float)
        auc, bound = binned_auc(pos, neg)
        bins = c.shape[-1]
        coarse = bins // 10 if bins % 10 == 0 else None
        if coarse:
            ssum = s.sum(axis=(-3, -2)).reshape(c.shape[:-3] + (10, coarse)).sum(-1)
            ysum = c[..., 1, :, :].sum(axis=-2).reshape(c.shape[:-3] + (10, coarse)).sum(-1)
            ece = np.abs(ysum - ssum).sum(-1) / n
        else:
            ece = np.full(n.shape, np.nan)
        return {"accuracy": (tp + tn) / n, "balanced_accuracy": (tpr + tnr) / 2, "roc_auc": auc,
                "log_loss": ll.sum(axis=(-3, -2, -1)) / n, "brier": br.sum(axis=(-3, -2, -1)) / n, "ece": ece,
                "roc_auc_error_bound": bound}


def binned_auc(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC AUC from positives and negatives per ascending score bin (pairs in one bin count one half) and the bound
    on its error against the exact AUC; leading axes are replicates."""
    pos, neg = np.asarray(pos, dtype=float), np.asarray(neg, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        pairs = pos.sum(-1) * neg.sum(-1)
        return ((pos * (np.cumsum(neg, axis=-1) - 0.5 * neg)).sum(-1) / pairs, 0.5 * (pos * neg).sum(-1) / pairs)


def binned_auc_draws(pos: np.ndarray, neg: np.ndarray, rng: np.random.Generator, n_boot: int,
                     block: int = 50) -> np.ndarray:
    """Bootstrap replicates of `binned_auc`: each class's rows resampled (multinomially over its bins)."""
    keep = (pos + neg) > 0
    pos, neg = np.asarray(pos)[keep], np.asarray(neg)[keep]
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    out = []
    for start in range(0, n_boot, block):
        m = min(block, n_boot - start)
        out.append(binned_auc(rng.multinomial(n_pos, pos / n_pos, size=m), rng.multinomial(n_neg, neg / n_neg, size=m))[0])
    return np.concatenate(out)
