"""How far to trust an explanation: additivity, stability, agreement, faithfulness, sensitivity.

All functions take arrays and return numbers or small dicts; thresholds are the caller's.
Top-k Jaccard overlaps come with their chance level (two random top-k sets of p features overlap
too: with p = 6 and k = 5 they share at least 4) and the chance-corrected value
(J - E[J]) / (1 - E[J]): 1 for identical sets, 0 for agreement no better than random.
"""
from __future__ import annotations

from fractions import Fraction
from itertools import combinations
from math import comb
from typing import Any, Callable

import numpy as np
from scipy.stats import kendalltau


def top_k(scores: np.ndarray, k: int) -> set[int]:
    """Indices of the k largest |scores| (ties broken by position)."""
    order = np.argsort(-np.abs(scores), kind="stable")
    return set(order[:k].tolist())


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def topk_jaccard(a: np.ndarray, b: np.ndarray, k: int) -> float:
    return jaccard(top_k(a, k), top_k(b, k))


def effective_k(k: int, p: int) -> int:
    """k capped at floor(p / 2): above it two top-k sets of p features must overlap (2k > p)."""
    return min(k, p // 2)


def chance_jaccard(k: int, p: int) -> float:
    """Exact E[J] of two independent, uniformly random k-subsets of p items.

    Their overlap X is hypergeometric, P(X = x) = C(k, x) C(p - k, k - x) / C(p, k), and J = X / (2k - X).
    """
    if not 1 <= k <= p:
        raise ValueError(f"need 1 <= k <= p, got k={k}, p={p}")
    total = sum(Fraction(comb(k, x) * comb(p - k, k - x) * x, 2 * k - x) for x in range(max(0, 2 * k - p), k + 1))
    return float(total / comb(p, k))


def chance_corrected(value: float | np.ndarray, chance: float) -> float | np.ndarray:
    """(value - chance) / (1 - chance); nan when the chance level is 1 (k = p: every pair agrees)."""
    if chance >= 1:
        return np.full_like(np.asarray(value, dtype=float), np.nan) if np.ndim(value) else float("nan")
    return (value - chance) / (1 - chance)


def topk_kendall(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Kendall tau-b of |a| and |b| over the union of both top-k sets (nan if undefined)."""
    idx = sorted(top_k(a, k) | top_k(b, k))
    if len(idx) < 2:
        return float("nan")
    tau = kendalltau(np.abs(a[idx]), np.abs(b[idx])).statistic
    return float(tau) if np.isfinite(tau) else float("nan")


def additivity(values: np.ndarray, base: np.ndarray, output: np.ndarray, *, atol: float, rtol: float) -> dict[str, Any]:
    """|sum(phi) + phi0 - f(x)| per row, and the rows beyond atol + rtol * |f(x)|."""
    err = np.abs(values.sum(axis=1) + base - output)
    bad = np.flatnonzero(err > atol + rtol * np.abs(output))
    return {"max": float(err.max()) if err.size else 0.0, "p95": float(np.quantile(err, 0.95)) if err.size else 0.0,
            "mean": float(err.mean()) if err.size else 0.0, "rows_over_tolerance": bad.tolist(),
            "atol": atol, "rtol": rtol, "errors": err}


def seed_stability(weights: np.ndarray, k: int) -> dict[str, Any]:
    """Per row: mean pairwise top-k Jaccard (raw and chance-corrected) and Kendall tau across seeds.

    `weights` is (rows, seeds, p).
    """
    rows, seeds, p = weights.shape
    jac, tau = np.zeros(rows), np.zeros(rows)
    for i in range(rows):
        pairs = list(combinations(range(seeds), 2))
        jac[i] = np.mean([topk_jaccard(weights[i, a], weights[i, b], k) for a, b in pairs])
        taus = [topk_kendall(weights[i, a], weights[i, b], k) for a, b in pairs]
        tau[i] = np.nanmean(taus) if np.isfinite(taus).any() else np.nan
    chance = chance_jaccard(k, p)
    return {"jaccard": jac, "jaccard_kappa": chance_corrected(jac, chance), "chance_jaccard": chance, "k": k,
            "kendall": tau}


def agreement(a: np.ndarray, b: np.ndarray, k: int, k_small: int = 3) -> dict[str, Any]:
    """Per row agreement of two attributions (rows, p): top-k Kendall tau, top-k Jaccard (raw and
    chance-corrected), top-3 overlap."""
    rows, p = a.shape
    tau = np.array([topk_kendall(a[i], b[i], k) for i in range(rows)])
    jac = np.array([topk_jaccard(a[i], b[i], k) for i in range(rows)])
    small = np.array([len(top_k(a[i], k_small) & top_k(b[i], k_small)) for i in range(rows)])
    chance = chance_jaccard(k, p)
    return {"kendall": tau, "jaccard": jac, "jaccard_kappa": chance_corrected(jac, chance), "chance_jaccard": chance,
            "k": k, f"top{k_small}_overlap": small}


def deletion_curves(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, attributions: np.ndarray,
                    background: np.ndarray, *, steps: int, rng: np.random.Generator, background_draws: int = 16,
                    random_orders: int = 5) -> dict[str, Any]:
    """Deletion faithfulness on encoded rows.

    For k = 1..steps the k features with the largest |attribution| are replaced by values of
    `background_draws` background rows and the change |f(x) - E_z f(x with top-k from z)| is
    recorded; a faithful attribution changes the output more than a random feature order.
    AUC = mean change over k.  Returns curves, AUCs and their ratio (attribution / random).
    """
    n, p = X.shape
    steps = max(1, min(steps, p))
    base = predict(X)
    draws = background[rng.choice(len(background), size=min(background_draws, len(background)), replace=False)]
    m = len(draws)

    def modified(orders: np.ndarray) -> np.ndarray:
        """Rows with their top-k features (k = 1..steps) taken from each draw: (steps * n * m, p)."""
        batch = np.repeat(X, m, axis=0)                     # (n*m, p), row i repeated m times
        z = np.tile(draws, (n, 1))
        out = np.empty((steps,) + batch.shape)
        for k in range(1, steps + 1):
            mod = out[k - 1]
            mod[:] = batch
            row_idx = np.repeat(np.arange(n * m), k)
            col_idx = np.repeat(orders[:, :k], m, axis=0).reshape(-1)
            mod[row_idx, col_idx] = z[row_idx, col_idx]
        return out.reshape(-1, p)

    orders = [np.argsort(-np.abs(attributions), axis=1, kind="stable")]
    orders += [np.argsort(rng.random((n, p)), axis=1) for _ in range(random_orders)]
    # one model call for every curve: (orders, steps, n, m) -> change per (order, row, k)
    f = predict(np.vstack([modified(o) for o in orders])).reshape(len(orders), steps, n, m).mean(axis=3)
    change = np.abs(base[None, None, :] - f).transpose(0, 2, 1)   # (orders, n, steps)
    attr, rand = change[0], change[1:].mean(axis=0)
    auc_attr, auc_rand = float(attr.mean()), float(rand.mean())
    per_row = attr.mean(axis=1) / np.maximum(rand.mean(axis=1), 1e-12)
    return {"steps": steps, "background_draws": m, "random_orders": random_orders, "rows": n,
            "curve": attr.mean(axis=0).tolist(), "random_curve": rand.mean(axis=0).tolist(),
            "auc": auc_attr, "random_auc": auc_rand, "ratio": auc_attr / auc_rand if auc_rand > 0 else float("nan"),
            "per_row_ratio": per_row}


def ranking_agreement(reference: np.ndarray, other: np.ndarray, k: int) -> dict[str, float]:
    """Compare two global importance vectors (mean |SHAP| per feature)."""
    rel = float(np.abs(other - reference).sum() / max(np.abs(reference).sum(), 1e-12))
    jac, chance = topk_jaccard(reference, other, k), chance_jaccard(k, len(reference))
    return {"kendall_topk": topk_kendall(reference, other, k), "jaccard_topk": jac,
            "jaccard_topk_kappa": float(chance_corrected(jac, chance)), "chance_jaccard": chance, "k": k,
            "relative_l1": rel}
