"""Bias amplification from labels to predictions, on count arrays (..., G, K, K) of group x y x y_hat.

- `biasamp_attribute_to_task`: directional BiasAmp-> (Wang & Russakovsky 2021, A->T), additive scale
  (probability points). The direction y_at comes from the training labels and stays fixed across
  bootstrap replicates; Delta_at = P(T_hat=t | a) - P(T=t | a) on the audited rows. Matches
  `biasamp_attribute_to_task` in princetonvisualai/directional-bias-amp (sign(), nanmean).
- `df_amplification`: differential-fairness amplification (Foulds et al.; AIF360
  `df_bias_amplification`), log-ratio scale: eps(predictions) - eps(labels) on the same rows,
  with Dirichlet smoothing (n_gy + c/K) / (n_g + c).
"""
from __future__ import annotations

import warnings

import numpy as np


def training_direction(train: np.ndarray) -> np.ndarray:
    """y_at = sign(P(a, t) - P(a) P(t)) from a (G, K) training count table of group x label."""
    train = np.asarray(train, dtype=float)
    total = train.sum()
    p_at = train / total
    p_a = train.sum(axis=1, keepdims=True) / total
    p_t = train.sum(axis=0, keepdims=True) / total
    return np.sign(p_at - p_a * p_t)


def biasamp_attribute_to_task(C: np.ndarray, direction: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Mean over eligible groups a and classes t of y_at * (P(T_hat=t|a) - P(T=t|a))."""
    n = C.sum(axis=(-2, -1))[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = (C.sum(axis=-2) - C.sum(axis=-1)) / n  # (..., G, K): predicted minus true class shares
    values = direction * delta
    values = values[..., np.asarray(eligible, dtype=bool), :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # every cell undefined -> NaN
        return np.nanmean(values.reshape(values.shape[:-2] + (-1,)), axis=-1)


def df_epsilon(class_counts: np.ndarray, eligible: np.ndarray, concentration: float = 1.0) -> np.ndarray:
    """Smoothed empirical differential fairness from (..., G, K) outcome counts per group.

    eps = max over outcomes y and group pairs (i, j) of |ln p(y|i) - ln p(y|j)|.  Groups empty in a
    bootstrap replicate are left out (as if the row bootstrap had not drawn them).
    """
    counts = np.asarray(class_counts, dtype=float)
    k = counts.shape[-1]
    n = counts.sum(axis=-1, keepdims=True)
    logp = np.log((counts + concentration / k) / (n + concentration))
    keep = np.asarray(eligible, dtype=bool)[:, None] & (n > 0)
    logp = np.where(keep, logp, np.nan)
    spread = np.fmax.reduce(logp, axis=-2) - np.fmin.reduce(logp, axis=-2)  # (..., K)
    return np.fmax.reduce(spread, axis=-1)


def df_amplification(C: np.ndarray, eligible: np.ndarray, concentration: float = 1.0) -> dict[str, np.ndarray]:
    """eps of the predictions, eps of the labels, and their difference (positive = amplified)."""
    eps_pred = df_epsilon(C.sum(axis=-2), eligible, concentration)
    eps_true = df_epsilon(C.sum(axis=-1), eligible, concentration)
    return {"df_epsilon_predictions": eps_pred, "df_epsilon_labels": eps_true, "df_amplification": eps_pred - eps_true}
