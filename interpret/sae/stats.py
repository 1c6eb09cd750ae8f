"""Intervals for template × filler designs: a two-way bootstrap (templates and fillers resampled)
and an exact permutation test of the group labels."""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import comb
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Resample:
    t: np.ndarray   # [B, T] template indices
    f1: np.ndarray  # [B, n1]
    f2: np.ndarray  # [B, n2]

    @classmethod
    def draw(cls, rng: np.random.Generator, n_t: int, n1: int, n2: int, n_boot: int) -> "Resample":
        return cls(rng.integers(0, n_t, (n_boot, n_t)), rng.integers(0, n1, (n_boot, n1)),
                   rng.integers(0, n2, (n_boot, n2)))

    def mean(self, D: np.ndarray, group: int) -> np.ndarray:
        """Bootstrap means of a [template, filler] array of group 1 (0) or group 2 (1)."""
        f = self.f1 if group == 0 else self.f2
        return D[self.t[:, :, None], f[:, None, :]].mean(axis=(1, 2))


def interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    s = samples[np.isfinite(samples)]
    if s.size == 0:
        return (float("nan"), float("nan"))
    a = (1 - confidence) / 2
    return float(np.quantile(s, a)), float(np.quantile(s, 1 - a))


def gap_samples(rs: Resample, D1: np.ndarray, D2: np.ndarray) -> np.ndarray:
    return rs.mean(D1, 0) - rs.mean(D2, 1)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def stereotype_rate(D1: np.ndarray, D2: np.ndarray) -> float:
    """Share of probability (within each pair) the model gives the stereotype-consistent continuation."""
    return float((sigmoid(D1).mean() + sigmoid(-D2).mean()) / 2)


def rate_samples(rs: Resample, D1: np.ndarray, D2: np.ndarray) -> np.ndarray:
    return (rs.mean(sigmoid(D1), 0) + rs.mean(sigmoid(-D2), 1)) / 2


def effect_samples(rs: Resample, before: tuple[np.ndarray, np.ndarray], after: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Paired bootstrap of the fraction of the gap removed: 1 − gap_after / gap_before."""
    g0 = gap_samples(rs, *before)
    g1 = gap_samples(rs, *after)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(g0) > 1e-9, 1.0 - g1 / g0, np.nan)


def permutation_p(D1: np.ndarray, D2: np.ndarray, max_exact: int = 5000, n_random: int = 4000,
                  rng: np.random.Generator | None = None) -> float:
    """Two-sided p-value for the gap under exchangeable filler labels (exact when feasible)."""
    cols = np.concatenate([D1.mean(0), D2.mean(0)])
    n1, n = D1.shape[1], cols.size
    observed = abs(cols[:n1].mean() - cols[n1:].mean())
    total = cols.sum()

    def stat(group1: np.ndarray) -> float:
        s1 = cols[group1].sum()
        return abs(s1 / n1 - (total - s1) / (n - n1))

    if comb(n, n1) <= max_exact:
        stats = np.array([stat(np.array(c)) for c in combinations(range(n), n1)])
    else:
        rng = rng or np.random.default_rng(0)
        stats = np.array([stat(rng.permutation(n)[:n1]) for _ in range(n_random)])
        stats = np.append(stats, observed)
    return float(np.mean(stats >= observed - 1e-12))


def slope_samples(rs: Resample, alphas: np.ndarray, curves: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Bootstrap least-squares slope of the mean response (both groups pooled) against α."""
    y = np.stack([(rs.mean(d1, 0) + rs.mean(d2, 1)) / 2 for d1, d2 in curves], axis=1)  # [B, n_alpha]
    a = alphas - alphas.mean()
    return (y - y.mean(1, keepdims=True)) @ a / (a @ a)


def apply_pairs(fn: Callable[[np.ndarray], np.ndarray], D1: np.ndarray, D2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return fn(D1), fn(D2)
