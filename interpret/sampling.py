"""Stratified row samples with design weights, so estimates from a sample describe all rows."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MAX_STRATA = 200


@dataclass
class SamplePlan:
    """Which rows were drawn, from which strata, and what each sampled row stands for."""

    indices: np.ndarray          # positions in the population frame, sorted
    weights: np.ndarray          # N_h / n_h for each sampled row
    stratum: np.ndarray          # stratum number for each sampled row
    strata_columns: list[str]
    strata: list[dict[str, Any]]  # {"key": {...}, "population": N_h, "sample": n_h, "weight": N_h/n_h}
    population: int
    seed_purpose: str = ""

    @property
    def size(self) -> int:
        return len(self.indices)

    def describe(self) -> dict[str, Any]:
        return {"design": "stratified random sample without replacement" if self.size < self.population else "all rows",
                "population_rows": self.population, "sample_rows": self.size,
                "strata_columns": self.strata_columns, "strata": self.strata,
                "estimator": "design-weighted means (weight = stratum population / stratum sample)",
                "seed_purpose": self.seed_purpose}


def _stratum_codes(strata: pd.DataFrame | None, n: int) -> tuple[np.ndarray, list[dict[str, Any]], list[str]]:
    if strata is None or strata.shape[1] == 0:
        return np.zeros(n, dtype=int), [{}], []
    cols = list(strata.columns)
    # Too many intersections: drop the last column until the design is small enough.
    while cols:
        keys = strata[cols].astype(str).fillna("<missing>")
        codes, uniques = pd.MultiIndex.from_frame(keys).factorize()
        if len(uniques) <= MAX_STRATA or len(cols) == 1:
            labels = [dict(zip(cols, u)) for u in uniques]
            return np.asarray(codes, dtype=int), labels, cols
        cols = cols[:-1]
    return np.zeros(n, dtype=int), [{}], []


def allocate(pop: np.ndarray, n: int, min_per_stratum: int) -> np.ndarray:
    """Sample size per stratum: at least `min_per_stratum` (or the whole stratum), the rest proportional."""
    pop = np.asarray(pop, dtype=int)
    if n >= pop.sum():
        return pop.copy()
    base = np.minimum(pop, min_per_stratum)
    if base.sum() >= n:  # the minimum alone exceeds the budget: proportional, at least one each
        base = np.minimum(pop, 1)
        if base.sum() >= n:
            take = np.zeros_like(pop)
            take[np.argsort(-pop, kind="stable")[:n]] = 1
            return take
    remaining = n - base.sum()
    room = pop - base
    share = remaining * room / max(room.sum(), 1)
    extra = np.floor(share).astype(int)
    leftover = remaining - extra.sum()
    order = np.argsort(-(share - extra), kind="stable")
    for i in order:
        if leftover <= 0:
            break
        if extra[i] < room[i]:
            extra[i] += 1
            leftover -= 1
    return base + extra


def stratified_sample(strata: pd.DataFrame | None, n: int, rng: np.random.Generator, *,
                      min_per_stratum: int = 0, exclude: np.ndarray | None = None,
                      purpose: str = "") -> SamplePlan:
    """Draw `n` rows, stratified by the columns of `strata` (one row per population row).

    `min_per_stratum` > 0 over-samples small strata (their weights fall accordingly);
    0 gives proportional allocation, i.e. an equal-weight sample (used for SHAP backgrounds).
    `exclude` removes rows (positions) from the population before drawing.
    """
    total = len(strata) if strata is not None else 0
    if strata is None:
        raise ValueError("stratified_sample needs a frame (possibly with no columns) to know the population size")
    keep = np.ones(total, dtype=bool)
    if exclude is not None and len(exclude):
        keep[np.asarray(exclude, dtype=int)] = False
    positions = np.flatnonzero(keep)
    codes, labels, cols = _stratum_codes(strata.iloc[positions] if strata.shape[1] else None, len(positions))
    pop = np.bincount(codes, minlength=len(labels))
    take = allocate(pop, n, min_per_stratum)
    idx, w, st = [], [], []
    table = []
    for h, label in enumerate(labels):
        members = positions[codes == h]
        k = int(take[h])
        chosen = members if k >= len(members) else rng.choice(members, size=k, replace=False)
        weight = len(members) / k if k else 0.0
        idx.append(chosen)
        w.append(np.full(k, weight))
        st.append(np.full(k, h))
        table.append({"key": {c: str(v) for c, v in label.items()}, "population": int(len(members)), "sample": k,
                      "weight": float(weight)})
    idx_a, w_a, st_a = np.concatenate(idx), np.concatenate(w), np.concatenate(st)
    order = np.argsort(idx_a, kind="stable")
    return SamplePlan(indices=idx_a[order].astype(int), weights=w_a[order], stratum=st_a[order].astype(int),
                      strata_columns=cols, strata=table, population=int(len(positions)), seed_purpose=purpose)
