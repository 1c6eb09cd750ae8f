"""Bootstrap intervals, and turning an interval and a declared threshold into a finding status."""
from __future__ import annotations

import numpy as np


def interval_status(ci: tuple[float, float], threshold: float, higher_is_better: bool) -> str:
    """`fail` only when the whole interval is on the wrong side, `warn` when it straddles."""
    lo, hi = ci
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "warn"
    if higher_is_better:
        return "pass" if lo >= threshold else ("fail" if hi < threshold else "warn")
    return "pass" if hi <= threshold else ("fail" if lo > threshold else "warn")


PERCENTILE = "percentile bootstrap"
BIAS_CORRECTED = ("bootstrap, bias-corrected lower limit (basic: 2 x estimate - upper percentile) and percentile "
                  "upper limit, widened to contain the estimate (the statistic is biased upwards)")


def bootstrap_interval(point: float, samples: np.ndarray, confidence: float,
                       biased_upwards: bool = False) -> tuple[float, float]:
    """Two-sided interval from bootstrap replicates.

    For a non-negative statistic biased upwards in small samples (binned ECE: noise adds |gap| in every bin),
    replicates sit above the estimate, so percentile limits can exclude the estimate and miss the truth
    below it; the basic-bootstrap lower limit corrects for the bias, the percentile upper limit already errs
    high, and taking the union with the estimate only widens the interval."""
    alpha = (1 - confidence) / 2
    lo, hi = float(np.quantile(samples, alpha)), float(np.quantile(samples, 1 - alpha))
    if not biased_upwards:
        return lo, hi
    return max(0.0, min(point, 2 * point - hi)), max(point, hi)
