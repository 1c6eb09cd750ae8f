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
        method = stats.PermutationMethod(n_resamples=2000, random_state=0)
        return float(stats.chi2_contingency(table, correction=False, method=method).pvalue)
    return float(stats.chi2_contingency(table, correction=False).pvalue)


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
