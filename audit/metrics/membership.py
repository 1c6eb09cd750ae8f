"""Membership inference from a model's confidence in the true label (Yeom et al. 2018, the loss attack):
training rows (members) against held-out rows (non-members). Pure functions on score arrays."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta, rankdata


def true_label_confidence(proba: np.ndarray, classes: list, y: np.ndarray) -> np.ndarray:
    """The probability the model gives each row's true label (rows with a label it does not know: 0)."""
    index = {str(c): i for i, c in enumerate(classes)}
    cols = np.array([index.get(str(v), -1) for v in y])
    out = np.where(cols >= 0, proba[np.arange(len(y)), np.maximum(cols, 0)], 0.0)
    return out.astype(float)


def attack_auc(member: np.ndarray, non_member: np.ndarray) -> float:
    """P(member score > non-member score) + ties / 2 (the Mann-Whitney statistic)."""
    ranks = rankdata(np.concatenate([member, non_member]))
    m, n = len(member), len(non_member)
    return float((ranks[:m].sum() - m * (m + 1) / 2) / (m * n))


CELLS_PER_BLOCK = 4_000_000  # replicates x rows held at once


def bootstrap_auc(member: np.ndarray, non_member: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Stratified bootstrap replicates of the attack AUC (members and non-members resampled separately).

    Each replicate is a weighted Mann-Whitney sum over the original rows: a member's non-members below it
    (ties count one half) are running sums of the non-members' resample counts in score order."""
    from .performance import resample_counts
    ordered = np.sort(non_member)
    below, upto = np.searchsorted(ordered, member, "left"), np.searchsorted(ordered, member, "right")
    m, n = len(member), len(non_member)
    block = max(1, CELLS_PER_BLOCK // (m + n))
    out = []
    for start in range(0, n_boot, block):
        size = min(block, n_boot - start)
        w_member, w_non = resample_counts(rng, m, size), resample_counts(rng, n, size)  # w_non in score order
        cum = np.concatenate([np.zeros((size, 1)), np.cumsum(w_non, axis=1)], axis=1)
        wins = 0.5 * (cum[:, below] + cum[:, upto])  # non-members below + half the ties
        out.append((w_member * wins).sum(1) / (m * n))
    return np.concatenate(out)


def clopper_pearson(x: int, n: int, alpha: float) -> tuple[float, float]:
    lo = 0.0 if x == 0 else float(beta.ppf(alpha / 2, x, n - x + 1))
    hi = 1.0 if x == n else float(beta.ppf(1 - alpha / 2, x + 1, n - x))
    return lo, hi


@dataclass(frozen=True)
class OperatingPoint:
    fpr_target: float
    threshold: float
    tpr: float
    tpr_ci: tuple[float, float]
    fpr: float


def tpr_at_fpr(member: np.ndarray, non_member: np.ndarray, fpr: float, alpha: float) -> OperatingPoint | None:
    """TPR of the attack that flags scores above the non-members' (1 - fpr) quantile; None when there are too
    few non-members for that false-positive rate to be observed (fewer than 10 / fpr)."""
    if len(non_member) < 10 / fpr:
        return None
    threshold = float(np.quantile(non_member, 1 - fpr))
    hits = int((member > threshold).sum())
    return OperatingPoint(fpr, threshold, hits / len(member), clopper_pearson(hits, len(member), alpha),
                          float((non_member > threshold).mean()))


def epsilon_lower_bound(member: np.ndarray, non_member: np.ndarray, alpha: float, grid: int = 20) -> float:
    """A (1 - alpha)-confidence lower bound on the differential-privacy epsilon the attack implies: over a grid
    of thresholds, max log(TPR_low / FPR_high) and log((1 - FPR)_low / (1 - TPR)_high), with Clopper-Pearson
    bounds Bonferroni-adjusted over the grid (Jagielski et al. 2020; delta taken as 0)."""
    best = 0.0
    level = alpha / (2 * grid)
    for q in np.linspace(0.5, 0.99, grid):
        t = float(np.quantile(non_member, q))
        tp, fp = int((member > t).sum()), int((non_member > t).sum())
        tpr_lo = clopper_pearson(tp, len(member), 2 * level)[0]
        fpr_hi = clopper_pearson(fp, len(non_member), 2 * level)[1]
        tnr_lo = clopper_pearson(len(non_member) - fp, len(non_member), 2 * level)[0]
        fnr_hi = clopper_pearson(len(member) - tp, len(member), 2 * level)[1]
        for num, den in ((tpr_lo, fpr_hi), (tnr_lo, fnr_hi)):
            if num > 0 and den > 0:
                best = max(best, math.log(num / den))
    return best
