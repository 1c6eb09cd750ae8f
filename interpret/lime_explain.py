"""Seeded, reproducible LIME on the raw columns.

LIME draws a new random neighbourhood on every call, and `random_state` given to the
explainer is consumed across calls (lime#119, #231) while the discretizer keeps its own
reference (lime#389).  Before each call we therefore give the explainer, its discretizer and
its ridge base one fresh `RandomState(seed)`: the same (row, seed) always gives the same
weights, whatever was explained before.  LIME explains the same output as SHAP (e.g. the
log-odds), in regression mode, so the two can be compared.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .encoding import TabularEncoder


@dataclass
class LimeResult:
    weights: np.ndarray        # (rows, seeds, p) local weights on the raw columns
    intercepts: np.ndarray     # (rows, seeds)
    scores: np.ndarray         # (rows, seeds) weighted R^2 of the local surrogate
    local_pred: np.ndarray     # (rows, seeds) surrogate's prediction at the row
    conditions: list[list[list[tuple[str, float]]]]  # rows x seeds x [(condition, weight)]
    seeds: list[int]
    num_samples: int
    imputed_values: int = 0    # missing values filled (median / most frequent code) because LIME cannot use NaN

    @property
    def mean_weights(self) -> np.ndarray:
        return self.weights.mean(axis=1)


def make_explainer(background: np.ndarray, encoder: TabularEncoder, *, discretize: bool = True,
                   kernel_width: float | None = None):
    from lime.lime_tabular import LimeTabularExplainer
    return LimeTabularExplainer(background, mode="regression", feature_names=list(encoder.feature_names),
                                categorical_features=encoder.categorical_indices,
                                categorical_names=encoder.category_names(), discretize_continuous=discretize,
                                kernel_width=kernel_width, feature_selection="none", random_state=0)


def reseed(explainer, seed: int) -> None:
    from sklearn.utils import check_random_state
    rs = check_random_state(seed)
    explainer.random_state = rs
    explainer.base.random_state = rs
    if explainer.discretizer is not None:
        explainer.discretizer.random_state = rs


def explain_rows(rows: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], background: np.ndarray,
                 encoder: TabularEncoder, *, seeds: list[int], num_samples: int = 2000,
                 kernel_width: float | None = None, progress: Callable[[str], None] | None = None) -> LimeResult:
    """LIME for each encoded row under each seed; `predict` maps encoded rows to the explained output."""
    background, rows, imputed = _fill_missing(background, rows, encoder)
    explainer = make_explainer(background, encoder, kernel_width=kernel_width)
    n, p, s = rows.shape[0], rows.shape[1], len(seeds)
    weights = np.zeros((n, s, p))
    intercepts, scores, local = np.zeros((n, s)), np.zeros((n, s)), np.zeros((n, s))
    conditions: list[list[list[tuple[str, float]]]] = []
    for i in range(n):
        per_seed = []
        for j, seed in enumerate(seeds):
            reseed(explainer, seed)
            exp = explainer.explain_instance(rows[i], predict, num_features=p, num_samples=num_samples)
            for feat, w in exp.local_exp[1]:
                weights[i, j, feat] = w
            intercepts[i, j] = float(np.ravel(exp.intercept[1])[0])
            scores[i, j] = float(exp.score)
            local[i, j] = float(np.ravel(exp.local_pred)[0])
            per_seed.append([(str(c), float(w)) for c, w in exp.as_list(label=1)])
        conditions.append(per_seed)
        if progress:
            progress(f"LIME {i + 1}/{n}")
    return LimeResult(weights, intercepts, scores, local, conditions, list(seeds), num_samples, imputed)


def _fill_missing(background: np.ndarray, rows: np.ndarray, encoder: TabularEncoder) -> tuple[np.ndarray, np.ndarray, int]:
    """Median (numeric) or most frequent code (categorical) of the background for missing cells."""
    missing = int(np.isnan(background).sum() + np.isnan(rows).sum())
    if not missing:
        return background, rows, 0
    fill = np.zeros(background.shape[1])
    cats = set(encoder.categorical_indices)
    for j in range(background.shape[1]):
        col = background[:, j][~np.isnan(background[:, j])]
        if col.size == 0:
            continue
        if j in cats:
            vals, counts = np.unique(col, return_counts=True)
            fill[j] = vals[np.argmax(counts)]
        else:
            fill[j] = np.median(col)
    return np.where(np.isnan(background), fill, background), np.where(np.isnan(rows), fill, rows), missing
