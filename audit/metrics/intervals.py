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
                  "upper limit, widened to contain the estimate (the statistic is biased upwards); lower limit 0 "
                  "when a test of the statistic's zero value does not reject at level (1 - confidence) / 2")


def bootstrap_interval(point: float, samples: np.ndarray, confidence: float,
                       biased_upwards: bool = False, zero_p_value: float | None = None) -> tuple[float, float]:
    """Two-sided interval from bootstrap replicates.

    For a non-negative statistic biased upwards in small samples (binned ECE: noise adds |gap| in every bin),
    replicates sit above the estimate, so percentile limits can exclude the estimate and miss the truth
    below it; the basic-bootstrap lower limit corrects for the bias, the percentile upper limit already errs
    high, and taking the union with the estimate only widens the interval. At a truth of exactly 0 (a perfectly
    calibrated model) no lower limit above 0 covers it, so the lower limit is 0 whenever `zero_p_value`, the
    p-value of a test of the zero value, does not reject at the lower tail's level; this only widens the
    interval, so coverage elsewhere is kept."""
    alpha = (1 - confidence) / 2
    lo, hi = float(np.quantile(samples, alpha)), float(np.quantile(samples, 1 - alpha))
    if not biased_upwards:
        return lo, hi
    lower = max(0.0, min(point, 2 * point - hi))
    if zero_p_value is not None and zero_p_value > alpha:
        lower = 0.0
    return lower, max(point, hi)
