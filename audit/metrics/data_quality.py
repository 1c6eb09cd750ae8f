"""Pure data-governance statistics (Art. 10): missingness overall and by group, duplicates, train/test
overlap, and representativeness against declared population margins. Each returns counts, an interval
and, where a hypothesis is tested, a p-value."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .inference import wilson, z_for


@dataclass(frozen=True)
class Share:
    count: int
    n: int
    ci: tuple[float, float]

    @property
    def value(self) -> float:
        return self.count / self.n if self.n else float("nan")


def share(count: int, n: int, confidence: float, comparisons: int = 1) -> Share:
    lo, hi = wilson(np.array([count]), np.array([n]), z_for(1 - confidence, comparisons))
    return Share(int(count), int(n), (float(lo[0]), float(hi[0])))


def independence_p(table: np.ndarray) -> float:
    """p-value of "missingness does not depend on the group" for a (groups x {present, missing}) table:
    Fisher's exact test for 2 x 2, otherwise the chi-square test (its exact-conditional Monte Carlo
    version when an expected count is below 5)."""
    table = table[table.sum(1) > 0]
    if table.shape[0] < 2 or (table.sum(0) == 0).any():
        return 1.0
    if table.shape == (2, 2):
        return float(stats.fisher_exact(table).pvalue)
    expected = stats.contingency.expected_freq(table)
    if (expected < 5).any():
        if table.sum() <= PERMUTE_ROWS:
            method = stats.PermutationMethod(n_resamples=N_RESAMPLES, random_state=0)
            return float(stats.chi2_contingency(table, correction=False, method=method).pvalue)
        return conditional_chi2_p(table, np.random.default_rng(0))
    return float(stats.chi2_contingency(table, correction=False).pvalue)


PERMUTE_ROWS = 100_000  # above this, tables are drawn from their margins instead of permuting rows
N_RESAMPLES = 2000


def _chi2(tables: np.ndarray, expected: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected > 0, (tables - expected) ** 2 / expected, 0.0).sum(axis=(-2, -1))


def conditional_chi2_p(table: np.ndarray, rng: np.random.Generator, n_resamples: int = N_RESAMPLES) -> float:
    """The exact-conditional Monte Carlo chi-square test (what scipy's permutation version estimates) with tables
    drawn from the multivariate hypergeometric law of the fixed margins: memory by cells, not rows, so it runs on
    a window of millions of rows. p = (1 + #{simulated >= observed}) / (1 + resamples)."""
    table = np.asarray(table, dtype=np.int64)
    rows, cols = table.sum(1), table.sum(0)
    expected = stats.contingency.expected_freq(table)
    sims = np.empty((n_resamples,) + table.shape, dtype=np.int64)
    remaining = np.broadcast_to(cols, (n_resamples, len(cols))).copy()
    for i, n in enumerate(rows[:-1]):
        if len(rows) == 2:  # one vectorised draw
            sims[:, i] = rng.multivariate_hypergeometric(cols, int(n), size=n_resamples)
        else:
            sims[:, i] = [rng.multivariate_hypergeometric(r, int(n)) for r in remaining]
        remaining -= sims[:, i]
    sims[:, -1] = remaining
    observed = float(_chi2(table, expected))
    return float((1 + (_chi2(sims, expected) >= observed - 1e-9 * max(observed, 1)).sum()) / (1 + n_resamples))


def missing_by_group(missing: pd.Series, groups: pd.Series) -> tuple[np.ndarray, list[str]]:
    """(groups x 2) counts of present and missing values, and the group labels."""
    frame = pd.DataFrame({"g": groups.astype(str).fillna("(missing)"), "m": missing.astype(bool)})
    counts = frame.groupby("g")["m"].agg(["size", "sum"])
    return np.column_stack([counts["size"] - counts["sum"], counts["sum"]]).astype(int), counts.index.tolist()


def row_keys(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One hash per row over `columns` (missing values compare equal), for duplicate and overlap counts."""
    return pd.util.hash_pandas_object(frame[columns].astype(str), index=False)


def goodness_of_fit_p(observed: np.ndarray, target: np.ndarray) -> float:
    """Chi-square goodness of fit of observed counts to target shares (its Monte Carlo version, multinomial
    draws under the target, when an expected count is below 5)."""
    expected = target / target.sum() * observed.sum()
    if (expected < 5).any():
        rng = np.random.default_rng(0)
        draws = rng.multinomial(int(observed.sum()), target / target.sum(), size=4000)
        stat = ((observed - expected) ** 2 / expected).sum()
        sims = ((draws - expected) ** 2 / expected).sum(1)
        return float((1 + (sims >= stat - 1e-12).sum()) / (1 + len(sims)))
    return float(stats.chisquare(observed, expected).pvalue)
