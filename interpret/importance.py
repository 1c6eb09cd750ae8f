"""Global feature importance: design-weighted mean |SHAP| with stratified-bootstrap intervals.

The bootstrap resamples rows within each sampling stratum and keeps the design weights, so
the intervals reflect how the explained rows were drawn (and are zero-width only when every
row of every stratum was explained and the values do not vary).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass
class FeatureImportance:
    feature: str
    mean_abs: float
    ci_low: float
    ci_high: float
    share: float            # of the total mean |SHAP|
    share_ci_low: float
    share_ci_high: float
    mean_signed: float      # average direction on the explained scale
    rank: int
    rank_ci_low: int
    rank_ci_high: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _weighted_mean_abs(absv: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (w[:, None] * absv).sum(0) / w.sum()


def _ranks(m: np.ndarray) -> np.ndarray:
    """1 = most important, per row of `m` (replicates x features)."""
    order = np.argsort(-m, axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, m.shape[-1] + 1)[None, :].repeat(m.shape[0], 0), axis=-1)
    return ranks


def bootstrap_replicates(values: np.ndarray, weights: np.ndarray, strata: np.ndarray,
                         rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """(n_boot, p) weighted mean |values| over stratified bootstrap resamples.

    Each replicate is a vector of draw counts per row (rows redrawn within their stratum), so all
    replicates come from one matrix product."""
    n = len(values)
    draws = np.concatenate([m[rng.integers(0, len(m), size=(n_boot, len(m)))]
                            for m in (np.flatnonzero(strata == h) for h in np.unique(strata))], axis=1)
    counts = np.bincount((draws + np.arange(n_boot)[:, None] * n).ravel(), minlength=n_boot * n).reshape(n_boot, n)
    cw = counts * weights[None, :]
    return (cw @ np.abs(values)) / cw.sum(1)[:, None]


def rank_features(values: np.ndarray, features: list[str], *, weights: np.ndarray | None = None,
                  strata: np.ndarray | None = None, rng: np.random.Generator | None = None,
                  n_boot: int = 200, confidence: float = 0.95) -> list[FeatureImportance]:
    """Features ordered by design-weighted mean |SHAP|, each with a bootstrap CI and a rank CI."""
    n = values.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    st = np.zeros(n, dtype=int) if strata is None else np.asarray(strata)
    rng = rng or np.random.default_rng(0)
    point = _weighted_mean_abs(np.abs(values), w)
    signed = (w[:, None] * values).sum(0) / w.sum()
    reps = bootstrap_replicates(values, w, st, rng, n_boot) if n > 1 and n_boot > 0 else point[None, :]
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(reps, alpha, axis=0), np.quantile(reps, 1 - alpha, axis=0)
    share_reps = reps / np.where(reps.sum(1, keepdims=True) > 0, reps.sum(1, keepdims=True), 1.0)
    slo, shi = np.quantile(share_reps, alpha, axis=0), np.quantile(share_reps, 1 - alpha, axis=0)
    rank_reps = _ranks(reps)
    rlo, rhi = np.quantile(rank_reps, alpha, axis=0), np.quantile(rank_reps, 1 - alpha, axis=0)
    point_rank = _ranks(point[None, :])[0]
    total = point.sum() or 1.0
    out = [FeatureImportance(feature=f, mean_abs=float(point[j]), ci_low=float(lo[j]), ci_high=float(hi[j]),
                             share=float(point[j] / total), share_ci_low=float(slo[j]), share_ci_high=float(shi[j]),
                             mean_signed=float(signed[j]), rank=int(point_rank[j]),
                             rank_ci_low=int(np.floor(rlo[j])), rank_ci_high=int(np.ceil(rhi[j])))
           for j, f in enumerate(features)]
    return sorted(out, key=lambda r: r.rank)


def group_rankings(values: np.ndarray, features: list[str], groups: np.ndarray, *, weights: np.ndarray | None = None,
                   strata: np.ndarray | None = None, rng: np.random.Generator | None = None, n_boot: int = 200,
                   confidence: float = 0.95, min_rows: int = 1) -> dict[str, dict[str, Any]]:
    """The same ranking computed within each group (e.g. each value of a protected attribute)."""
    n = values.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    st = np.zeros(n, dtype=int) if strata is None else np.asarray(strata)
    out: dict[str, dict[str, Any]] = {}
    labels = np.asarray(groups).astype(str)
    for g in sorted(set(labels)):
        mask = labels == g
        if mask.sum() < min_rows:
            continue
        ranking = rank_features(values[mask], features, weights=w[mask], strata=st[mask], rng=rng, n_boot=n_boot,
                                confidence=confidence)
        out[g] = {"rows": int(mask.sum()), "weighted_rows": float(w[mask].sum()), "ranking": ranking}
    return out
